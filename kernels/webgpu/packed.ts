/**
 * Packed tensors: several small f32 tensors stored side by side in one GPU
 * buffer (an arena), each a view at an aligned offset. The LoRA parameters,
 * gradients and Adam moments of a stage live in four such arenas, so the
 * optimizer and the gradient norm cover all of them in one dispatch. The
 * gaps left by alignment are zero and stay zero (no op writes outside a
 * view), so a kernel may sweep the whole arena.
 *
 * @module
 */

import type { GpuTensor } from "./tensor.ts";

/** One buffer holding the views made by {@linkcode planArena}. */
export class Arena {
  /** The buffer (at least {@linkcode Arena.bytes} long). */
  readonly buffer: GPUBuffer;
  /** Bytes the views span, from 0 to the end of the last (a multiple of 4). */
  readonly bytes: number;
  /** The views, in offset order; set once they are made. */
  views: readonly GpuTensor[] = [];
  #live = 0;

  /** Wraps `buffer`, spanning `bytes`. */
  constructor(buffer: GPUBuffer, bytes: number) {
    this.buffer = buffer;
    this.bytes = bytes;
  }

  /** Registers the views (once, right after they are made). */
  adopt(views: readonly GpuTensor[]): void {
    this.views = views;
    this.#live = views.length;
  }

  /** Marks one view freed; true when it was the last (the buffer may go back). */
  drop(): boolean {
    this.#live--;
    return this.#live === 0;
  }

  /**
   * Whether `ts` are exactly this arena's live views in offset order, so an
   * op over the whole buffer covers them and nothing else.
   */
  coveredBy(ts: readonly GpuTensor[]): boolean {
    if (ts.length !== this.views.length || this.#live !== ts.length) {
      return false;
    }
    return ts.every((t, i) => t === this.views[i]);
  }
}

/** Where each tensor of a packed group starts, and the bytes of each arena. */
export interface ArenaPlan {
  /** Per tensor: its arena's index and byte offset in it. */
  place: { arena: number; offset: number }[];
  /** Bytes each arena spans. */
  arenaBytes: number[];
}

/**
 * Lays tensors of `sizes` elements out in order, each at an offset that is a
 * multiple of `align` bytes, starting a new arena whenever the next would
 * pass `maxBytes`. A tensor alone larger than `maxBytes` gets arena −1 (the
 * caller makes it a tensor of its own).
 */
export function planArena(
  sizes: readonly number[],
  align: number,
  maxBytes: number,
): ArenaPlan {
  const place: { arena: number; offset: number }[] = [];
  const arenaBytes: number[] = [];
  let end = Infinity;
  for (const n of sizes) {
    const bytes = Math.max(4, n * 4);
    if (bytes > maxBytes) {
      place.push({ arena: -1, offset: 0 });
      continue;
    }
    const at = Math.ceil(end / align) * align;
    if (arenaBytes.length === 0 || at + bytes > maxBytes) {
      arenaBytes.push(bytes);
      place.push({ arena: arenaBytes.length - 1, offset: 0 });
      end = bytes;
      continue;
    }
    place.push({ arena: arenaBytes.length - 1, offset: at });
    end = at + bytes;
    arenaBytes[arenaBytes.length - 1] = end;
  }
  return { place, arenaBytes };
}

/** A stretch of parallel tensor lists: a whole arena per list, or one index. */
export type ArenaRun =
  | { kind: "arenas"; arenas: Arena[]; start: number; count: number }
  | { kind: "single"; index: number };

/**
 * Cuts parallel lists of tensors (e.g. params, grads, m, v) into runs where,
 * in every list, the tensors are exactly one arena's views in order and the
 * arenas have the same layout (so one sweep over each arena's buffer
 * updates those tensors and nothing else), and single tensors otherwise.
 */
export function arenaRuns(
  lists: readonly (readonly GpuTensor[])[],
): ArenaRun[] {
  const n = lists[0]?.length ?? 0;
  const runs: ArenaRun[] = [];
  let i = 0;
  while (i < n) {
    const first = lists[0][i].arena;
    const count = first?.views.length ?? 0;
    const arenas = lists.map((l) => l[i].arena);
    const whole = first !== null && first.views[0] === lists[0][i] &&
      i + count <= n &&
      arenas.every((a, j) =>
        a !== null && a.bytes === first.bytes &&
        a.coveredBy(lists[j].slice(i, i + count)) &&
        a.views.every((t, k) => t.offset === first.views[k].offset)
      );
    if (whole) {
      runs.push({ kind: "arenas", arenas: arenas as Arena[], start: i, count });
      i += count;
    } else {
      runs.push({ kind: "single", index: i });
      i++;
    }
  }
  return runs;
}
