/**
 * TDX collateral from Intel PCS, end to end, with no network: verifiers started from the
 * `vouch verifier start` flags (--tdx-pcs-cache, --tdx-pcs-offline, --tdx-collateral-bundle) with
 * an injected fetcher serving the TEST-ONLY collateral of attestation-fixtures/tdx. The first
 * attestation fetches, the second is served from the cache; offline with an imported bundle
 * nothing is fetched; PCS rate limited or down refuses with the TDX_PCS_* code recorded. Then
 * `vouch tdx tcb-recovery` reads the verifier's store (read-only, beside the running verifier) and
 * lists the node a next TCB Info would make OutOfDate.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type AttestOutcome } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError } from '../../src/lib/errors.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import type { TdxSummary } from '../../src/appraisal/tdx.js';
import { run } from '../../src/cli/main.js';
import { verifierConfig, type VerifierStartOptions } from '../../src/cli/verifier.js';
import { INTEL_ROOT_CA_CRL_URL, PCS_BASE_URL, type FetchResponse, type Fetcher } from '../../src/tdx/collateral.js';
import { startServer, type RunningVerifier, type ServerConfig } from '../../src/verifier/server.js';
import { FIXTURE, FIXTURE_MRTD, TEST_TDX_ROOT_FINGERPRINT, fixtureTcbLevels, issueTestTcbInfo, testTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';
import { FakeCcel, FakeTdxTsm } from '../helpers/fake-tsm-tdx.js';
import { trustDirFor } from '../helpers/verifier-process.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { ccelArea, ccelTableBytes, expectedRtmrs, type SynthEvent } from '../tdx/helpers.js';

const h = testTdxHierarchy();
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const EVENTS: SynthEvent[] = [{ mr: 1, type: 0x8000000a, data: enc('Fv(vouch TEST-ONLY firmware)') }];
const RTMRS = expectedRtmrs(EVENTS) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const CCEL = { table: ccelTableBytes(), data: ccelArea(EVENTS) };
const FMSPC = toHex(FIXTURE.fmspc);

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
  rtmr0: any
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

const col = (name: string): Uint8Array => new Uint8Array(readFileSync(join(h.collateralDir, name)));
const chain = (name: string): string => encodeURIComponent(readFileSync(join(h.collateralDir, name), 'utf8'));
const ok = (body: Uint8Array, headers: Record<string, string> = {}): FetchResponse => ({ status: 200, headers, body });

/** A fake Intel PCS serving the TEST-ONLY collateral; `mode` switches it to 429 or 503. */
function fakePcs(base: string): { fetcher: Fetcher; urls: string[]; mode: { now: 'up' | 'limited' | 'down' } } {
  const urls: string[] = [];
  const mode: { now: 'up' | 'limited' | 'down' } = { now: 'up' };
  const routes: Record<string, () => FetchResponse> = {
    [`${base}/tdx/certification/v4/tcb?fmspc=${FMSPC}`]: () => ok(col('tcb_info.json'), { 'TCB-Info-Issuer-Chain': chain('tcb_info_issuer_chain.pem') }),
    [`${base}/tdx/certification/v4/qe/identity`]: () => ok(col('qe_identity.json'), { 'SGX-Enclave-Identity-Issuer-Chain': chain('qe_identity_issuer_chain.pem') }),
    [`${base}/sgx/certification/v4/pckcrl?ca=platform&encoding=der`]: () => ok(col('pck_crl.der'), { 'SGX-PCK-CRL-Issuer-Chain': chain('pck_crl_issuer_chain.pem') }),
    [INTEL_ROOT_CA_CRL_URL.toLowerCase()]: () => ok(col('root_ca_crl.der')),
  };
  const fetcher: Fetcher = async (url) => {
    urls.push(url);
    if (mode.now === 'limited') return { status: 429, headers: { 'Retry-After': '3600' }, body: new Uint8Array(0) };
    if (mode.now === 'down') return { status: 503, headers: {}, body: new Uint8Array(0) };
    const r = routes[url.toLowerCase()];
    return r === undefined ? { status: 404, headers: {}, body: new Uint8Array(0) } : r();
  };
  return { fetcher, urls, mode };
}

