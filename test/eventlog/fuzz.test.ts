/**
 * Fuzz and DoS tests of the event-log parser, replay and claims: mutated real logs (byte flips,
 * truncations, insertions) only ever give typed VouchErrors (PARSE_*), and parse time grows
 * linearly with the size of the log.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isVouchError } from '../../src/lib/errors.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { bootClaims, parseEventLog, replayEventLog, verifyEventLog } from '../../src/eventlog/index.js';
import { encodeEventLog, typicalBoot } from '../helpers/firmware-log.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';

const NAMES = ['gtt-rhel8-gce-sb', 'ga-ebs-missing-sha1', 'gtt-arch-linux-workstation', 'ga-short-no-action', 't2t-moklisttrusted'];
const seeds: Uint8Array[] = HAVE_REAL
  ? NAMES.map((n) => readReal('tpm', 'eventlogs', `${n}.bin`))
  : [encodeEventLog(typicalBoot({ secureBoot: true, cmdline: 'ro', bootloader: new Uint8Array(8) }), [TPM_ALG.SHA1, TPM_ALG.SHA256])];
if (!HAVE_REAL) console.warn('event-log fuzzing runs on a synthetic log only: the real corpus is absent');

/** Parses, replays, verifies against its own replay and decodes claims; only VouchErrors may escape. */
function exercise(bytes: Uint8Array): void {
  try {
    const log = parseEventLog(bytes);
    const r = replayEventLog(log, { quirks: ['ebs-missing'] });
    const v = verifyEventLog(log, r.pcrs, { quirks: ['ebs-missing'] });
    if (v.ok) bootClaims(v);
  } catch (e) {
    if (!isVouchError(e)) throw new Error(`non-VouchError thrown: ${String(e)}`, { cause: e });
    expect(e.code).toMatch(/^PARSE_/);
  }
}

type Mutation = { kind: 'flip'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array } | { kind: 'u32'; at: number; value: number };

function mutate(seed: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  let b = new Uint8Array(seed);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.kind === 'flip' && at < b.length) b[at] = m.value;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = new Uint8Array([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
    else if (m.kind === 'u32' && at + 4 <= b.length) new DataView(b.buffer, b.byteOffset).setUint32(at, m.value, true);
  }
  return b;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  // Size and count fields are u32: set them to edge values.
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 3, 0x7fffffff, 0xffffffff, 0x10000) }),
);

describe('event-log fuzzing', () => {
  it('mutated real logs only give typed VouchErrors', () => {
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (i, muts) => {
        exercise(mutate(seeds[i]!, muts));
      }),
      { numRuns: 1500 },
    );
  });

  it('random bytes only give typed VouchErrors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        exercise(b);
      }),
      { numRuns: 1000 },
    );
  });

  it('every truncation of a real log is a typed error', () => {
    const seed = seeds[0]!;
    for (let n = 0; n < seed.length; n += 7) {
      let code: string | undefined;
      try {
        parseEventLog(seed.subarray(0, n));
      } catch (e) {
        if (!isVouchError(e)) throw e;
        code = e.code;
      }
      // A cut exactly between two records is a shorter, valid log.
      if (code !== undefined) expect(code).toMatch(/^PARSE_/);
    }
  });
});

describe('event-log DoS', () => {
  it('parse + replay time grows linearly with the number of events (per-byte rates within 5×)', () => {
    const seed = HAVE_REAL ? readReal('tpm', 'eventlogs', 'gtt-rhel8-gce-sb.bin') : seeds[0]!;
    const log = parseEventLog(seed);
    const first = log.untrustedEvents[1]!.offset;
    const header = seed.subarray(0, first);
    let body = seed.subarray(first);
    const sizes: { bytes: number; perByte: number }[] = [];
    for (let doubling = 0; doubling <= 6; doubling++) {
      const bytes = new Uint8Array(header.length + body.length);
      bytes.set(header);
      bytes.set(body, header.length);
      // Best of 3 runs, so that one garbage collection does not decide.
      let best = Infinity;
      for (let k = 0; k < 3; k++) {
        const t0 = process.hrtime.bigint();
        const l = parseEventLog(bytes);
        replayEventLog(l);
        best = Math.min(best, Number(process.hrtime.bigint() - t0));
      }
      sizes.push({ bytes: bytes.length, perByte: best / bytes.length });
      const next = new Uint8Array(body.length * 2);
      next.set(body);
      next.set(body, body.length);
      body = next;
    }
    // The largest log (64× the events) must not cost more per byte than 5× the mid-size one.
    const mid = sizes[3]!.perByte;
    const big = sizes[6]!.perByte;
    expect(big).toBeLessThan(mid * 5);
    expect(sizes[6]!.bytes).toBeGreaterThan(sizes[0]!.bytes * 32);
  });

  it('a declared event size of 4 GiB is refused before any allocation', () => {
    const seed = seeds[0]!;
    const log = parseEventLog(seed);
    const e = log.untrustedEvents[1]!;
    const b = new Uint8Array(seed);
    new DataView(b.buffer).setUint32(e.offset + e.raw.length - e.untrustedData.length - 4, 0xffffffff, true);
    expect(() => parseEventLog(b)).toThrow(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED' }));
  });
});
