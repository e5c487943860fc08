import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MisuseError, UnavailableError, VouchError, type ErrorCode } from '../../src/lib/errors.js';
import { GENESIS_PREV, decodeLedgerEntry, verifyChain } from '../../src/ledger/index.js';
import {
  CHALLENGE_REFUSAL_CODES,
  MIGRATIONS,
  SQLITE_DEFAULT_FILE,
  SqliteStore,
  type DecisionRecord,
  type NewNode,
  type NewPendingEnrollment,
  type PendingSnpEnrollment,
  type Store,
} from '../../src/store/index.js';
import { ERRORS } from '../../src/lib/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

let dir: string;
let stores: SqliteStore[];
let raws: Database.Database[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-store-'));
  stores = [];
  raws = [];
});

afterEach(async () => {
  for (const s of stores) await s.close();
  for (const r of raws) r.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(): Promise<SqliteStore> {
  const s = await SqliteStore.open({ dataDir: dir });
  stores.push(s);
  return s;
}

/** A second, raw connection to the same file: what an attacker or an operator with file access has. */
function raw(): Database.Database {
  const db = new Database(join(dir, SQLITE_DEFAULT_FILE));
  raws.push(db);
  return db;
}

async function expectCode(p: Promise<unknown>, cls: typeof VouchError, code: ErrorCode, msg?: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(cls);
  expect((thrown as VouchError).code).toBe(code);
  if (msg) expect((thrown as VouchError).message).toMatch(msg);
}

function node(i: number, over: Partial<NewNode> = {}): NewNode {
  return {
    nodeId: `node-${i}`,
    group: 'gpu',
    ekPublic: new Uint8Array([1, i]),
    ekCert: i % 2 === 0 ? new Uint8Array([0x30, 0x82, i]) : null,
    akPublic: new Uint8Array([2, i]),
    akName: new Uint8Array([0x00, 0x0b, i]),
    enrolledAt: 1000,
    ...over,
  };
}

async function challenge(s: Store, id: string, nodeId: string, expiresAt = 10_000): Promise<void> {
  await s.createChallenge({
    challengeId: id,
    nodeId,
    nonce: new Uint8Array(32).fill(9),
    params: { pcrs: { sha256: [0, 1, 7] } },
    createdAt: 1000,
    expiresAt,
  });
}

describe('opening and migrations', () => {
  it('creates the database in WAL mode with synchronous=NORMAL between ledger commits and foreign keys on', async () => {
    const s = await open();
    expect(s.path).toBe(join(dir, SQLITE_DEFAULT_FILE));
    expect(await s.diagnostics()).toEqual({ journalMode: 'wal', synchronous: 1, foreignKeys: true, schemaVersion: MIGRATIONS.length });
  });

  it('is idempotent on reopen: migrations run once, data survives', async () => {
    const s1 = await open();
    await s1.enrollNode(node(1));
    await s1.appendDecision({ kind: 'enroll', nodeId: 'node-1', outcome: 'affirming', time: 1, body: {} });
    await s1.close();
    const s2 = await open();
    await s2.close();
    const s3 = await open();
    expect(await s3.schemaVersion()).toBe(MIGRATIONS.length);
    expect((await s3.getNode('node-1'))?.nodeId).toBe('node-1');
    expect((await s3.ledgerHead())?.seq).toBe(1);
    const rows = raw().prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version').all();
    expect(rows).toHaveLength(MIGRATIONS.length);
    expect(rows[0]).toMatchObject({ version: 1, name: 'initial schema' });
  });

  it('refuses a database with a newer schema version (STORE_SCHEMA_MISMATCH)', async () => {
    await (await open()).close();
    raw().prepare("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')").run();
    await expectCode(SqliteStore.open({ dataDir: dir }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /schema version 99, newer/);
  });

  it('refuses a database whose applied migration differs from this code (STORE_SCHEMA_MISMATCH)', async () => {
    await (await open()).close();
    raw().prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1").run();
    await expectCode(SqliteStore.open({ dataDir: dir }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /migration 1 .* differs/);
  });

  it('opening a file that is not a database is STORE_UNAVAILABLE', async () => {
    writeFileSync(join(dir, SQLITE_DEFAULT_FILE), Buffer.alloc(8192, 0x5a));
    await expectCode(SqliteStore.open({ dataDir: dir }), UnavailableError, 'STORE_UNAVAILABLE', /file is not a database/);
  });

  it('a data directory that cannot be created is STORE_UNAVAILABLE', async () => {
    writeFileSync(join(dir, 'plain-file'), 'x');
    await expectCode(SqliteStore.open({ dataDir: join(dir, 'plain-file', 'sub') }), UnavailableError, 'STORE_UNAVAILABLE');
  });

  it('rejects a file name with a path in it', async () => {
    await expectCode(SqliteStore.open({ dataDir: dir, fileName: '../x.sqlite' }), MisuseError, 'MISUSE_ARGUMENT');
  });
});

describe('nodes', () => {
  it('enrolls and looks a node up by id and by AK name', async () => {
    const s = await open();
    const r = await s.enrollNode(node(2));
    expect(r.ok).toBe(true);
    const got = await s.getNode('node-2');
    expect(got).toEqual({ ...node(2), kind: 'tpm', nodeKey: null, counters: null, lastQuoteAt: null, updatedAt: 1000, revokedAt: null, revokedReason: null });
    expect(got?.ekPublic).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(got?.ekPublic)).toBe(false);
    expect(await s.getNodeByAkName(new Uint8Array([0x00, 0x0b, 2]))).toEqual(got);
    expect(await s.getNode('node-404')).toBeNull();
    expect(await s.getNodeByAkName(new Uint8Array([9]))).toBeNull();
    expect((await s.getNode('node-2'))?.ekCert).toEqual(new Uint8Array([0x30, 0x82, 2]));
    await s.enrollNode(node(3));
    expect((await s.getNode('node-3'))?.ekCert).toBeNull();
  });

  it('refuses a second node with the same id or the same AK', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    expect(await s.enrollNode(node(1, { akName: new Uint8Array([7]) }))).toEqual({ ok: false, reason: 'node-exists' });
    expect(await s.enrollNode(node(5, { akName: node(1).akName }))).toEqual({ ok: false, reason: 'ak-exists' });
    expect(await s.getNode('node-5')).toBeNull();
  });

  it('updates quote counters by compare-and-set only', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    const c1 = { resetCount: 3, restartCount: 0, clock: 2n ** 63n + 5n };
    const c2 = { resetCount: 3, restartCount: 1, clock: 2n ** 63n + 9n };
    expect(await s.updateQuoteCounters('node-1', null, c1, 2000)).toEqual({ ok: true });
    expect(await s.updateQuoteCounters('node-1', null, c2, 2001)).toEqual({ ok: false, reason: 'stale' });
    expect(await s.updateQuoteCounters('node-1', { ...c1, clock: 1n }, c2, 2001)).toEqual({ ok: false, reason: 'stale' });
    expect(await s.updateQuoteCounters('node-1', c1, c2, 2002)).toEqual({ ok: true });
    const n = await s.getNode('node-1');
    expect(n?.counters).toEqual(c2);
    expect(n?.lastQuoteAt).toBe(2002);
    expect(n?.updatedAt).toBe(2002);
    expect(await s.updateQuoteCounters('node-404', null, c1, 1)).toEqual({ ok: false, reason: 'unknown' });
    await expectCode(s.updateQuoteCounters('node-1', c2, { ...c2, clock: 2n ** 64n }, 3), MisuseError, 'MISUSE_ARGUMENT', /UINT64/);
  });
});

/** An SNP-only node: empty TPM columns, akName 0x53 0x4E || SHA-256(nodeKey). */
function snpNode(i: number, over: Partial<NewNode> = {}): NewNode {
  const nodeKey = new Uint8Array([0x30, 0x59, i, i]);
  return {
    nodeId: `snp-${i}`,
    group: 'cvm',
    kind: 'snp',
    nodeKey,
    ekPublic: new Uint8Array(0),
    ekCert: null,
    akPublic: new Uint8Array(0),
    akName: Uint8Array.of(0x53, 0x4e, ...createHash('sha256').update(nodeKey).digest()),
    enrolledAt: 1000,
    ...over,
  };
}

function pendingSnp(id: string, over: Partial<PendingSnpEnrollment> = {}): PendingSnpEnrollment {
  return { enrollmentId: id, nodeId: 'snp-1', group: 'cvm', nodeKey: new Uint8Array([0x30, 0x59, 1, 1]), nonce: new Uint8Array(32).fill(4), createdAt: 1000, expiresAt: 2000, ...over };
}

describe('SNP-only nodes (schema version 3)', () => {
  it('enrolls an SNP node with its key; TPM nodes keep kind tpm and no key; names stay unique across kinds', async () => {
    const s = await open();
    expect((await s.enrollNode(snpNode(1))).ok).toBe(true);
    expect(await s.getNode('snp-1')).toMatchObject({ kind: 'snp', nodeKey: new Uint8Array([0x30, 0x59, 1, 1]), ekPublic: new Uint8Array(0), akPublic: new Uint8Array(0), ekCert: null });
    await s.enrollNode(node(1));
    expect(await s.getNode('node-1')).toMatchObject({ kind: 'tpm', nodeKey: null });
    // The same node key cannot enroll twice, under any node id.
    expect(await s.enrollNode(snpNode(1, { nodeId: 'snp-other' }))).toEqual({ ok: false, reason: 'ak-exists' });
  });

  it('refuses an inconsistent node: a TPM node with a key or an 0x53 name, an SNP node without a key, with TPM data or another name', async () => {
    const s = await open();
    await expectCode(s.enrollNode(node(1, { nodeKey: new Uint8Array([1]) })), MisuseError, 'MISUSE_ARGUMENT', /TPM node has no nodeKey/);
    await expectCode(s.enrollNode(node(1, { akName: new Uint8Array([0x53, 0x4e, 1]) })), MisuseError, 'MISUSE_ARGUMENT', /cannot start with 0x53/);
    await expectCode(s.enrollNode(snpNode(1, { nodeKey: null })), MisuseError, 'MISUSE_ARGUMENT');
    await expectCode(s.enrollNode(snpNode(1, { ekPublic: new Uint8Array([1]) })), MisuseError, 'MISUSE_ARGUMENT', /empty ekPublic/);
    await expectCode(s.enrollNode(snpNode(1, { akName: new Uint8Array([0x53, 0x4e]) })), MisuseError, 'MISUSE_ARGUMENT', /akName must be/);
    expect(await s.getNode('node-1')).toBeNull();
    expect(await s.getNode('snp-1')).toBeNull();
  });

  it('the database holds the kinds apart: an unknown kind is refused by its CHECK, and a damaged row is STORE_UNAVAILABLE', async () => {
    const s = await open();
    await s.enrollNode(snpNode(1));
    await s.enrollNode(node(2));
    expect(() => raw().prepare("UPDATE nodes SET kind = 'tdx' WHERE node_id = 'node-2'").run()).toThrow(/CHECK constraint failed/);
    raw().prepare("UPDATE nodes SET node_key = NULL WHERE node_id = 'snp-1'").run();
    await expectCode(s.getNode('snp-1'), UnavailableError, 'STORE_UNAVAILABLE', /nodes\.node_key holds NULL for an SNP node/);
    raw().prepare("UPDATE nodes SET node_key = x'01' WHERE node_id = 'node-2'").run();
    await expectCode(s.getNode('node-2'), UnavailableError, 'STORE_UNAVAILABLE', /a key for a TPM node/);
  });

  it('a pending SNP enrollment is taken exactly once; an expired one is taken as expired; housekeeping removes expired ones', async () => {
    const s = await open();
    await s.createPendingSnpEnrollment(pendingSnp('e1'));
    await expectCode(s.createPendingSnpEnrollment(pendingSnp('e1')), MisuseError, 'MISUSE_ARGUMENT', /already used/);
    const [a, b] = await Promise.all([s.takePendingSnpEnrollment('e1', 1500), s.takePendingSnpEnrollment('e1', 1500)]);
    expect(a).toEqual({ ok: true, pending: pendingSnp('e1') });
    expect(b).toEqual({ ok: false, reason: 'unknown' });
    await s.createPendingSnpEnrollment(pendingSnp('e2'));
    expect(await s.takePendingSnpEnrollment('e2', 2000)).toEqual({ ok: false, reason: 'expired' });
    expect(await s.takePendingSnpEnrollment('e2', 1500)).toEqual({ ok: false, reason: 'unknown' });
    await s.createPendingSnpEnrollment(pendingSnp('e3'));
    expect(await s.deleteExpired(2000)).toBe(1);
    expect(await s.takePendingSnpEnrollment('e3', 1500)).toEqual({ ok: false, reason: 'unknown' });
    await expectCode(s.createPendingSnpEnrollment(pendingSnp('e4', { nonce: new Uint8Array(8) })), MisuseError, 'MISUSE_ARGUMENT', /nonce/);
  });

  it('migrates a version 2 database: its nodes become kind tpm with no key, and its data survives', async () => {
    // A database as vouch wrote it before version 3: migrations 1 and 2 only.
    const db = new Database(join(dir, SQLITE_DEFAULT_FILE));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL);');
    for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
      db.exec(m.sqlite);
      db.prepare('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)').run(m.version, m.name, createHash('sha256').update(m.sqlite, 'utf8').digest('hex'));
    }
    db.prepare('INSERT INTO nodes (node_id, group_name, ek_public, ek_cert, ak_public, ak_name, enrolled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run('tpm-old', 'gpu', Buffer.from([1]), null, Buffer.from([2]), Buffer.from([0, 0x0b, 9]), 500, 500);
    db.prepare('INSERT INTO pending_enrollments (enrollment_id, node_id, group_name, ek_public, ek_cert, ak_public, ak_name, secret_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run('pe', 'tpm-x', 'gpu', Buffer.from([1]), null, Buffer.from([2]), Buffer.from([0, 0x0b, 8]), Buffer.alloc(32), 500, 900);
    db.close();

    const s = await open();
    expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
    expect(await s.getNode('tpm-old')).toMatchObject({ nodeId: 'tpm-old', kind: 'tpm', nodeKey: null, akName: new Uint8Array([0, 0x0b, 9]) });
    expect((await s.getPendingEnrollment('pe'))?.nodeId).toBe('tpm-x');
    const rows = raw().prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version').all() as Array<{ version: number; name: string; checksum: string }>;
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(rows[2]).toEqual({ version: 3, name: 'SNP-only nodes', checksum: createHash('sha256').update(MIGRATIONS[2]!.sqlite, 'utf8').digest('hex') });
    // The new kind works in the migrated database, next to the old node.
    expect((await s.enrollNode(snpNode(1))).ok).toBe(true);
    await s.close();
    // Reopening applies nothing twice, and an edited version 3 is refused like any other.
    const again = await open();
    expect(await again.getNode('snp-1')).toMatchObject({ kind: 'snp' });
    await again.close();
    raw().prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 3").run();
    await expectCode(SqliteStore.open({ dataDir: dir }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /migration 3 \(SNP-only nodes\) .* differs/);
  });
});

describe('pending enrollments', () => {
  const pending = (over: Partial<NewPendingEnrollment> = {}): NewPendingEnrollment => ({
    enrollmentId: 'enr-1',
    nodeId: 'node-1',
    group: 'gpu',
    ekPublic: new Uint8Array([1]),
    ekCert: null,
    akPublic: new Uint8Array([2]),
    akName: new Uint8Array([3]),
    secretSha256: createHash('sha256').update('secret').digest(),
    createdAt: 1000,
    expiresAt: 5000,
    ...over,
  });

  it('stores only the secret hash, counts attempts, and completes exactly once', async () => {
    const s = await open();
    await s.createPendingEnrollment(pending());
    const p = await s.getPendingEnrollment('enr-1');
    expect(p?.attempts).toBe(0);
    expect(hex(p?.secretSha256 ?? new Uint8Array())).toBe(createHash('sha256').update('secret').digest('hex'));
    expect(await s.recordEnrollmentAttempt('enr-1')).toBe(1);
    expect(await s.recordEnrollmentAttempt('enr-1')).toBe(2);
    expect(await s.recordEnrollmentAttempt('enr-404')).toBeNull();

    const results = await Promise.all([s.completeEnrollment('enr-1', 2000), s.completeEnrollment('enr-1', 2000)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'unknown' }]);
    const n = await s.getNode('node-1');
    expect(n).toMatchObject({ nodeId: 'node-1', group: 'gpu', enrolledAt: 2000, akName: new Uint8Array([3]) });
    expect(await s.getPendingEnrollment('enr-1')).toBeNull();
  });

  it('refuses an expired enrollment, and one whose node id is taken (keeping it pending)', async () => {
    const s = await open();
    await s.createPendingEnrollment(pending());
    expect(await s.completeEnrollment('enr-1', 5000)).toEqual({ ok: false, reason: 'expired' });
    await s.enrollNode(node(1));
    expect(await s.completeEnrollment('enr-1', 4999)).toEqual({ ok: false, reason: 'node-exists' });
    expect(await s.getPendingEnrollment('enr-1')).not.toBeNull();
    expect(await s.deletePendingEnrollment('enr-1')).toBe(true);
    expect(await s.deletePendingEnrollment('enr-1')).toBe(false);
  });

  it('requires a 32-byte secret hash', async () => {
    const s = await open();
    await expectCode(s.createPendingEnrollment(pending({ secretSha256: new Uint8Array(16) })), MisuseError, 'MISUSE_ARGUMENT', /32 bytes/);
  });
});

describe('challenges', () => {
  it('registers the refusal codes, category verification-failed, 409 for a replay', () => {
    for (const code of Object.values(CHALLENGE_REFUSAL_CODES)) expect(ERRORS[code].category).toBe('verification-failed');
    expect(ERRORS.CHALLENGE_REPLAYED.status).toBe(409);
    expect(ERRORS.CHALLENGE_EXPIRED.status).toBe(422);
  });

  it('is consumed once: the second use is a replay', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'ch-1', 'node-1');
    const first = await s.consumeChallenge('ch-1', 'node-1', 2000);
    expect(first).toEqual({
      ok: true,
      challenge: {
        challengeId: 'ch-1',
        nodeId: 'node-1',
        nonce: new Uint8Array(32).fill(9),
        params: { pcrs: { sha256: [0, 1, 7] } },
        createdAt: 1000,
        expiresAt: 10_000,
        consumedAt: 2000,
      },
    });
    expect(await s.consumeChallenge('ch-1', 'node-1', 2001)).toEqual({ ok: false, reason: 'consumed' });
  });

  it('reports unknown, wrong-node and expired, and a wrong-node attempt does not burn the challenge', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await s.enrollNode(node(2));
    await challenge(s, 'ch-1', 'node-1', 3000);
    expect(await s.consumeChallenge('ch-404', 'node-1', 2000)).toEqual({ ok: false, reason: 'unknown' });
    expect(await s.consumeChallenge('ch-1', 'node-2', 2000)).toEqual({ ok: false, reason: 'wrong-node' });
    expect(await s.consumeChallenge('ch-1', 'node-1', 3000)).toEqual({ ok: false, reason: 'expired' });
    expect((await s.consumeChallenge('ch-1', 'node-1', 2999)).ok).toBe(true);
    // Once consumed, a late or foreign attempt still reads as what it is.
    expect(await s.consumeChallenge('ch-1', 'node-1', 9999)).toEqual({ ok: false, reason: 'consumed' });
    expect(await s.consumeChallenge('ch-1', 'node-2', 2000)).toEqual({ ok: false, reason: 'wrong-node' });
  });

  it('50 concurrent consumers on one store: exactly one wins', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'ch-race', 'node-1');
    const results = await Promise.all(Array.from({ length: 50 }, () => s.consumeChallenge('ch-race', 'node-1', 2000)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'consumed')).toHaveLength(49);
  });

  it('two store instances on the same file: exactly one wins', async () => {
    const a = await open();
    const b = await open();
    await a.enrollNode(node(1));
    await challenge(a, 'ch-race', 'node-1');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).consumeChallenge('ch-race', 'node-1', 2000)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'consumed')).toHaveLength(49);
  });

  it('refuses a challenge for a node that is not enrolled, a reused id and an empty lifetime', async () => {
    const s = await open();
    await expectCode(challenge(s, 'ch-1', 'node-404'), MisuseError, 'MISUSE_ARGUMENT', /not enrolled/);
    await s.enrollNode(node(1));
    await challenge(s, 'ch-1', 'node-1');
    await expectCode(challenge(s, 'ch-1', 'node-1'), MisuseError, 'MISUSE_ARGUMENT', /already used/);
    await expectCode(challenge(s, 'ch-2', 'node-1', 1000), MisuseError, 'MISUSE_ARGUMENT', /expiresAt must be after createdAt/);
    await expectCode(
      s.createChallenge({ challengeId: 'ch-3', nodeId: 'node-1', nonce: new Uint8Array(1), params: { x: 0.5 }, createdAt: 1, expiresAt: 2 }),
      MisuseError,
      'MISUSE_ARGUMENT',
      /floats/,
    );
  });

  it('deletes expired challenges and pending enrollments', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'old', 'node-1', 2000);
    await challenge(s, 'new', 'node-1', 9000);
    expect(await s.deleteExpired(5000)).toBe(1);
    expect(await s.consumeChallenge('old', 'node-1', 1500)).toEqual({ ok: false, reason: 'unknown' });
    expect((await s.consumeChallenge('new', 'node-1', 5000)).ok).toBe(true);
  });
});

