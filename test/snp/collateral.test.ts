/**
 * KDS client and collateral cache (src/snp/collateral.ts), against a fake KDS that records
 * every URL it is asked. No network.
 */
import 'reflect-metadata';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, issueTestVcek, testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { isVouchError } from '../../src/lib/errors.js';
import { toHex } from '../../src/lib/bytes.js';
import {
  KDS_BASE_URL,
  KdsClient,
  KdsRateLimitedError,
  decodeVcekExtensions,
  kdsCertChainUrl,
  kdsCrlUrl,
  kdsVcekUrl,
  retryAfter,
  type FetchResponse,
  type Fetcher,
} from '../../src/snp/collateral.js';

const t = testSnpChain();
const T0 = new Date('2026-01-01T00:00:00Z');
const REAL = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures', 'real');
const HAVE_REAL = existsSync(join(REAL, 'snp'));
if (!HAVE_REAL) console.warn(`[test/snp/collateral] ${REAL} is absent: real-certificate checks are skipped`);

const ok = (body: Uint8Array | string, headers: Record<string, string> = {}): FetchResponse => ({
  status: 200,
  headers,
  body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
});

/** A fake KDS: a route table by exact URL, and the list of URLs asked, in order. */
class FakeKds {
  readonly calls: string[] = [];
  readonly routes = new Map<string, FetchResponse>();
  readonly fetcher: Fetcher = async (url) => {
    this.calls.push(url);
    return this.routes.get(url) ?? { status: 404, headers: {}, body: new Uint8Array() };
  };
}

/** A clock the test moves. */
function clockAt(start: Date) {
  const c = { now: new Date(start), clock: () => c.now, advance: (s: number) => (c.now = new Date(c.now.getTime() + s * 1000)) };
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return undefined;
}

const VCEK_URL = kdsVcekUrl(KDS_BASE_URL, 'Milan', t.chipId, t.tcb);
const CHAIN_URL = kdsCertChainUrl(KDS_BASE_URL, 'Milan', 'vcek');
const CRL_URL = kdsCrlUrl(KDS_BASE_URL, 'Milan', 'vcek');

function fullKds(): FakeKds {
  const kds = new FakeKds();
  kds.routes.set(VCEK_URL, ok(t.vcek));
  kds.routes.set(CHAIN_URL, ok(t.certChainPem));
  kds.routes.set(CRL_URL, ok(t.crl));
  return kds;
}

let tmp: string;
let n = 0;
const freshDir = () => join(tmp, `c${n++}`);

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vouch-kds-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('KDS URL shapes', () => {
  it('VCEK, chain and CRL URLs follow the KDS interface', () => {
    expect(VCEK_URL).toBe(`https://kdsintf.amd.com/vcek/v1/Milan/${toHex(t.chipId)}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=209`);
    expect(VCEK_URL).toMatch(/^https:\/\/kdsintf\.amd\.com\/vcek\/v1\/Milan\/[0-9a-f]{128}\?blSPL=\d+&teeSPL=\d+&snpSPL=\d+&ucodeSPL=\d+$/);
    expect(CHAIN_URL).toBe('https://kdsintf.amd.com/vcek/v1/Milan/cert_chain');
    expect(CRL_URL).toBe('https://kdsintf.amd.com/vcek/v1/Milan/crl');
    expect(kdsCertChainUrl(KDS_BASE_URL, 'Genoa', 'vlek')).toBe('https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain');
    expect(kdsCrlUrl(KDS_BASE_URL, 'Turin', 'vlek')).toBe('https://kdsintf.amd.com/vlek/v1/Turin/crl');
  });

  it('Turin uses an 8-byte hwid and adds fmcSPL', () => {
    const chip = new Uint8Array(64);
    chip.set([0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d]);
    const tcb = { bl: 0, tee: 0, snp: 0, ucode: 9, fmc: 1 };
    const url = 'https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d?blSPL=00&teeSPL=00&snpSPL=00&ucodeSPL=09&fmcSPL=01';
    expect(kdsVcekUrl(KDS_BASE_URL, 'Turin', chip, tcb)).toBe(url);
    expect(kdsVcekUrl(KDS_BASE_URL, 'Turin', chip.subarray(0, 8), tcb)).toBe(url);
  });

  it('bad arguments are misuse, not a request', async () => {
    const kds = new FakeKds();
    const c = new KdsClient({ fetcher: kds.fetcher, clock: () => T0 });
    expect(await codeOf(c.vcek('Turin', t.chipId, t.tcb))).toBe('MISUSE_ARGUMENT'); // no fmc; and 64 non-zero bytes
    expect(await codeOf(c.vcek('Milan', t.chipId.subarray(0, 8), t.tcb))).toBe('MISUSE_ARGUMENT');
    expect(await codeOf(c.vcek('Milan', t.chipId, { ...t.tcb, fmc: 1 }))).toBe('MISUSE_ARGUMENT');
    expect(await codeOf(c.vcek('Milan', t.chipId, { ...t.tcb, ucode: 256 }))).toBe('MISUSE_ARGUMENT');
    expect(await codeOf(c.vcek('Venice' as 'Milan', t.chipId, t.tcb))).toBe('MISUSE_ARGUMENT');
    expect(await codeOf(c.certChain('Milan', 'vxek' as 'vcek'))).toBe('MISUSE_ARGUMENT');
    expect(kds.calls).toEqual([]);
  });
});

