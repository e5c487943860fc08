/**
 * The attestation policy document, version `vouch/v1` (TypeBox schema; the TypeScript types
 * are derived from it).
 *
 * Every object in the schema has `additionalProperties: false`: an unknown or misspelled key
 * is an error, never a silently disabled check. The schema also fixes the hex length of every
 * reference value to its bank's digest size, so a truncated value cannot load.
 *
 * ```yaml
 * apiVersion: vouch/v1
 * kind: AttestationPolicy
 * id: gpu-nodes                 # [a-z0-9-]{1,64}
 * description: optional text
 * tpm:                          # TPM rules; absent only in a policy for SNP-only nodes (snp required then)
 *   banks: [sha256]             # required banks; each must be quoted and appraised
 *   pcrs:                       # per bank, per index (0..23): allowed hex values, or "any"
 *     sha256:
 *       "0": ["3d45…", "…"]
 *       "7": any
 *   akAlgorithms: [ecc-p256, rsa2048]   # optional; default both
 * artifact:
 *   lifetimeSeconds: 300        # 30..3600
 *   audience: [key-broker]      # optional
 * ```
 */
import { Type, type Static } from '@sinclair/typebox';
import { ImaRuntimePolicySchema } from '../eventlog/ima/policy.js';
import { SnpPolicySchema, type SnpPolicy } from '../snp/policy.js';
import { TdxPolicySchema, type TdxPolicy } from '../tdx/policy.js';

/** The API version this module reads. */
export const POLICY_API_VERSION = 'vouch/v1';
/** The document kind this module reads. */
export const POLICY_KIND = 'AttestationPolicy';

/**
 * PCR banks a policy may name, with their digest sizes in bytes (TPM 2.0 Part 2 §6.3,
 * bank names as tpm2-tools writes them). Kept as data so the schema, the selection and the
 * appraisal agree on the same list.
 */
export const POLICY_BANKS = {
  sha1: 20,
  sha256: 32,
  sha384: 48,
  sha512: 64,
  sm3_256: 32,
  sha3_256: 32,
  sha3_384: 48,
  sha3_512: 64,
} as const;

/** A PCR bank name ("sha256"). */
export type BankName = keyof typeof POLICY_BANKS;

/** Bank names in a fixed order (the order of {@link POLICY_BANKS}). */
export const BANK_NAMES = Object.keys(POLICY_BANKS) as BankName[];

/** Attestation key algorithms a policy may allow. */
export const AK_ALGORITHMS = ['ecc-p256', 'rsa2048'] as const;
/** An attestation key algorithm name. */
export type AkAlgorithm = (typeof AK_ALGORITHMS)[number];

/**
 * PCR indices a policy may list: 0..23, the 24 PCRs of a PC Client TPM (TCG PC Client
 * Platform TPM Profile §4.6.2), written in canonical decimal (no leading zeros).
 */
export const PCR_INDEX_PATTERN = '^(?:[0-9]|1[0-9]|2[0-3])$';

/** The highest PCR index a policy may list. */
export const PCR_INDEX_MAX = 23;

/** Lower-case hex of exactly `size` bytes. One encoding per field: no `0x`, no upper case. */
function hexDigest(size: number) {
  return Type.String({
    pattern: '^[0-9a-f]*$',
    minLength: size * 2,
    maxLength: size * 2,
    description: `lower-case hex of a ${size}-byte digest (${size * 2} hex digits)`,
  });
}

/** Allowed values of one PCR: a non-empty list of digests, or the explicit literal "any". */
function pcrAllowed(size: number) {
  return Type.Union([
    Type.Literal('any'),
    Type.Array(hexDigest(size), { minItems: 1, maxItems: 256, uniqueItems: true }),
  ]);
}

/** index → allowed values for one bank; at least one PCR. */
function bankPcrs(size: number) {
  return Type.Record(Type.String({ pattern: PCR_INDEX_PATTERN }), pcrAllowed(size), {
    additionalProperties: false,
    minProperties: 1,
  });
}

