/**
 * The Intel PCS client behind a fake fetcher (no network): URL shapes, issuer-chain headers,
 * the on-disk cache keyed by FMSPC and CA type, freshness by nextUpdate, rate limits, rollback
 * and label checks, and offline bundles (vouch JSON, dcap-qvl collateral.json, a directory of
 * PCS files). Served content is the real collateral of ../shared/fixtures/real/tdx.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PcsClient, PcsRateLimitedError, verifyTdxCollateral, type FetchResponse, type Fetcher } from '../../src/tdx/collateral.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const BASE = 'https://pcs.test';
const ROOT_CRL_URL = 'https://certs.test/IntelSGXRootCA.der';
const SPR = '50806f000000';
const EMR = '90c06f000000';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'vouch-pcs-'));
  dirs.push(d);
  return d;
}

const text = (...p: string[]): string => readFileSync(realPath(...p), 'utf8');
const ok = (body: Uint8Array, headers: Record<string, string> = {}): FetchResponse => ({ status: 200, headers, body });

/** A fake PCS serving the real gtg-spr-e4-v4 set and the dcap-qvl EMR TCB Info, counting requests. */
function fakePcs(overrides: Record<string, () => FetchResponse> = {}): { fetcher: Fetcher; urls: string[] } {
  const urls: string[] = [];
  const qvl = JSON.parse(text('tdx', 'dcapqvl-emr-v5-outdated', 'collateral.json')) as Record<string, string>;
  const routes: Record<string, () => FetchResponse> = {
    [`${BASE}/tdx/certification/v4/tcb?fmspc=${SPR}`]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), { 'TCB-Info-Issuer-Chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem')) }),
    [`${BASE}/tdx/certification/v4/tcb?fmspc=${EMR}`]: () =>
      ok(new Uint8Array(Buffer.from(`{"tcbInfo":${qvl.tcb_info},"signature":"${qvl.tcb_info_signature}"}`)), { 'tcb-info-issuer-chain': encodeURIComponent(qvl.tcb_info_issuer_chain as string) }),
    [`${BASE}/tdx/certification/v4/qe/identity`]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json'), { 'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'qe_identity_issuer_chain.pem')) }),
    [`${BASE}/sgx/certification/v4/pckcrl?ca=platform&encoding=der`]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'pck_crl.der'), { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'pck_crl_issuer_chain.pem')) }),
    [ROOT_CRL_URL]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'root_ca_crl.der')),
    ...overrides,
  };
  const fetcher: Fetcher = async (url) => {
    urls.push(url);
    const r = routes[url];
    return r === undefined ? { status: 404, headers: {}, body: new Uint8Array(0) } : r();
  };
  return { fetcher, urls };
}

function clockAt(iso: string): { clock: () => Date; set: (iso: string) => void } {
  let t = new Date(iso);
  return { clock: () => t, set: (s) => (t = new Date(s)) };
}

const SPR_TIME = '2023-07-01T01:00:00Z';

