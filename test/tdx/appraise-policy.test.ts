/**
 * appraiseTdx and the policy's `tdx` section: each rule refuses with its own code and names the
 * TD report field, expected and actual; the defaults (UpToDate only, debug forbidden) hold when
 * the keys are absent; the default policy refuses the real dcapqvl-emr-v5-outdated quote; the
 * appraisal is deterministic; the section loads strictly inside a policy document.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { teeReportData } from '../../src/evidence/binding.js';
import { toHex } from '../../src/lib/bytes.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { policyDigest } from '../../src/policy/digest.js';
import { decodeTdxQuote, type TdReport10 } from '../../src/tdx/abi.js';
import { appraiseTdx, type TdxClaims } from '../../src/tdx/appraise.js';
import { parseDcapQvlCollateral } from '../../src/tdx/collateral.js';
import type { TdxPolicy } from '../../src/tdx/policy.js';
import { verifyTdxQuote } from '../../src/tdx/verify.js';
import { FIXTURE, FIXTURE_TD_ATTRIBUTES_DEBUG, TEST_TDX_ROOT_FINGERPRINT, signSyntheticTdxQuote, testTdxCollateral } from '../../attestation-fixtures/tdx/index.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const nonce = new Uint8Array(32).fill(0x5a);
const key = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
const binding = { nonce, boundKeySpki: key };
const bound = teeReportData(nonce, key);

/** Every rule "any", nothing optional given: only the defaults constrain. */
const OPEN: TdxPolicy = {
  advisoryIds: 'any',
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

function claims(over: Partial<TdReport10> = {}, tcb: TdxClaims['tcb'] = { status: 'UpToDate', advisoryIds: [] }): TdxClaims {
  const q = decodeTdxQuote(signSyntheticTdxQuote({ td: { reportData: bound, ...over } }));
  return { report: q.body.report, tcb };
}

describe('appraiseTdx rules', () => {
  const c = claims();
  const r = c.report;

  it('a TD that matches every pinned value passes', () => {
    const pinned: TdxPolicy = {
      tcbStatuses: ['UpToDate'],
      advisoryIds: [],
      mrTd: [toHex(r.mrTd)],
      rtmr0: [toHex(r.rtmrs[0])],
      rtmr1: [toHex(r.rtmrs[1])],
      rtmr2: [toHex(r.rtmrs[2])],
      rtmr3: [toHex(r.rtmrs[3])],
      mrSeam: [toHex(r.mrSeam)],
      mrConfigId: [toHex(r.mrConfigId)],
      mrOwner: [toHex(r.mrOwner)],
      mrOwnerConfig: [toHex(r.mrOwnerConfig)],
      debug: 'forbidden',
      attributes: { septVeDisable: 'required', migratable: 'forbidden', pks: 'allowed', otherBits: 'forbidden' },
      xfam: [toHex(r.xfam)],
      allowMissingCrl: false,
    };
    expect(appraiseTdx(c, pinned, binding)).toEqual({ ok: true, failures: [] });
    expect(appraiseTdx(c, OPEN, { reportData: bound }).ok).toBe(true);
  });

  it('wrong REPORTDATA (another nonce, another key, or an exact value): TDX_REPORT_DATA_MISMATCH', () => {
    const other = appraiseTdx(c, OPEN, { nonce: new Uint8Array(32).fill(1), boundKeySpki: key });
    expect(codes(other)).toEqual(['TDX_REPORT_DATA_MISMATCH']);
    expect(other.failures[0]).toMatchObject({ field: 'TD_REPORT.REPORTDATA', actual: toHex(bound), expected: toHex(teeReportData(new Uint8Array(32).fill(1), key)) });
    expect(codes(appraiseTdx(c, OPEN, { reportData: new Uint8Array(64) }))).toEqual(['TDX_REPORT_DATA_MISMATCH']);
    expect(() => appraiseTdx(c, OPEN, { reportData: new Uint8Array(32) })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });

  it('a debug TD is refused by default (debug absent) and by debug: forbidden; debug: allowed accepts it', () => {
    const dbg = claims({ tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG });
    const a = appraiseTdx(dbg, OPEN, binding);
    expect(codes(a)).toEqual(['POLICY_TDX_DEBUG']);
    expect(a.failures[0]).toMatchObject({ field: 'TD_REPORT.TDATTRIBUTES.DEBUG', expected: '0', actual: '1' });
    expect(codes(appraiseTdx(dbg, { ...OPEN, debug: 'forbidden' }, binding))).toEqual(['POLICY_TDX_DEBUG']);
    expect(appraiseTdx(dbg, { ...OPEN, debug: 'allowed' }, binding).ok).toBe(true);
  });

  it('TCB status: UpToDate only by default; others when listed; none (TCB not supported) never', () => {
    const ood = claims({}, { status: 'OutOfDate', advisoryIds: ['INTEL-SA-00837'] });
    const a = appraiseTdx(ood, OPEN, binding);
    expect(codes(a)).toEqual(['POLICY_TDX_TCB_STATUS']);
    expect(a.failures[0]).toMatchObject({ field: 'tcbStatus', expected: 'UpToDate', actual: 'OutOfDate' });
    expect(appraiseTdx(ood, { ...OPEN, tcbStatuses: ['UpToDate', 'OutOfDate'] }, binding).ok).toBe(true);
    const none = appraiseTdx(claims({}, { advisoryIds: [] }), { ...OPEN, tcbStatuses: ['UpToDate', 'OutOfDate'] }, binding);
    expect(codes(none)).toEqual(['POLICY_TDX_TCB_STATUS']);
    expect(none.failures[0]?.actual).toMatch(/^none/);
  });

  it('advisory IDs: each one not accepted is named; [] accepts none', () => {
    const ood = claims({}, { status: 'OutOfDate', advisoryIds: ['INTEL-SA-00837', 'INTEL-SA-01036'] });
    const p = { ...OPEN, tcbStatuses: ['OutOfDate' as const] };
    expect(appraiseTdx(ood, { ...p, advisoryIds: ['INTEL-SA-00837', 'INTEL-SA-01036'] }, binding).ok).toBe(true);
    const a = appraiseTdx(ood, { ...p, advisoryIds: ['INTEL-SA-00837'] }, binding);
    expect(a.failures).toEqual([expect.objectContaining({ code: 'POLICY_TDX_ADVISORY', field: 'tcbStatus.advisoryIDs', actual: 'INTEL-SA-01036' })]);
    expect(codes(appraiseTdx(ood, { ...p, advisoryIds: [] }, binding))).toEqual(['POLICY_TDX_ADVISORY', 'POLICY_TDX_ADVISORY']);
  });

  it('each measurement allowlist refuses another value with its own code and the spec field', () => {
    const other = ['00'.repeat(48)];
    const rows: [keyof TdxPolicy, string, string][] = [
      ['mrTd', 'POLICY_TDX_MRTD', 'MRTD'],
      ['rtmr0', 'POLICY_TDX_RTMR', 'RTMR0'],
      ['rtmr1', 'POLICY_TDX_RTMR', 'RTMR1'],
      ['rtmr2', 'POLICY_TDX_RTMR', 'RTMR2'],
      ['rtmr3', 'POLICY_TDX_RTMR', 'RTMR3'],
      ['mrSeam', 'POLICY_TDX_MRSEAM', 'MRSEAM'],
      ['mrConfigId', 'POLICY_TDX_MRCONFIGID', 'MRCONFIGID'],
      ['mrOwner', 'POLICY_TDX_MROWNER', 'MROWNER'],
      ['mrOwnerConfig', 'POLICY_TDX_MROWNERCONFIG', 'MROWNERCONFIG'],
    ];
    const tweaked = claims({ rtmrs: [new Uint8Array(48).fill(1), new Uint8Array(48).fill(2), new Uint8Array(48).fill(3), new Uint8Array(48).fill(4)], mrConfigId: new Uint8Array(48).fill(5), mrOwner: new Uint8Array(48).fill(6), mrOwnerConfig: new Uint8Array(48).fill(7) });
    for (const [k, code, field] of rows) {
      const a = appraiseTdx(tweaked, { ...OPEN, [k]: other }, binding);
      expect(a.failures, k).toEqual([expect.objectContaining({ code, field: `TD_REPORT.${field}`, expected: other[0] })]);
    }
    expect(codes(appraiseTdx(tweaked, { ...OPEN, xfam: ['0300000000000000'] }, binding))).toEqual(['POLICY_TDX_XFAM']);
    expect(appraiseTdx(tweaked, { ...OPEN, xfam: ['e702060000000000'] }, binding).ok).toBe(true);
  });

  it('attribute bits: required, forbidden, and bits no rule names', () => {
    const plain = claims({ tdAttributes: new Uint8Array(8) });
    const a = appraiseTdx(plain, { ...OPEN, attributes: { septVeDisable: 'required' } }, binding);
    expect(a.failures).toEqual([expect.objectContaining({ code: 'POLICY_TDX_ATTRIBUTES', field: 'TD_REPORT.TDATTRIBUTES.SEPT_VE_DISABLE', expected: '1', actual: '0' })]);
    const pks = claims({ tdAttributes: Uint8Array.of(0, 0, 0, 0x50, 0, 0, 0, 0) }); // SEPT_VE_DISABLE (28) and PKS (30)
    expect(codes(appraiseTdx(pks, { ...OPEN, attributes: { pks: 'forbidden' } }, binding))).toEqual(['POLICY_TDX_ATTRIBUTES']);
    const odd = claims({ tdAttributes: Uint8Array.of(0x02, 0, 0, 0x10, 0, 0, 0, 0) }); // bit 1: no name
    expect(appraiseTdx(odd, { ...OPEN, attributes: { otherBits: 'allowed' } }, binding).ok).toBe(true);
    const o = appraiseTdx(odd, { ...OPEN, attributes: { otherBits: 'forbidden' } }, binding);
    expect(o.failures).toEqual([expect.objectContaining({ code: 'POLICY_TDX_ATTRIBUTES', field: 'TD_REPORT.TDATTRIBUTES' })]);
    expect(o.failures[0]?.actual).toMatch(/^bit\(s\) 1 set/);
  });

  it('every failure at once, in the fixed order', () => {
    const bad = claims({ tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG, reportData: new Uint8Array(64) }, { status: 'OutOfDate', advisoryIds: ['X-1'] });
    const a = appraiseTdx(bad, { ...OPEN, advisoryIds: [], mrTd: ['11'.repeat(48)], xfam: ['0000000000000000'] }, binding);
    expect(codes(a)).toEqual(['TDX_REPORT_DATA_MISMATCH', 'POLICY_TDX_TCB_STATUS', 'POLICY_TDX_ADVISORY', 'POLICY_TDX_MRTD', 'POLICY_TDX_DEBUG', 'POLICY_TDX_XFAM']);
  });

  it('deterministic: the same inputs give the same bytes out', () => {
    const bad = claims({ tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG }, { status: 'OutOfDate', advisoryIds: ['X-1', 'X-2'] });
    const p = { ...OPEN, advisoryIds: ['X-2'], mrTd: ['11'.repeat(48)] };
    const first = JSON.stringify(appraiseTdx(bad, p, binding));
    for (let i = 0; i < 20; i++) expect(JSON.stringify(appraiseTdx(bad, p, binding))).toBe(first);
  });
});

describe('verify then appraise', () => {
  it('a synthetic quote bound to the challenge: verified and accepted; at an OutOfDate level: refused by the default statuses', () => {
    const opts = { now: new Date('2026-01-01T00:00:00Z'), collateral: testTdxCollateral(), pinnedRootFingerprints: [TEST_TDX_ROOT_FINGERPRINT] };
    const v = verifyTdxQuote(signSyntheticTdxQuote({ td: { reportData: bound } }), opts);
    expect(v.ok).toBe(true);
    expect(appraiseTdx(v, OPEN, binding)).toEqual({ ok: true, failures: [] });
    const old = verifyTdxQuote(signSyntheticTdxQuote({ td: { reportData: bound, teeTcbSvn: Uint8Array.of(3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) } }), opts);
    expect(old.ok).toBe(true);
    expect(codes(appraiseTdx(old, OPEN, binding))).toEqual(['POLICY_TDX_TCB_STATUS']);
    expect(codes(appraiseTdx(old, { ...OPEN, tcbStatuses: ['OutOfDate'], advisoryIds: [] }, binding))).toEqual(['POLICY_TDX_ADVISORY']);
    expect(appraiseTdx(old, { ...OPEN, tcbStatuses: ['OutOfDate'], advisoryIds: [FIXTURE.advisory] }, binding).ok).toBe(true);
  });

  it.skipIf(!HAVE_REAL)('the default policy refuses the real dcapqvl-emr-v5-outdated quote (no TCB level: no status), whatever statuses it lists', () => {
    const v = verifyTdxQuote(readReal('tdx', 'dcapqvl-emr-v5-outdated', 'quote.dat'), { now: new Date('2026-03-01T00:00:00Z'), collateral: parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json')) });
    expect(codes(v)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    const exact = { reportData: v.report.reportData };
    const a = appraiseTdx(v, OPEN, exact);
    expect(codes(a)).toEqual(['POLICY_TDX_TCB_STATUS']);
    expect(codes(appraiseTdx(v, { ...OPEN, tcbStatuses: ['UpToDate', 'OutOfDate', 'OutOfDateConfigurationNeeded'] }, exact))).toEqual(['POLICY_TDX_TCB_STATUS']);
  });

  it.skipIf(!HAVE_REAL)('the real dcapqvl-b0c06f-v4 quote passes the default policy with its REPORTDATA', () => {
    const v = verifyTdxQuote(readReal('tdx', 'dcapqvl-b0c06f-v4', 'quote.dat'), { now: new Date('2025-07-01T00:00:00Z'), collateral: parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json')) });
    expect(appraiseTdx(v, { ...OPEN, mrTd: [toHex(v.report.mrTd)] }, { reportData: v.report.reportData })).toEqual({ ok: true, failures: [] });
  });
});

describe('the tdx section of a policy document', () => {
  const doc = (tdx: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'tdx-nodes', tdx, artifact: { lifetimeSeconds: 300 }, ...extra });

  it('loads without tpm rules (a policy for TDX guests), with the defaults filled in and sets sorted', () => {
    const p = parsePolicy(doc({ ...OPEN, advisoryIds: ['B', 'A'] }), 'json');
    expect(p.tdx).toMatchObject({ tcbStatuses: ['UpToDate'], debug: 'forbidden', advisoryIds: ['A', 'B'] });
    // The same meaning written out in full digests alike.
    const q = parsePolicy(doc({ ...OPEN, advisoryIds: ['A', 'B'], tcbStatuses: ['UpToDate'], debug: 'forbidden' }), 'json');
    expect(policyDigest(q)).toBe(policyDigest(p));
  });

  it('refuses unknown keys, a missing rule, Revoked, bad hex, and an empty attribute object', () => {
    const bad = [
      { ...OPEN, mrtd: 'any' },
      (({ mrTd: _m, ...rest }) => rest)(OPEN),
      { ...OPEN, tcbStatuses: ['Revoked'] },
      { ...OPEN, mrTd: ['ABCD'] },
      { ...OPEN, xfam: ['00'.repeat(48)] },
      { ...OPEN, attributes: {} },
      { ...OPEN, attributes: { debug: 'allowed' } },
      { ...OPEN, tcbStatuses: [] },
    ];
    for (const t of bad) expect(() => parsePolicy(doc(t), 'json'), JSON.stringify(t)).toThrowError(expect.objectContaining({ code: expect.stringMatching(/^POLICY_/) }));
  });

  it('a policy with neither tpm, snp nor tdx rules is still refused', () => {
    expect(() => parsePolicy(JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'x', artifact: { lifetimeSeconds: 300 } }), 'json')).toThrowError(expect.objectContaining({ code: expect.stringMatching(/^POLICY_/) }));
  });
});
