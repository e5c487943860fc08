import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/lib/bytes.js';
import {
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST,
  TPMA_OBJECT,
  decodeTpmtPublic,
  encodeTpmsAttest,
  hashByName,
  pcrSelection,
} from '../../src/tpm/abi/index.js';
import { importTpmPublic, verifyQuote, type PcrValues } from '../../src/tpm/verify/index.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';
import { signAttest, syntheticAk, syntheticPcrs, syntheticQuote } from '../helpers/synthetic.js';

const GCE = ['tpm', 'quotes', 'gce-cos85-nonce9009'];

function gcePcrs(): PcrValues {
  const doc = JSON.parse(readFileSync(realPath(...GCE, 'pcrs.json'), 'utf8')) as { pcrs: Record<string, Record<string, string>> };
  return new Map(
    Object.entries(doc.pcrs).map(([bank, values]) => [
      hashByName(bank)!.id,
      new Map(Object.entries(values).map(([i, hex]) => [Number(i), fromHex(hex)])),
    ]),
  );
}

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);

describe.skipIf(!HAVE_REAL)('real GCE quotes (go-tpm-tools gce-cos-85-nonce9009)', () => {
  const ak = HAVE_REAL ? importTpmPublic(decodeTpmtPublic(readReal(...GCE, 'ak.tpmt_public'))) : undefined;
  for (const bank of ['sha1', 'sha256', 'sha384']) {
    it(`verifies the ${bank} quote with nonce 9009`, () => {
      const r = verifyQuote({
        ak: ak!,
        attest: readReal(...GCE, `quote-${bank}.tpms_attest`),
        signature: readReal(...GCE, `quote-${bank}.tpmt_signature`),
        expectedExtraData: fromHex('9009'),
        expectedSelection: pcrSelection([{ hashAlg: hashByName(bank)!.id, pcrs: Array.from({ length: 24 }, (_, i) => i) }]),
        pcrs: gcePcrs(),
      });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checks.every((c) => c.outcome === 'pass')).toBe(true);
    });
    it(`rejects the ${bank} quote with a wrong nonce`, () => {
      const r = verifyQuote({
        ak: ak!,
        attest: readReal(...GCE, `quote-${bank}.tpms_attest`),
        signature: readReal(...GCE, `quote-${bank}.tpmt_signature`),
        expectedExtraData: fromHex('9008'),
        pcrs: gcePcrs(),
      });
      expect(r.ok).toBe(false);
      expect(codes(r)).toEqual(['TPM_QUOTE_NONCE_MISMATCH']);
      expect(r.failures[0]).toMatchObject({ field: 'TPMS_ATTEST.extraData', expected: '9008', actual: '9009' });
    });
  }
});

