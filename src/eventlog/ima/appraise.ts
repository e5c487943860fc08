/**
 * Appraisal of replayed IMA entries against the runtime policy, and the boot_aggregate check
 * (trust stage `appraise`; the signature check it needs is done by signature.ts).
 *
 * Pure functions: no clock, no I/O; every violation is returned, none is thrown.
 *
 * Per entry, in order:
 * 1. the first entry of a boot (index 0) named `boot_aggregate` is left to {@link checkBootAggregate};
 * 2. an excluded path is ignored;
 * 3. a measurement violation (all-zero template hash) is IMA_MEASUREMENT_VIOLATION;
 * 4. a file signature that verifies with a trusted key accepts the entry;
 * 5. otherwise, with `requireSignatures`, the entry fails (IMA_SIGNATURE_MISSING, or the
 *    signature's problem); without it, the entry passes when the policy allows its digest for
 *    its path, else IMA_PATH_NOT_ALLOWED / IMA_DIGEST_NOT_ALLOWED, reported together with the
 *    signature's problem, if it carried one;
 * 6. a signature that names a trusted key but does not verify with it (IMA_SIGNATURE_INVALID)
 *    is reported even when the digest is allowed: it is evidence of tampering.
 */
import { hash } from 'node:crypto';
import { bytesEqual, toHex } from '../../lib/bytes.js';
import type { ErrorCode } from '../../lib/errors.js';
import { failure, type Failure } from '../../lib/failure.js';
import { hashById, TPM_ALG } from '../../tpm/abi/constants.js';
import { entryField, isAllZero, kernelHashByName, type ImaEntry } from './abi.js';
import { CompiledImaPolicy, type ImaRuntimePolicy } from './policy.js';
import { verifyImaSignature } from './signature.js';

/** One runtime-policy violation: the failure, with the entry's path, digest and the rule it broke. */
export interface ImaViolation extends Failure {
  /** Index of the entry in the node's list since boot. */
  readonly index: number;
  readonly path: string;
  /** The measured digest, "algo:hex". */
  readonly digest: string;
  /** The policy rule: `allowed["<path>"]`, `trustedKeys`, `requireSignatures`, or `measurement-violation`. */
  readonly rule: string;
}

/** The result of {@link appraiseIma}. */
export interface ImaAppraisal {
  /** True when there is no violation. */
  readonly ok: boolean;
  readonly violations: readonly ImaViolation[];
  /** Entries compared with the policy (excluded ones and boot_aggregate not counted). */
  readonly appraised: number;
  readonly excluded: number;
  /** Entries accepted by a trusted signature. */
  readonly signed: number;
}

/** The name of the first entry of every boot (ima_add_boot_aggregate). */
export const BOOT_AGGREGATE_NAME = 'boot_aggregate';

/**
 * Appraises entries (already replayed against the quote) with the runtime policy.
 * @param policy the policy section, or its compiled form (compile once per policy version)
 * @throws ParseError POLICY_INVALID when an uncompiled policy does not compile
 */
export function appraiseIma(entries: readonly ImaEntry[], policy: ImaRuntimePolicy | CompiledImaPolicy): ImaAppraisal {
  const p = policy instanceof CompiledImaPolicy ? policy : new CompiledImaPolicy(policy);
  const violations: ImaViolation[] = [];
  let appraised = 0;
  let excluded = 0;
  let signed = 0;
  for (const e of entries) {
    if (e.index === 0 && e.path === BOOT_AGGREGATE_NAME) continue;
    if (p.isExcluded(e.path)) {
      excluded++;
      continue;
    }
    appraised++;
    const hex = toHex(e.digest.digest);
    const digest = `${e.digest.algorithm}:${hex}`;
    const add = (code: ErrorCode, rule: string, message: string, extra: { expected?: string; actual?: string } = {}): void => {
      violations.push({ ...failure(code, { message, field: entryField(e.index, ''), ...extra }), index: e.index, path: e.path, digest, rule });
    };
    if (e.violation) {
      add('IMA_MEASUREMENT_VIOLATION', 'measurement-violation', `${e.path}: the kernel recorded a measurement violation (open writers or time of measure/time of use)`);
      continue;
    }
    let sigProblem: { code: ErrorCode; message: string } | undefined;
    if (e.signature !== undefined) {
      const v = verifyImaSignature(e.signature, e.digest, p.keys, e.index);
      if ('code' in v) sigProblem = v;
      else {
        signed++;
        continue;
      }
    }
    if (sigProblem?.code === 'IMA_SIGNATURE_INVALID') add(sigProblem.code, 'trustedKeys', `${e.path}: ${sigProblem.message}`);
    if (p.requireSignatures) {
      if (sigProblem === undefined) add('IMA_SIGNATURE_MISSING', 'requireSignatures', `${e.path}: the file carries no signature`);
      else if (sigProblem.code !== 'IMA_SIGNATURE_INVALID') add(sigProblem.code, 'trustedKeys', `${e.path}: ${sigProblem.message}`);
      continue;
    }
    const verdict = p.allows(e.path, e.digest.algorithm, hex);
    if (verdict === 'allowed') continue;
    if (sigProblem !== undefined && sigProblem.code !== 'IMA_SIGNATURE_INVALID') add(sigProblem.code, 'trustedKeys', `${e.path}: ${sigProblem.message}`);
    const rule = `allowed[${JSON.stringify(e.path)}]`;
    if (verdict === 'path-not-allowed') add('IMA_PATH_NOT_ALLOWED', rule, `${e.path}: the path is not in the runtime policy`, { expected: 'an allowed or excluded path', actual: digest });
    else add('IMA_DIGEST_NOT_ALLOWED', rule, `${e.path}: ${digest} is not an allowed digest`, { expected: p.allowedFor(e.path).join(', '), actual: digest });
  }
  return { ok: violations.length === 0, violations, appraised, excluded, signed };
}

