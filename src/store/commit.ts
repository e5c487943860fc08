/**
 * The one rule by which every store turns an {@link AttestationCommit} and what its transaction
 * did into the decision it records, and by which the caller learns the final result: failures
 * for the steps that lost a race are appended (revocation, challenge, IMA state, counters) and the
 * outcome becomes `contraindicated`.
 */
import type { AttestationCommit, AttestationOutcome, AttestationRaceFailures, DecisionInput } from './types.js';

/** The failures that `outcome` adds to the committed decision, in order. */
export function raceFailures<F extends object>(onRace: AttestationRaceFailures<F>, outcome: AttestationOutcome): F[] {
  const out: F[] = [];
  if (outcome.revoked && onRace.revoked !== undefined) out.push(onRace.revoked);
  if (outcome.challenge !== 'ok' && onRace.challenge !== undefined) out.push(onRace.challenge[outcome.challenge]);
  if (outcome.ima === 'stale') out.push(onRace.ima);
  if (outcome.counters === 'stale') out.push(onRace.counters);
  return out;
}

/** The decision a store records for `commit` after its transaction did `outcome`. */
export function recordedDecision(commit: AttestationCommit, outcome: AttestationOutcome): DecisionInput {
  const extra = raceFailures(commit.onRace, outcome);
  if (extra.length === 0) return commit.decision;
  const failures: unknown = commit.decision.body['failures'];
  return {
    ...commit.decision,
    outcome: 'contraindicated',
    body: { ...commit.decision.body, failures: [...(Array.isArray(failures) ? (failures as unknown[]) : []), ...extra] },
  };
}
