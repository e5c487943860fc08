/**
 * Issuing authorization artifacts: an EAR claims set signed as a JWT.
 *
 * Deterministic given its inputs: the clock is injected (`now`), the payload is canonical JSON
 * (RFC 8785), and the only randomness is inside an ES256 signature. Inputs are checked before
 * anything is signed; a bad input is a MisuseError, never a half-formed artifact.
 */
import { MisuseError } from '../lib/errors.js';
import { canonicalJsonBytes } from '../policy/canonical.js';
import {
  AR4SI_CLAIMS,
  COLLATERAL_NAME_PATTERN,
  EAR_DEVELOPER,
  EAR_PROFILE,
  EAR_STATUSES,
  SUBMOD_NAME_PATTERN,
  VOUCH_VERSION,
  tierAtLeast,
  trustTier,
  worstTier,
  type EarClaims,
  type EarStatus,
  type EarSubmod,
  type TrustVector,
} from './ear.js';
import { publicJwk } from './jwk.js';
import { earClaimsToCwt } from './cwt.js';
import { encodeCanonical } from '../lib/cbor.js';
import type { ArtifactSigner } from './signer.js';

/** Shortest and longest artifact lifetime, in seconds (the policy schema has the same bounds). */
export const ARTIFACT_LIFETIME = { min: 30, max: 3600 } as const;

/** One device's appraisal result. */
export interface SubmodInput {
  readonly status: EarStatus;
  readonly trustVector: TrustVector;
  /** SHA-256 (hex) of each certificate, CRL or collateral item used, by role (`vouch.collateral`). */
  readonly collateral?: Readonly<Record<string, string>>;
}

/** Everything an artifact states. */
export interface IssueArtifactInput {
  /** Issue time, epoch seconds (injected; never read from the clock here). */
  readonly now: number;
  /** `exp - iat`, from the policy (30..3600). */
  readonly lifetimeSeconds: number;
  /** This verifier instance (`iss`). */
  readonly verifierId: string;
  /** The node the artifact is about (`sub`). */
  readonly nodeId: string;
  /** Relying parties the artifact is for (`aud`); omitted when absent or empty. */
  readonly audience?: readonly string[];
  /** Per-device results: `tpm0`, later `cpu0`, `gpu0`. */
  readonly submods: Readonly<Record<string, SubmodInput>>;
  readonly policyId: string;
  /** Lower-case hex SHA-256 of the policy (policyDigest). */
  readonly policyDigest: string;
  /** Lower-case hex SHA-256 of the evidence submission. */
  readonly evidenceDigest: string;
  /** The agent's bound public key; goes to `cnf.jwk`. */
  readonly boundKeyJwk: unknown;
  /** Position of the decision in the ledger. */
  readonly ledger: { readonly seq: number; readonly hash: string };
  /** A relying party's nonce to echo (`eat_nonce`), 8..88 characters. */
  readonly nonce?: string;
  /** `ear.verifier-id.build` (default: this vouch's version). */
  readonly build?: string;
}

const HEX256 = /^[0-9a-f]{64}$/;
const SUBMOD_RE = new RegExp(SUBMOD_NAME_PATTERN);
const COLLATERAL_RE = new RegExp(COLLATERAL_NAME_PATTERN);
const POLICY_ID_RE = /^[a-z0-9-]{1,64}$/;
const TEXT_RE = /^[\x21-\x7e]{1,256}$/;

function bad(field: string, message: string, actual?: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', `issueArtifact: ${field} ${message}`, actual === undefined ? { field } : { field, actual });
}

/**
 * Builds the EAR claims for `input` (checked), without signing. Exposed so that the same claims
 * can be stored with the decision and later re-issued in another encoding.
 * @throws MisuseError MISUSE_ARGUMENT
 */
