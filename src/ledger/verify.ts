/**
 * Whole-ledger verification, offline: the hash chain (./chain.ts), the RFC 9162 Merkle tree over
 * every entry (./merkle.ts), and every signed checkpoint (./checkpoint.ts) against the tree
 * recomputed from the entries' bytes.
 *
 * What each kind of change shows up as:
 *
 * | change                                          | code                                     |
 * | ----------------------------------------------- | ---------------------------------------- |
 * | a byte of an entry altered                      | LEDGER_HASH_MISMATCH (and the next link) |
 * | an entry and its recorded hash rewritten        | LEDGER_LINK_BROKEN at the next entry     |
 * | an entry deleted, repeated or moved             | LEDGER_SEQUENCE_GAP, LEDGER_LINK_BROKEN  |
 * | the whole chain re-hashed after a change (fork) | LEDGER_CHECKPOINT_MISMATCH               |
 * | the last entries deleted                        | LEDGER_TRUNCATED                         |
 * | a checkpoint forged or altered                  | LEDGER_CHECKPOINT_SIGNATURE_INVALID / _KEY_UNKNOWN / _MALFORMED |
 *
 * Checkpoint keys: with `pinnedKeys` (a JWKS the relying party obtained itself) only those keys
 * count. Without, the signing keys the ledger itself records (kind `trust-anchor`, body
 * `{anchor: "signing-key", kid, jwk}`) count for checkpoints whose tree covers that record — the
 * ledger is then checked for consistency with itself, which is what a verifier that was never
 * given the JWKS can do; the result says which source was used.
 */
import { toHex } from '../lib/bytes.js';
import { ChainVerifier, type ChainProblem, type ChainRow } from './chain.js';
import { CheckpointKeys, decodeCheckpoint, type CheckpointKey } from './checkpoint.js';
import { MerkleTree, merkleLeafHash } from './merkle.js';
import type { LedgerEntry } from './entry.js';

/** The `anchor` of a trust-anchor entry that introduces a checkpoint/artifact signing key. */
export const SIGNING_KEY_ANCHOR = 'signing-key';

/** Codes of checkpoint problems. */
export type CheckpointProblemCode =
  | 'LEDGER_CHECKPOINT_MALFORMED'
  | 'LEDGER_CHECKPOINT_KEY_UNKNOWN'
  | 'LEDGER_CHECKPOINT_SIGNATURE_INVALID'
  | 'LEDGER_CHECKPOINT_MISMATCH'
  | 'LEDGER_TRUNCATED';

/** A problem found in a checkpoint. */
export interface CheckpointProblem {
  readonly code: CheckpointProblemCode;
  readonly message: string;
  readonly treeSize?: number;
  readonly kid?: string;
  readonly expected?: string;
  readonly actual?: string;
}

/** What {@link verifyLedger} checks. */
export interface LedgerVerifyInput {
  /** Every row, in stored order (never sorted here: the order is checked). */
  readonly rows: AsyncIterable<ChainRow> | Iterable<ChainRow>;
  /** The ledger's own checkpoints (compact JWS). */
  readonly checkpoints: Iterable<string>;
  /** Checkpoints a relying party kept on its own (witnesses): checked the same way. */
  readonly witnesses?: Iterable<string>;
  /** Trust only these keys for checkpoints. */
  readonly pinnedKeys?: readonly CheckpointKey[];
  /** Most problems kept per kind. Default 1000. */
  readonly maxProblems?: number;
}

/** The result of {@link verifyLedger}. */
export interface LedgerVerification {
  readonly ok: boolean;
  readonly entries: number;
  /** The last entry's seq and recomputed hash (hex). */
  readonly head: { readonly seq: number; readonly hash: string };
  /** The Merkle root of all entries (hex), the tree a checkpoint of the whole ledger would sign. */
  readonly root: string;
  readonly chain: readonly ChainProblem[];
  readonly checkpoints: {
    readonly total: number;
    readonly verified: number;
    readonly witnesses: number;
    /** The largest verified tree head. */
    readonly latest: { readonly treeSize: number; readonly rootHash: string; readonly time: number } | null;
    readonly problems: readonly CheckpointProblem[];
  };
  /** Entries after the largest verified checkpoint: chained, but not yet under a signed root. */
  readonly unanchored: number;
  readonly keys: { readonly source: 'pinned' | 'ledger'; readonly kids: readonly string[] };
  /** The Merkle tree of the entries (for proofs), as built. */
  readonly tree: MerkleTree;
}

