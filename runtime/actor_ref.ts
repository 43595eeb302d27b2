/**
 * `ActorRef`: how anyone talks to an actor, by address. A ref holds no
 * pointer to the actor, so it keeps working across restarts (same address)
 * and can name an actor on another node once a remote transport is in use.
 *
 * @module
 */

import {
  ActorStoppedError,
  InvalidArgumentError,
  UnknownActorError,
} from "./errors.ts";
import { encodeEnvelope, openReply } from "./_envelope.ts";
import type { Transport } from "./transport.ts";

/** Default `ask` timeout: 30 s. */
export const DEFAULT_ASK_TIMEOUT_MS = 30_000;

/** Options of {@link ActorRef.ask}. */
export interface AskOptions {
  /**
   * Milliseconds to wait for the reply.
   *
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * The message may be delivered twice (it carries its own sequence number,
   * so a replay is answered from a record): after a lost connection the
   * transport sends it again. @default {false}
   */
  resend?: boolean;
  /**
   * Fail with `ActorStoppedError` when the connection is lost and comes
   * back with the request in flight (its outcome unknown), instead of
   * waiting out `timeoutMs`: for callers that recover by replaying.
   * @default {false}
   */
  failOnReconnect?: boolean;
}

/** What a ref needs from its system: the transport and its stop records. */
export interface RefHost {
  /** The transport messages go through. */
  readonly transport: Transport;
  /** True when this node stopped an actor at `address` and none runs there now. */
  wasStopped(address: string): boolean;
}

/**
 * A reference to the actor at an address. `M` is its message type, `R` its
 * reply type. Get one from `ActorSystem.spawn` or `ActorSystem.ref`.
 */
export class ActorRef<M = unknown, R = unknown> {
  /** The actor's address. */
  readonly address: string;
  readonly #host: RefHost;

  /**
   * Makes a ref; prefer `ActorSystem.ref()` or `spawn()`.
   *
   * @param address the actor's address
   * @param host the system (transport and stop records) to send through
   */
  constructor(address: string, host: RefHost) {
    this.address = address;
    this.#host = host;
  }

  /**
   * Sends without waiting: delivered at most once, after any earlier `tell`
   * or `ask` from this node to the same address; dropped if nobody is there.
   *
   * @throws {CodecError} when the message cannot be encoded
   */
  tell(msg: M): void {
    this.#host.transport.send(this.address, encodeEnvelope("tell", msg));
  }

  /**
   * Sends and waits for the reply. Never hangs: it settles within
   * `timeoutMs` at the latest.
   *
   * @throws {ActorTimeoutError} when no reply comes in time (the actor may still act)
   * @throws {UnknownActorError} when no actor is at the address
   * @throws {ActorStoppedError} when the actor stopped before handling it
   * @throws {ActorCrashedError} when handling it crashed the actor
   * @throws {BiosError} (and subclasses) thrown by the actor's handler
   */
  async ask<T = R>(msg: M, options: AskOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidArgumentError(
        "timeoutMs",
        `timeoutMs must be a positive finite number of ms: got ${timeoutMs}`,
      );
    }
    const bytes = encodeEnvelope("ask", msg);
    let reply: Uint8Array;
    try {
      reply = await this.#host.transport.request(
        this.address,
        bytes,
        timeoutMs,
        {
          resend: options.resend === true,
          failOnReconnect: options.failOnReconnect === true,
        },
      );
    } catch (e) {
      // Nobody is there, but we know we stopped it: say so.
      if (
        e instanceof UnknownActorError && this.#host.wasStopped(this.address)
      ) {
        throw new ActorStoppedError(this.address, { cause: e });
      }
      throw e;
    }
    return openReply(reply) as T;
  }

  /** `ActorRef(<address>)`, for logs. */
  toString(): string {
    return `ActorRef(${this.address})`;
  }
}
