/**
 * verifyTdxQuote on the real quotes of ../shared/fixtures/real/tdx with their real collateral,
 * at the times PROVENANCE.md gives. Intel's algorithm (component-wise TCB level matching, see
 * tcb-matching.test.ts) puts two of the platforms below every TCB level of their TCB Info: their
 * signatures, chains and collateral all verify, and the one refusal is TDX_TCB_LEVEL_NOT_FOUND.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { parseDcapQvlCollateral, parseTdxTcbInfoBody, readCollateral, type TdxCollateral } from '../../src/tdx/collateral.js';
import { TdxQuoteVerifyCache, verifyTdxQuote, type TdxQuoteVerification } from '../../src/tdx/verify.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const outcome = (r: TdxQuoteVerification, check: string): string | undefined => r.checks.find((c) => c.check === check)?.outcome;
const qvl = (dir: string): TdxCollateral => parseDcapQvlCollateral(readReal('tdx', dir, 'collateral.json'));
const quote = (dir: string): Uint8Array => readReal('tdx', dir, 'quote.dat');

/** Checks of the authenticity part: every one of these must pass on a genuine quote with its collateral. */
const AUTHENTICITY = [
  'quote.QE_VENDOR_ID',
  'quote.SIGNATURE',
  'pck.parse',
  'pck.chain.roles',
  'pck.chain.rootPinned',
  'pck.chain.signatures',
  'pck.chain.validity',
  'pck.rootCaCrl',
  'pck.pckCrl',
  'qeReport.SIGNATURE',
  'qeReport.REPORTDATA',
  'tcbInfo.present',
  'tcbInfo.signature',
  'tcbInfo.window',
  'qeIdentity.present',
  'qeIdentity.signature',
  'qeIdentity.window',
  'rootCaCrl',
  'pckCrl',
  'tcb.qeIdentity',
];

function expectAuthentic(r: TdxQuoteVerification): void {
  for (const c of AUTHENTICITY) expect(outcome(r, c), c).toBe('pass');
  expect(r.allowancesUsed).toEqual([]);
}

