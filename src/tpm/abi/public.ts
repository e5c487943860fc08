/**
 * TPMT_PUBLIC and TPM2B_PUBLIC (TPM 2.0 Library Part 2 §12.2), with the parameter and scheme
 * structures they contain. No crypto here: names are computed in ./name.ts.
 *
 * ```
 * TPMT_PUBLIC {
 *   TPMI_ALG_PUBLIC    type;              // u16
 *   TPMI_ALG_HASH      nameAlg;           // u16
 *   TPMA_OBJECT        objectAttributes;  // u32
 *   TPM2B_DIGEST       authPolicy;        // u16 size + ≤64 bytes
 *   TPMU_PUBLIC_PARMS  parameters;        // selected by type
 *   TPMU_PUBLIC_ID     unique;            // selected by type
 * }
 * ```
 */
import { Reader, Writer } from '../../lib/reader.js';
import { toHex } from '../../lib/bytes.js';
import { TPM2_MAX, TPM_ALG, TPMA_OBJECT, TPMA_OBJECT_RESERVED, algName, hashById } from './constants.js';

/** TPMT_SYM_DEF_OBJECT (§11.1.7): algorithm NULL has no keyBits or mode. */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits?: number;
  readonly mode?: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KEYEDHASH_SCHEME (§11.2): scheme plus its details. */
export interface AsymScheme {
  readonly scheme: number;
  /** The scheme's hash, for every scheme that has one. */
  readonly hashAlg?: number;
  /** ECDAA commit count. */
  readonly count?: number;
  /** XOR's KDF (keyed-hash objects only). */
  readonly kdf?: number;
}

/** TPMT_KDF_SCHEME (§11.2.3.3). */
export interface KdfScheme {
  readonly scheme: number;
  readonly hashAlg?: number;
}

/** TPMS_RSA_PARMS (§12.2.3.5). */
export interface RsaParms {
  readonly symmetric: SymDefObject;
  readonly scheme: AsymScheme;
  readonly keyBits: number;
  /** 0 means the default exponent 65537. */
  readonly exponent: number;
}

/** TPMS_ECC_PARMS (§12.2.3.6). */
export interface EccParms {
  readonly symmetric: SymDefObject;
  readonly scheme: AsymScheme;
  readonly curveId: number;
  readonly kdf: KdfScheme;
}

/** TPMS_ECC_POINT (§11.2.5.2). */
export interface EccPoint {
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

interface PublicCommon {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  /** The exact TPMT_PUBLIC bytes this object was decoded from (absent on built templates). */
  readonly raw?: Uint8Array;
}

export interface RsaPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.RSA;
  readonly parameters: RsaParms;
  /** TPM2B_PUBLIC_KEY_RSA: the modulus. */
  readonly unique: Uint8Array;
}

export interface EccPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.ECC;
  readonly parameters: EccParms;
  readonly unique: EccPoint;
}

export interface KeyedHashPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.KEYEDHASH;
  readonly parameters: { readonly scheme: AsymScheme };
  readonly unique: Uint8Array;
}

export interface SymCipherPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.SYMCIPHER;
  readonly parameters: { readonly symmetric: SymDefObject };
  readonly unique: Uint8Array;
}

/** A decoded TPMT_PUBLIC. */
export type TpmtPublic = RsaPublic | EccPublic | KeyedHashPublic | SymCipherPublic;

const SYM_OBJECT_ALGS: readonly number[] = [TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA];
const SYM_MODES: readonly number[] = [TPM_ALG.CTR, TPM_ALG.OFB, TPM_ALG.CBC, TPM_ALG.CFB, TPM_ALG.ECB, TPM_ALG.NULL];
const RSA_SCHEMES_WITH_HASH: readonly number[] = [TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP];
const ECC_SCHEMES_WITH_HASH: readonly number[] = [TPM_ALG.ECDSA, TPM_ALG.ECDH, TPM_ALG.SM2, TPM_ALG.ECSCHNORR, TPM_ALG.ECMQV];
const KDF_SCHEMES: readonly number[] = [TPM_ALG.MGF1, TPM_ALG.KDF1_SP800_56A, TPM_ALG.KDF2, TPM_ALG.KDF1_SP800_108];
const ECC_CURVE_IDS: readonly number[] = [0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0010, 0x0011, 0x0020];

