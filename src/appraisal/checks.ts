/** What every appraisal keeps while it runs: the checks in order, and every failure found. */
import { toHex } from '../lib/bytes.js';
import { failure, type Failure } from '../lib/failure.js';
import type { TrustVector } from '../artifact/ear.js';
import { evidenceDigest, type Evidence } from '../evidence/envelope.js';
import { policyDigest, type Policy } from '../policy/index.js';
import type { CheckOutcome } from '../tpm/verify/quote.js';
import { CHALLENGE_REFUSAL_CODES } from '../store/types.js';
import type { Appraisal, ChallengeInput } from './appraise.js';

export class AppraisalLog {
  readonly checks: CheckOutcome[] = [];
  readonly failures: Failure[] = [];

  /** Records a check with what it found; true when it found nothing. */
  record(check: string, found: readonly Failure[]): boolean {
    this.checks.push({ check, outcome: found.length === 0 ? 'pass' : 'fail' });
    this.failures.push(...found);
    return found.length === 0;
  }

  /** Records a check that could not run, and why. */
  skip(check: string, note: string): void {
    this.checks.push({ check, outcome: 'skipped', note });
  }
}

/** Freshness: the challenge is usable, and it is the node's that the evidence names. */
export function freshnessFailures(challenge: ChallengeInput, evidence: { readonly nodeId: string; readonly challengeId: string }): Failure[] {
  if (!challenge.ok) return [failure(CHALLENGE_REFUSAL_CODES[challenge.reason], { field: 'evidence.challenge', actual: evidence.challengeId })];
  if (challenge.nodeId !== evidence.nodeId) return [failure('APPRAISAL_NODE_MISMATCH', { field: 'evidence.node', expected: challenge.nodeId, actual: evidence.nodeId })];
  return [];
}

/** Identity: the node the evidence names is enrolled. */
export function enrolledFailures(node: object | null, evidence: { readonly nodeId: string }): Failure[] {
  return node === null ? [failure('APPRAISAL_NODE_UNKNOWN', { field: 'evidence.node', actual: evidence.nodeId })] : [];
}

/**
 * The fields every appraisal result shares: status, identity, time, the evidence digest (the
 * caller's, taken over the received bytes, or computed), the policy and its digest, the checks,
 * failures and trust vector.
 */
export function appraisalResult(
  input: { readonly evidence: Evidence; readonly now: number; readonly policy: Policy | null; readonly evidenceDigest?: Uint8Array },
  ok: boolean,
  log: AppraisalLog,
  trustVector: TrustVector,
): Omit<Appraisal, 'claims' | 'imaNext' | 'snpOnly'> {
  const { evidence, now, policy } = input;
  return {
    status: ok ? 'affirming' : 'contraindicated',
    nodeId: evidence.nodeId,
    challengeId: evidence.challengeId,
    time: now,
    evidenceDigest: toHex(input.evidenceDigest ?? evidenceDigest(evidence)),
    policyId: policy?.id ?? null,
    policyDigest: policy === null ? null : policyDigest(policy),
    checks: log.checks,
    failures: log.failures,
    trustVector,
  };
}
