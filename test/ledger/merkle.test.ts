import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERRORS, MisuseError } from '../../src/lib/errors.js';
import {
  GENESIS_PREV,
  MERKLE_EMPTY_ROOT,
  MerkleTree,
  buildLedgerEntry,
  merkleConsistencyProof,
  merkleInclusionProof,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
  type MerkleProofVerification,
} from '../../src/ledger/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map(hex);

/** A copy of `b` with bit `bit` of byte `at` flipped. */
function flip(b: Uint8Array, at = 0, bit = 0): Uint8Array {
  const c = b.slice();
  c[at % c.length] = (c[at % c.length] as number) ^ (1 << bit);
  return c;
}

/** A proof with one byte of element `i` flipped. */
function flipProof(proof: readonly Uint8Array[], i: number, at = 0): Uint8Array[] {
  return proof.map((p, j) => (j === i ? flip(p, at) : p));
}

/** `n` distinct leaf hashes (of the byte strings "leaf 0", "leaf 1", ...). */
function leafHashes(n: number, salt = ''): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => merkleLeafHash(new TextEncoder().encode(`leaf ${salt}${i}`)));
}

function flat(hs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(hs.length * 32);
  hs.forEach((h, i) => out.set(h, i * 32));
  return out;
}

function expectInvalid(r: MerkleProofVerification): void {
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.code).toBe('LEDGER_PROOF_INVALID');
    expect(r.message.length).toBeGreaterThan(0);
  }
}

function expectMisuse(fn: () => unknown, field?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MisuseError);
    expect((e as MisuseError).code).toBe('MISUSE_ARGUMENT');
    if (field !== undefined) expect((e as MisuseError).message).toMatch(field);
    return;
  }
  throw new Error('expected a MisuseError');
}

// ------------------------------------------------------------------------------------------------
// Published vectors: the RFC 6962 reference test data of the certificate-transparency projects,
// as kept in github.com/transparency-dev/merkle, proof/verify_test.go (the same tree is in
// google/trillian merkle/log_verifier_test.go and the C++ certificate-transparency
// merkle_tree_test.cc). The Go file numbers leaves from 1; here indices are 0-based.

const VECTOR_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];

