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