describe('KdsClient cache', () => {
  it('a VCEK is fetched once per chip and TCB, then served from the cache (memory and disk)', async () => {
    const kds = fullKds();
    const dir = freshDir();
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 });
    expect(await c.vcek('Milan', t.chipId, t.tcb)).toEqual(t.vcek);
    expect(await c.vcek('Milan', t.chipId, t.tcb)).toEqual(t.vcek);
    expect(kds.calls).toEqual([VCEK_URL]);
    const file = join(dir, 'vcek', 'Milan', toHex(t.chipId), 'bl3-tee0-snp8-ucode209.der');
    expect(new Uint8Array(readFileSync(file))).toEqual(t.vcek);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    // A second client on the same directory reads the disk, not KDS.
    const c2 = new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 });
    expect(await c2.vcek('Milan', t.chipId, t.tcb)).toEqual(t.vcek);
    expect(kds.calls).toEqual([VCEK_URL]);
    // Another TCB is another key: KDS is asked (and answers 404 here).
    const other = { ...t.tcb, snp: 9 };
    expect(await codeOf(c.vcek('Milan', t.chipId, other))).toBe('SNP_KDS_UNAVAILABLE');
    expect(kds.calls).toEqual([VCEK_URL, kdsVcekUrl(KDS_BASE_URL, 'Milan', t.chipId, other)]);
  });

  it('a VCEK from KDS for another chip or TCB than asked is refused and not cached', async () => {
    const kds = new FakeKds();
    const otherTcb = { ...t.tcb, bl: 4 };
    kds.routes.set(kdsVcekUrl(KDS_BASE_URL, 'Milan', t.chipId, otherTcb), ok(t.vcek));
    const otherChip = new Uint8Array(64).fill(7);
    kds.routes.set(kdsVcekUrl(KDS_BASE_URL, 'Milan', otherChip, t.tcb), ok(t.vcek));
    const dir = freshDir();
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 });
    expect(await codeOf(c.vcek('Milan', t.chipId, otherTcb))).toBe('SNP_COLLATERAL_MISLABELLED');
    expect(await codeOf(c.vcek('Milan', otherChip, t.tcb))).toBe('SNP_COLLATERAL_MISLABELLED');
    expect(existsSync(join(dir, 'vcek'))).toBe(false);
  });

  it('a cache file that was swapped for another VCEK is refused', async () => {
    const kds = fullKds();
    const dir = freshDir();
    await new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 }).vcek('Milan', t.chipId, t.tcb);
    const other = await issueTestVcek({ chipId: new Uint8Array(64).fill(9) });
    writeFileSync(join(dir, 'vcek', 'Milan', toHex(t.chipId), 'bl3-tee0-snp8-ucode209.der'), other.der);
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 });
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_COLLATERAL_MISLABELLED');
  });

  it('the chain is fetched once per product and kind, ASK then ARK', async () => {
    const kds = fullKds();
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: freshDir(), clock: () => T0 });
    expect(await c.certChain('Milan', 'vcek')).toEqual({ ask: t.ask, ark: t.ark });
    expect(await c.certChain('Milan', 'vcek')).toEqual({ ask: t.ask, ark: t.ark });
    expect(kds.calls).toEqual([CHAIN_URL]);
  });

  it('a chain of the wrong kind, product or order is refused', async () => {
    const kds = new FakeKds();
    kds.routes.set(kdsCertChainUrl(KDS_BASE_URL, 'Milan', 'vlek'), ok(t.certChainPem));
    kds.routes.set(kdsCertChainUrl(KDS_BASE_URL, 'Genoa', 'vcek'), ok(t.certChainPem));
    const swapped = readFileSync(join(import.meta.dirname, '..', '..', 'attestation-fixtures', 'snp', 'ark.pem'), 'utf8') +
      readFileSync(join(import.meta.dirname, '..', '..', 'attestation-fixtures', 'snp', 'ask.pem'), 'utf8');
    kds.routes.set(CHAIN_URL, ok(swapped));
    const c = new KdsClient({ fetcher: kds.fetcher, clock: () => T0 });
    expect(await codeOf(c.certChain('Milan', 'vlek'))).toBe('SNP_COLLATERAL_MISLABELLED');
    expect(await codeOf(c.certChain('Genoa', 'vcek'))).toBe('SNP_COLLATERAL_MISLABELLED');
    expect(await codeOf(c.certChain('Milan', 'vcek'))).toBe('SNP_COLLATERAL_MISLABELLED');
  });

  it('a CRL is served from the cache until its nextUpdate, then refetched', async () => {
    const kds = fullKds();
    const clk = clockAt(T0);
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: freshDir(), clock: clk.clock });
    const first = await c.crl('Milan', 'vcek');
    expect(first.der).toEqual(t.crl);
    expect(first.nextUpdate).toEqual(FIXTURE.crlNextUpdate);
    clk.now = new Date(FIXTURE.crlNextUpdate.getTime() - 1000);
    await c.crl('Milan', 'vcek');
    expect(kds.calls).toEqual([CRL_URL]);
    clk.now = new Date(FIXTURE.crlNextUpdate.getTime() + 1000);
    await c.crl('Milan', 'vcek');
    expect(kds.calls).toEqual([CRL_URL, CRL_URL]);
  });

  it('a stale CRL is not returned when KDS cannot be asked', async () => {
    const kds = fullKds();
    const clk = clockAt(T0);
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: freshDir(), clock: clk.clock });
    await c.crl('Milan', 'vcek');
    kds.routes.set(CRL_URL, { status: 503, headers: {}, body: new Uint8Array() });
    clk.now = new Date(FIXTURE.crlNextUpdate.getTime() + 1000);
    expect(await codeOf(c.crl('Milan', 'vcek'))).toBe('SNP_KDS_UNAVAILABLE');
  });
});

