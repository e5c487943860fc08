/**
 * Runtime (IMA) appraisal. The agent sends the measurement-list entries since the last accepted
 * attestation; the verifier extends its stored PCR 10 per bank with them until it reaches the
 * quoted PCR 10 (entries the kernel added after the quote wait for the next round), appraises the
 * entries the quote covers, and checks boot_aggregate against PCRs 0-7/0-9 of the same quote.
 * Pure: the stored state comes in, the next state goes out; the service writes it.
 */
import { isVouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import {
  appraiseIma,
  checkBootAggregate,
  compileImaPolicy,
  extendImaToQuote,
  imaStateForQuote,
  parseImaBinary,
  type CompiledImaPolicy,
  type ImaEntry,
  type ImaState,
} from '../eventlog/ima/index.js';
import type { RuntimePolicy } from '../policy/index.js';
import type { ImaStateRecord } from '../store/types.js';
import type { TpmNodeEvidence } from '../evidence/envelope.js';
import type { PcrValues } from '../tpm/verify/quote.js';

/** The runtime part of a decision, in the decision's words. */
export interface RuntimeSummary {
  /** Entries accepted since boot after this attestation. */
  readonly entries: number;
  /** Entries this attestation added. */
  readonly newEntries: number;
  readonly appraised: number;
  readonly excluded: number;
  readonly violations: number;
  readonly bootAggregate?: 'pcr0-7' | 'pcr0-9';
}

export interface RuntimeResult {
  readonly failures: readonly Failure[];
  /** The state to store: present when the entries replayed to the quote. */
  readonly next?: ImaStateRecord;
  readonly summary?: RuntimeSummary;
}

/** Compiled runtime policies, per (frozen) policy object: importing keys costs more than appraising. */
const compiled = new WeakMap<object, CompiledImaPolicy>();

function compiledFor(rules: RuntimePolicy): CompiledImaPolicy {
  let c = compiled.get(rules.ima);
  if (c === undefined) {
    c = compileImaPolicy(rules.ima);
    if (Object.isFrozen(rules.ima)) compiled.set(rules.ima, c);
  }
  return c;
}

/**
 * Appraises the IMA chunk of `evidence` against the quoted PCRs (already verified), the stored
 * state of the node, and the runtime rules.
 */
export function appraiseRuntime(
  rules: RuntimePolicy,
  evidence: TpmNodeEvidence,
  quoted: PcrValues,
  banks: readonly number[],
  resetCount: number,
  stored: ImaStateRecord | null,
): RuntimeResult {
  const bytes = evidence.tpm.imaLog;
  const start = evidence.tpm.imaStart;
  if (bytes === undefined || start === undefined) return { failures: [failure('POLICY_IMA_LOG_MISSING', { field: 'evidence.tpm.imaLog' })] };
  let entries: readonly ImaEntry[];
  try {
    entries = parseImaBinary(bytes, { firstIndex: start }).entries;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [failureFromError(e)] };
  }
  const storedState: ImaState | null = stored === null ? null : { resetCount: stored.resetCount, entries: stored.entries, pcr10: stored.pcr10 };
  const base = imaStateForQuote(storedState, resetCount, banks);
  const sameBoot = stored !== null && base === storedState;
  const priorViolations = sameBoot ? stored.violations : 0;
  if (start !== base.entries) {
    return {
      failures: [
        failure('IMA_STATE_MISMATCH', {
          field: 'evidence.tpm.imaStart',
          expected: String(base.entries),
          actual: String(start),
          message: `the verifier holds ${base.entries} entries of this boot; send the list from entry ${base.entries}`,
        }),
      ],
    };
  }
  const quotedPcr10 = new Map<number, Uint8Array>();
  for (const b of banks) {
    const v = quoted.get(b)?.get(10);
    if (v !== undefined) quotedPcr10.set(b, v);
  }
  let replay;
  try {
    replay = extendImaToQuote(base, entries, quotedPcr10);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [failureFromError(e)] };
  }
  if (!replay.ok) return { failures: replay.failures };
  const covered = entries.slice(0, replay.consumed);
  const out: Failure[] = [];
  if (priorViolations > 0) {
    out.push(failure('IMA_PRIOR_VIOLATION', { field: 'ima', expected: '0 violations since boot', actual: `${priorViolations} violation(s)` }));
  }
  const appraisal = appraiseIma(covered, compiledFor(rules));
  for (const v of appraisal.violations) out.push(failure(v.code, v));
  let bootAggregate: RuntimeSummary['bootAggregate'];
  let aggregateFailed = 0;
  const first = covered[0];
  if (rules.bootAggregate === 'required' && first !== undefined && first.index === 0) {
    const check = checkBootAggregate(first, quoted);
    if (check.ok) bootAggregate = check.rule;
    else {
      out.push(...check.failures);
      aggregateFailed = 1;
    }
  }
  const violations = priorViolations + appraisal.violations.length + aggregateFailed;
  return {
    failures: out,
    next: { resetCount, entries: replay.state.entries, pcr10: replay.state.pcr10, violations },
    summary: {
      entries: replay.state.entries,
      newEntries: replay.consumed,
      appraised: appraisal.appraised,
      excluded: appraisal.excluded,
      violations,
      ...(bootAggregate !== undefined ? { bootAggregate } : {}),
    },
  };
}
