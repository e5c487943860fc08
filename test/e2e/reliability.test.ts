/**
 * Reliability against real verifier processes (`vouch verifier start` spawned as children, HTTP on
 * loopback) with synthetic TPM nodes enrolled over HTTP (test/helpers/http-node.ts):
 *
 * 1. a verifier SIGKILLed mid-load on SQLite: every decision a client got an answer for is in the
 *    ledger at its seq with its hash, the ledger stays one chain whose checkpoints verify, and a
 *    verifier restarted on the same data directory keeps working;
 * 2. PostgreSQL stopped mid-load: every answer while it is down is a 503 STORE_UNAVAILABLE (never
 *    an allow, never an artifact), and once it is back the same verifier process affirms again;
 * 3. two replicas on one PostgreSQL: a challenge is single-use across replicas, concurrent appends
 *    from both make one linear ledger, and both replicas' checkpoints verify.
 *
 * Without Debian's postgresql package the PostgreSQL tests fail (they never skip).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { toHex } from '../../src/lib/bytes.js';
import { decodeCheckpoint } from '../../src/ledger/checkpoint.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { DecisionRecord, Store } from '../../src/store/types.js';
import { addToken } from '../../src/verifier/auth.js';
import { HttpNode, request, type AnswerBody, type HttpAnswer } from '../helpers/http-node.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { killAllVerifiers, startVerifierProcess, writeFile, writeTpmCaDir, type VerifierProcess } from '../helpers/verifier-cli.js';
import { policyText, testCa, type TestCa } from '../helpers/verifier.js';

// --- shared setup ----------------------------------------------------------------------------

let ca: TestCa;
let root: string;
let caDir: string;
let policyFile: string;

beforeAll(async () => {
  ca = await testCa('CN=vouch reliability test EK CA');
  root = mkdtempSync(join(tmpdir(), 'vouch-reliability-'));
  caDir = writeTpmCaDir(ca, join(root, 'tpm-ca'));
  policyFile = writeFile(join(root, 'policy.json'), policyText());
});

afterAll(async () => {
  await killAllVerifiers();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

/** An admin token in `dataDir`'s tokens file (written before the verifier starts). */
function adminToken(dataDir: string): string {
  return addToken(join(dataDir, 'tokens.json'), { id: 'reliability-admin', role: 'admin' }, { now: Date.now() }).token;
}

/** `vouch verifier start` flags shared by every test; `extra` adds the store and the data directory. */
function verifierArgs(dataDir: string, extra: readonly string[] = []): string[] {
  return ['--data-dir', dataDir, '--tpm-ca-dir', caDir, '--policy', `gpu=${policyFile}`, '--log-level', 'silent', '--rate-limit', '100000', '--checkpoint-interval', '1', ...extra];
}

/** What `vouch ledger verify --json` prints. */
interface LedgerVerifyJson {
  readonly source: string;
  readonly ok: boolean;
  readonly entries: number;
  readonly head: { readonly seq: number; readonly hash: string };
  readonly chain: readonly unknown[];
  readonly checkpoints: { readonly total: number; readonly verified: number; readonly latest: { readonly treeSize: number } | null; readonly problems: readonly unknown[] };
  readonly unanchored: number;
  readonly keys: { readonly source: string; readonly kids: readonly string[] };
}

