/**
 * The RFC 9162 (Certificate Transparency version 2.0) Merkle tree over the lineage ledger.
 *
 * The hash chain of src/ledger/chain.ts shows that no entry was altered, removed or reordered,
 * but not that the tail was kept: a ledger cut after entry 900 of 1,000 is still a valid chain.
 * A Merkle tree over the same entries adds what a chain cannot give cheaply: a signed tree head
 * (size, root) fixes the whole ledger up to that size, an inclusion proof shows one entry is in
 * it with O(log n) hashes, and a consistency proof shows a later head extends an earlier one
 * (append-only, nothing rewritten or dropped) with O(log n) hashes as well.
 *
 * Definitions (RFC 9162 §2.1.1), with HASH = SHA-256 and d(i) the exact bytes of ledger entry i:
 *
 * ```
 * MTH({})    = HASH()                                   the empty tree: SHA-256 of no bytes
 * MTH({d0})  = HASH(0x00 || d0)                         leaf hash
 * MTH(D[n])  = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])) k = largest power of two < n, n > 1
 * ```
 *
 * The 0x00 / 0x01 prefixes keep leaf and interior hashes in separate domains, so no interior
 * node can be passed off as a leaf (a second-preimage attack on the tree, RFC 9162 §2.1.1).
 *
 * This module has two layers:
 *
 * - reference functions over an array of leaf hashes ({@link merkleRoot},
 *   {@link merkleInclusionProof}, {@link merkleConsistencyProof}), written as the recursive
 *   definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 so they can be read against the RFC;
 *   they cost O(n) hashes per call and serve tests and small trees;
 * - {@link MerkleTree}, for ledgers of millions of entries: it keeps the hash of every complete,
 *   aligned subtree, so a root or a proof for any prefix size costs O(log n) hashes.
 *
 * Verification ({@link verifyMerkleInclusion}, {@link verifyMerkleConsistency}) is the exact
 * algorithm of RFC 9162 §2.1.3.2 and §2.1.4.2. Proofs come from an untrusted log, so a proof that
 * does not verify is a value (`ok: false`, code LEDGER_PROOF_INVALID), never an exception.
 *
 * Pure: SHA-256 from node:crypto, no I/O, no clock, no randomness.
 */
import { hash } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';

/** Length of every hash in the tree (SHA-256). */
export const MERKLE_HASH_LENGTH = 32;

/**
 * Most leaves a {@link MerkleTree} holds: 2^32 - 1. Positions then fit an unsigned 32-bit
 * integer, which keeps the index arithmetic on the hot path exact (`>>>`, `&`); such a tree would
 * already need 256 GiB of hashes, far beyond any one process.
 */
export const MERKLE_TREE_MAX_LEAVES = 2 ** 32 - 1;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

function sha256(data: Uint8Array): Uint8Array {
  // node:crypto's one-shot hash() costs about 0.6 µs for a node against 1 µs for createHash():
  // the tree hashes about n interior nodes while building, so the one-shot form is worth it.
  return hash('sha256', data, 'buffer');
}

// Kept private so that a caller who mutates the exported copy cannot change what verifies.
const EMPTY_ROOT = new Uint8Array(sha256(new Uint8Array(0)));

/** MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1): the root of a tree of size 0. */
export const MERKLE_EMPTY_ROOT: Uint8Array = EMPTY_ROOT.slice();

/**
 * The leaf hash of one ledger entry: `SHA-256(0x00 || entry bytes)` (RFC 9162 §2.1.1).
 * Hash the exact stored bytes of the entry, never a re-encoding.
 *
 * @throws MisuseError MISUSE_ARGUMENT when `entry` is not a Uint8Array
 */
export function merkleLeafHash(entry: Uint8Array): Uint8Array {
  if (!(entry instanceof Uint8Array)) throw misuse('entry', 'must be a Uint8Array');
  const buf = new Uint8Array(1 + entry.length);
  buf[0] = LEAF_PREFIX;
  buf.set(entry, 1);
  return new Uint8Array(sha256(buf));
}

