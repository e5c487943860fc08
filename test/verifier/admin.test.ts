/**
 * The admin API (issue #7, "Who may call what" and "Continuous attestation"): bearer tokens with
 * roles and tenants, node state (trusted, untrusted, stale, revoked) with an injected clock,
 * revocation recorded in the ledger and enforced on challenges and attestations, and the
 * verifier heartbeat with injected timers. Every refusal answers with its registry code.
 */
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { addToken, parseTokensDocument, tokenDigest, TokenRegistry, type NewToken } from '../../src/verifier/auth.js';
import { nodeState } from '../../src/verifier/nodes.js';
import type { NodeView } from '../../src/verifier/nodes.js';
import { syntheticAk } from '../helpers/synthetic.js';
import {
  buildEvidence,
  ekTrustOf,
  enrollOverHttp,
  getChallenge,
  postJson,
  startVerifier,
  submit,
  syntheticTpm,
  testCa,
  testPolicy,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestVerifier, manualIntervalTimers } from '../helpers/verifier.js';

let v: TestVerifier;
let tokDir: string;
const tok = {} as Record<'admin' | 'operator' | 'rp' | 'acmeOps' | 'gpuOnly', string>;
const nodes = {} as Record<'a' | 'b' | 'c', { tpm: SyntheticTpm; id: string }>;
const logLines: string[] = [];

/** A captured timer: the test fires the heartbeat by hand. */
const timers = manualIntervalTimers();

let tpmClock = 10_000n;
function nextCounters(): { resetCount: number; restartCount: number; clock: bigint } {
  tpmClock += 1000n;
  return { resetCount: 1, restartCount: 0, clock: tpmClock };
}

beforeAll(async () => {
  tokDir = mkdtempSync(join(tmpdir(), 'vouch-tokens-'));
  const file = join(tokDir, 'tokens.json');
  const add = (t: NewToken): string => addToken(file, t, { now: 1 }).token;
  tok.admin = add({ id: 'root', role: 'admin' });
  tok.operator = add({ id: 'ops', role: 'operator' });
  tok.rp = add({ id: 'kb', role: 'relying-party', tenant: 'acme' });
  tok.acmeOps = add({ id: 'acme-ops', role: 'operator', tenant: 'acme' });
  tok.gpuOnly = add({ id: 'gpu-ops', role: 'operator', resources: ['gpu'] });
  const ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  v = await startVerifier({
    groups: new Map([
      ['gpu', testPolicy()],
      ['batch', testPolicy({ id: 'batch' })],
    ]),
    ekTrust: ekTrustOf(ca),
    app: {
      tokens: TokenRegistry.load(file),
      nodes: { groupTenants: new Map([['batch', 'acme']]), reattestation: new Map([['gpu', { intervalMs: 60_000, deadlineMultiple: 3 }]]) },
      heartbeat: { periodMs: 60_000, timers: timers.api },
      logger: { level: 'trace', stream: sink },
    },
  });
  for (const [k, group] of [['a', 'gpu'], ['b', 'gpu'], ['c', 'batch']] as const) {
    const tpm = await syntheticTpm(ca, syntheticAk('ecc'));
    nodes[k] = { tpm, id: await enrollOverHttp(v.app, tpm, group) };
  }
});
afterAll(async () => {
  await v?.close();
  // Closing the app stops the heartbeat timer.
  expect(timers.cleared).toBe(true);
  rmSync(tokDir, { recursive: true, force: true });
});

function call(method: 'GET' | 'POST', url: string, token?: string | null, body?: unknown): Promise<LightMyRequestResponse> {
  return v.app.inject({
    method,
    url,
    ...(token !== undefined && token !== null ? { headers: { authorization: `Bearer ${token}` } } : {}),
    ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
  });
}

function expectCode(res: LightMyRequestResponse, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer>();
  expect(body.error.code, res.body).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  return body;
}

async function attest(k: 'a' | 'b' | 'c'): Promise<LightMyRequestResponse> {
  const { tpm, id } = nodes[k];
  const challenge = await getChallenge(v.app, id);
  return submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: nextCounters() }));
}

