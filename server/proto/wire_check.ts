/**
 * A structural check of protobuf bytes against a message descriptor, run
 * before `@bufbuild/protobuf` decodes them, so that truncated or malformed
 * input is refused with an {@link InvalidArgumentError} naming the field
 * (`data[1].loss_fn_inputs.weights.dense is truncated: …`) rather than the
 * library's bare "premature EOF".
 *
 * It checks what a conforming parser rejects: every tag is a well-formed
 * varint with a field number ≥ 1 and a known wire type; a known field comes
 * with its type's wire type; varints end within their message (at most ten
 * bytes); fixed-width values and length-delimited payloads fit inside the
 * enclosing message, not just the buffer; strings are UTF-8. Unknown fields
 * are skipped (proto3 keeps them), after the same bounds checks. Every
 * step moves forward, so it always ends.
 *
 * @module
 */

import {
  type DescField,
  type DescMessage,
  ScalarType,
} from "@bufbuild/protobuf";
import { fieldName } from "../../protocol/parse.ts";
import { InvalidArgumentError } from "../../runtime/errors.ts";

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;

const WIRE_NAMES = [
  "varint",
  "64-bit",
  "length-delimited",
  "start-group",
  "end-group",
  "32-bit",
];

/** Deepest nesting accepted (Tinker's messages nest five deep). */
const MAX_DEPTH = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true });

type Path = PropertyKey[];

function fail(path: Path, problem: string): never {
  const field = path.length === 0 ? "body" : fieldName("", path);
  throw new InvalidArgumentError(field, `${field} ${problem}`);
}

/** Reads a varint at `pos` (before `end`); returns its value (exact below 2^53) and the next position. */
function varint(
  buf: Uint8Array,
  pos: number,
  end: number,
  path: Path,
  what: string,
): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) fail(path, `is truncated: its ${what} varint is cut off`);
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [value, pos];
  }
  fail(path, `has a malformed ${what}: a varint longer than ten bytes`);
}

/** The wire type a scalar of this kind travels as. */
function scalarWire(t: ScalarType): number {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return I32;
    default:
      return VARINT;
  }
}

/**
 * Reads a length-delimited value's length at `pos`; returns where its
 * payload starts and ends. When the payload is cut off and it is a message,
 * `inner` first checks the part that is there, so that the error names the
 * innermost field the cut falls in.
 */
function payload(
  buf: Uint8Array,
  pos: number,
  end: number,
  path: Path,
  inner?: (partial: Uint8Array) => void,
): [number, number] {
  const [len, at] = varint(buf, pos, end, path, "length");
  if (len > end - at) {
    inner?.(buf.subarray(at, end));
    fail(path, `is truncated: it declares ${len} bytes, ${end - at} remain`);
  }
  return [at, at + len];
}

/** Skips one value of wire type `wt` at `pos`; returns the next position. */
function skipValue(
  buf: Uint8Array,
  pos: number,
  end: number,
  wt: number,
  path: Path,
): number {
  switch (wt) {
    case VARINT:
      return varint(buf, pos, end, path, "value")[1];
    case I64:
    case I32: {
      const n = wt === I64 ? 8 : 4;
      if (end - pos < n) {
        fail(path, `is truncated: ${n} bytes needed, ${end - pos} remain`);
      }
      return pos + n;
    }
    case LEN:
      return payload(buf, pos, end, path)[1];
    default:
      fail(path, `has wire type ${wt} (groups are not used by this protocol)`);
  }
}

interface Layout {
  byNumber: Map<number, DescField>;
}

const layouts = new WeakMap<DescMessage, Layout>();

function layout(desc: DescMessage): Layout {
  let l = layouts.get(desc);
  if (l === undefined) {
    l = { byNumber: new Map(desc.fields.map((f) => [f.number, f])) };
    layouts.set(desc, l);
  }
  return l;
}

/** Checks a string payload is UTF-8. */
function checkString(buf: Uint8Array, path: Path): string {
  try {
    return utf8.decode(buf);
  } catch {
    fail(path, "is not valid UTF-8");
  }
}

/** Checks one value of a known field (wire type already matched); returns the next position. */
function checkValue(
  field: DescField,
  buf: Uint8Array,
  pos: number,
  end: number,
  wt: number,
  path: Path,
  depth: number,
): number {
  if (wt !== LEN) return skipValue(buf, pos, end, wt, path);
  const isMessage = field.fieldKind === "message" ||
    (field.fieldKind === "list" && field.listKind === "message");
  const inner = isMessage
    ? (p: Uint8Array) => walk(field.message!, p, path, depth + 1)
    : field.fieldKind === "map"
    ? (p: Uint8Array) => checkMapEntry(field, p, path, depth)
    : undefined;
  const [start, next] = payload(buf, pos, end, path, inner);
  const body = buf.subarray(start, next);
  switch (field.fieldKind) {
    case "message":
      walk(field.message, body, path, depth + 1);
      break;
    case "list":
      if (field.listKind === "message") {
        walk(field.message, body, path, depth + 1);
      } else if (field.listKind === "enum") {
        checkPacked(body, VARINT, path);
      } else if (field.scalar === ScalarType.STRING) {
        checkString(body, path);
      } else if (scalarWire(field.scalar) !== LEN) {
        checkPacked(body, scalarWire(field.scalar), path);
      }
      break;
    case "map":
      checkMapEntry(field, body, path, depth);
      break;
    case "scalar":
      if (field.scalar === ScalarType.STRING) checkString(body, path);
      break;
  }
  return next;
}

