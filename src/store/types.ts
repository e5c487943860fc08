/**
 * The verifier's storage, behind one async interface.
 *
 * {@link Store} is what the service uses; `SqliteStore` is the embedded default, and a
 * PostgreSQL store for several replicas implements the same interface over the same schema
 * (src/store/migrations.ts). The contract every implementation keeps:
 *
 * - **No clock inside.** Every time is passed in by the caller, as epoch milliseconds.
 * - **Fail closed.** A database failure is an `UnavailableError` STORE_UNAVAILABLE, never a
 *   default value: "not found" is `null` only when the database answered that it is absent.
 * - **Single use across replicas.** {@link Store.consumeChallenge} and
 *   {@link Store.completeEnrollment} let exactly one caller win, whatever the number of
 *   processes sharing the database.
 * - **One linear ledger.** {@link Store.appendDecision} reads the head and inserts the next
 *   entry in one serialised transaction, so concurrent appends never fork the chain.
 */
import type { CborObject } from '../lib/cbor.js';
import type { ErrorCode } from '../lib/errors.js';
import type { DecisionKind } from '../ledger/entry.js';

/** TPMS_CLOCK_INFO counters from a node's last accepted quote (TPM 2.0 Part 2, §10.11.1). */
export interface QuoteCounters {
  /** TPMS_CLOCK_INFO.resetCount: TPM resets (power cycles) since the TPM was manufactured. */
  readonly resetCount: number;
  /** TPMS_CLOCK_INFO.restartCount: TPM restarts and resumes since the last reset. */
  readonly restartCount: number;
  /** TPMS_CLOCK_INFO.clock: milliseconds the TPM has been powered (UINT64). */
  readonly clock: bigint;
}

/**
 * How a node proves what it is: 'tpm' (EK, AK and quotes) or 'snp' (an SNP-only confidential VM:
 * a long-term node key and SEV-SNP reports).
 */
export type NodeKind = 'tpm' | 'snp';

/** The first byte of an SNP node's `akName` (0x53 0x4E, "SN"): no TPM name starts with 0x53. */
export const SNP_AK_NAME_PREFIX = Uint8Array.of(0x53, 0x4e);

/**
 * What enrolment writes for a node.
 *
 * For kind 'snp' the TPM fields do not apply: `ekPublic` and `akPublic` are empty, `ekCert` is
 * null, and `akName` is {@link SNP_AK_NAME_PREFIX} ‖ SHA-256(nodeKey) — a value no TPM name can
 * take, so uniqueness holds across both kinds (src/store/migrations.ts, version 3).
 */
export interface NewNode {
  readonly nodeId: string;
  /** The group whose assigned policy applies to the node. */
  readonly group: string;
  /** Default 'tpm'. */
  readonly kind?: NodeKind;
  /** The EK's TPMT_PUBLIC bytes (empty for an SNP node). */
  readonly ekPublic: Uint8Array;
  /** The EK certificate (DER), when the TPM has one. */
  readonly ekCert: Uint8Array | null;
  /** The AK's TPMT_PUBLIC bytes (empty for an SNP node). */
  readonly akPublic: Uint8Array;
  /** The AK's TPM name (nameAlg || H(TPMT_PUBLIC)); unique across nodes. */
  readonly akName: Uint8Array;
  /** An SNP node's key (DER SubjectPublicKeyInfo, P-256); null or absent for a TPM node. */
  readonly nodeKey?: Uint8Array | null;
  readonly enrolledAt: number;
}

/** An enrolled node as stored. */
export interface NodeRecord extends NewNode {
  readonly kind: NodeKind;
  readonly nodeKey: Uint8Array | null;
  /** Counters of the last accepted quote; null before the first. */
  readonly counters: QuoteCounters | null;
  /** Time of the last accepted quote; null before the first. */
  readonly lastQuoteAt: number | null;
  readonly updatedAt: number;
  /** When an operator revoked the node; null while it is not revoked. */
  readonly revokedAt: number | null;
  /** The operator's reason, set with {@link revokedAt}. */
  readonly revokedReason: string | null;
}

/** Result of {@link Store.revokeNode} and {@link Store.readmitNode}. */
export type NodeRevocationResult =
  | { readonly ok: true; readonly node: NodeRecord }
  /** 'unknown': no such node; 'already-revoked' / 'not-revoked': the node is already in the asked state. */
  | { readonly ok: false; readonly reason: 'unknown' | 'already-revoked' | 'not-revoked' };

