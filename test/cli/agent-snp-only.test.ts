/**
 * `vouch agent attest --snp-only`: no TPM is opened; the node key is created once in the state
 * directory (mode 0600) and never printed; outside an SEV-SNP guest the agent stops with
 * SNP_REPORT_SOURCE_UNAVAILABLE (exit 3) after step 1 of the enrollment.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { parsePolicy } from '../../src/policy/index.js';
import { ekTrustOf, startVerifier, testCa, type TestVerifier } from '../helpers/verifier.js';

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

const SNP = { debug: 'forbidden', migrationAgent: 'forbidden', smt: 'allowed', vmpl: [0], measurement: 'any', hostData: 'any', idKeyDigest: 'any', authorKeyDigest: 'any', familyId: 'any', imageId: 'any', minTcb: 'any', minGuestSvn: 'any', platformInfo: 'any', allowMaskedChipId: false, allowMissingCrl: false };

describe('vouch agent attest --snp-only', () => {
  let v: TestVerifier;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    v = await startVerifier({
      groups: new Map([['cvm', parsePolicy(JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'cvm', snp: SNP, artifact: { lifetimeSeconds: 60 } }), 'json')]]),
      ekTrust: ekTrustOf(await testCa('cli-snp-only')),
    });
    url = await v.app.listen({ host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'vouch-cli-snp-only-'));
  });

  afterAll(async () => {
    await v?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an unreachable verifier → exit 3 (VERIFIER_UNREACHABLE); no TPM is needed, and the key file is 0600 and never printed', async () => {
    const stateDir = join(dir, 'a');
    const r = await cli('agent', 'attest', '--snp-only', '--verifier', 'http://127.0.0.1:1', '--state-dir', stateDir, '--tcti', 'swtpm:host=127.0.0.1,port=1');
    expect(r.status).toBe(3);
    expect(r.err).toMatch(/could not be reached/);
    const key = join(stateDir, 'node-key.pem');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(`${r.out}${r.err}`).not.toContain(readFileSync(key, 'utf8').split('\n')[1] ?? 'unreachable');
  });

  const inGuest = existsSync('/sys/kernel/config/tsm/report') || existsSync('/dev/sev-guest');
  it.skipIf(inGuest)('outside an SEV-SNP guest → exit 3 with SNP_REPORT_SOURCE_UNAVAILABLE, after step 1 of the enrollment', async () => {
    const r = await cli('agent', 'attest', '--snp-only', '--verifier', url, '--state-dir', join(dir, 'b'), '--group', 'cvm');
    expect(r.status).toBe(3);
    expect(r.err).toMatch(/no SEV-SNP report interface/);
  });
});