const Sha1Pcrs = bankPcrs(POLICY_BANKS.sha1);
const Size32Pcrs = bankPcrs(32);
const Size48Pcrs = bankPcrs(48);
const Size64Pcrs = bankPcrs(64);

/** `tpm.pcrs`: bank → PCR index → allowed values. */
export const PcrsSchema = Type.Object(
  {
    sha1: Type.Optional(Sha1Pcrs),
    sha256: Type.Optional(Size32Pcrs),
    sha384: Type.Optional(Size48Pcrs),
    sha512: Type.Optional(Size64Pcrs),
    sm3_256: Type.Optional(Size32Pcrs),
    sha3_256: Type.Optional(Size32Pcrs),
    sha3_384: Type.Optional(Size48Pcrs),
    sha3_512: Type.Optional(Size64Pcrs),
  },
  { additionalProperties: false, minProperties: 1 },
);

const BankNameSchema = Type.Union(BANK_NAMES.map((b) => Type.Literal(b)));

/** The `tpm` section. */
export const TpmPolicySchema = Type.Object(
  {
    banks: Type.Array(BankNameSchema, { minItems: 1, uniqueItems: true }),
    pcrs: PcrsSchema,
    akAlgorithms: Type.Optional(
      Type.Array(Type.Union(AK_ALGORITHMS.map((a) => Type.Literal(a))), { minItems: 1, uniqueItems: true }),
    ),
  },
  { additionalProperties: false },
);

const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lower-case hex of a 32-byte digest' });
const Sha256List = Type.Array(Sha256Hex, { minItems: 1, maxItems: 4096, uniqueItems: true });

/**
 * The `measuredBoot` section: rules over what the UEFI event log says booted. The log must replay
 * to the quoted `pcrs` (each listed in `tpm.pcrs`); the rules see only claims from PCRs that
 * matched. Every rule is required: write `any` for one you do not constrain.
 */
export const MeasuredBootPolicySchema = Type.Object(
  {
    pcrs: Type.Array(Type.Integer({ minimum: 0, maximum: 23 }), { minItems: 1, maxItems: 24, uniqueItems: true }),
    /** Named firmware quirks tolerated (e.g. ebs-missing); every use is recorded in the decision. */
    quirks: Type.Optional(Type.Array(Type.Literal('ebs-missing'), { uniqueItems: true })),
    secureBoot: Type.Union([Type.Literal('enabled'), Type.Literal('any')]),
    /** Certificates (SHA-256 of the DER) that db must hold / must not hold. */
    db: Type.Union([
      Type.Literal('any'),
      Type.Object({ require: Type.Optional(Sha256List), forbid: Type.Optional(Sha256List) }, { additionalProperties: false, minProperties: 1 }),
    ]),
    /** Revocations that dbx must hold: image hashes and certificates; a minimum number of hashes. */
    dbx: Type.Union([
      Type.Literal('any'),
      Type.Object(
        { requireHashes: Type.Optional(Sha256List), requireCertificates: Type.Optional(Sha256List), minHashes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) },
        { additionalProperties: false, minProperties: 1 },
      ),
    ]),
    /** Authenticode SHA-256 digests of the allowed first-stage boot loaders. */
    bootLoaders: Type.Union([Type.Literal('any'), Sha256List]),
    /** SHA-256 digests of the allowed kernels (as GRUB measured them into PCR 9). */
    kernels: Type.Union([Type.Literal('any'), Sha256List]),
    kernelCmdline: Type.Union([
      Type.Literal('any'),
      Type.Object(
        {
          allow: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 256, uniqueItems: true })),
          forbidSubstrings: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: 256, uniqueItems: true })),
        },
        { additionalProperties: false, minProperties: 1 },
      ),
    ]),
    /** S-CRTM version: allowed values, or a minimum (dotted numbers compared numerically). */
    sCrtmVersion: Type.Union([
      Type.Literal('any'),
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: 256, uniqueItems: true }),
      Type.Object({ min: Type.String({ pattern: '^[0-9]+(?:\\.[0-9]+)*$' }) }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
);

/** The `measuredBoot` section as written. */
export type MeasuredBootPolicy = Static<typeof MeasuredBootPolicySchema>;

