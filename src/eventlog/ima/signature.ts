/**
 * IMA file signatures (the `sig` field of ima-sig and ima-modsig): decoding (abi) and
 * verification with trusted keys (verify).
 *
 * Signature version 2, as written to `security.ima` by evmctl and carried in the list
 * (security/integrity/integrity.h, struct signature_v2_hdr, packed, integers big-endian):
 *
 * ```
 * u8      type        3 = EVM_IMA_XATTR_DIGSIG
 * u8      version     2
 * u8      hash_algo   enum hash_algo (4 = sha256, …)
 * u32     keyid       last 4 bytes of the SHA-1 of the signing key's subjectPublicKey
 * u16     sig_size
 * u8[]    sig         sig_size bytes: RSA PKCS#1 v1.5 or ECDSA (DER) over the file digest
 * ```
 *
 * The signature is made over the file digest itself (asymmetric_verify passes it as the
 * already-hashed message), so it is verified here as a pre-hashed signature: RSA by recovering
 * the DigestInfo, ECDSA with the curve arithmetic below (node:crypto only verifies ECDSA over a
 * message it hashes itself).
 */
import { createHash, createPublicKey, constants as C, publicDecrypt, X509Certificate, type KeyObject } from 'node:crypto';
import { bytesEqual, concatBytes, fromHex, toHex } from '../../lib/bytes.js';
import { ParseError, type ErrorCode } from '../../lib/errors.js';
import { Reader } from '../../lib/reader.js';
import { entryField, kernelHashById, type ImaDigest, type KernelHashAlgo } from './abi.js';

/** EVM_IMA_XATTR_DIGSIG (enum evm_ima_xattr_type). */
export const EVM_IMA_XATTR_DIGSIG = 3;

/** A decoded signature v2. */
export interface ImaSignatureV2 {
  readonly hashAlgo: KernelHashAlgo;
  /** The 4-byte key id, as hex. */
  readonly keyId: string;
  readonly signature: Uint8Array;
}

/**
 * Decodes a signature v2 header and its signature; the size must match the bytes exactly.
 * @throws ParseError IMA_SIGNATURE_MALFORMED
 */
export function decodeImaSignature(sig: Uint8Array, index = 0): ImaSignatureV2 {
  const field = entryField(index, 'sig');
  const bad = (message: string, extra: { expected?: string; actual?: string } = {}): ParseError =>
    new ParseError('IMA_SIGNATURE_MALFORMED', `${field}: ${message}`, { field, ...extra });
  try {
    const r = new Reader(sig, field);
    const type = r.u8('type');
    if (type !== EVM_IMA_XATTR_DIGSIG) throw bad(`type ${type} is not 3 (EVM_IMA_XATTR_DIGSIG)`, { expected: '3', actual: String(type) });
    const version = r.u8('version');
    if (version !== 2) throw bad(`signature version ${version} is not supported (2)`, { expected: '2', actual: String(version) });
    const algoId = r.u8('hash_algo');
    const hashAlgo = kernelHashById(algoId);
    if (hashAlgo === undefined) throw bad(`hash_algo ${algoId} is unknown`);
    const keyId = toHex(r.bytes(4, 'keyid'));
    const size = r.u16('sig_size', 'be');
    const signature = r.bytes(size, 'sig');
    r.finish();
    return { hashAlgo, keyId, signature };
  } catch (e) {
    if (e instanceof ParseError && e.code !== 'IMA_SIGNATURE_MALFORMED') {
      throw new ParseError('IMA_SIGNATURE_MALFORMED', e.message, { field: e.field ?? field, cause: e });
    }
    throw e;
  }
}

/** A trusted signing key: its IMA key id and the imported key. */
export interface ImaTrustedKey {
  /** Last 4 bytes of SHA-1(subjectPublicKey), hex. */
  readonly keyId: string;
  readonly key: KeyObject;
  /** For ECDSA keys: the curve. */
  readonly curve?: EcCurve;
}

/** Reads a DER TLV header with `tag`; returns a reader over its content. */
function der(r: Reader, tag: number, field: string): Reader {
  const at = r.offset;
  const t = r.u8(`${field}.tag`);
  if (t !== tag) throw r.error('PARSE_BAD_VALUE', `${field}.tag`, `tag 0x${t.toString(16)} is not 0x${tag.toString(16)}`, { at });
  let len = r.u8(`${field}.length`);
  if (len >= 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) throw r.error('PARSE_SIZE_EXCEEDED', `${field}.length`, `a ${n}-byte DER length is not supported`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + r.u8(`${field}.length`);
  }
  return r.sub(len, field);
}

