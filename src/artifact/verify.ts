/**
 * Verifying an artifact, as a relying party does: offline, with the verifier's JWKS.
 *
 * Fixed order (the order jose itself follows): parse the compact form strictly → allowlist the
 * algorithm → pick the key by `kid` → verify the signature → decode and type-check the claims
 * → time (`exp`, `iat`, with leeway, against the injected `now`) → audience → status of every
 * submodule. Every failure is a VerificationError with a code of its own; nothing else
 * escapes (a property test feeds random strings to prove it).
 */
import { compactVerify, errors as joseErrors, importJWK, type CryptoKey } from 'jose';
import { Value } from '@sinclair/typebox/value';
import { fromBase64Url } from '../lib/bytes.js';
import { isVouchError, MisuseError, VerificationError, type ErrorCode } from '../lib/errors.js';
import { EAR_PROFILE, EAR_STATUSES, EarClaimsSchema, tierAtLeast, worstTier, type EarClaims, type EarStatus, type TrustVector } from './ear.js';
import { ARTIFACT_ALGS, type ArtifactAlg } from './signer.js';

/** Largest token accepted, in characters. */
export const ARTIFACT_MAX_CHARS = 16 * 1024;

/** Options of {@link verifyArtifact}. */
export interface VerifyArtifactOptions {
  /** The verifier's JWKS (`/.well-known/jwks.json`). */
  readonly jwks: { readonly keys: readonly unknown[] };
  /** Current time, epoch seconds (injected). */
  readonly now: number;
  /**
   * Who is verifying. Required when the artifact names an audience: an artifact addressed to
   * someone is refused by a verifier that does not say who it is.
   */
  readonly audience?: string;
  /** Clock skew tolerated on `exp` and `iat`, seconds (default 0, at most 300). */
  readonly leewaySeconds?: number;
  /** Submodule statuses accepted (default: affirming only). */
  readonly allowStatus?: readonly EarStatus[];
  /** Algorithms accepted, a subset of ES256 and EdDSA (default both). */
  readonly algorithms?: readonly ArtifactAlg[];
  /** Longest `exp - iat` accepted, seconds (default 3600). */
  readonly maxLifetimeSeconds?: number;
}

const SHAPE_RE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;
const HEADER_KEYS = new Set(['alg', 'kid', 'typ']);
const KEY_FOR_ALG: Record<ArtifactAlg, { kty: string; crv: string }> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

