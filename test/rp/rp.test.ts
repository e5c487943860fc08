import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { CompactSign } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VerificationError, type ErrorCode } from '../../src/lib/errors.js';
import { decodeStrict, encodeCanonical } from '../../src/lib/cbor.js';
import {
  AR4SI,
  ArtifactSigner,
  buildEarClaims,
  issueArtifact,
  issueArtifactCwt,
  RETIRED_KEY_GRACE_SECONDS,
  RETIRED_KEYS_FILE,
  SIGNING_KEY_FILE,
  type IssueArtifactInput,
} from '../../src/artifact/index.js';
import { verifyArtifact, type RpVerifyOptions } from '../../src/rp/index.js';

const NOW = 1_750_000_000;
const bound = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const CHALLENGE = new TextEncoder().encode('rp-challenge-0123456789');

function input(over: Partial<IssueArtifactInput> = {}): IssueArtifactInput {
  return {
    now: NOW,
    lifetimeSeconds: 300,
    verifierId: 'verifier-1',
    nodeId: 'node-a',
    audience: ['key-broker'],
    submods: {
      tpm0: { status: 'affirming', trustVector: { 'instance-identity': AR4SI.instanceIdentity.trustworthy, executables: AR4SI.executables.approvedBoot, hardware: AR4SI.hardware.genuine } },
      cpu0: { status: 'affirming', trustVector: { hardware: AR4SI.hardware.genuine, 'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory }, collateral: { 'snp.vcek': '11'.repeat(32), 'snp.ask': '22'.repeat(32), 'snp.ark': '33'.repeat(32), 'snp.crl': '44'.repeat(32) } },
    },
    policyId: 'gpu-nodes',
    policyDigest: 'ab'.repeat(32),
    evidenceDigest: 'cd'.repeat(32),
    boundKeyJwk: bound.publicKey.export({ format: 'jwk' }),
    ledger: { seq: 42, hash: 'ef'.repeat(32) },
    nonce: 'rp-nonce-12345678',
    ...over,
  };
}

async function codeOf(f: () => Promise<unknown>): Promise<ErrorCode> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return (e as VerificationError).code;
  }
  throw new Error('expected a VerificationError');
}

function popSig(key = bound.privateKey, challenge = CHALLENGE): Uint8Array {
  return new Uint8Array(nodeSign('sha256', challenge, { key, dsaEncoding: 'ieee-p1363' }));
}

let dir: string;
let clockMs = NOW * 1000;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-rp-'));
  clockMs = NOW * 1000;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function setup(): Promise<{ signer: ArtifactSigner; jwt: string; cwt: Uint8Array; opts: RpVerifyOptions }> {
  const signer = await ArtifactSigner.open(dir, { clock: () => clockMs });
  const jwt = await issueArtifact(signer, input());
  const cwt = await issueArtifactCwt(signer, input());
  return { signer, jwt, cwt, opts: { jwks: signer.jwks(), now: NOW + 10, audience: 'key-broker' } };
}

