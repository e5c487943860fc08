/**
 * The committed TEST-ONLY Intel SGX/TDX hierarchy (attestation-fixtures/tdx): the PCK chain, the
 * collateral and synthetic quotes verify with the building blocks of src/tdx when — and only
 * when — the test-only root is pinned explicitly; nothing under src/ refers to it.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FIXTURE,
  FIXTURE_TD_ATTRIBUTES_DEBUG,
  TEST_TDX_ROOT_FINGERPRINT,
  issueTestPck,
  issueTestTcbInfo,
  pckChainBytes,
  rawP256PublicKey,
  certificatePem,
  signSyntheticTdxQuote,
  testTdxCollateral,
  testTdxHierarchy,
} from '../../attestation-fixtures/tdx/index.js';
import { decodeTdxQuote, encodeDcapQuote, tdAttributes } from '../../src/tdx/abi.js';
import { pcsBody, readCollateral, verifyTdxCollateral } from '../../src/tdx/collateral.js';
import { INTEL_SGX_ROOT_CA_FINGERPRINT, parsePckCertificate, parsePckChainPem, verifyPckChain } from '../../src/tdx/pck.js';
import { appraiseTdxTcb, platformTcb } from '../../src/tdx/tcb.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const PINS = [TEST_TDX_ROOT_FINGERPRINT];
const h = testTdxHierarchy();
const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);

describe('TEST-ONLY TDX hierarchy', () => {
  it('is not the Intel root, and says TEST-ONLY in every certificate', () => {
    expect(TEST_TDX_ROOT_FINGERPRINT).not.toBe(INTEL_SGX_ROOT_CA_FINGERPRINT);
    expect(createHash('sha256').update(h.root).digest('hex')).toBe(TEST_TDX_ROOT_FINGERPRINT);
    for (const der of [h.root, h.pckPlatformCa, h.pck, h.tcbSigning]) expect(Buffer.from(der).includes('vouch TEST-ONLY not Intel')).toBe(true);
  });

  it('the PCK chain verifies with the test root pinned and the committed CRLs; by default the root is not trusted', () => {
    const chain = parsePckChainPem(new TextEncoder().encode(h.pckChainPem));
    const c = testTdxCollateral();
    const ok = verifyPckChain(chain, { now: NOW, pinnedRootFingerprints: PINS, pckCrl: c.pckCrl as Uint8Array, rootCaCrl: c.rootCaCrl as Uint8Array });
    expect(ok.failures).toEqual([]);
    expect(ok.ca).toBe('platform');
    expect(codes(verifyPckChain(chain, { now: NOW, pckCrl: c.pckCrl as Uint8Array, rootCaCrl: c.rootCaCrl as Uint8Array }))).toEqual(['TDX_ROOT_NOT_PINNED']);
    const revoked = verifyPckChain(chain, { now: NOW, pinnedRootFingerprints: PINS, pckCrl: h.pckCrlRevokingPck, rootCaCrl: c.rootCaCrl as Uint8Array });
    expect(codes(revoked)).toEqual(['TDX_PCK_REVOKED']);
  });

  it('the PCK carries the fixture SGX extension', () => {
    const pck = parsePckCertificate(h.pck);
    expect(Buffer.from(pck.sgx.fmspc).toString('hex')).toBe('00c0ffee0000');
    expect(Buffer.from(pck.sgx.pceId).toString('hex')).toBe('0000');
    expect(pck.sgx.tcb.compSvn).toEqual([...FIXTURE.sgxTcb.compSvn]);
    expect(pck.sgx.tcb.pceSvn).toBe(FIXTURE.sgxTcb.pceSvn);
    expect(pck.sgx.tcb.cpuSvn).toEqual(FIXTURE.sgxTcb.cpuSvn);
    expect(pck.sgx.sgxType).toBe('Scalable');
    expect(pck.sgx.platformInstanceId).toEqual(FIXTURE.platformInstanceId);
    expect(pck.sgx.configuration).toEqual({ dynamicPlatform: true, cachedKeys: true, smtEnabled: true });
  });

  it('the committed collateral verifies with the test root pinned, in the exact served form', async () => {
    const c = await readCollateral(h.collateralDir);
    expect(verifyTdxCollateral(c, { now: NOW, pinnedRootFingerprints: PINS, pckCa: 'platform' }).failures).toEqual([]);
    expect(codes(verifyTdxCollateral(c, { now: NOW })).every((x) => x === 'TDX_ROOT_NOT_PINNED')).toBe(true);
    // The served body is the signed member text, byte for byte.
    expect(Buffer.from(pcsBody(c.tcbInfo!)).equals(readFileSync(join(h.collateralDir, 'tcb_info.json')))).toBe(true);
    expect(Buffer.from(pcsBody(c.qeIdentity!)).equals(readFileSync(join(h.collateralDir, 'qe_identity.json')))).toBe(true);
  });

  it('an expired TCB Info is generated on demand and refused with its own code', () => {
    const expired = testTdxCollateral({ tcbInfo: issueTestTcbInfo({ issueDate: new Date('2024-01-01T00:00:00Z'), nextUpdate: new Date('2024-02-01T00:00:00Z') }) });
    expect(codes(verifyTdxCollateral(expired, { now: NOW, pinnedRootFingerprints: PINS }))).toEqual(['TDX_TCB_INFO_EXPIRED']);
  });
});

describe('signSyntheticTdxQuote', () => {
  const reportData = new Uint8Array(64).fill(0x5a);
  const bytes = signSyntheticTdxQuote({ td: { reportData } });
  const q = decodeTdxQuote(bytes);

  it('is a v4 TDX quote the encoder reproduces byte for byte, with the fields asked for', () => {
    expect(q.header.version).toBe(4);
    expect(q.trailingBytes).toBe(0);
    expect(Buffer.from(encodeDcapQuote(q)).equals(Buffer.from(bytes))).toBe(true);
    expect(q.body.report.reportData).toEqual(reportData);
    expect(tdAttributes(q.body.report.tdAttributes).flags.DEBUG).toBe(false);
    expect(tdAttributes(decodeTdxQuote(signSyntheticTdxQuote({ td: { tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG } })).body.report.tdAttributes).flags.DEBUG).toBe(true);
  });

  it('is signed like a real quote: attestation key over header and body, PCK over the QE report, QE REPORTDATA binding the key', () => {
    const s = q.signatureData;
    expect(s.attestationKey).toEqual(rawP256PublicKey(h.attestationPrivateKey));
    expect(verify('sha256', q.signedBytes, { key: createPublicKey(h.attestationPrivateKey), dsaEncoding: 'ieee-p1363' }, s.signature)).toBe(true);
    expect(verify('sha256', q.qeReportBytes, { key: createPublicKey(h.pckPrivateKey), dsaEncoding: 'ieee-p1363' }, s.qeReportSignature)).toBe(true);
    const want = Buffer.concat([createHash('sha256').update(s.attestationKey).update(s.qeAuthData).digest(), Buffer.alloc(32)]);
    expect(Buffer.from(s.qeReport.reportData).equals(want)).toBe(true);
    expect(parsePckChainPem(s.pckCertChain).map((d) => createHash('sha256').update(d).digest('hex'))).toEqual([h.pck, h.pckPlatformCa, h.root].map((d) => createHash('sha256').update(d).digest('hex')));
  });

  it('the platform is UpToDate at the committed TCB Info and QE Identity; an older TDX TCB is OutOfDate with its advisory', () => {
    const c = testTdxCollateral();
    const sgx = parsePckCertificate(h.pck).sgx;
    const status = (quote: Uint8Array) => {
      const d = decodeTdxQuote(quote);
      return appraiseTdxTcb(c.tcbInfo!, c.qeIdentity!, platformTcb(sgx, d.body.report), d.signatureData.qeReport);
    };
    const up = status(bytes);
    expect(up.failures).toEqual([]);
    expect(up.status).toBe('UpToDate');
    const teeTcbSvn = Uint8Array.from(FIXTURE.module.teeTcbSvn);
    teeTcbSvn[2] = 1;
    const old = status(signSyntheticTdxQuote({ td: { teeTcbSvn } }));
    expect(old.status).toBe('OutOfDate');
    expect(old.advisoryIds).toEqual([FIXTURE.advisory]);
  });

  it('can sign with another PCK leaf and chain', async () => {
    const other = await issueTestPck({ serial: '3003' });
    const pem = certificatePem(other.der) + certificatePem(h.pckPlatformCa) + certificatePem(h.root);
    const d = decodeTdxQuote(signSyntheticTdxQuote({ pckKey: other.privateKey, pckCertChain: pckChainBytes(pem) }));
    const leaf = parsePckChainPem(d.signatureData.pckCertChain)[0] as Uint8Array;
    expect(verify('sha256', d.qeReportBytes, { key: parsePckCertificate(leaf).cert.publicKey, dsaEncoding: 'ieee-p1363' }, d.signatureData.qeReportSignature)).toBe(true);
  });
});

describe('TEST-ONLY material stays out of src/', () => {
  it('no file under src/ names attestation-fixtures, a TEST-ONLY name, or the test-only root fingerprint', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/attestation-fixtures|vouch TEST-ONLY|00c0ffee0000/i.test(readFileSync(p, 'utf8')) || readFileSync(p, 'utf8').toLowerCase().includes(TEST_TDX_ROOT_FINGERPRINT)) offenders.push(p);
      }
    };
    walk(join(import.meta.dirname, '..', '..', 'src'));
    expect(offenders).toEqual([]);
  });
});
