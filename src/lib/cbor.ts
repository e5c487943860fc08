/**
 * Canonical CBOR (RFC 8949) for evidence envelopes and ledger entries.
 *
 * One encoding per value: {@link encodeCanonical} writes the core deterministic encoding of
 * RFC 8949 §4.2.1, and {@link decodeStrict} accepts exactly that encoding and nothing else, so
 * `encodeCanonical(decodeStrict(b))` is `b` for every accepted `b`. That property is what lets a
 * ledger entry be hashed once and verified offline years later by anyone with a CBOR library.
 *
 * Data model (a deliberate subset of CBOR):
 *
 * | JS value                                | CBOR                                    |
 * | --------------------------------------- | --------------------------------------- |
 * | `null`                                  | simple value 22                         |
 * | `true` / `false`                        | simple values 21 / 20                   |
 * | safe-integer `number`, `bigint`         | major 0 / 1, range -2^64 .. 2^64-1      |
 * | `string` (well-formed UTF-16)           | major 3, UTF-8                          |
 * | `Uint8Array` (Buffer included)          | major 2                                 |
 * | array                                   | major 4                                 |
 * | plain object, `Map` (text/integer keys) | major 5, keys sorted bytewise (§4.2.1)  |
 *
 * Not in the model, rejected both ways: floats (also integral ones: a number that is not a safe
 * integer is a caller error), `undefined`, tags (so no bignums, dates or records), simple values
 * other than false/true/null, indefinite lengths, and map keys other than text or integers.
 *
 * Why not cbor-x for this: cbor-x is fast and general, but it does not sort map keys, accepts
 * indefinite lengths, tags, duplicate keys and non-shortest heads, and allocates before it can
 * apply our depth/item limits. A strict decoder has to check each of those at the byte where it
 * happens, which is simplest in a small dedicated codec over the project's bounds-checked
 * {@link Reader}. The tests check it against the RFC 8949 Appendix A vectors.
 */
import { MisuseError, ParseError } from './errors.js';
import { Reader } from './reader.js';

/** A map key of the data model. Integer keys decode as `number` when safe, else `bigint`. */
export type CborKey = string | number | bigint;

/** A map whose keys are all text strings decodes to a plain object. */
export interface CborObject {
  [key: string]: CborValue;
}

/** A map with at least one integer key decodes to a `Map`. */
export type CborMap = Map<CborKey, CborValue>;

/** Every value {@link decodeStrict} can return. */
export type CborValue = null | boolean | number | bigint | string | Uint8Array | CborValue[] | CborObject | CborMap;

/** Limits applied while decoding; each is checked before the allocation or loop it guards. */
export interface DecodeLimits {
  /** Deepest nesting of arrays and maps (the top-level item is depth 0). Default 32. */
  readonly maxDepth?: number;
  /** Most data items in the whole input, map keys included. Default 100 000. */
  readonly maxItems?: number;
  /** Largest input accepted, in bytes. Default 16 MiB. */
  readonly maxBytes?: number;
  /** Name of the structure, used as the root of field paths in errors. Default `cbor`. */
  readonly name?: string;
}

/** Options of {@link encodeCanonical}. */
export interface EncodeOptions {
  /** Deepest nesting accepted (a cyclic value hits it). Default 64. */
  readonly maxDepth?: number;
}

const DEFAULT_MAX_DEPTH = 32;
const DEFAULT_MAX_ITEMS = 100_000;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const DEFAULT_ENCODE_MAX_DEPTH = 64;

const MAJOR_UINT = 0;
const MAJOR_NINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const NINT_MIN = -0x1_0000_0000_0000_0000n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/** A string holds a lone surrogate: it has no UTF-8 form, and TextEncoder would replace it. */
const LONE_SURROGATE_RE = /\p{Surrogate}/u;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ----------------------------------------------------------------------------------------------
// Encoding
// ----------------------------------------------------------------------------------------------

/**
 * Writes an item head with the shortest argument encoding (RFC 8949 §4.2.1, "preferred
 * serialization" of integers and lengths).
 */
