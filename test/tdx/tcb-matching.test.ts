/**
 * TCB level matching, TDX module identities and QE Identity matching (Intel QVL algorithm, see
 * src/tdx/tcb.ts) on the real TCB Infos and QE Identities of ../shared/fixtures/real/tdx, with
 * the real quotes' values and with hand-picked SVN vectors; convergence on synthetic (unsigned)
 * TCB Infos where Intel's real ones have no such levels.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDcapQvlCollateral, parseTdxQeIdentity, parseTdxQeIdentityBody, parseTdxTcbInfo, parseTdxTcbInfoBody, type TdxQeIdentity, type TdxTcbInfo } from '../../src/tdx/collateral.js';
import { parsePckCertificate, parsePckChainPem } from '../../src/tdx/pck.js';
import {
  IDENTITY_TCB_STATUSES,
  TCB_STATUSES,
  appraiseTdxTcb,
  convergeTcbStatus,
  evaluateTdxTcb,
  matchQeIdentity,
  platformTcb,
  type QeReportFields,
  type TdxPlatformTcb,
} from '../../src/tdx/tcb.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const bytes = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
const tee = (...svn: number[]): Uint8Array => Uint8Array.from([...svn, ...Array(16 - svn.length).fill(0)]);
const sgx = (...svn: number[]): number[] => [...svn, ...Array(16 - svn.length).fill(0)];

/** Test helper: the platform TCB of a real quote (PCK from the PEM blocks, TD fields from expected.json). */
function realPlatform(dir: string): TdxPlatformTcb {
  const q = Buffer.from(readReal('tdx', dir, 'quote.dat'));
  const pem = q.subarray(q.indexOf('-----BEGIN CERTIFICATE-----'), q.lastIndexOf('-----END CERTIFICATE-----') + 25);
  const pck = parsePckCertificate(parsePckChainPem(new Uint8Array(pem))[0] as Uint8Array);
  const e = JSON.parse(readFileSync(realPath('tdx', dir, 'expected.json'), 'utf8')) as Record<string, string>;
  return platformTcb(pck.sgx, { teeTcbSvn: bytes(e.tee_tcb_svn as string), mrSignerSeam: bytes(e.mrsignerseam as string), seamAttributes: bytes(e.seam_attributes as string) });
}

/**
 * Test helper: the QE report fields of a real quote. The QE report (an SGX REPORT body, 384
 * bytes) starts after header, TD report, signature data length, signature, attestation key and
 * certification data header: offset 770 in a v4 quote, 48 + 6 + body size + 4 + 128 + 6 in v5.
 */
function realQeReport(dir: string): QeReportFields {
  const q = Buffer.from(readReal('tdx', dir, 'quote.dat'));
  const off = q.readUInt16LE(0) === 4 ? 770 : 48 + 6 + q.readUInt32LE(50) + 4 + 128 + 6;
  const r = q.subarray(off, off + 384);
  return { miscSelect: r.readUInt32LE(16), attributes: new Uint8Array(r.subarray(48, 64)), mrSigner: new Uint8Array(r.subarray(128, 160)), isvProdId: r.readUInt16LE(256), isvSvn: r.readUInt16LE(258) };
}

