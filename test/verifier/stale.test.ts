/**
 * The `stale` transition (issue #7): with a fake clock, a trusted node that passes its deadline
 * is announced exactly once — on the event bus, the `GET /v1/events` stream and the webhooks —
 * revoked and untrusted nodes never are, and a node is announced again after it is trusted again
 * and passes its new deadline. The initial scan and the store re-check (another replica's
 * decisions) are covered with a watcher on its own bus.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { addToken, TokenRegistry } from '../../src/verifier/auth.js';
import { EventBus, type NodeEvent } from '../../src/verifier/events.js';
import { NodeAdmin, type NodeView } from '../../src/verifier/nodes.js';
import { StaleWatcher } from '../../src/verifier/stale.js';
import { loadWebhookConfig } from '../../src/verifier/webhooks.js';
import { syntheticAk, syntheticPcrs } from '../helpers/synthetic.js';
import { buildEvidence, ekTrustOf, enrollOverHttp, getChallenge, startVerifier, submit, syntheticTpm, testCa, testPolicy, type SyntheticTpm, type TestVerifier, manualIntervalTimers } from '../helpers/verifier.js';
import { until, webhookReceiver, writeSecretFile, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const GPU = { intervalMs: 60_000, deadlineMultiple: 3 };
const GPU_DEADLINE = GPU.intervalMs * GPU.deadlineMultiple;
/** The default re-attestation (300 s × 3) for the batch group. */
const BATCH_DEADLINE = 900_000;

let v: TestVerifier;
let dir: string;
let rx: WebhookReceiver;
let operator: string;
const nodes = {} as Record<'a' | 'b' | 'c' | 'd', { tpm: SyntheticTpm; id: string }>;
/** Every event of the service's bus. */
const bus: NodeEvent[] = [];
/** The SSE stream of GET /v1/events, as text. */
let sse = '';
let sseReq: ClientRequest | undefined;

/** The stale check's timer, captured: the test fires it. */
const timers = manualIntervalTimers();

let tpmClock = 10_000n;
function counters(): { resetCount: number; restartCount: number; clock: bigint } {
  tpmClock += 1000n;
  return { resetCount: 1, restartCount: 0, clock: tpmClock };
}

async function attest(k: keyof typeof nodes, good = true): Promise<{ seq: number; hash: string }> {
  const { tpm, id } = nodes[k];
  const challenge = await getChallenge(v.app, id);
  const r = await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: counters(), ...(good ? {} : { pcrs: syntheticPcrs('tampered') }) }));
  expect(r.statusCode, r.body).toBe(good ? 200 : 403);
  return r.json<{ ledger: { seq: number; hash: string } }>().ledger;
}

function admin(method: 'GET' | 'POST', url: string, body?: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return v.app.inject({ method, url, headers: { authorization: `Bearer ${operator}` }, ...(body !== undefined ? { payload: body } : {}) });
}

const staleOnBus = (): NodeEvent[] => bus.filter((e) => e.type === 'stale');
const staleOnSse = (): Array<{ id: number; data: NodeEvent }> =>
  sse
    .split('\n\n')
    .filter((f) => f.includes('event: stale'))
    .map((f) => ({ id: Number(/^id: (\d+)$/m.exec(f)?.[1]), data: JSON.parse(/^data: (.*)$/m.exec(f)?.[1] ?? 'null') as NodeEvent }));
