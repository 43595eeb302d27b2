/**
 * GPU time per kernel, from timestamp queries: each dispatch gets its own
 * compute pass whose start and end the GPU stamps. For finding slow kernels
 * on a real GPU, where a step's host time shows only the total; off by
 * default (one pass a dispatch costs some speed). Needs the adapter's
 * "timestamp-query" feature.
 *
 * @module
 */

/** GPU time of one kernel (by label) over the dispatches profiled. */
export interface KernelTime {
  /** Dispatches. */
  count: number;
  /** Milliseconds of GPU time in all. */
  ms: number;
}

const QUERY_RESOLVE = 0x200;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const MAP_READ = 0x01;

/**
 * Stamps dispatches and adds up their GPU time by label.
 *
 * @example
 * ```ts ignore
 * const p = new KernelProfiler(device);
 * const pass = p.beginPass(encoder, "matmul 64x64x1");
 * // set pipeline and bind group, dispatch, then:
 * pass.end();
 * p.resolve(encoder); // before encoder.finish()
 * device.queue.submit([encoder.finish()]);
 * p.submitted();
 * console.log(await p.totals());
 * ```
 */
export class KernelProfiler {
  /** Dispatches one submit may stamp (the context submits when full). */
  readonly capacity: number;
  readonly #device: GPUDevice;
  readonly #set: GPUQuerySet;
  readonly #resolved: GPUBuffer;
  #labels: string[] = [];
  #staged: { read: GPUBuffer; labels: string[] } | null = null;
  #pending: Promise<void>[] = [];
  readonly #totals = new Map<string, KernelTime>();

  /** A profiler of up to `capacity` dispatches a submit. */
  constructor(device: GPUDevice, capacity = 1024) {
    this.#device = device;
    this.capacity = capacity;
    this.#set = device.createQuerySet({
      type: "timestamp",
      count: 2 * capacity,
    });
    this.#resolved = device.createBuffer({
      size: 16 * capacity,
      usage: QUERY_RESOLVE | COPY_SRC,
    });
  }

  /** Whether the stamps of this submit are all used. */
  get full(): boolean {
    return this.#labels.length >= this.capacity;
  }

  /** Begins a compute pass on `encoder` whose GPU time counts under `label`. */
  beginPass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    const i = this.#labels.length;
    this.#labels.push(label);
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.#set,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    });
  }

  /** Records copying this submit's stamps out; call before `finish()`. */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.#labels.length;
    if (n === 0) return;
    encoder.resolveQuerySet(this.#set, 0, 2 * n, this.#resolved, 0);
    const read = this.#device.createBuffer({
      size: 16 * n,
      usage: MAP_READ | COPY_DST,
    });
    encoder.copyBufferToBuffer(this.#resolved, 0, read, 0, 16 * n);
    this.#staged = { read, labels: this.#labels };
    this.#labels = [];
  }

  /** Starts reading the stamps of the submit just made. */
  submitted(): void {
    const s = this.#staged;
    if (!s) return;
    this.#staged = null;
    this.#pending.push(
      s.read.mapAsync(MAP_READ).then(() => {
        const t = new BigUint64Array(s.read.getMappedRange());
        s.labels.forEach((label, i) => {
          const ns = t[2 * i + 1] > t[2 * i] ? t[2 * i + 1] - t[2 * i] : 0n;
          const k = this.#totals.get(label) ?? { count: 0, ms: 0 };
          k.count++;
          k.ms += Number(ns) / 1e6;
          this.#totals.set(label, k);
        });
        s.read.unmap();
        s.read.destroy();
      }),
    );
  }

  /** GPU time by label of every submitted dispatch, once their stamps are in. */
  async totals(): Promise<Map<string, KernelTime>> {
    await Promise.all(this.#pending);
    this.#pending = [];
    return new Map(
      [...this.#totals].map(([k, v]) => [k, { ...v }]),
    );
  }

  /** Forgets the totals so far. */
  async reset(): Promise<void> {
    await Promise.all(this.#pending);
    this.#pending = [];
    this.#totals.clear();
  }
}
