/**
 * The RP SDK (`vouch/rp`) verifying artifacts in a real browser: Debian's Chromium, driven by
 * playwright-core. The SDK is bundled with esbuild for `platform=browser`, served from a local
 * `node:http` server, and called in the page, where only WebCrypto, TextEncoder/Decoder and
 * atob exist (no Buffer, no process, no node:crypto). The artifacts, JWKS and proofs of
 * possession are made here in Node, exactly as the verifier and an agent make them.
 *
 * This test never skips: a relying party's browser is a supported runtime, so CI must prove it.
 * Without /usr/bin/chromium it fails and says which Debian package to install. playwright-core
 * never downloads a browser; the page loads nothing but the page and the bundle (checked).
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AR4SI, ArtifactSigner, buildEarClaims, issueArtifact, issueArtifactCwt, type IssueArtifactInput, type Jwks } from '../../src/artifact/index.js';
import type { ErrorCode } from '../../src/lib/errors.js';
import type * as Rp from '../../src/rp/index.js';

const CHROMIUM = '/usr/bin/chromium';
const NOW = 1_750_000_000;
const AUDIENCE = 'key-broker';
const CHALLENGE = 'rp-browser-challenge-0123456789';
const GLOBAL_NAME = 'vouchRp';

const bound = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const boundEd = generateKeyPairSync('ed25519');

function input(over: Partial<IssueArtifactInput> = {}): IssueArtifactInput {
  return {
    now: NOW,
    lifetimeSeconds: 300,
    verifierId: 'verifier-1',
    nodeId: 'node-browser',
    audience: [AUDIENCE],
    submods: {
      tpm0: { status: 'affirming', trustVector: { 'instance-identity': AR4SI.instanceIdentity.trustworthy, executables: AR4SI.executables.approvedBoot, hardware: AR4SI.hardware.genuine } },
      cpu0: { status: 'affirming', trustVector: { hardware: AR4SI.hardware.genuine, 'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory }, collateral: { 'snp.vcek': '11'.repeat(32), 'snp.ask': '22'.repeat(32), 'snp.ark': '33'.repeat(32) } },
    },
    policyId: 'gpu-nodes',
    policyDigest: 'ab'.repeat(32),
    evidenceDigest: 'cd'.repeat(32),
    boundKeyJwk: bound.publicKey.export({ format: 'jwk' }),
    ledger: { seq: 7, hash: 'ef'.repeat(32) },
    nonce: 'rp-browser-nonce-42',
    ...over,
  };
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** A proof of possession as the presenter makes it: ECDSA r ‖ s over the challenge, or Ed25519. */
function popSig(key: KeyObject): string {
  const data = new TextEncoder().encode(CHALLENGE);
  const sig = key.asymmetricKeyType === 'ed25519' ? nodeSign(null, data, key) : nodeSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  return b64u(new Uint8Array(sig));
}

/** Flips one bit of the byte in the middle of a JWT's signature, keeping canonical base64url. */
function flipJwtSignature(jwt: string): string {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  const sig = new Uint8Array(Buffer.from(s, 'base64url'));
  const i = sig.length >> 1;
  sig[i] = (sig[i] as number) ^ 0x01;
  return `${h}.${p}.${b64u(sig)}`;
}

