/**
 * The appraisal core is a pure function (issue #3): the same evidence, policy and time give
 * byte-identical output, whatever transport carried the evidence. Also: the policy-level
 * refusals that the HTTP path cannot reach on its own (a required bank absent from an otherwise
 * valid quote) and strict policy loading.
 */
import { describe, expect, it } from 'vitest';
import { appraise, challengeSelection, encodeAppraisal, type AppraisalInput } from '../../src/appraisal/appraise.js';
import { decodeEvidenceCbor, decodeEvidenceJson, encodeEvidenceCbor, encodeEvidenceJson, evidenceDigest, type Evidence } from '../../src/evidence/envelope.js';
import { parsePolicy, PolicyInvalidError, type Policy } from '../../src/policy/index.js';
import { TPM_ALG, pcrSelection, type PcrSelection } from '../../src/tpm/abi/index.js';
import { importTpmPublic } from '../../src/tpm/verify/keys.js';
import { syntheticAk, syntheticPcrs } from '../helpers/synthetic.js';
import { T_START, b64u, boundKey, buildEvidence, policyText, seededRandom, testPolicy, type Challenge } from '../helpers/verifier.js';

const ak = syntheticAk('ecc');
const akKey = importTpmPublic(ak.public);
const random = seededRandom('determinism');

function challengeFor(selection: PcrSelection): Challenge {
  const nonce = random(32);
  return {
    challengeId: Buffer.from(random(16)).toString('hex'),
    nonce: b64u(nonce),
    expiresAt: T_START + 60_000,
    pcrSelection: [],
    nonceBytes: nonce,
    selection,
  };
}

function inputFor(evidence: Evidence, challenge: Challenge, policy: Policy): AppraisalInput {
  return {
    evidence,
    challenge: { ok: true, challengeId: challenge.challengeId, nodeId: evidence.nodeId, nonce: challenge.nonceBytes, selection: challenge.selection },
    node: { nodeId: evidence.nodeId, ak: akKey, counters: { resetCount: 1, restartCount: 0, clock: 500n } },
    policy,
    now: T_START,
  };
}

const policy = testPolicy();
const NODE = 'tpm-0123456789abcdef01234567';

describe('determinism', () => {
  const challenge = challengeFor(challengeSelection(policy));
  const evidence = buildEvidence({ challenge, nodeId: NODE, ak, boundKey: boundKey() });

  it('appraise() twice with identical inputs gives byte-identical encodeAppraisal output', () => {
    const a = appraise(inputFor(evidence, challenge, policy));
    const b = appraise(inputFor(evidence, challenge, policy));
    expect(a.status).toBe('affirming');
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
  });

  it('a refusal is just as reproducible, failures in the same order', () => {
    const pcrs = syntheticPcrs('pcr');
    pcrs.get(TPM_ALG.SHA256)?.set(2, new Uint8Array(32).fill(1));
    pcrs.get(TPM_ALG.SHA256)?.set(5, new Uint8Array(32).fill(2));
    const bad = buildEvidence({ challenge, nodeId: NODE, ak, pcrs, boundKey: evidence.boundKey });
    const a = appraise(inputFor(bad, challenge, policy));
    const b = appraise(inputFor(bad, challenge, policy));
    expect(a.status).toBe('contraindicated');
    expect(a.failures.map((f) => f.field)).toEqual(['pcrs.sha256[2]', 'pcrs.sha256[5]']);
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
  });

  it('the same evidence sent as CBOR and as JSON decodes to the same digest and the same appraisal bytes', () => {
    const viaCbor = decodeEvidenceCbor(encodeEvidenceCbor(evidence));
    const viaJson = decodeEvidenceJson(encodeEvidenceJson(evidence));
    expect(Buffer.from(evidenceDigest(viaJson)).toString('hex')).toBe(Buffer.from(evidenceDigest(viaCbor)).toString('hex'));
    expect(Buffer.from(evidenceDigest(viaCbor)).toString('hex')).toBe(Buffer.from(evidenceDigest(evidence)).toString('hex'));
    const a = appraise(inputFor(viaCbor, challenge, policy));
    const b = appraise(inputFor(viaJson, challenge, policy));
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(true);
  });

  it('the time is an input: another `now` gives other bytes', () => {
    const a = appraise(inputFor(evidence, challenge, policy));
    const b = appraise({ ...inputFor(evidence, challenge, policy), now: T_START + 1 });
    expect(Buffer.from(encodeAppraisal(b)).equals(Buffer.from(encodeAppraisal(a)))).toBe(false);
  });

  it('garbage quote bytes are a refusal with a parse code, never a throw', () => {
    const junk: Evidence = { ...evidence, tpm: { ...evidence.tpm, attest: random(40), signature: random(12) } };
    const a = appraise(inputFor(junk, challenge, policy));
    expect(a.status).toBe('contraindicated');
    expect(a.failures.length).toBeGreaterThan(0);
    expect(a.claims).toBeUndefined();
  });
});

describe('policy refusals in appraise()', () => {
  it('a required bank absent from a valid quote → POLICY_BANK_MISSING', () => {
    const dual = testPolicy({ id: 'dual-bank', sha1: true });
    // A challenge that (wrongly) asked for sha256 only; the quote matches it and verifies.
    const only256 = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }]);
    const challenge = challengeFor(only256);
    const evidence = buildEvidence({ challenge, nodeId: NODE, ak });
    const a = appraise(inputFor(evidence, challenge, dual));
    expect(a.status).toBe('contraindicated');
    expect(a.checks.find((c) => c.check === 'tpm.signature')?.outcome).toBe('pass');
    expect(a.failures).toHaveLength(1);
    expect(a.failures[0]).toMatchObject({ code: 'POLICY_BANK_MISSING', field: 'pcrs.sha1', actual: 'absent' });
  });

  it('the challenge selection covers every required bank', () => {
    const dual = testPolicy({ id: 'dual-bank', sha1: true });
    expect(challengeSelection(dual).map((b) => b.hashAlg)).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256]);
  });

  it('an unknown policy key → POLICY_INVALID (never ignored)', () => {
    for (const text of [
      policyText({ extraTop: { skipChecks: true } }),
      policyText().replace('"banks"', '"bank"'),
      policyText().replace('"lifetimeSeconds"', '"lifetimeSecond"'),
    ]) {
      let caught: unknown;
      try {
        parsePolicy(text, 'json');
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(PolicyInvalidError);
      expect((caught as PolicyInvalidError).code).toBe('POLICY_INVALID');
    }
    const yaml = 'apiVersion: vouch/v1\nkind: AttestationPolicy\nid: x\ntpm:\n  banks: [sha256]\n  pcrs:\n    sha256:\n      "0": any\n  extra: 1\nartifact:\n  lifetimeSeconds: 60\n';
    expect(() => parsePolicy(yaml, 'yaml')).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }));
    expect(() => parsePolicy(yaml.replace('  extra: 1\n', ''), 'yaml')).not.toThrow();
  });
});
