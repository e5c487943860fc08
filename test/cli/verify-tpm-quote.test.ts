import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { TPM_ALG, encodeTpm2bPublic, encodeTpmtPublic, pcrSelection } from '../../src/tpm/abi/index.js';
import { encodeSerializedPcrs } from '../../src/tpm/tools-formats.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { syntheticAk, syntheticPcrs, syntheticQuote } from '../helpers/synthetic.js';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

const GCE = HAVE_REAL ? realPath('tpm', 'quotes', 'gce-cos85-nonce9009') : '';

describe.skipIf(!HAVE_REAL)('vouch verify tpm-quote on the real GCE quotes', () => {
  for (const bank of ['sha1', 'sha256', 'sha384']) {
    it(`${bank}: exit 0 with the right nonce and the JSON PCR map`, async () => {
      const r = await cli('verify', 'tpm-quote', '--ak', join(GCE, 'ak.tpmt_public'), '--message', join(GCE, `quote-${bank}.tpms_attest`),
        '--signature', join(GCE, `quote-${bank}.tpmt_signature`), '--pcrs', join(GCE, 'pcrs.json'), '--nonce', '9009', '--json');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.out) as { verified: boolean; failures: unknown[]; checks: { check: string; outcome: string }[] };
      expect(doc.verified).toBe(true);
      expect(doc.checks.find((c) => c.check === 'attest.pcrDigest')?.outcome).toBe('pass');
    });
  }

  it('exit 1 with a wrong nonce; the JSON names code, field, expected and actual', async () => {
    const r = await cli('verify', 'tpm-quote', '--ak', join(GCE, 'ak.tpmt_public'), '--message', join(GCE, 'quote-sha256.tpms_attest'),
      '--signature', join(GCE, 'quote-sha256.tpmt_signature'), '--pcrs', join(GCE, 'pcrs.json'), '--nonce', '9008', '--json');
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.out) as { verified: boolean; failures: { code: string; field: string; expected: string; actual: string }[] };
    expect(doc.verified).toBe(false);
    expect(doc.failures).toEqual([expect.objectContaining({ code: 'TPM_QUOTE_NONCE_MISMATCH', field: 'TPMS_ATTEST.extraData', expected: '9008', actual: '9009' })]);
  });

  it('prints every check in text mode', async () => {
    const r = await cli('verify', 'tpm-quote', '--ak', join(GCE, 'ak.tpmt_public'), '--message', join(GCE, 'quote-sha1.tpms_attest'),
      '--signature', join(GCE, 'quote-sha1.tpmt_signature'), '--nonce', '9009');
    expect(r.status).toBe(0);
    expect(r.out).toContain('PASS  signature');
    expect(r.out).toContain('SKIP  attest.pcrDigest  (no PCR values were supplied)');
    expect(r.out.trim().endsWith('verified')).toBe(true);
  });
});

describe('vouch verify tpm-quote: formats and exit statuses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-cli-'));
  const sak = syntheticAk('ecc');
  const pcrs = syntheticPcrs();
  const sel = pcrSelection([{ hashAlg: TPM_ALG.SHA1, pcrs: [0, 1, 2] }, { hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }]);
  const q = syntheticQuote(sak, Uint8Array.of(0xab, 0xcd), pcrs, sel);
  const f = (name: string, bytes: Uint8Array | string): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const msg = f('msg', q.attest);
  const sig = f('sig', q.signature);
  const tpm2b = f('ak.tpm2b', encodeTpm2bPublic(sak.public));
  const tpmt = f('ak.tpmt', encodeTpmtPublic(sak.public));
  const serialized = f('pcrs.ser', encodeSerializedPcrs(sel, pcrs));
  const values = f('pcrs.val', Buffer.concat(sel.flatMap((b) => b.pcrs.map((p) => pcrs.get(b.hashAlg)!.get(p)!))));

  it('accepts TPM2B_PUBLIC and TPMT_PUBLIC AKs and serialized PCR files (more than 8 values)', async () => {
    for (const ak of [tpm2b, tpmt]) {
      const r = await cli('verify', 'tpm-quote', '--ak', ak, '--message', msg, '--signature', sig, '--pcrs', serialized, '--nonce', 'abcd');
      expect(r.status, r.out).toBe(0);
    }
  });

  it('accepts -F values PCR files with --pcrs-format values', async () => {
    const r = await cli('verify', 'tpm-quote', '--ak', tpm2b, '--message', msg, '--signature', sig, '--pcrs', values, '--pcrs-format', 'values', '--nonce', 'abcd');
    expect(r.status, r.out).toBe(0);
  });

  it('a PCR file that does not match the quote → exit 1 with TPM_QUOTE_PCR_DIGEST_MISMATCH', async () => {
    const other = syntheticPcrs('other');
    const bad = f('pcrs.bad', encodeSerializedPcrs(sel, other));
    const r = await cli('verify', 'tpm-quote', '--ak', tpm2b, '--message', msg, '--signature', sig, '--pcrs', bad, '--nonce', 'abcd', '--json');
    expect(r.status).toBe(1);
    expect((JSON.parse(r.out) as { failures: { code: string }[] }).failures.map((x) => x.code)).toEqual(['TPM_QUOTE_PCR_DIGEST_MISMATCH']);
  });

  it('a garbage AK file → exit 1 with its parse code', async () => {
    const r = await cli('verify', 'tpm-quote', '--ak', f('ak.bad', Uint8Array.of(0, 0x23, 1)), '--message', msg, '--signature', sig, '--json');
    expect(r.status).toBe(1);
    expect((JSON.parse(r.out) as { failures: { code: string }[] }).failures[0]!.code).toMatch(/^PARSE_/);
  });

  it('misuse → exit 2: missing file, missing flag, bad nonce, bad format', async () => {
    expect((await cli('verify', 'tpm-quote', '--ak', join(dir, 'nope'), '--message', msg, '--signature', sig)).status).toBe(2);
    expect((await cli('verify', 'tpm-quote', '--message', msg, '--signature', sig)).status).toBe(2);
    expect((await cli('verify', 'tpm-quote', '--ak', tpm2b, '--message', msg, '--signature', sig, '--nonce', 'xyz')).status).toBe(2);
    expect((await cli('verify', 'tpm-quote', '--ak', tpm2b, '--message', msg, '--signature', sig, '--pcrs-format', 'yaml')).status).toBe(2);
    expect((await cli('verify', 'tpm-quote', '--bogus')).status).toBe(2);
  });
});