describe.skipIf(!HAVE_REAL)('PcsClient', () => {
  it('URL shapes (PCS API v4), with and without update=early', () => {
    const c = new PcsClient({ clock: () => new Date(), baseUrl: `${BASE}/` });
    expect(c.tcbInfoUrl(Uint8Array.of(0x50, 0x80, 0x6f, 0, 0, 0))).toBe(`${BASE}/tdx/certification/v4/tcb?fmspc=${SPR}`);
    expect(c.qeIdentityUrl()).toBe(`${BASE}/tdx/certification/v4/qe/identity`);
    expect(c.pckCrlUrl('processor')).toBe(`${BASE}/sgx/certification/v4/pckcrl?ca=processor&encoding=der`);
    const early = new PcsClient({ clock: () => new Date(), baseUrl: BASE, update: 'early' });
    expect(early.tcbInfoUrl('50806F000000')).toBe(`${BASE}/tdx/certification/v4/tcb?fmspc=${SPR}&update=early`);
    expect(early.qeIdentityUrl()).toBe(`${BASE}/tdx/certification/v4/qe/identity?update=early`);
    expect(() => c.tcbInfoUrl('50806f')).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => c.pckCrlUrl('root' as 'platform')).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(new PcsClient({ clock: () => new Date() }).qeIdentityUrl()).toBe('https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity');
  });

  it('collateral(): four requests, a verifiable set, then served from the cache while current', async () => {
    const pcs = fakePcs();
    const { clock } = clockAt(SPR_TIME);
    const c = new PcsClient({ fetcher: pcs.fetcher, clock, baseUrl: BASE, rootCaCrlUrl: ROOT_CRL_URL, cacheDir: tmp() });
    const col = await c.collateral(SPR, 'platform');
    expect(pcs.urls).toHaveLength(4);
    expect(verifyTdxCollateral(col, { now: clock() }).failures).toEqual([]);
    await c.collateral(SPR, 'platform');
    expect(pcs.urls).toHaveLength(4);
  });

  it('the on-disk cache is keyed by FMSPC and CA type, and a new offline client serves it', async () => {
    const dir = tmp();
    const { clock } = clockAt(SPR_TIME);
    await new PcsClient({ fetcher: fakePcs().fetcher, clock, baseUrl: BASE, rootCaCrlUrl: ROOT_CRL_URL, cacheDir: dir }).collateral(SPR, 'platform');
    const files = (d: string): string[] => readdirSync(join(dir, d)).sort();
    expect(files('tcb')).toEqual([`${SPR}.issuer-chain.pem`, `${SPR}.json`]);
    expect(files('pckcrl')).toEqual(['platform.der', 'platform.issuer-chain.pem']);
    expect(files('qe')).toEqual(['td_qe.issuer-chain.pem', 'td_qe.json']);
    // The body is stored exactly as served.
    expect(readFileSync(join(dir, 'tcb', `${SPR}.json`))).toEqual(Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json')));
    const offline = new PcsClient({ clock, cacheDir: dir });
    const col = await offline.collateral(SPR, 'platform');
    expect(verifyTdxCollateral(col, { now: clock() }).ok).toBe(true);
    await expect(offline.tcbInfo(EMR)).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE' });
    await expect(offline.pckCrl('processor')).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE' });
  });

  it('after nextUpdate the entry is fetched again; offline, an expired entry is not served', async () => {
    const dir = tmp();
    const pcs = fakePcs();
    const t = clockAt(SPR_TIME);
    const c = new PcsClient({ fetcher: pcs.fetcher, clock: t.clock, baseUrl: BASE, cacheDir: dir });
    await c.qeIdentity();
    t.set('2023-07-09T00:00:00Z'); // past the QE Identity's nextUpdate (07-08)
    await c.qeIdentity();
    expect(pcs.urls.filter((u) => u.endsWith('/qe/identity'))).toHaveLength(2);
    const offline = new PcsClient({ clock: t.clock, cacheDir: dir });
    await expect(offline.qeIdentity()).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE', message: expect.stringContaining('expired at 2023-07-08T07:24:59.000Z') });
  });

  it('429: the Retry-After time is kept, no request is made before it, and one is made after', async () => {
    let limited = true;
    const pcs = fakePcs({ [`${BASE}/tdx/certification/v4/qe/identity`]: () => (limited ? { status: 429, headers: { 'Retry-After': '120' }, body: new Uint8Array(0) } : ok(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json'), { 'sgx-enclave-identity-issuer-chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'qe_identity_issuer_chain.pem')) })) });
    const t = clockAt(SPR_TIME);
    const c = new PcsClient({ fetcher: pcs.fetcher, clock: t.clock, baseUrl: BASE });
    const err = await c.qeIdentity().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PcsRateLimitedError);
    expect((err as PcsRateLimitedError).retryAt.toISOString()).toBe('2023-07-01T01:02:00.000Z');
    expect(c.retryAt?.toISOString()).toBe('2023-07-01T01:02:00.000Z');
    limited = false;
    t.set('2023-07-01T01:01:59Z');
    await expect(c.tcbInfo(SPR)).rejects.toMatchObject({ code: 'TDX_PCS_RATE_LIMITED' });
    expect(pcs.urls).toHaveLength(1);
    t.set('2023-07-01T01:02:00Z');
    expect((await c.qeIdentity()).parsed.id).toBe('TD_QE');
    expect(c.retryAt).toBeUndefined();
  });

  it('HTTP errors, a thrown fetch, a missing issuer-chain header and a bad body are each reported', async () => {
    const t = clockAt(SPR_TIME);
    const make = (r: () => FetchResponse) => new PcsClient({ fetcher: fakePcs({ [`${BASE}/tdx/certification/v4/tcb?fmspc=${SPR}`]: r }).fetcher, clock: t.clock, baseUrl: BASE });
    await expect(make(() => ({ status: 500, headers: {}, body: new Uint8Array(0) })).tcbInfo(SPR)).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE' });
    await expect(make(() => ok(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'))).tcbInfo(SPR)).rejects.toMatchObject({ code: 'TDX_PCS_MALFORMED', field: 'tcb-info-issuer-chain' });
    await expect(make(() => ok(new Uint8Array(Buffer.from('{"tcbInfo":1}')), { 'tcb-info-issuer-chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem')) })).tcbInfo(SPR)).rejects.toMatchObject({ code: 'TDX_PCS_MALFORMED' });
    await expect(make(() => ok(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), { 'tcb-info-issuer-chain': '%E0%A4%A' })).tcbInfo(SPR)).rejects.toMatchObject({ code: 'TDX_PCS_MALFORMED' });
    const throwing = new PcsClient({ fetcher: async () => Promise.reject(new Error('ECONNRESET')), clock: t.clock, baseUrl: BASE });
    await expect(throwing.rootCaCrl()).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE' });
  });

  it('a TCB Info of another FMSPC, or the PCK CRL of the other CA, is mislabelled', async () => {
    const t = clockAt(SPR_TIME);
    const pcs = fakePcs();
    const swapped = fakePcs({
      [`${BASE}/tdx/certification/v4/tcb?fmspc=${EMR}`]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), { 'tcb-info-issuer-chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem')) }),
      [`${BASE}/sgx/certification/v4/pckcrl?ca=processor&encoding=der`]: () => ok(readReal('tdx', 'gtg-spr-e4-v4', 'pck_crl.der'), { 'sgx-pck-crl-issuer-chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'pck_crl_issuer_chain.pem')) }),
    });
    const c = new PcsClient({ fetcher: swapped.fetcher, clock: t.clock, baseUrl: BASE });
    await expect(c.tcbInfo(EMR)).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISLABELLED', expected: EMR, actual: SPR });
    await expect(c.pckCrl('processor')).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISLABELLED', expected: 'processor', actual: 'platform' });
    // A cache file renamed to another FMSPC is caught on read as well.
    const dir = tmp();
    await new PcsClient({ fetcher: pcs.fetcher, clock: t.clock, baseUrl: BASE, cacheDir: dir }).tcbInfo(SPR);
    const d = join(dir, 'tcb');
    writeFileSync(join(d, `${EMR}.json`), readFileSync(join(d, `${SPR}.json`)));
    writeFileSync(join(d, `${EMR}.issuer-chain.pem`), readFileSync(join(d, `${SPR}.issuer-chain.pem`)));
    await expect(new PcsClient({ clock: t.clock, cacheDir: dir }).tcbInfo(EMR)).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISLABELLED' });
  });

  it('a fetched TCB Info older than the cached one is refused (TDX_COLLATERAL_ROLLBACK), and the cache keeps the newer', async () => {
    const dir = tmp();
    const t = clockAt('2026-03-01T00:00:00Z');
    // First the dcap-qvl EMR TCB Info (evaluation 18, issued 2026-02-18) …
    await new PcsClient({ fetcher: fakePcs().fetcher, clock: t.clock, baseUrl: BASE, cacheDir: dir }).tcbInfo(EMR);
    // … then, after its nextUpdate, PCS (or someone in between) serves gtg-emr-v5's (evaluation 18, issued 2026-02-01).
    t.set('2026-03-21T00:00:00Z');
    const older = fakePcs({ [`${BASE}/tdx/certification/v4/tcb?fmspc=${EMR}`]: () => ok(readReal('tdx', 'gtg-emr-v5', 'tcb_info.json'), { 'tcb-info-issuer-chain': encodeURIComponent(text('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem')) }) });
    const c = new PcsClient({ fetcher: older.fetcher, clock: t.clock, baseUrl: BASE, cacheDir: dir });
    await expect(c.tcbInfo(EMR)).rejects.toMatchObject({ code: 'TDX_COLLATERAL_ROLLBACK', actual: '18 (issued 2026-02-01T14:49:26.000Z)' });
    t.set('2026-03-01T00:00:00Z');
    expect((await new PcsClient({ clock: t.clock, cacheDir: dir }).tcbInfo(EMR)).parsed.issueDate.toISOString()).toBe('2026-02-18T10:58:51.000Z');
  });
});

