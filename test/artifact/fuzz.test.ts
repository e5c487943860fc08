import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { AR4SI, ArtifactSigner, issueArtifact, verifyArtifact, type EarClaims } from '../../src/artifact/index.js';

const NOW = 1_750_000_000;
let dir: string;
let signer: ArtifactSigner;
let token: string;
let original: EarClaims;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-artifact-fuzz-'));
  signer = await ArtifactSigner.open(dir);
  token = await issueArtifact(signer, {
    now: NOW,
    lifetimeSeconds: 300,
    verifierId: 'v',
    nodeId: 'n',
    submods: { tpm0: { status: 'affirming', trustVector: { hardware: AR4SI.hardware.genuine } } },
    policyId: 'p',
    policyDigest: '00'.repeat(32),
    evidenceDigest: '11'.repeat(32),
    boundKeyJwk: signer.publicJwk,
    ledger: { seq: 0, hash: '22'.repeat(32) },
  });
  original = await verifyArtifact(token, { jwks: signer.jwks(), now: NOW });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function outcome(t: string): Promise<'ok' | 'vouch-error'> {
  try {
    const claims = await verifyArtifact(t, { jwks: signer.jwks(), now: NOW });
    // A mutation that still verifies must carry exactly the signed claims.
    expect(claims).toEqual(original);
    return 'ok';
  } catch (e) {
    if (!isVouchError(e)) throw e;
    expect(e.category).toBe('verification-failed');
    return 'vouch-error';
  }
}

describe('verifyArtifact never fails with anything but a VouchError', () => {
  it('random strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[A-Za-z0-9_.-]{0,300}$/)), async (s) => {
        expect(await outcome(s)).toBe('vouch-error');
      }),
      { numRuns: 500 },
    );
  });

  it('three random base64url segments, some holding JSON', async () => {
    const seg = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
      fc.constant(Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'x' })).toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(seg, seg, seg, async (a, b, c) => {
        expect(await outcome(`${a}.${b}.${c}`)).toBe('vouch-error');
      }),
      { numRuns: 300 },
    );
  });

  it('single-character mutations of a valid token', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 10_000 }), fc.nat({ max: alphabet.length - 1 }), async (pos, ch) => {
        const i = pos % token.length;
        const mutated = token.slice(0, i) + alphabet[ch] + token.slice(i + 1);
        await outcome(mutated);
      }),
      { numRuns: 300 },
    );
  });
});
