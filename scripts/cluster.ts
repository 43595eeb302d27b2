/**
 * A local Bios cluster to try: a nats-server on loopback, with JetStream
 * (its data under `<checkpoint-dir>/jetstream`), and N node processes joined
 * by it; the nodes keep checkpoints in the server's JetStream object store,
 * so any node loads what another saved.
 *
 * ```sh
 * deno task cluster [--nodes 3] [--port 4222] [--checkpoint-dir DIR]
 * ```
 *
 * It prints `{"ready":true,"nats":"nats://127.0.0.1:4222","nodes":3}` once
 * every node answers; then point a script at it with
 * `new bios.ServiceClient({ nats: "nats://127.0.0.1:4222" })`. Ctrl-C (or
 * SIGTERM) drains the nodes, stops the server and exits 0.
 *
 * @module
 */
import { biosHome } from "../runtime/home.ts";

interface ClusterArgs {
  nodes: number;
  port: number;
  checkpointDir: string;
}

function parseArgs(args: readonly string[]): ClusterArgs {
  const out: ClusterArgs = {
    nodes: 3,
    port: 4222,
    checkpointDir: `${biosHome()}/runs`,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--nodes" || flag === "--port") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < (flag === "--nodes" ? 1 : 0)) {
        throw new Error(`${flag} must be an integer: got ${value}`);
      }
      if (flag === "--nodes") out.nodes = n;
      else out.port = n;
    } else if (flag === "--checkpoint-dir") out.checkpointDir = value;
    else {
      throw new Error(
        `unknown flag ${flag}: usage [--nodes N] [--port P] [--checkpoint-dir DIR]`,
      );
    }
  }
  return out;
}

/** Waits until a process prints a line holding `"ready":true`. */
async function ready(child: Deno.ChildProcess, what: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes('"ready":true')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${what} exited before it was ready`);
    text += value;
  }
  // Keep draining its output so that the pipe never fills.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

if (import.meta.main) {
  let args: ClusterArgs;
  try {
    args = parseArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const url = `nats://127.0.0.1:${args.port}`;
  const server = new Deno.Command("nats-server", {
    args: [
      "-a",
      "127.0.0.1",
      "-p",
      String(args.port),
      "-js",
      "-sd",
      `${args.checkpointDir}/jetstream`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitForPort(args.port);
  const nodeMain = new URL("../actors/node_main.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const nodes = Array.from(
    { length: args.nodes },
    (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `--config=${config}`,
          nodeMain,
          "--nats",
          url,
          "--checkpoint-dir",
          args.checkpointDir,
          "--name",
          `node-${i + 1}`,
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn(),
  );
  await Promise.all(nodes.map((n, i) => ready(n, `node-${i + 1}`)));
  console.log(JSON.stringify({ ready: true, nats: url, nodes: args.nodes }));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const n of nodes) n.kill("SIGTERM");
    const codes = await Promise.all(nodes.map((n) => n.status));
    server.kill("SIGTERM");
    await server.status;
    Deno.exit(codes.every((c) => c.code === 0) ? 0 : 1);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