function signingKeyOf(e: LedgerEntry): CheckpointKey | null {
  if (e.kind !== 'trust-anchor' || e.body['anchor'] !== SIGNING_KEY_ANCHOR) return null;
  const jwk = e.body['jwk'];
  const kid = e.body['kid'];
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk) || jwk instanceof Uint8Array || jwk instanceof Map || typeof kid !== 'string') return null;
  const j = jwk as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof j[k] === 'string' ? (j[k] as string) : undefined);
  const kty = str('kty');
  if (kty === undefined) return null;
  const crv = str('crv');
  const x = str('x');
  const y = str('y');
  return { kid, kty, ...(crv !== undefined ? { crv } : {}), ...(x !== undefined ? { x } : {}), ...(y !== undefined ? { y } : {}) };
}

/** Checks a ledger; every problem is a value in the result. */
export async function verifyLedger(input: LedgerVerifyInput): Promise<LedgerVerification> {
  const max = input.maxProblems ?? 1000;
  const chain = new ChainVerifier({ maxProblems: max });
  const tree = new MerkleTree();
  /** Signing keys recorded in the ledger: kid → seq of the entry that introduced it. */
  const recorded = new Map<string, { seq: number; jwk: CheckpointKey }>();
  for await (const row of input.rows) {
    const e = chain.push(row);
    tree.append(merkleLeafHash(row.entry));
    if (e !== null) {
      const k = signingKeyOf(e);
      if (k !== null && !recorded.has(k.kid)) recorded.set(k.kid, { seq: row.seq, jwk: k });
    }
  }
  const c = chain.result();
  const entries = tree.size;

  const pinned = input.pinnedKeys !== undefined ? new CheckpointKeys() : null;
  if (pinned !== null) for (const k of input.pinnedKeys ?? []) pinned.add(k);
  const fromLedger = new CheckpointKeys();
  for (const { jwk } of recorded.values()) fromLedger.add(jwk);

  const problems: CheckpointProblem[] = [];
  const report = (p: CheckpointProblem): void => {
    if (problems.length < max) problems.push(p);
  };
  let verified = 0;
  let total = 0;
  let witnesses = 0;
  let latest: LedgerVerification['checkpoints']['latest'] = null;
  const check = (jws: string, witness: boolean): void => {
    total++;
    if (witness) witnesses++;
    const v = (pinned ?? fromLedger).verify(jws);
    if (!v.ok) {
      let treeSize: number | undefined;
      try {
        treeSize = decodeCheckpoint(jws).head.treeSize;
      } catch {
        treeSize = undefined;
      }
      report({ code: v.code, message: `${witness ? 'witness ' : ''}${v.message}`, ...(treeSize !== undefined ? { treeSize } : {}), ...(v.kid !== undefined ? { kid: v.kid } : {}) });
      return;
    }
    const { head, kid } = v.checkpoint;
    if (pinned === null) {
      // A key the ledger records only counts for trees that include its record.
      const intro = recorded.get(kid);
      if (intro === undefined || intro.seq > head.treeSize) {
        report({ code: 'LEDGER_CHECKPOINT_KEY_UNKNOWN', message: `checkpoint of tree size ${head.treeSize} is signed by key ${kid}, which the ledger records only at entry ${intro?.seq ?? '(never)'}`, treeSize: head.treeSize, kid });
        return;
      }
    }
    if (head.treeSize > entries) {
      report({
        code: 'LEDGER_TRUNCATED',
        message: `a ${witness ? 'witness ' : ''}checkpoint signed at ${new Date(head.time).toISOString()} covers ${head.treeSize} entries, but the ledger holds ${entries}: entries ${entries + 1}..${head.treeSize} were deleted`,
        treeSize: head.treeSize,
        expected: String(head.treeSize),
        actual: String(entries),
      });
      return;
    }
    const root = tree.root(head.treeSize);
    if (toHex(root) !== toHex(head.rootHash)) {
      report({
        code: 'LEDGER_CHECKPOINT_MISMATCH',
        message: `the entries 1..${head.treeSize} do not hash to the root the ${witness ? 'witness ' : ''}checkpoint signed: they were rewritten, reordered or forked after it`,
        treeSize: head.treeSize,
        expected: toHex(head.rootHash),
        actual: toHex(root),
      });
      return;
    }
    verified++;
    if (latest === null || head.treeSize > latest.treeSize) latest = { treeSize: head.treeSize, rootHash: toHex(head.rootHash), time: head.time };
  };
  for (const jws of input.checkpoints) check(jws, false);
  for (const jws of input.witnesses ?? []) check(jws, true);

  const latestSize = (latest as { treeSize: number } | null)?.treeSize ?? 0;
  return {
    ok: c.ok && problems.length === 0,
    entries,
    head: { seq: c.head.seq, hash: toHex(c.head.hash) },
    root: toHex(tree.root()),
    chain: c.problems,
    checkpoints: { total, verified, witnesses, latest, problems },
    unanchored: Math.max(0, entries - latestSize),
    keys: { source: pinned !== null ? 'pinned' : 'ledger', kids: pinned !== null ? (input.pinnedKeys ?? []).map((k) => k.kid) : [...recorded.keys()] },
    tree,
  };
}
