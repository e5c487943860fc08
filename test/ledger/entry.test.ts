import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeCanonical } from '../../src/lib/cbor.js';
import { MisuseError, ParseError, type ErrorCode } from '../../src/lib/errors.js';
import {
  GENESIS_PREV,
  buildLedgerEntry,
  decodeLedgerEntry,
  ledgerEntryHash,
  type LedgerEntryFields,
} from '../../src/ledger/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const base: LedgerEntryFields = {
  seq: 1,
  prev: GENESIS_PREV,
  time: 0,
  kind: 'enroll',
  node: 'n',
  outcome: 'affirming',
  body: {},
};

/** A raw map shaped like an entry, for decoder rejection tests. */
function rawEntry(overrides: Record<string, unknown> = {}, drop: string[] = []): Uint8Array {
  const m: Record<string, unknown> = { v: 1, seq: 1, prev: new Uint8Array(32), time: 0, kind: 'enroll', node: 'n', outcome: 'affirming', body: {}, ...overrides };
  for (const k of drop) delete m[k];
  return encodeCanonical(m);
}

function expectParse(bytes: Uint8Array, code: ErrorCode, msg: RegExp): void {
  let thrown: unknown;
  try {
    decodeLedgerEntry(bytes);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ParseError);
  expect((thrown as ParseError).code).toBe(code);
  expect((thrown as ParseError).message).toMatch(msg);
}

describe('ledger entry v1', () => {
  it('encodes the documented layout byte for byte (keys in canonical order)', () => {
    const { entry, hash } = buildLedgerEntry(base);
    const expected =
      'a8' +
      '6176' + '01' + //                                 v: 1
      '63736571' + '01' + //                             seq: 1
      '64626f6479' + 'a0' + //                           body: {}
      '646b696e64' + '66656e726f6c6c' + //               kind: "enroll"
      '646e6f6465' + '616e' + //                         node: "n"
      '6470726576' + '5820' + '00'.repeat(32) + //       prev: 32 zero bytes
      '6474696d65' + '00' + //                           time: 0
      '676f7574636f6d65' + '6961666669726d696e67'; //    outcome: "affirming"
    expect(hex(entry)).toBe(expected);
    expect(hex(hash)).toBe(createHash('sha256').update(entry).digest('hex'));
    expect(hex(ledgerEntryHash(entry))).toBe(hex(hash));
  });

  it('round-trips every field', () => {
    const prev = new Uint8Array(32).fill(7);
    const body = { evidence: new Uint8Array([1, 2]), reasons: [{ code: 'TPM_QUOTE_PCR_DIGEST_MISMATCH', pcr: 7 }], clock: 2n ** 60n };
    const { entry } = buildLedgerEntry({ seq: 42, prev, time: 1_700_000_000_123, kind: 'appraise', node: 'gpu-7', outcome: 'refused', body });
    expect(decodeLedgerEntry(entry)).toEqual({ v: 1, seq: 42, prev, time: 1_700_000_000_123, kind: 'appraise', node: 'gpu-7', outcome: 'refused', body });
    const noNode = buildLedgerEntry({ ...base, kind: 'heartbeat', node: null }).entry;
    expect(decodeLedgerEntry(noNode).node).toBeNull();
  });

  it('the same fields always give the same bytes, whatever the key order of the body', () => {
    const a = buildLedgerEntry({ ...base, body: { z: 1, a: { y: 2, b: 3 } } });
    const b = buildLedgerEntry({ ...base, body: { a: { b: 3, y: 2 }, z: 1 } });
    expect(hex(a.entry)).toBe(hex(b.entry));
  });

  it.each([
    [{ seq: 0 }, /seq: must be a positive safe integer/],
    [{ seq: 1.5 }, /seq/],
    [{ prev: new Uint8Array(31) }, /prev: must be 32 bytes/],
    [{ time: -1 }, /time/],
    [{ kind: 'launch' }, /unknown decision kind "launch"/],
    [{ node: '' }, /node/],
    [{ outcome: 'Affirming' }, /outcome/],
    [{ body: [] }, /body: must be a plain object/],
    [{ body: { x: 0.5 } }, /\$\.body\.x: 0\.5 is not an integer/],
  ])('buildLedgerEntry rejects %o', (override, msg) => {
    const fields = { ...base, ...override } as unknown as LedgerEntryFields;
    expect(() => buildLedgerEntry(fields)).toThrow(MisuseError);
    expect(() => buildLedgerEntry(fields)).toThrow(msg);
  });

  it.each([
    ['an unknown field', rawEntry({ extra: 1 }), /ledger entry\.extra: unknown field/],
    ['a missing field', rawEntry({}, ['outcome']), /ledger entry\.outcome: missing field/],
    ['another version', rawEntry({ v: 2 }), /ledger entry\.v: unsupported version/],
    ['seq 0', rawEntry({ seq: 0 }), /ledger entry\.seq/],
    ['a short prev', rawEntry({ prev: new Uint8Array(31) }), /ledger entry\.prev: must be a 32-byte string/],
    ['prev as text', rawEntry({ prev: 'x' }), /ledger entry\.prev/],
    ['a negative time', rawEntry({ time: -5 }), /ledger entry\.time/],
    ['a bad kind token', rawEntry({ kind: 'Enroll' }), /ledger entry\.kind/],
    ['an empty node', rawEntry({ node: '' }), /ledger entry\.node/],
    ['a body array', rawEntry({ body: [] }), /ledger entry\.body: must be a map with text keys/],
    ['a body with integer keys', rawEntry({ body: new Map([[1, 1]]) }), /ledger entry\.body/],
    ['an array', encodeCanonical([1]), /is not a map/],
  ])('decodeLedgerEntry rejects %s with LEDGER_ENTRY_MALFORMED', (_name, bytes, msg) => {
    expectParse(bytes, 'LEDGER_ENTRY_MALFORMED', msg);
  });

  it('rejects a non-canonical encoding of a valid entry (one entry, one hash)', () => {
    const { entry } = buildLedgerEntry(base);
    // Re-encode time 0 as a non-shortest 1-byte argument: same map, different bytes.
    const i = hex(entry).indexOf('6474696d6500') / 2 + 5;
    const longer = new Uint8Array([...entry.subarray(0, i), 0x18, 0x00, ...entry.subarray(i + 1)]);
    expectParse(longer, 'PARSE_BAD_ENCODING', /ledger entry\.time at offset \d+: non-shortest/);
    expectParse(new Uint8Array([...entry, 0]), 'PARSE_TRAILING_BYTES', /after the end/);
  });

  it('accepts an unknown but well-formed kind, so older offline verifiers keep checking newer ledgers', () => {
    expect(decodeLedgerEntry(rawEntry({ kind: 'future-kind' })).kind).toBe('future-kind');
  });
});
