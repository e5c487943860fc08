/** `vouch artifact verify <token> --jwks <url|file>`: verifies an authorization artifact as a relying party would. */
import { readFile } from 'node:fs/promises';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { verifyArtifact } from '../artifact/index.js';
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
  const claims = await verifyArtifact(token.trim(), {
    jwks: { keys: (jwks as { keys: unknown[] }).keys },
    now: Math.floor(Date.now() / 1000),
    ...(o.audience !== undefined ? { audience: o.audience } : {}),
  });
  io.out(o.json === true ? `${JSON.stringify(claims, null, 2)}\n` : `verified: ${claims.sub} is ${Object.entries(claims.submods).map(([k, v]) => `${k}=${v['ear.status']}`).join(' ')} until ${new Date(claims.exp * 1000).toISOString()}\n`);
  return EXIT.ok;
}