/**
 * An interior node: `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1).
 *
 * @throws MisuseError MISUSE_ARGUMENT when either hash is not 32 bytes
 */
export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  checkHash('left', left);
  checkHash('right', right);
  return nodeHash(left, right);
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(nodeHashWith(newScratch(), left, right));
}

/** A buffer for `0x01 || left || right`, the input of every interior node hash. */
function newScratch(): Uint8Array {
  const buf = new Uint8Array(1 + 2 * MERKLE_HASH_LENGTH);
  buf[0] = NODE_PREFIX;
  return buf;
}

/**
 * The node hash through a caller's scratch buffer, as node:crypto returns it (a fresh Buffer, no
 * copy): for hashes that stay inside a loop (verification, folds), where a copy per node would
 * cost a third of the time. Whatever leaves this module is copied into a plain Uint8Array.
 */
function nodeHashWith(scratch: Uint8Array, left: Uint8Array, right: Uint8Array): Uint8Array {
  scratch.set(left, 1);
  scratch.set(right, 1 + MERKLE_HASH_LENGTH);
  return sha256(scratch);
}

// ------------------------------------------------------------------------------------------------
// Argument checks (misuse: the caller's own data, not an untrusted proof)

function misuse(field: string, message: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', `merkle ${field}: ${message}`, { field: `merkle ${field}` });
}

function checkHash(field: string, h: unknown): asserts h is Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== MERKLE_HASH_LENGTH) throw misuse(field, `must be a ${MERKLE_HASH_LENGTH}-byte Uint8Array`);
}

function checkInt(field: string, v: unknown, min: number, max: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw misuse(field, `must be an integer in ${min}..${max}, got ${typeof v === 'number' ? String(v) : typeof v}`);
  }
}

function checkLeaves(leafHashes: readonly Uint8Array[]): void {
  if (!Array.isArray(leafHashes)) throw misuse('leafHashes', 'must be an array of 32-byte leaf hashes');
  for (let i = 0; i < leafHashes.length; i++) checkHash(`leafHashes[${i}]`, leafHashes[i]);
}

/** Largest power of two strictly below n, for 2 <= n <= 2^32 (the split point k of §2.1.1). */
function splitPoint(n: number): number {
  return 2 ** (31 - Math.clz32(n - 1));
}

// ------------------------------------------------------------------------------------------------
// Reference functions: the RFC 9162 definitions, recursion for recursion

/** MTH(D[start:end]) over leaf hashes, exactly as §2.1.1 defines it. */
function mth(leaves: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[start] as Uint8Array;
  const k = splitPoint(n);
  return nodeHash(mth(leaves, start, start + k), mth(leaves, start + k, end));
}

/**
 * MTH(D[n]), the root of the tree whose leaves have these hashes (RFC 9162 §2.1.1): the
 * reference definition, O(n) hashes. {@link MerkleTree.root} gives the same value in O(log n).
 *
 * @param leafHashes the leaf hashes ({@link merkleLeafHash}) in ledger order
 * @throws MisuseError MISUSE_ARGUMENT when an element is not a 32-byte hash
 */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  checkLeaves(leafHashes);
  return mth(leafHashes, 0, leafHashes.length).slice();
}

/**
 * PATH(m, D[n]), the inclusion proof of leaf `leafIndex` in the tree of all `leafHashes`
 * (RFC 9162 §2.1.3.1): the sibling hashes from the leaf up to the root. Reference definition.
 *
 * ```
 * PATH(0, {d0})  = {}
 * PATH(m, D[n])  = PATH(m, D[0:k]) : MTH(D[k:n])       for m < k
 * PATH(m, D[n])  = PATH(m - k, D[k:n]) : MTH(D[0:k])   for m >= k
 * ```
 *
 * @throws MisuseError MISUSE_ARGUMENT when `leafIndex` is not an integer in 0..n-1, or a leaf
 *   hash is not 32 bytes
 */
