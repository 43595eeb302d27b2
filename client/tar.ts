/**
 * A POSIX ustar archive of a few files, written in memory: what a
 * checkpoint's archive is (its files at the archive's root, as the Tinker
 * CLI expects). Each file is a 512-byte header (name, mode 0644, size and
 * time in octal, checksum) and its bytes padded to 512; two zero blocks end
 * the archive. `tar -x` and Python's `tarfile` read it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ustarArchive } from "./tar.ts";
 * const tar = ustarArchive([{ name: "a.txt", bytes: new TextEncoder().encode("hi\n") }]);
 * assert.equal(tar.length, 512 + 512 + 1024);
 * assert.equal(new TextDecoder().decode(tar.subarray(257, 262)), "ustar");
 * ```
 *
 * @module
 */
import { InvalidArgumentError } from "../runtime/errors.ts";

/** One file of an archive. */
export interface TarFile {
  /** Its name: up to 100 bytes of UTF-8, no folders needed. */
  name: string;
  /** Its bytes. */
  bytes: Uint8Array;
  /** Its modification time. @default {now} */
  mtime?: Date;
}

const BLOCK = 512;

/** Largest file a ustar header can size (11 octal digits). */
const MAX_SIZE = 8 ** 11 - 1;

/** The archive of `files`, in order, as pieces to send or join. */
export function ustarPieces(files: readonly TarFile[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of files) {
    out.push(header(f));
    out.push(f.bytes);
    const pad = (BLOCK - f.bytes.length % BLOCK) % BLOCK;
    if (pad > 0) out.push(new Uint8Array(pad));
  }
  out.push(new Uint8Array(2 * BLOCK));
  return out;
}

/** The archive of `files`, in order, as one array. */
export function ustarArchive(files: readonly TarFile[]): Uint8Array {
  const pieces = ustarPieces(files);
  const tar = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    tar.set(p, at);
    at += p.length;
  }
  return tar;
}

function header(f: TarFile): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const name = new TextEncoder().encode(f.name);
  if (name.length === 0 || name.length > 100) {
    throw new InvalidArgumentError(
      "name",
      `a tar entry's name must be 1–100 bytes: got ${JSON.stringify(f.name)}`,
    );
  }
  if (f.bytes.length > MAX_SIZE) {
    throw new InvalidArgumentError(
      "bytes",
      `${f.name} is too large for a ustar archive (${f.bytes.length} bytes)`,
    );
  }
  const mtime = Math.floor((f.mtime ?? new Date()).getTime() / 1000);
  h.set(name, 0);
  ascii(h, 100, "0000644\0"); // mode
  ascii(h, 108, "0000000\0"); // uid
  ascii(h, 116, "0000000\0"); // gid
  ascii(h, 124, octal(f.bytes.length, 11) + "\0");
  ascii(h, 136, octal(Math.max(0, mtime), 11) + "\0");
  ascii(h, 148, "        "); // checksum, counted as spaces
  ascii(h, 156, "0"); // a regular file
  ascii(h, 257, "ustar\0");
  ascii(h, 263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  ascii(h, 148, octal(sum, 6) + "\0 ");
  return h;
}

function octal(n: number, digits: number): string {
  return n.toString(8).padStart(digits, "0");
}

function ascii(h: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) h[at + i] = s.charCodeAt(i);
}
