/**
 * TDX in the appraisal (src/appraisal/tdx.ts) and its collateral resolution
 * (src/verifier/tdx-collateral.ts), with the TEST-ONLY hierarchy of attestation-fixtures/tdx:
 * every refusal has its own code, and the summary names the collateral used.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appraiseTdxEvidence, type TdxSuppliedCollateral } from '../../src/appraisal/tdx.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { PcsClient } from '../../src/tdx/collateral.js';
import type { TdxPolicy } from '../../src/tdx/policy.js';
import { TdxQuoteVerifyCache } from '../../src/tdx/verify.js';
import { TdxCollateralFiles, resolveTdxCollateral } from '../../src/verifier/tdx-collateral.js';
import { FIXTURE, TEST_TDX_ROOT_FINGERPRINT, signSyntheticTdxQuote, testTdxCollateral, testTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';

const h = testTdxHierarchy();
const NOW = Date.parse('2026-01-01T00:00:00Z');
const nonce = new Uint8Array(32).fill(1);
const boundKeySpki = new Uint8Array([0x30, 0x59, 1, 2, 3]);
const binding = { nonce, boundKeySpki };
const reportData = teeReportData(nonce, boundKeySpki);
const RULES: TdxPolicy = {
  advisoryIds: [],
  mrTd: 'any',
  rtmr0: 'any',
  rtmr1: 'any',
  rtmr2: 'any',
  rtmr3: 'any',
  mrSeam: 'any',
  mrConfigId: 'any',
  mrOwner: 'any',
  mrOwnerConfig: 'any',
  attributes: 'any',
  xfam: 'any',
  allowMissingCrl: false,
};
const supplied = (over: Parameters<typeof testTdxCollateral>[0] = {}): TdxSuppliedCollateral => ({ collateral: testTdxCollateral(over), source: 'file', failures: [] });
const trust = (c: TdxSuppliedCollateral | undefined) => ({ pinnedRootFingerprints: [TEST_TDX_ROOT_FINGERPRINT], cache: new TdxQuoteVerifyCache(), ...(c !== undefined ? { collateral: c } : {}) });
const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);

describe('appraiseTdxEvidence', () => {
  const quote = signSyntheticTdxQuote({ td: { reportData } });

  it('a genuine quote bound to the challenge passes; the summary names the TCB status and the SHA-256 of each collateral item', () => {
    const r = appraiseTdxEvidence(RULES, { quote }, binding, NOW, trust(supplied()));
    expect(r.failures).toEqual([]);
    expect(r.summary?.tcbStatus).toBe('UpToDate');
    expect(r.summary?.fmspc).toBe('00c0ffee0000');
    expect(r.summary?.tcbEvaluationDataNumber).toBe(FIXTURE.tcbEvaluationDataNumber);
    const c = testTdxCollateral();
    expect(r.summary?.collateral.pckCrl).toBe(createHash('sha256').update(c.pckCrl as Uint8Array).digest('hex'));
    expect(r.summary?.pckSha256).toBe(createHash('sha256').update(h.pck).digest('hex'));
    expect(r.summary?.ccel).toBeUndefined();
  });

  it('no collateral source: TDX_COLLATERAL_NOT_CONFIGURED; collateral that could not be had refuses with its code', () => {
    expect(codes(appraiseTdxEvidence(RULES, { quote }, binding, NOW, trust(undefined)))).toEqual(['TDX_COLLATERAL_NOT_CONFIGURED']);
    const pcsDown: TdxSuppliedCollateral = { source: 'pcs', failures: [{ code: 'TDX_PCS_UNAVAILABLE', message: 'down' }] };
    const r = appraiseTdxEvidence(RULES, { quote }, binding, NOW, trust(pcsDown));
    expect(codes(r)[0]).toBe('TDX_PCS_UNAVAILABLE');
    expect(codes(r)).toContain('TDX_TCB_INFO_MISSING');
  });

  it('the root is not trusted unless pinned; a revoked PCK and a bad quote are refused with their codes', () => {
    const unpinned = appraiseTdxEvidence(RULES, { quote }, binding, NOW, { collateral: supplied() });
    expect(codes(unpinned)).toContain('TDX_ROOT_NOT_PINNED');
    expect(codes(appraiseTdxEvidence(RULES, { quote }, binding, NOW, trust(supplied({ pckCrl: h.pckCrlRevokingPck }))))).toEqual(['TDX_PCK_REVOKED']);
    const flipped = quote.slice();
    flipped[100] = (flipped[100] as number) ^ 1; // inside the TD report: the signed bytes
    expect(codes(appraiseTdxEvidence(RULES, { quote: flipped }, binding, NOW, trust(supplied())))).toEqual(['TDX_QUOTE_SIGNATURE_INVALID']);
    expect(codes(appraiseTdxEvidence(RULES, { quote: new Uint8Array([4, 0]) }, binding, NOW, trust(supplied())))).toEqual(['PARSE_TRUNCATED']);
  });

  it('an OutOfDate TDX TCB is refused by the default statuses and its advisory by advisoryIds: []', () => {
    const teeTcbSvn = Uint8Array.from(FIXTURE.module.teeTcbSvn);
    teeTcbSvn[2] = 1;
    const r = appraiseTdxEvidence(RULES, { quote: signSyntheticTdxQuote({ td: { reportData, teeTcbSvn } }) }, binding, NOW, trust(supplied()));
    expect(codes(r)).toEqual(['POLICY_TDX_TCB_STATUS', 'POLICY_TDX_ADVISORY']);
    expect(r.summary?.tcbStatus).toBe('OutOfDate');
    expect(r.summary?.advisoryIds).toEqual([FIXTURE.advisory]);
  });
});

describe('resolveTdxCollateral', () => {
  const quote = signSyntheticTdxQuote();

  it('from files: read once, the same object while unchanged; a missing path refuses with its code', async () => {
    const files = new TdxCollateralFiles(h.collateralDir);
    const a = await resolveTdxCollateral({ quote }, files);
    const b = await resolveTdxCollateral({ quote }, files);
    expect(a.failures).toEqual([]);
    expect(a.collateral).toBe(b.collateral);
    const missing = await resolveTdxCollateral({ quote }, new TdxCollateralFiles(join(h.collateralDir, 'nope.json')));
    expect(missing.failures.map((f) => f.code)).toEqual(['MISUSE_FILE_UNREADABLE']);
  });

  it('from PCS: offline without a cache refuses with TDX_PCS_UNAVAILABLE; with the bundle imported, the FMSPC and CA of the quote’s PCK find it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-tdx-pcs-'));
    try {
      const client = new PcsClient({ clock: () => new Date(NOW), cacheDir: dir });
      const down = await resolveTdxCollateral({ quote }, client);
      expect(down.failures.map((f) => f.code)).toEqual(['TDX_PCS_UNAVAILABLE']);
      await client.importBundle(h.collateralDir);
      const up = await resolveTdxCollateral({ quote }, client);
      expect(up.failures).toEqual([]);
      expect(up.source).toBe('pcs');
      const r = appraiseTdxEvidence(RULES, { quote: signSyntheticTdxQuote({ td: { reportData } }) }, binding, NOW, trust(up));
      expect(r.failures).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