const staleOnWebhook = (): Array<{ nodeId: string; seq: number; deadline: number }> =>
  rx.received
    .map((r) => {
      expect(r.error).toBeNull();
      expect(r.verified).not.toBeNull();
      return JSON.parse(r.body) as { type: string; nodeId: string; seq: number; deadline: number };
    })
    .filter((b) => b.type === 'stale')
    .map((b) => ({ nodeId: b.nodeId, seq: b.seq, deadline: b.deadline }));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-stale-'));
  const tokens = join(dir, 'tokens.json');
  operator = addToken(tokens, { id: 'ops', role: 'operator' }, { now: 1 }).token;
  const secret = writeSecretFile(dir, 'hook.whsec');
  // Receivers check the timestamp against the verifier's (fake) clock, bound below.
  let now = (): number => Date.now();
  rx = await webhookReceiver(new Map([['/hook', secret.key]]), () => now());
  const file = join(dir, 'webhooks.json');
  writeFileSync(file, JSON.stringify({ webhooks: [{ id: 'ops', url: `${rx.url}/hook`, secretFile: 'hook.whsec' }] }));
  const ca = await testCa('CN=vouch stale CA');
  v = await startVerifier({
    groups: new Map([
      ['gpu', testPolicy()],
      ['batch', testPolicy({ id: 'batch' })],
    ]),
    ekTrust: ekTrustOf(ca),
    app: {
      tokens: TokenRegistry.load(tokens),
      nodes: { reattestation: new Map([['gpu', GPU]]) },
      staleCheck: { periodMs: 10_000, timers: timers.api },
      webhooks: loadWebhookConfig(file),
    },
  });
  now = v.clock.now;
  v.service.events.subscribe((e) => bus.push(e));
  for (const [k, group] of [['a', 'gpu'], ['b', 'gpu'], ['c', 'batch'], ['d', 'gpu']] as const) {
    const tpm = await syntheticTpm(ca, syntheticAk('ecc'));
    nodes[k] = { tpm, id: await enrollOverHttp(v.app, tpm, group) };
  }
  // The SSE stream over a real socket.
  const url = await v.app.listen({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    sseReq = get(`${url}/v1/events`, { headers: { authorization: `Bearer ${operator}` } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        sse += c;
        if (sse.includes(': vouch events')) resolve();
      });
      res.on('error', () => undefined);
    });
    sseReq.on('error', reject);
  });
});

