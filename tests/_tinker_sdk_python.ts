/**
 * The official Tinker SDK, vendored unmodified in `vendor/tinker-sdk` (or
 * where `TINKER_SDK_PYTHON` points), for tests that check Bios's wire
 * against it. Its runner exits 3 where the SDK's Python dependencies are not
 * installable (no local wheelhouse): the tests then say so in one line and
 * are skipped — unless `BIOS_REQUIRE_ALL=1`, where they fail instead.
 *
 * @module
 */

import { REQUIRE_ALL } from "./_python.ts";

const REPO = new URL("../", import.meta.url).pathname;

/** The runner: `python [--sdk VERSION] script.py ARGS...`. */
export const TINKER_SDK_PYTHON = Deno.env.get("TINKER_SDK_PYTHON") ??
  `${REPO}vendor/tinker-sdk/python`;

/** Whether the runner can run an SDK version here, and why not. */
export interface TinkerSdkProbe {
  /** Why the tests cannot run (null when they can). */
  missing: string | null;
  /** `ignore` for `Deno.test`. */
  ignore: boolean;
}

const probes = new Map<string, Promise<string | null>>();

async function probe(sdk: string): Promise<string | null> {
  try {
    await Deno.stat(TINKER_SDK_PYTHON);
  } catch {
    return `no Tinker SDK runner at ${TINKER_SDK_PYTHON} (set TINKER_SDK_PYTHON)`;
  }
  const out = await new Deno.Command(TINKER_SDK_PYTHON, {
    args: ["--sdk", sdk, "-c", "import tinker.proto"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.success) return null;
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
  // Exit 3: the SDK cannot run on this machine. Anything else is a fault.
  if (out.code === 3) return `the Tinker SDK ${sdk} cannot run here: ${err}`;
  throw new Error(`the Tinker SDK runner failed (exit ${out.code}): ${err}`);
}

/**
 * Probes once per SDK version. When the SDK cannot run here, prints one line
 * naming the test group and why (unless `BIOS_REQUIRE_ALL=1`, where the tests
 * run and fail on it).
 *
 * @param what the tests that need it, for the skip line
 * @param sdk the SDK version, e.g. `"0.25.0"`
 */
export async function tinkerSdkForTests(
  what: string,
  sdk: string,
): Promise<TinkerSdkProbe> {
  if (!probes.has(sdk)) probes.set(sdk, probe(sdk));
  const missing = await probes.get(sdk)!;
  if (missing !== null && !REQUIRE_ALL) {
    console.log(`${what} skipped: ${missing}`);
  }
  return { missing, ignore: missing !== null && !REQUIRE_ALL };
}

/**
 * Runs `tests/<script>` under the SDK with `args`; returns the JSON it
 * prints on its last stdout line. Throws with Python's stderr when it fails.
 */
export async function runTinkerSdk<T>(
  sdk: string,
  script: string,
  args: string[],
): Promise<T> {
  const out = await new Deno.Command(TINKER_SDK_PYTHON, {
    args: ["--sdk", sdk, `${REPO}tests/${script}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONHASHSEED: "0" },
  }).output();
  if (!out.success) {
    throw new Error(
      `${script} failed (exit ${out.code}):\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  const stdout = new TextDecoder().decode(out.stdout).trim();
  return JSON.parse(stdout.split("\n").pop()!) as T;
}