describe('tokens file', () => {
  it('stores only SHA-256 digests, mode 0600, and the printed token authenticates', () => {
    const file = join(tokDir, 'tokens.json');
    const text = readFileSync(file, 'utf8');
    for (const t of Object.values(tok)) {
      expect(t).toMatch(/^vouch_[A-Za-z0-9_-]{43}$/);
      expect(text).not.toContain(t);
      expect(text).toContain(tokenDigest(t));
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const reg = TokenRegistry.load(file);
    expect(reg.lookup(tok.rp)).toEqual({ id: 'kb', role: 'relying-party', tenant: 'acme' });
    expect(reg.lookup(`${tok.rp.slice(0, -1)}${tok.rp.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
  });

  it('refuses a damaged or ambiguous tokens file (AUTH_TOKENS_FILE_INVALID)', () => {
    const entry = { id: 'x', role: 'admin', sha256: 'a'.repeat(64) };
    for (const doc of [
      'not json',
      JSON.stringify({ version: 2, tokens: [] }),
      JSON.stringify({ version: 1, tokens: [{ ...entry, role: 'root' }] }),
      JSON.stringify({ version: 1, tokens: [{ ...entry, token: 'plain' }] }),
      JSON.stringify({ version: 1, tokens: [entry, { ...entry, id: 'y' }] }),
      JSON.stringify({ version: 1, tokens: [entry, { ...entry, sha256: 'b'.repeat(64) }] }),
    ]) {
      expect(() => parseTokensDocument(doc)).toThrow(expect.objectContaining({ code: 'AUTH_TOKENS_FILE_INVALID' }) as Error);
    }
    expect(TokenRegistry.load(join(tokDir, 'absent.json')).size).toBe(0);
  });
});

describe('who may call the admin API', () => {
  it('no token → 401 AUTH_UNAUTHENTICATED with a Bearer challenge', async () => {
    const r = await call('GET', '/v1/nodes');
    expectCode(r, 'AUTH_UNAUTHENTICATED');
    expect(r.headers['www-authenticate']).toBe('Bearer realm="vouch"');
    expectCode(await call('POST', `/v1/nodes/${nodes.a.id}/revoke`, null, { reason: 'x' }), 'AUTH_UNAUTHENTICATED');
  });

  it('a bad or malformed token → 401 AUTH_UNAUTHENTICATED, and no token reaches the log', async () => {
    const forged = `vouch_${'A'.repeat(43)}`;
    expectCode(await call('GET', '/v1/nodes', forged), 'AUTH_UNAUTHENTICATED');
    expectCode(await v.app.inject({ method: 'GET', url: '/v1/nodes', headers: { authorization: `Basic ${tok.admin}` } }), 'AUTH_UNAUTHENTICATED');
    expectCode(await v.app.inject({ method: 'GET', url: '/v1/nodes', headers: { authorization: `Bearer ${tok.admin} x` } }), 'AUTH_UNAUTHENTICATED');
    await call('GET', '/v1/nodes', tok.admin);
    const log = logLines.join('');
    expect(log).toContain('unauthenticated');
    expect(log).not.toContain(forged);
    for (const t of Object.values(tok)) expect(log).not.toContain(t);
  });

  it('the redaction hides the header wherever a request is logged', async () => {
    v.app.log.info({ headers: { authorization: `Bearer ${tok.admin}` } }, 'probe');
    const line = logLines.find((l) => l.includes('"probe"'));
    expect(line).toContain('[redacted]');
    expect(line).not.toContain(tok.admin);
  });

  it('a relying-party token on an admin route → 403 AUTH_ROLE_FORBIDDEN', async () => {
    const b = expectCode(await call('GET', '/v1/nodes', tok.rp), 'AUTH_ROLE_FORBIDDEN');
    expect(b.error.actual).toBe('relying-party');
    expectCode(await call('POST', `/v1/nodes/${nodes.c.id}/revoke`, tok.rp, { reason: 'x' }), 'AUTH_ROLE_FORBIDDEN');
  });

  it('a token of another tenant or resource → 403 AUTH_TENANT_FORBIDDEN, and lists only what it reaches', async () => {
    expectCode(await call('GET', `/v1/nodes/${nodes.a.id}`, tok.acmeOps), 'AUTH_TENANT_FORBIDDEN');
    expectCode(await call('POST', `/v1/nodes/${nodes.a.id}/revoke`, tok.acmeOps, { reason: 'x' }), 'AUTH_TENANT_FORBIDDEN');
    expectCode(await call('GET', `/v1/nodes/${nodes.c.id}`, tok.gpuOnly), 'AUTH_TENANT_FORBIDDEN');
    const acme = (await call('GET', '/v1/nodes', tok.acmeOps)).json<{ nodes: NodeView[] }>();
    expect(acme.nodes.map((n) => n.nodeId)).toEqual([nodes.c.id]);
    const gpu = (await call('GET', '/v1/nodes', tok.gpuOnly)).json<{ nodes: NodeView[] }>();
    expect(gpu.nodes.map((n) => n.nodeId).sort()).toEqual([nodes.a.id, nodes.b.id].sort());
    expect((await call('GET', `/v1/nodes/${nodes.c.id}`, tok.acmeOps)).statusCode).toBe(200);
  });

  it('public routes stay public; an unknown node is 404 APPRAISAL_NODE_UNKNOWN', async () => {
    expect((await call('GET', '/.well-known/jwks.json')).statusCode).toBe(200);
    expectCode(await call('GET', '/v1/nodes/tpm-00', tok.admin), 'APPRAISAL_NODE_UNKNOWN');
    expectCode(await call('POST', `/v1/nodes/${nodes.a.id}/revoke`, tok.operator, { reason: '' }), 'REQUEST_MALFORMED');
  });
});

describe('node state', () => {
  it('untrusted before any appraisal, trusted after an affirming one, stale past interval × multiple', async () => {
    const show = async (): Promise<NodeView> => (await call('GET', `/v1/nodes/${nodes.b.id}`, tok.operator)).json<NodeView>();
    expect(await show()).toMatchObject({ nodeId: nodes.b.id, kind: 'tpm', group: 'gpu', state: 'untrusted', lastDecision: null, revoked: null });
    const r = await attest('b');
    expect(r.statusCode, r.body).toBe(200);
    const at = v.clock.now();
    const s = await show();
    expect(s).toMatchObject({ state: 'trusted', attestDueAt: at + 60_000, deadline: at + 180_000 });
    expect(s.lastDecision).toMatchObject({ kind: 'appraise', outcome: 'affirming', time: at, seq: r.json<{ ledger: { seq: number } }>().ledger.seq });
    v.clock.advance(179_999);
    expect((await show()).state).toBe('trusted');
    v.clock.advance(1);
    expect((await show()).state).toBe('stale');
    // Attesting again makes it trusted again.
    expect((await attest('b')).statusCode).toBe(200);
    expect((await show()).state).toBe('trusted');
  });

  it('nodeState: a refusal is untrusted; an appraisal older than a re-admission does not count', () => {
    const r = { intervalMs: 1000, deadlineMultiple: 2 };
    expect(nodeState({ revokedAt: null }, { seq: 5, outcome: 'contraindicated', time: 0 }, null, 1, r).state).toBe('untrusted');
    expect(nodeState({ revokedAt: null }, { seq: 5, outcome: 'affirming', time: 0 }, { seq: 6 }, 1, r).state).toBe('untrusted');
    expect(nodeState({ revokedAt: null }, { seq: 7, outcome: 'affirming', time: 0 }, { seq: 6 }, 1999, r).state).toBe('trusted');
    expect(nodeState({ revokedAt: null }, { seq: 7, outcome: 'affirming', time: 0 }, { seq: 6 }, 2000, r).state).toBe('stale');
    expect(nodeState({ revokedAt: 3 }, { seq: 7, outcome: 'affirming', time: 0 }, null, 1, r).state).toBe('revoked');
  });
});

describe('revocation', () => {
  it('revoke → recorded as a revocation decision; its challenges and attestations are refused (APPRAISAL_NODE_REVOKED)', async () => {
    const { id, tpm } = nodes.a;
    // A challenge issued before the revocation must not yield an artifact after it.
    const early = await getChallenge(v.app, id);
    const r = await call('POST', `/v1/nodes/${id}/revoke`, tok.operator, { reason: 'disk swapped' });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json<{ node: NodeView; ledger: { seq: number; hash: string } }>();
    expect(body.node).toMatchObject({ state: 'revoked', revoked: { at: v.clock.now(), reason: 'disk swapped' } });
    const rec = await v.sqlite.getDecision(body.ledger.seq);
    expect(rec).toMatchObject({ kind: 'revocation', nodeId: id, outcome: 'revoked' });
    expect(decodeLedgerEntry(rec!.entry).body).toMatchObject({ reason: 'disk swapped', by: 'ops', group: 'gpu' });

    expectCode(await postJson(v.app, '/v1/challenges', { nodeId: id }), 'APPRAISAL_NODE_REVOKED');
    const refused = await submit(v.app, buildEvidence({ challenge: early, nodeId: id, ak: tpm.ak, counters: nextCounters() }));
    const rb = expectCode(refused, 'APPRAISAL_NODE_REVOKED');
    expect(refused.json<{ artifact?: string }>().artifact).toBeUndefined();
    expect(rb.ledger?.seq).toBeGreaterThan(body.ledger.seq);
  });

  it('revoke twice → 409 NODE_ALREADY_REVOKED', async () => {
    expectCode(await call('POST', `/v1/nodes/${nodes.a.id}/revoke`, tok.admin, { reason: 'again' }), 'NODE_ALREADY_REVOKED');
  });

  it('readmit → untrusted until it attests again; readmitting a node that is not revoked → 409 NODE_NOT_REVOKED', async () => {
    const { id } = nodes.a;
    const r = await call('POST', `/v1/nodes/${id}/readmit`, tok.operator, { reason: 'reimaged' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json<{ node: NodeView }>().node).toMatchObject({ state: 'untrusted', revoked: null });
    expect((await v.sqlite.getDecision(r.json<{ ledger: { seq: number } }>().ledger.seq))?.outcome).toBe('readmitted');
    expect((await attest('a')).statusCode).toBe(200);
    expect((await call('GET', `/v1/nodes/${id}`, tok.operator)).json<NodeView>().state).toBe('trusted');
    expectCode(await call('POST', `/v1/nodes/${id}/readmit`, tok.operator, { reason: 'x' }), 'NODE_NOT_REVOKED');
  });
});

describe('heartbeat', () => {
  it('appends a heartbeat decision at start and at each period; GET /v1/heartbeat returns the last one', async () => {
    expect(timers.period).toBe(60_000);
    const first = (await call('GET', '/v1/heartbeat')).json<{ seq: number; hash: string; time: number; verifierId: string; periodMs: number }>();
    expect(first).toMatchObject({ verifierId: 'vouch-test', periodMs: 60_000 });
    expect(await v.sqlite.getDecision(first.seq)).toMatchObject({ kind: 'heartbeat', nodeId: null, outcome: 'alive' });

    v.clock.advance(60_000);
    timers.fn?.();
    // The beat is an async append; wait for it to land.
    let next = first;
    for (let i = 0; i < 50 && next.seq === first.seq; i++) {
      await new Promise((r) => setTimeout(r, 5));
      next = (await call('GET', '/v1/heartbeat')).json<typeof first>();
    }
    expect(next.seq).toBeGreaterThan(first.seq);
    expect(next.time).toBe(v.clock.now());
    const rec = await v.sqlite.getDecision(next.seq);
    expect(rec).toMatchObject({ kind: 'heartbeat', outcome: 'alive', time: v.clock.now() });
    expect(Buffer.from(rec!.hash).toString('hex')).toBe(next.hash);
    expect(decodeLedgerEntry(rec!.entry).body).toEqual({ verifierId: 'vouch-test', periodMs: 60_000 });
  });

  it('a verifier without a heartbeat answers 503 HEARTBEAT_MISSING', async () => {
    const ca = await testCa('CN=hb CA');
    const w = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca) });
    try {
      expectCode(await w.app.inject({ method: 'GET', url: '/v1/heartbeat' }), 'HEARTBEAT_MISSING');
      // Admin routes with no tokens configured: closed.
      expectCode(await w.app.inject({ method: 'GET', url: '/v1/nodes', headers: { authorization: `Bearer ${tok.admin}` } }), 'AUTH_UNAUTHENTICATED');
    } finally {
      await w.close();
    }
  });
});
