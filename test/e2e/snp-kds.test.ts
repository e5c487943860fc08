/**
 * A confidential VM whose host supplies no certificate table (configfs-tsm without `auxblob`),
 * end to end: the verifier process (startServer with `snp.kds`) fetches the VCEK by CHIP_ID and
 * REPORTED_TCB, the ASK/ARK chain and the CRL from a fake AMD KDS serving the TEST-ONLY chain,
 * caches them on disk, and records where each came from. Offline, a bundle exported from that
 * cache serves a second verifier with no request at all. No network.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type AttestOutcome } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { isVouchError } from '../../src/lib/errors.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { KDS_BASE_URL, kdsCertChainUrl, kdsCrlUrl, kdsVcekUrl, type FetchResponse, type Fetcher } from '../../src/snp/collateral.js';
import { startServer, type RunningVerifier, type SnpKdsConfig } from '../../src/verifier/server.js';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { FakeTsm } from '../helpers/fake-tsm.js';
import { trustDirFor } from '../helpers/verifier-process.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const chain = testSnpChain();
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const VCEK_URL = kdsVcekUrl(KDS_BASE_URL, 'Milan', chain.chipId, chain.tcb);
const CHAIN_URL = kdsCertChainUrl(KDS_BASE_URL, 'Milan', 'vcek');
const CRL_URL = kdsCrlUrl(KDS_BASE_URL, 'Milan', 'vcek');

const POLICY = `apiVersion: vouch/v1
kind: AttestationPolicy
id: cvm
tpm:
  banks: [sha256]
  pcrs:
    sha256:
      "0": any
snp:
  debug: forbidden
  migrationAgent: forbidden
  smt: allowed
  vmpl: [0]
  measurement: ["${'01'.repeat(48)}"]
  hostData: any
  idKeyDigest: any
  authorKeyDigest: any
  familyId: any
  imageId: any
  minTcb: { bootLoader: ${chain.tcb.bl}, tee: ${chain.tcb.tee}, snp: ${chain.tcb.snp}, microcode: ${chain.tcb.ucode} }
  minGuestSvn: any
  platformInfo: any
  allowMaskedChipId: false
  allowMissingCrl: false
artifact:
  lifetimeSeconds: 120
  audience: [key-broker]
`;

/** A fake KDS answering by exact URL; records every URL asked. */
function fakeKds(answer: (url: string) => FetchResponse | Error): { calls: string[]; fetcher: Fetcher } {
  const calls: string[] = [];
  return {
    calls,
    fetcher: async (url) => {
      calls.push(url);
      const a = answer(url);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

const body = (b: Uint8Array | string): FetchResponse => ({ status: 200, headers: {}, body: typeof b === 'string' ? new TextEncoder().encode(b) : b });

function kdsServing(crl: Uint8Array): (url: string) => FetchResponse {
  return (url) =>
    url === VCEK_URL ? body(chain.vcek) : url === CHAIN_URL ? body(chain.certChainPem) : url === CRL_URL ? body(crl) : { status: 404, headers: {}, body: new Uint8Array() };
}

describe('SEV-SNP collateral from AMD KDS, through the verifier process', () => {
  let tpm: TestSwtpm;
  let dir: string;
  const running: RunningVerifier[] = [];
  let n = 0;

  async function verifierWith(kds: SnpKdsConfig): Promise<RunningVerifier> {
    const d = join(dir, `v${n++}`);
    const v = await startServer({
      dataDir: d,
      host: '127.0.0.1',
      port: 0,
      verifierId: 'snp-kds',
      tpmCaDirs: [trustDirFor(tpm, dir)],
      policies: new Map([['default', join(dir, 'policy.yaml')]]),
      requireEkCertificate: true,
      challengeTtlSeconds: 60,
      rateLimitPerMinute: 1000,
      logLevel: 'silent',
      // The TEST-ONLY ARK is trusted here only; no CRL configured: it must come from KDS.
      snp: { pinnedArks: { [sha256(chain.ark)]: 'Milan' }, kds },
    });
    running.push(v);
    return v;
  }

  /** One attestation of the CVM; the host gives no certificate table. */
  async function attest(v: RunningVerifier, stateDir: string): Promise<AttestOutcome> {
    const tsm = new FakeTsm({ auxblob: false });
    const c = TpmCollector.open(tpm.tcti);
    try {
      return await new Agent({ verifier: new VerifierClient(v.url), tpm: c, stateDir: join(dir, stateDir), group: 'default', eventLogPath: null, imaLogPath: null, snp: { root: tsm.root, fs: tsm } }).attestOnce();
    } finally {
      c.close();
    }
  }

  async function lastDecision(v: RunningVerifier): Promise<{ failures: Array<{ code: string }>; claims: { snp?: { collateral: Record<string, { source: string; sha256: string }> } } | null }> {
    const head = await v.service.deps.store.ledgerHead();
    const row = await v.service.deps.store.getDecision(head?.seq ?? 0);
    return decodeLedgerEntry(row?.entry ?? new Uint8Array(0)).body as unknown as Awaited<ReturnType<typeof lastDecision>>;
  }

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-snp-kds-e2e-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
  });

  afterAll(async () => {
    for (const v of running) await v.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no certificate table: affirmed after the VCEK, chain and CRL are fetched, the second time from the cache; a bundle of that cache serves an offline verifier', async () => {
    const kds = fakeKds(kdsServing(chain.crl));
    const cacheDir = join(dir, 'kds-cache');
    const v = await verifierWith({ fetcher: kds.fetcher, cacheDir });

    const first = await attest(v, 'a');
    expect(first.failures ?? []).toEqual([]);
    expect(first.decision).toBe('affirming');
    expect([...kds.calls].sort()).toEqual([CHAIN_URL, CRL_URL, VCEK_URL].sort());
    expect((await lastDecision(v)).claims?.snp?.collateral).toEqual({
      leaf: { source: 'kds', sha256: sha256(chain.vcek) },
      ask: { source: 'kds', sha256: sha256(chain.ask) },
      ark: { source: 'kds', sha256: sha256(chain.ark) },
      crl: { source: 'kds', sha256: sha256(chain.crl) },
    });

    const second = await attest(v, 'a');
    expect(second.decision).toBe('affirming');
    expect(kds.calls).toHaveLength(3);

    // Export the cache as a bundle; a verifier with no network imports it at start.
    const bundle = join(dir, 'bundle.json');
    const client = v.service.settings.snp?.kds?.client;
    expect(client).toBeDefined();
    await client?.exportBundle(bundle);
    const offline = await verifierWith({ offline: true, bundle, cacheDir: join(dir, 'offline-cache') });
    const out = await attest(offline, 'b');
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    expect(Object.values((await lastDecision(offline)).claims?.snp?.collateral ?? {}).map((c) => c.source)).toEqual(['kds-cache', 'kds-cache', 'kds-cache', 'kds-cache']);
    expect(kds.calls).toHaveLength(3);
  });

  it('KDS answers 429: the agent is told to come back (503 SNP_KDS_RATE_LIMITED), the refusal is in the ledger, no artifact', async () => {
    const kds = fakeKds(() => ({ status: 429, headers: { 'retry-after': '60' }, body: new Uint8Array() }));
    const v = await verifierWith({ fetcher: kds.fetcher, cacheDir: join(dir, 'cache-429') });
    const e = await attest(v, 'c').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isVouchError(e) && e.code).toBe('VERIFIER_UNREACHABLE');
    expect(String((e as Error).message)).toContain('SNP_KDS_RATE_LIMITED');
    const d = await lastDecision(v);
    expect(d.failures.map((f) => f.code)).toContain('SNP_KDS_RATE_LIMITED');
    expect(d.claims?.snp).toBeUndefined();
  });

  it('KDS cannot be reached: refused with SNP_KDS_UNAVAILABLE, never an allow', async () => {
    const kds = fakeKds(() => new TypeError('fetch failed: getaddrinfo ENOTFOUND kdsintf.amd.com'));
    const v = await verifierWith({ fetcher: kds.fetcher, cacheDir: join(dir, 'cache-down') });
    const e = await attest(v, 'd').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isVouchError(e) && e.code).toBe('VERIFIER_UNREACHABLE');
    expect((await lastDecision(v)).failures.map((f) => f.code)).toContain('SNP_KDS_UNAVAILABLE');
  });

  it('a CRL from KDS that revokes the ASK → SNP_REVOKED', async () => {
    const kds = fakeKds(kdsServing(chain.crlRevokingAsk));
    const v = await verifierWith({ fetcher: kds.fetcher, cacheDir: join(dir, 'cache-revoked') });
    const out = await attest(v, 'e');
    expect(out.decision).toBe('contraindicated');
    expect(out.failures?.map((f) => f.code)).toEqual(['SNP_REVOKED']);
  });
});