/**
 * Where a value sits in the encoded tree, for error messages only: a chain of segments that is
 * turned into text (`$.body.claims[3]`) only when an error is thrown, so encoding a large value
 * builds no path strings.
 */
interface PathNode {
  readonly parent: PathNode | null;
  /** A text map key (`.k`), an array index or integer map key (`[k]`), or a key position (`{key k}`). */
  readonly seg: string;
}

const ROOT: PathNode = { parent: null, seg: '$' };

function pathText(p: PathNode): string {
  const segs: string[] = [];
  for (let n: PathNode | null = p; n !== null; n = n.parent) segs.push(n.seg);
  return segs.reverse().join('');
}

function child(parent: PathNode, key: unknown): PathNode {
  return { parent, seg: typeof key === 'string' ? `.${key}` : `[${String(key)}]` };
}

function encodeError(path: PathNode | string, message: string): MisuseError {
  const p = typeof path === 'string' ? path : pathText(path);
  return new MisuseError('MISUSE_ARGUMENT', `canonical CBOR: ${p}: ${message}`, { field: p });
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Printable ASCII: its UTF-8 form is its code units, no encoder needed (most keys and ids). */
const ASCII_RE = /^[\x20-\x7e]*$/;

/**
 * Encoded forms of short ASCII text keys, which repeat in every entry and envelope. Bounded:
 * emptied when full, so hostile key sets cannot grow it.
 */
const KEY_CACHE = new Map<string, Uint8Array>();
const KEY_CACHE_MAX = 4096;

/**
 * A scratch buffer that encodings start in (the result is always copied out), so a small
 * encoding allocates only its result. Taken by one encoding at a time: a nested call (from a
 * getter) gets a fresh buffer.
 */
let scratch: Uint8Array | null = new Uint8Array(4096);

/** The output buffer of one encoding: grows by doubling, bytes written without a DataView. */
class Out {
  buf: Uint8Array;
  len = 0;

  constructor(buf: Uint8Array = new Uint8Array(64)) {
    this.buf = buf;
  }

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  head(major: number, n: number | bigint): void {
    const mt = major << 5;
    if (typeof n === 'bigint') {
      if (n <= 0xffff_ffffn) return this.head(major, Number(n));
      this.ensure(9);
      this.buf[this.len++] = mt | 27;
      new DataView(this.buf.buffer).setBigUint64(this.len, n);
      this.len += 8;
      return;
    }
    this.ensure(9);
    const b = this.buf;
    if (n < 24) b[this.len++] = mt | n;
    else if (n <= 0xff) {
      b[this.len++] = mt | 24;
      b[this.len++] = n;
    } else if (n <= 0xffff) {
      b[this.len++] = mt | 25;
      b[this.len++] = n >>> 8;
      b[this.len++] = n & 0xff;
    } else if (n <= 0xffff_ffff) {
      b[this.len++] = mt | 26;
      b[this.len++] = n >>> 24;
      b[this.len++] = (n >>> 16) & 0xff;
      b[this.len++] = (n >>> 8) & 0xff;
      b[this.len++] = n & 0xff;
    } else {
      this.head(major, BigInt(n));
    }
  }

  bytes(v: Uint8Array): void {
    this.ensure(v.length);
    this.buf.set(v, this.len);
    this.len += v.length;
  }

  /** Code units of a string already known to be printable ASCII. */
  ascii(s: string): void {
    this.ensure(s.length);
    const b = this.buf;
    let o = this.len;
    for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i);
    this.len = o;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function encodeInteger(w: Out, v: number | bigint, path: PathNode): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw encodeError(path, Number.isFinite(v) && Number.isInteger(v)
        ? `integer ${v} is beyond Number.MAX_SAFE_INTEGER; pass it as a bigint`
        : `${v} is not an integer; floats are not part of the data model`);
    }
    if (v >= 0) w.head(MAJOR_UINT, v);
    else w.head(MAJOR_NINT, -1 - v);
    return;
  }
  if (v > U64_MAX || v < NINT_MIN) throw encodeError(path, `bigint ${v} is outside -2^64 .. 2^64-1`);
  if (v >= 0n) w.head(MAJOR_UINT, v);
  else w.head(MAJOR_NINT, -1n - v);
}

