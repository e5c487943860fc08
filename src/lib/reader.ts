/**
 * The one bounds-checked binary reader of vouch.
 *
 * Every binary parser (TPM structures, event logs, SEV-SNP reports, TDX quotes) reads through a
 * {@link Reader}: each read names its field, lengths are checked before any slice, sized
 * sub-readers must be consumed exactly, and {@link Reader.finish} rejects trailing bytes. A
 * failure is a {@link ParseError} that carries the absolute byte offset and the field path
 * ("TPMS_ATTEST.attested.quote.pcrSelect[0].sizeofSelect").
 */
import { MisuseError, ParseError, type ErrorCode } from './errors.js';
import { toHex } from './bytes.js';

/** Byte order of a multi-byte integer read. TPM structures are big-endian; SNP and TDX are little. */
export type Endian = 'be' | 'le';

export class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  /** Absolute offset of `#bytes[0]` in the outermost input, for error messages. */
  readonly #base: number;
  readonly #path: string;
  #pos = 0;

  /**
   * @param bytes the input; the reader never copies it and never reads outside it
   * @param path name of the structure, the root of every field path ("TPMS_ATTEST")
   * @param base absolute offset of `bytes` in the outermost input (sub-readers set it)
   */
  constructor(bytes: Uint8Array, path: string, base = 0) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#base = base;
    this.#path = path;
  }

  /** Offset of the next read, relative to this reader's input. */
  get offset(): number {
    return this.#pos;
  }

  /** Offset of the next read in the outermost input. */
  get absoluteOffset(): number {
    return this.#base + this.#pos;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  /** The path of this reader ("TPMS_ATTEST.attested.quote"). */
  get path(): string {
    return this.#path;
  }

  /** Full path of a field of this reader. */
  fieldPath(field: string): string {
    if (field === '') return this.#path;
    return field.startsWith('[') ? `${this.#path}${field}` : `${this.#path}.${field}`;
  }

  /** Builds a ParseError about `field` at the current offset (or `at`, relative). */
  error(code: ErrorCode, field: string, message: string, extra: { at?: number; expected?: string; actual?: string } = {}): ParseError {
    const fieldPath = this.fieldPath(field);
    const offset = this.#base + (extra.at ?? this.#pos);
    return new ParseError(code, `${fieldPath} at offset ${offset}: ${message}`, {
      field: fieldPath,
      offset,
      ...(extra.expected !== undefined ? { expected: extra.expected } : {}),
      ...(extra.actual !== undefined ? { actual: extra.actual } : {}),
    });
  }

  #need(n: number, field: string): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw this.error('PARSE_SIZE_EXCEEDED', field, `invalid length ${n}`);
    }
    if (n > this.remaining) {
      throw this.error('PARSE_TRUNCATED', field, `needs ${n} bytes, ${this.remaining} left`, {
        expected: `${n} bytes`,
        actual: `${this.remaining} bytes`,
      });
    }
  }

  /** Unsigned 8-bit integer. */
  u8(field: string): number {
    this.#need(1, field);
    const v = this.#view.getUint8(this.#pos);
    this.#pos += 1;
    return v;
  }

  /** Unsigned 16-bit integer. */
  u16(field: string, endian: Endian = 'be'): number {
    this.#need(2, field);
    const v = this.#view.getUint16(this.#pos, endian === 'le');
    this.#pos += 2;
    return v;
  }

  /** Unsigned 32-bit integer. */
  u32(field: string, endian: Endian = 'be'): number {
    this.#need(4, field);
    const v = this.#view.getUint32(this.#pos, endian === 'le');
    this.#pos += 4;
    return v;
  }

  /** Unsigned 64-bit integer, as a bigint (no precision lost). */
  u64(field: string, endian: Endian = 'be'): bigint {
    this.#need(8, field);
    const v = this.#view.getBigUint64(this.#pos, endian === 'le');
    this.#pos += 8;
    return v;
  }

  /**
   * `n` bytes as a view into the input (no copy). The length is checked before slicing:
   * a short input is a PARSE_TRUNCATED error, never a shorter result.
   */
  bytes(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const out = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** The bytes from relative offset `start` up to the current position (already read). */
  bytesBetween(start: number): Uint8Array {
    return this.#bytes.subarray(start, this.#pos);
  }

  /** Every byte left (possibly none). */
  rest(field: string): Uint8Array {
    return this.bytes(this.remaining, field);
  }

  /**
   * A reader over the next `n` bytes, for a sized sub-structure. The caller must consume it
   * exactly ({@link Reader.finish}); the parent moves past the `n` bytes at once.
   */
  sub(n: number, field: string): Reader {
    const at = this.#base + this.#pos;
    const b = this.bytes(n, field);
    return new Reader(b, this.fieldPath(field), at);
  }

  /**
   * A TPM2B: big-endian u16 size, then that many bytes. `max` is the spec's buffer size for
   * the type; a larger size is rejected before reading.
   */
  tpm2b(field: string, max: number): Uint8Array {
    const at = this.#pos;
    const size = this.u16(`${field}.size`);
    if (size > max) {
      throw this.error('PARSE_SIZE_EXCEEDED', `${field}.size`, `size ${size} exceeds the maximum ${max}`, {
        at,
        expected: `<= ${max}`,
        actual: String(size),
      });
    }
    return this.bytes(size, field);
  }

  /** A TPM2B whose content is itself a structure: returns a sub-reader over the content. */
  tpm2bReader(field: string, max: number): Reader {
    const at = this.#pos;
    const size = this.u16(`${field}.size`);
    if (size > max) {
      throw this.error('PARSE_SIZE_EXCEEDED', `${field}.size`, `size ${size} exceeds the maximum ${max}`, {
        at,
        expected: `<= ${max}`,
        actual: String(size),
      });
    }
    return this.sub(size, field);
  }

  /** Checks that a count read from the input is at most `max` before any loop or allocation. */
  count(value: number, max: number, field: string, at?: number): number {
    if (value > max) {
      throw this.error('PARSE_SIZE_EXCEEDED', field, `count ${value} exceeds the maximum ${max}`, {
        ...(at !== undefined ? { at } : {}),
        expected: `<= ${max}`,
        actual: String(value),
      });
    }
    return value;
  }

  /** Reads `n` bytes that must all be zero (reserved fields). */
  reserved(n: number, field: string): void {
    const at = this.#pos;
    const b = this.bytes(n, field);
    for (let i = 0; i < b.length; i++) {
      if (b[i] !== 0) {
        throw this.error('PARSE_RESERVED_NONZERO', field, `reserved byte ${i} is 0x${(b[i] as number).toString(16).padStart(2, '0')}`, {
          at: at + i,
          expected: '00'.repeat(n),
          actual: toHex(b),
        });
      }
    }
  }

  /** Rejects trailing bytes: the structure must end exactly where the input ends. */
  finish(): void {
    if (this.remaining !== 0) {
      throw this.error('PARSE_TRAILING_BYTES', '', `${this.remaining} bytes after the end of the structure`, {
        expected: '0 bytes',
        actual: `${this.remaining} bytes`,
      });
    }
  }
}

/**
 * The inverse of {@link Reader}: a growable big-endian (or little-endian) byte writer used by
 * every encoder, so that encode(decode(x)) can be checked to equal x.
 */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  #grow(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.#grow(1);
    this.#view.setUint8(this.#len, v);
    this.#len += 1;
    return this;
  }

  u16(v: number, endian: Endian = 'be'): this {
    this.#grow(2);
    this.#view.setUint16(this.#len, v, endian === 'le');
    this.#len += 2;
    return this;
  }

  u32(v: number, endian: Endian = 'be'): this {
    this.#grow(4);
    this.#view.setUint32(this.#len, v, endian === 'le');
    this.#len += 4;
    return this;
  }

  u64(v: bigint, endian: Endian = 'be'): this {
    this.#grow(8);
    this.#view.setBigUint64(this.#len, v, endian === 'le');
    this.#len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#grow(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** A TPM2B: u16 size then the bytes. */
  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new MisuseError('MISUSE_ARGUMENT', 'TPM2B content longer than 65535 bytes');
    return this.u16(b.length).bytes(b);
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** A copy of the bytes written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
