/**
 * Job admission and node events (issue #7, "Job admission", "Continuous attestation"):
 * `POST /v1/authorize` refuses with its code on every path, records every answer as an
 * 'authorize' ledger decision, and admits with an artifact the RP SDK verifies; `GET /v1/events`
 * streams enroll → attest → revoke in order with ledger positions.
 */
import { replayDecision } from '../../src/verifier/replay.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { addToken, TokenRegistry, type NewToken } from '../../src/verifier/auth.js';
import { decideAdmission, parseAdmissionConfig } from '../../src/verifier/admission.js';
import type { NodeEvent } from '../../src/verifier/events.js';
import { verifyArtifact } from '../../src/rp/verify.js';
import { syntheticAk, syntheticPcrs } from '../helpers/synthetic.js';
import { buildEvidence, ekTrustOf, enrollOverHttp, getChallenge, submit, startVerifier, syntheticTpm, testCa, testPolicy, type SyntheticTpm, type TestCa, type TestVerifier } from '../helpers/verifier.js';

let v: TestVerifier;
let ca: TestCa;
let tokDir: string;
const tok = {} as Record<'admin' | 'operator' | 'rp' | 'acmeRp', string>;
const nodes = {} as Record<'a' | 'b', { tpm: SyntheticTpm; id: string }>;
let tpmClock = 10_000n;

beforeAll(async () => {
  tokDir = mkdtempSync(join(tmpdir(), 'vouch-adm-'));
  const file = join(tokDir, 'tokens.json');
  const add = (t: NewToken): string => addToken(file, t, { now: 1 }).token;
  tok.admin = add({ id: 'root', role: 'admin' });
  tok.operator = add({ id: 'ops', role: 'operator' });
  tok.rp = add({ id: 'sched', role: 'relying-party' });
  tok.acmeRp = add({ id: 'acme-sched', role: 'relying-party', tenant: 'acme' });
  ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  v = await startVerifier({
    groups: new Map([['gpu', testPolicy()], ['batch', testPolicy({ id: 'batch' })]]),
    ekTrust: ekTrustOf(ca),
    app: {
      tokens: TokenRegistry.load(file),
      nodes: { groupTenants: new Map([['batch', 'acme']]), reattestation: new Map([['gpu', { intervalMs: 60_000, deadlineMultiple: 3 }]]) },
      admission: parseAdmissionConfig({
        lifetimeSeconds: 60,
        resources: {
          'gpu-pool': { groups: ['gpu'], actions: ['run-job'], maxAgeSeconds: 600, requireSubmods: ['tpm0'], trustVector: { hardware: 'affirming' } },
          strict: { groups: ['gpu'], actions: ['run-job'], maxAgeSeconds: 5 },
        },
      }),
    },
  });
  for (const k of ['a', 'b'] as const) {
    const tpm = await syntheticTpm(ca, syntheticAk('ecc'));
    nodes[k] = { tpm, id: await enrollOverHttp(v.app, tpm, 'gpu') };
  }
});
afterAll(async () => {
  await v?.close();
  rmSync(tokDir, { recursive: true, force: true });
});

async function attest(tpm: SyntheticTpm, id: string, bad = false): Promise<LightMyRequestResponse> {
  tpmClock += 1000n;
  const challenge = await getChallenge(v.app, id);
  return submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: { resetCount: 1, restartCount: 0, clock: tpmClock }, ...(bad ? { pcrs: syntheticPcrs('tampered') } : {}) }));
}

function authorize(token: string | null, body: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return v.app.inject({ method: 'POST', url: '/v1/authorize', ...(token !== null ? { headers: { authorization: `Bearer ${token}` } } : {}), payload: body });
}

interface Refusal {
  decision: string;
  error: { code: ErrorCode };
  failures: { code: ErrorCode }[];
  ledger: { seq: number };
}

async function refused(res: LightMyRequestResponse, code: ErrorCode): Promise<Refusal> {
  const body = res.json<Refusal>();
  expect(body.error.code, res.body).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  return body;
}

