/**
 * Key release on software TPMs, end to end: a secret stored with `vouch secret put`, released to
 * an attested agent with `vouch agent secret` and in-process, TPM-bound so that only the enrolled
 * TPM recovers it — another swtpm (another EK) holding the same answer and even the agent's bound
 * key cannot. After the node's measurements change, the same release request is refused.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningVerifier } from '../../src/verifier/server.js';
import { addToken } from '../../src/verifier/auth.js';
import { Agent } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient, VerifierRefusal } from '../../src/agent/client.js';
import { openRelease, releaseProof } from '../../src/agent/secret.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { run, type CliIo } from '../../src/cli/main.js';
import { trustDirFor } from '../helpers/verifier-process.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'model-weights-key: 7f3a9c';

function captureIo(): CliIo & { text: () => { out: string; err: string } } {
  let out = '';
  let err = '';
  return { out: (s) => void (out += s), err: (s) => void (err += s), text: () => ({ out, err }) };
}

describe('key release on swtpm: TPM-bound secrets open only on the enrolled TPM', () => {
  let tpmA: TestSwtpm;
  let tpmB: TestSwtpm;
  let verifier: RunningVerifier;
  let dir: string;
  let adminTokenFile: string;

  beforeAll(async () => {
    [tpmA, tpmB] = await Promise.all([startTestSwtpm(), startTestSwtpm({ distinct: true })]);
    dir = mkdtempSync(join(tmpdir(), 'vouch-release-tpm-'));
    const dataDir = join(dir, 'verifier');
    const token = addToken(join(dataDir, 'tokens.json'), { id: 'root', role: 'admin' }, { now: Date.now() }).token;
    adminTokenFile = join(dir, 'admin.token');
    writeFileSync(adminTokenFile, token, { mode: 0o600 });
    const keyFile = join(dir, 'secrets.key');
    writeFileSync(keyFile, createHash('sha256').update('test master key').digest(), { mode: 0o600 });
    verifier = await startServer({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      verifierId: 'release-e2e',
      tpmCaDirs: [trustDirFor(tpmA, dir)],
      policies: new Map([['default', join(root, 'policies', 'demo.yaml')]]),
      requireEkCertificate: true,
      challengeTtlSeconds: 60,
      rateLimitPerMinute: 1000,
      logLevel: 'silent',
      secretsKeyFile: keyFile,
    });
  });

  afterAll(async () => {
    await verifier?.close();
    await Promise.all([tpmA?.dispose(), tpmB?.dispose()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('vouch secret put/list store it with its policy and never print the value', async () => {
    const valueFile = join(dir, 'value');
    writeFileSync(valueFile, SECRET);
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ groups: ['default'], evidence: ['tpm'], audience: 'key-broker', tpmBound: true }));
    const io = captureIo();
    expect(await run(['secret', 'put', 'weights', '--value-file', valueFile, '--policy', policyFile, '--verifier', verifier.url, '--token-file', adminTokenFile], io), io.text().err).toBe(0);
    const list = captureIo();
    expect(await run(['secret', 'list', '--verifier', verifier.url, '--token-file', adminTokenFile], list)).toBe(0);
    const listed = JSON.parse(list.text().out) as { secrets: Array<{ id: string; releasePolicy: { tpmBound?: boolean } }> };
    expect(listed.secrets).toEqual([expect.objectContaining({ id: 'weights', releasePolicy: expect.objectContaining({ tpmBound: true }) })]);
    expect(io.text().out + list.text().out).not.toContain(SECRET);
    const noToken = captureIo();
    writeFileSync(join(dir, 'bad.token'), 'vouch_not-a-token');
    expect(await run(['secret', 'list', '--verifier', verifier.url, '--token-file', join(dir, 'bad.token')], noToken)).toBe(1);
    expect(noToken.text().err).toContain('AUTH_UNAUTHENTICATED');
  });

  it('the enrolled TPM recovers the secret; another swtpm cannot, even with the agent key and the answer', async () => {
    const a = TpmCollector.open(tpmA.tcti);
    const b = TpmCollector.open(tpmB.tcti);
    try {
      expect(Buffer.from(a.identity.ek.name).equals(Buffer.from(b.identity.ek.name))).toBe(false);
      const agent = new Agent({ verifier: new VerifierClient(verifier.url), tpm: a, stateDir: join(dir, 'agent'), group: 'default', eventLogPath: null, imaLogPath: null });
      const { attestation, secret } = await agent.attestAndFetchSecret('weights');
      expect(attestation.decision).toBe('affirming');
      expect(secret?.binding).toBe('tpm');
      expect(Buffer.from(secret!.value).toString()).toBe(SECRET);

      // The raw answer to a fresh request, opened with the same agent key on each TPM.
      const client = new VerifierClient(verifier.url);
      const pop = releaseProof('weights', attestation.ledger.hash, agent.boundPrivateKey);
      const answer = await client.release('weights', { artifact: attestation.artifact!, pop });
      expect(Buffer.from(openRelease(answer, agent.boundPrivateKey, (blob, enc) => a.activate(blob, enc))).toString()).toBe(SECRET);
      let code = '';
      try {
        openRelease(answer, agent.boundPrivateKey, (blob, enc) => b.activate(blob, enc));
      } catch (e) {
        code = (e as { code: string }).code;
      }
      expect(code).toBe('RELEASE_TPM_UNWRAP_FAILED');

      // The node's measurements change: its next attestation is refused, and so is the same request.
      a.extend(23, TPM_ALG.SHA256, new Uint8Array(createHash('sha256').update('unapproved').digest()));
      const after = await agent.attestAndFetchSecret('weights');
      expect(after.attestation.decision).toBe('contraindicated');
      expect(after.secret).toBeNull();
      const replay = await client.release('weights', { artifact: attestation.artifact!, pop }).catch((e: unknown) => e);
      expect(replay).toBeInstanceOf(VerifierRefusal);
      expect((replay as VerifierRefusal).failures.map((f) => f.code)).toEqual(expect.arrayContaining(['RELEASE_NODE_UNTRUSTED', 'RELEASE_ARTIFACT_SUPERSEDED']));
    } finally {
      a.close();
      b.close();
    }
  });

  it('vouch agent secret writes the secret 0600 for the job; a refused node gets nothing', async () => {
    await tpmA.restart(); // a reboot: PCR 23 back to zero
    const out = join(dir, 'weights.key');
    const io = captureIo();
    const args = ['agent', 'secret', 'weights', '--verifier', verifier.url, '--tcti', tpmA.tcti, '--state-dir', join(dir, 'agent'), '--group', 'default', '--no-eventlog', '--no-ima-log', '--out', out, '--json'];
    expect(await run(args, io), io.text().err).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(SECRET);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const report = JSON.parse(io.text().out.trim()) as { decision: string; binding: string };
    expect(report).toMatchObject({ decision: 'released', binding: 'tpm' });
    expect(io.text().out + io.text().err).not.toContain(SECRET);

    const t = TpmCollector.open(tpmA.tcti);
    try {
      t.extend(23, TPM_ALG.SHA256, new Uint8Array(32).fill(9));
    } finally {
      t.close();
    }
    const no = captureIo();
    rmSync(out);
    expect(await run(args, no)).toBe(1);
    expect(no.text().err).toContain('the attestation was refused');
    expect(() => statSync(out)).toThrow();
  });
});