/** Flips one bit of the last byte of a CWT: the last byte of the COSE_Sign1 signature. */
function flipCwtSignature(cwt: Uint8Array): Uint8Array {
  const out = new Uint8Array(cwt);
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

/** What the page is asked to verify; everything crosses the boundary as JSON. */
interface PageRequest {
  /** A JWT as text, or a CWT as base64url to be turned back into bytes in the page. */
  readonly token: { readonly kind: 'jwt'; readonly text: string } | { readonly kind: 'cwt-bytes'; readonly b64u: string };
  readonly jwks: Jwks;
  readonly now: number;
  readonly audience?: string;
  readonly pop?: { readonly challenge: string; readonly signature: string };
  readonly requirePop?: boolean;
}

/** What the page answers. */
type PageResult =
  | { readonly ok: true; readonly format: string; readonly alg: string; readonly kid: string; readonly claims: unknown }
  | { readonly ok: false; readonly verificationError: boolean; readonly name: string; readonly code: string | null; readonly message: string };

/**
 * Runs in the page (serialized by Playwright): calls the bundled SDK's verifyArtifact and turns
 * its outcome into JSON. A CWT is handed to the SDK as a Uint8Array made with atob, as a
 * browser relying party would after a fetch.
 */
async function verifyInPage(req: PageRequest): Promise<PageResult> {
  const rp = (globalThis as unknown as Record<string, typeof Rp>)['vouchRp'];
  if (rp === undefined) throw new TypeError('the vouch/rp bundle did not load');
  let token: string | Uint8Array;
  if (req.token.kind === 'jwt') token = req.token.text;
  else {
    const b64 = req.token.b64u.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    token = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  const options: Rp.RpVerifyOptions = {
    jwks: req.jwks,
    now: req.now,
    ...(req.audience === undefined ? {} : { audience: req.audience }),
    ...(req.pop === undefined ? {} : { pop: req.pop }),
    ...(req.requirePop === true ? { require: { pop: true } } : {}),
  };
  try {
    const v = await rp.verifyArtifact(token, options);
    return { ok: true, format: v.format, alg: v.alg, kid: v.kid, claims: v.claims };
  } catch (e) {
    const err = e instanceof Error ? e : new TypeError(String(e));
    return { ok: false, verificationError: e instanceof rp.VerificationError, name: err.name, code: rp.isVouchError(e) ? e.code : null, message: err.message };
  }
}

let browser: Browser | undefined;
let page: Page;
let server: Server | undefined;
let origin: string;
let dataDir: string;
const requested: string[] = [];
const pageErrors: string[] = [];

let es: ArtifactSigner;
let ed: ArtifactSigner;
let stranger: ArtifactSigner;
let jwt: string;
let cwt: Uint8Array;

async function verify(req: PageRequest): Promise<PageResult> {
  return page.evaluate(verifyInPage, req);
}

/** The code of the VerificationError the SDK threw in the page; fails if it verified. */
async function refusal(req: PageRequest): Promise<ErrorCode> {
  const r = await verify(req);
  if (r.ok) throw new Error(`expected a refusal, but the artifact verified in the browser (kid ${r.kid})`);
  expect(r.verificationError, r.message).toBe(true);
  expect(r.name).toBe('VerificationError');
  return r.code as ErrorCode;
}

const asJwt = (text: string): PageRequest['token'] => ({ kind: 'jwt', text });
const asCwt = (bytes: Uint8Array): PageRequest['token'] => ({ kind: 'cwt-bytes', b64u: b64u(bytes) });

/** Throws, never skips, when the browser is absent: CI must run this test. */
function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: the browser RP SDK test needs Debian's chromium. Install it with \`sudo apt-get install -y --no-install-recommends chromium\` (scripts/ensure-deps.sh, run by npm test, does this).`);
  }
}

// A failing test of its own, so that a machine without the browser reports a failure by name.
it(`Debian's chromium is installed at ${CHROMIUM}`, () => {
  expect(requireChromium).not.toThrow();
});

