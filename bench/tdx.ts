/**
 * Intel TDX part of `npm run bench` (issue #6), on the committed TEST-ONLY Intel hierarchy
 * (attestation-fixtures/tdx) with a synthetic TDX quote v4 signed like a real one.
 *
 * 1. Full appraisal with cached collateral: decode the quote bytes, verifyTdxQuote with one
 *    TdxQuoteVerifyCache and one parsed collateral object (QE vendor, quote signature, PCK chain
 *    with both CRLs, QE report signature and binding, TCB Info, QE Identity, CRLs, TCB status),
 *    then appraiseTdx against a policy that pins every measurement and the REPORTDATA binding.
 *    Next to it, in alternating rounds, the bare cost of the two ECDSA P-256 verifications every
 *    quote needs (attestation key over the signed bytes, PCK over the QE report) with cached
 *    KeyObjects. The ratio is the share of the bare rate (goal ≥ 60 %).
 * 2. The cold path: no cache (every certificate, CRL and collateral signature checked every time,
 *    the attestation key imported every time), the collateral already parsed; and the same with
 *    the collateral files parsed every time too.
 *
 * Run alone: `tsx bench/tdx.ts`.
 */
import { generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TEST_TDX_ROOT_FINGERPRINT, signSyntheticTdxQuote, testTdxCollateral, testTdxCollateralFiles, testTdxHierarchy } from '../attestation-fixtures/tdx/index.js';
import { teeReportData } from '../src/evidence/binding.js';
import { toHex } from '../src/lib/bytes.js';
import { decodeTdxQuote } from '../src/tdx/abi.js';
import { appraiseTdx } from '../src/tdx/appraise.js';
import { parseCollateralFiles } from '../src/tdx/collateral.js';
import { parseIntelCertificate } from '../src/tdx/pck.js';
import type { TdxPolicy } from '../src/tdx/policy.js';
import { TdxQuoteVerifyCache, verifyTdxQuote, type TdxQuoteVerifyOptions } from '../src/tdx/verify.js';
import { compareRates, median, rate } from './measure.js';

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

export async function tdxBench(out: (s: string) => void): Promise<void> {
  out('\nIntel TDX: a synthetic v4 quote signed by the TEST-ONLY attestation key and PCK (ECDSA P-256), TEST-ONLY Intel hierarchy and collateral');
  const h = testTdxHierarchy();
  const nonce = new Uint8Array(32).fill(0x5a);
  const key = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
  const binding = { nonce, boundKeySpki: key };
  const bytes = signSyntheticTdxQuote({ td: { reportData: teeReportData(nonce, key) } });
  const q = decodeTdxQuote(bytes);
  const r = q.body.report;
  const rules: TdxPolicy = {
    tcbStatuses: ['UpToDate'], advisoryIds: [], mrTd: [toHex(r.mrTd)],
    rtmr0: [toHex(r.rtmrs[0])], rtmr1: [toHex(r.rtmrs[1])], rtmr2: [toHex(r.rtmrs[2])], rtmr3: [toHex(r.rtmrs[3])],
    mrSeam: [toHex(r.mrSeam)], mrConfigId: [toHex(r.mrConfigId)], mrOwner: [toHex(r.mrOwner)], mrOwnerConfig: [toHex(r.mrOwnerConfig)],
    debug: 'forbidden', attributes: { septVeDisable: 'required', otherBits: 'forbidden' }, xfam: [toHex(r.xfam)], allowMissingCrl: false,
  };
  const now = new Date('2026-01-01T00:00:00Z');
  const pins = [TEST_TDX_ROOT_FINGERPRINT];
  const collateral = testTdxCollateral();
  // A verifier keeps one cache and one parsed collateral object per platform (FMSPC).
  const cache = new TdxQuoteVerifyCache();
  const cached: TdxQuoteVerifyOptions = { now, collateral, pinnedRootFingerprints: pins, cache };

  const full = (o: TdxQuoteVerifyOptions) => (): void => {
    const v = verifyTdxQuote(bytes, o);
    const a = appraiseTdx(v, rules, binding);
    if (!v.ok || !a.ok) throw new Error(`bench: the synthetic quote is refused: ${[...v.failures, ...a.failures].map((f) => f.code).join(', ')}`);
  };
  // The bare cost: the two verifications with KeyObjects already at hand.
  const akKey = cache.attestationKey(q.signatureData.attestationKey);
  if (typeof akKey === 'string') throw new Error(`bench: ${akKey}`);
  const pckKey = parseIntelCertificate(h.pck).cert.publicKey;
  const bare = (): void => {
    const a = cryptoVerify('sha256', q.signedBytes, { key: akKey, dsaEncoding: 'ieee-p1363' }, q.signatureData.signature);
    const b = cryptoVerify('sha256', q.qeReportBytes, { key: pckKey, dsaEncoding: 'ieee-p1363' }, q.signatureData.qeReportSignature);
    if (!a || !b) throw new Error('bench: a bare P-256 verification fails');
  };

  const hot = compareRates(9, 300, full(cached), bare);
  out(`   full appraisal, cached collateral (decode + verify + CRLs + TCB status + appraise) ${fmt(hot.a).padStart(8)}/s   bare 2 × P-256 verify ${fmt(hot.b).padStart(8)}/s   ratio ${pct(hot.a / hot.b)} (goal ≥ 60 %)`);
  out(`   of which decode + appraiseTdx alone ${fmt(median([1, 2, 3].map(() => rate(200, () => void appraiseTdx({ report: decodeTdxQuote(bytes).body.report, tcb: { status: 'UpToDate', advisoryIds: [] } }, rules, binding)))))}/s`);
  const coldRates: number[] = [];
  for (let i = 0; i < 5; i++) coldRates.push(rate(300, full({ now, collateral, pinnedRootFingerprints: pins })));
  out(`   cold path (no cache: PCK chain, 3 collateral chains, TCB Info, QE Identity and 2 CRLs verified, attestation key imported, every time) ${fmt(median(coldRates))}/s`);
  const files = testTdxCollateralFiles();
  const coldParse: number[] = [];
  for (let i = 0; i < 3; i++) coldParse.push(rate(300, () => full({ now, collateral: parseCollateralFiles(files), pinnedRootFingerprints: pins })()));
  out(`   cold path with the collateral files parsed every time too ${fmt(median(coldParse))}/s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  tdxBench((s) => process.stdout.write(`${s}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
