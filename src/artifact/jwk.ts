/**
 * Public-key helpers shared by issuing and verifying: strict public JWKs (RFC 7517), RFC 7638
 * thumbprints, and SPKI ↔ JWK conversion for the agent's bound key.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';
import { toBase64Url } from '../lib/bytes.js';
import { canonicalJson } from '../policy/canonical.js';
import type { CnfJwk } from './ear.js';

/** Members that make up a key's identity per key type (RFC 7638 §3.2). */
const REQUIRED_MEMBERS: Record<CnfJwk['kty'], readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

/** Private-key members of any key type (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Curves accepted for a bound key, per key type. */
const CURVES: Record<CnfJwk['kty'], readonly string[]> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519', 'X25519'],
  RSA: [],
};

/**
 * JWKs this module produced and already checked (frozen, so they cannot have changed since).
 * Importing a key costs more than an artifact signature; a checked key is not imported again.
 */
const checked = new WeakSet<object>();

/**
 * Reduces a public JWK to its RFC 7638 members (dropping `alg`, `use`, `kid`, …) after
 * checking that it is a public key node:crypto can import.
 * @throws MisuseError MISUSE_ARGUMENT for private keys, unknown key types or curves, bad keys
 */
export function publicJwk(jwk: unknown, field = 'jwk'): CnfJwk {
  if (typeof jwk === 'object' && jwk !== null && checked.has(jwk)) return jwk as CnfJwk;
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) {
    throw new MisuseError('MISUSE_ARGUMENT', `${field} is not a JWK object`, { field });
  }
  const src = jwk as Record<string, unknown>;
  for (const m of PRIVATE_MEMBERS) {
    if (m in src) throw new MisuseError('MISUSE_ARGUMENT', `${field} holds private key material (${m}); pass the public key only`, { field });
  }
  const kty = src['kty'];
  if (kty !== 'EC' && kty !== 'OKP' && kty !== 'RSA') {
    throw new MisuseError('MISUSE_ARGUMENT', `${field}.kty must be EC, OKP or RSA`, { field: `${field}.kty`, actual: String(kty) });
  }
  const out: Record<string, string> = {};
  for (const m of REQUIRED_MEMBERS[kty]) {
    const v = src[m];
    if (typeof v !== 'string' || v.length === 0) throw new MisuseError('MISUSE_ARGUMENT', `${field}.${m} is missing`, { field: `${field}.${m}` });
    out[m] = v;
  }
  const crv = out['crv'];
  if (crv !== undefined && !(CURVES[kty] ?? []).includes(crv)) {
    throw new MisuseError('MISUSE_ARGUMENT', `${field}.crv ${crv} is not supported`, { field: `${field}.crv`, actual: crv });
  }
  try {
    createPublicKey({ key: out as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw new MisuseError('MISUSE_ARGUMENT', `${field} is not a valid ${kty} public key`, { field, cause: e });
  }
  Object.freeze(out);
  checked.add(out);
  return out as unknown as CnfJwk;
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public JWK. */
export function jwkThumbprint(jwk: CnfJwk): string {
  const members: Record<string, string> = {};
  const src = jwk as unknown as Record<string, string | undefined>;
  for (const m of REQUIRED_MEMBERS[jwk.kty]) {
    const v = src[m];
    if (v === undefined) throw new MisuseError('MISUSE_ARGUMENT', `jwk.${m} is missing`, { field: `jwk.${m}` });
    members[m] = v;
  }
  // RFC 7638 §3.3: required members only, lexicographic order, no whitespace: canonical JSON.
  return toBase64Url(createHash('sha256').update(canonicalJson(members)).digest());
}

/** DER SubjectPublicKeyInfo of a public JWK. */
export function jwkToSpki(jwk: CnfJwk): Uint8Array {
  const key = createPublicKey({ key: publicJwk(jwk) as JsonWebKey, format: 'jwk' });
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }));
}

/**
 * Public JWK of a key given as DER SubjectPublicKeyInfo, a node:crypto KeyObject, or a JWK.
 * @throws MisuseError MISUSE_ARGUMENT
 */
export function toPublicJwk(key: Uint8Array | KeyObject | CnfJwk | Record<string, unknown>, field = 'key'): CnfJwk {
  if (key instanceof Uint8Array) {
    let ko: KeyObject;
    try {
      ko = createPublicKey({ key: Buffer.from(key.buffer, key.byteOffset, key.byteLength), format: 'der', type: 'spki' });
    } catch (e) {
      throw new MisuseError('MISUSE_ARGUMENT', `${field} is not a DER SubjectPublicKeyInfo`, { field, cause: e });
    }
    return publicJwk(ko.export({ format: 'jwk' }), field);
  }
  if (isKeyObject(key)) {
    if (key.type !== 'public') throw new MisuseError('MISUSE_ARGUMENT', `${field} must be a public key`, { field });
    return publicJwk(key.export({ format: 'jwk' }), field);
  }
  return publicJwk(key, field);
}

function isKeyObject(x: unknown): x is KeyObject {
  return typeof x === 'object' && x !== null && 'asymmetricKeyType' in x && 'export' in x && typeof (x as { export: unknown }).export === 'function';
}
