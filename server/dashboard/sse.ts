/**
 * A server-sent events response body (`text/event-stream`): events, comment
 * heartbeats at a fixed interval (so proxies and the client see the
 * connection is alive), and one `closed` promise that settles when the
 * client goes (the body is cancelled) or the server ends it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SseStream } from "./sse.ts";
 * const sse = new SseStream({ heartbeatMs: 60_000 });
 * sse.event("metrics", '{"step":1}', "1");
 * sse.close();
 * const text = await new Response(sse.body).text();
 * assert.equal(text, 'retry: 3000\n\nid: 1\nevent: metrics\ndata: {"step":1}\n\n');
 * ```
 *
 * @module
 */

/** The content type of an event stream. */
export const EVENT_STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** How often an idle stream sends a heartbeat comment by default. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** Options of {@linkcode SseStream}. */
export interface SseOptions {
  /** Milliseconds between heartbeat comments. @default {15000} */
  heartbeatMs?: number;
  /** How long a client waits before reconnecting, sent first. @default {3000} */
  retryMs?: number;
}

const encoder = new TextEncoder();

/** One event stream: write events to it, return its {@linkcode body}. */
export class SseStream {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  /** Settles once the stream has ended, by the client or by {@linkcode close}. */
  readonly closed: Promise<void>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #timer: ReturnType<typeof setInterval>;
  #done = false;
  #resolve!: () => void;

  /** A new stream; its first bytes (the `retry:` field) are queued at once. */
  constructor(opts: SseOptions = {}) {
    this.closed = new Promise((r) => this.#resolve = r);
    this.body = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      cancel: () => this.#end(),
    });
    this.#write(`retry: ${opts.retryMs ?? 3000}\n\n`);
    this.#timer = setInterval(
      () => this.comment("heartbeat"),
      opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    );
  }

  /** Whether the stream has ended. */
  get done(): boolean {
    return this.#done;
  }

  /** Send event `name` with `data` (one line per line of it) and an `id`. */
  event(name: string, data: string, id?: string): void {
    let text = id !== undefined ? `id: ${oneLine(id)}\n` : "";
    text += `event: ${oneLine(name)}\n`;
    for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
    this.#write(text + "\n");
  }

  /** Send a comment line (clients ignore it; it keeps the connection alive). */
  comment(text: string): void {
    this.#write(`: ${oneLine(text)}\n\n`);
  }

  /** End the stream from the server's side. */
  close(): void {
    if (this.#done) return;
    try {
      this.#controller.close();
    } catch { /* already cancelled */ }
    this.#end();
  }

  #write(text: string): void {
    if (this.#done) return;
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.#end();
    }
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#timer);
    this.#resolve();
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]/g, " ");
}
