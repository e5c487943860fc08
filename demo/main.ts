/**
 * The end-to-end demo (`npm run demo`): a software TPM, a verifier process and agent processes on
 * loopback. The node is enrolled, attested and authorized; a relying party verifies the artifact;
 * a TPM-bound secret is released to the node, which decrypts it; a job is admitted for it. Then
 * the node's measurements change: the next attestation is refused with the reason, and so are the
 * same release request and the job admission. Everything it starts is stopped before it exits,
 * also on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
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

interface ReleaseJson {
  decision: 'released';
  binding: 'cnf' | 'tpm';
  ledger: { seq: number; hash: string };
  request: unknown;
}

interface RefusalJson {
  decision: 'refused';
  ledger: { seq: number; hash: string };
  failures: Array<{ code: string; actual?: string }>;
}

interface AdmissionJson {
  decision: 'admitted' | 'refused';
  artifact?: string;
  ledger?: { seq: number; hash: string };
  appraisal?: { seq: number; hash: string };
  failures?: Array<{ code: string }>;
}

/** `vouch verifier token add …`: the token (printed once) goes to a 0600 file. */
async function tokenFile(args: string[], file: string): Promise<string> {
  const r = await vouch(args);
  if (r.status !== 0) throw new Error(`vouch ${args.join(' ')} failed:\n${r.err}`);
  writeFileSync(file, r.out.trim(), { mode: 0o600 });
  return file;
}

