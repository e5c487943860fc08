import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manufactureSwtpm, provisionSwtpm, runningSwtpmPids, startSwtpm } from '../../swtpm/index.js';
import { isVouchError } from '../../src/lib/errors.js';

/** True while `pid` runs (a zombie waiting for a reaper does not count). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vouch-harness-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('swtpm harness', () => {
  it('manufactures a TPM with a local EK CA whose root signed the issuer', async () => {
    const m = await manufactureSwtpm({ dir: join(root, 'fresh') });
    expect(m.stateDir).toBe(join(root, 'fresh', 'state'));
    const rootCa = new X509Certificate(await readFile(m.rootCaPem));
    const issuer = new X509Certificate(await readFile(m.issuerCertPem));
    expect(issuer.checkIssued(rootCa)).toBe(true);
    expect(issuer.verify(rootCa.publicKey)).toBe(true);
  });

  it('rejects unknown PCR banks before running anything', async () => {
    await expect(manufactureSwtpm({ dir: join(root, 'bad'), banks: ['md5'] })).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT' });
  });

  it('starts on free loopback ports, accepts connections, and stop() leaves no process', async () => {
    const m = await provisionSwtpm({ dir: join(root, 'a') });
    const a = await startSwtpm({ stateDir: m.stateDir });
    const m2 = await provisionSwtpm({ dir: join(root, 'b') });
    const b = await startSwtpm({ stateDir: m2.stateDir });
    try {
      expect(a.tcti).toBe(`swtpm:host=127.0.0.1,port=${a.port}`);
      expect(a.ctrlPort).toBe(a.port + 1);
      expect(new Set([a.port, a.ctrlPort, b.port, b.ctrlPort]).size).toBe(4);
      expect(await accepts(a.port)).toBe(true);
      expect(await accepts(a.ctrlPort)).toBe(true);
      expect(alive(a.pid)).toBe(true);
      expect(runningSwtpmPids().sort()).toEqual([a.pid, b.pid].sort());
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(alive(a.pid)).toBe(false);
    expect(alive(b.pid)).toBe(false);
    expect(runningSwtpmPids()).toEqual([]);
    expect(await accepts(a.port)).toBe(false);
    await a.stop(); // idempotent
  });

  it('kills the software TPMs of a process that exits without stopping them', async () => {
    const m = await provisionSwtpm({ dir: join(root, 'orphan') });
    const script = join(root, 'orphan.mts');
    const harness = new URL('../../swtpm/index.ts', import.meta.url).pathname;
    await writeFile(
      script,
      `import { startSwtpm } from ${JSON.stringify(harness)};\n` +
        `const s = await startSwtpm({ stateDir: ${JSON.stringify(m.stateDir)} });\n` +
        'process.stdout.write(String(s.pid));\nprocess.exit(0);\n',
    );
    const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
    const pid = Number(execFileSync(tsx, [script], { encoding: 'utf8' }).trim());
    expect(pid).toBeGreaterThan(0);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });

  it('gives each provisioned copy its own state directory', async () => {
    const x = await provisionSwtpm({ dir: join(root, 'x') });
    const y = await provisionSwtpm({ dir: join(root, 'y') });
    expect(x.stateDir).not.toBe(y.stateDir);
    expect(await readFile(join(x.stateDir, 'tpm2-00.permall'))).toEqual(await readFile(join(y.stateDir, 'tpm2-00.permall')));
  });

  it('reports SWTPM_FAILED with swtpm output when it cannot start', async () => {
    const err = await startSwtpm({ stateDir: join(root, 'missing') }).catch((e: unknown) => e);
    expect(isVouchError(err) && err.code).toBe('SWTPM_FAILED');
  });
});