/** The subjectPublicKey bits of a DER SubjectPublicKeyInfo (RFC 5280 §4.1). */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const top = new Reader(spki, 'SubjectPublicKeyInfo');
  const seq = der(top, 0x30, '');
  top.finish();
  der(seq, 0x30, 'algorithm');
  const bits = der(seq, 0x03, 'subjectPublicKey');
  seq.finish();
  const unused = bits.u8('unusedBits');
  if (unused !== 0) throw bits.error('PARSE_BAD_VALUE', 'unusedBits', 'a key BIT STRING has no unused bits');
  return bits.rest('bits');
}

/**
 * Imports a trusted key from PEM: a public key ("BEGIN PUBLIC KEY", SubjectPublicKeyInfo) or a
 * certificate ("BEGIN CERTIFICATE", whose subject key is used; its validity is not checked
 * here: the policy author chose it). The key id is the last 4 bytes of SHA-1(subjectPublicKey),
 * as evmctl computes it.
 * @throws ParseError POLICY_INVALID when the PEM does not hold a usable RSA or P-256/P-384 key
 */
export function importImaTrustedKey(pem: string, field = 'trustedKeys'): ImaTrustedKey {
  let key: KeyObject;
  try {
    key = pem.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(pem).publicKey : createPublicKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new ParseError('POLICY_INVALID', `${field}: not a PEM public key or certificate`, { field, cause });
  }
  if (key.type !== 'public') throw new ParseError('POLICY_INVALID', `${field}: not a public key`, { field });
  const spki = new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  const keyId = toHex(createHash('sha1').update(subjectPublicKeyBits(spki)).digest().subarray(16, 20));
  if (key.asymmetricKeyType === 'rsa') return { keyId, key };
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve !== undefined) return { keyId, key, curve };
  }
  throw new ParseError('POLICY_INVALID', `${field}: only RSA and ECDSA P-256/P-384 keys are supported`, { field });
}

/** Why a signature did not verify, as a registry code and a message. */
export interface SignatureProblem {
  readonly code: Extract<ErrorCode, 'IMA_SIGNATURE_MALFORMED' | 'IMA_SIGNATURE_INVALID' | 'IMA_SIGNATURE_UNTRUSTED_KEY'>;
  readonly message: string;
  readonly keyId?: string;
}

/** DigestInfo prefixes (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: Readonly<Record<string, string>> = {
  sha1: '3021300906052b0e03021a05000414',
  sha224: '302d300d06096086480165030402040500041c',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

function verifyRsa(key: KeyObject, algo: KernelHashAlgo, digest: Uint8Array, sig: Uint8Array): boolean {
  const prefix = DIGEST_INFO[algo.name];
  if (prefix === undefined) return false;
  let recovered: Uint8Array;
  try {
    recovered = new Uint8Array(publicDecrypt({ key, padding: C.RSA_PKCS1_PADDING }, sig));
  } catch {
    // Bad padding or a signature of the wrong size: the signature does not verify.
    return false;
  }
  return bytesEqual(recovered, concatBytes(fromHex(prefix), digest));
}

/**
 * Verifies one entry's signature over its file digest with the trusted keys.
 * @returns undefined when a trusted key verifies it, else the problem
 */
export function verifyImaSignature(sig: Uint8Array, fileDigest: ImaDigest, keys: ReadonlyMap<string, readonly ImaTrustedKey[]>, index = 0): { keyId: string } | SignatureProblem {
  let decoded: ImaSignatureV2;
  try {
    decoded = decodeImaSignature(sig, index);
  } catch (e) {
    if (e instanceof ParseError) return { code: 'IMA_SIGNATURE_MALFORMED', message: e.message };
    throw e;
  }
  if (decoded.hashAlgo.name !== fileDigest.algorithm) {
    return { code: 'IMA_SIGNATURE_MALFORMED', message: `the signature is over a ${decoded.hashAlgo.name} digest, the entry measured ${fileDigest.algorithm}`, keyId: decoded.keyId };
  }
  const candidates = keys.get(decoded.keyId);
  if (candidates === undefined || candidates.length === 0) {
    return { code: 'IMA_SIGNATURE_UNTRUSTED_KEY', message: `key id ${decoded.keyId} is not a trusted key`, keyId: decoded.keyId };
  }
  for (const k of candidates) {
    const ok = k.curve !== undefined
      ? ecdsaVerifyPrehashed(k.curve, k.key, fileDigest.digest, decoded.signature)
      : verifyRsa(k.key, decoded.hashAlgo, fileDigest.digest, decoded.signature);
    if (ok) return { keyId: decoded.keyId };
  }
  return { code: 'IMA_SIGNATURE_INVALID', message: `the signature does not verify with trusted key ${decoded.keyId}`, keyId: decoded.keyId };
}

// --- ECDSA over a given digest (SEC 1 v2 §4.1.4), short Weierstrass curves with a = -3 ------

/** Domain parameters of a NIST prime curve (FIPS 186-4 §D.1.2). */
export interface EcCurve {
  readonly name: string;
  readonly p: bigint;
  readonly n: bigint;
  readonly b: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly bytes: number;
}

const P256: EcCurve = {
  name: 'P-256',
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  bytes: 32,
};