/** Runs `vouch ledger verify ARGS --json` in this process. */
async function ledgerVerify(args: readonly string[]): Promise<{ status: number; result: LedgerVerifyJson; err: string }> {
  let out = '';
  let err = '';
  const status = await run(['ledger', 'verify', ...args, '--json'], { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, result: JSON.parse(out) as LedgerVerifyJson, err };
}

/** Polls `cond` every `everyMs` until it holds; throws `what` after `timeoutMs`. */
async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One recorded exchange of a load. */
interface Exchange {
  readonly what: 'challenge' | 'attestation';
  readonly node: string;
  readonly answer: HttpAnswer<AnswerBody>;
}

/**
 * A load: one loop per node (so one node's quotes never race each other), each doing challenge →
 * evidence → submit until {@link Load.stop} or `perNode` rounds; `urls(i, round)` picks the
 * replica for the challenge and for the submission. Counts the requests in flight.
 */
class Load {
  readonly exchanges: Exchange[] = [];
  inFlight = 0;
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(nodes: readonly HttpNode[], urls: (node: number, round: number) => { challenge: string; submit: string }, opts: { perNode?: number; backoffMs?: number } = {}) {
    this.#done = Promise.all(nodes.map((n, i) => this.#loop(n, i, urls, opts))).then(() => undefined);
  }

  async #track<T>(p: Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await p;
    } finally {
      this.inFlight--;
    }
  }

  async #loop(node: HttpNode, i: number, urls: (node: number, round: number) => { challenge: string; submit: string }, opts: { perNode?: number; backoffMs?: number }): Promise<void> {
    for (let round = 0; !this.#stopped && (opts.perNode === undefined || round < opts.perNode); round++) {
      const u = urls(i, round);
      const c = await this.#track(node.challenge(u.challenge));
      this.exchanges.push({ what: 'challenge', node: node.nodeId, answer: c.answer });
      let ok = c.challenge !== null;
      if (c.challenge !== null && !this.#stopped) {
        const a = await this.#track(node.submit(u.submit, node.evidence(c.challenge)));
        this.exchanges.push({ what: 'attestation', node: node.nodeId, answer: a });
        ok = a.status === 200;
      }
      // A failing service is not hammered in a tight loop.
      if (!ok) await new Promise((r) => setTimeout(r, opts.backoffMs ?? 20));
    }
  }

  get attestations(): Exchange[] {
    return this.exchanges.filter((e) => e.what === 'attestation');
  }

  /** Stops after the rounds in flight and waits for every loop. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /** Waits for every loop to finish its rounds. */
  done(): Promise<void> {
    return this.#done;
  }
}

/** The ledger positions answered in `exchanges` (200 and 4xx decisions carry one). */
function answeredDecisions(exchanges: readonly Exchange[]): Array<{ seq: number; hash: string }> {
  return exchanges.flatMap((e) => (e.answer.body?.ledger !== undefined ? [e.answer.body.ledger] : []));
}

/** Every answered decision is in `store` at its seq with its hash; returns how many were checked. */
async function expectInLedger(store: Store, answered: ReadonlyArray<{ seq: number; hash: string }>): Promise<number> {
  expect(new Set(answered.map((d) => d.seq)).size).toBe(answered.length);
  const mismatched: string[] = [];
  for (const d of answered) {
    const row = await store.getDecision(d.seq);
    if (row === null || toHex(row.hash) !== d.hash) mismatched.push(`#${d.seq}: answered ${d.hash}, ledger ${row === null ? 'none' : toHex(row.hash)}`);
  }
  expect(mismatched).toEqual([]);
  return answered.length;
}

/** Every row of the ledger, in seq order. */
async function allDecisions(store: Store): Promise<DecisionRecord[]> {
  const out: DecisionRecord[] = [];
  for (let from = 1; ; ) {
    const rows = await store.listDecisions(from, 1000);
    out.push(...rows);
    if (rows.length < 1000) return out;
    from = rows[rows.length - 1]!.seq + 1;
  }
}

/** The ledger is one clean chain and every checkpoint verifies. */
function expectLedgerOk(v: { status: number; result: LedgerVerifyJson }): void {
  expect(v.result.chain).toEqual([]);
  expect(v.result.checkpoints.problems).toEqual([]);
  expect(v.result.checkpoints.verified).toBe(v.result.checkpoints.total);
  expect(v.result.entries).toBe(v.result.head.seq);
  expect(v.result.ok).toBe(true);
  expect(v.status).toBe(0);
}

