/**
 * Appraisal of a verified Intel TDX quote against the `tdx` section of a policy (./policy.ts)
 * and against the challenge it answers.
 *
 * ```ts
 * appraiseTdx(claims: { report, tcb: { status?, advisoryIds } },   // a TdxQuoteVerification is one
 *             rules: TdxPolicy,
 *             binding: { nonce, boundKeySpki } | { reportData })   // REPORTDATA = teeReportData(nonce, key), or exact
 *   → { ok, failures }
 * ```
 *
 * Pure: claims and rules in, every failure out as a value; no crypto, no clock. It means
 * something only for a quote that ./verify.ts accepted. The order is fixed: REPORTDATA binding →
 * TCB status → advisory IDs → MRTD → RTMR0..3 → MRSEAM → MRCONFIGID → MROWNER → MROWNERCONFIG →
 * TDATTRIBUTES.DEBUG → the other TDATTRIBUTES bits → XFAM. Fields are named as the TD report
 * names them ("TD_REPORT.MRTD").
 */
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, type ErrorCode } from '../lib/errors.js';
import { checkAllowedHex, failure, type Failure } from '../lib/failure.js';
import { teeReportData } from '../evidence/binding.js';
import { TD_ATTRIBUTES_BITS, attributesValue, type TdReport10, type TdReport15 } from './abi.js';
import { TDX_ATTRIBUTE_RULES, tdxRules, type TdxAttributeRuleName, type TdxPolicy } from './policy.js';
import type { TcbStatus } from './tcb.js';

/** The challenge a quote must answer: REPORTDATA = teeReportData(nonce, boundKeySpki). */
export interface TdxBinding {
  readonly nonce: Uint8Array;
  /** DER SubjectPublicKeyInfo of the agent's bound key. */
  readonly boundKeySpki: Uint8Array;
}

/** The exact REPORTDATA a quote must carry (an offline check of a quote made by another tool). */
export interface TdxExpectedReportData {
  /** 64 bytes (TD_REPORT.REPORTDATA). */
  readonly reportData: Uint8Array;
}

/** Size of TD_REPORT.REPORTDATA. */
export const TDX_REPORT_DATA_SIZE = 64;

/** What the appraisal reads: the TD report and the TCB status (a {@link TdxQuoteVerification} is one). */
export interface TdxClaims {
  readonly report: TdReport10 | TdReport15;
  readonly tcb: {
    /** The converged TCB status; absent when verification could not determine one. */
    readonly status?: TcbStatus;
    readonly advisoryIds: readonly string[];
  };
}

/** The result: `ok` only when no rule failed. */
export interface TdxAppraisal {
  readonly ok: boolean;
  readonly failures: readonly Failure[];
}

const F = 'TD_REPORT';

/** An allowed-values rule over a byte field. */
function allowedBytes(out: Failure[], code: ErrorCode, name: string, rule: 'any' | readonly string[], actual: Uint8Array): void {
  checkAllowedHex(out, code, `${F}.${name}`, `TD report field ${name}`, rule, actual);
}

/**
 * REPORTDATA against the binding of a nonce and a key, or against an exact expected value.
 *
 * @throws MisuseError MISUSE_ARGUMENT when the nonce or the bound key is empty (from teeReportData), or an expected REPORTDATA is not 64 bytes
 */
export function tdxReportDataFailures(report: Pick<TdReport10, 'reportData'>, binding: TdxBinding | TdxExpectedReportData): Failure[] {
  const exact = 'reportData' in binding;
  if (exact && (!(binding.reportData instanceof Uint8Array) || binding.reportData.length !== TDX_REPORT_DATA_SIZE)) {
    throw new MisuseError('MISUSE_ARGUMENT', `the expected REPORTDATA must be ${TDX_REPORT_DATA_SIZE} bytes`, { field: 'reportData' });
  }
  const expected = exact ? binding.reportData : teeReportData(binding.nonce, binding.boundKeySpki);
  if (bytesEqual(expected, report.reportData)) return [];
  return [failure('TDX_REPORT_DATA_MISMATCH', {
    field: `${F}.REPORTDATA`,
    expected: toHex(expected),
    actual: toHex(report.reportData),
    message: exact ? 'TD report field REPORTDATA is not the expected value' : 'TD report field REPORTDATA is not the binding of the challenge nonce and the bound key',
  })];
}

/**
 * Appraises a verified quote's claims against `rules` and `binding`. Returns every failure;
 * `ok` is true only when none was found. Never throws for a refusal.
 *
 * @throws MisuseError MISUSE_ARGUMENT when the nonce or the bound key is empty, or an expected REPORTDATA is not 64 bytes
 */
