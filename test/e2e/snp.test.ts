/**
 * A confidential VM with a vTPM, end to end: the agent sends its TPM quote and an SEV-SNP report
 * (through an emulated configfs-tsm, signed by the TEST-ONLY AMD chain), the verifier verifies and
 * appraises both, and the artifact carries a `cpu0` submodule next to `tpm0`.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type AttestOutcome } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { verifyArtifact } from '../../src/artifact/index.js';
import { startServer, type RunningVerifier } from '../../src/verifier/server.js';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { FakeTsm } from '../helpers/fake-tsm.js';
import type { TsmFs } from '../../src/agent/tsm.js';
import { trustDirFor } from '../helpers/verifier-process.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { writeFileSync } from 'node:fs';

const chain = testSnpChain();
const measurement = '01'.repeat(48);

function policy(debug: 'forbidden' | 'allowed'): string {
  return `apiVersion: vouch/v1
kind: AttestationPolicy
id: cvm
tpm:
  banks: [sha256]
  pcrs:
    sha256:
      "0": any
snp:
  debug: ${debug}
  migrationAgent: forbidden
  smt: allowed
  vmpl: [0]
  measurement: ["${measurement}"]
  hostData: any
  idKeyDigest: any
  authorKeyDigest: any
  familyId: any
  imageId: any
  minTcb: { bootLoader: ${chain.tcb.bl}, tee: ${chain.tcb.tee}, snp: ${chain.tcb.snp}, microcode: ${chain.tcb.ucode} }
  minGuestSvn: any
  platformInfo: any
  allowMaskedChipId: false
  allowMissingCrl: false
artifact:
  lifetimeSeconds: 120
  audience: [key-broker]
`;
}

describe('SEV-SNP next to the TPM, through configfs-tsm', () => {
  let tpm: TestSwtpm;
  let dir: string;
  let verifier: RunningVerifier;

  async function attest(tsm: TsmFs & { root: string }, stateDir: string): Promise<AttestOutcome> {
    const c = TpmCollector.open(tpm.tcti);
    try {
      return await new Agent({ verifier: new VerifierClient(verifier.url), tpm: c, stateDir, group: 'default', eventLogPath: null, imaLogPath: null, snp: { root: tsm.root, fs: tsm } }).attestOnce();
    } finally {
      c.close();
    }
  }

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-snp-'));
    writeFileSync(join(dir, 'policy.yaml'), policy('forbidden'));
    verifier = await startServer({
      dataDir: join(dir, 'verifier'),
      host: '127.0.0.1',
      port: 0,
      verifierId: 'snp',
      tpmCaDirs: [trustDirFor(tpm, dir)],
      policies: new Map([['default', join(dir, 'policy.yaml')]]),
      requireEkCertificate: true,
      challengeTtlSeconds: 60,
      rateLimitPerMinute: 1000,
      logLevel: 'silent',
      // The TEST-ONLY ARK is trusted here only: by default only AMD's ARKs are pinned.
      snp: { pinnedArks: { [createHash('sha256').update(chain.ark).digest('hex')]: 'Milan' }, crls: [chain.crl] },
    });
  });

  afterAll(async () => {
    await verifier?.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a genuine report bound to the challenge is affirmed, and the artifact has tpm0 and cpu0', async () => {
    const out = await attest(new FakeTsm(), join(dir, 'a'));
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    const jwks = (await (await fetch(`${verifier.url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    const claims = await verifyArtifact(out.artifact!, { jwks, audience: 'key-broker', now: Math.floor(Date.now() / 1000) });
    expect(Object.keys(claims.submods).sort()).toEqual(['cpu0', 'tpm0']);
    expect(claims.submods['cpu0']?.['ear.status']).toBe('affirming');
    // Every certificate and CRL the SNP appraisal used, by digest.
    expect(Object.keys(claims.submods['cpu0']?.['vouch.collateral'] ?? {}).sort()).toEqual(['snp.ark', 'snp.ask', 'snp.crl', 'snp.vcek']);
  });

  it('a guest launched with debug allowed is refused with the report field', async () => {
    const out = await attest(new FakeTsm({ reportFields: { policy: 0x30000n | (1n << 19n) } }), join(dir, 'a'));
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['POLICY_SNP_DEBUG']);
  });

  it('a report made for another challenge (REPORT_DATA) is refused', async () => {
    // A guest that puts other data into the request than the agent's binding (a replayed or
    // foreign report): the report is genuine, its REPORT_DATA is not this challenge's.
    const fake = new FakeTsm();
    const other: TsmFs & { root: string } = {
      root: fake.root,
      mkdir: (p) => fake.mkdir(p),
      readFile: (p) => fake.readFile(p),
      rmdir: (p) => fake.rmdir(p),
      writeFile: (p, data) => fake.writeFile(p, p.endsWith('/inblob') ? new Uint8Array(64).fill(7) : data),
    };
    const out = await attest(other, join(dir, 'a'));
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toContain('SNP_REPORT_DATA_MISMATCH');
  });
});