function encodeText(w: Out, s: string, path: PathNode): void {
  if (s.length <= 256 && ASCII_RE.test(s)) {
    w.head(MAJOR_TEXT, s.length);
    w.ascii(s);
    return;
  }
  if (LONE_SURROGATE_RE.test(s)) throw encodeError(path, 'string holds a lone surrogate and has no UTF-8 form');
  const b = textEncoder.encode(s);
  w.head(MAJOR_TEXT, b.length);
  w.bytes(b);
}

function encodeKey(k: unknown, path: PathNode): Uint8Array {
  if (typeof k === 'string') {
    const hit = KEY_CACHE.get(k);
    if (hit !== undefined) return hit;
    // A short printable-ASCII text key is its head byte and its code units.
    if (k.length < 24 && ASCII_RE.test(k)) {
      const out = new Uint8Array(1 + k.length);
      out[0] = (MAJOR_TEXT << 5) | k.length;
      for (let i = 0; i < k.length; i++) out[i + 1] = k.charCodeAt(i);
      if (KEY_CACHE.size >= KEY_CACHE_MAX) KEY_CACHE.clear();
      KEY_CACHE.set(k, out);
      return out;
    }
  }
  const w = new Out();
  const at: PathNode = { parent: path, seg: `{key ${String(k)}}` };
  if (typeof k === 'string') encodeText(w, k, at);
  else if (typeof k === 'number' || typeof k === 'bigint') encodeInteger(w, k, at);
  else throw encodeError(at, `map key of type ${typeof k}; only text and integer keys are allowed`);
  return w.finish();
}

interface EncodedKey {
  readonly kb: Uint8Array;
  readonly k: unknown;
  readonly v: unknown;
}

function byEncodedKey(a: EncodedKey, b: EncodedKey): number {
  return compareBytes(a.kb, b.kb);
}

function encodeMap(w: Out, entries: EncodedKey[], path: PathNode, depth: number, maxDepth: number): void {
  entries.sort(byEncodedKey);
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes((entries[i - 1] as EncodedKey).kb, (entries[i] as EncodedKey).kb) === 0) {
      throw encodeError(path, `duplicate map key ${String((entries[i] as EncodedKey).k)}`);
    }
  }
  w.head(MAJOR_MAP, entries.length);
  for (const e of entries) {
    w.bytes(e.kb);
    encodeItem(w, e.v, path, e.k, depth + 1, maxDepth);
  }
}

/** Encodes `v`, found under `key` of the container at `parent` (`key` undefined: `parent` is its own path). */
function encodeItem(w: Out, v: unknown, parent: PathNode, key: unknown, depth: number, maxDepth: number): void {
  if (v === null) {
    w.ensure(1);
    w.buf[w.len++] = 0xf6;
    return;
  }
  switch (typeof v) {
    case 'boolean':
      w.ensure(1);
      w.buf[w.len++] = v ? 0xf5 : 0xf4;
      return;
    case 'number':
    case 'bigint':
      encodeInteger(w, v, key === undefined ? parent : child(parent, key));
      return;
    case 'string':
      encodeText(w, v, key === undefined ? parent : child(parent, key));
      return;
    case 'object':
      break;
    default:
      throw encodeError(key === undefined ? parent : child(parent, key), `${typeof v} is not part of the data model`);
  }
  const path = key === undefined ? parent : child(parent, key);
  if (depth >= maxDepth) throw encodeError(path, `nesting deeper than ${maxDepth} (is the value cyclic?)`);
  if (v instanceof Uint8Array) {
    w.head(MAJOR_BYTES, v.length);
    w.bytes(v);
    return;
  }
  if (Array.isArray(v)) {
    w.head(MAJOR_ARRAY, v.length);
    // A hole in a sparse array reads as undefined and is rejected below.
    for (let i = 0; i < v.length; i++) encodeItem(w, v[i], path, i, depth + 1, maxDepth);
    return;
  }
  if (v instanceof Map) {
    const entries: EncodedKey[] = [];
    for (const [k, x] of v as Map<unknown, unknown>) entries.push({ kb: encodeKey(k, path), k, v: x });
    encodeMap(w, entries, path, depth, maxDepth);
    return;
  }
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    throw encodeError(path, 'only Uint8Array byte strings are allowed (not other typed arrays or ArrayBuffer)');
  }
  if (!isPlainObject(v)) {
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    throw encodeError(path, `${typeof name === 'string' ? name : 'object'} instance is not a plain object`);
  }
  if (Object.getOwnPropertySymbols(v).length > 0) throw encodeError(path, 'object has symbol keys');
  const entries: EncodedKey[] = [];
  for (const k in v) {
    if (Object.prototype.hasOwnProperty.call(v, k)) entries.push({ kb: encodeKey(k, path), k, v: v[k] });
  }
  encodeMap(w, entries, path, depth, maxDepth);
}

