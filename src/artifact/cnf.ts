/**
 * Checking the `cnf` (confirmation, RFC 7800) key of a verified artifact: the key the agent
 * bound into its evidence, to which secrets are released and whose possession a relying party
 * may ask the presenter to prove.
 */
import type { KeyObject } from 'node:crypto';
import { isVouchError, VerificationError } from '../lib/errors.js';
import type { CnfJwk, EarClaims } from './ear.js';
import { jwkThumbprint, publicJwk, toPublicJwk } from './jwk.js';

/**
 * Throws unless the artifact's `cnf.jwk` is the expected key, given as DER SubjectPublicKeyInfo,
 * a public KeyObject or a public JWK. Keys are compared by RFC 7638 thumbprint.
 * @throws VerificationError ARTIFACT_CNF_MISMATCH (also when `cnf.jwk` is not a usable public key)
 * @throws MisuseError MISUSE_ARGUMENT when `expected` is not a public key
 */
export function checkCnf(claims: Pick<EarClaims, 'cnf'>, expected: Uint8Array | KeyObject | CnfJwk | Record<string, unknown>): void {
  const want = jwkThumbprint(toPublicJwk(expected, 'expected'));
  let got: string;
  try {
    got = jwkThumbprint(publicJwk(claims.cnf?.jwk, 'cnf.jwk'));
  } catch (e) {
    if (!isVouchError(e)) throw e;
    throw new VerificationError('ARTIFACT_CNF_MISMATCH', 'the artifact cnf.jwk is not a usable public key', { field: 'cnf.jwk', expected: want, cause: e });
  }
  if (got !== want) {
    throw new VerificationError('ARTIFACT_CNF_MISMATCH', 'the artifact is bound to another key', { field: 'cnf.jwk', expected: want, actual: got });
  }
}