function fail(code: ErrorCode, message: string, detail: { field?: string; expected?: string; actual?: string; cause?: unknown } = {}): VerificationError {
  return new VerificationError(code, message, detail);
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeJsonSegment(segment: string, field: string): unknown {
  try {
    return JSON.parse(utf8Fatal.decode(fromBase64Url(segment, field)));
  } catch {
    throw fail('ARTIFACT_MALFORMED', `the artifact ${field} is not base64url-encoded UTF-8 JSON`, { field });
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Imported keys, per JWK object and algorithm (importing costs more than a verification). */
const keyCache = new WeakMap<object, Map<ArtifactAlg, CryptoKey | Uint8Array>>();

async function keyFor(jwks: VerifyArtifactOptions['jwks'], kid: string, alg: ArtifactAlg): Promise<CryptoKey | Uint8Array> {
  const matches = jwks.keys.filter((k): k is Record<string, unknown> => isPlainObject(k) && k['kid'] === kid);
  if (matches.length === 0) throw fail('ARTIFACT_SIGNATURE_INVALID', `no key with kid ${kid} in the JWKS`, { field: 'header.kid', actual: kid });
  if (matches.length > 1) throw fail('ARTIFACT_SIGNATURE_INVALID', `the JWKS holds ${matches.length} keys with kid ${kid}`, { field: 'header.kid', actual: kid });
  const jwk = matches[0] as Record<string, unknown>;
  const want = KEY_FOR_ALG[alg];
  if (jwk['kty'] !== want.kty || jwk['crv'] !== want.crv || (jwk['alg'] !== undefined && jwk['alg'] !== alg) || (jwk['use'] !== undefined && jwk['use'] !== 'sig')) {
    throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} is not a ${alg} signing key`, { field: 'header.kid', expected: `${want.kty} ${want.crv}`, actual: `${String(jwk['kty'])} ${String(jwk['crv'])}` });
  }
  if ('d' in jwk) throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} in the JWKS is a private key; refusing to use it`, { field: 'header.kid' });
  let perAlg = keyCache.get(jwk);
  const hit = perAlg?.get(alg);
  if (hit !== undefined) return hit;
  let key: CryptoKey | Uint8Array;
  try {
    const members = alg === 'ES256' ? { kty: jwk['kty'], crv: jwk['crv'], x: jwk['x'], y: jwk['y'] } : { kty: jwk['kty'], crv: jwk['crv'], x: jwk['x'] };
    key = await importJWK(members as Parameters<typeof importJWK>[0], alg);
  } catch (e) {
    throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} in the JWKS is not a valid ${alg} public key`, { field: 'header.kid', cause: e });
  }
  if (perAlg === undefined) {
    perAlg = new Map();
    keyCache.set(jwk, perAlg);
  }
  perAlg.set(alg, key);
  return key;
}

function checkOptions(options: VerifyArtifactOptions): { leeway: number; allow: readonly EarStatus[]; algs: readonly ArtifactAlg[]; maxLifetime: number } {
  if (!isPlainObject(options)) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: options are required');
  if (!isPlainObject(options.jwks) || !Array.isArray(options.jwks.keys)) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: options.jwks must be a JWKS ({ keys: [...] })', { field: 'jwks' });
  if (typeof options.now !== 'number' || !Number.isFinite(options.now) || options.now < 0) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: options.now must be epoch seconds', { field: 'now' });
  const leeway = options.leewaySeconds ?? 0;
  if (!Number.isFinite(leeway) || leeway < 0 || leeway > 300) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: leewaySeconds must be in 0..300', { field: 'leewaySeconds' });
  const allow = options.allowStatus ?? ['affirming'];
  if (allow.length === 0 || allow.some((s) => !EAR_STATUSES.includes(s))) throw new MisuseError('MISUSE_ARGUMENT', `verifyArtifact: allowStatus entries must be among ${EAR_STATUSES.join(', ')}`, { field: 'allowStatus' });
  const algs = options.algorithms ?? ARTIFACT_ALGS;
  if (algs.length === 0 || algs.some((a) => !ARTIFACT_ALGS.includes(a))) throw new MisuseError('MISUSE_ARGUMENT', `verifyArtifact: algorithms must be among ${ARTIFACT_ALGS.join(', ')}`, { field: 'algorithms' });
  const maxLifetime = options.maxLifetimeSeconds ?? 3600;
  if (!Number.isFinite(maxLifetime) || maxLifetime <= 0) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: maxLifetimeSeconds must be positive', { field: 'maxLifetimeSeconds' });
  if (options.audience !== undefined && (typeof options.audience !== 'string' || options.audience.length === 0)) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact: audience must be a non-empty string', { field: 'audience' });
  return { leeway, allow, algs, maxLifetime };
}

/**
 * Verifies a vouch EAR JWT and returns its claims.
 * @throws VerificationError ARTIFACT_MALFORMED, ARTIFACT_ALGORITHM_NOT_ALLOWED,
 *   ARTIFACT_SIGNATURE_INVALID, ARTIFACT_EXPIRED, ARTIFACT_NOT_YET_VALID,
 *   ARTIFACT_AUDIENCE_MISMATCH, ARTIFACT_NOT_AFFIRMING
 * @throws MisuseError MISUSE_ARGUMENT for bad options
 */
export async function verifyArtifact(token: unknown, options: VerifyArtifactOptions): Promise<EarClaims> {
  const { leeway, allow, algs, maxLifetime } = checkOptions(options);

  // 1. Strict compact form and protected header.
  if (typeof token !== 'string') throw fail('ARTIFACT_MALFORMED', 'the artifact is not a string');
  if (token.length > ARTIFACT_MAX_CHARS) throw fail('ARTIFACT_MALFORMED', `the artifact is longer than ${ARTIFACT_MAX_CHARS} characters`);
  const m = SHAPE_RE.exec(token);
  if (m === null) throw fail('ARTIFACT_MALFORMED', 'the artifact is not a compact JWS (three base64url segments)');
  const header = decodeJsonSegment(m[1] as string, 'header');
  if (!isPlainObject(header)) throw fail('ARTIFACT_MALFORMED', 'the artifact header is not a JSON object', { field: 'header' });

  // 2. Algorithm allowlist, before anything else is trusted ("none", HS256, RS256 … stop here).
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(algs as readonly string[]).includes(alg)) {
    throw fail('ARTIFACT_ALGORITHM_NOT_ALLOWED', `algorithm ${JSON.stringify(alg)} is not allowed`, { field: 'header.alg', expected: algs.join(' | '), actual: String(alg) });
  }
  for (const k of Object.keys(header)) {
    if (!HEADER_KEYS.has(k)) throw fail('ARTIFACT_MALFORMED', `the artifact header has an unsupported parameter ${JSON.stringify(k)}`, { field: `header.${k}` });
  }
  if (header['typ'] !== undefined && header['typ'] !== 'JWT') throw fail('ARTIFACT_MALFORMED', 'the artifact header typ is not JWT', { field: 'header.typ', expected: 'JWT', actual: String(header['typ']) });
  const kid = header['kid'];
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) throw fail('ARTIFACT_MALFORMED', 'the artifact header has no kid', { field: 'header.kid' });

  // 3–4. Key by kid, then the signature.
  const key = await keyFor(options.jwks, kid, alg as ArtifactAlg);
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(token, key, { algorithms: [alg] }));
  } catch (e) {
    if (isVouchError(e)) throw e;
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature does not verify', { field: 'signature' });
    throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature could not be verified', { field: 'signature', cause: e });
  }

  // 5. Claims: UTF-8 JSON object, the EAR profile, then the claims schema.
  let claims: unknown;
  try {
    claims = JSON.parse(utf8Fatal.decode(payloadBytes));
  } catch {
    throw fail('ARTIFACT_MALFORMED', 'the artifact payload is not UTF-8 JSON', { field: 'payload' });
  }
  if (!isPlainObject(claims)) throw fail('ARTIFACT_MALFORMED', 'the artifact payload is not a JSON object', { field: 'payload' });
  if (claims['eat_profile'] !== EAR_PROFILE) {
    throw fail('ARTIFACT_MALFORMED', 'the artifact is not an EAR of the expected profile', { field: 'eat_profile', expected: EAR_PROFILE, actual: String(claims['eat_profile']) });
  }
  const firstError = Value.Errors(EarClaimsSchema, claims).First();
  if (firstError !== undefined) {
    throw fail('ARTIFACT_MALFORMED', `the artifact claims do not match the EAR schema at ${firstError.path || '/'}: ${firstError.message}`, { field: firstError.path || '/' });
  }
  const ear = claims as EarClaims;

  // 6. Time.
  if (ear.exp <= ear.iat) throw fail('ARTIFACT_MALFORMED', 'the artifact expires before it is issued', { field: 'exp', actual: `iat ${ear.iat}, exp ${ear.exp}` });
  if (ear.exp - ear.iat > maxLifetime) throw fail('ARTIFACT_MALFORMED', `the artifact lifetime exceeds ${maxLifetime} s`, { field: 'exp', expected: `≤ ${maxLifetime}`, actual: String(ear.exp - ear.iat) });
  if (options.now - leeway >= ear.exp) throw fail('ARTIFACT_EXPIRED', `the artifact expired at ${ear.exp}`, { field: 'exp', expected: `> ${options.now - leeway}`, actual: String(ear.exp) });
  if (ear.iat > options.now + leeway) throw fail('ARTIFACT_NOT_YET_VALID', `the artifact is issued at ${ear.iat}, in the future`, { field: 'iat', expected: `≤ ${options.now + leeway}`, actual: String(ear.iat) });

  // 7. Audience.
  const aud = ear.aud === undefined ? [] : typeof ear.aud === 'string' ? [ear.aud] : ear.aud;
  if (options.audience !== undefined) {
    if (!aud.includes(options.audience)) throw fail('ARTIFACT_AUDIENCE_MISMATCH', `the artifact is not addressed to ${options.audience}`, { field: 'aud', expected: options.audience, actual: aud.join(' | ') || '(none)' });
  } else if (aud.length > 0) {
    throw fail('ARTIFACT_AUDIENCE_MISMATCH', 'the artifact is addressed to an audience; pass options.audience', { field: 'aud', actual: aud.join(' | ') });
  }

  // 8. Every submodule in an accepted status, consistent with its own trust vector.
  const submods = Object.entries(ear.submods).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, sm] of submods) {
    const status = sm['ear.status'];
    const vector: TrustVector = sm['ear.trustworthiness-vector'] ?? {};
    if (!tierAtLeast(status, worstTier(vector))) {
      throw fail('ARTIFACT_MALFORMED', `submodule ${name} claims ${status} against a ${worstTier(vector)} trust vector`, { field: `submods.${name}.ear.status` });
    }
    if (!allow.includes(status)) {
      throw fail('ARTIFACT_NOT_AFFIRMING', `submodule ${name} is ${status}`, { field: `submods.${name}.ear.status`, expected: allow.join(' | '), actual: status });
    }
  }
  return ear;
}