describe('policies', () => {
  it('stores documents by the SHA-256 of their bytes, idempotently, and assigns them to groups', async () => {
    const s = await open();
    const doc = 'version: 1\npcrs: {}\n';
    const digest = createHash('sha256').update(doc).digest('hex');
    const p = await s.putPolicy('gpu-prod', doc, 1000);
    expect(p).toEqual({ digest, policyId: 'gpu-prod', document: doc, createdAt: 1000 });
    expect(await s.putPolicy('gpu-prod', doc, 2000)).toEqual(p);
    expect(await s.getPolicy(digest)).toEqual(p);
    expect(await s.getAssignedPolicy('gpu')).toBeNull();
    await s.assignPolicy('gpu', digest, 1500);
    expect(await s.getAssignedPolicy('gpu')).toEqual(p);
    const p2 = await s.putPolicy('gpu-prod', doc + '# v2\n', 3000);
    await s.assignPolicy('gpu', p2.digest, 3000);
    expect((await s.getAssignedPolicy('gpu'))?.digest).toBe(p2.digest);
    await expectCode(s.assignPolicy('gpu', 'a'.repeat(64), 1), MisuseError, 'MISUSE_ARGUMENT', /no policy has digest/);
    await expectCode(s.getPolicy('ABC'), MisuseError, 'MISUSE_ARGUMENT');
  });
});

