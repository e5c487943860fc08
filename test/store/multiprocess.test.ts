import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { verifyChain } from '../../src/ledger/index.js';
import { SqliteStore } from '../../src/store/index.js';

const CONTENDER = fileURLToPath(new URL('./fixtures/contender.ts', import.meta.url));
const PROCESSES = 4;
const CHALLENGES = 300;
const APPENDS = 100;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-store-mp-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(id: number): Promise<{ won: string[]; seqs: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CONTENDER, dir, String(id), String(CHALLENGES), String(APPENDS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`contender ${id} exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as { won: string[]; seqs: number[] });
    });
  });
}

it(`${PROCESSES} processes racing on one SQLite file: each challenge consumed once, one linear ledger`, async () => {
  const setup = await SqliteStore.open({ dataDir: dir });
  await setup.enrollNode({
    nodeId: 'node-1',
    group: 'gpu',
    ekPublic: new Uint8Array([1]),
    ekCert: null,
    akPublic: new Uint8Array([2]),
    akName: new Uint8Array([3]),
    enrolledAt: 1,
  });
  for (let i = 0; i < CHALLENGES; i++) {
    await setup.createChallenge({ challengeId: `ch-${i}`, nodeId: 'node-1', nonce: new Uint8Array([i & 0xff]), params: {}, createdAt: 1, expiresAt: 10_000 });
  }

  const running = Array.from({ length: PROCESSES }, (_, i) => run(i));
  // Start every contender at once, after all have opened the store.
  const deadline = Date.now() + 50_000;
  while (!Array.from({ length: PROCESSES }, (_, i) => existsSync(join(dir, `ready-${i}`))).every(Boolean)) {
    if (Date.now() > deadline) throw new Error('contenders did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  writeFileSync(join(dir, 'go'), String(Date.now() + 250));
  const results = await Promise.all(running);

  const won = results.flatMap((r) => r.won);
  expect(won).toHaveLength(CHALLENGES);
  expect(new Set(won).size).toBe(CHALLENGES);
  // Real contention happened: more than one process won some challenges.
  expect(results.filter((r) => r.won.length > 0).length).toBeGreaterThan(1);

  const seqs = results.flatMap((r) => r.seqs).sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: PROCESSES * APPENDS }, (_, i) => i + 1));
  const rows = await setup.listDecisions(1, 10_000);
  const v = verifyChain(rows);
  expect(v.problems).toEqual([]);
  expect(v.count).toBe(PROCESSES * APPENDS);
  await setup.close();
});