afterAll(async () => {
  sseReq?.destroy();
  await v?.close();
  // Closing the app stops the stale timer.
  expect(timers.cleared).toBe(true);
  await rx?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('stale events', () => {
  let t0 = 0;
  let aFirst: { seq: number; hash: string };

  it('a trusted node past its deadline → exactly one stale event, on the bus, the SSE stream and the webhook; none for revoked or untrusted nodes', async () => {
    expect(timers.period).toBe(10_000);
    t0 = v.clock.now();
    aFirst = await attest('a');
    await attest('b');
    await attest('c');
    await attest('d');
    expect(v.app.staleWatcher?.size).toBe(4);
    // b is revoked, d refused at its next attestation: neither becomes stale.
    expect((await admin('POST', `/v1/nodes/${nodes.b.id}/revoke`, { reason: 'retired' })).statusCode).toBe(200);
    await attest('d', false);
    expect(v.app.staleWatcher?.size).toBe(2);

    v.clock.advance(GPU_DEADLINE - 1);
    expect(await v.app.staleWatcher?.check()).toEqual([]);
    v.clock.advance(1);
    const out = await v.app.staleWatcher?.check();
    const want: NodeEvent = { type: 'stale', nodeId: nodes.a.id, group: 'gpu', seq: aFirst.seq, hash: aFirst.hash, time: t0, deadline: t0 + GPU_DEADLINE };
    expect(out).toEqual([want]);
    // Not again at the next checks.
    v.clock.advance(10_000);
    expect(await v.app.staleWatcher?.check()).toEqual([]);
    expect(await v.app.staleWatcher?.check()).toEqual([]);

    expect(staleOnBus()).toEqual([want]);
    await until(() => staleOnSse().length > 0, 'the stale event on GET /v1/events');
    expect(staleOnSse()).toEqual([{ id: aFirst.seq, data: want }]);
    await v.app.webhooks?.whenIdle();
    expect(staleOnWebhook()).toEqual([{ nodeId: nodes.a.id, seq: aFirst.seq, deadline: t0 + GPU_DEADLINE }]);
    expect(v.app.webhooks?.counters.failed).toBe(0);
    // The admin API agrees.
    expect((await admin('GET', `/v1/nodes/${nodes.a.id}`)).json<NodeView>().state).toBe('stale');
    expect((await admin('GET', `/v1/nodes/${nodes.b.id}`)).json<NodeView>().state).toBe('revoked');
    expect((await admin('GET', `/v1/nodes/${nodes.d.id}`)).json<NodeView>().state).toBe('untrusted');
  });

  it('the timer runs the check at its period (a node of a group with another deadline)', async () => {
    v.clock.set(t0 + BATCH_DEADLINE);
    timers.fn?.();
    await until(() => staleOnBus().length === 2, 'the stale event of c');
    expect(staleOnBus()[1]).toMatchObject({ nodeId: nodes.c.id, group: 'batch', deadline: t0 + BATCH_DEADLINE });
    // The check that fired it has finished: nothing else is announced.
    expect(await v.app.staleWatcher?.check()).toEqual([]);
    expect(staleOnBus().map((e) => e.nodeId)).toEqual([nodes.a.id, nodes.c.id]);
  });

  it('announced again after the node is trusted again and passes its new deadline', async () => {
    const t1 = v.clock.now();
    const again = await attest('a');
    // d is trusted again too; b, re-admitted and attested, as well.
    await attest('d');
    expect((await admin('POST', `/v1/nodes/${nodes.b.id}/readmit`, { reason: 'reimaged' })).statusCode).toBe(200);
    v.clock.advance(30_000);
    const bAt = v.clock.now();
    const b = await attest('b');
    v.clock.set(t1 + GPU_DEADLINE);
    const out = (await v.app.staleWatcher?.check()) ?? [];
    expect(new Set(out.map((e) => e.nodeId))).toEqual(new Set([nodes.a.id, nodes.d.id]));
    expect(out.find((e) => e.nodeId === nodes.a.id)).toEqual({ type: 'stale', nodeId: nodes.a.id, group: 'gpu', seq: again.seq, hash: again.hash, time: t1, deadline: t1 + GPU_DEADLINE });
    v.clock.set(bAt + GPU_DEADLINE);
    expect((await v.app.staleWatcher?.check())?.map((e) => [e.nodeId, e.seq])).toEqual([[nodes.b.id, b.seq]]);
    expect(staleOnBus().filter((e) => e.nodeId === nodes.a.id).map((e) => e.seq)).toEqual([aFirst.seq, again.seq]);
    await v.app.webhooks?.whenIdle();
    expect(staleOnWebhook().map((w) => w.nodeId)).toEqual(staleOnBus().map((e) => e.nodeId));
    await until(() => staleOnSse().length === staleOnBus().length, 'every stale event on the SSE stream');
  });
});

describe('the watcher on its own bus (as another replica)', () => {
  it('scans the store at start: nodes trusted then are watched, nodes already stale are not announced', async () => {
    const t2 = v.clock.now();
    const a = await attest('a');
    const own = new EventBus();
    const seen: NodeEvent[] = [];
    own.subscribe((e) => seen.push(e));
    const w = new StaleWatcher({ store: v.sqlite, nodes: new NodeAdmin({ store: v.sqlite, clock: v.clock.now, reattestation: new Map([['gpu', GPU]]) }), events: own, clock: v.clock.now, pageSize: 1, timers: { setInterval: () => 'x', clearInterval: () => undefined } });
    await w.start();
    try {
      // a was just trusted; b, c and d are stale already (b, d from the test above).
      expect(w.size).toBe(1);
      expect(w.deadlineOf(nodes.a.id)).toBe(t2 + GPU_DEADLINE);
      expect(await w.check()).toEqual([]);

      // a attests again through the service (this watcher does not hear it): the store re-check
      // moves it to the new deadline instead of announcing the old one.
      v.clock.advance(60_000);
      const a2 = await attest('a');
      v.clock.set(t2 + GPU_DEADLINE);
      expect(await w.check()).toEqual([]);
      expect(w.deadlineOf(nodes.a.id)).toBe(t2 + 60_000 + GPU_DEADLINE);
      expect(a2.seq).toBeGreaterThan(a.seq);

      // Revoked elsewhere before its deadline: dropped, never announced.
      expect((await admin('POST', `/v1/nodes/${nodes.a.id}/revoke`, { reason: 'lost' })).statusCode).toBe(200);
      v.clock.set(t2 + 60_000 + GPU_DEADLINE);
      expect(await w.check()).toEqual([]);
      expect(w.size).toBe(0);
      expect(seen).toEqual([]);
    } finally {
      await w.stop();
    }
  });

  it('a period under 1 s is refused', () => {
    expect(() => new StaleWatcher({ store: v.sqlite, nodes: new NodeAdmin({ store: v.sqlite, clock: v.clock.now }), events: new EventBus(), clock: v.clock.now, periodMs: 10 })).toThrow(
      expect.objectContaining({ code: 'MISUSE_ARGUMENT', field: 'staleCheck.periodMs' }) as Error,
    );
  });
});