export function appraiseTdx(claims: TdxClaims, policy: TdxPolicy, binding: TdxBinding | TdxExpectedReportData): TdxAppraisal {
  const rules = tdxRules(policy);
  const r = claims.report;
  const out: Failure[] = [];

  // 1. The binding to this challenge and this key.
  out.push(...tdxReportDataFailures(r, binding));

  // 2. TCB status: only the statuses the policy lists (UpToDate by default).
  const status = claims.tcb.status;
  if (status === undefined || !(rules.tcbStatuses as readonly string[]).includes(status)) {
    out.push(failure('POLICY_TDX_TCB_STATUS', {
      field: 'tcbStatus',
      expected: rules.tcbStatuses.join(' | '),
      actual: status ?? 'none (TCB not supported, or not evaluated)',
      message: status === undefined ? 'the platform has no TCB status (below every TCB level, or no collateral), and the policy accepts only known statuses' : `the TCB status ${status} is not one the policy accepts (${rules.tcbStatuses.join(', ')})`,
    }));
  }

  // 3. Advisory IDs: each one the status names must be accepted.
  if (rules.advisoryIds !== 'any') {
    const accepted = rules.advisoryIds;
    for (const id of claims.tcb.advisoryIds) {
      if (accepted.includes(id)) continue;
      out.push(failure('POLICY_TDX_ADVISORY', {
        field: 'tcbStatus.advisoryIDs',
        expected: accepted.length === 0 ? 'no advisory' : accepted.join(' | '),
        actual: id,
        message: `the TCB status names advisory ${id}, which the policy does not accept`,
      }));
    }
  }

  // 4. Measurements and identities.
  allowedBytes(out, 'POLICY_TDX_MRTD', 'MRTD', rules.mrTd, r.mrTd);
  allowedBytes(out, 'POLICY_TDX_RTMR', 'RTMR0', rules.rtmr0, r.rtmrs[0]);
  allowedBytes(out, 'POLICY_TDX_RTMR', 'RTMR1', rules.rtmr1, r.rtmrs[1]);
  allowedBytes(out, 'POLICY_TDX_RTMR', 'RTMR2', rules.rtmr2, r.rtmrs[2]);
  allowedBytes(out, 'POLICY_TDX_RTMR', 'RTMR3', rules.rtmr3, r.rtmrs[3]);
  allowedBytes(out, 'POLICY_TDX_MRSEAM', 'MRSEAM', rules.mrSeam, r.mrSeam);
  allowedBytes(out, 'POLICY_TDX_MRCONFIGID', 'MRCONFIGID', rules.mrConfigId, r.mrConfigId);
  allowedBytes(out, 'POLICY_TDX_MROWNER', 'MROWNER', rules.mrOwner, r.mrOwner);
  allowedBytes(out, 'POLICY_TDX_MROWNERCONFIG', 'MROWNERCONFIG', rules.mrOwnerConfig, r.mrOwnerConfig);

  // 5. TDATTRIBUTES.
  const attrs = attributesValue(r.tdAttributes);
  const bit = (n: number): boolean => ((attrs >> BigInt(n)) & 1n) === 1n;
  if (rules.debug === 'forbidden' && bit(TD_ATTRIBUTES_BITS.DEBUG)) {
    out.push(failure('POLICY_TDX_DEBUG', {
      field: `${F}.TDATTRIBUTES.DEBUG`,
      expected: '0',
      actual: '1',
      message: 'TD report field TDATTRIBUTES has DEBUG (bit 0) set: the host can read and change the TD, and the policy forbids a debug TD',
    }));
  }
  if (rules.attributes !== 'any') {
    const a = rules.attributes;
    for (const key of Object.keys(TDX_ATTRIBUTE_RULES) as TdxAttributeRuleName[]) {
      const rule = a[key];
      if (rule === undefined || rule === 'allowed') continue;
      const name = TDX_ATTRIBUTE_RULES[key];
      const n = TD_ATTRIBUTES_BITS[name];
      const set = bit(n);
      if (set === (rule === 'required')) continue;
      out.push(failure('POLICY_TDX_ATTRIBUTES', {
        field: `${F}.TDATTRIBUTES.${name}`,
        expected: rule === 'required' ? '1' : '0',
        actual: set ? '1' : '0',
        message: `TD report field TDATTRIBUTES has ${name} (bit ${n}) ${set ? 'set' : 'clear'} and the policy ${rule === 'required' ? 'requires it set' : 'forbids it'}`,
      }));
    }
    if (a.otherBits === 'forbidden') {
      const named = new Set<number>(Object.values(TD_ATTRIBUTES_BITS));
      const others: number[] = [];
      for (let i = 0; i < 64; i++) if (!named.has(i) && bit(i)) others.push(i);
      if (others.length > 0) {
        out.push(failure('POLICY_TDX_ATTRIBUTES', {
          field: `${F}.TDATTRIBUTES`,
          expected: 'no bit set other than the named ones',
          actual: `bit(s) ${others.join(', ')} set (${toHex(r.tdAttributes)})`,
          message: `TD report field TDATTRIBUTES has bit(s) ${others.join(', ')} set, which no rule names, and the policy forbids other bits`,
        }));
      }
    }
  }

  // 6. XFAM.
  allowedBytes(out, 'POLICY_TDX_XFAM', 'XFAM', rules.xfam, r.xfam);

  return { ok: out.length === 0, failures: out };
}
