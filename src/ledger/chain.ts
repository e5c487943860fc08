/**
 * Hash-chain verification of the lineage ledger.
 *
 * Checks, for every row in the order given (the order is itself checked, never sorted):
 *
 * 1. `SHA-256(entry)` equals the recorded hash            → LEDGER_HASH_MISMATCH (entry altered)
 * 2. the row's seq is one more than the previous row's    → LEDGER_SEQUENCE_GAP (deleted,
 *    (or than the anchor's), and the entry's own `seq`       repeated or reordered rows)
 *    field equals the row's seq
 * 3. the entry decodes as a version 1 entry               → LEDGER_ENTRY_MALFORMED
 * 4. the entry's `prev` equals SHA-256 of the previous    → LEDGER_LINK_BROKEN (a row removed,
 *    row's entry bytes (or the anchor hash)                   replaced or forked)
 *
 * The link in (4) is checked against the hash *recomputed* from the previous entry's bytes, not
 * the recorded one, so an attacker who rewrites an entry and its recorded hash together is still
 * caught at the next entry. What a chain alone cannot show is a truncated tail (the last rows
 * deleted): that needs a signed checkpoint of the tree size, which the Merkle tree layer adds.
 *
 * Every problem is returned as a value; nothing here throws for a broken chain.
 */
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, isVouchError } from '../lib/errors.js';
import { GENESIS_PREV, LEDGER_HASH_LENGTH, decodeLedgerEntry, ledgerEntryHash, type LedgerEntry } from './entry.js';

/** One stored row of the ledger, as a store or an export file gives it. */
export interface ChainRow {
  readonly seq: number;
  /** The entry's exact bytes (canonical CBOR). */
  readonly entry: Uint8Array;
  /** The hash recorded next to the entry. */
  readonly hash: Uint8Array;
}

/** The entry just before the first row checked: seq 0 and 32 zero bytes for a whole ledger. */
export interface ChainAnchor {
  readonly seq: number;
  readonly hash: Uint8Array;
}

/** Codes a chain problem carries (all in the error registry). */
export type ChainProblemCode = 'LEDGER_HASH_MISMATCH' | 'LEDGER_LINK_BROKEN' | 'LEDGER_SEQUENCE_GAP' | 'LEDGER_ENTRY_MALFORMED';

/** One thing wrong with the chain, at one row. */
export interface ChainProblem {
  readonly code: ChainProblemCode;
  /** The row's seq (as stored) where the problem shows. */
  readonly seq: number;
  /** Position of the row in the input (0-based), since a broken chain may repeat seq values. */
  readonly index: number;
  readonly message: string;
  /** The entry field concerned ("prev", "seq"), when one is. */
  readonly field?: string;
  /** What was required, as text (hex for hashes). */
  readonly expected?: string;
  /** What was found, as text (hex for hashes). */
  readonly actual?: string;
}

/** The outcome of a chain check. */
export interface ChainVerification {
  /** True when there is no problem at all. */
  readonly ok: boolean;
  /** Rows checked. */
  readonly count: number;
  /** The last row's seq and the hash recomputed from its bytes; the anchor when no rows. */
  readonly head: ChainAnchor;
  readonly problems: readonly ChainProblem[];
  /** True when more problems were found than `maxProblems` kept. */
  readonly truncated: boolean;
}

/** Options of {@link ChainVerifier} and {@link verifyChain}. */
export interface ChainOptions {
  /** Where the rows start; default the genesis anchor (seq 0, zero hash). */
  readonly anchor?: ChainAnchor;
  /** Most problems kept in the result (the count of rows checked is unaffected). Default: all. */
  readonly maxProblems?: number;
}

/**
 * Incremental chain check, for ledgers too large to hold in memory: feed rows in stored order
 * with {@link ChainVerifier.push}, then read {@link ChainVerifier.result}.
 */
export class ChainVerifier {
  readonly #anchor: ChainAnchor;
  readonly #maxProblems: number;
  readonly #problems: ChainProblem[] = [];
  #truncated = false;
  #prevSeq: number;
  #prevHash: Uint8Array;
  #count = 0;