export function merkleInclusionProof(leafHashes: readonly Uint8Array[], leafIndex: number): Uint8Array[] {
  checkLeaves(leafHashes);
  checkInt('leafIndex', leafIndex, 0, leafHashes.length - 1);
  const path = (m: number, start: number, end: number): Uint8Array[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    return m < k
      ? [...path(m, start, start + k), mth(leafHashes, start + k, end)]
      : [...path(m - k, start + k, end), mth(leafHashes, start, start + k)];
  };
  return path(leafIndex, 0, leafHashes.length).map((h) => h.slice());
}

/**
 * PROOF(m, D[n]), the consistency proof from the tree of the first `m` leaves to the tree of
 * all n `leafHashes` (RFC 9162 §2.1.4.1). Reference definition.
 *
 * ```
 * PROOF(m, D[n])            = SUBPROOF(m, D[n], true)
 * SUBPROOF(m, D[m], true)   = {}
 * SUBPROOF(m, D[m], false)  = {MTH(D[m])}
 * SUBPROOF(m, D[n], b)      = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])           for m <= k
 * SUBPROOF(m, D[n], b)      = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])   for m > k
 * ```
 *
 * The RFC defines PROOF for 0 < m < n. For m = n the base case SUBPROOF(m, D[m], true) = {}
 * gives the empty proof: a tree head is consistent with itself. For m = 0 the proof is empty
 * too: the empty tree is a prefix of every tree, so there is nothing to prove, and
 * {@link verifyMerkleConsistency} then only checks that the first root is MTH({}).
 *
 * @throws MisuseError MISUSE_ARGUMENT when `m` is not an integer in 0..n, or a leaf hash is not
 *   32 bytes
 */
export function merkleConsistencyProof(leafHashes: readonly Uint8Array[], m: number): Uint8Array[] {
  checkLeaves(leafHashes);
  checkInt('m', m, 0, leafHashes.length);
  const n = leafHashes.length;
  if (m === 0 || m === n) return [];
  const subproof = (mm: number, start: number, end: number, b: boolean): Uint8Array[] => {
    const len = end - start;
    if (mm === len) return b ? [] : [mth(leafHashes, start, end)];
    const k = splitPoint(len);
    return mm <= k
      ? [...subproof(mm, start, start + k, b), mth(leafHashes, start + k, end)]
      : [...subproof(mm - k, start + k, end, false), mth(leafHashes, start, start + k)];
  };
  return subproof(m, 0, n, true).map((h) => h.slice());
}

// ------------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2, §2.1.4.2): inputs are untrusted, a failure is a value

/**
 * The outcome of verifying an inclusion or consistency proof. `ok: false` always carries the
 * registry code LEDGER_PROOF_INVALID and a message saying which check failed; a caller that must
 * end a request turns it into an error with `vouchError(result.code, result.message)`.
 */
export type MerkleProofVerification =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'LEDGER_PROOF_INVALID'; readonly message: string };

const VERIFIED: MerkleProofVerification = Object.freeze({ ok: true });

