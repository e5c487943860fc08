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
  try {
    return fast(value);
  } catch (e) {
    // Whatever the fast writer could not write, the path-tracking one names precisely.
    if (e === NOT_JSON) return write(value, '$');
    throw e;
  }
}

/** Thrown by {@link fast} for a value with no JSON form; never escapes canonicalJson. */
const NOT_JSON: unique symbol = Symbol('not JSON');

/** {@link write} without field paths: the common case, where nothing fails, builds none. */
function fast(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw NOT_JSON;
      return JSON.stringify(v === 0 ? 0 : v);
    case 'object': {
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + fast(v[i]);
        return `${out}]`;
      }
      if (ArrayBuffer.isView(v)) throw NOT_JSON;
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const x = obj[k];
        if (x === undefined) throw NOT_JSON;
        out += `${i === 0 ? '' : ','}${JSON.stringify(k)}:${fast(x)}`;
      }
      return `${out}}`;
    }
    default:
      throw NOT_JSON;
  }
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
