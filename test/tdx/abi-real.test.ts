/**
 * The DCAP quote codec on the real quotes of ../shared/fixtures/real/tdx: every TDX quote decodes
 * to the values of its expected.json (PROVENANCE.md), the SGX v3 quote decodes too, every quote
 * re-encodes to its exact bytes, the signed range and the QE report are the bytes the two
 * signatures cover, and the trailing-bytes rule holds on the captures that carry trailing bytes.
 */
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { decodeDcapQuote, decodeTdxQuote, encodeDcapQuote, tdAttributes, type DecodedDcapQuote } from '../../src/tdx/abi.js';
import { parsePckCertificate, parsePckChainPem } from '../../src/tdx/pck.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';
import { codeOf } from './helpers.js';

interface Expected {
  version: number;
  att_key_type: number;
  tee_type: string;
  qe_svn: number;
  pce_svn: number;
  body_type: number;
  tee_tcb_svn: string;
  mrseam: string;
  mrsignerseam: string;
  seam_attributes: string;
  td_attributes: string;
  xfam: string;
  mrtd: string;
  mrconfigid: string;
  mrowner: string;
  mrownerconfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  report_data: string;
  tee_tcb_svn2?: string;
  mrservicetd?: string;
  cert_data_type: number;
  pck_issuer: string;
  pck_valid: [string, string];
  fmspc: string;
  n_certs: number;
  trailing_bytes: number;
}

/** The TDX quotes with an expected.json, and the trailing-bytes rule each needs. */
const TDX = ['dcapqvl-b0c06f-v4', 'dcapqvl-emr-v5-outdated', 'gtg-emr-v5', 'gtg-gcp-cos113-ccel', 'gtg-spr-e4-v4', 'trustee-gnr-v4'] as const;
/** go-tdx-guest appended a text to this capture to test its own extra-bytes handling. */
const APPENDED_TEXT = 'gtg-spr-e4-v4';

const quoteOf = (dir: string): Uint8Array => readReal('tdx', dir, 'quote.dat');
const expectedOf = (dir: string): Expected => JSON.parse(readFileSync(realPath('tdx', dir, 'expected.json'), 'utf8')) as Expected;
const decode = (dir: string): DecodedDcapQuote => decodeDcapQuote(quoteOf(dir), { trailing: dir === APPENDED_TEXT ? 'any' : 'zeros' });

/** "2025-02-06 23:25:51+00:00" → ISO. */
const iso = (s: string): string => new Date(s.replace(' ', 'T')).toISOString();
/** The set of RDN components of a node X509 name ("C=US\nST=CA…"), order-free. */
const rdns = (s: string): string[] => s.split(/\n|,/).map((x) => x.trim()).sort();

