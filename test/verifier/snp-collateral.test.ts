/**
 * SEV-SNP collateral from AMD KDS at appraisal time (src/verifier/snp-collateral.ts, wired into
 * VerifierService.attest): what is fetched for which report, what the decision records, and that
 * every KDS problem is a refusal with its code. A fake KDS serves the TEST-ONLY chain of
 * attestation-fixtures/snp; no network.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { ERRORS, isVouchError, type ErrorCode } from '../../src/lib/errors.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { teeReportData } from '../../src/evidence/binding.js';
import type { SnpEvidence } from '../../src/evidence/envelope.js';
import type { SnpReport } from '../../src/snp/abi.js';
import { SNP_CERT_GUID, encodeSnpCertTable } from '../../src/snp/certtable.js';
import { KDS_BASE_URL, KdsClient, kdsCertChainUrl, kdsCrlUrl, kdsVcekUrl, type FetchResponse, type Fetcher } from '../../src/snp/collateral.js';
import { resolveSnpCollateral } from '../../src/verifier/snp-collateral.js';
import { Command } from 'commander';
import { snpKdsConfig, verifierConfig, withSnpKdsOptions } from '../../src/cli/verifier.js';
import { signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';
import {
  boundKey,
  buildEvidence,
  ekTrustOf,
  enrollOverHttp,
  getChallenge,
  policyText,
  startVerifier,
  submit,
  syntheticTpm,
  testCa,
  type ErrorAnswer,
  type SyntheticTpm,
  type TestCa,
  type TestVerifier,
} from '../helpers/verifier.js';
import { parsePolicy } from '../../src/policy/index.js';

const chain = testSnpChain();
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const PINS = { [sha256(chain.ark)]: 'Milan' as const };
const VCEK_URL = kdsVcekUrl(KDS_BASE_URL, 'Milan', chain.chipId, chain.tcb);
const CHAIN_URL = kdsCertChainUrl(KDS_BASE_URL, 'Milan', 'vcek');
const CRL_URL = kdsCrlUrl(KDS_BASE_URL, 'Milan', 'vcek');

const ok = (body: Uint8Array | string): FetchResponse => ({ status: 200, headers: {}, body: typeof body === 'string' ? new TextEncoder().encode(body) : body });

/** A fake KDS: routes by exact URL, every URL asked in order; `down` makes every request fail as a network error would. */
class FakeKds {
  readonly calls: string[] = [];
  readonly routes = new Map<string, FetchResponse>();
  down = false;
  readonly fetcher: Fetcher = async (url) => {
    this.calls.push(url);
    await new Promise((resolve) => setImmediate(resolve)); // answer on a later turn, as a network would
    if (this.down) throw new TypeError('fetch failed: connect ECONNREFUSED');
    return this.routes.get(url) ?? { status: 404, headers: {}, body: new Uint8Array() };
  };

  static full(crl: Uint8Array = chain.crl): FakeKds {
    const k = new FakeKds();
    k.routes.set(VCEK_URL, ok(chain.vcek));
    k.routes.set(CHAIN_URL, ok(chain.certChainPem));
    k.routes.set(CRL_URL, ok(crl));
    return k;
  }
}

const SNP_RULES = {
  debug: 'forbidden',
  migrationAgent: 'forbidden',
  smt: 'allowed',
  vmpl: [0],
  measurement: ['01'.repeat(48)],
  hostData: 'any',
  idKeyDigest: 'any',
  authorKeyDigest: 'any',
  familyId: 'any',
  imageId: 'any',
  minTcb: { bootLoader: chain.tcb.bl, tee: chain.tcb.tee, snp: chain.tcb.snp, microcode: chain.tcb.ucode },
  minGuestSvn: 'any',
  platformInfo: 'any',
  allowMaskedChipId: false,
  allowMissingCrl: false,
};

