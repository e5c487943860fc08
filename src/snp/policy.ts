/**
 * The `snp` section of a policy document: rules over the claims of a verified SEV-SNP
 * ATTESTATION_REPORT (AMD SEV-SNP ABI spec §7.3), appraised by ./appraise.ts.
 *
 * Every object has `additionalProperties: false` and every rule is required: an unset check is
 * not a passed check, so a rule that does not constrain anything says so with the literal "any".
 * Byte-valued rules are lower-case hex of exactly the field's size.
 *
 * ```yaml
 * snp:
 *   debug: forbidden               # POLICY.DEBUG (bit 19)
 *   migrationAgent: forbidden      # POLICY.MIGRATE_MA (bit 18)
 *   smt: allowed                   # POLICY.SMT (bit 16)
 *   vmpl: [0]                      # or any
 *   measurement: ["<96 hex>"]      # or any
 *   hostData: any                  # 64 hex each
 *   idKeyDigest: any               # 96 hex each
 *   authorKeyDigest: any           # 96 hex each
 *   familyId: any                  # 32 hex each
 *   imageId: any                   # 32 hex each
 *   minTcb: { bootLoader: 3, tee: 0, snp: 20, microcode: 209 }   # fmc: Turin only; or any
 *   minGuestSvn: 1                 # or any
 *   platformInfo: { smtEnabled: forbidden, tsmeEnabled: required }   # or any
 *   allowMaskedChipId: false
 *   allowMissingCrl: false
 *   crlMaxAgeSeconds: 604800       # optional: refuse a CRL issued longer ago than this
 * ```
 *
 * `crlMaxAgeSeconds` is the one optional rule. It was added after policies with an `snp`
 * section were in use; absent, a CRL is bounded by its own thisUpdate..nextUpdate window
 * exactly as before, so leaving it out keeps the earlier check and does not disable one.
 */
import { Type, type Static } from '@sinclair/typebox';

/** Lower-case hex of exactly `size` bytes. */
function hexBytes(size: number) {
  return Type.String({
    pattern: `^[0-9a-f]{${size * 2}}$`,
    description: `lower-case hex of ${size} bytes (${size * 2} hex digits)`,
  });
}

/** A non-empty list of allowed byte values, or the explicit literal "any". */
function allowedHex(size: number) {
  return Type.Union([Type.Literal('any'), Type.Array(hexBytes(size), { minItems: 1, maxItems: 4096, uniqueItems: true })]);
}

/** The largest `crlMaxAgeSeconds` a policy may set: ten years. */
export const SNP_CRL_MAX_AGE_LIMIT_SECONDS = 10 * 365 * 24 * 3600;

const Permission = Type.Union([Type.Literal('forbidden'), Type.Literal('allowed')]);
/** A platform flag: must be clear, must be set, or either. */
const FlagRule = Type.Union([Type.Literal('forbidden'), Type.Literal('required'), Type.Literal('allowed')]);
/** One security patch level (a TCB_VERSION byte). */
const Spl = Type.Integer({ minimum: 0, maximum: 255 });

/**
 * PLATFORM_INFO bits a policy may constrain (ABI spec, "PLATFORM_INFO Field"); the key of the
 * policy object, the bit, and the spec name.
 */
export const SNP_PLATFORM_INFO_FLAGS = {
  smtEnabled: { bit: 0, name: 'SMT_EN' },
  tsmeEnabled: { bit: 1, name: 'TSME_EN' },
  eccEnabled: { bit: 2, name: 'ECC_EN' },
  raplDisabled: { bit: 3, name: 'RAPL_DIS' },
  ciphertextHidingEnabled: { bit: 4, name: 'CIPHERTEXT_HIDING_EN' },
  aliasCheckComplete: { bit: 5, name: 'ALIAS_CHECK_COMPLETE' },
} as const;

/** A PLATFORM_INFO flag name as written in a policy. */
export type SnpPlatformInfoFlag = keyof typeof SNP_PLATFORM_INFO_FLAGS;