/** Why {@link Store.enrollNode} or {@link Store.completeEnrollment} did not enroll. */
export type EnrollRefusal = 'node-exists' | 'ak-exists';

/** Result of {@link Store.enrollNode}. */
export type EnrollNodeResult = { readonly ok: true; readonly node: NodeRecord } | { readonly ok: false; readonly reason: EnrollRefusal };

/** Result of {@link Store.updateQuoteCounters}. */
export type CounterUpdateResult =
  | { readonly ok: true }
  /** 'unknown': no such node; 'stale': the stored counters are no longer the expected ones. */
  | { readonly ok: false; readonly reason: 'unknown' | 'stale' };

/**
 * An enrolment waiting for credential activation: the node proves that its AK and EK live in
 * the same TPM by returning the secret that MakeCredential sealed. Only the secret's SHA-256 is
 * stored, so a database reader cannot complete someone else's enrolment.
 */
export interface PendingEnrollment {
  readonly enrollmentId: string;
  readonly nodeId: string;
  readonly group: string;
  readonly ekPublic: Uint8Array;
  readonly ekCert: Uint8Array | null;
  readonly akPublic: Uint8Array;
  readonly akName: Uint8Array;
  /** SHA-256 of the expected activation secret (32 bytes). */
  readonly secretSha256: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Failed activation attempts recorded so far. */
  readonly attempts: number;
}

/** What the caller supplies to create a pending enrolment (no attempts yet). */
export type NewPendingEnrollment = Omit<PendingEnrollment, 'attempts'>;

/** Result of {@link Store.completeEnrollment}. */
export type CompleteEnrollmentResult =
  | { readonly ok: true; readonly node: NodeRecord }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' | EnrollRefusal };

/**
 * An SNP-only enrollment between its two steps: the node sent its key and got `nonce`; it must
 * come back with a report whose REPORT_DATA binds (nonce, nodeKey) and a key proof over the
 * report. Taken (read and deleted) by the one completion attempt it allows.
 */