/** The certificate table a host with cached certificates gives (VCEK, ASK, ARK, and optionally a CRL). */
function fullTable(crl?: Uint8Array): Uint8Array {
  return encodeSnpCertTable([
    { guid: SNP_CERT_GUID.vcek, data: chain.vcek },
    { guid: SNP_CERT_GUID.ask, data: chain.ask },
    { guid: SNP_CERT_GUID.ark, data: chain.ark },
    ...(crl !== undefined ? [{ guid: SNP_CERT_GUID.crl, data: crl }] : []),
  ]);
}

function snpReport(over: Partial<SnpReport> = {}, reportData: Uint8Array = new Uint8Array(64)): Uint8Array {
  return signSyntheticSnpReport(chain, syntheticSnpFields(chain, { reportData, ...over }));
}

/** A version 2 report: no CPUID fields, so the report names no product. */
function v2Report(): Uint8Array {
  const { cpuid: _none, ...fields } = syntheticSnpFields(chain, { version: 2 });
  return signSyntheticSnpReport(chain, fields);
}

let ca: TestCa;
let tpm: SyntheticTpm;
let tmp: string;
let tpmClock = 10_000n;
let dirs = 0;

beforeAll(async () => {
  ca = await testCa('CN=vouch test TPM CA,O=vouch test');
  tpm = await syntheticTpm(ca);
  tmp = mkdtempSync(join(tmpdir(), 'vouch-snp-kds-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

interface KdsVerifier {
  readonly v: TestVerifier;
  readonly nodeId: string;
  readonly client: KdsClient;
}

/** A verifier with SNP rules and a KDS client over `fetcher` (undefined: offline), with the node enrolled. */
async function kdsVerifier(fetcher: Fetcher | undefined, cacheDir = join(tmp, `cache${dirs++}`)): Promise<KdsVerifier> {
  let v: TestVerifier | undefined;
  const client = new KdsClient({ ...(fetcher !== undefined ? { fetcher } : {}), cacheDir, clock: () => new Date(v?.clock.now() ?? 0) });
  v = await startVerifier({
    groups: new Map([['gpu', parsePolicy(policyText({ id: 'cvm', extraTop: { snp: SNP_RULES } }), 'json')]]),
    ekTrust: ekTrustOf(ca),
    settings: { snp: { pinnedArks: PINS, kds: { client } } },
  });
  return { v, nodeId: await enrollOverHttp(v.app, tpm, 'gpu'), client };
}

/** Attests with a TPM quote and an SNP report bound to the challenge; `table` undefined: no certificate table. */
async function attestSnp(k: KdsVerifier, o: { table?: Uint8Array; over?: Partial<SnpReport> } = {}): Promise<LightMyRequestResponse> {
  const challenge = await getChallenge(k.v.app, k.nodeId);
  const key = boundKey();
  tpmClock += 1000n;
  const evidence = buildEvidence({ challenge, nodeId: k.nodeId, ak: tpm.ak, boundKey: key, counters: { resetCount: 1, restartCount: 0, clock: tpmClock } });
  const snp: SnpEvidence = { report: snpReport(o.over, teeReportData(challenge.nonceBytes, key)), ...(o.table !== undefined ? { certTable: o.table } : {}) };
  return submit(k.v.app, { ...evidence, snp });
}

/** What the tests read from a recorded decision body. */
interface RecordedBody {
  readonly failures: Array<{ code: string; field?: string }>;
  readonly claims: { snp?: { collateral: Record<string, { source: string; sha256: string }> } } | null;
}

/** The recorded decision body of an answer. */
async function recorded(k: KdsVerifier, res: LightMyRequestResponse): Promise<RecordedBody> {
  const seq = res.json<{ ledger: { seq: number } }>().ledger.seq;
  const row = await k.v.sqlite.getDecision(seq);
  expect(row?.kind).toBe('appraise');
  return decodeLedgerEntry(row?.entry ?? new Uint8Array(0)).body as unknown as RecordedBody;
}

function expectRefused(res: LightMyRequestResponse, code: ErrorCode): ErrorAnswer {
  const body = res.json<ErrorAnswer & { artifact?: string }>();
  expect(body.artifact).toBeUndefined();
  expect(body.decision).toBe('contraindicated');
  expect(body.error.code, res.body).toBe(code);
  expect(res.statusCode).toBe(ERRORS[code].status);
  return body;
}

describe('attestation with KDS collateral', () => {
  it('a report without a certificate table is affirmed after the VCEK, the chain and the CRL are fetched; the decision names them', async () => {
    const kds = FakeKds.full();
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ decision: string; artifact: string }>().artifact).toMatch(/^ey/);
      expect([...kds.calls].sort()).toEqual([CHAIN_URL, CRL_URL, VCEK_URL].sort());
      const body = await recorded(k, res);
      expect(body.failures).toEqual([]);
      expect(body.claims?.snp?.collateral).toEqual({
        leaf: { source: 'kds', sha256: sha256(chain.vcek) },
        ask: { source: 'kds', sha256: sha256(chain.ask) },
        ark: { source: 'kds', sha256: sha256(chain.ark) },
        crl: { source: 'kds', sha256: sha256(chain.crl) },
      });

      // The second attestation is served by the cache: KDS is not asked again.
      const again = await attestSnp(k);
      expect(again.statusCode, again.body).toBe(200);
      expect(kds.calls).toHaveLength(3);
      expect(Object.values((await recorded(k, again)).claims?.snp?.collateral ?? {}).map((c) => c.source)).toEqual(['kds-cache', 'kds-cache', 'kds-cache', 'kds-cache']);
    } finally {
      await k.v.close();
    }
  });

  it('a full certificate table: only the CRL comes from KDS, and the decision says which came from where', async () => {
    const kds = FakeKds.full();
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k, { table: fullTable() });
      expect(res.statusCode, res.body).toBe(200);
      expect(kds.calls).toEqual([CRL_URL]);
      const c = (await recorded(k, res)).claims?.snp?.collateral;
      expect(c?.['leaf']?.source).toBe('table');
      expect(c?.['ask']?.source).toBe('table');
      expect(c?.['ark']?.source).toBe('table');
      expect(c?.['crl']).toEqual({ source: 'kds', sha256: sha256(chain.crl) });
    } finally {
      await k.v.close();
    }
  });

  it('KDS answers 429 → refused with SNP_KDS_RATE_LIMITED, recorded in the ledger; KDS is not asked again before Retry-After', async () => {
    const kds = new FakeKds();
    kds.routes.set(VCEK_URL, { status: 429, headers: { 'Retry-After': '120' }, body: new Uint8Array() });
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k);
      const body = expectRefused(res, 'SNP_KDS_RATE_LIMITED');
      expect(body.error.field).toBe('collateral.vcek');
      const rec = await recorded(k, res);
      expect(rec.failures.map((f) => f.code)).toEqual(['SNP_KDS_RATE_LIMITED', 'SNP_CERT_MALFORMED']);
      expect(kds.calls).toEqual([VCEK_URL]);

      expectRefused(await attestSnp(k), 'SNP_KDS_RATE_LIMITED');
      expect(kds.calls).toEqual([VCEK_URL]); // refused locally until Retry-After
    } finally {
      await k.v.close();
    }
  });

  it('KDS down → refused with SNP_KDS_UNAVAILABLE, never an allow, even for the CRL alone', async () => {
    const kds = FakeKds.full();
    kds.down = true;
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k);
      expectRefused(res, 'SNP_KDS_UNAVAILABLE');
      expect((await recorded(k, res)).failures.map((f) => f.code)).toContain('SNP_KDS_UNAVAILABLE');
      // The table has every certificate and a CRL: the KDS CRL is still required, and its failure refuses.
      const withTable = await attestSnp(k, { table: fullTable(chain.crl) });
      expectRefused(withTable, 'SNP_KDS_UNAVAILABLE');
      expect((await recorded(k, withTable)).failures).toEqual([expect.objectContaining({ code: 'SNP_KDS_UNAVAILABLE', field: 'collateral.crl' })]);
    } finally {
      await k.v.close();
    }
  });

  it('KDS serves a body that is not a VCEK → SNP_KDS_MALFORMED', async () => {
    const kds = FakeKds.full();
    kds.routes.set(VCEK_URL, ok(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])));
    const k = await kdsVerifier(kds.fetcher);
    try {
      expectRefused(await attestSnp(k), 'SNP_KDS_MALFORMED');
    } finally {
      await k.v.close();
    }
  });

  it('KDS has no VCEK for the chip (404) → SNP_KDS_UNAVAILABLE', async () => {
    const kds = FakeKds.full();
    kds.routes.delete(VCEK_URL);
    const k = await kdsVerifier(kds.fetcher);
    try {
      expectRefused(await attestSnp(k), 'SNP_KDS_UNAVAILABLE');
    } finally {
      await k.v.close();
    }
  });

  it('a CRL from KDS that revokes the ASK → SNP_REVOKED, though the table carries a clean CRL', async () => {
    const kds = FakeKds.full(chain.crlRevokingAsk);
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k, { table: fullTable(chain.crl) });
      expectRefused(res, 'SNP_REVOKED');
      expect(kds.calls).toEqual([CRL_URL]);
    } finally {
      await k.v.close();
    }
  });

  it('offline with an imported bundle: affirmed with no request at all', async () => {
    // Fill a cache from the fake KDS and export it as a bundle, as an operator would on a connected host.
    const online = new KdsClient({ fetcher: FakeKds.full().fetcher, cacheDir: join(tmp, 'export-src'), clock: () => new Date('2030-01-01T00:00:00Z') });
    await online.vcek('Milan', chain.chipId, chain.tcb);
    await online.certChain('Milan', 'vcek');
    await online.crl('Milan', 'vcek');
    const bundle = join(tmp, 'bundle.json');
    await online.exportBundle(bundle);

    const k = await kdsVerifier(undefined);
    try {
      expect(await k.client.importBundle(bundle)).toEqual({ vceks: 1, chains: 1, crls: 1, olderCrlsSkipped: 0 });
      const res = await attestSnp(k);
      expect(res.statusCode, res.body).toBe(200);
      expect(Object.values((await recorded(k, res)).claims?.snp?.collateral ?? {}).every((c) => c.source === 'kds-cache')).toBe(true);
    } finally {
      await k.v.close();
    }
  });

  it('offline without the collateral → SNP_KDS_UNAVAILABLE', async () => {
    const k = await kdsVerifier(undefined);
    try {
      expectRefused(await attestSnp(k), 'SNP_KDS_UNAVAILABLE');
    } finally {
      await k.v.close();
    }
  });

  it('a report signed by a VLEK with no VLEK in the table → SNP_VLEK_MISSING, KDS not asked', async () => {
    const kds = FakeKds.full();
    const k = await kdsVerifier(kds.fetcher);
    try {
      const res = await attestSnp(k, { over: { signingKey: 1 } });
      expectRefused(res, 'SNP_VLEK_MISSING');
      expect(kds.calls).toEqual([]);
    } finally {
      await k.v.close();
    }
  });

  it('a masked CHIP_ID with no VCEK in the table → SNP_CHIP_ID_MASKED, KDS not asked', async () => {
    const kds = FakeKds.full();
    const k = await kdsVerifier(kds.fetcher);
    try {
      expectRefused(await attestSnp(k, { over: { chipId: new Uint8Array(64), maskChipKey: true } }), 'SNP_CHIP_ID_MASKED');
      expect(kds.calls).toEqual([]);
    } finally {
      await k.v.close();
    }
  });

  it('evidence for an unknown challenge makes no KDS request', async () => {
    const kds = FakeKds.full();
    const k = await kdsVerifier(kds.fetcher);
    try {
      const challenge = await getChallenge(k.v.app, k.nodeId);
      const evidence = buildEvidence({ challenge: { ...challenge, challengeId: '00'.repeat(16) }, nodeId: k.nodeId, ak: tpm.ak });
      const res = await submit(k.v.app, { ...evidence, snp: { report: snpReport() } });
      expect(res.json<{ decision: string }>().decision).toBe('contraindicated');
      expect(kds.calls).toEqual([]);
    } finally {
      await k.v.close();
    }
  });
});

