/**
 * Attestation over HTTP (issue #3): challenge → evidence (CBOR or JSON) → appraisal → artifact.
 * The happy path yields an artifact a relying party accepts with the verifier's JWKS; each
 * refusal answers with its registry code (error.code and failures[].code) and the registry's
 * HTTP status, never with an artifact, and is recorded in the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { checkCnf, verifyArtifact, type Jwks } from '../../src/artifact/index.js';
import { decodeLedgerEntry, verifyChain } from '../../src/ledger/index.js';
import { TPM_ALG, pcrSelection } from '../../src/tpm/abi/index.js';
import { evidenceDigest } from '../../src/evidence/envelope.js';
import { syntheticAk, syntheticPcrs } from '../helpers/synthetic.js';
import {
  GOOD_PCRS,
  boundKey,
  buildEvidence,
  ekTrustOf,
  enrollOverHttp,
  getChallenge,
  pcrHex,
  postJson,
  startVerifier,
  submit,
  syntheticTpm,
  testCa,
  testPolicy,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestVerifier,
} from '../helpers/verifier.js';

let v: TestVerifier;
let jwks: Jwks;
const nodes = {} as Record<'a' | 'b' | 'c' | 'dual', { tpm: SyntheticTpm; id: string }>;

beforeAll(async () => {
  const ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  v = await startVerifier({
    groups: new Map([
      ['gpu', testPolicy()],
      ['dual', testPolicy({ id: 'dual-bank', sha1: true })],
    ]),
    ekTrust: ekTrustOf(ca),
  });
  for (const [k, group] of [['a', 'gpu'], ['b', 'gpu'], ['c', 'gpu'], ['dual', 'dual']] as const) {
    const tpm = await syntheticTpm(ca, syntheticAk(k === 'b' ? 'rsa' : 'ecc'));
    nodes[k] = { tpm, id: await enrollOverHttp(v.app, tpm, group) };
  }
  const r = await v.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  expect(r.statusCode).toBe(200);
  jwks = r.json<Jwks>();
});
afterAll(async () => {
  await v?.close();
});

interface Affirmed {
  decision: string;
  nodeId: string;
  artifact: string;
  ledger: { seq: number; hash: string };
}

/** Asserts an appraisal refusal: registry code first, status from the registry, no artifact. */
function expectRefused(res: LightMyRequestResponse, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer>();
  expect(body.artifact).toBeUndefined();
  expect(body.decision).toBe('contraindicated');
  expect(body.error.code).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  expect((body.failures ?? []).map((f) => f.code)).toContain(code);
  expect(body.ledger?.seq).toBeGreaterThan(0);
  return body;
}

let tpmClock = 10_000n;
/** Counters that move forward from one accepted quote to the next. */
function nextCounters(): { resetCount: number; restartCount: number; clock: bigint } {
  tpmClock += 1000n;
  return { resetCount: 1, restartCount: 0, clock: tpmClock };
}