const P384: EcCurve = {
  name: 'P-384',
  p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
  n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
  gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
  bytes: 48,
};

/** Curves by OpenSSL name (KeyObject.asymmetricKeyDetails.namedCurve). */
const CURVES: Readonly<Record<string, EcCurve>> = { prime256v1: P256, secp384r1: P384 };

type Jacobian = readonly [bigint, bigint, bigint];
const INF: Jacobian = [0n, 1n, 0n];

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function inv(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function dbl(c: EcCurve, [x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) return INF;
  const p = c.p;
  const delta = (z * z) % p;
  const gamma = (y * y) % p;
  const beta = (x * gamma) % p;
  const alpha = mod(3n * (x - delta) * (x + delta), p);
  const x3 = mod(alpha * alpha - 8n * beta, p);
  const z3 = mod((y + z) * (y + z) - gamma - delta, p);
  const y3 = mod(alpha * (4n * beta - x3) - 8n * gamma * gamma, p);
  return [x3, y3, z3];
}

function add(c: EcCurve, a: Jacobian, b: Jacobian): Jacobian {
  if (a[2] === 0n) return b;
  if (b[2] === 0n) return a;
  const p = c.p;
  const z1z1 = (a[2] * a[2]) % p;
  const z2z2 = (b[2] * b[2]) % p;
  const u1 = (a[0] * z2z2) % p;
  const u2 = (b[0] * z1z1) % p;
  const s1 = (a[1] * b[2] * z2z2) % p;
  const s2 = (b[1] * a[2] * z1z1) % p;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  if (h === 0n) return r === 0n ? dbl(c, a) : INF;
  const hh = (h * h) % p;
  const hhh = (h * hh) % p;
  const v = (u1 * hh) % p;
  const x3 = mod(r * r - hhh - 2n * v, p);
  const y3 = mod(r * (v - x3) - s1 * hhh, p);
  const z3 = (a[2] * b[2] * h) % p;
  return [x3, y3, z3];
}

/** u1·G + u2·Q (Shamir's trick), affine x, or undefined at infinity. */
function mulAddX(c: EcCurve, u1: bigint, u2: bigint, q: Jacobian): bigint | undefined {
  const g: Jacobian = [c.gx, c.gy, 1n];
  const gq = add(c, g, q);
  let acc: Jacobian = INF;
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i--) {
    acc = dbl(c, acc);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 === 1n && b2 === 1n) acc = add(c, acc, gq);
    else if (b1 === 1n) acc = add(c, acc, g);
    else if (b2 === 1n) acc = add(c, acc, q);
  }
  if (acc[2] === 0n) return undefined;
  const zi = inv(acc[2], c.p);
  return (acc[0] * zi * zi) % c.p;
}

const big = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt(`0x${toHex(b)}`));

/** DER ECDSA-Sig-Value { r INTEGER, s INTEGER } (RFC 5480 / SEC 1 §C.5), minimal positive integers. */
function decodeEcdsaDer(sig: Uint8Array): { r: bigint; s: bigint } | undefined {
  try {
    const top = new Reader(sig, 'ECDSA-Sig-Value');
    const seq = der(top, 0x30, '');
    top.finish();
    const int = (name: string): bigint => {
      const v = der(seq, 0x02, name).rest(name);
      if (v.length === 0 || (v[0] as number) >= 0x80 || (v.length > 1 && v[0] === 0 && (v[1] as number) < 0x80)) throw new ParseError('PARSE_BAD_ENCODING', `${name} is not a minimal positive INTEGER`);
      return big(v);
    };
    const r = int('r');
    const s = int('s');
    seq.finish();
    return { r, s };
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

/**
 * ECDSA verification of `sig` (DER) over the given digest `e` (not hashed again), SEC 1 v2
 * §4.1.4: the digest is truncated to the bit length of n; r and s must be in [1, n-1].
 */
export function ecdsaVerifyPrehashed(c: EcCurve, key: KeyObject, digest: Uint8Array, sig: Uint8Array): boolean {
  const rs = decodeEcdsaDer(sig);
  if (rs === undefined) return false;
  const { r, s } = rs;
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return false;
  const qx = big(new Uint8Array(Buffer.from(jwk.x, 'base64url')));
  const qy = big(new Uint8Array(Buffer.from(jwk.y, 'base64url')));
  // The point is on the curve (node:crypto checked it on import; checked again, it is cheap).
  if (mod(qy * qy - (qx * qx * qx - 3n * qx + c.b), c.p) !== 0n) return false;
  const nBits = c.n.toString(2).length;
  let e = big(digest);
  if (digest.length * 8 > nBits) e >>= BigInt(digest.length * 8 - nBits);
  const w = inv(s, c.n);
  const x = mulAddX(c, mod(e * w, c.n), mod(r * w, c.n), [qx, qy, 1n]);
  return x !== undefined && mod(x, c.n) === r;
}