describe('resolveSnpCollateral', () => {
  const clock = () => new Date('2030-01-01T00:00:00Z');

  it('a version 2 report names no product: the configured products are tried in order, and the cache is looked at under each before KDS', async () => {
    const kds = FakeKds.full();
    const client = new KdsClient({ fetcher: kds.fetcher, clock });
    const input = { evidence: { report: v2Report() }, pinnedArks: PINS, products: ['Genoa', 'Milan'] as const };
    const first = await resolveSnpCollateral(input, client);
    expect(first.failures).toEqual([]);
    expect(first.vcek).toEqual({ der: chain.vcek, source: 'kds' });
    expect(kds.calls[0]).toBe(kdsVcekUrl(KDS_BASE_URL, 'Genoa', chain.chipId, chain.tcb)); // 404
    expect(kds.calls.slice(1).sort()).toEqual([CHAIN_URL, CRL_URL, VCEK_URL].sort());

    const n = kds.calls.length;
    const second = await resolveSnpCollateral(input, client);
    expect(second.failures).toEqual([]);
    expect(second.vcek?.source).toBe('kds-cache');
    expect(kds.calls).toHaveLength(n); // Genoa is not asked again
  });

  it('a version 2 report with the products defaulted to those of the pinned ARKs', async () => {
    const kds = FakeKds.full();
    const r = await resolveSnpCollateral({ evidence: { report: v2Report() }, pinnedArks: PINS }, new KdsClient({ fetcher: kds.fetcher, clock }));
    expect(r.failures).toEqual([]);
    expect(kds.calls.filter((u) => u.includes('/vcek/v1/Milan/') && u.includes('?'))).toEqual([VCEK_URL]);
  });

  it('a version 2 report and no product configured → SNP_PRODUCT_UNKNOWN, KDS not asked', async () => {
    const kds = FakeKds.full();
    const r = await resolveSnpCollateral({ evidence: { report: v2Report() }, products: [] }, new KdsClient({ fetcher: kds.fetcher, clock }));
    expect(r.failures.map((f) => f.code)).toEqual(['SNP_PRODUCT_UNKNOWN']);
    expect(r.failures[0]?.actual).toBe('version 2 (no CPUID)');
    expect(kds.calls).toEqual([]);
  });

  it('a version 2 report whose table has the VCEK: the product comes from the VCEK', async () => {
    const kds = FakeKds.full();
    const table = encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: chain.vcek }]);
    const r = await resolveSnpCollateral({ evidence: { report: v2Report(), certTable: table }, products: [] }, new KdsClient({ fetcher: kds.fetcher, clock }));
    expect(r.failures).toEqual([]);
    expect(r.vcek).toBeUndefined();
    expect(r.ask?.der).toEqual(chain.ask);
    expect([...kds.calls].sort()).toEqual([CHAIN_URL, CRL_URL].sort());
  });

  it('empty table entries count as absent (a host without cached certificates)', async () => {
    const kds = FakeKds.full();
    const table = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: new Uint8Array(0) },
      { guid: SNP_CERT_GUID.ask, data: new Uint8Array(0) },
      { guid: SNP_CERT_GUID.ark, data: new Uint8Array(0) },
    ]);
    const r = await resolveSnpCollateral({ evidence: { report: snpReport(), certTable: table } }, new KdsClient({ fetcher: kds.fetcher, clock }));
    expect(r.failures).toEqual([]);
    expect(r.vcek?.der).toEqual(chain.vcek);
    expect(r.ark?.der).toEqual(chain.ark);
  });

  it('evidence that does not decode gets nothing (the appraisal says why)', async () => {
    const kds = FakeKds.full();
    const bad = snpReport();
    bad[0] = 9; // VERSION 9
    expect(await resolveSnpCollateral({ evidence: { report: bad } }, new KdsClient({ fetcher: kds.fetcher, clock }))).toEqual({ failures: [] });
    expect(kds.calls).toEqual([]);
  });

  it('a CRL past its nextUpdate is fetched again', async () => {
    const kds = FakeKds.full();
    let now = new Date('2030-01-01T00:00:00Z');
    const client = new KdsClient({ fetcher: kds.fetcher, clock: () => now });
    const input = { evidence: { report: snpReport(), certTable: fullTable() } };
    expect((await resolveSnpCollateral(input, client)).crl?.source).toBe('kds');
    expect((await resolveSnpCollateral(input, client)).crl?.source).toBe('kds-cache');
    now = new Date('2035-06-01T00:00:00Z'); // after the TEST-ONLY CRL's nextUpdate
    expect((await resolveSnpCollateral(input, client)).crl?.source).toBe('kds');
    expect(kds.calls).toEqual([CRL_URL, CRL_URL]);
  });

  it('concurrent attestations of one chip share one KDS request per URL', async () => {
    const kds = FakeKds.full();
    const client = new KdsClient({ fetcher: kds.fetcher, clock });
    const input = { evidence: { report: snpReport() } };
    const all = await Promise.all([1, 2, 3, 4].map(() => resolveSnpCollateral(input, client)));
    expect(all.every((r) => r.failures.length === 0 && r.vcek !== undefined && r.crl !== undefined)).toBe(true);
    expect([...kds.calls].sort()).toEqual([CHAIN_URL, CRL_URL, VCEK_URL].sort());
  });
});

