import assert from "node:assert/strict";
import { BackendUnavailableError, selectBackend } from "./select.ts";

const env = (v?: string) => ({
  get: (k: string) => (k === "BIOS_BACKEND" ? v : undefined),
});

Deno.test("selectBackend: BIOS_BACKEND=cpu forces the cpu backend", async () => {
  const { backend, reason } = await selectBackend(env("cpu"));
  assert.equal(backend.name, "cpu");
  assert.equal(reason, "BIOS_BACKEND=cpu");
});

Deno.test("selectBackend: an unknown BIOS_BACKEND names the choices", async () => {
  await assert.rejects(
    selectBackend(env("tpu")),
    (e: unknown) =>
      e instanceof BackendUnavailableError &&
      /one of cpu, native, webgpu: got "tpu"/.test(e.message),
  );
});

Deno.test({
  name:
    "selectBackend: without BIOS_BACKEND it picks one and says why in one line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { backend, reason } = await selectBackend(env(undefined));
    assert.ok(["cpu", "native", "webgpu"].includes(backend.name));
    assert.ok(!reason.includes("\n") && reason.length > 0);
    if (backend.name !== "webgpu") assert.match(reason, /GPU adapter/);
    if (backend.name === "cpu") assert.match(reason, /libopenblas0-pthread/);
  },
});