describe('verifyArtifact (vouch/rp)', () => {
  it('verifies JWT and CWT, and both carry identical claims', async () => {
    const { jwt, cwt, opts, signer } = await setup();
    const a = await verifyArtifact(jwt, opts);
    const b = await verifyArtifact(cwt, opts);
    const c = await verifyArtifact(Buffer.from(cwt).toString('base64url'), opts);
    expect(a.format).toBe('jwt');
    expect(b.format).toBe('cwt');
    expect(b.claims).toEqual(a.claims);
    expect(c.claims).toEqual(a.claims);
    expect(a.claims).toEqual(buildEarClaims(input()));
    expect(a.kid).toBe(signer.kid);
    expect(a.claims.eat_nonce).toBe('rp-nonce-12345678');
    expect(a.claims.submods['cpu0']?.['vouch.collateral']).toMatchObject({ 'snp.vcek': '11'.repeat(32) });
    // CWT labels per the EAR draft: submods 266, ear.status 1000 (2 = affirming), verifier-id 1004.
    const top = decodeStrict(cwt) as unknown[];
    const claims = decodeStrict(top[2] as Uint8Array) as Map<unknown, unknown>;
    expect(claims.get(265)).toBe(a.claims.eat_profile);
    expect(claims.get(6)).toBe(NOW);
    expect((claims.get(1004) as Map<number, string>).get(0)).toBe('vouch');
    expect(((claims.get(266) as Record<string, Map<number, unknown>>)['tpm0'] as Map<number, unknown>).get(1000)).toBe(2);
    expect(((claims.get(8) as Map<number, Map<number, unknown>>).get(1) as Map<number, unknown>).get(1)).toBe(2);
  });

  it('EdDSA keys sign both encodings', async () => {
    const signer = await ArtifactSigner.open(dir, { alg: 'EdDSA' });
    const opts = { jwks: signer.jwks(), now: NOW, audience: 'key-broker' };
    expect((await verifyArtifact(await issueArtifact(signer, input()), opts)).alg).toBe('EdDSA');
    expect((await verifyArtifact(await issueArtifactCwt(signer, input()), opts)).alg).toBe('EdDSA');
  });

  for (const format of ['jwt', 'cwt'] as const) {
    describe(`refusals (${format})`, () => {
      const tok = (s: { jwt: string; cwt: Uint8Array }): string | Uint8Array => (format === 'jwt' ? s.jwt : s.cwt);
      it('expired / not yet valid / too old, with leeway', async () => {
        const s = await setup();
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, now: NOW + 300 }))).toBe('ARTIFACT_EXPIRED');
        await verifyArtifact(tok(s), { ...s.opts, now: NOW + 300, leewaySeconds: 5 });
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, now: NOW - 1 }))).toBe('ARTIFACT_NOT_YET_VALID');
        await verifyArtifact(tok(s), { ...s.opts, now: NOW - 1, leewaySeconds: 1 });
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, now: NOW + 61, require: { maxAgeSeconds: 60 } }))).toBe('ARTIFACT_TOO_OLD');
      });
      it('wrong or absent audience', async () => {
        const s = await setup();
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, audience: 'scheduler' }))).toBe('ARTIFACT_AUDIENCE_MISMATCH');
        expect(await codeOf(() => verifyArtifact(tok(s), { jwks: s.opts.jwks, now: NOW }))).toBe('ARTIFACT_AUDIENCE_MISMATCH');
      });
      it('proof of possession: valid, wrong key, wrong challenge, absent', async () => {
        const s = await setup();
        await verifyArtifact(tok(s), { ...s.opts, pop: { challenge: CHALLENGE, signature: popSig() }, require: { pop: true } });
        await verifyArtifact(tok(s), { ...s.opts, pop: { challenge: CHALLENGE, signature: Buffer.from(popSig()).toString('base64url') } });
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, pop: { challenge: CHALLENGE, signature: popSig(other.privateKey) } }))).toBe('ARTIFACT_POP_INVALID');
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, pop: { challenge: new TextEncoder().encode('another-challenge-987654'), signature: popSig() } }))).toBe('ARTIFACT_POP_INVALID');
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, pop: { challenge: CHALLENGE } }))).toBe('ARTIFACT_POP_MISSING');
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, require: { pop: true } }))).toBe('ARTIFACT_POP_MISSING');
      });
      it('unknown kid', async () => {
        const s = await setup();
        const stranger = await ArtifactSigner.open(join(dir, 'other'));
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, jwks: stranger.jwks() }))).toBe('ARTIFACT_KEY_UNKNOWN');
      });
      it('required status, submodule and trust-vector claims', async () => {
        const s = await setup();
        await verifyArtifact(tok(s), { ...s.opts, require: { submods: ['tpm0', 'cpu0'], trustVector: { hardware: 'affirming' } } });
        await verifyArtifact(tok(s), { ...s.opts, require: { submods: ['cpu0'], trustVector: { hardware: 'affirming', 'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory } } });
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, require: { submods: ['gpu0'] } }))).toBe('ARTIFACT_REQUIREMENT_UNMET');
        // tpm0 makes no runtime-opaque claim.
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, require: { trustVector: { 'runtime-opaque': 'affirming' } } }))).toBe('ARTIFACT_REQUIREMENT_UNMET');
        expect(await codeOf(() => verifyArtifact(tok(s), { ...s.opts, require: { submods: ['tpm0'], trustVector: { executables: AR4SI.executables.approvedRuntime } } }))).toBe('ARTIFACT_REQUIREMENT_UNMET');
        const warn = await (format === 'jwt' ? issueArtifact : issueArtifactCwt)(s.signer, input({ submods: { tpm0: { status: 'warning', trustVector: { configuration: AR4SI.configuration.unsafe } } } }));
        expect(await codeOf(() => verifyArtifact(warn, s.opts))).toBe('ARTIFACT_NOT_AFFIRMING');
        await verifyArtifact(warn, { ...s.opts, require: { status: ['affirming', 'warning'] } });
      });
      it('tampered payload and wrong algorithm', async () => {
        const s = await setup();
        if (format === 'jwt') {
          const [h, p, sig] = s.jwt.split('.') as [string, string, string];
          const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
          const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'node-b' })).toString('base64url');
          expect(await codeOf(() => verifyArtifact(`${h}.${forged}.${sig}`, s.opts))).toBe('ARTIFACT_SIGNATURE_INVALID');
          const hs = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: 'HS256', kid: s.signer.kid }).sign(new Uint8Array(32));
          expect(await codeOf(() => verifyArtifact(hs, s.opts))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
          const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: s.signer.kid })).toString('base64url')}.${p}.`;
          expect(await codeOf(() => verifyArtifact(none, s.opts))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
          expect(await codeOf(() => verifyArtifact(s.jwt, { ...s.opts, algorithms: ['EdDSA'] }))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
        } else {
          const top = decodeStrict(s.cwt) as [Uint8Array, unknown, Uint8Array, Uint8Array];
          const claims = decodeStrict(top[2]) as Map<unknown, unknown>;
          claims.set(2, 'node-b');
          const forged = encodeCanonical([top[0], new Map(), encodeCanonical(claims), top[3]]);
          expect(await codeOf(() => verifyArtifact(forged, s.opts))).toBe('ARTIFACT_SIGNATURE_INVALID');
          const hdr = decodeStrict(top[0]) as Map<number, unknown>;
          hdr.set(1, 5); // HMAC 256/256
          const hmac = encodeCanonical([encodeCanonical(hdr), new Map(), top[2], top[3]]);
          expect(await codeOf(() => verifyArtifact(hmac, s.opts))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
          const flipped = new Uint8Array(s.cwt);
          flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
          expect(await codeOf(() => verifyArtifact(flipped, s.opts))).toBe('ARTIFACT_SIGNATURE_INVALID');
          expect(await codeOf(() => verifyArtifact(s.cwt.subarray(1), s.opts))).toBe('ARTIFACT_MALFORMED');
        }
      });
      it('missing required claim (cnf) is malformed', async () => {
        const s = await setup();
        const claims = buildEarClaims(input()) as unknown as Record<string, unknown>;
        delete claims['cnf'];
        let token: string | Uint8Array;
        if (format === 'jwt') token = await s.signer.signCompact(new TextEncoder().encode(JSON.stringify(claims)));
        else {
          const { earClaimsToCwt } = await import('../../src/artifact/cwt.js');
          token = await s.signer.signCose(encodeCanonical(earClaimsToCwt(claims)));
        }
        expect(await codeOf(() => verifyArtifact(token, s.opts))).toBe('ARTIFACT_MALFORMED');
      });
    });
  }
});

describe('signing key rotation', () => {
  it('old artifacts verify until they expire; then the old key leaves the JWKS', async () => {
    const signer = await ArtifactSigner.open(dir, { clock: () => clockMs });
    const oldKid = signer.kid;
    const old = await issueArtifact(signer, input({ lifetimeSeconds: 3600 }));
    const r = await signer.rotate('EdDSA');
    expect(r.retiredKid).toBe(oldKid);
    expect(signer.kid).not.toBe(oldKid);
    expect(signer.alg).toBe('EdDSA');
    expect(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, RETIRED_KEYS_FILE)).mode & 0o777).toBe(0o600);
    const fresh = await issueArtifact(signer, input());
    const jwks = signer.jwks();
    expect(jwks.keys.map((k) => k.kid)).toEqual([signer.kid, oldKid]);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
    expect((await verifyArtifact(old, { jwks, now: NOW + 3000, audience: 'key-broker' })).kid).toBe(oldKid);
    expect((await verifyArtifact(fresh, { jwks, now: NOW + 10, audience: 'key-broker' })).kid).toBe(signer.kid);
    // Another process (a restarted verifier) sees the same keyring.
    const reopened = await ArtifactSigner.open(dir, { clock: () => clockMs });
    expect(reopened.jwks()).toEqual(jwks);
    // After the grace period (longest lifetime + skew), the old key is gone from the JWKS…
    clockMs = (NOW + RETIRED_KEY_GRACE_SECONDS) * 1000;
    const later = signer.jwks();
    expect(later.keys.map((k) => k.kid)).toEqual([signer.kid]);
    expect(await codeOf(() => verifyArtifact(old, { jwks: later, now: NOW + 3000, audience: 'key-broker' }))).toBe('ARTIFACT_KEY_UNKNOWN');
    // …and from the file at the next rotation.
    await ArtifactSigner.rotate(dir, { now: NOW + RETIRED_KEY_GRACE_SECONDS });
    await signer.refresh();
    expect(signer.jwks().keys).toHaveLength(2);
    expect(signer.jwks().keys.map((k) => k.kid)).not.toContain(oldKid);
  });

  it('a running signer picks up a rotation made by another process', async () => {
    const signer = await ArtifactSigner.open(dir, { clock: () => clockMs });
    const before = signer.kid;
    const r = await ArtifactSigner.rotate(dir, { now: NOW });
    expect((await signer.currentJwks()).keys.map((k) => k.kid)).toEqual([r.kid, before]);
    const token = await issueArtifact(signer, input());
    expect((await verifyArtifact(token, { jwks: signer.jwks(), now: NOW, audience: 'key-broker' })).kid).toBe(r.kid);
  });
});

describe('vouch/rp runs in a browser', () => {
  it('bundles for platform=browser without node: imports and verifies with no node globals', async () => {
    const out = await build({ entryPoints: [join(import.meta.dirname, '../../src/rp/index.ts')], bundle: true, platform: 'browser', format: 'iife', globalName: 'rp', write: false, metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.filter((i) => i.startsWith('node:') || /(^|\/)node_modules\/(@types\/node)/.test(i))).toEqual([]);
    for (const i of Object.values(out.metafile.inputs)) for (const imp of i.imports) expect(imp.path).not.toMatch(/^node:|^(crypto|fs|path|buffer)$/);
    const code = (out.outputFiles[0] as { text: string }).text;
    const { signer: _s, jwt, cwt, opts } = await setup();
    // A context with what a browser has (WebCrypto, TextEncoder/Decoder) and no Buffer or process.
    const ctx: Record<string, unknown> = { crypto: globalThis.crypto, TextEncoder, TextDecoder, Uint8Array, atob, btoa, console };
    ctx['globalThis'] = ctx;
    runInNewContext(code, ctx);
    const rp = ctx['rp'] as { verifyArtifact: typeof verifyArtifact };
    const a = await rp.verifyArtifact(jwt, opts);
    const b = await rp.verifyArtifact(Buffer.from(cwt).toString('base64url'), { ...opts, pop: { challenge: 'rp-challenge-0123456789', signature: Buffer.from(popSig()).toString('base64url') } });
    expect(JSON.parse(JSON.stringify(b.claims))).toEqual(JSON.parse(JSON.stringify(a.claims)));
    expect(b.format).toBe("cwt");
    expect(runInNewContext('typeof Buffer + typeof process', ctx)).toBe('undefinedundefined');
  });
});