function invalid(message: string): MerkleProofVerification {
  return { ok: false, code: 'LEDGER_PROOF_INVALID', message };
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === MERKLE_HASH_LENGTH;
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

// Sizes in proofs reach 2^53 - 1 (a tree head is just a number), beyond the 32 bits of the
// bitwise operators, so LSB and right shift are written with arithmetic, which is exact there.
const lsb = (x: number): boolean => x % 2 === 1;
const shr = (x: number): number => Math.floor(x / 2);

function isPowerOfTwo(x: number): boolean {
  if (x < 1) return false;
  while (x % 2 === 0) x /= 2;
  return x === 1;
}

function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < MERKLE_HASH_LENGTH; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verifies that `leafHash` is the leaf at `leafIndex` of the tree of size `treeSize` whose root
 * is `rootHash`, with the algorithm of RFC 9162 §2.1.3.2 (variable names as in the RFC).
 *
 * The tree size is bound only through the shape of the path: verify against a tree head whose
 * size and root come together (a signed checkpoint), never a root with a size from elsewhere.
 *
 * @param leafIndex 0-based position of the leaf (`leaf_index`)
 * @param treeSize size of the tree the root belongs to (`tree_size`)
 * @param leafHash the leaf hash ({@link merkleLeafHash}) of the entry (`hash`)
 * @param proof the inclusion path, leaf end first (`inclusion_path`)
 * @param rootHash the root of the tree head (`root_hash`)
 * @returns `{ ok: true }` when the proof verifies, otherwise LEDGER_PROOF_INVALID and why; never
 *   throws for any input
 */
export function verifyMerkleInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  rootHash: Uint8Array,
): MerkleProofVerification {
  if (!isSize(leafIndex) || !isSize(treeSize)) return invalid('leaf index and tree size must be non-negative safe integers');
  // 1. If leaf_index is greater than or equal to tree_size, stop and fail.
  if (leafIndex >= treeSize) return invalid(`leaf index ${leafIndex} is not below the tree size ${treeSize}`);
  if (!isHash(leafHash)) return invalid(`the leaf hash is not ${MERKLE_HASH_LENGTH} bytes`);
  if (!isHash(rootHash)) return invalid(`the root hash is not ${MERKLE_HASH_LENGTH} bytes`);
  if (!Array.isArray(proof)) return invalid('the inclusion path is not an array');
  // 2. Set fn to leaf_index and sn to tree_size - 1.
  let fn = leafIndex;
  let sn = treeSize - 1;
  // 3. Set r to hash.
  let r = leafHash;
  const scratch = newScratch();
  // 4. For each value p in the inclusion_path array:
  for (let i = 0; i < proof.length; i++) {
    const p: unknown = proof[i];
    // a. If sn is 0, stop the iteration and fail (the path is longer than the tree is high).
    if (sn === 0) return invalid(`the inclusion path has ${proof.length} hashes, more than a tree of size ${treeSize} needs for leaf ${leafIndex}`);
    if (!isHash(p)) return invalid(`inclusion path element ${i} is not ${MERKLE_HASH_LENGTH} bytes`);
    // b. If LSB(fn) is set, or fn equals sn (the node is a right child, or the last node of
    //    its level, which is promoted without a sibling until it becomes a right child):
    if (lsb(fn) || fn === sn) {
      // i. Set r to HASH(0x01 || p || r).
      r = nodeHashWith(scratch, p, r);
      // ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = shr(fn);
          sn = shr(sn);
        }
      }
    } else {
      // Otherwise set r to HASH(0x01 || r || p).
      r = nodeHashWith(scratch, r, p);
    }
    // c. Finally, right-shift both fn and sn one time.
    fn = shr(fn);
    sn = shr(sn);
  }
  // 5. sn must be 0 (the path reached the root) and r must equal root_hash.
  if (sn !== 0) return invalid(`the inclusion path has ${proof.length} hashes, fewer than a tree of size ${treeSize} needs for leaf ${leafIndex}`);
  if (!equalHash(r, rootHash)) return invalid('the root computed from the inclusion path is not the root hash of the tree head');
  return VERIFIED;
}

/**
 * Verifies that the tree head (`secondSize`, `secondRoot`) extends the tree head (`firstSize`,
 * `firstRoot`): the first `firstSize` leaves are the same in both trees. The algorithm of
 * RFC 9162 §2.1.4.2 (variable names as in the RFC) for 0 < first < second; the cases the RFC
 * leaves to the definitions of §2.1.4.1:
 *
 * - first = second: the proof must be empty and the two roots equal (SUBPROOF(m, D[m], true) = {});
 * - first = 0: the proof must be empty and the first root must be MTH({}) (and the second root
 *   too when second = 0); every tree extends the empty tree, so there is nothing more to check;
 * - first > second: fails (a tree never shrinks).
 *
 * @param firstSize size of the earlier tree head (`first`)
 * @param secondSize size of the later tree head (`second`)
 * @param proof the consistency path (`consistency_path`)
 * @param firstRoot root of the earlier tree head (`first_hash`)
 * @param secondRoot root of the later tree head (`second_hash`)
 * @returns `{ ok: true }` when the proof verifies, otherwise LEDGER_PROOF_INVALID and why; never
 *   throws for any input
 */
