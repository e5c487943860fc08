import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEvidenceCbor,
  decodeEvidenceCborWithDigest,
  decodeEvidenceJson,
  encodeEvidenceCbor,
  encodeEvidenceJson,
  evidenceDigest,
  type Evidence,
} from '../../src/evidence/envelope.js';
import { nodeKeyProofMessage, teeReportData, tpmQualifyingData } from '../../src/evidence/binding.js';
import { checkNodeKeyProof, parseNodeKey, signNodeKeyProof } from '../../src/evidence/key-proof.js';
import { encodeCanonical } from '../../src/lib/cbor.js';
import { VouchError } from '../../src/lib/errors.js';

const base: Evidence = {
  version: 1,
  challengeId: 'c-1',
  nodeId: 'tpm-1',
  boundKey: new Uint8Array([0x30, 1, 2]),
  tpm: {
    attest: new Uint8Array([1, 2, 3]),
    signature: new Uint8Array([4]),
    pcrs: new Map([[0x000b, new Map([[0, new Uint8Array(32)], [7, new Uint8Array(32).fill(7)]])]]),
    eventLog: new Uint8Array([9, 9]),
    imaLog: new Uint8Array([8]),
    imaStart: 12,
  },
};

/** The envelope's data model with the TDX quote as text instead of bytes (a type confusion). */
function textQuoteModel(e: Evidence): Map<string, unknown> {
  const m = new Map<string, unknown>([
    ['v', 1],
    ['challenge', e.challengeId],
    ['node', e.nodeId],
    ['boundKey', e.boundKey],
    ['tpm', new Map<string, unknown>([['attest', new Uint8Array([1])], ['signature', new Uint8Array([2])], ['pcrs', new Map([['sha256', new Map([[0, new Uint8Array(32)]])]])]])],
    ['tdx', new Map([['quote', 'not bytes']])],
  ]);
  return m;
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof VouchError) return e.code;
    throw e;
  }
  return 'none';
}

