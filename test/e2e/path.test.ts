/**
 * The whole path on a software TPM: agent → verifier → artifact → relying party, then a refusal
 * after the measurements change. Once in-process (verifier on loopback, agent objects in this
 * process) and once as real processes (the vouch CLI for the verifier and the agent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningVerifier } from '../../src/verifier/server.js';
import { startTestVerifier, trustDirFor } from '../helpers/verifier-process.js';
import { Agent } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { checkCnf, verifyArtifact } from '../../src/artifact/index.js';
import { verifyChain } from '../../src/ledger/index.js';
import { replayDecision } from '../../src/verifier/replay.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const policyFile = join(root, 'policies', 'demo.yaml');
const change = new Uint8Array(createHash('sha256').update('unapproved component').digest());

describe('in-process: agent and verifier on loopback, swtpm', () => {
  let tpm: TestSwtpm;
  let verifier: RunningVerifier;
  let dir: string;

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-e2e-'));
    verifier = await startTestVerifier(tpm, dir, { file: policyFile }, 'e2e');
  });

  afterAll(async () => {
    await verifier?.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const agentFor = (collector: TpmCollector): Agent =>
    new Agent({ verifier: new VerifierClient(verifier.url), tpm: collector, stateDir: join(dir, 'agent'), group: 'default' });

  it('enrolls, attests, and the artifact verifies as a relying party checks it', async () => {
    const collector = TpmCollector.open(tpm.tcti);
    try {
      const agent = agentFor(collector);
      const out = await agent.attestOnce();
      expect(out.failures ?? []).toEqual([]);
      expect(out.decision).toBe('affirming');
      const jwks = (await (await fetch(`${verifier.url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
      const claims = await verifyArtifact(out.artifact!, { jwks, audience: 'key-broker', now: Math.floor(Date.now() / 1000) });
      expect(claims.sub).toBe(out.nodeId);
      expect(claims['vouch.ledger']).toEqual(out.ledger);
      expect(() => checkCnf(claims, out.boundKeySpki)).not.toThrow();
    } finally {
      collector.close();
    }
  });

  it('a restarted agent reuses its enrollment; a changed PCR is refused with index, expected and actual', async () => {
    const collector = TpmCollector.open(tpm.tcti);
    try {
      const agent = agentFor(collector);
      expect((await agent.attestOnce()).decision).toBe('affirming');
      collector.extend(23, TPM_ALG.SHA256, change);
      const no = await agent.attestOnce();
      expect(no.decision).toBe('contraindicated');
      expect(no.artifact).toBeUndefined();
      expect(no.failures).toEqual([
        expect.objectContaining({
          code: 'POLICY_PCR_MISMATCH',
          field: 'pcrs.sha256[23]',
          expected: '0'.repeat(64),
          actual: createHash('sha256').update(Buffer.concat([Buffer.alloc(32), change])).digest('hex'),
        }),
      ]);
    } finally {
      collector.close();
    }
  });

  it('after a TPM reboot (reset counter up, PCRs cleared) the node is affirming again', async () => {
    await tpm.restart();
    const collector = TpmCollector.open(tpm.tcti);
    try {
      expect((await agentFor(collector).attestOnce()).decision).toBe('affirming');
    } finally {
      collector.close();
    }
  });

  it('every decision is in the hash-linked ledger', async () => {
    const rows = await verifier.service.deps.store.listDecisions(1, 1000);
    expect(rows.map((r) => `${r.kind}:${r.outcome}`)).toEqual([
      'policy:assigned',
      'trust-anchor:anchors-set',
      'trust-anchor:signing-key-added',
      'enroll:enrolled',
      'appraise:affirming',
      'appraise:affirming',
      'appraise:contraindicated',
      'appraise:affirming',
    ]);
    expect(verifyChain(rows).ok).toBe(true);
    // Every appraisal of this run replays from its retained inputs to the identical result digest.
    for (const r of rows.filter((x) => x.kind === 'appraise')) {
      const replayed = await replayDecision(verifier.service.deps.store, r.seq);
      expect(replayed.identical, JSON.stringify(replayed)).toBe(true);
    }
  });
});

/** Runs the vouch CLI as a process. */
function vouch(args: string[]): Promise<{ status: number; out: string; err: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => res({ status: code ?? -1, out, err }));
  });
}