export function buildEarClaims(input: IssueArtifactInput): EarClaims {
  const { now, lifetimeSeconds } = input;
  if (!Number.isSafeInteger(now) || now < 0) throw bad('now', 'must be a non-negative integer (epoch seconds)', String(now));
  if (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds < ARTIFACT_LIFETIME.min || lifetimeSeconds > ARTIFACT_LIFETIME.max) {
    throw bad('lifetimeSeconds', `must be an integer in ${ARTIFACT_LIFETIME.min}..${ARTIFACT_LIFETIME.max}`, String(lifetimeSeconds));
  }
  if (typeof input.verifierId !== 'string' || !TEXT_RE.test(input.verifierId)) throw bad('verifierId', 'must be 1..256 printable ASCII characters');
  if (typeof input.nodeId !== 'string' || !TEXT_RE.test(input.nodeId)) throw bad('nodeId', 'must be 1..256 printable ASCII characters');
  if (typeof input.policyId !== 'string' || !POLICY_ID_RE.test(input.policyId)) throw bad('policyId', 'must match [a-z0-9-]{1,64}');
  if (typeof input.policyDigest !== 'string' || !HEX256.test(input.policyDigest)) throw bad('policyDigest', 'must be 64 lower-case hex digits');
  if (typeof input.evidenceDigest !== 'string' || !HEX256.test(input.evidenceDigest)) throw bad('evidenceDigest', 'must be 64 lower-case hex digits');
  if (!Number.isSafeInteger(input.ledger?.seq) || input.ledger.seq < 0) throw bad('ledger.seq', 'must be a non-negative integer');
  if (typeof input.ledger.hash !== 'string' || !HEX256.test(input.ledger.hash)) throw bad('ledger.hash', 'must be 64 lower-case hex digits');
  if (input.nonce !== undefined && (typeof input.nonce !== 'string' || !/^[\x21-\x7e]{8,88}$/.test(input.nonce))) {
    throw bad('nonce', 'must be 8..88 printable ASCII characters');
  }
  const build = input.build ?? VOUCH_VERSION;
  if (typeof build !== 'string' || !TEXT_RE.test(build)) throw bad('build', 'must be 1..256 printable ASCII characters');
  const audience = input.audience ?? [];
  for (const a of audience) if (typeof a !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(a)) throw bad('audience', 'entries must be 1..128 printable ASCII characters');
  if (audience.length > 32) throw bad('audience', 'has more than 32 entries');

  const appraisalPolicyId = `policy:${input.policyId}@sha256:${input.policyDigest}`;
  const names = Object.keys(input.submods ?? {});
  if (names.length === 0 || names.length > 16) throw bad('submods', 'must name 1..16 devices');
  const submods: Record<string, EarSubmod> = {};
  for (const name of names) {
    if (!SUBMOD_RE.test(name)) throw bad(`submods.${name}`, `is not a submodule name (${SUBMOD_NAME_PATTERN})`);
    const sm = input.submods[name] as SubmodInput;
    if (!EAR_STATUSES.includes(sm.status)) throw bad(`submods.${name}.status`, `must be one of ${EAR_STATUSES.join(', ')}`, String(sm.status));
    const vector: Record<string, number> = {};
    for (const [k, v] of Object.entries(sm.trustVector ?? {})) {
      if (!(AR4SI_CLAIMS as readonly string[]).includes(k)) throw bad(`submods.${name}.trustVector.${k}`, 'is not an AR4SI claim');
      if (!Number.isInteger(v) || v < -128 || v > 127) throw bad(`submods.${name}.trustVector.${k}`, 'must be an integer in -128..127', String(v));
      vector[k] = v;
    }
    // Fail closed: the status may never be better than the worst claim of its own vector.
    const worst = worstTier(vector);
    if (!tierAtLeast(sm.status, worst)) {
      throw bad(`submods.${name}.status`, `is ${sm.status} but the trust vector holds a ${worst} claim`, sm.status);
    }
    if (sm.status === 'affirming' && !Object.values(vector).some((v) => trustTier(v) === 'affirming')) {
      throw bad(`submods.${name}.status`, 'is affirming but the trust vector affirms nothing', sm.status);
    }
    const collateral: Record<string, string> = {};
    const items = Object.entries(sm.collateral ?? {});
    if (items.length > 32) throw bad(`submods.${name}.collateral`, 'has more than 32 items');
    for (const [k, v] of items) {
      if (!COLLATERAL_RE.test(k)) throw bad(`submods.${name}.collateral.${k}`, `is not a collateral name (${COLLATERAL_NAME_PATTERN})`);
      if (typeof v !== 'string' || !HEX256.test(v)) throw bad(`submods.${name}.collateral.${k}`, 'must be 64 lower-case hex digits');
      collateral[k] = v;
    }
    submods[name] = {
      'ear.status': sm.status,
      'ear.trustworthiness-vector': vector,
      'ear.appraisal-policy-id': appraisalPolicyId,
      ...(items.length > 0 ? { 'vouch.collateral': collateral } : {}),
    };
  }

  const claims: EarClaims = {
    eat_profile: EAR_PROFILE,
    iat: now,
    exp: now + lifetimeSeconds,
    iss: input.verifierId,
    sub: input.nodeId,
    ...(audience.length > 0 ? { aud: [...audience] } : {}),
    ...(input.nonce !== undefined ? { eat_nonce: input.nonce } : {}),
    'ear.verifier-id': { developer: EAR_DEVELOPER, build },
    submods,
    'vouch.evidence-digest': input.evidenceDigest,
    'vouch.policy-digest': input.policyDigest,
    'vouch.ledger': { seq: input.ledger.seq, hash: input.ledger.hash },
    cnf: { jwk: publicJwk(input.boundKeyJwk, 'boundKeyJwk') },
  };
  return claims;
}

/**
 * Issues an artifact: the EAR claims of `input`, as canonical JSON, signed by `signer` into a
 * compact JWS (a JWT with header `{alg, kid, typ: "JWT"}`).
 * @throws MisuseError MISUSE_ARGUMENT for bad inputs
 * @throws UnavailableError ARTIFACT_SIGNING_KEY_UNUSABLE when signing fails
 */
export async function issueArtifact(signer: ArtifactSigner, input: IssueArtifactInput): Promise<string> {
  return signer.signCompact(canonicalJsonBytes(buildEarClaims(input)));
}

/**
 * Issues an artifact as a CWT: the same EAR claims as {@link issueArtifact}, mapped to CBOR labels
 * (see ./cwt.ts), canonical CBOR, signed by `signer` into an untagged COSE_Sign1.
 * @throws MisuseError MISUSE_ARGUMENT for bad inputs
 * @throws UnavailableError ARTIFACT_SIGNING_KEY_UNUSABLE when signing fails
 */
export async function issueArtifactCwt(signer: ArtifactSigner, input: IssueArtifactInput): Promise<Uint8Array> {
  return signer.signCose(encodeCanonical(earClaimsToCwt(buildEarClaims(input))));
}
