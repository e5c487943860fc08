/**
 * The store for several verifier replicas: one PostgreSQL database behind a load balancer's
 * worth of verifiers (node-postgres, a `pg.Pool` per store).
 *
 * Same schema as SqliteStore, through the same numbered migrations (the `postgres` text of each,
 * src/store/migrations.ts), and the same semantics for every method: the same input checks
 * (src/store/checks.ts), the same row decoding strictness, the same results. What differs is how
 * the rules hold across processes:
 *
 * - **Migrations** run in one transaction under a transaction-scoped advisory lock, so replicas
 *   that start together migrate once; recorded checksums are checked as SqliteStore does
 *   (STORE_SCHEMA_MISMATCH).
 * - **Single use**: a challenge is consumed by one guarded `UPDATE … WHERE consumed_at IS NULL`
 *   (row locks make the loser re-check and fail); an enrollment completes under `FOR UPDATE` of
 *   its pending row; an SNP enrollment is taken by `DELETE … RETURNING`.
 * - **One linear ledger**: every append transaction takes `pg_advisory_xact_lock(LEDGER_LOCK)`
 *   before it reads the head, so appends from every replica are serialised and the chain never
 *   forks (the seq primary key would refuse a fork anyway). `commitAttestation` consumes the
 *   challenge, re-checks the revocation (locking the node row), moves the counters and the IMA
 *   state by compare-and-set and appends the decision in that one transaction, as SqliteStore's
 *   `appendBatch` does.
 * - **Group commit**: appends that arrive in the same event-loop turn (and those that arrive
 *   while a commit is in flight) share one transaction and one WAL flush; each caller gets its
 *   own seq and hash. `synchronous_commit` stays at the server's default (on): an append that
 *   returned is durable.
 * - **Fail closed**: every driver, network or server error is UnavailableError STORE_UNAVAILABLE
 *   (its message never holds the URL's password). Connecting is bounded (`connectTimeoutMs`),
 *   every statement too (`statement_timeout` on the server, a slightly longer read timeout in
 *   the client for a server that stopped answering), so a lost server makes calls fail fast; a
 *   connection that failed is dropped, and the pool opens fresh ones when the server is back.
 * - **Types**: BIGINT arrives as a decimal string and is turned into a number only when it is a
 *   safe integer (else the row is damaged: STORE_UNAVAILABLE); BYTEA arrives as a Buffer; the TPM
 *   clock stays TEXT. PostgreSQL text cannot hold U+0000, so an id or text with one is refused as
 *   MisuseError rather than failing in the database.
 */
import { createHash } from 'node:crypto';
import { Pool, type PoolClient, type QueryResult } from 'pg';
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
  checkTime,
  checkU32,
  challengeFromRow,
  colBlob,
  colInt,
  colText,
  corrupt,
  decisionFromRow,
  encodePcr10,
  imaFromRow,
  inputFromRow,
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
import { MIGRATIONS, SCHEMA_MIGRATIONS_POSTGRES, migrationChecksum } from './migrations.js';
import type {
  AppendedDecision,
  AttestationCommit,
  AttestationInputs,
  AttestationOutcome,
  CheckpointRecord,
  ChallengeRecord,
  ChallengeRefusal,
  CompleteEnrollmentResult,
  ConsumeChallengeResult,
  CounterUpdateResult,
  DecisionInput,
  DecisionRecord,
  EnrollNodeResult,
  ImaStateRecord,
  NewChallenge,
  NewNode,
  NewPendingEnrollment,
  NewRetainedInput,
  NodeRecord,
  NodeRevocationResult,
  PendingEnrollment,
  PendingSnpEnrollment,
  PolicyRecord,
  QuoteCounters,
  RecordedAttestation,
  RetainedInput,
  SecretRecord,
  Store,
  TakePendingSnpEnrollmentResult,
} from './types.js';

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /**
   * `postgres://` or `postgresql://` URL: user, password, host, port, database, and libpq-style
   * parameters such as `sslmode` or `host=/socket/dir`. Never logged or shown with its password.
   */
  readonly url: string;
  /** Most connections this store holds at once. Default 10. */
  readonly poolSize?: number;
  /** Server-side `statement_timeout`, which also bounds waiting for a lock. Default 10 000 ms. */
  readonly statementTimeoutMs?: number;
  /** How long opening a connection, or waiting for a free one, may take. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

/** The advisory lock key (a positive BIGINT) spelled by an 8-character ASCII tag. */
function lockKey(tag: string): string {
  return BigInt(`0x${Buffer.from(tag, 'ascii').toString('hex')}`).toString(10);
}

/** Held by every ledger append transaction, before it reads the head. */
const LEDGER_LOCK = lockKey('vouchled');
/** Held by the migration transaction. */
const MIGRATION_LOCK = lockKey('vouchmig');

/** The most ledger writes one group commit carries (the rest go in the next). */
const MAX_BATCH = 256;
const INT8_OID = 20;
const DECIMAL_RE = /^-?[0-9]{1,20}$/;

/**
 * Checks that `url` is a postgres:// or postgresql:// URL and returns it parsed. The message of
 * the MisuseError never repeats the URL (it may hold a password).
 */
