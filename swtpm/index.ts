/**
 * Software TPMs for development and tests: manufacture one with `swtpm_setup` (EK certificates
 * from a project-local CA made by `swtpm_localca`) and run it as `swtpm socket` on loopback TCP,
 * reachable through the tpm2-tss `swtpm:` TCTI.
 *
 * Nothing here touches the system-wide swtpm configuration or `/var/lib/swtpm-localca`: every
 * configuration file and the CA state live under the directory the caller names. Every started
 * process is tracked and killed when this process exits, so no software TPM outlives its user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MisuseError, UnavailableError } from '../src/lib/errors.js';

/** PCR banks swtpm_setup activates unless told otherwise. */
export const DEFAULT_SWTPM_BANKS: readonly string[] = ['sha1', 'sha256', 'sha384'];

/** Executables, overridable through the environment for non-Debian layouts. */
const SWTPM = process.env.VOUCH_SWTPM ?? 'swtpm';
const SWTPM_SETUP = process.env.VOUCH_SWTPM_SETUP ?? 'swtpm_setup';
const SWTPM_LOCALCA = process.env.VOUCH_SWTPM_LOCALCA ?? '/usr/bin/swtpm_localca';

/** How much of a failing process's output an error message quotes. */
const STDERR_TAIL = 2000;

const BANK_RE = /^(sha1|sha256|sha384|sha512)$/;

/** Where a manufactured software TPM and its EK CA live. */
export interface ManufacturedSwtpm {
  /** The directory given to {@link manufactureSwtpm}. */
  readonly dir: string;
  /** The TPM state directory (`swtpm --tpmstate dir=`). */
  readonly stateDir: string;
  /** The local EK CA's state directory (keys, issuer certificate, serial). */
  readonly caDir: string;
  /** Self-signed root CA certificate (PEM file) of the local EK CA. */
  readonly rootCaPem: string;
  /** Intermediate CA certificate (PEM file) that signed the EK and platform certificates. */
  readonly issuerCertPem: string;
}

/** Options of {@link manufactureSwtpm}. */
export interface ManufactureOptions {
  /** An empty or absent directory that will hold the state, the CA and the configuration. */
  readonly dir: string;
  /** PCR banks to activate (default sha1, sha256, sha384). */
  readonly banks?: readonly string[];
}

function tail(s: string): string {
  return s.length > STDERR_TAIL ? `…${s.slice(-STDERR_TAIL)}` : s;
}

function checkBanks(banks: readonly string[]): void {
  if (banks.length === 0 || !banks.every((b) => BANK_RE.test(b))) {
    throw new MisuseError('MISUSE_ARGUMENT', `PCR banks must be a non-empty list of sha1, sha256, sha384, sha512; got ${banks.join(',')}`);
  }
}

function layout(dir: string): ManufacturedSwtpm {
  const abs = resolve(dir);
  const caDir = join(abs, 'ca');
  return {
    dir: abs,
    stateDir: join(abs, 'state'),
    caDir,
    rootCaPem: join(caDir, 'swtpm-localca-rootca-cert.pem'),
    issuerCertPem: join(caDir, 'issuercert.pem'),
  };
}

/** Runs a command to completion; a spawn failure or non-zero exit is SWTPM_FAILED with the output tail. */
function run(cmd: string, args: readonly string[], what: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new UnavailableError('SWTPM_FAILED', `${what}: cannot run ${cmd}: ${String(e)}`, { cause: e }));
      return;
    }
    child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', (e) => reject(new UnavailableError('SWTPM_FAILED', `${what}: cannot run ${cmd}: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise(out);
      else reject(new UnavailableError('SWTPM_FAILED', `${what}: ${cmd} exited with ${code ?? signal}: ${tail(out)}`));
    });
  });
}

/**
 * Manufactures a TPM 2.0 with `swtpm_setup`: an RSA-2048 EK (persistent 0x81010001, certificate
 * in NV 0x01c00002), an ECC P-384 EK (0x81010016, certificate in NV 0x01c00016) and a platform
 * certificate, all issued by a local CA created under `<dir>/ca`.
 *
 * @throws UnavailableError SWTPM_FAILED when swtpm_setup fails (its output is in the message)
 */
