/**
 * Cluster membership: every node publishes a heartbeat (its id, roles,
 * address, capacity, load and the work it hosts) on one subject every
 * `beatMs`, and keeps a view of the others from theirs. A member not heard
 * from for `missedBeats` of its intervals is dropped; one that says it
 * leaves (a drain) is dropped at once. Placement picks the least loaded live
 * member with a role.
 *
 * Without a bus (the embedded node) the view holds this node alone.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import {
  type Member,
  type MembershipMessage,
  MembershipMessageSchema,
  type NodeRole,
} from "../protocol/node_messages.ts";

/** Where membership messages go: a subject every node hears (not a queue group). */
export interface MembershipBus {
  /** Publishes to every subscriber. */
  publish(bytes: Uint8Array): void;
  /** Calls `cb` with each message; returns how to stop. */
  subscribe(cb: (bytes: Uint8Array) => void): () => void;
}

/** The subject of membership messages on NATS. */
export const MEMBERSHIP_SUBJECT = "bios_membership";

/** A {@link MembershipBus} on a NATS connection's `subject`. */
export function natsMembershipBus(
  nc: NatsConnection,
  subject: string = MEMBERSHIP_SUBJECT,
): MembershipBus {
  return {
    publish: (bytes) => {
      if (!nc.isClosed()) nc.publish(subject, bytes);
    },
    subscribe: (cb) => {
      const sub = nc.subscribe(subject, {
        callback: (_e, m) => cb(new Uint8Array(m.data)),
      });
      return () => sub.unsubscribe();
    },
  };
}

/** Why a member left the view. */
export type DownReason = "missed_beats" | "left";

/** Settings of {@link Membership}. */
export interface MembershipOptions {
  /** This node as it is now (called for every beat). */
  self: () => Member;
  /** Where beats go; none keeps a view of this node alone. */
  bus?: MembershipBus;
  /** Heartbeat interval, in ms. @default {1000} */
  beatMs?: number;
  /** Beats a member may miss before it is dropped. @default {3} */
  missedBeats?: number;
  /** Called once when a member is dropped, with its last known state. */
  onDown?: (member: Member, reason: DownReason, lastSeenMs: number) => void;
  /** Called when a member joins the view (again). */
  onUp?: (member: Member) => void;
}

/** A member in the view, with when it was last heard of. */
export interface MemberView extends Member {
  /** `Date.now()` of its last beat (now, for this node). */
  lastSeen: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A node's membership: its own heartbeat and its view of the others. */
export class Membership {
  /** Heartbeat interval, in ms. */
  readonly beatMs: number;
  /** Beats a member may miss before it is dropped. */
  readonly missedBeats: number;
  readonly #opts: MembershipOptions;
  readonly #others = new Map<string, MemberView>();
  /** Work placed on a member since its last beat (its beat counts it then). */
  readonly #placed = new Map<string, number>();
  #timer?: ReturnType<typeof setInterval>;
  #unsubscribe?: () => void;
  #left = false;
  /** When anything (our own beat's echo included) was last heard. */
  #lastHeard = Date.now();

  /** @param opts this node, the bus and the timings */
  constructor(opts: MembershipOptions) {
    this.#opts = opts;
    this.beatMs = opts.beatMs ?? 1000;
    this.missedBeats = opts.missedBeats ?? 3;
  }

  /** Subscribes, beats now and then every `beatMs`. */
  start(): void {
    const bus = this.#opts.bus;
    if (!bus || this.#unsubscribe || this.#left) return;
    this.#unsubscribe = bus.subscribe((b) => this.#receive(b));
    this.beat();
    this.#timer = setInterval(() => {
      this.beat();
      this.#sweep();
    }, this.beatMs);
  }

  /** Publishes this node's heartbeat now. */
  beat(): void {
    if (this.#left) return;
    this.#publish({ type: "beat", member: this.#opts.self() });
  }

  /**
   * Says this node leaves (others drop it at once, with `member`'s work),
   * and stops beating.
   */
  leave(member: Member = this.#opts.self()): void {
    if (this.#left) return;
    this.#publish({ type: "leave", member });
    this.stop();
    this.#left = true;
  }

  /** Stops beating and listening, without a word. */
  stop(): void {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** The live members, this node first, then by id. */
  members(): MemberView[] {
    this.#sweep();
    const others = [...this.#others.values()].sort((a, b) =>
      a.id < b.id ? -1 : 1
    );
    return [{ ...this.#opts.self(), lastSeen: Date.now() }, ...others];
  }

  /** The live member with id `id`, if any. */
  member(id: string): MemberView | undefined {
    return this.members().find((m) => m.id === id);
  }

  /**
   * The least loaded live member that is up and has every role in `roles`
   * (ties to the lowest id), counting work placed on it since its last
   * beat, passing over the ids in `skip`; `undefined` when none fits.
   */
  place(
    roles: readonly NodeRole[],
    skip: ReadonlySet<string> = new Set(),
  ): MemberView | undefined {
    const fit = this.members().filter((m) =>
      m.state === "up" && !skip.has(m.id) &&
      roles.every((r) => m.roles.includes(r))
    );
    const load = (m: MemberView) => m.load + (this.#placed.get(m.id) ?? 0);
    fit.sort((a, b) => load(a) - load(b) || (a.id < b.id ? -1 : 1));
    return fit[0];
  }

  /** Counts one more piece of work on member `id` until its next beat. */
  placed(id: string): void {
    if (id === this.#opts.self().id) return;
    this.#placed.set(id, (this.#placed.get(id) ?? 0) + 1);
  }

  #publish(msg: MembershipMessage): void {
    this.#opts.bus?.publish(encoder.encode(JSON.stringify(msg)));
  }

  #receive(bytes: Uint8Array): void {
    let msg: MembershipMessage;
    try {
      msg = MembershipMessageSchema.parse(JSON.parse(decoder.decode(bytes)));
    } catch {
      return; // not a member's message: ignored
    }
    const m = msg.member;
    const now = Date.now();
    // Hearing nothing, not even our own beats, means this node was cut off
    // (its connection down), not that the others died: after such a gap
    // each gets its missed beats anew before it is dropped.
    if (now - this.#lastHeard > this.beatMs * 2) {
      for (const o of this.#others.values()) o.lastSeen = now;
    }
    this.#lastHeard = now;
    if (m.id === this.#opts.self().id) return;
    if (msg.type === "leave") {
      const known = this.#others.get(m.id);
      this.#others.delete(m.id);
      this.#placed.delete(m.id);
      this.#opts.onDown?.(m, "left", known?.lastSeen ?? Date.now());
      return;
    }
    const isNew = !this.#others.has(m.id);
    this.#others.set(m.id, { ...m, lastSeen: Date.now() });
    this.#placed.delete(m.id);
    // A newcomer learns of this node at once rather than after a beat.
    if (isNew) {
      this.beat();
      this.#opts.onUp?.(m);
    }
  }

  #sweep(): void {
    const now = Date.now();
    if (!this.#opts.bus || now - this.#lastHeard > this.beatMs * 2) return;
    for (const [id, m] of this.#others) {
      if (now - m.lastSeen > m.beatMs * this.missedBeats) {
        this.#others.delete(id);
        this.#placed.delete(id);
        this.#opts.onDown?.(m, "missed_beats", m.lastSeen);
      }
    }
  }
}
