/**
 * SNP-only nodes end to end: a confidential VM without a vTPM enrolls with a report binding its
 * node key (and a proof of possession of that key), then attests with SEV-SNP evidence alone.
 * The agent's real configfs-tsm code path runs against the emulated tree (test/helpers/fake-tsm),
 * whose reports are signed by the TEST-ONLY AMD chain; the verifier listens on loopback.
 *
 * Each refusal is checked with its code: a wrong key proof, a bound key other than the node key,
 * a report bound to another nonce, a replayed challenge, a debug guest, a replayed or expired
 * enrollment, a TPM node sending SNP-only evidence, an SNP node sending TPM evidence, and groups
 * whose policy does not admit SNP-only nodes.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnpOnlyAgent, NODE_KEY_FILE, loadOrCreateNodeKey } from '../../src/agent/snp-agent.js';
import { fetchSecret } from '../../src/agent/secret.js';
import { SecretsMasterKey } from '../../src/secrets/at-rest.js';
import { addToken, TokenRegistry } from '../../src/verifier/auth.js';
import { VerifierClient, VerifierRefusal } from '../../src/agent/client.js';
import { verifyArtifact, toPublicJwk } from '../../src/artifact/index.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { signNodeKeyProof } from '../../src/evidence/key-proof.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { EVIDENCE_VERSION, type Evidence, type SnpOnlyEvidence } from '../../src/evidence/envelope.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import type { TsmFs } from '../../src/agent/tsm.js';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { FakeTsm, signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';
import { syntheticAk } from '../helpers/synthetic.js';
import {
  b64u,
  boundKey,
  buildEvidence,
  ekTrustOf,
  enrollOverHttp,
  fromB64u,
  getChallenge,
  postJson,
  submit,
  syntheticTpm,
  testCa,
  testPolicy,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestVerifier,
  startVerifier,
  enrollBody,
} from '../helpers/verifier.js';

const chain = testSnpChain();
const measurement = '01'.repeat(48);

const SNP_RULES = {
  debug: 'forbidden',
  migrationAgent: 'forbidden',
  smt: 'allowed',
  vmpl: [0],
  measurement: [measurement],
  hostData: 'any',
  idKeyDigest: 'any',
  authorKeyDigest: 'any',
  familyId: 'any',
  imageId: 'any',
  minTcb: { bootLoader: chain.tcb.bl, tee: chain.tcb.tee, snp: chain.tcb.snp, microcode: chain.tcb.ucode },
  minGuestSvn: 'any',
  platformInfo: 'any',
  allowMaskedChipId: false,
  allowMissingCrl: false,
};

/** A policy for SNP-only nodes: snp rules and no TPM rules. */
function cvmPolicy(): Policy {
  return parsePolicy(JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'cvm', snp: SNP_RULES, artifact: { lifetimeSeconds: 120, audience: ['key-broker'] } }), 'json');
}

/** A CVM with a vTPM: tpm rules and snp rules (SNP-only nodes are not admitted). */
function mixedPolicy(): Policy {
  const base = JSON.parse(JSON.stringify(testPolicy({ id: 'mixed' }))) as Record<string, unknown>;
  return parsePolicy(JSON.stringify({ ...base, snp: SNP_RULES }), 'json');
}

const codes = (a: ErrorAnswer): string[] => (a.failures ?? []).map((f) => f.code);

let adminToken = '';
/** A tokens file with one admin token, for the key broker's admin routes. */
function tokensFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'vouch-snp-only-tokens-'));
  const f = join(d, 'tokens.json');
  adminToken = addToken(f, { id: 'root', role: 'admin' }, { now: 1 }).token;
  return f;
}