describe('attestation: the affirming path', () => {
  it('CBOR evidence → 200 with an artifact that verifies with the JWKS, bound to the agent key', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    expect(challenge.pcrSelection).toEqual([{ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }]);
    expect(challenge.expiresAt).toBe(v.clock.now() + 60_000);
    const key = boundKey();
    const counters = nextCounters();
    const evidence = buildEvidence({ challenge, nodeId: id, ak: tpm.ak, boundKey: key, counters });
    const res = await submit(v.app, evidence, 'cbor');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Affirmed>();
    expect(body.decision).toBe('affirming');

    const claims = await verifyArtifact(body.artifact, { jwks, now: Math.floor(v.clock.now() / 1000), audience: 'key-broker' });
    expect(claims.sub).toBe(id);
    expect(claims.iss).toBe('vouch-test');
    expect(claims.exp - claims.iat).toBe(300);
    checkCnf(claims, key);
    expect(() => checkCnf(claims, boundKey())).toThrow(expect.objectContaining({ code: 'ARTIFACT_CNF_MISMATCH' }));
    expect(claims['vouch.ledger']).toEqual(body.ledger);
    expect(claims['vouch.evidence-digest']).toBe(Buffer.from(evidenceDigest(evidence)).toString('hex'));
    expect(claims.submods['tpm0']?.['ear.status']).toBe('affirming');

    const row = await v.sqlite.getDecision(body.ledger.seq);
    expect(row?.kind).toBe('appraise');
    expect(row?.outcome).toBe('affirming');
    expect(Buffer.from(row?.hash ?? []).toString('hex')).toBe(body.ledger.hash);

    const node = await v.sqlite.getNode(id);
    expect(node?.counters).toEqual(counters);
    expect(node?.lastQuoteAt).toBe(v.clock.now());
  });

  it('JSON evidence → 200 as well (an RSA AK)', async () => {
    const { tpm, id } = nodes.b;
    const challenge = await getChallenge(v.app, id);
    const counters = nextCounters();
    const res = await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters }), 'json');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Affirmed>();
    await expect(verifyArtifact(body.artifact, { jwks, now: Math.floor(v.clock.now() / 1000), audience: 'key-broker' })).resolves.toMatchObject({ sub: id });
    expect((await v.sqlite.getNode(id))?.counters).toEqual(counters);
  });

  it('the same evidence as CBOR and as JSON has the same digest at the verifier', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const evidence = buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: nextCounters() });
    const asCbor = (await submit(v.app, evidence, 'cbor')).json<Affirmed>();
    expect(asCbor.decision).toBe('affirming');
    // The JSON copy is a replay, but it is decoded and digested all the same.
    const asJson = expectRefused(await submit(v.app, evidence, 'json'), 'CHALLENGE_REPLAYED') as ErrorAnswer & { appraisal: { evidenceDigest: string } };
    // The affirming answer states its evidence digest in the artifact.
    const payload = JSON.parse(Buffer.from(asCbor.artifact.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(asJson.appraisal.evidenceDigest).toBe(payload['vouch.evidence-digest']);
  });
});