describe('decisions', () => {
  it('appends a linear chain of canonical entries that verifies', async () => {
    const s = await open();
    expect(await s.ledgerHead()).toBeNull();
    const first = await s.appendDecision({ kind: 'enroll', nodeId: 'node-1', outcome: 'affirming', time: 1000, body: { ek: new Uint8Array([1]) } });
    expect(first.seq).toBe(1);
    const row = (await s.getDecision(1)) as DecisionRecord;
    expect(hex(row.prevHash)).toBe(hex(GENESIS_PREV));
    expect(hex(row.hash)).toBe(hex(first.hash));
    expect(decodeLedgerEntry(row.entry)).toEqual({
      v: 1,
      seq: 1,
      prev: GENESIS_PREV,
      time: 1000,
      kind: 'enroll',
      node: 'node-1',
      outcome: 'affirming',
      body: { ek: new Uint8Array([1]) },
    });
    expect(row).toMatchObject({ kind: 'enroll', nodeId: 'node-1', outcome: 'affirming', time: 1000 });

    for (let i = 2; i <= 100; i++) {
      const r = await s.appendDecision({ kind: 'appraise', nodeId: i % 7 === 0 ? null : 'node-1', outcome: 'affirming', time: 1000 + i, body: { i } });
      expect(r.seq).toBe(i);
    }
    const rows = [...(await s.listDecisions(1, 40)), ...(await s.listDecisions(41, 100))];
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const v = verifyChain(rows);
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(hex(v.head.hash)).toBe(hex((await s.ledgerHead())?.hash ?? new Uint8Array()));
    expect(await s.getDecision(101)).toBeNull();
  });

  it('concurrent appends from two store instances stay one linear chain', async () => {
    const a = await open();
    const b = await open();
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: i, body: { i } })),
    );
    expect(results.map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(verifyChain(await b.listDecisions(1, 1000)).ok).toBe(true);
  });

  it('group commit: appends in one turn share a transaction, each gets its own seq; a bad one fails alone', async () => {
    const s = await open();
    const good = Array.from({ length: 20 }, (_, i) => s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: i, body: { i } }));
    const bad = s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: { f: 0.5 } });
    await expectCode(bad, MisuseError, 'MISUSE_ARGUMENT', /floats/);
    const results = await Promise.all(good);
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const rows = await s.listDecisions(1, 100);
    expect(rows.map((r) => decodeLedgerEntry(r.entry).body)).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    expect(verifyChain(rows).ok).toBe(true);
  });

  it('appends queued before close are committed, appends after close are STORE_UNAVAILABLE', async () => {
    const s = await open();
    const queued = s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: 1, body: {} });
    await s.close();
    expect((await queued).seq).toBe(1);
    await expectCode(s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: 2, body: {} }), UnavailableError, 'STORE_UNAVAILABLE');
  });

  /** A declarative commit: the decision when every step succeeds, and what each lost race adds. */
  const onRace = {
    challenge: { unknown: { code: 'race-unknown' }, 'wrong-node': { code: 'race-wrong-node' }, consumed: { code: 'race-consumed' }, expired: { code: 'race-expired' } },
    counters: { code: 'race-counters' },
    ima: { code: 'race-ima' },
    revoked: { code: 'race-revoked' },
  };
  const decision = { kind: 'appraise' as const, nodeId: 'node-1', outcome: 'affirming', time: 2000, body: { failures: [] } };
  const outcomeOf = (r: { outcome: { challenge: string; counters: string; ima: string } }) => `${r.outcome.challenge}/${r.outcome.counters}/${r.outcome.ima}`;
  const recorded = async (s: SqliteStore, seq: number) => {
    const row = await s.getDecision(seq);
    const entry = decodeLedgerEntry(row!.entry);
    return { outcome: row!.outcome, failures: (entry.body['failures'] as Array<{ code: string }>).map((f) => f.code) };
  };

  it('commitAttestation: consumption, counters and decision in one transaction; a concurrent replay loses', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'ch-1', 'node-1');
    const next = { resetCount: 1, restartCount: 0, clock: 100n };
    const commit = () => s.commitAttestation({ challengeId: 'ch-1', nodeId: 'node-1', now: 2000, counters: { expected: null, next }, decision, onRace });
    const [a, b] = await Promise.all([commit(), commit()]);
    expect([outcomeOf(a), outcomeOf(b)]).toEqual(['ok/ok/skipped', 'consumed/skipped/skipped']);
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(await recorded(s, 1)).toEqual({ outcome: 'affirming', failures: [] });
    // The loser's decision is recorded as what it was: a replay, contraindicated.
    expect(await recorded(s, 2)).toEqual({ outcome: 'contraindicated', failures: ['race-consumed'] });
    expect((await s.getNode('node-1'))?.counters).toEqual(next);
    expect((await s.getChallenge('ch-1'))?.consumedAt).toBe(2000);
  });

  it('commitAttestation: a revocation that lands after the appraisal read refuses, and moves neither counters nor IMA state', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'rv-1', 'node-1');
    await s.revokeNode('node-1', 'compromised', 1500);
    const st = { resetCount: 3, entries: 10, pcr10: new Map([[0x000b, new Uint8Array(32).fill(1)]]), violations: 0 };
    const r = await s.commitAttestation({ challengeId: 'rv-1', nodeId: 'node-1', now: 2000, counters: { expected: null, next: { resetCount: 1, restartCount: 0, clock: 5n } }, ima: { expected: null, next: st }, decision, onRace });
    expect(r.outcome).toEqual({ challenge: 'ok', counters: 'skipped', ima: 'skipped', revoked: true });
    expect(await recorded(s, r.seq)).toEqual({ outcome: 'contraindicated', failures: ['race-revoked'] });
    expect((await s.getNode('node-1'))?.counters).toBeNull();
    expect(await s.getImaState('node-1')).toBeNull();
  });

  it('commitAttestation: the IMA state is written by compare-and-set, only when the challenge was consumed', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await challenge(s, 'i-1', 'node-1');
    await challenge(s, 'i-2', 'node-1');
    const st = (entries: number, v: number) => ({ resetCount: 3, entries, pcr10: new Map([[0x000b, new Uint8Array(32).fill(v)], [0x0004, new Uint8Array(20).fill(v)]]), violations: 0 });
    const seen: string[] = [];
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'i-1', nodeId: 'node-1', now: 2000, counters: null, ima: { expected: null, next: st(10, 1) }, decision, onRace })));
    expect(await s.getImaState('node-1')).toEqual(st(10, 1));
    // Another writer's expectation (none stored) no longer holds: stale, nothing written.
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'i-2', nodeId: 'node-1', now: 2000, counters: null, ima: { expected: null, next: st(20, 2) }, decision, onRace })));
    // A replayed challenge writes nothing either.
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'i-1', nodeId: 'node-1', now: 2000, counters: null, ima: { expected: st(10, 1), next: st(30, 3) }, decision, onRace })));
    expect(seen).toEqual(['ok/skipped/ok', 'ok/skipped/stale', 'consumed/skipped/skipped']);
    expect(await recorded(s, 2)).toEqual({ outcome: 'contraindicated', failures: ['race-ima'] });
    expect(await s.getImaState('node-1')).toEqual(st(10, 1));
    expect(await s.getImaState('node-2')).toBeNull();
  });

  it('commitAttestation: stale counters are recorded as such; a wrong node does not burn the challenge', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await s.enrollNode(node(2));
    await challenge(s, 'ch-a', 'node-1');
    await challenge(s, 'ch-b', 'node-1');
    const seen: string[] = [];
    // Expected counters that are not the stored ones (null): the compare-and-set fails.
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'ch-a', nodeId: 'node-1', now: 2000, counters: { expected: { resetCount: 9, restartCount: 0, clock: 1n }, next: { resetCount: 9, restartCount: 0, clock: 2n } }, decision, onRace })));
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'ch-b', nodeId: 'node-2', now: 2000, counters: null, decision, onRace })));
    // Without challenge failures (the appraisal already said why), nothing is added for the challenge.
    const { challenge: _omitted, ...noChallenge } = onRace;
    seen.push(outcomeOf(await s.commitAttestation({ challengeId: 'nope', nodeId: 'node-1', now: 2000, counters: null, decision: { ...decision, outcome: 'contraindicated', body: { failures: [{ code: 'already' }] } }, onRace: noChallenge })));
    expect(seen).toEqual(['ok/stale/skipped', 'wrong-node/skipped/skipped', 'unknown/skipped/skipped']);
    expect(await recorded(s, 1)).toEqual({ outcome: 'contraindicated', failures: ['race-counters'] });
    expect(await recorded(s, 2)).toEqual({ outcome: 'contraindicated', failures: ['race-wrong-node'] });
    expect(await recorded(s, 3)).toEqual({ outcome: 'contraindicated', failures: ['already'] });
    expect((await s.getNode('node-1'))?.counters).toBeNull();
    expect((await s.getChallenge('ch-b'))?.consumedAt).toBeNull();
  });

  it('rejects a malformed decision without writing anything', async () => {
    const s = await open();
    await expectCode(
      s.appendDecision({ kind: 'launch' as 'enroll', nodeId: null, outcome: 'x', time: 1, body: {} }),
      MisuseError,
      'MISUSE_ARGUMENT',
      /unknown decision kind/,
    );
    await expectCode(s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: { f: 1.5 } }), MisuseError, 'MISUSE_ARGUMENT', /floats/);
    await expectCode(s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: -1, body: {} }), MisuseError, 'MISUSE_ARGUMENT');
    expect(await s.ledgerHead()).toBeNull();
  });

  it('the database refuses updates and deletes of ledger rows', async () => {
    const s = await open();
    await s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: {} });
    const db = raw();
    expect(() => db.prepare("UPDATE decisions SET outcome = 'x' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM decisions WHERE seq = 1').run()).toThrow(/append-only/);
  });
});

