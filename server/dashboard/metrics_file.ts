/**
 * Reading a run's `metrics.jsonl` from a byte offset on: the complete lines
 * written past it and the offset after the last of them, so a reader that
 * keeps the offset (the dashboard's event stream) gets every line once, in
 * the order written, however often it is woken. A line still being written
 * (no newline yet) is left for the next read; a file not yet made has no
 * lines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readMetricsFrom } from "./metrics_file.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"step":1}\n{"step":2}\n{"st');
 * const a = await readMetricsFrom(path, 0);
 * assert.deepEqual(a.lines, [{ step: 1 }, { step: 2 }]);
 * await Deno.writeTextFile(path, 'ep":3}\n', { append: true });
 * const b = await readMetricsFrom(path, a.offset);
 * assert.deepEqual(b.lines, [{ step: 3 }]);
 * await Deno.remove(path);
 * ```
 *
 * @module
 */
import type { MetricsLine } from "../../client/metrics_log.ts";

/** Complete lines read from an offset, and where the next read starts. */
export interface MetricsRead {
  /** The lines, parsed, in file order. */
  lines: MetricsLine[];
  /** The byte offset just past the last complete line read. */
  offset: number;
}

const NEWLINE = 0x0a;

/** The complete lines of `path` from byte `offset` on (see the module's note). */
export async function readMetricsFrom(
  path: string,
  offset: number,
): Promise<MetricsRead> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { lines: [], offset };
    throw e;
  }
  let bytes: Uint8Array;
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
  } finally {
    try {
      file.close();
    } catch { /* closed with its stream */ }
  }
  const end = bytes.lastIndexOf(NEWLINE);
  if (end < 0) return { lines: [], offset };
  const text = new TextDecoder().decode(bytes.subarray(0, end));
  const lines = text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as MetricsLine
  );
  return { lines, offset: offset + end + 1 };
}
