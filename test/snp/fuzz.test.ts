import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError } from '../../src/lib/errors.js';
import { SNP_REPORT_SIZE, decodeSnpReport, encodeSnpReport } from '../../src/snp/abi.js';
import { SNP_CERT_GUID, SNP_CERT_TABLE_MAX_ENTRIES, decodeSnpCertTable, encodeSnpCertTable, snpCertTableGet } from '../../src/snp/certtable.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';

/** Runs `fn`; any throw must be one of our typed errors. */
function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!isVouchError(e)) throw e;
  }
}

/** A deterministic PRNG so a failing case can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

describe('SNP report decoder fuzz', () => {
  it('random bytes of random lengths only give typed errors', () => {
    for (let i = 0; i < 2000; i++) {
      const len = i % 3 === 0 ? SNP_REPORT_SIZE : Math.floor((i * 7919) % 2400);
      const b = randomBytes(len);
      if (len >= 4 && i % 2 === 0) b[0] = [2, 3, 5][i % 3] as number;
      if (len >= 4) b.fill(0, 1, 4);
      onlyTyped(() => decodeSnpReport(new Uint8Array(b)));
    }
  });

  it('a wrong length is refused: short is PARSE_TRUNCATED, long is PARSE_TRAILING_BYTES', () => {
    const zero = new Uint8Array(SNP_REPORT_SIZE);
    zero[0] = 2;
    expect(() => decodeSnpReport(zero.subarray(0, SNP_REPORT_SIZE - 1))).toThrowError(expect.objectContaining({ code: 'PARSE_TRUNCATED' }));
    const long = new Uint8Array(SNP_REPORT_SIZE + 1);
    long[0] = 2;
    expect(() => decodeSnpReport(long)).toThrowError(expect.objectContaining({ code: 'PARSE_TRAILING_BYTES' }));
    for (const v of [0, 1, 4, 6, 0xffffffff]) {
      const m = new Uint8Array(SNP_REPORT_SIZE);
      new DataView(m.buffer).setUint32(0, v, true);
      expect(() => decodeSnpReport(m)).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_VALUE', field: 'ATTESTATION_REPORT.VERSION' }));
    }
  });

  it.skipIf(!HAVE_REAL)('mutated real reports only give typed errors, and what decodes re-encodes to the same bytes', () => {
    const base = readReal('snp', 'trustee-vlek-milan', 'report.bin');
    const rnd = prng(0x5e5);
    for (let i = 0; i < 3000; i++) {
      const m = Uint8Array.from(base);
      const n = 1 + Math.floor(rnd() * 8);
      for (let k = 0; k < n; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      try {
        const r = decodeSnpReport(m);
        expect(toHex(encodeSnpReport(r))).toBe(toHex(m));
      } catch (e) {
        if (!isVouchError(e)) throw e;
      }
    }
  });
});

describe('SNP certificate table', () => {
  const vcek = new Uint8Array([1, 2, 3, 4]);
  const ask = new Uint8Array([5, 6, 7]);
  const ark = new Uint8Array([8]);

  it('round-trips, keeps unknown GUIDs, and finds entries by kind', () => {
    const other = '00112233-4455-6677-8899-aabbccddeeff';
    const table = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: vcek },
      { guid: SNP_CERT_GUID.ask, data: ask },
      { guid: SNP_CERT_GUID.ark, data: ark },
      { guid: other, data: new Uint8Array(0) },
    ]);
    const entries = decodeSnpCertTable(table);
    expect(entries.map((e) => e.kind ?? e.guid)).toEqual(['vcek', 'ask', 'ark', other]);
    expect(snpCertTableGet(entries, 'vcek')).toEqual(vcek);
    expect(snpCertTableGet(entries, 'ark')).toEqual(ark);
    expect(snpCertTableGet(entries, 'vlek')).toBeUndefined();
    // The GUID is stored in the byte order of its text form.
    expect(toHex(table.subarray(0, 16))).toBe(SNP_CERT_GUID.vcek.replace(/-/g, ''));
    // Page padding after the data is accepted.
    const padded = new Uint8Array(4096);
    padded.set(table);
    expect(decodeSnpCertTable(padded).length).toBe(4);
  });

  it('refuses a missing terminator, out-of-bounds entries, repeated GUIDs and a dirty terminator', () => {
    const table = encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: vcek }]);
    expect(() => decodeSnpCertTable(table.subarray(0, 30))).toThrowError(expect.objectContaining({ code: 'PARSE_TRUNCATED' }));
    const oob = Uint8Array.from(table);
    new DataView(oob.buffer).setUint32(20, 1000, true);
    expect(() => decodeSnpCertTable(oob)).toThrowError(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED' }));
    const overlap = Uint8Array.from(table);
    new DataView(overlap.buffer).setUint32(16, 0, true); // offset inside the entry array
    expect(() => decodeSnpCertTable(overlap)).toThrowError(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED' }));
    const dup = encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: vcek }, { guid: SNP_CERT_GUID.vcek, data: ask }]);
    expect(() => decodeSnpCertTable(dup)).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_VALUE' }));
    const dirty = Uint8Array.from(table);
    dirty[24 + 16] = 1;
    expect(() => decodeSnpCertTable(dirty)).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_VALUE' }));
  });

  it('caps the entry count before reading further', () => {
    const n = SNP_CERT_TABLE_MAX_ENTRIES + 2;
    const b = new Uint8Array(n * 24 + 24);
    for (let i = 0; i < n; i++) b[i * 24] = 0xff;
    expect(() => decodeSnpCertTable(b)).toThrowError(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED' }));
  });

  it('fuzz: random and mutated tables only give typed errors; entries always lie inside the input', () => {
    const base = encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: vcek }, { guid: SNP_CERT_GUID.ask, data: ask }, { guid: SNP_CERT_GUID.ark, data: ark }]);
    const rnd = prng(42);
    for (let i = 0; i < 3000; i++) {
      const m = i % 2 === 0 ? Uint8Array.from(base) : new Uint8Array(randomBytes(Math.floor(rnd() * 200)));
      for (let k = 0; k < 4 && m.length > 0; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      try {
        for (const e of decodeSnpCertTable(m)) expect(e.offset + e.data.length).toBeLessThanOrEqual(m.length);
      } catch (e) {
        if (!isVouchError(e)) throw e;
      }
    }
  });
});