describe('SNP-only nodes (no vTPM), end to end through configfs-tsm', () => {
  let v: TestVerifier;
  let url: string;
  let dir: string;
  let tpm: SyntheticTpm;

  beforeAll(async () => {
    const ca = await testCa('snp-only');
    tpm = await syntheticTpm(ca);
    v = await startVerifier({
      groups: new Map([
        ['cvm', cvmPolicy()],
        ['gpu', testPolicy()],
        ['mixed', mixedPolicy()],
      ]),
      ekTrust: ekTrustOf(ca),
      // The TEST-ONLY ARK is trusted here only: by default only AMD's ARKs are pinned.
      settings: { snp: { pinnedArks: { [createHash('sha256').update(chain.ark).digest('hex')]: 'Milan' }, crls: [chain.crl] } },
      app: { rateLimitPerMinute: 10_000, secretsKey: SecretsMasterKey.generate(), tokens: TokenRegistry.load(tokensFile()) },
    });
    url = await v.app.listen({ host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'vouch-snp-only-'));
  });

  afterAll(async () => {
    await v?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function agent(stateDir: string, tsm: TsmFs & { root: string } = new FakeTsm(), group = 'cvm'): SnpOnlyAgent {
    return new SnpOnlyAgent({ verifier: new VerifierClient(url), stateDir, group, snp: { root: tsm.root, fs: tsm } });
  }

  /** An enrolled SNP-only node (its own state directory). */
  async function enrolled(name: string): Promise<{ a: SnpOnlyAgent; nodeId: string; stateDir: string }> {
    const stateDir = join(dir, name);
    const a = agent(stateDir);
    const nodeId = await a.ensureEnrolled();
    return { a, nodeId, stateDir };
  }

  async function freshEvidence(a: SnpOnlyAgent, nodeId: string): Promise<SnpOnlyEvidence> {
    const ch = await getChallenge(v.app, nodeId);
    return a.evidenceFor(nodeId, ch);
  }

  it('enrolls (node id from the node key, kind snp, key file 0600, ledger records report digest, CHIP_ID and MEASUREMENT) and attests affirmed: cpu0 only, cnf = node key', async () => {
    const { a, nodeId, stateDir } = await enrolled('good');
    const spki = await a.nodeKeySpki();
    expect(nodeId).toBe(`snp-${createHash('sha256').update(spki).digest('hex').slice(0, 32)}`);
    expect(statSync(join(stateDir, NODE_KEY_FILE)).mode & 0o777).toBe(0o600);
    const node = await v.sqlite.getNode(nodeId);
    expect(node?.kind).toBe('snp');
    expect(Buffer.from(node!.nodeKey!).equals(Buffer.from(spki))).toBe(true);
    expect(node?.ekPublic.length).toBe(0);
    expect(Buffer.from(node!.akName).subarray(0, 2)).toEqual(Buffer.from([0x53, 0x4e]));

    const head = await v.sqlite.ledgerHead();
    const entry = decodeLedgerEntry((await v.sqlite.getDecision(head!.seq))!.entry);
    expect(entry.kind).toBe('enroll');
    expect(entry.outcome).toBe('enrolled');
    expect(entry.body).toMatchObject({ kind: 'snp', group: 'cvm', chipId: Buffer.from(chain.chipId).toString('hex'), measurement });
    expect(entry.body['reportSha256']).toMatch(/^[0-9a-f]{64}$/);

    const out = await a.attestOnce();
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    const claims = await verifyArtifact(out.artifact!, { jwks, audience: 'key-broker', now: Math.floor(v.clock.now() / 1000) });
    expect(Object.keys(claims.submods)).toEqual(['cpu0']);
    expect(claims.submods['cpu0']?.['ear.status']).toBe('affirming');
    expect(claims.sub).toBe(nodeId);
    expect(claims.cnf.jwk).toEqual(toPublicJwk(spki, 'nodeKey'));

    // A restarted agent reuses the key and the enrollment.
    const again = agent(stateDir);
    expect(await again.ensureEnrolled()).toBe(nodeId);
    expect(Buffer.from(await again.nodeKeySpki()).equals(Buffer.from(spki))).toBe(true);
  });

  it('a key proof by another key is refused (SNP_KEY_PROOF_INVALID): same image, other CVM', async () => {
    const { a, nodeId } = await enrolled('proof');
    const ev = await freshEvidence(a, nodeId);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ch = await getChallenge(v.app, nodeId);
    const forged: SnpOnlyEvidence = { ...(await a.evidenceFor(nodeId, ch)), keyProof: signNodeKeyProof(other, ch.nonceBytes, ev.snp.report) };
    const r = await submit(v.app, forged);
    expect(r.statusCode).toBe(422);
    expect(codes(r.json<ErrorAnswer>())).toEqual(['SNP_KEY_PROOF_INVALID']);
  });

  it('a bound key other than the node key is refused (EVIDENCE_BOUND_KEY_NOT_NODE_KEY)', async () => {
    const { a, nodeId } = await enrolled('bound');
    const ev = await freshEvidence(a, nodeId);
    const r = await submit(v.app, { ...ev, boundKey: boundKey() });
    expect(r.statusCode).toBe(422);
    expect(codes(r.json<ErrorAnswer>())).toEqual(['EVIDENCE_BOUND_KEY_NOT_NODE_KEY']);
  });

  it('a genuine report bound to another nonce is refused (SNP_REPORT_DATA_MISMATCH)', async () => {
    const { stateDir, nodeId } = await enrolled('nonce');
    const fake = new FakeTsm();
    // The guest puts other REPORT_DATA into the request: a report made for another challenge.
    const other: TsmFs & { root: string } = {
      root: fake.root,
      mkdir: (p) => fake.mkdir(p),
      readFile: (p) => fake.readFile(p),
      rmdir: (p) => fake.rmdir(p),
      stat: (p) => fake.stat(p),
      writeFile: (p, data) => fake.writeFile(p, p.endsWith('/inblob') ? teeReportData(new Uint8Array(32).fill(7), new Uint8Array([1])) : data),
    };
    const out = await agent(stateDir, other).attestOnce();
    expect(out.nodeId).toBe(nodeId);
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['SNP_REPORT_DATA_MISMATCH']);
  });

  it('a replayed challenge is refused (CHALLENGE_REPLAYED, 409)', async () => {
    const { a, nodeId } = await enrolled('replay');
    const ev = await freshEvidence(a, nodeId);
    expect((await submit(v.app, ev)).statusCode).toBe(200);
    const r = await submit(v.app, ev);
    expect(r.statusCode).toBe(409);
    expect(codes(r.json<ErrorAnswer>())).toEqual(['CHALLENGE_REPLAYED']);
  });

  it('a guest launched with debug allowed is refused (POLICY_SNP_DEBUG)', async () => {
    const { stateDir } = await enrolled('debug');
    const out = await agent(stateDir, new FakeTsm({ reportFields: { policy: 0x30000n | (1n << 19n) } })).attestOnce();
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['POLICY_SNP_DEBUG']);
  });

  it('a debug guest cannot enroll either, and the refusal is recorded with the report digest', async () => {
    const a = agent(join(dir, 'debug-enroll'), new FakeTsm({ reportFields: { policy: 0x30000n | (1n << 19n) } }));
    const err = await a.ensureEnrolled().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(VerifierRefusal);
    expect((err as VerifierRefusal).code).toBe('POLICY_SNP_DEBUG');
    const head = await v.sqlite.ledgerHead();
    const entry = decodeLedgerEntry((await v.sqlite.getDecision(head!.seq))!.entry);
    expect(entry).toMatchObject({ kind: 'enroll', outcome: 'refused' });
    expect(entry.body['reportSha256']).toMatch(/^[0-9a-f]{64}$/);
  });

  /** Step 1 and a correct step-2 body, by hand. */
  async function manualEnrollment(): Promise<{ id: string; body: Record<string, string> }> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
    const r1 = await postJson(v.app, '/v1/enrollments/snp', { group: 'cvm', nodeKey: b64u(spki) });
    expect(r1.statusCode).toBe(201);
    const { enrollmentId, nonce } = r1.json<{ enrollmentId: string; nonce: string }>();
    const n = fromB64u(nonce);
    const fake = new FakeTsm();
    const report = signSyntheticSnpReport(chain, syntheticSnpFields(chain, { reportData: teeReportData(n, spki) }));
    return { id: enrollmentId, body: { report: b64u(report), certTable: b64u(fake.certTable()), keyProof: b64u(signNodeKeyProof(privateKey, n, report)) } };
  }

  it('an enrollment is single use: a replayed completion is refused (ENROLL_UNKNOWN)', async () => {
    const { id, body } = await manualEnrollment();
    const ok = await postJson(v.app, `/v1/enrollments/snp/${id}`, body);
    expect(ok.statusCode).toBe(200);
    expect(ok.json<{ nodeId: string }>().nodeId).toMatch(/^snp-[0-9a-f]{32}$/);
    const again = await postJson(v.app, `/v1/enrollments/snp/${id}`, body);
    expect(again.statusCode).toBe(404);
    expect(again.json<ErrorAnswer>().error.code).toBe('ENROLL_UNKNOWN');
  });

  it('a refused completion uses the enrollment up too (a wrong key proof, then the right one: ENROLL_UNKNOWN)', async () => {
    const { id, body } = await manualEnrollment();
    const bad = await postJson(v.app, `/v1/enrollments/snp/${id}`, { ...body, keyProof: b64u(new Uint8Array(64).fill(1)) });
    expect(bad.statusCode).toBe(422);
    expect(codes(bad.json<ErrorAnswer>())).toEqual(['SNP_KEY_PROOF_INVALID']);
    const good = await postJson(v.app, `/v1/enrollments/snp/${id}`, body);
    expect(good.json<ErrorAnswer>().error.code).toBe('ENROLL_UNKNOWN');
  });

  it('an expired enrollment is refused (ENROLL_UNKNOWN)', async () => {
    const { id, body } = await manualEnrollment();
    v.clock.advance(300_001);
    try {
      const r = await postJson(v.app, `/v1/enrollments/snp/${id}`, body);
      expect(r.statusCode).toBe(404);
      expect(r.json<ErrorAnswer>().error).toMatchObject({ code: 'ENROLL_UNKNOWN', message: expect.stringMatching(/expired/) as unknown as string });
    } finally {
      v.clock.advance(-300_001);
    }
  });

  it('a TPM node sending SNP-only evidence is refused (APPRAISAL_NODE_KIND_MISMATCH)', async () => {
    const tpmNode = await enrollOverHttp(v.app, tpm, 'gpu');
    const { a } = await enrolled('tpm-impostor');
    const ch = await getChallenge(v.app, tpmNode);
    const ev: Evidence = { ...(await a.evidenceFor(tpmNode, ch)) };
    const r = await submit(v.app, ev);
    expect(r.statusCode).toBe(422);
    expect(codes(r.json<ErrorAnswer>())).toEqual(['APPRAISAL_NODE_KIND_MISMATCH']);
  });

  it('an SNP node sending TPM evidence is refused (APPRAISAL_NODE_KIND_MISMATCH), its empty AK never decoded', async () => {
    const { nodeId } = await enrolled('tpm-evidence');
    const ch = await getChallenge(v.app, nodeId);
    expect(ch.pcrSelection).toEqual([]);
    const r = await submit(v.app, buildEvidence({ challenge: ch, nodeId, ak: syntheticAk('ecc') }));
    expect(r.statusCode).toBe(422);
    const answer = r.json<ErrorAnswer>();
    expect(codes(answer)).toContain('APPRAISAL_NODE_KIND_MISMATCH');
    expect(answer.decision).toBe('contraindicated');
  });

  it('a group whose policy has no snp rules refuses SNP-only enrollment (ENROLL_SNP_NOT_ALLOWED), so does one with TPM rules', async () => {
    const spki = boundKey();
    const r = await postJson(v.app, '/v1/enrollments/snp', { group: 'gpu', nodeKey: b64u(spki) });
    expect(r.statusCode).toBe(403);
    const a = r.json<ErrorAnswer>();
    expect(a.error.code).toBe('ENROLL_SNP_NOT_ALLOWED');
    expect(codes(a)).toEqual(['ENROLL_SNP_NOT_ALLOWED', 'POLICY_TPM_RULES_FOR_SNP_NODE', 'POLICY_SNP_NOT_CONFIGURED']);
    const m = await postJson(v.app, '/v1/enrollments/snp', { group: 'mixed', nodeKey: b64u(spki) });
    expect(m.statusCode).toBe(403);
    expect(codes(m.json<ErrorAnswer>())).toEqual(['ENROLL_SNP_NOT_ALLOWED', 'POLICY_TPM_RULES_FOR_SNP_NODE']);
  });

  it('a TPM node cannot enroll into a group for SNP-only nodes (ENROLL_TPM_NOT_ALLOWED)', async () => {
    const r = await postJson(v.app, '/v1/enrollments', enrollBody(tpm, { group: 'cvm' }));
    expect(r.statusCode).toBe(403);
    expect(r.json<ErrorAnswer>().error.code).toBe('ENROLL_TPM_NOT_ALLOWED');
  });

  it('a node key that is not a P-256 SPKI is refused (ENROLL_NODE_KEY_INVALID), and an unknown group too', async () => {
    const ed = new Uint8Array(generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }));
    const r = await postJson(v.app, '/v1/enrollments/snp', { group: 'cvm', nodeKey: b64u(ed) });
    expect(r.statusCode).toBe(400);
    expect(r.json<ErrorAnswer>().error.code).toBe('ENROLL_NODE_KEY_INVALID');
    const g = await postJson(v.app, '/v1/enrollments/snp', { group: 'nope', nodeKey: b64u(boundKey()) });
    expect(g.json<ErrorAnswer>().error.code).toBe('ENROLL_GROUP_UNKNOWN');
  });

  it('SNP-only evidence without a key proof, or a TPM envelope with one, does not decode (EVIDENCE_MALFORMED)', async () => {
    const { a, nodeId } = await enrolled('shape');
    const ev = await freshEvidence(a, nodeId);
    const { keyProof: _k, ...noProof } = ev;
    const r = await v.app.inject({
      method: 'POST',
      url: '/v1/attestations',
      payload: JSON.stringify({ v: EVIDENCE_VERSION, challenge: noProof.challengeId, node: nodeId, boundKey: b64u(noProof.boundKey), snp: { report: b64u(noProof.snp.report) } }),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json<ErrorAnswer>().error).toMatchObject({ code: 'EVIDENCE_MALFORMED', field: 'evidence.keyProof' });
  });

  it('key release to an SNP-only node: sealed to the node key (cnf); a TPM-bound release is refused (RELEASE_TPM_BINDING_UNAVAILABLE)', async () => {
    const value = Buffer.from('cvm-secret');
    for (const [id, tpmBound] of [['cvm-plain', false], ['cvm-tpm', true]] as const) {
      const r = await v.app.inject({ method: 'PUT', url: `/v1/secrets/${id}`, headers: { authorization: `Bearer ${adminToken}` }, payload: { value: value.toString('base64url'), releasePolicy: { groups: ['cvm'], audience: 'key-broker', tpmBound } } });
      expect(r.statusCode, r.body).toBe(200);
    }
    const { a, stateDir } = await enrolled('release');
    const out = await a.attestOnce();
    expect(out.decision).toBe('affirming');
    const { privateKey } = await loadOrCreateNodeKey(stateDir);
    const client = new VerifierClient(url);
    const got = await fetchSecret({ client, secretId: 'cvm-plain', artifact: out.artifact!, ledger: out.ledger, boundKey: privateKey });
    expect(got.binding).toBe('cnf');
    expect(Buffer.from(got.value).equals(value)).toBe(true);
    const refused = await fetchSecret({ client, secretId: 'cvm-tpm', artifact: out.artifact!, ledger: out.ledger, boundKey: privateKey }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(VerifierRefusal);
    expect((refused as VerifierRefusal).code).toBe('RELEASE_TPM_BINDING_UNAVAILABLE');
    expect((refused as VerifierRefusal).status).toBe(403);
    const asked = await fetchSecret({ client, secretId: 'cvm-plain', artifact: out.artifact!, ledger: out.ledger, boundKey: privateKey, tpmBound: true }).catch((e: unknown) => e);
    expect((asked as VerifierRefusal).failures.map((f) => f.code)).toEqual(['RELEASE_TPM_BINDING_UNAVAILABLE']);
  });
});