describe('evidence envelope v1', () => {
  it('round-trips through CBOR and JSON with the same digest', () => {
    const fromCbor = decodeEvidenceCbor(encodeEvidenceCbor(base));
    const fromJson = decodeEvidenceJson(encodeEvidenceJson(base));
    expect(fromCbor).toEqual(base);
    expect(fromJson).toEqual(base);
    expect(evidenceDigest(fromJson)).toEqual(evidenceDigest(base));
  });

  it('imaLog and imaStart come together; imaStart is a non-negative integer', () => {
    const { imaStart: _s, ...noStart } = base.tpm;
    expect(codeOf(() => decodeEvidenceCbor(encodeEvidenceCbor({ ...base, tpm: noStart })))).toBe('EVIDENCE_MALFORMED');
    const doc = JSON.parse(encodeEvidenceJson(base)) as { tpm: Record<string, unknown> };
    doc.tpm['imaStart'] = -1;
    expect(codeOf(() => decodeEvidenceJson(JSON.stringify(doc)))).toBe('EVIDENCE_MALFORMED');
    doc.tpm['imaStart'] = 1.5;
    expect(codeOf(() => decodeEvidenceJson(JSON.stringify(doc)))).toBe('EVIDENCE_MALFORMED');
  });

  const snpOnly: Evidence = {
    version: 1,
    challengeId: 'c-2',
    nodeId: 'snp-0123456789abcdef0123456789abcdef',
    boundKey: new Uint8Array([0x30, 1, 2]),
    snp: { report: new Uint8Array(1184).fill(3), certTable: new Uint8Array([5, 5]) },
    keyProof: new Uint8Array(64).fill(9),
  };

  it('SNP-only evidence (no tpm) round-trips, with keyProof after snp in canonical order', () => {
    expect(decodeEvidenceCbor(encodeEvidenceCbor(snpOnly))).toEqual(snpOnly);
    expect(decodeEvidenceJson(encodeEvidenceJson(snpOnly))).toEqual(snpOnly);
    expect(Object.keys(JSON.parse(encodeEvidenceJson(snpOnly)) as object)).toEqual(['v', 'challenge', 'node', 'boundKey', 'snp', 'keyProof']);
  });

  it('exactly one shape: SNP-only needs snp and a 64-byte keyProof; a TPM envelope refuses keyProof', () => {
    const doc = (): Record<string, unknown> => JSON.parse(encodeEvidenceJson(snpOnly)) as Record<string, unknown>;
    const field = (d: Record<string, unknown>): string | undefined => {
      try {
        decodeEvidenceJson(JSON.stringify(d));
      } catch (e) {
        if (e instanceof VouchError) return `${e.code} ${e.field ?? ''}`;
        throw e;
      }
      return undefined;
    };
    const noProof = doc();
    delete noProof['keyProof'];
    expect(field(noProof)).toBe('EVIDENCE_MALFORMED evidence.keyProof');
    const noSnp = doc();
    delete noSnp['snp'];
    expect(field(noSnp)).toBe('EVIDENCE_MALFORMED evidence.tpm');
    const short = doc();
    short['keyProof'] = Buffer.from(new Uint8Array(63)).toString('base64url');
    expect(field(short)).toBe('EVIDENCE_MALFORMED evidence.keyProof');
    const both = JSON.parse(encodeEvidenceJson(base)) as Record<string, unknown>;
    both['keyProof'] = doc()['keyProof'];
    expect(field(both)).toBe('EVIDENCE_MALFORMED evidence.keyProof');
    const nullTpm = doc();
    nullTpm['tpm'] = null;
    expect(field(nullTpm)).toBe('EVIDENCE_MALFORMED evidence.tpm');
    const extra = doc();
    extra['nodeKey'] = 'AA';
    expect(field(extra)).toBe('EVIDENCE_UNKNOWN_FIELD evidence.nodeKey');
    // The same checks hold for CBOR (one data model).
    const m = new Map<string, unknown>([['v', 1], ['challenge', 'c'], ['node', 'n'], ['boundKey', new Uint8Array([1])], ['snp', new Map([['report', new Uint8Array(1184)]])]]);
    expect(codeOf(() => decodeEvidenceCbor(encodeCanonical(m)))).toBe('EVIDENCE_MALFORMED');
  });

  const withTdx: Evidence = {
    ...base,
    tdx: { quote: new Uint8Array(600).fill(4), ccelTable: new Uint8Array(56).fill(5), ccelData: new Uint8Array(100).fill(6) },
  };

  it('TDX evidence next to the TPM evidence round-trips through CBOR and JSON, with and without the CCEL', () => {
    for (const e of [withTdx, { ...base, tdx: { quote: new Uint8Array([1, 2, 3]) } }]) {
      expect(decodeEvidenceCbor(encodeEvidenceCbor(e))).toEqual(e);
      expect(decodeEvidenceJson(encodeEvidenceJson(e))).toEqual(e);
      expect(evidenceDigest(decodeEvidenceJson(encodeEvidenceJson(e)))).toEqual(evidenceDigest(e));
    }
    expect(Object.keys((JSON.parse(encodeEvidenceJson(withTdx)) as { tdx: object }).tdx)).toEqual(['quote', 'ccelTable', 'ccelData']);
  });

  it('tdx: next to tpm only (TDX-only is EVIDENCE_KIND_UNSUPPORTED), never with snp, CCEL table and data together, strict keys', () => {
    const doc = (): Record<string, unknown> => JSON.parse(encodeEvidenceJson(withTdx)) as Record<string, unknown>;
    const tdxOf = (d: Record<string, unknown>): Record<string, unknown> => d['tdx'] as Record<string, unknown>;
    const field = (d: Record<string, unknown>): string | undefined => {
      try {
        decodeEvidenceJson(JSON.stringify(d));
      } catch (e) {
        if (e instanceof VouchError) return `${e.code} ${e.field ?? ''}`;
        throw e;
      }
      return undefined;
    };
    expect(field(doc())).toBeUndefined();
    const tdxOnly = doc();
    delete tdxOnly['tpm'];
    expect(field(tdxOnly)).toBe('EVIDENCE_KIND_UNSUPPORTED evidence.tdx');
    const tdxOnlyWithProof = { ...tdxOnly, keyProof: Buffer.from(new Uint8Array(64)).toString('base64url') };
    expect(field(tdxOnlyWithProof)).toBe('EVIDENCE_KIND_UNSUPPORTED evidence.tdx');
    const both = doc();
    both['snp'] = { report: Buffer.from(new Uint8Array(1184)).toString('base64url') };
    expect(field(both)).toBe('EVIDENCE_MALFORMED evidence.tdx');
    const noData = doc();
    delete tdxOf(noData)['ccelData'];
    expect(field(noData)).toBe('EVIDENCE_MALFORMED evidence.tdx.ccelData');
    const noTable = doc();
    delete tdxOf(noTable)['ccelTable'];
    expect(field(noTable)).toBe('EVIDENCE_MALFORMED evidence.tdx.ccelTable');
    const noQuote = doc();
    delete tdxOf(noQuote)['quote'];
    expect(field(noQuote)).toBe('EVIDENCE_MALFORMED evidence.tdx.quote');
    const empty = doc();
    tdxOf(empty)['quote'] = '';
    expect(field(empty)).toBe('EVIDENCE_MALFORMED evidence.tdx.quote');
    const padded = doc();
    tdxOf(padded)['quote'] = 'AAAA==';
    expect(field(padded)).toBe('EVIDENCE_MALFORMED evidence.tdx.quote');
    const extra = doc();
    tdxOf(extra)['report'] = 'AA';
    expect(field(extra)).toBe('EVIDENCE_UNKNOWN_FIELD evidence.tdx.report');
    const notMap = doc();
    notMap['tdx'] = 'AA';
    expect(field(notMap)).toBe('EVIDENCE_MALFORMED evidence.tdx');
    const gpu = doc();
    gpu['gpu'] = {};
    expect(field(gpu)).toBe('EVIDENCE_KIND_UNSUPPORTED evidence.gpu');
    // The same data model in CBOR: a byte string is required, text is not bytes.
    const m = new Map<string, unknown>([['v', 1], ['challenge', 'c'], ['node', 'n'], ['boundKey', new Uint8Array([1])], ['tdx', new Map([['quote', new Uint8Array(10)]])]]);
    expect(codeOf(() => decodeEvidenceCbor(encodeCanonical(m)))).toBe('EVIDENCE_KIND_UNSUPPORTED');
    const asText = encodeCanonical(new Map<string, unknown>([...(textQuoteModel(withTdx))]));
    expect(codeOf(() => decodeEvidenceCbor(asText))).toBe('EVIDENCE_MALFORMED');
  });

  it('property: a mutated TPM+TDX envelope either decodes to one that re-encodes to the same bytes, or is a typed error', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const bytes = encodeEvidenceCbor(withTdx);
        bytes[at % bytes.length] = value;
        let decoded: Evidence;
        try {
          decoded = decodeEvidenceCbor(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(VouchError);
          expect((err as VouchError).code).toMatch(/^EVIDENCE_/);
          return;
        }
        expect(Buffer.from(encodeEvidenceCbor(decoded)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('non-canonical CBOR (keys out of order) is refused', () => {
    const m = new Map<string, unknown>([['v', 1], ['node', 'tpm-1']]);
    const canonical = encodeCanonical(m);
    // Swap the two entries by hand: same content, non-canonical order.
    const swapped = Uint8Array.from([canonical[0]!, ...canonical.subarray(3), ...canonical.subarray(1, 3)]);
    expect(codeOf(() => decodeEvidenceCbor(swapped))).toBe('EVIDENCE_MALFORMED');
  });

  const bytesArb = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const tpmEvidenceArb: fc.Arbitrary<Evidence> = fc.record({
    challengeId: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
    nodeId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
    boundKey: bytesArb(1, 100),
    attest: bytesArb(1, 200),
    signature: bytesArb(1, 100),
    banks: fc.uniqueArray(fc.constantFrom(0x0004, 0x000b, 0x000c), { minLength: 1, maxLength: 3 }),
    pcrIdx: fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 24 }),
    eventLog: fc.option(bytesArb(0, 64), { nil: undefined }),
    ima: fc.option(fc.tuple(bytesArb(0, 64), fc.nat({ max: 1_000_000 })), { nil: undefined }),
    snp: fc.option(fc.tuple(bytesArb(1184, 1184), fc.option(bytesArb(0, 64), { nil: undefined })), { nil: undefined }),
    tdx: fc.option(fc.tuple(bytesArb(1, 300), fc.option(fc.tuple(bytesArb(0, 60), bytesArb(0, 64)), { nil: undefined })), { nil: undefined }),
  }).map((r) => ({
    version: 1 as const,
    challengeId: r.challengeId,
    nodeId: r.nodeId,
    boundKey: r.boundKey,
    tpm: {
      attest: r.attest,
      signature: r.signature,
      pcrs: new Map(r.banks.map((b) => [b, new Map(r.pcrIdx.map((i) => [i, new Uint8Array(b === 0x0004 ? 20 : b === 0x000b ? 32 : 48).fill(i)] as const))] as const)),
      ...(r.eventLog !== undefined ? { eventLog: r.eventLog } : {}),
      ...(r.ima !== undefined ? { imaLog: r.ima[0], imaStart: r.ima[1] } : {}),
    },
    ...(r.snp !== undefined ? { snp: { report: r.snp[0], ...(r.snp[1] !== undefined ? { certTable: r.snp[1] } : {}) } } : {}),
    // snp and tdx exclude each other: a TDX quote only where there is no SNP report.
    ...(r.snp === undefined && r.tdx !== undefined ? { tdx: { quote: r.tdx[0], ...(r.tdx[1] !== undefined ? { ccelTable: r.tdx[1][0], ccelData: r.tdx[1][1] } : {}) } } : {}),
  }));
  /** SNP-only envelopes: no tpm, snp and keyProof required. */
  const snpOnlyEvidenceArb: fc.Arbitrary<Evidence> = fc.record({
    challengeId: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
    nodeId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/),
    boundKey: bytesArb(1, 100),
    report: bytesArb(1184, 1184),
    certTable: fc.option(bytesArb(0, 64), { nil: undefined }),
    keyProof: bytesArb(64, 64),
  }).map((r) => ({
    version: 1 as const,
    challengeId: r.challengeId,
    nodeId: r.nodeId,
    boundKey: r.boundKey,
    snp: { report: r.report, ...(r.certTable !== undefined ? { certTable: r.certTable } : {}) },
    keyProof: r.keyProof,
  }));
  const evidenceArb: fc.Arbitrary<Evidence> = fc.oneof(tpmEvidenceArb, snpOnlyEvidenceArb);

  it('property: both shapes (TPM with SNP or TDX, SNP-only) round-trip through CBOR and JSON to the same evidence and digest', () => {
    fc.assert(
      fc.property(evidenceArb, (e) => {
        const viaCbor = decodeEvidenceCbor(encodeEvidenceCbor(e));
        const viaJson = decodeEvidenceJson(encodeEvidenceJson(e));
        expect(viaCbor).toEqual(e);
        expect(viaJson).toEqual(e);
        expect(Buffer.from(evidenceDigest(viaJson)).equals(Buffer.from(evidenceDigest(e)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('property: a mutated SNP-only envelope either decodes to one that re-encodes to the same bytes, or is a typed error', () => {
    fc.assert(
      fc.property(snpOnlyEvidenceArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (e, at, value) => {
        const bytes = encodeEvidenceCbor(e);
        bytes[at % bytes.length] = value;
        let decoded: Evidence;
        try {
          decoded = decodeEvidenceCbor(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(VouchError);
          expect((err as VouchError).code).toMatch(/^EVIDENCE_/);
          return;
        }
        expect(Buffer.from(encodeEvidenceCbor(decoded)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('property: the digest of the received CBOR bytes is the evidence digest, and those bytes are the canonical encoding', () => {
    fc.assert(
      fc.property(evidenceArb, (e) => {
        const bytes = encodeEvidenceCbor(e);
        const { evidence, digest } = decodeEvidenceCborWithDigest(bytes);
        expect(evidence).toEqual(e);
        expect(Buffer.from(digest).equals(Buffer.from(evidenceDigest(evidence)))).toBe(true);
        expect(Buffer.from(encodeEvidenceCbor(evidence)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('property: whatever mutated bytes still decode re-encode to exactly those bytes (so their digest is the evidence digest)', () => {
    fc.assert(
      fc.property(evidenceArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (e, at, value) => {
        const bytes = encodeEvidenceCbor(e);
        bytes[at % bytes.length] = value;
        let decoded: Evidence;
        try {
          decoded = decodeEvidenceCborWithDigest(bytes).evidence;
        } catch (err) {
          expect(err).toBeInstanceOf(VouchError);
          return;
        }
        expect(Buffer.from(encodeEvidenceCbor(decoded)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: random bytes only ever give a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(codeOf(() => decodeEvidenceCbor(b))).toMatch(/^(EVIDENCE_|REQUEST_)/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('node key proof', () => {
  it('the message is SHA-256(tag || 0x00 || u16be(len(nonce)) || nonce || SHA-256(report)), as the README states', () => {
    const nonce = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const report = new Uint8Array(1184).fill(0x42);
    const msg = Buffer.concat([Buffer.from('vouch/node-key-proof/v1', 'utf8'), Buffer.of(0, 300 >> 8, 300 & 0xff), nonce, createHash('sha256').update(report).digest()]);
    expect(Buffer.from(nodeKeyProofMessage(nonce, report)).toString('hex')).toBe(createHash('sha256').update(msg).digest('hex'));
    expect(codeOf(() => nodeKeyProofMessage(new Uint8Array(0), report))).toBe('MISUSE_ARGUMENT');
  });

  it('a proof verifies with the node key only, over that nonce and that report (ES256, r || s)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
    const key = parseNodeKey(spki);
    const nonce = new Uint8Array(32).fill(1);
    const report = new Uint8Array(1184).fill(2);
    const proof = signNodeKeyProof(privateKey, nonce, report);
    expect(proof).toHaveLength(64);
    expect(verify('sha256', nodeKeyProofMessage(nonce, report), { key: publicKey, dsaEncoding: 'ieee-p1363' }, proof)).toBe(true);
    expect(checkNodeKeyProof(key, proof, nonce, report)).toEqual([]);
    const other = new Uint8Array(report);
    other[0] = (other[0] ?? 0) ^ 1;
    expect(checkNodeKeyProof(key, proof, nonce, other).map((f) => f.code)).toEqual(['SNP_KEY_PROOF_INVALID']);
    expect(checkNodeKeyProof(key, proof, new Uint8Array(32).fill(3), report).map((f) => f.code)).toEqual(['SNP_KEY_PROOF_INVALID']);
    expect(checkNodeKeyProof(key, proof.subarray(0, 63), nonce, report).map((f) => f.code)).toEqual(['SNP_KEY_PROOF_INVALID']);
    const flipped = new Uint8Array(proof);
    flipped[10] = (flipped[10] ?? 0) ^ 0x80;
    expect(checkNodeKeyProof(key, flipped, nonce, report).map((f) => f.code)).toEqual(['SNP_KEY_PROOF_INVALID']);
  });

  it('a node key is a P-256 SPKI in its one canonical encoding', () => {
    const p256 = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
    expect(parseNodeKey(p256).asymmetricKeyType).toBe('ec');
    const p384 = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' }));
    expect(codeOf(() => parseNodeKey(p384))).toBe('ENROLL_NODE_KEY_INVALID');
    const ed = new Uint8Array(generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }));
    expect(codeOf(() => parseNodeKey(ed))).toBe('ENROLL_NODE_KEY_INVALID');
    expect(codeOf(() => parseNodeKey(Uint8Array.of(...p256, 0)))).toBe('ENROLL_NODE_KEY_INVALID');
    expect(codeOf(() => parseNodeKey(new Uint8Array(0)))).toBe('ENROLL_NODE_KEY_INVALID');
  });

  it('fuzz: mutated or random node keys only ever give ENROLL_NODE_KEY_INVALID or a P-256 key that re-encodes to the same bytes', () => {
    const p256 = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, v]) => {
        const b = new Uint8Array(p256);
        b[at % b.length] = v;
        return b;
      })), (b) => {
        let key;
        try {
          key = parseNodeKey(b);
        } catch (e) {
          expect(e).toBeInstanceOf(VouchError);
          expect((e as VouchError).code).toBe('ENROLL_NODE_KEY_INVALID');
          return;
        }
        expect(Buffer.from(key.export({ format: 'der', type: 'spki' })).equals(Buffer.from(b))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('binding', () => {
  it('is domain-separated, length-prefixed and of the documented sizes', () => {
    const nonce = new Uint8Array(32).fill(1);
    const key = new Uint8Array([0x30, 0x59, 1]);
    expect(tpmQualifyingData(nonce, key)).toHaveLength(32);
    expect(teeReportData(nonce, key)).toHaveLength(64);
    expect(Buffer.from(tpmQualifyingData(nonce, key)).equals(Buffer.from(teeReportData(nonce, key).subarray(0, 32)))).toBe(false);
    // Moving a byte between nonce and key changes the value (the length prefix separates them).
    expect(tpmQualifyingData(new Uint8Array([1, 2]), new Uint8Array([3]))).not.toEqual(tpmQualifyingData(new Uint8Array([1]), new Uint8Array([2, 3])));
    expect(codeOf(() => tpmQualifyingData(new Uint8Array(0), key))).toBe('MISUSE_ARGUMENT');
  });

  it('is H(tag || 0x00 || u16be(len(nonce)) || nonce || SHA-256(key)), as the README states', () => {
    const nonce = new Uint8Array(300).map((_, i) => i & 0xff);
    const key = new Uint8Array([0x30, 0x59, 7, 7]);
    const keyHash = createHash('sha256').update(key).digest();
    const msg = (tag: string) => Buffer.concat([Buffer.from(tag, 'utf8'), Buffer.of(0, 300 >> 8, 300 & 0xff), nonce, keyHash]);
    expect(Buffer.from(tpmQualifyingData(nonce, key)).toString('hex')).toBe(createHash('sha256').update(msg('vouch/tpm-binding/v1')).digest('hex'));
    expect(Buffer.from(teeReportData(nonce, key)).toString('hex')).toBe(createHash('sha512').update(msg('vouch/tee-binding/v1')).digest('hex'));
  });
});
