/**
 * Real Python (torch, transformers, PEFT) for the tests that check Bios
 * against those libraries at test time. The interpreter is `BIOS_PYTHON`, or
 * the repository's own `.venv/bin/python` (`.ci/run` makes it). Without one,
 * or without the packages, the tests say so in one line and are skipped —
 * unless `BIOS_REQUIRE_ALL=1`, where they fail instead.
 *
 * @module
 */

/** Whether tests that cannot run here must fail instead of being skipped. */
export const REQUIRE_ALL = Deno.env.get("BIOS_REQUIRE_ALL") === "1";

const REPO = new URL("../", import.meta.url).pathname;

/** The packages the interop tests import. */
export const PYTHON_PACKAGES = ["torch", "transformers", "peft", "safetensors"];

/** The interpreter to use, and why there is none usable. */
export interface PythonProbe {
  /** The interpreter, when it has every package. */
  python: string | null;
  /** Why the tests cannot run (null when they can). */
  missing: string | null;
}

async function probe(): Promise<PythonProbe> {
  const given = Deno.env.get("BIOS_PYTHON");
  const python = given ?? `${REPO}.venv/bin/python`;
  if (given === undefined) {
    try {
      await Deno.stat(python);
    } catch {
      return {
        python: null,
        missing:
          "no Python: set BIOS_PYTHON or make .venv (python3 -m venv .venv && .venv/bin/pip install torch transformers peft safetensors)",
      };
    }
  }
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", `import ${PYTHON_PACKAGES.join(", ")}`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
      return { python: null, missing: `${python}: ${err}` };
    }
  } catch (e) {
    return { python: null, missing: `${python}: ${(e as Error).message}` };
  }
  return { python, missing: null };
}

let probed: Promise<PythonProbe> | undefined;

/**
 * Probe once for a Python with {@link PYTHON_PACKAGES}. When there is none,
 * prints one line naming the test group and what is missing (unless
 * `BIOS_REQUIRE_ALL=1`, where the tests run and fail on it).
 *
 * @param what the tests that need it, for the skip line
 * @returns `ignore` for `Deno.test`, and the probe
 */
export async function pythonForTests(
  what: string,
): Promise<PythonProbe & { ignore: boolean }> {
  probed ??= probe();
  const p = await probed;
  if (p.missing !== null && !REQUIRE_ALL) {
    console.log(`${what} skipped: ${p.missing}`);
  }
  return { ...p, ignore: p.missing !== null && !REQUIRE_ALL };
}

/**
 * Run `tests/<script>` (or a path from the repository root) with the probed
 * interpreter, passing `input` as JSON on stdin; returns the JSON it prints
 * on its last stdout line. Throws with Python's stderr when it fails, or
 * with the probe's reason when there is no interpreter (under
 * `BIOS_REQUIRE_ALL=1`).
 */
export async function runPython<T>(
  script: string,
  input: unknown,
): Promise<T> {
  probed ??= probe();
  const p = await probed;
  if (p.python === null) throw new Error(`Python unavailable: ${p.missing}`);
  const child = new Deno.Command(p.python, {
    args: [
      script.includes("/") ? `${REPO}${script}` : `${REPO}tests/${script}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONHASHSEED: "0", TRANSFORMERS_VERBOSITY: "error" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(input)));
  await w.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `${script} failed (exit ${out.code}):\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(stdout.split("\n").pop()!) as T;
}
