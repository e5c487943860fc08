/**
 * Quotes made by tpm2-tools (`tpm2_createek`, `tpm2_createak`, `tpm2_quote`) verify with
 * `vouch verify tpm-quote`: ECC and RSA AKs, the AK as TPM2B_PUBLIC (`tpm2_createak -u`) and as
 * PEM (`tpm2_readpublic -f pem`), the PCR file in the serialized and the values format. Another
 * nonce or another PCR value is rejected (exit 1) with its specific code.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { Tools, vouch } from './tools.js';

/** The selection the brief names: sha1 PCRs 0-2 and sha256 PCRs 0-10. */
const PCR_LIST = 'sha1:0,1,2+sha256:0,1,2,3,4,5,6,7,8,9,10';
const PCRS_0_23 = Array.from({ length: 24 }, (_, i) => i).join(',');
/** Every bank swtpm has, PCRs 0-23 (72 values: nine TPML_DIGEST in the serialized file). */
const PCR_LIST_ALL = `sha1:${PCRS_0_23}+sha256:${PCRS_0_23}+sha384:${PCRS_0_23}`;
/** Bytes before the first digest in a `-F serialized` file: TPML_PCR_SELECTION (132), list count (4), digest count (4), size (2). */
const SERIALIZED_FIRST_VALUE = 132 + 4 + 4 + 2;

/** AKs made by tpm2_createak under the EK of tpm2_createek: file stem, -G, -s. */
const AKS = [
  ['ecc', 'ecc', 'ecdsa'],
  ['rsa', 'rsa', 'rsassa'],
  ['rsapss', 'rsa', 'rsapss'],
] as const;
type AkStem = (typeof AKS)[number][0];

/** Quotes made by tpm2_quote: file stem, AK, -l, extra arguments. */
const QUOTES: ReadonlyArray<readonly [string, AkStem, string, readonly string[]]> = [
  ['ecc', 'ecc', PCR_LIST, []],
  ['rsa', 'rsa', PCR_LIST, []],
  ['rsapss', 'rsapss', PCR_LIST, ['--scheme', 'rsapss']],
  ['ecc-all', 'ecc', PCR_LIST_ALL, []],
];

interface JsonResult {
  verified: boolean;
  failures: Array<{ code: string; field?: string }>;
  checks: Array<{ check: string; outcome: string }>;
}

let sw: TestSwtpm;
let work: string;
let tools: Tools;
const nonce = toHex(randomBytes(20));

beforeAll(async () => {
  sw = await startTestSwtpm();
  work = await mkdtemp(join(tmpdir(), 'vouch-interop-quote-'));
  tools = new Tools(() => sw.tcti, work);
  await tools.flushAll();
  // Non-zero values in quoted PCRs of both banks.
  await tools.ok('tpm2_pcrextend', `1:sha1=${toHex(randomBytes(20))},sha256=${toHex(randomBytes(32))}`, `10:sha256=${toHex(randomBytes(32))}`);
  await tools.ok('tpm2_createek', '-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub');
  for (const [stem, alg, scheme] of AKS) {
    await tools.ok('tpm2_createak', '-C', 'ek.ctx', '-c', `${stem}.ctx`, '-G', alg, '-g', 'sha256', '-s', scheme, '-u', `${stem}.pub`, '-n', `${stem}.name`);
    await tools.ok('tpm2_readpublic', '-c', `${stem}.ctx`, '-f', 'pem', '-o', `${stem}.pem`);
  }
  for (const [stem, ak, list, extra] of QUOTES) {
    const quote = ['-c', `${ak}.ctx`, '-l', list, '-q', nonce, '-g', 'sha256', ...extra];
    await tools.ok('tpm2_quote', ...quote, '-m', `${stem}.msg`, '-s', `${stem}.sig`, '-o', `${stem}.pcrs`);
    await tools.ok('tpm2_quote', ...quote, '-m', `${stem}-v.msg`, '-s', `${stem}-v.sig`, '-o', `${stem}-v.pcrs`, '-F', 'values');
  }
});

