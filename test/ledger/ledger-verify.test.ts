/**
 * The lineage ledger end to end (issue #8): checkpoints signed by the verifier, `vouch ledger
 * export | verify | prove | check-proof`, the proof routes, and every kind of tampering named by
 * its code — an altered byte, a rewritten entry, a deleted, repeated or reordered entry, a cut
 * tail, a re-hashed fork, a forged checkpoint, a damaged export, and the same on the database.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type CliIo } from '../../src/cli/main.js';
import { buildLedgerEntry, decodeLedgerEntry, merkleLeafHash, verifyMerkleConsistency, verifyMerkleInclusion } from '../../src/ledger/index.js';
import { decodeCheckpoint } from '../../src/ledger/checkpoint.js';
import { verifyLedger } from '../../src/ledger/verify.js';
import { addToken, TokenRegistry } from '../../src/verifier/auth.js';
import { proofPath } from '../../src/verifier/ledger.js';
import { buildEvidence, ekTrustOf, enrollOverHttp, getChallenge, submit, syntheticTpm, testCa, testPolicy, startVerifier, type SyntheticTpm, type TestVerifier } from '../helpers/verifier.js';

let v: TestVerifier;
let work: string;
let token = '';
let adminToken = '';
let tpm: SyntheticTpm;
let nodeId = '';
let clock = 1000n;
const exportFile = (): string => join(work, 'ledger.jsonl');

function io(): CliIo & { out_: () => string; err_: () => string } {
  let out = '';
  let err = '';
  return { out: (s) => void (out += s), err: (s) => void (err += s), out_: () => out, err_: () => err };
}

async function attest(): Promise<number> {
  const challenge = await getChallenge(v.app, nodeId);
  clock += 1000n;
  const res = await submit(v.app, buildEvidence({ challenge, nodeId, ak: tpm.ak, counters: { resetCount: 1, restartCount: 0, clock } }));
  expect(res.statusCode).toBe(200);
  return res.json<{ ledger: { seq: number } }>().ledger.seq;
}

/** `vouch ledger verify --from-export FILE --json` on an export's lines. */
async function verifyLines(lines: string[], extra: string[] = []): Promise<{ status: number; result: { ok: boolean; chain: Array<{ code: string; seq: number }>; checkpoints: { problems: Array<{ code: string }>; verified: number } } | null; err: string }> {
  const f = join(work, `tampered-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(f, `${lines.join('\n')}\n`);
  const c = io();
  const status = await run(['ledger', 'verify', '--from-export', f, '--json', ...extra], c);
  return { status, result: c.out_() === '' ? null : JSON.parse(c.out_()), err: c.err_() };
}

let lines: string[] = [];
const entryLines = (): number[] => lines.map((l, i) => (l.includes('"t":"entry"') ? i : -1)).filter((i) => i >= 0);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'vouch-ledger-'));
  const tokens = join(work, 'tokens.json');
  token = addToken(tokens, { id: 'rp', role: 'relying-party' }, { now: 1 }).token;
  adminToken = addToken(tokens, { id: 'root', role: 'admin' }, { now: 1 }).token;
  const ca = await testCa('CN=vouch ledger CA,O=vouch test');
  v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca), app: { tokens: TokenRegistry.load(tokens) } });
  await v.service.installTrustAnchors();
  tpm = await syntheticTpm(ca);
  nodeId = await enrollOverHttp(v.app, tpm, 'gpu');
  for (let i = 0; i < 5; i++) await attest();
  await v.app.ledger.checkpoint();
  for (let i = 0; i < 4; i++) await attest();
  await v.app.ledger.checkpoint();
  const c = io();
  expect(await run(['ledger', 'export', '--data-dir', v.dir, '--out', exportFile()], c), c.err_()).toBe(0);
  lines = readFileSync(exportFile(), 'utf8').trimEnd().split('\n');
  writeFileSync(join(work, 'jwks.json'), JSON.stringify(v.signer.jwks()));
});
afterAll(async () => {
  await v?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('an untouched ledger', () => {
  it('verifies from the database and from its export, with the keys recorded in it or pinned', async () => {
    const rows = await v.sqlite.listDecisions(1, 10_000);
    const cps = (await v.sqlite.listCheckpoints(1, 100)).map((x) => x.jws);
    expect(cps).toHaveLength(2);
    const r = await verifyLedger({ rows: rows.map((x) => ({ seq: x.seq, entry: x.entry, hash: x.hash })), checkpoints: cps });
    expect(r).toMatchObject({ ok: true, entries: rows.length, unanchored: 0, keys: { source: 'ledger' } });
    expect(r.checkpoints.verified).toBe(2);
    const db = io();
    expect(await run(['ledger', 'verify', '--data-dir', v.dir], db)).toBe(0);
    expect(db.out_()).toContain('OK: the chain, the tree and every checkpoint verify');
    const ex = await verifyLines(lines, ['--jwks', join(work, 'jwks.json')]);
    expect(ex.status, ex.err).toBe(0);
    expect(ex.result).toMatchObject({ ok: true, checkpoints: { verified: 2 } });
  });

  it('a key that is not pinned does not sign checkpoints (LEDGER_CHECKPOINT_KEY_UNKNOWN)', async () => {
    const other = join(work, 'other-jwks.json');
    writeFileSync(other, JSON.stringify({ keys: [{ kid: 'someone-else', kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] }));
    const r = await verifyLines(lines, ['--jwks', other]);
    expect(r.status).toBe(1);
    expect(r.result?.checkpoints.problems.map((p) => p.code)).toEqual(['LEDGER_CHECKPOINT_KEY_UNKNOWN', 'LEDGER_CHECKPOINT_KEY_UNKNOWN']);
  });

  it('inclusion and consistency proofs verify against the signed roots (CLI and HTTP), and fail when altered', async () => {
    const seq = 4;
    const c = io();
    expect(await run(['ledger', 'prove', String(seq), '--data-dir', v.dir], c)).toBe(0);
    const proofFile = join(work, 'proof.json');
    writeFileSync(proofFile, c.out_());
    const hash = (JSON.parse(c.out_()) as { hash: string }).hash;
    const ok = io();
    expect(await run(['ledger', 'check-proof', proofFile, '--jwks', join(work, 'jwks.json'), '--hash', hash], ok), ok.out_()).toBe(0);
    const wrongHash = io();
    expect(await run(['ledger', 'check-proof', proofFile, '--jwks', join(work, 'jwks.json'), '--hash', 'ab'.repeat(32)], wrongHash)).toBe(1);
    expect(wrongHash.out_()).toContain('LEDGER_HASH_MISMATCH');
    const p = JSON.parse(c.out_()) as { path: string[] };
    p.path[0] = 'cd'.repeat(32);
    writeFileSync(proofFile, JSON.stringify(p));
    const bad = io();
    expect(await run(['ledger', 'check-proof', proofFile, '--jwks', join(work, 'jwks.json')], bad)).toBe(1);
    expect(bad.out_()).toContain('LEDGER_PROOF_INVALID');

    // Over HTTP, with a relying-party token; without one, 401.
    expect((await v.app.inject({ method: 'GET', url: `/v1/ledger/proofs/inclusion/${seq}` })).statusCode).toBe(401);
    const res = await v.app.inject({ method: 'GET', url: `/v1/ledger/proofs/inclusion/${seq}`, headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode, res.body).toBe(200);
    const http = res.json<{ treeSize: number; entry: string; leafHash: string; path: string[]; checkpoint: string }>();
    const cp = decodeCheckpoint(http.checkpoint);
    expect(cp.head.treeSize).toBe(http.treeSize);
    expect(verifyMerkleInclusion(seq - 1, http.treeSize, merkleLeafHash(Buffer.from(http.entry, 'base64url')), proofPath(http.path), cp.head.rootHash)).toEqual({ ok: true });
    const first = (await v.sqlite.listCheckpoints(1, 1))[0]!;
    const cons = await v.app.inject({ method: 'GET', url: `/v1/ledger/proofs/consistency?from=${first.treeSize}`, headers: { authorization: `Bearer ${token}` } });
    expect(cons.statusCode, cons.body).toBe(200);
    const cj = cons.json<{ from: { checkpoint: string }; to: { checkpoint: string }; path: string[] }>();
    const a = decodeCheckpoint(cj.from.checkpoint).head;
    const b = decodeCheckpoint(cj.to.checkpoint).head;
    expect(verifyMerkleConsistency(a.treeSize, b.treeSize, proofPath(cj.path), a.rootHash, b.rootHash)).toEqual({ ok: true });
    const latest = await v.app.inject({ method: 'GET', url: '/v1/ledger/checkpoint' });
    expect(latest.json<{ treeSize: number }>().treeSize).toBe(b.treeSize);
    const missing = await v.app.inject({ method: 'GET', url: '/v1/ledger/proofs/inclusion/99999', headers: { authorization: `Bearer ${token}` } });
    expect(missing.json<{ error: { code: string } }>().error.code).toBe('LEDGER_SEQ_UNKNOWN');
  });
});

describe('replay over the admin API', () => {
  it('POST /v1/ledger/replay replays one decision, or dry-runs a policy over a range; other roles are refused', async () => {
    const seq = (await v.sqlite.listDecisions(1, 1000)).find((r) => r.kind === 'appraise')!.seq;
    const one = await v.app.inject({ method: 'POST', url: '/v1/ledger/replay', headers: { authorization: `Bearer ${adminToken}` }, payload: { seq } });
    expect(one.statusCode, one.body).toBe(200);
    expect(one.json()).toMatchObject({ seq, identical: true, dryRun: false });
    const strict = JSON.parse(JSON.stringify(testPolicy({ id: 'strict' }))) as { tpm: { pcrs: { sha256: Record<string, unknown> } } };
    strict.tpm.pcrs.sha256['2'] = ['00'.repeat(32)];
    const range = await v.app.inject({ method: 'POST', url: '/v1/ledger/replay', headers: { authorization: `Bearer ${adminToken}` }, payload: { from: 1, to: 1000, policy: JSON.stringify(strict) } });
    expect(range.statusCode, range.body).toBe(200);
    expect(range.json<{ lockedOut: string[]; policyId: string }>()).toMatchObject({ policyId: 'strict', lockedOut: [nodeId] });
    const rp = await v.app.inject({ method: 'POST', url: '/v1/ledger/replay', headers: { authorization: `Bearer ${token}` }, payload: { seq } });
    expect(rp.statusCode).toBe(403);
    expect(rp.json<{ error: { code: string } }>().error.code).toBe('AUTH_ROLE_FORBIDDEN');
    const none = await v.app.inject({ method: 'POST', url: '/v1/ledger/replay', payload: { seq } });
    expect(none.statusCode).toBe(401);
    const heartbeat = (await v.sqlite.listDecisions(1, 1000)).find((r) => r.kind === 'trust-anchor')!.seq;
    const fact = await v.app.inject({ method: 'POST', url: '/v1/ledger/replay', headers: { authorization: `Bearer ${adminToken}` }, payload: { seq: heartbeat } });
    expect(fact.json<{ error: { code: string } }>().error.code).toBe('REPLAY_NOT_REPLAYABLE');
  });
});

describe('replay from an export, with no database', () => {
  it('vouch replay --from-export replays an appraisal and an admission-free range identically, and dry-runs a policy', async () => {
    const seq = (await v.sqlite.listDecisions(1, 1000)).filter((r) => r.kind === 'appraise').at(-1)!.seq;
    const one = io();
    expect(await run(['replay', String(seq), '--from-export', exportFile(), '--json'], one), one.err_()).toBe(0);
    expect(JSON.parse(one.out_())).toMatchObject({ seq, identical: true });
    const strictFile = join(work, 'strict.json');
    const strict = JSON.parse(JSON.stringify(testPolicy({ id: 'strict' }))) as { tpm: { pcrs: { sha256: Record<string, unknown> } } };
    strict.tpm.pcrs.sha256['2'] = ['00'.repeat(32)];
    writeFileSync(strictFile, JSON.stringify(strict));
    const range = io();
    expect(await run(['replay', '--from', '1', '--to', String(seq), '--policy', strictFile, '--from-export', exportFile(), '--json'], range), range.err_()).toBe(0);
    expect(JSON.parse(range.out_())).toMatchObject({ policyId: 'strict', lockedOut: [nodeId], skipped: [] });
    const fact = io();
    expect(await run(['replay', '1', '--from-export', exportFile()], fact)).toBe(2);
    expect(fact.err_()).toContain('REPLAY_NOT_REPLAYABLE');
  });
});

describe('tampering is detected and named', () => {
  const entryAt = (i: number): { seq: number; hash: string; entry: string } => JSON.parse(lines[i]!) as { seq: number; hash: string; entry: string };
  const setHeaderEntries = (ls: string[], n: number): string[] => {
    const h = JSON.parse(ls[0]!) as Record<string, unknown>;
    return [JSON.stringify({ ...h, entries: n }), ...ls.slice(1)];
  };

  it('one altered byte: LEDGER_HASH_MISMATCH at that entry, and the checkpoints no longer match', async () => {
    const i = entryLines()[3]!;
    const e = entryAt(i);
    const bytes = Buffer.from(e.entry, 'base64url');
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x01;
    const t = [...lines];
    t[i] = JSON.stringify({ ...e, entry: bytes.toString('base64url') });
    const r = await verifyLines(t);
    expect(r.status).toBe(1);
    expect(r.result?.chain).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'LEDGER_HASH_MISMATCH', seq: e.seq })]));
    expect(r.result?.checkpoints.problems.map((p) => p.code)).toContain('LEDGER_CHECKPOINT_MISMATCH');
  });

  it('an entry rewritten with its recorded hash: LEDGER_LINK_BROKEN at the next entry', async () => {
    const i = entryLines()[3]!;
    const e = entryAt(i);
    const d = decodeLedgerEntry(Buffer.from(e.entry, 'base64url'));
    const rebuilt = buildLedgerEntry({ seq: d.seq, prev: d.prev, time: d.time, kind: d.kind as 'appraise', node: d.node, outcome: 'refused', body: d.body });
    const t = [...lines];
    t[i] = JSON.stringify({ t: 'entry', seq: e.seq, hash: Buffer.from(rebuilt.hash).toString('hex'), entry: Buffer.from(rebuilt.entry).toString('base64url') });
    const r = await verifyLines(t);
    expect(r.result?.chain.map((p) => `${p.code}@${p.seq}`)).toEqual([`LEDGER_LINK_BROKEN@${e.seq + 1}`]);
    expect(r.result?.checkpoints.problems.map((p) => p.code)).toContain('LEDGER_CHECKPOINT_MISMATCH');
  });

  it('a deleted, a repeated and a reordered entry: LEDGER_SEQUENCE_GAP and LEDGER_LINK_BROKEN', async () => {
    const idx = entryLines();
    const del = setHeaderEntries(lines.filter((_, k) => k !== idx[4]), idx.length - 1);
    expect((await verifyLines(del)).result?.chain.map((p) => p.code)).toEqual(expect.arrayContaining(['LEDGER_SEQUENCE_GAP', 'LEDGER_LINK_BROKEN']));
    const rep = setHeaderEntries([...lines.slice(0, idx[4]! + 1), lines[idx[4]!]!, ...lines.slice(idx[4]! + 1)], idx.length + 1);
    expect((await verifyLines(rep)).result?.chain.map((p) => p.code)).toEqual(expect.arrayContaining(['LEDGER_SEQUENCE_GAP', 'LEDGER_LINK_BROKEN']));
    const swap = [...lines];
    [swap[idx[2]!], swap[idx[3]!]] = [swap[idx[3]!]!, swap[idx[2]!]!];
    expect((await verifyLines(swap)).result?.chain.map((p) => p.code)).toEqual(expect.arrayContaining(['LEDGER_SEQUENCE_GAP', 'LEDGER_LINK_BROKEN']));
  });

  it('a cut tail is a valid chain, but the checkpoint says how many entries were deleted (LEDGER_TRUNCATED)', async () => {
    const idx = entryLines();
    const cut = setHeaderEntries(lines.filter((_, k) => !idx.slice(-2).includes(k)), idx.length - 2);
    const r = await verifyLines(cut);
    expect(r.result?.chain).toEqual([]);
    expect(r.result?.checkpoints.problems.map((p) => p.code)).toEqual(['LEDGER_TRUNCATED']);
  });

  it('a fork (an entry changed and every later entry re-hashed and re-linked): LEDGER_CHECKPOINT_MISMATCH', async () => {
    const idx = entryLines();
    const t = [...lines];
    let prev: Uint8Array | null = null;
    for (const [n, i] of idx.entries()) {
      const e = entryAt(i);
      const d = decodeLedgerEntry(Buffer.from(e.entry, 'base64url'));
      if (n < 3) {
        prev = Buffer.from(e.hash, 'hex');
        continue;
      }
      const rebuilt = buildLedgerEntry({ seq: d.seq, prev: prev as Uint8Array, time: d.time, kind: d.kind as 'appraise', node: d.node, outcome: n === 3 ? 'contraindicated' : d.outcome, body: d.body });
      t[i] = JSON.stringify({ t: 'entry', seq: d.seq, hash: Buffer.from(rebuilt.hash).toString('hex'), entry: Buffer.from(rebuilt.entry).toString('base64url') });
      prev = rebuilt.hash;
    }
    const r = await verifyLines(t);
    expect(r.result?.chain).toEqual([]);
    expect(r.result?.checkpoints.problems.map((p) => p.code)).toEqual(['LEDGER_CHECKPOINT_MISMATCH', 'LEDGER_CHECKPOINT_MISMATCH']);
    // A witness a relying party kept catches the fork even when the forger drops the ledger's own checkpoints.
    const witness = join(work, 'witness.jws');
    writeFileSync(witness, (JSON.parse(lines.find((l) => l.includes('"t":"checkpoint"'))!) as { jws: string }).jws);
    const noCps = t.filter((l) => !l.includes('"t":"checkpoint"'));
    const h = JSON.parse(noCps[0]!) as Record<string, unknown>;
    const w = await verifyLines([JSON.stringify({ ...h, checkpoints: 0 }), ...noCps.slice(1)], ['--witness', witness, '--jwks', join(work, 'jwks.json')]);
    expect(w.result?.checkpoints.problems.map((p) => p.code)).toEqual(['LEDGER_CHECKPOINT_MISMATCH']);
  });

  it('a forged checkpoint (one signature byte) is LEDGER_CHECKPOINT_SIGNATURE_INVALID; a damaged export is LEDGER_EXPORT_MALFORMED', async () => {
    const i = lines.findIndex((l) => l.includes('"t":"checkpoint"'));
    const jws = (JSON.parse(lines[i]!) as { jws: string }).jws;
    const sig = Buffer.from(jws.split('.')[2]!, 'base64url');
    sig[5] = (sig[5] as number) ^ 0x80;
    const t = [...lines];
    t[i] = JSON.stringify({ t: 'checkpoint', jws: `${jws.split('.').slice(0, 2).join('.')}.${sig.toString('base64url')}` });
    expect((await verifyLines(t)).result?.checkpoints.problems.map((p) => p.code)).toContain('LEDGER_CHECKPOINT_SIGNATURE_INVALID');
    const broken = await verifyLines([...lines.slice(0, 3), '{"t":"entry","seq":3}', ...lines.slice(4)]);
    expect(broken.status).toBe(1);
    expect(broken.err).toContain('LEDGER_EXPORT_MALFORMED');
    const short = await verifyLines(lines.slice(0, -1));
    expect(short.err).toContain('LEDGER_EXPORT_MALFORMED');
  });

  it('on the database itself: with the append-only triggers dropped, an altered entry and a deleted tail are named', async () => {
    const copy = join(work, 'db-copy');
    const c = io();
    // A copy of the data directory, tampered with directly in SQLite.
    expect(await run(['ledger', 'export', '--data-dir', v.dir, '--out', join(work, 'before.jsonl')], c)).toBe(0);
    const { cpSync } = await import('node:fs');
    cpSync(v.dir, copy, { recursive: true });
    const db = new Database(join(copy, 'vouch.sqlite'));
    try {
      db.exec('DROP TRIGGER decisions_append_only_update; DROP TRIGGER decisions_append_only_delete;');
      const row = db.prepare('SELECT entry FROM decisions WHERE seq = 5').get() as { entry: Buffer };
      row.entry[row.entry.length - 2] = (row.entry[row.entry.length - 2] as number) ^ 0x01;
      db.prepare('UPDATE decisions SET entry = ? WHERE seq = 5').run(row.entry);
      const max = (db.prepare('SELECT MAX(seq) AS m FROM decisions').get() as { m: number }).m;
      db.prepare('DELETE FROM decisions WHERE seq = ?').run(max);
    } finally {
      db.close();
    }
    const out = io();
    expect(await run(['ledger', 'verify', '--data-dir', copy, '--json'], out)).toBe(1);
    const r = JSON.parse(out.out_()) as { chain: Array<{ code: string; seq: number }>; checkpoints: { problems: Array<{ code: string }> } };
    expect(r.chain).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'LEDGER_HASH_MISMATCH', seq: 5 })]));
    expect(r.checkpoints.problems.map((p) => p.code)).toEqual(expect.arrayContaining(['LEDGER_TRUNCATED']));
  });
});