/** Reads a TPMI_ALG_HASH, optionally allowing TPM_ALG_NULL. */
export function readHashAlg(r: Reader, field: string, allowNull: boolean): number {
  const at = r.offset;
  const id = r.u16(field);
  if (id === TPM_ALG.NULL && allowNull) return id;
  if (hashById(id) === undefined) {
    throw r.error('PARSE_UNSUPPORTED_ALGORITHM', field, `${algName(id)} is not a supported hash`, { at, actual: algName(id) });
  }
  return id;
}

function readAlgIn(r: Reader, field: string, allowed: readonly number[], what: string): number {
  const at = r.offset;
  const id = r.u16(field);
  if (!allowed.includes(id)) {
    throw r.error('PARSE_UNSUPPORTED_ALGORITHM', field, `${algName(id)} is not a valid ${what}`, { at, actual: algName(id) });
  }
  return id;
}

function readSymDefObject(r: Reader, field: string): SymDefObject {
  const algorithm = readAlgIn(r, `${field}.algorithm`, [...SYM_OBJECT_ALGS, TPM_ALG.NULL], 'TPMI_ALG_SYM_OBJECT');
  if (algorithm === TPM_ALG.NULL) return { algorithm };
  const keyBits = r.u16(`${field}.keyBits`);
  const mode = readAlgIn(r, `${field}.mode`, SYM_MODES, 'TPMI_ALG_SYM_MODE');
  return { algorithm, keyBits, mode };
}

function writeSymDefObject(w: Writer, s: SymDefObject): void {
  w.u16(s.algorithm);
  if (s.algorithm === TPM_ALG.NULL) return;
  w.u16(s.keyBits ?? 0).u16(s.mode ?? TPM_ALG.NULL);
}

function readRsaScheme(r: Reader, field: string): AsymScheme {
  const scheme = readAlgIn(r, `${field}.scheme`, [...RSA_SCHEMES_WITH_HASH, TPM_ALG.RSAES, TPM_ALG.NULL], 'TPMI_ALG_RSA_SCHEME');
  if (RSA_SCHEMES_WITH_HASH.includes(scheme)) return { scheme, hashAlg: readHashAlg(r, `${field}.details.hashAlg`, false) };
  return { scheme };
}

function readEccScheme(r: Reader, field: string): AsymScheme {
  const scheme = readAlgIn(r, `${field}.scheme`, [...ECC_SCHEMES_WITH_HASH, TPM_ALG.ECDAA, TPM_ALG.NULL], 'TPMI_ALG_ECC_SCHEME');
  if (scheme === TPM_ALG.ECDAA) {
    const hashAlg = readHashAlg(r, `${field}.details.hashAlg`, false);
    return { scheme, hashAlg, count: r.u16(`${field}.details.count`) };
  }
  if (ECC_SCHEMES_WITH_HASH.includes(scheme)) return { scheme, hashAlg: readHashAlg(r, `${field}.details.hashAlg`, false) };
  return { scheme };
}

function readKeyedHashScheme(r: Reader, field: string): AsymScheme {
  const scheme = readAlgIn(r, `${field}.scheme`, [TPM_ALG.HMAC, TPM_ALG.XOR, TPM_ALG.NULL], 'TPMI_ALG_KEYEDHASH_SCHEME');
  if (scheme === TPM_ALG.HMAC) return { scheme, hashAlg: readHashAlg(r, `${field}.details.hashAlg`, false) };
  if (scheme === TPM_ALG.XOR) {
    const hashAlg = readHashAlg(r, `${field}.details.hashAlg`, false);
    return { scheme, hashAlg, kdf: readAlgIn(r, `${field}.details.kdf`, [...KDF_SCHEMES, TPM_ALG.NULL], 'TPMI_ALG_KDF') };
  }
  return { scheme };
}

