/**
 * The HTTP gateway as a real process, for the tests that speak to it over
 * HTTP: `deno task serve` started on a free port (`--port 0`) with the tiny
 * test models, awaited until it prints its ready line, stopped by SIGTERM to
 * the gateway's own process (`deno task` does not pass signals on).
 *
 * @module
 */
import { ensureTinyModels, testDeployment } from "./_helpers.ts";

/** A running gateway. */
export interface GatewayProcess {
  /** Its base URL, e.g. `http://127.0.0.1:41234` (the SDK's `base_url`). */
  url: string;
  /** The gateway's own process id (not the `deno task` wrapper's). */
  pid: number;
  /** Its checkpoint folder (temporary, removed by `stop`). */
  checkpointDir: string;
  /**
   * Stop it (SIGTERM, or SIGKILL for a crash), wait for it, remove its
   * folder; resolves with its exit code.
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<number>;
}

/**
 * Run `deno task serve` with `args` (after `--port 0`, and `--checkpoint-dir`
 * a temporary folder unless `args` joins a cluster with `--nats`)
 * and `env` added; resolves once it listens. The result of a gateway that
 * refuses to start is a thrown error with its stderr.
 */
export async function startGateway(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const checkpointDir = await Deno.makeTempDir({ prefix: "bios-gw-ckpt-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      "serve",
      "--port",
      "0",
      // On a cluster the nodes keep the checkpoints.
      ...(args.includes("--nats") ? [] : ["--checkpoint-dir", checkpointDir]),
      ...args,
    ],
    env: { BIOS_MODELS: await ensureTinyModels(), ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (!text.includes("\n") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const line = text.split("\n").find((l) => l.startsWith('{"ready":true'));
  if (!line) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    const err = await new Response(child.stderr).text();
    await child.status;
    await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
    throw new Error(`the gateway did not start: ${text}${err}`);
  }
  const ready = JSON.parse(line) as { pid: number; url: string };
  // Keep reading both pipes so the gateway never blocks on a full one.
  const drain = (r: ReadableStreamDefaultReader<unknown>) =>
    (async () => {
      while (!(await r.read()).done) { /* discard */ }
    })().catch(() => {});
  drain(reader);
  const stderr = child.stderr.getReader();
  drain(stderr);
  let stopped: Promise<number> | undefined;
  return {
    url: ready.url,
    pid: ready.pid,
    checkpointDir,
    stop(signal = "SIGTERM") {
      stopped ??= (async () => {
        try {
          Deno.kill(ready.pid, signal);
        } catch { /* already gone */ }
        const code = (await child.status).code;
        // The task's own process exits first: wait for the gateway too.
        for (let i = 0; i < 200; i++) {
          try {
            Deno.kill(ready.pid, "SIGCONT");
          } catch {
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
        return code;
      })();
      return stopped;
    },
  };
}

/**
 * {@linkcode startGateway} on the test deployment: with
 * `BIOS_TEST_DEPLOYMENT=nats`, a nats-server and a node process are started
 * for it (and stopped with it), and the gateway joins them with `--nats`;
 * otherwise it runs its embedded node.
 */
export async function startTestGateway(
  args: readonly string[],
): Promise<GatewayProcess> {
  if (testDeployment() !== "nats") return await startGateway(args);
  const { NatsServer } = await import("../runtime/_nats_server.ts");
  const { startNodeProcess } = await import("./_node_process.ts");
  const server = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "bios-gw-node-" });
  const cleanUp = async () => {
    await server.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  let node;
  let gw;
  try {
    node = await startNodeProcess(server.url, ["--checkpoint-dir", dir]);
    gw = await startGateway([...args, "--nats", server.url]);
  } catch (e) {
    await node?.stop("SIGTERM");
    await cleanUp();
    throw e;
  }
  const gateway = gw;
  const theNode = node;
  return {
    url: gateway.url,
    pid: gateway.pid,
    checkpointDir: dir,
    async stop(signal) {
      const code = await gateway.stop(signal);
      await theNode.stop("SIGTERM");
      await cleanUp();
      return code;
    },
  };
}

/**
 * Run the gateway with `args` expecting it to refuse to start; resolves
 * with its exit code and stderr.
 */
export async function gatewayRefusal(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      "serve",
      "--port",
      "0",
      ...args,
    ],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}