/** An affirming decision: 200, `affirming`, an artifact, a ledger position. */
function expectAffirming(a: HttpAnswer<AnswerBody> | null): { seq: number; hash: string } {
  expect(a?.status, a?.text ?? 'no attestation was sent').toBe(200);
  expect(a?.body?.decision).toBe('affirming');
  expect(typeof a?.body?.artifact).toBe('string');
  const l = a?.body?.ledger;
  expect(l).toMatchObject({ seq: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
  return l as { seq: number; hash: string };
}

// --- 1. crash ----------------------------------------------------------------------------------

describe('a verifier killed mid-load (SQLite)', () => {
  it('keeps every answered decision at its seq and hash, one chain, verified checkpoints; restarted on the same data directory it keeps working', async () => {
    const dataDir = join(root, 'crash');
    const token = adminToken(dataDir);
    const v1 = await startVerifierProcess(verifierArgs(dataDir));
    const nodes = await Promise.all(Array.from({ length: 8 }, () => HttpNode.enroll(ca, v1.url)));

    const load = new Load(nodes, () => ({ challenge: v1.url, submit: v1.url }));
    const loadStart = Date.now();
    await until(() => Date.now() - loadStart >= 1500 && load.attestations.length >= 10, 'answers under load');
    // SIGKILL while requests are in flight: checked and sent in the same turn of the event loop.
    let inFlight = 0;
    let killedAt = 0;
    await until(
      () => {
        if (load.inFlight === 0) return false;
        inFlight = load.inFlight;
        killedAt = Date.now();
        v1.proc.kill('SIGKILL');
        return true;
      },
      'a request in flight',
      10_000,
      1,
    );
    expect(await v1.exited).toBe('SIGKILL');
    await load.stop();
    const answeredBefore = load.exchanges.filter((e) => e.answer.status !== null).length;

    const unanswered = load.exchanges.filter((e) => e.answer.status === null);
    // The requests in flight at the kill that never got an answer (the later ones were refused connections).
    const lostInFlight = unanswered.filter((e) => e.answer.sentAt <= killedAt).length;
    const lostAttestations = unanswered.filter((e) => e.what === 'attestation' && e.answer.sentAt <= killedAt).length;
    const answeredAttestations = load.attestations.filter((e) => e.answer.status !== null);
    // An honest node on a healthy store is affirmed: every answer before the crash is a 200.
    expect(answeredAttestations.map((e) => e.answer.status).filter((s) => s !== 200)).toEqual([]);
    expect(unanswered.length).toBeGreaterThan(0);
    const answered = answeredDecisions(load.exchanges);
    expect(answered.length).toBe(answeredAttestations.length);

    // Restarted on the same data directory.
    const v2 = await startVerifierProcess(verifierArgs(dataDir));
    const ro = await SqliteStore.open({ dataDir, readOnly: true });
    let checked: number;
    let headAfterCrash: number;
    let unansweredCommitted: number;
    try {
      checked = await expectInLedger(ro, answered);
      headAfterCrash = (await ro.ledgerHead())?.seq ?? 0;
      // No phantom decisions: an appraisal nobody got an answer for is one of the submissions lost at the kill.
      const answeredSeqs = new Set(answered.map((d) => d.seq));
      unansweredCommitted = (await allDecisions(ro)).filter((r) => r.kind === 'appraise' && !answeredSeqs.has(r.seq)).length;
      expect(unansweredCommitted).toBeLessThanOrEqual(lostAttestations);
    } finally {
      await ro.close();
    }
    const maxAnswered = Math.max(...answered.map((d) => d.seq));
    expect(headAfterCrash).toBeGreaterThanOrEqual(maxAnswered);

    const after = await nodes[0]!.attest(v2.url);
    const last = expectAffirming(after.attestation);
    expect(last.seq).toBeGreaterThan(maxAnswered);
    const cp = await request<{ treeSize: number }>('POST', `${v2.url}/v1/ledger/checkpoints`, { token });
    expect(cp.status, cp.text).toBe(201);
    expect(cp.body?.treeSize).toBeGreaterThanOrEqual(last.seq);

    const v = await ledgerVerify(['--data-dir', dataDir]);
    expectLedgerOk(v);
    expect(v.result.checkpoints.total).toBeGreaterThanOrEqual(1);
    expect(v.result.checkpoints.latest?.treeSize).toBeGreaterThanOrEqual(last.seq);
    const ro2 = await SqliteStore.open({ dataDir, readOnly: true });
    try {
      expect(toHex((await ro2.getDecision(last.seq))!.hash)).toBe(last.hash);
    } finally {
      await ro2.close();
    }
    await v2.kill('SIGTERM');

    console.log(
      `[reliability] crash: ${answeredBefore} requests answered before the SIGKILL (${answeredAttestations.length} attestations affirmed and checked in the ledger: ${checked}), ` +
        `${inFlight} in flight at the kill (${lostInFlight} of them never answered, ${lostAttestations} attestations of which ${unansweredCommitted} were committed), ${unanswered.length} requests without an answer in all; ledger head after the crash #${headAfterCrash} ` +
        `(${headAfterCrash - maxAnswered} entries past the last answered seq #${maxAnswered}), after the restart ${v.result.entries} entries, ` +
        `${v.result.checkpoints.verified}/${v.result.checkpoints.total} checkpoints verified`,
    );
  }, 120_000);
});

// --- 2 and 3. PostgreSQL -------------------------------------------------------------------------

describe('PostgreSQL', () => {
  let pg: PostgresServer;

  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    await killAllVerifiers();
    await pg?.close();
  });

  it('store down mid-load: every answer is 503 STORE_UNAVAILABLE, never an allow; the same process resumes when PostgreSQL is back', async () => {
    const url = await pg.createDatabase('outage');
    const dataDir = join(root, 'outage');
    const v = await startVerifierProcess(verifierArgs(dataDir, ['--database-url', url]));
    const nodes = await Promise.all(Array.from({ length: 6 }, () => HttpNode.enroll(ca, v.url)));

    const load = new Load(nodes, () => ({ challenge: v.url, submit: v.url }));
    const loadStart = Date.now();
    await until(() => Date.now() - loadStart >= 1000 && load.attestations.length >= 10, 'answers under load');
    // Evidence for live challenges, submitted only once the store is down.
    const pending: Array<{ node: HttpNode; cbor: Uint8Array }> = [];
    for (const n of nodes) {
      const c = await n.challenge(v.url);
      expect(c.answer.status, c.answer.text).toBe(201);
      pending.push({ node: n, cbor: n.evidence(c.challenge!) });
    }

    await pg.stop();
    const down = Date.now();
    const late = await Promise.all(pending.map((p) => p.node.submit(v.url, p.cbor)));
    await until(() => Date.now() - down >= 2000 && load.exchanges.filter((e) => e.answer.sentAt >= down).length >= 20, 'answers while the store is down');
    await load.stop();

    const whileDown = [...load.exchanges.filter((e) => e.answer.sentAt >= down).map((e) => e.answer), ...late];
    const before = load.exchanges.filter((e) => e.answer.sentAt < down).map((e) => e.answer);
    // Nothing is ever allowed while the store is down, and nothing ever goes unanswered.
    const downOutcomes = whileDown.map((a) => `${a.status ?? a.error} ${a.body?.error?.code ?? a.text.slice(0, 80)}`);
    expect(new Set(downOutcomes)).toEqual(new Set(['503 STORE_UNAVAILABLE']));
    for (const a of whileDown) {
      expect(a.body?.error?.category).toBe('unavailable');
      expect(a.body?.artifact).toBeUndefined();
      expect(a.body?.decision).toBeUndefined();
    }
    // The requests in flight when it stopped: answered, and either a completed decision or a 503.
    const beforeOutcomes = new Set(before.map((a) => (a.status === 200 || a.status === 201 ? String(a.status) : `${a.status ?? a.error} ${a.body?.error?.code ?? a.text.slice(0, 80)}`)));
    for (const o of beforeOutcomes) expect(['200', '201', '503 STORE_UNAVAILABLE']).toContain(o);
    for (const e of load.attestations) if (e.answer.status === 200) expectAffirming(e.answer);

    // Back up: the same verifier process affirms again, without a restart.
    await pg.restart();
    const back = Date.now();
    let resumed: { seq: number; hash: string } | null = null;
    let tries = 0;
    await until(
      async () => {
        tries++;
        const r = await nodes[0]!.attest(v.url);
        if (r.attestation?.status !== 200) return false;
        resumed = expectAffirming(r.attestation);
        return true;
      },
      'an affirming attestation after PostgreSQL is back',
      30_000,
      100,
    );
    const resumeMs = Date.now() - back;
    expect(resumeMs).toBeLessThan(20_000);
    const again = await Promise.all(nodes.map((n) => n.attest(v.url)));
    const afterDecisions = again.map((r) => expectAffirming(r.attestation));
    expect(v.proc.exitCode).toBeNull();

    const verified = await ledgerVerify(['--database-url', url]);
    expectLedgerOk(verified);
    const store = await PostgresStore.open({ url });
    try {
      await expectInLedger(store, [...answeredDecisions(load.exchanges), resumed!, ...afterDecisions]);
    } finally {
      await store.close();
    }
    await v.kill('SIGTERM');

    console.log(
      `[reliability] outage: ${before.length} requests before the stop (${before.filter((a) => a.status === 200).length} affirmed), ` +
        `${whileDown.length} answered while PostgreSQL was down, all ${[...new Set(downOutcomes)].join(', ')} (${late.length} of them attestations of live challenges); ` +
        `resumed ${resumeMs} ms after the restart (${tries} tries); ledger ${verified.result.entries} entries, ${verified.result.checkpoints.verified}/${verified.result.checkpoints.total} checkpoints verified`,
    );
  }, 120_000);

  describe('two replicas on one database', () => {
    let url: string;
    let a: VerifierProcess;
    let b: VerifierProcess;
    let tokenA: string;
    let nodes: HttpNode[];

    beforeAll(async () => {
      url = await pg.createDatabase('replicas');
      const dirA = join(root, 'replica-a');
      const dirB = join(root, 'replica-b');
      tokenA = adminToken(dirA);
      adminToken(dirB);
      [a, b] = await Promise.all([startVerifierProcess(verifierArgs(dirA, ['--database-url', url, '--verifier-id', 'replica-a'])), startVerifierProcess(verifierArgs(dirB, ['--database-url', url, '--verifier-id', 'replica-b']))]);
      // Half the nodes enrolled at A and activated at B, half the other way round.
      nodes = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? HttpNode.enroll(ca, a.url, { activateUrl: b.url }) : HttpNode.enroll(ca, b.url, { activateUrl: a.url }))));
    }, 120_000);

    afterAll(async () => {
      await a?.kill('SIGTERM');
      await b?.kill('SIGTERM');
    });

    it('(a) a challenge is single-use across replicas: the same evidence sent to both at once is affirmed once, refused once with CHALLENGE_REPLAYED', async () => {
      const ROUNDS = 50;
      const wins = { a: 0, b: 0 };
      for (let r = 0; r < ROUNDS; r++) {
        const node = nodes[r % nodes.length]!;
        const c = await node.challenge(a.url);
        expect(c.answer.status, c.answer.text).toBe(201);
        const cbor = node.evidence(c.challenge!);
        const [ra, rb] = await Promise.all([node.submit(a.url, cbor), node.submit(b.url, cbor)]);
        expect([ra.status, rb.status].sort()).toEqual([200, 409]);
        const [won, lost] = ra.status === 200 ? [ra, rb] : [rb, ra];
        if (ra.status === 200) wins.a++;
        else wins.b++;
        expectAffirming(won);
        expect(lost.body?.decision).toBe('contraindicated');
        expect(lost.body?.error?.code).toBe('CHALLENGE_REPLAYED');
        expect(lost.body?.artifact).toBeUndefined();
        // Both decisions are recorded, in one chain.
        expect(lost.body?.ledger?.seq).not.toBe(won.body?.ledger?.seq);
      }
      expect(wins.a + wins.b).toBe(ROUNDS);
      console.log(`[reliability] replicas race: ${ROUNDS} rounds, affirmed by A ${wins.a} times, by B ${wins.b} times, the other answer always 409 CHALLENGE_REPLAYED`);
    }, 120_000);

    it('(b) concurrent appends on both replicas make one linear ledger', async () => {
      const PER_NODE = 40;
      const t0 = Date.now();
      // Alternating replicas, and the challenge from one replica answered at the other every other round.
      const load = new Load(nodes, (i, round) => {
        const [x, y] = (i + round) % 2 === 0 ? [a.url, b.url] : [b.url, a.url];
        return { challenge: x, submit: round % 2 === 0 ? x : y };
      }, { perNode: PER_NODE });
      await load.done();
      const ms = Date.now() - t0;
      const statuses = load.exchanges.map((e) => `${e.what} ${e.answer.status ?? e.answer.error}`);
      expect(statuses.filter((s) => s !== 'challenge 201' && s !== 'attestation 200')).toEqual([]);
      expect(load.attestations.length).toBe(PER_NODE * nodes.length);
      const answered = answeredDecisions(load.exchanges);

      const v = await ledgerVerify(['--database-url', url]);
      expectLedgerOk(v);
      const store = await PostgresStore.open({ url });
      try {
        await expectInLedger(store, answered);
        // Dense: entries 1..N, each linked to its predecessor (checked by verify), nothing skipped.
        const seqs = (await allDecisions(store)).map((r) => r.seq);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
        expect(seqs.length).toBeGreaterThanOrEqual(v.result.entries);
      } finally {
        await store.close();
      }
      console.log(`[reliability] replicas load: ${load.attestations.length} attestations across ${nodes.length} nodes and 2 replicas in ${ms} ms; ledger ${v.result.entries} entries, one chain, ${v.result.checkpoints.verified}/${v.result.checkpoints.total} checkpoints verified`);
    }, 120_000);

    it("(c) both replicas sign checkpoints with their own keys, and every checkpoint verifies", async () => {
      const kidOf = async (v: VerifierProcess): Promise<string> => {
        const r = await request<{ keys: Array<{ kid: string }> }>('GET', `${v.url}/.well-known/jwks.json`);
        expect(r.status).toBe(200);
        expect(r.body?.keys.length).toBe(1);
        return r.body!.keys[0]!.kid;
      };
      const kids = { a: await kidOf(a), b: await kidOf(b) };
      expect(kids.a).not.toBe(kids.b);
      const listKids = async (): Promise<{ kids: Set<string>; total: number }> => {
        const r = await request<{ checkpoints: Array<{ kid: string; checkpoint: string; treeSize: number }> }>('GET', `${a.url}/v1/ledger/checkpoints`, { token: tokenA });
        expect(r.status, r.text).toBe(200);
        const cs = r.body!.checkpoints;
        for (const c of cs) expect(decodeCheckpoint(c.checkpoint).kid).toBe(c.kid);
        return { kids: new Set(cs.map((c) => decodeCheckpoint(c.checkpoint).kid)), total: cs.length };
      };
      // The periodic checkpoints (1 s) of a replica that has not signed yet: grow the ledger there until it has.
      let grown = 0;
      await until(
        async () => {
          const { kids: have } = await listKids();
          if (have.has(kids.a) && have.has(kids.b)) return true;
          const missing = have.has(kids.a) ? b : a;
          expectAffirming((await nodes[grown++ % nodes.length]!.attest(missing.url)).attestation);
          return false;
        },
        'checkpoints signed by both replicas',
        30_000,
        100,
      );
      const listed = await listKids();
      expect([...listed.kids].sort()).toEqual([kids.a, kids.b].sort());

      const v = await ledgerVerify(['--database-url', url]);
      expectLedgerOk(v);
      expect(v.result.checkpoints.total).toBeGreaterThanOrEqual(listed.total);
      expect(v.result.checkpoints.total).toBeGreaterThanOrEqual(2);
      expect(v.result.keys.kids).toEqual(expect.arrayContaining([kids.a, kids.b]));
      console.log(`[reliability] replicas checkpoints: ${listed.total} listed, kids ${kids.a.slice(0, 8)}… (A) and ${kids.b.slice(0, 8)}… (B) both present (${grown} extra attestations needed), ${v.result.checkpoints.verified}/${v.result.checkpoints.total} verified`);
    }, 120_000);
  });
});