describe.skipIf(!HAVE_REAL)('real TDX quotes decode to their expected.json', () => {
  for (const dir of TDX) {
    it(dir, () => {
      const raw = quoteOf(dir);
      const q = decode(dir);
      const x = expectedOf(dir);
      expect(q.header.version).toBe(x.version);
      expect(q.header.attestationKeyType).toBe(x.att_key_type);
      expect(`0x${q.header.teeType.toString(16)}`).toBe(x.tee_type);
      // v4 and v5 reserve the bytes where v3 had QE_SVN and PCE_SVN; the gatherer read them as 0.
      const dv = new DataView(raw.buffer, raw.byteOffset);
      expect([dv.getUint16(8, true), dv.getUint16(10, true)]).toEqual([x.qe_svn, x.pce_svn]);
      expect(q.body.kind === 'td15' ? 3 : q.body.kind === 'td10' ? 2 : 1).toBe(x.body_type);
      if (q.body.kind === 'sgx') throw new Error('a TDX quote decoded as SGX');
      const b = q.body.report;
      expect(toHex(b.teeTcbSvn)).toBe(x.tee_tcb_svn);
      expect(toHex(b.mrSeam)).toBe(x.mrseam);
      expect(toHex(b.mrSignerSeam)).toBe(x.mrsignerseam);
      expect(toHex(b.seamAttributes)).toBe(x.seam_attributes);
      expect(toHex(b.tdAttributes)).toBe(x.td_attributes);
      expect(toHex(b.xfam)).toBe(x.xfam);
      expect(toHex(b.mrTd)).toBe(x.mrtd);
      expect(toHex(b.mrConfigId)).toBe(x.mrconfigid);
      expect(toHex(b.mrOwner)).toBe(x.mrowner);
      expect(toHex(b.mrOwnerConfig)).toBe(x.mrownerconfig);
      expect(b.rtmrs.map(toHex)).toEqual([x.rtmr0, x.rtmr1, x.rtmr2, x.rtmr3]);
      expect(toHex(b.reportData)).toBe(x.report_data);
      if (q.body.kind === 'td15') {
        expect(toHex(q.body.report.teeTcbSvn2)).toBe(x.tee_tcb_svn2);
        expect(toHex(q.body.report.mrServiceTd)).toBe(x.mrservicetd);
      } else {
        expect(x.tee_tcb_svn2).toBeUndefined();
      }
      // Certification data type 6 sits right after the signature and the attestation key.
      const sigStart = q.signedBytes.length + 4;
      expect(dv.getUint16(sigStart + 128, true)).toBe(x.cert_data_type);
      expect(q.trailingBytes).toBe(x.trailing_bytes);
      expect(q.quoteBytes.length + q.trailingBytes).toBe(raw.length);

      // The PCK chain carried in certification data type 5.
      const certs = parsePckChainPem(q.signatureData.pckCertChain);
      expect(certs.length).toBe(x.n_certs);
      const leaf = new X509Certificate(certs[0] as Uint8Array);
      expect(rdns(leaf.issuer)).toEqual(rdns(x.pck_issuer));
      expect([new Date(leaf.validFrom).toISOString(), new Date(leaf.validTo).toISOString()]).toEqual(x.pck_valid.map(iso));
      expect(toHex(parsePckCertificate(certs[0] as Uint8Array).sgx.fmspc)).toBe(x.fmspc);
    });
  }

  it('decodeTdxQuote gives the same decoding as decodeDcapQuote for TDX quotes', () => {
    for (const dir of TDX) {
      const opts = { trailing: dir === APPENDED_TEXT ? ('any' as const) : ('zeros' as const) };
      expect(decodeTdxQuote(quoteOf(dir), opts)).toEqual(decodeDcapQuote(quoteOf(dir), opts));
    }
  });

  it('TD attributes: SEPT_VE_DISABLE on the production TDs, PKS on the SPR E4 one, never DEBUG', () => {
    for (const dir of TDX) {
      const q = decode(dir);
      if (q.body.kind === 'sgx') throw new Error('unexpected SGX body');
      const a = tdAttributes(q.body.report.tdAttributes);
      expect(a.flags.DEBUG).toBe(false);
      expect(a.unknownBits).toEqual([]);
      if (dir === 'gtg-spr-e4-v4') expect(a.flags.PKS).toBe(true);
      else expect(a.flags.SEPT_VE_DISABLE).toBe(true);
    }
  });
});

describe.skipIf(!HAVE_REAL)('the SGX v3 quote (dcapqvl-sgx-v3) shares the structures', () => {
  it('decodes: header SVNs, SGX report body, v3 signature data, PCK chain', () => {
    const raw = quoteOf('dcapqvl-sgx-v3');
    const q = decodeDcapQuote(raw);
    expect(q.header).toMatchObject({ version: 3, attestationKeyType: 2, teeType: 0, qeSvn: 0x0a, pceSvn: 0x0f });
    expect(toHex(q.header.qeVendorId)).toBe('939a7233f79c4ca9940a0db3957f0607');
    if (q.body.kind !== 'sgx') throw new Error('not an SGX body');
    expect(new TextDecoder().decode(q.body.report.reportData.subarray(0, 13))).toBe('Hello, world!');
    expect(q.body.report.reportData.subarray(13).every((b) => b === 0)).toBe(true);
    expect(toHex(q.body.report.mrEnclave)).toBe('33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb');
    expect(toHex(q.body.report.mrSigner)).toBe('815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6');
    expect(q.signatureData.qeReport.isvProdId).toBe(1);
    expect(q.signatureData.qeAuthData.length).toBe(32);
    expect(parsePckChainPem(q.signatureData.pckCertChain).length).toBe(3);
    expect(q.signedBytes.length).toBe(48 + 384);
    expect(q.trailingBytes).toBe(0);
    expect(Buffer.from(encodeDcapQuote(q)).equals(Buffer.from(raw))).toBe(true);
  });

  it('decodeTdxQuote refuses it: an SGX quote is not TDX evidence', () => {
    expect(codeOf(() => decodeTdxQuote(quoteOf('dcapqvl-sgx-v3')))).toBe('TDX_QUOTE_UNSUPPORTED');
  });
});

