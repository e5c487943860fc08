/**
 * Fuzzing the collateral JSON parsers: random bytes, random JSON, and mutations of the real
 * TCB Info, QE Identity and dcap-qvl bundles only ever parse or fail with
 * TDX_COLLATERAL_MALFORMED (a ParseError); deep nesting and oversized input fail fast; parse
 * time grows linearly with the number of TCB levels.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParseError, isVouchError } from '../../src/lib/errors.js';
import { parseDcapQvlCollateral, parseTdxQeIdentity, parseTdxQeIdentityBody, parseTdxTcbInfo, parseTdxTcbInfoBody, MAX_COLLATERAL_JSON_BYTES } from '../../src/tdx/collateral.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';

function onlyMalformed(f: () => unknown): 'parsed' | 'refused' {
  try {
    f();
    return 'parsed';
  } catch (e) {
    if (!(e instanceof ParseError) || !isVouchError(e) || e.code !== 'TDX_COLLATERAL_MALFORMED') throw e;
    return 'refused';
  }
}

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const SIG = 'ab'.repeat(64);

/** A small valid TDX TCB Info member text with `levels` levels (unsigned; parsing does not verify). */
function tcbInfoText(levels: number): string {
  const comp = (n: number) => JSON.stringify(Array.from({ length: 16 }, (_, i) => ({ svn: i === 0 ? n % 256 : i === 1 ? Math.floor(n / 256) : 0 })));
  const lv = Array.from({ length: levels }, (_, i) => `{"tcb":{"sgxtcbcomponents":${comp(levels - i)},"pcesvn":13,"tdxtcbcomponents":${comp(levels - i)}},"tcbDate":"2024-01-01T00:00:00Z","tcbStatus":"${i === 0 ? 'UpToDate' : 'OutOfDate'}","advisoryIDs":["INTEL-SA-00001"]}`);
  return `{"id":"TDX","version":3,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-02-01T00:00:00Z","fmspc":"90C06F000000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tdxModule":{"mrsigner":"${'00'.repeat(48)}","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"},"tcbLevels":[${lv.join(',')}]}`;
}

describe('collateral JSON fuzzing', () => {
  it('the generator makes a TCB Info the parser accepts', () => {
    expect(parseTdxTcbInfo(enc(tcbInfoText(3)), SIG).tcbLevels).toHaveLength(3);
  });

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        onlyMalformed(() => parseTdxTcbInfoBody(b));
        onlyMalformed(() => parseTdxQeIdentityBody(b));
        onlyMalformed(() => parseTdxTcbInfo(b, SIG));
        onlyMalformed(() => parseDcapQvlCollateral(b));
      }),
      { numRuns: 1500 },
    );
  });

  it('random JSON values, alone and in the place of each member', () => {
    const base = JSON.parse(tcbInfoText(2)) as Record<string, unknown>;
    const keys = Object.keys(base);
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(keys.length - 1), (v, k) => {
        expect(onlyMalformed(() => parseTdxTcbInfo(enc(JSON.stringify(v)), SIG))).toBe('refused');
        const doc = { ...base, [keys[k] as string]: v };
        onlyMalformed(() => parseTdxTcbInfo(enc(JSON.stringify(doc)), SIG));
        onlyMalformed(() => parseTdxTcbInfoBody(enc(JSON.stringify({ tcbInfo: doc, signature: SIG }))));
      }),
      { numRuns: 1500 },
    );
  });

  it('random strings in JSON syntax positions (unicode, escapes, lone surrogates)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
        onlyMalformed(() => parseTdxTcbInfo(enc(tcbInfoText(1).replace('"TDX"', JSON.stringify(s))), SIG));
        onlyMalformed(() => parseTdxTcbInfo(enc(tcbInfoText(1).replace('"2025-01-01T00:00:00Z"', JSON.stringify(s))), SIG));
        onlyMalformed(() => parseTdxTcbInfo(enc(tcbInfoText(1).replace('"UpToDate"', JSON.stringify(s))), SIG));
      }),
      { numRuns: 800 },
    );
  });

  it('deep nesting fails fast without exhausting the stack; oversized input is refused before parsing', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    expect(onlyMalformed(() => parseTdxTcbInfoBody(enc(deep)))).toBe('refused');
    const deepObj = `{"tcbInfo":${'{"a":'.repeat(100)}1${'}'.repeat(100)},"signature":"${SIG}"}`;
    expect(onlyMalformed(() => parseTdxTcbInfoBody(enc(deepObj)))).toBe('refused');
    // Refused on its size alone: the message names the limit, no byte was scanned.
    expect(() => parseTdxTcbInfoBody(new Uint8Array(MAX_COLLATERAL_JSON_BYTES + 1).fill(0x20))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED', message: expect.stringContaining(`more than ${MAX_COLLATERAL_JSON_BYTES}`) }));
  });

  it('parse time grows linearly with the number of TCB levels', () => {
    const time = (n: number): number => {
      const b = enc(tcbInfoText(n));
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < 7; r++) {
        const t0 = performance.now();
        parseTdxTcbInfo(b, SIG);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    time(50);
    const small = time(100);
    const large = time(800);
    // 8× the input; quadratic behaviour would be ~64×. Allow generous noise on a shared machine.
    expect(large / Math.max(small, 0.05)).toBeLessThan(24);
  });
});