/** Checks a packed run of varints or fixed-width values fills its payload exactly. */
function checkPacked(body: Uint8Array, wt: number, path: Path): void {
  let pos = 0;
  let i = 0;
  while (pos < body.length) {
    pos = skipValue(body, pos, body.length, wt, [...path, i]);
    i++;
  }
}

/** Checks a map entry: key (field 1) and value (field 2). */
function checkMapEntry(
  field: DescField & { fieldKind: "map" },
  body: Uint8Array,
  path: Path,
  depth: number,
): void {
  const end = body.length;
  let pos = 0;
  let key: string | undefined;
  while (pos < end) {
    const [tag, at] = varint(body, pos, end, path, "entry's tag");
    const no = Math.floor(tag / 8);
    const wt = tag % 8;
    if (no === 1) {
      if (wt !== LEN) fail(path, `has a key of wire type ${wt} (expected 2)`);
      const [start, next] = payload(body, at, end, path);
      key = checkString(body.subarray(start, next), [...path, "<key>"]);
      pos = next;
    } else if (no === 2) {
      const valuePath = [...path, key ?? "<value>"];
      const want = field.mapKind === "message"
        ? LEN
        : field.mapKind === "enum"
        ? VARINT
        : scalarWire(field.scalar);
      if (wt !== want) {
        fail(
          valuePath,
          `has wire type ${wt} (${
            WIRE_NAMES[wt] ?? "invalid"
          }); expected ${want} (${WIRE_NAMES[want]})`,
        );
      }
      if (wt !== LEN) {
        pos = skipValue(body, at, end, wt, valuePath);
        continue;
      }
      const message = field.mapKind === "message" ? field.message : undefined;
      const [start, next] = payload(
        body,
        at,
        end,
        valuePath,
        message && ((p) => walk(message, p, valuePath, depth + 1)),
      );
      if (message !== undefined) {
        walk(message, body.subarray(start, next), valuePath, depth + 1);
      } else if (
        field.mapKind === "scalar" && field.scalar === ScalarType.STRING
      ) {
        checkString(body.subarray(start, next), valuePath);
      }
      pos = next;
    } else {
      if (no === 0 || wt === SGROUP || wt === EGROUP || wt > I32) {
        fail(path, `has a malformed entry tag (field ${no}, wire type ${wt})`);
      }
      pos = skipValue(body, at, end, wt, path);
    }
  }
}

/** Walks one message's bytes. */
function walk(
  desc: DescMessage,
  buf: Uint8Array,
  path: Path,
  depth: number,
): void {
  if (depth > MAX_DEPTH) fail(path, `nests deeper than ${MAX_DEPTH} messages`);
  const { byNumber } = layout(desc);
  const counts = new Map<number, number>();
  let pos = 0;
  while (pos < buf.length) {
    const [tag, at] = varint(buf, pos, buf.length, path, "field tag");
    const no = Math.floor(tag / 8);
    const wt = tag % 8;
    if (no === 0 || no > 0x1fffffff) {
      fail(
        path,
        `has a malformed field tag at byte ${pos} (field number ${no})`,
      );
    }
    if (wt === SGROUP || wt === EGROUP || wt > I32) {
      fail(
        path,
        `has a malformed field tag at byte ${pos} (field ${no}, wire type ${wt})`,
      );
    }
    const field = byNumber.get(no);
    if (field === undefined) {
      pos = skipValue(buf, at, buf.length, wt, [...path, `<field ${no}>`]);
      continue;
    }
    let fieldPath: Path = [...path, field.name];
    let want: number;
    let packedOk = false;
    switch (field.fieldKind) {
      case "scalar":
        want = scalarWire(field.scalar);
        break;
      case "enum":
        want = VARINT;
        break;
      case "message":
        want = LEN;
        break;
      case "map": {
        want = LEN;
        break;
      }
      case "list": {
        want = field.listKind === "message"
          ? LEN
          : field.listKind === "enum"
          ? VARINT
          : scalarWire(field.scalar);
        packedOk = want !== LEN;
        const i = counts.get(no) ?? 0;
        counts.set(no, i + 1);
        if (field.listKind === "message") fieldPath = [...fieldPath, i];
        break;
      }
    }
    if (wt !== want && !(packedOk && wt === LEN)) {
      fail(
        fieldPath,
        `has wire type ${wt} (${WIRE_NAMES[wt]}); expected ${want} (${
          WIRE_NAMES[want]
        })`,
      );
    }
    pos = checkValue(field, buf, at, buf.length, wt, fieldPath, depth);
  }
}

/**
 * Throws an {@link InvalidArgumentError} naming the field (snake_case, as
 * on the wire: `data[2].model_input[0].encoded_text.tokens`) at the first
 * structural fault in `bytes` read as `desc`; returns when they are sound.
 */
export function checkWire(desc: DescMessage, bytes: Uint8Array): void {
  walk(desc, bytes, [], 0);
}