describe.skipIf(!HAVE_REAL)('the real quotes against their real collateral', () => {
  const qvl = (dir: string) => parseDcapQvlCollateral(readReal('tdx', dir, 'collateral.json'));

  it('dcapqvl-b0c06f-v4: UpToDate, no advisory IDs (as its source asserts); module TDX_01 level isvsvn 4', () => {
    const c = qvl('dcapqvl-b0c06f-v4');
    const r = appraiseTdxTcb(c.tcbInfo as TdxTcbInfo, c.qeIdentity as TdxQeIdentity, realPlatform('dcapqvl-b0c06f-v4'), realQeReport('dcapqvl-b0c06f-v4'));
    expect(r.failures).toEqual([]);
    expect(r.status).toBe('UpToDate');
    expect(r.advisoryIds).toEqual([]);
    expect(r.platform.module).toMatchObject({ version: 1, isvSvn: 6, identity: 'TDX_01', status: 'UpToDate' });
    expect(r.platform.tdxLevel?.index).toBe(0);
    expect(r.qe.status).toBe('UpToDate');
  });

  it('gtg-emr-v5 with its TCB Info and the TD_QE identity: UpToDate', () => {
    const tcbInfo = parseTdxTcbInfoBody(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json'));
    const r = appraiseTdxTcb(tcbInfo, qvl('dcapqvl-emr-v5-outdated').qeIdentity as TdxQeIdentity, realPlatform('gtg-emr-v5'), realQeReport('gtg-emr-v5'));
    expect(r.failures).toEqual([]);
    expect(r.status).toBe('UpToDate');
    expect(r.platform.module?.identity).toBe('TDX_01');
  });

  it('dcapqvl-emr-v5-outdated: below every TCB level (SGX component 8, SEAMLDR ACM, is 3 and every level needs 5): TDX_TCB_LEVEL_NOT_FOUND', () => {
    const c = qvl('dcapqvl-emr-v5-outdated');
    const p = realPlatform('dcapqvl-emr-v5-outdated');
    expect(p.sgxTcbComponents).toEqual(sgx(3, 3, 2, 2, 4, 1, 0, 3));
    const tcbInfo = c.tcbInfo as TdxTcbInfo;
    expect(tcbInfo.tcbLevels.map((l) => l.sgxTcbComponents[7]?.svn)).toEqual([5, 5, 5]);
    const r = evaluateTdxTcb(tcbInfo, p);
    expect(codes(r)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(r.failures[0]?.field).toBe('pck.sgxExtension.tcb');
    expect(r.status).toBeUndefined();
    // Why dcap-qvl calls this quote "OutOfDate": it compares the SVN vectors lexicographically, and
    // [3,3,…] > [2,2,…] lexicographically although component 8 is lower. Intel's QVL compares
    // component by component; so does vouch.
    const lexicographicIndex = tcbInfo.tcbLevels.findIndex((l) => {
      const a = p.sgxTcbComponents;
      const b = l.sgxTcbComponents.map((x) => x.svn);
      const k = a.findIndex((x, i) => x !== b[i]);
      return p.pceSvn >= l.pceSvn && (k < 0 || (a[k] as number) > (b[k] as number));
    });
    expect(tcbInfo.tcbLevels[lexicographicIndex]?.tcbStatus).toBe('OutOfDate');
  });

  it('gtg-spr-e4-v4: the PCK SGX TCB (3,3,2,2,2,1,0,2) is below both levels: TDX_TCB_LEVEL_NOT_FOUND', () => {
    const tcbInfo = parseTdxTcbInfoBody(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'));
    const r = appraiseTdxTcb(tcbInfo, parseTdxQeIdentityBody(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json')), realPlatform('gtg-spr-e4-v4'), realQeReport('gtg-spr-e4-v4'));
    expect(codes(r)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(r.qe.status).toBe('UpToDate');
    expect(r.status).toBeUndefined();
  });

  it('a TCB Info of another FMSPC: TDX_TCB_INFO_MISMATCH', () => {
    const tcbInfo = qvl('dcapqvl-b0c06f-v4').tcbInfo as TdxTcbInfo;
    const r = evaluateTdxTcb(tcbInfo, realPlatform('gtg-emr-v5'));
    expect(r.failures[0]).toMatchObject({ code: 'TDX_TCB_INFO_MISMATCH', field: 'tcbInfo.fmspc', expected: '90c06f000000', actual: 'b0c06f000000' });
  });
});

describe.skipIf(!HAVE_REAL)('hand-picked SVN vectors on the real gtg-emr-v5 TCB Info (FMSPC 90c06f000000, evaluation 18)', () => {
  // Levels: [0] sgx 3,3,2,2,4,1,0,5 pce 13 tdx 5,0,3 UpToDate; [1] sgx 2,2,2,2,3,1,0,5 pce 13 tdx 5,0,2 OutOfDate;
  // [2] same with pce 5 OutOfDate. Module identities TDX_03 (isvsvn 3 UpToDate), TDX_01 (6 UpToDate, 4 OutOfDate, 2 OutOfDate).
  const info = (): TdxTcbInfo => parseTdxTcbInfoBody(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json'));
  const base: TdxPlatformTcb = {
    fmspc: bytes('90c06f000000'),
    pceId: bytes('0000'),
    sgxTcbComponents: sgx(3, 3, 2, 2, 4, 1, 0, 5),
    pceSvn: 13,
    teeTcbSvn: tee(6, 1, 3),
    mrSignerSeam: new Uint8Array(48),
    seamAttributes: new Uint8Array(8),
  };
  const ev = (p: Partial<TdxPlatformTcb>) => evaluateTdxTcb(info(), { ...base, ...p });

  it('exactly at the top level: UpToDate (level 0, module TDX_01 level isvsvn 6)', () => {
    const r = ev({});
    expect(r.ok).toBe(true);
    expect(r.status).toBe('UpToDate');
    expect(r.tdxLevel?.index).toBe(0);
    expect(r.module?.level?.isvSvn).toBe(6);
  });

  it('TDX late microcode (TEE_TCB_SVN[2]) one below: level 1, OutOfDate, with its five advisories', () => {
    const r = ev({ teeTcbSvn: tee(6, 1, 2) });
    expect(r.status).toBe('OutOfDate');
    expect(r.sgxLevel?.index).toBe(0);
    expect(r.tdxLevel?.index).toBe(1);
    expect(r.advisoryIds).toEqual(['INTEL-SA-01036', 'INTEL-SA-01079', 'INTEL-SA-01099', 'INTEL-SA-01103', 'INTEL-SA-01111']);
  });

  it('SGX microcode one below (components 1-2 at 2): level 1, OutOfDate', () => {
    const r = ev({ sgxTcbComponents: sgx(2, 2, 2, 2, 4, 1, 0, 5) });
    expect(r.status).toBe('OutOfDate');
    expect(r.sgxLevel?.index).toBe(1);
  });

  it('PCESVN 12: only level 2 (PCESVN 5) is reached, OutOfDate with 19 advisories', () => {
    const r = ev({ pceSvn: 12 });
    expect(r.tdxLevel?.index).toBe(2);
    expect(r.status).toBe('OutOfDate');
    expect(r.advisoryIds).toHaveLength(19);
  });

  it('higher than every level is UpToDate', () => {
    expect(ev({ sgxTcbComponents: Array(16).fill(255), pceSvn: 0xffff, teeTcbSvn: tee(255, 1, 255, 255) }).status).toBe('UpToDate');
  });

  it('below every level (SGX component 1 at 1): TDX_TCB_LEVEL_NOT_FOUND, no status', () => {
    const r = ev({ sgxTcbComponents: sgx(1, 3, 2, 2, 4, 1, 0, 5) });
    expect(codes(r)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(r.status).toBeUndefined();
    expect(r.ok).toBe(false);
  });

  it('SGX level found but TEE_TCB_SVN[2] below every TDX level: TDX_TCB_LEVEL_NOT_FOUND on TEE_TCB_SVN', () => {
    const r = ev({ teeTcbSvn: tee(6, 1, 1) });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND TD_REPORT.TEE_TCB_SVN']);
    expect(r.sgxLevel?.index).toBe(0);
  });

  it('component-wise, not lexicographic: a higher first component does not make up for a lower eighth', () => {
    expect(codes(ev({ sgxTcbComponents: sgx(9, 9, 9, 9, 9, 9, 9, 4) }))).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
  });

  it('module version > 0: bytes 0..1 are the module ISVSVN and version, judged by the identity, not the TCB level', () => {
    // TEE_TCB_SVN[0] = 4 is below the level's tdxtcbcomponents[0] = 5, yet level 0 matches;
    // the module identity TDX_01 puts ISVSVN 4 at OutOfDate, which converges UpToDate → OutOfDate.
    const r = ev({ teeTcbSvn: tee(4, 1, 3) });
    expect(r.tdxLevel?.index).toBe(0);
    expect(r.levelStatus).toBe('UpToDate');
    expect(r.module).toMatchObject({ identity: 'TDX_01', isvSvn: 4, status: 'OutOfDate' });
    expect(r.status).toBe('OutOfDate');
    expect(r.advisoryIds).toEqual(['INTEL-SA-01036', 'INTEL-SA-01099']);
  });

  it('module ISVSVN below every level of its identity: TDX_TCB_LEVEL_NOT_FOUND on TEE_TCB_SVN[0]', () => {
    const r = ev({ teeTcbSvn: tee(1, 1, 3) });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND TD_REPORT.TEE_TCB_SVN[0]']);
    expect(r.status).toBeUndefined();
  });

  it('module version 3 uses identity TDX_03; version 2 has no identity: TDX_MODULE_MISMATCH', () => {
    expect(ev({ teeTcbSvn: tee(3, 3, 3) }).module).toMatchObject({ identity: 'TDX_03', status: 'UpToDate' });
    const r = ev({ teeTcbSvn: tee(3, 2, 3) });
    expect(r.failures[0]).toMatchObject({ code: 'TDX_MODULE_MISMATCH', field: 'TD_REPORT.TEE_TCB_SVN[1]', actual: 'TDX_02', expected: 'TDX_03 | TDX_01' });
  });

  it('module version 0 uses tdxModule and compares all 16 bytes: TEE_TCB_SVN[0] = 4 < 5 reaches no level', () => {
    expect(ev({ teeTcbSvn: tee(5, 0, 3) }).status).toBe('UpToDate');
    expect(codes(ev({ teeTcbSvn: tee(4, 0, 3) }))).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
  });

  it('MRSIGNERSEAM or SEAMATTRIBUTES other than the identity: TDX_MODULE_MISMATCH (the level is still reported)', () => {
    const signer = new Uint8Array(48);
    signer[47] = 1;
    const attrs = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x80);
    const r = ev({ mrSignerSeam: signer, seamAttributes: attrs });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['TDX_MODULE_MISMATCH TD_REPORT.MRSIGNERSEAM', 'TDX_MODULE_MISMATCH TD_REPORT.SEAMATTRIBUTES']);
    expect(r.ok).toBe(false);
    expect(r.status).toBe('UpToDate');
  });

  it('FMSPC and PCE-ID of another platform: TDX_TCB_INFO_MISMATCH for each', () => {
    expect(codes(ev({ fmspc: bytes('50806f000000'), pceId: bytes('0100') }))).toEqual(['TDX_TCB_INFO_MISMATCH', 'TDX_TCB_INFO_MISMATCH']);
  });

  it('inputs of the wrong size or range are misuse', () => {
    for (const p of [{ teeTcbSvn: new Uint8Array(15) }, { sgxTcbComponents: [1, 2, 3] }, { sgxTcbComponents: sgx(256) }, { pceSvn: -1 }, { mrSignerSeam: new Uint8Array(32) }, { fmspc: new Uint8Array(5) }]) {
      expect(() => ev(p)).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    }
  });
});

describe.skipIf(!HAVE_REAL)('QE Identity matching (real TD_QE identity of gtg-spr-e4-v4, real QE reports)', () => {
  const identity = (): TdxQeIdentity => parseTdxQeIdentityBody(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json'));

  for (const dir of ['gtg-spr-e4-v4', 'dcapqvl-b0c06f-v4', 'dcapqvl-emr-v5-outdated', 'gtg-emr-v5', 'trustee-gnr-v4', 'gtg-gcp-cos113-ccel']) {
    it(`${dir}: the QE report matches, UpToDate`, () => {
      const r = matchQeIdentity(identity(), realQeReport(dir));
      expect(r.failures).toEqual([]);
      expect(r.status).toBe('UpToDate');
    });
  }

  it('each field that differs is its own TDX_QE_IDENTITY_MISMATCH', () => {
    const qe = realQeReport('gtg-emr-v5');
    const signer = qe.mrSigner.slice();
    signer[0] = (signer[0] as number) ^ 1;
    const attrs = qe.attributes.slice();
    attrs[0] = (attrs[0] as number) ^ 0x01; // bit 0 of ATTRIBUTES (INIT) is under the mask
    const r = matchQeIdentity(identity(), { ...qe, mrSigner: signer, attributes: attrs, isvProdId: 1, miscSelect: 1 });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual([
      'TDX_QE_IDENTITY_MISMATCH QE_REPORT.MISCSELECT',
      'TDX_QE_IDENTITY_MISMATCH QE_REPORT.ATTRIBUTES',
      'TDX_QE_IDENTITY_MISMATCH QE_REPORT.MRSIGNER',
      'TDX_QE_IDENTITY_MISMATCH QE_REPORT.ISVPRODID',
    ]);
    expect(r.status).toBe('UpToDate');
    expect(r.ok).toBe(false);
  });

  it('ATTRIBUTES bits outside attributesMask (FBFFFFFFFFFFFFFF 0000…) do not matter; the debug bit does', () => {
    const qe = realQeReport('gtg-emr-v5');
    const masked = qe.attributes.slice();
    masked[0] = (masked[0] as number) ^ 0x04; // bit 2 (MODE64BIT) is masked out
    masked[8] = 0xff; // XFRM is masked out
    expect(matchQeIdentity(identity(), { ...qe, attributes: masked }).failures).toEqual([]);
    const debug = qe.attributes.slice();
    debug[0] = (debug[0] as number) | 0x02; // DEBUG
    expect(codes(matchQeIdentity(identity(), { ...qe, attributes: debug }))).toEqual(['TDX_QE_IDENTITY_MISMATCH']);
  });

  it('ISVSVN below the only level (4): TDX_TCB_LEVEL_NOT_FOUND; at or above: UpToDate', () => {
    const qe = realQeReport('gtg-emr-v5');
    expect(matchQeIdentity(identity(), { ...qe, isvSvn: 4 }).status).toBe('UpToDate');
    const r = matchQeIdentity(identity(), { ...qe, isvSvn: 3 });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND QE_REPORT.ISVSVN']);
    expect(r.status).toBeUndefined();
  });

  it('inputs of the wrong size or range are misuse', () => {
    const qe = realQeReport('gtg-emr-v5');
    for (const bad of [{ attributes: new Uint8Array(15) }, { mrSigner: new Uint8Array(48) }, { miscSelect: -1 }, { isvSvn: 1.5 }]) {
      expect(() => matchQeIdentity(identity(), { ...qe, ...bad })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Convergence, on synthetic TCB Infos (parsed, not signed: matching never looks at signatures).

const SIG = 'cd'.repeat(64);
const comps = (...svn: number[]): string => JSON.stringify(sgx(...svn).map((s) => ({ svn: s })));
function syntheticTcbInfo(levels: readonly { sgx: number[]; tdx: number[]; status: string; ids?: string[] }[], moduleLevels: readonly { isvsvn: number; status: string; ids?: string[] }[]): TdxTcbInfo {
  const lv = levels.map((l) => `{"tcb":{"sgxtcbcomponents":${comps(...l.sgx)},"pcesvn":10,"tdxtcbcomponents":${comps(...l.tdx)}},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"${l.status}"${l.ids === undefined ? '' : `,"advisoryIDs":${JSON.stringify(l.ids)}`}}`);
  const ml = moduleLevels.map((l) => `{"tcb":{"isvsvn":${l.isvsvn}},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"${l.status}"${l.ids === undefined ? '' : `,"advisoryIDs":${JSON.stringify(l.ids)}`}}`);
  const mod = `"mrsigner":"${'00'.repeat(48)}","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"`;
  const text = `{"id":"TDX","version":3,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","fmspc":"AABBCC000000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":19,"tdxModule":{${mod}},"tdxModuleIdentities":[{"id":"TDX_01",${mod},"tcbLevels":[${ml.join(',')}]}],"tcbLevels":[${lv.join(',')}]}`;
  return parseTdxTcbInfo(new Uint8Array(Buffer.from(text)), SIG);
}
function syntheticQe(levels: readonly { isvsvn: number; status: string; ids?: string[] }[]): TdxQeIdentity {
  const ql = levels.map((l) => `{"tcb":{"isvsvn":${l.isvsvn}},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"${l.status}"${l.ids === undefined ? '' : `,"advisoryIDs":${JSON.stringify(l.ids)}`}}`);
  const text = `{"id":"TD_QE","version":2,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","tcbEvaluationDataNumber":19,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"${'ee'.repeat(32)}","isvprodid":2,"tcbLevels":[${ql.join(',')}]}`;
  return parseTdxQeIdentity(new Uint8Array(Buffer.from(text)), SIG);
}
const platform = (teeSvn: Uint8Array, s = sgx(2)): TdxPlatformTcb => ({ fmspc: bytes('aabbcc000000'), pceId: bytes('0000'), sgxTcbComponents: s, pceSvn: 10, teeTcbSvn: teeSvn, mrSignerSeam: new Uint8Array(48), seamAttributes: new Uint8Array(8) });
const qeReport = (isvSvn: number): QeReportFields => ({ miscSelect: 0, attributes: bytes('15000000000000000700000000000000'), mrSigner: new Uint8Array(32).fill(0xee), isvProdId: 2, isvSvn });

describe('status convergence (Intel QVL converge rules)', () => {
  it('the table: module or QE OutOfDate and Revoked over every level status', () => {
    const want: Record<string, [string, string]> = {
      UpToDate: ['OutOfDate', 'Revoked'],
      SWHardeningNeeded: ['OutOfDate', 'Revoked'],
      ConfigurationNeeded: ['OutOfDateConfigurationNeeded', 'Revoked'],
      ConfigurationAndSWHardeningNeeded: ['OutOfDateConfigurationNeeded', 'Revoked'],
      OutOfDate: ['OutOfDate', 'Revoked'],
      OutOfDateConfigurationNeeded: ['OutOfDateConfigurationNeeded', 'Revoked'],
      Revoked: ['Revoked', 'Revoked'],
    };
    for (const s of TCB_STATUSES) {
      expect(convergeTcbStatus(s, undefined)).toBe(s);
      expect(convergeTcbStatus(s, 'UpToDate')).toBe(s);
      expect([convergeTcbStatus(s, 'OutOfDate'), convergeTcbStatus(s, 'Revoked')]).toEqual(want[s]);
    }
    expect(IDENTITY_TCB_STATUSES).toEqual(['UpToDate', 'OutOfDate', 'Revoked']);
  });

  it('every level status, alone and with an OutOfDate module, end to end', () => {
    const statuses = ['ConfigurationAndSWHardeningNeeded', 'ConfigurationNeeded', 'SWHardeningNeeded', 'UpToDate', 'OutOfDateConfigurationNeeded', 'Revoked', 'OutOfDate'];
    // Level k requires TEE_TCB_SVN[2] ≥ 7 - k, so TEE_TCB_SVN[2] = 7 - k selects level k.
    const info = syntheticTcbInfo(statuses.map((status, k) => ({ sgx: [1], tdx: [0, 0, 7 - k], status, ids: [`SA-${k}`] })), [
      { isvsvn: 5, status: 'UpToDate' },
      { isvsvn: 3, status: 'OutOfDate', ids: ['SA-MODULE'] },
      { isvsvn: 1, status: 'Revoked' },
    ]);
    statuses.forEach((status, k) => {
      const fresh = evaluateTdxTcb(info, platform(tee(5, 1, 7 - k)));
      expect(fresh.status).toBe(status);
      expect(fresh.advisoryIds).toEqual([`SA-${k}`]);
      const stale = evaluateTdxTcb(info, platform(tee(3, 1, 7 - k)));
      expect(stale.status).toBe(convergeTcbStatus(status as (typeof TCB_STATUSES)[number], 'OutOfDate'));
      expect(stale.advisoryIds).toEqual([`SA-${k}`, 'SA-MODULE']);
      expect(evaluateTdxTcb(info, platform(tee(2, 1, 7 - k))).status).toBe('Revoked');
    });
  });

  it('the QE TCB converges last: QE OutOfDate over ConfigurationNeeded is OutOfDateConfigurationNeeded; QE Revoked is Revoked', () => {
    const info = syntheticTcbInfo([{ sgx: [1], tdx: [0, 0, 1], status: 'ConfigurationNeeded', ids: ['SA-LEVEL'] }], [{ isvsvn: 1, status: 'UpToDate' }]);
    const qe = syntheticQe([
      { isvsvn: 8, status: 'UpToDate' },
      { isvsvn: 6, status: 'OutOfDate', ids: ['SA-QE', 'SA-LEVEL'] },
      { isvsvn: 2, status: 'Revoked' },
    ]);
    const p = platform(tee(1, 1, 1));
    expect(appraiseTdxTcb(info, qe, p, qeReport(9)).status).toBe('ConfigurationNeeded');
    const old = appraiseTdxTcb(info, qe, p, qeReport(7));
    expect(old.status).toBe('OutOfDateConfigurationNeeded');
    expect(old.advisoryIds).toEqual(['SA-LEVEL', 'SA-QE']);
    expect(appraiseTdxTcb(info, qe, p, qeReport(3)).status).toBe('Revoked');
    const none = appraiseTdxTcb(info, qe, p, qeReport(1));
    expect(codes(none)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND']);
    expect(none.status).toBeUndefined();
  });

  it('levels are taken in the order Intel lists them: the first match wins', () => {
    const info = syntheticTcbInfo([
      { sgx: [5], tdx: [0, 0, 5], status: 'UpToDate' },
      { sgx: [3], tdx: [0, 0, 1], status: 'SWHardeningNeeded' },
      { sgx: [1], tdx: [0, 0, 1], status: 'OutOfDate' },
    ], [{ isvsvn: 0, status: 'UpToDate' }]);
    expect(evaluateTdxTcb(info, platform(tee(0, 1, 9), sgx(4))).status).toBe('SWHardeningNeeded');
    expect(evaluateTdxTcb(info, platform(tee(0, 1, 9), sgx(2))).status).toBe('OutOfDate');
    expect(evaluateTdxTcb(info, platform(tee(0, 1, 4), sgx(9))).tdxLevel?.index).toBe(1);
  });
});
