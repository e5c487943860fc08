import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

describe('vouch tpm info', () => {
  let tpm: TestSwtpm;
  beforeAll(async () => {
    tpm = await startTestSwtpm();
  });
  afterAll(async () => {
    await tpm?.dispose();
  });

  it('prints manufacturer, firmware, banks and the EK certificates of a swtpm', async () => {
    const r = await cli('tpm', 'info', '--tcti', tpm.tcti);
    expect(r.status, r.err).toBe(0);
    expect(r.out).toContain('manufacturer: IBM');
    expect(r.out).toContain('banks:        sha1(24) sha256(24) sha384(24)');
    expect(r.out).toMatch(/ek cert: +NV 0x1c00002 rsa2048: .* issuer CN=swtpm-localca/);
    expect(r.out).toMatch(/ek cert: +NV 0x1c00016 ecc-p384: /);
  });

  it('--json gives the same facts as data', async () => {
    const r = await cli('tpm', 'info', '--tcti', tpm.tcti, '--json');
    const doc = JSON.parse(r.out) as { manufacturer: string; banks: Array<{ bank: string }>; ekCertificates: Array<{ index: number }> };
    expect(doc.manufacturer).toBe('IBM');
    expect(doc.banks.map((b) => b.bank)).toEqual(['sha1', 'sha256', 'sha384']);
    expect(doc.ekCertificates.map((c) => c.index)).toEqual([0x01c00002, 0x01c00016]);
  });

  it('an unreachable TPM → exit 3 with TSS_TCTI_FAILED', async () => {
    const r = await cli('tpm', 'info', '--tcti', 'swtpm:host=127.0.0.1,port=1');
    expect(r.status).toBe(3);
    expect(r.err).toContain('TSS_TCTI_FAILED');
  });
});
