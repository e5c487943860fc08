/**
 * The end-to-end demo (`npm run demo`): a software TPM, a verifier process and an agent process on
 * loopback. The node is enrolled, attested and authorized; a relying party verifies the artifact;
 * then the node's measurements change and the next attestation is refused with the reason.
 * Everything it starts is stopped before it exits, also on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { provisionSwtpm, startSwtpm, type RunningSwtpm } from '../swtpm/index.js';
import { Tpm } from '../native/index.js';
import { TPM_ALG } from '../src/tpm/abi/constants.js';
import { checkCnf, verifyArtifact } from '../src/artifact/index.js';
import { fromBase64Url } from '../src/lib/bytes.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'src', 'cli', 'index.ts');
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s = ''): void => void process.stdout.write(`${s}\n`);
const step = (n: number, s: string): void => say(`\n${bold(`${n}. ${s}`)}`);

interface AgentJson {
  decision: 'affirming' | 'contraindicated';
  nodeId: string;
  ledger: { seq: number; hash: string };
  artifact?: string;
  boundKey?: string;
  failures: Array<{ code: string; field?: string; expected?: string; actual?: string; message: string }>;
}

/** Runs the vouch CLI (through tsx) and returns its output. */
function vouch(args: string[]): Promise<{ status: number; out: string; err: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => res({ status: code ?? 1, out, err }));
  });
}

/** Starts the verifier process and resolves with its URL once it listens. */
function startVerifier(args: string[]): Promise<{ url: string; proc: ChildProcess }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', cli, 'verifier', 'start', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => rej(new Error(`verifier did not start in 30 s:\n${err}`)), 30_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        res({ url: m[1] as string, proc });
      }
    });
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('close', (code) => {
      clearTimeout(timer);
      rej(new Error(`verifier exited with ${code}:\n${err}`));
    });
  });
}

function stopProcess(p: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (p.exitCode !== null || p.signalCode !== null) return res();
    p.once('close', () => res());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 5000).unref();
  });
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'vouch-demo-'));
  let swtpm: RunningSwtpm | undefined;
  let verifierProc: ChildProcess | undefined;
  try {
    say(bold('vouch — hardware-attested authorization, end to end on a software TPM'));

    step(1, 'Manufacture a TPM');
    const made = await provisionSwtpm({ dir: join(work, 'tpm') });
    swtpm = await startSwtpm({ stateDir: made.stateDir });
    say(`   swtpm with an RSA-2048 EK and its certificate from a local TPM CA, listening at ${swtpm.tcti}`);
    const trustDir = join(work, 'tpm-ca');
    mkdirSync(trustDir);
    copyFileSync(made.rootCaPem, join(trustDir, 'root.pem'));
    copyFileSync(made.issuerCertPem, join(trustDir, 'issuer.pem'));

    step(2, 'Start the verifier');
    const v = await startVerifier([
      '--data-dir', join(work, 'verifier'),
      '--listen', '127.0.0.1:0',
      '--tpm-ca-dir', trustDir,
      '--policy', `default=${join(root, 'policies', 'demo.yaml')}`,
      '--log-level', 'silent',
    ]);
    verifierProc = v.proc;
    say(`   verifier at ${v.url}: SQLite ledger, EK CA directory, policy "demo" (sha256 PCRs 0-7 and 23) for group "default"`);

    const agentArgs = ['agent', 'attest', '--verifier', v.url, '--tcti', swtpm.tcti, '--state-dir', join(work, 'agent'), '--group', 'default', '--json'];

    step(3, 'The agent enrolls its TPM and attests');
    const first = await vouch(agentArgs);
    if (first.status !== 0) throw new Error(`first attestation was not affirming (exit ${first.status}):\n${first.out}${first.err}`);
    const ok = JSON.parse(first.out.trim().split('\n').pop() as string) as AgentJson;
    say(`   enrolled as ${ok.nodeId}: EK certificate chained to the TPM CA, AK bound to the EK by credential activation`);
    say(`   quote verified, policy satisfied → ${bold(ok.decision.toUpperCase())} (ledger entry #${ok.ledger.seq})`);
    if (ok.artifact === undefined || ok.boundKey === undefined) throw new Error('no artifact in an affirming answer');

    step(4, 'A key broker verifies the authorization artifact');
    const jwksRes = await fetch(`${v.url}/.well-known/jwks.json`);
    const jwks = (await jwksRes.json()) as { keys: unknown[] };
    const claims = await verifyArtifact(ok.artifact, { jwks, audience: 'key-broker', now: Math.floor(Date.now() / 1000) });
    checkCnf(claims, fromBase64Url(ok.boundKey, 'boundKey'));
    say(`   JWKS fetched; signature, audience "key-broker", expiry (${claims.exp - claims.iat} s) and cnf key all check out`);
    say(`   ${claims.sub}: tpm0 is ${claims.submods['tpm0']?.['ear.status']} under ${claims.submods['tpm0']?.['ear.appraisal-policy-id']}`);

    step(5, "The node's measurements change");
    const digest = new Uint8Array(createHash('sha256').update('an unapproved kernel module').digest());
    const tpm = Tpm.open(swtpm.tcti);
    try {
      tpm.pcrExtend(23, TPM_ALG.SHA256, digest);
    } finally {
      tpm.close();
    }
    say('   PCR 23 (sha256) extended with the digest of an unapproved component');

    step(6, 'The next attestation is refused');
    const second = await vouch(agentArgs);
    const no = JSON.parse(second.out.trim().split('\n').pop() as string) as AgentJson;
    if (second.status !== 1 || no.decision !== 'contraindicated') throw new Error(`the changed node was not refused:\n${second.out}${second.err}`);
    say(`   ${bold(no.decision.toUpperCase())} (ledger entry #${no.ledger.seq}), no artifact issued:`);
    for (const f of no.failures) {
      say(`   ${f.code} at ${f.field ?? '?'}`);
      if (f.expected !== undefined) say(`     expected ${f.expected}`);
      if (f.actual !== undefined) say(`     actual   ${f.actual}`);
    }
    if (!no.failures.some((f) => f.code === 'POLICY_PCR_MISMATCH' && (f.field ?? '').includes('23'))) throw new Error('the refusal does not name PCR 23');

    say(`\n${bold('Done.')} Every decision above is in the verifier's hash-linked ledger; nothing is left running.`);
    return 0;
  } finally {
    if (verifierProc !== undefined) await stopProcess(verifierProc);
    if (swtpm !== undefined) await swtpm.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