/**
 * The RFC 8949 §4.2.1 core deterministic encoding of `value`: shortest integer and length
 * heads, definite lengths only, map keys sorted by the bytewise order of their encodings.
 *
 * `value` is checked at run time against the data model (see the module comment); numbers must
 * be safe integers, so a float, `NaN` or `Infinity` is an error, never silently rounded.
 *
 * @throws MisuseError MISUSE_ARGUMENT naming the path of the offending value
 */
export function encodeCanonical(value: unknown, options: EncodeOptions = {}): Uint8Array {
  const taken = scratch;
  scratch = null;
  const w = new Out(taken ?? new Uint8Array(1024));
  try {
    encodeItem(w, value, ROOT, undefined, 0, options.maxDepth ?? DEFAULT_ENCODE_MAX_DEPTH);
    return w.finish();
  } finally {
    // Keep the scratch buffer (grown, if the encoding grew it, up to 1 MiB).
    if (taken !== null) scratch = w.buf.length <= 1 << 20 ? w.buf : taken;
  }
}

// ----------------------------------------------------------------------------------------------
// Decoding
// ----------------------------------------------------------------------------------------------

class StrictDecoder {
  readonly #r: Reader;
  readonly #maxDepth: number;
  readonly #maxItems: number;
  #items = 0;

  constructor(r: Reader, maxDepth: number, maxItems: number) {
    this.#r = r;
    this.#maxDepth = maxDepth;
    this.#maxItems = maxItems;
  }

