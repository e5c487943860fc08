/**
 * `vouch verify tdx`, run in-process: the real quotes with their collateral at the PROVENANCE
 * times through the registered command (main.ts), synthetic quotes of the TEST-ONLY hierarchy
 * through verifyTdxCommand (the test root pinned programmatically, as no flag can), policies,
 * REPORTDATA, JSON shape and exit statuses (0 verified, 1 rejected, 2 misuse).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { verifyTdxCommand } from '../../src/cli/verify-tdx.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { toHex } from '../../src/lib/bytes.js';
import { FIXTURE_TD_ATTRIBUTES_DEBUG, TEST_TDX_ROOT_FINGERPRINT, signSyntheticTdxQuote, testTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';

function io(): { io: { out: (s: string) => void; err: (s: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => (out += s), err: (s) => (err += s) }, out: () => out, err: () => err };
}

const dir = mkdtempSync(join(tmpdir(), 'vouch-verify-tdx-'));
function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

interface Out {
  verified: boolean;
  at: string;
  policy?: { id: string; digest: string };
  checks: { check: string; outcome: string }[];
  failures: { code: string; field?: string }[];
  allowancesUsed: string[];
  tcb: { status?: string; advisoryIds: string[]; fmspc?: string };
  pck?: { ca: string; fmspc: string };
  quote: { header: { version: number }; body: { mrTd: string; reportData: string } };
}

const nonce = new Uint8Array(32).fill(3);
const spki = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
const bound = teeReportData(nonce, spki);
const OPEN = { advisoryIds: 'any', mrTd: 'any', rtmr0: 'any', rtmr1: 'any', rtmr2: 'any', rtmr3: 'any', mrSeam: 'any', mrConfigId: 'any', mrOwner: 'any', mrOwnerConfig: 'any', attributes: 'any', xfam: 'any', allowMissingCrl: false };
const policyFile = (name: string, tdx: unknown): string => file(name, JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'tdx-test', tdx, artifact: { lifetimeSeconds: 300 } }));

describe.skipIf(!HAVE_REAL)('vouch verify tdx on the real corpus', () => {
  it('dcapqvl-b0c06f-v4 with its collateral.json at 2025-07-01: exit 0, JSON with checks, tcb, pck and the decoded quote', async () => {
    const c = io();
    const status = await run(['verify', 'tdx', '--quote', realPath('tdx', 'dcapqvl-b0c06f-v4', 'quote.dat'), '--collateral', realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'), '--at', '2025-07-01T00:00:00Z', '--json'], c.io);
    expect(c.err()).toBe('');
    expect(status).toBe(0);
    const o = JSON.parse(c.out()) as Out;
    expect(o).toMatchObject({ verified: true, at: '2025-07-01T00:00:00.000Z', failures: [], allowancesUsed: [], tcb: { status: 'UpToDate', advisoryIds: [], fmspc: 'b0c06f000000' }, pck: { ca: 'platform', fmspc: 'b0c06f000000' } });
    expect(o.checks.every((x) => x.outcome === 'pass')).toBe(true);
    expect(o.quote.header.version).toBe(4);
  });

  it('gtg-spr-e4-v4 from a collateral directory: its appended text needs --allow-trailing-data; then rejected with TDX_TCB_LEVEL_NOT_FOUND only (exit 1, text)', async () => {
    const args = ['verify', 'tdx', '--quote', realPath('tdx', 'gtg-spr-e4-v4', 'quote.dat'), '--collateral', realPath('tdx', 'gtg-spr-e4-v4'), '--at', '2023-07-01T01:00:00Z'];
    const a = io();
    expect(await run([...args, '--json'], a.io)).toBe(1);
    expect((JSON.parse(a.out()) as Out).failures.map((f) => f.code)).toEqual(['TDX_QUOTE_TRAILING_DATA']);
    const b = io();
    expect(await run([...args, '--allow-trailing-data'], b.io)).toBe(1);
    expect(b.out()).toContain('PASS  quote.SIGNATURE');
    expect(b.out()).toContain('FAIL  tcb.tcbInfo');
    expect(b.out()).toContain('TDX_TCB_LEVEL_NOT_FOUND at pck.sgxExtension.tcb');
    expect(b.out()).toContain('rejected: 1 failure(s)');
  });

  it('dcapqvl-emr-v5-outdated: refused by a default policy (POLICY_TDX_TCB_STATUS) with its REPORTDATA given', async () => {
    const c = io();
    const quote = realPath('tdx', 'dcapqvl-emr-v5-outdated', 'quote.dat');
    const show = io();
    await run(['tdx', 'show', quote, '--json'], show.io);
    const reportData = (JSON.parse(show.out()) as { quote: { body: { reportData: string } } }).quote.body.reportData;
    const status = await run(['verify', 'tdx', '--quote', quote, '--collateral', realPath('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json'), '--at', '2026-03-01T00:00:00Z', '--policy', policyFile('p-open.json', OPEN), '--report-data', reportData, '--json'], c.io);
    expect(status).toBe(1);
    const o = JSON.parse(c.out()) as Out;
    expect(o.failures.map((f) => f.code)).toEqual(['TDX_TCB_LEVEL_NOT_FOUND', 'POLICY_TDX_TCB_STATUS']);
    expect(o.policy?.id).toBe('tdx-test');
    expect(o.checks.find((x) => x.check === 'report.REPORTDATA')?.outcome).toBe('pass');
  });
});

describe('vouch verify tdx on synthetic quotes (TEST-ONLY root pinned programmatically)', () => {
  const h = testTdxHierarchy();
  const pins = [TEST_TDX_ROOT_FINGERPRINT];
  const good = file('good.dat', signSyntheticTdxQuote({ td: { reportData: bound } }));
  const at = '2026-01-01T00:00:00Z';

  it('verified with the collateral directory; the same through run() is TDX_ROOT_NOT_PINNED (no flag trusts a test root)', async () => {
    const a = io();
    expect(await verifyTdxCommand({ quote: good, collateral: h.collateralDir, at, json: true, pinnedRootFingerprints: pins }, a.io)).toBe(0);
    expect((JSON.parse(a.out()) as Out).tcb.status).toBe('UpToDate');
    const b = io();
    expect(await run(['verify', 'tdx', '--quote', good, '--collateral', h.collateralDir, '--at', at, '--json'], b.io)).toBe(1);
    expect(new Set((JSON.parse(b.out()) as Out).failures.map((f) => f.code))).toEqual(new Set(['TDX_ROOT_NOT_PINNED']));
  });

  it('with a policy and the binding: exit 0; a debug TD: POLICY_TDX_DEBUG; a wrong --report-data: TDX_REPORT_DATA_MISMATCH', async () => {
    const policy = policyFile('p.json', OPEN);
    const ok = io();
    expect(await verifyTdxCommand({ quote: good, collateral: h.collateralDir, at, policy, reportData: toHex(bound), pinnedRootFingerprints: pins }, ok.io)).toBe(0);
    expect(ok.out()).toContain('verified and appraised against policy tdx-test');
    const debug = file('debug.dat', signSyntheticTdxQuote({ td: { reportData: bound, tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG } }));
    const d = io();
    expect(await verifyTdxCommand({ quote: debug, collateral: h.collateralDir, at, policy, reportData: toHex(bound), json: true, pinnedRootFingerprints: pins }, d.io)).toBe(1);
    expect((JSON.parse(d.out()) as Out).failures).toEqual([expect.objectContaining({ code: 'POLICY_TDX_DEBUG', field: 'TD_REPORT.TDATTRIBUTES.DEBUG' })]);
    const w = io();
    expect(await verifyTdxCommand({ quote: good, collateral: h.collateralDir, at, policy, reportData: '00'.repeat(64), json: true, pinnedRootFingerprints: pins }, w.io)).toBe(1);
    expect((JSON.parse(w.out()) as Out).failures.map((f) => f.code)).toEqual(['TDX_REPORT_DATA_MISMATCH']);
    // Without a policy, --report-data is checked alone.
    const alone = io();
    expect(await verifyTdxCommand({ quote: good, collateral: h.collateralDir, at, reportData: '00'.repeat(64), json: true, pinnedRootFingerprints: pins }, alone.io)).toBe(1);
  });

  it('a policy without a tdx section: POLICY_TDX_NOT_CONFIGURED (exit 1)', async () => {
    const snpOnly = file('snp.json', JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'tpm-only', tpm: { banks: ['sha256'], pcrs: { sha256: { '0': 'any' } } }, artifact: { lifetimeSeconds: 300 } }));
    const c = io();
    expect(await verifyTdxCommand({ quote: good, collateral: h.collateralDir, at, policy: snpOnly, json: true, pinnedRootFingerprints: pins }, c.io)).toBe(1);
    expect((JSON.parse(c.out()) as Out).failures.map((f) => f.code)).toEqual(['POLICY_TDX_NOT_CONFIGURED']);
  });

  it('misuse (exit 2): a tdx policy without --report-data, a bad --at or --report-data, a missing file, --allow-missing-crl with --policy', async () => {
    const policy = policyFile('p2.json', OPEN);
    const cases: string[][] = [
      ['--policy', policy],
      ['--at', 'yesterday'],
      ['--report-data', 'abcd'],
      ['--policy', policy, '--report-data', toHex(bound), '--allow-missing-crl'],
    ];
    for (const extra of cases) {
      const c = io();
      expect(await run(['verify', 'tdx', '--quote', good, '--collateral', h.collateralDir, ...extra], c.io), extra.join(' ')).toBe(2);
    }
    const c = io();
    expect(await run(['verify', 'tdx', '--quote', join(dir, 'absent.dat')], c.io)).toBe(2);
    const r = io();
    expect(await run(['verify', 'tdx', '--quote', good, '--policy', policy], r.io)).toBe(2);
    expect(r.err()).toContain('TDX_REPORT_DATA_REQUIRED');
  });

  it('a file that is not a quote, or malformed collateral: rejected (exit 1) with the parse code', async () => {
    const a = io();
    expect(await run(['verify', 'tdx', '--quote', file('junk.dat', new Uint8Array(100)), '--json'], a.io)).toBe(1);
    expect((JSON.parse(a.out()) as Out).failures[0]?.code).toBe('TDX_QUOTE_UNSUPPORTED');
    const b = io();
    expect(await run(['verify', 'tdx', '--quote', good, '--collateral', file('collateral.json', '{"nope":1}'), '--json'], b.io)).toBe(1);
    expect((JSON.parse(b.out()) as Out).failures[0]?.code).toBe('TDX_COLLATERAL_MALFORMED');
  });

  it('without collateral and --allow-missing-crl: the missing TCB Info and QE Identity are named, the CRL allowance recorded', async () => {
    const c = io();
    expect(await verifyTdxCommand({ quote: good, at, allowMissingCrl: true, json: true, pinnedRootFingerprints: pins }, c.io)).toBe(1);
    const o = JSON.parse(c.out()) as Out;
    expect(o.failures.map((f) => f.code)).toEqual(['TDX_TCB_INFO_MISSING', 'TDX_QE_IDENTITY_MISSING']);
    expect(o.allowancesUsed).toEqual(['missingRootCaCrl', 'missingPckCrl']);
  });
});
