/**
 * A bounded cache of bind groups, least recently used out first.
 *
 * Creating a bind group costs ~25 µs of host time in Deno, ten times the rest
 * of a dispatch's recording (pipeline, bind, dispatch), and a training step
 * records hundreds of dispatches: on a real GPU that host time, not the
 * GPU's, bounded a step. The buffers of a step come from a pool in the same
 * order step after step, so the same (kernel, buffers, offsets, textures)
 * recur and their bind group can be reused; the uniforms, which change every
 * dispatch, are bound with a dynamic offset and are not part of the key.
 *
 * @module
 */

/** Bind groups by key, at most `capacity` of them. */
export class BindGroupCache {
  readonly #groups = new Map<string, GPUBindGroup>();
  /** Most groups kept. */
  readonly capacity: number;
  /** Lookups that found a group (for tests). */
  hits = 0;
  /** Lookups that created one (for tests). */
  misses = 0;

  /** An empty cache of at most `capacity` groups. */
  constructor(capacity = 4096) {
    this.capacity = capacity;
  }

  /**
   * The group of `key`, made by `make` when it is not cached.
   *
   * @example
   * ```ts ignore
   * const g = cache.get(`${k.name}|${ids}`, () => device.createBindGroup(desc));
   * ```
   */
  get(key: string, make: () => GPUBindGroup): GPUBindGroup {
    const hit = this.#groups.get(key);
    if (hit) {
      this.hits++;
      // Re-inserted: Map order is insertion order, so the first key is the
      // least recently used.
      this.#groups.delete(key);
      this.#groups.set(key, hit);
      return hit;
    }
    this.misses++;
    const group = make();
    if (this.#groups.size >= this.capacity) {
      this.#groups.delete(this.#groups.keys().next().value!);
    }
    this.#groups.set(key, group);
    return group;
  }

  /** Groups held now. */
  get size(): number {
    return this.#groups.size;
  }
}
