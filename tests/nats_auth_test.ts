/**
 * A secured cluster: nats-server started with a user and password (and, in a
 * second case, a token). A node given the credentials serves; a client given
 * them trains; a client without them, or with wrong ones, is refused at once
 * with an error that says to give credentials.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { TINY } from "./_helpers.ts";
import { startNodeProcess } from "./_node_process.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";

const ignore = await natsTestsIgnored();

async function refused(opts: bios.ServiceClientOptions): Promise<void> {
  const service = new bios.ServiceClient(opts);
  try {
    await assert.rejects(
      () => service.getServerCapabilities(),
      (e: Error) => {
        assert.ok(e instanceof bios.errors.UnavailableError, e.message);
        assert.match(e.message, /give credentials/);
        return true;
      },
    );
  } finally {
    await service.close();
  }
}

for (
  const [what, serverArgs, nodeArgs, auth, wrong] of [
    [
      "user and password",
      ["--user", "bios", "--pass", "s3cret"],
      ["--user", "bios", "--pass", "s3cret"],
      { user: "bios", pass: "s3cret" },
      { user: "bios", pass: "guess" },
    ],
    [
      "token",
      ["--auth", "t0ken-abc"],
      ["--token", "t0ken-abc"],
      { token: "t0ken-abc" },
      { token: "t0ken-xyz" },
    ],
  ] as const
) {
  Deno.test({
    name:
      `NATS auth (${what}): a node and a client with credentials work; without or with wrong ones the client is refused`,
    ignore,
    fn: async () => {
      const server = await NatsServer.start(undefined, serverArgs);
      const dir = await Deno.makeTempDir({ prefix: "bios-auth-" });
      const node = await startNodeProcess(server.url, [
        "--checkpoint-dir",
        dir,
        ...nodeArgs,
      ]);
      const service = new bios.ServiceClient({
        nats: server.url,
        natsAuth: auth,
      });
      try {
        const caps = await service.getServerCapabilities();
        assert.ok(caps.supportedModels.some((m) => m.modelName === TINY));
        await refused({ nats: server.url });
        await refused({ nats: server.url, natsAuth: wrong });
      } finally {
        await service.close();
        await node.stop("SIGTERM");
        await server.kill();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}
