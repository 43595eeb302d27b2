/**
 * The in-process transport. Messages still travel as encoded bytes, so the
 * wire format is exercised exactly as it will be over NATS.
 *
 * @module
 */

import {
  ActorStoppedError,
  ActorTimeoutError,
  ConflictError,
  UnknownActorError,
} from "./errors.ts";
import type { Transport, TransportHandler } from "./transport.ts";

interface Pending {
  address: string;
  reject: (e: Error) => void;
}

/**
 * Delivers messages between actors of one process. Delivery is asynchronous
 * (a microtask later, never inside the sender's call) and FIFO per sender.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LocalTransport } from "./local_transport.ts";
 * const t = new LocalTransport();
 * t.register("echo", (b) => Promise.resolve(b));
 * const reply = await t.request("echo", new Uint8Array([7]), 1000);
 * assert.deepEqual(reply, new Uint8Array([7]));
 * await t.close();
 * ```
 */
export class LocalTransport implements Transport {
  #handlers = new Map<string, TransportHandler>();
  #pending = new Set<Pending>();

  /** Starts delivering `address`'s messages to `handler`. */
  register(address: string, handler: TransportHandler): void {
    if (this.#handlers.has(address)) {
      throw new ConflictError(`address "${address}" is already registered`);
    }
    this.#handlers.set(address, handler);
  }

  /** Stops delivering messages for `address`. */
  unregister(address: string): void {
    this.#handlers.delete(address);
  }

  /** Delivers `bytes` a microtask later; dropped if nobody listens. */
  send(address: string, bytes: Uint8Array): void {
    const handler = this.#handlers.get(address);
    if (!handler) return;
    queueMicrotask(() => {
      handler(bytes).catch(() => {
        // Fire and forget: a failing handler has nobody to tell.
      });
    });
  }

  /** Delivers `bytes` and resolves with the reply, within `timeoutMs`. */
  request(
    address: string,
    bytes: Uint8Array,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    const handler = this.#handlers.get(address);
    if (!handler) return Promise.reject(new UnknownActorError(address));
    return new Promise<Uint8Array>((resolve, reject) => {
      const pending: Pending = { address, reject };
      const settle = () => {
        clearTimeout(timer);
        this.#pending.delete(pending);
      };
      pending.reject = (e) => {
        settle();
        reject(e);
      };
      const timer = setTimeout(
        () => pending.reject(new ActorTimeoutError(address, timeoutMs)),
        timeoutMs,
      );
      this.#pending.add(pending);
      queueMicrotask(() => {
        handler(bytes).then(
          (reply) => {
            if (!this.#pending.has(pending)) return; // timed out or closed
            if (reply === undefined) {
              pending.reject(
                new Error(`handler at "${address}" gave no reply to a request`),
              );
              return;
            }
            settle();
            resolve(reply);
          },
          (e) => {
            if (this.#pending.has(pending)) pending.reject(e as Error);
          },
        );
      });
    });
  }

  /** Drops every registration and rejects pending requests. */
  close(): Promise<void> {
    this.#handlers.clear();
    for (const p of [...this.#pending]) {
      p.reject(new ActorStoppedError(p.address));
    }
    return Promise.resolve();
  }
}
