/**
 * Enrollment over HTTP (issue #3): EK chain, AK template, credential activation. The node's TPM
 * side of activation runs in software (test/helpers/verifier.ts). Every refusal answers with its
 * registry code and status, and every enrollment decision lands in the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { verifyChain } from '../../src/ledger/index.js';
import { decodeLedgerEntry } from '../../src/ledger/entry.js';
import { TPMA_OBJECT, type TpmtPublic } from '../../src/tpm/abi/index.js';
import { nodeIdForEk } from '../../src/verifier/service.js';
import {
  activate,
  b64u,
  ekTrustOf,
  enrollBody,
  postJson,
  startVerifier,
  syntheticTpm,
  testCa,
  testPolicy,
  type EnrollAnswer,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestCa,
  type TestVerifier,
} from '../helpers/verifier.js';

let ca: TestCa;
let otherCa: TestCa;
let v: TestVerifier;

beforeAll(async () => {
  ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  otherCa = await testCa('CN=untrusted TPM CA,O=elsewhere');
  v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca) });
});
afterAll(async () => {
  await v?.close();
});

function expectRefusal(res: { statusCode: number; json: <T>() => T }, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer>();
  expect(body.error.code).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  expect(body.error.category).toBe(ERRORS[code].category);
  return body;
}

async function step1(tpm: SyntheticTpm, over: Parameters<typeof enrollBody>[1] = {}) {
  return postJson(v.app, '/v1/enrollments', enrollBody(tpm, over));
}

describe('enrollment', () => {
  it('happy path: 201 with a credential, then 200 after activation, and the node is enrolled', async () => {
    const tpm = await syntheticTpm(ca);
    const r1 = await step1(tpm);
    expect(r1.statusCode).toBe(201);
    const answer = r1.json<EnrollAnswer>();
    expect(answer.enrollmentId).toMatch(/^[0-9a-f]{32}$/);
    expect(answer.nodeId).toBe(nodeIdForEk(tpm.ek.public));
    expect(answer.expiresAt).toBe(v.clock.now() + 300_000);
    // Not enrolled until the secret comes back.
    expect(await v.sqlite.getNode(answer.nodeId)).toBeNull();

    const r2 = await postJson(v.app, `/v1/enrollments/${answer.enrollmentId}/activate`, { secret: b64u(activate(tpm, answer)) });
    expect(r2.statusCode).toBe(200);
    const done = r2.json<{ nodeId: string; akName: string; ledger: { seq: number; hash: string } }>();
    expect(done.nodeId).toBe(answer.nodeId);
    const node = await v.sqlite.getNode(answer.nodeId);
    expect(node).not.toBeNull();
    expect(node?.group).toBe('gpu');
    expect(Buffer.from(node?.ekCert ?? []).equals(Buffer.from(tpm.ekCert))).toBe(true);
    expect(node?.counters).toBeNull();
    const row = await v.sqlite.getDecision(done.ledger.seq);
    expect(row?.kind).toBe('enroll');
    expect(row?.outcome).toBe('enrolled');
    expect(row?.nodeId).toBe(answer.nodeId);
    // The pending enrollment is used up.
    const again = await postJson(v.app, `/v1/enrollments/${answer.enrollmentId}/activate`, { secret: b64u(activate(tpm, answer)) });
    expectRefusal(again, 'ENROLL_UNKNOWN');
  });

  it('EK certificate from another CA → ENROLL_EK_UNTRUSTED with the chain failure', async () => {
    const tpm = await syntheticTpm(otherCa);
    const body = expectRefusal(await step1(tpm), 'ENROLL_EK_UNTRUSTED');
    const codes = (body.failures ?? []).map((f) => f.code);
    expect(codes).toContain('ENROLL_EK_UNTRUSTED');
    expect(codes).toContain('EK_CHAIN_NO_ISSUER');
    expect(body.ledger?.seq).toBeGreaterThan(0);
    expect(await v.sqlite.getNode(nodeIdForEk(tpm.ek.public))).toBeNull();
  });

  it('a forged certificate naming the trusted CA → ENROLL_EK_UNTRUSTED with EK_CHAIN_SIGNATURE_INVALID', async () => {
    const impostor = await testCa(ca.name); // same subject, another key
    const tpm = await syntheticTpm(impostor);
    const body = expectRefusal(await step1(tpm), 'ENROLL_EK_UNTRUSTED');
    expect((body.failures ?? []).map((f) => f.code)).toContain('EK_CHAIN_SIGNATURE_INVALID');
  });

  it('no EK certificate → ENROLL_EK_CERT_MISSING', async () => {
    const tpm = await syntheticTpm(ca);
    const body = expectRefusal(await step1(tpm, { certs: [] }), 'ENROLL_EK_CERT_MISSING');
    expect(body.error.field).toBe('ekCertificates');
  });

  it('a certificate for another key → EK_KEY_MISMATCH', async () => {
    const tpm = await syntheticTpm(ca);
    const other = await syntheticTpm(ca);
    expectRefusal(await step1(tpm, { certs: [other.ekCert] }), 'EK_KEY_MISMATCH');
  });

  it('an AK that is not restricted → TPM_AK_TEMPLATE_INVALID naming the attribute', async () => {
    const tpm = await syntheticTpm(ca);
    const loose = { ...tpm.ak.public, objectAttributes: tpm.ak.public.objectAttributes & ~TPMA_OBJECT.restricted } as TpmtPublic;
    const body = expectRefusal(await step1(tpm, { akPublic: loose }), 'TPM_AK_TEMPLATE_INVALID');
    expect((body.failures ?? []).some((f) => f.field === 'TPMT_PUBLIC.objectAttributes.restricted')).toBe(true);
  });

  it('a wrong activation secret → ENROLL_ACTIVATION_FAILED; after maxActivationAttempts the enrollment is gone', async () => {
    const tpm = await syntheticTpm(ca);
    const answer = (await step1(tpm)).json<EnrollAnswer>();
    const url = `/v1/enrollments/${answer.enrollmentId}/activate`;
    for (let i = 0; i < 3; i++) {
      const body = expectRefusal(await postJson(v.app, url, { secret: b64u(new Uint8Array(32).fill(i + 1)) }), 'ENROLL_ACTIVATION_FAILED');
      expect(body.ledger?.seq).toBeGreaterThan(0);
    }
    // Three failures (maxActivationAttempts): even the right secret no longer enrolls.
    expectRefusal(await postJson(v.app, url, { secret: b64u(activate(tpm, answer)) }), 'ENROLL_UNKNOWN');
    expect(await v.sqlite.getNode(answer.nodeId)).toBeNull();
  });

  it('a secret recovered for another AK does not activate (the credential is bound to the AK name)', async () => {
    const tpm = await syntheticTpm(ca);
    const answer = (await step1(tpm)).json<EnrollAnswer>();
    // The EK is right, but the node claims an AK that is not the one the credential names.
    const other = await syntheticTpm(ca);
    expect(() => activate({ ...tpm, ak: other.ak }, answer)).toThrow(/HMAC/);
  });

  it('an expired enrollment → ENROLL_UNKNOWN', async () => {
    const tpm = await syntheticTpm(ca);
    const answer = (await step1(tpm)).json<EnrollAnswer>();
    v.clock.advance(300_000);
    expectRefusal(await postJson(v.app, `/v1/enrollments/${answer.enrollmentId}/activate`, { secret: b64u(activate(tpm, answer)) }), 'ENROLL_UNKNOWN');
  });

  it('an unknown group → ENROLL_GROUP_UNKNOWN', async () => {
    const tpm = await syntheticTpm(ca);
    const body = expectRefusal(await step1(tpm, { group: 'nope' }), 'ENROLL_GROUP_UNKNOWN');
    expect(body.error.field).toBe('group');
  });

  it('the same TPM enrolled twice → ENROLL_CONFLICT, and the first enrollment is unchanged', async () => {
    const tpm = await syntheticTpm(ca);
    const a1 = (await step1(tpm)).json<EnrollAnswer>();
    expect((await postJson(v.app, `/v1/enrollments/${a1.enrollmentId}/activate`, { secret: b64u(activate(tpm, a1)) })).statusCode).toBe(200);
    const first = await v.sqlite.getNode(a1.nodeId);
    // Step 1 seals a credential again; the conflict shows when the enrollment would complete.
    const r1 = await step1(tpm);
    expect(r1.statusCode).toBe(201);
    const a2 = r1.json<EnrollAnswer>();
    const body = expectRefusal(await postJson(v.app, `/v1/enrollments/${a2.enrollmentId}/activate`, { secret: b64u(activate(tpm, a2)) }), 'ENROLL_CONFLICT');
    expect(body.ledger?.seq).toBeGreaterThan(0);
    expect(await v.sqlite.getNode(a1.nodeId)).toEqual(first);
    // The pending enrollment that can never complete is gone.
    expect(await v.sqlite.getPendingEnrollment(a2.enrollmentId)).toBeNull();
  });

  it("another TPM presenting an enrolled node's AK → ENROLL_CONFLICT", async () => {
    const victim = await syntheticTpm(ca);
    const a1 = (await step1(victim)).json<EnrollAnswer>();
    expect((await postJson(v.app, `/v1/enrollments/${a1.enrollmentId}/activate`, { secret: b64u(activate(victim, a1)) })).statusCode).toBe(200);
    const thief = { ...(await syntheticTpm(ca)), ak: victim.ak };
    const a2 = (await step1(thief)).json<EnrollAnswer>();
    expectRefusal(await postJson(v.app, `/v1/enrollments/${a2.enrollmentId}/activate`, { secret: b64u(activate(thief, a2)) }), 'ENROLL_CONFLICT');
    expect(await v.sqlite.getNode(a2.nodeId)).toBeNull();
  });

  it('every enrollment decision is in the ledger, and the chain verifies', async () => {
    const rows = await v.sqlite.listDecisions(1, 10_000);
    const chain = verifyChain(rows);
    expect(chain.problems).toEqual([]);
    expect(chain.ok).toBe(true);
    const enrolls = rows.filter((r) => r.kind === 'enroll');
    expect(enrolls.filter((r) => r.outcome === 'enrolled')).toHaveLength(3);
    const refusedCodes = enrolls
      .filter((r) => r.outcome === 'refused')
      .flatMap((r) => {
        const body = decodeLedgerEntry(r.entry).body as { failures?: Array<{ code: string }> };
        return (body.failures ?? []).map((f) => f.code);
      });
    for (const code of ['ENROLL_EK_UNTRUSTED', 'ENROLL_EK_CERT_MISSING', 'EK_KEY_MISMATCH', 'TPM_AK_TEMPLATE_INVALID', 'ENROLL_ACTIVATION_FAILED', 'ENROLL_CONFLICT']) {
      expect(refusedCodes, code).toContain(code);
    }
    expect(refusedCodes.filter((c) => c === 'ENROLL_ACTIVATION_FAILED')).toHaveLength(3);
    expect(refusedCodes.filter((c) => c === 'ENROLL_CONFLICT')).toHaveLength(2);
  });
});
