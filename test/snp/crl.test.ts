/**
 * The AMD CRL in SEV-SNP verification: the maximum CRL age (verify option and the policy's
 * `crlMaxAgeSeconds`), what the result records about the CRL, and the recorded allowance of a
 * missing CRL. Reports are signed here under the committed TEST-ONLY chain, whose CRLs have
 * thisUpdate 2025-01-01 and nextUpdate 2035-01-01.
 */
import { createHash } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { decodeSnpReport } from '../../src/snp/abi.js';
import { parseSnpCertificate } from '../../src/snp/certs.js';
import { SNP_CRL_MAX_AGE_LIMIT_SECONDS, SnpPolicySchema, snpVerifyAllowances, type SnpPolicy } from '../../src/snp/policy.js';
import { verifySnpReport, type SnpVerifyOptions } from '../../src/snp/verify.js';
import { signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';

const t = testSnpChain();
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
const report = decodeSnpReport(signSyntheticSnpReport(t, syntheticSnpFields(t)));
const THIS_UPDATE = Date.parse('2025-01-01T00:00:00Z');
const DAY = 86400;

function opts(extra: Partial<SnpVerifyOptions> = {}): SnpVerifyOptions {
  return { vcek: parseSnpCertificate(t.vcek), ask: parseSnpCertificate(t.ask), ark: parseSnpCertificate(t.ark), now: new Date(THIS_UPDATE + 10 * DAY * 1000), crl: t.crl, pinnedArks: pins, ...extra };
}

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const check = (r: { checks: readonly { check: string; outcome: string }[] }, name: string): string | undefined => r.checks.find((c) => c.check === name)?.outcome;

describe('maximum CRL age', () => {
  it('a CRL issued 10 days before the verification time passes a 30-day maximum, and the result records it', () => {
    const r = verifySnpReport(report, opts({ crlMaxAgeSeconds: 30 * DAY }));
    expect(r.failures).toEqual([]);
    expect(check(r, 'crl.maxAge')).toBe('pass');
    expect(r.crl).toEqual({ thisUpdate: '2025-01-01T00:00:00.000Z', nextUpdate: '2035-01-01T00:00:00.000Z', ageSeconds: 10 * DAY, maxAgeSeconds: 30 * DAY });
  });

  it('the same CRL against a 7-day maximum: SNP_CRL_TOO_OLD, with thisUpdate and the bound, though inside nextUpdate', () => {
    const r = verifySnpReport(report, opts({ crlMaxAgeSeconds: 7 * DAY }));
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['SNP_CRL_TOO_OLD']);
    expect(r.failures[0]).toMatchObject({ field: 'crl.tbsCertList.thisUpdate', actual: '2025-01-01T00:00:00.000Z' });
    expect(r.failures[0]?.expected).toContain('2025-01-04T00:00:00.000Z');
    expect(check(r, 'crl')).toBe('pass');
    expect(check(r, 'crl.maxAge')).toBe('fail');
    expect(r.crl?.maxAgeSeconds).toBe(7 * DAY);
  });

  it('exactly at the maximum is accepted; one second later is not', () => {
    const at = (s: number): Date => new Date(THIS_UPDATE + s * 1000);
    expect(verifySnpReport(report, opts({ now: at(DAY), crlMaxAgeSeconds: DAY })).ok).toBe(true);
    expect(codes(verifySnpReport(report, opts({ now: at(DAY + 1), crlMaxAgeSeconds: DAY })))).toEqual(['SNP_CRL_TOO_OLD']);
  });

  it('without a maximum the CRL is bounded by its own window only, and no age check is listed', () => {
    // Almost six years after thisUpdate (the TEST-ONLY VCEK is valid until 2031-01-01).
    const r = verifySnpReport(report, opts({ now: new Date('2030-12-01T00:00:00Z') }));
    expect(r.ok).toBe(true);
    expect(check(r, 'crl.maxAge')).toBeUndefined();
    expect(r.crl?.maxAgeSeconds).toBeUndefined();
    // Past nextUpdate it still fails as before (the VCEK has expired by then too).
    expect(codes(verifySnpReport(report, opts({ now: new Date('2035-06-01T00:00:00Z') })))).toContain('SNP_CRL_INVALID');
  });

  it('a revoked ASK and a stale CRL are both reported', () => {
    expect(codes(verifySnpReport(report, opts({ crl: t.crlRevokingAsk, crlMaxAgeSeconds: DAY })))).toEqual(['SNP_REVOKED', 'SNP_CRL_TOO_OLD']);
  });

  it('a maximum that is not a positive whole number is misuse', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => verifySnpReport(report, opts({ crlMaxAgeSeconds: bad }))).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    }
  });

  it('an unparsable CRL with a maximum: SNP_CERT_MALFORMED, the age check skipped with the reason', () => {
    const r = verifySnpReport(report, opts({ crl: Uint8Array.of(0x30, 0x01), crlMaxAgeSeconds: DAY }));
    expect(codes(r)).toEqual(['SNP_CERT_MALFORMED']);
    expect(r.checks.find((c) => c.check === 'crl.maxAge')).toEqual({ check: 'crl.maxAge', outcome: 'skipped', note: 'the CRL did not parse' });
  });
});

