/**
 * Measured boot end to end on a software TPM: "firmware" extends PCRs and writes the event log,
 * the agent sends it with the quote, the verifier replays it and appraises what booted.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningVerifier } from '../../src/verifier/server.js';
import { startTestVerifier } from '../helpers/verifier-process.js';
import { Agent } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { Tpm } from '../../native/index.js';
import { encodeEventLog, measureBoot, typicalBoot } from '../helpers/firmware-log.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];
const bootloader = new Uint8Array(Buffer.from('a trusted boot loader image'));
const loaderDigest = createHash('sha256').update(bootloader).digest('hex');

function policyYaml(): string {
  return `apiVersion: vouch/v1
kind: AttestationPolicy
id: measured
tpm:
  banks: [sha256]
  pcrs:
    sha256:
      "0": any
      "4": any
      "7": any
      "8": any
measuredBoot:
  pcrs: [0, 4, 7, 8]
  secureBoot: enabled
  db: any
  dbx: any
  bootLoaders: ["${loaderDigest}"]
  kernels: any
  kernelCmdline:
    forbidSubstrings: ["init=/bin/sh"]
  sCrtmVersion:
    min: "1.2"
artifact:
  lifetimeSeconds: 120
`;
}

describe('measured boot on swtpm: replay, claims, policy', () => {
  let tpm: TestSwtpm;
  let dir: string;
  let verifier: RunningVerifier;
  let logPath: string;

  function boot(cmdline: string): void {
    const t = Tpm.open(tpm.tcti);
    try {
      writeFileSync(logPath, measureBoot({ pcrExtend: (p, a, d) => t.pcrExtend(p, a, d) }, typicalBoot({ secureBoot: true, cmdline, bootloader }), BANKS));
    } finally {
      t.close();
    }
  }

  async function attest(): ReturnType<Agent['attestOnce']> {
    const c = TpmCollector.open(tpm.tcti);
    try {
      return await new Agent({ verifier: new VerifierClient(verifier.url), tpm: c, stateDir: join(dir, 'agent'), group: 'default', eventLogPath: logPath, imaLogPath: null }).attestOnce();
    } finally {
      c.close();
    }
  }

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-mb-'));
    logPath = join(dir, 'binary_bios_measurements');
    verifier = await startTestVerifier(tpm, dir, { yaml: policyYaml() }, 'mb');
  });

  afterAll(async () => {
    await verifier?.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a good boot is affirmed, and the decision records what booted', async () => {
    boot('root=/dev/sda1 ro quiet');
    const out = await attest();
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    const row = await verifier.service.deps.store.getDecision(out.ledger.seq);
    const body = decodeLedgerEntry(row!.entry).body as { claims: { boot: Record<string, unknown> } };
    expect(body.claims.boot).toMatchObject({ secureBoot: 'enabled', bootLoader: loaderDigest, kernelCmdline: 'root=/dev/sda1 ro quiet', quirksApplied: [] });
  });

  it('a log that does not match the quote is refused, naming the PCR, both values and its last events', async () => {
    const t = Tpm.open(tpm.tcti);
    try {
      // Something the log does not show: an extra extend of PCR 8.
      for (const alg of BANKS) t.pcrExtend(8, alg, createHash(alg === TPM_ALG.SHA1 ? 'sha1' : 'sha256').update('hidden').digest());
    } finally {
      t.close();
    }
    const out = await attest();
    expect(out.decision).toBe('contraindicated');
    const f = (out.failures ?? []).find((x) => x.code === 'EVENTLOG_REPLAY_MISMATCH');
    expect(f).toBeDefined();
    expect(f!.field).toContain('8');
    expect(f!.expected).toMatch(/^[0-9a-f]{64}$/);
    expect(f!.actual).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a changed event (the logged command line is not what was measured) is refused with the event shown', async () => {
    await tpm.restart();
    boot('root=/dev/sda1 ro quiet');
    // Rewrite the log as if another command line had booted: its digests are consistent with its
    // data, but not with what the TPM measured.
    writeFileSync(logPath, encodeEventLog(typicalBoot({ secureBoot: true, cmdline: 'root=/dev/sda1 ro quiet nokaslr', bootloader }), BANKS));
    const out = await attest();
    expect(out.decision).toBe('contraindicated');
    // The failure carries the PCR and its last events, as the verifier answered them.
    const f = (out.failures ?? []).find((x) => x.code === 'EVENTLOG_REPLAY_MISMATCH') as { pcr?: number; lastEvents?: unknown[] } | undefined;
    expect(f?.pcr).toBe(8);
    expect(JSON.stringify(f?.lastEvents)).toContain('nokaslr');
  });

  it('after a reboot into a forbidden command line the refusal names the rule and the value', async () => {
    await tpm.restart();
    boot('root=/dev/sda1 init=/bin/sh');
    const out = await attest();
    expect(out.decision).toBe('contraindicated');
    expect(out.failures).toEqual([
      expect.objectContaining({ code: 'POLICY_KERNEL_CMDLINE', field: 'measuredBoot.kernelCmdline.forbidSubstrings', actual: 'root=/dev/sda1 init=/bin/sh' }),
    ]);
  });

  it('no event log → POLICY_EVENTLOG_MISSING', async () => {
    rmSync(logPath);
    const out = await attest();
    expect(out.missingLogs).toEqual([logPath]);
    expect(out.failures).toEqual([expect.objectContaining({ code: 'POLICY_EVENTLOG_MISSING' })]);
  });
});
