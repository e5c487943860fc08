import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeStrict, encodeCanonical, type CborValue, type DecodeLimits } from '../../src/lib/cbor.js';
import { MisuseError, ParseError, type ErrorCode } from '../../src/lib/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** Asserts that decoding `input` throws a ParseError with `code` and a message matching `msg`. */
function expectReject(input: string, code: ErrorCode, msg: RegExp, limits?: DecodeLimits): void {
  let thrown: unknown;
  try {
    decodeStrict(unhex(input), limits);
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `${input} must be rejected`).toBeInstanceOf(ParseError);
  const e = thrown as ParseError;
  expect(e.code, `${input}: ${e.message}`).toBe(code);
  expect(e.message).toMatch(msg);
}

function expectEncodeMisuse(value: unknown, msg: RegExp): void {
  let thrown: unknown;
  try {
    encodeCanonical(value);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(MisuseError);
  expect((thrown as MisuseError).code).toBe('MISUSE_ARGUMENT');
  expect((thrown as MisuseError).message).toMatch(msg);
}

describe('RFC 8949 Appendix A vectors (supported types)', () => {
  const vectors: [CborValue, string][] = [
    [0, '00'],
    [1, '01'],
    [10, '0a'],
    [23, '17'],
    [24, '1818'],
    [25, '1819'],
    [100, '1864'],
    [1000, '1903e8'],
    [1000000, '1a000f4240'],
    [1000000000000, '1b000000e8d4a51000'],
    [18446744073709551615n, '1bffffffffffffffff'],
    [-18446744073709551616n, '3bffffffffffffffff'],
    [-1, '20'],
    [-10, '29'],
    [-100, '3863'],
    [-1000, '3903e7'],
    [false, 'f4'],
    [true, 'f5'],
    [null, 'f6'],
    [new Uint8Array(), '40'],
    [unhex('01020304'), '4401020304'],
    ['', '60'],
    ['a', '6161'],
    ['IETF', '6449455446'],
    ['"\\', '62225c'],
    ['\u00fc', '62c3bc'],
    ['\u6c34', '63e6b0b4'],
    ['\ud800\udd51', '64f0908591'],
    [[], '80'],
    [[1, 2, 3], '83010203'],
    [[1, [2, 3], [4, 5]], '8301820203820405'],
    [
      Array.from({ length: 25 }, (_, i) => i + 1),
      '98190102030405060708090a0b0c0d0e0f101112131415161718181819',
    ],
    [{}, 'a0'],
    [new Map<number, number>([[1, 2], [3, 4]]), 'a201020304'],
    [{ a: 1, b: [2, 3] }, 'a26161016162820203'],
    [['a', { b: 'c' }], '826161a161626163'],
    [{ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }, 'a56161614161626142616361436164614461656145'],
  ];

  it.each(vectors.map(([v, h]) => [h, v] as const))('encodes and decodes %s', (h, v) => {
    expect(hex(encodeCanonical(v))).toBe(h);
    expect(decodeStrict(unhex(h))).toEqual(v);
  });

  it('decodes integers beyond 2^53 as bigint and within it as number', () => {
    expect(decodeStrict(unhex('1b001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeStrict(unhex('1b0020000000000000'))).toBe(2n ** 53n);
    expect(decodeStrict(unhex('3b001ffffffffffffe'))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeStrict(unhex('3b001fffffffffffff'))).toBe(-(2n ** 53n));
    expect(hex(encodeCanonical(5n))).toBe('05');
    expect(hex(encodeCanonical(-(2n ** 53n)))).toBe('3b001fffffffffffff');
  });

  it.each([
    ['f90000', 'half float 0.0'],
    ['fa47c35000', 'single float 100000.0'],
    ['fb3ff199999999999a', 'double 1.1'],
    ['f7', 'undefined'],
    ['f0', 'simple(16)'],
    ['f8ff', 'simple(255)'],
    ['c074323031332d30332d32315432303a30343a30305a', 'tag 0 date'],
    ['c249010000000000000000', 'bignum 2^64'],
    ['d74401020304', 'tag 23'],
    ['5f42010243030405ff', 'indefinite byte string'],
    ['7f657374726561646d696e67ff', 'indefinite text string'],
    ['9fff', 'indefinite empty array'],
    ['bf61610161629f0203ffff', 'indefinite map'],
  ])('rejects the Appendix A item %s (%s), outside the data model', (h) => {
    expect(() => decodeStrict(unhex(h))).toThrow(ParseError);
  });
});

describe('canonical map key order (RFC 8949 §4.2.1)', () => {
  it('orders {"b":1,"a":2,"aa":3} as a, b, aa', () => {
    const bytes = encodeCanonical({ b: 1, a: 2, aa: 3 });
    expect(hex(bytes)).toBe('a3' + '616102' + '616201' + '62616103');
    expect(Object.keys(decodeStrict(bytes) as object)).toEqual(['a', 'b', 'aa']);
  });

  it('orders integer keys before text keys, by encoded bytes', () => {
    const m = new Map<string | number, number>([
      ['aa', 5],
      ['z', 4],
      [-1, 3],
      [100, 2],
      [10, 1],
    ]);
    // 0a < 1864 < 20 < 617a < 626161
    expect(hex(encodeCanonical(m))).toBe('a5' + '0a01' + '186402' + '2003' + '617a04' + '62616105');
    const back = decodeStrict(encodeCanonical(m));
    expect(back).toBeInstanceOf(Map);
    expect([...(back as Map<unknown, unknown>).keys()]).toEqual([10, 100, -1, 'z', 'aa']);
  });

  it('decodes a map with only text keys to a plain object, keeping "__proto__" as data', () => {
    const bytes = unhex('a1695f5f70726f746f5f5f01'); // {"__proto__": 1}
    const v = decodeStrict(bytes) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toBe(1);
    expect(hex(encodeCanonical(v))).toBe(hex(bytes));
  });
});

describe('strict decoding rejects with a named problem', () => {
  it.each([
    ['0000', 'PARSE_TRAILING_BYTES', /1 bytes after the end/],
    ['', 'PARSE_TRUNCATED', /needs 1 bytes/],
    ['1903', 'PARSE_TRUNCATED', /needs 2 bytes/],
    ['83 01 02 18', 'PARSE_TRUNCATED', /cbor\[2\] at offset 4: needs 1 bytes/],
    ['83 01 02', 'PARSE_SIZE_EXCEEDED', /array count of 3 exceeds the 2 bytes left/],
    ['1817', 'PARSE_BAD_ENCODING', /non-shortest encoding: 23 written with a 1-byte argument/],
    ['190017', 'PARSE_BAD_ENCODING', /non-shortest.*2-byte/],
    ['1a0000ffff', 'PARSE_BAD_ENCODING', /non-shortest.*4-byte/],
    ['1b00000000ffffffff', 'PARSE_BAD_ENCODING', /non-shortest.*8-byte/],
    ['3817', 'PARSE_BAD_ENCODING', /non-shortest/],
    ['580100', 'PARSE_BAD_ENCODING', /non-shortest/],
    ['780161', 'PARSE_BAD_ENCODING', /non-shortest/],
    ['9800', 'PARSE_BAD_ENCODING', /non-shortest/],
    ['b800', 'PARSE_BAD_ENCODING', /non-shortest/],
    ['5f40ff', 'PARSE_BAD_ENCODING', /indefinite-length item of major type 2/],
    ['9f01ff', 'PARSE_BAD_ENCODING', /indefinite-length item of major type 4/],
    ['bfff', 'PARSE_BAD_ENCODING', /indefinite-length item of major type 5/],
    ['1f', 'PARSE_BAD_ENCODING', /indefinite-length item of major type 0/],
    ['ff', 'PARSE_BAD_ENCODING', /break/],
    ['1c', 'PARSE_BAD_ENCODING', /reserved additional information 28/],
    ['5d', 'PARSE_BAD_ENCODING', /reserved additional information 29/],
    ['fe', 'PARSE_BAD_ENCODING', /reserved additional information 30 in major type 7/],
    ['a2616101616102', 'PARSE_BAD_ENCODING', /duplicate map key a/],
    ['a2616201616102', 'PARSE_BAD_ENCODING', /map key a is out of canonical order/],
    ['a2626161016162 02', 'PARSE_BAD_ENCODING', /out of canonical order/],
    ['a2200a0a01', 'PARSE_BAD_ENCODING', /out of canonical order/],
    ['a1800001', 'PARSE_BAD_ENCODING', /map key of major type 4/],
    ['a1400001', 'PARSE_BAD_ENCODING', /map key of major type 2/],
    ['a1f601', 'PARSE_BAD_ENCODING', /map key of major type 7/],
    ['c11a514b67b0', 'PARSE_BAD_ENCODING', /tags are not allowed \(tag 1\)/],
    ['d818456449455446', 'PARSE_BAD_ENCODING', /tags are not allowed \(tag 24\)/],
    ['f93c00', 'PARSE_BAD_ENCODING', /floating-point/],
    ['fa3f800000', 'PARSE_BAD_ENCODING', /floating-point/],
    ['fb3ff0000000000000', 'PARSE_BAD_ENCODING', /floating-point/],
    ['f7', 'PARSE_BAD_ENCODING', /undefined is not allowed/],
    ['f0', 'PARSE_BAD_ENCODING', /unassigned simple value 16/],
    ['f820', 'PARSE_BAD_ENCODING', /simple values other than/],
    ['62c328', 'PARSE_BAD_ENCODING', /not valid UTF-8/],
    ['62c0af', 'PARSE_BAD_ENCODING', /not valid UTF-8/], // overlong "/"
    ['63eda080', 'PARSE_BAD_ENCODING', /not valid UTF-8/], // encoded surrogate U+D800
    ['61ff', 'PARSE_BAD_ENCODING', /not valid UTF-8/],
    ['5bffffffffffffffff', 'PARSE_SIZE_EXCEEDED', /byte string length/],
    ['5a7fffffff00', 'PARSE_SIZE_EXCEEDED', /byte string length of 2147483647 exceeds the 1 bytes left/],
    ['9affffffff', 'PARSE_SIZE_EXCEEDED', /array count/],
    ['a30102', 'PARSE_SIZE_EXCEEDED', /map size of 3/],
  ] as const)('%s → %s', (input, code, msg) => {
    expectReject(input, code, msg);
  });

  it('names the field path and offset of a nested problem', () => {
    // {"a": [1, 1.5]}
    let err: ParseError | undefined;
    try {
      decodeStrict(unhex('a161618201f93e00'), { name: 'evidence' });
    } catch (e) {
      err = e as ParseError;
    }
    expect(err?.field).toBe('evidence.a[1]');
    expect(err?.offset).toBe(5);
    expect(err?.message).toMatch(/^evidence\.a\[1\] at offset 5: floating-point/);
  });

  it('enforces maxBytes before reading', () => {
    expectReject('4400000000', 'PARSE_SIZE_EXCEEDED', /input of 5 bytes exceeds the limit of 4/, { maxBytes: 4 });
  });

  it('enforces maxDepth', () => {
    const nested = '81'.repeat(4) + '00';
    expect(decodeStrict(unhex(nested), { maxDepth: 4 })).toEqual([[[[0]]]]);
    expectReject(nested, 'PARSE_SIZE_EXCEEDED', /nesting deeper than 3/, { maxDepth: 3 });
    expectReject('a16161a1616100', 'PARSE_SIZE_EXCEEDED', /nesting deeper than 1/, { maxDepth: 1 });
  });

  it('rejects deep nesting by default without exhausting the stack', () => {
    expectReject('81'.repeat(100_000) + '00', 'PARSE_SIZE_EXCEEDED', /nesting deeper than 32/);
  });

  it('enforces maxItems, counting map keys', () => {
    expect(decodeStrict(unhex('83010203'), { maxItems: 4 })).toEqual([1, 2, 3]);
    expectReject('83010203', 'PARSE_SIZE_EXCEEDED', /more than 3 data items/, { maxItems: 3 });
    expectReject('a2616101616202', 'PARSE_SIZE_EXCEEDED', /more than 4 data items/, { maxItems: 4 });
  });

  it('returns byte strings as fresh Uint8Arrays, not views into the input', () => {
    const input = unhex('4401020304');
    const out = decodeStrict(input) as Uint8Array;
    expect(Buffer.isBuffer(out)).toBe(false);
    input[1] = 0xff;
    expect(hex(out)).toBe('01020304');
  });

  it('accepts a Buffer input at a non-zero offset', () => {
    const backing = Buffer.from('ff83010203', 'hex').subarray(1);
    expect(decodeStrict(backing)).toEqual([1, 2, 3]);
  });

  it('keeps a leading byte order mark in text', () => {
    const bytes = encodeCanonical('\ufeffx');
    expect(hex(bytes)).toBe('64efbbbf78');
    expect(decodeStrict(bytes)).toBe('\ufeffx');
  });
});

describe('encodeCanonical rejects values outside the data model', () => {
  it.each([
    [1.5, /not an integer; floats/],
    [Number.NaN, /not an integer/],
    [Number.POSITIVE_INFINITY, /not an integer/],
    [2 ** 53, /beyond Number.MAX_SAFE_INTEGER; pass it as a bigint/],
    [undefined, /undefined is not part of the data model/],
    [{ a: undefined }, /\$\.a: undefined/],
    [[1, , 3], /\$\[1\]: undefined/], // a hole in a sparse array
    [Symbol('s'), /symbol/],
    [() => 1, /function/],
    [new Date(0), /Date instance is not a plain object/],
    [new Float32Array(1), /only Uint8Array/],
    [new ArrayBuffer(1), /only Uint8Array/],
    [new Set([1]), /Set instance/],
    ['\ud800', /lone surrogate/],
    [{ k: 'a\udc00b' }, /\$\.k: string holds a lone surrogate/],
    [2n ** 64n, /outside -2\^64/],
    [-(2n ** 64n) - 1n, /outside -2\^64/],
    [new Map<unknown, number>([[1, 1], [1n, 2]]), /duplicate map key 1/],
    [new Map<unknown, number>([[true, 1]]), /map key of type boolean/],
    [new Map<unknown, number>([[[1], 1]]), /map key of type object/],
    [new Map<unknown, number>([[1.5, 1]]), /not an integer/],
    [{ [Symbol('k')]: 1 }, /symbol keys/],
  ])('%s', (value, msg) => {
    expectEncodeMisuse(value, msg);
  });

  it('rejects a cyclic value by depth', () => {
    const a: unknown[] = [];
    a.push(a);
    expectEncodeMisuse(a, /nesting deeper than 64 \(is the value cyclic\?\)/);
  });

  it('encodes -0 as 0 and accepts null-prototype objects and Buffers', () => {
    expect(hex(encodeCanonical(-0))).toBe('00');
    const o = Object.create(null) as Record<string, unknown>;
    o.x = Buffer.from([1]);
    expect(hex(encodeCanonical(o))).toBe('a161784101');
  });
});

// --- properties -------------------------------------------------------------------------------

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** Integers as decodeStrict returns them: number when safe, bigint beyond. */
const integerArb = fc.oneof(
  fc.integer({ min: -30, max: 30 }),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).map((b) => (b >= -MAX_SAFE_BIG && b <= MAX_SAFE_BIG ? Number(b) : b)),
);
const textArb = fc.string({ unit: 'binary', maxLength: 40 });

const { value: valueArb } = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    integerArb,
    textArb,
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(textArb, tie('value'), { maxKeys: 5, noNullPrototype: true }),
    // Maps with at least one integer key (all-text maps decode to objects).
    fc
      .tuple(fc.integer(), tie('value'), fc.array(fc.tuple(fc.oneof(fc.integer(), textArb), tie('value')), { maxLength: 4 }))
      .map(([k, v, rest]) => new Map<string | number, CborValue>([[k, v], ...rest])),
  ),
}));

