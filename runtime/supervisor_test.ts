// Port of the relevant cases of OTP's lib/stdlib/test/supervisor_SUITE.erl.

import assert from "node:assert/strict";
import type { ExitReason } from "./actor.ts";
import type { ChildSpecInput, RestartType } from "./child_spec.ts";
import {
  ActorCrashedError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  RestartIntensityError,
} from "./errors.ts";
import { ActorSystem } from "./system.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import {
  FakeClock,
  Log,
  reports,
  until,
  workerFactory,
  type WorkerMsg,
} from "./_test_util.ts";

function specs(
  log: Log,
  ids: string[],
  extra: Partial<ChildSpecInput> = {},
): ChildSpecInput[] {
  return ids.map((id) => ({ id, start: workerFactory(id, log), ...extra }));
}

function ask(
  system: ActorSystem,
  address: string,
  msg: WorkerMsg,
): Promise<unknown> {
  return system.ref<WorkerMsg>(address).ask(msg);
}

function statusOf(sup: Supervisor, id: string): string | undefined {
  return sup.whichChildren().find((c) => c.id === id)?.status;
}

async function crash(system: ActorSystem, address: string): Promise<void> {
  await assert.rejects(ask(system, address, "crash"), ActorCrashedError);
}

Deno.test("Supervisor - starts children in order and stops them in reverse", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  await Supervisor.start(system, "sup", {
    children: specs(log, ["a", "b", "c"]),
  });
  assert.deepEqual(system.liveActors(), ["sup", "sup.a", "sup.b", "sup.c"]);
  await system.stop("sup");
  assert.deepEqual(log.lines, [
    "start:a",
    "start:b",
    "start:c",
    "stop:c",
    "stop:b",
    "stop:a",
  ]);
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("Supervisor - restart type × exit reason matrix", async (t) => {
  const exits: [string, WorkerMsg, ExitReason["kind"]][] = [
    ["normal", "stop", "normal"],
    ["shutdown", "stop_shutdown", "shutdown"],
    ["abnormal", "crash", "error"],
  ];
  const restarted: Record<RestartType, Record<string, boolean>> = {
    permanent: { normal: true, shutdown: true, abnormal: true },
    transient: { normal: false, shutdown: false, abnormal: true },
    temporary: { normal: false, shutdown: false, abnormal: false },
  };
  for (const restart of ["permanent", "transient", "temporary"] as const) {
    for (const [label, msg] of exits) {
      await t.step(`${restart} child, ${label} exit`, async () => {
        const log = new Log();
        const rep = reports();
        await using system = new ActorSystem();
        const sup = await Supervisor.start(system, "sup", {
          intensity: 10,
          children: [{ id: "w", start: workerFactory("w", log), restart }],
          onReport: rep.onReport,
        });
        await ask(system, "sup.w", msg).catch(() => {});
        if (restarted[restart][label]) {
          await until(
            () => log.startsOf("w") === 2 && statusOf(sup, "w") === "running",
            "restart",
          );
          assert.equal(await ask(system, "sup.w", "whoami"), "w#2");
        } else if (restart === "temporary") {
          await until(
            () => sup.countChildren().specs === 0,
            "temporary spec dropped",
          );
          assert.equal(log.startsOf("w"), 1);
        } else {
          await until(() => statusOf(sup, "w") === "stopped", "child stopped");
          assert.equal(log.startsOf("w"), 1);
          assert.deepEqual(sup.countChildren(), {
            specs: 1,
            active: 0,
            supervisors: 0,
            workers: 1,
          });
        }
        // Only abnormal exits are reported.
        assert.equal(
          rep.list.filter((r) => r.errorContext === "child_terminated").length,
          label === "abnormal" ? 1 : 0,
        );
      });
    }
  }
});

Deno.test("Supervisor - one_for_one restarts only the failed child; past intensity it exits", async () => {
  const log = new Log();
  const clock = new FakeClock();
  const escalations: RestartIntensityError[] = [];
  const rep = reports();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    strategy: "one_for_one",
    intensity: 2,
    period: 3_600_000,
    now: clock.now,
    children: specs(log, ["a", "b", "c", "d"]),
    onEscalate: (e) => escalations.push(e),
    onReport: rep.onReport,
  });
  const held = system.ref<WorkerMsg>("sup.b"); // taken before the restart
  await crash(system, "sup.b");
  await until(() =>
    log.startsOf("b") === 2 && statusOf(sup, "b") === "running"
  );
  assert.deepEqual(["a", "b", "c", "d"].map((n) => log.startsOf(n)), [
    1,
    2,
    1,
    1,
  ]);
  assert.equal(await held.ask("whoami"), "b#2", "a ref survives the restart");
  assert.equal(await ask(system, "sup.a", "whoami"), "a#1");

  await crash(system, "sup.b");
  await until(() =>
    log.startsOf("b") === 3 && statusOf(sup, "b") === "running"
  );
  await crash(system, "sup.c"); // third restart within the period: 3 > 2
  const down = await sup.whenDown;
  assert.equal(down.kind, "error");
  assert.ok(
    down.kind === "error" && down.error instanceof RestartIntensityError,
  );
  assert.equal(escalations.length, 1);
  assert.deepEqual(system.liveActors(), []);
  assert.ok(
    rep.list.some((r) =>
      r.errorContext === "shutdown" &&
      r.reason === "reached_max_restart_intensity"
    ),
  );
  assert.deepEqual(
    log.lines.slice(-3),
    ["stop:d", "stop:b", "stop:a"],
    "the rest stop in reverse order",
  );
});