describe('KDS rate limits', () => {
  it('429 with Retry-After seconds: SNP_KDS_RATE_LIMITED, and no request before that time', async () => {
    const kds = fullKds();
    kds.routes.set(VCEK_URL, { status: 429, headers: { 'Retry-After': '120' }, body: new Uint8Array() });
    const clk = clockAt(T0);
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: freshDir(), clock: clk.clock });
    await c.certChain('Milan', 'vcek'); // cached before the limit
    const err = await c.vcek('Milan', t.chipId, t.tcb).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KdsRateLimitedError);
    expect((err as KdsRateLimitedError).code).toBe('SNP_KDS_RATE_LIMITED');
    expect((err as KdsRateLimitedError).category).toBe('unavailable');
    expect((err as KdsRateLimitedError).retryAt).toEqual(new Date(T0.getTime() + 120_000));
    expect(c.retryAt).toEqual(new Date(T0.getTime() + 120_000));
    expect(kds.calls).toEqual([CHAIN_URL, VCEK_URL]);

    kds.routes.set(VCEK_URL, ok(t.vcek)); // KDS would answer now, but the client must not ask
    clk.advance(119);
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_RATE_LIMITED');
    expect(await codeOf(c.crl('Milan', 'vcek'))).toBe('SNP_KDS_RATE_LIMITED');
    expect(await c.certChain('Milan', 'vcek')).toEqual({ ask: t.ask, ark: t.ark }); // the cache still serves
    expect(kds.calls).toEqual([CHAIN_URL, VCEK_URL]);

    clk.advance(1);
    expect(await c.vcek('Milan', t.chipId, t.tcb)).toEqual(t.vcek);
    expect(kds.calls).toEqual([CHAIN_URL, VCEK_URL, VCEK_URL]);
    expect(c.retryAt).toBeUndefined();
  });

  it('429 with an HTTP-date Retry-After waits until that date', async () => {
    const kds = fullKds();
    const until = new Date(T0.getTime() + 3600_000);
    kds.routes.set(CRL_URL, { status: 429, headers: { 'retry-after': until.toUTCString() }, body: new Uint8Array() });
    const clk = clockAt(T0);
    const c = new KdsClient({ fetcher: kds.fetcher, clock: clk.clock });
    expect(await codeOf(c.crl('Milan', 'vcek'))).toBe('SNP_KDS_RATE_LIMITED');
    expect(c.retryAt).toEqual(until);
    clk.advance(3599);
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_RATE_LIMITED');
    expect(kds.calls).toEqual([CRL_URL]);
  });

  it('Retry-After parsing: seconds, HTTP-date, absent or unusable → the default wait', () => {
    expect(retryAfter({ 'Retry-After': '5' }, T0)).toEqual(new Date(T0.getTime() + 5000));
    expect(retryAfter({ 'retry-after': 'Thu, 01 Jan 2026 00:10:00 GMT' }, T0)).toEqual(new Date('2026-01-01T00:10:00Z'));
    expect(retryAfter({}, T0)).toEqual(new Date(T0.getTime() + 60_000));
    expect(retryAfter({ 'retry-after': 'soon' }, T0)).toEqual(new Date(T0.getTime() + 60_000));
    expect(retryAfter({ 'retry-after': '-3' }, T0)).toEqual(new Date(T0.getTime() + 60_000));
    expect(retryAfter({ 'retry-after': 'Thu, 01 Jan 2020 00:00:00 GMT' }, T0)).toEqual(new Date(T0.getTime() + 60_000));
  });
});

