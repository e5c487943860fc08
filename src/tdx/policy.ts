/**
 * The `tdx` section of a policy document: rules over the claims of a verified Intel TDX quote
 * (the TD report of Intel TDX DCAP Quoting Library API, Appendix 3, and the TCB status that
 * ./verify.ts derives from Intel's collateral), appraised by ./appraise.ts.
 *
 * Every object has `additionalProperties: false`. Every rule is required — a rule that does not
 * constrain anything says so with the literal "any" — except two whose absence means the strict
 * choice, so that leaving them out never disables a check:
 *
 * - `tcbStatuses` absent: only UpToDate is accepted; any other status must be listed. Revoked
 *   cannot be listed.
 * - `debug` absent: a debug TD (TDATTRIBUTES.DEBUG) is refused.
 *
 * Byte-valued rules are lower-case hex of exactly the field's bytes as the TD report stores them
 * (XFAM too: 8 bytes, little-endian as in the report, e.g. "e702060000000000" for 0x602e7).
 *
 * ```yaml
 * tdx:
 *   tcbStatuses: [UpToDate]            # optional; default [UpToDate]
 *   advisoryIds: any                   # or the accepted Intel advisory IDs, e.g. [INTEL-SA-00837]; [] accepts none
 *   mrTd: ["<96 hex>"]                 # or any
 *   rtmr0: any                         # RTMR0..RTMR3: 96 hex each, or any
 *   rtmr1: any
 *   rtmr2: any
 *   rtmr3: any
 *   mrSeam: any                        # 96 hex each
 *   mrConfigId: any                    # 96 hex each
 *   mrOwner: any                       # 96 hex each
 *   mrOwnerConfig: any                 # 96 hex each
 *   debug: forbidden                   # optional; default forbidden (TDATTRIBUTES.DEBUG, bit 0)
 *   attributes: { septVeDisable: required, migratable: forbidden, otherBits: forbidden }   # or any
 *   xfam: any                          # 16 hex each
 *   allowMissingCrl: false             # accept a missing PCK CRL or Root CA CRL (recorded)
 * ```
 */
import { Type, type Static } from '@sinclair/typebox';
import type { TdAttributeName } from './abi.js';

/** Lower-case hex of exactly `size` bytes. */
function hexBytes(size: number) {
  return Type.String({ pattern: `^[0-9a-f]{${size * 2}}$`, description: `lower-case hex of ${size} bytes (${size * 2} hex digits)` });
}

/** A non-empty list of allowed byte values, or the explicit literal "any". */
function allowedHex(size: number) {
  return Type.Union([Type.Literal('any'), Type.Array(hexBytes(size), { minItems: 1, maxItems: 4096, uniqueItems: true })]);
}

/** TCB statuses a policy may accept (Revoked never). */
export const TDX_POLICY_TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
] as const;

/**
 * TDATTRIBUTES bits a policy may constrain besides DEBUG (./abi.ts TD_ATTRIBUTES_BITS): the key
 * of the policy object and the spec name. `otherBits` covers every set bit none of these names.
 */
export const TDX_ATTRIBUTE_RULES = {
  hgsPlusProf: 'HGS_PLUS_PROF',
  perfProf: 'PERF_PROF',
  pmtProf: 'PMT_PROF',
  icssd: 'ICSSD',
  lass: 'LASS',
  septVeDisable: 'SEPT_VE_DISABLE',
  migratable: 'MIGRATABLE',
  pks: 'PKS',
  kl: 'KL',
  tpa: 'TPA',
  perfmon: 'PERFMON',
} as const satisfies Record<string, Exclude<TdAttributeName, 'DEBUG'>>;

/** A TDATTRIBUTES bit name as written in a policy. */
export type TdxAttributeRuleName = keyof typeof TDX_ATTRIBUTE_RULES;