/** PCR values of a verified quote: TPM_ALG_ID → PCR index → value. */
export type QuotedPcrs = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/** The result of {@link checkBootAggregate}. */
export interface BootAggregateCheck {
  readonly ok: boolean;
  /** Bank whose PCRs the boot_aggregate was computed over (TPM_ALG_ID), when known. */
  readonly bank?: number;
  /**
   * Which kernel rule matched: `pcr0-7` (SHA-1 boot_aggregate, or kernels before 5.8 in any
   * bank) or `pcr0-9` (kernels since 5.8, for banks other than SHA-1: PCRs 8 and 9 hold the
   * kernel command line and image).
   */
  readonly rule?: 'pcr0-7' | 'pcr0-9';
  readonly failures: readonly Failure[];
}

/**
 * Checks the boot_aggregate entry against PCRs 0–9 of the same quote (ima_calc_boot_aggregate).
 * The bank is the one whose algorithm the entry's digest names ("sha256:" in d-ng; SHA-1 for the
 * legacy `ima` template): the kernel records there the bank it read. The aggregate is
 * `H(PCR0 || … || PCR7)`, and, for banks other than SHA-1 on kernels since 5.8,
 * `H(PCR0 || … || PCR9)`; both are accepted and `rule` says which matched.
 * An all-zero boot_aggregate (IMA found no TPM at boot) never matches.
 * @param pcrs the quote's verified PCR values
 */
export function checkBootAggregate(entry: ImaEntry, pcrs: QuotedPcrs): BootAggregateCheck {
  const field = entryField(entry.index, 'd-ng');
  if (entry.path !== BOOT_AGGREGATE_NAME || entry.index !== 0) {
    return { ok: false, failures: [failure('IMA_BOOT_AGGREGATE_MISSING', { message: `the first entry of the list is "${entry.path}" (index ${entry.index}), not boot_aggregate`, field: entryField(entry.index, 'n-ng'), expected: BOOT_AGGREGATE_NAME, actual: entry.path })] };
  }
  const tpmAlg = kernelHashByName(entry.digest.algorithm)?.tpmAlg;
  const alg = tpmAlg === undefined ? undefined : hashById(tpmAlg);
  if (alg === undefined) {
    return { ok: false, failures: [failure('IMA_BOOT_AGGREGATE_MISSING', { message: `boot_aggregate uses ${entry.digest.algorithm}, which is no TPM bank vouch reads`, field })] };
  }
  const bank = pcrs.get(alg.id);
  const missing: number[] = [];
  const values: Uint8Array[] = [];
  const upTo = alg.id === TPM_ALG.SHA1 ? 8 : 10;
  for (let i = 0; i < upTo; i++) {
    const v = bank?.get(i);
    if (v === undefined || v.length !== alg.size) {
      if (i < 8) missing.push(i);
    } else values.push(v);
  }
  if (missing.length > 0) {
    return { ok: false, bank: alg.id, failures: [failure('IMA_BOOT_AGGREGATE_MISSING', { message: `the quote lacks PCRs ${missing.join(', ')} of bank ${alg.name}, which boot_aggregate covers`, field: `pcrs.${alg.name}`, expected: 'PCRs 0-7 (0-9)', actual: `missing ${missing.join(', ')}` })] };
  }
  const agg07 = hash(alg.nodeName, Buffer.concat(values.slice(0, 8)), 'buffer');
  if (bytesEqual(agg07, entry.digest.digest) && !isAllZero(entry.digest.digest)) return { ok: true, bank: alg.id, rule: 'pcr0-7', failures: [] };
  const expected = [toHex(agg07)];
  if (values.length === 10) {
    const agg09 = hash(alg.nodeName, Buffer.concat(values), 'buffer');
    if (bytesEqual(agg09, entry.digest.digest)) return { ok: true, bank: alg.id, rule: 'pcr0-9', failures: [] };
    expected.push(toHex(agg09));
  }
  const zero = isAllZero(entry.digest.digest);
  return {
    ok: false,
    bank: alg.id,
    failures: [failure('IMA_BOOT_AGGREGATE_MISMATCH', {
      message: zero
        ? 'boot_aggregate is all zero: the kernel found no TPM when IMA started'
        : `boot_aggregate is not the ${alg.name} digest of PCRs 0-7${values.length === 10 ? ' nor of PCRs 0-9' : ''} of the quote`,
      field,
      expected: expected.join(' or '),
      actual: toHex(entry.digest.digest),
    })],
  };
}