export function verifyMerkleConsistency(
  firstSize: number,
  secondSize: number,
  proof: readonly Uint8Array[],
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
): MerkleProofVerification {
  if (!isSize(firstSize) || !isSize(secondSize)) return invalid('tree sizes must be non-negative safe integers');
  if (firstSize > secondSize) return invalid(`the first tree size ${firstSize} is larger than the second ${secondSize}: a tree never shrinks`);
  if (!isHash(firstRoot)) return invalid(`the first root hash is not ${MERKLE_HASH_LENGTH} bytes`);
  if (!isHash(secondRoot)) return invalid(`the second root hash is not ${MERKLE_HASH_LENGTH} bytes`);
  if (!Array.isArray(proof)) return invalid('the consistency path is not an array');
  if (firstSize === 0) {
    if (proof.length !== 0) return invalid('a consistency proof from the empty tree must be empty');
    if (!equalHash(firstRoot, EMPTY_ROOT)) return invalid('the first root is not MTH({}), the root of a tree of size 0');
    if (secondSize === 0 && !equalHash(secondRoot, EMPTY_ROOT)) return invalid('the second root is not MTH({}), the root of a tree of size 0');
    return VERIFIED;
  }
  if (firstSize === secondSize) {
    if (proof.length !== 0) return invalid('a consistency proof between trees of the same size must be empty');
    if (!equalHash(firstRoot, secondRoot)) return invalid(`the two tree heads of size ${firstSize} have different roots`);
    return VERIFIED;
  }
  const first = firstSize;
  const second = secondSize;
  // 1. If consistency_path is an empty array, stop and fail.
  if (proof.length === 0) return invalid(`the consistency path from size ${first} to ${second} is empty`);
  // 2. If first is an exact power of 2, prepend first_hash to the consistency_path array: the
  //    earlier tree is then a complete subtree of the later one, and its root is not repeated in
  //    the proof (SUBPROOF(m, D[m], true) = {}).
  const prepended = isPowerOfTwo(first);
  const path: readonly unknown[] = prepended ? [firstRoot, ...proof] : proof;
  for (let i = 0; i < path.length; i++) {
    if (!isHash(path[i])) return invalid(`consistency path element ${prepended ? i - 1 : i} is not ${MERKLE_HASH_LENGTH} bytes`);
  }
  // 3. Set fn to first - 1 and sn to second - 1.
  let fn = first - 1;
  let sn = second - 1;
  // 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
  while (lsb(fn)) {
    fn = shr(fn);
    sn = shr(sn);
  }
  // 5. Set both fr and sr to the first value in the consistency_path array.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  const scratch = newScratch();
  // 6. For each subsequent value c in the consistency_path array:
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    // a. If sn is 0, stop the iteration and fail.
    if (sn === 0) return invalid(`the consistency path from size ${first} to ${second} is longer than the trees need`);
    // b. If LSB(fn) is set, or if fn is equal to sn:
    if (lsb(fn) || fn === sn) {
      // i. Set fr to HASH(0x01 || c || fr) and sr to HASH(0x01 || c || sr).
      fr = nodeHashWith(scratch, c, fr);
      sr = nodeHashWith(scratch, c, sr);
      // ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = shr(fn);
          sn = shr(sn);
        }
      }
    } else {
      // Otherwise set sr to HASH(0x01 || sr || c): c covers leaves only the later tree has.
      sr = nodeHashWith(scratch, sr, c);
    }
    // c. Finally, right-shift both fn and sn one time.
    fn = shr(fn);
    sn = shr(sn);
  }
  // 7. fr must equal first_hash, sr must equal second_hash, and sn must be 0.
  if (sn !== 0) return invalid(`the consistency path from size ${first} to ${second} is shorter than the trees need`);
  if (!equalHash(fr, firstRoot)) return invalid(`the root computed for size ${first} is not the first root hash`);
  if (!equalHash(sr, secondRoot)) return invalid(`the root computed for size ${second} is not the second root hash`);
  return VERIFIED;
}

// ------------------------------------------------------------------------------------------------
// MerkleTree: every complete aligned subtree kept, in compact storage