afterAll(async () => {
  await sw?.dispose();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

function at(f: string): string {
  return join(work, f);
}

describe('tpm2_quote → vouch verify tpm-quote', () => {
  it('tpm2_quote wrote the PCR file in both formats (serialized by default)', async () => {
    // 3 sha1 + 11 sha256 values: two TPML_DIGEST in the serialized dump; 3·20 + 11·32 bytes of values.
    expect((await readFile(at('ecc.pcrs'))).length).toBe(132 + 4 + 2 * 532);
    expect((await readFile(at('ecc-v.pcrs'))).length).toBe(3 * 20 + 11 * 32);
  });

  it('tpm2_quote with every bank, PCRs 0-23, wrote nine TPML_DIGEST (72 values)', async () => {
    expect((await readFile(at('ecc-all.pcrs'))).length).toBe(132 + 4 + 9 * 532);
    expect((await readFile(at('ecc-all-v.pcrs'))).length).toBe(24 * (20 + 32 + 48));
  });

  for (const [stem, ak] of QUOTES) {
    for (const akFile of [`${ak}.pub`, `${ak}.pem`]) {
      for (const [label, prefix, formatArgs] of [
        ['serialized PCR file (format detected)', stem, []],
        ['serialized PCR file', stem, ['--pcrs-format', 'serialized']],
        ['values PCR file', `${stem}-v`, ['--pcrs-format', 'values']],
      ] as const) {
        it(`quote ${stem}, AK as ${akFile.endsWith('.pem') ? 'PEM' : 'TPM2B_PUBLIC'}, ${label}: exit 0; another nonce exit 1`, async () => {
          const args = ['verify', 'tpm-quote', '--ak', at(akFile), '--message', at(`${prefix}.msg`), '--signature', at(`${prefix}.sig`), '--pcrs', at(`${prefix}.pcrs`), ...formatArgs];
          const good = await vouch(...args, '--nonce', nonce);
          expect(good.stderr).toBe('');
          expect(good.code, good.stdout).toBe(0);
          expect(good.stdout).toMatch(/\nverified\n$/);
          expect(good.stdout).toContain('PASS  attest.pcrDigest');
          expect(good.stdout).toContain('PASS  signature\n');
          expect(good.stdout).toContain(akFile.endsWith('.pem') ? 'SKIP  ak.template' : 'PASS  ak.template');

          const wrongNonce = nonce.slice(0, -2) + (nonce.endsWith('00') ? '01' : '00');
          const bad = await vouch(...args, '--nonce', wrongNonce, '--json');
          expect(bad.code).toBe(1);
          const json = JSON.parse(bad.stdout) as JsonResult;
          expect(json.verified).toBe(false);
          expect(json.failures.map((f) => f.code)).toEqual(['TPM_QUOTE_NONCE_MISMATCH']);
          expect(json.failures[0]?.field).toBe('TPMS_ATTEST.extraData');
        });
      }
    }

    it(`quote ${stem}: a changed PCR value in either file format is TPM_QUOTE_PCR_DIGEST_MISMATCH`, async () => {
      for (const [file, offset, format] of [
        [`${stem}.pcrs`, SERIALIZED_FIRST_VALUE, 'serialized'],
        [`${stem}-v.pcrs`, 0, 'values'],
      ] as const) {
        const bytes = await readFile(at(file));
        bytes[offset] = (bytes[offset] as number) ^ 0x01;
        await writeFile(at(`tampered-${file}`), bytes);
        const prefix = format === 'values' ? `${stem}-v` : stem;
        const args = ['--ak', at(`${ak}.pub`), '--message', at(`${prefix}.msg`), '--signature', at(`${prefix}.sig`), '--pcrs', at(`tampered-${file}`)];
        const r = await vouch('verify', 'tpm-quote', ...args, '--pcrs-format', format, '--nonce', nonce, '--json');
        expect(r.code).toBe(1);
        expect((JSON.parse(r.stdout) as JsonResult).failures.map((f) => f.code)).toEqual(['TPM_QUOTE_PCR_DIGEST_MISMATCH']);
      }
    });
  }

  it('the signature of one quote does not verify another (exit 1, TPM_QUOTE_SIGNATURE_INVALID)', async () => {
    const r = await vouch('verify', 'tpm-quote', '--ak', at('ecc.pub'), '--message', at('ecc-v.msg'), '--signature', at('ecc.sig'), '--nonce', nonce, '--json');
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as JsonResult).failures.map((f) => f.code)).toEqual(['TPM_QUOTE_SIGNATURE_INVALID']);
  });
});