/** The `snp` section. */
export const SnpPolicySchema = Type.Object(
  {
    /** POLICY.DEBUG: "forbidden" refuses a guest whose memory the host can read. */
    debug: Permission,
    /** POLICY.MIGRATE_MA: association with a migration agent. */
    migrationAgent: Permission,
    /** POLICY.SMT: simultaneous multithreading allowed by the guest policy. */
    smt: Permission,
    /** Allowed VMPL of the requester (0 = most privileged). */
    vmpl: Type.Union([Type.Literal('any'), Type.Array(Type.Integer({ minimum: 0, maximum: 3 }), { minItems: 1, maxItems: 4, uniqueItems: true })]),
    /** Allowed launch digests (MEASUREMENT, 48 bytes). */
    measurement: allowedHex(48),
    /** Allowed HOST_DATA (32 bytes). */
    hostData: allowedHex(32),
    /** Allowed ID_KEY_DIGEST (SHA-384 of the ID key, 48 bytes). */
    idKeyDigest: allowedHex(48),
    /** Allowed AUTHOR_KEY_DIGEST (SHA-384 of the author key, 48 bytes). */
    authorKeyDigest: allowedHex(48),
    /** Allowed FAMILY_ID (16 bytes). */
    familyId: allowedHex(16),
    /** Allowed IMAGE_ID (16 bytes). */
    imageId: allowedHex(16),
    /**
     * Minimum security patch level of each component of REPORTED_TCB. `fmc` is read on Turin
     * only (the other products have no FMC component) and, when absent, is not constrained.
     */
    minTcb: Type.Union([
      Type.Literal('any'),
      Type.Object({ bootLoader: Spl, tee: Spl, snp: Spl, microcode: Spl, fmc: Type.Optional(Spl) }, { additionalProperties: false }),
    ]),
    /** Minimum GUEST_SVN. */
    minGuestSvn: Type.Union([Type.Literal('any'), Type.Integer({ minimum: 0, maximum: 0xffffffff })]),
    /** PLATFORM_INFO flags: each named flag must be clear (forbidden), set (required), or either. */
    platformInfo: Type.Union([
      Type.Literal('any'),
      Type.Object(
        {
          smtEnabled: Type.Optional(FlagRule),
          tsmeEnabled: Type.Optional(FlagRule),
          eccEnabled: Type.Optional(FlagRule),
          raplDisabled: Type.Optional(FlagRule),
          ciphertextHidingEnabled: Type.Optional(FlagRule),
          aliasCheckComplete: Type.Optional(FlagRule),
        },
        { additionalProperties: false, minProperties: 1 },
      ),
    ]),
    /** Accept a report whose CHIP_ID is masked (verification then skips the hwID comparison). */
    allowMaskedChipId: Type.Boolean(),
    /** Accept the absence of an AMD CRL (verification then skips revocation). */
    allowMissingCrl: Type.Boolean(),
    /**
     * Maximum age of the AMD CRL in seconds: a CRL whose thisUpdate is further than this before
     * the verification time is refused (SNP_CRL_TOO_OLD), even inside its nextUpdate. Optional
     * (see above); absent means the CRL's own window only. At most ten years.
     */
    crlMaxAgeSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: SNP_CRL_MAX_AGE_LIMIT_SECONDS })),
  },
  { additionalProperties: false },
);

/** The `snp` section as written. */
export type SnpPolicy = Static<typeof SnpPolicySchema>;

/** The options of verifySnpReport that the `snp` section decides. */
export function snpVerifyAllowances(
  rules: Pick<SnpPolicy, 'allowMaskedChipId' | 'allowMissingCrl' | 'crlMaxAgeSeconds'>,
): { allowMaskedChipId: boolean; allowMissingCrl: boolean; crlMaxAgeSeconds?: number } {
  return {
    allowMaskedChipId: rules.allowMaskedChipId,
    allowMissingCrl: rules.allowMissingCrl,
    ...(rules.crlMaxAgeSeconds !== undefined ? { crlMaxAgeSeconds: rules.crlMaxAgeSeconds } : {}),
  };
}
