import assert from "node:assert/strict";
import { KeyRing, parseEnvKeys, parseKeysText } from "./keys.ts";

Deno.test("keys files: JSON and lines, keys or their sha256, each key its tenant", async () => {
  const hashOf = async (k: string) =>
    Array.from(
      new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(k)),
      ),
      (x) => x.toString(16).padStart(2, "0"),
    ).join("");
  const json = parseKeysText(
    JSON.stringify({
      keys: [
        { tenant: "alice", key: "tml-alice-0123456789" },
        { tenant: "bob", sha256: await hashOf("tml-bob-000000000000") },
      ],
    }),
    "k.json",
  );
  const lines = parseKeysText(
    "# comment\n\ncarol tml-carol-0123456789  # trailing\n" +
      `dave sha256:${await hashOf("tml-dave-0123456789")}\n`,
    "k.txt",
  );
  const ring = await KeyRing.of([...json, ...lines]);
  assert.equal(ring.size, 4);
  assert.equal(await ring.tenantOf("tml-alice-0123456789"), "alice");
  assert.equal(await ring.tenantOf("tml-bob-000000000000"), "bob");
  assert.equal(await ring.tenantOf("tml-carol-0123456789"), "carol");
  assert.equal(await ring.tenantOf("tml-dave-0123456789"), "dave");
  assert.equal(await ring.tenantOf("tml-alice-012345678"), null);
  assert.equal(await ring.tenantOf(""), null);
});

Deno.test("keys are refused by name: no tml- prefix, too short, bad tenant, duplicates, bad JSON", async () => {
  assert.throws(
    () => parseKeysText("alice sk-abcdefghijklmnop\n", "k.txt"),
    /k\.txt:1: the key of alice must start with "tml-"/,
  );
  assert.throws(
    () => parseKeysText("alice tml-short\n", "k.txt"),
    /k\.txt:1: the key of alice must be 16–256 characters/,
  );
  assert.throws(
    () => parseKeysText("a/b tml-alice-0123456789\n", "k.txt"),
    /k\.txt:1: tenant must be/,
  );
  assert.throws(
    () => parseKeysText("alice\n", "k.txt"),
    /k\.txt:1: expected "<tenant> <key>"/,
  );
  assert.throws(
    () =>
      parseKeysText('{"keys": [{"tenant": "x", "sha256": "abc"}]}', "k.json"),
    /k\.json: keys\[0\]: x needs a key or a sha256 of 64 lowercase hex digits/,
  );
  assert.throws(
    () => parseKeysText("{nope", "k.json"),
    /k\.json: not valid JSON/,
  );
  await assert.rejects(
    KeyRing.of(parseKeysText(
      "a tml-alice-0123456789\nb tml-alice-0123456789\n",
      "k.txt",
    )),
    /a key of b is given twice/,
  );
});

Deno.test("BIOS_API_KEYS: comma-separated, each key its own tenant, named by its hash", async () => {
  const specs = await parseEnvKeys(
    " tml-one-0123456789ab, tml-two-0123456789ab ,",
  );
  assert.equal(specs.length, 2);
  assert.match(specs[0].tenant, /^key-[0-9a-f]{12}$/);
  assert.notEqual(specs[0].tenant, specs[1].tenant);
  assert.ok(!specs[0].tenant.includes("one"));
  const ring = await KeyRing.of(specs);
  assert.equal(await ring.tenantOf("tml-two-0123456789ab"), specs[1].tenant);
  await assert.rejects(
    parseEnvKeys("nope-0123456789abcdef"),
    /must start with "tml-"/,
  );
});