describe.skipIf(!HAVE_REAL)('exact bytes', () => {
  const ALL = [...TDX, 'dcapqvl-sgx-v3'];

  it('encode(decode(quote)) is the quote, trailing bytes included', () => {
    for (const dir of ALL) {
      const raw = quoteOf(dir);
      expect(Buffer.from(encodeDcapQuote(decode(dir))).equals(Buffer.from(raw)), dir).toBe(true);
    }
  });

  it('decode(encode(decode(quote))) is the same decoding', () => {
    for (const dir of ALL) {
      const q = decode(dir);
      expect(decodeDcapQuote(encodeDcapQuote(q), { trailing: 'any' })).toEqual(q);
    }
  });

  it('signedBytes is what the attestation key signed, and the QE report what its REPORTDATA binds', () => {
    for (const dir of ALL) {
      const q = decode(dir);
      const k = q.signatureData.attestationKey;
      const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(k.subarray(0, 32)).toString('base64url'), y: Buffer.from(k.subarray(32)).toString('base64url') }, format: 'jwk' });
      expect(verify('sha256', q.signedBytes, { key, dsaEncoding: 'ieee-p1363' }, q.signatureData.signature), dir).toBe(true);
      // QE REPORTDATA = SHA-256(attestation key || QE auth data) || 32 zero bytes.
      const bind = createHash('sha256').update(k).update(q.signatureData.qeAuthData).digest();
      expect(toHex(q.signatureData.qeReport.reportData), dir).toBe(toHex(bind) + '00'.repeat(32));
      expect(q.qeReportBytes.length).toBe(384);
      expect(toHex(q.qeReportBytes.subarray(320))).toBe(toHex(q.signatureData.qeReport.reportData));
      // The kept views point into the input: never a re-encoding.
      expect(q.signedBytes.buffer).toBe(q.raw.buffer);
      expect(q.qeReportBytes.buffer).toBe(q.raw.buffer);
    }
  });
});

describe.skipIf(!HAVE_REAL)('trailing bytes after the signature data (rule: zero padding only, by default)', () => {
  it('zero padding is accepted and counted: 70 (dcap-qvl, trustee), 3065 (GCP 8000-byte buffer)', () => {
    expect(decodeDcapQuote(quoteOf('dcapqvl-b0c06f-v4')).trailingBytes).toBe(70);
    expect(decodeDcapQuote(quoteOf('trustee-gnr-v4')).trailingBytes).toBe(70);
    expect(decodeDcapQuote(quoteOf('gtg-gcp-cos113-ccel')).trailingBytes).toBe(3065);
    expect(decodeDcapQuote(quoteOf('gtg-emr-v5')).trailingBytes).toBe(0);
  });

  it('the appended text of gtg-spr-e4-v4 is refused by default (TDX_QUOTE_TRAILING_DATA) and kept untouched with trailing: any', () => {
    const raw = quoteOf(APPENDED_TEXT);
    expect(codeOf(() => decodeDcapQuote(raw))).toBe('TDX_QUOTE_TRAILING_DATA');
    const q = decodeDcapQuote(raw, { trailing: 'any' });
    expect(q.trailingBytes).toBe(39);
    expect(new TextDecoder().decode(q.trailing)).toBe('\nextra bytes(only for testing purpose)\n');
  });

  it("trailing: none is Intel QVL's rule: any trailing byte is PARSE_TRAILING_BYTES", () => {
    expect(codeOf(() => decodeDcapQuote(quoteOf('gtg-gcp-cos113-ccel'), { trailing: 'none' }))).toBe('PARSE_TRAILING_BYTES');
    expect(decodeDcapQuote(quoteOf('gtg-emr-v5'), { trailing: 'none' }).trailingBytes).toBe(0);
  });

  it('one non-zero byte anywhere in zero padding is refused, with its offset', () => {
    const raw = new Uint8Array(quoteOf('gtg-gcp-cos113-ccel'));
    for (const at of [4935, 6000, 7999]) {
      const m = new Uint8Array(raw);
      m[at] = 1;
      try {
        decodeDcapQuote(m);
        throw new Error('accepted');
      } catch (e) {
        expect(e).toMatchObject({ code: 'TDX_QUOTE_TRAILING_DATA', offset: at });
      }
    }
  });
});