Deno.test("Supervisor - multiple_restarts: the restart window slides", async () => {
  const log = new Log();
  const clock = new FakeClock();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    intensity: 1,
    period: 1000,
    now: clock.now,
    children: specs(log, ["w"]),
    onReport: () => {},
  });
  for (let k = 2; k <= 4; k++) {
    await crash(system, "sup.w");
    await until(() =>
      log.startsOf("w") === k && statusOf(sup, "w") === "running"
    );
    clock.advance(1001); // crashes spaced more than `period` apart never escalate
  }
  assert.deepEqual(system.liveActors(), ["sup", "sup.w"]);
  await crash(system, "sup.w");
  await until(() =>
    log.startsOf("w") === 5 && statusOf(sup, "w") === "running"
  );
  clock.advance(999); // the second crash inside the window escalates
  await crash(system, "sup.w");
  assert.equal((await sup.whenDown).kind, "error");
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("Supervisor - one_for_all restarts every child; no old instance survives", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    strategy: "one_for_all",
    children: [...specs(log, ["a", "b", "c"]), {
      id: "t",
      start: workerFactory("t", log),
      restart: "temporary",
    }],
    onReport: () => {},
  });
  log.lines.length = 0;
  await crash(system, "sup.b");
  await until(() =>
    ["a", "b", "c"].every((n) => log.startsOf(n) === 2) &&
    sup.countChildren().active === 3
  );
  // b's terminate runs on its crash, then the others stop in reverse order and all restart in order.
  assert.deepEqual(log.lines, [
    "stop:b",
    "stop:t",
    "stop:c",
    "stop:a",
    "start:a",
    "start:b",
    "start:c",
  ]);
  for (const n of ["a", "b", "c"]) {
    assert.equal(await ask(system, `sup.${n}`, "whoami"), `${n}#2`);
  }
  assert.equal(
    log.startsOf("t"),
    1,
    "a temporary child stopped by a sibling's death is not restarted",
  );
  assert.deepEqual(sup.whichChildren().map((c) => c.id), ["a", "b", "c"]);
  assert.deepEqual(system.liveActors().toSorted(), [
    "sup",
    "sup.a",
    "sup.b",
    "sup.c",
  ]);
});

