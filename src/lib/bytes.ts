/**
 * Byte helpers shared by every stage. Strict decoding: one encoding per input, no guessing.
 */
import { ParseError } from './errors.js';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  // Buffer where there is one (fast); a plain loop in browsers (the relying-party SDK reaches
  // this through the CBOR reader's error messages).
  if (typeof Buffer !== 'undefined') return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  let out = '';
  for (const x of b) out += x.toString(16).padStart(2, '0');
  return out;
}

/**
 * Strict hex decoding: an even number of hex digits, nothing else (no `0x`, no spaces).
 * @throws ParseError PARSE_BAD_ENCODING
 */
export function fromHex(s: string, field = 'hex'): Uint8Array {
  if (!HEX_RE.test(s)) {
    throw new ParseError('PARSE_BAD_ENCODING', `${field} is not an even-length hex string`, { field });
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** base64url without padding. */
export function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/**
 * Strict base64url decoding (RFC 4648 §5, no padding); the result must re-encode to the input.
 * @throws ParseError PARSE_BAD_ENCODING
 */
export function fromBase64Url(s: string, field = 'base64url'): Uint8Array {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) {
    throw new ParseError('PARSE_BAD_ENCODING', `${field} is not unpadded base64url`, { field });
  }
  const out = Buffer.from(s, 'base64url');
  if (out.toString('base64url') !== s) {
    throw new ParseError('PARSE_BAD_ENCODING', `${field} is not canonical base64url`, { field });
  }
  return new Uint8Array(out);
}

/** Constant-shape equality of two byte strings (length, then every byte). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Concatenation into a fresh array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Big-endian u16. */
export function u16be(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}

/** Big-endian u32. */
export function u32be(v: number): Uint8Array {
  return Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
