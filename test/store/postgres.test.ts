/**
 * PostgresStore against a real PostgreSQL server (a throwaway one, test/helpers/postgres.ts):
 * the Store contract it shares with SqliteStore (./contract.ts), then what only a networked
 * store for several replicas has to show: migrations under a lock, schema checks, types,
 * single use and one linear ledger across store instances, and failing closed through an outage.
 *
 * Without Debian's postgresql package this file fails (it never skips): install it, or run
 * scripts/ensure-deps.sh.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MisuseError, UnavailableError, VouchError } from '../../src/lib/errors.js';
import { verifyChain } from '../../src/ledger/index.js';
import { MIGRATIONS, migrationChecksum } from '../../src/store/migrations.js';
import { PostgresStore, checkDatabaseUrl, redactDatabaseUrl, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { databaseUrl, verifierConfig, withSnpKdsOptions, type VerifierStartOptions } from '../../src/cli/verifier.js';
import { startServer } from '../../src/verifier/server.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { challenge, decision, expectCode, node, onRace, pendingSnp, storeContract } from './contract.js';

let server: PostgresServer;
/** The database of the current test. */
let url: string;
let stores: PostgresStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
}, 120_000);

afterAll(async () => {
  await server?.close();
});

async function sql(text: string, params: unknown[] = [], on = url): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: on });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

describe('the Store contract (PostgreSQL)', () => {
  storeContract({
    async fresh() {
      url = await server.createDatabase();
    },
    open: () => PostgresStore.open({ url }),
    async exec(text) {
      await sql(text);
    },
    blob: (h) => `'\\x${h}'::bytea`,
    closedDetail: /the store is closed/,
  });
});

