/**
 * The SGX extension of PCK certificates (1.2.840.113741.1.13.1): the values in the real PCK
 * certificates of ../shared/fixtures/real/tdx, strict DER (each rule with a one-byte change),
 * fuzzing, and the PEM chain of a quote's certification data.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { X509Certificate } from '@peculiar/x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParseError, isVouchError } from '../../src/lib/errors.js';
import { SGX_OID, parsePckCertificate, parsePckChainPem, parseSgxExtensions } from '../../src/tdx/pck.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

/** Test helper: the PEM text of a quote's certification data, found by its armour. */
function pemOfQuote(dir: string): Uint8Array {
  const b = Buffer.from(readReal('tdx', dir, 'quote.dat'));
  const start = b.indexOf('-----BEGIN CERTIFICATE-----');
  const end = b.lastIndexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----'.length;
  return new Uint8Array(b.subarray(start, end));
}

function sgxValue(certDer: Uint8Array): Uint8Array {
  const ext = new X509Certificate(certDer).extensions.find((e) => e.type === SGX_OID.extension);
  if (ext === undefined) throw new TypeError('no SGX extension');
  return new Uint8Array(ext.value);
}

const QUOTES = ['gtg-spr-e4-v4', 'dcapqvl-b0c06f-v4', 'dcapqvl-emr-v5-outdated', 'gtg-emr-v5', 'trustee-gnr-v4', 'gtg-gcp-cos113-ccel'] as const;

/** The shape every parse failure must have. */
function expectMalformed(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    expect(isVouchError(e) && e.code).toBe('TDX_PCK_CERT_MALFORMED');
    return;
  }
  throw new Error('expected TDX_PCK_CERT_MALFORMED');
}

