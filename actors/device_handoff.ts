/**
 * Device hand-off: tensors parked on this process's shared backend and
 * passed between its actors by id instead of by value. A shard's output
 * activation goes to the next shard as `{ handle }` and never leaves the
 * device; a commit point is a set of device copies the trainer keeps by id.
 *
 * Only actors of one process share a backend, so a handle means nothing on
 * another node: the trainer uses hand-off only for shards of its own process.
 * What is parked here outlives the actor that parked it (a crashed shard's
 * commit point is still here for its restarted instance); whoever holds the
 * id drops it.
 *
 * @module
 */
import type { Backend, Tensor } from "../kernels/backend.ts";
import { BiosError, registerWireError } from "../runtime/errors.ts";

/** A reference to parked tensors, as it crosses an in-process message. */
export interface DeviceRef {
  /** The id {@linkcode DeviceHandoff.park} gave. */
  handle: string;
}

/** Whether a message value is a {@linkcode DeviceRef}. */
export function isDeviceRef(x: unknown): x is DeviceRef {
  return typeof x === "object" && x !== null &&
    typeof (x as DeviceRef).handle === "string";
}

/** A handle named tensors that are not (or no longer) parked here. */
export class StaleHandleError extends BiosError {
  /** @param message which handle */
  constructor(message: string) {
    super("stale_handle", message);
    this.name = "StaleHandleError";
  }
}
registerWireError(StaleHandleError);

/**
 * Parked tensors by id.
 *
 * @example
 * ```ts ignore
 * const ref = { handle: deviceHandoff.park(be, [x]) };
 * // … in another actor of the process:
 * const [y] = deviceHandoff.take(ref.handle); // y === x, now owned here
 * ```
 */
export class DeviceHandoff {
  #parked = new Map<string, { be: Backend; tensors: Tensor[] }>();

  /** Parks `tensors` (ownership passes to the store) and returns their id. */
  park(be: Backend, tensors: readonly Tensor[]): string {
    const id = crypto.randomUUID();
    this.#parked.set(id, { be, tensors: [...tensors] });
    return id;
  }

  /** Removes and returns the tensors of `id` (ownership passes to the caller). */
  take(id: string): Tensor[] {
    const got = this.peek(id);
    this.#parked.delete(id);
    return got;
  }

  /** The tensors of `id`, left parked. */
  peek(id: string): Tensor[] {
    const got = this.#parked.get(id);
    if (!got) {
      throw new StaleHandleError(
        `device handle ${id} names no parked tensors (taken, dropped, or from another process)`,
      );
    }
    return got.tensors;
  }

  /**
   * Takes the tensors of every id and reads them back in one go (one GPU
   * wait on webgpu), freeing them: the values, in id order, then tensor
   * order within an id.
   *
   * @throws {StaleHandleError} for an id not parked here (nothing is taken)
   */
  async readAll(ids: readonly string[]): Promise<Float32Array[]> {
    for (const id of ids) this.peek(id);
    const entries = ids.map((id) => {
      const got = this.#parked.get(id)!;
      this.#parked.delete(id);
      return got;
    });
    if (entries.length === 0) return [];
    const be = entries[0].be;
    const tensors = entries.flatMap((e) => e.tensors);
    if (entries.some((e) => e.be !== be)) {
      throw new Error("readAll: the parked tensors are on different backends");
    }
    try {
      return await be.readMany(tensors);
    } finally {
      for (const t of tensors) be.free(t);
    }
  }

  /** Frees the tensors of `id`, if still parked. */
  drop(id: string): void {
    const got = this.#parked.get(id);
    if (!got) return;
    this.#parked.delete(id);
    for (const t of got.tensors) got.be.free(t);
  }

  /** Number of parked entries (for tests: a finished step leaves none behind). */
  get size(): number {
    return this.#parked.size;
  }
}

/** The store of this process. */
export const deviceHandoff: DeviceHandoff = new DeviceHandoff();
