/**
 * The {@link Store} contract as tests, run against every implementation (sqlite.test.ts,
 * postgres.test.ts): the same inputs give the same results, the same refusals and the same
 * STORE_UNAVAILABLE failures, whatever the database. What only one database can show (file
 * damage, WAL, advisory locks, an outage) stays in that store's own file.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MisuseError, UnavailableError, VouchError, type ErrorCode } from '../../src/lib/errors.js';
import { GENESIS_PREV, decodeLedgerEntry, verifyChain } from '../../src/ledger/index.js';
import type { DecisionRecord, NewNode, NewPendingEnrollment, PendingSnpEnrollment, SecretRecord, Store } from '../../src/store/types.js';

/** What the contract needs from a store implementation's test setup. */
export interface StoreBackend {
  /** Prepares an empty database for the next test. */
  fresh(): Promise<void>;
  /** Opens a store on the current test's database; each call is another instance with its own connection(s). */
  open(): Promise<Store>;
  /** Runs SQL on the current database through a connection of its own: what an operator or an attacker with database access has. */
  exec(sql: string): Promise<void>;
  /** A literal of the dialect for the given bytes (SQLite x'01', PostgreSQL '\x01'::bytea). */
  blob(hex: string): string;
  /** What the failure of a call on a closed store says after `store: <method> failed: `. */
  readonly closedDetail: RegExp;
  /** Called after each test, once its stores are closed. */
  cleanup?(): Promise<void>;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Awaits `p` and checks that it rejects with `cls` and `code` (and a message matching `msg`). */
export async function expectCode(p: Promise<unknown>, cls: typeof VouchError, code: ErrorCode, msg?: RegExp): Promise<void> {
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

/** A TPM node. */
export function node(i: number, over: Partial<NewNode> = {}): NewNode {
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

/** An SNP-only node: empty TPM columns, akName 0x53 0x4E || SHA-256(nodeKey). */
export function snpNode(i: number, over: Partial<NewNode> = {}): NewNode {
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

export function pendingSnp(id: string, over: Partial<PendingSnpEnrollment> = {}): PendingSnpEnrollment {
  return { enrollmentId: id, nodeId: 'snp-1', group: 'cvm', nodeKey: new Uint8Array([0x30, 0x59, 1, 1]), nonce: new Uint8Array(32).fill(4), createdAt: 1000, expiresAt: 2000, ...over };
}

export async function challenge(s: Store, id: string, nodeId: string, expiresAt = 10_000): Promise<void> {
  await s.createChallenge({
    challengeId: id,
    nodeId,
    nonce: new Uint8Array(32).fill(9),
    params: { pcrs: { sha256: [0, 1, 7] } },
    createdAt: 1000,
    expiresAt,
  });
}

/** A declarative commit: the decision when every step succeeds, and what each lost race adds. */
export const onRace = {
  challenge: { unknown: { code: 'race-unknown' }, 'wrong-node': { code: 'race-wrong-node' }, consumed: { code: 'race-consumed' }, expired: { code: 'race-expired' } },
  counters: { code: 'race-counters' },
  ima: { code: 'race-ima' },
  revoked: { code: 'race-revoked' },
};
export const decision = { kind: 'appraise' as const, nodeId: 'node-1', outcome: 'affirming', time: 2000, body: { failures: [] } };
export const outcomeOf = (r: { outcome: { challenge: string; counters: string; ima: string } }): string => `${r.outcome.challenge}/${r.outcome.counters}/${r.outcome.ima}`;

/** The outcome and failure codes of the recorded decision at `seq`. */
export async function recorded(s: Store, seq: number): Promise<{ outcome: string; failures: string[] }> {
  const row = await s.getDecision(seq);
  const entry = decodeLedgerEntry(row!.entry);
  return { outcome: row!.outcome, failures: (entry.body['failures'] as Array<{ code: string }>).map((f) => f.code) };
}

/** Registers the contract's tests (call inside a describe of the implementation's test file). */
export function storeContract(backend: StoreBackend): void {
  let stores: Store[] = [];

  beforeEach(async () => {
    stores = [];
    await backend.fresh();
  });

  afterEach(async () => {
    for (const s of stores) await s.close();
    await backend.cleanup?.();
  });

  async function open(): Promise<Store> {
    const s = await backend.open();
    stores.push(s);
    return s;
  }

  describe('nodes', () => {
    it('enrolls and looks a node up by id and by AK name', async () => {
      const s = await open();
      const r = await s.enrollNode(node(2));
      expect(r.ok).toBe(true);
      const got = await s.getNode('node-2');
      expect(got).toEqual({ ...node(2), kind: 'tpm', nodeKey: null, counters: null, lastQuoteAt: null, updatedAt: 1000, revokedAt: null, revokedReason: null });
      expect(r).toEqual({ ok: true, node: got });
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
      // Both taken: the id is reported first.
      expect(await s.enrollNode(node(1))).toEqual({ ok: false, reason: 'node-exists' });
      expect(await s.getNode('node-5')).toBeNull();
    });

    it('two store instances enrolling the same node at once: exactly one enrolls', async () => {
      const a = await open();
      const b = await open();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).enrollNode(node(1))));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'node-exists')).toHaveLength(19);
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
      // The largest UINT64 clock and UINT32 counts survive the round trip.
      const max = { resetCount: 0xffff_ffff, restartCount: 0xffff_ffff, clock: 2n ** 64n - 1n };
      expect(await s.updateQuoteCounters('node-1', c2, max, 2003)).toEqual({ ok: true });
      expect((await s.getNode('node-1'))?.counters).toEqual(max);
    });

    it('revokes and re-admits by compare-and-set, and lists nodes in id order by pages', async () => {
      const s = await open();
      for (const i of [3, 1, 2]) await s.enrollNode(node(i));
      await s.enrollNode(node(10, { nodeId: 'Node-Z' }));
      await s.enrollNode(node(11, { nodeId: 'node-é' }));
      const r = await s.revokeNode('node-1', 'lost', 1500);
      expect(r).toEqual({ ok: true, node: { ...(await s.getNode('node-1'))!, revokedAt: 1500, revokedReason: 'lost', updatedAt: 1500 } });
      expect(await s.revokeNode('node-1', 'again', 1501)).toEqual({ ok: false, reason: 'already-revoked' });
      expect(await s.revokeNode('node-404', 'x', 1501)).toEqual({ ok: false, reason: 'unknown' });
      expect(await s.readmitNode('node-1', 1502)).toMatchObject({ ok: true, node: { revokedAt: null, revokedReason: null, updatedAt: 1502 } });
      expect(await s.readmitNode('node-1', 1503)).toEqual({ ok: false, reason: 'not-revoked' });
      expect(await s.readmitNode('node-404', 1503)).toEqual({ ok: false, reason: 'unknown' });
      await expectCode(s.revokeNode('node-2', '', 1), MisuseError, 'MISUSE_ARGUMENT', /reason/);
      // Code-point order (SQLite's BINARY collation), whatever the database's locale.
      expect((await s.listNodes(null, 100)).map((n) => n.nodeId)).toEqual(['Node-Z', 'node-1', 'node-2', 'node-3', 'node-é']);
      expect((await s.listNodes(null, 2)).map((n) => n.nodeId)).toEqual(['Node-Z', 'node-1']);
      expect((await s.listNodes('node-1', 2)).map((n) => n.nodeId)).toEqual(['node-2', 'node-3']);
      expect(await s.listNodes('node-é', 2)).toEqual([]);
      await expectCode(s.listNodes(null, 0), MisuseError, 'MISUSE_ARGUMENT');
      await expectCode(s.listNodes(null, 10_001), MisuseError, 'MISUSE_ARGUMENT');
    });

    it('refuses ids that are not 1..256 characters and times that are not epoch milliseconds', async () => {
      const s = await open();
      await expectCode(s.getNode(''), MisuseError, 'MISUSE_ARGUMENT', /nodeId/);
      await expectCode(s.getNode('x'.repeat(257)), MisuseError, 'MISUSE_ARGUMENT', /nodeId/);
      await expectCode(s.enrollNode(node(1, { enrolledAt: 1.5 })), MisuseError, 'MISUSE_ARGUMENT', /enrolledAt/);
      await expectCode(s.getNodeByAkName('x' as unknown as Uint8Array), MisuseError, 'MISUSE_ARGUMENT', /akName/);
      await expectCode(s.consumeChallenge('c', 'node-1', -1), MisuseError, 'MISUSE_ARGUMENT', /now/);
      expect(await s.getNode('x'.repeat(256))).toBeNull();
    });
  });

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
      await expect(backend.exec("UPDATE nodes SET kind = 'tdx' WHERE node_id = 'node-2'")).rejects.toThrow(/CHECK constraint failed|violates check constraint/);
      await backend.exec("UPDATE nodes SET node_key = NULL WHERE node_id = 'snp-1'");
      await expectCode(s.getNode('snp-1'), UnavailableError, 'STORE_UNAVAILABLE', /nodes\.node_key holds NULL for an SNP node/);
      await backend.exec(`UPDATE nodes SET node_key = ${backend.blob('01')} WHERE node_id = 'node-2'`);
      await expectCode(s.getNode('node-2'), UnavailableError, 'STORE_UNAVAILABLE', /a key for a TPM node/);
    });

    it('damaged counters, revocation or IMA rows are STORE_UNAVAILABLE, never a default', async () => {
      const s = await open();
      await s.enrollNode(node(1));
      await s.enrollNode(node(2));
      await s.updateQuoteCounters('node-1', null, { resetCount: 1, restartCount: 0, clock: 5n }, 2000);
      await backend.exec("UPDATE nodes SET clock = '12x' WHERE node_id = 'node-1'");
      await expectCode(s.getNode('node-1'), UnavailableError, 'STORE_UNAVAILABLE', /nodes\.clock holds a value that is not a decimal UINT64/);
      await backend.exec("UPDATE nodes SET revoked_at = 5 WHERE node_id = 'node-2'");
      await expectCode(s.getNode('node-2'), UnavailableError, 'STORE_UNAVAILABLE', /revoked_reason/);
      await expectCode(s.listNodes(null, 10), UnavailableError, 'STORE_UNAVAILABLE');
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

    it('two store instances taking the same SNP enrollment: exactly one gets it', async () => {
      const a = await open();
      const b = await open();
      await a.createPendingSnpEnrollment(pendingSnp('e1'));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).takePendingSnpEnrollment('e1', 1500)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'unknown')).toHaveLength(19);
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

    it('two store instances completing the same enrollment: exactly one completes', async () => {
      const a = await open();
      const b = await open();
      await a.createPendingEnrollment(pending());
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).completeEnrollment('enr-1', 2000)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'unknown')).toHaveLength(19);
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

    it('requires a 32-byte secret hash; a reused id is refused by the database', async () => {
      const s = await open();
      await expectCode(s.createPendingEnrollment(pending({ secretSha256: new Uint8Array(16) })), MisuseError, 'MISUSE_ARGUMENT', /32 bytes/);
      await s.createPendingEnrollment(pending());
      await expectCode(s.createPendingEnrollment(pending()), UnavailableError, 'STORE_UNAVAILABLE', /createPendingEnrollment failed/);
    });
  });

  describe('challenges', () => {
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
      expect(await s.getChallenge('ch-1')).toEqual(first.ok ? first.challenge : null);
      expect(await s.getChallenge('ch-404')).toBeNull();
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

    it('two store instances on the same database: exactly one wins', async () => {
      const a = await open();
      const b = await open();
      await a.enrollNode(node(1));
      await challenge(a, 'ch-race', 'node-1');
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).consumeChallenge('ch-race', 'node-1', 2000)));
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

    it('attestationInputs reads the challenge (unconsumed), the node and its IMA state, each null when absent', async () => {
      const s = await open();
      expect(await s.attestationInputs('ch-1', 'node-1')).toEqual({ challenge: null, node: null, imaState: null });
      await s.enrollNode(node(1));
      await challenge(s, 'ch-1', 'node-1');
      const inputs = await s.attestationInputs('ch-1', 'node-1');
      expect(inputs).toEqual({ challenge: await s.getChallenge('ch-1'), node: await s.getNode('node-1'), imaState: null });
      expect(inputs.challenge?.consumedAt).toBeNull();
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
      expect(await s.getPolicy('b'.repeat(64))).toBeNull();
    });
  });

  describe('key broker secrets', () => {
    const secret = (id: string, over: Partial<SecretRecord> = {}): SecretRecord => ({
      secretId: id,
      tenant: 'acme',
      ciphertext: new Uint8Array(40).fill(7),
      nonce: new Uint8Array(12).fill(1),
      releasePolicy: '{"groups":["gpu"]}',
      createdAt: 1000,
      updatedAt: 1000,
      ...over,
    });

    it('puts, replaces (keeping the creation time), lists in id order and deletes', async () => {
      const s = await open();
      await s.putSecret(secret('b.key'));
      await s.putSecret(secret('a-key', { tenant: null }));
      expect(await s.getSecret('b.key')).toEqual(secret('b.key'));
      await s.putSecret(secret('b.key', { ciphertext: new Uint8Array(16), createdAt: 5000, updatedAt: 5000 }));
      expect(await s.getSecret('b.key')).toEqual(secret('b.key', { ciphertext: new Uint8Array(16), createdAt: 1000, updatedAt: 5000 }));
      expect((await s.listSecrets()).map((x) => [x.secretId, x.tenant])).toEqual([['a-key', null], ['b.key', 'acme']]);
      expect(await s.deleteSecret('a-key')).toBe(true);
      expect(await s.deleteSecret('a-key')).toBe(false);
      expect(await s.getSecret('a-key')).toBeNull();
      await expectCode(s.putSecret(secret('Bad Id')), MisuseError, 'MISUSE_ARGUMENT', /secretId/);
      await expectCode(s.putSecret(secret('c', { nonce: new Uint8Array(8) })), MisuseError, 'MISUSE_ARGUMENT', /nonce/);
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
      expect(rows[6]?.nodeId).toBeNull();
      const v = verifyChain(rows);
      expect(v.problems).toEqual([]);
      expect(v.ok).toBe(true);
      expect(hex(v.head.hash)).toBe(hex((await s.ledgerHead())?.hash ?? new Uint8Array()));
      expect(await s.getDecision(101)).toBeNull();
    });

    it('lastDecision finds the last of a kind, about a node or about any', async () => {
      const s = await open();
      expect(await s.lastDecision('heartbeat')).toBeNull();
      await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time: 1, body: {} });
      await s.appendDecision({ kind: 'revocation', nodeId: 'node-1', outcome: 'revoked', time: 2, body: {} });
      await s.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time: 3, body: {} });
      expect(await s.lastDecision('heartbeat')).toMatchObject({ seq: 3, time: 3 });
      expect(await s.lastDecision('revocation', 'node-1')).toMatchObject({ seq: 2 });
      expect(await s.lastDecision('revocation')).toMatchObject({ seq: 2 });
      expect(await s.lastDecision('appraise', 'node-1')).toBeNull();
      await expectCode(s.lastDecision('launch' as 'enroll'), MisuseError, 'MISUSE_ARGUMENT', /unknown decision kind/);
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
      const again = await open();
      expect((await again.ledgerHead())?.seq).toBe(1);
    });

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
      expect((await s.attestationInputs('i-1', 'node-1')).imaState).toEqual(st(10, 1));
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
      await expectCode(s.getDecision(0), MisuseError, 'MISUSE_ARGUMENT');
      await expectCode(s.listDecisions(1, 10_001), MisuseError, 'MISUSE_ARGUMENT');
      expect(await s.ledgerHead()).toBeNull();
    });

    it('the database refuses updates and deletes of ledger rows', async () => {
      const s = await open();
      await s.appendDecision({ kind: 'enroll', nodeId: null, outcome: 'ok', time: 1, body: {} });
      await expect(backend.exec("UPDATE decisions SET outcome = 'x' WHERE seq = 1")).rejects.toThrow(/append-only/);
      await expect(backend.exec('DELETE FROM decisions WHERE seq = 1')).rejects.toThrow(/append-only/);
      expect((await s.getDecision(1))?.outcome).toBe('ok');
    });
  });

  describe('ledger checkpoints and retained inputs (schema version 6)', () => {
    const cp = (treeSize: number, fill: number, jws = `h.p${treeSize}.s${fill}`) => ({ treeSize, rootHash: new Uint8Array(32).fill(fill), signedAt: 1000 + treeSize, kid: 'k1', jws });
    const input = (text: string, kind = 'evidence') => {
      const bytes = new TextEncoder().encode(text);
      return { digest: createHash('sha256').update(bytes).digest('hex'), kind, bytes };
    };

    it('keeps the first checkpoint of a tree size, lists them in size order and finds the latest', async () => {
      const a = await open();
      const b = await open();
      expect(await a.latestCheckpoint()).toBeNull();
      expect(await a.putCheckpoint(cp(2, 1))).toEqual(cp(2, 1));
      // Another replica signed the same size: the stored one is kept and returned.
      expect(await b.putCheckpoint(cp(2, 9, 'other'))).toEqual(cp(2, 1));
      await b.putCheckpoint(cp(10, 3));
      await a.putCheckpoint(cp(5, 2));
      expect((await a.listCheckpoints(0, 100)).map((c) => c.treeSize)).toEqual([2, 5, 10]);
      expect((await a.listCheckpoints(5, 1)).map((c) => c.treeSize)).toEqual([5]);
      expect(await b.latestCheckpoint()).toEqual(cp(10, 3));
      await expectCode(a.putCheckpoint({ ...cp(3, 1), rootHash: new Uint8Array(31) }), MisuseError, 'MISUSE_ARGUMENT', /rootHash/);
      await expectCode(a.putCheckpoint(cp(0, 1)), MisuseError, 'MISUSE_ARGUMENT', /treeSize/);
      await expect(backend.exec('DELETE FROM ledger_checkpoints')).rejects.toThrow(/append-only/);
    });

    it('retains inputs by digest (idempotent), lists them in digest order, prunes bytes but keeps digests', async () => {
      const s = await open();
      const [x, y, z] = [input('x'), input('y', 'appraisal-context'), input('z')];
      await s.putInputs([x, y], 1000);
      await s.putInputs([x, z], 2000); // x is left as it was
      expect(await s.getInput(x.digest)).toEqual({ digest: x.digest, kind: 'evidence', bytes: x.bytes, storedAt: 1000, prunedAt: null });
      expect(await s.getInput('0'.repeat(64))).toBeNull();
      const sorted = [x, y, z].map((i) => i.digest).sort();
      expect((await s.listInputs(null, 10)).map((i) => i.digest)).toEqual(sorted);
      expect((await s.listInputs(sorted[0]!, 1)).map((i) => i.digest)).toEqual([sorted[1]]);
      expect(await s.pruneInputs(1500, 3000)).toBe(2);
      expect(await s.pruneInputs(1500, 3001)).toBe(0);
      expect(await s.getInput(y.digest)).toEqual({ digest: y.digest, kind: 'appraisal-context', bytes: null, storedAt: 1000, prunedAt: 3000 });
      expect((await s.getInput(z.digest))?.bytes).toEqual(z.bytes);
      await expectCode(s.putInputs([{ ...x, digest: y.digest }], 1), MisuseError, 'MISUSE_ARGUMENT', /do not hash to its digest/);
      await expectCode(s.getInput('ABC'), MisuseError, 'MISUSE_ARGUMENT');
    });

    it('a decision retains its inputs in the transaction that appends it; a bad input fails its own append only', async () => {
      const s = await open();
      const ev = input('evidence-1');
      const good = s.appendDecision({ kind: 'appraise', nodeId: 'node-1', outcome: 'affirming', time: 5000, body: { evidence: ev.digest }, inputs: [ev] });
      const bad = s.appendDecision({ kind: 'appraise', nodeId: 'node-1', outcome: 'affirming', time: 5001, body: {}, inputs: [{ ...ev, kind: 'Bad Kind' }] });
      await expectCode(bad, MisuseError, 'MISUSE_ARGUMENT', /kind/);
      expect((await good).seq).toBe(1);
      expect(await s.getInput(ev.digest)).toMatchObject({ kind: 'evidence', bytes: ev.bytes, storedAt: 5000 });
      expect((await s.listDecisions(1, 10)).length).toBe(1);
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
        await expectCode(call(), UnavailableError, 'STORE_UNAVAILABLE', new RegExp(`store: ${name} failed: ${backend.closedDetail.source}`));
      }
    });
  });
}