export interface PendingSnpEnrollment {
  readonly enrollmentId: string;
  /** `snp-` + the first 32 hex digits of SHA-256(nodeKey). */
  readonly nodeId: string;
  readonly group: string;
  /** DER SubjectPublicKeyInfo of the node key. */
  readonly nodeKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Result of {@link Store.takePendingSnpEnrollment}. */
export type TakePendingSnpEnrollmentResult =
  | { readonly ok: true; readonly pending: PendingSnpEnrollment }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' };

/** A challenge to create: single use, bound to one node, with an expiry. */
export interface NewChallenge {
  readonly challengeId: string;
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  /** Request parameters (PCR selection and the like); stored as canonical CBOR. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
  /** The challenge is expired from this instant on (`now >= expiresAt`). */
  readonly expiresAt: number;
}

/** A challenge as stored. */
export interface ChallengeRecord {
  readonly challengeId: string;
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  readonly params: CborObject;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly consumedAt: number | null;
}

/** Why a challenge could not be consumed. Checked in this order. */
export type ChallengeRefusal = 'unknown' | 'wrong-node' | 'consumed' | 'expired';

/** The registry code a service answers with for each {@link ChallengeRefusal}. */
export const CHALLENGE_REFUSAL_CODES = {
  unknown: 'CHALLENGE_UNKNOWN',
  'wrong-node': 'CHALLENGE_WRONG_NODE',
  consumed: 'CHALLENGE_REPLAYED',
  expired: 'CHALLENGE_EXPIRED',
} as const satisfies Record<ChallengeRefusal, ErrorCode>;

/** Result of {@link Store.consumeChallenge}. */
export type ConsumeChallengeResult =
  | { readonly ok: true; readonly challenge: ChallengeRecord }
  | { readonly ok: false; readonly reason: ChallengeRefusal };

/** A policy document, content-addressed. */
export interface PolicyRecord {
  /** Lower-case hex SHA-256 of the document's UTF-8 bytes. */
  readonly digest: string;
  /** The policy's own name or version label, as the document states it. */
  readonly policyId: string;
  readonly document: string;
  readonly createdAt: number;
}

/**
 * A secret of the key broker as stored (migration v5): AES-256-GCM ciphertext (tag appended)
 * under the verifier's master key, never the value itself.
 */
export interface SecretRecord {
  readonly secretId: string;
  /** The tenant the secret belongs to, or null for none. */
  readonly tenant: string | null;
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  /** The release policy as canonical JSON (src/secrets/policy.ts). */
  readonly releasePolicy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A decision to append to the ledger; see src/ledger/entry.ts for the entry it becomes. */
export interface DecisionInput {
  readonly kind: DecisionKind;
  /** The node the decision is about, or null. */
  readonly nodeId: string | null;
  /** Lower-case token (`affirming`, `refused`, ...). */
  readonly outcome: string;
  /** Decision time, epoch milliseconds. */
  readonly time: number;
  /** Kind-specific detail (input digests, reasons); canonical CBOR data model. */
  readonly body: Readonly<Record<string, unknown>>;
  /**
   * Inputs to retain with the decision (content-addressed, see {@link RetainedInput}), written in
   * the transaction that appends it, so a recorded decision never names an input that was lost.
   */
  readonly inputs?: readonly NewRetainedInput[];
}

/** An input of a decision to retain: `digest` is the SHA-256 (lower-case hex) of `bytes`. */
export interface NewRetainedInput {
  readonly digest: string;
  /** What the bytes are (lower-case token): evidence, appraisal-context, signing-key, trust-anchors, … */
  readonly kind: string;
  readonly bytes: Uint8Array;
}

/** A retained input as stored; `bytes` is null once the retention setting pruned it. */
export interface RetainedInput {
  readonly digest: string;
  readonly kind: string;
  readonly bytes: Uint8Array | null;
  readonly storedAt: number;
  readonly prunedAt: number | null;
}

/** A signed ledger checkpoint (src/ledger/checkpoint.ts) as stored. */
export interface CheckpointRecord {
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  readonly signedAt: number;
  readonly kid: string;
  /** The compact JWS exactly as signed. */
  readonly jws: string;
}

/** Where an appended decision landed. */
export interface AppendedDecision {
  readonly seq: number;
  readonly hash: Uint8Array;
}

/** A node's running IMA state: where its measurement list was last accepted. */
export interface ImaStateRecord {
  /** TPMS_CLOCK_INFO.resetCount of the boot the state belongs to. */
  readonly resetCount: number;
  /** Entries of the measurement list accepted so far (the next chunk starts here). */
  readonly entries: number;
  /** PCR 10 after those entries, per bank (TPM_ALG_ID → value). */
  readonly pcr10: ReadonlyMap<number, Uint8Array>;
  /** Runtime-policy violations seen since that reset. */
  readonly violations: number;
}

/** The result of {@link Store.attestationInputs}. */
export interface AttestationInputs {
  readonly challenge: ChallengeRecord | null;
  readonly node: NodeRecord | null;
  readonly imaState: ImaStateRecord | null;
}

/** What the store did with an attestation's challenge and counters, in the recording transaction. */
export interface AttestationOutcome {
  /** 'ok' when this attestation consumed the challenge; otherwise why it could not. */
  readonly challenge: 'ok' | ChallengeRefusal;
  /** 'ok' when the counters moved, 'stale' when another quote moved them first, 'skipped' when not asked or not consumed. */
  readonly counters: 'ok' | 'stale' | 'skipped';
  /** Same for the IMA state. */
  readonly ima: 'ok' | 'stale' | 'skipped';
  /**
   * True when the node was revoked when the decision was recorded (an operator's revocation can
   * land between the appraisal's read and the commit); its counters and IMA state then stay.
   */
  readonly revoked: boolean;
}

/**
 * An appraised attestation to record: in one transaction the store consumes the challenge,
 * moves the node's counters (compare-and-set, only when asked and consumed), writes the IMA
 * state, and appends the decision. Nothing else can slip between them.
 *
 * The decision is given as data, not as a callback, so that a store running in another thread
 * or process records exactly what the caller built: `decision` is what is recorded when every
 * step succeeds; when a step loses a race with a concurrent submission, the store appends the
 * matching `onRace` failures to `decision.body.failures` and records outcome
 * `contraindicated` (see {@link recordedDecision} in ./commit.ts, which every store uses).
 */
export interface AttestationCommit {
  readonly challengeId: string;
  readonly nodeId: string;
  readonly now: number;
  /** Counters to move for an affirming appraisal; null for a refusal. */
  readonly counters: { readonly expected: QuoteCounters | null; readonly next: QuoteCounters } | null;
  /**
   * IMA state to write (compare-and-set on the stored one, null = none stored), when the quote
   * verified and the IMA chunk replayed; written only if the challenge was consumed.
   */
  readonly ima?: { readonly expected: ImaStateRecord | null; readonly next: ImaStateRecord } | null;
  /** The decision when every step succeeds; its body holds a `failures` array. */
  readonly decision: DecisionInput;
  /** Failures (canonical CBOR data model) added when a step lost a race. */
  readonly onRace: AttestationRaceFailures<object>;
}

/** The failures {@link AttestationCommit.onRace} adds, per step. */
export interface AttestationRaceFailures<F extends object> {
  /**
   * Per reason the challenge could not be consumed; absent when the appraisal already found the
   * challenge unusable (the decision says so), so nothing is added twice.
   */
  readonly challenge?: Readonly<Record<ChallengeRefusal, F>>;
  /** Another quote of the node moved the counters first. */
  readonly counters: F;
  /** Another attestation of the node advanced the IMA state first. */
  readonly ima: F;
  /** The node was revoked after the appraisal read it; absent when the appraisal already saw it revoked. */
  readonly revoked?: F;
}

/** Where a recorded attestation landed, and what the store did. */
export interface RecordedAttestation extends AppendedDecision {
  readonly outcome: AttestationOutcome;
}

/** A stored ledger row. `entry` holds the exact bytes that were hashed. */
export interface DecisionRecord {
  readonly seq: number;
  readonly kind: string;
  readonly nodeId: string | null;
  readonly outcome: string;
  readonly time: number;
  readonly entry: Uint8Array;
  readonly prevHash: Uint8Array;
  readonly hash: Uint8Array;
}

/** The verifier's storage. Every method may throw `UnavailableError` STORE_UNAVAILABLE. */
export interface Store {
  // --- nodes ---------------------------------------------------------------------------------
  /** Enrolls a node directly (the caller has done every check). */
  enrollNode(node: NewNode): Promise<EnrollNodeResult>;
  getNode(nodeId: string): Promise<NodeRecord | null>;
  getNodeByAkName(akName: Uint8Array): Promise<NodeRecord | null>;
  /**
   * Compare-and-set of a node's quote counters: writes `next` only if the stored counters are
   * still `expected` (null: no quote accepted yet), so two concurrent appraisals of one node
   * cannot both move the counters from the same starting point.
   */
  updateQuoteCounters(nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number): Promise<CounterUpdateResult>;
  /** Nodes ordered by id, at most `limit` (1..10 000) after `afterId` (exclusive; null: from the start). */
  listNodes(afterId: string | null, limit: number): Promise<NodeRecord[]>;
  /** Marks a node revoked (compare-and-set: only a node that is not revoked). */
  revokeNode(nodeId: string, reason: string, now: number): Promise<NodeRevocationResult>;
  /** Clears a revocation (compare-and-set: only a revoked node). */
  readmitNode(nodeId: string, now: number): Promise<NodeRevocationResult>;

