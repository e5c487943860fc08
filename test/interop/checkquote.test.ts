/**
 * Quotes made by vouch (Tpm.quote through tpm2-tss) verify with `tpm2_checkquote`: ECC and RSA
 * AKs, every bank (sha1, sha256, sha384; PCRs 0-23), the AK written by vouch as PEM and as
 * TPM2B_PUBLIC, the PCR values written with encodeSerializedPcrs. tpm2_checkquote refuses the
 * quote for another nonce and for another PCR value.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, allPcrs, type TpmKey } from '../../native/index.js';
import { toHex } from '../../src/lib/bytes.js';
import { TPM_ALG, hashById } from '../../src/tpm/abi/constants.js';
import { encodeTpm2bPublic } from '../../src/tpm/abi/public.js';
import type { PcrSelection } from '../../src/tpm/abi/pcr.js';
import { encodeSerializedPcrs } from '../../src/tpm/tools-formats.js';
import { importTpmPublic } from '../../src/tpm/verify/keys.js';
import type { PcrValues } from '../../src/tpm/verify/quote.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { Tools } from './tools.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384];

let sw: TestSwtpm;
let tpm: Tpm;
let ek: TpmKey;
let work: string;
let tools: Tools;

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
  work = await mkdtemp(join(tmpdir(), 'vouch-interop-checkquote-'));
  tools = new Tools(() => sw.tcti, work);
  for (const alg of BANKS) {
    const h = hashById(alg);
    if (h === undefined) throw new Error(`hash ${alg} unknown`);
    for (const pcr of [0, 4, 16, 23]) tpm.pcrExtend(pcr, alg, createHash(h.nodeName).update(randomBytes(8)).digest());
  }
  ek = tpm.createEk('rsa2048');
});

afterAll(async () => {
  if (ek !== undefined) tpm.flush(ek);
  tpm?.close();
  await sw?.dispose();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** PCR values with the first byte of one value flipped. */
function flipped(values: PcrValues, alg: number, pcr: number): PcrValues {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bank, m] of values) out.set(bank, new Map(m));
  const v = Uint8Array.from(values.get(alg)?.get(pcr) ?? []);
  v[0] = (v[0] as number) ^ 0x01;
  out.get(alg)?.set(pcr, v);
  return out;
}

const SELECTIONS: ReadonlyArray<readonly [string, PcrSelection]> = [
  ['sha1+sha256+sha384 PCRs 0-23', allPcrs(BANKS)],
  ['sha256 PCRs 0-23', allPcrs([TPM_ALG.SHA256])],
];

describe('vouch Tpm.quote → tpm2_checkquote', () => {
  for (const kind of ['ecc-p256', 'rsa2048'] as const) {
    describe(`${kind} AK`, () => {
      let ak: TpmKey;
      beforeAll(async () => {
        ak = tpm.createAk(ek, kind);
        await writeFile(join(work, `${kind}.pub`), encodeTpm2bPublic(ak.public));
        await writeFile(join(work, `${kind}.pem`), importTpmPublic(ak.public).key.export({ type: 'spki', format: 'pem' }));
      });
      afterAll(() => {
        if (ak !== undefined) tpm.flush(ak);
      });

      for (const [label, sel] of SELECTIONS) {
        it(`${label}: tpm2_checkquote accepts it (AK as PEM and as TPM2B_PUBLIC) and refuses another nonce or PCR value`, async () => {
          const nonce = randomBytes(32);
          const q = tpm.quote(ak, nonce, sel);
          const pcrs = tpm.pcrRead(sel);
          const p = (f: string): string => join(work, `${kind}-${f}`);
          await writeFile(p('attest'), q.attest);
          await writeFile(p('sig'), q.signature);
          await writeFile(p('pcrs'), encodeSerializedPcrs(sel, pcrs));
          const lastBank = sel[sel.length - 1];
          if (lastBank === undefined) throw new Error('empty selection');
          await writeFile(p('pcrs-tampered'), encodeSerializedPcrs(sel, flipped(pcrs, lastBank.hashAlg, 16)));
          const check = (akFile: string, pcrFile: string, q: Uint8Array) =>
            tools.run('tpm2_checkquote', '-u', join(work, akFile), '-m', p('attest'), '-s', p('sig'), '-f', p(pcrFile), '-q', toHex(q), '-g', 'sha256');

          for (const akFile of [`${kind}.pem`, `${kind}.pub`]) {
            const good = await check(akFile, 'pcrs', nonce);
            expect(good.code, good.stderr).toBe(0);
            // tpm2_checkquote prints the PCR values it checked: every selected value, as vouch read it.
            const lastValue = pcrs.get(lastBank.hashAlg)?.get(23);
            expect(good.stdout).toContain(`0x${toHex(lastValue ?? new Uint8Array(0)).toUpperCase()}`);

            const otherNonce = Uint8Array.from(nonce);
            otherNonce[0] = (otherNonce[0] as number) ^ 0x01;
            const badNonce = await check(akFile, 'pcrs', otherNonce);
            expect(badNonce.code).not.toBe(0);
            expect(badNonce.stderr).toMatch(/nonce/i);

            const badPcr = await check(akFile, 'pcrs-tampered', nonce);
            expect(badPcr.code).not.toBe(0);
            expect(badPcr.stderr).toMatch(/PCR values failed to match/);
          }
        });
      }
    });
  }
});
