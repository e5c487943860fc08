/**
 * End-to-end verification of reports signed here with the committed TEST-ONLY AMD hierarchy
 * (attestation-fixtures/snp), trusted only through an injected ARK pin: what real reports cannot
 * show (a re-signed report with another TCB, a CRL that revokes the ASK, a stale CRL).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { decodeSnpReport, type SnpReport } from '../../src/snp/abi.js';
import { parseSnpCertificate } from '../../src/snp/certs.js';
import { verifySnpReport, type SnpVerifyOptions } from '../../src/snp/verify.js';
import { milanTcb, signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';

const t = testSnpChain();
const ark = parseSnpCertificate(t.ark);
const ask = parseSnpCertificate(t.ask);
const vcek = parseSnpCertificate(t.vcek);
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
const NOW = new Date('2026-01-01T00:00:00Z');

/** The synthetic report fields (shared with the emulated configfs-tsm), with overrides. */
function fields(over: Partial<SnpReport> = {}): SnpReport {
  return syntheticSnpFields(t, over);
}

/** The report of `fields(over)`, signed by the TEST-ONLY VCEK. */
function signed(over: Partial<SnpReport> = {}): Uint8Array {
  return signSyntheticSnpReport(t, fields(over));
}

function opts(extra: Partial<SnpVerifyOptions> = {}): SnpVerifyOptions {
  return { vcek, ask, ark, now: NOW, crl: t.crl, pinnedArks: pins, ...extra };
}

const codes = (r: { failures: readonly { code: string }[] }): string[] => [...new Set(r.failures.map((f) => f.code))].sort();

describe('synthetic reports under the TEST-ONLY chain', () => {
  it('a well-formed signed report verifies, CRL included, with no allowance used', () => {
    const res = verifySnpReport(decodeSnpReport(signed()), opts());
    expect(res.failures).toEqual([]);
    expect(res.ok).toBe(true);
    expect(res.allowancesUsed).toEqual([]);
    expect(res.checks.find((c) => c.check === 'crl')?.outcome).toBe('pass');
  });

  it('the TEST-ONLY ARK is never trusted by default: SNP_ARK_NOT_PINNED', () => {
    const { pinnedArks: _unused, ...rest } = opts();
    expect(codes(verifySnpReport(decodeSnpReport(signed()), rest))).toEqual(['SNP_ARK_NOT_PINNED']);
  });

  it('a re-signed report whose REPORTED_TCB differs from the VCEK: SNP_VCEK_TCB_MISMATCH only', () => {
    const res = verifySnpReport(decodeSnpReport(signed({ reportedTcb: milanTcb(t.tcb.bl, t.tcb.tee, t.tcb.snp + 1, t.tcb.ucode) })), opts());
    expect(codes(res)).toEqual(['SNP_VCEK_TCB_MISMATCH']);
    expect(res.failures[0]?.field).toBe('ATTESTATION_REPORT.REPORTED_TCB.SNP');
  });

  it('a re-signed report with another CHIP_ID: SNP_VCEK_HWID_MISMATCH only', () => {
    expect(codes(verifySnpReport(decodeSnpReport(signed({ chipId: new Uint8Array(64).fill(9) })), opts()))).toEqual(['SNP_VCEK_HWID_MISMATCH']);
  });

  it('a re-signed report whose CPUID names Genoa: SNP_VCEK_PRODUCT_MISMATCH', () => {
    expect(codes(verifySnpReport(decodeSnpReport(signed({ cpuid: { family: 0x19, model: 0x11, stepping: 1 } })), opts()))).toEqual(['SNP_VCEK_PRODUCT_MISMATCH']);
  });

  it('SIGNATURE_ALGO other than 1: SNP_SIGNATURE_ALGO_UNSUPPORTED', () => {
    expect(codes(verifySnpReport(decodeSnpReport(signed({ signatureAlgo: 2 })), opts()))).toEqual(['SNP_SIGNATURE_ALGO_UNSUPPORTED']);
  });

  it('a CRL revoking the ASK: SNP_REVOKED', () => {
    const res = verifySnpReport(decodeSnpReport(signed()), opts({ crl: t.crlRevokingAsk }));
    expect(codes(res)).toEqual(['SNP_REVOKED']);
  });

  it('a CRL not yet valid at the verification time, or not by the ARK: SNP_CRL_INVALID', () => {
    expect(codes(verifySnpReport(decodeSnpReport(signed()), opts({ now: new Date('2024-06-01T00:00:00Z') })))).toEqual(['SNP_CRL_INVALID']);
    const bad = Uint8Array.from(t.crl);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    expect(codes(verifySnpReport(decodeSnpReport(signed()), opts({ crl: bad })))).toEqual(['SNP_CRL_INVALID']);
    expect(codes(verifySnpReport(decodeSnpReport(signed()), opts({ crl: new Uint8Array([0x30, 0x01]) })))).toEqual(['SNP_CERT_MALFORMED']);
  });

  it('version 5 reports (mitigation vectors) round-trip and verify', () => {
    const bytes = signed({ version: 5, launchMitVector: 3n, currentMitVector: 5n });
    const rep = decodeSnpReport(bytes);
    expect(rep.currentMitVector).toBe(5n);
    expect(verifySnpReport(rep, opts()).ok).toBe(true);
  });
});
