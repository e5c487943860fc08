/**
 * Deterministic replay (issue #8): every appraisal retains its inputs content-addressed; replay
 * re-runs it at the recorded time and gets the identical result digest — affirmations, refusals
 * of each kind, and a decision whose commit lost a race. A dry run with another policy shows who
 * would be locked out; pruned, missing or altered inputs and non-replayable kinds refuse with
 * their codes.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { dryRunPolicy, replayDecision } from '../../src/verifier/replay.js';
import { decodeAppraisalContext } from '../../src/verifier/attestation.js';
import { GOOD_PCRS, buildEvidence, ekTrustOf, enrollOverHttp, getChallenge, submit, syntheticTpm, testCa, testPolicy, startVerifier, type SyntheticTpm, type TestVerifier, pcrHex } from '../helpers/verifier.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { parsePolicy } from '../../src/policy/index.js';

let v: TestVerifier;
const nodes: Array<{ tpm: SyntheticTpm; id: string; clock: bigint }> = [];

async function attest(i: number, over: Partial<Parameters<typeof buildEvidence>[0]> = {}): Promise<{ status: number; seq: number }> {
  const n = nodes[i]!;
  const challenge = await getChallenge(v.app, n.id);
  n.clock += 1000n;
  const res = await submit(v.app, buildEvidence({ challenge, nodeId: n.id, ak: n.tpm.ak, counters: { resetCount: 1, restartCount: 0, clock: n.clock }, ...over }));
  return { status: res.statusCode, seq: res.json<{ ledger: { seq: number } }>().ledger.seq };
}

beforeAll(async () => {
  const ca = await testCa('CN=vouch replay CA,O=vouch test');
  v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca) });
  await v.service.installTrustAnchors();
  for (let i = 0; i < 3; i++) {
    const tpm = await syntheticTpm(ca);
    nodes.push({ tpm, id: await enrollOverHttp(v.app, tpm, 'gpu'), clock: 10_000n });
  }
});
afterAll(async () => {
  await v?.close();
});

describe('replay of recorded appraisals', () => {
  it('an affirming appraisal replays to the identical result digest; its inputs are retained content-addressed', async () => {
    const a = await attest(0);
    expect(a.status).toBe(200);
    const r = await replayDecision(v.sqlite, a.seq);
    expect(r).toMatchObject({ seq: a.seq, kind: 'appraise', identical: true, dryRun: false, commitFailures: [] });
    expect(r.replayed.resultDigest).toBe(r.recorded.resultDigest);
    expect(r.replayed.outcome).toBe('affirming');
    const entry = decodeLedgerEntry((await v.sqlite.getDecision(a.seq))!.entry);
    const refs = entry.body['inputs'] as Record<string, string>;
    for (const k of ['evidence', 'context', 'trust']) {
      const i = await v.sqlite.getInput(refs[k]!);
      expect(i?.bytes).not.toBeNull();
      expect(createHash('sha256').update(i!.bytes!).digest('hex')).toBe(refs[k]);
    }
    // The evidence input is the received CBOR: its digest is the decision's evidence digest.
    expect(refs['evidence']).toBe(entry.body['evidenceDigest']);
    const ctx = decodeAppraisalContext((await v.sqlite.getInput(refs['context']!))!.bytes!);
    expect(ctx.node?.nodeId).toBe(nodes[0]!.id);
    expect(ctx.challenge?.consumedAt).toBeNull();
  });

  it('refusals replay identically too: a wrong PCR, a bad signature, a counter rollback', async () => {
    const seqs: number[] = [];
    const wrong = new Map(GOOD_PCRS);
    wrong.set(TPM_ALG.SHA256, new Map([...(GOOD_PCRS.get(TPM_ALG.SHA256) ?? new Map())].map(([k, val]) => [k, k === 3 ? new Uint8Array(32).fill(7) : val])));
    seqs.push((await attest(1, { pcrs: wrong })).seq);
    const other = await syntheticTpm(await testCa('CN=other'));
    seqs.push((await attest(1, { signWith: other.ak })).seq);
    expect((await attest(1)).status).toBe(200);
    const n = nodes[1]!;
    n.clock = 1n; // below the accepted clock: TPM_COUNTER_ROLLBACK
    seqs.push((await attest(1)).seq);
    for (const s of seqs) {
      const r = await replayDecision(v.sqlite, s);
      expect(r.identical, JSON.stringify(r)).toBe(true);
      expect(r.replayed.outcome).toBe('contraindicated');
      expect(r.replayed.failures.map((f) => f.code)).toEqual(r.recorded.failures);
    }
    expect((await replayDecision(v.sqlite, seqs[0]!)).recorded.failures).toContain('POLICY_PCR_MISMATCH');
    expect((await replayDecision(v.sqlite, seqs[1]!)).recorded.failures).toContain('TPM_QUOTE_SIGNATURE_INVALID');
    expect((await replayDecision(v.sqlite, seqs[2]!)).recorded.failures).toContain('TPM_COUNTER_ROLLBACK');
  });

  it('a dry run with a stricter policy shows who would be locked out, and records nothing', async () => {
    const head = (await v.sqlite.ledgerHead())!.seq;
    const good = await attest(2);
    expect(good.status).toBe(200);
    const strictDoc = JSON.parse(JSON.stringify(testPolicy({ id: 'strict' }))) as { tpm: { pcrs: { sha256: Record<string, string[] | 'any'> } } };
    strictDoc.tpm.pcrs.sha256['5'] = ['ff'.repeat(32)];
    const strict = parsePolicy(JSON.stringify(strictDoc), 'json');
    const one = await replayDecision(v.sqlite, good.seq, { policy: strict });
    expect(one).toMatchObject({ dryRun: true, change: 'affirming → contraindicated', identical: false });
    expect(one.replayed.failures.map((f) => f.code)).toContain('POLICY_PCR_MISMATCH');
    const same = await replayDecision(v.sqlite, good.seq, { policy: testPolicy() });
    expect(same).toMatchObject({ dryRun: true, change: null, identical: true });

    const run = await dryRunPolicy(v.sqlite, strict, { from: 1, to: good.seq });
    expect(run.lockedOut).toContain(nodes[2]!.id);
    expect(run.lockedOut).toContain(nodes[0]!.id);
    expect(run.replayed).toBeGreaterThanOrEqual(5);
    expect((await v.sqlite.ledgerHead())!.seq).toBe(good.seq);
    expect(head).toBeLessThan(good.seq);
    const byGroup = await dryRunPolicy(v.sqlite, strict, { from: 1, to: good.seq, group: 'other-group' });
    expect(byGroup.replayed).toBe(0);
    // A laxer policy admits the node refused for its PCR.
    const lax = JSON.parse(JSON.stringify(testPolicy({ id: 'lax' }))) as { tpm: { pcrs: { sha256: Record<string, string[] | 'any'> } } };
    lax.tpm.pcrs.sha256['3'] = [pcrHex(TPM_ALG.SHA256, 3), '07'.repeat(32)];
    const laxRun = await dryRunPolicy(v.sqlite, parsePolicy(JSON.stringify(lax), 'json'), { from: 1, to: good.seq });
    expect(laxRun.changed.some((c) => c.change === 'contraindicated → affirming')).toBe(true);
  });

  it('a submission that lost the race for its challenge at commit replays identically, with the commit-time failure named', async () => {
    const n = nodes[2]!;
    const challenge = await getChallenge(v.app, n.id);
    n.clock += 1000n;
    const ev = buildEvidence({ challenge, nodeId: n.id, ak: n.tpm.ak, counters: { resetCount: 1, restartCount: 0, clock: n.clock } });
    // Both appraise clean against the same unconsumed challenge; only one consumes it when recorded.
    const [a, b] = await Promise.all([submit(v.app, ev), submit(v.app, ev)]);
    const lost = [a, b].find((r) => r.statusCode !== 200)!;
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
    const seq = lost.json<{ ledger: { seq: number } }>().ledger.seq;
    const r = await replayDecision(v.sqlite, seq);
    expect(r.identical).toBe(true);
    expect(r.commitFailures).toEqual(['CHALLENGE_REPLAYED']);
    expect(r.replayed.outcome).toBe('affirming');
    expect(r.recorded.outcome).toBe('contraindicated');
  });

  it('refuses what it cannot replay, each with its code', async () => {
    const heartbeat = await v.sqlite.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time: v.clock.now(), body: {} });
    await expect(replayDecision(v.sqlite, heartbeat.seq)).rejects.toMatchObject({ code: 'REPLAY_NOT_REPLAYABLE' });
    await expect(replayDecision(v.sqlite, 999_999)).rejects.toMatchObject({ code: 'LEDGER_SEQ_UNKNOWN' });
    const old = await v.sqlite.appendDecision({ kind: 'appraise', nodeId: nodes[0]!.id, outcome: 'affirming', time: v.clock.now(), body: { failures: [] } });
    await expect(replayDecision(v.sqlite, old.seq)).rejects.toMatchObject({ code: 'REPLAY_INPUT_MISSING' });

    const a = await attest(0);
    const refs = decodeLedgerEntry((await v.sqlite.getDecision(a.seq))!.entry).body['inputs'] as Record<string, string>;
    // An altered retained input is refused, not replayed into a different answer.
    const db = new Database(join(v.dir, 'vouch.sqlite'));
    try {
      db.prepare('UPDATE retained_inputs SET bytes = ? WHERE digest = ?').run(Buffer.from('not the context'), refs['context']);
    } finally {
      db.close();
    }
    await expect(replayDecision(v.sqlite, a.seq)).rejects.toMatchObject({ code: 'REPLAY_INPUT_MISSING' });
    // Retention prunes bytes and keeps the digest.
    const b = await attest(0);
    const pruned = await v.sqlite.pruneInputs(v.clock.now() + 1, v.clock.now());
    expect(pruned).toBeGreaterThan(0);
    await expect(replayDecision(v.sqlite, b.seq)).rejects.toMatchObject({ code: 'REPLAY_INPUT_PRUNED' });
    const bRefs = decodeLedgerEntry((await v.sqlite.getDecision(b.seq))!.entry).body['inputs'] as Record<string, string>;
    expect(await v.sqlite.getInput(bRefs['evidence']!)).toMatchObject({ bytes: null, digest: bRefs['evidence'] });
  });
});
