/**
 * Textures made from storage buffers (the operands of the texture-fed matmul,
 * copied or packed into textures), kept while their source buffer is
 * unchanged: a frozen weight is laid out once, not once per product. A
 * buffer's write generation (kept by the context, bumped by every recorded
 * write: a dispatch binding it read-write, an upload, a clear, a copy into
 * it) tells whether an entry is still good.
 *
 * @module
 */

/** One cached texture and the numbers its maker returned with it. */
interface Entry {
  tex: GPUTexture;
  extra: number[];
  source: GPUBuffer;
  generation: number;
  bytes: number;
}

/** Bytes of an rgba32float texture. */
function textureBytes(t: GPUTexture): number {
  return t.width * t.height * t.depthOrArrayLayers * 16;
}

/**
 * A least-recently-used cache of textures by key, bounded by bytes.
 *
 * @example
 * ```ts ignore
 * const cache = new TextureCache(256 << 20, (t) => ctx.releaseTexture(t));
 * const { tex } = cache.get("w|0", wBuffer, gen, () => ({ tex: fill(), extra: [] }));
 * ```
 */
export class TextureCache {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  /** Evicted textures not yet handed back (see {@linkcode TextureCache.settle}). */
  #evicted: GPUTexture[] = [];
  /** Lookups answered from the cache (for tests). */
  hits = 0;

  /**
   * @param maxBytes most texture bytes kept
   * @param release where evicted textures go (the texture pool)
   */
  constructor(
    readonly maxBytes: number,
    readonly release: (t: GPUTexture) => void,
  ) {}

  /**
   * The texture under `key` if it was made from `source` at `generation`;
   * else one `make` records (which then replaces it). The cache owns the
   * texture: the caller must not release it.
   */
  get(
    key: string,
    source: GPUBuffer,
    generation: number,
    make: () => { tex: GPUTexture; extra: number[] },
  ): { tex: GPUTexture; extra: number[] } {
    const hit = this.#entries.get(key);
    if (hit) {
      this.#entries.delete(key);
      if (hit.source === source && hit.generation === generation) {
        this.#entries.set(key, hit); // most recently used last
        this.hits++;
        return hit;
      }
      this.#drop(hit);
    }
    const made = make();
    const e: Entry = {
      ...made,
      source,
      generation,
      bytes: textureBytes(made.tex),
    };
    this.#entries.set(key, e);
    this.#bytes += e.bytes;
    for (const [k, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes || old === e) break;
      this.#entries.delete(k);
      this.#drop(old);
    }
    return e;
  }

  #drop(e: Entry): void {
    this.#bytes -= e.bytes;
    this.#evicted.push(e.tex);
  }

  /**
   * Hands evicted textures back to the pool. Call once the work that may
   * still use a texture got earlier in the same operation is recorded: until
   * then an evicted texture must not be handed out again and overwritten.
   */
  settle(): void {
    for (const t of this.#evicted) this.release(t);
    this.#evicted = [];
  }

  /** Entries now kept. */
  get size(): number {
    return this.#entries.size;
  }
}
