/**
 * The official Tinker SDK, vendored unmodified in `vendor/tinker-sdk` (or
 * where `TINKER_SDK_PYTHON` points), for tests that check Bios's wire
 * against it. Its runner exits 3 where the SDK's Python dependencies are not
 * installable (no local wheelhouse), or torch is not when a test needs it
 * (`{ torch: true }`: the SDK's `forward_backward_custom`, run with
 * `TINKER_SDK_WITH_TORCH=1` in the runner's torch venv): the tests then say so
 * in one line and are skipped — unless `BIOS_REQUIRE_ALL=1`, where they fail
 * instead.
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

/** What a run needs beyond the SDK. */
export interface TinkerSdkNeeds {
  /** torch in the SDK's venv (`forward_backward_custom`). */
  torch?: boolean;
}

/** The runner's environment for `needs`. */
function sdkEnv(needs: TinkerSdkNeeds): Record<string, string> {
  return needs.torch ? { "TINKER_SDK_WITH_TORCH": "1" } : {};
}

const probes = new Map<string, Promise<string | null>>();
// Probes run one at a time: the first one of a venv makes it (pip), and two
// at once would install into the same folder.
let probing: Promise<unknown> = Promise.resolve();

async function probe(
  sdk: string,
  needs: TinkerSdkNeeds,
): Promise<string | null> {
  try {
    await Deno.stat(TINKER_SDK_PYTHON);
  } catch {
    return `no Tinker SDK runner at ${TINKER_SDK_PYTHON} (set TINKER_SDK_PYTHON)`;
  }
  const out = await new Deno.Command(TINKER_SDK_PYTHON, {
    args: [
      "--sdk",
      sdk,
      "-c",
      // With torch the question is the runner's install of it (exit 3 when it
      // cannot), and importing the SDK would import torch: seconds.
      needs.torch ? "pass" : "import tinker.proto",
    ],
    stdout: "null",
    stderr: "piped",
    env: sdkEnv(needs),
  }).output();
  if (out.success) return null;
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
  // Exit 3: the SDK (or torch) cannot run on this machine. Anything else is a fault.
  if (out.code === 3) {
    return `the Tinker SDK ${sdk}${
      needs.torch ? " with torch" : ""
    } cannot run here: ${err}`;
  }
  throw new Error(`the Tinker SDK runner failed (exit ${out.code}): ${err}`);
}

/**
 * Probes once per SDK version (and needs). When the SDK cannot run here,
 * prints one line naming the test group and why (unless `BIOS_REQUIRE_ALL=1`,
 * where the tests run and fail on it).
 *
 * @param what the tests that need it, for the skip line
 * @param sdk the SDK version, e.g. `"0.25.0"`
 * @param needs what the tests need beyond the SDK (torch)
 */
export async function tinkerSdkForTests(
  what: string,
  sdk: string,
  needs: TinkerSdkNeeds = {},
): Promise<TinkerSdkProbe> {
  const key = `${sdk}${needs.torch ? "+torch" : ""}`;
  if (!probes.has(key)) {
    const p = probing.then(() => probe(sdk, needs));
    probing = p.catch(() => {});
    probes.set(key, p);
  }
  const missing = await probes.get(key)!;
  if (missing !== null && !REQUIRE_ALL) {
    console.log(`${what} skipped: ${missing}`);
  }
  return { missing, ignore: missing !== null && !REQUIRE_ALL };
}

/**
 * Runs `tests/<script>` under the SDK with `args` (and `needs`); returns the
 * JSON it prints on its last stdout line. Throws with Python's stderr when it
 * fails.
 */
export async function runTinkerSdk<T>(
  sdk: string,
  script: string,
  args: string[],
  needs: TinkerSdkNeeds = {},
): Promise<T> {
  const out = await new Deno.Command(TINKER_SDK_PYTHON, {
    args: ["--sdk", sdk, `${REPO}tests/${script}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONHASHSEED: "0", ...sdkEnv(needs) },
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