Deno.test("Supervisor - rest_for_one restarts the failed child and those after it", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    strategy: "rest_for_one",
    children: specs(log, ["a", "b", "c"]),
    onReport: () => {},
  });
  log.lines.length = 0;
  await crash(system, "sup.b");
  await until(() =>
    log.startsOf("c") === 2 && sup.countChildren().active === 3
  );
  assert.deepEqual(log.lines, ["stop:b", "stop:c", "start:b", "start:c"]);
  assert.deepEqual(
    await Promise.all(
      ["a", "b", "c"].map((n) => ask(system, `sup.${n}`, "whoami")),
    ),
    ["a#1", "b#2", "c#2"],
  );
});

Deno.test("Supervisor - tree: a failure escalates to the parent and restarts only that subtree", async () => {
  const log = new Log();
  const rep = reports();
  await using system = new ActorSystem();
  const sub = (id: string, workers: string[]): ChildSpecInput => ({
    id,
    type: "supervisor",
    start: () =>
      new Supervisor({
        intensity: 0,
        children: specs(log, workers),
        onReport: rep.onReport,
      }),
  });
  const root = await Supervisor.start(system, "root", {
    children: [sub("sub1", ["w1", "w2"]), sub("sub2", ["w3"])],
    onReport: rep.onReport,
  });
  assert.deepEqual(root.countChildren(), {
    specs: 2,
    active: 2,
    supervisors: 2,
    workers: 0,
  });
  assert.equal(root.whichChildren()[0].type, "supervisor");
  await crash(system, "root.sub1.w1"); // intensity 0: sub1 gives up at once
  await until(() =>
    log.startsOf("w2") === 2 && root.countChildren().active === 2 &&
    system.liveActors().length === 6
  );
  assert.equal(await ask(system, "root.sub1.w1", "whoami"), "w1#2");
  assert.equal(await ask(system, "root.sub1.w2", "whoami"), "w2#2");
  assert.equal(
    await ask(system, "root.sub2.w3", "whoami"),
    "w3#1",
    "the other subtree is untouched",
  );
  const escalated = rep.list.find((r) =>
    r.supervisor === "root" && r.errorContext === "child_terminated"
  );
  assert.equal(escalated?.offender?.id, "sub1");
  assert.match(escalated?.reason ?? "", /reached max restart intensity/);
  await system.shutdown();
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("Supervisor - a child that outlasts its shutdown is killed; brutal_kill skips terminate", async () => {
  const log = new Log();
  const rep = reports();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    children: [
      {
        id: "slow",
        start: workerFactory("slow", log, { hangInTerminate: true }),
        shutdown: 20,
      },
      {
        id: "brutal",
        start: workerFactory("brutal", log),
        shutdown: "brutal_kill",
      },
    ],
    onReport: rep.onReport,
  });
  const t0 = performance.now();
  await sup.terminateChild("slow");
  assert.ok(performance.now() - t0 < 1000);
  assert.deepEqual(
    rep.list.map((r) => [r.errorContext, r.reason, r.offender?.id]),
    [["shutdown_error", "killed", "slow"]],
  );
  await sup.terminateChild("brutal");
  assert.deepEqual(log.lines, ["start:slow", "start:brutal", "stop:slow"]);
  assert.deepEqual(sup.whichChildren().map((c) => c.status), [
    "stopped",
    "stopped",
  ]);
  assert.deepEqual(system.liveActors(), ["sup"]);
});

