/**
 * Schema version 4 (node revocation, decisions by kind): a version 3 database upgrades in place,
 * its nodes stay unrevoked, the checksum of version 4 is recorded and checked, and the new
 * store methods work on the migrated data.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SQLITE_DEFAULT_FILE, SqliteStore } from '../../src/store/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-v4-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sum = (sql: string): string => createHash('sha256').update(sql, 'utf8').digest('hex');

/** A database as vouch wrote it before version 4: migrations 1..3, one node, one decision. */
function versionThree(): void {
  const db = new Database(join(dir, SQLITE_DEFAULT_FILE));
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL);');
  for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
    db.exec(m.sqlite);
    db.prepare('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)').run(m.version, m.name, sum(m.sqlite));
  }
  db.prepare('INSERT INTO nodes (node_id, group_name, ek_public, ek_cert, ak_public, ak_name, enrolled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run('tpm-old', 'gpu', Buffer.from([1]), null, Buffer.from([2]), Buffer.from([0, 0x0b, 9]), 500, 500);
  db.close();
}

describe('migration v3 → v4', () => {
  it('upgrades in place: old nodes are not revoked, v4 is recorded with its checksum, revocation works', async () => {
    versionThree();
    const s = await SqliteStore.open({ dataDir: dir });
    try {
      expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
      expect(await s.getNode('tpm-old')).toMatchObject({ nodeId: 'tpm-old', kind: 'tpm', revokedAt: null, revokedReason: null });
      const r = await s.revokeNode('tpm-old', 'lost', 1000);
      expect(r).toMatchObject({ ok: true, node: { revokedAt: 1000, revokedReason: 'lost' } });
      expect(await s.revokeNode('tpm-old', 'again', 1001)).toEqual({ ok: false, reason: 'already-revoked' });
      expect(await s.revokeNode('tpm-none', 'x', 1001)).toEqual({ ok: false, reason: 'unknown' });
      expect(await s.readmitNode('tpm-old', 1002)).toMatchObject({ ok: true, node: { revokedAt: null, revokedReason: null } });
      expect(await s.readmitNode('tpm-old', 1003)).toEqual({ ok: false, reason: 'not-revoked' });
      expect((await s.listNodes(null, 10)).map((n) => n.nodeId)).toEqual(['tpm-old']);
      await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time: 1, body: {} });
      await s.appendDecision({ kind: 'revocation', nodeId: 'tpm-old', outcome: 'revoked', time: 2, body: {} });
      await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time: 3, body: {} });
      expect(await s.lastDecision('heartbeat')).toMatchObject({ seq: 3, time: 3 });
      expect(await s.lastDecision('revocation', 'tpm-old')).toMatchObject({ seq: 2 });
      expect(await s.lastDecision('appraise', 'tpm-old')).toBeNull();
    } finally {
      await s.close();
    }
    const db = new Database(join(dir, SQLITE_DEFAULT_FILE));
    const v4 = MIGRATIONS.find((m) => m.version === 4)!;
    expect(db.prepare('SELECT name, checksum FROM schema_migrations WHERE version = 4').get()).toEqual({ name: v4.name, checksum: sum(v4.sqlite) });
    // revoked_at and revoked_reason go together: a row with only one is refused on read.
    db.prepare("UPDATE nodes SET revoked_at = 5, revoked_reason = NULL WHERE node_id = 'tpm-old'").run();
    // An edited version 4 is refused like any other.
    db.prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 4").run();
    db.close();
    await expect(SqliteStore.open({ dataDir: dir })).rejects.toMatchObject({ code: 'STORE_SCHEMA_MISMATCH' });
  });

  it('a half-revoked row (revoked_at without a reason) reads as a damaged database', async () => {
    versionThree();
    (await SqliteStore.open({ dataDir: dir })).close();
    const db = new Database(join(dir, SQLITE_DEFAULT_FILE));
    db.prepare("UPDATE nodes SET revoked_at = 5 WHERE node_id = 'tpm-old'").run();
    db.close();
    const s = await SqliteStore.open({ dataDir: dir });
    try {
      await expect(s.getNode('tpm-old')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    } finally {
      await s.close();
    }
  });
});
