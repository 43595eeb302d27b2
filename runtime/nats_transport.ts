/**
 * `NatsTransport`: the {@link Transport} of a cluster. Each actor address is
 * a NATS subject under a prefix (`bios.trainer.run-1`); every registration
 * joins a queue group named by its subject, so actors that share an address
 * on several nodes (the samplers of one model) split its requests.
 *
 * - **Request/reply** goes through one inbox subscription per transport; a
 *   request nobody listens to is told apart from a slow one: the server's
 *   "no responders" status gives {@link UnknownActorError} at once, silence
 *   gives {@link ActorTimeoutError} after `timeoutMs`.
 * - **Large payloads.** A message over the server's `max_payload` would make
 *   the server close the whole connection, so every payload is sized first:
 *   one that does not fit goes in chunks. The first chunk goes to the queue
 *   subject, which picks one receiver; that receiver answers with its own
 *   direct subject, and the rest go there (chunks of one message must reach
 *   one receiver). Replies go in chunks to the requester's inbox.
 * - **Reconnects** are retried without limit. Subscriptions come back with
 *   the connection; a request made with `resend: true` (an operation that
 *   carries its own sequence number, so a second delivery is answered from
 *   the record) is published again after each reconnect, since its request
 *   or its reply may have been lost with the old connection; one made with
 *   `failOnReconnect: true` fails then instead, for its sender to recover.
 * - **Groups** ({@link NatsTransport.join}): several handlers, here or on
 *   other nodes, share one address (the samplers of one model). A group's
 *   receiver tells the requester its direct subject as it takes a request,
 *   so the liveness probe goes to that receiver, not to the group (where
 *   another member would answer for it).
 *
 * @module
 */

import {
  connect,
  type ConnectionOptions,
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  nuid,
  type Subscription,
} from "@nats-io/transport-node";
import {
  ActorStoppedError,
  ActorTimeoutError,
  ConflictError,
  UnknownActorError,
} from "./errors.ts";
import type {
  GroupSeat,
  RequestOptions,
  Transport,
  TransportHandler,
} from "./transport.ts";

/** Options of {@link NatsTransport.connect}. */
export interface NatsTransportOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Subject prefix of every address. @default {"bios"} */
  prefix?: string;
  /** Connection name, shown by the server's monitoring. */
  name?: string;
  /**
   * Anything else `connect` takes: credentials (`user`/`pass`, `token`,
   * `authenticator`), TLS, timeouts.
   */
  connection?: Partial<ConnectionOptions>;
}

/** Header marking one chunk of a message: `<id> <index> <count>`. */
const CHUNK = "Bios-Chunk";
/** Header of a receiver's answer to a first chunk: where the rest go. */
const DIRECT = "Bios-Direct";
/** Header of a reply that says the handler failed. */
const FAILED = "Bios-Failed";
/** Header of a group member's note to a requester: the subject to probe. */
const RECEIVER = "Bios-Receiver";
/**
 * A group request that no member has said it took, while the group answers
 * this many probes, went to a member that died before reading it: it fails.
 */
const UNCLAIMED_PROBES = 3;
/** Header of a liveness probe of a request's receiver, and of its answer. */
const PROBE = "Bios-Probe";
/** A request still unanswered after this long has its receiver probed … */
const PROBE_AFTER_MS = 1_000;
/** … this often: a receiver that is gone ends the wait at once. */
const PROBE_EVERY_MS = 1_000;
/** Room left in each message for headers and the protocol line. */
const HEADROOM = 8 * 1024;
/** Time a chunked message's first chunk waits for its receiver's answer. */
const ACK_TIMEOUT_MS = 30_000;
/** After a reconnect, how long "no responders" means "not subscribed again yet". */
const RESUBSCRIBE_GRACE_MS = 5_000;
/** Time a half-received chunked message is kept. */
const ASSEMBLY_TTL_MS = 120_000;

