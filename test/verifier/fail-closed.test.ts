/**
 * Fail closed (issue #3): a store error, an exception inside appraisal, or a signing failure ends
 * the request with a 5xx and a registry code, and never with an artifact.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ERRORS, UnavailableError, type ErrorCode } from '../../src/lib/errors.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { encodeTpmtPublic } from '../../src/tpm/abi/index.js';
import type { Policy } from '../../src/policy/index.js';
import type { ArtifactSigner } from '../../src/artifact/index.js';
import type { Store } from '../../src/store/types.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { VerifierService, nodeIdForEk } from '../../src/verifier/service.js';
import { buildApp } from '../../src/verifier/app.js';
import {
  buildEvidence,
  ekTrustOf,
  getChallenge,
  nameOf,
  seededRandom,
  startVerifier,
  submit,
  syntheticTpm,
  testCa,
  testPolicy,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestCa,
  type TestVerifier,
  type TestVerifierOptions,
} from '../helpers/verifier.js';

let ca: TestCa;
let tpm: SyntheticTpm;
let v: TestVerifier | undefined;

beforeAll(async () => {
  ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  tpm = await syntheticTpm(ca);
});
afterEach(async () => {
  await v?.close();
  v = undefined;
});

/** A verifier with `tpm` enrolled directly in the store (enrollment is tested elsewhere). */
async function withNode(opts: Partial<TestVerifierOptions> = {}): Promise<{ v: TestVerifier; nodeId: string }> {
  v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca), ...opts });
  const nodeId = nodeIdForEk(tpm.ek.public);
  const r = await v.sqlite.enrollNode({
    nodeId,
    group: 'gpu',
    ekPublic: encodeTpmtPublic(tpm.ek.public),
    ekCert: tpm.ekCert,
    akPublic: encodeTpmtPublic(tpm.ak.public),
    akName: nameOf(tpm.ak.public),
    enrolledAt: v.clock.now(),
  });
  expect(r.ok).toBe(true);
  return { v, nodeId };
}

function expectServerError(res: LightMyRequestResponse, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer>();
  expect(body.error.code, res.body).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  expect(res.statusCode).toBeGreaterThanOrEqual(500);
  expect(body.artifact).toBeUndefined();
  expect(res.body).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/); // no JWT anywhere in the answer
  return body;
}

