/**
 * The command recorder under the WebGPU backend: one device, buffer pools, a
 * pipeline cache, and an open command encoder that ops record into. Work is
 * submitted without waiting; only reads and `sync` wait.
 *
 * @module
 */

import { BindGroupCache } from "./bind_groups.ts";
import { FreeLists } from "./free_lists.ts";
import { KernelProfiler } from "./kernel_profiler.ts";
import { WebGpuError } from "./errors.ts";
import { BufferPool, type PoolStats } from "./pool.ts";
import { TextureCache } from "./texture_cache.ts";
import type { GpuTensor } from "./tensor.ts";

/** Type of one uniform field (all are 4 bytes). */
export type UniformType = "u32" | "i32" | "f32";

/** A compute kernel: its uniforms, storage bindings and WGSL body. */
export interface Kernel {
  /** Name used in error messages and as the pipeline cache key. */
  readonly name: string;
  /** Uniform fields, in order, readable in WGSL as `p.<name>`. */
  readonly uniforms: readonly (readonly [string, UniformType])[];
  /**
   * Storage bindings 1..n in order: name, access, WGSL type
   * (e.g. `["x", "read", "array<f32>"]`).
   */
  readonly buffers:
    readonly (readonly [string, "read" | "read_write", string])[];
  /**
   * Sampled `texture_2d<f32>` bindings after the storage ones, by name (the
   * matmul's operands on CPU adapters, where texel fetches are far cheaper
   * than storage loads).
   */
  readonly textures?: readonly string[];
  /**
   * rgba32float storage textures after the sampled ones: name, view
   * dimension and access (read-only unless "write"). On lavapipe their loads
   * are inlined (about 3× cheaper than a sampled texel fetch, which is a
   * function call there).
   */
  readonly storageTextures?: readonly (readonly [
    string,
    "2d" | "2d-array",
    ("read" | "write")?,
  ])[];
  /** WGSL declarations and the `@compute fn main` entry point. */
  readonly body: string;
}

/** A value bound to a storage binding: a tensor, or a raw buffer with its byte size. */
export type Binding = GpuTensor | {
  buffer: GPUBuffer;
  bytes: number;
  /** Where the binding starts in `buffer`, in bytes (aligned). @default {0} */
  offset?: number;
};

const SLOT = 256; // bytes per uniform slot (≥ any device's offset alignment)
const SLOTS = 2048;
/** Dispatches a real GPU's context records before it submits them. */
export const FLUSH_EVERY = 64;
/** Texture bytes the operand cache keeps (CPU adapters only use it). */
const TEXTURE_CACHE_BYTES = 256 << 20;
const STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
const READBACK = 0x01 | 0x08; // MAP_READ | COPY_DST
const TEXTURE = 0x04 | 0x08 | 0x02; // TEXTURE_BINDING | STORAGE_BINDING | COPY_DST

/** Builds the full WGSL source of a kernel (uniform struct and bindings first). */
export function kernelSource(k: Kernel): string {
  const fields = k.uniforms.length > 0
    ? k.uniforms
    : [["_pad", "u32"] as const];
  const struct =
    `struct Params {\n${
      fields.map(([n, t]) => `  ${n}: ${t},`).join("\n")
    }\n}\n` +
    `@group(0) @binding(0) var<uniform> p: Params;\n`;
  const binds = [
    ...k.buffers.map(([n, access, type], i) =>
      `@group(0) @binding(${i + 1}) var<storage, ${access}> ${n}: ${type};`
    ),
    ...(k.textures ?? []).map((n, i) =>
      `@group(0) @binding(${
        k.buffers.length + i + 1
      }) var ${n}: texture_2d<f32>;`
    ),
    ...(k.storageTextures ?? []).map(([n, dim, access], i) =>
      `@group(0) @binding(${
        k.buffers.length + (k.textures ?? []).length + i + 1
      }) var ${n}: texture_storage_${
        dim === "2d" ? "2d" : "2d_array"
      }<rgba32float, ${access ?? "read"}>;`
    ),
  ].join("\n");
  return `${struct}${binds}\n${k.body}`;
}

interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/**
 * Owns the device and records dispatches. Not thread-safe; one per backend.
 */
