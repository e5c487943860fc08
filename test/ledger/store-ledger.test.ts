/**
 * Tamper detection end to end: decisions appended through the store, then altered through a
 * raw database handle (dropping the append-only triggers first, as anyone with write access to
 * the file can), then checked with verifyChain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyChain, type ChainProblem } from '../../src/ledger/index.js';
import { SQLITE_DEFAULT_FILE, SqliteStore } from '../../src/store/index.js';

let dir: string;
let store: SqliteStore;
let db: Database.Database;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-ledger-'));
  store = await SqliteStore.open({ dataDir: dir });
  for (let i = 1; i <= 100; i++) {
    await store.appendDecision({
      kind: i % 3 === 0 ? 'refusal' : 'appraise',
      nodeId: `node-${i % 4}`,
      outcome: i % 3 === 0 ? 'refused' : 'affirming',
      time: 1_700_000_000_000 + i * 1000,
      body: { evidence: new Uint8Array(32).fill(i), policy: 'a'.repeat(64), reasons: i % 3 === 0 ? [{ code: 'TPM_QUOTE_PCR_DIGEST_MISMATCH' }] : [] },
    });
  }
  db = new Database(join(dir, SQLITE_DEFAULT_FILE));
  db.exec('DROP TRIGGER decisions_append_only_update; DROP TRIGGER decisions_append_only_delete;');
});

afterEach(async () => {
  db.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const check = async () => verifyChain(await store.listDecisions(1, 10_000));
const at = (ps: readonly ChainProblem[], seq: number): string[] => ps.filter((p) => p.seq === seq).map((p) => p.code);

describe('ledger stored in SQLite', () => {
  it('a chain of 100 decisions verifies', async () => {
    const r = await check();
    expect(r.problems).toEqual([]);
    expect(r.count).toBe(100);
  });

  it.each([0, 17, 60])('flipping one byte of entry 42 (byte %i) is LEDGER_HASH_MISMATCH at seq 42', async (offset) => {
    const row = db.prepare('SELECT entry FROM decisions WHERE seq = 42').get() as { entry: Buffer };
    const entry = Buffer.from(row.entry);
    entry[offset] = (entry[offset] as number) ^ 0x01;
    db.prepare('UPDATE decisions SET entry = ? WHERE seq = 42').run(entry);
    const r = await check();
    expect(r.ok).toBe(false);
    expect(at(r.problems, 42)).toContain('LEDGER_HASH_MISMATCH');
    expect(at(r.problems, 43)).toEqual(['LEDGER_LINK_BROKEN']);
    expect(r.problems.every((p) => p.seq === 42 || p.seq === 43)).toBe(true);
  });

  it('rewriting entry 42 and its hash column together is caught at seq 43', async () => {
    const row = db.prepare('SELECT entry FROM decisions WHERE seq = 42').get() as { entry: Buffer };
    const entry = Buffer.from(row.entry);
    entry[entry.length - 1] = (entry[entry.length - 1] as number) ^ 0x01;
    const { createHash } = await import('node:crypto');
    db.prepare('UPDATE decisions SET entry = ?, hash = ? WHERE seq = 42').run(entry, createHash('sha256').update(entry).digest());
    const r = await check();
    expect(r.problems.map((p) => `${p.code}@${p.seq}`)).toEqual(['LEDGER_LINK_BROKEN@43']);
  });

  it('deleting a row is LEDGER_SEQUENCE_GAP and LEDGER_LINK_BROKEN at the next seq', async () => {
    db.prepare('DELETE FROM decisions WHERE seq = 57').run();
    const r = await check();
    expect(r.problems.map((p) => `${p.code}@${p.seq}`)).toEqual(['LEDGER_SEQUENCE_GAP@58', 'LEDGER_LINK_BROKEN@58']);
  });

  it('renumbering rows to close the gap is caught by the entries themselves', async () => {
    db.prepare('DELETE FROM decisions WHERE seq = 57').run();
    for (let s = 58; s <= 100; s++) db.prepare('UPDATE decisions SET seq = ? WHERE seq = ?').run(s - 1, s);
    const r = await check();
    expect(r.ok).toBe(false);
    expect(at(r.problems, 57)).toEqual(['LEDGER_SEQUENCE_GAP', 'LEDGER_LINK_BROKEN']);
    expect(r.problems.find((p) => p.seq === 57)?.message).toMatch(/row at seq 57 holds the entry for seq 58/);
  });

  it('an append after tampering continues from the stored head and does not hide the damage', async () => {
    db.prepare('DELETE FROM decisions WHERE seq = 10').run();
    const next = await store.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'recorded', time: 1, body: {} });
    expect(next.seq).toBe(101);
    const r = await check();
    expect(r.problems.map((p) => `${p.code}@${p.seq}`)).toEqual(['LEDGER_SEQUENCE_GAP@11', 'LEDGER_LINK_BROKEN@11']);
  });
});