  /** A PARSE_BAD_ENCODING error about `field` at relative offset `at`. */
  #fail(field: string, message: string, at: number): ParseError {
    return this.#r.error('PARSE_BAD_ENCODING', field, message, { at });
  }

  /**
   * The argument of an item head. Rejects reserved additional information (28-30), the
   * indefinite-length marker (31) and any argument not in its shortest form.
   */
  #argument(ai: number, major: number, at: number, field: string): number | bigint {
    if (ai < 24) return ai;
    switch (ai) {
      case 24: {
        const v = this.#r.u8(field);
        if (v < 24) throw this.#fail(field, `non-shortest encoding: ${v} written with a 1-byte argument`, at);
        return v;
      }
      case 25: {
        const v = this.#r.u16(field);
        if (v <= 0xff) throw this.#fail(field, `non-shortest encoding: ${v} written with a 2-byte argument`, at);
        return v;
      }
      case 26: {
        const v = this.#r.u32(field);
        if (v <= 0xffff) throw this.#fail(field, `non-shortest encoding: ${v} written with a 4-byte argument`, at);
        return v;
      }
      case 27: {
        const v = this.#r.u64(field);
        if (v <= 0xffff_ffffn) throw this.#fail(field, `non-shortest encoding: ${v} written with an 8-byte argument`, at);
        return v <= MAX_SAFE_BIG ? Number(v) : v;
      }
      case 31:
        throw this.#fail(field, major === MAJOR_SIMPLE ? 'unexpected break code (indefinite lengths are not allowed)' : `indefinite-length item of major type ${major} is not allowed`, at);
      default:
        throw this.#fail(field, `reserved additional information ${ai} in major type ${major}`, at);
    }
  }

  /** A length or count argument: must fit in what is left of the input before anything is allocated. */
  #length(n: number | bigint, perItem: number, what: string, at: number, field: string): number {
    const remaining = this.#r.remaining;
    if (typeof n === 'bigint' || n * perItem > remaining) {
      throw this.#r.error('PARSE_SIZE_EXCEEDED', field, `${what} of ${n} exceeds the ${remaining} bytes left`, {
        at,
        expected: `<= ${Math.floor(remaining / perItem)}`,
        actual: String(n),
      });
    }
    return n;
  }

  #countItems(n: number, at: number, field: string): void {
    this.#items += n;
    if (this.#items > this.#maxItems) {
      throw this.#r.error('PARSE_SIZE_EXCEEDED', field, `more than ${this.#maxItems} data items`, { at, expected: `<= ${this.#maxItems}` });
    }
  }

  /** One data item; `isKey` restricts it to a map key (text or integer), checked on the head byte. */
  item(depth: number, field: string, isKey = false): CborValue {
    const at = this.#r.offset;
    this.#countItems(1, at, field);
    const ib = this.#r.u8(field);
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (isKey && major !== MAJOR_UINT && major !== MAJOR_NINT && major !== MAJOR_TEXT) {
      // Checked on the head byte, so a huge nested key is never built.
      throw this.#fail(field, `map key of major type ${major}; only text and integer keys are allowed`, at);
    }

    if (major === MAJOR_SIMPLE) {
      switch (ai) {
        case 20:
          return false;
        case 21:
          return true;
        case 22:
          return null;
        case 23:
          throw this.#fail(field, 'undefined is not allowed', at);
        case 24:
          throw this.#fail(field, 'simple values other than false, true and null are not allowed', at);
        case 25:
        case 26:
        case 27:
          throw this.#fail(field, 'floating-point values are not allowed', at);
        case 31:
          throw this.#fail(field, 'unexpected break code (indefinite lengths are not allowed)', at);
        default:
          throw this.#fail(field, ai < 20 ? `unassigned simple value ${ai} is not allowed` : `reserved additional information ${ai} in major type 7`, at);
      }
    }
    if (major === MAJOR_TAG) {
      // Report the tag number when it is readable; a malformed head is reported as such.
      const tag = this.#argument(ai, major, at, field);
      throw this.#fail(field, `tags are not allowed (tag ${tag})`, at);
    }

    const n = this.#argument(ai, major, at, field);
    switch (major) {
      case MAJOR_UINT:
        return n;
      case MAJOR_NINT:
        if (typeof n === 'number' && n < Number.MAX_SAFE_INTEGER) return -1 - n;
        return -1n - BigInt(n);
      case MAJOR_BYTES: {
        const len = this.#length(n, 1, 'byte string length', at, field);
        return this.#r.bytes(len, field).slice();
      }
      case MAJOR_TEXT: {
        const len = this.#length(n, 1, 'text string length', at, field);
        const b = this.#r.bytes(len, field);
        try {
          return textDecoder.decode(b);
        } catch (e) {
          throw new ParseError('PARSE_BAD_ENCODING', `${this.#r.fieldPath(field)} at offset ${at}: text string is not valid UTF-8`, {
            field: this.#r.fieldPath(field),
            offset: at,
            cause: e,
          });
        }
      }
      case MAJOR_ARRAY: {
        const count = this.#length(n, 1, 'array count', at, field);
        this.#checkDepth(depth + 1, at, field);
        const out: CborValue[] = [];
        for (let i = 0; i < count; i++) out.push(this.item(depth + 1, `${field}[${i}]`));
        return out;
      }
      default: {
        // MAJOR_MAP: each entry is at least two bytes (key and value).
        const count = this.#length(n, 2, 'map size', at, field);
        this.#checkDepth(depth + 1, at, field);
        return this.#map(count, depth + 1, field);
      }
    }
  }

  #checkDepth(depth: number, at: number, field: string): void {
    if (depth > this.#maxDepth) {
      throw this.#r.error('PARSE_SIZE_EXCEEDED', field, `nesting deeper than ${this.#maxDepth}`, { at, expected: `<= ${this.#maxDepth}` });
    }
  }

  #map(count: number, depth: number, field: string): CborValue {
    const keys: CborKey[] = [];
    const values: CborValue[] = [];
    let allText = true;
    let prevKey: Uint8Array | undefined;
    for (let i = 0; i < count; i++) {
      const keyAt = this.#r.offset;
      const keyField = `${field}{key ${i}}`;
      const key = this.item(depth, keyField, true) as CborKey;
      const keyBytes = this.#r.bytesBetween(keyAt);
      if (prevKey !== undefined) {
        const c = compareBytes(prevKey, keyBytes);
        if (c === 0) throw this.#fail(keyField, `duplicate map key ${String(key)}`, keyAt);
        if (c > 0) throw this.#fail(keyField, `map key ${String(key)} is out of canonical order (keys must sort bytewise by their encoding)`, keyAt);
      }
      prevKey = keyBytes;
      if (typeof key !== 'string') allText = false;
      keys.push(key);
      values.push(this.item(depth, typeof key === 'string' ? (field === '' ? key : `${field}.${key}`) : `${field}[${String(key)}]`));
    }
    if (allText) {
      const obj: CborObject = {};
      for (let i = 0; i < keys.length; i++) {
        // defineProperty, not assignment: a key "__proto__" must stay an ordinary data property.
        Object.defineProperty(obj, keys[i] as string, { value: values[i], enumerable: true, writable: true, configurable: true });
      }
      return obj;
    }
    const m: CborMap = new Map();
    for (let i = 0; i < keys.length; i++) m.set(keys[i] as CborKey, values[i] as CborValue);
    return m;
  }
}