export class GpuContext {
  /** The device in use. */
  readonly device: GPUDevice;
  /** The adapter's description. */
  readonly adapterName: string;
  /** Whether the adapter is a CPU fallback (lavapipe, SwiftShader, WARP). */
  readonly isFallback: boolean;
  readonly #storage: BufferPool;
  readonly #readback: BufferPool;
  readonly #pipelines = new Map<string, Compiled>();
  readonly #textures = new FreeLists<string, GPUTexture>();
  readonly #allTextures: GPUTexture[] = [];
  readonly #uniformBuf: GPUBuffer;
  readonly #uniformData = new ArrayBuffer(SLOT * SLOTS);
  readonly #u32 = new Uint32Array(this.#uniformData);
  readonly #i32 = new Int32Array(this.#uniformData);
  readonly #f32 = new Float32Array(this.#uniformData);
  #slot = 0;
  #sinceSubmit = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #batch: string[] = [];
  #scopes: Promise<void>[] = [];
  #errors: WebGpuError[] = [];
  /**
   * Most bytes one read-back staging buffer holds ({@linkcode readMany} uses
   * several when the parts add up to more). At most the device's
   * `maxBufferSize`; the backend lowers it to its binding limit.
   */
  maxStagingBytes: number;
  /** Dispatches recorded since the context was made (for tests). */
  dispatches = 0;
  /** Submits since the context was made (for tests). */
  submits = 0;
  /** Buffer-to-texture copies since the context was made (for tests). */
  textureCopies = 0;
  /** Operand textures kept while their source buffer is unchanged. */
  readonly textureCache: TextureCache;
  readonly #generations = new WeakMap<GPUBuffer, number>();
  readonly #ids = new WeakMap<GPUBuffer | GPUTexture, number>();
  /** Bind groups reused across dispatches with the same bindings. */
  readonly bindGroups: BindGroupCache = new BindGroupCache();
  #nextId = 0;
  /**
   * GPU waits since the context was made: read-backs (one per `read` or
   * `readMany`, however many buffers) and `sync` calls (for tests).
   */
  waits = 0;

  /**
   * GPU time per kernel, when the context was made with `profileKernels`
   * (each dispatch then runs in its own timestamped compute pass).
   */
  readonly profiler: KernelProfiler | null;