describe('fail closed', () => {
  it('the control: the same setup affirms and issues an artifact', async () => {
    const { v, nodeId } = await withNode();
    const res = await submit(v.app, buildEvidence({ challenge: await getChallenge(v.app, nodeId), nodeId, ak: tpm.ak }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<{ artifact: string }>().artifact).toMatch(/^eyJ/);
  });

  it('the ledger cannot be written → 503 STORE_UNAVAILABLE, no artifact', async () => {
    let broken = false;
    const wrap = (s: SqliteStore): Store =>
      new Proxy(s, {
        get(target, prop, receiver) {
          // Both ways of writing the ledger fail: plain decisions and recorded attestations.
          if (broken && (prop === 'appendDecision' || prop === 'commitAttestation')) {
            return async () => {
              throw new UnavailableError('STORE_UNAVAILABLE', `store: ${String(prop)} failed: disk I/O error`);
            };
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const { v, nodeId } = await withNode({ wrapStore: wrap });
    const challenge = await getChallenge(v.app, nodeId);
    broken = true;
    expectServerError(await submit(v.app, buildEvidence({ challenge, nodeId, ak: tpm.ak })), 'STORE_UNAVAILABLE');
    // Refusals too: a decision that cannot be recorded is not answered as a decision.
    broken = false;
    const c2 = await getChallenge(v.app, nodeId);
    broken = true;
    expectServerError(await submit(v.app, buildEvidence({ challenge: c2, nodeId, ak: tpm.ak, quoteNonce: new Uint8Array(32) })), 'STORE_UNAVAILABLE');
    const rows = await v.sqlite.listDecisions(1, 100);
    expect(rows.filter((r) => r.kind === 'appraise')).toHaveLength(0);
  });

  it('a closed database → 503 STORE_UNAVAILABLE on evidence, challenges and health', async () => {
    const { v, nodeId } = await withNode();
    const challenge = await getChallenge(v.app, nodeId);
    await v.sqlite.close();
    expectServerError(await submit(v.app, buildEvidence({ challenge, nodeId, ak: tpm.ak })), 'STORE_UNAVAILABLE');
    expectServerError(await v.app.inject({ method: 'POST', url: '/v1/challenges', payload: { nodeId } }), 'STORE_UNAVAILABLE');
    expectServerError(await v.app.inject({ method: 'GET', url: '/healthz' }), 'STORE_UNAVAILABLE');
  });

  it('an exception inside appraisal (a policy that throws) → 500 APPRAISAL_INTERNAL_ERROR, no artifact, recorded', async () => {
    let armed = false;
    // A thawed copy: proxy invariants forbid lying about the frozen original's properties.
    const policy = structuredClone(testPolicy());
    const trap = <T extends object>(o: T): T =>
      new Proxy(o, {
        get(target, prop, receiver) {
          if (armed) throw new RangeError('policy exploded');
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'object' && value !== null ? trap(value) : value;
        },
      });
    const { v, nodeId } = await withNode({ groups: new Map<string, Policy>([['gpu', trap(policy)]]) });
    const challenge = await getChallenge(v.app, nodeId);
    armed = true;
    const body = expectServerError(await submit(v.app, buildEvidence({ challenge, nodeId, ak: tpm.ak })), 'APPRAISAL_INTERNAL_ERROR');
    expect(body.error.message).not.toMatch(/exploded/); // the detail stays in the log
    armed = false;
    const rows = await v.sqlite.listDecisions(1, 100);
    const last = rows[rows.length - 1];
    expect(last?.kind).toBe('refusal');
    expect(last?.outcome).toBe('error');
    expect(last?.nodeId).toBe(nodeId);
    const failures = (decodeLedgerEntry(last?.entry ?? new Uint8Array(0)).body as { failures: Array<{ code: string }> }).failures;
    expect(failures.map((f) => f.code)).toEqual(['APPRAISAL_INTERNAL_ERROR']);
    expect((await v.sqlite.getNode(nodeId))?.counters).toBeNull();
  });

  it('a damaged AK record (the key cannot be imported) → 500 APPRAISAL_INTERNAL_ERROR', async () => {
    v = await startVerifier({ groups: new Map([['gpu', testPolicy()]]), ekTrust: ekTrustOf(ca) });
    const nodeId = 'tpm-damaged';
    await v.sqlite.enrollNode({
      nodeId,
      group: 'gpu',
      ekPublic: encodeTpmtPublic(tpm.ek.public),
      ekCert: null,
      akPublic: Uint8Array.of(0x00, 0x23, 0x00), // not a TPMT_PUBLIC
      akName: new Uint8Array(34).fill(1),
      enrolledAt: v.clock.now(),
    });
    const challenge = await getChallenge(v.app, nodeId);
    expectServerError(await submit(v.app, buildEvidence({ challenge, nodeId, ak: tpm.ak })), 'APPRAISAL_INTERNAL_ERROR');
  });

  it('the artifact cannot be signed → 503 ARTIFACT_SIGNING_KEY_UNUSABLE, no artifact', async () => {
    const { v: base, nodeId } = await withNode();
    const failingSigner = new Proxy(base.signer, {
      get(target, prop, receiver) {
        if (prop === 'signCompact') {
          return async () => {
            throw new UnavailableError('ARTIFACT_SIGNING_KEY_UNUSABLE', 'the artifact signing key could not sign');
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as ArtifactSigner;
    const service = new VerifierService(base.service.settings, { ...base.service.deps, signer: failingSigner, random: seededRandom('other') });
    const app = await buildApp(service);
    try {
      const challenge = await getChallenge(app, nodeId);
      expectServerError(await submit(app, buildEvidence({ challenge, nodeId, ak: tpm.ak })), 'ARTIFACT_SIGNING_KEY_UNUSABLE');
    } finally {
      await app.close();
    }
  });
});
