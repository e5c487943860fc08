/**
 * Quotes made by swtpm in every active bank (sha1, sha256, sha384; PCRs 0-23), with ECC P-256
 * and RSA-2048 AKs, verify with verifyQuote against the PCR values the TPM reports; another
 * nonce, another selection or a changed PCR value are each rejected with their own code.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, allPcrs, type TpmKey } from '../../native/index.js';
import { TPM_ALG, hashById } from '../../src/tpm/abi/constants.js';
import type { PcrSelection } from '../../src/tpm/abi/pcr.js';
import { importTpmPublic, verifyQuote, type PcrValues, type QuoteVerification } from '../../src/tpm/verify/index.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384];

let sw: TestSwtpm;
let tpm: Tpm;
let ek: TpmKey;

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
  // Measurements in a few PCRs of every bank, so that the quoted values are not all zero.
  for (const alg of BANKS) {
    const h = hashById(alg);
    if (h === undefined) throw new Error(`hash ${alg} unknown`);
    for (const pcr of [0, 7, 14, 23]) tpm.pcrExtend(pcr, alg, createHash(h.nodeName).update(`event ${pcr}`).digest());
  }
  ek = tpm.createEk('rsa2048');
});

afterAll(async () => {
  if (ek !== undefined) tpm.flush(ek);
  tpm?.close();
  await sw?.dispose();
});

function codes(r: QuoteVerification): string[] {
  return r.failures.map((f) => f.code);
}

/** PCR values with one byte of one value flipped. */
function flipped(values: PcrValues, alg: number, pcr: number): PcrValues {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bank, m] of values) out.set(bank, new Map(m));
  const v = Uint8Array.from(values.get(alg)?.get(pcr) ?? []);
  v[0] = (v[0] as number) ^ 0x01;
  out.get(alg)?.set(pcr, v);
  return out;
}

const SELECTIONS: ReadonlyArray<readonly [string, PcrSelection]> = [
  ['sha1', allPcrs([TPM_ALG.SHA1])],
  ['sha256', allPcrs([TPM_ALG.SHA256])],
  ['sha384', allPcrs([TPM_ALG.SHA384])],
  ['sha1+sha256+sha384', allPcrs(BANKS)],
];

describe('quotes made by swtpm verify with verifyQuote', () => {
  it('the TPM reports the three banks this test quotes', () => {
    expect(tpm.activeBanks().map((b) => b.hashAlg)).toEqual(BANKS);
  });

  for (const kind of ['ecc-p256', 'rsa2048'] as const) {
    describe(`${kind} AK`, () => {
      let ak: TpmKey;
      beforeAll(() => {
        ak = tpm.createAk(ek, kind);
      });
      afterAll(() => {
        if (ak !== undefined) tpm.flush(ak);
      });

      for (const [label, sel] of SELECTIONS) {
        it(`${label}, PCRs 0-23: verifies; another nonce is TPM_QUOTE_NONCE_MISMATCH`, () => {
          const key = importTpmPublic(ak.public);
          const nonce = randomBytes(32);
          const q = tpm.quote(ak, nonce, sel);
          const pcrs = tpm.pcrRead(sel);
          const input = { ak: key, attest: q.attest, signature: q.signature, expectedSelection: sel, pcrs };

          const good = verifyQuote({ ...input, expectedExtraData: nonce });
          expect(good.failures).toEqual([]);
          expect(good.ok).toBe(true);
          expect(good.checks.filter((c) => c.outcome !== 'pass')).toEqual([]);

          const otherNonce = Uint8Array.from(nonce);
          otherNonce[31] = (otherNonce[31] as number) ^ 0x80;
          const wrongNonce = verifyQuote({ ...input, expectedExtraData: otherNonce });
          expect(wrongNonce.ok).toBe(false);
          expect(codes(wrongNonce)).toEqual(['TPM_QUOTE_NONCE_MISMATCH']);
          expect(verifyQuote({ ...input, expectedExtraData: randomBytes(32) }).failures.map((f) => f.field)).toEqual(['TPMS_ATTEST.extraData']);

          const lastBank = sel[sel.length - 1];
          if (lastBank === undefined) throw new Error('empty selection');
          const wrongPcr = verifyQuote({ ...input, expectedExtraData: nonce, pcrs: flipped(pcrs, lastBank.hashAlg, 23) });
          expect(codes(wrongPcr)).toEqual(['TPM_QUOTE_PCR_DIGEST_MISMATCH']);
        });
      }

      it('a selection other than the one requested is TPM_QUOTE_PCR_SELECTION_MISMATCH', () => {
        const nonce = randomBytes(20);
        const asked = allPcrs([TPM_ALG.SHA256]);
        const q = tpm.quote(ak, nonce, asked);
        const r = verifyQuote({
          ak: importTpmPublic(ak.public),
          attest: q.attest,
          signature: q.signature,
          expectedExtraData: nonce,
          expectedSelection: allPcrs(BANKS),
          pcrs: tpm.pcrRead(asked),
        });
        expect(codes(r)).toEqual(['TPM_QUOTE_PCR_SELECTION_MISMATCH']);
      });
    });
  }

  it('no transient object or session is left but the EK', () => {
    expect(tpm.listHandles(0x80000000)).toHaveLength(1);
    expect(tpm.listHandles(0x02000000)).toEqual([]);
    expect(tpm.listHandles(0x03000000)).toEqual([]);
  });
});