describe('KDS failures', () => {
  it('4xx/5xx and a failing fetcher → SNP_KDS_UNAVAILABLE; offline miss too', async () => {
    const kds = fullKds();
    kds.routes.set(CHAIN_URL, { status: 500, headers: {}, body: new Uint8Array() });
    const c = new KdsClient({ fetcher: kds.fetcher, clock: () => T0 });
    expect(await codeOf(c.certChain('Milan', 'vcek'))).toBe('SNP_KDS_UNAVAILABLE');
    expect(await codeOf(c.certChain('Genoa', 'vcek'))).toBe('SNP_KDS_UNAVAILABLE'); // 404
    const throwing = new KdsClient({ fetcher: async () => Promise.reject(new TypeError('ECONNRESET')), clock: () => T0 });
    expect(await codeOf(throwing.crl('Milan', 'vcek'))).toBe('SNP_KDS_UNAVAILABLE');
    const offline = new KdsClient({ clock: () => T0 });
    expect(await codeOf(offline.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_UNAVAILABLE');
  });

  it('a body that is not a certificate, chain or CRL → SNP_KDS_MALFORMED, nothing cached', async () => {
    const kds = new FakeKds();
    kds.routes.set(VCEK_URL, ok('<html>Service Unavailable</html>'));
    kds.routes.set(CHAIN_URL, ok('not PEM at all'));
    kds.routes.set(CRL_URL, ok(t.vcek)); // a certificate where a CRL belongs
    const dir = freshDir();
    const c = new KdsClient({ fetcher: kds.fetcher, cacheDir: dir, clock: () => T0 });
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_MALFORMED');
    expect(await codeOf(c.certChain('Milan', 'vcek'))).toBe('SNP_KDS_MALFORMED');
    expect(await codeOf(c.crl('Milan', 'vcek'))).toBe('SNP_KDS_MALFORMED');
    kds.routes.set(VCEK_URL, ok(t.vcek.subarray(0, t.vcek.length - 1))); // truncated DER
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_MALFORMED');
    kds.routes.set(VCEK_URL, ok(t.ask)); // a certificate without the AMD extensions
    expect(await codeOf(c.vcek('Milan', t.chipId, t.tcb))).toBe('SNP_KDS_MALFORMED');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('offline bundles', () => {
  async function filledClient(dir: string): Promise<KdsClient> {
    const c = new KdsClient({ fetcher: fullKds().fetcher, cacheDir: dir, clock: () => T0 });
    await c.vcek('Milan', t.chipId, t.tcb);
    await c.certChain('Milan', 'vcek');
    await c.crl('Milan', 'vcek');
    return c;
  }

  async function expectServedOffline(dir: string): Promise<void> {
    const offline = new KdsClient({ cacheDir: dir, clock: () => T0 });
    expect(await offline.vcek('Milan', t.chipId, t.tcb)).toEqual(t.vcek);
    expect(await offline.certChain('Milan', 'vcek')).toEqual({ ask: t.ask, ark: t.ark });
    expect((await offline.crl('Milan', 'vcek')).der).toEqual(t.crl);
  }

  it('a JSON bundle exported online fills an air-gapped cache', async () => {
    const online = await filledClient(freshDir());
    const bundle = join(tmp, `bundle-${n++}.json`);
    await online.exportBundle(bundle);
    const airGapped = freshDir();
    const c = new KdsClient({ cacheDir: airGapped, clock: () => T0 });
    expect(await c.importBundle(bundle)).toEqual({ vceks: 1, chains: 1, crls: 1, olderCrlsSkipped: 0 });
    await expectServedOffline(airGapped);
  });

  it('a directory bundle (a copied cache) fills an air-gapped cache', async () => {
    const src = freshDir();
    await filledClient(src);
    const airGapped = freshDir();
    const c = new KdsClient({ cacheDir: airGapped, clock: () => T0 });
    expect(await c.importBundle(src)).toEqual({ vceks: 1, chains: 1, crls: 1, olderCrlsSkipped: 0 });
    await expectServedOffline(airGapped);
  });

  it('a mislabelled JSON entry rejects the whole bundle, and nothing is stored', async () => {
    const online = await filledClient(freshDir());
    const bundle = join(tmp, `bundle-${n++}.json`);
    await online.exportBundle(bundle);
    const doc = JSON.parse(readFileSync(bundle, 'utf8'));
    const variants: [string, (d: typeof doc) => void][] = [
      ['another chip id', (d) => (d.vceks[0].chipId = '07'.repeat(64))],
      ['another TCB', (d) => (d.vceks[0].tcb = { ...d.vceks[0].tcb, snp: 1 })],
      ['another product (CRL)', (d) => (d.crls[0].product = 'Genoa')],
      ['another kind (chain)', (d) => (d.chains[0].kind = 'vlek')],
    ];
    for (const [what, mutate] of variants) {
      const d = JSON.parse(JSON.stringify(doc));
      mutate(d);
      const f = join(tmp, `bad-${n++}.json`);
      writeFileSync(f, JSON.stringify(d));
      const dir = freshDir();
      const c = new KdsClient({ cacheDir: dir, clock: () => T0 });
      expect(await codeOf(c.importBundle(f)), what).toBe('SNP_COLLATERAL_MISLABELLED');
      expect(existsSync(dir), what).toBe(false);
    }
  });

  it('a directory entry filed under another TCB is rejected', async () => {
    const src = freshDir();
    await filledClient(src);
    const hw = join(src, 'vcek', 'Milan', toHex(t.chipId));
    cpSync(join(hw, 'bl3-tee0-snp8-ucode209.der'), join(hw, 'bl3-tee0-snp9-ucode209.der'));
    const c = new KdsClient({ cacheDir: freshDir(), clock: () => T0 });
    expect(await codeOf(c.importBundle(src))).toBe('SNP_COLLATERAL_MISLABELLED');
  });

  it('malformed bundles → SNP_KDS_MALFORMED', async () => {
    const c = new KdsClient({ cacheDir: freshDir(), clock: () => T0 });
    const cases: unknown[] = [
      { format: 'other', version: 1 },
      { format: 'vouch-snp-collateral', version: 1, extra: [] },
      { format: 'vouch-snp-collateral', version: 1, crls: [{ product: 'Milan', kind: 'vcek', der: 'not base64!' }] },
      { format: 'vouch-snp-collateral', version: 1, crls: [{ product: 'Milan', kind: 'vcek', der: Buffer.from('junk').toString('base64') }] },
    ];
    for (const doc of cases) {
      const f = join(tmp, `m-${n++}.json`);
      writeFileSync(f, JSON.stringify(doc));
      expect(await codeOf(c.importBundle(f)), JSON.stringify(doc)).toBe('SNP_KDS_MALFORMED');
    }
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'README.txt'), 'stray');
    expect(await codeOf(c.importBundle(dir))).toBe('SNP_KDS_MALFORMED');
    expect(await codeOf(c.importBundle(join(tmp, 'absent.json')))).toBe('MISUSE_FILE_UNREADABLE');
  });
});

describe.skipIf(!HAVE_REAL)('real AMD certificates', () => {
  const real = (rel: string) => new Uint8Array(readFileSync(join(REAL, rel)));

  it('decodes the AMD extensions of a real Milan and a real Turin VCEK', () => {
    const milan = decodeVcekExtensions(real('snp/gsg-milan/vcek.der'));
    expect(milan.productName).toBe('Milan-B0');
    expect(milan.product).toBe('Milan');
    expect(milan.tcb).toEqual({ bl: 2, tee: 0, snp: 5, ucode: 68 });
    expect(milan.hwId?.length).toBe(64);
    expect(toHex(milan.hwId!).startsWith('3ac3fe21e13fb099')).toBe(true);
    const turin = decodeVcekExtensions(real('snp/virtee-turin/vcek.der'));
    expect(turin.product).toBe('Turin');
    expect(turin.tcb).toEqual({ bl: 0, tee: 0, snp: 0, ucode: 9, fmc: 0 });
    expect(toHex(turin.hwId!)).toBe('1e550a8ee5cf9f4d');
  });

  it("accepts AMD's real chains for their product and kind, and refuses them for another", async () => {
    const kds = new FakeKds();
    for (const [p, k, f] of [
      ['Milan', 'vcek', 'ask_ark_milan.pem'],
      ['Milan', 'vlek', 'ask_ark_milan_vlek.pem'],
      ['Genoa', 'vcek', 'ask_ark_genoa.pem'],
      ['Turin', 'vcek', 'ask_ark_turin_vcek.pem'],
      ['Turin', 'vlek', 'ask_ark_turin_vlek.pem'],
    ] as const) {
      kds.routes.set(kdsCertChainUrl(KDS_BASE_URL, p, k), ok(real(`roots/amd/${f}`)));
    }
    kds.routes.set(kdsCertChainUrl(KDS_BASE_URL, 'Genoa', 'vlek'), ok(real('roots/amd/ask_ark_milan_vlek.pem')));
    const c = new KdsClient({ fetcher: kds.fetcher, clock: () => T0 });
    for (const [p, k] of [['Milan', 'vcek'], ['Milan', 'vlek'], ['Genoa', 'vcek'], ['Turin', 'vcek'], ['Turin', 'vlek']] as const) {
      const chain = await c.certChain(p, k);
      expect(chain.ask.length).toBeGreaterThan(1000);
    }
    expect(await codeOf(c.certChain('Genoa', 'vlek'))).toBe('SNP_COLLATERAL_MISLABELLED');
  });

  it('serves a real Turin VCEK by its 8-byte hwid and full TCB', async () => {
    const der = real('snp/virtee-turin/vcek.der');
    const chip = new Uint8Array(64);
    chip.set(Buffer.from('1e550a8ee5cf9f4d', 'hex'));
    const tcb = { bl: 0, tee: 0, snp: 0, ucode: 9, fmc: 0 };
    const kds = new FakeKds();
    kds.routes.set(kdsVcekUrl(KDS_BASE_URL, 'Turin', chip, tcb), ok(der));
    const c = new KdsClient({ fetcher: kds.fetcher, clock: () => T0 });
    expect(await c.vcek('Turin', chip, tcb)).toEqual(der);
    expect(await codeOf(c.vcek('Turin', chip, { ...tcb, fmc: 1 }))).toBe('SNP_KDS_UNAVAILABLE');
  });
});