describe('properties', () => {
  it('encode → decode → encode gives identical bytes, and decode gives the value back', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const bytes = encodeCanonical(v);
        const back = decodeStrict(bytes);
        expect(hex(encodeCanonical(back))).toBe(hex(bytes));
        expect(back).toEqual(v);
      }),
      { numRuns: 1500 },
    );
  });

  it('fuzz: random bytes only ever throw ParseError, and whatever is accepted is canonical', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 48 }), (input) => {
        let v: CborValue;
        try {
          v = decodeStrict(input, { maxDepth: 8, maxItems: 256 });
        } catch (e) {
          expect(e).toBeInstanceOf(ParseError);
          return;
        }
        expect(hex(encodeCanonical(v))).toBe(hex(input));
      }),
      { numRuns: 20_000 },
    );
  });

  it('fuzz: mutated valid encodings only ever throw ParseError, and whatever is accepted is canonical', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(valueArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (v, muts) => {
        let b = Array.from(encodeCanonical(v));
        for (const m of muts) {
          const at = b.length === 0 ? 0 : m.at % b.length;
          if (m.kind === 'flip' && b.length > 0) b[at] = (b[at] as number) ^ m.bits;
          else if (m.kind === 'cut') b = b.slice(0, at);
          else if (m.kind === 'insert') b.splice(at, 0, m.byte);
        }
        const input = Uint8Array.from(b);
        let out: CborValue;
        try {
          out = decodeStrict(input);
        } catch (e) {
          expect(e).toBeInstanceOf(ParseError);
          return;
        }
        expect(hex(encodeCanonical(out))).toBe(hex(input));
      }),
      { numRuns: 5000 },
    );
  });
});
