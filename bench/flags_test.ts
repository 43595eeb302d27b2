import assert from "node:assert/strict";
import { FlagError, Flags } from "./flags.ts";

Deno.test("Flags: reads --name value, --name=value and bare switches", () => {
  const f = new Flags([
    "--backend",
    "native",
    "--sizes=512,1024",
    "--quick",
    "--seconds",
    "0.5",
  ]);
  assert.equal(f.str("backend"), "native");
  assert.deepEqual(f.ints("sizes"), [512, 1024]);
  assert.equal(f.has("quick"), true);
  assert.equal(f.has("slow"), false);
  assert.equal(f.num("seconds", 2), 0.5);
  assert.equal(f.num("missing", 2), 2);
  assert.equal(f.int("batch", 8), 8);
});

Deno.test("Flags: rejects malformed values, naming the flag", () => {
  assert.throws(() => new Flags(["native"]), FlagError);
  assert.throws(
    () => new Flags(["--batch", "0"]).int("batch"),
    /--batch must be a positive integer: got "0"/,
  );
  assert.throws(
    () => new Flags(["--sizes", "512,x"]).ints("sizes"),
    /--sizes must be a positive integer/,
  );
  assert.throws(
    () => new Flags(["--seconds", "-1"]).num("seconds", 1),
    /--seconds must be a finite number/,
  );
  assert.throws(() => new Flags([]).str("backend"), /--backend is required/);
});
