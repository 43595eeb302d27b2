// A real nats-server for the tests, on a free loopback port, that a test can
// kill and start again on the same port. Without nats-server installed the
// tests say so in one line and are skipped, unless BIOS_REQUIRE_ALL=1.

/** Why nats-server cannot run here, or null when it can. */
export async function natsServerMissing(): Promise<string | null> {
  try {
    const out = await new Deno.Command("nats-server", { args: ["--version"] })
      .output();
    return out.success ? null : "nats-server --version failed";
  } catch {
    return "nats-server is not installed (apt-get install -y nats-server)";
  }
}

/** Whether tests that need nats-server run (they fail under BIOS_REQUIRE_ALL=1 without it). */
export async function natsTestsIgnored(): Promise<boolean> {
  const missing = await natsServerMissing();
  if (missing === null) return false;
  if (Deno.env.get("BIOS_REQUIRE_ALL") === "1") return false;
  console.log(`NATS tests skipped: ${missing}`);
  return true;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Options of {@link NatsServer.start}. */
export interface NatsServerOptions {
  /**
   * Enable JetStream (`-js`), storing in a temporary folder (`-sd`) that
   * outlives `kill` and `restart` and goes with `stop`.
   */
  jetstream?: boolean;
}

/** A running nats-server. */
export class NatsServer {
  #child: Deno.ChildProcess | null = null;

  private constructor(
    readonly port: number,
    readonly extraArgs: readonly string[],
    /** JetStream's store folder, when JetStream is on. */
    readonly storeDir?: string,
  ) {}

  /** The URL clients connect to. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server on a free port (or `port`), with `args` added to its
   * command line (`--user u --pass p`, `--auth token`), and waits until it
   * accepts connections.
   */
  static async start(
    port = freePort(),
    args: readonly string[] = [],
    opts: NatsServerOptions = {},
  ): Promise<NatsServer> {
    const storeDir = opts.jetstream
      ? await Deno.makeTempDir({ prefix: "bios-nats-js-" })
      : undefined;
    const s = new NatsServer(port, args, storeDir);
    await s.restart();
    return s;
  }

  /** Starts the server again on its port (after `kill`). */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("nats-server is already running");
    this.#child = new Deno.Command("nats-server", {
      args: [
        "-a",
        "127.0.0.1",
        "-p",
        String(this.port),
        ...(this.storeDir ? ["-js", "-sd", this.storeDir] : []),
        ...this.extraArgs,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const c = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.port,
        });
        c.close();
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Kills the server (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (!c) return;
    this.#child = null;
    c.kill("SIGKILL");
    await c.status;
  }

  /** Kills the server and removes its JetStream store. */
  async stop(): Promise<void> {
    await this.kill();
    if (this.storeDir) {
      await Deno.remove(this.storeDir, { recursive: true }).catch(() => {});
    }
  }
}