export async function manufactureSwtpm(opts: ManufactureOptions): Promise<ManufacturedSwtpm> {
  const banks = opts.banks ?? DEFAULT_SWTPM_BANKS;
  checkBanks(banks);
  const m = layout(opts.dir);
  await mkdir(m.stateDir, { recursive: true });
  await mkdir(m.caDir, { recursive: true });
  const localcaConf = join(m.dir, 'swtpm-localca.conf');
  const localcaOptions = join(m.dir, 'swtpm-localca.options');
  const setupConf = join(m.dir, 'swtpm_setup.conf');
  await writeFile(
    localcaConf,
    [
      `statedir = ${m.caDir}`,
      `signingkey = ${join(m.caDir, 'signkey.pem')}`,
      `issuercert = ${m.issuerCertPem}`,
      `certserial = ${join(m.caDir, 'certserial')}`,
      '',
    ].join('\n'),
  );
  await writeFile(localcaOptions, ['--platform-manufacturer vouch', '--platform-version 2.1', '--platform-model swtpm', ''].join('\n'));
  await writeFile(
    setupConf,
    [
      `create_certs_tool = ${SWTPM_LOCALCA}`,
      `create_certs_tool_config = ${localcaConf}`,
      `create_certs_tool_options = ${localcaOptions}`,
      `active_pcr_banks = ${banks.join(',')}`,
      '',
    ].join('\n'),
  );
  await run(
    SWTPM_SETUP,
    [
      '--tpm2',
      '--tpmstate',
      m.stateDir,
      '--create-ek-cert',
      '--create-platform-cert',
      '--pcr-banks',
      banks.join(','),
      '--config',
      setupConf,
      '--overwrite',
    ],
    'swtpm_setup',
  );
  for (const f of [m.rootCaPem, m.issuerCertPem]) {
    try {
      await access(f);
    } catch (e) {
      throw new UnavailableError('SWTPM_FAILED', `swtpm_setup succeeded but ${f} was not written`, { cause: e });
    }
  }
  return m;
}

/** The default cache directory for a manufactured TPM with these banks (one per user and bank set). */
export function defaultSwtpmCacheDir(banks: readonly string[] = DEFAULT_SWTPM_BANKS): string {
  const key = createHash('sha256').update(`v1|${banks.join(',')}`).digest('hex').slice(0, 12);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join(tmpdir(), `vouch-swtpm-cache-${uid}-${key}`);
}