describe.skipIf(!HAVE_REAL)('real TDX quotes with complete collateral', () => {
  it('dcapqvl-b0c06f-v4 at 2025-07-01 (inside 2025-06-19T10:32:27Z..2025-07-19T10:00:35Z): verified, UpToDate, no advisories', () => {
    const r = verifyTdxQuote(quote('dcapqvl-b0c06f-v4'), { now: new Date('2025-07-01T00:00:00Z'), collateral: qvl('dcapqvl-b0c06f-v4') });
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expectAuthentic(r);
    expect(outcome(r, 'tcb.tcbInfo')).toBe('pass');
    expect(r.tcb).toMatchObject({ status: 'UpToDate', advisoryIds: [], fmspc: 'b0c06f000000' });
    expect(r.ca).toBe('platform');
    expect(r.quote.trailingBytes).toBe(70);
    const e = JSON.parse(readFileSync(realPath('tdx', 'dcapqvl-b0c06f-v4', 'expected.json'), 'utf8')) as Record<string, string>;
    expect(toHex(r.report.mrTd)).toBe(e['mrtd']);
  });

  it('dcapqvl-emr-v5-outdated at 2026-03-01: authentic, but below every TCB level (component-wise): TDX_TCB_LEVEL_NOT_FOUND, no status', () => {
    const r = verifyTdxQuote(quote('dcapqvl-emr-v5-outdated'), { now: new Date('2026-03-01T00:00:00Z'), collateral: qvl('dcapqvl-emr-v5-outdated') });
    expectAuthentic(r);
    expect(codes(r)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(r.failures[0]?.field).toBe('pck.sgxExtension.tcb');
    expect(outcome(r, 'tcb.tcbInfo')).toBe('fail');
    expect(r.tcb.status).toBeUndefined();
    expect(r.quote.body.kind).toBe('td15');
  });

  it('gtg-spr-e4-v4 at 2023-07-01T01:00:00Z (its appended text needs trailing: any): authentic, PCK SGX TCB below both levels', async () => {
    const collateral = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const raw = quote('gtg-spr-e4-v4');
    expect(() => verifyTdxQuote(raw, { now: new Date('2023-07-01T01:00:00Z'), collateral })).toThrowError(expect.objectContaining({ code: 'TDX_QUOTE_TRAILING_DATA' }));
    const r = verifyTdxQuote(raw, { now: new Date('2023-07-01T01:00:00Z'), collateral, trailing: 'any' });
    expectAuthentic(r);
    expect(codes(r)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(r.tcb.appraisal?.qe.status).toBe('UpToDate');
  });

  it('gtg-spr-e4-v4 at 2053-07-01 fails: chain expired, CRLs stale, collateral expired', async () => {
    const collateral = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const r = verifyTdxQuote(quote('gtg-spr-e4-v4'), { now: new Date('2053-07-01T01:00:00Z'), collateral, trailing: 'any' });
    const c = codes(r);
    for (const code of ['TDX_CHAIN_EXPIRED', 'TDX_CRL_STALE', 'TDX_TCB_INFO_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED']) expect(c).toContain(code);
    expect(c).not.toContain('TDX_QUOTE_SIGNATURE_INVALID');
    expect(c).not.toContain('TDX_QE_REPORT_SIGNATURE_INVALID');
  });

  it('gtg-emr-v5 with its own TCB Info and the rest of the EMR collateral, at 2026-02-20: verified, UpToDate', () => {
    const base = qvl('dcapqvl-emr-v5-outdated');
    const collateral: TdxCollateral = { ...base, tcbInfo: parseTdxTcbInfoBody(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json')) };
    const r = verifyTdxQuote(quote('gtg-emr-v5'), { now: new Date('2026-02-20T00:00:00Z'), collateral });
    expect(r.failures).toEqual([]);
    expect(r.tcb.status).toBe('UpToDate');
    expect(r.tcb.fmspc).toBe('90c06f000000');
  });

  it('a quote without collateral names each missing item, and the signatures still verify', () => {
    const r = verifyTdxQuote(quote('trustee-gnr-v4'), { now: new Date('2026-02-03T01:00:00Z'), collateral: {} });
    expect(codes(r)).toEqual(['TDX_CRL_MISSING', 'TDX_CRL_MISSING', 'TDX_TCB_INFO_MISSING', 'TDX_QE_IDENTITY_MISSING']);
    expect(r.failures.map((f) => f.field)).toEqual(['rootCaCrl', 'pckCrl', 'tcbInfo', 'qeIdentity']);
    expect(outcome(r, 'quote.SIGNATURE')).toBe('pass');
    expect(outcome(r, 'qeReport.SIGNATURE')).toBe('pass');
    expect(outcome(r, 'qeReport.REPORTDATA')).toBe('pass');
    expect(outcome(r, 'tcb.tcbInfo')).toBe('skipped');
  });

  it('the collateral of another platform: TDX_TCB_INFO_MISMATCH (FMSPC)', () => {
    const r = verifyTdxQuote(quote('gtg-emr-v5'), { now: new Date('2025-07-01T00:00:00Z'), collateral: qvl('dcapqvl-b0c06f-v4') });
    expect(r.failures.find((f) => f.code === 'TDX_TCB_INFO_MISMATCH')).toMatchObject({ field: 'tcbInfo.fmspc', expected: '90c06f000000', actual: 'b0c06f000000' });
  });

  it('an SGX v3 quote is not a TDX quote: TDX_QUOTE_UNSUPPORTED (thrown by the decoder)', () => {
    expect(() => verifyTdxQuote(quote('dcapqvl-sgx-v3'), { now: new Date('2025-07-01T00:00:00Z'), collateral: {} })).toThrowError(expect.objectContaining({ code: 'TDX_QUOTE_UNSUPPORTED' }));
  });

  it('with a cache: the same outcome on every call, reused only inside the collateral windows', () => {
    const cache = new TdxQuoteVerifyCache();
    const collateral = qvl('dcapqvl-b0c06f-v4');
    const at = (iso: string) => verifyTdxQuote(quote('dcapqvl-b0c06f-v4'), { now: new Date(iso), collateral, cache });
    const fresh = verifyTdxQuote(quote('dcapqvl-b0c06f-v4'), { now: new Date('2025-07-01T00:00:00Z'), collateral });
    for (let i = 0; i < 3; i++) {
      const r = at('2025-07-01T00:00:00Z');
      expect(r.checks).toEqual(fresh.checks);
      expect(r.failures).toEqual([]);
    }
    // Past the PCK CRL's nextUpdate (2025-07-19T10:00:35Z) the cached pass is not reused.
    expect(codes(at('2025-07-19T10:00:36Z'))).toEqual(['TDX_CRL_STALE']);
    // Just inside, it is, and still passes.
    expect(at('2025-07-19T10:00:35Z').ok).toBe(true);
    // Before the QE Identity was issued.
    expect(codes(at('2025-06-19T10:32:26Z'))).toEqual(['TDX_QE_IDENTITY_EXPIRED']);
    expect(at('2025-06-19T10:32:27Z').ok).toBe(true);
  });
});