describe.skipIf(!HAVE_REAL)('real PCK certificates', () => {
  for (const dir of QUOTES) {
    it(`${dir}: FMSPC is the expected one, CPUSVN equals the component SVNs, platform fields present`, () => {
      const expected = JSON.parse(readFileSync(realPath('tdx', dir, 'expected.json'), 'utf8')) as { fmspc: string };
      const chain = parsePckChainPem(pemOfQuote(dir));
      expect(chain).toHaveLength(3);
      const pck = parsePckCertificate(chain[0] as Uint8Array);
      expect(Buffer.from(pck.sgx.fmspc).toString('hex')).toBe(expected.fmspc);
      expect(pck.ca).toBe('platform');
      expect(Array.from(pck.sgx.tcb.cpuSvn)).toEqual(pck.sgx.tcb.compSvn);
      expect(pck.sgx.pceId).toEqual(Uint8Array.of(0, 0));
      expect(pck.sgx.platformInstanceId).toHaveLength(16);
      expect(pck.sgx.configuration?.dynamicPlatform).toBe(true);
      expect(pck.commonName).toBe('Intel SGX PCK Certificate');
    });
  }

  it('gtg-spr-e4-v4: the exact values', () => {
    const pck = parsePckCertificate(parsePckChainPem(pemOfQuote('gtg-spr-e4-v4'))[0] as Uint8Array);
    expect(pck.sgx.tcb.compSvn).toEqual([3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(pck.sgx.tcb.pceSvn).toBe(11);
    expect(Buffer.from(pck.sgx.ppid).toString('hex')).toBe('089ddfdb9c0359c82a3bc7719239574e');
    expect(pck.sgx.sgxType).toBe('Scalable');
    expect(Buffer.from(pck.sgx.platformInstanceId as Uint8Array).toString('hex')).toBe('8c314d17d205dfafcbecbb00fc87eff7');
    expect(pck.sgx.configuration).toEqual({ dynamicPlatform: true, cachedKeys: false, smtEnabled: true });
  });

  it('a Processor CA PCK (the SGX v3 quote) has no platform fields, and SVN 255 decodes (INTEGER 00 ff)', () => {
    const pck = parsePckCertificate(parsePckChainPem(pemOfQuote('dcapqvl-sgx-v3'))[0] as Uint8Array);
    expect(pck.ca).toBe('processor');
    expect(pck.sgx.platformInstanceId).toBeUndefined();
    expect(pck.sgx.configuration).toBeUndefined();
    expect(pck.sgx.tcb.compSvn[4]).toBe(255);
    expect(pck.sgx.sgxType).toBe('Standard');
  });

  it('trustee-gnr-v4 is ScalableWithIntegrity', () => {
    expect(parsePckCertificate(parsePckChainPem(pemOfQuote('trustee-gnr-v4'))[0] as Uint8Array).sgx.sgxType).toBe('ScalableWithIntegrity');
  });

  it('a CA certificate is not a PCK certificate', () => {
    expectMalformed(() => parsePckCertificate(parsePckChainPem(pemOfQuote('gtg-emr-v5'))[1] as Uint8Array));
  });

  it('every one-byte change of a real extension value parses to other values or is TDX_PCK_CERT_MALFORMED', () => {
    const v = sgxValue(parsePckChainPem(pemOfQuote('gtg-spr-e4-v4'))[0] as Uint8Array);
    const orig = parseSgxExtensions(v);
    let refused = 0;
    for (let i = 0; i < v.length; i++) {
      const m = v.slice();
      m[i] = (m[i] as number) ^ 0x01;
      try {
        const r = parseSgxExtensions(m);
        expect(r).not.toEqual(orig);
      } catch (e) {
        expect(isVouchError(e) && e.code).toBe('TDX_PCK_CERT_MALFORMED');
        refused++;
      }
    }
    // Tags, lengths and OIDs are most of the bytes: most flips must be refused outright.
    expect(refused).toBeGreaterThan(v.length / 2);
  });

  it('truncated at any point, or with a byte appended: TDX_PCK_CERT_MALFORMED', () => {
    const v = sgxValue(parsePckChainPem(pemOfQuote('gtg-emr-v5'))[0] as Uint8Array);
    for (let n = 0; n < v.length; n++) expectMalformed(() => parseSgxExtensions(v.subarray(0, n)));
    expectMalformed(() => parseSgxExtensions(Uint8Array.from([...v, 0])));
  });
});

// Hand-written extension values, one rule each.
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const OID = (n: string): string => {
  // 1.2.840.113741.1.13.1 = 2a864886f84d010d01, followed by the sub-arcs (all < 128 here).
  const arcs = n.split('.').map(Number);
  return `06${(9 + arcs.length).toString(16).padStart(2, '0')}2a864886f84d010d01${arcs.map((a) => a.toString(16).padStart(2, '0')).join('')}`;
};
function tlv(tag: string, body: string): string {
  const n = body.length / 2;
  const len = n < 0x80 ? n.toString(16).padStart(2, '0') : n < 0x100 ? `81${n.toString(16).padStart(2, '0')}` : `82${n.toString(16).padStart(4, '0')}`;
  return `${tag}${len}${body}`;
}
const entry = (arcs: string, value: string): string => tlv('30', OID(arcs) + value);
function ext(opts: { ppid?: string; comp?: (i: number) => string; pce?: string; type?: string; platform?: string; tail?: string } = {}): Uint8Array {
  const comps = Array.from({ length: 16 }, (_, i) => entry(`2.${i + 1}`, opts.comp?.(i) ?? '020103')).join('');
  const tcb = entry('2', tlv('30', comps + entry('2.17', opts.pce ?? '02010b') + entry('2.18', tlv('04', '03'.repeat(16)))));
  const body = entry('1', opts.ppid ?? tlv('04', 'aa'.repeat(16))) + tcb + entry('3', '04020000') + entry('4', '040650806f000000') + entry('5', opts.type ?? '0a0101') + (opts.platform ?? '') + (opts.tail ?? '');
  return hex(tlv('30', body));
}
const PLATFORM = entry('6', tlv('04', '55'.repeat(16))) + entry('7', tlv('30', entry('7.1', '0101ff') + entry('7.2', '010100') + entry('7.3', '0101ff')));

describe('strict DER of the SGX extension', () => {
  it('the hand-written value parses (the helper is right)', () => {
    const r = parseSgxExtensions(ext({ platform: PLATFORM }));
    expect(r.tcb.compSvn).toEqual(Array(16).fill(3));
    expect(r.tcb.pceSvn).toBe(11);
    expect(r.configuration).toEqual({ dynamicPlatform: true, cachedKeys: false, smtEnabled: true });
    expect(parseSgxExtensions(ext()).platformInstanceId).toBeUndefined();
  });

  it('INTEGER: 0x00ff is 255, a superfluous leading zero, a negative value, or > 255 is refused', () => {
    expect(parseSgxExtensions(ext({ comp: (i) => (i === 0 ? '020200ff' : '020103') })).tcb.compSvn[0]).toBe(255);
    expectMalformed(() => parseSgxExtensions(ext({ comp: (i) => (i === 0 ? '02020003' : '020103') })));
    expectMalformed(() => parseSgxExtensions(ext({ comp: (i) => (i === 0 ? '0201ff' : '020103') })));
    expectMalformed(() => parseSgxExtensions(ext({ comp: (i) => (i === 0 ? '02020100' : '020103') })));
    expect(parseSgxExtensions(ext({ pce: '020300ffff' })).tcb.pceSvn).toBe(0xffff);
    expectMalformed(() => parseSgxExtensions(ext({ pce: '0203010000' })));
  });

  it('components out of order or missing are refused', () => {
    const swapped = Array.from({ length: 16 }, (_, i) => entry(`2.${i === 0 ? 2 : i === 1 ? 1 : i + 1}`, '020103')).join('');
    const body = entry('1', tlv('04', 'aa'.repeat(16))) + entry('2', tlv('30', swapped + entry('2.17', '02010b') + entry('2.18', tlv('04', '03'.repeat(16))))) + entry('3', '04020000') + entry('4', '040650806f000000') + entry('5', '0a0101');
    expectMalformed(() => parseSgxExtensions(hex(tlv('30', body))));
    const short = entry('1', tlv('04', 'aa'.repeat(16))) + entry('3', '04020000');
    expectMalformed(() => parseSgxExtensions(hex(tlv('30', short))));
  });

  it('SGX type outside 0..2, or an INTEGER where ENUMERATED belongs, is refused', () => {
    expectMalformed(() => parseSgxExtensions(ext({ type: '0a0103' })));
    expectMalformed(() => parseSgxExtensions(ext({ type: '020101' })));
  });

  it('BOOLEAN other than 00/ff, a repeated flag, and a platform id without configuration are refused', () => {
    expectMalformed(() => parseSgxExtensions(ext({ platform: entry('6', tlv('04', '55'.repeat(16))) + entry('7', tlv('30', entry('7.1', '010101'))) })));
    expectMalformed(() => parseSgxExtensions(ext({ platform: entry('6', tlv('04', '55'.repeat(16))) + entry('7', tlv('30', entry('7.1', '0101ff') + entry('7.1', '0101ff'))) })));
    expectMalformed(() => parseSgxExtensions(ext({ platform: entry('6', tlv('04', '55'.repeat(16))) })));
  });

  it('an unknown entry after the known ones, and a non-minimal length, are refused', () => {
    expectMalformed(() => parseSgxExtensions(ext({ platform: PLATFORM, tail: entry('8', '0500') })));
    // The PPID OCTET STRING with its length 16 written as 81 10 (valid BER, not DER); every
    // enclosing length is right, so only the minimal-length rule can refuse it.
    expectMalformed(() => parseSgxExtensions(ext({ ppid: `048110${'aa'.repeat(16)}` })));
    // A PPID of 15 or 17 bytes.
    expectMalformed(() => parseSgxExtensions(ext({ ppid: tlv('04', 'aa'.repeat(15)) })));
    expectMalformed(() => parseSgxExtensions(ext({ ppid: tlv('04', 'aa'.repeat(17)) })));
  });

  it('fuzz: random bytes and mutations only ever give TDX_PCK_CERT_MALFORMED', () => {
    const base = ext({ platform: PLATFORM });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 700 }), fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(base.length)).map(([i, x, cut]) => {
        const m = base.slice(0, Math.max(cut, i + 1));
        m[i] = (m[i] as number) ^ x;
        return m;
      })), (bytes) => {
        try {
          parseSgxExtensions(bytes);
        } catch (e) {
          expect(isVouchError(e) && e.code).toBe('TDX_PCK_CERT_MALFORMED');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe.skipIf(!HAVE_REAL)('the PEM chain of certification data type 5', () => {
  it('one trailing NUL (the QE writes a C string) is accepted; two, or text outside the blocks, are not', () => {
    const pem = pemOfQuote('gtg-emr-v5');
    expect(parsePckChainPem(Uint8Array.from([...pem, 0x0a, 0x00]))).toHaveLength(3);
    expectMalformed(() => parsePckChainPem(Uint8Array.from([...pem, 0x00, 0x00])));
    expectMalformed(() => parsePckChainPem(Uint8Array.from([...pem, ...Buffer.from('junk')])));
    expectMalformed(() => parsePckChainPem(Uint8Array.from([...Buffer.from('hello\n'), ...pem])));
    expectMalformed(() => parsePckChainPem(pem.subarray(0, pem.length - 10)));
  });
});