async function expectRefusal(res: LightMyRequestResponse, code: ErrorCode): Promise<void> {
  const body = await refused(res, code);
  expect(body.decision).toBe('refused');
  expect(body.failures.map((f) => f.code)).toContain(code);
  const d = await v.sqlite.getDecision(body.ledger.seq);
  expect(d?.kind).toBe('authorize');
  expect(d?.outcome).toBe('refused');
}

describe('GET /v1/events', () => {
  it('streams enroll → attest → revoke in order with ledger positions, to admin/operator only', async () => {
    expect((await v.app.inject({ method: 'GET', url: '/v1/events', headers: { authorization: `Bearer ${tok.rp}` } })).statusCode).toBe(403);
    const address = await v.app.listen({ host: '127.0.0.1', port: 0 });
    const ac = new AbortController();
    const res = await fetch(`${address}/v1/events`, { headers: { authorization: `Bearer ${tok.operator}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const tpm = await syntheticTpm(ca, syntheticAk('ecc'));
    const id = await enrollOverHttp(v.app, tpm, 'gpu');
    expect((await attest(tpm, id)).statusCode).toBe(200);
    const rv = await v.app.inject({ method: 'POST', url: `/v1/nodes/${id}/revoke`, headers: { authorization: `Bearer ${tok.admin}` }, payload: { reason: 'test' } });
    expect(rv.statusCode).toBe(200);
    let text = '';
    const dec = new TextDecoder();
    while ((text.match(/\n\n/g) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    ac.abort();
    const events = text
      .split('\n\n')
      .filter((b) => b.includes('data: '))
      .map((b) => ({ type: /event: (\w+)/.exec(b)?.[1], id: Number(/id: (\d+)/.exec(b)?.[1]), data: JSON.parse(b.slice(b.indexOf('data: ') + 6)) as NodeEvent }));
    expect(events.map((e) => e.type)).toEqual(['enrolled', 'trusted', 'revoked']);
    expect(events.every((e) => e.data.nodeId === id && e.id === e.data.seq)).toBe(true);
    expect(events[0]!.id).toBeLessThan(events[1]!.id);
    expect(events[1]!.id).toBeLessThan(events[2]!.id);
    expect((await v.sqlite.getDecision(events[2]!.id))?.kind).toBe('revocation');
  });
});

describe('POST /v1/authorize', () => {
  it('admits a trusted node with a signed artifact the RP SDK verifies', async () => {
    expect((await attest(nodes.a.tpm, nodes.a.id)).statusCode).toBe(200);
    const res = await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ decision: string; artifact: string; expiresAt: number; ledger: { seq: number }; appraisal: { seq: number } }>();
    expect(body.decision).toBe('admitted');
    const jwks = (await v.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: unknown[] }>();
    const now = Math.floor(v.clock.now() / 1000);
    const verified = await verifyArtifact(body.artifact, { jwks, now, require: { submods: ['tpm0'] } });
    const c = verified.claims as typeof verified.claims & { 'vouch.admission': unknown; 'vouch.appraisal': unknown };
    expect(c.sub).toBe(nodes.a.id);
    expect(c['vouch.admission']).toEqual({ action: 'run-job', resource: 'gpu-pool' });
    expect(c.exp).toBe(now + 60);
    expect(body.expiresAt).toBe(c.exp);
    expect(c['vouch.ledger'].seq).toBe(body.ledger.seq);
    expect(c['vouch.appraisal']).toMatchObject({ seq: body.appraisal.seq });
    expect((await v.sqlite.getDecision(body.ledger.seq))?.outcome).toBe('admitted');
    expect((await v.sqlite.getDecision(body.appraisal.seq))?.kind).toBe('appraise');
    await expect(verifyArtifact(body.artifact, { jwks, now: now + 61 })).rejects.toMatchObject({ code: 'ARTIFACT_EXPIRED' });
  });

  it('refuses without a token, with another role, and for another tenant', async () => {
    await refused(await authorize(null, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' }), 'AUTH_UNAUTHENTICATED');
    await refused(await authorize(tok.operator, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' }), 'AUTH_ROLE_FORBIDDEN');
    await expectRefusal(await authorize(tok.acmeRp, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' }), 'AUTH_TENANT_FORBIDDEN');
  });

  it('refuses an unknown resource and an action the resource does not allow', async () => {
    await expectRefusal(await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'nope' }), 'ADMISSION_RESOURCE_UNKNOWN');
    await expectRefusal(await authorize(tok.rp, { node: nodes.a.id, action: 'delete-all', resource: 'gpu-pool' }), 'ADMISSION_ACTION_NOT_ALLOWED');
  });

  it('refuses a node whose last appraisal refused it', async () => {
    expect((await attest(nodes.b.tpm, nodes.b.id, true)).statusCode).not.toBe(200);
    await expectRefusal(await authorize(tok.rp, { node: nodes.b.id, action: 'run-job', resource: 'gpu-pool' }), 'ADMISSION_APPRAISAL_REFUSED');
  });

  it('refuses a too-old appraisal, then a stale node (injected clock)', async () => {
    v.clock.advance(10_000);
    await expectRefusal(await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'strict' }), 'ADMISSION_APPRAISAL_TOO_OLD');
    v.clock.advance(200_000);
    await expectRefusal(await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' }), 'ADMISSION_NODE_STALE');
  });

  it('refuses a revoked node', async () => {
    expect((await attest(nodes.a.tpm, nodes.a.id)).statusCode).toBe(200);
    expect((await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' })).statusCode).toBe(200);
    await v.app.inject({ method: 'POST', url: `/v1/nodes/${nodes.a.id}/revoke`, headers: { authorization: `Bearer ${tok.admin}` }, payload: { reason: 'x' } });
    await expectRefusal(await authorize(tok.rp, { node: nodes.a.id, action: 'run-job', resource: 'gpu-pool' }), 'ADMISSION_NODE_REVOKED');
  });
});

describe('replay of admissions', () => {
  it('every authorize decision above (admitted and each refusal) replays to the identical result digest', async () => {
    const rows = (await v.sqlite.listDecisions(1, 10_000)).filter((r) => r.kind === 'authorize');
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const outcomes = new Set<string>();
    for (const r of rows) {
      const replayed = await replayDecision(v.sqlite, r.seq);
      expect(replayed.identical, JSON.stringify(replayed)).toBe(true);
      expect(replayed.replayed.resultDigest).toBe(replayed.recorded.resultDigest);
      outcomes.add(`${replayed.recorded.outcome}:${replayed.recorded.failures[0] ?? ''}`);
    }
    expect([...outcomes]).toEqual(expect.arrayContaining(['admitted:', 'refused:ADMISSION_NODE_REVOKED', 'refused:ADMISSION_NODE_STALE', 'refused:AUTH_TENANT_FORBIDDEN']));
  });
});

describe('decideAdmission and its configuration', () => {
  it('lists every reason, and refuses misspelled rules', () => {
    const codes = decideAdmission({
      action: 'x',
      resourceName: 'r',
      resource: { groups: ['gpu'], actions: ['run-job'], maxAgeSeconds: 1, requireSubmods: ['cpu0'] },
      node: { group: 'batch', revokedAt: null },
      state: 'trusted',
      appraisal: { outcome: 'affirming', time: 0, submods: { tpm0: {} } },
      now: 5000,
    }).map((r) => r.code);
    expect(codes).toEqual(['ADMISSION_ACTION_NOT_ALLOWED', 'ADMISSION_GROUP_NOT_ALLOWED', 'ADMISSION_APPRAISAL_TOO_OLD', 'ADMISSION_SUBMOD_MISSING']);
    expect(() => parseAdmissionConfig({ resources: { r: { groups: ['g'], actions: ['a'], maxAgeSecond: 5 } } })).toThrow(expect.objectContaining({ code: 'ADMISSION_CONFIG_INVALID' }));
  });
});