Deno.test("Supervisor - a restart that keeps failing escalates instead of looping", async () => {
  const log = new Log();
  const rep = reports();
  const escalated = Promise.withResolvers<RestartIntensityError>();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    intensity: 3,
    children: [
      ...specs(log, ["a"]),
      {
        id: "bad",
        start: workerFactory("bad", log, { failInit: (n) => n >= 2 }),
      },
    ],
    onEscalate: escalated.resolve,
    onReport: rep.onReport,
  });
  await crash(system, "sup.bad");
  const err = await escalated.promise;
  assert.ok(err instanceof RestartIntensityError);
  assert.match(err.message, /more than 3 restarts in 5000 ms/);
  assert.equal((await sup.whenDown).kind, "error");
  assert.equal(
    log.startsOf("bad"),
    4,
    "1 start + 3 failing restarts, then give up",
  );
  assert.equal(
    rep.list.filter((r) => r.errorContext === "start_error").length,
    3,
  );
  assert.deepEqual(system.liveActors(), [], "its sibling went down with it");
});

Deno.test("Supervisor - a hanging restart loop shows as restarting and can still be shut down", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    intensity: 1_000_000,
    period: 60_000,
    children: [{
      id: "bad",
      start: workerFactory("bad", log, { failInit: (n) => n >= 2 }),
    }],
    onReport: () => {},
  });
  await crash(system, "sup.bad");
  await until(() =>
    log.startsOf("bad") > 5 && statusOf(sup, "bad") === "restarting"
  );
  await assert.rejects(sup.restartChild("bad"), ConflictError);
  await assert.rejects(sup.deleteChild("bad"), ConflictError);
  const t0 = performance.now();
  assert.deepEqual(await system.stop("sup"), { kind: "shutdown" });
  assert.ok(performance.now() - t0 < 1000);
  const startsAtStop = log.startsOf("bad");
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(log.startsOf("bad"), startsAtStop, "no restart after shutdown");
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("Supervisor - a child failing at startup fails the supervisor's start", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  const sup = new Supervisor({
    children: [...specs(log, ["a"]), {
      id: "bad",
      start: workerFactory("bad", log, { failInit: () => true }),
    }, ...specs(log, ["c"])],
    onReport: () => {},
  });
  await assert.rejects(system.spawn("sup", () => sup), /bad init failed/);
  assert.deepEqual(log.lines, ["start:a", "stop:a"]);
  assert.equal(log.startsOf("c"), 0);
  assert.deepEqual(system.liveActors(), []);
  assert.equal((await sup.whenDown).kind, "error");
});

