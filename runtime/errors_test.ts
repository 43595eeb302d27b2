import assert from "node:assert/strict";
import {
  ActorCrashedError,
  ActorStoppedError,
  ActorTimeoutError,
  BiosError,
  ClientClosedError,
  ConflictError,
  errorFromWire,
  errors,
  errorToWire,
  InvalidArgumentError,
  NotFoundError,
  registerWireError,
  RestartIntensityError,
  StorageError,
  UnknownActorError,
} from "./errors.ts";
import { decode, encode } from "./codec.ts";

Deno.test("errors set name and code, and keep cause", () => {
  const cause = new Error("root");
  const cases: [BiosError, string, string][] = [
    [
      new InvalidArgumentError("rank", "rank must be in [1, 128]: got 0", {
        cause,
      }),
      "InvalidArgumentError",
      "invalid_argument",
    ],
    [new NotFoundError("no run r1"), "NotFoundError", "not_found"],
    [new ConflictError("taken"), "ConflictError", "conflict"],
    [new ClientClosedError("ServiceClient"), "ClientClosedError", "conflict"],
    [new ActorTimeoutError("a", 10), "ActorTimeoutError", "actor_timeout"],
    [new ActorStoppedError("a"), "ActorStoppedError", "actor_stopped"],
    [new UnknownActorError("a"), "UnknownActorError", "unknown_actor"],
    [new ActorCrashedError("a", "boom"), "ActorCrashedError", "actor_crashed"],
    [
      new RestartIntensityError("s", 1, 5000),
      "RestartIntensityError",
      "restart_intensity",
    ],
  ];
  for (const [e, name, code] of cases) {
    assert.equal(e.name, name);
    assert.equal(e.code, code);
    assert.ok(e instanceof BiosError && e instanceof Error);
    assert.equal(errors[name as keyof typeof errors], e.constructor);
  }
  assert.equal(cases[0][0].cause, cause);
  assert.equal((cases[0][0] as InvalidArgumentError).field, "rank");
});

Deno.test("errorFromWire() rebuilds every runtime class through the codec", () => {
  const originals: BiosError[] = [
    new InvalidArgumentError("rank", "rank must be in [1, 128]: got 0"),
    new NotFoundError("no run r1"),
    new ConflictError("taken"),
    new ActorTimeoutError("a.b", 10),
    new ActorStoppedError("a.b"),
    new UnknownActorError("a.b"),
    new ActorCrashedError("a.b", "boom"),
    new RestartIntensityError("sup", 1, 5000),
    new ClientClosedError("SamplingClient"),
  ];
  for (const e of originals) {
    const back = errorFromWire(decode(encode(errorToWire(e))) as never);
    assert.equal(back.constructor, e.constructor);
    assert.ok(back instanceof BiosError);
    assert.equal(back.name, e.name);
    assert.equal(back.message, e.message);
    assert.equal((back as BiosError).code, e.code);
    assert.match(back.stack ?? "", /remote actor/);
  }
  const field = errorFromWire(
    errorToWire(originals[0]),
  ) as InvalidArgumentError;
  assert.equal(field.field, "rank");
  const addr = errorFromWire(errorToWire(originals[4])) as ActorStoppedError;
  assert.equal(addr.address, "a.b");
});

Deno.test("a StorageError crosses the codec as itself, with retryable", () => {
  for (const retryable of [true, false]) {
    const e = new StorageError("saving bios://r/weights/a failed", retryable);
    const back = errorFromWire(decode(encode(errorToWire(e))) as never);
    assert.ok(back instanceof StorageError);
    assert.equal(back.code, "storage");
    assert.equal(back.retryable, retryable);
    assert.equal(back.message, e.message);
  }
});

Deno.test("errorToWire() maps non-Bios errors to code internal", () => {
  assert.deepEqual(errorToWire(new TypeError("bad")), {
    name: "TypeError",
    message: "bad",
    code: "internal",
  });
  assert.deepEqual(errorToWire("str"), {
    name: "Error",
    message: "str",
    code: "internal",
  });
  const back = errorFromWire({
    name: "TypeError",
    message: "bad",
    code: "internal",
  });
  assert.ok(!(back instanceof BiosError));
  assert.equal(back.message, "bad");
});

Deno.test("errorFromWire() keeps an unknown Bios error's name and code", () => {
  const back = errorFromWire({
    name: "QuotaError",
    message: "too many",
    code: "quota",
  });
  assert.ok(back instanceof BiosError);
  assert.equal(back.name, "QuotaError");
  assert.equal((back as BiosError).code, "quota");
});

Deno.test("registerWireError() lets a domain error come back as itself", () => {
  class ShardTimeoutError extends BiosError {
    constructor(message: string) {
      super("shard_timeout", message);
      this.name = "ShardTimeoutError";
    }
  }
  registerWireError(ShardTimeoutError);
  const back = errorFromWire(errorToWire(new ShardTimeoutError("slow")));
  assert.ok(back instanceof ShardTimeoutError);
});
