/**
 * Worker: which backend `selectBackend()` picks on this machine, and why.
 *
 * `deno run -A bench/probe_worker.ts` prints one JSON line:
 * `{"backend", "device", "reason"}`.
 *
 * @module
 */
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit } from "./timing.ts";

if (import.meta.main) {
  const opened = await openBackend("default");
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    emit({ backend: be.name, device: be.device, reason: opened.reason ?? "" });
    closeBackend(be);
  }
}
