import assert from "node:assert/strict";
import { LocalTransport } from "./local_transport.ts";
import {
  ActorStoppedError,
  ActorTimeoutError,
  ConflictError,
  UnknownActorError,
} from "./errors.ts";

Deno.test("LocalTransport.request() rejects at once for an unknown address", async () => {
  const t = new LocalTransport();
  const start = performance.now();
  await assert.rejects(
    t.request("nobody", new Uint8Array(), 10_000),
    UnknownActorError,
  );
  assert.ok(performance.now() - start < 100);
  await t.close();
});

Deno.test("LocalTransport.request() times out with ActorTimeoutError", async () => {
  const t = new LocalTransport();
  t.register("slow", () => new Promise(() => {}));
  await assert.rejects(
    t.request("slow", new Uint8Array(), 20),
    ActorTimeoutError,
  );
  await t.close();
});

Deno.test("LocalTransport.register() refuses a taken address", async () => {
  const t = new LocalTransport();
  t.register("a", () => Promise.resolve(undefined));
  assert.throws(
    () => t.register("a", () => Promise.resolve(undefined)),
    ConflictError,
  );
  t.unregister("a");
  t.register("a", () => Promise.resolve(undefined));
  await t.close();
});

Deno.test("LocalTransport.send() delivers later, in order, and drops unknown addresses", async () => {
  const t = new LocalTransport();
  const got: number[] = [];
  t.register("a", (b) => {
    got.push(b[0]);
    return Promise.resolve(undefined);
  });
  for (let i = 0; i < 5; i++) t.send("a", new Uint8Array([i]));
  t.send("nobody", new Uint8Array([9]));
  assert.deepEqual(got, []); // never inside the sender's call
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  await t.close();
});

Deno.test("LocalTransport.close() rejects pending requests", async () => {
  const t = new LocalTransport();
  t.register("slow", () => new Promise(() => {}));
  const p = t.request("slow", new Uint8Array(), 10_000);
  await new Promise((r) => setTimeout(r, 0));
  await t.close();
  await assert.rejects(p, ActorStoppedError);
  await assert.rejects(
    t.request("slow", new Uint8Array(), 10),
    UnknownActorError,
  );
});
