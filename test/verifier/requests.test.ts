/**
 * Malformed, oversized and unexpected requests (issue #3, "4xx with a registry code for malformed
 * requests"): each answers with its registry code and status, before any appraisal runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js';
import { decodeStrict, encodeCanonical, type CborObject } from '../../src/lib/cbor.js';
import { TPM_ALG, pcrSelection } from '../../src/tpm/abi/index.js';
import { EVIDENCE_MAX_BYTES, encodeEvidenceCbor, encodeEvidenceJson, type Evidence } from '../../src/evidence/envelope.js';
import { syntheticAk } from '../helpers/synthetic.js';
import {
  b64u,
  boundKey,
  buildEvidence,
  ekTrustOf,
  enrollBody,
  postJson,
  startVerifier,
  syntheticTpm,
  testCa,
  testPolicy,
  type Challenge,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestCa,
  type TestVerifier,
} from '../helpers/verifier.js';

let ca: TestCa;
let v: TestVerifier;
let tpm: SyntheticTpm;
let evidence: Evidence;

beforeAll(async () => {
  ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca) });
  tpm = await syntheticTpm(ca);
  // Well-formed evidence for a challenge that was never issued: only its shape matters here.
  const challenge: Challenge = {
    challengeId: '00112233445566778899aabbccddeeff',
    nonce: b64u(new Uint8Array(32)),
    expiresAt: 0,
    pcrSelection: [{ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }],
    nonceBytes: new Uint8Array(32),
    selection: pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }]),
  };
  evidence = buildEvidence({ challenge, nodeId: 'tpm-000000000000000000000000', ak: syntheticAk('ecc'), boundKey: boundKey() });
});
afterAll(async () => {
  await v?.close();
});

function expectCode(res: LightMyRequestResponse, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer>();
  expect(body.error.code, res.body).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  expect(body.error.category).toBe(ERRORS[code].category);
  expect(body.artifact).toBeUndefined();
  return body;
}

function cbor(payload: Uint8Array | Buffer, type = 'application/cbor') {
  return v.app.inject({ method: 'POST', url: '/v1/attestations', payload: Buffer.from(payload), headers: { 'content-type': type } });
}

/** The envelope's data model with `edit` applied, re-encoded as canonical CBOR. */
function edited(edit: (doc: CborObject) => void): Uint8Array {
  const doc = decodeStrict(encodeEvidenceCbor(evidence)) as CborObject;
  edit(doc);
  return encodeCanonical(doc);
}

