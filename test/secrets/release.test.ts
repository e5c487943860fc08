/**
 * The key broker (issue #7, "Key release"): secrets encrypted at rest, the admin API, and release
 * to the bound key of a trusted node's artifact with HPKE; every refusal with its code.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { addToken, TokenRegistry } from '../../src/verifier/auth.js';
import { SecretsMasterKey, loadSecretsMasterKey } from '../../src/secrets/at-rest.js';
import { parseReleasePolicy, releaseChallenge, releaseInfo, type Released } from '../../src/secrets/broker.js';
import { openRelease } from '../../src/agent/secret.js';
import { openBase } from '../../src/secrets/hpke.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { syntheticAk } from '../helpers/synthetic.js';
import { activateCredentialInSoftware, buildEvidence, ekTrustOf, nameOf, enrollOverHttp, getChallenge, startVerifier, submit, syntheticTpm, testCa, testPolicy, type SyntheticTpm, type TestVerifier } from '../helpers/verifier.js';

let v: TestVerifier;
let tokDir: string;
const tok = {} as Record<'admin' | 'operator', string>;
const nodes = {} as Record<'a' | 'b' | 'c', { tpm: SyntheticTpm; id: string }>;
const SECRET = Buffer.from('db-password: correct horse battery staple');
let tpmClock = 10_000n;

beforeAll(async () => {
  tokDir = mkdtempSync(join(tmpdir(), 'vouch-secrets-'));
  const file = join(tokDir, 'tokens.json');
  tok.admin = addToken(file, { id: 'root', role: 'admin' }, { now: 1 }).token;
  tok.operator = addToken(file, { id: 'ops', role: 'operator' }, { now: 1 }).token;
  const ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  v = await startVerifier({
    groups: new Map([
      ['gpu', testPolicy()],
      ['batch', testPolicy({ id: 'batch' })],
    ]),
    ekTrust: ekTrustOf(ca),
    app: { tokens: TokenRegistry.load(file), secretsKey: SecretsMasterKey.generate(), nodes: { reattestation: new Map([['gpu', { intervalMs: 60_000, deadlineMultiple: 3 }]]) } },
  });
  for (const [k, group] of [['a', 'gpu'], ['b', 'gpu'], ['c', 'batch']] as const) {
    const tpm = await syntheticTpm(ca, syntheticAk('ecc'));
    nodes[k] = { tpm, id: await enrollOverHttp(v.app, tpm, group) };
  }
});
afterAll(async () => {
  await v?.close();
  rmSync(tokDir, { recursive: true, force: true });
});

function call(method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, token?: string, body?: unknown): Promise<LightMyRequestResponse> {
  return v.app.inject({ method, url, ...(token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {}), ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}) });
}

interface Attested {
  artifact: string;
  key: KeyObject;
  ledgerHash: Uint8Array;
  ledgerSeq: number;
}

async function attest(k: 'a' | 'b' | 'c'): Promise<Attested> {
  const { tpm, id } = nodes[k];
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const challenge = await getChallenge(v.app, id);
  tpmClock += 1000n;
  const res = await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: { resetCount: 1, restartCount: 0, clock: tpmClock }, boundKey: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) }));
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json<{ artifact: string; ledger: { seq: number; hash: string } }>();
  return { artifact: body.artifact, key: privateKey, ledgerHash: new Uint8Array(Buffer.from(body.ledger.hash, 'hex')), ledgerSeq: body.ledger.seq };
}

function pop(a: Attested, secretId: string, key = a.key): { challenge: string; signature: string } {
  const c = releaseChallenge(secretId, a.ledgerHash);
  return { challenge: Buffer.from(c).toString('base64url'), signature: sign('sha256', c, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url') };
}

function release(secretId: string, a: Attested, p = pop(a, secretId)): Promise<LightMyRequestResponse> {
  return call('POST', `/v1/secrets/${secretId}/release`, undefined, { artifact: a.artifact, pop: p });
}

function expectRefused(res: LightMyRequestResponse, ...codes: ErrorCode[]): void {
  const body = res.json<{ decision: string; failures: Array<{ code: ErrorCode }> }>();
  expect(body.decision, res.body).toBe('refused');
  expect(body.failures.map((f) => f.code)).toEqual(expect.arrayContaining(codes));
  expect(res.statusCode).toBe(ERRORS[body.failures[0]!.code].status);
}

describe('admin API', () => {
  it('refuses an unauthenticated put and a wrong role', async () => {
    const body = { value: SECRET.toString('base64url'), releasePolicy: { groups: ['gpu'] } };
    const r1 = await call('PUT', '/v1/secrets/db', undefined, body);
    expect(r1.statusCode).toBe(401);
    expect(r1.json<{ error: { code: string } }>().error.code).toBe('AUTH_UNAUTHENTICATED');
    const r2 = await call('PUT', '/v1/secrets/db', tok.operator, body);
    expect(r2.statusCode).toBe(403);
    expect(r2.json<{ error: { code: string } }>().error.code).toBe('AUTH_ROLE_FORBIDDEN');
  });

  it('stores secrets, lists ids and policies only, refuses a bad policy', async () => {
    for (const [id, releasePolicy] of [
      ['db', { groups: ['gpu'], evidence: ['tpm'], audience: 'key-broker', trustVector: { hardware: 'affirming' } }],
      ['batch-only', { groups: ['batch'], audience: 'key-broker' }],
      ['needs-snp', { groups: ['gpu'], evidence: ['tpm', 'snp'], audience: 'key-broker' }],
      ['other-policy', { groups: ['gpu'], policyIds: ['nope'], audience: 'key-broker' }],
      ['gone', { groups: ['gpu'], audience: 'key-broker' }],
    ] as const) {
      const r = await call('PUT', `/v1/secrets/${id}`, tok.admin, { value: SECRET.toString('base64url'), releasePolicy });
      expect(r.statusCode, r.body).toBe(200);
    }
    const bad = await call('PUT', '/v1/secrets/x', tok.admin, { value: 'AA', releasePolicy: { groups: ['gpu'], colour: 'red' } });
    expect(bad.json<{ error: { code: string } }>().error.code).toBe('SECRET_POLICY_INVALID');
    const list = await call('GET', '/v1/secrets', tok.admin);
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(SECRET.toString('base64url'));
    expect(list.json<{ secrets: Array<{ id: string }> }>().secrets.map((s) => s.id)).toEqual(['batch-only', 'db', 'gone', 'needs-snp', 'other-policy']);
    expect((await call('DELETE', '/v1/secrets/gone', tok.admin)).statusCode).toBe(200);
    expect((await call('DELETE', '/v1/secrets/gone', tok.admin)).json<{ error: { code: string } }>().error.code).toBe('SECRET_UNKNOWN');
  });

  it('keeps only ciphertext at rest: the database never holds the plaintext; the ledger holds digests', async () => {
    for (const f of readdirSync(v.dir).filter((n) => n.startsWith('vouch'))) {
      expect(readFileSync(join(v.dir, f)).includes(SECRET)).toBe(false);
    }
    const ledger = await v.sqlite.listDecisions(1, 10_000);
    for (const d of ledger) expect(Buffer.from(d.entry).includes(SECRET)).toBe(false);
    const puts = ledger.filter((d) => d.kind === 'policy').map((d) => decodeLedgerEntry(d.entry));
    expect(puts.length).toBeGreaterThanOrEqual(5);
  });
});

describe('release', () => {
  it('releases to the bound key; the node decrypts with the documented info', async () => {
    const a = await attest('a');
    const res = await release('db', a);
    expect(res.statusCode, res.body).toBe(200);
    const out = res.json<{ enc: string; ciphertext: string; appraisal: { seq: number } }>();
    expect(out.appraisal.seq).toBe(a.ledgerSeq);
    const d = a.key.export({ format: 'jwk' }).d as string;
    const pt = openBase({ enc: Buffer.from(out.enc, 'base64url'), ciphertext: Buffer.from(out.ciphertext, 'base64url') }, Buffer.from(d, 'base64url'), releaseInfo('db', { seq: a.ledgerSeq, hash: a.ledgerHash }), new Uint8Array(0));
    expect(Buffer.from(pt).equals(SECRET)).toBe(true);
    const last = await v.sqlite.lastDecision('release', nodes.a.id);
    expect(last?.outcome).toBe('released');
    expect(Buffer.from(last!.entry).includes(SECRET)).toBe(false);
  });

  it('refuses an unknown secret, a wrong pop, another group, a missing evidence kind, another policy id', async () => {
    const a = await attest('a');
    expectRefused(await release('nope', a), 'RELEASE_SECRET_UNKNOWN');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expectRefused(await release('db', a, pop(a, 'db', other)), 'RELEASE_POP_INVALID');
    expectRefused(await release('db', a, pop(a, 'batch-only')), 'RELEASE_POP_INVALID');
    expectRefused(await release('batch-only', a), 'RELEASE_GROUP_NOT_ALLOWED');
    expectRefused(await release('needs-snp', a), 'RELEASE_EVIDENCE_MISSING');
    expectRefused(await release('other-policy', a), 'RELEASE_POLICY_NOT_ALLOWED');
    const last = await v.sqlite.lastDecision('release', nodes.a.id);
    expect(last?.outcome).toBe('refused');
  });

  it('refuses a superseded artifact, an expired artifact and a stale node', async () => {
    const old = await attest('b');
    const fresh = await attest('b');
    expectRefused(await release('db', old), 'RELEASE_ARTIFACT_SUPERSEDED');
    expect((await release('db', fresh)).statusCode).toBe(200);
    v.clock.advance(200_000); // past the 180 s deadline of group gpu, inside the artifact's 300 s
    expectRefused(await release('db', fresh), 'RELEASE_NODE_STALE');
    v.clock.advance(110_000); // past the artifact's lifetime
    const res = await release('db', fresh);
    const body = res.json<{ failures: Array<{ code: string; actual?: string }> }>();
    expect(res.statusCode).toBe(401);
    expect(body.failures[0]).toMatchObject({ code: 'RELEASE_ARTIFACT_INVALID', actual: 'ARTIFACT_EXPIRED' });
  });

  it('TPM-bound (policy or request): only the enrolled EK and AK recover the secret, and the ledger says so', async () => {
    const put = await call('PUT', '/v1/secrets/tpm-only', tok.admin, { value: SECRET.toString('base64url'), releasePolicy: { groups: ['gpu'], audience: 'key-broker', tpmBound: true } });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json<{ secret: { releasePolicy: { tpmBound?: boolean } } }>().secret.releasePolicy.tpmBound).toBe(true);
    const a = await attest('a');
    const res = await release('tpm-only', a);
    expect(res.statusCode, res.body).toBe(200);
    const out = res.json<Released>();
    expect(out.binding).toBe('tpm');
    const activateWith = (tpm: SyntheticTpm) => (credentialBlob: Uint8Array, secret: Uint8Array): Uint8Array =>
      activateCredentialInSoftware({ ekPrivateKey: tpm.ek.privateKey, akName: nameOf(tpm.ak.public), credentialBlob, secret });
    expect(Buffer.from(openRelease(out, a.key, activateWith(nodes.a.tpm))).equals(SECRET)).toBe(true);
    // The agent's key alone (HPKE) gives only the wrapped inner layer; another TPM cannot activate it.
    expect(() => openRelease(out, a.key)).toThrow(expect.objectContaining({ code: 'RELEASE_TPM_UNWRAP_FAILED' }));
    expect(() => openRelease(out, a.key, activateWith(nodes.b.tpm))).toThrow(expect.objectContaining({ code: 'RELEASE_TPM_UNWRAP_FAILED' }));
    // A request may ask for TPM binding of a secret whose policy does not require it.
    const asked = await call('POST', '/v1/secrets/db/release', undefined, { artifact: a.artifact, pop: pop(a, 'db'), tpmBound: true });
    expect(asked.statusCode, asked.body).toBe(200);
    expect(asked.json<Released>().binding).toBe('tpm');
    expect(Buffer.from(openRelease(asked.json<Released>(), a.key, activateWith(nodes.a.tpm))).equals(SECRET)).toBe(true);
    const plain = await release('db', a);
    expect(plain.json<Released>().binding).toBe('cnf');
    const rec = await v.sqlite.listDecisions(1, 10_000);
    const bodies = rec.filter((d) => d.kind === 'release' && d.outcome === 'released').map((d) => decodeLedgerEntry(d.entry).body);
    expect(bodies.filter((b) => b['binding'] === 'tpm')).toHaveLength(2);
    expect(bodies.every((b) => b['binding'] !== 'tpm' || typeof b['credentialBlobSha256'] === 'string')).toBe(true);
    expect(() => parseReleasePolicy({ groups: ['gpu'], tpmBound: 'yes' })).toThrow(expect.objectContaining({ code: 'SECRET_POLICY_INVALID' }));
  });

  it('refuses a revoked node', async () => {
    const a = await attest('a');
    const r = await call('POST', `/v1/nodes/${nodes.a.id}/revoke`, tok.admin, { reason: 'stolen' });
    expect(r.statusCode, r.body).toBe(200);
    expectRefused(await release('db', a), 'RELEASE_NODE_REVOKED');
  });
});

describe('master key', () => {
  it('reads a 0600 file of 32 bytes, refuses a group-readable one; a wrong key fails clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-mk-'));
    try {
      const f = join(dir, 'k');
      writeFileSync(f, Buffer.alloc(32, 7), { mode: 0o600 });
      const k = loadSecretsMasterKey(f, {});
      expect(k).not.toBeNull();
      chmodSync(f, 0o640);
      expect(() => loadSecretsMasterKey(f, {})).toThrow(expect.objectContaining({ code: 'SECRETS_KEY_UNUSABLE' }));
      expect(() => loadSecretsMasterKey(undefined, { VOUCH_SECRETS_KEY: 'short' })).toThrow(expect.objectContaining({ code: 'SECRETS_KEY_UNUSABLE' }));
      const env = loadSecretsMasterKey(undefined, { VOUCH_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') });
      const sealed = env!.seal('db', SECRET);
      expect(Buffer.from(k!.open('db', sealed.nonce, sealed.ciphertext)).equals(SECRET)).toBe(true);
      expect(() => k!.open('other', sealed.nonce, sealed.ciphertext)).toThrow(expect.objectContaining({ code: 'SECRET_DECRYPT_FAILED' }));
      let msg = '';
      try {
        SecretsMasterKey.generate().open('db', sealed.nonce, sealed.ciphertext);
      } catch (e) {
        msg = `${(e as { code: string }).code}: ${(e as Error).message}`;
      }
      expect(msg).toMatch(/^SECRET_DECRYPT_FAILED: .*master key/);
      expect(msg).not.toContain(Buffer.alloc(32, 7).toString('base64'));
      expect(JSON.stringify({ k })).not.toContain(Buffer.alloc(32, 7).toString('base64'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