/** What a scheduler hook does before starting a job: POST /v1/authorize with its token. */
async function authorize(url: string, tokenPath: string, node: string): Promise<AdmissionJson> {
  const res = await fetch(`${url}/v1/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${readFileSync(tokenPath, 'utf8').trim()}` },
    body: JSON.stringify({ node, action: 'run-job', resource: 'gpu-pool' }),
  });
  return (await res.json()) as AdmissionJson;
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
    // Operators' credentials, made before the first start: an admin token for the key broker, a
    // relying-party token for the job scheduler, the secrets master key, the job admission rules.
    const dataDir = join(work, 'verifier');
    const adminToken = await tokenFile(['verifier', 'token', 'add', '--role', 'admin', '--id', 'demo-admin', '--data-dir', dataDir], join(work, 'admin.token'));
    const schedulerToken = await tokenFile(['verifier', 'token', 'add', '--role', 'relying-party', '--id', 'demo-scheduler', '--data-dir', dataDir], join(work, 'scheduler.token'));
    const secretsKey = join(work, 'secrets.key');
    writeFileSync(secretsKey, randomBytes(32), { mode: 0o600 });
    const admission = join(work, 'admission.json');
    writeFileSync(admission, JSON.stringify({ lifetimeSeconds: 60, resources: { 'gpu-pool': { groups: ['default'], actions: ['run-job'], maxAgeSeconds: 600, requireSubmods: ['tpm0'] } } }));
    const v = await startVerifier([
      '--secrets-key-file', secretsKey,
      '--admission', admission,
      '--data-dir', dataDir,
      '--listen', '127.0.0.1:0',
      '--tpm-ca-dir', trustDir,
      '--policy', `default=${join(root, 'policies', 'demo.yaml')}`,
      '--log-level', 'silent',
    ]);
    verifierProc = v.proc;
    say(`   verifier at ${v.url}: SQLite ledger, EK CA directory, policy "demo" (sha256 PCRs 0-7 and 23) for group "default"`);
    say('   key broker on (secrets AES-256-GCM at rest), job admission rules for resource "gpu-pool", admin and scheduler tokens');

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

    step(5, 'A TPM-bound secret is released to the node, which decrypts it');
    const secretValue = join(work, 'db-password.in');
    writeFileSync(secretValue, `demo-db-password-${randomBytes(8).toString('hex')}`, { mode: 0o600 });
    const put = await vouch(['secret', 'put', 'db-password', '--value-file', secretValue, '--group', 'default', '--audience', 'key-broker', '--tpm-bound', '--verifier', v.url, '--token-file', adminToken]);
    if (put.status !== 0) throw new Error(`vouch secret put failed:\n${put.out}${put.err}`);
    say('   vouch secret put db-password --group default --audience key-broker --tpm-bound (the value is sent once; only its SHA-256 is in the ledger)');
    const received = join(work, 'db-password.out');
    const secretArgs = ['agent', 'secret', 'db-password', '--verifier', v.url, '--tcti', swtpm.tcti, '--state-dir', join(work, 'agent'), '--group', 'default', '--out', received, '--json'];
    const got = await vouch(secretArgs);
    if (got.status !== 0) throw new Error(`the secret was not released (exit ${got.status}):\n${got.out}${got.err}`);
    const released = JSON.parse(got.out.trim().split('\n').pop() as string) as ReleaseJson;
    const same = readFileSync(received).equals(readFileSync(secretValue));
    if (!same || released.binding !== 'tpm') throw new Error('the decrypted secret differs from the stored one');
    say(`   the agent attested again, proved its bound key, got the secret HPKE-sealed to that key and wrapped to its TPM (MakeCredential)`);
    say(`   → ${bold('RELEASED')} (ledger entry #${released.ledger.seq}); decrypted with the bound key and TPM2_ActivateCredential into a 0600 file,`);
    say(`     identical to the stored value (SHA-256 ${createHash('sha256').update(readFileSync(received)).digest('hex').slice(0, 16)}…)`);

    step(6, 'The scheduler asks before it starts a job on the node');
    const admitted = await authorize(v.url, schedulerToken, ok.nodeId);
    if (admitted.decision !== 'admitted' || admitted.artifact === undefined) throw new Error(`the job was not admitted: ${JSON.stringify(admitted)}`);
    const admissionClaims = await verifyArtifact(admitted.artifact, { jwks, now: Math.floor(Date.now() / 1000) });
    say(`   POST /v1/authorize {node, action: "run-job", resource: "gpu-pool"} → ${bold('ADMITTED')} (ledger entry #${admitted.ledger?.seq})`);
    say(`   signed admission artifact for ${admissionClaims.sub}, valid ${admissionClaims.exp - admissionClaims.iat} s, relying on appraisal #${admitted.appraisal?.seq}`);

    step(7, "The node's measurements change");
    const digest = new Uint8Array(createHash('sha256').update('an unapproved kernel module').digest());
    const tpm = Tpm.open(swtpm.tcti);
    try {
      tpm.pcrExtend(23, TPM_ALG.SHA256, digest);
    } finally {
      tpm.close();
    }
    say('   PCR 23 (sha256) extended with the digest of an unapproved component');

    step(8, 'The next attestation is refused');
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

    step(9, 'The secret and the job are refused too');
    // The release request of step 5, sent again as it was (a replay by anyone who captured it).
    const replay = await fetch(`${v.url}/v1/secrets/db-password/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(released.request) });
    const refusedRelease = (await replay.json()) as RefusalJson;
    if (refusedRelease.decision !== 'refused') throw new Error(`the release was not refused: ${JSON.stringify(refusedRelease)}`);
    say(`   the release request of step 5 again → ${bold('REFUSED')} ${replay.status} (ledger entry #${refusedRelease.ledger.seq}):`);
    for (const f of refusedRelease.failures) say(`   ${f.code}${f.actual !== undefined ? ` (${f.actual})` : ''}`);
    const refusedJob = await authorize(v.url, schedulerToken, ok.nodeId);
    if (refusedJob.decision !== 'refused') throw new Error(`the job was admitted after the change: ${JSON.stringify(refusedJob)}`);
    say(`   the scheduler's admission request → ${bold('REFUSED')} (ledger entry #${refusedJob.ledger?.seq}):`);
    for (const f of refusedJob.failures ?? []) say(`   ${f.code}`);

    step(10, 'Every decision is provable offline, and every evaluation replays to the same result');
    const cp = await fetch(`${v.url}/v1/ledger/checkpoints`, { method: 'POST', headers: { authorization: `Bearer ${readFileSync(adminToken, 'utf8').trim()}` } });
    const signed = (await cp.json()) as { treeSize: number; rootHash: string };
    if (cp.status !== 201) throw new Error(`no checkpoint: ${JSON.stringify(signed)}`);
    say(`   checkpoint signed: tree size ${signed.treeSize}, RFC 9162 root ${signed.rootHash.slice(0, 16)}…`);
    writeFileSync(join(work, 'jwks.json'), JSON.stringify(jwks));
    const verified = await vouch(['ledger', 'verify', '--data-dir', dataDir, '--jwks', join(work, 'jwks.json'), '--json']);
    const lv = JSON.parse(verified.out) as { ok: boolean; entries: number; checkpoints: { verified: number; total: number } };
    if (verified.status !== 0 || !lv.ok) throw new Error(`vouch ledger verify failed:\n${verified.out}${verified.err}`);
    say(`   vouch ledger verify: ${lv.entries} entries chained, ${lv.checkpoints.verified}/${lv.checkpoints.total} checkpoints verify with the pinned JWKS`);
    const kinds = new Map<string, number>();
    let replayed = 0;
    for (let seq = 1; seq <= lv.entries; seq++) {
      const r = await vouch(['replay', String(seq), '--data-dir', dataDir, '--json']);
      if (r.status === 2 && r.err.includes('REPLAY_NOT_REPLAYABLE')) {
        const kind = /is an? ([a-z-]+) decision/.exec(r.err)?.[1] ?? '?';
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        continue;
      }
      const rr = JSON.parse(r.out) as { kind: string; identical: boolean; recorded: { resultDigest: string; outcome: string }; replayed: { resultDigest: string } };
      if (r.status !== 0 || !rr.identical || rr.recorded.resultDigest !== rr.replayed.resultDigest) throw new Error(`replay of #${seq} differs:\n${r.out}${r.err}`);
      replayed++;
      say(`   vouch replay ${seq}: ${rr.kind} ${rr.recorded.outcome}, result digest ${rr.replayed.resultDigest.slice(0, 16)}… identical`);
    }
    say(`   ${replayed} appraisals and admissions replayed identically; the other ${[...kinds.values()].reduce((a, b) => a + b, 0)} entries record facts (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')})`);

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