function writeScheme(w: Writer, s: AsymScheme): void {
  w.u16(s.scheme);
  if (s.hashAlg !== undefined) w.u16(s.hashAlg);
  if (s.count !== undefined) w.u16(s.count);
  if (s.kdf !== undefined) w.u16(s.kdf);
}

function readKdf(r: Reader, field: string): KdfScheme {
  const scheme = readAlgIn(r, `${field}.scheme`, [...KDF_SCHEMES, TPM_ALG.NULL], 'TPMI_ALG_KDF');
  if (scheme === TPM_ALG.NULL) return { scheme };
  return { scheme, hashAlg: readHashAlg(r, `${field}.details.hashAlg`, false) };
}

/** Reads a TPMS_ECC_POINT. */
export function readEccPoint(r: Reader, field: string): EccPoint {
  const x = r.tpm2b(`${field}.x`, TPM2_MAX.ECC_KEY_BYTES);
  const y = r.tpm2b(`${field}.y`, TPM2_MAX.ECC_KEY_BYTES);
  return { x, y };
}

/** Writes a TPMS_ECC_POINT. */
export function writeEccPoint(w: Writer, p: EccPoint): void {
  w.tpm2b(p.x).tpm2b(p.y);
}

/**
 * Reads a TPMT_PUBLIC at the reader's position. The returned object keeps the exact bytes it
 * was read from in `raw`, so names and signatures are computed over them, never a re-encoding.
 */
export function readTpmtPublic(r: Reader): TpmtPublic {
  const start = r.offset;
  const typeAt = r.offset;
  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC && type !== TPM_ALG.KEYEDHASH && type !== TPM_ALG.SYMCIPHER) {
    throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'type', `${algName(type)} is not a TPMI_ALG_PUBLIC`, { at: typeAt, actual: algName(type) });
  }
  const nameAlg = readHashAlg(r, 'nameAlg', true);
  const attrAt = r.offset;
  const objectAttributes = r.u32('objectAttributes');
  if ((objectAttributes & TPMA_OBJECT_RESERVED) !== 0) {
    throw r.error('PARSE_RESERVED_NONZERO', 'objectAttributes', 'reserved TPMA_OBJECT bits are set', {
      at: attrAt,
      expected: `bits 0x${TPMA_OBJECT_RESERVED.toString(16)} clear`,
      actual: `0x${objectAttributes.toString(16).padStart(8, '0')}`,
    });
  }
  const authPolicy = r.tpm2b('authPolicy', TPM2_MAX.DIGEST);
  const common = { nameAlg, objectAttributes, authPolicy };
  let pub: TpmtPublic;
  switch (type) {
    case TPM_ALG.RSA: {
      const symmetric = readSymDefObject(r, 'parameters.rsaDetail.symmetric');
      const scheme = readRsaScheme(r, 'parameters.rsaDetail.scheme');
      const keyBits = r.u16('parameters.rsaDetail.keyBits');
      const exponent = r.u32('parameters.rsaDetail.exponent');
      const unique = r.tpm2b('unique.rsa', TPM2_MAX.RSA_KEY_BYTES);
      pub = { type, ...common, parameters: { symmetric, scheme, keyBits, exponent }, unique };
      break;
    }
    case TPM_ALG.ECC: {
      const symmetric = readSymDefObject(r, 'parameters.eccDetail.symmetric');
      const scheme = readEccScheme(r, 'parameters.eccDetail.scheme');
      const curveAt = r.offset;
      const curveId = r.u16('parameters.eccDetail.curveID');
      if (!ECC_CURVE_IDS.includes(curveId)) {
        throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'parameters.eccDetail.curveID', `unknown TPM_ECC_CURVE 0x${curveId.toString(16)}`, { at: curveAt });
      }
      const kdf = readKdf(r, 'parameters.eccDetail.kdf');
      const unique = readEccPoint(r, 'unique.ecc');
      pub = { type, ...common, parameters: { symmetric, scheme, curveId, kdf }, unique };
      break;
    }
    case TPM_ALG.KEYEDHASH: {
      const scheme = readKeyedHashScheme(r, 'parameters.keyedHashDetail.scheme');
      const unique = r.tpm2b('unique.keyedHash', TPM2_MAX.DIGEST);
      pub = { type, ...common, parameters: { scheme }, unique };
      break;
    }
    default: {
      const symmetric = readSymDefObject(r, 'parameters.symDetail.sym');
      const unique = r.tpm2b('unique.sym', TPM2_MAX.DIGEST);
      pub = { type: TPM_ALG.SYMCIPHER, ...common, parameters: { symmetric }, unique };
    }
  }
  return { ...pub, raw: r.bytesBetween(start) };
}

