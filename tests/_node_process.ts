/**
 * A Bios node in a process of its own (`actors/node_main.ts`) for the tests
 * that run a cluster: started on a NATS URL, awaited until it prints its
 * ready line, stopped by signal.
 *
 * @module
 */
import { ensureTinyModels } from "./_helpers.ts";

/** A running node process. */
export interface NodeProcess {
  /** The process. */
  child: Deno.ChildProcess;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/**
 * Starts a node on `url` with `args` added (checkpoint folder, flags) and
 * `env` (default: the tiny test models' catalog as `BIOS_MODELS`); resolves
 * once it is ready.
 */
export async function startNodeProcess(
  url: string,
  args: readonly string[] = [],
  env?: Record<string, string>,
): Promise<NodeProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      new URL("../actors/node_main.ts", import.meta.url).pathname,
      "--nats",
      url,
      ...args,
    ],
    env: env ?? { BIOS_MODELS: await ensureTinyModels() },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (!text.includes('"ready":true') && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  if (!text.includes('"ready":true')) {
    try {
      child.kill("SIGKILL");
    } catch { /* it exited by itself (a node that refused to start) */ }
    const err = await new Response(child.stderr).text();
    throw new Error(`the node never got ready: ${text} ${err}`);
  }
  // Keep reading both pipes so the node never blocks on a full one.
  const drain = (r: ReadableStreamDefaultReader<unknown>) =>
    (async () => {
      while (!(await r.read()).done) { /* discard */ }
    })().catch(() => {});
  drain(reader);
  drain(child.stderr.getReader());
  let exited: Promise<number> | undefined;
  return {
    child,
    stop(signal: Deno.Signal = "SIGTERM") {
      exited ??= (async () => {
        try {
          child.kill(signal);
        } catch { /* already exited */ }
        return (await child.status).code;
      })();
      return exited;
    },
  };
}
