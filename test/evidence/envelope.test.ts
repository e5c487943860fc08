import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEvidenceCbor,
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
});
