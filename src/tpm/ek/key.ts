/**
 * Binding of an EK certificate to the TPM's endorsement key: the certificate's subject public
 * key must be the key of the TPMT_PUBLIC the TPM reports for its EK (EK Credential Profile
 * §2.2.1: the certificate certifies exactly that key).
 */
import { bytesEqual, toHex } from '../../lib/bytes.js';
import { MisuseError } from '../../lib/errors.js';
import { ECC_CURVES, TPM_ALG } from '../abi/constants.js';
import type { TpmtPublic } from '../abi/public.js';
import type { EkCertificate } from './certificate.js';
import type { EkFailure } from './chain.js';

/** Result of {@link ekMatchesPublic}. */
export interface EkKeyCheck {
  /** True when the keys are equal; `failures` is then empty. */
  readonly ok: boolean;
  readonly failures: readonly EkFailure[];
}

/** Default RSA public exponent, written as 0 in TPMS_RSA_PARMS.exponent (Part 2 §12.2.3.5). */
const RSA_DEFAULT_EXPONENT = 65537;

function b64u(s: unknown): Uint8Array | undefined {
  return typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'base64url')) : undefined;
}

/** Drops leading zero bytes: integers compare by value, not by encoded width. */
function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

function mismatch(field: string, expected: string, actual: string, message: string): EkKeyCheck {
  return { ok: false, failures: [{ code: 'EK_KEY_MISMATCH', field, expected, actual, message }] };
}

/**
 * Checks that `cert` certifies the TPM key `pub`: for RSA the modulus and public exponent,
 * for ECC the curve and both coordinates. `expected` in a failure is the certificate's value,
 * `actual` the TPM's.
 *
 * @throws MisuseError MISUSE_ARGUMENT when the arguments are not a certificate and a TPMT_PUBLIC
 */
export function ekMatchesPublic(cert: EkCertificate, pub: TpmtPublic): EkKeyCheck {
  if (typeof cert !== 'object' || cert === null || typeof cert.publicKey?.export !== 'function') {
    throw new MisuseError('MISUSE_ARGUMENT', 'ekMatchesPublic: cert is not a parsed EkCertificate', { field: 'cert' });
  }
  if (typeof pub !== 'object' || pub === null || typeof pub.type !== 'number') {
    throw new MisuseError('MISUSE_ARGUMENT', 'ekMatchesPublic: pub is not a TPMT_PUBLIC', { field: 'pub' });
  }
  const keyType = cert.publicKey.asymmetricKeyType ?? 'unknown';
  const jwk = cert.publicKey.export({ format: 'jwk' });

  if (pub.type === TPM_ALG.RSA) {
    if (keyType !== 'rsa') {
      return mismatch('TPMT_PUBLIC.type', keyType, 'TPM_ALG_RSA', `the certificate holds a ${keyType} key, the TPM EK is RSA`);
    }
    const n = b64u(jwk.n);
    const e = b64u(jwk.e);
    if (n === undefined || e === undefined) return mismatch('TPMT_PUBLIC.unique.rsa', 'an RSA key', 'unreadable', 'the certificate RSA key cannot be exported');
    const failures: EkFailure[] = [];
    if (!bytesEqual(stripZeros(n), stripZeros(pub.unique))) {
      failures.push({
        code: 'EK_KEY_MISMATCH',
        field: 'TPMT_PUBLIC.unique.rsa',
        expected: toHex(stripZeros(n)),
        actual: toHex(stripZeros(pub.unique)),
        message: 'the RSA modulus of the certificate is not the TPM EK modulus',
      });
    }
    const tpmExp = pub.parameters.exponent === 0 ? RSA_DEFAULT_EXPONENT : pub.parameters.exponent;
    const certExp = stripZeros(e).reduce((acc, b) => acc * 256 + b, 0);
    if (certExp !== tpmExp) {
      failures.push({
        code: 'EK_KEY_MISMATCH',
        field: 'TPMT_PUBLIC.parameters.rsaDetail.exponent',
        expected: String(certExp),
        actual: String(tpmExp),
        message: 'the RSA public exponent of the certificate is not the TPM EK exponent',
      });
    }
    return { ok: failures.length === 0, failures };
  }

  if (pub.type === TPM_ALG.ECC) {
    if (keyType !== 'ec') {
      return mismatch('TPMT_PUBLIC.type', keyType, 'TPM_ALG_ECC', `the certificate holds a ${keyType} key, the TPM EK is ECC`);
    }
    const curve = ECC_CURVES.find((c) => c.id === pub.parameters.curveId);
    if (curve === undefined || jwk.crv !== curve.jwk) {
      return mismatch(
        'TPMT_PUBLIC.parameters.eccDetail.curveID',
        String(jwk.crv),
        curve?.jwk ?? `0x${pub.parameters.curveId.toString(16).padStart(4, '0')}`,
        'the curve of the certificate key is not the TPM EK curve',
      );
    }
    const x = b64u(jwk.x);
    const y = b64u(jwk.y);
    if (x === undefined || y === undefined) return mismatch('TPMT_PUBLIC.unique.ecc', 'an EC point', 'unreadable', 'the certificate EC key cannot be exported');
    const failures: EkFailure[] = [];
    // Coordinates are field elements: compared by value, so a TPM that trims leading zeros still matches.
    for (const [name, c, t] of [
      ['x', x, pub.unique.x],
      ['y', y, pub.unique.y],
    ] as const) {
      if (t.length > curve.size || !bytesEqual(stripZeros(c), stripZeros(t))) {
        failures.push({
          code: 'EK_KEY_MISMATCH',
          field: `TPMT_PUBLIC.unique.ecc.${name}`,
          expected: toHex(c),
          actual: toHex(t),
          message: `the ${name} coordinate of the certificate key is not the TPM EK's`,
        });
      }
    }
    return { ok: failures.length === 0, failures };
  }

  return mismatch('TPMT_PUBLIC.type', keyType, `0x${pub.type.toString(16).padStart(4, '0')}`, 'the TPM object is neither an RSA nor an ECC key');
}
