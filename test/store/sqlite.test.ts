import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MisuseError, UnavailableError } from '../../src/lib/errors.js';
import { CHALLENGE_REFUSAL_CODES, MIGRATIONS, SQLITE_DEFAULT_FILE, SqliteStore } from '../../src/store/index.js';
import { ERRORS } from '../../src/lib/errors.js';
import { expectCode, node, snpNode, storeContract } from './contract.js';

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

describe('the Store contract (SQLite)', () => {
  storeContract({
    async fresh() {
      // beforeEach above made an empty data directory.
    },
    open,
    async exec(sql) {
      raw().exec(sql);
    },
    blob: (h) => `x'${h}'`,
    closedDetail: /The database connection is not open/,
  });
});

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

describe('SNP-only nodes (schema version 3)', () => {
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

describe('challenges', () => {
  it('registers the refusal codes, category verification-failed, 409 for a replay', () => {
    for (const code of Object.values(CHALLENGE_REFUSAL_CODES)) expect(ERRORS[code].category).toBe('verification-failed');
    expect(ERRORS.CHALLENGE_REPLAYED.status).toBe(409);
    expect(ERRORS.CHALLENGE_EXPIRED.status).toBe(422);
  });
});

describe('failures are STORE_UNAVAILABLE, never a default', () => {
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