// Each level is stored in chunks of 4096 hashes (128 KiB). Chunks never move once allocated, so
// growing the tree copies nothing and the memory is the hashes themselves plus at most one
// partly filled chunk per level: about 2 x 32 bytes per leaf (n leaf hashes, n/2 + n/4 + ...
// interior ones). The first chunk of a level starts small and doubles up to the full chunk size,
// so a small tree does not allocate 128 KiB per level.
const CHUNK_SHIFT = 12;
const CHUNK_HASHES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_HASHES - 1;
const FIRST_CHUNK_HASHES = 8;

/**
 * An append-only RFC 9162 Merkle tree over leaf hashes, for ledgers of millions of entries.
 *
 * It stores, per level k, the hash of every complete subtree of 2^k leaves aligned at a multiple
 * of 2^k (level 0 = the leaf hashes). Every node of the RFC 9162 tree of any prefix size s is
 * either such a subtree or lies on the right edge of the tree of size s, where it is the fold of
 * at most log2(s) stored subtrees. So after building, a root, an inclusion proof or a consistency
 * proof for any size costs O(log n) hashes, and an append costs one hash amortized (a leaf
 * completes a subtree at level k once every 2^k appends).
 *
 * Proofs are the same lists, byte for byte, as {@link merkleInclusionProof} and
 * {@link merkleConsistencyProof} on the same leaves, and verify with
 * {@link verifyMerkleInclusion} and {@link verifyMerkleConsistency}. Returned hashes are copies:
 * nothing handed out aliases the tree's storage.
 */
export class MerkleTree {
  /** levels[k][c]: chunk c of level k, the hashes of aligned complete 2^k-leaf subtrees. */
  readonly #levels: Uint8Array[][] = [];
  #size = 0;
  /** 0x01 || left || right, reused for every interior node this tree hashes. */
  readonly #scratch = newScratch();