describe('a missing CRL', () => {
  it('is SNP_CRL_MISSING unless allowed', () => {
    const { crl: _c, ...rest } = opts();
    expect(codes(verifySnpReport(report, rest))).toEqual(['SNP_CRL_MISSING']);
  });

  it('allowMissingCrl: the allowance is recorded, the check skipped with why, no CRL in the result', () => {
    const { crl: _c, ...rest } = opts();
    const r = verifySnpReport(report, { ...rest, allowMissingCrl: true, crlMaxAgeSeconds: DAY });
    expect(r.ok).toBe(true);
    expect(r.allowancesUsed).toEqual(['missingCrl']);
    expect(r.checks.find((c) => c.check === 'crl')).toEqual({ check: 'crl', outcome: 'skipped', note: 'no CRL supplied; allowed by allowMissingCrl' });
    expect(check(r, 'crl.maxAge')).toBe('skipped');
    expect(r.crl).toBeUndefined();
  });

  it('allowMissingCrl with a CRL present: the CRL is checked and the allowance is not recorded', () => {
    const r = verifySnpReport(report, opts({ allowMissingCrl: true }));
    expect(r.allowancesUsed).toEqual([]);
    expect(check(r, 'crl')).toBe('pass');
    expect(codes(verifySnpReport(report, opts({ allowMissingCrl: true, crl: t.crlRevokingAsk })))).toEqual(['SNP_REVOKED']);
  });
});

describe('the policy field crlMaxAgeSeconds', () => {
  const rules: SnpPolicy = {
    debug: 'forbidden',
    migrationAgent: 'forbidden',
    smt: 'allowed',
    vmpl: 'any',
    measurement: 'any',
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

  it('is optional (older policies stay valid) and, when set, a whole number of seconds within ten years', () => {
    expect(Value.Check(SnpPolicySchema, rules)).toBe(true);
    expect(Value.Check(SnpPolicySchema, { ...rules, crlMaxAgeSeconds: 604800 })).toBe(true);
    for (const bad of [0, -5, 1.5, '604800', 'any', SNP_CRL_MAX_AGE_LIMIT_SECONDS + 1]) expect(Value.Check(SnpPolicySchema, { ...rules, crlMaxAgeSeconds: bad })).toBe(false);
    expect(Value.Check(SnpPolicySchema, { ...rules, crlMaxAge: 604800 })).toBe(false);
  });

  it('reaches verification through snpVerifyAllowances, and refuses with SNP_CRL_TOO_OLD', () => {
    expect(snpVerifyAllowances(rules)).toEqual({ allowMaskedChipId: false, allowMissingCrl: false });
    expect(snpVerifyAllowances({ ...rules, crlMaxAgeSeconds: DAY })).toEqual({ allowMaskedChipId: false, allowMissingCrl: false, crlMaxAgeSeconds: DAY });
    const r = verifySnpReport(report, { ...opts(), ...snpVerifyAllowances({ ...rules, crlMaxAgeSeconds: DAY }) });
    expect(codes(r)).toEqual(['SNP_CRL_TOO_OLD']);
    expect(r.crl?.maxAgeSeconds).toBe(DAY);
  });
});
