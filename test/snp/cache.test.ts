import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { issueTestVcek, testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { parseSnpCertificate } from '../../src/snp/certs.js';
import { decodeSnpReport } from '../../src/snp/abi.js';
import { SnpVerifyCache, verifySnpReport, type SnpVerifyOptions } from '../../src/snp/verify.js';
import { signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';

const t = testSnpChain();
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
const now = new Date('2026-01-01T00:00:00Z');
const report = decodeSnpReport(signSyntheticSnpReport(t, syntheticSnpFields(t)));
const base = (): SnpVerifyOptions => ({ vcek: t.vcek, ask: t.ask, ark: t.ark, now, crl: t.crl, pinnedArks: pins });
const codes = (o: SnpVerifyOptions): string[] => verifySnpReport(report, o).failures.map((f) => f.code);

describe('SnpVerifyCache', () => {
  it('gives the same results as no cache, on the first and the later calls', () => {
    const cache = new SnpVerifyCache();
    expect(codes(base())).toEqual([]);
    expect(codes({ ...base(), cache })).toEqual([]);
    expect(codes({ ...base(), cache })).toEqual([]);
    // Revocation is still looked up on every call, with the cached (parsed, checked) CRL.
    expect(codes({ ...base(), crl: t.crlRevokingAsk })).toEqual(['SNP_REVOKED']);
    expect(codes({ ...base(), crl: t.crlRevokingAsk, cache })).toEqual(['SNP_REVOKED']);
    expect(codes({ ...base(), crl: t.crlRevokingAsk, cache })).toEqual(['SNP_REVOKED']);
  });

  it('time-dependent checks still run: the same cached chain fails outside its validity', () => {
    const cache = new SnpVerifyCache();
    expect(codes({ ...base(), cache })).toEqual([]);
    expect(codes({ ...base(), cache, now: new Date('2060-01-01T00:00:00Z') })).toContain('SNP_CHAIN_EXPIRED');
  });

  it('entries are keyed by the exact certificates: a tampered VCEK is not served a cached "verifies"', () => {
    const cache = new SnpVerifyCache();
    expect(codes({ ...base(), cache })).toEqual([]);
    const der = t.vcek.slice();
    der[der.length - 10] = (der[der.length - 10] as number) ^ 1; // inside the VCEK's signature
    expect(codes({ ...base(), vcek: der, cache })).toContain('SNP_CHAIN_SIGNATURE_INVALID');
    expect(codes({ ...base(), vcek: der })).toContain('SNP_CHAIN_SIGNATURE_INVALID');
  });

  it('is bounded, and evicted entries are computed again', () => {
    const cache = new SnpVerifyCache(1);
    for (let i = 0; i < 4; i++) {
      expect(codes({ ...base(), crl: t.crlRevokingAsk, cache })).toEqual(['SNP_REVOKED']);
      expect(codes({ ...base(), crl: t.crl, cache })).toEqual([]);
    }
  });
});

describe('AMD extensions are read strictly', () => {
  it('a certificate repeating an AMD extension (two hwIDs) does not parse (the certificate parser refuses repeats)', async () => {
    const { AMD_OID } = await import('../../src/snp/certs.js');
    const x509 = await import('@peculiar/x509');
    const twice = await issueTestVcek({ extraExtensions: [new x509.Extension(AMD_OID.hwId, false, new Uint8Array(64).fill(9))] });
    expect(() => parseSnpCertificate(twice.der)).toThrow(expect.objectContaining({ code: 'SNP_CERT_MALFORMED' }) as Error);
    const once = await issueTestVcek();
    expect(parseSnpCertificate(once.der).amd.hwId).toEqual(t.chipId);
  });
});
