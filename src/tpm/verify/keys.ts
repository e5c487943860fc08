/**
 * TPM public areas as node:crypto keys. Importing a key costs more than one verification, so a
 * {@link TpmVerifyKey} is built once per AK and reused for every quote.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { toBase64Url, toHex } from '../../lib/bytes.js';
import { VerificationError } from '../../lib/errors.js';
import { ECC_CURVES, TPM_ALG, algName, type EccCurve } from '../abi/constants.js';
import type { TpmtPublic } from '../abi/public.js';
import { tpmName } from '../name.js';

/** A verified-ready public key: the TPM public area, its name and the imported KeyObject. */
export interface TpmVerifyKey {
  readonly public: TpmtPublic;
  readonly name: Uint8Array;
  readonly key: KeyObject;
  /** The curve, for ECC keys (signature component sizes). */
  readonly curve?: EccCurve;
}

/** Left-pads a big-endian integer to `size` bytes; undefined when it does not fit. */
export function padTo(b: Uint8Array, size: number): Uint8Array | undefined {
  if (b.length === size) return b;
  if (b.length > size) {
    // A leading zero byte beyond the size is harmless; anything else does not fit.
    let i = 0;
    while (i < b.length - size && b[i] === 0) i++;
    return b.length - i === size ? b.subarray(i) : undefined;
  }
  const out = new Uint8Array(size);
  out.set(b, size - b.length);
  return out;
}

/** RSA public exponent bytes: 0 in the TPM means 65537. */
function rsaExponent(exponent: number): Uint8Array {
  let e = exponent === 0 ? 65537 : exponent;
  const bytes: number[] = [];
  while (e > 0) {
    bytes.unshift(e & 0xff);
    e = Math.floor(e / 256);
  }
  return Uint8Array.from(bytes);
}

/**
 * Imports the key of an RSA or ECC TPMT_PUBLIC.
 * @throws VerificationError TPM_KEY_UNSUPPORTED for other types, curves or malformed points
 */
export function importTpmPublic(pub: TpmtPublic): TpmVerifyKey {
  const name = tpmName(pub);
  if (pub.type === TPM_ALG.RSA) {
    const n = pub.unique;
    if (n.length * 8 !== pub.parameters.keyBits) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', `RSA modulus is ${n.length * 8} bits, keyBits says ${pub.parameters.keyBits}`, {
        field: 'TPMT_PUBLIC.unique.rsa',
        expected: `${pub.parameters.keyBits} bits`,
        actual: `${n.length * 8} bits`,
      });
    }
    if (pub.parameters.keyBits < 2048) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', `RSA keys under 2048 bits are not accepted`, {
        field: 'TPMT_PUBLIC.parameters.rsaDetail.keyBits',
        actual: String(pub.parameters.keyBits),
      });
    }
    try {
      const key = createPublicKey({ key: { kty: 'RSA', n: toBase64Url(n), e: toBase64Url(rsaExponent(pub.parameters.exponent)) }, format: 'jwk' });
      return { public: pub, name, key };
    } catch (cause) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', 'RSA public key cannot be imported', { field: 'TPMT_PUBLIC.unique.rsa', cause });
    }
  }
  if (pub.type === TPM_ALG.ECC) {
    const curve = ECC_CURVES.find((c) => c.id === pub.parameters.curveId);
    if (curve === undefined) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', `curve 0x${pub.parameters.curveId.toString(16)} is not supported`, {
        field: 'TPMT_PUBLIC.parameters.eccDetail.curveID',
      });
    }
    const x = padTo(pub.unique.x, curve.size);
    const y = padTo(pub.unique.y, curve.size);
    if (x === undefined || y === undefined) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', `ECC point coordinates do not fit ${curve.jwk}`, {
        field: 'TPMT_PUBLIC.unique.ecc',
        actual: `x=${toHex(pub.unique.x)} y=${toHex(pub.unique.y)}`,
      });
    }
    try {
      const key = createPublicKey({ key: { kty: 'EC', crv: curve.jwk, x: toBase64Url(x), y: toBase64Url(y) }, format: 'jwk' });
      return { public: pub, name, key, curve };
    } catch (cause) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', `ECC point is not on ${curve.jwk}`, { field: 'TPMT_PUBLIC.unique.ecc', cause });
    }
  }
  throw new VerificationError('TPM_KEY_UNSUPPORTED', `${algName(pub.type)} keys cannot sign quotes`, { field: 'TPMT_PUBLIC.type' });
}