describe('failures are STORE_UNAVAILABLE, never a default', () => {
  it('every method of a closed store rejects with STORE_UNAVAILABLE', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    await s.close();
    await s.close(); // idempotent
    const calls: [string, () => Promise<unknown>][] = [
      ['getNode', () => s.getNode('node-1')],
      ['getNodeByAkName', () => s.getNodeByAkName(new Uint8Array([1]))],
      ['enrollNode', () => s.enrollNode(node(2))],
      ['updateQuoteCounters', () => s.updateQuoteCounters('node-1', null, { resetCount: 0, restartCount: 0, clock: 0n }, 1)],
      ['getPendingEnrollment', () => s.getPendingEnrollment('e')],
      ['recordEnrollmentAttempt', () => s.recordEnrollmentAttempt('e')],
      ['completeEnrollment', () => s.completeEnrollment('e', 1)],
      ['deletePendingEnrollment', () => s.deletePendingEnrollment('e')],
      ['createPendingSnpEnrollment', () => s.createPendingSnpEnrollment(pendingSnp('e'))],
      ['takePendingSnpEnrollment', () => s.takePendingSnpEnrollment('e', 1)],
      ['consumeChallenge', () => s.consumeChallenge('c', 'node-1', 1)],
      ['deleteExpired', () => s.deleteExpired(1)],
      ['putPolicy', () => s.putPolicy('p', 'doc', 1)],
      ['getPolicy', () => s.getPolicy('a'.repeat(64))],
      ['getAssignedPolicy', () => s.getAssignedPolicy('g')],
      ['appendDecision', () => s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: {} })],
      ['getDecision', () => s.getDecision(1)],
      ['listDecisions', () => s.listDecisions(1, 10)],
      ['ledgerHead', () => s.ledgerHead()],
      ['schemaVersion', () => s.schemaVersion()],
    ];
    for (const [name, call] of calls) {
      await expectCode(call(), UnavailableError, 'STORE_UNAVAILABLE', new RegExp(`store: ${name} failed: The database connection is not open`));
    }
  });

  it('a missing table is STORE_UNAVAILABLE, not "not found"', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    raw().exec('PRAGMA foreign_keys = OFF; DROP TABLE challenges; DROP TABLE nodes;');
    await expectCode(s.getNode('node-1'), UnavailableError, 'STORE_UNAVAILABLE', /no such table: nodes/);
    await expectCode(s.consumeChallenge('c', 'node-1', 1), UnavailableError, 'STORE_UNAVAILABLE');
  });

  it('a damaged column value is STORE_UNAVAILABLE, not an empty value', async () => {
    const s = await open();
    await s.enrollNode(node(1));
    raw().prepare("UPDATE nodes SET ek_public = 'text' WHERE node_id = 'node-1'").run();
    await expectCode(s.getNode('node-1'), UnavailableError, 'STORE_UNAVAILABLE', /nodes\.ek_public holds a string, not a BLOB/);
  });

  it('a file damaged while open is STORE_UNAVAILABLE for reads and appends', async () => {
    const s = await open();
    for (let i = 0; i < 20; i++) await s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: i, body: { pad: new Uint8Array(2000) } });
    // Move everything from the WAL into the main file, then overwrite the main file in place.
    const db = raw();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const fd = openSync(join(dir, SQLITE_DEFAULT_FILE), 'r+');
    writeSync(fd, Buffer.alloc(4096 * 20, 0x42), 0, 4096 * 20, 0);
    closeSync(fd);
    await expectCode(s.listDecisions(1, 100), UnavailableError, 'STORE_UNAVAILABLE', /listDecisions failed: file is not a database/);
    await expectCode(
      s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 99, body: {} }),
      UnavailableError,
      'STORE_UNAVAILABLE',
      /appendDecision failed/,
    );
  });
});
