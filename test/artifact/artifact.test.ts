import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { calculateJwkThumbprint, CompactSign, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERRORS, VerificationError, type ErrorCode } from '../../src/lib/errors.js';
import {
  AR4SI,
  ArtifactSigner,
  buildEarClaims,
  checkCnf,
  EAR_PROFILE,
  issueArtifact,
  jwkToSpki,
  SIGNING_KEY_FILE,
  toPublicJwk,
  verifyArtifact,
  VOUCH_VERSION,
  type IssueArtifactInput,
  type TrustVector,
} from '../../src/artifact/index.js';

const NOW = 1_750_000_000;

const AFFIRMING_VECTOR: TrustVector = {
  'instance-identity': AR4SI.instanceIdentity.trustworthy,
  configuration: AR4SI.configuration.approved,
  executables: AR4SI.executables.approvedBoot,
  hardware: AR4SI.hardware.genuine,
};

const boundPair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const boundJwk = boundPair.publicKey.export({ format: 'jwk' });

function input(over: Partial<IssueArtifactInput> = {}): IssueArtifactInput {
  return {
    now: NOW,
    lifetimeSeconds: 300,
    verifierId: 'verifier-1',
    nodeId: 'node-a',
    audience: ['key-broker'],
    submods: { tpm0: { status: 'affirming', trustVector: AFFIRMING_VECTOR } },
    policyId: 'gpu-nodes',
    policyDigest: 'ab'.repeat(32),
    evidenceDigest: 'cd'.repeat(32),
    boundKeyJwk: boundJwk,
    ledger: { seq: 42, hash: 'ef'.repeat(32) },
    nonce: 'bm9uY2Utbm9uY2U',
    ...over,
  };
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** Runs `f` and returns the VerificationError code it throws. */
async function codeOf(f: () => Promise<unknown>): Promise<ErrorCode> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return (e as VerificationError).code;
  }
  throw new Error('expected a VerificationError');
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-artifact-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ArtifactSigner', () => {
  it('creates an ES256 key with mode 0600 and reloads the same key (same kid) later', async () => {
    const a = await ArtifactSigner.open(join(dir, 'data'));
    expect(a.alg).toBe('ES256');
    expect(statSync(join(dir, 'data', SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    const b = await ArtifactSigner.open(join(dir, 'data'));
    expect(b.kid).toBe(a.kid);
    expect(b.jwks()).toEqual(a.jwks());
  });

  it('uses the RFC 7638 thumbprint as kid and publishes only the public key', async () => {
    const s = await ArtifactSigner.open(dir);
    const [key] = s.jwks().keys;
    expect(key).toBeDefined();
    expect(Object.keys(key ?? {}).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(s.kid).toBe(await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: key?.x, y: key?.y }, 'sha256'));
  });

  it('never shows the private key in JSON, inspection or errors', async () => {
    const s = await ArtifactSigner.open(dir);
    const d = (JSON.parse(readFileSync(join(dir, SIGNING_KEY_FILE), 'utf8')) as { jwk: { d: string } }).jwk.d;
    expect(JSON.stringify(s)).not.toContain(d);
    expect(inspect(s, { depth: 10, showHidden: true })).not.toContain(d);
    // A corrupted key file: the error names the file, never its content.
    const text = readFileSync(join(dir, SIGNING_KEY_FILE), 'utf8');
    writeFileSync(join(dir, SIGNING_KEY_FILE), text.replace('"version":1', '"version":1,,'), { mode: 0o600 });
    const e = await ArtifactSigner.open(dir).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ARTIFACT_SIGNING_KEY_UNUSABLE', category: 'unavailable', status: 503 });
    expect(inspect(e, { depth: 10 })).not.toContain(d);
    expect(JSON.stringify(e)).not.toContain(d);
  });

  it('refuses a key file readable by group or others, and a key of the wrong type', async () => {
    await ArtifactSigner.open(dir);
    const path = join(dir, SIGNING_KEY_FILE);
    chmodSync(path, 0o644);
    await expect(ArtifactSigner.open(dir)).rejects.toMatchObject({ code: 'ARTIFACT_SIGNING_KEY_UNUSABLE' });
    const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
    writeFileSync(path, JSON.stringify({ version: 1, alg: 'ES256', jwk: ed }), { mode: 0o600 });
    chmodSync(path, 0o600);
    await expect(ArtifactSigner.open(dir)).rejects.toMatchObject({ code: 'ARTIFACT_SIGNING_KEY_UNUSABLE' });
  });

  it('creates EdDSA keys on request and refuses to silently switch algorithm', async () => {
    const s = await ArtifactSigner.open(dir, { alg: 'EdDSA' });
    expect(s.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect((await ArtifactSigner.open(dir)).kid).toBe(s.kid);
    await expect(ArtifactSigner.open(dir, { alg: 'ES256' })).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT' });
    const token = await issueArtifact(s, input());
    const claims = await verifyArtifact(token, { jwks: s.jwks(), now: NOW, audience: 'key-broker' });
    expect(claims.sub).toBe('node-a');
  });

  it('gives every concurrent opener the same key', async () => {
    const signers = await Promise.all(Array.from({ length: 8 }, () => ArtifactSigner.open(dir)));
    expect(new Set(signers.map((s) => s.kid)).size).toBe(1);
  });
});

describe('issueArtifact → verifyArtifact', () => {
  it('round-trips the full EAR claims set', async () => {
    const s = await ArtifactSigner.open(dir);
    const token = await issueArtifact(s, input());
    const [h] = token.split('.');
    expect(JSON.parse(Buffer.from(h ?? '', 'base64url').toString())).toEqual({ alg: 'ES256', kid: s.kid, typ: 'JWT' });
    const claims = await verifyArtifact(token, { jwks: s.jwks(), now: NOW + 10, audience: 'key-broker' });
    expect(claims).toEqual({
      eat_profile: EAR_PROFILE,
      iat: NOW,
      exp: NOW + 300,
      iss: 'verifier-1',
      sub: 'node-a',
      aud: ['key-broker'],
      eat_nonce: 'bm9uY2Utbm9uY2U',
      'ear.verifier-id': { developer: 'vouch', build: VOUCH_VERSION },
      submods: {
        tpm0: {
          'ear.status': 'affirming',
          'ear.trustworthiness-vector': { 'instance-identity': 2, configuration: 2, executables: 3, hardware: 2 },
          'ear.appraisal-policy-id': `policy:gpu-nodes@sha256:${'ab'.repeat(32)}`,
        },
      },
      'vouch.evidence-digest': 'cd'.repeat(32),
      'vouch.policy-digest': 'ab'.repeat(32),
      'vouch.ledger': { seq: 42, hash: 'ef'.repeat(32) },
      cnf: { jwk: { kty: 'EC', crv: 'P-256', x: boundJwk.x, y: boundJwk.y } },
    });
    expect(claims).toEqual(buildEarClaims(input()));
  });

  it('is deterministic: same inputs, same header and payload bytes (canonical JSON)', async () => {
    const s = await ArtifactSigner.open(dir);
    const [h1, p1] = (await issueArtifact(s, input())).split('.');
    const [h2, p2] = (await issueArtifact(s, input())).split('.');
    expect(h2).toBe(h1);
    expect(p2).toBe(p1);
    const payload = Buffer.from(p1 ?? '', 'base64url').toString();
    const keys = Object.keys(JSON.parse(payload) as object);
    expect(keys).toEqual([...keys].sort());
    expect(payload).not.toMatch(/\s/);
  });

  it('omits aud and eat_nonce when not given, and then needs no audience to verify', async () => {
    const s = await ArtifactSigner.open(dir);
    const token = await issueArtifact(s, input({ audience: [], nonce: undefined }));
    const claims = await verifyArtifact(token, { jwks: s.jwks(), now: NOW });
    expect(claims.aud).toBeUndefined();
    expect(claims.eat_nonce).toBeUndefined();
  });

  it('refuses inconsistent or bad inputs before signing', async () => {
    const s = await ArtifactSigner.open(dir);
    const cases: Array<Partial<IssueArtifactInput>> = [
      { lifetimeSeconds: 10 },
      { lifetimeSeconds: 3601 },
      { now: 1.5 },
      { policyDigest: 'AB'.repeat(32) },
      { evidenceDigest: 'cd' },
      { boundKeyJwk: boundPair.privateKey.export({ format: 'jwk' }) },
      { boundKeyJwk: { kty: 'oct', k: 'AAAA' } },
      { submods: {} },
      { submods: { TPM0: { status: 'affirming', trustVector: AFFIRMING_VECTOR } } },
      { submods: { tpm0: { status: 'affirming', trustVector: { ...AFFIRMING_VECTOR, executables: AR4SI.executables.contraindicatedRuntime } } } },
      { submods: { tpm0: { status: 'affirming', trustVector: {} } } },
      { submods: { tpm0: { status: 'affirming', trustVector: { hardware: 200 } } } },
      { ledger: { seq: -1, hash: 'ef'.repeat(32) } },
      { nonce: 'short' },
    ];
    for (const over of cases) {
      await expect(issueArtifact(s, input(over)), JSON.stringify(over)).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT', category: 'misuse' });
    }
  });
});

describe('verifyArtifact refusals, each with its code', () => {
  it('ARTIFACT_EXPIRED at exp, and within leeway it still verifies', async () => {
    const s = await ArtifactSigner.open(dir);
    const token = await issueArtifact(s, input());
    const base = { jwks: s.jwks(), audience: 'key-broker' };
    expect(await codeOf(() => verifyArtifact(token, { ...base, now: NOW + 300 }))).toBe('ARTIFACT_EXPIRED');
    await expect(verifyArtifact(token, { ...base, now: NOW + 304, leewaySeconds: 5 })).resolves.toMatchObject({ sub: 'node-a' });
    expect(await codeOf(() => verifyArtifact(token, { ...base, now: NOW + 305, leewaySeconds: 5 }))).toBe('ARTIFACT_EXPIRED');
    expect(await codeOf(() => verifyArtifact(token, { ...base, now: NOW - 1 }))).toBe('ARTIFACT_NOT_YET_VALID');
    await expect(verifyArtifact(token, { ...base, now: NOW - 1, leewaySeconds: 1 })).resolves.toBeDefined();
  });

  it('ARTIFACT_AUDIENCE_MISMATCH for another audience, and when the verifier names none', async () => {
    const s = await ArtifactSigner.open(dir);
    const token = await issueArtifact(s, input());
    expect(await codeOf(() => verifyArtifact(token, { jwks: s.jwks(), now: NOW, audience: 'job-scheduler' }))).toBe('ARTIFACT_AUDIENCE_MISMATCH');
    expect(await codeOf(() => verifyArtifact(token, { jwks: s.jwks(), now: NOW }))).toBe('ARTIFACT_AUDIENCE_MISMATCH');
  });

  it('ARTIFACT_SIGNATURE_INVALID for a tampered payload', async () => {
    const s = await ArtifactSigner.open(dir);
    const [h, p, sig] = (await issueArtifact(s, input())).split('.');
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${b64json({ ...claims, sub: 'node-b' })}.${sig}`;
    expect(await codeOf(() => verifyArtifact(forged, { jwks: s.jwks(), now: NOW, audience: 'key-broker' }))).toBe('ARTIFACT_SIGNATURE_INVALID');
  });

  it('ARTIFACT_SIGNATURE_INVALID for a token signed by another key (unknown kid, and a stolen kid)', async () => {
    const s = await ArtifactSigner.open(join(dir, 'a'));
    const other = await ArtifactSigner.open(join(dir, 'b'));
    const token = await issueArtifact(other, input());
    expect(await codeOf(() => verifyArtifact(token, { jwks: s.jwks(), now: NOW, audience: 'key-broker' }))).toBe('ARTIFACT_SIGNATURE_INVALID');
    const claims = buildEarClaims(input());
    const rogue: KeyObject = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const stolenKid = await new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', kid: s.kid, typ: 'JWT' }).sign(rogue);
    expect(await codeOf(() => verifyArtifact(stolenKid, { jwks: s.jwks(), now: NOW, audience: 'key-broker' }))).toBe('ARTIFACT_SIGNATURE_INVALID');
  });

  it('ARTIFACT_ALGORITHM_NOT_ALLOWED for alg "none" and for HS256 keyed with the public key', async () => {
    const s = await ArtifactSigner.open(dir);
    const claims = buildEarClaims(input());
    const none = `${b64json({ alg: 'none', kid: s.kid, typ: 'JWT' })}.${b64json(claims)}.`;
    const noneErr = await verifyArtifact(none, { jwks: s.jwks(), now: NOW, audience: 'key-broker' }).catch((e: unknown) => e);
    expect(noneErr).toMatchObject({ code: 'ARTIFACT_ALGORITHM_NOT_ALLOWED', field: 'header.alg', actual: 'none' });
    const secret = Buffer.from(JSON.stringify(s.publicJwk));
    const hs = await new SignJWT(claims as unknown as Record<string, unknown>).setProtectedHeader({ alg: 'HS256', kid: s.kid, typ: 'JWT' }).sign(secret);
    expect(await codeOf(() => verifyArtifact(hs, { jwks: s.jwks(), now: NOW, audience: 'key-broker' }))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
    // An EdDSA token where the verifier only accepts ES256.
    const ed = await ArtifactSigner.open(join(dir, 'ed'), { alg: 'EdDSA' });
    const edToken = await issueArtifact(ed, input());
    expect(await codeOf(() => verifyArtifact(edToken, { jwks: ed.jwks(), now: NOW, audience: 'key-broker', algorithms: ['ES256'] }))).toBe('ARTIFACT_ALGORITHM_NOT_ALLOWED');
  });

  it('ARTIFACT_MALFORMED for a wrong eat_profile, missing claims, extra header parameters and bad shapes', async () => {
    const s = await ArtifactSigner.open(dir);
    const claims = buildEarClaims(input()) as unknown as Record<string, unknown>;
    const sign = (c: unknown): Promise<string> => s.signCompact(Buffer.from(JSON.stringify(c)));
    const opts = { jwks: s.jwks(), now: NOW, audience: 'key-broker' };
    const wrongProfile = await verifyArtifact(await sign({ ...claims, eat_profile: 'tag:example.com,2024:other' }), opts).catch((e: unknown) => e);
    expect(wrongProfile).toMatchObject({ code: 'ARTIFACT_MALFORMED', field: 'eat_profile' });
    const { cnf: _cnf, ...noCnf } = claims;
    expect(await codeOf(async () => verifyArtifact(await sign(noCnf), opts))).toBe('ARTIFACT_MALFORMED');
    expect(await codeOf(async () => verifyArtifact(await sign({ ...claims, submods: {} }), opts))).toBe('ARTIFACT_MALFORMED');
    expect(await codeOf(async () => verifyArtifact(await sign({ ...claims, exp: NOW }), opts))).toBe('ARTIFACT_MALFORMED');
    expect(await codeOf(async () => verifyArtifact(await sign({ ...claims, exp: NOW + 7200 }), opts))).toBe('ARTIFACT_MALFORMED');
    expect(await codeOf(async () => verifyArtifact(await sign([claims]), opts))).toBe('ARTIFACT_MALFORMED');
    const jku = await new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', kid: s.kid, jku: 'https://evil.example/jwks' }).sign(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    expect(await codeOf(() => verifyArtifact(jku, opts))).toBe('ARTIFACT_MALFORMED');
    for (const bad of ['', 'a.b', 'a.b.c.d', '!!.??.**', `${b64json({ alg: 'ES256' })}.${b64json(claims)}.AAAA`, 'x'.repeat(20_000)]) {
      expect(await codeOf(() => verifyArtifact(bad, opts))).toBe('ARTIFACT_MALFORMED');
    }
    expect(await codeOf(() => verifyArtifact(12 as unknown as string, opts))).toBe('ARTIFACT_MALFORMED');
  });

  it('ARTIFACT_NOT_AFFIRMING for a warning or contraindicated submodule unless the caller allows it', async () => {
    const s = await ArtifactSigner.open(dir);
    const warning = await issueArtifact(s, input({ submods: { tpm0: { status: 'warning', trustVector: { ...AFFIRMING_VECTOR, configuration: AR4SI.configuration.unsafe } } } }));
    const opts = { jwks: s.jwks(), now: NOW, audience: 'key-broker' };
    const e = await verifyArtifact(warning, opts).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ARTIFACT_NOT_AFFIRMING', field: 'submods.tpm0.ear.status', actual: 'warning', expected: 'affirming' });
    await expect(verifyArtifact(warning, { ...opts, allowStatus: ['affirming', 'warning'] })).resolves.toMatchObject({ sub: 'node-a' });
    const two = await issueArtifact(s, input({ submods: { tpm0: { status: 'affirming', trustVector: AFFIRMING_VECTOR }, cpu0: { status: 'contraindicated', trustVector: { hardware: AR4SI.hardware.contraindicated } } } }));
    expect(await codeOf(() => verifyArtifact(two, { ...opts, allowStatus: ['affirming', 'warning'] }))).toBe('ARTIFACT_NOT_AFFIRMING');
    // A signed claim of "affirming" over a contraindicated vector is not believed.
    const claims = buildEarClaims(input()) as unknown as { submods: { tpm0: Record<string, unknown> } };
    claims.submods.tpm0['ear.trustworthiness-vector'] = { hardware: 96 };
    expect(await codeOf(async () => verifyArtifact(await s.signCompact(Buffer.from(JSON.stringify(claims))), opts))).toBe('ARTIFACT_MALFORMED');
  });

  it('registers the artifact codes as verification failures', () => {
    for (const c of ['ARTIFACT_SIGNATURE_INVALID', 'ARTIFACT_EXPIRED', 'ARTIFACT_AUDIENCE_MISMATCH', 'ARTIFACT_MALFORMED', 'ARTIFACT_NOT_AFFIRMING', 'ARTIFACT_ALGORITHM_NOT_ALLOWED', 'ARTIFACT_NOT_YET_VALID', 'ARTIFACT_CNF_MISMATCH'] as const) {
      expect(ERRORS[c]).toMatchObject({ category: 'verification-failed', status: 401 });
    }
  });
});

describe('checkCnf', () => {
  it('accepts the bound key as SPKI, KeyObject or JWK, and refuses another key', async () => {
    const s = await ArtifactSigner.open(dir);
    const claims = await verifyArtifact(await issueArtifact(s, input()), { jwks: s.jwks(), now: NOW, audience: 'key-broker' });
    const spki = new Uint8Array(boundPair.publicKey.export({ format: 'der', type: 'spki' }));
    expect(() => checkCnf(claims, spki)).not.toThrow();
    expect(() => checkCnf(claims, boundPair.publicKey)).not.toThrow();
    expect(() => checkCnf(claims, { ...boundJwk, alg: 'ES256', use: 'enc' })).not.toThrow();
    expect(jwkToSpki(claims.cnf.jwk)).toEqual(spki);
    expect(toPublicJwk(spki)).toEqual(claims.cnf.jwk);
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    expect(() => checkCnf(claims, other)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CNF_MISMATCH', field: 'cnf.jwk' }));
    expect(() => checkCnf({ cnf: { jwk: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' } } }, spki)).toThrow(expect.objectContaining({ code: 'ARTIFACT_CNF_MISMATCH' }));
  });

  it('carries X25519 and RSA bound keys too', async () => {
    const s = await ArtifactSigner.open(dir);
    for (const pair of [generateKeyPairSync('x25519'), generateKeyPairSync('rsa', { modulusLength: 2048 })]) {
      const claims = await verifyArtifact(await issueArtifact(s, input({ boundKeyJwk: pair.publicKey.export({ format: 'jwk' }) })), { jwks: s.jwks(), now: NOW, audience: 'key-broker' });
      expect(() => checkCnf(claims, pair.publicKey)).not.toThrow();
    }
  });
});

describe('version', () => {
  it('VOUCH_VERSION is the package version', () => {
    const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
    expect(VOUCH_VERSION).toBe(pkg.version);
  });
});