describe.skipIf(!HAVE_REAL)('offline bundles', () => {
  it('a directory of PCS files (gtg-spr-e4-v4, beside a quote that is not read): imported, then served offline', async () => {
    const { clock } = clockAt(SPR_TIME);
    const c = new PcsClient({ clock, cacheDir: tmp() });
    expect(await c.importBundle(realPath('tdx', 'gtg-spr-e4-v4'))).toEqual({ tcbInfos: 1, qeIdentities: 1, pckCrls: 1, rootCaCrls: 1, olderSkipped: 0 });
    expect(verifyTdxCollateral(await c.collateral(SPR, 'platform'), { now: clock() }).ok).toBe(true);
  });

  it('a dcap-qvl collateral.json: imported with its labels read from the content', async () => {
    const { clock } = clockAt('2025-07-01T00:00:00Z');
    const c = new PcsClient({ clock });
    expect(await c.importBundle(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'))).toEqual({ tcbInfos: 1, qeIdentities: 1, pckCrls: 1, rootCaCrls: 1, olderSkipped: 0 });
    const col = await c.collateral('b0c06f000000', 'platform');
    expect(verifyTdxCollateral(col, { now: clock() }).failures).toEqual([]);
  });

  it('export then import into a fresh client gives the same collateral; re-importing older entries skips them', async () => {
    const { clock } = clockAt('2025-07-01T00:00:00Z');
    const a = new PcsClient({ clock, cacheDir: tmp() });
    await a.importBundle(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'));
    await a.importBundle(realPath('tdx', 'gtg-spr-e4-v4'));
    const file = join(tmp(), 'bundle.json');
    await a.exportBundle(file);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { format: string; tcbInfos: { fmspc: string }[]; pckCrls: unknown[]; rootCaCrls: unknown[]; qeIdentities: unknown[] };
    expect(doc.format).toBe('vouch-tdx-collateral');
    expect(doc.tcbInfos.map((x) => x.fmspc).sort()).toEqual([SPR, 'b0c06f000000']);
    // The gtg-spr QE Identity, PCK CRL and Root CA CRL were older than the dcap-qvl ones: skipped.
    expect(doc.qeIdentities).toHaveLength(1);
    const b = new PcsClient({ clock });
    expect(await b.importBundle(file)).toEqual({ tcbInfos: 2, qeIdentities: 1, pckCrls: 1, rootCaCrls: 1, olderSkipped: 0 });
    expect(await a.collateral('b0c06f000000', 'platform')).toEqual(await b.collateral('b0c06f000000', 'platform'));
    expect(await b.importBundle(realPath('tdx', 'gtg-spr-e4-v4'))).toEqual({ tcbInfos: 1, qeIdentities: 0, pckCrls: 0, rootCaCrls: 0, olderSkipped: 3 });
  });

  it('one bad entry rejects the whole bundle and nothing is stored', async () => {
    const { clock } = clockAt(SPR_TIME);
    const good = JSON.parse(readFileSync(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'), 'utf8')) as Record<string, string>;
    const file = join(tmp(), 'bad.json');
    writeFileSync(file, JSON.stringify({ ...good, root_ca_crl: '3003020100' }));
    const c = new PcsClient({ clock });
    await expect(c.importBundle(file)).rejects.toMatchObject({ code: 'TDX_PCS_MALFORMED' });
    await expect(c.tcbInfo('b0c06f000000')).rejects.toMatchObject({ code: 'TDX_PCS_UNAVAILABLE' });
    writeFileSync(file, JSON.stringify({ format: 'vouch-tdx-collateral', version: 2 }));
    await expect(c.importBundle(file)).rejects.toMatchObject({ code: 'TDX_PCS_MALFORMED' });
    writeFileSync(file, JSON.stringify({ format: 'vouch-tdx-collateral', version: 1, tcbInfos: [{ fmspc: EMR, body: readFileSync(realPath('tdx', 'gtg-spr-e4-v4', 'tcb_info.json'), 'utf8'), issuerChain: text('tdx', 'gtg-spr-e4-v4', 'tcb_info_issuer_chain.pem') }] }));
    await expect(c.importBundle(file)).rejects.toMatchObject({ code: 'TDX_COLLATERAL_MISLABELLED' });
    await expect(c.importBundle(join(tmp(), 'absent.json'))).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
  });
});