export function checkDatabaseUrl(url: unknown): URL {
  if (typeof url !== 'string' || url.length === 0) throw misuse('database URL must be a non-empty postgres:// or postgresql:// URL');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw misuse('database URL does not parse as a URL (expected postgres://user:password@host:port/database)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw misuse(`database URL must start with postgres:// or postgresql://, not ${u.protocol}//`);
  return u;
}

/** The URL with its password replaced by `***`, for logs and messages. */
export function redactDatabaseUrl(url: string): string {
  const u = checkDatabaseUrl(url);
  if (u.password !== '') u.password = '***';
  if (u.searchParams.has('password')) u.searchParams.set('password', '***');
  return u.toString().replace('password=%2A%2A%2A', 'password=***');
}

/** A statement runner: rows with BIGINT columns already numbers, and the affected row count. */
type Query = (table: string, sql: string, params?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

/** BIGINT (int8) columns arrive as decimal strings: numbers only when they are safe integers. */
function normalise(r: QueryResult<Row>, table: string): Row[] {
  const int8 = r.fields.filter((f) => f.dataTypeID === INT8_OID).map((f) => f.name);
  if (int8.length === 0) return r.rows;
  return r.rows.map((row) => {
    const out: Row = { ...row };
    for (const c of int8) {
      const v = out[c];
      if (v === null) continue;
      if (typeof v !== 'string' || !DECIMAL_RE.test(v)) throw corrupt(table, c, 'a BIGINT that is not a decimal string');
      const n = Number(v);
      if (!Number.isSafeInteger(n)) throw corrupt(table, c, `the BIGINT ${v}, outside the safe integer range`);
      out[c] = n;
    }
    return out;
  });
}

/** An id (1..256 characters) that PostgreSQL text can hold. */
function checkPgId(v: unknown, name: string): string {
  return checkPgText(checkId(v, name), name);
}

/** PostgreSQL text cannot hold U+0000: refuse it as a caller's error, not a database failure. */
function checkPgText(v: string, name: string): string {
  if (v.includes('\u0000')) throw misuse(`${name} must not contain U+0000 (PostgreSQL text cannot hold it)`);
  return v;
}

function positiveInt(v: unknown, name: string, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) throw misuse(`${name} must be an integer 1..${max}`);
  return v;
}

/** The PostgreSQL implementation of {@link Store}. Create it with {@link PostgresStore.open}. */
export class PostgresStore implements Store {
  readonly #pool: Pool;
  /** Strings that must never appear in a message: the URL's password, raw and decoded. */
  readonly #secrets: readonly string[];
  /** Ledger writes waiting for the next group commit. */
  readonly #pending: Array<{ op: LedgerOp; resolve: (r: AppendedDecision) => void; reject: (e: unknown) => void }> = [];
  #scheduled = false;
  #flushing: Promise<void> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(pool: Pool, secrets: readonly string[]) {
    this.#pool = pool;
    this.#secrets = secrets;
  }

  /**
   * Connects, checks the server (UTF8 database), and applies pending migrations under the
   * migration lock after checking the recorded ones.
   *
   * @throws MisuseError MISUSE_ARGUMENT for a URL that is not postgres:// or out-of-range options;
   *   UnavailableError STORE_UNAVAILABLE when the server cannot be reached or refuses;
   *   STORE_SCHEMA_MISMATCH when the database's schema is newer or differs from this code's
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const u = checkDatabaseUrl(options.url);
    const poolSize = positiveInt(options.poolSize, 'poolSize', 1000, 10);
    const statementTimeoutMs = positiveInt(options.statementTimeoutMs, 'statementTimeoutMs', 3_600_000, 10_000);
    const connectTimeoutMs = positiveInt(options.connectTimeoutMs, 'connectTimeoutMs', 600_000, 5000);
    // The password may also come as a libpq-style `?password=` parameter.
    const passwords = [u.password, safeDecode(u.password), ...u.searchParams.getAll('password')];
    const secrets = [...new Set(passwords)].filter((s) => s.length > 0);
    const pool = new Pool({
      connectionString: options.url,
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeoutMs,
      // A server that stopped answering (no RST, no reply): the client gives up a little after
      // the server would have cancelled the statement itself.
      query_timeout: statementTimeoutMs + 2000,
      // A process that stalls inside a transaction must not hold the ledger lock for ever.
      idle_in_transaction_session_timeout: Math.max(60_000, 2 * statementTimeoutMs),
      keepAlive: true,
      application_name: 'vouch-verifier',
    });
    // An idle connection that the server closed (restart, failover, network): the pool has
    // already dropped it and opens a new one on the next call, so there is nothing to do; an
    // 'error' event without a listener would end the process.
    pool.on('error', () => undefined);
    // Same for a connection that dies while checked out: the query in flight rejects with the
    // error (and becomes STORE_UNAVAILABLE); the connection is then released as broken.
    pool.on('connect', (client) => client.on('error', () => undefined));
    const store = new PostgresStore(pool, secrets);
    try {
      await store.#migrate();
      return store;
    } catch (e) {
      await pool.end().catch(() => undefined); // the open error is the one to report
      throw store.#error('open', e);
    }
  }

  // --- plumbing --------------------------------------------------------------------------------

  /** STORE_UNAVAILABLE for anything but a vouch error, without the password. */
  #error(op: string, e: unknown): Error {
    if (isVouchError(e)) return e;
    let detail = e instanceof Error ? e.message : String(e);
    const sqlState = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
    for (const s of this.#secrets) detail = detail.split(s).join('***');
    return new UnavailableError('STORE_UNAVAILABLE', `store: ${op} failed: ${detail}${sqlState !== undefined && /^[0-9A-Z]{5}$/.test(sqlState) ? ` (SQLSTATE ${sqlState})` : ''}`, { cause: e });
  }

  #closedError(op: string): Error {
    return this.#error(op, new Error('the store is closed'));
  }

  /** A statement runner over `run`, normalising rows. */
  static #runner(run: (sql: string, params: unknown[]) => Promise<QueryResult<Row>>): Query {
    return async (table, sql, params = []) => {
      // A text of several statements (a migration) answers one result per statement.
      const answer: QueryResult<Row> | QueryResult<Row>[] = await run(sql, [...params]);
      const results = Array.isArray(answer) ? answer : [answer];
      const last = results[results.length - 1];
      return { rows: last === undefined ? [] : normalise(last, table), rowCount: results.reduce((n, r) => n + (r.rowCount ?? 0), 0) };
    };
  }

  /** Runs `fn` with statements on pooled connections, outside a transaction. */
  async #run<T>(op: string, fn: (q: Query) => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#closedError(op);
    try {
      return await fn(PostgresStore.#runner((sql, params) => this.#pool.query<Row>(sql, params)));
    } catch (e) {
      throw this.#error(op, e);
    }
  }

  /**
   * Runs `fn` in one transaction on one connection. A vouch error from `fn` (a refused input, a
   * damaged row) rolls back and keeps the connection; a driver or server error drops it (its
   * state is unknown), which the server rolls back.
   */
  async #tx<T>(op: string, fn: (q: Query) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    // After close() only the drain of the queued appends still runs (their callers were answered
    // nothing yet); #enqueue refuses new ones.
    if (this.#closed && op !== 'appendDecision') throw this.#closedError(op);
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw this.#error(op, e);
    }
    let broken = false;
    try {
      await client.query(begin);
      const out = await fn(PostgresStore.#runner((sql, params) => client.query<Row>(sql, params)));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      if (isVouchError(e)) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true; // the first error is the one to report; the connection is dropped
        }
      } else broken = true;
      throw this.#error(op, e);
    } finally {
      client.release(broken);
    }
  }

  async #migrate(): Promise<void> {
    await this.#tx('open', async (q) => {
      const enc = (await q('server', 'SHOW server_encoding')).rows[0];
      if (enc?.['server_encoding'] !== 'UTF8') {
        throw new UnavailableError('STORE_UNAVAILABLE', `store: the database's encoding is ${String(enc?.['server_encoding'])}, not UTF8; create it with ENCODING 'UTF8'`);
      }
      // Replicas starting together: the second waits here, then finds everything applied.
      await q('server', `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await q('schema_migrations', SCHEMA_MIGRATIONS_POSTGRES);
      const applied = (await q('schema_migrations', 'SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows;
      const done = new Set<number>();
      for (const a of applied) {
        const version = colInt(a, 'schema_migrations', 'version');
        const m = MIGRATIONS.find((x) => x.version === version);
        if (m === undefined) {
          throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: the database has schema version ${version}, newer than this vouch knows (${MIGRATIONS.length})`);
        }
        if (colText(a, 'schema_migrations', 'checksum') !== migrationChecksum(m.postgres)) {
          throw new UnavailableError('STORE_SCHEMA_MISMATCH', `store: migration ${version} (${m.name}) in the database differs from this vouch's`);
        }
        done.add(version);
      }
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await q('schema_migrations', m.postgres);
        await q('schema_migrations', 'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, migrationChecksum(m.postgres)]);
      }
    });
  }

  async schemaVersion(): Promise<number> {
    return this.#run('schemaVersion', async (q) => {
      const r = await q('schema_migrations', 'SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
      const row = r.rows[0];
      if (row === undefined) throw corrupt('schema_migrations', 'version', 'no row');
      return colInt(row, 'schema_migrations', 'v');
    });
  }

  /** What the server says about durability and this store (for health checks and tests). */
  async diagnostics(): Promise<{ serverVersion: string; synchronousCommit: string; serverEncoding: string; schemaVersion: number }> {
    const schemaVersion = await this.schemaVersion();
    return this.#run('diagnostics', async (q) => {
      const r = (await q('server', "SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS s, current_setting('server_encoding') AS e")).rows[0];
      if (r === undefined) throw corrupt('server', 'settings', 'no row');
      return { serverVersion: colText(r, 'server', 'v'), synchronousCommit: colText(r, 'server', 's'), serverEncoding: colText(r, 'server', 'e'), schemaVersion };
    });
  }

  // --- nodes -----------------------------------------------------------------------------------

  /** SqliteStore's enrollNodeRaw, with the INSERT's ON CONFLICT as the arbiter between replicas. */
  async #enrollOn(q: Query, n: NewNode): Promise<EnrollNodeResult> {
    const nodeId = checkPgId(n.nodeId, 'nodeId');
    const akName = checkBytes(n.akName, 'akName');
    const identity = nodeIdentity(n);
    const taken = async (): Promise<EnrollNodeResult | null> => {
      const r = (await q('nodes', 'SELECT EXISTS (SELECT 1 FROM nodes WHERE node_id = $1) AS by_id, EXISTS (SELECT 1 FROM nodes WHERE ak_name = $2) AS by_ak', [nodeId, akName])).rows[0];
      if (r?.['by_id'] === true) return { ok: false, reason: 'node-exists' };
      if (r?.['by_ak'] === true) return { ok: false, reason: 'ak-exists' };
      return null;
    };
    const refused = await taken();
    if (refused !== null) return refused;
    const at = checkTime(n.enrolledAt, 'enrolledAt');
    const r = await q(
      'nodes',
      `INSERT INTO nodes (node_id, group_name, ek_public, ek_cert, ak_public, ak_name, enrolled_at, updated_at, kind, node_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING *`,
      [
        nodeId,
        checkPgId(n.group, 'group'),
        checkBytes(n.ekPublic, 'ekPublic'),
        n.ekCert === null ? null : checkBytes(n.ekCert, 'ekCert'),
        checkBytes(n.akPublic, 'akPublic'),
        akName,
        at,
        identity.kind,
        identity.nodeKey,
      ],
    );
    const row = r.rows[0];
    if (row !== undefined) return { ok: true, node: nodeFromRow(row) };
    // Another replica enrolled the same id or AK between the check and the insert.
    const lost = await taken();
    if (lost !== null) return lost;
    throw new UnavailableError('STORE_UNAVAILABLE', 'store: enrollNode: the insert conflicted with a row that is not there');
  }

  async enrollNode(node: NewNode): Promise<EnrollNodeResult> {
    return this.#run('enrollNode', (q) => this.#enrollOn(q, node));
  }

  async getNode(nodeId: string): Promise<NodeRecord | null> {
    checkPgId(nodeId, 'nodeId');
    return this.#run('getNode', async (q) => {
      const row = (await q('nodes', 'SELECT * FROM nodes WHERE node_id = $1', [nodeId])).rows[0];
      return row === undefined ? null : nodeFromRow(row);
    });
  }

  async getNodeByAkName(akName: Uint8Array): Promise<NodeRecord | null> {
    const b = checkBytes(akName, 'akName');
    return this.#run('getNodeByAkName', async (q) => {
      const row = (await q('nodes', 'SELECT * FROM nodes WHERE ak_name = $1', [b])).rows[0];
      return row === undefined ? null : nodeFromRow(row);
    });
  }

  /** Compare-and-set in one statement: the row moves only if it still holds `expected`. */
  async #updateCountersOn(q: Query, nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number): Promise<CounterUpdateResult> {
    const n = checkCounters(next, 'next');
    let changed: number;
    if (expected === null) {
      changed = (await q('nodes', 'UPDATE nodes SET reset_count = $1, restart_count = $2, clock = $3, last_quote_at = $4, updated_at = $4 WHERE node_id = $5 AND reset_count IS NULL', [n.reset, n.restart, n.clock, now, nodeId])).rowCount;
    } else {
      const e = checkCounters(expected, 'expected');
      changed = (
        await q(
          'nodes',
          'UPDATE nodes SET reset_count = $1, restart_count = $2, clock = $3, last_quote_at = $4, updated_at = $4 WHERE node_id = $5 AND reset_count = $6 AND restart_count = $7 AND clock = $8',
          [n.reset, n.restart, n.clock, now, nodeId, e.reset, e.restart, e.clock],
        )
      ).rowCount;
    }
    if (changed === 1) return { ok: true };
    const exists = (await q('nodes', 'SELECT 1 FROM nodes WHERE node_id = $1', [nodeId])).rows.length > 0;
    return exists ? { ok: false, reason: 'stale' } : { ok: false, reason: 'unknown' };
  }

  async updateQuoteCounters(nodeId: string, expected: QuoteCounters | null, next: QuoteCounters, now: number): Promise<CounterUpdateResult> {
    checkPgId(nodeId, 'nodeId');
    if (expected !== null) checkCounters(expected, 'expected');
    checkCounters(next, 'next');
    checkTime(now, 'now');
    return this.#run('updateQuoteCounters', (q) => this.#updateCountersOn(q, nodeId, expected, next, now));
  }

  async listNodes(afterId: string | null, limit: number): Promise<NodeRecord[]> {
    if (afterId !== null) checkPgId(afterId, 'afterId');
    checkLimit(limit, 'listNodes');
    return this.#run('listNodes', async (q) => {
      // node_id has the "C" collation: the order is SQLite's (code points), whatever the locale.
      const rows = (await q('nodes', 'SELECT * FROM nodes WHERE node_id > $1 ORDER BY node_id LIMIT $2', [afterId ?? '', limit])).rows;
      return rows.map(nodeFromRow);
    });
  }

  async revokeNode(nodeId: string, reason: string, now: number): Promise<NodeRevocationResult> {
    checkPgId(nodeId, 'nodeId');
    checkRevokeReason(reason);
    checkPgText(reason, 'reason');
    checkTime(now, 'now');
    return this.#run('revokeNode', (q) =>
      this.#revocation(q, nodeId, 'UPDATE nodes SET revoked_at = $1, revoked_reason = $2, updated_at = $1 WHERE node_id = $3 AND revoked_at IS NULL RETURNING *', [now, reason, nodeId], 'already-revoked'),
    );
  }

  async readmitNode(nodeId: string, now: number): Promise<NodeRevocationResult> {
    checkPgId(nodeId, 'nodeId');
    checkTime(now, 'now');
    return this.#run('readmitNode', (q) =>
      this.#revocation(q, nodeId, 'UPDATE nodes SET revoked_at = NULL, revoked_reason = NULL, updated_at = $1 WHERE node_id = $2 AND revoked_at IS NOT NULL RETURNING *', [now, nodeId], 'not-revoked'),
    );
  }

  /** One compare-and-set statement on a node's revocation columns, returning the row as it now is. */
  async #revocation(q: Query, nodeId: string, sql: string, args: readonly unknown[], otherwise: 'already-revoked' | 'not-revoked'): Promise<NodeRevocationResult> {
    const row = (await q('nodes', sql, args)).rows[0];
    if (row !== undefined) return { ok: true, node: nodeFromRow(row) };
    const exists = (await q('nodes', 'SELECT 1 FROM nodes WHERE node_id = $1', [nodeId])).rows.length > 0;
    return { ok: false, reason: exists ? otherwise : 'unknown' };
  }

  // --- enrolment -------------------------------------------------------------------------------

  async createPendingEnrollment(p: NewPendingEnrollment): Promise<void> {
    const args = [
      checkPgId(p.enrollmentId, 'enrollmentId'),
      checkPgId(p.nodeId, 'nodeId'),
      checkPgId(p.group, 'group'),
      checkBytes(p.ekPublic, 'ekPublic'),
      p.ekCert === null ? null : checkBytes(p.ekCert, 'ekCert'),
      checkBytes(p.akPublic, 'akPublic'),
      checkBytes(p.akName, 'akName'),
      checkBytes(p.secretSha256, 'secretSha256', 32),
      checkTime(p.createdAt, 'createdAt'),
      checkTime(p.expiresAt, 'expiresAt'),
    ];
    await this.#run('createPendingEnrollment', async (q) => {
      await q(
        'pending_enrollments',
        `INSERT INTO pending_enrollments
           (enrollment_id, node_id, group_name, ek_public, ek_cert, ak_public, ak_name, secret_sha256, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        args,
      );
    });
  }

  async getPendingEnrollment(enrollmentId: string): Promise<PendingEnrollment | null> {
    checkPgId(enrollmentId, 'enrollmentId');
    return this.#run('getPendingEnrollment', async (q) => {
      const row = (await q('pending_enrollments', 'SELECT * FROM pending_enrollments WHERE enrollment_id = $1', [enrollmentId])).rows[0];
      return row === undefined ? null : pendingFromRow(row);
    });
  }

  async recordEnrollmentAttempt(enrollmentId: string): Promise<number | null> {
    checkPgId(enrollmentId, 'enrollmentId');
    return this.#run('recordEnrollmentAttempt', async (q) => {
      const row = (await q('pending_enrollments', 'UPDATE pending_enrollments SET attempts = attempts + 1 WHERE enrollment_id = $1 RETURNING attempts', [enrollmentId])).rows[0];
      return row === undefined ? null : colInt(row, 'pending_enrollments', 'attempts');
    });
  }

  async completeEnrollment(enrollmentId: string, now: number): Promise<CompleteEnrollmentResult> {
    checkPgId(enrollmentId, 'enrollmentId');
    checkTime(now, 'now');
    return this.#tx('completeEnrollment', async (q) => {
      // The row lock makes concurrent completions queue: the next one finds the row deleted.
      const row = (await q('pending_enrollments', 'SELECT * FROM pending_enrollments WHERE enrollment_id = $1 FOR UPDATE', [enrollmentId])).rows[0];
      if (row === undefined) return { ok: false, reason: 'unknown' };
      const p = pendingFromRow(row);
      if (now >= p.expiresAt) return { ok: false, reason: 'expired' };
      const r = await this.#enrollOn(q, { nodeId: p.nodeId, group: p.group, ekPublic: p.ekPublic, ekCert: p.ekCert, akPublic: p.akPublic, akName: p.akName, enrolledAt: now });
      if (r.ok) await q('pending_enrollments', 'DELETE FROM pending_enrollments WHERE enrollment_id = $1', [enrollmentId]);
      return r;
    });
  }

  async deletePendingEnrollment(enrollmentId: string): Promise<boolean> {
    checkPgId(enrollmentId, 'enrollmentId');
    return this.#run('deletePendingEnrollment', async (q) => (await q('pending_enrollments', 'DELETE FROM pending_enrollments WHERE enrollment_id = $1', [enrollmentId])).rowCount === 1);
  }

  async createPendingSnpEnrollment(p: PendingSnpEnrollment): Promise<void> {
    const args = checkNewPendingSnp(p, checkPgId);
    await this.#run('createPendingSnpEnrollment', async (q) => {
      const r = await q(
        'pending_snp_enrollments',
        `INSERT INTO pending_snp_enrollments (enrollment_id, node_id, group_name, node_key, nonce, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (enrollment_id) DO NOTHING`,
        args,
      );
      if (r.rowCount !== 1) throw misuse(`createPendingSnpEnrollment: enrollment id ${JSON.stringify(p.enrollmentId)} is already used`);
    });
  }

  async takePendingSnpEnrollment(enrollmentId: string, now: number): Promise<TakePendingSnpEnrollmentResult> {
    checkPgId(enrollmentId, 'enrollmentId');
    checkTime(now, 'now');
    // In a transaction, so a damaged row is reported and kept rather than deleted unread.
    return this.#tx('takePendingSnpEnrollment', async (q) => {
      // Deleted whatever happens next: one attempt per enrollment, an expired one is gone too.
      const row = (await q('pending_snp_enrollments', 'DELETE FROM pending_snp_enrollments WHERE enrollment_id = $1 RETURNING *', [enrollmentId])).rows[0];
      if (row === undefined) return { ok: false, reason: 'unknown' };
      const p = pendingSnpFromRow(row);
      return now >= p.expiresAt ? { ok: false, reason: 'expired' } : { ok: true, pending: p };
    });
  }

  // --- challenges ------------------------------------------------------------------------------

  async createChallenge(c: NewChallenge): Promise<void> {
    const { nonce, params } = checkNewChallenge(c, checkPgId);
    await this.#run('createChallenge', async (q) => {
      const r = await q(
        'challenges',
        `INSERT INTO challenges (challenge_id, node_id, nonce, params, created_at, expires_at)
         SELECT $1::text, $2::text, $3::bytea, $4::bytea, $5::bigint, $6::bigint WHERE EXISTS (SELECT 1 FROM nodes WHERE node_id = $2::text)
         ON CONFLICT (challenge_id) DO NOTHING`,
        [c.challengeId, c.nodeId, nonce, params, c.createdAt, c.expiresAt],
      );
      if (r.rowCount === 1) return;
      const enrolled = (await q('nodes', 'SELECT 1 FROM nodes WHERE node_id = $1', [c.nodeId])).rows.length > 0;
      if (!enrolled) throw misuse(`createChallenge: node ${JSON.stringify(c.nodeId)} is not enrolled`);
      throw misuse(`createChallenge: challenge id ${JSON.stringify(c.challengeId)} is already used`);
    });
  }

  /** The challenge if `nodeId` may consume it at `now`, else why not (unknown → wrong node → consumed → expired). */
  async #usableChallenge(q: Query, id: string, nodeId: string, now: number): Promise<ChallengeRecord | { reason: ChallengeRefusal }> {
    const row = (await q('challenges', 'SELECT * FROM challenges WHERE challenge_id = $1', [id])).rows[0];
    if (row === undefined) return { reason: 'unknown' };
    const c = challengeFromRow(row);
    // A challenge of another node is not burnt by the attempt: its owner may still use it.
    if (c.nodeId !== nodeId) return { reason: 'wrong-node' };
    if (c.consumedAt !== null) return { reason: 'consumed' };
    if (now >= c.expiresAt) return { reason: 'expired' };
    return c;
  }

  /**
   * The guarded consumption: unconsumed, this node's, unexpired → consumed now. Of two replicas
   * updating the row at once, the second waits for the first's row lock, re-evaluates the guard
   * on the committed row and updates nothing.
   */
  async #consumeOn(q: Query, id: string, nodeId: string, now: number): Promise<ConsumeChallengeResult> {
    const row = (
      await q('challenges', 'UPDATE challenges SET consumed_at = $1 WHERE challenge_id = $2 AND node_id = $3 AND consumed_at IS NULL AND expires_at > $1 RETURNING *', [now, id, nodeId])
    ).rows[0];
    if (row !== undefined) return { ok: true, challenge: challengeFromRow(row) };
    // Nothing changed: say why, in SqliteStore's order, without writing anything.
    const c = await this.#usableChallenge(q, id, nodeId, now);
    return 'reason' in c ? { ok: false, reason: c.reason } : { ok: false, reason: 'consumed' };
  }

  async consumeChallenge(challengeId: string, nodeId: string, now: number): Promise<ConsumeChallengeResult> {
    checkPgId(challengeId, 'challengeId');
    checkPgId(nodeId, 'nodeId');
    checkTime(now, 'now');
    return this.#run('consumeChallenge', (q) => this.#consumeOn(q, challengeId, nodeId, now));
  }

  async getImaState(nodeId: string): Promise<ImaStateRecord | null> {
    checkPgId(nodeId, 'nodeId');
    return this.#run('getImaState', (q) => this.#imaRead(q, nodeId, false));
  }

  async #imaRead(q: Query, nodeId: string, forUpdate: boolean): Promise<ImaStateRecord | null> {
    const row = (await q('ima_state', `SELECT * FROM ima_state WHERE node_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [nodeId])).rows[0];
    return row === undefined ? null : imaFromRow(row);
  }

  async getChallenge(challengeId: string): Promise<ChallengeRecord | null> {
    checkPgId(challengeId, 'challengeId');
    return this.#run('getChallenge', async (q) => {
      const row = (await q('challenges', 'SELECT * FROM challenges WHERE challenge_id = $1', [challengeId])).rows[0];
      return row === undefined ? null : challengeFromRow(row);
    });
  }

  async attestationInputs(challengeId: string, nodeId: string): Promise<AttestationInputs> {
    checkPgId(challengeId, 'challengeId');
    checkPgId(nodeId, 'nodeId');
    // One snapshot for the three reads.
    return this.#tx(
      'attestationInputs',
      async (q) => {
        const c = (await q('challenges', 'SELECT * FROM challenges WHERE challenge_id = $1', [challengeId])).rows[0];
        const n = (await q('nodes', 'SELECT * FROM nodes WHERE node_id = $1', [nodeId])).rows[0];
        return { challenge: c === undefined ? null : challengeFromRow(c), node: n === undefined ? null : nodeFromRow(n), imaState: await this.#imaRead(q, nodeId, false) };
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async deleteExpired(now: number): Promise<number> {
    checkTime(now, 'now');
    return this.#tx('deleteExpired', async (q) => {
      let n = 0;
      for (const t of ['challenges', 'pending_enrollments', 'pending_snp_enrollments']) n += (await q(t, `DELETE FROM ${t} WHERE expires_at <= $1`, [now])).rowCount;
      return n;
    });
  }

  // --- policies --------------------------------------------------------------------------------

  async putPolicy(policyId: string, document: string, now: number): Promise<PolicyRecord> {
    checkPgId(policyId, 'policyId');
    if (typeof document !== 'string') throw misuse('putPolicy: document must be a string');
    checkPgText(document, 'document');
    checkTime(now, 'now');
    const digest = createHash('sha256').update(document, 'utf8').digest('hex');
    return this.#run('putPolicy', async (q) => {
      await q('policies', 'INSERT INTO policies (digest, policy_id, document, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING', [digest, policyId, document, now]);
      const row = (await q('policies', 'SELECT * FROM policies WHERE digest = $1', [digest])).rows[0];
      if (row === undefined) throw new UnavailableError('STORE_UNAVAILABLE', `store: policy ${digest} is missing right after it was written`);
      return policyFromRow(row);
    });
  }

  async getPolicy(digest: string): Promise<PolicyRecord | null> {
    checkDigest(digest, 'getPolicy: digest');
    return this.#run('getPolicy', async (q) => {
      const row = (await q('policies', 'SELECT * FROM policies WHERE digest = $1', [digest])).rows[0];
      return row === undefined ? null : policyFromRow(row);
    });
  }

  async assignPolicy(group: string, digest: string, now: number): Promise<void> {
    checkPgId(group, 'group');
    checkDigest(digest, 'assignPolicy: digest');
    checkTime(now, 'now');
    await this.#run('assignPolicy', async (q) => {
      const r = await q(
        'policy_assignments',
        `INSERT INTO policy_assignments (group_name, policy_digest, assigned_at)
         SELECT $1::text, $2::text, $3::bigint WHERE EXISTS (SELECT 1 FROM policies WHERE digest = $2::text)
         ON CONFLICT (group_name) DO UPDATE SET policy_digest = excluded.policy_digest, assigned_at = excluded.assigned_at`,
        [group, digest, now],
      );
      if (r.rowCount !== 1) throw misuse(`assignPolicy: no policy has digest ${digest}`);
    });
  }

  async getAssignedPolicy(group: string): Promise<PolicyRecord | null> {
    checkPgId(group, 'group');
    return this.#run('getAssignedPolicy', async (q) => {
      const row = (await q('policies', 'SELECT p.* FROM policy_assignments a JOIN policies p ON p.digest = a.policy_digest WHERE a.group_name = $1', [group])).rows[0];
      return row === undefined ? null : policyFromRow(row);
    });
  }

  // --- ledger ----------------------------------------------------------------------------------

  async appendDecision(decision: DecisionInput): Promise<AppendedDecision> {
    if (decision.nodeId !== null) checkPgId(decision.nodeId, 'nodeId');
    checkTime(decision.time, 'time');
    checkInputs(decision.inputs, 'appendDecision: inputs');
    return this.#enqueue({ kind: 'decision', decision });
  }

  async commitAttestation(commit: AttestationCommit): Promise<RecordedAttestation> {
    checkPgId(commit.challengeId, 'challengeId');
    checkPgId(commit.nodeId, 'nodeId');
    checkTime(commit.now, 'now');
    checkInputs(commit.decision.inputs, 'commitAttestation: decision.inputs');
    if (commit.counters !== null) {
      if (commit.counters.expected !== null) checkCounters(commit.counters.expected, 'expected');
      checkCounters(commit.counters.next, 'next');
    }
    return this.#enqueue({ kind: 'attestation', commit }) as Promise<RecordedAttestation>;
  }

  #enqueue(op: LedgerOp): Promise<AppendedDecision> {
    if (this.#closed) return Promise.reject(this.#closedError('appendDecision'));
    return new Promise<AppendedDecision>((resolve, reject) => {
      this.#pending.push({ op, resolve, reject });
      this.#schedule();
    });
  }

  /** One group commit at a time per store; what queues meanwhile goes in the next. */
  #schedule(): void {
    if (this.#scheduled || this.#flushing !== null || this.#pending.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = this.#pending.splice(0, MAX_BATCH);
      this.#flushing = this.#commitBatch(batch).finally(() => {
        this.#flushing = null;
        this.#schedule();
      });
    });
  }

  /**
   * Commits `batch` in one transaction. When one entry of a batch cannot be built (a caller's bad
   * input), nothing of the batch was written: the others are committed one by one, so the bad
   * entry fails its own caller only. Never rejects.
   */
  async #commitBatch(batch: ReadonlyArray<{ op: LedgerOp; resolve: (r: AppendedDecision) => void; reject: (e: unknown) => void }>): Promise<void> {
    try {
      const results = await this.#tx('appendDecision', (q) => this.#appendBatch(q, batch.map((b) => b.op)), 'BEGIN');
      batch.forEach((b, i) => b.resolve(results[i] as AppendedDecision));
    } catch (e) {
      if (batch.length > 1 && isVouchError(e) && e.category === 'misuse') {
        for (const b of batch) await this.#commitBatch([b]);
        return;
      }
      for (const b of batch) b.reject(e);
    }
  }

  async #appendBatch(q: Query, ops: readonly LedgerOp[]): Promise<Array<AppendedDecision | RecordedAttestation>> {
    // Serialise with every other replica's appends, then read the head: the next seq and prev
    // are those of the last committed entry (read committed: this statement sees every commit
    // that released the lock).
    await q('decisions', `SELECT pg_advisory_xact_lock(${LEDGER_LOCK})`);
    const head = (await q('decisions', 'SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1')).rows[0];
    let seq = head === undefined ? 0 : colInt(head, 'decisions', 'seq');
    let prev = head === undefined ? GENESIS_PREV : colBlob(head, 'decisions', 'hash');
    const out: Array<AppendedDecision | RecordedAttestation> = [];
    const cols: { seq: number[]; kind: string[]; node: Array<string | null>; outcome: string[]; time: number[]; entry: Buffer[]; prev: Buffer[]; hash: Buffer[] } = {
      seq: [], kind: [], node: [], outcome: [], time: [], entry: [], prev: [], hash: [],
    };
    for (const op of ops) {
      let d: DecisionInput;
      let outcome: AttestationOutcome | undefined;
      if (op.kind === 'decision') d = op.decision;
      else {
        outcome = await this.#attestationSteps(q, op.commit);
        d = recordedDecision(op.commit, outcome);
      }
      seq += 1;
      const { entry, hash } = buildLedgerEntry({ seq, prev, time: d.time, kind: d.kind, node: d.nodeId, outcome: d.outcome, body: d.body });
      // The decision's inputs in its own transaction: a recorded decision never names a lost input.
      for (const i of d.inputs ?? []) await this.#insertInput(q, i, d.time);
      cols.seq.push(seq);
      cols.kind.push(d.kind);
      cols.node.push(d.nodeId);
      cols.outcome.push(d.outcome);
      cols.time.push(d.time);
      cols.entry.push(Buffer.from(entry));
      cols.prev.push(Buffer.from(prev));
      cols.hash.push(Buffer.from(hash));
      out.push(outcome === undefined ? { seq, hash } : { seq, hash, outcome });
      prev = hash;
    }
    // One statement for the whole batch.
    await q(
      'decisions',
      `INSERT INTO decisions (seq, kind, node_id, outcome, decided_at, entry, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], $7::bytea[], $8::bytea[])`,
      [cols.seq, cols.kind, cols.node, cols.outcome, cols.time, cols.entry, cols.prev, cols.hash],
    );
    return out;
  }

  /**
   * Consumption, revocation re-check, counters and IMA state for one recorded attestation, in
   * the recording transaction, so the recorded decision states what they did.
   */
  async #attestationSteps(q: Query, c: AttestationCommit): Promise<AttestationOutcome> {
    const consumed = await this.#consumeOn(q, c.challengeId, c.nodeId, c.now);
    // Locks the node row: a revocation in flight on another replica either committed (and is
    // seen here) or waits for this transaction (and is recorded after this decision).
    const node = (await q('nodes', 'SELECT revoked_at FROM nodes WHERE node_id = $1 FOR NO KEY UPDATE', [c.nodeId])).rows[0];
    const revokedAt = node?.['revoked_at'];
    const revoked = revokedAt !== null && revokedAt !== undefined;
    let counters: AttestationOutcome['counters'] = 'skipped';
    if (consumed.ok && !revoked && c.counters !== null) {
      counters = (await this.#updateCountersOn(q, c.nodeId, c.counters.expected, c.counters.next, c.now)).ok ? 'ok' : 'stale';
    }
    let ima: AttestationOutcome['ima'] = 'skipped';
    if (consumed.ok && !revoked && counters !== 'stale' && c.ima !== undefined && c.ima !== null) {
      const stored = await this.#imaRead(q, c.nodeId, true);
      if (!sameIma(stored, c.ima.expected)) ima = 'stale';
      else {
        const next = c.ima.next;
        await q(
          'ima_state',
          `INSERT INTO ima_state (node_id, reset_count, entries, pcr10, violations, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (node_id) DO UPDATE SET reset_count = excluded.reset_count, entries = excluded.entries,
             pcr10 = excluded.pcr10, violations = excluded.violations, updated_at = excluded.updated_at`,
          [c.nodeId, checkU32(next.resetCount, 'ima.resetCount'), checkU32(next.entries, 'ima.entries'), Buffer.from(encodePcr10(next.pcr10)), checkU32(next.violations, 'ima.violations'), c.now],
        );
        ima = 'ok';
      }
    }
    return { challenge: consumed.ok ? 'ok' : consumed.reason, counters, ima, revoked };
  }

  async getDecision(seq: number): Promise<DecisionRecord | null> {
    checkSeq(seq, 'getDecision: seq');
    return this.#run('getDecision', async (q) => {
      const row = (await q('decisions', 'SELECT * FROM decisions WHERE seq = $1', [seq])).rows[0];
      return row === undefined ? null : decisionFromRow(row);
    });
  }

  async listDecisions(fromSeq: number, limit: number): Promise<DecisionRecord[]> {
    checkSeq(fromSeq, 'listDecisions: fromSeq');
    checkLimit(limit, 'listDecisions');
    return this.#run('listDecisions', async (q) => (await q('decisions', 'SELECT * FROM decisions WHERE seq >= $1 ORDER BY seq LIMIT $2', [fromSeq, limit])).rows.map(decisionFromRow));
  }

  async ledgerHead(): Promise<AppendedDecision | null> {
    return this.#run('ledgerHead', async (q) => {
      const row = (await q('decisions', 'SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1')).rows[0];
      return row === undefined ? null : { seq: colInt(row, 'decisions', 'seq'), hash: colBlob(row, 'decisions', 'hash') };
    });
  }

  async lastDecision(kind: DecisionKind, nodeId?: string): Promise<DecisionRecord | null> {
    if (!DECISION_KINDS.includes(kind)) throw misuse('lastDecision: unknown decision kind');
    if (nodeId !== undefined) checkPgId(nodeId, 'nodeId');
    return this.#run('lastDecision', async (q) => {
      const r =
        nodeId === undefined
          ? await q('decisions', 'SELECT * FROM decisions WHERE kind = $1 ORDER BY seq DESC LIMIT 1', [kind])
          : await q('decisions', 'SELECT * FROM decisions WHERE node_id = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1', [nodeId, kind]);
      const row = r.rows[0];
      return row === undefined ? null : decisionFromRow(row);
    });
  }

  // --- ledger checkpoints and retained inputs (migration v6) -----------------------------------

  async putCheckpoint(c: CheckpointRecord): Promise<CheckpointRecord> {
    checkCheckpoint(c);
    checkPgText(c.kid, 'kid');
    checkPgText(c.jws, 'jws');
    return this.#run('putCheckpoint', async (q) => {
      // Another replica may have signed the same tree size first: its record is kept and returned.
      await q(
        'ledger_checkpoints',
        'INSERT INTO ledger_checkpoints (tree_size, root_hash, signed_at, kid, jws) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING',
        [c.treeSize, Buffer.from(c.rootHash), c.signedAt, c.kid, c.jws],
      );
      const row = (await q('ledger_checkpoints', 'SELECT * FROM ledger_checkpoints WHERE tree_size = $1', [c.treeSize])).rows[0];
      if (row === undefined) throw new UnavailableError('STORE_UNAVAILABLE', `store: checkpoint ${c.treeSize} is missing right after it was written`);
      return checkpointFromRow(row);
    });
  }

  async listCheckpoints(fromSize: number, limit: number): Promise<CheckpointRecord[]> {
    if (!Number.isSafeInteger(fromSize) || fromSize < 0) throw misuse('listCheckpoints: fromSize must be a non-negative integer');
    checkLimit(limit, 'listCheckpoints');
    return this.#run('listCheckpoints', async (q) =>
      (await q('ledger_checkpoints', 'SELECT * FROM ledger_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2', [fromSize, limit])).rows.map(checkpointFromRow),
    );
  }

  async latestCheckpoint(): Promise<CheckpointRecord | null> {
    return this.#run('latestCheckpoint', async (q) => {
      const row = (await q('ledger_checkpoints', 'SELECT * FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1')).rows[0];
      return row === undefined ? null : checkpointFromRow(row);
    });
  }

  /** Content-addressed: a digest stored once (pruned or not) is left as it is. */
  async #insertInput(q: Query, i: NewRetainedInput, now: number): Promise<void> {
    await q('retained_inputs', 'INSERT INTO retained_inputs (digest, kind, bytes, stored_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING', [
      i.digest,
      i.kind,
      Buffer.from(i.bytes.buffer, i.bytes.byteOffset, i.bytes.byteLength),
      now,
    ]);
  }

  async putInputs(inputs: readonly NewRetainedInput[], now: number): Promise<void> {
    const list = checkInputs(inputs, 'putInputs', true);
    checkTime(now, 'now');
    await this.#tx('putInputs', async (q) => {
      for (const i of list) await this.#insertInput(q, i, now);
    });
  }

  async getInput(digest: string): Promise<RetainedInput | null> {
    checkDigest(digest, 'getInput: digest');
    return this.#run('getInput', async (q) => {
      const row = (await q('retained_inputs', 'SELECT * FROM retained_inputs WHERE digest = $1', [digest])).rows[0];
      return row === undefined ? null : inputFromRow(row);
    });
  }

  async listInputs(afterDigest: string | null, limit: number): Promise<RetainedInput[]> {
    if (afterDigest !== null) checkDigest(afterDigest, 'listInputs: afterDigest');
    checkLimit(limit, 'listInputs');
    return this.#run('listInputs', async (q) =>
      (await q('retained_inputs', 'SELECT * FROM retained_inputs WHERE digest > $1 ORDER BY digest LIMIT $2', [afterDigest ?? '', limit])).rows.map(inputFromRow),
    );
  }

  async pruneInputs(before: number, now: number): Promise<number> {
    checkTime(before, 'before');
    checkTime(now, 'now');
    return this.#run('pruneInputs', async (q) => (await q('retained_inputs', 'UPDATE retained_inputs SET bytes = NULL, pruned_at = $1 WHERE stored_at < $2 AND bytes IS NOT NULL', [now, before])).rowCount);
  }

  // --- key broker secrets ----------------------------------------------------------------------

  async putSecret(r: SecretRecord): Promise<void> {
    checkSecretRecord(r, checkPgId);
    if (typeof r.releasePolicy === 'string') checkPgText(r.releasePolicy, 'releasePolicy');
    await this.#run('putSecret', async (q) => {
      // Keep the first creation time when a secret is replaced.
      await q(
        'secrets',
        `INSERT INTO secrets (secret_id, tenant, ciphertext, nonce, release_policy, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (secret_id) DO UPDATE SET tenant = excluded.tenant, ciphertext = excluded.ciphertext, nonce = excluded.nonce,
           release_policy = excluded.release_policy, updated_at = excluded.updated_at`,
        [r.secretId, r.tenant, Buffer.from(r.ciphertext), Buffer.from(r.nonce), r.releasePolicy, r.createdAt, r.updatedAt],
      );
    });
  }

  async getSecret(secretId: string): Promise<SecretRecord | null> {
    checkSecretId(secretId, 'getSecret');
    return this.#run('getSecret', async (q) => {
      const row = (await q('secrets', 'SELECT * FROM secrets WHERE secret_id = $1', [secretId])).rows[0];
      return row === undefined ? null : secretFromRow(row);
    });
  }

  async listSecrets(): Promise<SecretRecord[]> {
    return this.#run('listSecrets', async (q) => (await q('secrets', 'SELECT * FROM secrets ORDER BY secret_id LIMIT 10000')).rows.map(secretFromRow));
  }

  async deleteSecret(secretId: string): Promise<boolean> {
    checkSecretId(secretId, 'deleteSecret');
    return this.#run('deleteSecret', async (q) => (await q('secrets', 'DELETE FROM secrets WHERE secret_id = $1', [secretId])).rowCount > 0);
  }

  /** Commits (or fails) the appends already queued, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = (async () => {
        while (this.#pending.length > 0 || this.#scheduled || this.#flushing !== null) {
          await (this.#flushing ?? new Promise<void>((r) => setImmediate(r)));
        }
        await this.#pool.end();
      })().catch((e: unknown) => {
        throw this.#error('close', e);
      });
    }
    return this.#closing;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