  constructor(options: ChainOptions = {}) {
    const anchor = options.anchor ?? { seq: 0, hash: GENESIS_PREV };
    if (!Number.isSafeInteger(anchor.seq) || anchor.seq < 0 || anchor.hash.length !== LEDGER_HASH_LENGTH) {
      throw new MisuseError('MISUSE_ARGUMENT', `chain anchor must be a seq >= 0 and a ${LEDGER_HASH_LENGTH}-byte hash`);
    }
    this.#anchor = { seq: anchor.seq, hash: anchor.hash.slice() };
    this.#maxProblems = options.maxProblems ?? Number.POSITIVE_INFINITY;
    this.#prevSeq = anchor.seq;
    this.#prevHash = this.#anchor.hash;
  }

  #report(p: ChainProblem): void {
    if (this.#problems.length < this.#maxProblems) this.#problems.push(p);
    else this.#truncated = true;
  }

  /**
   * Checks the next row against the rows before it. Returns the decoded entry, or null when it
   * does not decode (the problem is recorded), so a caller reading entries needs no second decode.
   */
  push(row: ChainRow): LedgerEntry | null {
    const index = this.#count++;
    const seq = row.seq;
    const computed = ledgerEntryHash(row.entry);

    if (row.hash.length !== LEDGER_HASH_LENGTH || !bytesEqual(computed, row.hash)) {
      this.#report({
        code: 'LEDGER_HASH_MISMATCH',
        seq,
        index,
        message: `entry ${seq}: SHA-256 of the entry bytes is not the recorded hash (the entry or its hash was altered)`,
        expected: toHex(row.hash),
        actual: toHex(computed),
      });
    }

    const expectedSeq = this.#prevSeq + 1;
    if (seq !== expectedSeq) {
      this.#report({
        code: 'LEDGER_SEQUENCE_GAP',
        seq,
        index,
        message: seq > expectedSeq
          ? `entries ${expectedSeq}..${seq - 1} are missing before entry ${seq}`
          : `entry ${seq} follows entry ${this.#prevSeq}: repeated or out of order`,
        expected: String(expectedSeq),
        actual: String(seq),
      });
    }

    let decoded: LedgerEntry | null = null;
    try {
      const e = decodeLedgerEntry(row.entry);
      decoded = e;
      if (e.seq !== seq) {
        this.#report({
          code: 'LEDGER_SEQUENCE_GAP',
          seq,
          index,
          field: 'seq',
          message: `the row at seq ${seq} holds the entry for seq ${e.seq}`,
          expected: String(seq),
          actual: String(e.seq),
        });
      }
      if (!bytesEqual(e.prev, this.#prevHash)) {
        this.#report({
          code: 'LEDGER_LINK_BROKEN',
          seq,
          index,
          field: 'prev',
          message: `entry ${seq}: prev is not the hash of the entry before it (seq ${this.#prevSeq})`,
          expected: toHex(this.#prevHash),
          actual: toHex(e.prev),
        });
      }
    } catch (err) {
      // Only a parse failure is a finding about the entry; anything else is a defect and propagates.
      if (!isVouchError(err) || err.category !== 'malformed') throw err;
      this.#report({
        code: 'LEDGER_ENTRY_MALFORMED',
        seq,
        index,
        message: `entry ${seq} does not decode: ${err.message} (${err.code})`,
        ...(err.field !== undefined ? { field: err.field } : {}),
      });
    }

    this.#prevSeq = seq;
    this.#prevHash = computed;
    return decoded;
  }

  /** The result so far. */
  result(): ChainVerification {
    return {
      ok: this.#problems.length === 0 && !this.#truncated,
      count: this.#count,
      head: this.#count === 0 ? { seq: this.#anchor.seq, hash: this.#anchor.hash.slice() } : { seq: this.#prevSeq, hash: this.#prevHash.slice() },
      problems: [...this.#problems],
      truncated: this.#truncated,
    };
  }
}

/**
 * Checks a run of ledger rows (a whole ledger by default, or a segment after `options.anchor`)
 * and lists every problem found. See the module comment for the checks and their codes.
 */
export function verifyChain(rows: Iterable<ChainRow>, options: ChainOptions = {}): ChainVerification {
  const v = new ChainVerifier(options);
  for (const row of rows) v.push(row);
  return v.result();
}
