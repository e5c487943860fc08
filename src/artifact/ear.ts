/**
 * The EAR (EAT Attestation Result, draft-ietf-rats-ear) claims set that vouch issues as a JWT,
 * and the AR4SI trustworthiness vector (draft-ietf-rats-ar4si §2.3) it carries per device.
 *
 * Claim names follow the JWT serialisation of the EAR profile
 * `tag:github.com,2023:veraison/ear`; vouch's own claims are prefixed `vouch.`.
 */
import { Type, type Static } from '@sinclair/typebox';

/** `eat_profile` of every artifact vouch issues. */
export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';

/** `ear.verifier-id.developer`. */
export const EAR_DEVELOPER = 'vouch';

/** vouch's version, written as `ear.verifier-id.build` (a test keeps it equal to package.json). */
export const VOUCH_VERSION = '0.1.0';

/** EAR status tiers (AR4SI §2.3.1), as the JWT serialisation spells them. */
export const EAR_STATUSES = ['none', 'affirming', 'warning', 'contraindicated'] as const;
/** One EAR status tier. */
export type EarStatus = (typeof EAR_STATUSES)[number];

/** The eight AR4SI trustworthiness claims, as named in the EAR trust vector. */
export const AR4SI_CLAIMS = [
  'instance-identity',
  'configuration',
  'executables',
  'file-system',
  'hardware',
  'runtime-opaque',
  'storage-opaque',
  'sourced-data',
] as const;
/** Name of one AR4SI trustworthiness claim. */
export type Ar4siClaim = (typeof AR4SI_CLAIMS)[number];

/** An AR4SI trustworthiness vector: claim → integer value (-128..127). Absent means no claim. */
export type TrustVector = { readonly [K in Ar4siClaim]?: number };

/** AR4SI trustworthiness claim values (draft-ietf-rats-ar4si §2.3.4–§2.3.5). */
export const AR4SI = {
  /** Any claim: a verifier malfunction occurred during appraisal. */
  verifierMalfunction: -1,
  /** Any claim: no claim being made (the evidence does not allow a conclusion). */
  noClaim: 0,
  /** Any claim: the evidence contains elements the verifier cannot parse. */
  unexpectedEvidence: 1,
  /** Any claim: cryptographic validation of the evidence failed. */
  cryptoValidationFailed: 99,
  instanceIdentity: { trustworthy: 2, untrustworthy: 96, unrecognized: 97 },
  configuration: { approved: 2, noKnownVulnerabilities: 3, unsafe: 32, unsupportable: 96 },
  executables: { approvedRuntime: 2, approvedBoot: 3, unsafeRuntime: 32, unrecognizedRuntime: 33, contraindicatedRuntime: 96 },
  fileSystem: { approved: 2, unrecognized: 32, contraindicated: 96 },
  hardware: { genuine: 2, unsafe: 32, contraindicated: 96, unrecognized: 97 },
  runtimeOpaque: { encryptedMemory: 2, isolatedMemory: 32, visibleMemory: 96 },
  storageOpaque: { hwKeysEncryptedSecrets: 2, swKeysEncryptedSecrets: 32, unencryptedSecrets: 96 },
  sourcedData: { trusted: 2, untrusted: 32, contraindicated: 96 },
} as const;

/** Rank of a tier, worst last (none < affirming < warning < contraindicated in severity). */
const TIER_RANK: Record<EarStatus, number> = { none: 0, affirming: 1, warning: 2, contraindicated: 3 };

/**
 * Tier of one AR4SI claim value (AR4SI §2.3.1): -1..1 none; 2..31 and -2..-32 affirming;
 * 32..95 and -33..-96 warning; 96..127 and -97..-128 contraindicated.
 */
export function trustTier(value: number): EarStatus {
  const a = value < 0 ? -value : value;
  if (a <= 1) return 'none';
  // Negative values sit one further out than positive ones (-32 is affirming, 32 warning).
  const edge = value < 0 ? 1 : 0;
  if (a < 32 + edge) return 'affirming';
  if (a < 96 + edge) return 'warning';
  return 'contraindicated';
}

/** The worst tier among a vector's claims ('none' for an empty vector). */
export function worstTier(vector: TrustVector): EarStatus {
  let worst: EarStatus = 'none';
  for (const k of AR4SI_CLAIMS) {
    const v = vector[k];
    if (v === undefined) continue;
    const t = trustTier(v);
    if (TIER_RANK[t] > TIER_RANK[worst]) worst = t;
  }
  return worst;
}