Deno.test("Supervisor - startChild, terminateChild, restartChild, deleteChild, count and which", async () => {
  const log = new Log();
  await using system = new ActorSystem();
  const sup = await Supervisor.start(system, "sup", {
    children: specs(log, ["a"]),
  });
  const ref = await sup.startChild({
    id: "b",
    start: workerFactory("b", log),
    address: "elsewhere.b",
  });
  assert.equal(ref.address, "elsewhere.b");
  assert.equal(await ref.ask("whoami"), "b#1");
  await assert.rejects(
    sup.startChild({ id: "b", start: workerFactory("b", log) }),
    ConflictError,
  );
  await assert.rejects(
    sup.startChild({
      id: "x",
      start: workerFactory("x", log, { failInit: () => true }),
    }),
    /x init failed/,
  );
  assert.deepEqual(sup.countChildren(), {
    specs: 2,
    active: 2,
    supervisors: 0,
    workers: 2,
  });

  await assert.rejects(sup.deleteChild("a"), ConflictError);
  await assert.rejects(sup.restartChild("a"), ConflictError);
  await sup.terminateChild("a");
  assert.deepEqual(sup.whichChildren(), [
    {
      id: "a",
      address: "sup.a",
      type: "worker",
      restart: "permanent",
      status: "stopped",
    },
    {
      id: "b",
      address: "elsewhere.b",
      type: "worker",
      restart: "permanent",
      status: "running",
    },
  ]);
  assert.deepEqual(sup.countChildren(), {
    specs: 2,
    active: 1,
    supervisors: 0,
    workers: 2,
  });
  assert.equal((await sup.restartChild("a")).address, "sup.a");
  assert.equal(await ask(system, "sup.a", "whoami"), "a#2");
  await sup.terminateChild("a");
  await sup.deleteChild("a");
  assert.deepEqual(sup.whichChildren().map((c) => c.id), ["b"]);
  await assert.rejects(sup.terminateChild("a"), NotFoundError);
  await assert.rejects(sup.restartChild("nope"), NotFoundError);

  // The same operations are served as messages, for callers holding a ref.
  const remote = system.ref("sup");
  assert.deepEqual(
    await remote.ask({ op: "count_children" }),
    sup.countChildren(),
  );
  assert.equal(await remote.ask({ op: "terminate_child", id: "b" }), undefined);
  assert.equal(
    await remote.ask({ op: "restart_child", id: "b" }),
    "elsewhere.b",
  );
  await assert.rejects(
    remote.ask({ op: "delete_child", id: "zzz" }),
    NotFoundError,
  );
  await assert.rejects(remote.ask({ op: "explode" }), InvalidArgumentError);
  assert.deepEqual(system.liveActors(), ["sup", "elsewhere.b"]);
  await system.shutdown();
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("Supervisor - child specs are checked up front with OTP's defaults", () => {
  const start = () => ({ receive: () => 1 });
  const check = (opts: SupervisorOptions, field: string, pattern: RegExp) =>
    assert.throws(() => new Supervisor(opts), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      return true;
    });
  check(
    { children: [{ start } as never] },
    "id",
    /child spec at index 0: missing id \(missing_id\)/,
  );
  check({ children: [{ id: "w" } as never] }, "start", /missing start/);
  check(
    { children: [{ id: "w", start, restart: "forever" as never }] },
    "restart",
    /invalid_restart_type.*got "forever"/,
  );
  check(
    { children: [{ id: "w", start, shutdown: -5 }] },
    "shutdown",
    /shutdown must be an integer >= 0.*got -5/,
  );
  check(
    { children: [{ id: "w", start, type: "boss" as never }] },
    "type",
    /got "boss"/,
  );
  check({ children: [{ id: "a b", start }] }, "id", /\[A-Za-z0-9_-\]/);
  check(
    { children: [{ id: "w", start }, { id: "w", start }] },
    "id",
    /duplicate_child_name/,
  );
  check(
    { children: [{ id: "w", start, address: "bad address" }] },
    "address",
    /dot-separated/,
  );
  check({ strategy: "simple_one_for_one" as never }, "strategy", /one_for_one/);
  check(
    { intensity: -1 },
    "intensity",
    /intensity must be an integer >= 0: got -1/,
  );
  check({ period: 0 }, "period", /period must be an integer > 0/);

  const sup = new Supervisor({
    children: [{ id: "w", start }, { id: "s", start, type: "supervisor" }],
  });
  assert.deepEqual(sup.flags, {
    strategy: "one_for_one",
    intensity: 1,
    period: 5000,
  });
  assert.deepEqual(sup.whichChildren().map((c) => [c.restart, c.type]), [[
    "permanent",
    "worker",
  ], ["permanent", "supervisor"]]);
});

Deno.test("Supervisor - liveActors() is empty after shutting a whole tree down", async () => {
  const log = new Log();
  const system = new ActorSystem();
  await Supervisor.start(system, "root", {
    strategy: "one_for_all",
    children: [
      ...specs(log, ["a"]),
      {
        id: "mid",
        type: "supervisor",
        start: () => new Supervisor({ children: specs(log, ["b", "c"]) }),
      },
      ...specs(log, ["d"]),
    ],
  });
  await system.spawn("loose", workerFactory("loose", log));
  assert.equal(system.liveActors().length, 7);
  await system.shutdown();
  assert.deepEqual(system.liveActors(), []);
  assert.deepEqual(log.lines.filter((l) => l.startsWith("stop")), [
    "stop:loose",
    "stop:d",
    "stop:c",
    "stop:b",
    "stop:a",
  ]);
});