/**
 * Decodes `bytes` as one data item in the RFC 8949 §4.2.1 core deterministic encoding, and
 * accepts nothing else: trailing bytes, indefinite lengths, non-shortest heads, duplicate or
 * unsorted map keys, non-text/non-integer map keys, tags, floats, undefined, other simple
 * values and invalid UTF-8 are each rejected with a message naming the problem and its offset.
 *
 * Byte strings decode to fresh `Uint8Array`s (never views into `bytes`); maps decode to plain
 * objects when every key is text, else to a `Map`; integers to `number` when safe, else `bigint`.
 *
 * @throws ParseError PARSE_BAD_ENCODING (non-canonical or outside the data model),
 *   PARSE_SIZE_EXCEEDED (a limit), PARSE_TRUNCATED (input ends inside an item),
 *   PARSE_TRAILING_BYTES (bytes after the item)
 */
export function decodeStrict(bytes: Uint8Array, limits: DecodeLimits = {}): CborValue {
  const name = limits.name ?? 'cbor';
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(bytes instanceof Uint8Array)) {
    throw new MisuseError('MISUSE_ARGUMENT', `${name}: input must be a Uint8Array`);
  }
  if (bytes.length > maxBytes) {
    throw new ParseError('PARSE_SIZE_EXCEEDED', `${name}: input of ${bytes.length} bytes exceeds the limit of ${maxBytes}`, {
      field: name,
      expected: `<= ${maxBytes}`,
      actual: String(bytes.length),
    });
  }
  const r = new Reader(bytes, name);
  const value = new StrictDecoder(r, limits.maxDepth ?? DEFAULT_MAX_DEPTH, limits.maxItems ?? DEFAULT_MAX_ITEMS).item(0, '');
  r.finish();
  return value;
}
