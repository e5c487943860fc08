import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../src/lib/errors.js';
import { Reader, Writer } from '../../src/lib/reader.js';

function err(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('Reader', () => {
  it('reads big- and little-endian integers', () => {
    const r = new Reader(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14), 'T');
    expect(r.u16('a')).toBe(0x0102);
    expect(r.u16('b', 'le')).toBe(0x0403);
    expect(r.u32('c')).toBe(0x05060708);
    expect(r.u32('d', 'le')).toBe(0x0c0b0a09);
    expect(r.remaining).toBe(2);
  });

  it('a short read is PARSE_TRUNCATED with the field path and absolute offset', () => {
    const r = new Reader(Uint8Array.of(0, 5, 1, 2), 'T');
    expect(err(() => r.tpm2bReader('inner', 100))).toMatchObject({ code: 'PARSE_TRUNCATED', field: 'T.inner', offset: 2, expected: '5 bytes', actual: '2 bytes' });
    const r2 = new Reader(Uint8Array.of(0, 2, 9, 9, 7), 'T');
    const s2 = r2.tpm2bReader('inner', 100);
    s2.u8('a');
    expect(err(() => s2.u16('b'))).toMatchObject({ code: 'PARSE_TRUNCATED', field: 'T.inner.b', offset: 3 });
  });

  it('sub-readers must be consumed exactly; finish rejects trailing bytes', () => {
    const r = new Reader(Uint8Array.of(0, 2, 1, 2, 3), 'T');
    const s = r.tpm2bReader('inner', 10);
    s.u8('a');
    expect(err(() => s.finish())).toMatchObject({ code: 'PARSE_TRAILING_BYTES', field: 'T.inner', offset: 3 });
    expect(err(() => r.finish())).toMatchObject({ code: 'PARSE_TRAILING_BYTES', field: 'T', offset: 4 });
  });

  it('a TPM2B size over its bound is rejected before reading', () => {
    expect(err(() => new Reader(Uint8Array.of(0xff, 0xff), 'T').tpm2b('x', 64))).toMatchObject({ code: 'PARSE_SIZE_EXCEEDED', field: 'T.x.size', offset: 0 });
  });

  it('reserved bytes must be zero', () => {
    expect(err(() => new Reader(Uint8Array.of(0, 0, 1), 'T').reserved(3, 'rsv'))).toMatchObject({ code: 'PARSE_RESERVED_NONZERO', offset: 2 });
  });

  it('bytes() never returns a shorter slice', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 100 }), (buf, n) => {
        const r = new Reader(buf, 'T');
        if (n <= buf.length) expect(r.bytes(n, 'x')).toHaveLength(n);
        else expect(err(() => r.bytes(n, 'x')).code).toBe('PARSE_TRUNCATED');
      }),
    );
  });

  it('Writer is the inverse of Reader', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }), fc.nat({ max: 0xffffffff }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.uint8Array({ maxLength: 300 }), (a, b, c, d) => {
        const bytes = new Writer(1).u16(a).u32(b, 'le').u64(c).tpm2b(d).finish();
        const r = new Reader(bytes, 'T');
        expect([r.u16('a'), r.u32('b', 'le'), r.u64('c'), r.tpm2b('d', 1000)]).toEqual([a, b, c, d]);
        r.finish();
      }),
    );
  });
});
