/**
 * Key templates: the TCG EK Credential Profile default EK templates and vouch's attestation key
 * (AK) templates. They are TPMT_PUBLIC values; the agent marshals them with the codec and hands
 * the bytes to the TPM, and the verifier uses the same values to recognise an EK or AK.
 */
import { fromHex } from '../lib/bytes.js';
import { TPM_ALG, TPM_ECC, TPMA_OBJECT } from './abi/constants.js';
import type { EccPublic, RsaPublic } from './abi/public.js';

const A = TPMA_OBJECT;

/**
 * PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the authPolicy of the low-range EK templates
 * (TCG EK Credential Profile 2.0 §B.3.3, "PolicyA_SHA256").
 */
export const EK_POLICY_SHA256 = fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');

/** PolicyB_SHA384 (EK Credential Profile 2.3 §B.4): authPolicy of the high-range SHA-384 templates. */
export const EK_POLICY_B_SHA384 = fromHex(
  'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
);

/** Attributes of the low-range EK templates: fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted, decrypt. */
export const EK_ATTRIBUTES = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;

/** EK template L-1: RSA 2048, SHA-256, AES-128-CFB (EK Credential Profile §B.3.3). Cert at NV 0x01c00002. */
export const EK_TEMPLATE_RSA2048: RsaPublic = {
  type: TPM_ALG.RSA,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY_SHA256,
  parameters: {
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    keyBits: 2048,
    exponent: 0,
  },
  unique: new Uint8Array(256),
};

/** EK template L-2: ECC NIST P-256, SHA-256, AES-128-CFB (EK Credential Profile §B.3.4). Cert at NV 0x01c0000a. */
export const EK_TEMPLATE_ECC_P256: EccPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: EK_ATTRIBUTES,
  authPolicy: EK_POLICY_SHA256,
  parameters: {
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    curveId: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
  },
  unique: { x: new Uint8Array(32), y: new Uint8Array(32) },
};

/**
 * EK template H-3: ECC NIST P-384, SHA-384, AES-256-CFB, userWithAuth (EK Credential Profile
 * 2.3 §B.4.5). Cert at NV 0x01c00016; this is the ECC EK that swtpm_setup manufactures.
 */
export const EK_TEMPLATE_ECC_P384: EccPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA384,
  objectAttributes: EK_ATTRIBUTES | A.userWithAuth,
  authPolicy: EK_POLICY_B_SHA384,
  parameters: {
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
    curveId: TPM_ECC.NIST_P384,
    kdf: { scheme: TPM_ALG.NULL },
  },
  unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
};

/** EK kinds vouch can create, with the NV index of their certificate. */
export const EK_KINDS = {
  rsa2048: { template: EK_TEMPLATE_RSA2048, certIndex: 0x01c00002 },
  'ecc-p256': { template: EK_TEMPLATE_ECC_P256, certIndex: 0x01c0000a },
  'ecc-p384': { template: EK_TEMPLATE_ECC_P384, certIndex: 0x01c00016 },
} as const;

export type EkKind = keyof typeof EK_KINDS;

/** Attributes every vouch AK has: a restricted signing key bound to its TPM, usable with its auth value. */
export const AK_ATTRIBUTES = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;

/** AK template: ECC NIST P-256 with ECDSA-SHA256 (the default). */
export const AK_TEMPLATE_ECC_P256: EccPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: AK_ATTRIBUTES,
  authPolicy: new Uint8Array(0),
  parameters: {
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    curveId: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
  },
  unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
};

/** AK template: RSA 2048 with RSASSA-PKCS1-v1_5 SHA-256. */
export const AK_TEMPLATE_RSA2048: RsaPublic = {
  type: TPM_ALG.RSA,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: AK_ATTRIBUTES,
  authPolicy: new Uint8Array(0),
  parameters: {
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
  },
  unique: new Uint8Array(0),
};

export const AK_KINDS = {
  'ecc-p256': AK_TEMPLATE_ECC_P256,
  rsa2048: AK_TEMPLATE_RSA2048,
} as const;

export type AkKind = keyof typeof AK_KINDS;
