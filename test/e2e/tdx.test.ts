/**
 * A TDX trust domain with a vTPM, end to end: the agent sends its TPM quote, a TDX quote (through
 * an emulated configfs-tsm, signed by the TEST-ONLY Intel-like hierarchy of attestation-fixtures/tdx)
 * and the CCEL event log; the verifier verifies the quote with the test-only collateral (its root
 * pinned here only), replays the CCEL to the quote's RTMRs, appraises both, records the TCB status
 * and the collateral digests, and the artifact carries a `cpu0` submodule next to `tpm0`.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type AttestOutcome } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { verifyArtifact } from '../../src/artifact/index.js';
import { toHex } from '../../src/lib/bytes.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import type { TdxSummary } from '../../src/appraisal/tdx.js';
import { startServer, type RunningVerifier } from '../../src/verifier/server.js';
import { FIXTURE_MRTD, FIXTURE_TD_ATTRIBUTES_DEBUG, TEST_TDX_ROOT_FINGERPRINT, issueTestTcbInfo, testTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';
import { FakeCcel, FakeTdxTsm } from '../helpers/fake-tsm-tdx.js';
import type { TsmFs } from '../../src/agent/tsm.js';
import { trustDirFor } from '../helpers/verifier-process.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { ccelArea, ccelTableBytes, expectedRtmrs, type SynthEvent } from '../tdx/helpers.js';

const h = testTdxHierarchy();
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A small firmware and boot loader log: RTMR0..2 extended, RTMR3 left zero. */
const EVENTS: SynthEvent[] = [
  { mr: 1, type: 0x8000000a, data: enc('Fv(vouch TEST-ONLY firmware)') },
  { mr: 2, type: 0x80000007, data: enc('Calling EFI Application from Boot Option') },
  { mr: 3, type: 0x0d, data: enc('grub_cmd: linux /vmlinuz ro quiet\0') },
];
const RTMRS = expectedRtmrs(EVENTS) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const CCEL = { table: ccelTableBytes(), data: ccelArea(EVENTS) };

const policy = `apiVersion: vouch/v1
kind: AttestationPolicy
id: td
tpm:
  banks: [sha256]
  pcrs:
    sha256:
      "0": any
tdx:
  advisoryIds: []
  mrTd: ["${toHex(FIXTURE_MRTD)}"]
  rtmr0: ["${toHex(RTMRS[0])}"]
  rtmr1: any
  rtmr2: any
  rtmr3: any
  mrSeam: any
  mrConfigId: any
  mrOwner: any
  mrOwnerConfig: any
  attributes: { septVeDisable: required, otherBits: forbidden }
  xfam: any
  allowMissingCrl: false
artifact:
  lifetimeSeconds: 120
  audience: [key-broker]
`;

