import assert from "node:assert/strict";
import type { Actor, ActorContext, ExitReason } from "./actor.ts";
import { ActorSystem } from "./system.ts";
import { LocalTransport } from "./local_transport.ts";
import {
  ActorCrashedError,
  ActorStoppedError,
  ActorTimeoutError,
  CodecError,
  ConflictError,
  InvalidArgumentError,
  UnknownActorError,
} from "./errors.ts";
import { Log, until, workerFactory, type WorkerMsg } from "./_test_util.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("ActorSystem - one message at a time, in arrival order, with async handlers", async () => {
  await using system = new ActorSystem();
  const seen: number[] = [];
  let active = 0;
  let maxActive = 0;
  const ref = await system.spawn<number, number[]>("seq", () => ({
    async receive(n: number): Promise<number[]> {
      active++;
      maxActive = Math.max(maxActive, active);
      await tick(n % 3); // later messages may finish sooner if run concurrently
      seen.push(n);
      active--;
      return [...seen];
    },
  }));
  const asks: Promise<number[]>[] = [];
  for (let i = 0; i < 12; i++) {
    if (i % 2 === 0) ref.tell(i);
    else asks.push(ref.ask(i));
  }
  const replies = await Promise.all(asks);
  assert.deepEqual(seen, [...Array(12).keys()]);
  assert.equal(maxActive, 1);
  // Each reply saw exactly the messages before it.
  replies.forEach((r, k) => assert.deepEqual(r, [...Array(2 * k + 2).keys()]));
});

Deno.test("ActorSystem - ask times out with ActorTimeoutError", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const ref = await system.spawn("w", workerFactory("w", log), {
    shutdown: 20,
  });
  const start = performance.now();
  await assert.rejects(ref.ask("hang", { timeoutMs: 30 }), ActorTimeoutError);
  assert.ok(performance.now() - start < 500);
  await assert.rejects(ref.ask("ping", { timeoutMs: 0 }), InvalidArgumentError);
});

Deno.test("ActorSystem - ask to an unknown or a stopped actor rejects promptly", async () => {
  await using system = new ActorSystem();
  const start = performance.now();
  await assert.rejects(system.ref("nobody.here").ask("x"), UnknownActorError);
  const log = new Log();
  const ref = await system.spawn("w", workerFactory("w", log));
  assert.equal(await ref.ask("ping"), "pong");
  assert.deepEqual(await system.stop("w"), { kind: "shutdown" });
  await assert.rejects(ref.ask("ping"), ActorStoppedError);
  ref.tell("ping"); // dropped, no throw
  assert.ok(
    performance.now() - start < 500,
    "never waits for the 30 s default",
  );
  assert.deepEqual(log.lines, ["start:w", "stop:w"]);
});

Deno.test("ActorSystem - a BiosError goes back to the asker and the actor lives on", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const exits: ExitReason[] = [];
  const ref = await system.spawn("w", workerFactory("w", log), {
    onExit: (r) => exits.push(r),
  });
  await assert.rejects(ref.ask("user_error"), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.field, "x");
    assert.equal(e.message, "x must be positive: got -1");
    return true;
  });
  assert.equal(await ref.ask("whoami"), "w#1");
  assert.deepEqual(exits, []);
});

Deno.test("ActorSystem - any other error crashes the actor; queued asks get ActorStoppedError", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const exit = Promise.withResolvers<ExitReason>();
  const ref = await system.spawn("w", workerFactory("w", log), {
    onExit: exit.resolve,
  });
  const crash = ref.ask("crash");
  const queued = [ref.ask("ping"), ref.ask("ping")];
  await assert.rejects(crash, (e: unknown) => {
    assert.ok(e instanceof ActorCrashedError);
    assert.match(e.message, /actor "w" crashed: w boom/);
    return true;
  });
  for (const q of queued) await assert.rejects(q, ActorStoppedError);
  const reason = await exit.promise;
  assert.equal(reason.kind, "error");
  assert.equal(reason.kind === "error" && reason.error.message, "w boom");
  assert.deepEqual(system.liveActors(), []);
  assert.deepEqual(
    log.lines,
    ["start:w", "stop:w"],
    "terminate runs after a crash",
  );
  await assert.rejects(ref.ask("ping"), ActorStoppedError);
});

Deno.test("ActorSystem - ctx.stop() exits normally after the current message", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const exit = Promise.withResolvers<ExitReason>();
  const ref = await system.spawn("w", workerFactory("w", log), {
    onExit: exit.resolve,
  });
  const stopping = ref.ask("stop");
  const after = ref.ask("ping");
  assert.equal(await stopping, "stopping");
  await assert.rejects(after, ActorStoppedError);
  assert.deepEqual(await exit.promise, { kind: "normal" });
});

Deno.test("ActorSystem.spawn() rejects when init throws and frees the address", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  await assert.rejects(
    system.spawn("w", workerFactory("w", log, { failInit: (n) => n === 1 })),
    /w init failed/,
  );
  assert.deepEqual(system.liveActors(), []);
  await assert.rejects(system.ref("w").ask("ping"), UnknownActorError);
  const ref = await system.spawn(
    "w",
    workerFactory("w", log, { failInit: (n) => n === 1 }),
  );
  assert.equal(await ref.ask("whoami"), "w#2");
});

