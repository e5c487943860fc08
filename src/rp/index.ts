/**
 * `vouch/rp`: the relying-party SDK. Verifies vouch authorization artifacts (EAR as JWT or CWT)
 * offline against the verifier's JWKS, in Node (20+) and in browsers: it imports no node-only
 * module (jose and WebCrypto only).
 */
export {
  verifyArtifact,
  RP_ALGS,
  RP_TOKEN_MAX,
  type RpAlg,
  type RpProofOfPossession,
  type RpRequirements,
  type RpVerifyOptions,
  type VerifiedArtifact,
} from './verify.js';
export { EAR_PROFILE, EAR_STATUSES, AR4SI, AR4SI_CLAIMS, trustTier, type Ar4siClaim, type EarClaims, type EarStatus, type TrustVector } from '../artifact/ear.js';
export { CWT_LABEL, COSE_ALG, cwtToEarClaims } from '../artifact/cwt.js';
export { VouchError, VerificationError, MisuseError, isVouchError, ERRORS, type ErrorCode } from '../lib/errors.js';