  /**
   * Wraps an already created device; `profileKernels` needs the device to
   * have the "timestamp-query" feature.
   */
  constructor(
    device: GPUDevice,
    adapterName: string,
    isFallback: boolean,
    opts: { profileKernels?: boolean } = {},
  ) {
    this.device = device;
    this.adapterName = adapterName;
    this.isFallback = isFallback;
    this.profiler = opts.profileKernels ? new KernelProfiler(device) : null;
    const maxSize = device.limits.maxBufferSize;
    this.#storage = new BufferPool(device, STORAGE, maxSize);
    this.#readback = new BufferPool(device, READBACK, maxSize);
    this.maxStagingBytes = maxSize;
    this.textureCache = new TextureCache(
      TEXTURE_CACHE_BYTES,
      (t) => this.releaseTexture(t),
    );
    this.#uniformBuf = device.createBuffer({
      size: SLOT * SLOTS,
      usage: 0x40 | 0x08, // UNIFORM | COPY_DST
    });
    device.addEventListener("uncapturederror", (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.#errors.push(
        new WebGpuError(this.#batch.at(-1) ?? "webgpu", err.message),
      );
    });
  }

  /** Counters of the storage-buffer pool. */
  poolStats(): PoolStats {
    return this.#storage.stats();
  }

  /** A storage buffer of at least `bytes` bytes from the pool. */
  acquire(bytes: number): GPUBuffer {
    return this.#storage.acquire(bytes);
  }

  /** Returns a storage buffer to the pool (safe while recorded work still uses it). */
  release(buffer: GPUBuffer): void {
    this.#storage.release(buffer);
  }

  /** The compiled pipeline of `k`, compiling it (once) inside a validation scope. */
  pipeline(k: Kernel): Compiled {
    const hit = this.#pipelines.get(k.name);
    if (hit) return hit;
    const d = this.device;
    d.pushErrorScope("validation");
    const module = d.createShaderModule({
      code: kernelSource(k),
      label: k.name,
    });
    const entries: GPUBindGroupLayoutEntry[] = [
      // The uniform slot is a dynamic offset, so bind groups can be reused.
      {
        binding: 0,
        visibility: 4,
        buffer: { type: "uniform", hasDynamicOffset: true },
      },
      ...k.buffers.map(([, access], i): GPUBindGroupLayoutEntry => ({
        binding: i + 1,
        visibility: 4, // COMPUTE
        buffer: { type: access === "read" ? "read-only-storage" : "storage" },
      })),
      ...(k.textures ?? []).map((_, i): GPUBindGroupLayoutEntry => ({
        binding: k.buffers.length + i + 1,
        visibility: 4, // COMPUTE
        texture: { sampleType: "unfilterable-float" },
      })),
      ...(k.storageTextures ?? []).map((
        [, dim, access],
        i,
      ): GPUBindGroupLayoutEntry => ({
        binding: k.buffers.length + (k.textures ?? []).length + i + 1,
        visibility: 4, // COMPUTE
        storageTexture: {
          access: access === "write" ? "write-only" : "read-only",
          format: "rgba32float",
          viewDimension: dim,
        },
      })),
    ];
    const layout = d.createBindGroupLayout({ entries, label: k.name });
    const pipeline = d.createComputePipeline({
      label: k.name,
      layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.#watch(k.name, "shader or pipeline creation failed");
    const c = { pipeline, layout };
    this.#pipelines.set(k.name, c);
    return c;
  }

  #watch(name: string, what: string): void {
    this.#scopes.push(
      this.device.popErrorScope().then((e) => {
        if (e) {
          this.#errors.push(new WebGpuError(name, `${what}: ${e.message}`));
        }
      }),
    );
  }

  #passEncoder(): GPUComputePassEncoder {
    if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
    }
    return this.#pass;
  }

  /** The open encoder with no compute pass open, for copies and clears. */
  encoder(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    this.#encoder ??= this.device.createCommandEncoder();
    return this.#encoder;
  }

  /**
   * Records one dispatch of `k` over `groups` workgroups with the given uniform
   * values (in the order of `k.uniforms`) and storage bindings.
   */
  run(
    k: Kernel,
    bindings: readonly Binding[],
    uniforms: readonly number[],
    groups: readonly [number, number?, number?],
    textures: readonly GPUTexture[] = [],
  ): void {
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    if (bindings.length !== k.buffers.length) {
      throw new WebGpuError(
        k.name,
        `expected ${k.buffers.length} bindings, got ${bindings.length}`,
      );
    }
    const sampled = (k.textures ?? []).length;
    const nTex = sampled + (k.storageTextures ?? []).length;
    if (textures.length !== nTex) {
      throw new WebGpuError(
        k.name,
        `expected ${nTex} textures, got ${textures.length}`,
      );
    }
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (gx > max || gy > max || gz > max) {
      throw new WebGpuError(
        k.name,
        `workgroup count [${gx},${gy},${gz}] exceeds ${max}`,
      );
    }
    const c = this.pipeline(k);
    if (this.#slot === SLOTS) this.flush();
    const base = (this.#slot * SLOT) / 4;
    k.uniforms.forEach(([, type], i) => {
      const v = uniforms[i];
      if (type === "f32") this.#f32[base + i] = v;
      else if (type === "i32") this.#i32[base + i] = v;
      else this.#u32[base + i] = v;
    });
    const offset = this.#slot * SLOT;
    this.#slot++;
    this.device.pushErrorScope("validation");
    let key = k.name;
    for (const b of bindings) {
      key += `|${this.#id(b.buffer)}:${b.offset ?? 0}:${b.bytes}`;
    }
    for (const t of textures) key += `|t${this.#id(t)}`;
    const group = this.bindGroups.get(key, () =>
      this.device.createBindGroup({
        layout: c.layout,
        entries: [
          {
            binding: 0,
            resource: { buffer: this.#uniformBuf, offset: 0, size: SLOT },
          },
          ...bindings.map((b, i) => ({
            binding: i + 1,
            resource: {
              buffer: b.buffer,
              offset: b.offset ?? 0,
              size: Math.ceil(b.bytes / 4) * 4,
            },
          })),
          ...textures.map((t, i) => ({
            binding: bindings.length + i + 1,
            resource: i < sampled ? t.createView() : t.createView({
              dimension: k.storageTextures![i - sampled][1],
            }),
          })),
        ],
      }));
    k.buffers.forEach(([, access], i) => {
      if (access === "read_write") this.#touch(bindings[i].buffer);
    });
    const prof = this.profiler;
    const pass = prof
      ? prof.beginPass(this.encoder(), `${k.name} [${gx},${gy},${gz}]`)
      : this.#passEncoder();
    pass.setPipeline(c.pipeline);
    pass.setBindGroup(0, group, [offset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (prof) pass.end();
    this.#watch(k.name, "dispatch failed");
    this.#batch.push(k.name);
    this.dispatches++;
    // A real GPU starts on work once it is submitted: submitting every
    // FLUSH_EVERY dispatches lets it run while the host records the rest
    // (a step records ~450 and a submit costs ~0.2 ms there). CPU adapters
    // share the cores with the host, and submit once.
    const due = !this.isFallback && ++this.#sinceSubmit >= FLUSH_EVERY;
    if (due || prof?.full) this.flush();
  }

  /**
   * An rgba32float texture of exactly `width`×`height` texels and `layers`
   * array layers (sampled, read-only storage, copy destination) from the pool.
   */
  acquireTexture(width: number, height: number, layers = 1): GPUTexture {
    const hit = this.#textures.take(`${width}x${height}x${layers}`);
    if (hit) return hit;
    const t = this.device.createTexture({
      size: [width, height, layers],
      format: "rgba32float",
      usage: TEXTURE,
    });
    this.#allTextures.push(t);
    return this.#textures.stamp(t);
  }

  /**
   * Returns a texture to the pool. Like {@linkcode release}, safe while
   * recorded work still reads it: later users are recorded after that work.
   */
  releaseTexture(t: GPUTexture): void {
    const key = `${t.width}x${t.height}x${t.depthOrArrayLayers}`;
    this.#textures.put(key, t);
  }

  /**
   * Records a copy of `height` rows of `4 · width` floats, starting `offset`
   * bytes into `buffer` (rows `rowBytes` apart, a multiple of 256), into
   * array layer `layer` of texture `t` from its origin (from row `y`).
   */
  copyToTexture(
    buffer: GPUBuffer,
    offset: number,
    rowBytes: number,
    t: GPUTexture,
    width: number,
    height: number,
    layer = 0,
    y = 0,
  ): void {
    this.device.pushErrorScope("validation");
    this.encoder().copyBufferToTexture(
      { buffer, offset, bytesPerRow: rowBytes, rowsPerImage: height },
      { texture: t, origin: [0, y, layer] },
      [width, height],
    );
    this.#watch("copyToTexture", "buffer to texture copy failed");
    this.#batch.push("copyToTexture");
    this.textureCopies++;
  }

  /** Records zeroing `bytes` bytes of `buffer` from byte `offset`. */
  clear(buffer: GPUBuffer, offset: number, bytes: number): void {
    this.encoder().clearBuffer(buffer, offset, bytes);
    this.#touch(buffer);
  }

  /** Records a copy of `bytes` bytes between storage buffers. */
  copyBuffer(
    src: GPUBuffer,
    srcOffset: number,
    dst: GPUBuffer,
    dstOffset: number,
    bytes: number,
  ): void {
    this.encoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.#touch(dst);
  }

  /**
   * How many writes have been recorded to `buffer` (dispatches binding it
   * read-write, uploads, clears, copies into it): unchanged means its
   * contents are unchanged.
   */
  generation(buffer: GPUBuffer): number {
    return this.#generations.get(buffer) ?? 0;
  }

  /** A small number naming `buffer` for this context's lifetime (for cache keys). */
  bufferId(buffer: GPUBuffer): number {
    return this.#id(buffer);
  }

  #id(o: GPUBuffer | GPUTexture): number {
    let id = this.#ids.get(o);
    if (id === undefined) this.#ids.set(o, id = this.#nextId++);
    return id;
  }

  #touch(buffer: GPUBuffer): void {
    this.#generations.set(buffer, this.generation(buffer) + 1);
  }

  /** Whether recorded work is waiting to be submitted. */
  get pending(): boolean {
    return this.#encoder !== null;
  }

  /** Submits the recorded work without waiting for it. */
  flush(): void {
    if (!this.#encoder) return;
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (this.#slot > 0) {
      this.device.queue.writeBuffer(
        this.#uniformBuf,
        0,
        this.#uniformData,
        0,
        this.#slot * SLOT,
      );
    }
    const names = [...new Set(this.#batch)];
    this.device.pushErrorScope("validation");
    this.profiler?.resolve(this.#encoder);
    this.device.queue.submit([this.#encoder.finish()]);
    this.profiler?.submitted();
    this.#watch(
      names.length > 6
        ? `${names.slice(0, 6).join(",")},…`
        : names.join(",") || "submit",
      "submit failed",
    );
    this.#encoder = null;
    this.#slot = 0;
    this.#batch = [];
    this.#sinceSubmit = 0;
    this.submits++;
  }

  /**
   * Uploads bytes into a buffer at byte `offset`, after the work recorded so
   * far.
   */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    // queue.writeBuffer runs before any unsubmitted command buffer, so submit first.
    this.flush();
    this.#touch(buffer);
    if (data.byteLength > 0) {
      this.device.queue.writeBuffer(
        buffer,
        offset,
        data.buffer as ArrayBuffer,
        data.byteOffset,
        data.byteLength,
      );
    }
  }

  /** Copies `bytes` bytes of `buffer` back to the host (one map per call). */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const n = Math.ceil(Math.max(4, bytes) / 4) * 4;
    const staging = this.#readback.acquire(n);
    this.encoder().copyBufferToBuffer(buffer, 0, staging, 0, n);
    this.#batch.push("read");
    this.flush();
    this.waits++;
    try {
      await staging.mapAsync(1, 0, n); // GPUMapMode.READ
      const out = staging.getMappedRange(0, n).slice(0, bytes);
      staging.unmap();
      this.#readback.release(staging);
      await this.check();
      return out;
    } catch (e) {
      await this.check();
      throw e;
    }
  }

  /**
   * Copies several buffers back with as few staging buffers as
   * {@linkcode maxStagingBytes} allows, mapped together, so a batch of reads
   * costs one GPU wait instead of one each.
   */
  async readMany(
    parts: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[],
  ): Promise<ArrayBuffer[]> {
    if (parts.length === 0) return [];
    const sizes = parts.map((p) => Math.ceil(Math.max(4, p.bytes) / 4) * 4);
    // consecutive parts share a staging buffer up to the cap
    const groups: { first: number; end: number; bytes: number }[] = [];
    sizes.forEach((n, i) => {
      const g = groups.at(-1);
      if (g && g.bytes + n <= this.maxStagingBytes) {
        g.end = i + 1;
        g.bytes += n;
      } else groups.push({ first: i, end: i + 1, bytes: n });
    });
    const stagings = groups.map((g) => this.#readback.acquire(g.bytes));
    groups.forEach((g, s) => {
      let off = 0;
      for (let i = g.first; i < g.end; i++) {
        this.encoder().copyBufferToBuffer(
          parts[i].buffer,
          parts[i].offset ?? 0,
          stagings[s],
          off,
          sizes[i],
        );
        off += sizes[i];
      }
    });
    this.#batch.push("read");
    this.flush();
    this.waits++;
    try {
      await Promise.all(
        stagings.map((st, s) => st.mapAsync(1, 0, groups[s].bytes)), // READ
      );
      const out: ArrayBuffer[] = [];
      groups.forEach((g, s) => {
        const all = stagings[s].getMappedRange(0, g.bytes);
        let off = 0;
        for (let i = g.first; i < g.end; i++) {
          out.push(all.slice(off, off + parts[i].bytes));
          off += sizes[i];
        }
        stagings[s].unmap();
        this.#readback.release(stagings[s]);
      });
      await this.check();
      return out;
    } catch (e) {
      await this.check();
      throw e;
    }
  }

  /** Submits and waits until all recorded work is done. */
  async sync(): Promise<void> {
    this.flush();
    this.waits++;
    await this.device.queue.onSubmittedWorkDone();
    await this.check();
  }

  /** Throws the first validation error seen so far (naming its kernel), if any. */
  async check(): Promise<void> {
    const scopes = this.#scopes;
    this.#scopes = [];
    await Promise.all(scopes);
    if (this.#errors.length > 0) {
      const [first, ...rest] = this.#errors;
      this.#errors = [];
      if (rest.length > 0) first.message += ` (and ${rest.length} more errors)`;
      throw first;
    }
  }

  /** Destroys the pools and the device. */
  destroy(): void {
    this.#storage.destroy();
    this.#readback.destroy();
    this.#uniformBuf.destroy();
    for (const t of this.#allTextures) t.destroy();
    this.device.destroy();
  }
}
