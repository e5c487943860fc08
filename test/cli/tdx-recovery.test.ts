/**
 * `vouch tdx tcb-recovery` without a store: the TCB levels a next TCB Info stops accepting (exit 1),
 * an unchanged next TCB Info (exit 0), misuse (exit 2). The store path is in test/e2e/tdx-pcs.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { SqliteStore } from '../../src/store/index.js';
import { FIXTURE, fixtureTcbLevels, issueTestTcbInfo, testTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vouch-tcb-recovery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const current = join(testTdxHierarchy().collateralDir, 'tcb_info.json');

async function cli(argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('vouch tdx tcb-recovery', () => {
  it('a next TCB Info that demotes the UpToDate level: listed, exit 1; the same levels: exit 0', async () => {
    const [top, ...rest] = fixtureTcbLevels();
    if (top === undefined) throw new Error('fixture levels');
    const next = file('next.json', issueTestTcbInfo({ tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber + 1, tcbLevels: [{ ...top, tcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-99999'] }, ...rest] }));
    const r = await cli(['tdx', 'tcb-recovery', '--next', next, '--current', current]);
    expect(r.status).toBe(1);
    expect(r.out).toContain('level 0 (tcbDate 2024-11-13T00:00:00.000Z): UpToDate → OutOfDate');
    const same = file('same.json', issueTestTcbInfo({ tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber + 1 }));
    const s = await cli(['tdx', 'tcb-recovery', '--next', same, '--current', current, '--json']);
    expect(s.status).toBe(0);
    expect((JSON.parse(s.out) as { levels: Array<{ wouldFail: boolean }> }).levels.every((l) => !l.wouldFail)).toBe(true);
  });

  it('misuse: no --next, nothing to compare with, a file that is not a TCB Info, an older next, another FMSPC, no store', async () => {
    expect((await cli(['tdx', 'tcb-recovery', '--current', current])).status).toBe(2);
    expect((await cli(['tdx', 'tcb-recovery', '--next', current])).status).toBe(2);
    expect((await cli(['tdx', 'tcb-recovery', '--next', file('junk.json', '{"tcbInfo":1}'), '--current', current])).status).toBe(2);
    expect((await cli(['tdx', 'tcb-recovery', '--next', file('old.json', issueTestTcbInfo({ tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber - 1 })), '--current', current])).status).toBe(2);
    expect((await cli(['tdx', 'tcb-recovery', '--next', file('other.json', issueTestTcbInfo({ fmspc: Uint8Array.of(1, 2, 3, 4, 5, 6) })), '--current', current])).status).toBe(2);
    // A data directory with no store is not created: the store is only read.
    const none = join(dir, 'no-store');
    const r = await cli(['tdx', 'tcb-recovery', '--next', current, '--data-dir', none]);
    expect(r.status).toBe(3);
    expect(r.err).toContain('STORE_UNAVAILABLE');
  });

  it('the read-only store refuses writes', async () => {
    const data = join(dir, 'store');
    await (await SqliteStore.open({ dataDir: data })).close();
    const ro = await SqliteStore.open({ dataDir: data, readOnly: true });
    try {
      expect(await ro.listDecisions(1, 10)).toEqual([]);
      await expect(ro.enrollNode({ nodeId: 'n', group: 'g', ekPublic: new Uint8Array(1), ekCert: null, akPublic: new Uint8Array(1), akName: new Uint8Array(34), enrolledAt: 1 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    } finally {
      await ro.close();
    }
  });
});