describe('attestation: refusals', () => {
  it('unknown node: the challenge route answers 404 APPRAISAL_NODE_UNKNOWN', async () => {
    const res = await postJson(v.app, '/v1/challenges', { nodeId: 'tpm-000000000000000000000000' });
    expect(res.statusCode).toBe(404);
    expect(res.json<ErrorAnswer>().error.code).toBe('APPRAISAL_NODE_UNKNOWN');
  });

  it('unknown node: evidence naming a node that is not enrolled is refused with APPRAISAL_NODE_UNKNOWN', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const res = await submit(v.app, buildEvidence({ challenge, nodeId: 'tpm-000000000000000000000000', ak: tpm.ak }));
    const body = res.json<ErrorAnswer>();
    expect(body.artifact).toBeUndefined();
    expect(res.statusCode).toBe(ERRORS[body.error.code].status);
    expect((body.failures ?? []).map((f) => f.code)).toEqual(['CHALLENGE_WRONG_NODE', 'APPRAISAL_NODE_UNKNOWN']);
  });

  it('expired challenge → CHALLENGE_EXPIRED', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const evidence = buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: nextCounters() });
    v.clock.advance(60_000); // expired from expiresAt on
    expectRefused(await submit(v.app, evidence), 'CHALLENGE_EXPIRED');
  });

  it('replayed challenge (the same evidence twice) → CHALLENGE_REPLAYED', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const evidence = buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: nextCounters() });
    expect((await submit(v.app, evidence)).statusCode).toBe(200);
    expectRefused(await submit(v.app, evidence), 'CHALLENGE_REPLAYED');
  });

  it('a failed submission uses the challenge up too', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, signWith: syntheticAk('ecc') })), 'TPM_QUOTE_SIGNATURE_INVALID');
    expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters: nextCounters() })), 'CHALLENGE_REPLAYED');
  });

  it("a challenge issued to node B used by node A → CHALLENGE_WRONG_NODE, and B's challenge still works", async () => {
    const a = nodes.a;
    const c = nodes.c;
    const challengeOfC = await getChallenge(v.app, c.id);
    expectRefused(await submit(v.app, buildEvidence({ challenge: challengeOfC, nodeId: a.id, ak: a.tpm.ak })), 'CHALLENGE_WRONG_NODE');
    const res = await submit(v.app, buildEvidence({ challenge: challengeOfC, nodeId: c.id, ak: c.tpm.ak, counters: { resetCount: 1, restartCount: 0, clock: 1000n } }));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('a quote signed by another AK → TPM_QUOTE_SIGNATURE_INVALID', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const body = expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, signWith: syntheticAk('ecc') })), 'TPM_QUOTE_SIGNATURE_INVALID');
    expect(body.failures?.map((f) => f.code)).toEqual(['TPM_QUOTE_SIGNATURE_INVALID']);
  });

  it('a quote over another nonce → TPM_QUOTE_NONCE_MISMATCH on TPMS_ATTEST.extraData', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    const body = expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, quoteNonce: new Uint8Array(32).fill(9) })), 'TPM_QUOTE_NONCE_MISMATCH');
    expect(body.failures?.[0]?.field).toBe('TPMS_ATTEST.extraData');
  });

  it('a quote bound to another agent key than the evidence names → TPM_QUOTE_NONCE_MISMATCH', async () => {
    const { tpm, id } = nodes.a;
    const challenge = await getChallenge(v.app, id);
    expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, quoteBoundKey: boundKey() })), 'TPM_QUOTE_NONCE_MISMATCH');
  });

  it('PCR mismatch → POLICY_PCR_MISMATCH naming the PCR, the expected and the actual value', async () => {
    const { tpm, id } = nodes.a;
    const changed = syntheticPcrs('pcr');
    const bad = new Uint8Array(32).fill(0xee);
    changed.get(TPM_ALG.SHA256)?.set(3, bad);
    const challenge = await getChallenge(v.app, id);
    const before = await v.sqlite.getNode(id);
    const body = expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, pcrs: changed, counters: nextCounters() })), 'POLICY_PCR_MISMATCH');
    expect(body.failures).toHaveLength(1);
    expect(body.failures?.[0]).toMatchObject({ code: 'POLICY_PCR_MISMATCH', field: 'pcrs.sha256[3]', expected: pcrHex(TPM_ALG.SHA256, 3), actual: 'ee'.repeat(32) });
    // A refused quote does not move the counters.
    expect((await v.sqlite.getNode(id))?.counters).toEqual(before?.counters);
  });

  it('an `any` PCR accepts any value', async () => {
    const { tpm, id } = nodes.a;
    const changed = syntheticPcrs('pcr');
    changed.get(TPM_ALG.SHA256)?.set(10, new Uint8Array(32).fill(0x42));
    const challenge = await getChallenge(v.app, id);
    const res = await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, pcrs: changed, counters: nextCounters() }));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('bank missing: the challenge asks for sha1 and sha256, a quote of sha256 only → TPM_QUOTE_PCR_SELECTION_MISMATCH', async () => {
    const { tpm, id } = nodes.dual;
    const challenge = await getChallenge(v.app, id);
    expect(challenge.pcrSelection.map((b) => b.bank)).toEqual(['sha1', 'sha256']);
    const only256 = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }]);
    expectRefused(await submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, quoteSelection: only256 })), 'TPM_QUOTE_PCR_SELECTION_MISMATCH');
    // Both banks quoted: affirming.
    const c2 = await getChallenge(v.app, id);
    const ok = await submit(v.app, buildEvidence({ challenge: c2, nodeId: id, ak: tpm.ak, pcrs: GOOD_PCRS }));
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('reset counter rollback and clock rollback → TPM_COUNTER_ROLLBACK', async () => {
    const { tpm, id } = nodes.c;
    const attest = async (counters: { resetCount: number; restartCount: number; clock: bigint }) => {
      const challenge = await getChallenge(v.app, id);
      return submit(v.app, buildEvidence({ challenge, nodeId: id, ak: tpm.ak, counters }));
    };
    expect((await attest({ resetCount: 5, restartCount: 2, clock: 50_000n })).statusCode).toBe(200);
    const stored = (await v.sqlite.getNode(id))?.counters;
    expect(stored).toEqual({ resetCount: 5, restartCount: 2, clock: 50_000n });

    let body = expectRefused(await attest({ resetCount: 4, restartCount: 2, clock: 90_000n }), 'TPM_COUNTER_ROLLBACK');
    expect(body.failures?.[0]).toMatchObject({ field: 'TPMS_ATTEST.clockInfo.resetCount', actual: '4' });
    body = expectRefused(await attest({ resetCount: 5, restartCount: 2, clock: 40_000n }), 'TPM_COUNTER_ROLLBACK');
    expect(body.failures?.[0]).toMatchObject({ field: 'TPMS_ATTEST.clockInfo.clock', actual: '40000' });
    body = expectRefused(await attest({ resetCount: 5, restartCount: 1, clock: 60_000n }), 'TPM_COUNTER_ROLLBACK');
    expect(body.failures?.[0]?.field).toBe('TPMS_ATTEST.clockInfo.restartCount');
    expect((await v.sqlite.getNode(id))?.counters).toEqual(stored);

    // After a reset the clock starts again from zero: not a rollback.
    expect((await attest({ resetCount: 6, restartCount: 0, clock: 100n })).statusCode).toBe(200);
    expect((await v.sqlite.getNode(id))?.counters).toEqual({ resetCount: 6, restartCount: 0, clock: 100n });
  });
});

