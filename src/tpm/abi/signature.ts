/**
 * TPMT_SIGNATURE (TPM 2.0 Library Part 2 §11.3.4).
 *
 * ```
 * TPMT_SIGNATURE { TPMI_ALG_SIG_SCHEME sigAlg; TPMU_SIGNATURE signature; }
 *   RSASSA, RSAPSS:            TPMS_SIGNATURE_RSA { TPMI_ALG_HASH hash; TPM2B_PUBLIC_KEY_RSA sig; }
 *   ECDSA, ECDAA, SM2, ECSCHNORR: TPMS_SIGNATURE_ECC { TPMI_ALG_HASH hash; TPM2B signatureR; TPM2B signatureS; }
 *   HMAC:                      TPMT_HA { TPMI_ALG_HASH hashAlg; BYTE digest[size of hashAlg]; }
 *   NULL:                      (nothing)
 * ```
 */
import { Reader, Writer } from '../../lib/reader.js';
import { TPM2_MAX, TPM_ALG, algName, hashById } from './constants.js';
import { readHashAlg } from './public.js';

export interface RsaSignature {
  readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
  readonly hashAlg: number;
  readonly sig: Uint8Array;
}

export interface EccSignature {
  readonly sigAlg: typeof TPM_ALG.ECDSA | typeof TPM_ALG.ECDAA | typeof TPM_ALG.SM2 | typeof TPM_ALG.ECSCHNORR;
  readonly hashAlg: number;
  readonly r: Uint8Array;
  readonly s: Uint8Array;
}

export interface HmacSignature {
  readonly sigAlg: typeof TPM_ALG.HMAC;
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

export interface NullSignature {
  readonly sigAlg: typeof TPM_ALG.NULL;
}

/** A decoded TPMT_SIGNATURE. */
export type TpmtSignature = RsaSignature | EccSignature | HmacSignature | NullSignature;

/** Reads a TPMT_SIGNATURE. */
export function readTpmtSignature(r: Reader): TpmtSignature {
  const at = r.offset;
  const sigAlg = r.u16('sigAlg');
  switch (sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS: {
      const hashAlg = readHashAlg(r, 'signature.hash', false);
      return { sigAlg, hashAlg, sig: r.tpm2b('signature.sig', TPM2_MAX.RSA_KEY_BYTES) };
    }
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECDAA:
    case TPM_ALG.SM2:
    case TPM_ALG.ECSCHNORR: {
      const hashAlg = readHashAlg(r, 'signature.hash', false);
      const sr = r.tpm2b('signature.signatureR', TPM2_MAX.ECC_KEY_BYTES);
      const ss = r.tpm2b('signature.signatureS', TPM2_MAX.ECC_KEY_BYTES);
      return { sigAlg, hashAlg, r: sr, s: ss };
    }
    case TPM_ALG.HMAC: {
      const hashAlg = readHashAlg(r, 'signature.hashAlg', false);
      const size = (hashById(hashAlg) as { size: number }).size;
      return { sigAlg, hashAlg, digest: r.bytes(size, 'signature.digest') };
    }
    case TPM_ALG.NULL:
      return { sigAlg };
    default:
      throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'sigAlg', `${algName(sigAlg)} is not a TPMI_ALG_SIG_SCHEME`, { at, actual: algName(sigAlg) });
  }
}

/** Decodes a whole TPMT_SIGNATURE; trailing bytes are an error. */
export function decodeTpmtSignature(bytes: Uint8Array): TpmtSignature {
  const r = new Reader(bytes, 'TPMT_SIGNATURE');
  const s = readTpmtSignature(r);
  r.finish();
  return s;
}

/** Writes a TPMT_SIGNATURE. */
export function writeTpmtSignature(w: Writer, s: TpmtSignature): void {
  w.u16(s.sigAlg);
  switch (s.sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS:
      w.u16(s.hashAlg).tpm2b(s.sig);
      return;
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECDAA:
    case TPM_ALG.SM2:
    case TPM_ALG.ECSCHNORR:
      w.u16(s.hashAlg).tpm2b(s.r).tpm2b(s.s);
      return;
    case TPM_ALG.HMAC:
      w.u16(s.hashAlg).bytes(s.digest);
      return;
    case TPM_ALG.NULL:
  }
}

/** Encodes a TPMT_SIGNATURE. */
export function encodeTpmtSignature(s: TpmtSignature): Uint8Array {
  const w = new Writer(300);
  writeTpmtSignature(w, s);
  return w.finish();
}
