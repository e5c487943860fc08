/**
 * `vouch verifier start` as a real child process for end-to-end tests: the CLI is spawned with
 * `node --import tsx src/cli/index.ts`, listens on a free loopback port, and its URL is read from
 * the "listening on URL" line it prints. Also writes the files such a verifier needs (a TPM CA
 * directory holding a synthetic test CA as PEM, the test policy).
 *
 * Every process started here is remembered, so {@link killAllVerifiers} (in an afterAll) leaves
 * none behind even when a test failed half-way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCa } from './verifier.js';

/** The repository root (test/helpers/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO_ROOT, 'src/cli/index.ts');

/** A verifier process. */
export interface VerifierProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly pid: number;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Standard error so far (the logs are silent; a crash shows here). */
  stderr(): string;
  /**
   * Sends `signal` and waits for the exit (a SIGKILL follows when it has not ended within
   * `graceMs`, default 10 s); a process that already ended is left alone.
   */
  kill(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

const running = new Set<VerifierProcess>();

/** Writes `ca`'s certificate as PEM into `dir` (created) and returns `dir`, for --tpm-ca-dir. */
export function writeTpmCaDir(ca: TestCa, dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'test-ca.pem'), new X509Certificate(ca.der).toString());
  return dir;
}

/** Writes `text` to `file` (its directory created) and returns `file`. */
export function writeFile(file: string, text: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

/**
 * Starts `vouch verifier start ARGS --listen 127.0.0.1:0` and resolves once it listens.
 *
 * @throws Error with its standard error when it exits before listening or does not listen within `timeoutMs`
 */
export function startVerifierProcess(args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<VerifierProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'verifier', 'start', '--listen', '127.0.0.1:0', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((res) => {
    proc.on('exit', (code, signal) => res(code ?? signal ?? -1));
  });
  return new Promise<VerifierProcess>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`verifier did not listen within ${opts.timeoutMs ?? 60_000} ms: ${err}`));
    }, opts.timeoutMs ?? 60_000);
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      proc.stdout?.off('data', onData);
      const v: VerifierProcess = {
        proc,
        url: m[1] as string,
        pid: proc.pid ?? -1,
        exited,
        stderr: () => err,
        async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          const force = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          const r = await exited;
          clearTimeout(force);
          running.delete(v);
          return r;
        },
      };
      running.add(v);
      res(v);
    };
    proc.stdout?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`verifier exited (${code}) before listening: ${err}`));
    });
  });
}

/** SIGKILLs every verifier process still running (for afterAll). */
export async function killAllVerifiers(): Promise<void> {
  await Promise.all([...running].map((v) => v.kill('SIGKILL')));
}
