import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { snpReportBytesFromFile, snpShowCommand, verifySnpCommand, type VerifySnpOptions } from '../../src/cli/snp.js';
import { isVouchError } from '../../src/lib/errors.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

function io(): { io: { out: (s: string) => void; err: (s: string) => void }; out: () => string } {
  let out = '';
  return { io: { out: (s) => (out += s), err: (s) => (out += s) }, out: () => out };
}

async function verify(opts: VerifySnpOptions): Promise<{ status: number; doc: { verified: boolean; failures: { code: string }[]; allowancesUsed: string[]; report?: Record<string, unknown> } }> {
  const c = io();
  const status = await verifySnpCommand({ ...opts, json: true }, c.io);
  return { status, doc: JSON.parse(c.out()) };
}

describe('report file detection', () => {
  it('hex only when every byte is a hex digit (plus one optional newline)', () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(Array.from(snpReportBytesFromFile(enc('0aFF\n')))).toEqual([0x0a, 0xff]);
    expect(Array.from(snpReportBytesFromFile(enc('0aff')))).toEqual([0x0a, 0xff]);
    expect(snpReportBytesFromFile(enc('0aff\n\n')).length).toBe(6);
    expect(snpReportBytesFromFile(enc('0a ff')).length).toBe(5);
    expect(() => snpReportBytesFromFile(enc('0af'))).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_ENCODING' }));
  });
});

describe.skipIf(!HAVE_REAL)('vouch snp show / verify snp on real reports', () => {
  it('snp show decodes a hex report, every field', async () => {
    const c = io();
    expect(await snpShowCommand(realPath('snp', 'virtee-milan', 'report.hex'), { json: true }, c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { parsed: boolean; report: Record<string, unknown> };
    expect(doc.parsed).toBe(true);
    expect(doc.report.chipId).toMatch(/^d49554ec/);
    expect(doc.report.signingKey).toBe('vcek');
    const t = io();
    expect(await snpShowCommand(realPath('snp', 'trustee-vlek-milan', 'report.bin'), {}, t.io)).toBe(0);
    expect(t.out()).toContain('vmpl');
  });

  it('snp show on a non-report exits 1 with a typed failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snp-'));
    writeFileSync(join(dir, 'x.bin'), new Uint8Array(10));
    const c = io();
    expect(await snpShowCommand(join(dir, 'x.bin'), { json: true }, c.io)).toBe(1);
    expect(JSON.parse(c.out()).failures[0].code).toBe('PARSE_TRUNCATED');
  });

  it('verify snp: exit 0 with the VCEK and a roots bundle; exit 1 without a CRL allowance; exit 1 after a flip', async () => {
    const certs = [realPath('snp', 'gsg-milan', 'vcek.der'), realPath('roots', 'amd', 'ask_ark_milan.pem')];
    const report = realPath('snp', 'gsg-milan', 'report.bin');
    const ok = await verify({ report, certs, at: '2022-09-24T01:00:00Z', allowMissingCrl: true });
    expect(ok.doc.failures).toEqual([]);
    expect(ok.status).toBe(0);
    expect(ok.doc.allowancesUsed).toEqual(['missingCrl']);
    expect(ok.doc.report?.measurement).toMatch(/^b07af962/);
    const noCrl = await verify({ report, certs, at: '2022-09-24T01:00:00Z' });
    expect(noCrl.status).toBe(1);
    expect(noCrl.doc.failures.map((f) => f.code)).toEqual(['SNP_CRL_MISSING']);
    const dir = mkdtempSync(join(tmpdir(), 'snp-'));
    const m = readReal('snp', 'gsg-milan', 'report.bin');
    m[0x50] = (m[0x50] as number) ^ 1;
    writeFileSync(join(dir, 'r.bin'), m);
    const flipped = await verify({ report: join(dir, 'r.bin'), certs, at: '2022-09-24T01:00:00Z', allowMissingCrl: true });
    expect(flipped.status).toBe(1);
    expect(flipped.doc.failures.map((f) => f.code)).toEqual(['SNP_SIGNATURE_INVALID']);
  });

  it('verify snp: a directory of certificates (VLEK and every AMD chain); expired after 2025-12-10', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snp-'));
    copyFileSync(realPath('snp', 'trustee-vlek-milan', 'vlek.der'), join(dir, 'vlek.der'));
    for (const f of ['ask_ark_milan.pem', 'ask_ark_milan_vlek.pem', 'ask_ark_genoa.pem']) copyFileSync(realPath('roots', 'amd', f), join(dir, f));
    const report = realPath('snp', 'trustee-vlek-milan', 'report.bin');
    expect((await verify({ report, certs: dir, at: '2025-06-01T00:00:00Z', allowMissingCrl: true })).status).toBe(0);
    const late = await verify({ report, certs: dir, at: '2026-01-01T00:00:00Z', allowMissingCrl: true });
    expect(late.status).toBe(1);
    expect(late.doc.failures.map((f) => f.code)).toEqual(['SNP_CHAIN_EXPIRED']);
  });

  it('misuse: no --certs, a bad --at, no leaf certificate', async () => {
    const report = realPath('snp', 'gsg-milan', 'report.bin');
    const misuse = async (o: VerifySnpOptions): Promise<string> => {
      try {
        await verifySnpCommand(o, io().io);
      } catch (e) {
        if (isVouchError(e)) return e.category;
        throw e;
      }
      return 'none';
    };
    expect(await misuse({ report })).toBe('misuse');
    expect(await misuse({ report, certs: realPath('roots', 'amd', 'ask_ark_milan.pem'), at: 'yesterday' })).toBe('misuse');
    expect(await misuse({ report, certs: realPath('roots', 'amd', 'ask_ark_milan.pem') })).toBe('misuse');
  });
});