const Permission = Type.Union([Type.Literal('forbidden'), Type.Literal('allowed')]);
/** An attribute bit: must be clear, must be set, or either. */
const FlagRule = Type.Union([Type.Literal('forbidden'), Type.Literal('required'), Type.Literal('allowed')]);
const AdvisoryId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });

/** The `tdx` section. */
export const TdxPolicySchema = Type.Object(
  {
    /** Accepted converged TCB statuses; default [UpToDate]. */
    tcbStatuses: Type.Optional(Type.Array(Type.Union(TDX_POLICY_TCB_STATUSES.map((s) => Type.Literal(s))), { minItems: 1, uniqueItems: true })),
    /** Accepted advisory IDs: every advisory of the TCB status must be listed; [] accepts none. */
    advisoryIds: Type.Union([Type.Literal('any'), Type.Array(AdvisoryId, { maxItems: 4096, uniqueItems: true })]),
    /** Allowed MRTD (the TD's initial contents, 48 bytes). */
    mrTd: allowedHex(48),
    /** Allowed RTMR0..RTMR3 (48 bytes each). */
    rtmr0: allowedHex(48),
    rtmr1: allowedHex(48),
    rtmr2: allowedHex(48),
    rtmr3: allowedHex(48),
    /** Allowed MRSEAM (the TDX module measurement, 48 bytes). */
    mrSeam: allowedHex(48),
    /** Allowed MRCONFIGID, MROWNER, MROWNERCONFIG (48 bytes each). */
    mrConfigId: allowedHex(48),
    mrOwner: allowedHex(48),
    mrOwnerConfig: allowedHex(48),
    /** TDATTRIBUTES.DEBUG: "forbidden" (the default) refuses a TD the host can debug. */
    debug: Type.Optional(Permission),
    /** Other TDATTRIBUTES bits: each named bit must be clear (forbidden), set (required), or either; absent keys are not constrained. */
    attributes: Type.Union([
      Type.Literal('any'),
      Type.Object(
        {
          hgsPlusProf: Type.Optional(FlagRule),
          perfProf: Type.Optional(FlagRule),
          pmtProf: Type.Optional(FlagRule),
          icssd: Type.Optional(FlagRule),
          lass: Type.Optional(FlagRule),
          septVeDisable: Type.Optional(FlagRule),
          migratable: Type.Optional(FlagRule),
          pks: Type.Optional(FlagRule),
          kl: Type.Optional(FlagRule),
          tpa: Type.Optional(FlagRule),
          perfmon: Type.Optional(FlagRule),
          /** Set bits that no name above (nor DEBUG) covers. */
          otherBits: Type.Optional(Permission),
        },
        { additionalProperties: false, minProperties: 1 },
      ),
    ]),
    /** Allowed XFAM (8 bytes as stored, little-endian). */
    xfam: allowedHex(8),
    /** Accept a missing PCK CRL or Root CA CRL (verification then skips that revocation check, recorded). */
    allowMissingCrl: Type.Boolean(),
  },
  { additionalProperties: false },
);

/** The `tdx` section as written. */
export type TdxPolicy = Static<typeof TdxPolicySchema>;

/** The `tdx` section with its two defaults applied (tcbStatuses [UpToDate], debug forbidden). */
export type TdxRules = TdxPolicy & { readonly tcbStatuses: NonNullable<TdxPolicy['tcbStatuses']>; readonly debug: NonNullable<TdxPolicy['debug']> };

/** Applies the defaults of the two optional rules; what is written is kept. */
export function tdxRules(p: TdxPolicy): TdxRules {
  return { ...p, tcbStatuses: p.tcbStatuses ?? ['UpToDate'], debug: p.debug ?? 'forbidden' };
}

/** The options of verifyTdxQuote that the `tdx` section decides. */
export function tdxVerifyAllowances(rules: Pick<TdxPolicy, 'allowMissingCrl'>): { allowMissingCrl: boolean } {
  return { allowMissingCrl: rules.allowMissingCrl };
}