interface Pending {
  address: string;
  subject: string;
  bytes: Uint8Array;
  resend: boolean;
  /** Fails at a reconnect (see `RequestOptions.failOnReconnect`). */
  failOnReconnect?: boolean;
  resolve(bytes: Uint8Array): void;
  reject(e: Error): void;
  /** Chunks of a chunked reply, as they come. */
  parts?: Uint8Array[];
  /** Set while the first chunk of a chunked request waits for its receiver. */
  direct?: (subject: string) => void;
  /** The direct subject of the group member that took the request. */
  receiver?: string;
  /** Probes of a group answered while no member has said it took this. */
  unclaimed?: number;
  /** A probe's: a group member answered it (not the request's receiver). */
  groupAnswer?: () => void;
}

interface Assembly {
  parts: (Uint8Array | undefined)[];
  got: number;
  started: number;
}

interface Registration {
  queue: Subscription;
  direct: Subscription;
}

/**
 * A transport over a NATS connection.
 *
 * @example
 * ```ts ignore
 * const transport = await NatsTransport.connect({ servers: "nats://127.0.0.1:4222" });
 * const system = new ActorSystem({ transport });
 * ```
 */
export class NatsTransport implements Transport {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #inbox: string;
  readonly #inboxSub: Subscription;
  readonly #regs = new Map<string, Registration>();
  readonly #seats = new Set<Registration>();
  readonly #pending = new Map<string, Pending>();
  readonly #assemblies = new Map<string, Assembly>();
  #closed = false;
  #reconnectedAt = -Infinity;