/** Options of {@link provisionSwtpm}. */
export interface ProvisionOptions {
  /** Where this instance's copy goes; must not exist yet or be empty. */
  readonly dir: string;
  /** The manufactured template to copy (default {@link defaultSwtpmCacheDir}). */
  readonly cacheDir?: string;
  readonly banks?: readonly string[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * A fresh software TPM in `dir`, copied from a TPM manufactured once into `cacheDir`.
 * Manufacturing takes about a second and creates a new CA; copying gives each instance its own
 * state (and its own copy of the CA files) in milliseconds. Concurrent callers are safe: the
 * template is manufactured into a private directory and renamed into place atomically.
 */
export async function provisionSwtpm(opts: ProvisionOptions): Promise<ManufacturedSwtpm> {
  const banks = opts.banks ?? DEFAULT_SWTPM_BANKS;
  checkBanks(banks);
  const cacheDir = resolve(opts.cacheDir ?? defaultSwtpmCacheDir(banks));
  const template = layout(cacheDir);
  if (!(await exists(template.issuerCertPem)) || !(await exists(template.stateDir))) {
    const scratch = `${cacheDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(dirname(cacheDir), { recursive: true });
      await manufactureSwtpm({ dir: scratch, banks });
      try {
        await rename(scratch, cacheDir);
      } catch (e) {
        // Another process won the race: its template is as good as ours.
        if (!(await exists(template.issuerCertPem))) {
          throw new UnavailableError('SWTPM_FAILED', `cannot install the swtpm template at ${cacheDir}`, { cause: e });
        }
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  const m = layout(opts.dir);
  await mkdir(m.dir, { recursive: true });
  await cp(template.stateDir, m.stateDir, { recursive: true });
  await cp(template.caDir, m.caDir, { recursive: true });
  return m;
}

/** A running software TPM. */
export interface RunningSwtpm {
  /** TCTI configuration string for tpm2-tss ("swtpm:host=127.0.0.1,port=N"). */
  readonly tcti: string;
  /** TPM command port. */
  readonly port: number;
  /** Control channel port (port + 1). */
  readonly ctrlPort: number;
  /** Process id of swtpm. */
  readonly pid: number;
  /** Kills swtpm and waits until it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startSwtpm}. */
export interface StartOptions {
  readonly stateDir: string;
  /** How long to wait for the TPM port to accept connections (default 10 s). */
  readonly readyTimeoutMs?: number;
}

/** Every swtpm this process started and has not seen exit. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // The process is already gone; nothing is left to end.
      }
    }
  });
}

/** A loopback port P such that P and P + 1 are both free right now (a probe; binding may still race). */
async function probePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        const p = typeof a === 'object' && a !== null ? a.port : 0;
        s.close(() => res(p));
      });
    });
    if (port === 0 || port >= 65535) continue;
    const nextFree = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port + 1, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (nextFree) return port;
  }
  throw new UnavailableError('SWTPM_FAILED', 'no free pair of loopback ports for swtpm');
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      res(true);
    });
    sock.once('error', () => {
      sock.destroy();
      res(false);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

type Launch = { kind: 'ok'; swtpm: RunningSwtpm } | { kind: 'bind-failed'; output: string };

async function launch(stateDir: string, port: number, readyTimeoutMs: number): Promise<Launch> {
  const ctrlPort = port + 1;
  const child = spawn(
    SWTPM,
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${stateDir}`,
      '--server',
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl',
      `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
      '--flags',
      'not-need-init,startup-clear',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = tail(output + d.toString('utf8'))));
  child.stderr?.on('data', (d: Buffer) => (output = tail(output + d.toString('utf8'))));
  let exited = false;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      res();
    });
    child.once('error', (e) => {
      spawnError = e;
      exited = true;
      running.delete(child);
      res();
    });
  });
  running.add(child);
  installExitHook();

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => {
      if (!exited) child.kill('SIGKILL');
    }, 5000);
    await exitPromise;
    clearTimeout(killer);
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (spawnError !== undefined) {
      throw new UnavailableError('SWTPM_FAILED', `cannot run ${SWTPM}: ${spawnError.message}`, { cause: spawnError });
    }
    if (exited) {
      if (/bind|address already in use|EADDRINUSE/i.test(output)) return { kind: 'bind-failed', output };
      throw new UnavailableError('SWTPM_FAILED', `swtpm exited at start (exit ${child.exitCode ?? child.signalCode}): ${tail(output)}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new UnavailableError('SWTPM_FAILED', `swtpm did not accept connections on 127.0.0.1:${port} within ${readyTimeoutMs} ms: ${tail(output)}`);
    }
    await sleep(25);
  }
  const pid = child.pid;
  if (pid === undefined) {
    await stop();
    throw new UnavailableError('SWTPM_FAILED', 'swtpm started without a process id');
  }
  return { kind: 'ok', swtpm: { tcti: `swtpm:host=127.0.0.1,port=${port}`, port, ctrlPort, pid, stop } };
}

/**
 * Starts `swtpm socket` on a free pair of loopback ports and waits until the TPM port accepts
 * connections. The TPM is started (TPM2_Startup(CLEAR)) by swtpm itself.
 *
 * @throws UnavailableError SWTPM_FAILED when swtpm cannot be started (its output is in the message)
 */
export async function startSwtpm(opts: StartOptions): Promise<RunningSwtpm> {
  const stateDir = resolve(opts.stateDir);
  if (!(await exists(stateDir))) {
    throw new UnavailableError('SWTPM_FAILED', `swtpm state directory ${stateDir} does not exist (manufacture it first)`);
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await probePortPair();
    const r = await launch(stateDir, port, readyTimeoutMs);
    if (r.kind === 'ok') return r.swtpm;
    last = r.output;
  }
  throw new UnavailableError('SWTPM_FAILED', `swtpm could not bind loopback ports after 5 attempts: ${tail(last)}`);
}

/** Process ids of the software TPMs this process started and that are still running (for tests). */
export function runningSwtpmPids(): number[] {
  const out: number[] = [];
  for (const c of running) if (c.pid !== undefined) out.push(c.pid);
  return out;
}
