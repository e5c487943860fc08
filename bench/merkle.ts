/**
 * Ledger Merkle tree part of `npm run bench` (src/ledger/merkle.ts).
 *
 * 1. Builds 1,000,000 real version 1 ledger entries with buildLedgerEntry (canonical CBOR, each
 *    naming its predecessor's hash, as the verifier writes them) and their RFC 9162 leaf hashes.
 * 2. Builds a MerkleTree over the 1,000,000 leaf hashes twice: in bulk (fromLeafHashes) and by
 *    appending one leaf at a time; both must give the reference root of a sample and each other's
 *    root, or the figures measure nothing. Prints the build times and the memory the tree holds.
 * 3. Per-operation latency (median and p99) over 10,000 random choices: root of a random prefix
 *    size, inclusion proof generation and verification of a random leaf in the full tree, and
 *    consistency proof generation and verification between a random earlier size and the full
 *    tree. Every proof generated is verified, and every verification must succeed.
 *
 * Run alone: `npx tsx -e "import('./bench/merkle.ts').then(m=>m.merkleBench(console.log))"`.
 * Knob: BENCH_MERKLE_LEAVES (default 1,000,000).
 */
import {
  GENESIS_PREV,
  MerkleTree,
  buildLedgerEntry,
  merkleLeafHash,
  merkleRoot,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
  type MerkleProofVerification,
} from '../src/ledger/index.js';

const SAMPLES = 10_000;
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const us = (ns: number): string => `${(ns / 1000).toFixed(2)} µs`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Nanoseconds since an arbitrary origin. */
const now = (): number => Number(process.hrtime.bigint());

/** A small deterministic PRNG (xorshift32), so that runs pick the same indices. */
function prng(seed: number): (bound: number) => number {
  let s = seed >>> 0 || 1;
  return (bound) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % bound;
  };
}

function quantiles(ns: number[]): { median: number; p99: number } {
  const sorted = [...ns].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)] as number,
    p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number,
  };
}

function must(r: MerkleProofVerification, what: string): void {
  if (!r.ok) throw new Error(`${what}: ${r.message}`);
}

/** Prints the Merkle tree figures through `out`. */
export async function merkleBench(out: (s?: string) => void): Promise<void> {
  const n = Number(process.env['BENCH_MERKLE_LEAVES'] ?? 1_000_000);
  if (!Number.isSafeInteger(n) || n < 2) throw new Error('BENCH_MERKLE_LEAVES must be an integer >= 2');
  out(`\nLedger Merkle tree (RFC 9162): ${fmt(n)} leaves from real ledger entries`);

  // 1. Real entries and their leaf hashes, in one flat array (32 bytes per leaf).
  let t = now();
  const flat = new Uint8Array(n * 32);
  let prev = GENESIS_PREV;
  let entryBytes = 0;
  for (let seq = 1; seq <= n; seq++) {
    const built = buildLedgerEntry({
      seq,
      prev,
      time: 1_700_000_000_000 + seq * 17,
      kind: seq % 10 === 0 ? 'authorize' : 'appraise',
      node: `node-${seq % 1000}`,
      outcome: seq % 50 === 0 ? 'refused' : 'affirming',
      body: { evidence: prev, policy: 'gpu-nodes-v3' },
    });
    flat.set(merkleLeafHash(built.entry), (seq - 1) * 32);
    entryBytes += built.entry.length;
    prev = built.hash;
  }
  const prepNs = now() - t;
  out(`  entries built and leaf-hashed: ${fmt(n)} entries of ${(entryBytes / n).toFixed(0)} bytes on average in ${(prepNs / 1e9).toFixed(2)} s (not part of the tree figures)`);

  // 2. Build: bulk, then one append at a time. Memory is measured around the bulk build, after a
  //    collection when the runtime exposes gc (node --expose-gc), otherwise as allocated.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const memBefore = process.memoryUsage();
  t = now();
  const tree = MerkleTree.fromLeafHashes(flat);
  const bulkNs = now() - t;
  gc?.();
  const memAfter = process.memoryUsage();

  t = now();
  const appended = new MerkleTree();
  for (let i = 0; i < n; i++) appended.append(flat.subarray(i * 32, i * 32 + 32));
  const appendNs = now() - t;

  t = now();
  const root = tree.root();
  const rootNs = now() - t;
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  if (hex(appended.root()) !== hex(root)) throw new Error('bulk and appended trees disagree');
  // The reference definition over a prefix (it is O(n), so only a prefix): same root.
  const refSize = Math.min(n, 65_537);
  const refLeaves = Array.from({ length: refSize }, (_, i) => flat.subarray(i * 32, i * 32 + 32));
  if (hex(merkleRoot(refLeaves)) !== hex(tree.root(refSize))) throw new Error('tree root differs from the reference root');

  out(`  build, fromLeafHashes (bulk):   ${(bulkNs / 1e6).toFixed(0)} ms (${us(bulkNs / n)} per leaf)`);
  out(`  build, append one at a time:    ${(appendNs / 1e6).toFixed(0)} ms (${us(appendNs / n)} per leaf)`);
  out(`  root of the full tree:          ${us(rootNs)} (first call)`);
  out(
    `  memory: hash storage ${mib(tree.byteLength)} (${(tree.byteLength / n).toFixed(1)} bytes per leaf); ` +
      `arrayBuffers +${mib(memAfter.arrayBuffers - memBefore.arrayBuffers)}, rss +${mib(memAfter.rss - memBefore.rss)} around the bulk build` +
      (gc === undefined ? ' (no --expose-gc: deltas include garbage)' : ''),
  );

  // 3. Latencies over random choices.
  const rand = prng(0x5eed);
  const rootNsList: number[] = [];
  for (let k = 0; k < SAMPLES; k++) {
    const size = 1 + rand(n);
    t = now();
    tree.root(size);
    rootNsList.push(now() - t);
  }

  const genNs: number[] = [];
  const verNs: number[] = [];
  let pathLen = 0;
  for (let k = 0; k < SAMPLES; k++) {
    const i = rand(n);
    t = now();
    const proof = tree.inclusionProof(i);
    genNs.push(now() - t);
    pathLen += proof.length;
    const leaf = flat.subarray(i * 32, i * 32 + 32);
    t = now();
    const r = verifyMerkleInclusion(i, n, leaf, proof, root);
    verNs.push(now() - t);
    must(r, `inclusion of leaf ${i}`);
  }

  const cgenNs: number[] = [];
  const cverNs: number[] = [];
  let consLen = 0;
  for (let k = 0; k < SAMPLES; k++) {
    const m = 1 + rand(n - 1);
    const first = tree.root(m);
    t = now();
    const proof = tree.consistencyProof(m, n);
    cgenNs.push(now() - t);
    consLen += proof.length;
    t = now();
    const r = verifyMerkleConsistency(m, n, proof, first, root);
    cverNs.push(now() - t);
    must(r, `consistency ${m} to ${n}`);
  }

  const line = (label: string, xs: number[]): void => {
    const q = quantiles(xs);
    out(`  ${label.padEnd(32)} median ${us(q.median)}, p99 ${us(q.p99)}`);
  };
  out(`  per operation, ${fmt(SAMPLES)} random choices each (all proofs verified):`);
  line('root of a random prefix size', rootNsList);
  line(`inclusion proof (${(pathLen / SAMPLES).toFixed(1)} hashes)`, genNs);
  line('inclusion verification', verNs);
  line(`consistency proof (${(consLen / SAMPLES).toFixed(1)} hashes)`, cgenNs);
  line('consistency verification', cverNs);
}
