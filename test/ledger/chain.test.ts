import { describe, expect, it } from 'vitest';
import { MisuseError } from '../../src/lib/errors.js';
import {
  ChainVerifier,
  GENESIS_PREV,
  buildLedgerEntry,
  ledgerEntryHash,
  verifyChain,
  type ChainProblem,
  type ChainRow,
} from '../../src/ledger/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A valid chain of `n` rows built with the real entry builder. */
function makeChain(n: number): ChainRow[] {
  const rows: ChainRow[] = [];
  let prev = GENESIS_PREV;
  for (let seq = 1; seq <= n; seq++) {
    const { entry, hash } = buildLedgerEntry({
      seq,
      prev,
      time: 1_700_000_000_000 + seq,
      kind: seq % 2 === 0 ? 'appraise' : 'authorize',
      node: `node-${seq % 3}`,
      outcome: seq % 5 === 0 ? 'refused' : 'affirming',
      body: { n: seq },
    });
    rows.push({ seq, entry, hash });
    prev = hash;
  }
  return rows;
}

const summary = (ps: readonly ChainProblem[]): string[] => ps.map((p) => `${p.code}@${p.seq}`);

describe('verifyChain', () => {
  it('accepts a valid chain of 100 entries and reports its head', () => {
    const rows = makeChain(100);
    const r = verifyChain(rows);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.count).toBe(100);
    expect(r.head.seq).toBe(100);
    expect(hex(r.head.hash)).toBe(hex((rows[99] as ChainRow).hash));
  });

  it('accepts an empty ledger, whose head is the genesis anchor', () => {
    const r = verifyChain([]);
    expect(r.ok).toBe(true);
    expect(r.head).toEqual({ seq: 0, hash: GENESIS_PREV });
  });

  it('names a tampered entry (LEDGER_HASH_MISMATCH) and the link it breaks', () => {
    const rows = makeChain(10);
    const t = rows[4] as ChainRow;
    const entry = t.entry.slice();
    entry[entry.length - 1] = (entry[entry.length - 1] as number) ^ 0x01; // last byte of the outcome
    rows[4] = { ...t, entry };
    const r = verifyChain(rows);
    expect(r.ok).toBe(false);
    expect(summary(r.problems)).toEqual(['LEDGER_HASH_MISMATCH@5', 'LEDGER_LINK_BROKEN@6']);
    const p = r.problems[0] as ChainProblem;
    expect(p.expected).toBe(hex(t.hash));
    expect(p.actual).toBe(hex(ledgerEntryHash(entry)));
  });

  it('catches an entry rewritten together with its recorded hash at the next link', () => {
    const rows = makeChain(10);
    const forged = buildLedgerEntry({ seq: 5, prev: (rows[3] as ChainRow).hash, time: 1, kind: 'authorize', node: 'evil', outcome: 'affirming', body: {} });
    rows[4] = { seq: 5, ...forged };
    const r = verifyChain(rows);
    expect(summary(r.problems)).toEqual(['LEDGER_LINK_BROKEN@6']);
    expect(r.problems[0]?.field).toBe('prev');
  });

  it('names a deleted row as a sequence gap and a broken link', () => {
    const rows = makeChain(10);
    rows.splice(6, 1); // seq 7
    const r = verifyChain(rows);
    expect(summary(r.problems)).toEqual(['LEDGER_SEQUENCE_GAP@8', 'LEDGER_LINK_BROKEN@8']);
    expect(r.problems[0]?.message).toMatch(/entries 7\.\.7 are missing before entry 8/);
  });

  it('names reordered and repeated rows', () => {
    const rows = makeChain(6);
    const swapped = [rows[0], rows[2], rows[1], rows[3], rows[4], rows[5]] as ChainRow[];
    const r = verifyChain(swapped);
    expect(r.ok).toBe(false);
    expect(summary(r.problems)).toEqual([
      'LEDGER_SEQUENCE_GAP@3',
      'LEDGER_LINK_BROKEN@3',
      'LEDGER_SEQUENCE_GAP@2',
      'LEDGER_LINK_BROKEN@2',
      'LEDGER_SEQUENCE_GAP@4',
      'LEDGER_LINK_BROKEN@4',
    ]);
    const repeated = verifyChain([rows[0], rows[1], rows[1], rows[2]] as ChainRow[]);
    // The repeated copy is the finding; the row after it links to the same hash again.
    expect(summary(repeated.problems)).toEqual(['LEDGER_SEQUENCE_GAP@2', 'LEDGER_LINK_BROKEN@2']);
    expect(repeated.problems[0]?.message).toMatch(/repeated or out of order/);
    expect(repeated.problems[0]?.index).toBe(2);
  });

  it('names a row whose seq column disagrees with the entry it holds', () => {
    const rows = makeChain(3);
    rows[2] = { ...(rows[2] as ChainRow), seq: 4 };
    const r = verifyChain(rows);
    expect(summary(r.problems)).toEqual(['LEDGER_SEQUENCE_GAP@4', 'LEDGER_SEQUENCE_GAP@4']);
    expect(r.problems[1]?.message).toMatch(/row at seq 4 holds the entry for seq 3/);
  });

  it('names an entry that does not decode, and still checks the links around it', () => {
    const rows = makeChain(4);
    const junk = new Uint8Array([0xff, 0x00]);
    rows[1] = { seq: 2, entry: junk, hash: ledgerEntryHash(junk) };
    const r = verifyChain(rows);
    expect(summary(r.problems)).toEqual(['LEDGER_ENTRY_MALFORMED@2', 'LEDGER_LINK_BROKEN@3']);
    expect(r.problems[0]?.message).toMatch(/PARSE_BAD_ENCODING/);
  });

  it('verifies a segment from an anchor, and rejects a wrong anchor', () => {
    const rows = makeChain(20);
    const anchor = { seq: 10, hash: (rows[9] as ChainRow).hash };
    expect(verifyChain(rows.slice(10), { anchor }).ok).toBe(true);
    const wrong = verifyChain(rows.slice(10), { anchor: { seq: 10, hash: (rows[8] as ChainRow).hash } });
    expect(summary(wrong.problems)).toEqual(['LEDGER_LINK_BROKEN@11']);
    const gap = verifyChain(rows.slice(11), { anchor });
    expect(summary(gap.problems)).toEqual(['LEDGER_SEQUENCE_GAP@12', 'LEDGER_LINK_BROKEN@12']);
    expect(() => new ChainVerifier({ anchor: { seq: 1, hash: new Uint8Array(3) } })).toThrow(MisuseError);
  });

  it('caps the problems kept, and says so', () => {
    const rows = makeChain(10).map((r) => ({ ...r, hash: new Uint8Array(32) }));
    const r = verifyChain(rows, { maxProblems: 3 });
    expect(r.problems).toHaveLength(3);
    expect(r.truncated).toBe(true);
    expect(r.ok).toBe(false);
    expect(r.count).toBe(10);
  });

  it('incremental verification gives the same result as verifyChain', () => {
    const rows = makeChain(30);
    rows.splice(12, 1);
    const v = new ChainVerifier();
    for (const row of rows) v.push(row);
    expect(v.result()).toEqual(verifyChain(rows));
  });
});