describe('vouch/rp in Chromium (WebCrypto, no Node globals)', () => {
  beforeAll(async () => {
    requireChromium();

    // The SDK exactly as a browser app would bundle it.
    const out = await build({ entryPoints: [join(import.meta.dirname, '../../src/rp/index.ts')], bundle: true, platform: 'browser', format: 'iife', globalName: GLOBAL_NAME, target: 'es2022', write: false, logLevel: 'silent' });
    const bundle = (out.outputFiles[0] as { text: string }).text;
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>vouch/rp</title><script src="/rp.js"></script></head><body>vouch/rp browser test</body></html>`;

    server = createServer((req, res) => {
      requested.push(req.url ?? '');
      // The SDK verifies offline: the page may load its own script and nothing else.
      res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'");
      res.setHeader('Cache-Control', 'no-store');
      if (req.method === 'GET' && req.url === '/') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
      else if (req.method === 'GET' && req.url === '/rp.js') res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(bundle);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(0, '127.0.0.1', () => resolve());
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    dataDir = mkdtempSync(join(tmpdir(), 'vouch-rp-browser-'));
    es = await ArtifactSigner.open(join(dataDir, 'es256'), { clock: () => NOW * 1000 });
    ed = await ArtifactSigner.open(join(dataDir, 'eddsa'), { alg: 'EdDSA', clock: () => NOW * 1000 });
    stranger = await ArtifactSigner.open(join(dataDir, 'stranger'), { clock: () => NOW * 1000 });
    jwt = await issueArtifact(es, input());
    cwt = await issueArtifactCwt(es, input());

    // playwright-core launches the given binary and never downloads one; launch gives it a fresh
    // temporary profile.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 45_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.setDefaultTimeout(20_000);
    await page.goto(`${origin}/`, { waitUntil: 'load' });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs in a real browser page that has WebCrypto and no Node globals', async () => {
    const realm = await page.evaluate(() => {
      const g = globalThis as unknown as Record<string, unknown>;
      const rp = g['vouchRp'] as typeof Rp | undefined;
      return {
        ua: (g['navigator'] as { userAgent: string }).userAgent,
        node: `${typeof g['process']} ${typeof g['Buffer']} ${typeof g['require']}`,
        subtle: typeof globalThis.crypto?.subtle?.verify,
        sdk: typeof rp?.verifyArtifact,
      };
    });
    expect(realm.ua).toMatch(/HeadlessChrome\/\d+|Chrome\/\d+/);
    expect(realm.node).toBe('undefined undefined undefined');
    expect(realm.subtle).toBe('function');
    expect(realm.sdk).toBe('function');
    expect(browser?.version()).toMatch(/^\d+\./);
  });

  it('an ES256 JWT artifact verifies, with the claims as issued', async () => {
    const r = await verify({ token: asJwt(jwt), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE });
    if (!r.ok) throw new Error(`refused in the browser: ${r.code}: ${r.message}`);
    expect({ format: r.format, alg: r.alg, kid: r.kid }).toEqual({ format: 'jwt', alg: 'ES256', kid: es.kid });
    const issued = buildEarClaims(input());
    const claims = r.claims as Record<string, unknown>;
    expect(claims['sub']).toBe('node-browser');
    expect(claims['submods']).toEqual(JSON.parse(JSON.stringify(issued.submods)));
    expect(claims['cnf']).toEqual({ jwk: bound.publicKey.export({ format: 'jwk' }) });
    expect(claims['vouch.ledger']).toEqual({ seq: 7, hash: 'ef'.repeat(32) });
    expect(claims['eat_nonce']).toBe('rp-browser-nonce-42');
    expect(claims).toEqual(JSON.parse(JSON.stringify(issued)));
  });

  it('the same artifact as CWT bytes verifies with identical claims', async () => {
    const a = await verify({ token: asJwt(jwt), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE });
    const b = await verify({ token: asCwt(cwt), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE });
    if (!a.ok || !b.ok) throw new Error(`refused in the browser: ${JSON.stringify(a.ok ? b : a)}`);
    expect({ format: b.format, alg: b.alg, kid: b.kid }).toEqual({ format: 'cwt', alg: 'ES256', kid: es.kid });
    expect(b.claims).toEqual(a.claims);
    expect(b.claims).toEqual(JSON.parse(JSON.stringify(buildEarClaims(input()))));
  });

  it('EdDSA (Ed25519) artifacts verify, JWT and CWT', async () => {
    expect(ed.alg).toBe('EdDSA');
    const issued = input({ boundKeyJwk: boundEd.publicKey.export({ format: 'jwk' }) });
    const j = await verify({ token: asJwt(await issueArtifact(ed, issued)), jwks: ed.jwks(), now: NOW + 10, audience: AUDIENCE });
    const c = await verify({ token: asCwt(await issueArtifactCwt(ed, issued)), jwks: ed.jwks(), now: NOW + 10, audience: AUDIENCE });
    if (!j.ok || !c.ok) throw new Error(`refused in the browser: ${JSON.stringify(j.ok ? c : j)}`);
    expect([j.format, j.alg, j.kid]).toEqual(['jwt', 'EdDSA', ed.kid]);
    expect([c.format, c.alg, c.kid]).toEqual(['cwt', 'EdDSA', ed.kid]);
    expect(c.claims).toEqual(j.claims);
    expect(j.claims).toEqual(JSON.parse(JSON.stringify(buildEarClaims(issued))));
  });

  for (const format of ['jwt', 'cwt'] as const) {
    describe(`refusals (${format})`, () => {
      const tok = (): PageRequest['token'] => (format === 'jwt' ? asJwt(jwt) : asCwt(cwt));
      it('expired → ARTIFACT_EXPIRED', async () => {
        // exp = NOW + 300; at exp it is no longer valid.
        expect(await refusal({ token: tok(), jwks: es.jwks(), now: NOW + 300, audience: AUDIENCE })).toBe('ARTIFACT_EXPIRED');
      });
      it('wrong audience → ARTIFACT_AUDIENCE_MISMATCH', async () => {
        expect(await refusal({ token: tok(), jwks: es.jwks(), now: NOW + 10, audience: 'scheduler' })).toBe('ARTIFACT_AUDIENCE_MISMATCH');
      });
      it('one flipped signature bit → ARTIFACT_SIGNATURE_INVALID', async () => {
        const token = format === 'jwt' ? asJwt(flipJwtSignature(jwt)) : asCwt(flipCwtSignature(cwt));
        expect(await refusal({ token, jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE })).toBe('ARTIFACT_SIGNATURE_INVALID');
      });
      it('unknown kid → ARTIFACT_KEY_UNKNOWN', async () => {
        expect(stranger.kid).not.toBe(es.kid);
        expect(await refusal({ token: tok(), jwks: stranger.jwks(), now: NOW + 10, audience: AUDIENCE })).toBe('ARTIFACT_KEY_UNKNOWN');
      });
      it('proof of possession: the cnf key passes, another key → ARTIFACT_POP_INVALID', async () => {
        const ok = await verify({ token: tok(), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE, pop: { challenge: CHALLENGE, signature: popSig(bound.privateKey) }, requirePop: true });
        if (!ok.ok) throw new Error(`refused in the browser: ${ok.code}: ${ok.message}`);
        expect(ok.format).toBe(format);
        expect(await refusal({ token: tok(), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE, pop: { challenge: CHALLENGE, signature: popSig(other.privateKey) }, requirePop: true })).toBe('ARTIFACT_POP_INVALID');
        expect(await refusal({ token: tok(), jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE, requirePop: true })).toBe('ARTIFACT_POP_MISSING');
      });
    });
  }

  it('proof of possession with an Ed25519 cnf key (WebCrypto Ed25519 in the page)', async () => {
    const token = asJwt(await issueArtifact(es, input({ boundKeyJwk: boundEd.publicKey.export({ format: 'jwk' }) })));
    const ok = await verify({ token, jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE, pop: { challenge: CHALLENGE, signature: popSig(boundEd.privateKey) } });
    if (!ok.ok) throw new Error(`refused in the browser: ${ok.code}: ${ok.message}`);
    const otherEd = generateKeyPairSync('ed25519');
    expect(await refusal({ token, jwks: es.jwks(), now: NOW + 10, audience: AUDIENCE, pop: { challenge: CHALLENGE, signature: popSig(otherEd.privateKey) } })).toBe('ARTIFACT_POP_INVALID');
  });

  it('the page requested only itself and the bundle, and logged no errors', () => {
    expect([...new Set(requested)].sort()).toEqual(['/', '/rp.js']);
    expect(pageErrors).toEqual([]);
  });
});