describe('PostgreSQL specifics', () => {
  beforeEach(async () => {
    url = await server.createDatabase();
    stores = [];
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
  });

  async function open(over: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> {
    const s = await PostgresStore.open({ url, ...over });
    stores.push(s);
    return s;
  }

  describe('opening and migrations', () => {
    it('creates the schema in BIGINT, BYTEA and TEXT columns, records each migration with the checksum of its postgres text, commits synchronously', async () => {
      const s = await open();
      expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
      expect(await s.diagnostics()).toMatchObject({ synchronousCommit: 'on', serverEncoding: 'UTF8', schemaVersion: MIGRATIONS.length });
      const rows = (await sql('SELECT version, name, checksum FROM schema_migrations ORDER BY version')).rows as Array<{ version: string; name: string; checksum: string }>;
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: String(m.version), name: m.name, checksum: migrationChecksum(m.postgres) })));
      const cols = (await sql("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'")).rows as Array<{ table_name: string; column_name: string; data_type: string }>;
      expect(new Set(cols.map((c) => c.data_type))).toEqual(new Set(['bigint', 'bytea', 'text']));
      const type = (t: string, c: string): string | undefined => cols.find((x) => x.table_name === t && x.column_name === c)?.data_type;
      expect([type('decisions', 'seq'), type('decisions', 'entry'), type('nodes', 'clock'), type('nodes', 'node_key'), type('secrets', 'ciphertext')]).toEqual(['bigint', 'bytea', 'text', 'bytea', 'bytea']);
    });

    it('keeps every sqlite text byte-identical (their checksums are recorded in existing databases) and has a postgres text for each version', () => {
      const pinned: Record<number, string> = {
        1: '597484c631244774690a8af6a06348c664ad61779124fe72a33c40d76a64004e',
        2: 'e26e25a64b38e693910034fb934e0973a9ac7df58b819b74e91d034acf8958db',
        3: 'e47ebd1f1bf1b0dcbd4151b7cbb8acc7d47be4ea54145eb6d91cef4e4169dc4b',
        4: '0f89af187f6dd67fd63cf81eb58ebca9b0b28659cc0a0258afa94deaeb6debe6',
        5: '9a972998e03559ca854976f5392cb12aa11f3b15b950c17c13690e171ee613eb',
      };
      for (const [v, sum] of Object.entries(pinned)) expect(migrationChecksum(MIGRATIONS.find((m) => m.version === Number(v))!.sqlite)).toBe(sum);
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      for (const m of MIGRATIONS) {
        expect(m.postgres.trim().length).toBeGreaterThan(0);
        expect(m.postgres).not.toBe(m.sqlite);
        expect(m.postgres).not.toMatch(/\bBLOB\b|\bINTEGER\b/);
      }
    });

    it('is idempotent on reopen: migrations run once, data survives', async () => {
      const s1 = await open();
      await s1.enrollNode(node(1));
      await s1.appendDecision({ kind: 'enroll', nodeId: 'node-1', outcome: 'affirming', time: 1, body: {} });
      await s1.close();
      const s2 = await open();
      expect((await s2.getNode('node-1'))?.nodeId).toBe('node-1');
      expect((await s2.ledgerHead())?.seq).toBe(1);
      expect((await sql('SELECT count(*)::int AS n FROM schema_migrations')).rows[0]).toEqual({ n: MIGRATIONS.length });
    });

    it('replicas starting together migrate once: the migration lock serialises them', async () => {
      const opened = await Promise.all(Array.from({ length: 4 }, () => open()));
      for (const s of opened) expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
      expect((await sql('SELECT count(*)::int AS n FROM schema_migrations')).rows[0]).toEqual({ n: MIGRATIONS.length });
      // And they share one database: what one writes, another reads.
      await opened[0]!.enrollNode(node(1));
      expect((await opened[3]!.getNode('node-1'))?.nodeId).toBe('node-1');
    });

    it('refuses a database with a newer schema version, or an applied migration that differs (STORE_SCHEMA_MISMATCH)', async () => {
      await (await open()).close();
      await sql("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')");
      await expectCode(PostgresStore.open({ url }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /schema version 99, newer/);
      await sql('DELETE FROM schema_migrations WHERE version = 99');
      await sql("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 3");
      await expectCode(PostgresStore.open({ url }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /migration 3 \(SNP-only nodes\) .* differs/);
      // A checksum of the sqlite text is not this dialect's either.
      await sql('UPDATE schema_migrations SET checksum = $1 WHERE version = 3', [migrationChecksum(MIGRATIONS[2]!.sqlite)]);
      await expectCode(PostgresStore.open({ url }), UnavailableError, 'STORE_SCHEMA_MISMATCH', /differs/);
    });

    it('migrates a version 2 database in place: its nodes become kind tpm, unrevoked, and its data survives', async () => {
      await sql('CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL)');
      for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
        await sql(m.postgres);
        await sql('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, createHash('sha256').update(m.postgres, 'utf8').digest('hex')]);
      }
      await sql('INSERT INTO nodes (node_id, group_name, ek_public, ek_cert, ak_public, ak_name, enrolled_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        'tpm-old', 'gpu', Buffer.from([1]), null, Buffer.from([2]), Buffer.from([0, 0x0b, 9]), 500, 500,
      ]);
      const s = await open();
      expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
      expect(await s.getNode('tpm-old')).toMatchObject({ nodeId: 'tpm-old', kind: 'tpm', nodeKey: null, revokedAt: null, akName: new Uint8Array([0, 0x0b, 9]) });
      expect((await s.revokeNode('tpm-old', 'lost', 1000)).ok).toBe(true);
    });

    it('lists in code-point order (as SQLite does) in a database whose locale sorts otherwise', async () => {
      await sql("CREATE DATABASE icu_en LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' ENCODING 'UTF8' TEMPLATE template0", [], url);
      const icu = url.replace(/\/[^/]+$/, '/icu_en');
      // The database's own order is not code-point order...
      expect((await sql("SELECT x FROM (VALUES ('Node-Z'), ('node-1')) v(x) ORDER BY x", [], icu)).rows.map((r: { x: string }) => r.x)).toEqual(['node-1', 'Node-Z']);
      const s = await PostgresStore.open({ url: icu });
      stores.push(s);
      for (const [k, id] of ['node-1', 'Node-Z', 'node-é', 'node-3'].entries()) await s.enrollNode(node(k + 1, { nodeId: id }));
      // ...but the store's is: node_id has the "C" collation.
      expect((await s.listNodes(null, 10)).map((n) => n.nodeId)).toEqual(['Node-Z', 'node-1', 'node-3', 'node-é']);
      expect((await s.listNodes('Node-Z', 1)).map((n) => n.nodeId)).toEqual(['node-1']);
    });

    it('refuses a database that is not UTF8', async () => {
      await sql("CREATE DATABASE latin ENCODING 'SQL_ASCII' TEMPLATE template0", [], url);
      await expectCode(PostgresStore.open({ url: url.replace(/\/[^/]+$/, '/latin') }), UnavailableError, 'STORE_UNAVAILABLE', /not UTF8/);
    });

    it('a URL that is not postgres:// is a MisuseError that does not repeat it; options are checked', async () => {
      for (const bad of ['mysql://u:hunter2@h/db', 'hunter2', '', 'file:///tmp/x']) {
        const e = await PostgresStore.open({ url: bad }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(MisuseError);
        expect((e as Error).message).not.toContain('hunter2');
      }
      expect(checkDatabaseUrl('postgresql:///vouch?host=/run/postgresql').pathname).toBe('/vouch');
      expect(redactDatabaseUrl('postgres://vouch:s3cr%40t@db:5432/vouch')).toBe('postgres://vouch:***@db:5432/vouch');
      expect(redactDatabaseUrl('postgres://db/vouch')).toBe('postgres://db/vouch');
      expect(redactDatabaseUrl('postgres://db/vouch?sslmode=require&password=hunter2')).toBe('postgres://db/vouch?sslmode=require&password=***');
      await expectCode(PostgresStore.open({ url, poolSize: 0 }), MisuseError, 'MISUSE_ARGUMENT', /poolSize/);
      await expectCode(PostgresStore.open({ url, statementTimeoutMs: 1.5 }), MisuseError, 'MISUSE_ARGUMENT', /statementTimeoutMs/);
    });

    it('a wrong password is STORE_UNAVAILABLE, and no message holds a password', async () => {
      const wrong = url.replace(`:${server.password}@`, ':not-the-Password-42@');
      const e = await PostgresStore.open({ url: wrong }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UnavailableError);
      expect((e as VouchError).code).toBe('STORE_UNAVAILABLE');
      expect((e as Error).message).toMatch(/password authentication failed/);
      expect((e as Error).message).not.toContain('not-the-Password-42');
      expect((e as Error).message).not.toContain(server.password);
    });

    it('a server that accepts connections but never answers: open fails within the connect timeout', async () => {
      const held: Socket[] = [];
      const silent: Server = createServer((sock) => held.push(sock));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as { port: number }).port;
      try {
        const t0 = Date.now();
        const e = await PostgresStore.open({ url: `postgresql://vouch:pw-x9@127.0.0.1:${port}/vouch`, connectTimeoutMs: 500 }).catch((x: unknown) => x);
        expect(Date.now() - t0).toBeLessThan(3000);
        expect(e).toBeInstanceOf(UnavailableError);
        expect((e as VouchError).code).toBe('STORE_UNAVAILABLE');
        expect((e as Error).message).not.toContain('pw-x9');
      } finally {
        for (const s of held) s.destroy();
        await new Promise((r) => silent.close(r));
      }
    });
  });

  describe('types and damage', () => {
    it('a BIGINT beyond the safe integer range is a damaged row (STORE_UNAVAILABLE), never a rounded number', async () => {
      const s = await open();
      await s.enrollNode(node(1));
      await sql("UPDATE nodes SET enrolled_at = 9007199254740993 WHERE node_id = 'node-1'");
      await expectCode(s.getNode('node-1'), UnavailableError, 'STORE_UNAVAILABLE', /nodes\.enrolled_at holds the BIGINT 9007199254740993, outside the safe integer range/);
      await sql("UPDATE nodes SET enrolled_at = 9007199254740991 WHERE node_id = 'node-1'");
      expect((await s.getNode('node-1'))?.enrolledAt).toBe(Number.MAX_SAFE_INTEGER);
    });

    it('U+0000 in an id or text is a MisuseError (PostgreSQL text cannot hold it), not a database failure', async () => {
      const s = await open();
      await expectCode(s.getNode('node\u00001'), MisuseError, 'MISUSE_ARGUMENT', /U\+0000/);
      await expectCode(s.putPolicy('p', 'a\u0000b', 1), MisuseError, 'MISUSE_ARGUMENT', /document/);
      await expectCode(s.appendDecision({ kind: 'heartbeat', nodeId: 'n\u0000', outcome: 'ok', time: 1, body: {} }), MisuseError, 'MISUSE_ARGUMENT');
    });

    it('a missing table is STORE_UNAVAILABLE, not "not found"', async () => {
      const s = await open();
      await s.enrollNode(node(1));
      await sql('DROP TABLE ima_state, challenges, nodes CASCADE');
      await expectCode(s.getNode('node-1'), UnavailableError, 'STORE_UNAVAILABLE', /relation "nodes" does not exist \(SQLSTATE 42P01\)/);
      await expectCode(s.consumeChallenge('c', 'node-1', 1), UnavailableError, 'STORE_UNAVAILABLE');
      // The store still works for what is there.
      expect(await s.ledgerHead()).toBeNull();
    });

    it('the ledger is append-only for UPDATE, DELETE and TRUNCATE', async () => {
      const s = await open();
      await s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: {} });
      await expect(sql("UPDATE decisions SET outcome = 'x'")).rejects.toThrow(/the decision ledger is append-only/);
      await expect(sql('DELETE FROM decisions')).rejects.toThrow(/the decision ledger is append-only/);
      await expect(sql('TRUNCATE decisions')).rejects.toThrow(/the decision ledger is append-only/);
      expect((await s.listDecisions(1, 10)).map((d) => d.outcome)).toEqual(['ok']);
    });
  });

  describe('replicas: two stores on one database', () => {
    it('of concurrent consumeChallenge calls from both, exactly one wins, round after round', async () => {
      const a = await open();
      const b = await open();
      await a.enrollNode(node(1));
      for (let round = 0; round < 60; round++) {
        await challenge(a, `ch-${round}`, 'node-1');
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).consumeChallenge(`ch-${round}`, 'node-1', 2000)));
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect(results.filter((r) => !r.ok && r.reason === 'consumed')).toHaveLength(5);
      }
    });

    it('of concurrent commitAttestation calls with one challenge, exactly one consumes it and moves the counters; the ledger stays one chain', async () => {
      const a = await open();
      const b = await open();
      await a.enrollNode(node(1));
      let counters: { resetCount: number; restartCount: number; clock: bigint } | null = null;
      const rounds = 40;
      for (let round = 0; round < rounds; round++) {
        await challenge(a, `ca-${round}`, 'node-1');
        const next = { resetCount: 1, restartCount: 0, clock: BigInt(round + 1) };
        const commit = (s: PostgresStore) => s.commitAttestation({ challengeId: `ca-${round}`, nodeId: 'node-1', now: 2000 + round, counters: { expected: counters, next }, decision, onRace });
        const results = await Promise.all([commit(a), commit(b), commit(a), commit(b)]);
        const winners = results.filter((r) => r.outcome.challenge === 'ok');
        expect(winners).toHaveLength(1);
        expect(winners[0]!.outcome).toEqual({ challenge: 'ok', counters: 'ok', ima: 'skipped', revoked: false });
        expect(results.filter((r) => r.outcome.challenge === 'consumed' && r.outcome.counters === 'skipped')).toHaveLength(3);
        counters = next;
      }
      expect((await b.getNode('node-1'))?.counters).toEqual(counters);
      const rows = await b.listDecisions(1, 10_000);
      const v = verifyChain(rows);
      expect(v.problems).toEqual([]);
      expect(v.count).toBe(rounds * 4);
      expect(rows.filter((r) => r.outcome === 'affirming')).toHaveLength(rounds);
    });

    it('2×200 concurrent appendDecision calls from both stores keep one linear chain with dense seqs', async () => {
      const a = await open();
      const b = await open();
      const append = (s: PostgresStore, who: string, i: number) => s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: i, body: { who, i } });
      const [ra, rb] = await Promise.all([
        Promise.all(Array.from({ length: 200 }, (_, i) => append(a, 'a', i))),
        Promise.all(Array.from({ length: 200 }, (_, i) => append(b, 'b', i))),
      ]);
      const seqs = [...ra, ...rb].map((r) => r.seq).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
      const rows = await a.listDecisions(1, 10_000);
      const v = verifyChain(rows);
      expect(v.problems).toEqual([]);
      expect(v.count).toBe(400);
      // What each caller was told is what the ledger holds.
      for (const r of [...ra, ...rb]) expect(Buffer.from(rows[r.seq - 1]!.hash).equals(Buffer.from(r.hash))).toBe(true);
      expect(Buffer.from((await b.ledgerHead())!.hash).equals(Buffer.from(v.head.hash))).toBe(true);
    });

    it('appends in flight from several stores while another appends one by one: still one chain', async () => {
      const s = await Promise.all([open(), open(), open()]);
      const work = s.map((st, k) =>
        (async () => {
          for (let i = 0; i < 40; i++) await st.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: i, body: { k, i } });
        })(),
      );
      await Promise.all(work);
      const v = verifyChain(await s[0]!.listDecisions(1, 10_000));
      expect(v.ok).toBe(true);
      expect(v.count).toBe(120);
    });
  });

  describe('an outage: the server stops under load and comes back', () => {
    it('every call rejects with STORE_UNAVAILABLE (fast, never a default value), and the same store works again after the restart', async () => {
      const s = await open({ connectTimeoutMs: 2000, statementTimeoutMs: 5000 });
      await s.enrollNode(node(1));
      await challenge(s, 'before', 'node-1');
      const seen = { ok: 0, unavailable: 0, wrong: [] as string[] };
      let stopLoad = false;
      const load = async (k: number): Promise<void> => {
        for (let i = 0; !stopLoad; i++) {
          try {
            if (k % 2 === 0) {
              const n = await s.getNode('node-1');
              if (n?.nodeId !== 'node-1') seen.wrong.push(`getNode gave ${JSON.stringify(n)}`);
            } else {
              const r = await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: i, body: { k, i } });
              if (!(r.seq >= 1)) seen.wrong.push(`append gave ${JSON.stringify(r)}`);
            }
            seen.ok++;
          } catch (e) {
            if (e instanceof UnavailableError && e.code === 'STORE_UNAVAILABLE') seen.unavailable++;
            else seen.wrong.push(String(e));
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      };
      const workers = Array.from({ length: 4 }, (_, k) => load(k));
      while (seen.ok < 50) await new Promise((r) => setTimeout(r, 10));

      await server.stop();
      try {
        const calls: [string, () => Promise<unknown>][] = [
          ['getNode', () => s.getNode('node-1')],
          ['getNodeByAkName', () => s.getNodeByAkName(node(1).akName)],
          ['enrollNode', () => s.enrollNode(node(2))],
          ['updateQuoteCounters', () => s.updateQuoteCounters('node-1', null, { resetCount: 0, restartCount: 0, clock: 0n }, 1)],
          ['listNodes', () => s.listNodes(null, 10)],
          ['revokeNode', () => s.revokeNode('node-1', 'x', 1)],
          ['getPendingEnrollment', () => s.getPendingEnrollment('e')],
          ['completeEnrollment', () => s.completeEnrollment('e', 1)],
          ['createPendingSnpEnrollment', () => s.createPendingSnpEnrollment(pendingSnp('e'))],
          ['takePendingSnpEnrollment', () => s.takePendingSnpEnrollment('e', 1)],
          ['getChallenge', () => s.getChallenge('before')],
          ['consumeChallenge', () => s.consumeChallenge('before', 'node-1', 2000)],
          ['attestationInputs', () => s.attestationInputs('before', 'node-1')],
          ['deleteExpired', () => s.deleteExpired(1)],
          ['putPolicy', () => s.putPolicy('p', 'doc', 1)],
          ['getAssignedPolicy', () => s.getAssignedPolicy('g')],
          ['appendDecision', () => s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: {} })],
          ['appendDecision', () => s.commitAttestation({ challengeId: 'before', nodeId: 'node-1', now: 2000, counters: null, decision, onRace })],
          ['getDecision', () => s.getDecision(1)],
          ['listDecisions', () => s.listDecisions(1, 10)],
          ['ledgerHead', () => s.ledgerHead()],
          ['lastDecision', () => s.lastDecision('heartbeat')],
          ['listSecrets', () => s.listSecrets()],
          ['schemaVersion', () => s.schemaVersion()],
        ];
        for (const [name, call] of calls) {
          const t0 = Date.now();
          await expectCode(call(), UnavailableError, 'STORE_UNAVAILABLE', new RegExp(`store: ${name} failed`));
          expect(Date.now() - t0).toBeLessThan(3000);
        }
        // A new store cannot open either.
        await expectCode(PostgresStore.open({ url }), UnavailableError, 'STORE_UNAVAILABLE', /store: open failed/);
      } finally {
        await server.restart();
      }

      // Same store object, no reopen: the pool connects afresh.
      expect((await s.getNode('node-1'))?.nodeId).toBe('node-1');
      expect((await s.consumeChallenge('before', 'node-1', 2000)).ok).toBe(true);
      const after = await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: 1, body: { after: true } });
      stopLoad = true;
      await Promise.all(workers);

      expect(seen.wrong).toEqual([]);
      expect(seen.unavailable).toBeGreaterThan(0);
      // Appends that failed left no gap and no fork: one chain whose head is the last append.
      const rows = await s.listDecisions(1, 10_000);
      const v = verifyChain(rows);
      expect(v.problems).toEqual([]);
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      expect(after.seq).toBeLessThanOrEqual(v.count);
    });
  });

  describe('wiring: vouch verifier start --database-url', () => {
    it('the flag, else VOUCH_DATABASE_URL, selects the PostgreSQL store; anything but postgres:// is refused without echoing it', () => {
      const opts = withSnpKdsOptions(new Command().exitOverride()).parse(['--database-url', 'postgresql://v:pw@db/vouch'], { from: 'user' }).opts();
      expect(opts['databaseUrl']).toBe('postgresql://v:pw@db/vouch');
      expect(databaseUrl(undefined, {})).toBeUndefined();
      expect(databaseUrl(undefined, { VOUCH_DATABASE_URL: '' })).toBeUndefined();
      expect(databaseUrl(undefined, { VOUCH_DATABASE_URL: 'postgres://v:pw@env/vouch' })).toBe('postgres://v:pw@env/vouch');
      expect(databaseUrl('postgresql://flag/vouch', { VOUCH_DATABASE_URL: 'postgres://env/vouch' })).toBe('postgresql://flag/vouch');
      for (const [flag, env, field] of [['mysql://u:hunter2@h/db', {}, '--database-url'], [undefined, { VOUCH_DATABASE_URL: 'sqlite:hunter2' }, 'VOUCH_DATABASE_URL']] as const) {
        let e: unknown;
        try {
          databaseUrl(flag, env);
        } catch (x) {
          e = x;
        }
        expect(e).toBeInstanceOf(MisuseError);
        expect((e as MisuseError).field).toBe(field);
        expect((e as Error).message).not.toContain('hunter2');
      }
      const base: VerifierStartOptions = { dataDir: '/d', listen: '127.0.0.1:0', tpmCaDir: [], policy: ['g=p.yaml'], verifierId: 'v', challengeTtl: '60', rateLimit: '10', logLevel: 'silent' };
      expect(verifierConfig({ ...base, databaseUrl: 'postgres://db/vouch' }).databaseUrl).toBe('postgres://db/vouch');
    });

    it('startServer with databaseUrl keeps its state in PostgreSQL; the data directory holds the signing key, no SQLite file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vouch-pg-server-'));
      const policy = fileURLToPath(new URL('../../policies/demo.yaml', import.meta.url));
      try {
        const v = await startServer({
          dataDir: join(dir, 'verifier'),
          databaseUrl: url,
          host: '127.0.0.1',
          port: 0,
          verifierId: 'pg-replica',
          tpmCaDirs: [],
          policies: new Map([['default', policy]]),
          requireEkCertificate: false,
          challengeTtlSeconds: 60,
          rateLimitPerMinute: 1000,
          logLevel: 'silent',
          staleCheckSeconds: 0,
        });
        try {
          const assigned = (await sql("SELECT policy_digest FROM policy_assignments WHERE group_name = 'default'")).rows;
          expect(assigned).toHaveLength(1);
          // /healthz reads the schema version from the store: PostgreSQL's.
          const res = await fetch(`${v.url}/healthz`);
          expect(res.status).toBe(200);
          expect(await res.json()).toEqual({ ok: true, schema: MIGRATIONS.length });
        } finally {
          await v.close();
        }
        expect(readdirSync(join(dir, 'verifier')).some((f) => f.endsWith('.sqlite'))).toBe(false);
        expect(existsSync(join(dir, 'verifier'))).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
