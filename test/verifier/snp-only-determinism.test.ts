/**
 * The SNP-only appraisal is a pure function like the TPM one: the same evidence, node, policy and
 * time give byte-identical output; a refusal lists every failure, in a fixed order; and a node or
 * a policy of the other kind is a refusal, never an allow.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraise, encodeAppraisal } from '../../src/appraisal/appraise.js';
import { appraiseSnpEnrollment, appraiseSnpOnly, type SnpOnlyAppraisalInput } from '../../src/appraisal/snp-only.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { signNodeKeyProof } from '../../src/evidence/key-proof.js';
import { EVIDENCE_VERSION, type SnpOnlyEvidence } from '../../src/evidence/envelope.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import { SnpVerifyCache } from '../../src/snp/verify.js';
import { importTpmPublic } from '../../src/tpm/verify/keys.js';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { FakeTsm, signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';
import { syntheticAk } from '../helpers/synthetic.js';
import { T_START, testPolicy } from '../helpers/verifier.js';

const chain = testSnpChain();
const snpTrust = { pinnedArks: { [createHash('sha256').update(chain.ark).digest('hex')]: 'Milan' as const }, crls: [chain.crl] };
const SNP_RULES = {
  debug: 'forbidden',
  migrationAgent: 'forbidden',
  smt: 'allowed',
  vmpl: [0],
  measurement: ['01'.repeat(48)],
  hostData: 'any',
  idKeyDigest: 'any',
  authorKeyDigest: 'any',
  familyId: 'any',
  imageId: 'any',
  minTcb: 'any',
  minGuestSvn: 'any',
  platformInfo: 'any',
  allowMaskedChipId: false,
  allowMissingCrl: false,
};
const policy: Policy = parsePolicy(JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'cvm', snp: SNP_RULES, artifact: { lifetimeSeconds: 60 } }), 'json');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const nodeKey = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
const NODE = `snp-${createHash('sha256').update(nodeKey).digest('hex').slice(0, 32)}`;
const nonce = new Uint8Array(32).fill(0x5a);
const certTable = new FakeTsm().certTable();

function evidence(over: { policyBits?: bigint; reportNonce?: Uint8Array; boundKey?: Uint8Array; proofKey?: typeof privateKey } = {}): SnpOnlyEvidence {
  const report = signSyntheticSnpReport(chain, syntheticSnpFields(chain, { reportData: teeReportData(over.reportNonce ?? nonce, nodeKey), ...(over.policyBits !== undefined ? { policy: over.policyBits } : {}) }));
  return {
    version: EVIDENCE_VERSION,
    challengeId: 'c-1',
    nodeId: NODE,
    boundKey: over.boundKey ?? nodeKey,
    snp: { report, certTable },
    keyProof: signNodeKeyProof(over.proofKey ?? privateKey, nonce, report),
  };
}

function input(e: SnpOnlyEvidence, over: Partial<SnpOnlyAppraisalInput> = {}): SnpOnlyAppraisalInput {
  return {
    evidence: e,
    challenge: { ok: true, challengeId: 'c-1', nodeId: NODE, nonce, selection: [] },
    node: { nodeId: NODE, kind: 'snp', nodeKey },
    policy,
    now: T_START,
    snpTrust,
    ...over,
  };
}

describe('appraiseSnpOnly', () => {
  const good = evidence();

  it('twice with identical inputs gives byte-identical output (with or without a shared verification cache)', () => {
    const a = appraiseSnpOnly(input(good));
    const cache = new SnpVerifyCache();
    const b = appraiseSnpOnly(input(good, { snpTrust: { ...snpTrust, cache } }));
    const c = appraiseSnpOnly(input(good, { snpTrust: { ...snpTrust, cache } }));
    expect(a.failures).toEqual([]);
    expect(a.status).toBe('affirming');
    expect(a.claims).toBeUndefined();
    expect(a.snpOnly).toMatchObject({ nodeKeySha256: createHash('sha256').update(nodeKey).digest('hex'), chipId: Buffer.from(chain.chipId).toString('hex') });
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
    expect(Buffer.from(encodeAppraisal(c)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
  });

  it('the time is an input: another `now` gives other bytes', () => {
    expect(Buffer.from(encodeAppraisal(appraiseSnpOnly(input(good, { now: T_START + 1 })))).equals(Buffer.from(encodeAppraisal(appraiseSnpOnly(input(good)))))).toBe(false);
  });

  it('a refusal returns every failure, reproducibly: bound key, key proof, report data and debug at once', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bad = evidence({ policyBits: 0x30000n | (1n << 19n), reportNonce: new Uint8Array(32).fill(1), boundKey: new Uint8Array(other.publicKey.export({ format: 'der', type: 'spki' })), proofKey: other.privateKey });
    const a = appraiseSnpOnly(input(bad));
    const b = appraiseSnpOnly(input(bad));
    expect(a.status).toBe('contraindicated');
    expect(a.failures.map((f) => f.code)).toEqual(['EVIDENCE_BOUND_KEY_NOT_NODE_KEY', 'SNP_KEY_PROOF_INVALID', 'SNP_REPORT_DATA_MISMATCH', 'POLICY_SNP_DEBUG']);
    expect(a.snpOnly).toBeUndefined();
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
  });

  it('a policy with TPM rules, or without snp rules, is a refusal for an SNP node: nothing allowed by accident', () => {
    const withTpm = parsePolicy(JSON.stringify({ ...JSON.parse(JSON.stringify(testPolicy())), snp: SNP_RULES }), 'json');
    expect(appraiseSnpOnly(input(good, { policy: withTpm })).failures.map((f) => f.code)).toEqual(['POLICY_TPM_RULES_FOR_SNP_NODE']);
    const tpmOnly = testPolicy();
    expect(appraiseSnpOnly(input(good, { policy: tpmOnly })).failures.map((f) => f.code)).toEqual(['POLICY_TPM_RULES_FOR_SNP_NODE', 'POLICY_SNP_NOT_CONFIGURED']);
    expect(appraiseSnpOnly(input(good, { policy: null })).failures.map((f) => f.code)).toEqual(['POLICY_NOT_ASSIGNED']);
  });

  it('a TPM node, an unknown node and a used challenge are refusals with their codes', () => {
    expect(appraiseSnpOnly(input(good, { node: { nodeId: NODE, kind: 'tpm', nodeKey: null } })).failures.map((f) => f.code)).toEqual(['APPRAISAL_NODE_KIND_MISMATCH']);
    expect(appraiseSnpOnly(input(good, { node: null })).failures.map((f) => f.code)).toEqual(['APPRAISAL_NODE_UNKNOWN']);
    expect(appraiseSnpOnly(input(good, { challenge: { ok: false, reason: 'consumed' } })).failures.map((f) => f.code)).toEqual(['CHALLENGE_REPLAYED']);
  });
});

describe('appraise (TPM) refuses what belongs to SNP-only nodes', () => {
  const ak = syntheticAk('ecc');
  const node = { nodeId: NODE, ak: importTpmPublic(ak.public), counters: null };

  it('SNP-only evidence from a TPM node is APPRAISAL_NODE_KIND_MISMATCH, and nothing is verified as a quote', () => {
    const a = appraise({ evidence: evidence(), challenge: { ok: true, challengeId: 'c-1', nodeId: NODE, nonce, selection: [] }, node, policy: testPolicy(), now: T_START });
    expect(a.status).toBe('contraindicated');
    expect(a.failures.map((f) => f.code)).toEqual(['APPRAISAL_NODE_KIND_MISMATCH']);
    expect(a.claims).toBeUndefined();
  });
});

describe('appraiseSnpEnrollment', () => {
  it('accepts a genuine report binding (nonce, node key) with a valid key proof; the same inputs give the same answer', () => {
    const e = evidence();
    const run = () => appraiseSnpEnrollment({ policy, nodeKey, nonce, snp: e.snp, keyProof: e.keyProof, now: T_START, snpTrust });
    const a = run();
    expect(a.failures).toEqual([]);
    expect(a.ok).toBe(true);
    expect(a.snp?.measurement).toBe('01'.repeat(48));
    expect(run()).toEqual(a);
  });

  it('lists every failure: a policy that does not admit SNP-only nodes, the report data and the key proof', () => {
    const e = evidence({ reportNonce: new Uint8Array(32).fill(1) });
    const withTpm = parsePolicy(JSON.stringify({ ...JSON.parse(JSON.stringify(testPolicy())), snp: SNP_RULES }), 'json');
    const a = appraiseSnpEnrollment({ policy: withTpm, nodeKey, nonce, snp: e.snp, keyProof: new Uint8Array(64), now: T_START, snpTrust });
    expect(a.ok).toBe(false);
    expect(a.failures.map((f) => f.code)).toEqual(['ENROLL_SNP_NOT_ALLOWED', 'POLICY_TPM_RULES_FOR_SNP_NODE', 'SNP_REPORT_DATA_MISMATCH', 'SNP_KEY_PROOF_INVALID']);
    expect(a.chipId).toBe(Buffer.from(chain.chipId).toString('hex'));
  });
});