  /**
   * A tree over leaf hashes given as one flat array of 32-byte hashes, in ledger order.
   *
   * @throws MisuseError MISUSE_ARGUMENT when the length is not a multiple of 32 or exceeds
   *   {@link MERKLE_TREE_MAX_LEAVES} leaves
   */
  static fromLeafHashes(flat: Uint8Array): MerkleTree {
    const tree = new MerkleTree();
    tree.appendMany(flat);
    return tree;
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of hash storage allocated over all levels (about 64 per leaf; for sizing and benchmarks). */
  get byteLength(): number {
    let bytes = 0;
    for (const chunks of this.#levels) for (const c of chunks) bytes += c.length;
    return bytes;
  }

  /**
   * Appends one leaf hash ({@link merkleLeafHash} of the next entry).
   *
   * @throws MisuseError MISUSE_ARGUMENT when it is not a 32-byte hash or the tree is full
   */
  append(leafHash: Uint8Array): void {
    checkHash('leafHash', leafHash);
    if (this.#size >= MERKLE_TREE_MAX_LEAVES) throw misuse('size', `a tree holds at most ${MERKLE_TREE_MAX_LEAVES} leaves`);
    const i = this.#size;
    const [chunk, off] = this.#slot(0, i);
    chunk.set(leafHash, off);
    this.#size = i + 1;
    // Each trailing 1 bit of the index closes one more aligned subtree: hash them bottom up.
    let k = 0;
    let j = i;
    while ((j & 1) === 1) {
      this.#combine(k, j >>> 1);
      j >>>= 1;
      k++;
    }
  }

  /**
   * Appends many leaf hashes given as one flat array of 32-byte hashes, in ledger order. Same
   * result as {@link append} for each, built level by level.
   *
   * @throws MisuseError MISUSE_ARGUMENT when the length is not a multiple of 32 or the tree would
   *   exceed {@link MERKLE_TREE_MAX_LEAVES} leaves
   */
  appendMany(flat: Uint8Array): void {
    if (!(flat instanceof Uint8Array) || flat.length % MERKLE_HASH_LENGTH !== 0) {
      throw misuse('leafHashes', `must be a Uint8Array whose length is a multiple of ${MERKLE_HASH_LENGTH}`);
    }
    const count = flat.length / MERKLE_HASH_LENGTH;
    if (count > MERKLE_TREE_MAX_LEAVES - this.#size) throw misuse('size', `a tree holds at most ${MERKLE_TREE_MAX_LEAVES} leaves`);
    const oldSize = this.#size;
    const newSize = oldSize + count;
    // Leaves first, a chunk at a time.
    let i = oldSize;
    while (i < newSize) {
      const [chunk, off] = this.#slot(0, i);
      const n = Math.min(newSize - i, (chunk.length - off) / MERKLE_HASH_LENGTH);
      const src = (i - oldSize) * MERKLE_HASH_LENGTH;
      chunk.set(flat.subarray(src, src + n * MERKLE_HASH_LENGTH), off);
      i += n;
    }
    this.#size = newSize;
    // Then every subtree the new leaves complete, level by level: at level k + 1 the nodes
    // floor(oldSize / 2^(k+1)) .. floor(newSize / 2^(k+1)) - 1 are new.
    // (Division, not >>>: a shift count of 32 would wrap to 0.)
    for (let k = 0; 2 ** (k + 1) <= newSize; k++) {
      const width = 2 ** (k + 1);
      const to = Math.floor(newSize / width);
      for (let j = Math.floor(oldSize / width); j < to; j++) this.#combine(k, j);
    }
  }

  /**
   * The leaf hash at `leafIndex`.
   *
   * @throws MisuseError MISUSE_ARGUMENT when `leafIndex` is not an integer in 0..size-1
   */
  leafHash(leafIndex: number): Uint8Array {
    checkInt('leafIndex', leafIndex, 0, this.#size - 1);
    return this.#node(0, leafIndex).slice();
  }

  /**
   * MTH of the first `treeSize` leaves (default: all): the root a tree head of that size
   * signs. O(log n) hashes. `root(0)` is MTH({}).
   *
   * @throws MisuseError MISUSE_ARGUMENT when `treeSize` is not an integer in 0..size
   */
  root(treeSize: number = this.#size): Uint8Array {
    checkInt('treeSize', treeSize, 0, this.#size);
    if (treeSize === 0) return EMPTY_ROOT.slice();
    return this.#range(0, treeSize);
  }

  /**
   * The inclusion proof of leaf `leafIndex` in the tree of the first `treeSize` leaves (default:
   * all), as RFC 9162 §2.1.3.1 defines it. O(log n) hashes.
   *
   * @throws MisuseError MISUSE_ARGUMENT when `treeSize` is not an integer in 1..size or
   *   `leafIndex` not one in 0..treeSize-1
   */
  inclusionProof(leafIndex: number, treeSize: number = this.#size): Uint8Array[] {
    if (this.#size === 0) throw misuse('leafIndex', 'the tree is empty: it has no leaf to prove');
    checkInt('treeSize', treeSize, 1, this.#size);
    checkInt('leafIndex', leafIndex, 0, treeSize - 1);
    // PATH(m, D[n]) walked from the root down; the RFC lists the path from the leaf up.
    const path: Uint8Array[] = [];
    let start = 0;
    let end = treeSize;
    while (end - start > 1) {
      const k = splitPoint(end - start);
      if (leafIndex < start + k) {
        path.push(this.#range(start + k, end));
        end = start + k;
      } else {
        path.push(this.#range(start, start + k));
        start += k;
      }
    }
    return path.reverse();
  }

  /**
   * The consistency proof from the tree of the first `m` leaves to the tree of the first `n`
   * leaves (default: all), as RFC 9162 §2.1.4.1 defines it; empty when m = n or m = 0 (see
   * {@link merkleConsistencyProof}). O(log n) hashes.
   *
   * @throws MisuseError MISUSE_ARGUMENT when `n` is not an integer in 0..size or `m` not one in
   *   0..n
   */
  consistencyProof(m: number, n: number = this.#size): Uint8Array[] {
    checkInt('n', n, 0, this.#size);
    checkInt('m', m, 0, n);
    if (m === 0 || m === n) return [];
    // SUBPROOF(m, D[n], true) walked from the root down; the RFC lists the deepest node first.
    const proof: Uint8Array[] = [];
    let start = 0;
    let end = n;
    let b = true;
    for (;;) {
      const len = end - start;
      if (m - start === len) {
        if (!b) proof.push(this.#range(start, end));
        break;
      }
      const k = splitPoint(len);
      if (m - start <= k) {
        proof.push(this.#range(start + k, end));
        end = start + k;
      } else {
        proof.push(this.#range(start, start + k));
        start += k;
        b = false;
      }
    }
    return proof.reverse();
  }

  // --- storage -----------------------------------------------------------------------------

  /** The chunk holding node `index` of `level` and the byte offset in it, allocating as needed. */
  #slot(level: number, index: number): [Uint8Array, number] {
    let chunks = this.#levels[level];
    if (chunks === undefined) {
      chunks = [];
      this.#levels[level] = chunks;
    }
    const c = index >>> CHUNK_SHIFT;
    const off = (index & CHUNK_MASK) * MERKLE_HASH_LENGTH;
    let chunk = chunks[c];
    if (chunk === undefined) {
      // Chunks fill in order, so c is chunks.length here.
      chunk = new Uint8Array((c === 0 ? FIRST_CHUNK_HASHES : CHUNK_HASHES) * MERKLE_HASH_LENGTH);
      chunks[c] = chunk;
    }
    if (off >= chunk.length) {
      // Only the first chunk is ever short: double it, up to the full chunk size.
      let bytes = chunk.length * 2;
      while (bytes <= off) bytes *= 2;
      const grown = new Uint8Array(Math.min(bytes, CHUNK_HASHES * MERKLE_HASH_LENGTH));
      grown.set(chunk);
      chunk = grown;
      chunks[c] = chunk;
    }
    return [chunk, off];
  }

  /** A view of stored node `index` of `level` (never handed out: callers copy). */
  #node(level: number, index: number): Uint8Array {
    const chunk = (this.#levels[level] as Uint8Array[])[index >>> CHUNK_SHIFT] as Uint8Array;
    const off = (index & CHUNK_MASK) * MERKLE_HASH_LENGTH;
    return chunk.subarray(off, off + MERKLE_HASH_LENGTH);
  }

  /** Stores node `j` of level k + 1 = HASH(0x01 || node 2j || node 2j+1 of level k). */
  #combine(k: number, j: number): void {
    // Chunks hold an even number of hashes, so the two children sit side by side in one chunk.
    const left = 2 * j;
    const chunk = (this.#levels[k] as Uint8Array[])[left >>> CHUNK_SHIFT] as Uint8Array;
    const off = (left & CHUNK_MASK) * MERKLE_HASH_LENGTH;
    this.#scratch.set(chunk.subarray(off, off + 2 * MERKLE_HASH_LENGTH), 1);
    const parent = sha256(this.#scratch);
    const [dst, dstOff] = this.#slot(k + 1, j);
    dst.set(parent, dstOff);
  }

  /**
   * MTH(D[start:end]) for a node of the RFC 9162 tree of some size s <= size: either a stored
   * complete subtree, or a node on the right edge of that tree, whose leaves split into the
   * complete aligned subtrees given by the set bits of end - start, largest first. The RFC's
   * recursion hashes those right to left, so fold them from the smallest up. Returns a copy.
   */
  #range(start: number, end: number): Uint8Array {
    const len = end - start;
    let r: Uint8Array | undefined;
    // Division, not >>>: len may reach 2^32 - 1, and a shift count of 32 wraps to 0.
    for (let b = 0, width = 1; width <= len; b++, width *= 2) {
      if (Math.floor(len / width) % 2 === 0) continue;
      // This block begins after the larger blocks (the bits of len above b).
      const blockStart = start + Math.floor(len / (2 * width)) * 2 * width;
      const node = this.#node(b, blockStart / width);
      r = r === undefined ? node : nodeHashWith(this.#scratch, node, r);
    }
    // A plain copy: never a view of the tree's storage, nor node:crypto's Buffer.
    return new Uint8Array(r as Uint8Array);
  }
}
