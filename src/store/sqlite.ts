/**
 * The embedded store: one SQLite file in the verifier's data directory (better-sqlite3).
 *
 * - WAL journal, so readers never block the writer.
 * - Durability where an answer depends on it: ledger appends commit with `synchronous=FULL`, so
 *   an append that returned is on disk even after a power loss (an answer a client received is
 *   in the ledger). Other writes (challenges, consumption, counters, enrollments) commit with
 *   `synchronous=NORMAL`: atomic and ordered, but synced by the next ledger commit, which
 *   fsyncs the WAL and with it every frame before it. A power loss can therefore undo only
 *   writes that no recorded decision followed — no answer was given on them — so it can never
 *   undo a consumed challenge behind an issued artifact.
 * - Group commit: ledger appends that arrive in the same event-loop turn are written in one
 *   IMMEDIATE transaction and one fsync; each caller still gets its own seq and hash, and the
 *   chain stays linear. Under load this is what keeps the ledger from costing one fsync per
 *   request.
 * - Foreign keys on; schema through numbered migrations (src/store/migrations.ts).
 * - Every read-modify-write runs in a `BEGIN IMMEDIATE` transaction: the write lock is taken
 *   before the first read, so two processes sharing the file are serialised (a busy connection
 *   waits up to `busyTimeoutMs`) and single-use and chain rules hold across processes too.
 * - better-sqlite3 is synchronous; the methods are async only to keep the {@link Store}
 *   interface that a networked store needs.
 */
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { UnavailableError, isVouchError } from '../lib/errors.js';
import { DECISION_KINDS, GENESIS_PREV, buildLedgerEntry, type DecisionKind } from '../ledger/entry.js';
import {
  checkBytes,
  checkCheckpoint,
  checkCounters,
  checkDigest,
  checkId,
  checkInputs,
  checkpointFromRow,
  inputFromRow,
  checkTime,
  checkU32,
  challengeFromRow,
  colBlob,
  colInt,
  colText,
  decisionFromRow,
  encodePcr10,
  imaFromRow,
  misuse,
  nodeFromRow,
  nodeIdentity,
  pendingFromRow,
  pendingSnpFromRow,
  policyFromRow,
  sameIma,
  secretFromRow,
  type LedgerOp,
  type Row,
  checkLimit,
  checkRevokeReason,
  checkNewPendingSnp,
  checkNewChallenge,
  checkSeq,
  checkSecretRecord,
  checkSecretId,
} from './checks.js';
import { recordedDecision } from './commit.js';
import { MIGRATIONS, SCHEMA_MIGRATIONS_SQLITE, migrationChecksum } from './migrations.js';
import type {
  CheckpointRecord,
  NewRetainedInput,
  RetainedInput,
  SecretRecord,
  AppendedDecision,
  AttestationCommit,
  AttestationInputs,
  AttestationOutcome,
  ImaStateRecord,
  ChallengeRecord,
  ChallengeRefusal,
  CompleteEnrollmentResult,
  ConsumeChallengeResult,
  CounterUpdateResult,
  DecisionInput,
  DecisionRecord,
  EnrollNodeResult,
  NewChallenge,
  NewNode,
  NewPendingEnrollment,
  NodeRecord,
  NodeRevocationResult,
  PendingEnrollment,
  PendingSnpEnrollment,
  TakePendingSnpEnrollmentResult,
  PolicyRecord,
  RecordedAttestation,
  QuoteCounters,
  Store,
} from './types.js';

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** The data directory; created (mode 0700) when missing. */
  readonly dataDir: string;
  /** Database file name inside `dataDir`. Default `vouch.sqlite`. */
  readonly fileName?: string;
  /** How long a statement waits for another connection's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /**
   * Open an existing database read-only (reports and tools beside a running verifier): nothing
   * is created or migrated, the schema must be exactly this code's, and every write fails with
   * STORE_UNAVAILABLE.
   */
  readonly readOnly?: boolean;
}

/** Default database file name in the data directory. */
export const SQLITE_DEFAULT_FILE = 'vouch.sqlite';


/** Maps anything but a vouch error to STORE_UNAVAILABLE, naming the operation. */
function storeError(op: string, e: unknown): Error {
  if (isVouchError(e)) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new UnavailableError('STORE_UNAVAILABLE', `store: ${op} failed: ${detail}`, { cause: e });
}