  // --- enrolment -----------------------------------------------------------------------------
  createPendingEnrollment(p: NewPendingEnrollment): Promise<void>;
  getPendingEnrollment(enrollmentId: string): Promise<PendingEnrollment | null>;
  /** Counts a failed activation; returns the new count, or null when there is no such enrolment. */
  recordEnrollmentAttempt(enrollmentId: string): Promise<number | null>;
  /** Atomically turns a pending enrolment into a node (after the caller checked the secret). */
  completeEnrollment(enrollmentId: string, now: number): Promise<CompleteEnrollmentResult>;
  /** Removes a pending enrolment (refused or abandoned); true when one was removed. */
  deletePendingEnrollment(enrollmentId: string): Promise<boolean>;
  /** Stores an SNP-only enrollment's first step. @throws MisuseError when the id is taken */
  createPendingSnpEnrollment(p: PendingSnpEnrollment): Promise<void>;
  /**
   * Atomically reads and deletes a pending SNP enrollment: exactly one caller gets it, whatever
   * the number of processes. An expired one is deleted too and answered 'expired'.
   */
  takePendingSnpEnrollment(enrollmentId: string, now: number): Promise<TakePendingSnpEnrollmentResult>;

  // --- challenges ----------------------------------------------------------------------------
  /** @throws MisuseError when the node is not enrolled or the id is taken */
  createChallenge(c: NewChallenge): Promise<void>;
  /** Atomic, single-use consumption; see {@link ChallengeRefusal} for the order of checks. */
  consumeChallenge(challengeId: string, nodeId: string, now: number): Promise<ConsumeChallengeResult>;
  /** The node's running IMA state (null when none is stored). */
  getImaState(nodeId: string): Promise<ImaStateRecord | null>;
  /** Reads a challenge without consuming it (null when unknown). */
  getChallenge(challengeId: string): Promise<ChallengeRecord | null>;
  /**
   * What an appraisal reads before it starts, in one call: the challenge (not consumed), the
   * node and its IMA state, each null when absent. {@link commitAttestation} re-checks what
   * matters atomically.
   */
  attestationInputs(challengeId: string, nodeId: string): Promise<AttestationInputs>;
  /** Housekeeping: removes challenges and pending enrolments (both kinds) expired before `now`; returns the count. */
  deleteExpired(now: number): Promise<number>;