describe('synthetic quotes: every rejection path has its code', () => {
  const nonce = fromHex('00112233445566778899aabbccddeeff');
  const pcrs = syntheticPcrs();
  for (const kind of ['ecc', 'rsa'] as const) {
    const sak = syntheticAk(kind);
    const ak = importTpmPublic(sak.public);
    const q = syntheticQuote(sak, nonce, pcrs);
    const base = { ak, attest: q.attest, signature: q.signature, expectedExtraData: nonce, expectedSelection: q.selection, pcrs };

    it(`${kind}: a genuine quote verifies`, () => {
      const r = verifyQuote(base);
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
    });

    it(`${kind}: every one-byte flip of the signed message is rejected`, () => {
      for (let i = 0; i < q.attest.length; i++) {
        const attest = q.attest.slice();
        attest[i] = (attest[i] as number) ^ 0x01;
        const r = verifyQuote({ ...base, attest });
        expect(r.ok).toBe(false);
        expect(codes(r)).toContain('TPM_QUOTE_SIGNATURE_INVALID');
      }
    });

    it(`${kind}: a flipped signature byte → TPM_QUOTE_SIGNATURE_INVALID`, () => {
      const signature = q.signature.slice();
      signature[signature.length - 5] = (signature[signature.length - 5] as number) ^ 0x80;
      expect(codes(verifyQuote({ ...base, signature }))).toEqual(['TPM_QUOTE_SIGNATURE_INVALID']);
    });

    it(`${kind}: a flipped PCR value → TPM_QUOTE_PCR_DIGEST_MISMATCH`, () => {
      const bad = new Map([...pcrs].map(([b, m]) => [b, new Map(m)]));
      const v = bad.get(TPM_ALG.SHA256)!.get(7)!.slice();
      v[0] = (v[0] as number) ^ 1;
      bad.get(TPM_ALG.SHA256)!.set(7, v);
      const r = verifyQuote({ ...base, pcrs: bad });
      expect(codes(r)).toEqual(['TPM_QUOTE_PCR_DIGEST_MISMATCH']);
      expect(r.failures[0]!.field).toBe('TPMS_ATTEST.attested.quote.pcrDigest');
    });

    it(`${kind}: a flipped nonce → TPM_QUOTE_NONCE_MISMATCH`, () => {
      const n = nonce.slice();
      n[3] = (n[3] as number) ^ 0x10;
      expect(codes(verifyQuote({ ...base, expectedExtraData: n }))).toEqual(['TPM_QUOTE_NONCE_MISMATCH']);
    });

    it(`${kind}: another selection than requested → TPM_QUOTE_PCR_SELECTION_MISMATCH`, () => {
      const expectedSelection = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8] }]);
      expect(codes(verifyQuote({ ...base, expectedSelection }))).toEqual(['TPM_QUOTE_PCR_SELECTION_MISMATCH']);
    });

    it(`${kind}: a quoted PCR without a value → TPM_QUOTE_PCR_VALUES_MISSING`, () => {
      const partial = new Map([[TPM_ALG.SHA256, new Map([...pcrs.get(TPM_ALG.SHA256)!].filter(([i]) => i !== 4))]]);
      const r = verifyQuote({ ...base, pcrs: partial });
      expect(codes(r)).toEqual(['TPM_QUOTE_PCR_VALUES_MISSING']);
      expect(r.failures[0]!.field).toBe('pcrs.sha256[4]');
    });

    it(`${kind}: a quote signed by another AK → TPM_QUOTE_SIGNATURE_INVALID`, () => {
      const other = syntheticQuote(syntheticAk(kind), nonce, pcrs);
      expect(codes(verifyQuote({ ...base, attest: other.attest, signature: other.signature }))).toEqual(['TPM_QUOTE_SIGNATURE_INVALID']);
    });

    it(`${kind}: an AK that is not restricted → TPM_AK_TEMPLATE_INVALID naming the attribute`, () => {
      const pub = { ...sak.public, objectAttributes: sak.public.objectAttributes & ~TPMA_OBJECT.restricted };
      const r = verifyQuote({ ...base, ak: importTpmPublic(pub) });
      expect(codes(r)).toEqual(['TPM_AK_TEMPLATE_INVALID']);
      expect(r.failures[0]!.field).toBe('TPMT_PUBLIC.objectAttributes.restricted');
    });
  }

  it('a signature of the other key type → TPM_QUOTE_SCHEME_MISMATCH', () => {
    const ecc = syntheticAk('ecc');
    const rsaQuote = syntheticQuote(syntheticAk('rsa'), nonce, pcrs);
    const r = verifyQuote({ ak: importTpmPublic(ecc.public), attest: rsaQuote.attest, signature: rsaQuote.signature, expectedExtraData: nonce, pcrs });
    expect(codes(r)).toContain('TPM_QUOTE_SCHEME_MISMATCH');
    expect(r.ok).toBe(false);
  });

  it('a signed structure that is not a quote → TPM_QUOTE_NOT_QUOTE', () => {
    const sak = syntheticAk('ecc');
    const certify = encodeTpmsAttest({
      magic: TPM_GENERATED_VALUE,
      qualifiedSigner: new Uint8Array(34),
      extraData: nonce,
      clockInfo: { clock: 1n, resetCount: 1, restartCount: 0, safe: true },
      firmwareVersion: 1n,
      attested: { type: TPM_ST_ATTEST.CERTIFY, certify: { name: new Uint8Array(34), qualifiedName: new Uint8Array(34) } },
    });
    // Signed with the same key, as a TPM would sign TPM2_Certify output.
    const signature = signAttest(sak, certify);
    const r = verifyQuote({ ak: importTpmPublic(sak.public), attest: certify, signature, expectedExtraData: nonce, pcrs });
    expect(codes(r)).toEqual(['TPM_QUOTE_NOT_QUOTE']);
  });

  it('bad magic → PARSE_BAD_MAGIC failure with the field path, never a throw', () => {
    const sak = syntheticAk('ecc');
    const q = syntheticQuote(sak, nonce, pcrs);
    const attest = q.attest.slice();
    attest[0] = 0;
    const r = verifyQuote({ ak: importTpmPublic(sak.public), attest, signature: q.signature, expectedExtraData: nonce, pcrs });
    expect(codes(r)).toEqual(['TPM_QUOTE_SIGNATURE_INVALID', 'PARSE_BAD_MAGIC']);
    expect(r.failures[1]!.field).toBe('TPMS_ATTEST.magic');
  });

  it('is deterministic: the same inputs give identical results', () => {
    const sak = syntheticAk('ecc');
    const q = syntheticQuote(sak, nonce, pcrs);
    const ak = importTpmPublic(sak.public);
    const run = () => JSON.stringify(verifyQuote({ ak, attest: q.attest, signature: q.signature, expectedExtraData: nonce, pcrs }).failures);
    expect(run()).toBe(run());
  });
});
