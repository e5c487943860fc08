import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/lib/bytes.js';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/abi/constants.js';
import {
  akAlgorithmOf,
  appraiseAkAlgorithm,
  appraisePcrs,
  canonicalJson,
  parsePolicy,
  type QuotedPcrs,
} from '../../src/policy/index.js';
import { A32, B32, Z32, yamlPolicy } from './helpers.js';

const policy = parsePolicy(yamlPolicy(), 'yaml');

/** A quote that satisfies the test policy: PCR0 = Z32, PCR4 = B32, PCR7 = anything. */
function goodQuote(over: Record<number, string> = {}): Map<number, Map<number, Uint8Array>> {
  const values: Record<number, string> = { 0: Z32, 4: B32, 7: '77'.repeat(32), 9: '99'.repeat(32), ...over };
  const bank = new Map<number, Uint8Array>();
  for (const [i, v] of Object.entries(values)) bank.set(Number(i), fromHex(v));
  return new Map([[TPM_ALG.SHA256, bank]]);
}

describe('appraisePcrs', () => {
  it('accepts a quote that matches every listed PCR (unlisted PCRs and banks are ignored)', () => {
    const q = goodQuote();
    q.set(TPM_ALG.SHA1, new Map([[0, new Uint8Array(20)]]));
    expect(appraisePcrs(policy, q)).toEqual([]);
    expect(appraisePcrs(policy, goodQuote({ 0: A32 }))).toEqual([]);
  });

  it('returns every failure: two mismatching PCRs give two failures, with field, expected and actual', () => {
    const bad0 = 'de'.repeat(32);
    const bad4 = 'ad'.repeat(32);
    const failures = appraisePcrs(policy, goodQuote({ 0: bad0, 4: bad4 }));
    expect(failures).toEqual([
      {
        code: 'POLICY_PCR_MISMATCH',
        field: 'pcrs.sha256[0]',
        expected: `${Z32} | ${A32}`,
        actual: bad0,
        message: 'sha256 PCR 0 holds a value the policy does not allow',
      },
      {
        code: 'POLICY_PCR_MISMATCH',
        field: 'pcrs.sha256[4]',
        expected: B32,
        actual: bad4,
        message: 'sha256 PCR 4 holds a value the policy does not allow',
      },
    ]);
  });

  it('reports a required bank absent from the quote once, as POLICY_BANK_MISSING', () => {
    const failures = appraisePcrs(policy, new Map([[TPM_ALG.SHA1, new Map([[0, new Uint8Array(20)]])]]));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ code: 'POLICY_BANK_MISSING', field: 'pcrs.sha256', actual: 'absent' });
    expect(failures[0]?.expected).toContain('0,4,7');
  });

  it('reports each listed PCR absent from the quote, "any" included', () => {
    const q = goodQuote();
    q.get(TPM_ALG.SHA256)?.delete(4);
    q.get(TPM_ALG.SHA256)?.delete(7);
    const failures = appraisePcrs(policy, q);
    expect(failures.map((f) => [f.code, f.field, f.actual])).toEqual([
      ['POLICY_PCR_MISSING', 'pcrs.sha256[4]', 'absent'],
      ['POLICY_PCR_MISSING', 'pcrs.sha256[7]', 'absent'],
    ]);
    expect(failures[1]?.expected).toBe('any 32-byte value');
  });

  it('refuses a value of the wrong size even where the policy says "any"', () => {
    const failures = appraisePcrs(policy, goodQuote({ 7: '77'.repeat(20) }));
    expect(failures).toMatchObject([{ code: 'POLICY_PCR_MISMATCH', field: 'pcrs.sha256[7]', expected: 'any 32-byte value' }]);
  });

  it('is byte-identical across runs and independent of the insertion order of the quote maps', () => {
    const a = goodQuote({ 0: 'de'.repeat(32), 4: 'ad'.repeat(32) });
    const reversed = new Map([[TPM_ALG.SHA256, new Map([...(a.get(TPM_ALG.SHA256) ?? new Map<number, Uint8Array>())].reverse())]]);
    const first = canonicalJson(appraisePcrs(policy, a));
    for (let i = 0; i < 5; i++) expect(canonicalJson(appraisePcrs(policy, a))).toBe(first);
    expect(canonicalJson(appraisePcrs(policy, reversed))).toBe(first);
  });

  it('never throws for a "no" and is deterministic for arbitrary quotes (property)', () => {
    const quoteArb = fc
      .array(fc.tuple(fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384), fc.array(fc.tuple(fc.integer({ min: 0, max: 23 }), fc.uint8Array({ maxLength: 64 })), { maxLength: 30 })), { maxLength: 3 })
      .map((banks) => new Map(banks.map(([alg, pcrs]) => [alg, new Map(pcrs)])) as QuotedPcrs);
    fc.assert(
      fc.property(quoteArb, (q) => {
        const r1 = appraisePcrs(policy, q);
        const r2 = appraisePcrs(policy, q);
        expect(canonicalJson(r2)).toBe(canonicalJson(r1));
        for (const f of r1) expect(['POLICY_PCR_MISMATCH', 'POLICY_BANK_MISSING', 'POLICY_PCR_MISSING']).toContain(f.code);
        // Affirming only when every listed PCR is present and allowed.
        const bank = q.get(TPM_ALG.SHA256);
        const ok = bank !== undefined && [0, 4, 7].every((i) => bank.get(i)?.length === 32) && [Z32, A32].includes(Buffer.from(bank.get(0) ?? []).toString('hex')) && Buffer.from(bank.get(4) ?? []).toString('hex') === B32;
        expect(r1.length === 0).toBe(ok);
      }),
      { numRuns: 300 },
    );
  });
});

describe('appraiseAkAlgorithm', () => {
  it('allows both algorithms by default and refuses one the policy leaves out', () => {
    expect(appraiseAkAlgorithm(policy, 'ecc-p256')).toEqual([]);
    expect(appraiseAkAlgorithm(policy, 'rsa2048')).toEqual([]);
    const eccOnly = parsePolicy(yamlPolicy().replace('  banks: [sha256]', '  banks: [sha256]\n  akAlgorithms: [ecc-p256]'), 'yaml');
    expect(appraiseAkAlgorithm(eccOnly, 'rsa2048')).toMatchObject([{ code: 'POLICY_AK_ALGORITHM', field: 'akAlgorithms', expected: 'ecc-p256', actual: 'rsa2048' }]);
    expect(appraiseAkAlgorithm(policy, undefined)).toMatchObject([{ code: 'POLICY_AK_ALGORITHM', actual: 'unsupported' }]);
  });

  it('names the algorithm of a TPMT_PUBLIC', () => {
    expect(akAlgorithmOf({ type: TPM_ALG.ECC, parameters: { curveId: TPM_ECC.NIST_P256 } })).toBe('ecc-p256');
    expect(akAlgorithmOf({ type: TPM_ALG.ECC, parameters: { curveId: TPM_ECC.NIST_P384 } })).toBeUndefined();
    expect(akAlgorithmOf({ type: TPM_ALG.RSA, parameters: { keyBits: 2048 } })).toBe('rsa2048');
    expect(akAlgorithmOf({ type: TPM_ALG.RSA, parameters: { keyBits: 3072 } })).toBeUndefined();
  });
});