describe('evidence envelope', () => {
  it('the control: the unedited envelope decodes and reaches the appraisal (a refusal, not a 400)', async () => {
    const res = await cbor(edited(() => undefined));
    expect(res.json<ErrorAnswer>().error.code).toBe('CHALLENGE_UNKNOWN');
  });

  it('malformed CBOR → 400 EVIDENCE_MALFORMED', async () => {
    expectCode(await cbor(Uint8Array.of(0xff, 0x00, 0x13)), 'EVIDENCE_MALFORMED');
    const whole = encodeEvidenceCbor(evidence);
    expectCode(await cbor(whole.subarray(0, whole.length - 1)), 'EVIDENCE_MALFORMED');
    expectCode(await cbor(Buffer.concat([whole, Buffer.from([0])])), 'EVIDENCE_MALFORMED');
  });

  it('an empty CBOR body → 400 EVIDENCE_MALFORMED', async () => {
    expectCode(await cbor(new Uint8Array(0)), 'EVIDENCE_MALFORMED');
  });

  it('an unknown evidence field, at the top or inside tpm → 400 EVIDENCE_UNKNOWN_FIELD', async () => {
    let body = expectCode(await cbor(edited((d) => void (d['extra'] = 1))), 'EVIDENCE_UNKNOWN_FIELD');
    expect(body.error.field).toBe('evidence.extra');
    body = expectCode(await cbor(edited((d) => void ((d['tpm'] as CborObject)['quote2'] = new Uint8Array(1)))), 'EVIDENCE_UNKNOWN_FIELD');
    expect(body.error.field).toBe('evidence.tpm.quote2');
  });

  it('an unknown field in JSON evidence → 400 EVIDENCE_UNKNOWN_FIELD', async () => {
    const doc = JSON.parse(encodeEvidenceJson(evidence)) as Record<string, unknown>;
    doc['extra'] = true;
    const res = await v.app.inject({ method: 'POST', url: '/v1/attestations', payload: JSON.stringify(doc), headers: { 'content-type': 'application/json' } });
    expectCode(res, 'EVIDENCE_UNKNOWN_FIELD');
  });

  it('a `tdx` entry without TPM evidence (a TDX-only node) → 400 EVIDENCE_KIND_UNSUPPORTED; a `gpu` entry too (never ignored)', async () => {
    const tdxOnly = expectCode(
      await cbor(
        edited((d) => {
          d['tdx'] = { quote: new Uint8Array(8) };
          delete d['tpm'];
        }),
      ),
      'EVIDENCE_KIND_UNSUPPORTED',
    );
    expect(tdxOnly.error.field).toBe('evidence.tdx');
    const gpu = expectCode(await cbor(edited((d) => void (d['gpu'] = { report: new Uint8Array(8) }))), 'EVIDENCE_KIND_UNSUPPORTED');
    expect(gpu.error.field).toBe('evidence.gpu');
  });

  it('an unknown key inside `tdx` → 400 EVIDENCE_UNKNOWN_FIELD; a CCEL table without its log area → 400 EVIDENCE_MALFORMED', async () => {
    expectCode(await cbor(edited((d) => void (d['tdx'] = { quote: new Uint8Array(8), report: new Uint8Array(1) }))), 'EVIDENCE_UNKNOWN_FIELD');
    const body = expectCode(await cbor(edited((d) => void (d['tdx'] = { quote: new Uint8Array(8), ccelTable: new Uint8Array(56) }))), 'EVIDENCE_MALFORMED');
    expect(body.error.field).toBe('evidence.tdx.ccelData');
  });

  it('an `snp` report of the wrong size → 400 EVIDENCE_MALFORMED', async () => {
    const body = expectCode(await cbor(edited((d) => void (d['snp'] = { report: new Uint8Array(8) }))), 'EVIDENCE_MALFORMED');
    expect(body.error.field).toBe('evidence.snp.report');
  });

  it('an unknown key inside `snp` → 400 EVIDENCE_UNKNOWN_FIELD', async () => {
    expectCode(await cbor(edited((d) => void (d['snp'] = { report: new Uint8Array(1184), vcek: new Uint8Array(1) }))), 'EVIDENCE_UNKNOWN_FIELD');
  });

  it('another envelope version → 400 EVIDENCE_VERSION_UNSUPPORTED', async () => {
    expectCode(await cbor(edited((d) => void (d['v'] = 2))), 'EVIDENCE_VERSION_UNSUPPORTED');
  });

  it('a body over 8 MiB → 413 REQUEST_TOO_LARGE', async () => {
    expectCode(await cbor(Buffer.alloc(EVIDENCE_MAX_BYTES + 1)), 'REQUEST_TOO_LARGE');
  });

  it('a content type other than CBOR or JSON → 415 REQUEST_UNSUPPORTED_MEDIA_TYPE', async () => {
    const bytes = encodeEvidenceCbor(evidence);
    expectCode(await cbor(bytes, 'text/plain'), 'REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expectCode(await cbor(bytes, 'application/octet-stream'), 'REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expectCode(await cbor(bytes, 'application/xml'), 'REQUEST_UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('route bodies', () => {
  it('an unknown JSON property → 400 REQUEST_MALFORMED; the same body without it passes validation (nothing is stripped)', async () => {
    // Without the extra key the body validates and the service answers (the node is unknown).
    const control = await postJson(v.app, '/v1/challenges', { nodeId: 'tpm-000000000000000000000000' });
    expect(control.json<ErrorAnswer>().error.code).toBe('APPRAISAL_NODE_UNKNOWN');
    expectCode(await postJson(v.app, '/v1/challenges', { nodeId: 'tpm-000000000000000000000000', admin: true }), 'REQUEST_MALFORMED');

    // Enrollment: an extra key would otherwise be a valid enrollment (201).
    expectCode(await postJson(v.app, '/v1/enrollments', { ...enrollBody(tpm), trusted: true }), 'REQUEST_MALFORMED');
    const ok = await postJson(v.app, '/v1/enrollments', enrollBody(tpm));
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('wrong types are refused, not coerced → 400 REQUEST_MALFORMED', async () => {
    expectCode(await postJson(v.app, '/v1/challenges', { nodeId: 12345 }), 'REQUEST_MALFORMED');
    expectCode(await postJson(v.app, '/v1/challenges', {}), 'REQUEST_MALFORMED');
    expectCode(await postJson(v.app, '/v1/enrollments', { ...enrollBody(tpm), ekCertificates: 'abc' }), 'REQUEST_MALFORMED');
  });

  it('a body that is not JSON → 400 REQUEST_MALFORMED', async () => {
    const res = await v.app.inject({ method: 'POST', url: '/v1/challenges', payload: '{"nodeId": ', headers: { 'content-type': 'application/json' } });
    expectCode(res, 'REQUEST_MALFORMED');
  });

  it('a route body over its limit → 413 REQUEST_TOO_LARGE', async () => {
    expectCode(await postJson(v.app, '/v1/challenges', { nodeId: 'x'.repeat(70 * 1024) }), 'REQUEST_TOO_LARGE');
  });

  it('an unknown route → 404 NOT_FOUND', async () => {
    expectCode(await v.app.inject({ method: 'GET', url: '/v1/no-such-route' }), 'NOT_FOUND');
  });
});

describe('rate limit', () => {
  let limited: TestVerifier;
  beforeAll(async () => {
    limited = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca), app: { rateLimitPerMinute: 3 } });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('challenge and enrollment requests over the limit → 429 RATE_LIMITED with retry-after, until the window passes', async () => {
    const ask = () => postJson(limited.app, '/v1/challenges', { nodeId: 'tpm-000000000000000000000000' });
    for (let i = 0; i < 3; i++) expect((await ask()).statusCode).toBe(404);
    const res = await ask();
    expectCode(res, 'RATE_LIMITED');
    expect(res.headers['retry-after']).toBe('60');
    // The enrollment route shares the scope's limit.
    expectCode(await postJson(limited.app, '/v1/enrollments', enrollBody(tpm)), 'RATE_LIMITED');
    // Evidence submission is not in the limited scope.
    expect((await limited.app.inject({ method: 'POST', url: '/v1/attestations', payload: Buffer.from(encodeEvidenceCbor(evidence)), headers: { 'content-type': 'application/cbor' } })).statusCode).not.toBe(429);
    limited.clock.advance(60_000);
    expect((await ask()).statusCode).toBe(404);
  });
});