/**
 * The `runtime` section: rules over the Linux IMA measurement list. Its replay must reach the
 * quoted PCR 10 (listed in `tpm.pcrs` of every required bank); `bootAggregate: required` also
 * needs PCRs 0-7 quoted. Every key is required.
 */
export const RuntimePolicySchema = Type.Object(
  {
    bootAggregate: Type.Union([Type.Literal('required'), Type.Literal('any')]),
    ima: ImaRuntimePolicySchema,
  },
  { additionalProperties: false },
);

/** The `runtime` section as written. */
export type RuntimePolicy = Static<typeof RuntimePolicySchema>;

/** Audience names: printable, no spaces. */
const AudienceSchema = Type.String({ pattern: '^[\\x21-\\x7e]{1,128}$' });

/** The `artifact` section. */
export const ArtifactPolicySchema = Type.Object(
  {
    lifetimeSeconds: Type.Integer({ minimum: 30, maximum: 3600 }),
    audience: Type.Optional(Type.Array(AudienceSchema, { minItems: 1, maxItems: 32, uniqueItems: true })),
  },
  { additionalProperties: false },
);

/** A policy document exactly as written (before defaults are applied). */
export const PolicyDocumentSchema = Type.Object(
  {
    apiVersion: Type.Literal(POLICY_API_VERSION),
    kind: Type.Literal(POLICY_KIND),
    id: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    tpm: Type.Optional(TpmPolicySchema),
    measuredBoot: Type.Optional(MeasuredBootPolicySchema),
    runtime: Type.Optional(RuntimePolicySchema),
    snp: Type.Optional(SnpPolicySchema),
    tdx: Type.Optional(TdxPolicySchema),
    artifact: ArtifactPolicySchema,
  },
  { additionalProperties: false },
);

/** A policy document as written, validated against {@link PolicyDocumentSchema}. */
export type PolicyDocument = Static<typeof PolicyDocumentSchema>;

/** Allowed values of one PCR after validation: lower-case hex digests, or "any". */
export type PcrAllowed = 'any' | readonly string[];

/**
 * A validated, normalised policy: defaults applied, set-valued lists sorted. Two documents
 * that mean the same thing normalise to the same `Policy` (and so the same digest).
 */
export interface Policy {
  readonly apiVersion: typeof POLICY_API_VERSION;
  readonly kind: typeof POLICY_KIND;
  readonly id: string;
  readonly description?: string;
  /**
   * TPM rules. Absent only in a policy for SNP-only nodes (confidential VMs without a vTPM),
   * which then has `snp` rules and no `measuredBoot` or `runtime` rules; a TPM node under a
   * policy without `tpm` is refused (POLICY_TPM_NOT_CONFIGURED), and an SNP-only node under a
   * policy with any TPM rules is refused (POLICY_TPM_RULES_FOR_SNP_NODE).
   */
  readonly tpm?: {
    /** Required banks, in {@link BANK_NAMES} order. */
    readonly banks: readonly BankName[];
    /** bank → PCR index (decimal string) → allowed values (sorted). */
    readonly pcrs: Readonly<Partial<Record<BankName, Readonly<Record<string, PcrAllowed>>>>>;
    /** Allowed attestation key algorithms (default: all of {@link AK_ALGORITHMS}), sorted. */
    readonly akAlgorithms: readonly AkAlgorithm[];
  };
  /** Measured-boot rules (absent: the event log is not required and not appraised). */
  readonly measuredBoot?: MeasuredBootPolicy;
  /** Runtime (IMA) rules (absent: the IMA list is not required and not appraised). */
  readonly runtime?: RuntimePolicy;
  /** SEV-SNP rules (absent: SNP evidence is not accepted). */
  readonly snp?: SnpPolicy;
  /** Intel TDX rules (absent: TDX evidence is not accepted); normalised with tcbStatuses and debug filled in. */
  readonly tdx?: TdxPolicy;
  readonly artifact: {
    readonly lifetimeSeconds: number;
    /** Sorted; absent when the document names no audience. */
    readonly audience?: readonly string[];
  };
}