describe('vouch verifier start: SEV-SNP collateral flags', () => {
  const base = { dataDir: 'd', listen: '127.0.0.1:0', tpmCaDir: [], policy: ['g=p.yaml'], verifierId: 'v', challengeTtl: '60', rateLimit: '10', logLevel: 'info' };
  const codeOf = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      if (isVouchError(e)) return e.code;
      throw e;
    }
    return undefined;
  };

  it('the flags parse into the option names verifierConfig reads', () => {
    const opts = withSnpKdsOptions(new Command().exitOverride())
      .parse(['--snp-kds-cache', 'c', '--snp-kds-url', 'https://kds.example', '--snp-kds-offline', '--snp-collateral-bundle', 'b.json'], { from: 'user' })
      .opts<Record<string, unknown>>();
    expect(opts).toEqual({ snpKdsCache: 'c', snpKdsUrl: 'https://kds.example', snpKdsOffline: true, snpCollateralBundle: 'b.json' });
  });

  it('no flag: no KDS (the certificate table and configured CRLs only)', () => {
    expect(verifierConfig(base).snp).toBeUndefined();
  });

  it('each flag maps to the KDS configuration', () => {
    expect(verifierConfig({ ...base, snpKdsCache: '/var/cache/vouch', snpKdsUrl: 'https://kds.example/' }).snp).toEqual({ kds: { cacheDir: '/var/cache/vouch', baseUrl: 'https://kds.example/' } });
    expect(snpKdsConfig({ snpKdsOffline: true, snpCollateralBundle: 'b.json' })).toEqual({ offline: true, bundle: 'b.json' });
    expect(snpKdsConfig({ snpCollateralBundle: 'b.json' })).toEqual({ bundle: 'b.json' });
  });

  it('contradictory or incomplete flags are misuse', () => {
    expect(codeOf(() => snpKdsConfig({ snpKdsOffline: true }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => snpKdsConfig({ snpKdsOffline: true, snpKdsCache: 'c', snpKdsUrl: 'https://kds.example' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => snpKdsConfig({ snpKdsUrl: 'ftp://kds.example' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => snpKdsConfig({ snpKdsUrl: 'https://kds.example/?x=1' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => snpKdsConfig({ snpKdsUrl: 'not a url' }))).toBe('MISUSE_ARGUMENT');
  });
});
