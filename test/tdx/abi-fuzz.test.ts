/**
 * Property, fuzz and DoS tests of the DCAP quote codec: any quote model round-trips through the
 * encoder and the decoder; random bytes and mutated real quotes only ever give a ParseError, and
 * whatever decodes re-encodes to exactly the input; decode time grows linearly with the input.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDcapQuote, encodeDcapQuote } from '../../src/tdx/abi.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';
import { onlyParseErrors, prng, quoteArb, syntheticQuote } from './helpers.js';

const seeds: Uint8Array[] = [
  encodeDcapQuote(syntheticQuote('v4')),
  encodeDcapQuote(syntheticQuote('v5-td15')),
  encodeDcapQuote(syntheticQuote('v3')),
  ...(HAVE_REAL ? ['gtg-emr-v5', 'gtg-gcp-cos113-ccel', 'dcapqvl-sgx-v3', 'trustee-gnr-v4'].map((d) => readReal('tdx', d, 'quote.dat')) : []),
];
if (!HAVE_REAL) console.warn('TDX quote fuzzing runs on synthetic quotes only: the real corpus is absent');

/** Decodes; a success must re-encode to exactly the input. Only ParseErrors may escape. */
function exercise(b: Uint8Array): void {
  onlyParseErrors(() => {
    const q = decodeDcapQuote(b, { trailing: 'any' });
    expect(Buffer.from(encodeDcapQuote(q)).equals(Buffer.from(b))).toBe(true);
  });
  onlyParseErrors(() => decodeDcapQuote(b));
}

type Mutation = { kind: 'flip'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array } | { kind: 'u16'; at: number; value: number } | { kind: 'u32'; at: number; value: number };

function mutate(seed: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let b = new Uint8Array(seed);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (m.kind === 'flip' && at < b.length) b[at] = m.value;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = new Uint8Array([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
    else if (m.kind === 'u16' && at + 2 <= b.length) v.setUint16(at, m.value, true);
    else if (m.kind === 'u32' && at + 4 <= b.length) v.setUint32(at, m.value, true);
  }
  return b;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  // Sizes, types and counts are u16 and u32: set them to edge values.
  fc.record({ kind: fc.constant('u16' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 3, 5, 6, 0x7fff, 0xffff) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 584, 648, 0x7fffffff, 0xffffffff, 0x10000) }),
);

describe('DCAP quote codec properties', () => {
  it('any quote model: decode(encode(q)) is q and encode is stable', () => {
    fc.assert(
      fc.property(quoteArb, (q) => {
        const b = encodeDcapQuote(q);
        const d = decodeDcapQuote(b);
        expect({ header: d.header, body: d.body, signatureData: d.signatureData, ...(d.trailing !== undefined ? { trailing: d.trailing } : {}) }).toEqual(q);
        expect(d.trailingBytes).toBe(q.trailing?.length ?? 0);
        expect(Buffer.from(encodeDcapQuote(d)).equals(Buffer.from(b))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('mutated quotes only give ParseErrors, and what decodes re-encodes exactly', () => {
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (i, muts) => {
        exercise(mutate(seeds[i] as Uint8Array, muts));
      }),
      { numRuns: 1500 },
    );
  });

  it('random bytes only give ParseErrors (half of them with a plausible header)', () => {
    const rnd = prng(0x7d0);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rnd() * 6000);
      const b = new Uint8Array(randomBytes(len));
      if (len >= 8 && i % 2 === 0) {
        const v = new DataView(b.buffer);
        const version = [3, 4, 5][i % 3] as number;
        v.setUint16(0, version, true);
        v.setUint16(2, 2, true);
        v.setUint32(4, version === 3 ? 0 : 0x81, true);
        if (len > 12) b.fill(0, 8, 12);
        if (version === 5 && len > 54) {
          v.setUint16(48, i % 4 === 0 ? 3 : 2, true);
          v.setUint32(50, i % 4 === 0 ? 648 : 584, true);
        }
      }
      exercise(b);
    }
  });
});

describe('DCAP quote decoding time', () => {
  it('grows linearly with the input (per-byte cost within 5x from 8 KiB to 384 KiB of certification data and as much zero padding)', () => {
    const perByte: number[] = [];
    for (const size of [8 * 1024, 64 * 1024, 384 * 1024]) {
      const q = syntheticQuote('v4', new Uint8Array(size));
      const b = encodeDcapQuote({ ...q, signatureData: { ...q.signatureData, pckCertChain: new Uint8Array(size).fill(0x41) } });
      let best = Infinity;
      for (let k = 0; k < 5; k++) {
        const t0 = process.hrtime.bigint();
        decodeDcapQuote(b);
        best = Math.min(best, Number(process.hrtime.bigint() - t0));
      }
      perByte.push(best / b.length);
    }
    const max = Math.max(...perByte);
    const min = Math.min(...perByte);
    expect(max / min).toBeLessThan(5);
  });
});
