/**
 * Appraisal of a SEV-SNP ATTESTATION_REPORT against the `snp` section of a policy (./policy.ts)
 * and against the challenge it answers.
 *
 * Pure: bytes and rules in, every failure out as a value. It reads claims, so it means
 * something only for a report whose signature and chain ./verify.ts has accepted. The order is
 * fixed: REPORT_DATA binding → guest policy bits (POLICY) → VMPL → MEASUREMENT → HOST_DATA →
 * ID_KEY_DIGEST → AUTHOR_KEY_DIGEST → FAMILY_ID → IMAGE_ID → REPORTED_TCB per component →
 * GUEST_SVN → PLATFORM_INFO flags.
 */
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, type ErrorCode } from '../lib/errors.js';
import { checkAllowedHex, failure, type Failure } from '../lib/failure.js';
import { teeReportData } from '../evidence/binding.js';
import { snpPolicyFlags, snpProductOfCpuid, snpTcbComponents, type SnpProduct, type SnpReport } from './abi.js';
import { SNP_PLATFORM_INFO_FLAGS, type SnpPlatformInfoFlag, type SnpPolicy } from './policy.js';

/** The challenge a report must answer: REPORT_DATA = teeReportData(nonce, boundKeySpki). */
export interface SnpBinding {
  readonly nonce: Uint8Array;
  /** DER SubjectPublicKeyInfo of the agent's bound key. */
  readonly boundKeySpki: Uint8Array;
}

/**
 * The exact REPORT_DATA a report must carry, when the caller knows the value rather than the
 * nonce and key it derives from (an offline check of a report made by another tool).
 */
export interface SnpExpectedReportData {
  /** 64 bytes (ATTESTATION_REPORT.REPORT_DATA). */
  readonly reportData: Uint8Array;
}

/** Size of ATTESTATION_REPORT.REPORT_DATA. */
export const SNP_REPORT_DATA_SIZE = 64;

/** Context that the report alone may not give. */
export interface SnpAppraiseOptions {
  /**
   * The product whose TCB layout REPORTED_TCB uses, e.g. SnpVerification.product. Defaults to
   * the product of the report's CPUID fields (version 3 and later).
   */
  readonly product?: SnpProduct;
}

/** The result: `ok` only when no rule failed. */
export interface SnpAppraisal {
  readonly ok: boolean;
  readonly failures: readonly Failure[];
}

const F = 'ATTESTATION_REPORT';

/** An allowed-values rule over a byte field. */
function allowedBytes(out: Failure[], code: ErrorCode, name: string, rule: 'any' | readonly string[], actual: Uint8Array): void {
  checkAllowedHex(out, code, `${F}.${name}`, `report field ${name}`, rule, actual);
}

/** A "forbidden" guest policy bit that is set. */
function policyBit(out: Failure[], code: ErrorCode, bitName: string, bit: number, rule: 'forbidden' | 'allowed', set: boolean): void {
  if (rule === 'allowed' || !set) return;
  out.push(failure(code, {
    field: `${F}.POLICY.${bitName}`,
    expected: '0',
    actual: '1',
    message: `report field POLICY has ${bitName} (bit ${bit}) set and the policy forbids it`,
  }));
}

/**
 * REPORT_DATA against the binding of a nonce and a key, or against an exact expected value.
 * Returns the failure, if any.
 *
 * @throws MisuseError MISUSE_ARGUMENT when the nonce or the bound key is empty (from teeReportData), or an expected REPORT_DATA is not 64 bytes
 */
export function snpReportDataFailures(report: Pick<SnpReport, 'reportData'>, binding: SnpBinding | SnpExpectedReportData): Failure[] {
  const exact = 'reportData' in binding;
  if (exact && binding.reportData.length !== SNP_REPORT_DATA_SIZE) {
    throw new MisuseError('MISUSE_ARGUMENT', `the expected REPORT_DATA must be ${SNP_REPORT_DATA_SIZE} bytes`, { actual: `${binding.reportData.length} bytes` });
  }
  const expected = exact ? binding.reportData : teeReportData(binding.nonce, binding.boundKeySpki);
  if (bytesEqual(expected, report.reportData)) return [];
  return [failure('SNP_REPORT_DATA_MISMATCH', {
    field: `${F}.REPORT_DATA`,
    expected: toHex(expected),
    actual: toHex(report.reportData),
    message: exact ? 'report field REPORT_DATA is not the expected value' : 'report field REPORT_DATA is not the binding of the challenge nonce and the bound key',
  })];
}

/**
 * Appraises a decoded report's claims against `rules` and `binding` (the challenge nonce and
 * bound key, or the exact expected REPORT_DATA). Returns every failure; `ok` is true only when
 * none was found. Never throws for a refusal.
 *
 * @throws MisuseError MISUSE_ARGUMENT when the nonce or the bound key is empty (from teeReportData), or an expected REPORT_DATA is not 64 bytes
 */
