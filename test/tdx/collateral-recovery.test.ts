/**
 * The TCB recovery report: which TCB levels and which platforms stop being accepted when a TCB
 * Info with a higher tcbEvaluationDataNumber replaces the current one. "Current" is the real
 * gtg-emr-v5 TCB Info (evaluation 18); "next" is derived from it here the way a TCB recovery
 * changes a TCB Info (a new top level, the old top level OutOfDate with a new advisory, a new
 * TDX module level) and is parsed unsigned: the report reads levels, not signatures.
 */
import { describe, expect, it } from 'vitest';
import { parseTdxTcbInfo, parseTdxTcbInfoBody, tcbRecoveryReport, type RecoveryPlatform, type TdxTcbInfo } from '../../src/tdx/collateral.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';

type Json = Record<string, unknown>;
const bytes = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
const tee = (...svn: number[]): Uint8Array => Uint8Array.from([...svn, ...Array(16 - svn.length).fill(0)]);

function nextTcbInfo(current: string, evaluation = 19): TdxTcbInfo {
  const doc = (JSON.parse(current) as { tcbInfo: Json }).tcbInfo;
  const levels = doc.tcbLevels as Json[];
  const top = JSON.parse(JSON.stringify(levels[0])) as { tcb: { tdxtcbcomponents: { svn: number }[] }; tcbDate: string; tcbStatus: string; advisoryIDs?: string[] };
  top.tcb.tdxtcbcomponents[2] = { svn: 4 };
  top.tcbDate = '2026-05-13T00:00:00Z';
  const oldTop = { ...(levels[0] as Json), tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-09999'] };
  const identities = doc.tdxModuleIdentities as { id: string; tcbLevels: Json[] }[];
  const tdx01 = identities.find((m) => m.id === 'TDX_01') as { tcbLevels: Json[] };
  tdx01.tcbLevels = [{ tcb: { isvsvn: 8 }, tcbDate: '2026-05-13T00:00:00Z', tcbStatus: 'UpToDate' }, ...tdx01.tcbLevels.map((l, i) => (i === 0 ? { ...l, tcbStatus: 'OutOfDate', advisoryIDs: ['INTEL-SA-09998'] } : l))];
  const next = { ...doc, tcbEvaluationDataNumber: evaluation, issueDate: '2026-05-14T00:00:00Z', nextUpdate: '2026-06-13T00:00:00Z', tcbLevels: [top, oldTop, ...levels.slice(1)] };
  return parseTdxTcbInfo(new Uint8Array(Buffer.from(JSON.stringify(next))), 'ef'.repeat(64));
}

const platform = (id: string, teeTcbSvn: Uint8Array, sgx = [4, 4, 2, 2, 4, 1, 0, 5]): RecoveryPlatform => ({
  id,
  fmspc: bytes('90c06f000000'),
  pceId: bytes('0000'),
  sgxTcbComponents: [...sgx, ...Array(16 - sgx.length).fill(0)],
  pceSvn: 13,
  teeTcbSvn,
  mrSignerSeam: new Uint8Array(48),
  seamAttributes: new Uint8Array(8),
});

describe.skipIf(!HAVE_REAL)('tcbRecoveryReport', () => {
  const currentText = HAVE_REAL ? Buffer.from(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json')).toString('utf8') : '{}';

  it('levels: the current top level would become OutOfDate; the others were not accepted anyway', () => {
    const current = parseTdxTcbInfoBody(new Uint8Array(Buffer.from(currentText)));
    const r = tcbRecoveryReport(current, nextTcbInfo(currentText));
    expect(r.fmspc).toBe('90c06f000000');
    expect([r.currentEvaluationDataNumber, r.nextEvaluationDataNumber]).toEqual([18, 19]);
    expect(r.levels.map((l) => [l.index, l.currentStatus, l.nextStatus, l.wouldFail])).toEqual([
      [0, 'UpToDate', 'OutOfDate', true],
      [1, 'OutOfDate', 'OutOfDate', false],
      [2, 'OutOfDate', 'OutOfDate', false],
    ]);
  });

  it('platforms: who fails at the recovery, who is not affected, and the advisories they gain', () => {
    const current = parseTdxTcbInfoBody(new Uint8Array(Buffer.from(currentText)));
    const platforms = [
      platform('gtg-emr-v5 (TEE_TCB_SVN 0b0104…)', tee(0x0b, 1, 4)),
      platform('microcode not updated', tee(0x0b, 1, 3)),
      platform('module not updated', tee(6, 1, 4)),
      platform('already out of date', tee(0x0b, 1, 2)),
      platform('below every level', tee(0x0b, 1, 4), [1, 1]),
    ];
    const r = tcbRecoveryReport(current, nextTcbInfo(currentText), { platforms });
    expect(r.platforms.map((p) => [p.id, p.currentStatus, p.nextStatus, p.changed, p.wouldFail])).toEqual([
      ['gtg-emr-v5 (TEE_TCB_SVN 0b0104…)', 'UpToDate', 'UpToDate', false, false],
      ['microcode not updated', 'UpToDate', 'OutOfDate', true, true],
      ['module not updated', 'UpToDate', 'OutOfDate', true, true],
      ['already out of date', 'OutOfDate', 'OutOfDate', false, false],
      ['below every level', undefined, undefined, false, false],
    ]);
    expect(r.platformsThatWouldFail).toEqual(['microcode not updated', 'module not updated']);
    expect(r.platforms[1]?.newAdvisoryIds).toEqual(['INTEL-SA-09999']);
    expect(r.platforms[2]?.newAdvisoryIds).toEqual(['INTEL-SA-09998']);
    expect(r.platforms[4]?.nextFailures.map((f) => f.code)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
  });

  it('an operator who accepts OutOfDate as well sees no failures', () => {
    const current = parseTdxTcbInfoBody(new Uint8Array(Buffer.from(currentText)));
    const r = tcbRecoveryReport(current, nextTcbInfo(currentText), { platforms: [platform('p', tee(0x0b, 1, 3))], accepted: ['UpToDate', 'OutOfDate'] });
    expect(r.platformsThatWouldFail).toEqual([]);
    expect(r.levels.some((l) => l.wouldFail)).toBe(false);
  });

  it('misuse: TCB Infos of different platforms, a next that is older, an unknown status', () => {
    const current = parseTdxTcbInfoBody(new Uint8Array(Buffer.from(currentText)));
    const spr = parseTdxTcbInfoBody(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'));
    expect(() => tcbRecoveryReport(current, spr)).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => tcbRecoveryReport(current, nextTcbInfo(currentText, 17))).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => tcbRecoveryReport(current, nextTcbInfo(currentText), { accepted: ['Fine' as 'UpToDate'] })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });
});
