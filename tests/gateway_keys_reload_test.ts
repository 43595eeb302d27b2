/**
 * SIGHUP reloads the gateway's keys: a key added to the keys file works and
 * a removed one is refused from then on, without a restart (sessions,
 * futures and runs go on); a keys file that does not load leaves the keys
 * as they were.
 */
import assert from "node:assert/strict";
import { startGateway } from "./_gateway_process.ts";

const KEY_A = "tml-reload-a-0123456789";
const KEY_B = "tml-reload-b-0123456789";

Deno.test("SIGHUP reloads the keys file: a new key works, a removed one is refused, a bad file changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bios-keys-" });
  const file = `${dir}/keys.txt`;
  await Deno.writeTextFile(file, `a ${KEY_A}\n`);
  const gw = await startGateway(["--keys", file]);
  const status = async (key: string) => {
    const res = await fetch(`${gw.url}/api/v1/create_session`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": key },
      body: "{}",
    });
    await res.body?.cancel();
    return res.status;
  };
  /** Send SIGHUP and wait until `key` is answered `want`. */
  const reloadUntil = async (key: string, want: number) => {
    Deno.kill(gw.pid, "SIGHUP");
    let got = await status(key);
    for (let i = 0; i < 100 && got !== want; i++) {
      await new Promise((r) => setTimeout(r, 50));
      got = await status(key);
    }
    return got;
  };
  try {
    assert.equal(await status(KEY_A), 200);
    assert.equal(await status(KEY_B), 401);
    await Deno.writeTextFile(file, `a ${KEY_A}\nb ${KEY_B}\n`);
    assert.equal(await reloadUntil(KEY_B, 200), 200);
    assert.equal(await status(KEY_A), 200);
    // A file that does not parse: the keys stay as they were.
    await Deno.writeTextFile(file, `a ${KEY_A}\nb not-a-key\n`);
    Deno.kill(gw.pid, "SIGHUP");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await status(KEY_B), 200);
    // A key taken out is refused.
    await Deno.writeTextFile(file, `b ${KEY_B}\n`);
    assert.equal(await reloadUntil(KEY_A, 401), 401);
    assert.equal(await status(KEY_B), 200);
  } finally {
    await gw.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