describe('TDX collateral from Intel PCS (verifier start flags, injected fetcher)', () => {
  let tpm: TestSwtpm;
  let dir: string;
  const running: RunningVerifier[] = [];

  /** The configuration `vouch verifier start` builds from these flags, with the test-only root and a fetcher. */
  function configFrom(name: string, flags: Partial<VerifierStartOptions>, fetcher?: Fetcher): ServerConfig {
    const cfg = verifierConfig({
      dataDir: join(dir, name),
      listen: '127.0.0.1:0',
      tpmCaDir: [trustDirFor(tpm, dir)],
      policy: [`default=${join(dir, 'policy.yaml')}`],
      verifierId: name,
      challengeTtl: '60',
      rateLimit: '1000',
      logLevel: 'silent',
      ...flags,
    });
    const tdx = cfg.tdx;
    if (tdx === undefined || !('pcs' in tdx)) throw new Error('expected the PCS form');
    // The TEST-ONLY root is trusted here only: by default only Intel's SGX Root CA is pinned.
    return { ...cfg, tdx: { pcs: { ...tdx.pcs, ...(fetcher !== undefined ? { fetcher } : {}) }, pinnedRootFingerprints: [TEST_TDX_ROOT_FINGERPRINT] } };
  }

  async function start(cfg: ServerConfig): Promise<RunningVerifier> {
    const v = await startServer(cfg);
    running.push(v);
    return v;
  }

  async function attest(v: RunningVerifier, agentDir: string): Promise<AttestOutcome> {
    const tsm = new FakeTdxTsm({ quoteFields: { td: { rtmrs: RTMRS } } });
    const c = TpmCollector.open(tpm.tcti);
    try {
      return await new Agent({ verifier: new VerifierClient(v.url), tpm: c, stateDir: join(dir, agentDir), group: 'default', eventLogPath: null, imaLogPath: null, tdx: { root: tsm.root, fs: tsm, ccel: { fs: new FakeCcel(CCEL) } } }).attestOnce();
    } finally {
      c.close();
    }
  }

  async function lastDecision(v: RunningVerifier): Promise<{ failures: Array<{ code: string }>; claims: { tdx?: TdxSummary } | null }> {
    const head = await v.service.deps.store.ledgerHead();
    const row = await v.service.deps.store.getDecision(head?.seq ?? 0);
    return decodeLedgerEntry(row?.entry ?? new Uint8Array(0)).body as unknown as Awaited<ReturnType<typeof lastDecision>>;
  }

  async function cli(argv: string[]): Promise<{ status: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
    return { status, out, err };
  }

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-tdx-pcs-'));
    writeFileSync(join(dir, 'policy.yaml'), policy);
  });

  afterAll(async () => {
    for (const v of running) await v.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('online: the first attestation fetches the collateral and is affirmed, the second is served from the cache; tcb-recovery lists the node a next TCB Info makes OutOfDate', async () => {
    const pcs = fakePcs(PCS_BASE_URL);
    const v = await start(configFrom('online', { tdxPcsCache: join(dir, 'pcs-cache') }, pcs.fetcher));
    const first = await attest(v, 'agent-online');
    expect(first.failures ?? []).toEqual([]);
    expect(first.decision).toBe('affirming');
    expect(pcs.urls).toHaveLength(4);
    const tdx = (await lastDecision(v)).claims?.tdx;
    expect(tdx?.collateral.source).toBe('pcs');
    expect(tdx?.tcbStatus).toBe('UpToDate');
    // What a later re-evaluation needs, recorded with the decision.
    expect(tdx?.platformTcb).toEqual({
      fmspc: FMSPC,
      pceId: toHex(FIXTURE.pceId),
      sgxTcbComponents: [...FIXTURE.sgxTcb.compSvn],
      pceSvn: FIXTURE.sgxTcb.pceSvn,
      teeTcbSvn: toHex(FIXTURE.module.teeTcbSvn),
      mrSignerSeam: expect.stringMatching(/^[0-9a-f]{96}$/),
      seamAttributes: expect.stringMatching(/^[0-9a-f]{16}$/),
      qeIsvSvn: expect.any(Number),
      qeTcbStatus: 'UpToDate',
      qeAdvisoryIds: [],
    });

    const second = await attest(v, 'agent-online');
    expect(second.decision).toBe('affirming');
    expect(pcs.urls).toHaveLength(4);

    // The next TCB Info: a higher tcbEvaluationDataNumber whose newest level needs TEE_TCB_SVN[2] = 3.
    const nextLevels = fixtureTcbLevels();
    const newest = nextLevels[0];
    if (newest === undefined) throw new Error('fixture levels');
    const bumped = { ...newest, tdxTcbComponents: newest.tdxTcbComponents.map((x, i) => (i === 2 ? 3 : x)) };
    const demoted = { ...newest, tcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-99999'] };
    const nextFile = join(dir, 'next_tcb_info.json');
    writeFileSync(nextFile, issueTestTcbInfo({ tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber + 1, tcbLevels: [bumped, demoted, ...nextLevels.slice(1)] }));
    const sameFile = join(dir, 'same_tcb_info.json');
    writeFileSync(sameFile, issueTestTcbInfo({ tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber + 1 }));
    const currentFile = join(h.collateralDir, 'tcb_info.json');

    const affected = await cli(['tdx', 'tcb-recovery', '--next', nextFile, '--current', currentFile, '--data-dir', join(dir, 'online'), '--json']);
    expect(affected.err).toBe('');
    expect(affected.status).toBe(1);
    const report = JSON.parse(affected.out) as { affectedNodes: string[]; nodes: Array<{ nodeId: string; currentStatus: string; nextStatus: string; advisoryIdsGained: string[]; affected: boolean }>; levels: Array<{ index: number; wouldFail: boolean; nextStatus?: string }> };
    expect(report.nodes).toHaveLength(1);
    expect(report.nodes[0]).toMatchObject({ currentStatus: 'UpToDate', nextStatus: 'OutOfDate', advisoryIdsGained: ['INTEL-SA-99999'], affected: true });
    expect(report.affectedNodes).toEqual([report.nodes[0]?.nodeId]);
    expect(report.levels[0]).toMatchObject({ index: 0, wouldFail: true, nextStatus: 'OutOfDate' });
    const text = await cli(['tdx', 'tcb-recovery', '--next', nextFile, '--data-dir', join(dir, 'online')]);
    expect(text.status).toBe(1);
    expect(text.out).toContain(`${report.nodes[0]?.nodeId ?? '?'}: UpToDate → OutOfDate  gains INTEL-SA-99999`);

    const unchanged = await cli(['tdx', 'tcb-recovery', '--next', sameFile, '--current', currentFile, '--data-dir', join(dir, 'online')]);
    expect(unchanged.err).toBe('');
    expect(unchanged.out).toContain('0 of 1 affected');
    expect(unchanged.status).toBe(0);
  });

  it('offline with an imported bundle: affirmed with no fetch at all', async () => {
    const v = await start(configFrom('offline', { tdxPcsOffline: true, tdxCollateralBundle: h.collateralDir }));
    const out = await attest(v, 'agent-offline');
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    expect((await lastDecision(v)).claims?.tdx?.collateral.source).toBe('pcs');
    // No --tdx-pcs-cache: the bundle went into <data-dir>/tdx-collateral.
    expect(existsSync(join(dir, 'offline', 'tdx-collateral'))).toBe(true);
  });

  it('a bad bundle stops the start', async () => {
    const bad = join(dir, 'bad-bundle.json');
    writeFileSync(bad, '{"not":"a bundle"}');
    await expect(startServer(configFrom('bad-bundle', { tdxPcsOffline: true, tdxCollateralBundle: bad }))).rejects.toMatchObject({ category: 'unavailable' });
  });

  it('PCS rate limited, then down: the agent is told to come back (503), the refusal with TDX_PCS_RATE_LIMITED / TDX_PCS_UNAVAILABLE is in the ledger, never an allow', async () => {
    const refusedWith = async (v: RunningVerifier, agentDir: string, code: string): Promise<void> => {
      const e = await attest(v, agentDir).then(
        (out) => out,
        (err: unknown) => err,
      );
      expect(isVouchError(e) && e.code).toBe('VERIFIER_UNREACHABLE');
      expect(String((e as Error).message)).toContain(code);
      const head = await v.service.deps.store.ledgerHead();
      expect((await v.service.deps.store.getDecision(head?.seq ?? 0))?.outcome).toBe('contraindicated');
      const d = await lastDecision(v);
      expect(d.failures.map((f) => f.code)).toContain(code);
      // No collateral, so no TCB status: the quote was never judged good.
      expect(d.claims?.tdx?.tcbStatus ?? null).toBeNull();
    };
    const pcs = fakePcs(PCS_BASE_URL);
    const v = await start(configFrom('down', { tdxPcsCache: join(dir, 'down-cache') }, pcs.fetcher));
    pcs.mode.now = 'limited';
    await refusedWith(v, 'agent-down', 'TDX_PCS_RATE_LIMITED');
    // The Retry-After holds: the next attestation asks PCS nothing.
    const asked = pcs.urls.length;
    await refusedWith(v, 'agent-down', 'TDX_PCS_RATE_LIMITED');
    expect(pcs.urls).toHaveLength(asked);

    const v2 = await start(configFrom('down2', { tdxPcsCache: join(dir, 'down2-cache') }, pcs.fetcher));
    pcs.mode.now = 'down';
    await refusedWith(v2, 'agent-down2', 'TDX_PCS_UNAVAILABLE');
  });
});
