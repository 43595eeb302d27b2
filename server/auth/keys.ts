/**
 * API keys and their tenants. Keys come from a keys file (`--keys FILE`) or
 * `BIOS_API_KEYS` (comma-separated, each key its own tenant); only their
 * sha256 is kept, and a presented key is hashed and compared with every
 * stored hash in constant time (no early exit, no lookup by value).
 *
 * A keys file is JSON or lines. JSON:
 *
 * ```json
 * { "keys": [
 *   { "tenant": "alice", "key": "tml-alice-0123456789" },
 *   { "tenant": "bob", "sha256": "<64 hex digits: sha256 of bob's key>" }
 * ] }
 * ```
 *
 * Lines: `<tenant> <key>` or `<tenant> sha256:<hex>`; `#` starts a comment.
 * Keys must start with `tml-` (the Tinker SDK refuses any other before
 * sending it) and be at least 16 characters of `A–Z a–z 0–9 _ -`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyRing, parseKeysText } from "./keys.ts";
 * const ring = await KeyRing.of(parseKeysText("alice tml-alice-0123456789\n", "keys.txt"));
 * assert.equal(await ring.tenantOf("tml-alice-0123456789"), "alice");
 * assert.equal(await ring.tenantOf("tml-mallory-000000000"), null);
 * ```
 *
 * @module
 */
import { OWNER_RE } from "../../protocol/types/run_record.ts";

/** One configured key: its tenant, and the key itself or its sha256. */
export interface KeySpec {
  /** The tenant the key acts for. */
  tenant: string;
  /** The key (hashed when the ring is built). */
  key?: string;
  /** Its sha256, in hex, when the file stores only the hash. */
  sha256?: string;
}

/** A tenant is a run's owner: the same rule. */
const TENANT_RE = OWNER_RE;
const KEY_RE = /^tml-[A-Za-z0-9_-]{12,252}$/;
const HEX_RE = /^[0-9a-f]{64}$/;

/** Why `key` is not acceptable as an API key, or null. */
export function keyProblem(key: string): string | null {
  if (!key.startsWith("tml-")) {
    return 'must start with "tml-" (the Tinker SDK refuses other keys)';
  }
  if (!KEY_RE.test(key)) {
    return "must be 16–256 characters of A–Z, a–z, 0–9, _ or - (after tml-, at least 12)";
  }
  return null;
}

function checkSpec(s: KeySpec, where: string): KeySpec {
  if (typeof s.tenant !== "string" || !TENANT_RE.test(s.tenant)) {
    throw new Error(
      `${where}: tenant must be 1–64 characters of A–Z, a–z, 0–9, _, . or -: got ${
        JSON.stringify(s.tenant)
      }`,
    );
  }
  if (s.key !== undefined) {
    const p = typeof s.key === "string"
      ? keyProblem(s.key)
      : "must be a string";
    if (p !== null) throw new Error(`${where}: the key of ${s.tenant} ${p}`);
  } else if (typeof s.sha256 !== "string" || !HEX_RE.test(s.sha256)) {
    throw new Error(
      `${where}: ${s.tenant} needs a key or a sha256 of 64 lowercase hex digits`,
    );
  }
  return s;
}

/**
 * The keys in a keys file's text (JSON or lines).
 *
 * @param text the file's text
 * @param name the file's name, for errors
 * @throws {Error} naming the file and entry that is wrong
 */
export function parseKeysText(text: string, name: string): KeySpec[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (e) {
      throw new Error(`${name}: not valid JSON: ${(e as Error).message}`);
    }
    const list = Array.isArray(json)
      ? json
      : (json as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) {
      throw new Error(
        `${name}: expected { "keys": [ { "tenant", "key" | "sha256" } ] }`,
      );
    }
    return list.map((e, i) => {
      if (e === null || typeof e !== "object") {
        throw new Error(`${name}: keys[${i}] must be an object`);
      }
      const { tenant, key, sha256 } = e as Record<string, unknown>;
      return checkSpec(
        { tenant, key, sha256 } as KeySpec,
        `${name}: keys[${i}]`,
      );
    });
  }
  const out: KeySpec[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) {
      throw new Error(
        `${name}:${
          i + 1
        }: expected "<tenant> <key>" or "<tenant> sha256:<hex>"`,
      );
    }
    const [tenant, value] = parts;
    out.push(checkSpec(
      value.startsWith("sha256:")
        ? { tenant, sha256: value.slice("sha256:".length) }
        : { tenant, key: value },
      `${name}:${i + 1}`,
    ));
  });
  return out;
}

/**
 * The keys of `BIOS_API_KEYS`: comma-separated, each its own tenant, named
 * `key-<first 12 hex digits of its sha256>` (stable, and not the key).
 */
export async function parseEnvKeys(value: string): Promise<KeySpec[]> {
  const out: KeySpec[] = [];
  for (const key of value.split(",").map((k) => k.trim()).filter((k) => k)) {
    const p = keyProblem(key);
    if (p !== null) throw new Error(`BIOS_API_KEYS: a key ${p}`);
    out.push({ tenant: `key-${hex(await sha256(key)).slice(0, 12)}`, key });
  }
  return out;
}

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)),
  );
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** The configured keys, as hashes, and the tenant of each. */
export class KeyRing {
  #hashes: Uint8Array[];
  #tenants: string[];

  private constructor(hashes: Uint8Array[], tenants: string[]) {
    this.#hashes = hashes;
    this.#tenants = tenants;
  }

  /**
   * A ring of `specs` (keys are hashed now; the keys themselves are not kept).
   *
   * @throws {Error} when one key hash is given twice
   */
  static async of(specs: readonly KeySpec[]): Promise<KeyRing> {
    const hashes: Uint8Array[] = [];
    const tenants: string[] = [];
    const seen = new Set<string>();
    for (const s of specs) {
      const h = s.key !== undefined ? await sha256(s.key) : fromHex(s.sha256!);
      const k = hex(h);
      if (seen.has(k)) throw new Error(`a key of ${s.tenant} is given twice`);
      seen.add(k);
      hashes.push(h);
      tenants.push(s.tenant);
    }
    return new KeyRing(hashes, tenants);
  }

  /**
   * Take `other`'s keys in place of these (a reload of the keys file): the
   * requests checked from now on see only them.
   */
  replaceWith(other: KeyRing): void {
    this.#hashes = other.#hashes;
    this.#tenants = other.#tenants;
  }

  /** Number of keys. */
  get size(): number {
    return this.#hashes.length;
  }

  /** The tenants, each once. */
  tenants(): string[] {
    return [...new Set(this.#tenants)];
  }

  /**
   * The tenant of `key`, or null. Every stored hash is compared, in time
   * that does not depend on where (or whether) the key matches.
   */
  async tenantOf(key: string): Promise<string | null> {
    const h = await sha256(key);
    let found = -1;
    for (let i = 0; i < this.#hashes.length; i++) {
      const stored = this.#hashes[i];
      let diff = 0;
      for (let j = 0; j < 32; j++) diff |= stored[j] ^ h[j];
      // Branch-free select: found becomes i when diff is 0.
      const match = ((diff - 1) >>> 31) & 1;
      found = match * i + (1 - match) * found;
    }
    return found >= 0 ? this.#tenants[found] : null;
  }
}
