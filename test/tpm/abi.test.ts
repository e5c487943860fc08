import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParseError, VouchError } from '../../src/lib/errors.js';
import { Writer } from '../../src/lib/reader.js';
import {
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST,
  decodeDigestList,
  decodePcrSelection,
  decodeTpm2bPublic,
  decodeTpmsAttest,
  decodeTpmtPublic,
  decodeTpmtSignature,
  encodeDigestList,
  encodePcrSelection,
  encodeTpm2bPublic,
  encodeTpmsAttest,
  encodeTpmtPublic,
  encodeTpmtSignature,
  type PcrSelection,
  type TpmsAttest,
} from '../../src/tpm/abi/index.js';
import { AK_TEMPLATE_ECC_P256, AK_TEMPLATE_RSA2048, EK_TEMPLATE_ECC_P256, EK_TEMPLATE_ECC_P384, EK_TEMPLATE_RSA2048 } from '../../src/tpm/templates.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';
import { syntheticAk, syntheticPcrs, syntheticQuote } from '../helpers/synthetic.js';

/** Every decoder, for the generic fuzz and truncation properties. */
const DECODERS: Record<string, (b: Uint8Array) => unknown> = {
  TPMS_ATTEST: decodeTpmsAttest,
  TPMT_PUBLIC: decodeTpmtPublic,
  TPM2B_PUBLIC: decodeTpm2bPublic,
  TPMT_SIGNATURE: decodeTpmtSignature,
  TPML_PCR_SELECTION: decodePcrSelection,
  TPML_DIGEST: decodeDigestList,
};

function parseErrorOf(f: () => unknown): ParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw new Error(`expected a ParseError, got ${String(e)}`);
  }
  throw new Error('expected a ParseError, got a result');
}

const sak = syntheticAk('ecc');
const q = syntheticQuote(sak, Uint8Array.of(1, 2, 3), syntheticPcrs());
const SAMPLES: Record<string, Uint8Array> = {
  TPMS_ATTEST: q.attest,
  TPMT_PUBLIC: encodeTpmtPublic(sak.public),
  TPM2B_PUBLIC: encodeTpm2bPublic(EK_TEMPLATE_RSA2048),
  TPMT_SIGNATURE: q.signature,
  TPML_PCR_SELECTION: encodePcrSelection(q.selection),
  TPML_DIGEST: encodeDigestList([new Uint8Array(32), new Uint8Array(20).fill(1)]),
};

