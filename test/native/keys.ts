/** Test-only: node:crypto keys and signature checks for TPM public areas, independent of src/tpm/verify. */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { toBase64Url } from '../../src/lib/bytes.js';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/abi/constants.js';
import type { TpmtPublic } from '../../src/tpm/abi/public.js';
import type { TpmtSignature } from '../../src/tpm/abi/signature.js';

export function publicKeyOf(p: TpmtPublic): KeyObject {
  if (p.type === TPM_ALG.RSA) {
    const e = p.parameters.exponent === 0 ? 65537 : p.parameters.exponent;
    const eb = Buffer.alloc(4);
    eb.writeUInt32BE(e);
    return createPublicKey({ key: { kty: 'RSA', n: toBase64Url(p.unique), e: toBase64Url(eb.subarray(eb.findIndex((b) => b !== 0))) }, format: 'jwk' });
  }
  if (p.type === TPM_ALG.ECC) {
    const crv = p.parameters.curveId === TPM_ECC.NIST_P256 ? 'P-256' : p.parameters.curveId === TPM_ECC.NIST_P384 ? 'P-384' : undefined;
    if (crv === undefined) throw new Error('curve not supported in test');
    return createPublicKey({ key: { kty: 'EC', crv, x: toBase64Url(p.unique.x), y: toBase64Url(p.unique.y) }, format: 'jwk' });
  }
  throw new Error('key type not supported in test');
}

function pad(b: Uint8Array, n: number): Buffer {
  const out = Buffer.alloc(n);
  out.set(b, n - b.length);
  return out;
}

export function verifyTpmSignature(key: KeyObject, data: Uint8Array, sig: TpmtSignature): boolean {
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const size = key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 48 : 32;
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(sig.r, size), pad(sig.s, size)]));
  }
  if (sig.sigAlg === TPM_ALG.RSASSA) return verify('sha256', data, key, sig.sig);
  throw new Error('signature scheme not supported in test');
}