/** True when status `a` is at least as severe as `b`. */
export function tierAtLeast(a: EarStatus, b: EarStatus): boolean {
  return TIER_RANK[a] >= TIER_RANK[b];
}

// --- claims schema (used to decode verified payloads) ---------------------------------------------

const Hex256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const ClaimValue = Type.Integer({ minimum: -128, maximum: 127 });

/** An AR4SI trust vector in JSON. Unknown claim names are malformed. */
export const TrustVectorSchema = Type.Object(
  {
    'instance-identity': Type.Optional(ClaimValue),
    configuration: Type.Optional(ClaimValue),
    executables: Type.Optional(ClaimValue),
    'file-system': Type.Optional(ClaimValue),
    hardware: Type.Optional(ClaimValue),
    'runtime-opaque': Type.Optional(ClaimValue),
    'storage-opaque': Type.Optional(ClaimValue),
    'sourced-data': Type.Optional(ClaimValue),
  },
  { additionalProperties: false },
);

/** Submodule names: `tpm0`, `cpu0`, `gpu0`, … */
export const SUBMOD_NAME_PATTERN = '^[a-z][a-z0-9-]{0,31}$';

/** Pattern of a collateral item's name in `vouch.collateral` (`snp.vcek`, `tdx.tcbInfo`, …). */
export const COLLATERAL_NAME_PATTERN = '^[a-z][A-Za-z0-9.-]{0,63}$';

/**
 * `vouch.collateral` of a submodule: the SHA-256 (lower-case hex) of every certificate, CRL and
 * collateral document the appraisal of that device used, by role.
 */
export const CollateralDigestsSchema = Type.Record(Type.String({ pattern: COLLATERAL_NAME_PATTERN }), Hex256, { additionalProperties: false, maxProperties: 32 });

/** One device's appraisal in `submods`. */
export const EarSubmodSchema = Type.Object(
  {
    'ear.status': Type.Union(EAR_STATUSES.map((s) => Type.Literal(s))),
    'ear.trustworthiness-vector': Type.Optional(TrustVectorSchema),
    'ear.appraisal-policy-id': Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    'vouch.collateral': Type.Optional(CollateralDigestsSchema),
  },
  { additionalProperties: true },
);

/** A public JWK as it may appear in `cnf.jwk` (RFC 7800 §3.2). Private members are refused elsewhere. */
export const CnfJwkSchema = Type.Object(
  {
    kty: Type.Union([Type.Literal('EC'), Type.Literal('OKP'), Type.Literal('RSA')]),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

/**
 * The claims set of a vouch EAR. Top-level and submodule objects admit further claims
 * (JWT processing rules: claims not understood are ignored), but every claim listed here is
 * required to be present and well-typed where the schema says so.
 */
export const EarClaimsSchema = Type.Object(
  {
    eat_profile: Type.Literal(EAR_PROFILE),
    iat: Type.Integer({ minimum: 0 }),
    exp: Type.Integer({ minimum: 0 }),
    iss: Type.String({ minLength: 1, maxLength: 256 }),
    sub: Type.String({ minLength: 1, maxLength: 256 }),
    aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 32 })])),
    eat_nonce: Type.Optional(Type.String({ minLength: 8, maxLength: 88 })),
    'ear.verifier-id': Type.Object({ developer: Type.String(), build: Type.String() }, { additionalProperties: false }),
    submods: Type.Record(Type.String({ pattern: SUBMOD_NAME_PATTERN }), EarSubmodSchema, {
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 16,
    }),
    'vouch.evidence-digest': Hex256,
    'vouch.policy-digest': Hex256,
    'vouch.ledger': Type.Object(
      { seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), hash: Hex256 },
      { additionalProperties: false },
    ),
    cnf: Type.Object({ jwk: CnfJwkSchema }, { additionalProperties: false }),
  },
  { additionalProperties: true },
);

/** The claims of a verified vouch artifact. */
export type EarClaims = Static<typeof EarClaimsSchema>;
/** One device's entry in `submods`. */
export type EarSubmod = Static<typeof EarSubmodSchema>;
/** A public JWK as carried in `cnf.jwk`. */
export type CnfJwk = Static<typeof CnfJwkSchema>;
