/**
 * Authorization artifacts: EAR (EAT Attestation Result) claims signed as JWTs with the
 * verifier's persistent key, and their verification by relying parties.
 */
export {
  EAR_PROFILE,
  EAR_DEVELOPER,
  EAR_STATUSES,
  VOUCH_VERSION,
  AR4SI,
  AR4SI_CLAIMS,
  EarClaimsSchema,
  CollateralDigestsSchema,
  COLLATERAL_NAME_PATTERN,
  trustTier,
  worstTier,
  type Ar4siClaim,
  type CnfJwk,
  type EarClaims,
  type EarStatus,
  type EarSubmod,
  type TrustVector,
} from './ear.js';
export { ArtifactSigner, ARTIFACT_ALGS, SIGNING_KEY_FILE, RETIRED_KEYS_FILE, RETIRED_KEY_GRACE_SECONDS, type RetiredKey, type ArtifactAlg, type ArtifactSignerOptions, type Jwks, type PublicSigningJwk } from './signer.js';
export { issueArtifact, issueArtifactCwt, buildEarClaims, ARTIFACT_LIFETIME, type IssueArtifactInput, type SubmodInput } from './issue.js';
export { verifyArtifact, ARTIFACT_MAX_CHARS, type VerifyArtifactOptions } from './verify.js';
export { checkCnf } from './cnf.js';
export { jwkThumbprint, jwkToSpki, toPublicJwk, publicJwk } from './jwk.js';
export { earClaimsToCwt, cwtToEarClaims, CWT_LABEL, COSE_ALG } from './cwt.js';
