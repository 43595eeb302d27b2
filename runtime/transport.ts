/**
 * The transport seam: how encoded messages reach an address.
 *
 * Actors and refs only ever see this interface, so the in-process
 * `LocalTransport` and a NATS transport are interchangeable. A transport moves opaque bytes; the envelope and codec
 * live above it.
 *
 * @module
 */

/**
 * Receives the bytes sent to one address. For a request, the resolved bytes
 * are the reply; for a fire-and-forget send the result is ignored.
 */
export type TransportHandler = (
  bytes: Uint8Array,
) => Promise<Uint8Array | undefined>;

/** Options of {@link Transport.request}. */
export interface RequestOptions {
  /**
   * The request may be delivered twice (it carries its own sequence number):
   * a transport that loses its connection sends it again once reconnected,
   * since the request or its reply may have been lost. @default {false}
   */
  resend?: boolean;
  /**
   * The request is not idempotent and its sender recovers from a lost one
   * (the trainer restores its shards and replays): when the connection is
   * lost and comes back with it in flight, it fails with
   * `ActorStoppedError` at once instead of waiting out its timeout, since
   * the request or its reply may have been lost. @default {false}
   */
  failOnReconnect?: boolean;
}

/**
 * A handler's place in a group address ({@link Transport.join}): `close`
 * takes it out of the group's rotation (no new messages; a request it holds
 * can still be probed and answered), `leave` drops it altogether.
 */
export interface GroupSeat {
  /** No new messages; what it holds is still answered. */
  close(): void;
  /** Gone: nothing reaches it any more. */
  leave(): void;
}

/**
 * Moves encoded messages between addresses (actor names such as
 * `"root.trainer"`; dot-separated tokens so they map onto NATS subjects).
 */
export interface Transport {
  /**
   * Starts delivering messages for `address` to `handler`.
   *
   * @throws {ConflictError} when the address already has a handler here
   */
  register(address: string, handler: TransportHandler): void;

  /** Stops delivering messages for `address`; a no-op if not registered. */
  unregister(address: string): void;

  /**
   * Adds `handler` to the group at `address`, which any number of handlers
   * (here or on other nodes) share: each message goes to one of them.
   * Absent where a transport has no groups (one process needs none).
   */
  join?(address: string, handler: TransportHandler): GroupSeat;

  /**
   * Fire and forget: delivers at most once, in send order per address;
   * bytes for an address nobody listens on are dropped.
   */
  send(address: string, bytes: Uint8Array): void;

  /**
   * Delivers `bytes` and resolves with the handler's reply.
   *
   * @throws {UnknownActorError} at once when nobody listens on the address
   * @throws {ActorTimeoutError} when no reply comes within `timeoutMs`
   * @throws {ActorStoppedError} when the transport closes before the reply
   */
  request(
    address: string,
    bytes: Uint8Array,
    timeoutMs: number,
    opts?: RequestOptions,
  ): Promise<Uint8Array>;

  /**
   * Resolves once the registrations made so far are in effect for every
   * sender (a NATS server has processed them); absent where registering
   * takes effect at once.
   */
  flush?(): Promise<void>;

  /** Drops every registration and rejects pending requests. */
  close(): Promise<void>;
}