/** The SQLite implementation of {@link Store}. Create it with {@link SqliteStore.open}. */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #path: string;
  /** Ledger appends waiting for the next group commit. */
  readonly #pending: Array<{ op: LedgerOp; resolve: (r: AppendedDecision) => void; reject: (e: unknown) => void }> = [];
  readonly #statements = new Map<string, Database.Statement>();
  #imaRead: (nodeId: string) => ImaStateRecord | null = () => null;
  readonly #tx: {
    enrollNode: (n: NewNode) => EnrollNodeResult;
    updateCounters: (nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number) => CounterUpdateResult;
    completeEnrollment: (id: string, now: number) => CompleteEnrollmentResult;
    createChallenge: (c: NewChallenge, params: Buffer) => void;
    consumeChallenge: (id: string, nodeId: string, now: number) => ConsumeChallengeResult;
    deleteExpired: (now: number) => number;
    takePendingSnp: (id: string, now: number) => TakePendingSnpEnrollmentResult;
    assignPolicy: (group: string, digest: string, now: number) => void;
    appendBatch: (ops: readonly LedgerOp[]) => AppendedDecision[];
  };

  private constructor(db: Database.Database, file: string) {
    this.#db = db;
    this.#path = file;

    const insertNode = db.prepare(
      `INSERT INTO nodes (node_id, group_name, ek_public, ek_cert, ak_public, ak_name, enrolled_at, updated_at, kind, node_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const nodeExists = db.prepare('SELECT 1 FROM nodes WHERE node_id = ?').pluck();
    const akExists = db.prepare('SELECT 1 FROM nodes WHERE ak_name = ?').pluck();
    const selectNode = db.prepare('SELECT * FROM nodes WHERE node_id = ?');
    const selectPending = db.prepare('SELECT * FROM pending_enrollments WHERE enrollment_id = ?');
    const deletePending = db.prepare('DELETE FROM pending_enrollments WHERE enrollment_id = ?');

    const enrollNodeRaw = (n: NewNode): EnrollNodeResult => {
      const nodeId = checkId(n.nodeId, 'nodeId');
      const akName = checkBytes(n.akName, 'akName');
      const identity = nodeIdentity(n);
      if (nodeExists.get(nodeId) !== undefined) return { ok: false, reason: 'node-exists' };
      if (akExists.get(akName) !== undefined) return { ok: false, reason: 'ak-exists' };
      const at = checkTime(n.enrolledAt, 'enrolledAt');
      insertNode.run(
        nodeId,
        checkId(n.group, 'group'),
        checkBytes(n.ekPublic, 'ekPublic'),
        n.ekCert === null ? null : checkBytes(n.ekCert, 'ekCert'),
        checkBytes(n.akPublic, 'akPublic'),
        akName,
        at,
        at,
        identity.kind,
        identity.nodeKey,
      );
      return { ok: true, node: nodeFromRow(selectNode.get(nodeId) as Row) };
    };

    const updateCounters = db.prepare(
      'UPDATE nodes SET reset_count = ?, restart_count = ?, clock = ?, last_quote_at = ?, updated_at = ? WHERE node_id = ?',
    );

    const insertChallenge = db.prepare(
      `INSERT INTO challenges (challenge_id, node_id, nonce, params, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const challengeExists = db.prepare('SELECT 1 FROM challenges WHERE challenge_id = ?').pluck();
    const selectChallenge = db.prepare('SELECT * FROM challenges WHERE challenge_id = ?');
    const markConsumed = db.prepare('UPDATE challenges SET consumed_at = ? WHERE challenge_id = ? AND consumed_at IS NULL');
    const deleteExpiredChallenges = db.prepare('DELETE FROM challenges WHERE expires_at <= ?');
    const deleteExpiredPending = db.prepare('DELETE FROM pending_enrollments WHERE expires_at <= ?');
    const deleteExpiredPendingSnp = db.prepare('DELETE FROM pending_snp_enrollments WHERE expires_at <= ?');
    const selectPendingSnp = db.prepare('SELECT * FROM pending_snp_enrollments WHERE enrollment_id = ?');
    const deletePendingSnp = db.prepare('DELETE FROM pending_snp_enrollments WHERE enrollment_id = ?');

    const policyExists = db.prepare('SELECT 1 FROM policies WHERE digest = ?').pluck();
    const upsertAssignment = db.prepare(
      `INSERT INTO policy_assignments (group_name, policy_digest, assigned_at) VALUES (?, ?, ?)
       ON CONFLICT (group_name) DO UPDATE SET policy_digest = excluded.policy_digest, assigned_at = excluded.assigned_at`,
    );

    const selectHead = db.prepare('SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1');
    const insertDecision = db.prepare(
      `INSERT INTO decisions (seq, kind, node_id, outcome, decided_at, entry, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // Content-addressed: a digest stored once (pruned or not) is left as it is.
    const insertInput = db.prepare('INSERT INTO retained_inputs (digest, kind, bytes, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING');

    // Compare-and-set in one statement: the row moves only if it still holds `expected`.
    const casCountersFromNone = db.prepare(
      'UPDATE nodes SET reset_count = ?, restart_count = ?, clock = ?, last_quote_at = ?, updated_at = ? WHERE node_id = ? AND reset_count IS NULL',
    );
    const casCounters = db.prepare(
      'UPDATE nodes SET reset_count = ?, restart_count = ?, clock = ?, last_quote_at = ?, updated_at = ? WHERE node_id = ? AND reset_count = ? AND restart_count = ? AND clock = ?',
    );
    const updateCountersRaw = (nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number): CounterUpdateResult => {
      const n = checkCounters(next, 'next');
      let changes: number;
      if (expected === null) changes = casCountersFromNone.run(n.reset, n.restart, n.clock, now, now, nodeId).changes;
      else {
        const e = checkCounters(expected, 'expected');
        changes = casCounters.run(n.reset, n.restart, n.clock, now, now, nodeId, e.reset, e.restart, e.clock).changes;
      }
      if (changes === 1) return { ok: true };
      return nodeExists.get(nodeId) === undefined ? { ok: false, reason: 'unknown' } : { ok: false, reason: 'stale' };
    };

    const selectIma = db.prepare('SELECT * FROM ima_state WHERE node_id = ?');
    const upsertIma = db.prepare(
      `INSERT INTO ima_state (node_id, reset_count, entries, pcr10, violations, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET reset_count = excluded.reset_count, entries = excluded.entries,
         pcr10 = excluded.pcr10, violations = excluded.violations, updated_at = excluded.updated_at`,
    );
    const updateImaRaw = (nodeId: string, expected: ImaStateRecord | null, next: ImaStateRecord, now: number): boolean => {
      const row = selectIma.get(nodeId) as Row | undefined;
      const stored = row === undefined ? null : imaFromRow(row);
      if (!sameIma(stored, expected)) return false;
      upsertIma.run(nodeId, checkU32(next.resetCount, 'ima.resetCount'), checkU32(next.entries, 'ima.entries'), Buffer.from(encodePcr10(next.pcr10)), checkU32(next.violations, 'ima.violations'), now);
      return true;
    };
    this.#imaRead = (nodeId: string) => {
      const row = selectIma.get(nodeId) as Row | undefined;
      return row === undefined ? null : imaFromRow(row);
    };

    const nodeRevokedAt = db.prepare('SELECT revoked_at FROM nodes WHERE node_id = ?').pluck();

    // The common case in one statement: unconsumed, this node's, unexpired → consumed now.
    const consumeGuarded = db.prepare(
      'UPDATE challenges SET consumed_at = ? WHERE challenge_id = ? AND node_id = ? AND consumed_at IS NULL AND expires_at > ?',
    );
    /** Consumption for a recorded attestation, which needs only the verdict (not the record). */
    const consumeForCommit = (id: string, nodeId: string, now: number): { ok: true } | { ok: false; reason: ChallengeRefusal } => {
      if (consumeGuarded.run(now, id, nodeId, now).changes === 1) return { ok: true };
      // Nothing changed: say why, in consumeRaw's order, without writing anything.
      const c = usableChallenge(id, nodeId, now);
      return 'reason' in c ? { ok: false, reason: c.reason } : { ok: false, reason: 'consumed' };
    };

    /** The challenge if `nodeId` may consume it at `now`, else why not (unknown → wrong node → consumed → expired). */
    const usableChallenge = (id: string, nodeId: string, now: number): ChallengeRecord | { reason: ChallengeRefusal } => {
      const row = selectChallenge.get(id) as Row | undefined;
      if (row === undefined) return { reason: 'unknown' };
      const c = challengeFromRow(row);
      // A challenge of another node is not burnt by the attempt: its owner may still use it.
      if (c.nodeId !== nodeId) return { reason: 'wrong-node' };
      if (c.consumedAt !== null) return { reason: 'consumed' };
      if (now >= c.expiresAt) return { reason: 'expired' };
      return c;
    };

    const consumeRaw = (id: string, nodeId: string, now: number): ConsumeChallengeResult => {
      const c = usableChallenge(id, nodeId, now);
      if ('reason' in c) return { ok: false, reason: c.reason };
      // The guard on consumed_at makes the update itself single-use, even outside a transaction.
      if (markConsumed.run(now, id).changes !== 1) return { ok: false, reason: 'consumed' };
      return { ok: true, challenge: { ...c, consumedAt: now } };
    };

    this.#tx = {
      enrollNode: db.transaction(enrollNodeRaw).immediate,

      updateCounters: db.transaction(updateCountersRaw).immediate,

      completeEnrollment: db.transaction((id: string, now: number): CompleteEnrollmentResult => {
        const row = selectPending.get(id) as Row | undefined;
        if (row === undefined) return { ok: false, reason: 'unknown' };
        const p = pendingFromRow(row);
        if (now >= p.expiresAt) return { ok: false, reason: 'expired' };
        const r = enrollNodeRaw({
          nodeId: p.nodeId,
          group: p.group,
          ekPublic: p.ekPublic,
          ekCert: p.ekCert,
          akPublic: p.akPublic,
          akName: p.akName,
          enrolledAt: now,
        });
        if (r.ok) deletePending.run(id);
        return r;
      }).immediate,

      createChallenge: db.transaction((c: NewChallenge, params: Buffer): void => {
        if (nodeExists.get(c.nodeId) === undefined) throw misuse(`createChallenge: node ${JSON.stringify(c.nodeId)} is not enrolled`);
        if (challengeExists.get(c.challengeId) !== undefined) throw misuse(`createChallenge: challenge id ${JSON.stringify(c.challengeId)} is already used`);
        insertChallenge.run(c.challengeId, c.nodeId, checkBytes(c.nonce, 'nonce'), params, c.createdAt, c.expiresAt);
      }).immediate,

      consumeChallenge: db.transaction(consumeRaw).immediate,

      deleteExpired: db.transaction((now: number): number => {
        return deleteExpiredChallenges.run(now).changes + deleteExpiredPending.run(now).changes + deleteExpiredPendingSnp.run(now).changes;
      }).immediate,

      takePendingSnp: db.transaction((id: string, now: number): TakePendingSnpEnrollmentResult => {
        const row = selectPendingSnp.get(id) as Row | undefined;
        if (row === undefined) return { ok: false, reason: 'unknown' };
        const p = pendingSnpFromRow(row);
        // Deleted whatever happens next: one attempt per enrollment, an expired one is gone too.
        if (deletePendingSnp.run(id).changes !== 1) return { ok: false, reason: 'unknown' };
        return now >= p.expiresAt ? { ok: false, reason: 'expired' } : { ok: true, pending: p };
      }).immediate,

      assignPolicy: db.transaction((group: string, digest: string, now: number): void => {
        if (policyExists.get(digest) === undefined) throw misuse(`assignPolicy: no policy has digest ${digest}`);
        upsertAssignment.run(group, digest, now);
      }).immediate,

      appendBatch: db.transaction((ops: readonly LedgerOp[]): AppendedDecision[] => {
        // Read the head under the write lock, so the next seq and prev are those of the last
        // committed entry whatever other connections do.
        const head = selectHead.get() as Row | undefined;
        let seq = head === undefined ? 0 : colInt(head, 'decisions', 'seq');
        let prev = head === undefined ? GENESIS_PREV : colBlob(head, 'decisions', 'hash');
        const out: Array<AppendedDecision | RecordedAttestation> = [];
        for (const op of ops) {
          let d: DecisionInput;
          let outcome: AttestationOutcome | undefined;
          if (op.kind === 'decision') d = op.decision;
          else {
            // Consumption and the counter update happen in the transaction that records the
            // decision, so the recorded decision states what they did.
            const c = op.commit;
            const consumed = consumeForCommit(c.challengeId, c.nodeId, c.now);
            // Read under the write lock: a revocation that landed after the appraisal's read.
            const revokedAt: unknown = nodeRevokedAt.get(c.nodeId);
            const revoked = revokedAt !== null && revokedAt !== undefined;
            let counters: AttestationOutcome['counters'] = 'skipped';
            if (consumed.ok && !revoked && c.counters !== null) {
              counters = updateCountersRaw(c.nodeId, c.counters.expected, c.counters.next, c.now).ok ? 'ok' : 'stale';
            }
            let ima: AttestationOutcome['ima'] = 'skipped';
            if (consumed.ok && !revoked && counters !== 'stale' && c.ima !== undefined && c.ima !== null) {
              ima = updateImaRaw(c.nodeId, c.ima.expected, c.ima.next, c.now) ? 'ok' : 'stale';
            }
            outcome = { challenge: consumed.ok ? 'ok' : consumed.reason, counters, ima, revoked };
            d = recordedDecision(c, outcome);
          }
          seq += 1;
          const { entry, hash } = buildLedgerEntry({ seq, prev, time: d.time, kind: d.kind, node: d.nodeId, outcome: d.outcome, body: d.body });
          // The decision's inputs in its own transaction: a recorded decision never names a lost input.
          for (const i of d.inputs ?? []) insertInput.run(i.digest, i.kind, Buffer.from(i.bytes.buffer, i.bytes.byteOffset, i.bytes.byteLength), d.time);
          insertDecision.run(seq, d.kind, d.nodeId, d.outcome, d.time, Buffer.from(entry), Buffer.from(prev), Buffer.from(hash));
          out.push(outcome === undefined ? { seq, hash } : { seq, hash, outcome });
          prev = hash;
        }
        return out;
      }).immediate,
    };
  }

  /**
   * Opens (creating when missing) the database in `options.dataDir`, sets WAL,
   * `synchronous=NORMAL` (ledger commits switch to FULL) and foreign keys, and applies pending
   * migrations.
   *
   * @throws UnavailableError STORE_UNAVAILABLE when the file cannot be opened or is not a
   *   database; STORE_SCHEMA_MISMATCH when its schema is newer or differs from this code's
   */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const fileName = options.fileName ?? SQLITE_DEFAULT_FILE;
    if (typeof options.dataDir !== 'string' || options.dataDir === '') throw misuse('dataDir must be a non-empty path');
    if (fileName === '' || fileName !== path.basename(fileName)) throw misuse('fileName must be a plain file name');
    const file = path.join(options.dataDir, fileName);
    let db: Database.Database | undefined;
    if (options.readOnly === true) {
      try {
        db = new Database(file, { readonly: true, fileMustExist: true, timeout: options.busyTimeoutMs ?? 5000 });
        checkSchema(db);
        return new SqliteStore(db, file);
      } catch (e) {
        try {
          db?.close();
        } catch {
          // As below: the open error is the one to report.
        }
        throw storeError(`open ${file} read-only`, e);
      }
    }
    try {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new UnavailableError('STORE_UNAVAILABLE', `store: ${file} cannot use WAL journaling (got ${String(mode)})`);
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      if (db.pragma('foreign_keys', { simple: true }) !== 1) throw new UnavailableError('STORE_UNAVAILABLE', 'store: foreign keys could not be enabled');
      migrate(db);
      return new SqliteStore(db, file);
    } catch (e) {
      try {
        db?.close();
      } catch {
        // Closing a connection that failed to open can itself fail; the open error is the one to report.
      }
      throw storeError(`open ${file}`, e);
    }
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /** A prepared statement, cached per SQL text (preparing costs more than most queries here). */
  #stmt(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #run<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw storeError(op, e);
    }
  }

  async schemaVersion(): Promise<number> {
    return this.#run('schemaVersion', () => {
      const v = this.#stmt('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as Row;
      return colInt(v, 'schema_migrations', 'v');
    });
  }

  /**
   * The connection's durability settings as SQLite reports them (for health checks and tests):
   * journal mode, synchronous level between ledger commits (1 = NORMAL; ledger commits run at
   * 2 = FULL), foreign keys, schema version.
   */
  async diagnostics(): Promise<{ journalMode: string; synchronous: number; foreignKeys: boolean; schemaVersion: number }> {
    const schemaVersion = await this.schemaVersion();
    return this.#run('diagnostics', () => ({
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.#db.pragma('synchronous', { simple: true })),
      foreignKeys: this.#db.pragma('foreign_keys', { simple: true }) === 1,
      schemaVersion,
    }));
  }

  // --- nodes -----------------------------------------------------------------------------------

  async enrollNode(node: NewNode): Promise<EnrollNodeResult> {
    return this.#run('enrollNode', () => this.#tx.enrollNode(node));
  }

  async getNode(nodeId: string): Promise<NodeRecord | null> {
    checkId(nodeId, 'nodeId');
    return this.#run('getNode', () => {
      const row = this.#stmt('SELECT * FROM nodes WHERE node_id = ?').get(nodeId) as Row | undefined;
      return row === undefined ? null : nodeFromRow(row);
    });
  }

  async getNodeByAkName(akName: Uint8Array): Promise<NodeRecord | null> {
    const b = checkBytes(akName, 'akName');
    return this.#run('getNodeByAkName', () => {
      const row = this.#stmt('SELECT * FROM nodes WHERE ak_name = ?').get(b) as Row | undefined;
      return row === undefined ? null : nodeFromRow(row);
    });
  }

  async updateQuoteCounters(nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number): Promise<CounterUpdateResult> {
    checkId(nodeId, 'nodeId');
    if (expected !== null) checkCounters(expected, 'expected');
    checkCounters(next, 'next');
    checkTime(now, 'now');
    return this.#run('updateQuoteCounters', () => this.#tx.updateCounters(nodeId, expected, next, now));
  }

  async listNodes(afterId: string | null, limit: number): Promise<NodeRecord[]> {
    if (afterId !== null) checkId(afterId, 'afterId');
    checkLimit(limit, 'listNodes');
    return this.#run('listNodes', () => {
      const rows = this.#stmt('SELECT * FROM nodes WHERE node_id > ? ORDER BY node_id LIMIT ?').all(afterId ?? '', limit) as Row[];
      return rows.map(nodeFromRow);
    });
  }

  async revokeNode(nodeId: string, reason: string, now: number): Promise<NodeRevocationResult> {
    checkId(nodeId, 'nodeId');
    checkRevokeReason(reason);
    checkTime(now, 'now');
    return this.#run('revokeNode', () =>
      this.#revocation(nodeId, 'UPDATE nodes SET revoked_at = ?, revoked_reason = ?, updated_at = ? WHERE node_id = ? AND revoked_at IS NULL', [now, reason, now, nodeId], 'already-revoked'),
    );
  }

  async readmitNode(nodeId: string, now: number): Promise<NodeRevocationResult> {
    checkId(nodeId, 'nodeId');
    checkTime(now, 'now');
    return this.#run('readmitNode', () =>
      this.#revocation(nodeId, 'UPDATE nodes SET revoked_at = NULL, revoked_reason = NULL, updated_at = ? WHERE node_id = ? AND revoked_at IS NOT NULL', [now, nodeId], 'not-revoked'),
    );
  }

  /** One compare-and-set statement on a node's revocation columns, then the row as it now is. */
  #revocation(nodeId: string, sql: string, args: readonly unknown[], otherwise: 'already-revoked' | 'not-revoked'): NodeRevocationResult {
    const changed = this.#stmt(sql).run(...args).changes === 1;
    const row = this.#stmt('SELECT * FROM nodes WHERE node_id = ?').get(nodeId) as Row | undefined;
    if (row === undefined) return { ok: false, reason: 'unknown' };
    return changed ? { ok: true, node: nodeFromRow(row) } : { ok: false, reason: otherwise };
  }

  // --- enrolment -------------------------------------------------------------------------------

  async createPendingEnrollment(p: NewPendingEnrollment): Promise<void> {
    const args = [
      checkId(p.enrollmentId, 'enrollmentId'),
      checkId(p.nodeId, 'nodeId'),
      checkId(p.group, 'group'),
      checkBytes(p.ekPublic, 'ekPublic'),
      p.ekCert === null ? null : checkBytes(p.ekCert, 'ekCert'),
      checkBytes(p.akPublic, 'akPublic'),
      checkBytes(p.akName, 'akName'),
      checkBytes(p.secretSha256, 'secretSha256', 32),
      checkTime(p.createdAt, 'createdAt'),
      checkTime(p.expiresAt, 'expiresAt'),
    ];
    this.#run('createPendingEnrollment', () => {
      this.#stmt(
          `INSERT INTO pending_enrollments
             (enrollment_id, node_id, group_name, ek_public, ek_cert, ak_public, ak_name, secret_sha256, created_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(...args);
    });
  }

  async getPendingEnrollment(enrollmentId: string): Promise<PendingEnrollment | null> {
    checkId(enrollmentId, 'enrollmentId');
    return this.#run('getPendingEnrollment', () => {
      const row = this.#stmt('SELECT * FROM pending_enrollments WHERE enrollment_id = ?').get(enrollmentId) as Row | undefined;
      return row === undefined ? null : pendingFromRow(row);
    });
  }

  async recordEnrollmentAttempt(enrollmentId: string): Promise<number | null> {
    checkId(enrollmentId, 'enrollmentId');
    return this.#run('recordEnrollmentAttempt', () => {
      const row = this.#stmt('UPDATE pending_enrollments SET attempts = attempts + 1 WHERE enrollment_id = ? RETURNING attempts')
        .get(enrollmentId) as Row | undefined;
      return row === undefined ? null : colInt(row, 'pending_enrollments', 'attempts');
    });
  }

  async completeEnrollment(enrollmentId: string, now: number): Promise<CompleteEnrollmentResult> {
    checkId(enrollmentId, 'enrollmentId');
    checkTime(now, 'now');
    return this.#run('completeEnrollment', () => this.#tx.completeEnrollment(enrollmentId, now));
  }

  async deletePendingEnrollment(enrollmentId: string): Promise<boolean> {
    checkId(enrollmentId, 'enrollmentId');
    return this.#run('deletePendingEnrollment', () => this.#stmt('DELETE FROM pending_enrollments WHERE enrollment_id = ?').run(enrollmentId).changes === 1);
  }

  async createPendingSnpEnrollment(p: PendingSnpEnrollment): Promise<void> {
    const args = checkNewPendingSnp(p, checkId);
    this.#run('createPendingSnpEnrollment', () => {
      if (this.#stmt('SELECT 1 FROM pending_snp_enrollments WHERE enrollment_id = ?').get(p.enrollmentId) !== undefined) {
        throw misuse(`createPendingSnpEnrollment: enrollment id ${JSON.stringify(p.enrollmentId)} is already used`);
      }
      this.#stmt(
        `INSERT INTO pending_snp_enrollments (enrollment_id, node_id, group_name, node_key, nonce, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(...args);
    });
  }

  async takePendingSnpEnrollment(enrollmentId: string, now: number): Promise<TakePendingSnpEnrollmentResult> {
    checkId(enrollmentId, 'enrollmentId');
    checkTime(now, 'now');
    return this.#run('takePendingSnpEnrollment', () => this.#tx.takePendingSnp(enrollmentId, now));
  }

  // --- challenges ------------------------------------------------------------------------------

  async createChallenge(c: NewChallenge): Promise<void> {
    const { params } = checkNewChallenge(c, checkId);
    this.#run('createChallenge', () => this.#tx.createChallenge(c, params));
  }

  async consumeChallenge(challengeId: string, nodeId: string, now: number): Promise<ConsumeChallengeResult> {
    checkId(challengeId, 'challengeId');
    checkId(nodeId, 'nodeId');
    checkTime(now, 'now');
    return this.#run('consumeChallenge', () => this.#tx.consumeChallenge(challengeId, nodeId, now));
  }

  async deleteExpired(now: number): Promise<number> {
    checkTime(now, 'now');
    return this.#run('deleteExpired', () => this.#tx.deleteExpired(now));
  }

  // --- policies --------------------------------------------------------------------------------

  async putPolicy(policyId: string, document: string, now: number): Promise<PolicyRecord> {
    checkId(policyId, 'policyId');
    if (typeof document !== 'string') throw misuse('putPolicy: document must be a string');
    checkTime(now, 'now');
    const digest = createHash('sha256').update(document, 'utf8').digest('hex');
    return this.#run('putPolicy', () => {
      this.#stmt('INSERT INTO policies (digest, policy_id, document, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING')
        .run(digest, policyId, document, now);
      const row = this.#stmt('SELECT * FROM policies WHERE digest = ?').get(digest) as Row | undefined;
      if (row === undefined) throw new UnavailableError('STORE_UNAVAILABLE', `store: policy ${digest} is missing right after it was written`);
      return policyFromRow(row);
    });
  }

  async getPolicy(digest: string): Promise<PolicyRecord | null> {
    checkDigest(digest, 'getPolicy: digest');
    return this.#run('getPolicy', () => {
      const row = this.#stmt('SELECT * FROM policies WHERE digest = ?').get(digest) as Row | undefined;
      return row === undefined ? null : policyFromRow(row);
    });
  }

  async assignPolicy(group: string, digest: string, now: number): Promise<void> {
    checkId(group, 'group');
    checkDigest(digest, 'assignPolicy: digest');
    checkTime(now, 'now');
    this.#run('assignPolicy', () => this.#tx.assignPolicy(group, digest, now));
  }

  async getAssignedPolicy(group: string): Promise<PolicyRecord | null> {
    checkId(group, 'group');
    return this.#run('getAssignedPolicy', () => {
      const row = this.#stmt('SELECT p.* FROM policy_assignments a JOIN policies p ON p.digest = a.policy_digest WHERE a.group_name = ?')
        .get(group) as Row | undefined;
      return row === undefined ? null : policyFromRow(row);
    });
  }

  // --- ledger ----------------------------------------------------------------------------------

  async appendDecision(decision: DecisionInput): Promise<AppendedDecision> {
    if (decision.nodeId !== null) checkId(decision.nodeId, 'nodeId');
    checkTime(decision.time, 'time');
    checkInputs(decision.inputs, 'appendDecision: inputs');
    return this.#enqueue({ kind: 'decision', decision });
  }

  async getImaState(nodeId: string): Promise<ImaStateRecord | null> {
    checkId(nodeId, 'nodeId');
    return this.#run('getImaState', () => this.#imaRead(nodeId));
  }

  async getChallenge(challengeId: string): Promise<ChallengeRecord | null> {
    checkId(challengeId, 'challengeId');
    return this.#run('getChallenge', () => {
      const row = this.#stmt('SELECT * FROM challenges WHERE challenge_id = ?').get(challengeId) as Row | undefined;
      return row === undefined ? null : challengeFromRow(row);
    });
  }

  async attestationInputs(challengeId: string, nodeId: string): Promise<AttestationInputs> {
    checkId(challengeId, 'challengeId');
    checkId(nodeId, 'nodeId');
    return this.#run('attestationInputs', () => {
      // One read transaction, so the three are one snapshot.
      this.#db.exec('BEGIN');
      try {
        const c = this.#stmt('SELECT * FROM challenges WHERE challenge_id = ?').get(challengeId) as Row | undefined;
        const n = this.#stmt('SELECT * FROM nodes WHERE node_id = ?').get(nodeId) as Row | undefined;
        return { challenge: c === undefined ? null : challengeFromRow(c), node: n === undefined ? null : nodeFromRow(n), imaState: this.#imaRead(nodeId) };
      } finally {
        this.#db.exec('COMMIT');
      }
    });
  }

  async commitAttestation(commit: AttestationCommit): Promise<RecordedAttestation> {
    checkId(commit.challengeId, 'challengeId');
    checkId(commit.nodeId, 'nodeId');
    checkTime(commit.now, 'now');
    checkInputs(commit.decision.inputs, 'commitAttestation: decision.inputs');
    if (commit.counters !== null) {
      if (commit.counters.expected !== null) checkCounters(commit.counters.expected, 'expected');
      checkCounters(commit.counters.next, 'next');
    }
    return this.#enqueue({ kind: 'attestation', commit }) as Promise<RecordedAttestation>;
  }

  #enqueue(op: LedgerOp): Promise<AppendedDecision> {
    if (!this.#db.open) throw storeError('appendDecision', new TypeError('The database connection is not open'));
    return new Promise<AppendedDecision>((resolve, reject) => {
      this.#pending.push({ op, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#flush());
    });
  }

  /**
   * Commits every queued ledger append (and the consumption and counter updates of queued
   * attestations) in one durable (synchronous=FULL) transaction.
   */
  #flush(): void {
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    try {
      const results = this.#run('appendDecision', () => {
        this.#db.pragma('synchronous = FULL');
        try {
          return this.#tx.appendBatch(batch.map((b) => b.op));
        } finally {
          this.#db.pragma('synchronous = NORMAL');
        }
      });
      batch.forEach((b, i) => b.resolve(results[i] as AppendedDecision));
    } catch (e) {
      if (batch.length > 1 && isVouchError(e) && e.category === 'misuse') {
        // One entry could not be built (a caller's bad input); nothing of the batch was written.
        // Commit the others one by one, so the bad entry fails its own caller only.
        for (const b of batch) {
          this.#pending.push(b);
          this.#flush();
        }
        return;
      }
      const err = isVouchError(e) ? e : storeError('appendDecision', e);
      for (const b of batch) b.reject(err);
    }
  }

  async getDecision(seq: number): Promise<DecisionRecord | null> {
    checkSeq(seq, 'getDecision: seq');
    return this.#run('getDecision', () => {
      const row = this.#stmt('SELECT * FROM decisions WHERE seq = ?').get(seq) as Row | undefined;
      return row === undefined ? null : decisionFromRow(row);
    });
  }

  async listDecisions(fromSeq: number, limit: number): Promise<DecisionRecord[]> {
    checkSeq(fromSeq, 'listDecisions: fromSeq');
    checkLimit(limit, 'listDecisions');
    return this.#run('listDecisions', () => {
      const rows = this.#stmt('SELECT * FROM decisions WHERE seq >= ? ORDER BY seq LIMIT ?').all(fromSeq, limit) as Row[];
      return rows.map(decisionFromRow);
    });
  }

  async ledgerHead(): Promise<AppendedDecision | null> {
    return this.#run('ledgerHead', () => {
      const row = this.#stmt('SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1').get() as Row | undefined;
      return row === undefined ? null : { seq: colInt(row, 'decisions', 'seq'), hash: colBlob(row, 'decisions', 'hash') };
    });
  }

  async putSecret(r: SecretRecord): Promise<void> {
    checkSecretRecord(r, checkId);
    return this.#run('putSecret', () => {
      // Keep the first creation time when a secret is replaced.
      this.#stmt(
        `INSERT INTO secrets (secret_id, tenant, ciphertext, nonce, release_policy, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (secret_id) DO UPDATE SET tenant = excluded.tenant, ciphertext = excluded.ciphertext, nonce = excluded.nonce,
           release_policy = excluded.release_policy, updated_at = excluded.updated_at`,
      ).run(r.secretId, r.tenant, Buffer.from(r.ciphertext), Buffer.from(r.nonce), r.releasePolicy, r.createdAt, r.updatedAt);
    });
  }

  async getSecret(secretId: string): Promise<SecretRecord | null> {
    checkSecretId(secretId, 'getSecret');
    return this.#run('getSecret', () => {
      const row = this.#stmt('SELECT * FROM secrets WHERE secret_id = ?').get(secretId) as Row | undefined;
      return row === undefined ? null : secretFromRow(row);
    });
  }

  async listSecrets(): Promise<SecretRecord[]> {
    return this.#run('listSecrets', () => (this.#stmt('SELECT * FROM secrets ORDER BY secret_id LIMIT 10000').all() as Row[]).map(secretFromRow));
  }

  async deleteSecret(secretId: string): Promise<boolean> {
    checkSecretId(secretId, 'deleteSecret');
    return this.#run('deleteSecret', () => this.#stmt('DELETE FROM secrets WHERE secret_id = ?').run(secretId).changes > 0);
  }

  async lastDecision(kind: DecisionKind, nodeId?: string): Promise<DecisionRecord | null> {
    if (!DECISION_KINDS.includes(kind)) throw misuse('lastDecision: unknown decision kind');
    if (nodeId !== undefined) checkId(nodeId, 'nodeId');
    return this.#run('lastDecision', () => {
      const row = (
        nodeId === undefined
          ? this.#stmt('SELECT * FROM decisions WHERE kind = ? ORDER BY seq DESC LIMIT 1').get(kind)
          : this.#stmt('SELECT * FROM decisions WHERE node_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1').get(nodeId, kind)
      ) as Row | undefined;
      return row === undefined ? null : decisionFromRow(row);
    });
  }

  async putCheckpoint(c: CheckpointRecord): Promise<CheckpointRecord> {
    checkCheckpoint(c);
    return this.#run('putCheckpoint', () => {
      this.#stmt('INSERT INTO ledger_checkpoints (tree_size, root_hash, signed_at, kid, jws) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tree_size) DO NOTHING').run(c.treeSize, Buffer.from(c.rootHash), c.signedAt, c.kid, c.jws);
      return checkpointFromRow(this.#stmt('SELECT * FROM ledger_checkpoints WHERE tree_size = ?').get(c.treeSize) as Row);
    });
  }

  async listCheckpoints(fromSize: number, limit: number): Promise<CheckpointRecord[]> {
    if (!Number.isSafeInteger(fromSize) || fromSize < 0) throw misuse('listCheckpoints: fromSize must be a non-negative integer');
    checkLimit(limit, 'listCheckpoints');
    return this.#run('listCheckpoints', () => (this.#stmt('SELECT * FROM ledger_checkpoints WHERE tree_size >= ? ORDER BY tree_size LIMIT ?').all(fromSize, limit) as Row[]).map(checkpointFromRow));
  }

  async latestCheckpoint(): Promise<CheckpointRecord | null> {
    return this.#run('latestCheckpoint', () => {
      const row = this.#stmt('SELECT * FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1').get() as Row | undefined;
      return row === undefined ? null : checkpointFromRow(row);
    });
  }

  async putInputs(inputs: readonly NewRetainedInput[], now: number): Promise<void> {
    const list = checkInputs(inputs, 'putInputs', true);
    checkTime(now, 'now');
    this.#run('putInputs', () => {
      const st = this.#stmt('INSERT INTO retained_inputs (digest, kind, bytes, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING');
      this.#db.transaction(() => {
        for (const i of list) st.run(i.digest, i.kind, Buffer.from(i.bytes), now);
      }).immediate();
    });
  }

  async getInput(digest: string): Promise<RetainedInput | null> {
    checkDigest(digest, 'getInput: digest');
    return this.#run('getInput', () => {
      const row = this.#stmt('SELECT * FROM retained_inputs WHERE digest = ?').get(digest) as Row | undefined;
      return row === undefined ? null : inputFromRow(row);
    });
  }

  async listInputs(afterDigest: string | null, limit: number): Promise<RetainedInput[]> {
    if (afterDigest !== null) checkDigest(afterDigest, 'listInputs: afterDigest');
    checkLimit(limit, 'listInputs');
    return this.#run('listInputs', () => (this.#stmt('SELECT * FROM retained_inputs WHERE digest > ? ORDER BY digest LIMIT ?').all(afterDigest ?? '', limit) as Row[]).map(inputFromRow));
  }

  async pruneInputs(before: number, now: number): Promise<number> {
    checkTime(before, 'before');
    checkTime(now, 'now');
    return this.#run('pruneInputs', () => this.#stmt('UPDATE retained_inputs SET bytes = NULL, pruned_at = ? WHERE stored_at < ? AND bytes IS NOT NULL').run(now, before).changes);
  }

  async close(): Promise<void> {
    // Appends already queued are committed (or failed) before the connection goes.
    if (this.#db.open) this.#flush();
    this.#run('close', () => {
      if (this.#db.open) this.#db.close();
    });
  }
}

/** For a read-only connection: every migration of this code applied, with the same checksums, and none newer. */
function checkSchema(db: Database.Database): void {
  const applied = db.prepare('SELECT version, checksum FROM schema_migrations ORDER BY version').all() as Row[];
  const seen = new Set<number>();
  for (const a of applied) {
    const version = colInt(a, 'schema_migrations', 'version');
    const m = MIGRATIONS.find((x) => x.version === version);
    if (m === undefined || colText(a, 'schema_migrations', 'checksum') !== migrationChecksum(m.sqlite)) {
      throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: migration ${version} in the database is not this vouch's`);
    }
    seen.add(version);
  }
  const missing = MIGRATIONS.filter((m) => !seen.has(m.version));
  if (missing.length > 0) throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: the database lacks migration ${missing[0]?.version ?? '?'}; start the verifier once to migrate it`);
}

/** Applies pending migrations in one IMMEDIATE transaction, after checking the applied ones. */
function migrate(db: Database.Database): void {
  db.exec(SCHEMA_MIGRATIONS_SQLITE);
  db.transaction(() => {
    const applied = db.prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version').all() as Row[];
    const done = new Set<number>();
    for (const a of applied) {
      const version = colInt(a, 'schema_migrations', 'version');
      const m = MIGRATIONS.find((x) => x.version === version);
      if (m === undefined) {
        throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: the database has schema version ${version}, newer than this vouch knows (${MIGRATIONS.length})`);
      }
      if (colText(a, 'schema_migrations', 'checksum') !== migrationChecksum(m.sqlite)) {
        throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: migration ${version} (${m.name}) in the database differs from this vouch's`);
      }
      done.add(version);
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)');
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      db.exec(m.sqlite);
      record.run(m.version, m.name, migrationChecksum(m.sqlite));
    }
  }).immediate();
}
