// One running actor: its mailbox, its one-message-at-a-time loop, and its
// exit. Private to the runtime; ActorSystem owns the cells.

import type { Actor, ActorContext, ExitReason, ShutdownSpec } from "./actor.ts";
import type { ActorRef } from "./actor_ref.ts";
import {
  ActorCrashedError,
  ActorStoppedError,
  BiosError,
  errorToWire,
} from "./errors.ts";
import { decodeEnvelope, encodeErr, encodeOk } from "./_envelope.ts";
import { Mailbox } from "./mailbox.ts";
import type { ActorSystem } from "./system.ts";
import type { GroupSeat, Transport } from "./transport.ts";

interface Item {
  msg: unknown;
  reply?: (bytes: Uint8Array) => void;
}

type CellState = "starting" | "running" | "stopping" | "stopped";

export interface CellOptions {
  address: string;
  actor: Actor;
  ref: ActorRef;
  system: ActorSystem;
  transport: Transport;
  shutdown: ShutdownSpec;
}

export class ActorCell {
  readonly address: string;
  readonly shutdown: ShutdownSpec;
  readonly #actor: Actor;
  readonly #transport: Transport;
  readonly #ctx: ActorContext;
  readonly #mailbox = new Mailbox<Item>();
  readonly #exit = Promise.withResolvers<ExitReason>();
  readonly #kill = Promise.withResolvers<"killed">();
  #killed = false; // brutal_kill asked: terminate must not run
  readonly #listeners: ((reason: ExitReason) => void)[] = [];
  #state: CellState = "starting";
  #processing = false;
  #current: Item | null = null;
  #inFlight: Promise<void> | null = null; // init, or the current receive
  #pendingStop: ExitReason | null = null;
  readonly #seats: GroupSeat[] = []; // group addresses it also answers at

