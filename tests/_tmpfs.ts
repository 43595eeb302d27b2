/**
 * A small real filesystem for tests of disk faults: a tmpfs mounted over a
 * folder (root only). `BIOS_REQUIRE_ALL=1` turns "cannot mount" from a
 * skipped test into a failed one.
 *
 * @module
 */

/** Whether tests that cannot run here must fail instead of being skipped. */
export const REQUIRE_ALL = Deno.env.get("BIOS_REQUIRE_ALL") === "1";

async function run(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (out.success) return null;
    return new TextDecoder().decode(out.stderr).trim().split("\n")[0] ||
      `${cmd} exited with ${out.code}`;
  } catch (e) {
    return `${cmd}: ${(e as Error).message}`;
  }
}

/**
 * Mount a tmpfs of `size` (e.g. `"256k"`) over `dir`; returns null, or why
 * it could not (one line).
 */
export async function mountTmpfs(
  dir: string,
  size: string,
): Promise<string | null> {
  return await run("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${size}`,
    "tmpfs",
    dir,
  ]);
}

/** Unmount what {@link mountTmpfs} mounted over `dir`. */
export async function unmountTmpfs(dir: string): Promise<void> {
  const why = await run("umount", [dir]);
  if (why !== null) throw new Error(`umount ${dir}: ${why}`);
}

/** Why a tmpfs cannot be mounted here (probed once), or null when it can. */
export async function tmpfsUnavailableReason(): Promise<string | null> {
  const dir = await Deno.makeTempDir({ prefix: "bios-tmpfs-probe-" });
  try {
    const why = await mountTmpfs(dir, "64k");
    if (why === null) await unmountTmpfs(dir);
    return why;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