describe('round trips: encode(decode(x)) == x', () => {
  for (const t of [EK_TEMPLATE_RSA2048, EK_TEMPLATE_ECC_P256, EK_TEMPLATE_ECC_P384, AK_TEMPLATE_ECC_P256, AK_TEMPLATE_RSA2048]) {
    it(`template ${t.type === TPM_ALG.RSA ? 'RSA' : 'ECC'} ${t.nameAlg}/${t.objectAttributes.toString(16)}`, () => {
      const bytes = encodeTpmtPublic(t);
      const back = decodeTpmtPublic(bytes);
      expect(back.raw).toEqual(bytes);
      expect(encodeTpmtPublic({ ...back, raw: undefined })).toEqual(bytes);
      expect(decodeTpm2bPublic(encodeTpm2bPublic(t)).raw).toEqual(bytes);
    });
  }

  it.skipIf(!HAVE_REAL)('real GCE structures re-encode to the same bytes', () => {
    const d = ['tpm', 'quotes', 'gce-cos85-nonce9009'];
    const ak = readReal(...d, 'ak.tpmt_public');
    expect(encodeTpmtPublic({ ...decodeTpmtPublic(ak), raw: undefined })).toEqual(ak);
    for (const bank of ['sha1', 'sha256', 'sha384']) {
      const att = readReal(...d, `quote-${bank}.tpms_attest`);
      const { raw: _raw, ...fields } = decodeTpmsAttest(att);
      expect(encodeTpmsAttest(fields)).toEqual(att);
      const sig = readReal(...d, `quote-${bank}.tpmt_signature`);
      expect(encodeTpmtSignature(decodeTpmtSignature(sig))).toEqual(sig);
    }
  });

  it('TPMS_ATTEST of random quotes (fast-check)', () => {
    const digest = fc.uint8Array({ minLength: 0, maxLength: 64 });
    const selection: fc.Arbitrary<PcrSelection> = fc.array(
      fc.record({
        hashAlg: fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512),
        sizeofSelect: fc.integer({ min: 0, max: 4 }),
        bits: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      }).map(({ hashAlg, sizeofSelect, bits }) => {
        const pcrs: number[] = [];
        for (let b = 0; b < sizeofSelect; b++) for (let i = 0; i < 8; i++) if (((bits[b] as number) >> i) & 1) pcrs.push(b * 8 + i);
        return { hashAlg, sizeofSelect, pcrs };
      }),
      { maxLength: 16 },
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 66 }),
        fc.uint8Array({ maxLength: 66 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.boolean(),
        selection,
        digest,
        (signer, extra, clock, resetCount, restartCount, safe, pcrSelect, pcrDigest) => {
          const fields: Omit<TpmsAttest, 'raw'> = {
            magic: TPM_GENERATED_VALUE,
            qualifiedSigner: signer,
            extraData: extra,
            clockInfo: { clock, resetCount, restartCount, safe },
            firmwareVersion: clock ^ 0x5555n,
            attested: { type: TPM_ST_ATTEST.QUOTE, quote: { pcrSelect, pcrDigest } },
          };
          const bytes = encodeTpmsAttest(fields);
          const back = decodeTpmsAttest(bytes);
          const { raw: _r, ...again } = back;
          expect(encodeTpmsAttest(again)).toEqual(bytes);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('strictness: bad input is a ParseError with the field path', () => {
  it('truncated structures: every prefix is rejected with PARSE_TRUNCATED', () => {
    for (const [name, bytes] of Object.entries(SAMPLES)) {
      for (let n = 0; n < bytes.length; n++) {
        const e = parseErrorOf(() => DECODERS[name]!(bytes.subarray(0, n)));
        expect(['PARSE_TRUNCATED', 'PARSE_SIZE_EXCEEDED', 'PARSE_BAD_MAGIC', 'PARSE_TRAILING_BYTES']).toContain(e.code);
        expect(e.field).toMatch(/^[A-Z0-9_]+/);
      }
    }
  });

  it('oversized structures: a trailing byte is PARSE_TRAILING_BYTES', () => {
    for (const [name, bytes] of Object.entries(SAMPLES)) {
      const e = parseErrorOf(() => DECODERS[name]!(Uint8Array.from([...bytes, 0])));
      if (name === 'TPM2B_PUBLIC') expect(e.code).toBe('PARSE_TRAILING_BYTES');
      else expect(e.code).toBe('PARSE_TRAILING_BYTES');
      expect(e.field).toBe(name);
    }
  });

  it('bad magic names TPMS_ATTEST.magic at offset 0', () => {
    const b = q.attest.slice();
    b[3] = 0x48;
    const e = parseErrorOf(() => decodeTpmsAttest(b));
    expect(e).toMatchObject({ code: 'PARSE_BAD_MAGIC', field: 'TPMS_ATTEST.magic', offset: 0, expected: 'ff544347', actual: 'ff544348' });
  });

  it('an unknown attestation type is rejected at TPMS_ATTEST.type', () => {
    const b = q.attest.slice();
    b[5] = 0x99;
    expect(parseErrorOf(() => decodeTpmsAttest(b))).toMatchObject({ code: 'PARSE_BAD_MAGIC', field: 'TPMS_ATTEST.type', offset: 4 });
  });

  it('absurd counts are rejected before any loop: TPML_PCR_SELECTION.count = 0xffffffff', () => {
    const e = parseErrorOf(() => decodePcrSelection(Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
    expect(e).toMatchObject({ code: 'PARSE_SIZE_EXCEEDED', field: 'TPML_PCR_SELECTION.count', actual: '4294967295' });
    expect(parseErrorOf(() => decodeDigestList(Uint8Array.of(0, 0, 0, 9)))).toMatchObject({ code: 'PARSE_SIZE_EXCEEDED', field: 'TPML_DIGEST.count' });
  });

  it('a TPM2B larger than its type allows is PARSE_SIZE_EXCEEDED (extraData > 66 bytes)', () => {
    const w = new Writer().u32(TPM_GENERATED_VALUE).u16(TPM_ST_ATTEST.QUOTE).tpm2b(new Uint8Array(0)).u16(67);
    const e = parseErrorOf(() => decodeTpmsAttest(w.finish()));
    expect(e).toMatchObject({ code: 'PARSE_SIZE_EXCEEDED', field: 'TPMS_ATTEST.extraData.size', offset: 8 });
  });

  it('sizeofSelect above 4 is rejected with the bank index in the path', () => {
    const e = parseErrorOf(() => decodePcrSelection(Uint8Array.of(0, 0, 0, 1, 0, 0x0b, 5, 0, 0, 0, 0, 0)));
    expect(e).toMatchObject({ code: 'PARSE_SIZE_EXCEEDED', field: 'TPML_PCR_SELECTION.pcrSelections[0].sizeofSelect' });
  });

  it('wrong tags: unknown public type, hash, signature scheme', () => {
    const pub = encodeTpmtPublic(AK_TEMPLATE_ECC_P256).slice();
    pub[1] = 0x24;
    expect(parseErrorOf(() => decodeTpmtPublic(pub))).toMatchObject({ code: 'PARSE_UNSUPPORTED_ALGORITHM', field: 'TPMT_PUBLIC.type' });
    const pub2 = encodeTpmtPublic(AK_TEMPLATE_ECC_P256).slice();
    pub2[3] = 0x0e;
    expect(parseErrorOf(() => decodeTpmtPublic(pub2))).toMatchObject({ code: 'PARSE_UNSUPPORTED_ALGORITHM', field: 'TPMT_PUBLIC.nameAlg' });
    const sig = q.signature.slice();
    sig[1] = 0x77;
    expect(parseErrorOf(() => decodeTpmtSignature(sig))).toMatchObject({ code: 'PARSE_UNSUPPORTED_ALGORITHM', field: 'TPMT_SIGNATURE.sigAlg' });
  });

  it('reserved TPMA_OBJECT bits are rejected (one-bit flips of each reserved bit)', () => {
    for (const bit of [0, 3, 8, 9, 12, 13, 14, 15, 20, 31]) {
      const bytes = encodeTpmtPublic({ ...AK_TEMPLATE_ECC_P256, objectAttributes: (AK_TEMPLATE_ECC_P256.objectAttributes | (1 << bit)) >>> 0 });
      expect(parseErrorOf(() => decodeTpmtPublic(bytes))).toMatchObject({ code: 'PARSE_RESERVED_NONZERO', field: 'TPMT_PUBLIC.objectAttributes' });
    }
  });

  it('TPMI_YES_NO other than 0/1 is rejected (clockInfo.safe)', () => {
    const b = q.attest.slice();
    // magic(4) type(2) signer(2+34) extra(2+3) clock(8) reset(4) restart(4) → safe
    const safeAt = 4 + 2 + 2 + 34 + 2 + 3 + 8 + 4 + 4;
    b[safeAt] = 2;
    expect(parseErrorOf(() => decodeTpmsAttest(b))).toMatchObject({ code: 'PARSE_BAD_VALUE', field: 'TPMS_ATTEST.clockInfo.safe', offset: safeAt });
  });
});

describe('fuzz: random and mutated input only ever yields ParseError', () => {
  for (const [name, decode] of Object.entries(DECODERS)) {
    it(`${name}: random bytes`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
          try {
            decode(bytes);
          } catch (e) {
            expect(e).toBeInstanceOf(VouchError);
            expect((e as VouchError).category).toBe('malformed');
          }
        }),
        { numRuns: 2000 },
      );
    });
    it(`${name}: mutations of a valid sample`, () => {
      const sample = SAMPLES[name]!;
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.nat({ max: sample.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (muts) => {
          const b = sample.slice();
          for (const [i, v] of muts) b[i] = v;
          try {
            decode(b);
          } catch (e) {
            expect(e).toBeInstanceOf(ParseError);
          }
        }),
        { numRuns: 2000 },
      );
    });
  }
});

describe('parse time grows linearly with input size', () => {
  it('a digest list of maximal entries and a maximal selection parse in bounded work', () => {
    // Counts are capped by the spec (16 banks, 8 digests), so the worst case is a fixed size:
    // the decoder never loops over a count it has not checked against its bound first.
    const sel = new Writer().u32(16);
    for (let i = 0; i < 16; i++) sel.u16(TPM_ALG.SHA256).u8(4).bytes(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
    expect(decodePcrSelection(sel.finish())).toHaveLength(16);
    const dl = new Writer().u32(8);
    for (let i = 0; i < 8; i++) dl.tpm2b(new Uint8Array(64));
    expect(decodeDigestList(dl.finish())).toHaveLength(8);
  });
});