describe('real processes: vouch verifier start + vouch agent attest + swtpm', () => {
  let tpm: TestSwtpm;
  let dir: string;
  let proc: ChildProcess;
  let url: string;

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-e2e-proc-'));
    const trust = trustDirFor(tpm, dir);
    proc = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'src/cli/index.ts'), 'verifier', 'start', '--data-dir', join(dir, 'v'), '--listen', '127.0.0.1:0', '--tpm-ca-dir', trust, '--policy', `default=${policyFile}`, '--log-level', 'silent'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    url = await new Promise<string>((res, rej) => {
      let buf = '';
      let err = '';
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(buf);
        if (m !== null) res(m[1] as string);
      });
      proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      proc.on('close', (code) => rej(new Error(`verifier exited ${code}: ${err}`)));
    });
  });

  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      const closed = new Promise((r) => proc.once('close', r));
      proc.kill('SIGTERM');
      await closed;
    }
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the agent process is affirmed, the artifact verifies with `vouch artifact verify`, a change is refused (exit 1)', async () => {
    const agentArgs = ['agent', 'attest', '--verifier', url, '--tcti', tpm.tcti, '--state-dir', join(dir, 'agent'), '--json'];
    const first = await vouch(agentArgs);
    expect(first.status, first.err).toBe(0);
    const ok = JSON.parse(first.out.trim()) as { decision: string; artifact: string };
    expect(ok.decision).toBe('affirming');

    const verified = await vouch(['artifact', 'verify', ok.artifact, '--jwks', `${url}/.well-known/jwks.json`, '--audience', 'key-broker']);
    expect(verified.status, verified.err).toBe(0);
    expect(verified.out).toMatch(/^verified: tpm-[0-9a-f]+ is tpm0=affirming until /);
    const wrongAudience = await vouch(['artifact', 'verify', ok.artifact, '--jwks', `${url}/.well-known/jwks.json`, '--audience', 'scheduler']);
    expect(wrongAudience.status).toBe(1);
    expect(wrongAudience.err).toContain('ARTIFACT_AUDIENCE_MISMATCH');

    const { Tpm } = await import('../../native/index.js');
    const t = Tpm.open(tpm.tcti);
    try {
      t.pcrExtend(23, TPM_ALG.SHA256, change);
    } finally {
      t.close();
    }
    const second = await vouch(agentArgs);
    expect(second.status).toBe(1);
    const no = JSON.parse(second.out.trim()) as { decision: string; failures: Array<{ code: string; field: string }> };
    expect(no.decision).toBe('contraindicated');
    expect(no.failures.map((f) => `${f.code} ${f.field}`)).toEqual(['POLICY_PCR_MISMATCH pcrs.sha256[23]']);
  });

  it('`vouch agent start` attests on its interval until SIGTERM', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), 'agent', 'start', '--verifier', url, '--tcti', tpm.tcti, '--state-dir', join(dir, 'agent'), '--interval', '1', '--json'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    await new Promise<void>((res) => {
      let buf = '';
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const all = buf.split('\n').filter((l) => l.trim() !== '');
        if (all.length >= 2 && p.exitCode === null) {
          lines.push(...all);
          p.kill('SIGTERM');
        }
      });
      p.on('close', () => res());
    });
    expect(p.exitCode).toBe(0);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    // PCR 23 was changed by the test above: every periodic attestation is refused, and recorded.
    for (const l of lines) expect((JSON.parse(l) as { decision: string }).decision).toBe('contraindicated');
  });
});
