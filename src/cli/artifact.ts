/**
 * `vouch artifact verify <token> --jwks <url|file>`: verifies an authorization artifact (JWT or
 * base64url CWT) with the relying-party SDK (`vouch/rp`), as a relying party would.
 * `vouch verifier rotate-key --data-dir DIR [--alg ES256|EdDSA]`: rotates the signing keyring.
 */
import { readFile } from 'node:fs/promises';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { ArtifactSigner, ARTIFACT_ALGS, type ArtifactAlg } from '../artifact/index.js';
import { verifyArtifact } from '../rp/index.js';
import { EXIT, type CliIo } from './main.js';

export interface ArtifactVerifyOptions {
  jwks: string;
  audience?: string;
  json?: boolean;
}

async function loadJwks(src: string): Promise<unknown> {
  if (/^https?:\/\//.test(src)) {
    try {
      const res = await fetch(src, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new UnavailableError('VERIFIER_UNREACHABLE', `JWKS ${src}: HTTP ${res.status}`);
      return await res.json();
    } catch (cause) {
      if (cause instanceof UnavailableError) throw cause;
      throw new UnavailableError('VERIFIER_UNREACHABLE', `JWKS ${src} could not be fetched`, { cause });
    }
  }
  try {
    return JSON.parse(await readFile(src, 'utf8'));
  } catch (cause) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `JWKS file ${src} cannot be read as JSON`, { cause });
  }
}

export async function artifactVerifyCommand(token: string, o: ArtifactVerifyOptions, io: CliIo): Promise<number> {
  const jwks = await loadJwks(o.jwks);
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new MisuseError('MISUSE_UNSUPPORTED_FORMAT', `${o.jwks} is not a JWKS ({"keys": [...]})`);
  }
  const { claims } = await verifyArtifact(token.trim(), {
    jwks: { keys: (jwks as { keys: unknown[] }).keys },
    now: Math.floor(Date.now() / 1000),
    ...(o.audience !== undefined ? { audience: o.audience } : {}),
  });
  io.out(o.json === true ? `${JSON.stringify(claims, null, 2)}\n` : `verified: ${claims.sub} is ${Object.entries(claims.submods).map(([k, v]) => `${k}=${v['ear.status']}`).join(' ')} until ${new Date(claims.exp * 1000).toISOString()}\n`);
  return EXIT.ok;
}

export interface RotateKeyOptions {
  dataDir: string;
  alg?: string;
}

/** `vouch verifier rotate-key`: prints the new and the retired kid (never key material). */
export async function rotateKeyCommand(o: RotateKeyOptions, io: CliIo): Promise<number> {
  if (o.alg !== undefined && !(ARTIFACT_ALGS as readonly string[]).includes(o.alg)) {
    throw new MisuseError('MISUSE_ARGUMENT', `--alg must be one of ${ARTIFACT_ALGS.join(', ')}`, { field: 'alg', actual: o.alg });
  }
  const r = await ArtifactSigner.rotate(o.dataDir, o.alg !== undefined ? { alg: o.alg as ArtifactAlg } : {});
  io.out(`rotated: active ${r.alg} key ${r.kid}; ${r.retiredKid} stays in the JWKS until its artifacts have expired\n`);
  return EXIT.ok;
}