/** MTH of the first 1..8 inputs. */
const VECTOR_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const VECTOR_INCLUSION: { index: number; size: number; path: string[] }[] = [
  { index: 0, size: 1, path: [] },
  {
    index: 0,
    size: 8,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    path: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, path: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    path: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

const VECTOR_CONSISTENCY: { m: number; n: number; path: string[] }[] = [
  { m: 1, n: 1, path: [] },
  {
    m: 1,
    n: 8,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    m: 6,
    n: 8,
    path: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    m: 2,
    n: 5,
    path: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'],
  },
  {
    m: 6,
    n: 7,
    path: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

const SOME_HASH = unhex('abacaba000000000000000000000000000000000000000000060061e00123456');
const EMPTY_TREE_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('RFC 6962 / certificate-transparency reference vectors', () => {
  const leaves = VECTOR_INPUTS.map((h) => merkleLeafHash(unhex(h)));
  const tree = MerkleTree.fromLeafHashes(flat(leaves));

  it('MTH({}) is SHA-256 of the empty string, for the reference, the tree and the constant', () => {
    expect(hex(merkleRoot([]))).toBe(EMPTY_TREE_HASH);
    expect(hex(new MerkleTree().root())).toBe(EMPTY_TREE_HASH);
    expect(hex(tree.root(0))).toBe(EMPTY_TREE_HASH);
    expect(hex(MERKLE_EMPTY_ROOT)).toBe(EMPTY_TREE_HASH);
  });

  it('leaf hash is SHA-256(0x00 || entry) and node hash SHA-256(0x01 || left || right)', () => {
    expect(hex(leaves[0] as Uint8Array)).toBe(VECTOR_ROOTS[0]);
    expect(hex(merkleLeafHash(unhex('2021')))).toBe(createHash('sha256').update(unhex('002021')).digest('hex'));
    const l = leaves[0] as Uint8Array;
    const r = leaves[1] as Uint8Array;
    expect(hex(merkleNodeHash(l, r))).toBe(VECTOR_ROOTS[1]);
    expect(hex(merkleNodeHash(l, r))).toBe(createHash('sha256').update(new Uint8Array([1])).update(l).update(r).digest('hex'));
  });

  it('every root of sizes 1..8: reference, MerkleTree (bulk and appended one by one)', () => {
    const appended = new MerkleTree();
    for (let s = 1; s <= 8; s++) {
      appended.append(leaves[s - 1] as Uint8Array);
      expect(hex(merkleRoot(leaves.slice(0, s))), `size ${s}`).toBe(VECTOR_ROOTS[s - 1]);
      expect(hex(tree.root(s)), `size ${s}`).toBe(VECTOR_ROOTS[s - 1]);
      expect(hex(appended.root()), `size ${s}`).toBe(VECTOR_ROOTS[s - 1]);
    }
  });

  for (const v of VECTOR_INCLUSION) {
    it(`inclusion path of leaf ${v.index} in size ${v.size}: generated byte for byte, verifies, and every corruption fails`, () => {
      expect(hexes(merkleInclusionProof(leaves.slice(0, v.size), v.index))).toEqual(v.path);
      expect(hexes(tree.inclusionProof(v.index, v.size))).toEqual(v.path);
      const proof = v.path.map(unhex);
      const root = unhex(VECTOR_ROOTS[v.size - 1] as string);
      const leaf = leaves[v.index] as Uint8Array;
      expect(verifyMerkleInclusion(v.index, v.size, leaf, proof, root)).toEqual({ ok: true });

      // The probes of the reference test suite.
      const probes: [string, MerkleProofVerification][] = [
        ['index - 1', verifyMerkleInclusion(v.index - 1, v.size, leaf, proof, root)],
        ['index + 1', verifyMerkleInclusion(v.index + 1, v.size, leaf, proof, root)],
        ['index ^ 2', verifyMerkleInclusion(v.index ^ 2, v.size, leaf, proof, root)],
        ['size * 2', verifyMerkleInclusion(v.index, v.size * 2, leaf, proof, root)],
        ['size / 2', verifyMerkleInclusion(v.index, Math.floor(v.size / 2), leaf, proof, root)],
        ['wrong leaf', verifyMerkleInclusion(v.index, v.size, new TextEncoder().encode('WrongLeaf'), proof, root)],
        ['flipped leaf', verifyMerkleInclusion(v.index, v.size, flip(leaf), proof, root)],
        ['empty root', verifyMerkleInclusion(v.index, v.size, leaf, proof, MERKLE_EMPTY_ROOT)],
        ['random root', verifyMerkleInclusion(v.index, v.size, leaf, proof, SOME_HASH)],
        ['flipped root', verifyMerkleInclusion(v.index, v.size, leaf, proof, flip(root, 31, 7))],
        ['trailing garbage', verifyMerkleInclusion(v.index, v.size, leaf, [...proof, new Uint8Array(0)], root)],
        ['trailing root', verifyMerkleInclusion(v.index, v.size, leaf, [...proof, root], root)],
        ['preceding garbage', verifyMerkleInclusion(v.index, v.size, leaf, [new Uint8Array(0), ...proof], root)],
        ['preceding root', verifyMerkleInclusion(v.index, v.size, leaf, [root, ...proof], root)],
      ];
      proof.forEach((_, i) => probes.push([`proof[${i}] bit 3`, verifyMerkleInclusion(v.index, v.size, leaf, flipProof(proof, i), root)]));
      if (proof.length > 0) probes.push(['removed component', verifyMerkleInclusion(v.index, v.size, leaf, proof.slice(0, -1), root)]);
      if (proof.length > 1) {
        probes.push(['inserted component', verifyMerkleInclusion(v.index, v.size, leaf, [proof[0] as Uint8Array, SOME_HASH, ...proof.slice(1)], root)]);
      }
      for (const [desc, r] of probes) {
        expect(r.ok, desc).toBe(false);
        expectInvalid(r);
      }
    });
  }

  for (const v of VECTOR_CONSISTENCY) {
    it(`consistency path from size ${v.m} to ${v.n}: generated byte for byte, verifies, and every corruption fails`, () => {
      expect(hexes(merkleConsistencyProof(leaves.slice(0, v.n), v.m))).toEqual(v.path);
      expect(hexes(tree.consistencyProof(v.m, v.n))).toEqual(v.path);
      const proof = v.path.map(unhex);
      const root1 = unhex(VECTOR_ROOTS[v.m - 1] as string);
      const root2 = unhex(VECTOR_ROOTS[v.n - 1] as string);
      expect(verifyMerkleConsistency(v.m, v.n, proof, root1, root2)).toEqual({ ok: true });
      if (proof.length === 0) return; // the same tree head: covered by the edge-case test below

      const wrong = new TextEncoder().encode('WrongRoot');
      const probes: [string, MerkleProofVerification][] = [
        ['m - 1', verifyMerkleConsistency(v.m - 1, v.n, proof, root1, root2)],
        ['m + 1', verifyMerkleConsistency(v.m + 1, v.n, proof, root1, root2)],
        ['m ^ 2', verifyMerkleConsistency(v.m ^ 2, v.n, proof, root1, root2)],
        ['n * 2', verifyMerkleConsistency(v.m, v.n * 2, proof, root1, root2)],
        ['n / 2', verifyMerkleConsistency(v.m, Math.floor(v.n / 2), proof, root1, root2)],
        ['wrong root1', verifyMerkleConsistency(v.m, v.n, proof, wrong, root2)],
        ['wrong root2', verifyMerkleConsistency(v.m, v.n, proof, root1, wrong)],
        ['flipped root1', verifyMerkleConsistency(v.m, v.n, proof, flip(root1, 5, 2), root2)],
        ['flipped root2', verifyMerkleConsistency(v.m, v.n, proof, root1, flip(root2, 5, 2))],
        ['swapped roots', verifyMerkleConsistency(v.m, v.n, proof, root2, root1)],
        ['empty proof', verifyMerkleConsistency(v.m, v.n, [], root1, root2)],
        ['trailing garbage', verifyMerkleConsistency(v.m, v.n, [...proof, new Uint8Array(0)], root1, root2)],
        ['trailing root1', verifyMerkleConsistency(v.m, v.n, [...proof, root1], root1, root2)],
        ['trailing root2', verifyMerkleConsistency(v.m, v.n, [...proof, root2], root1, root2)],
        ['preceding garbage', verifyMerkleConsistency(v.m, v.n, [new Uint8Array(0), ...proof], root1, root2)],
        ['preceding root1', verifyMerkleConsistency(v.m, v.n, [root1, ...proof], root1, root2)],
        ['preceding root2', verifyMerkleConsistency(v.m, v.n, [root2, ...proof], root1, root2)],
        ['preceding proof[0]', verifyMerkleConsistency(v.m, v.n, [proof[0] as Uint8Array, ...proof], root1, root2)],
        ['truncated proof', verifyMerkleConsistency(v.m, v.n, proof.slice(0, -1), root1, root2)],
      ];
      proof.forEach((_, i) => probes.push([`proof[${i}] bit 4`, verifyMerkleConsistency(v.m, v.n, flipProof(proof, i), root1, root2)]));
      for (const [desc, r] of probes) {
        expect(r.ok, desc).toBe(false);
        expectInvalid(r);
      }
    });
  }

  it('the single-entry tree: root and leaf hash are the same, the path is empty', () => {
    const h = merkleLeafHash(new TextEncoder().encode('data'));
    expect(verifyMerkleInclusion(0, 1, h, [], h)).toEqual({ ok: true });
    expectInvalid(verifyMerkleInclusion(0, 1, h, [], new Uint8Array(0)));
    expectInvalid(verifyMerkleInclusion(0, 1, new Uint8Array(0), [], h));
    expectInvalid(verifyMerkleInclusion(0, 1, new Uint8Array(0), [], new Uint8Array(0)));
  });

  it('inclusion in impossible positions never verifies (index >= size, size 0)', () => {
    for (const [index, size] of [[0, 0], [1, 0], [1, 1], [2, 1]] as const) {
      expectInvalid(verifyMerkleInclusion(index, size, SOME_HASH, [], MERKLE_EMPTY_ROOT));
      expectInvalid(verifyMerkleInclusion(index, size, SOME_HASH, [], SOME_HASH));
      expectInvalid(verifyMerkleInclusion(index, size, MERKLE_EMPTY_ROOT, [], MERKLE_EMPTY_ROOT));
    }
  });
});

describe('consistency edge cases (RFC 9162 §2.1.4: m = n, m = 0, m > n)', () => {
  const hs = leafHashes(7);
  const tree = MerkleTree.fromLeafHashes(flat(hs));
  const r = (s: number): Uint8Array => tree.root(s);

  it('m = n: the proof is empty, and verifies only for equal roots and an empty path', () => {
    for (let s = 0; s <= 7; s++) {
      expect(merkleConsistencyProof(hs.slice(0, s), s)).toEqual([]);
      expect(tree.consistencyProof(s, s)).toEqual([]);
      expect(verifyMerkleConsistency(s, s, [], r(s), r(s))).toEqual({ ok: true });
    }
    expectInvalid(verifyMerkleConsistency(3, 3, [], r(3), r(4)));
    expectInvalid(verifyMerkleConsistency(3, 3, [r(3)], r(3), r(3)));
    expectInvalid(verifyMerkleConsistency(3, 3, [MERKLE_EMPTY_ROOT], r(3), r(3)));
  });

  it('m = 0: the proof is empty; it verifies only with MTH({}) as the first root and an empty path', () => {
    for (let n = 0; n <= 7; n++) {
      expect(merkleConsistencyProof(hs.slice(0, n), 0)).toEqual([]);
      expect(tree.consistencyProof(0, n)).toEqual([]);
      expect(verifyMerkleConsistency(0, n, [], MERKLE_EMPTY_ROOT, r(n))).toEqual({ ok: true });
      expectInvalid(verifyMerkleConsistency(0, n, [], SOME_HASH, r(n)));
      expectInvalid(verifyMerkleConsistency(0, n, [MERKLE_EMPTY_ROOT], MERKLE_EMPTY_ROOT, r(n)));
    }
    expectInvalid(verifyMerkleConsistency(0, 0, [], MERKLE_EMPTY_ROOT, SOME_HASH));
  });

  it('m > n (time travel) and malformed sizes fail', () => {
    expectInvalid(verifyMerkleConsistency(1, 0, [], r(1), r(0)));
    expectInvalid(verifyMerkleConsistency(5, 4, tree.consistencyProof(4, 5), r(5), r(4)));
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expectInvalid(verifyMerkleConsistency(bad, 7, tree.consistencyProof(3, 7), r(3), r(7)));
      expectInvalid(verifyMerkleConsistency(3, bad, tree.consistencyProof(3, 7), r(3), r(7)));
      expectInvalid(verifyMerkleInclusion(bad, 7, hs[0] as Uint8Array, tree.inclusionProof(0), r(7)));
      expectInvalid(verifyMerkleInclusion(0, bad, hs[0] as Uint8Array, tree.inclusionProof(0), r(7)));
    }
  });

  it('malformed proof values are a failed verification, never an exception', () => {
    const incl = tree.inclusionProof(2);
    const cons = tree.consistencyProof(3, 7);
    const junk = [null, undefined, 'abc', 42, {}, [1, 2, 3], new Uint8Array(31), new Uint8Array(33)] as unknown[];
    for (const j of junk) {
      const asHash = j as Uint8Array;
      const asProof = j as Uint8Array[];
      expectInvalid(verifyMerkleInclusion(2, 7, asHash, incl, r(7)));
      expectInvalid(verifyMerkleInclusion(2, 7, hs[2] as Uint8Array, incl, asHash));
      expectInvalid(verifyMerkleInclusion(2, 7, hs[2] as Uint8Array, asProof, r(7)));
      expectInvalid(verifyMerkleInclusion(2, 7, hs[2] as Uint8Array, [asHash, ...incl.slice(1)], r(7)));
      expectInvalid(verifyMerkleConsistency(3, 7, cons, asHash, r(7)));
      expectInvalid(verifyMerkleConsistency(3, 7, cons, r(3), asHash));
      expectInvalid(verifyMerkleConsistency(3, 7, asProof, r(3), r(7)));
      expectInvalid(verifyMerkleConsistency(3, 7, [...cons.slice(0, -1), asHash], r(3), r(7)));
    }
  });

  it('sizes beyond 32 bits are handled exactly (no bitwise truncation): a forged proof does not verify', () => {
    // 2^32 + 5 would alias 5 under 32-bit operators; the paths for both sizes differ in length.
    const big = 2 ** 32 + 5;
    const proof = tree.inclusionProof(4, 5);
    expect(verifyMerkleInclusion(4, 5, hs[4] as Uint8Array, proof, r(5))).toEqual({ ok: true });
    expectInvalid(verifyMerkleInclusion(4, big, hs[4] as Uint8Array, proof, r(5)));
    expectInvalid(verifyMerkleInclusion(2 ** 32 + 4, big, hs[4] as Uint8Array, proof, r(5)));
    expectInvalid(verifyMerkleConsistency(2 ** 32 + 3, big, tree.consistencyProof(3, 5), r(3), r(5)));
  });

  it('LEDGER_PROOF_INVALID is a registered verification-failed code', () => {
    expect(ERRORS.LEDGER_PROOF_INVALID.category).toBe('verification-failed');
    expect(ERRORS.LEDGER_PROOF_INVALID.status).toBe(422);
  });
});

describe('MerkleTree equals the reference definitions', () => {
  it('for every prefix of 70 leaves: roots, every inclusion proof and every consistency proof', () => {
    const hs = leafHashes(70);
    const bulk = MerkleTree.fromLeafHashes(flat(hs));
    const oneByOne = new MerkleTree();
    for (let n = 1; n <= hs.length; n++) {
      oneByOne.append(hs[n - 1] as Uint8Array);
      const prefix = hs.slice(0, n);
      const root = merkleRoot(prefix);
      // The root of size n computed incrementally equals the reference, and so does every
      // earlier prefix of the bulk-built tree.
      expect(hex(oneByOne.root())).toBe(hex(root));
      expect(hex(bulk.root(n))).toBe(hex(root));
      for (let i = 0; i < n; i++) {
        const ref = merkleInclusionProof(prefix, i);
        expect(hexes(bulk.inclusionProof(i, n)), `inclusion ${i} in ${n}`).toEqual(hexes(ref));
        expect(verifyMerkleInclusion(i, n, hs[i] as Uint8Array, ref, root)).toEqual({ ok: true });
      }
      for (let m = 0; m <= n; m++) {
        const ref = merkleConsistencyProof(prefix, m);
        expect(hexes(bulk.consistencyProof(m, n)), `consistency ${m} to ${n}`).toEqual(hexes(ref));
        expect(verifyMerkleConsistency(m, n, ref, bulk.root(m), root), `consistency ${m} to ${n}`).toEqual({ ok: true });
      }
    }
    expect(hexes(oneByOne.inclusionProof(33))).toEqual(hexes(bulk.inclusionProof(33)));
  });

  it('appendMany in pieces, append one by one and fromLeafHashes give the same tree (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }), (pieces) => {
        const total = pieces.reduce((a, b) => a + b, 0);
        const hs = leafHashes(total, 'p');
        const pieced = new MerkleTree();
        let at = 0;
        for (const p of pieces) {
          pieced.appendMany(flat(hs.slice(at, at + p)));
          at += p;
        }
        const single = new MerkleTree();
        for (const h of hs) single.append(h);
        const bulk = MerkleTree.fromLeafHashes(flat(hs));
        expect(pieced.size).toBe(total);
        expect(hex(pieced.root())).toBe(hex(merkleRoot(hs)));
        // Every prefix root, checked against the one-by-one tree (cheap, O(log n) each).
        for (let s = 0; s <= total; s += 1 + (s % 7)) {
          expect(hex(pieced.root(s))).toBe(hex(single.root(s)));
          expect(hex(bulk.root(s))).toBe(hex(single.root(s)));
        }
        if (total > 0) {
          const i = total - 1;
          expect(hexes(pieced.inclusionProof(i))).toEqual(hexes(single.inclusionProof(i)));
          expect(hex(pieced.leafHash(i))).toBe(hex(hs[i] as Uint8Array));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('chunked storage past 4096 hashes per level: roots and proofs across chunk boundaries', () => {
    const n = 4096 * 2 + 77;
    const hs = leafHashes(n, 'c');
    const tree = MerkleTree.fromLeafHashes(flat(hs));
    for (const s of [4095, 4096, 4097, 8192, 8193, n]) {
      const prefix = hs.slice(0, s);
      expect(hex(tree.root(s)), `size ${s}`).toBe(hex(merkleRoot(prefix)));
      for (const i of [0, 4095, 4096, s - 1].filter((x) => x < s)) {
        expect(hexes(tree.inclusionProof(i, s)), `${i} in ${s}`).toEqual(hexes(merkleInclusionProof(prefix, i)));
      }
      const m = s > 4097 ? 4097 : 1000;
      expect(hexes(tree.consistencyProof(m, s)), `${m} to ${s}`).toEqual(hexes(merkleConsistencyProof(prefix, m)));
    }
  });

  it('the tree hands out copies: mutating a returned hash or an appended buffer changes nothing', () => {
    const hs = leafHashes(9);
    const tree = new MerkleTree();
    const input = hs[0]!.slice();
    tree.append(input);
    for (const h of hs.slice(1)) tree.append(h);
    const before = hex(tree.root());
    input.fill(0);
    tree.root().fill(0);
    tree.inclusionProof(3)[0]!.fill(0);
    tree.consistencyProof(3)[0]!.fill(0);
    tree.leafHash(0).fill(0);
    tree.root(1).fill(0);
    expect(hex(tree.root())).toBe(before);
    expect(hex(tree.root(1))).toBe(hex(hs[0] as Uint8Array));
    MERKLE_EMPTY_ROOT.slice().fill(1);
    expect(hex(new MerkleTree().root())).toBe(EMPTY_TREE_HASH);
  });
});

describe('proof properties (fast-check, n in 1..300)', () => {
  const MAX = 300;
  const all = leafHashes(MAX, 'f');
  const tree = MerkleTree.fromLeafHashes(flat(all));

  it('every inclusion proof of every index verifies against root(n)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }), (n) => {
        const root = tree.root(n);
        for (let i = 0; i < n; i++) {
          expect(verifyMerkleInclusion(i, n, all[i] as Uint8Array, tree.inclusionProof(i, n), root)).toEqual({ ok: true });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('an inclusion proof fails with a flipped bit in the proof, the leaf or the root, or with another index or size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        fc.nat(),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: MAX }),
        ([n, i], pick, at, bit, other) => {
          const leaf = all[i] as Uint8Array;
          const root = tree.root(n);
          const proof = tree.inclusionProof(i, n);
          expect(verifyMerkleInclusion(i, n, leaf, proof, root)).toEqual({ ok: true });
          if (proof.length > 0) expectInvalid(verifyMerkleInclusion(i, n, leaf, flipProof(proof, pick % proof.length, at), root));
          expectInvalid(verifyMerkleInclusion(i, n, flip(leaf, at, bit), proof, root));
          expectInvalid(verifyMerkleInclusion(i, n, leaf, proof, flip(root, at, bit)));
          // Another index in the same tree head.
          const j = other % n;
          if (j !== i) expectInvalid(verifyMerkleInclusion(j, n, leaf, proof, root));
          // Another size, against that size's own tree head: the proof is for the wrong tree.
          // (Against root(n) itself a size with the same path shape would verify: the size is
          // bound only by the path's shape, which is why a tree head signs size and root together.)
          if (other !== n && i < other) expectInvalid(verifyMerkleInclusion(i, other, leaf, proof, tree.root(other)));
          // One hash removed or added.
          if (proof.length > 0) expectInvalid(verifyMerkleInclusion(i, n, leaf, proof.slice(1), root));
          expectInvalid(verifyMerkleInclusion(i, n, leaf, [...proof, root], root));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('consistency proofs for random m <= n verify, and fail when tampered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n))),
        fc.nat(),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: MAX }),
        ([m, n], pick, at, bit, other) => {
          const r1 = tree.root(m);
          const r2 = tree.root(n);
          const proof = tree.consistencyProof(m, n);
          expect(verifyMerkleConsistency(m, n, proof, r1, r2)).toEqual({ ok: true });
          expectInvalid(verifyMerkleConsistency(m, n, proof, flip(r1, at, bit), r2));
          expectInvalid(verifyMerkleConsistency(m, n, proof, r1, flip(r2, at, bit)));
          if (proof.length > 0) {
            expectInvalid(verifyMerkleConsistency(m, n, flipProof(proof, pick % proof.length, at), r1, r2));
            expectInvalid(verifyMerkleConsistency(m, n, proof.slice(0, -1), r1, r2));
            expectInvalid(verifyMerkleConsistency(m, n, proof, r2, r1));
          }
          expectInvalid(verifyMerkleConsistency(m, n, [...proof, r2], r1, r2));
          // Other sizes, with the real roots of those sizes: this proof is not theirs.
          const m2 = other % (n + 1);
          if (m2 !== m && m2 > 0) expectInvalid(verifyMerkleConsistency(m2, n, proof, tree.root(m2), r2));
          if (other !== n && other > m) expectInvalid(verifyMerkleConsistency(m, other, proof, r1, tree.root(other)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the tree of real ledger entries: leaf hashes of built entries, proofs verify', () => {
    let prev = GENESIS_PREV;
    const tree2 = new MerkleTree();
    const entries: Uint8Array[] = [];
    for (let seq = 1; seq <= 40; seq++) {
      const built = buildLedgerEntry({ seq, prev, time: 1_700_000_000_000 + seq, kind: 'appraise', node: `node-${seq % 4}`, outcome: 'affirming', body: { n: seq } });
      entries.push(built.entry);
      tree2.append(merkleLeafHash(built.entry));
      prev = built.hash;
    }
    const root = tree2.root();
    entries.forEach((e, i) => {
      expect(verifyMerkleInclusion(i, 40, merkleLeafHash(e), tree2.inclusionProof(i), root)).toEqual({ ok: true });
      // The chain hash (no 0x00 prefix) is not the leaf hash: passing it fails.
      expectInvalid(verifyMerkleInclusion(i, 40, createHash('sha256').update(e).digest(), tree2.inclusionProof(i), root));
    });
  });
});

describe('argument checks (MISUSE_ARGUMENT)', () => {
  const hs = leafHashes(5);
  const tree = MerkleTree.fromLeafHashes(flat(hs));

  it('hash functions', () => {
    expectMisuse(() => merkleLeafHash('abc' as unknown as Uint8Array), /entry/);
    expectMisuse(() => merkleNodeHash(new Uint8Array(31), hs[0] as Uint8Array), /left/);
    expectMisuse(() => merkleNodeHash(hs[0] as Uint8Array, new Uint8Array(33)), /right/);
  });

  it('reference functions', () => {
    expectMisuse(() => merkleRoot([hs[0] as Uint8Array, new Uint8Array(3)]), /leafHashes\[1\]/);
    expectMisuse(() => merkleRoot('x' as unknown as Uint8Array[]), /leafHashes/);
    expectMisuse(() => merkleInclusionProof(hs, 5), /leafIndex/);
    expectMisuse(() => merkleInclusionProof(hs, -1), /leafIndex/);
    expectMisuse(() => merkleInclusionProof(hs, 1.5), /leafIndex/);
    expectMisuse(() => merkleInclusionProof([], 0), /leafIndex/);
    expectMisuse(() => merkleConsistencyProof(hs, 6), /merkle m/);
    expectMisuse(() => merkleConsistencyProof(hs, -1), /merkle m/);
    expectMisuse(() => merkleConsistencyProof(hs, Number.NaN), /merkle m/);
  });

  it('MerkleTree building', () => {
    const t = new MerkleTree();
    expectMisuse(() => t.append(new Uint8Array(31)), /leafHash/);
    expectMisuse(() => t.append('x' as unknown as Uint8Array), /leafHash/);
    expectMisuse(() => t.appendMany(new Uint8Array(33)), /leafHashes/);
    expectMisuse(() => MerkleTree.fromLeafHashes(new Uint8Array(65)), /leafHashes/);
    expectMisuse(() => MerkleTree.fromLeafHashes([] as unknown as Uint8Array), /leafHashes/);
    expect(t.size).toBe(0);
  });

  it('MerkleTree queries', () => {
    expectMisuse(() => tree.root(6), /treeSize/);
    expectMisuse(() => tree.root(-1), /treeSize/);
    expectMisuse(() => tree.root(2.5), /treeSize/);
    expectMisuse(() => tree.root('3' as unknown as number), /treeSize/);
    expectMisuse(() => tree.leafHash(5), /leafIndex/);
    expectMisuse(() => tree.inclusionProof(5), /leafIndex/);
    expectMisuse(() => tree.inclusionProof(3, 3), /leafIndex/);
    expectMisuse(() => tree.inclusionProof(0, 6), /treeSize/);
    expectMisuse(() => tree.inclusionProof(0, 0), /treeSize/);
    expectMisuse(() => tree.inclusionProof(Number.NaN), /leafIndex/);
    expectMisuse(() => new MerkleTree().inclusionProof(0), /empty/);
    expectMisuse(() => tree.consistencyProof(4, 3), /merkle m/);
    expectMisuse(() => tree.consistencyProof(1, 6), /merkle n/);
    expectMisuse(() => tree.consistencyProof(-1), /merkle m/);
    expectMisuse(() => tree.consistencyProof(0.5, 4), /merkle m/);
  });
});
