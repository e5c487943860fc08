/**
 * What the DCAP quote decoder refuses, field by field: one-byte flips in the header, the v5 body
 * descriptor, the certification data types and every reserved byte of the SGX report bodies;
 * size fields off by one; truncations; oversized input; and encoder misuse. Runs on synthetic
 * quotes of every shape, and on a real quote of each version when the corpus is present.
 */
import { describe, expect, it } from 'vitest';
import { MisuseError, ParseError } from '../../src/lib/errors.js';
import { DCAP_QUOTE_MAX_BYTES, SGX_REPORT_BODY_LAYOUT, decodeDcapQuote, decodeTdxQuote, encodeDcapQuote, tdAttributes, type DcapQuote } from '../../src/tdx/abi.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';
import { codeOf, syntheticQuote } from './helpers.js';

type Shape = 'v3' | 'v4' | 'v5-td10' | 'v5-td15';
const SHAPES: readonly Shape[] = ['v3', 'v4', 'v5-td10', 'v5-td15'];

/** Synthetic quotes, and real ones of each version when present. */
const QUOTES: readonly { name: string; bytes: Uint8Array }[] = [
  ...SHAPES.map((s) => ({ name: `synthetic ${s}`, bytes: encodeDcapQuote(syntheticQuote(s)) })),
  ...(HAVE_REAL
    ? [
        { name: 'real v4 (dcapqvl-b0c06f-v4)', bytes: readReal('tdx', 'dcapqvl-b0c06f-v4', 'quote.dat') },
        { name: 'real v5 (gtg-emr-v5)', bytes: readReal('tdx', 'gtg-emr-v5', 'quote.dat') },
        { name: 'real v3 (dcapqvl-sgx-v3)', bytes: readReal('tdx', 'dcapqvl-sgx-v3', 'quote.dat') },
      ]
    : []),
];

function flipped(b: Uint8Array, at: number, value: number): Uint8Array {
  const m = new Uint8Array(b);
  m[at] = value;
  return m;
}

