/**
 * Start-up recovery of a checkpoint folder: finishes or undoes the saves a
 * crash interrupted (see the steps in checkpoint_files.ts), and never deletes
 * the only copy of anything.
 *
 * For each `.old-<name>-<id>` (an overwrite's old copy, moved aside):
 * - `<name>` exists: the overwrite finished; the old copy goes.
 * - else, `.tmp-<name>-<id>` is a complete checkpoint: roll forward (it
 *   becomes `<name>`), then the old copy goes.
 * - else: roll back (the old copy becomes `<name>` again).
 *
 * `.trash-<name>-<id>` folders (the old copies of an earlier Bios's
 * overwrites) are treated the same way, except that they have no matching
 * temporary folder. A `.tmp-*` folder with no `.old-*` partner was never
 * acknowledged to anyone: it is removed once older than the age threshold
 * (so a save still running is never swept). Nothing else is touched.
 *
 * Recovery assumes it is alone: one store owns a checkpoint folder.
 *
 * @module
 */
import { CHECKPOINT_KINDS } from "../protocol/types/checkpoint_path.ts";
import {
  readVerifiedFiles,
  readVerifiedManifest,
} from "./checkpoint_verify.ts";
import { checkpointLabel } from "./checkpoint_verify.ts";
import { isAbsent, syncDir } from "./checkpoint_files.ts";

/** What a recovery did. */
export interface RecoveryReport {
  /** Interrupted overwrites completed with their new copy (`bios://` paths). */
  rolledForward: string[];
  /** Interrupted overwrites undone: the old copy is back (`bios://` paths). */
  rolledBack: string[];
  /** Leftover folders removed (old copies superseded, stale temporaries). */
  removed: number;
  /** What could not be done, one line each (the node's own log; folders named). */
  problems: string[];
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const ASIDE = new RegExp(`^\\.(old|trash)-(.+)-(${UUID})$`);
const TMP = new RegExp(`^\\.tmp-(.+)-(${UUID})$`);

/**
 * Recover every `<root>/<run>/<kind>/` folder. Never throws: what fails is
 * left as it is and reported in `problems`.
 *
 * @param root the checkpoint folder
 * @param tmpAgeMs age past which an orphan `.tmp-*` folder is removed
 */
export async function recoverCheckpoints(
  root: string,
  tmpAgeMs: number,
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    rolledForward: [],
    rolledBack: [],
    removed: 0,
    problems: [],
  };
  const runs = await entryNames(root, report);
  for (const runId of runs) {
    if (runId.startsWith(".")) continue;
    for (const kind of CHECKPOINT_KINDS) {
      const parent = `${root}/${runId}/${kind}`;
      const names = new Set(await entryNames(parent, report));
      if (names.size === 0) continue;
      for (const entry of [...names]) {
        const m = ASIDE.exec(entry);
        if (!m) continue;
        const [, , name, id] = m;
        const label = checkpointLabel({ runId, kind, name });
        const tmp = `.tmp-${name}-${id}`;
        try {
          if (names.has(name)) {
            await Deno.remove(`${parent}/${entry}`, { recursive: true });
            report.removed++;
          } else if (
            m[1] === "old" && names.has(tmp) &&
            await isComplete(`${parent}/${tmp}`, { runId, kind, name })
          ) {
            await Deno.rename(`${parent}/${tmp}`, `${parent}/${name}`);
            await syncDir(parent);
            names.delete(tmp);
            names.add(name);
            report.rolledForward.push(label);
            await Deno.remove(`${parent}/${entry}`, { recursive: true });
            report.removed++;
          } else {
            await Deno.rename(`${parent}/${entry}`, `${parent}/${name}`);
            await syncDir(parent);
            names.add(name);
            report.rolledBack.push(label);
          }
          names.delete(entry);
        } catch (e) {
          report.problems.push(
            `recovering ${label} from ${parent}/${entry}: ${errorText(e)}`,
          );
        }
      }
      const now = Date.now();
      for (const entry of names) {
        const m = TMP.exec(entry);
        // A temporary whose old copy is still aside belongs to that overwrite.
        if (!m || names.has(`.old-${m[1]}-${m[2]}`)) continue;
        const path = `${parent}/${entry}`;
        try {
          const st = await Deno.lstat(path);
          if (!st.mtime || now - st.mtime.getTime() < tmpAgeMs) continue;
          await Deno.remove(path, { recursive: true });
          report.removed++;
        } catch (e) {
          if (!isAbsent(e)) {
            report.problems.push(`removing ${path}: ${errorText(e)}`);
          }
        }
      }
    }
  }
  return report;
}

/** Whether a temporary folder holds a whole checkpoint (record, manifest, every hash). */
async function isComplete(
  dir: string,
  parts: Parameters<typeof readVerifiedManifest>[1],
): Promise<boolean> {
  try {
    const m = await readVerifiedManifest(dir, parts);
    await readVerifiedFiles(dir, m, checkpointLabel(parts));
    return true;
  } catch {
    return false;
  }
}

async function entryNames(
  dir: string,
  report: RecoveryReport,
): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
  } catch (e) {
    if (!isAbsent(e)) report.problems.push(`reading ${dir}: ${errorText(e)}`);
    return [];
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