export function appraiseSnp(report: SnpReport, rules: SnpPolicy, binding: SnpBinding | SnpExpectedReportData, opts: SnpAppraiseOptions = {}): SnpAppraisal {
  const out: Failure[] = [];

  // 1. The binding to this challenge and this key (or the exact value the caller expects).
  out.push(...snpReportDataFailures(report, binding));

  // 2. Guest policy bits.
  const pf = snpPolicyFlags(report.policy);
  policyBit(out, 'POLICY_SNP_DEBUG', 'DEBUG', 19, rules.debug, pf.debug);
  policyBit(out, 'POLICY_SNP_MIGRATION_AGENT', 'MIGRATE_MA', 18, rules.migrationAgent, pf.migrateMa);
  policyBit(out, 'POLICY_SNP_SMT', 'SMT', 16, rules.smt, pf.smt);

  // 3. VMPL.
  if (rules.vmpl !== 'any' && !rules.vmpl.includes(report.vmpl)) {
    out.push(failure('POLICY_SNP_VMPL', {
      field: `${F}.VMPL`,
      expected: rules.vmpl.join(' | '),
      actual: String(report.vmpl),
      message: `report field VMPL ${report.vmpl} is not one the policy allows (${rules.vmpl.join(', ')})`,
    }));
  }

  // 4. Identity fields.
  allowedBytes(out, 'POLICY_SNP_MEASUREMENT', 'MEASUREMENT', rules.measurement, report.measurement);
  allowedBytes(out, 'POLICY_SNP_HOST_DATA', 'HOST_DATA', rules.hostData, report.hostData);
  allowedBytes(out, 'POLICY_SNP_ID_KEY_DIGEST', 'ID_KEY_DIGEST', rules.idKeyDigest, report.idKeyDigest);
  allowedBytes(out, 'POLICY_SNP_AUTHOR_KEY_DIGEST', 'AUTHOR_KEY_DIGEST', rules.authorKeyDigest, report.authorKeyDigest);
  allowedBytes(out, 'POLICY_SNP_FAMILY_ID', 'FAMILY_ID', rules.familyId, report.familyId);
  allowedBytes(out, 'POLICY_SNP_IMAGE_ID', 'IMAGE_ID', rules.imageId, report.imageId);

  // 5. Minimum TCB, per component of REPORTED_TCB in the product's layout.
  if (rules.minTcb !== 'any') {
    const min = rules.minTcb;
    const product = opts.product ?? snpProductOfCpuid(report.cpuid);
    if (product === undefined) {
      out.push(failure('POLICY_SNP_TCB', {
        field: `${F}.REPORTED_TCB`,
        expected: 'a known product (Milan | Genoa | Turin)',
        actual: report.cpuid === undefined ? 'no CPUID fields (report version 2) and no product given' : `CPUID family 0x${report.cpuid.family.toString(16)} model 0x${report.cpuid.model.toString(16)}`,
        message: 'report field REPORTED_TCB cannot be read: the product, and so the TCB layout, is unknown',
      }));
    } else {
      const t = snpTcbComponents(report.reportedTcb, product);
      const rows: [string, number, number | undefined][] = [
        ['BOOT_LOADER', min.bootLoader, t.bootLoader],
        ['TEE', min.tee, t.tee],
        ['SNP', min.snp, t.snp],
        ['MICROCODE', min.microcode, t.microcode],
      ];
      if (product === 'Turin' && min.fmc !== undefined) rows.push(['FMC', min.fmc, t.fmc]);
      for (const [comp, floor, actual] of rows) {
        if (actual !== undefined && actual >= floor) continue;
        out.push(failure('POLICY_SNP_TCB', {
          field: `${F}.REPORTED_TCB.${comp}`,
          expected: `>= ${floor}`,
          actual: String(actual ?? 'absent'),
          message: `report field REPORTED_TCB.${comp} is ${actual ?? 'absent'}, below the policy minimum ${floor} (${product})`,
        }));
      }
    }
  }

  // 6. Minimum GUEST_SVN.
  if (rules.minGuestSvn !== 'any' && report.guestSvn < rules.minGuestSvn) {
    out.push(failure('POLICY_SNP_GUEST_SVN', {
      field: `${F}.GUEST_SVN`,
      expected: `>= ${rules.minGuestSvn}`,
      actual: String(report.guestSvn),
      message: `report field GUEST_SVN is ${report.guestSvn}, below the policy minimum ${rules.minGuestSvn}`,
    }));
  }

  // 7. PLATFORM_INFO flags.
  if (rules.platformInfo !== 'any') {
    for (const key of Object.keys(SNP_PLATFORM_INFO_FLAGS) as SnpPlatformInfoFlag[]) {
      const rule = rules.platformInfo[key];
      if (rule === undefined || rule === 'allowed') continue;
      const { bit, name } = SNP_PLATFORM_INFO_FLAGS[key];
      const set = ((report.platformInfo >> BigInt(bit)) & 1n) === 1n;
      if (set === (rule === 'required')) continue;
      out.push(failure('POLICY_SNP_PLATFORM_INFO', {
        field: `${F}.PLATFORM_INFO.${name}`,
        expected: rule === 'required' ? '1' : '0',
        actual: set ? '1' : '0',
        message: `report field PLATFORM_INFO has ${name} (bit ${bit}) ${set ? 'set' : 'clear'} and the policy ${rule === 'required' ? 'requires it set' : 'forbids it'}`,
      }));
    }
  }

  return { ok: out.length === 0, failures: out };
}
