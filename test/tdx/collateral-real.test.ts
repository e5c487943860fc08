/**
 * Real Intel PCS collateral from ../shared/fixtures/real/tdx: every set parses, and its
 * signatures, chains and CRLs verify at the times of PROVENANCE.md; outside the windows each
 * item fails with its own code; missing items are named.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../src/lib/errors.js';
import {
  parseCollateralFiles,
  parseDcapQvlCollateral,
  parseTdxQeIdentityBody,
  parseTdxTcbInfoBody,
  readCollateral,
  verifyTdxCollateral,
  type TdxCollateral,
  type TdxCollateralVerification,
} from '../../src/tdx/collateral.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const check = (r: TdxCollateralVerification, name: string): string | undefined => r.checks.find((c) => c.check === name)?.outcome;
const at = (iso: string): Date => new Date(iso);

const SETS = {
  'gtg-spr-e4-v4': { path: ['tdx', 'gtg-spr-e4-v4'], at: '2023-07-01T01:00:00Z', fmspc: '50806f000000', tcbEval: 15 },
  'dcapqvl-b0c06f-v4': { path: ['tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'], at: '2025-07-01T00:00:00Z', fmspc: 'b0c06f000000', tcbEval: 17 },
  'dcapqvl-emr-v5-outdated': { path: ['tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json'], at: '2026-03-01T00:00:00Z', fmspc: '90c06f000000', tcbEval: 18 },
} as const;

describe.skipIf(!HAVE_REAL)('real collateral verifies at its PROVENANCE time', () => {
  for (const [name, set] of Object.entries(SETS)) {
    it(`${name}: parses, and every check passes at ${set.at}`, async () => {
      const c = await readCollateral(realPath(...set.path));
      expect(Buffer.from(c.tcbInfo?.fmspc ?? []).toString('hex')).toBe(set.fmspc);
      expect(c.tcbInfo?.tcbEvaluationDataNumber).toBe(set.tcbEval);
      expect(c.qeIdentity?.id).toBe('TD_QE');
      const r = verifyTdxCollateral(c, { now: at(set.at) });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checks.every((x) => x.outcome === 'pass')).toBe(true);
      expect(r.checks.map((x) => x.check)).toEqual([
        'tcbInfo.present', 'tcbInfo.issuerChain.parse', 'tcbInfo.issuerChain.roles', 'tcbInfo.issuerChain.rootPinned', 'tcbInfo.issuerChain.signatures', 'tcbInfo.issuerChain.validity', 'tcbInfo.signature', 'tcbInfo.window',
        'qeIdentity.present', 'qeIdentity.issuerChain.parse', 'qeIdentity.issuerChain.roles', 'qeIdentity.issuerChain.rootPinned', 'qeIdentity.issuerChain.signatures', 'qeIdentity.issuerChain.validity', 'qeIdentity.signature', 'qeIdentity.window',
        'pckCrl.issuerChain.parse', 'pckCrl.issuerChain.roles', 'pckCrl.issuerChain.rootPinned', 'pckCrl.issuerChain.signatures', 'pckCrl.issuerChain.validity',
        'rootCaCrl', 'pckCrl',
      ]);
      // The PCK CRLs of all three sets are the Platform CA's.
      expect(verifyTdxCollateral(c, { now: at(set.at), pckCa: 'platform' }).ok).toBe(true);
      expect(codes(verifyTdxCollateral(c, { now: at(set.at), pckCa: 'processor' }))).toEqual(['TDX_CHAIN_ISSUER_MISMATCH']);
    });
  }

  it('gtg-spr-e4-v4: the parsed TCB Info and QE Identity hold the documented values', async () => {
    const c = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const t = c.tcbInfo;
    expect(t?.issueDate.toISOString()).toBe('2023-06-18T08:42:58.000Z');
    expect(t?.nextUpdate.toISOString()).toBe('2023-07-18T08:42:58.000Z');
    expect(t?.tcbLevels.map((l) => l.tcbStatus)).toEqual(['UpToDate', 'OutOfDate']);
    expect(t?.tcbLevels[0]?.sgxTcbComponents.map((x) => x.svn)).toEqual([5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(t?.tcbLevels[0]?.tdxTcbComponents[2]).toEqual({ svn: 5, category: 'OS/VMM', type: 'TDX Late Microcode Update' });
    expect(t?.tcbLevels[1]?.advisoryIds).toHaveLength(13);
    expect(t?.tdxModuleIdentities).toEqual([]);
    expect(t?.tdxModule.attributesMask).toEqual(new Uint8Array(8).fill(0xff));
    const q = c.qeIdentity;
    expect(Buffer.from(q?.mrSigner ?? []).toString('hex')).toBe('dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5');
    expect(q?.isvProdId).toBe(2);
    expect(q?.tcbLevels).toEqual([{ isvSvn: 4, tcbDate: new Date('2023-02-15T00:00:00Z'), tcbStatus: 'UpToDate', advisoryIds: [] }]);
    // signedBytes is the exact member text of the body.
    const body = readFileSync(realPath('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), 'latin1');
    expect(Buffer.from(t?.signedBytes ?? []).toString('latin1')).toBe(body.slice('{"tcbInfo":'.length, body.indexOf(',"signature":')));
  });

  it('gtg-emr-v5: the TCB Info alone, with the TCB Signing chain of the dcap-qvl EMR set (same key, reissued 2025), verifies; the rest is named missing', () => {
    const tcbInfo = parseTdxTcbInfoBody(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json'));
    expect(tcbInfo.tdxModuleIdentities.map((m) => m.id)).toEqual(['TDX_03', 'TDX_01']);
    const chain = parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json')).tcbInfoIssuerChain;
    const c: TdxCollateral = { tcbInfo, ...(chain !== undefined ? { tcbInfoIssuerChain: chain } : {}) };
    const r = verifyTdxCollateral(c, { now: at('2026-02-03T01:00:00Z') });
    expect(check(r, 'tcbInfo.signature')).toBe('pass');
    expect(check(r, 'tcbInfo.window')).toBe('pass');
    expect(check(r, 'tcbInfo.issuerChain.validity')).toBe('pass');
    expect(codes(r)).toEqual(['TDX_QE_IDENTITY_MISSING', 'TDX_CRL_MISSING', 'TDX_CRL_MISSING']);
    const allowed = verifyTdxCollateral(c, { now: at('2026-02-03T01:00:00Z'), allowMissingCrl: true });
    expect(codes(allowed)).toEqual(['TDX_QE_IDENTITY_MISSING']);
    expect(allowed.allowancesUsed).toEqual(['missingRootCaCrl', 'missingPckCrl']);
    // The 2018 TCB Signing certificate of gtg-spr-e4-v4 has the same key but expired on 2025-05-21.
    const old = parseCollateralFiles({ tcbInfoIssuerChain: readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem') }).tcbInfoIssuerChain;
    const r2 = verifyTdxCollateral({ tcbInfo, ...(old !== undefined ? { tcbInfoIssuerChain: old } : {}) }, { now: at('2026-02-03T01:00:00Z'), allowMissingCrl: true });
    expect(check(r2, 'tcbInfo.signature')).toBe('pass');
    expect(codes(r2)).toEqual(['TDX_CHAIN_EXPIRED', 'TDX_QE_IDENTITY_MISSING']);
  });

  it('nothing at all: TCB Info, QE Identity and both CRLs are named missing', () => {
    expect(codes(verifyTdxCollateral({}, { now: at('2026-01-01T00:00:00Z') }))).toEqual(['TDX_TCB_INFO_MISSING', 'TDX_QE_IDENTITY_MISSING', 'TDX_CRL_MISSING', 'TDX_CRL_MISSING']);
  });

  it('a document without its issuer chain, and a PCK CRL without its chain, are missing items', async () => {
    const c = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const { tcbInfoIssuerChain: _t, pckCrlIssuerChain: _p, ...rest } = c;
    const r = verifyTdxCollateral(rest, { now: at('2023-07-01T01:00:00Z') });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['TDX_TCB_INFO_MISSING tcbInfoIssuerChain', 'TDX_CRL_MISSING pckCrlIssuerChain']);
  });
});

describe.skipIf(!HAVE_REAL)('outside the windows: each item with its own code', () => {
  it('gtg-spr-e4-v4 at 2023-07-10: QE Identity expired (07-08), PCK CRL stale (07-08); TCB Info still current', async () => {
    const r = verifyTdxCollateral(await readCollateral(realPath('tdx', 'gtg-spr-e4-v4')), { now: at('2023-07-10T00:00:00Z') });
    expect(codes(r)).toEqual(['TDX_QE_IDENTITY_EXPIRED', 'TDX_CRL_STALE']);
    expect(r.failures[0]).toMatchObject({ field: 'qeIdentity.nextUpdate', expected: '2023-06-08T07:24:59.000Z..2023-07-08T07:24:59.000Z', actual: '2023-07-10T00:00:00.000Z' });
    expect(r.failures[1]).toMatchObject({ field: 'pckCrl.tbsCertList.nextUpdate' });
  });

  it('gtg-spr-e4-v4 at 2023-07-20: the TCB Info has expired too', async () => {
    const r = verifyTdxCollateral(await readCollateral(realPath('tdx', 'gtg-spr-e4-v4')), { now: at('2023-07-20T00:00:00Z') });
    expect(codes(r)).toEqual(['TDX_TCB_INFO_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED', 'TDX_CRL_STALE']);
  });

  it('gtg-spr-e4-v4 at 2023-06-10: the TCB Info is not issued yet (issueDate 06-18)', async () => {
    const r = verifyTdxCollateral(await readCollateral(realPath('tdx', 'gtg-spr-e4-v4')), { now: at('2023-06-10T00:00:00Z') });
    expect(codes(r)).toEqual(['TDX_TCB_INFO_EXPIRED']);
    expect(r.failures[0]?.field).toBe('tcbInfo.issueDate');
  });

  it('gtg-spr-e4-v4 at 2053-07-01: signing certificates expired, documents expired, CRLs stale', async () => {
    const r = verifyTdxCollateral(await readCollateral(realPath('tdx', 'gtg-spr-e4-v4')), { now: at('2053-07-01T01:00:00Z') });
    expect(codes(r)).toEqual([
      'TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED', 'TDX_TCB_INFO_EXPIRED',
      'TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED',
      'TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED',
      'TDX_CRL_STALE', 'TDX_CRL_STALE',
    ]);
  });

  it('dcapqvl-b0c06f-v4 at its window edges (2025-06-19T10:32:27Z..2025-07-19T10:00:35Z)', async () => {
    const c = await readCollateral(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'));
    expect(verifyTdxCollateral(c, { now: at('2025-06-19T10:32:27Z') }).ok).toBe(true);
    expect(verifyTdxCollateral(c, { now: at('2025-07-19T10:00:35Z') }).ok).toBe(true);
    expect(codes(verifyTdxCollateral(c, { now: at('2025-06-19T10:32:26Z') }))).toEqual(['TDX_QE_IDENTITY_EXPIRED']);
    expect(codes(verifyTdxCollateral(c, { now: at('2025-07-19T10:00:36Z') }))).toEqual(['TDX_CRL_STALE']);
    expect(codes(verifyTdxCollateral(c, { now: at('2025-07-19T10:20:00Z') }))).toEqual(['TDX_TCB_INFO_EXPIRED', 'TDX_CRL_STALE']);
    expect(codes(verifyTdxCollateral(c, { now: at('2025-07-19T10:40:00Z') }))).toEqual(['TDX_TCB_INFO_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED', 'TDX_CRL_STALE']);
    expect(codes(verifyTdxCollateral(c, { now: at('2025-06-19T10:10:00Z') }))).toEqual(['TDX_TCB_INFO_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED']);
  });

  it('dcapqvl-emr-v5-outdated after 2026-04-03: the Root CA CRL is stale as well', async () => {
    const c = await readCollateral(realPath('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json'));
    expect(codes(verifyTdxCollateral(c, { now: at('2026-04-04T00:00:00Z') }))).toEqual(['TDX_TCB_INFO_EXPIRED', 'TDX_QE_IDENTITY_EXPIRED', 'TDX_CRL_STALE', 'TDX_CRL_STALE']);
  });
});

describe.skipIf(!HAVE_REAL)('collateral of the wrong kind or from the wrong signer', () => {
  it('the SGX set (dcapqvl-sgx-v3) is refused: its TCB Info is not a TDX TCB Info', () => {
    let err: unknown;
    try {
      parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-sgx-v3', 'collateral.json'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect(err).toMatchObject({ code: 'TDX_COLLATERAL_MALFORMED', field: 'collateral.tcb_info.id' });
  });

  it('a QE Identity offered as a TCB Info, and the reverse, do not parse', () => {
    expect(() => parseTdxTcbInfoBody(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json'))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED' }));
    expect(() => parseTdxQeIdentityBody(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED' }));
  });

  it('a TCB Info presented with the PCK CRL issuer chain: the PCK CA has the wrong name, is a CA, and its key did not sign', async () => {
    const c = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const r = verifyTdxCollateral({ ...c, ...(c.pckCrlIssuerChain !== undefined ? { tcbInfoIssuerChain: c.pckCrlIssuerChain } : {}) }, { now: at('2023-07-01T01:00:00Z') });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toEqual([
      'TDX_CHAIN_ISSUER_MISMATCH tcbInfoIssuerChain[0].tbsCertificate.subject',
      'TDX_CHAIN_ISSUER_MISMATCH tcbInfoIssuerChain[0].extensions.basicConstraints.cA',
      'TDX_TCB_INFO_SIGNATURE_INVALID tcbInfo.signature',
    ]);
  });

  it("one set's TCB Info with another set's signature fails the signature check", async () => {
    const a = await readCollateral(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'));
    const b = await readCollateral(realPath('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json'));
    const mixed = a.tcbInfo !== undefined && b.tcbInfo !== undefined ? { ...a.tcbInfo, signature: b.tcbInfo.signature } : undefined;
    const r = verifyTdxCollateral({ ...a, ...(mixed !== undefined ? { tcbInfo: mixed } : {}) }, { now: at('2025-07-01T00:00:00Z') });
    expect(codes(r)).toEqual(['TDX_TCB_INFO_SIGNATURE_INVALID']);
  });

  it('the Root CA CRL of another issuer, and a PCK CRL in place of the Root CA CRL, are TDX_CRL_INVALID', async () => {
    const c = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const r = verifyTdxCollateral({ ...c, ...(c.pckCrl !== undefined ? { rootCaCrl: c.pckCrl } : {}) }, { now: at('2023-07-01T01:00:00Z') });
    expect(codes(r)).toEqual(['TDX_CRL_INVALID', 'TDX_CRL_INVALID']);
  });
});