Deno.test("ActorSystem.spawn() checks the address and refuses a taken one", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  await system.spawn("a.b-c_1", workerFactory("w", log));
  await assert.rejects(
    system.spawn("a.b-c_1", workerFactory("w", log)),
    ConflictError,
  );
  for (const bad of ["", "a..b", "a b", "a.*", ".a", "x".repeat(300)]) {
    await assert.rejects(
      system.spawn(bad, workerFactory("w", log)),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.equal(e.field, "address");
        return true;
      },
    );
  }
});

Deno.test("ActorSystem - messages sent during init wait for it", async () => {
  await using system = new ActorSystem();
  const order: string[] = [];
  const ref = await system.spawn<string, string>("w", () => ({
    async init(ctx: ActorContext) {
      ctx.self.tell("early");
      await tick(5);
      order.push("init done");
    },
    receive(m: string) {
      order.push(m);
      return m;
    },
  }));
  assert.equal(await ref.ask("late"), "late");
  assert.deepEqual(order, ["init done", "early", "late"]);
});

Deno.test("ActorSystem - replies travel through the codec", async () => {
  await using system = new ActorSystem();
  const ref = await system.spawn<string, unknown>("w", () => ({
    receive(m: string): unknown {
      return m === "tensor" ? { w: new Float32Array([1, 2]) } : () => 1;
    },
  }));
  const got = await ref.ask<{ w: Float32Array }>("tensor");
  assert.ok(got.w instanceof Float32Array);
  assert.deepEqual(got.w, new Float32Array([1, 2]));
  await assert.rejects(ref.ask("function"), CodecError);
  assert.deepEqual(
    system.liveActors(),
    ["w"],
    "an unencodable reply does not crash",
  );
  assert.throws(() => ref.tell(Symbol("s") as never), CodecError);
});

Deno.test("ActorSystem.stop() kills an actor whose terminate outlasts its shutdown", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  await system.spawn("w", workerFactory("w", log, { hangInTerminate: true }), {
    shutdown: 20,
  });
  assert.deepEqual(await system.stop("w"), { kind: "killed" });
  await system.spawn("v", workerFactory("v", log, { hangInTerminate: true }), {
    shutdown: "infinity",
  });
  assert.deepEqual(await system.stop("v", { shutdown: "brutal_kill" }), {
    kind: "killed",
  });
  assert.deepEqual(system.liveActors(), []);
});

Deno.test("ActorSystem.stop() answers an abandoned in-flight ask with ActorStoppedError", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const ref = await system.spawn("w", workerFactory("w", log), {
    shutdown: 10,
  });
  const hung = ref.ask("hang", { timeoutMs: 5000 });
  await tick(1);
  assert.deepEqual(await system.stop("w"), { kind: "killed" });
  await assert.rejects(hung, ActorStoppedError);
});

Deno.test("ActorSystem.shutdown() stops in reverse start order and leaves nothing", async () => {
  const log = new Log();
  {
    await using system = new ActorSystem();
    for (const name of ["a", "b", "c"]) {
      await system.spawn(name, workerFactory(name, log));
    }
    assert.deepEqual(system.liveActors(), ["a", "b", "c"]);
    await system.shutdown();
    assert.deepEqual(system.liveActors(), []);
    await assert.rejects(
      system.spawn("d", workerFactory("d", log)),
      ConflictError,
    );
  }
  assert.deepEqual(log.lines, [
    "start:a",
    "start:b",
    "start:c",
    "stop:c",
    "stop:b",
    "stop:a",
  ]);
});

Deno.test("ActorSystem.monitor() and whenExited() see the exit reason", async () => {
  await using system = new ActorSystem();
  const log = new Log();
  const ref = await system.spawn("w", workerFactory("w", log));
  const seen: ExitReason[] = [];
  system.monitor("w", (r) => seen.push(r));
  const cancelled = system.monitor(
    "w",
    () => assert.fail("cancelled watch fired"),
  );
  cancelled();
  const exited = system.whenExited("w");
  ref.tell("stop_shutdown");
  assert.deepEqual(await exited, { kind: "shutdown" });
  await until(() => seen.length === 1);
  assert.deepEqual(seen, [{ kind: "shutdown" }]);
  assert.throws(() => system.monitor("w", () => {}), UnknownActorError);
});

Deno.test("ActorSystem - two systems on one transport talk by address", async () => {
  const transport = new LocalTransport();
  await using nodeA = new ActorSystem({ transport, name: "a" });
  await using nodeB = new ActorSystem({ transport, name: "b" });
  const counter: Actor<number, number> & { n: number } = {
    n: 0,
    receive(k: number) {
      return (this.n += k);
    },
  };
  await nodeA.spawn("shard.0", () => counter);
  const remote = nodeB.ref<number, number>("shard.0");
  remote.tell(2);
  assert.equal(await remote.ask(3), 5);
  await assert.rejects(nodeB.spawn("shard.0", () => counter), ConflictError);
  await nodeA.shutdown();
  await assert.rejects(remote.ask(1), UnknownActorError);
  await transport.close();
});

Deno.test("ActorSystem - a tell from inside receive never re-enters the actor", async () => {
  await using system = new ActorSystem();
  const trace: string[] = [];
  const ref = await system.spawn<WorkerMsg | string, string>("w", () => ({
    receive(m: string, ctx: ActorContext): string {
      trace.push(`in:${m}`);
      if (m === "first") ctx.self.tell("second");
      trace.push(`out:${m}`);
      return m;
    },
  }));
  await ref.ask("first");
  await until(() => trace.length === 4);
  assert.deepEqual(trace, ["in:first", "out:first", "in:second", "out:second"]);
});
