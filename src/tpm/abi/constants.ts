/**
 * TPM 2.0 constants used by the codec (TPM 2.0 Library Part 2: Structures, §6).
 * Only values vouch accepts are listed: an identifier not here is rejected by the decoders.
 */

/** TPM_GENERATED_VALUE (Part 2 §6.2): the magic of every TPMS_ATTEST the TPM signs. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPM_ALG_ID (Part 2 §6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

/** Spec name of an algorithm identifier ("TPM_ALG_SHA256"), or hex when unknown. */
export function algName(id: number): string {
  for (const [k, v] of Object.entries(TPM_ALG)) if (v === id) return `TPM_ALG_${k}`;
  return `0x${id.toString(16).padStart(4, '0')}`;
}

/** A hash algorithm vouch can compute, with its node:crypto name and digest size. */
export interface HashAlg {
  readonly id: number;
  /** Bank name as tpm2-tools writes it ("sha256"). */
  readonly name: string;
  /** node:crypto algorithm name. */
  readonly nodeName: string;
  readonly size: number;
}

/** TPMI_ALG_HASH values vouch supports for PCR banks, names and signatures. */
export const HASH_ALGS: readonly HashAlg[] = [
  { id: TPM_ALG.SHA1, name: 'sha1', nodeName: 'sha1', size: 20 },
  { id: TPM_ALG.SHA256, name: 'sha256', nodeName: 'sha256', size: 32 },
  { id: TPM_ALG.SHA384, name: 'sha384', nodeName: 'sha384', size: 48 },
  { id: TPM_ALG.SHA512, name: 'sha512', nodeName: 'sha512', size: 64 },
  { id: TPM_ALG.SM3_256, name: 'sm3_256', nodeName: 'sm3', size: 32 },
  { id: TPM_ALG.SHA3_256, name: 'sha3_256', nodeName: 'sha3-256', size: 32 },
  { id: TPM_ALG.SHA3_384, name: 'sha3_384', nodeName: 'sha3-384', size: 48 },
  { id: TPM_ALG.SHA3_512, name: 'sha3_512', nodeName: 'sha3-512', size: 64 },
];

/** The hash algorithm with identifier `id`, or undefined. */
export function hashById(id: number): HashAlg | undefined {
  return HASH_ALGS.find((h) => h.id === id);
}

/** The hash algorithm with bank name `name` ("sha256"), or undefined. */
export function hashByName(name: string): HashAlg | undefined {
  return HASH_ALGS.find((h) => h.name === name);
}

/** TPM_ECC_CURVE (Part 2 §6.4). */
export const TPM_ECC = {
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
  BN_P256: 0x0010,
  BN_P638: 0x0011,
  SM2_P256: 0x0020,
} as const;

/** A curve vouch can verify signatures on: JWK name and coordinate size in bytes. */
export interface EccCurve {
  readonly id: number;
  readonly jwk: 'P-256' | 'P-384' | 'P-521';
  readonly size: number;
}

/** Curves with node:crypto support. */
export const ECC_CURVES: readonly EccCurve[] = [
  { id: TPM_ECC.NIST_P256, jwk: 'P-256', size: 32 },
  { id: TPM_ECC.NIST_P384, jwk: 'P-384', size: 48 },
  { id: TPM_ECC.NIST_P521, jwk: 'P-521', size: 66 },
];

/** TPM_ST attestation tags (Part 2 §6.9, TPMI_ST_ATTEST §9.20). */
export const TPM_ST_ATTEST = {
  NV: 0x8014,
  COMMAND_AUDIT: 0x8015,
  SESSION_AUDIT: 0x8016,
  CERTIFY: 0x8017,
  QUOTE: 0x8018,
  TIME: 0x8019,
  CREATION: 0x801a,
  NV_DIGEST: 0x801c,
} as const;

/** TPMA_OBJECT bits (Part 2 §8.3). Bits not listed are reserved and must be clear. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

/** Mask of the reserved TPMA_OBJECT bits (0, 3, 8, 9, 12–15, 20–31). */
export const TPMA_OBJECT_RESERVED = 0xfff0f309;

/** Buffer sizes from the TSS headers (tss2_tpm2_types.h) that bound each TPM2B. */
export const TPM2_MAX = {
  /** sizeof(TPMU_HA): largest digest. */
  DIGEST: 64,
  /** sizeof(TPMT_HA): TPM2B_DATA. */
  DATA: 66,
  /** sizeof(TPMU_NAME): TPM2B_NAME. */
  NAME: 66,
  RSA_KEY_BYTES: 512,
  ECC_KEY_BYTES: 128,
  NV_BUFFER: 2048,
  /** TPM2_NUM_PCR_BANKS: entries of a TPML_PCR_SELECTION. */
  PCR_BANKS: 16,
  /** TPM2_PCR_SELECT_MAX: bytes of a pcrSelect bitmap (32 PCRs). */
  PCR_SELECT: 4,
  /** Entries of a TPML_DIGEST (Part 2 §10.9.2: count at most 8). */
  DIGEST_LIST: 8,
  /** sizeof(TPMT_PUBLIC) upper bound used for TPM2B_PUBLIC. */
  PUBLIC: 1024,
  /** TPM2B_SENSITIVE_DATA / TPM2B_MAX_BUFFER. */
  MAX_BUFFER: 1024,
  /** TPM2B_ID_OBJECT: sizeof(TPMS_ID_OBJECT). */
  ID_OBJECT: 2 + 64 + 2 + 64,
  /** TPM2B_ENCRYPTED_SECRET: sizeof(TPMU_ENCRYPTED_SECRET). */
  ENCRYPTED_SECRET: 512,
} as const;