  private constructor(nc: NatsConnection, prefix: string) {
    this.#nc = nc;
    this.#prefix = prefix;
    this.#inbox = `_INBOX.${nuid.next()}`;
    this.#inboxSub = nc.subscribe(`${this.#inbox}.*`, {
      callback: (_err, m) => this.#onReply(m),
    });
    void this.#watch();
  }

  /**
   * Connects to a NATS server (retrying without limit after any disconnect).
   *
   * @throws what `connect` throws when no server answers at first
   */
  static async connect(opts: NatsTransportOptions): Promise<NatsTransport> {
    const nc = await connect({
      servers: opts.servers,
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...opts.connection,
    });
    return new NatsTransport(nc, opts.prefix ?? "bios");
  }

  /** The NATS connection under this transport (for JetStream). */
  get connection(): NatsConnection {
    return this.#nc;
  }

  /** The largest payload one message may carry here (the server's `max_payload`). */
  get maxPayload(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Bytes of a payload per message, leaving room for headers. */
  get #chunkBytes(): number {
    return Math.max(1024, this.maxPayload - HEADROOM);
  }

  /** The subject of an address. */
  subject(address: string): string {
    return `${this.#prefix}.${address}`;
  }

  /**
   * Starts delivering `address`'s messages to `handler`, in its queue group.
   *
   * @throws {ConflictError} when the address already has a handler here
   */
  register(address: string, handler: TransportHandler): void {
    if (this.#regs.has(address)) {
      throw new ConflictError(`address "${address}" is already registered`);
    }
    const subject = this.subject(address);
    const directSubject = `${this.#prefix}._direct.${nuid.next()}`;
    const deliver = (m: Msg) => this.#onRequest(m, handler, directSubject);
    this.#regs.set(address, {
      queue: this.#nc.subscribe(subject, {
        queue: subject,
        callback: (_err, m) => deliver(m),
      }),
      direct: this.#nc.subscribe(directSubject, {
        callback: (_err, m) => deliver(m),
      }),
    });
  }

  /** Stops delivering messages for `address`; a no-op if not registered. */
  unregister(address: string): void {
    const r = this.#regs.get(address);
    if (!r) return;
    this.#regs.delete(address);
    r.queue.unsubscribe();
    r.direct.unsubscribe();
  }

  /**
   * Adds `handler` to the group at `address`: one more subscription in its
   * queue group (a process may hold several), each message to one member.
   */
  join(address: string, handler: TransportHandler): GroupSeat {
    const subject = this.subject(address);
    const directSubject = `${this.#prefix}._direct.${nuid.next()}`;
    const deliver = (m: Msg) =>
      this.#onRequest(m, handler, directSubject, true);
    const reg: Registration = {
      queue: this.#nc.subscribe(subject, {
        queue: subject,
        callback: (_err, m) => deliver(m),
      }),
      direct: this.#nc.subscribe(directSubject, {
        callback: (_err, m) => deliver(m),
      }),
    };
    this.#seats.add(reg);
    return {
      close: () => {
        if (!reg.queue.isClosed()) reg.queue.unsubscribe();
      },
      leave: () => {
        if (!this.#seats.delete(reg)) return;
        if (!reg.queue.isClosed()) reg.queue.unsubscribe();
        reg.direct.unsubscribe();
      },
    };
  }

  /** Fire and forget (in chunks when large); dropped if nobody listens. */
  send(address: string, bytes: Uint8Array): void {
    if (this.#closed) return;
    void this.#publish(this.subject(address), bytes).catch(() => {});
  }

  /**
   * Delivers `bytes` to one actor at `address` and resolves with its reply.
   *
   * @throws {UnknownActorError} at once when nobody listens on the address
   * @throws {ActorTimeoutError} when no reply comes within `timeoutMs`
   * @throws {ActorStoppedError} when the transport closes before the reply
   */
  request(
    address: string,
    bytes: Uint8Array,
    timeoutMs: number,
    opts: RequestOptions = {},
  ): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new ActorStoppedError(address));
    const token = nuid.next();
    return new Promise<Uint8Array>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        this.#pending.delete(token);
      };
      const p: Pending = {
        address,
        subject: this.subject(address),
        bytes,
        resend: opts.resend === true,
        failOnReconnect: opts.failOnReconnect === true,
        resolve: (b) => {
          settle();
          resolve(b);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      const timer = setTimeout(
        () => p.reject(new ActorTimeoutError(address, timeoutMs)),
        timeoutMs,
      );
      // A receiver that dies with the request in hand sends no reply and no
      // "no responders": probe it while waiting, so a dead one ends the wait.
      const probe = setInterval(() => this.#probe(p), PROBE_EVERY_MS);
      const first = setTimeout(() => this.#probe(p), PROBE_AFTER_MS);
      const settleProbes = () => {
        clearInterval(probe);
        clearTimeout(first);
      };
      const resolveP = p.resolve, rejectP = p.reject;
      p.resolve = (b) => {
        settleProbes();
        resolveP(b);
      };
      p.reject = (e) => {
        settleProbes();
        rejectP(e);
      };
      this.#pending.set(token, p);
      this.#publish(p.subject, bytes, `${this.#inbox}.${token}`, p).catch(
        (e) => p.reject(e as Error),
      );
    });
  }

  /**
   * Asks whether anyone still serves `p`'s address: "no responders" means
   * its receiver is gone, and `p` fails with {@link ActorStoppedError} (a
   * request marked `resend` waits for the reconnect instead while the
   * connection is down).
   */
  #probe(p: Pending): void {
    if (this.#closed || this.#nc.isClosed()) return;
    const token = nuid.next();
    const probe: Pending = {
      address: p.address,
      subject: p.subject,
      bytes: new Uint8Array(),
      resend: false,
      groupAnswer: () => {
        if (p.receiver !== undefined) return;
        p.unclaimed = (p.unclaimed ?? 0) + 1;
        if (p.unclaimed < UNCLAIMED_PROBES) return;
        p.reject(
          new ActorStoppedError(p.address, {
            cause: new Error(
              `no member of the group "${p.address}" took the request: the one it went to is gone`,
            ),
          }),
        );
      },
      resolve: () => this.#pending.delete(token),
      reject: () => {
        this.#pending.delete(token);
        // Just after a reconnect, receivers may not have subscribed again.
        if (Date.now() - this.#reconnectedAt < RESUBSCRIBE_GRACE_MS) return;
        p.reject(
          new ActorStoppedError(p.address, {
            cause: new Error(
              `no actor serves "${p.address}" any more: its receiver went away with the request`,
            ),
          }),
        );
      },
    };
    this.#pending.set(token, probe);
    setTimeout(() => this.#pending.delete(token), PROBE_EVERY_MS * 5);
    const h = natsHeaders();
    h.set(PROBE, "1");
    this.#nc.publish(p.receiver ?? p.subject, new Uint8Array(), {
      reply: `${this.#inbox}.${token}`,
      headers: h,
    });
  }

  /** Resolves once the server has every registration made so far. */
  async flush(): Promise<void> {
    if (!this.#closed) await this.#nc.flush();
  }

  /** Drops every registration, rejects pending requests, closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const address of [...this.#regs.keys()]) this.unregister(address);
    for (const r of this.#seats) {
      if (!r.queue.isClosed()) r.queue.unsubscribe();
      r.direct.unsubscribe();
    }
    this.#seats.clear();
    for (const p of [...this.#pending.values()]) {
      p.reject(new ActorStoppedError(p.address));
    }
    this.#inboxSub.unsubscribe();
    await this.#nc.close();
  }

  /** Resends the requests that asked for it after each reconnect. */
  async #watch(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type !== "reconnect") continue;
      this.#reconnectedAt = Date.now();
      for (const [token, p] of [...this.#pending]) {
        if (p.failOnReconnect) {
          p.reject(
            new ActorStoppedError(p.address, {
              cause: new Error(
                `the connection to NATS was lost with the request to "${p.address}" in flight: its outcome is unknown`,
              ),
            }),
          );
          continue;
        }
        if (!p.resend) continue;
        p.parts = undefined;
        p.receiver = undefined;
        p.unclaimed = undefined;
        this.#publish(p.subject, p.bytes, `${this.#inbox}.${token}`, p).catch(
          (e) => p.reject(e as Error),
        );
      }
    }
  }

  /**
   * Publishes `bytes` to `subject`: whole when it fits, else its first chunk
   * there and, once a receiver names its direct subject, the rest to it.
   */
  async #publish(
    subject: string,
    bytes: Uint8Array,
    reply?: string,
    pending?: Pending,
  ): Promise<void> {
    const size = this.#chunkBytes;
    if (bytes.length <= size) {
      this.#nc.publish(subject, bytes, { reply });
      return;
    }
    const id = nuid.next();
    const n = Math.ceil(bytes.length / size);
    const chunk = (i: number) => bytes.subarray(i * size, (i + 1) * size);
    const hdr = (i: number) => {
      const h = natsHeaders();
      h.set(CHUNK, `${id} ${i} ${n}`);
      return h;
    };
    // The first chunk picks a receiver (a queue group may have several);
    // it answers with its direct subject, where the rest go.
    const ackToken = nuid.next();
    const ack = `${this.#inbox}.${ackToken}`;
    const direct = new Promise<string>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#pending.delete(ackToken);
      };
      const ackPending: Pending = {
        address: subject,
        subject,
        bytes: new Uint8Array(),
        resend: false,
        resolve: () => {},
        reject: (e) => {
          done();
          reject(e);
        },
        direct: (s) => {
          done();
          resolve(s);
        },
      };
      // A tell has no request to time out: its first chunk's answer does.
      const timer = setTimeout(
        () =>
          ackPending.reject(
            new ActorTimeoutError(subject, ACK_TIMEOUT_MS),
          ),
        ACK_TIMEOUT_MS,
      );
      this.#pending.set(ackToken, ackPending);
      if (pending) {
        const orig = pending.reject;
        pending.reject = (e) => {
          ackPending.reject(e);
          orig(e);
        };
      }
    });
    const h0 = hdr(0);
    h0.set(DIRECT, ack);
    this.#nc.publish(subject, chunk(0), { reply, headers: h0 });
    const to = await direct;
    for (let i = 1; i < n; i++) {
      this.#nc.publish(to, chunk(i), { reply, headers: hdr(i) });
    }
  }

  /** A message for one of our actors: assemble it, hand it on, reply. */
  #onRequest(
    m: Msg,
    handler: TransportHandler,
    directSubject: string,
    group = false,
  ): void {
    if (m.headers?.get(PROBE)) {
      if (m.reply) {
        const h = natsHeaders();
        h.set(PROBE, group ? "group" : "alive");
        this.#nc.publish(m.reply, new Uint8Array(), { headers: h });
      }
      return;
    }
    const whole = this.#assemble(m, directSubject);
    if (!whole) return;
    if (group && m.reply && !this.#closed) {
      // The requester probes this receiver, not the group, while it waits.
      const h = natsHeaders();
      h.set(RECEIVER, directSubject);
      this.#nc.publish(m.reply, new Uint8Array(), { headers: h });
    }
    handler(whole).then(
      (out) => {
        if (m.reply && out !== undefined && !this.#closed) {
          void this.#publishReply(m.reply, out);
        }
      },
      (e) => {
        if (!m.reply || this.#closed) return;
        const h = natsHeaders();
        h.set(FAILED, String((e as Error)?.message ?? e).slice(0, 200));
        this.#nc.publish(m.reply, new Uint8Array(), { headers: h });
      },
    );
  }

  /** A reply goes to a private inbox: its chunks need no receiver picked. */
  #publishReply(reply: string, bytes: Uint8Array): void {
    const size = this.#chunkBytes;
    if (bytes.length <= size) {
      this.#nc.publish(reply, bytes);
      return;
    }
    const id = nuid.next();
    const n = Math.ceil(bytes.length / size);
    for (let i = 0; i < n; i++) {
      const h = natsHeaders();
      h.set(CHUNK, `${id} ${i} ${n}`);
      this.#nc.publish(reply, bytes.subarray(i * size, (i + 1) * size), {
        headers: h,
      });
    }
  }

  /**
   * The whole payload of `m`, or null while chunks are missing. A first
   * chunk that asks for it (`Bios-Direct`) is answered with `directSubject`.
   */
  #assemble(m: Msg, directSubject?: string): Uint8Array | null {
    const tag = m.headers?.get(CHUNK);
    // A message's data is a view of the connection's read buffer (a Node
    // Buffer, whose slice() is a view too), which the next read overwrites:
    // every payload is copied into a fresh Uint8Array before it is kept.
    if (!tag) return new Uint8Array(m.data);
    const [id, iText, nText] = tag.split(" ");
    const i = Number(iText), n = Number(nText);
    if (!(n > 1 && i >= 0 && i < n && Number.isInteger(i))) return null;
    const now = Date.now();
    for (const [k, a] of this.#assemblies) {
      if (now - a.started > ASSEMBLY_TTL_MS) this.#assemblies.delete(k);
    }
    let a = this.#assemblies.get(id);
    if (!a) {
      a = { parts: new Array(n), got: 0, started: now };
      this.#assemblies.set(id, a);
    }
    if (!a.parts[i]) {
      a.parts[i] = new Uint8Array(m.data);
      a.got++;
    }
    const ask = m.headers?.get(DIRECT);
    if (ask && directSubject) {
      this.#nc.publish(ask, new TextEncoder().encode(directSubject), {
        headers: (() => {
          const h = natsHeaders();
          h.set(DIRECT, directSubject);
          return h;
        })(),
      });
    }
    if (a.got < n) return null;
    this.#assemblies.delete(id);
    let total = 0;
    for (const p of a.parts) total += p!.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of a.parts) {
      out.set(p!, at);
      at += p!.length;
    }
    return out;
  }

  /** Something for our inbox: a reply (or a chunk of one), an ack, a status. */
  #onReply(m: Msg): void {
    const token = m.subject.slice(this.#inbox.length + 1);
    const p = this.#pending.get(token);
    if (!p) return;
    if (m.headers?.code === 503) {
      // Just after a reconnect the actor's node may not have subscribed
      // again yet: a request that may be sent twice tries again a while.
      if (p.resend && Date.now() - this.#reconnectedAt < RESUBSCRIBE_GRACE_MS) {
        setTimeout(() => {
          if (this.#pending.get(token) !== p) return;
          this.#publish(p.subject, p.bytes, `${this.#inbox}.${token}`, p)
            .catch((e) => p.reject(e as Error));
        }, 100);
        return;
      }
      p.reject(new UnknownActorError(p.address));
      return;
    }
    const probed = m.headers?.get(PROBE);
    if (probed) {
      if (probed === "group") p.groupAnswer?.();
      p.resolve(m.data);
      return;
    }
    const receiver = m.headers?.get(RECEIVER);
    if (receiver) {
      p.receiver = receiver;
      return;
    }
    const direct = m.headers?.get(DIRECT);
    if (direct && p.direct) {
      p.direct(direct);
      return;
    }
    const failed = m.headers?.get(FAILED);
    if (failed) {
      p.reject(new ActorStoppedError(p.address, { cause: new Error(failed) }));
      return;
    }
    const whole = this.#assemble(m);
    if (whole) p.resolve(whole);
  }
}