describe.skipIf(!HAVE_REAL)('mutations of real collateral', () => {
  const bodies = HAVE_REAL ? { tcb: readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), qe: readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json'), emr: readReal('tdx', 'gtg-emr-v5', 'tcb_info.json'), qvl: readReal('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json') } : undefined;
  const mutation = (len: number) =>
    fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(len - 1), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(len), byte: fc.constant(0) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(len), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(len - 1), byte: fc.constant(0) }),
    );
  const apply = (b: Uint8Array, m: { kind: 'set' | 'cut' | 'insert' | 'delete'; at: number; byte: number }): Uint8Array => {
    if (m.kind === 'set') {
      const c = b.slice();
      c[m.at] = m.byte;
      return c;
    }
    if (m.kind === 'cut') return b.slice(0, m.at);
    if (m.kind === 'insert') return Uint8Array.from([...b.subarray(0, m.at), m.byte, ...b.subarray(m.at)]);
    return Uint8Array.from([...b.subarray(0, m.at), ...b.subarray(m.at + 1)]);
  };

  for (const [name, parse] of [
    ['tcb', parseTdxTcbInfoBody],
    ['emr', parseTdxTcbInfoBody],
    ['qe', parseTdxQeIdentityBody],
    ['qvl', parseDcapQvlCollateral],
  ] as const) {
    it(`${name}: byte changes, cuts, insertions and deletions only parse or are TDX_COLLATERAL_MALFORMED`, () => {
      const base = (bodies as Record<string, Uint8Array>)[name] as Uint8Array;
      expect(onlyMalformed(() => parse(base))).toBe('parsed');
      fc.assert(fc.property(fc.array(mutation(base.length), { minLength: 1, maxLength: 4 }), (ms) => {
        let b = base;
        for (const m of ms) b = b.length === 0 ? b : apply(b, { ...m, at: Math.min(m.at, Math.max(b.length - 1, 0)) });
        onlyMalformed(() => parse(b));
      }), { numRuns: name === 'qvl' ? 300 : 1000 });
    });
  }

  it('the QE Identity split form from dcap-qvl: mutated texts only parse or are malformed', () => {
    const raw = JSON.parse(Buffer.from((bodies as Record<string, Uint8Array>).qvl as Uint8Array).toString('utf8')) as Record<string, string>;
    const text = enc(raw.qe_identity as string);
    fc.assert(fc.property(fc.nat(text.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const b = text.slice();
      b[at] = byte;
      onlyMalformed(() => parseTdxQeIdentity(b, raw.qe_identity_signature as string));
    }), { numRuns: 1000 });
  });
});
