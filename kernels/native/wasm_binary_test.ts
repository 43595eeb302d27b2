import assert from "node:assert/strict";
import { forLoop, I32, op, sleb, uleb, wasmModule } from "./wasm_binary.ts";

Deno.test("uleb and sleb encode LEB128", () => {
  assert.deepEqual(uleb(0), [0]);
  assert.deepEqual(uleb(127), [0x7f]);
  assert.deepEqual(uleb(228), [0xe4, 0x01]);
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(sleb(0), [0]);
  assert.deepEqual(sleb(-1), [0x7f]);
  assert.deepEqual(sleb(63), [0x3f]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]);
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
});

Deno.test("wasmModule builds a valid module whose loop runs", () => {
  // fill(ptr, bytes): f32 1.5 at every 4 bytes of [ptr, ptr + bytes)
  const [ptr, bytes, i] = [0, 1, 2];
  const bytesOf = wasmModule([{
    name: "fill",
    params: [I32, I32],
    locals: [I32],
    code: forLoop(i, op.i32Const(0), bytes, 4, [
      ...op.localGet(ptr),
      ...op.localGet(i),
      ...op.i32Add,
      ...op.f32Const(1.5),
      ...op.f32Store(),
    ]),
  }], 1);
  assert.ok(WebAssembly.validate(bytesOf));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytesOf), {});
  const mem = inst.exports.memory as WebAssembly.Memory;
  (inst.exports.fill as (p: number, n: number) => void)(8, 12);
  assert.deepEqual(
    [...new Float32Array(mem.buffer, 0, 6)],
    [0, 0, 1.5, 1.5, 1.5, 0],
  );
});
