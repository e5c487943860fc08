import { createHash } from 'node:crypto';
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
import { teeReportData, tpmQualifyingData } from '../../src/evidence/binding.js';
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

  it('non-canonical CBOR (keys out of order) is refused', () => {
    const m = new Map<string, unknown>([['v', 1], ['node', 'tpm-1']]);
    const canonical = encodeCanonical(m);
    // Swap the two entries by hand: same content, non-canonical order.
    const swapped = Uint8Array.from([canonical[0]!, ...canonical.subarray(3), ...canonical.subarray(1, 3)]);
    expect(codeOf(() => decodeEvidenceCbor(swapped))).toBe('EVIDENCE_MALFORMED');
  });

  const bytesArb = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const evidenceArb: fc.Arbitrary<Evidence> = fc.record({
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
  }));

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