describe('the ledger after attestation', () => {
  it('holds every decision, refusals included, in a chain that verifies', async () => {
    const rows = await v.sqlite.listDecisions(1, 10_000);
    const chain = verifyChain(rows);
    expect(chain.problems).toEqual([]);
    expect(chain.ok).toBe(true);
    const appraisals = rows.filter((r) => r.kind === 'appraise');
    const codes = appraisals
      .filter((r) => r.outcome === 'contraindicated')
      .flatMap((r) => ((decodeLedgerEntry(r.entry).body as { failures?: Array<{ code: string }> }).failures ?? []).map((f) => f.code));
    for (const code of [
      'CHALLENGE_EXPIRED',
      'CHALLENGE_REPLAYED',
      'CHALLENGE_WRONG_NODE',
      'APPRAISAL_NODE_UNKNOWN',
      'TPM_QUOTE_SIGNATURE_INVALID',
      'TPM_QUOTE_NONCE_MISMATCH',
      'POLICY_PCR_MISMATCH',
      'TPM_QUOTE_PCR_SELECTION_MISMATCH',
      'TPM_COUNTER_ROLLBACK',
    ]) {
      expect(codes, code).toContain(code);
    }
    expect(appraisals.filter((r) => r.outcome === 'affirming').length).toBeGreaterThanOrEqual(8);
    expect(rows.filter((r) => r.kind === 'enroll' && r.outcome === 'enrolled')).toHaveLength(4);
  });
});

describe('attestation: artifact options (?format=cwt, ?nonce=)', () => {
  it('issues a CWT with the same claims as the JWT, echoing the relying party nonce', async () => {
    const { encodeEvidenceCbor } = await import('../../src/evidence/envelope.js');
    const { verifyArtifact: rpVerify } = await import('../../src/rp/index.js');
    const { tpm, id } = nodes.c;
    const now = (): number => Math.floor(v.clock.now() / 1000);
    const post = async (query: string): Promise<LightMyRequestResponse> => {
      const challenge = await getChallenge(v.app, id);
      const evidence = buildEvidence({ challenge, nodeId: id, ak: tpm.ak, boundKey: boundKey(), counters: { resetCount: 1000, restartCount: 0, clock: (tpmClock += 1000n) } });
      return v.app.inject({ method: 'POST', url: `/v1/attestations${query}`, payload: Buffer.from(encodeEvidenceCbor(evidence)), headers: { 'content-type': 'application/cbor' } });
    };
    const cwtRes = await post('?format=cwt&nonce=rp-nonce-0001');
    expect(cwtRes.statusCode, cwtRes.body).toBe(200);
    const cwtBody = cwtRes.json<Affirmed & { artifactFormat: string }>();
    expect(cwtBody.artifactFormat).toBe('cwt');
    const cwt = await rpVerify(cwtBody.artifact, { jwks, now: now(), audience: 'key-broker' });
    expect(cwt.format).toBe('cwt');
    expect(cwt.claims.eat_nonce).toBe('rp-nonce-0001');
    expect(cwt.claims['vouch.ledger']).toEqual(cwtBody.ledger);
    const jwtRes = await post('?nonce=rp-nonce-0001');
    const jwtBody = jwtRes.json<Affirmed & { artifactFormat: string }>();
    expect(jwtBody.artifactFormat).toBe('jwt');
    const jwt = await rpVerify(jwtBody.artifact, { jwks, now: now(), audience: 'key-broker' });
    // Same claims apart from what differs between two attestations.
    const strip = (c: Record<string, unknown>): Record<string, unknown> => {
      const { cnf: _c, iat: _i, exp: _e, 'vouch.ledger': _l, 'vouch.evidence-digest': _d, ...rest } = c;
      return rest;
    };
    expect(strip(cwt.claims)).toEqual(strip(jwt.claims));
    expect((await post('?format=xml')).json<{ error: { code: string } }>().error.code).toBe('REQUEST_MALFORMED');
    expect((await post('?nonce=short')).json<{ error: { code: string } }>().error.code).toBe('REQUEST_MALFORMED');
  });
});
