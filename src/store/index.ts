/**
 * Verifier storage: the {@link Store} interface, its record types, the shared schema
 * migrations, and the embedded SQLite implementation.
 */
export {
  CHALLENGE_REFUSAL_CODES,
  SNP_AK_NAME_PREFIX,
  type NodeKind,
  type PendingSnpEnrollment,
  type TakePendingSnpEnrollmentResult,
  type AppendedDecision,
  type AttestationCommit,
  type AttestationInputs,
  type AttestationRaceFailures,
  type RecordedAttestation,
  type AttestationOutcome,
  type ChallengeRecord,
  type ChallengeRefusal,
  type CompleteEnrollmentResult,
  type ConsumeChallengeResult,
  type CounterUpdateResult,
  type DecisionInput,
  type DecisionRecord,
  type EnrollNodeResult,
  type EnrollRefusal,
  type ImaStateRecord,
  type NewChallenge,
  type NewNode,
  type NewPendingEnrollment,
  type NodeRecord,
  type NodeRevocationResult,
  type PendingEnrollment,
  type PolicyRecord,
  type QuoteCounters,
  type Store,
  type CheckpointRecord,
  type NewRetainedInput,
  type RetainedInput,
} from './types.js';
export { MIGRATIONS, migrationChecksum, type Migration } from './migrations.js';
export { SQLITE_DEFAULT_FILE, SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { raceFailures, recordedDecision } from './commit.js';