/** Decodes a whole TPMT_PUBLIC; trailing bytes are an error. */
export function decodeTpmtPublic(bytes: Uint8Array): TpmtPublic {
  const r = new Reader(bytes, 'TPMT_PUBLIC');
  const pub = readTpmtPublic(r);
  r.finish();
  return pub;
}

/** Decodes a TPM2B_PUBLIC (u16 size, then exactly one TPMT_PUBLIC). */
export function decodeTpm2bPublic(bytes: Uint8Array): TpmtPublic {
  const r = new Reader(bytes, 'TPM2B_PUBLIC');
  const inner = r.tpm2bReader('publicArea', TPM2_MAX.PUBLIC);
  const pub = readTpmtPublic(inner);
  inner.finish();
  r.finish();
  return pub;
}

/** Writes a TPMT_PUBLIC from its fields (ignores `raw`). */
export function writeTpmtPublic(w: Writer, p: TpmtPublic): void {
  w.u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  switch (p.type) {
    case TPM_ALG.RSA:
      writeSymDefObject(w, p.parameters.symmetric);
      writeScheme(w, p.parameters.scheme);
      w.u16(p.parameters.keyBits).u32(p.parameters.exponent).tpm2b(p.unique);
      return;
    case TPM_ALG.ECC:
      writeSymDefObject(w, p.parameters.symmetric);
      writeScheme(w, p.parameters.scheme);
      w.u16(p.parameters.curveId).u16(p.parameters.kdf.scheme);
      if (p.parameters.kdf.hashAlg !== undefined) w.u16(p.parameters.kdf.hashAlg);
      writeEccPoint(w, p.unique);
      return;
    case TPM_ALG.KEYEDHASH:
      writeScheme(w, p.parameters.scheme);
      w.tpm2b(p.unique);
      return;
    case TPM_ALG.SYMCIPHER:
      writeSymDefObject(w, p.parameters.symmetric);
      w.tpm2b(p.unique);
  }
}

/** The TPMT_PUBLIC wire bytes of `p`: its `raw` bytes when it was decoded, else an encoding. */
export function encodeTpmtPublic(p: TpmtPublic): Uint8Array {
  if (p.raw !== undefined) return p.raw;
  const w = new Writer();
  writeTpmtPublic(w, p);
  return w.finish();
}

/** The TPM2B_PUBLIC wire bytes of `p`. */
export function encodeTpm2bPublic(p: TpmtPublic): Uint8Array {
  return new Writer().tpm2b(encodeTpmtPublic(p)).finish();
}

/** Names of the TPMA_OBJECT bits set in `attrs`, for messages. */
export function describeAttributes(attrs: number): string {
  const names: string[] = [];
  for (const [k, v] of Object.entries(TPMA_OBJECT)) if ((attrs & v) !== 0) names.push(k);
  return `0x${(attrs >>> 0).toString(16).padStart(8, '0')} (${names.join('|') || 'none'})`;
}

/** Hex of the public key material, for messages. */
export function describeUnique(p: TpmtPublic): string {
  if (p.type === TPM_ALG.ECC) return `x=${toHex(p.unique.x)} y=${toHex(p.unique.y)}`;
  return toHex(p.unique);
}
