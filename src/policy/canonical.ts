/**
 * Canonical JSON (the JSON Canonicalization Scheme, RFC 8785, for the values vouch uses):
 * object members sorted by their UTF-16 code units, no whitespace, strings and numbers as
 * ECMAScript serialises them. The same value always gives the same bytes, whatever key order
 * or formatting the source document had; that is what content addressing hashes.
 */
import { createHash } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';
import { toHex, utf8 } from '../lib/bytes.js';

/** A JSON value as canonical JSON accepts it. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/**
 * Canonical JSON text of `value`.
 * @throws MisuseError MISUSE_ARGUMENT for values JSON cannot carry (undefined, NaN, ±Infinity,
 *   functions, bigints, symbols).
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new MisuseError('MISUSE_ARGUMENT', `${path}: ${v} has no JSON form`, { field: path });
      // RFC 8785 §3.2.2.3: ECMAScript number serialisation; -0 is written as 0.
      return JSON.stringify(v === 0 ? 0 : v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x, i) => write(x, `${path}[${i}]`)).join(',')}]`;
      if (ArrayBuffer.isView(v)) throw new MisuseError('MISUSE_ARGUMENT', `${path}: bytes have no JSON form; encode them first`, { field: path });
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const x = obj[k];
        if (x === undefined) throw new MisuseError('MISUSE_ARGUMENT', `${path}.${k} is undefined`, { field: `${path}.${k}` });
        parts.push(`${JSON.stringify(k)}:${write(x, `${path}.${k}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new MisuseError('MISUSE_ARGUMENT', `${path}: a ${typeof v} has no JSON form`, { field: path });
  }
}

/** UTF-8 bytes of {@link canonicalJson}. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}

/** Lower-case hex SHA-256 of the canonical JSON of `value`. */
export function canonicalJsonSha256(value: unknown): string {
  return toHex(createHash('sha256').update(canonicalJsonBytes(value)).digest());
}