describe('TDX next to the TPM, through configfs-tsm', () => {
  let tpm: TestSwtpm;
  let dir: string;
  let collateralDir: string;
  let verifier: RunningVerifier;

  async function attest(tsm: TsmFs & { root: string }, ccel: FakeCcel = new FakeCcel(CCEL)): Promise<AttestOutcome> {
    const c = TpmCollector.open(tpm.tcti);
    try {
      return await new Agent({ verifier: new VerifierClient(verifier.url), tpm: c, stateDir: join(dir, 'agent'), group: 'default', eventLogPath: null, imaLogPath: null, tdx: { root: tsm.root, fs: tsm, ccel: { fs: ccel } } }).attestOnce();
    } finally {
      c.close();
    }
  }

  /** The body of the last decision in the ledger. */
  async function lastDecision(): Promise<{ outcome?: string; failures: Array<{ code: string }>; claims: { tdx?: TdxSummary } | null }> {
    const head = await verifier.service.deps.store.ledgerHead();
    const row = await verifier.service.deps.store.getDecision(head?.seq ?? 0);
    return decodeLedgerEntry(row?.entry ?? new Uint8Array(0)).body as unknown as Awaited<ReturnType<typeof lastDecision>>;
  }

  const td = (over: ConstructorParameters<typeof FakeTdxTsm>[0] = {}) => new FakeTdxTsm({ ...over, quoteFields: { ...over.quoteFields, td: { rtmrs: RTMRS, ...over.quoteFields?.td } } });

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-tdx-'));
    // A copy of the TEST-ONLY collateral, so one test can swap in an expired TCB Info.
    collateralDir = join(dir, 'collateral');
    mkdirSync(collateralDir);
    for (const f of readdirSync(h.collateralDir)) copyFileSync(join(h.collateralDir, f), join(collateralDir, f));
    writeFileSync(join(dir, 'policy.yaml'), policy);
    verifier = await startServer({
      dataDir: join(dir, 'verifier'),
      host: '127.0.0.1',
      port: 0,
      verifierId: 'tdx',
      tpmCaDirs: [trustDirFor(tpm, dir)],
      policies: new Map([['default', join(dir, 'policy.yaml')]]),
      requireEkCertificate: true,
      challengeTtlSeconds: 60,
      rateLimitPerMinute: 1000,
      logLevel: 'silent',
      // The TEST-ONLY root is trusted here only: by default only Intel's SGX Root CA is pinned.
      tdx: { collateral: { path: collateralDir }, pinnedRootFingerprints: [TEST_TDX_ROOT_FINGERPRINT] },
    });
  });

  afterAll(async () => {
    await verifier?.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a genuine quote bound to the challenge, with its CCEL, is affirmed; the artifact has tpm0 and cpu0; the decision records TCB status and collateral', async () => {
    const out = await attest(td());
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    const jwks = (await (await fetch(`${verifier.url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    const claims = await verifyArtifact(out.artifact!, { jwks, audience: 'key-broker', now: Math.floor(Date.now() / 1000) });
    expect(Object.keys(claims.submods).sort()).toEqual(['cpu0', 'tpm0']);
    expect(claims.submods['cpu0']?.['ear.status']).toBe('affirming');
    const tdx = (await lastDecision()).claims?.tdx;
    expect(tdx?.tcbStatus).toBe('UpToDate');
    expect(tdx?.advisoryIds).toEqual([]);
    expect(tdx?.fmspc).toBe('00c0ffee0000');
    expect(tdx?.ccel).toEqual({ rtmrsMatched: [0, 1, 2, 3], events: 3, boot: { secureBoot: 'unknown', efiApplications: [], errorSeparator: false } });
    expect(tdx?.collateral.source).toBe('file');
    expect(tdx?.collateral.tcbInfo).toMatch(/^[0-9a-f]{64}$/);
    expect(tdx?.collateral.pckCrl).toMatch(/^[0-9a-f]{64}$/);
    expect(tdx?.collateral.rootCaCrl).toMatch(/^[0-9a-f]{64}$/);
  });

  it('without the CCEL the quote alone is affirmed (the RTMR rules decide); a CCEL that does not replay to the RTMRs is refused', async () => {
    expect((await attest(td(), new FakeCcel())).decision).toBe('affirming');
    const other = { table: CCEL.table, data: ccelArea([...EVENTS, { mr: 4, type: 0x0d, data: enc('unquoted') }]) };
    const out = await attest(td(), new FakeCcel(other));
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => `${f.code} ${f.field ?? ''}`)).toEqual(['TDX_RTMR_MISMATCH TD_REPORT_BODY.RTMR3']);
  });

  it('an agent that sends no TDX quote is refused: the policy has TDX rules', async () => {
    const c = TpmCollector.open(tpm.tcti);
    try {
      const out = await new Agent({ verifier: new VerifierClient(verifier.url), tpm: c, stateDir: join(dir, 'agent'), group: 'default', eventLogPath: null, imaLogPath: null }).attestOnce();
      expect(out.decision).toBe('contraindicated');
      expect(out.failures?.map((f) => f.code)).toEqual(['POLICY_TDX_EVIDENCE_MISSING']);
    } finally {
      c.close();
    }
  });

  it('a debug TD is refused with the TD report field', async () => {
    const out = await attest(td({ quoteFields: { td: { tdAttributes: FIXTURE_TD_ATTRIBUTES_DEBUG } } }));
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['POLICY_TDX_DEBUG']);
  });

  it('a quote made for another challenge (REPORTDATA) is refused', async () => {
    const fake = td();
    const other: TsmFs & { root: string } = {
      root: fake.root,
      mkdir: (p) => fake.mkdir(p),
      readFile: (p) => fake.readFile(p),
      rmdir: (p) => fake.rmdir(p),
      writeFile: (p, data) => fake.writeFile(p, p.endsWith('/inblob') ? new Uint8Array(64).fill(7) : data),
    };
    const out = await attest(other);
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['TDX_REPORT_DATA_MISMATCH']);
  });

  it('an expired TCB Info is refused with its code, and the verifier reads the changed collateral', async () => {
    const tcbInfo = join(collateralDir, 'tcb_info.json');
    writeFileSync(tcbInfo, issueTestTcbInfo({ issueDate: new Date('2024-01-01T00:00:00Z'), nextUpdate: new Date('2024-02-01T00:00:00Z') }));
    utimesSync(tcbInfo, new Date('2024-01-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z'));
    try {
      const out = await attest(td());
      expect(out.decision).toBe('contraindicated');
      expect(out.failures?.map((f) => f.code)).toEqual(['TDX_TCB_INFO_EXPIRED']);
      expect((await lastDecision()).failures.map((f) => f.code)).toEqual(['TDX_TCB_INFO_EXPIRED']);
    } finally {
      copyFileSync(join(h.collateralDir, 'tcb_info.json'), tcbInfo);
    }
  });
});