  constructor(opts: CellOptions) {
    this.address = opts.address;
    this.shutdown = opts.shutdown;
    this.#actor = opts.actor;
    this.#transport = opts.transport;
    this.#ctx = {
      self: opts.ref,
      system: opts.system,
      stop: (reason = { kind: "normal" }) => this.#requestStop(reason),
      join: (address) => this.#join(address),
    };
  }

  get state(): CellState {
    return this.#state;
  }

  /** Resolves with the exit reason once the actor has fully exited. */
  get exited(): Promise<ExitReason> {
    return this.#exit.promise;
  }

  /** Calls `fn` once when the actor exits (only for actors that started). */
  onExit(fn: (reason: ExitReason) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      const i = this.#listeners.indexOf(fn);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /**
   * Registers the address, runs `init`, then opens the mailbox. Messages
   * that arrive during `init` wait in the mailbox. Throws what `init` threw.
   */
  async start(): Promise<void> {
    this.#transport.register(this.address, (b) => this.#deliver(b));
    const init = Promise.resolve().then(() => this.#actor.init?.(this.#ctx));
    this.#inFlight = init.then(() => {}, () => {});
    try {
      await init;
    } catch (e) {
      if (this.#state === "starting") {
        this.#close();
        this.#transport.unregister(this.address);
        for (const seat of this.#seats.splice(0)) seat.leave();
        this.#state = "stopped";
        this.#exit.resolve({ kind: "error", error: asError(e) });
      }
      throw e;
    } finally {
      this.#inFlight = null;
    }
    if (this.#state !== "starting") {
      throw new ActorStoppedError(this.address);
    }
    this.#state = "running";
    if (this.#pendingStop) this.stop(this.#pendingStop);
    else this.#kick();
  }

  /**
   * Stops the actor: closes the mailbox at once (queued asks get
   * ActorStoppedError), waits for the current message and `terminate`
   * within `shutdown`, and resolves with the final reason.
   */
  stop(
    reason: ExitReason,
    shutdown: ShutdownSpec = this.shutdown,
  ): Promise<ExitReason> {
    if (this.#state === "stopping" || this.#state === "stopped") {
      if (shutdown === "brutal_kill") this.#killNow();
      return this.#exit.promise;
    }
    const wasStarting = this.#state === "starting";
    this.#close();
    if (shutdown === "brutal_kill") this.#killNow();
    void this.#finish(reason, shutdown, !wasStarting);
    return this.#exit.promise;
  }

  #killNow(): void {
    this.#killed = true;
    this.#kill.resolve("killed");
  }

  #join(address: string): boolean {
    const join = this.#transport.join;
    if (!join || this.#state === "stopping" || this.#state === "stopped") {
      return false;
    }
    this.#seats.push(
      join.call(this.#transport, address, (b) => this.#deliver(b)),
    );
    return true;
  }

  #requestStop(reason: ExitReason): void {
    if (this.#state === "starting" || this.#processing) {
      if (this.#pendingStop?.kind !== "error") this.#pendingStop = reason;
      return;
    }
    if (this.#state === "running") this.stop(reason);
  }

  #deliver(bytes: Uint8Array): Promise<Uint8Array | undefined> {
    let env;
    try {
      env = decodeEnvelope(bytes);
    } catch (e) {
      return Promise.resolve(encodeErr(errorToWire(e)));
    }
    if (this.#state === "stopping" || this.#state === "stopped") {
      return Promise.resolve(
        env.t === "ask" ? this.#stoppedReply() : undefined,
      );
    }
    if (env.t === "tell") {
      this.#mailbox.push({ msg: env.m });
      this.#kick();
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      this.#mailbox.push({ msg: env.m, reply: resolve });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#state === "running" && !this.#processing) void this.#loop();
  }

  async #loop(): Promise<void> {
    this.#processing = true;
    while (this.#state === "running" && this.#pendingStop === null) {
      const item = this.#mailbox.shift();
      if (!item) break;
      this.#current = item;
      this.#inFlight = this.#handle(item);
      await this.#inFlight;
      this.#inFlight = null;
      this.#current = null;
    }
    this.#processing = false;
    if (this.#pendingStop && this.#state === "running") {
      this.stop(this.#pendingStop);
    }
  }

  async #handle(item: Item): Promise<void> {
    let result: unknown;
    try {
      result = await this.#actor.receive(item.msg, this.#ctx);
    } catch (e) {
      if (e instanceof BiosError) {
        item.reply?.(encodeErr(errorToWire(e)));
        return;
      }
      if (this.#state !== "running") {
        item.reply?.(this.#stoppedReply());
        return;
      }
      // Let it crash: close first, so a caller that retries at once is
      // told "stopped" rather than reaching the dying instance.
      const error = asError(e);
      this.stop({ kind: "error", error });
      item.reply?.(encodeErr(errorToWire(
        new ActorCrashedError(this.address, error.message, { cause: error }),
      )));
      return;
    }
    if (!item.reply) return;
    try {
      item.reply(encodeOk(result));
    } catch (e) {
      item.reply(encodeErr(errorToWire(e))); // unencodable reply: CodecError
    }
  }

  // Synchronous half of stopping: no new messages, queued asks answered.
  // The address stays registered until the message in hand is answered: new
  // messages are told "stopped" meanwhile, and a remote sender's liveness
  // probe still finds the receiver of the request it waits on.
  #close(): void {
    this.#state = "stopping";
    for (const seat of this.#seats) seat.close(); // the group shrinks now
    for (const item of this.#mailbox.drain()) {
      item.reply?.(this.#stoppedReply());
    }
  }

  async #finish(
    reason: ExitReason,
    shutdown: ShutdownSpec,
    started: boolean,
  ): Promise<void> {
    let final = reason;
    const inFlight = this.#inFlight;
    const work = (async () => {
      if (inFlight) await inFlight;
      if (started && !this.#killed) await this.#actor.terminate?.(reason);
    })();
    work.catch(() => {}); // an abandoned terminate may still reject later
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = typeof shutdown === "number"
      ? new Promise<"killed">((
        r,
      ) => (timer = setTimeout(() => r("killed"), shutdown)))
      : null;
    try {
      const outcome = await Promise.race(
        [work.then(() => "done" as const), this.#kill.promise, timeout].filter(
          (p) => p !== null,
        ),
      );
      if (outcome === "killed") {
        this.#killed = true; // a terminate not yet begun never runs
        final = { kind: "killed" };
      }
    } catch (e) {
      // terminate threw: the exit becomes abnormal, as in OTP.
      if (reason.kind !== "error") final = { kind: "error", error: asError(e) };
    } finally {
      clearTimeout(timer);
    }
    this.#current?.reply?.(this.#stoppedReply()); // abandoned mid-message
    this.#transport.unregister(this.address);
    for (const seat of this.#seats.splice(0)) seat.leave();
    this.#state = "stopped";
    this.#exit.resolve(final);
    if (!started) return;
    for (const fn of [...this.#listeners]) {
      try {
        fn(final);
      } catch (e) {
        console.error(`exit listener of "${this.address}" threw:`, e);
      }
    }
  }

  #stoppedReply(): Uint8Array {
    return encodeErr(errorToWire(new ActorStoppedError(this.address)));
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