  // --- policies ------------------------------------------------------------------------------
  /** Stores a document under the SHA-256 of its UTF-8 bytes (idempotent) and returns the record. */
  putPolicy(policyId: string, document: string, now: number): Promise<PolicyRecord>;
  getPolicy(digest: string): Promise<PolicyRecord | null>;
  /** @throws MisuseError when no policy has `digest` */
  assignPolicy(group: string, digest: string, now: number): Promise<void>;
  getAssignedPolicy(group: string): Promise<PolicyRecord | null>;

  // --- ledger --------------------------------------------------------------------------------
  /** Builds, hashes and appends the next ledger entry, durably. */
  appendDecision(decision: DecisionInput): Promise<AppendedDecision>;
  /** Records an appraised attestation: consumption, counters and decision in one transaction. */
  commitAttestation(commit: AttestationCommit): Promise<RecordedAttestation>;
  getDecision(seq: number): Promise<DecisionRecord | null>;
  /** Rows with seq >= `fromSeq`, ascending, at most `limit` (1..10 000). */
  listDecisions(fromSeq: number, limit: number): Promise<DecisionRecord[]>;
  /** The last entry's seq and hash, or null for an empty ledger. */
  ledgerHead(): Promise<AppendedDecision | null>;
  /** The last decision of `kind` (about `nodeId` when given, else about any node or none), or null. */
  lastDecision(kind: DecisionKind, nodeId?: string): Promise<DecisionRecord | null>;

  // --- ledger checkpoints and retained inputs (migration v6) -----------------------------------
  /**
   * Stores a signed checkpoint. If one of the same tree size is stored already (another replica
   * signed it first) that one is kept and returned; otherwise `c` is.
   */
  putCheckpoint(c: CheckpointRecord): Promise<CheckpointRecord>;
  /** Checkpoints with treeSize >= `fromSize`, ascending, at most `limit` (1..10 000). */
  listCheckpoints(fromSize: number, limit: number): Promise<CheckpointRecord[]>;
  /** The checkpoint of the largest tree size, or null. */
  latestCheckpoint(): Promise<CheckpointRecord | null>;
  /** Retains inputs (idempotent: a digest already stored, pruned or not, is left as it is). */
  putInputs(inputs: readonly NewRetainedInput[], now: number): Promise<void>;
  getInput(digest: string): Promise<RetainedInput | null>;
  /** Inputs ordered by digest after `afterDigest` (exclusive; null: from the start), at most `limit` (1..10 000). */
  listInputs(afterDigest: string | null, limit: number): Promise<RetainedInput[]>;
  /** Drops the bytes of inputs stored before `before` (their digests stay); returns how many. */
  pruneInputs(before: number, now: number): Promise<number>;

  // --- key broker secrets (src/secrets) -------------------------------------------------------
  /** Inserts or replaces a secret row (ciphertext only; the store never sees a plaintext). */
  putSecret(s: SecretRecord): Promise<void>;
  getSecret(secretId: string): Promise<SecretRecord | null>;
  /** Every secret row ordered by id (at most 10 000). */
  listSecrets(): Promise<SecretRecord[]>;
  /** Removes a secret; true when one was removed. */
  deleteSecret(secretId: string): Promise<boolean>;

  /** The highest applied schema migration; also a cheap health check that reaches the database. */
  schemaVersion(): Promise<number>;

  /** Closes the store; later calls fail with STORE_UNAVAILABLE. Idempotent. */
  close(): Promise<void>;
}
