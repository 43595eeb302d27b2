/**
 * Errors of the WebGPU backend.
 *
 * @module
 */

/**
 * A WebGPU validation or usage error. The message starts with the kernel (or op)
 * it came from, e.g. `matmul_nt_8x8: Binding size 4 is smaller than ...`.
 */
export class WebGpuError extends Error {
  /** The kernel or op named in the message. */
  readonly kernel: string;

  /** Builds the error; `kernel` prefixes the message. */
  constructor(kernel: string, message: string, options?: ErrorOptions) {
    super(`${kernel}: ${message}`, options);
    this.name = "WebGpuError";
    this.kernel = kernel;
  }
}

/**
 * An op was given a tensor split over several buffers (because it exceeds the
 * binding limit) and that op cannot work on split tensors, or a split cannot
 * serve the op (one row of a sampled tensor over the limit). The message names
 * the op, the tensor, its size and the limit.
 */
export class BindingLimitError extends Error {
  /** The op that refused. */
  readonly op: string;
  /** The argument name of the tensor. */
  readonly tensor: string;
  /** The binding limit in bytes. */
  readonly limitBytes: number;

  /** Builds the error; `detail` follows the op and tensor. */
  constructor(op: string, tensor: string, limitBytes: number, detail: string) {
    super(`${op}: ${tensor} ${detail} (binding limit ${limitBytes} bytes)`);
    this.name = "BindingLimitError";
    this.op = op;
    this.tensor = tensor;
    this.limitBytes = limitBytes;
  }
}