function errorOf(b: Uint8Array): ParseError {
  try {
    decodeDcapQuote(b, { trailing: 'any' });
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('the quote was accepted');
}

/** Offsets of the parts of a quote, from its own length fields. */
function offsets(b: Uint8Array): { version: number; bodyEnd: number; sig: number; qeReport: number; certType?: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const version = v.getUint16(0, true);
  const bodyEnd = version === 3 ? 48 + 384 : version === 4 ? 48 + 584 : 54 + v.getUint32(50, true);
  const sig = bodyEnd + 4;
  if (version === 3) return { version, bodyEnd, sig, qeReport: sig + 128 };
  return { version, bodyEnd, sig, certType: sig + 128, qeReport: sig + 134 };
}

describe('synthetic quotes of every shape', () => {
  for (const s of SHAPES) {
    it(`${s}: decode(encode(q)) is q, encode(decode(b)) is b`, () => {
      const q = syntheticQuote(s);
      const b = encodeDcapQuote(q);
      const d = decodeDcapQuote(b);
      expect({ header: d.header, body: d.body, signatureData: d.signatureData }).toEqual(q);
      expect(Buffer.from(encodeDcapQuote(d)).equals(Buffer.from(b))).toBe(true);
      expect(d.trailingBytes).toBe(0);
      expect(d.trailing).toBeUndefined();
    });
  }

  it('zero trailing bytes round-trip and are counted', () => {
    const b = encodeDcapQuote(syntheticQuote('v4', new Uint8Array(100)));
    const d = decodeDcapQuote(b);
    expect(d.trailingBytes).toBe(100);
    expect(Buffer.from(encodeDcapQuote(d)).equals(Buffer.from(b))).toBe(true);
  });
});

describe.each(QUOTES)('one-byte flips in the header and framing of $name', ({ bytes }) => {
  const o = offsets(bytes);

  it('VERSION: any other version is TDX_QUOTE_UNSUPPORTED', () => {
    for (const v of [0, 1, 2, 6, 0xff]) if (v !== o.version) expect(errorOf(flipped(bytes, 0, v))).toMatchObject({ code: 'TDX_QUOTE_UNSUPPORTED', field: 'DCAP_QUOTE.HEADER.VERSION', offset: 0 });
    expect(errorOf(flipped(bytes, 1, 1)).code).toBe('TDX_QUOTE_UNSUPPORTED');
  });

  it('ATTESTATION_KEY_TYPE: only ECDSA-256-with-P-256 (2)', () => {
    for (const v of [0, 1, 3]) expect(errorOf(flipped(bytes, 2, v))).toMatchObject({ code: 'PARSE_UNSUPPORTED_ALGORITHM', field: 'DCAP_QUOTE.HEADER.ATTESTATION_KEY_TYPE' });
    expect(errorOf(flipped(bytes, 3, 1)).code).toBe('PARSE_UNSUPPORTED_ALGORITHM');
  });

  it('TEE_TYPE: the other TEE is unsupported for this version, anything else is a bad value', () => {
    expect(errorOf(flipped(bytes, 4, o.version === 3 ? 0x81 : 0x00))).toMatchObject({ code: 'TDX_QUOTE_UNSUPPORTED', field: 'DCAP_QUOTE.HEADER.TEE_TYPE' });
    expect(errorOf(flipped(bytes, 4, 0x80))).toMatchObject({ code: 'PARSE_BAD_VALUE', field: 'DCAP_QUOTE.HEADER.TEE_TYPE' });
    for (const at of [5, 6, 7]) expect(errorOf(flipped(bytes, at, 1)).code).toBe('PARSE_BAD_VALUE');
  });

  it('bytes 8..11: RESERVED in v4 and v5 (each flip refused at its offset), QE_SVN and PCE_SVN in v3', () => {
    for (const at of [8, 9, 10, 11]) {
      if (o.version === 3) {
        const d = decodeDcapQuote(flipped(bytes, at, (bytes[at] as number) ^ 0x40));
        expect(at < 10 ? d.header.qeSvn : d.header.pceSvn).not.toBe(at < 10 ? decodeDcapQuote(bytes).header.qeSvn : decodeDcapQuote(bytes).header.pceSvn);
      } else {
        expect(errorOf(flipped(bytes, at, 0x01))).toMatchObject({ code: 'PARSE_RESERVED_NONZERO', field: 'DCAP_QUOTE.HEADER.RESERVED', offset: at });
      }
    }
  });

  it('QE_VENDOR_ID and USER_DATA are data: a flip decodes to the flipped value (the verifier judges them)', () => {
    for (const at of [12, 27, 28, 47]) {
      const m = flipped(bytes, at, (bytes[at] as number) ^ 0xff);
      expect(Buffer.from(encodeDcapQuote(decodeDcapQuote(m, { trailing: 'any' }))).equals(Buffer.from(m))).toBe(true);
    }
  });

  it('v5 BODY_TYPE and BODY_SIZE', () => {
    if (o.version !== 5) return;
    for (const t of [0, 1, 4, 0xff]) expect(errorOf(flipped(bytes, 48, t))).toMatchObject({ code: 'TDX_QUOTE_UNSUPPORTED', field: 'DCAP_QUOTE.BODY_TYPE', offset: 48 });
    // Type 2 with the size of type 3, or the other way round.
    expect(errorOf(flipped(bytes, 48, bytes[48] === 3 ? 2 : 3))).toMatchObject({ code: 'PARSE_BAD_VALUE', field: 'DCAP_QUOTE.BODY_SIZE', offset: 50 });
    for (const at of [50, 51, 52, 53]) expect(errorOf(flipped(bytes, at, (bytes[at] as number) ^ 0x01)).code).toBe('PARSE_BAD_VALUE');
  });

  it('SIGNATURE_DATA_LEN off by one either way is refused', () => {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const len = v.getUint32(o.bodyEnd, true);
    for (const d of [-1, 1, 0x1000000]) {
      const m = new Uint8Array(bytes);
      new DataView(m.buffer).setUint32(o.bodyEnd, len + d, true);
      expect(['PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES']).toContain(errorOf(m).code);
    }
  });

  it('CERTIFICATION_DATA (v4, v5): type 6 only; its size must match the QE report certification data exactly', () => {
    if (o.certType === undefined) return;
    for (const t of [1, 4, 5, 7]) expect(errorOf(flipped(bytes, o.certType, t))).toMatchObject({ code: 'TDX_QUOTE_UNSUPPORTED', field: 'DCAP_QUOTE.SIGNATURE_DATA.CERTIFICATION_DATA.TYPE' });
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = v.getUint32(o.certType + 2, true);
    for (const d of [-1, 1]) {
      const m = new Uint8Array(bytes);
      new DataView(m.buffer).setUint32(o.certType + 2, size + d, true);
      expect(['PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES']).toContain(errorOf(m).code);
    }
  });

  it('QE_CERTIFICATION_DATA: type 5 (PCK chain) only; QE_AUTH_DATA.SIZE and the chain size must fit exactly', () => {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const authAt = o.qeReport + 384 + 64;
    const auth = v.getUint16(authAt, true);
    const nestedAt = authAt + 2 + auth;
    for (const t of [1, 2, 3, 4, 6]) expect(errorOf(flipped(bytes, nestedAt, t))).toMatchObject({ code: 'TDX_QUOTE_UNSUPPORTED', field: expect.stringMatching(/QE_CERTIFICATION_DATA\.TYPE$/) });
    for (const [at, width] of [
      [authAt, 2],
      [nestedAt + 2, 4],
    ] as const) {
      for (const d of [-1, 1]) {
        const m = new Uint8Array(bytes);
        const mv = new DataView(m.buffer);
        if (width === 2) mv.setUint16(at, v.getUint16(at, true) + d, true);
        else mv.setUint32(at, v.getUint32(at, true) + d, true);
        expect(m).not.toEqual(bytes);
        expect(() => decodeDcapQuote(m, { trailing: 'any' })).toThrow(ParseError);
      }
    }
  });

  it('every reserved byte of the QE report (and of a v3 body) is checked', () => {
    const starts = [o.qeReport, ...(o.version === 3 ? [48] : [])];
    for (const base of starts) {
      for (const fl of SGX_REPORT_BODY_LAYOUT.filter((x) => x.kind === 'reserved')) {
        for (let i = 0; i < fl.size; i++) {
          const e = errorOf(flipped(bytes, base + fl.offset + i, 0x80));
          expect(e.code).toBe('PARSE_RESERVED_NONZERO');
          expect(e.field).toMatch(new RegExp(`\\.${fl.name}$`));
          expect(e.offset).toBe(base + fl.offset + i);
        }
      }
    }
  });

  it('every one-byte change either decodes to exactly the changed bytes or is a ParseError', () => {
    for (let at = 0; at < bytes.length; at++) {
      const m = flipped(bytes, at, (bytes[at] as number) ^ 0x5a);
      let d;
      try {
        d = decodeDcapQuote(m, { trailing: 'any' });
      } catch (e) {
        expect(e).toBeInstanceOf(ParseError);
        continue;
      }
      expect(Buffer.from(encodeDcapQuote(d)).equals(Buffer.from(m))).toBe(true);
    }
  });

  it('every truncation of the quote proper is a ParseError (zero padding after it may be cut)', () => {
    const end = decodeDcapQuote(bytes, { trailing: 'any' }).quoteBytes.length;
    for (let n = 0; n < end; n += n < 700 ? 1 : 13) expect(() => decodeDcapQuote(bytes.subarray(0, n))).toThrow(ParseError);
    for (let n = end; n <= bytes.length; n++) expect(decodeDcapQuote(bytes.subarray(0, n), { trailing: 'any' }).trailingBytes).toBe(n - end);
  });
});

describe('input limits and misuse', () => {
  it('more than DCAP_QUOTE_MAX_BYTES is PARSE_SIZE_EXCEEDED before anything is read', () => {
    const big = new Uint8Array(DCAP_QUOTE_MAX_BYTES + 1);
    big.set(encodeDcapQuote(syntheticQuote('v4')));
    expect(codeOf(() => decodeDcapQuote(big))).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('fewer than 48 bytes is PARSE_TRUNCATED at HEADER', () => {
    expect(codeOf(() => decodeDcapQuote(new Uint8Array(47)))).toBe('PARSE_TRUNCATED');
    expect(codeOf(() => decodeDcapQuote(new Uint8Array(0)))).toBe('PARSE_TRUNCATED');
  });

  it('a non-byte input or an unknown trailing rule is misuse', () => {
    expect(() => decodeDcapQuote('04' as unknown as Uint8Array)).toThrow(MisuseError);
    expect(() => decodeDcapQuote(new Uint8Array(64), { trailing: 'some' as unknown as 'any' })).toThrow(MisuseError);
  });

  it('decodeTdxQuote accepts v4 and v5, refuses v3', () => {
    expect(decodeTdxQuote(encodeDcapQuote(syntheticQuote('v4'))).body.kind).toBe('td10');
    expect(decodeTdxQuote(encodeDcapQuote(syntheticQuote('v5-td15'))).body.kind).toBe('td15');
    expect(codeOf(() => decodeTdxQuote(encodeDcapQuote(syntheticQuote('v3'))))).toBe('TDX_QUOTE_UNSUPPORTED');
  });

  it('TDATTRIBUTES: named bits, and set bits no name covers reported as unknown', () => {
    const a = tdAttributes(Uint8Array.of(0x03, 0, 0, 0x10, 0, 0, 0, 0x80));
    expect(a.value).toBe(0x8000000010000003n);
    expect(a.flags).toMatchObject({ DEBUG: true, SEPT_VE_DISABLE: true, PERFMON: true, PKS: false });
    expect(a.unknownBits).toEqual([1]);
    expect(() => tdAttributes(new Uint8Array(7))).toThrow(MisuseError);
  });

  it('the encoder refuses what the decoder could not give back', () => {
    const q = syntheticQuote('v4');
    const bad: DcapQuote[] = [
      { ...q, header: { ...q.header, version: 6 as 4 } },
      { ...q, body: { kind: 'sgx', report: syntheticQuote('v3').body.report as never } },
      { ...q, header: { ...q.header, qeSvn: 1, pceSvn: 1 } },
      { ...q, header: { ...q.header, userData: new Uint8Array(19) } },
      { ...q, header: { ...q.header, attestationKeyType: 0x10000 } },
      { ...q, signatureData: { ...q.signatureData, signature: new Uint8Array(63) } },
      { ...q, signatureData: { ...q.signatureData, qeAuthData: new Uint8Array(0x10000) } },
      { ...q, body: { kind: 'td15', report: syntheticQuote('v4').body.report as never } },
    ];
    for (const b of bad) expect(codeOf(() => encodeDcapQuote(b))).toBe('MISUSE_ARGUMENT');
  });
});
