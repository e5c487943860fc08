/**
 * Relying-party verification of a vouch artifact, JWT or CWT, in Node or a browser.
 *
 * Imports no node-only module: JWTs are verified with jose, CWTs (COSE_Sign1, RFC 9052) and
 * proofs of possession with WebCrypto (`globalThis.crypto.subtle`). A test bundles this module
 * for `platform=browser` and fails on any `node:` import.
 *
 * Fixed order: parse strictly → allowlist the algorithm → key by `kid` → signature → decode and
 * type-check the claims → time (`exp`, `iat`, leeway, `maxAgeSeconds`) → audience → required
 * statuses, submodules and trust-vector claims → proof of possession of `cnf`. Every refusal is
 * a VerificationError with an ARTIFACT_* code.
 */
import { base64url, compactVerify, errors as joseErrors, importJWK } from 'jose';
import { Value } from '@sinclair/typebox/value';
import { decodeStrict, type CborValue } from '../lib/cbor.js';
import { isVouchError, MisuseError, VerificationError, type ErrorCode } from '../lib/errors.js';
import { AR4SI_CLAIMS, EAR_PROFILE, EAR_STATUSES, EarClaimsSchema, tierAtLeast, trustTier, worstTier, type Ar4siClaim, type EarClaims, type EarStatus, type TrustVector } from '../artifact/ear.js';
import { COSE_ALG, COSE_HEADER, coseSign1ToBeSigned, cwtToEarClaims } from '../artifact/cwt.js';

/** Signature algorithms of vouch artifacts (JOSE names). */
export const RP_ALGS = ['ES256', 'EdDSA'] as const;
/** One artifact signature algorithm. */
export type RpAlg = (typeof RP_ALGS)[number];

/** Largest token accepted: 16 KiB of JWT text or CWT bytes. */
export const RP_TOKEN_MAX = 16 * 1024;

/** What the relying party requires beyond a valid signature, time and audience. */
export interface RpRequirements {
  /** Statuses accepted for every submodule (default: affirming only). */
  readonly status?: readonly EarStatus[];
  /** Submodules that must be present (e.g. `['tpm0', 'cpu0']`). */
  readonly submods?: readonly string[];
  /**
   * Trust-vector claims each required submodule (or, without `submods`, every submodule) must
   * carry: a number requires that exact value, a tier requires a value of that tier.
   */
  readonly trustVector?: { readonly [K in Ar4siClaim]?: number | EarStatus };
  /** Oldest `iat` accepted, as seconds before `now` (plus leeway). */
  readonly maxAgeSeconds?: number;
  /** Refuse unless `pop` carries a proof of possession of the `cnf` key. */
  readonly pop?: boolean;
}

/** A proof of possession of the artifact's `cnf` key. */
export interface RpProofOfPossession {
  /** The relying party's fresh challenge (bytes, or text taken as UTF-8), at least 16 bytes. */
  readonly challenge: Uint8Array | string;
  /**
   * The presenter's signature over the challenge with the `cnf` key: ECDSA r ‖ s (P-256 with
   * SHA-256, P-384 with SHA-384, P-521 with SHA-512) or Ed25519; bytes or base64url.
   */
  readonly signature?: Uint8Array | string;
}

/** Options of {@link verifyArtifact}. */
export interface RpVerifyOptions {
  /** The verifier's JWKS (`/.well-known/jwks.json`); or give `keys`. */
  readonly jwks?: { readonly keys: readonly unknown[] };
  /** The JWKS `keys` array. */
  readonly keys?: readonly unknown[];
  /** Who is verifying; required when the artifact names an audience. */
  readonly audience?: string;
  /** Current time, epoch seconds (injected). */
  readonly now: number;
  /** Clock skew tolerated on `exp`, `iat` and `maxAgeSeconds` (default 0, at most 300). */
  readonly leewaySeconds?: number;
  /** Algorithms accepted (default both). */
  readonly algorithms?: readonly RpAlg[];
  readonly require?: RpRequirements;
  readonly pop?: RpProofOfPossession;
}

/** A verified artifact. */
export interface VerifiedArtifact {
  readonly claims: EarClaims;
  readonly format: 'jwt' | 'cwt';
  readonly alg: RpAlg;
  readonly kid: string;
}

const KEY_FOR_ALG: Record<RpAlg, { kty: string; crv: string }> = { ES256: { kty: 'EC', crv: 'P-256' }, EdDSA: { kty: 'OKP', crv: 'Ed25519' } };
const JWT_RE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fail(code: ErrorCode, message: string, detail: { field?: string; expected?: string; actual?: string; cause?: unknown } = {}): VerificationError {
  return new VerificationError(code, message, detail);
}

function misuse(field: string, message: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', `verifyArtifact: ${message}`, { field });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function b64decode(s: string, field: string): Uint8Array {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) throw fail('ARTIFACT_MALFORMED', `${field} is not base64url`, { field });
  const out = base64url.decode(s);
  if (base64url.encode(out) !== s) throw fail('ARTIFACT_MALFORMED', `${field} is not canonical base64url`, { field });
  return out;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) throw new MisuseError('MISUSE_ARGUMENT', 'verifyArtifact needs WebCrypto (globalThis.crypto.subtle)');
  return s;
}

type SubtleCrypto = typeof globalThis.crypto.subtle;

/** The JWKS entry for `kid`, checked to be a public key for `alg`. */
function jwkFor(keys: readonly unknown[], kid: string, alg: RpAlg): Record<string, unknown> {
  const matches = keys.filter((k): k is Record<string, unknown> => isRecord(k) && k['kid'] === kid);
  if (matches.length === 0) throw fail('ARTIFACT_KEY_UNKNOWN', `no key with kid ${kid} in the JWKS (unknown, or rotated out)`, { field: 'kid', actual: kid });
  if (matches.length > 1) throw fail('ARTIFACT_KEY_UNKNOWN', `the JWKS holds ${matches.length} keys with kid ${kid}`, { field: 'kid', actual: kid });
  const jwk = matches[0] as Record<string, unknown>;
  const want = KEY_FOR_ALG[alg];
  if (jwk['kty'] !== want.kty || jwk['crv'] !== want.crv || (jwk['alg'] !== undefined && jwk['alg'] !== alg) || (jwk['use'] !== undefined && jwk['use'] !== 'sig')) {
    throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} is not a ${alg} signing key`, { field: 'kid', expected: `${want.kty} ${want.crv}`, actual: `${String(jwk['kty'])} ${String(jwk['crv'])}` });
  }
  if ('d' in jwk) throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} in the JWKS is a private key; refusing to use it`, { field: 'kid' });
  return alg === 'ES256' ? { kty: jwk['kty'], crv: jwk['crv'], x: jwk['x'], y: jwk['y'] } : { kty: jwk['kty'], crv: jwk['crv'], x: jwk['x'] };
}

async function verifyJwt(token: string, keys: readonly unknown[], algs: readonly RpAlg[]): Promise<{ payload: unknown; alg: RpAlg; kid: string }> {
  const m = JWT_RE.exec(token);
  if (m === null) throw fail('ARTIFACT_MALFORMED', 'the artifact is not a compact JWS (three base64url segments)');
  let header: unknown;
  try {
    header = JSON.parse(utf8Fatal.decode(b64decode(m[1] as string, 'header')));
  } catch (e) {
    if (isVouchError(e)) throw e;
    throw fail('ARTIFACT_MALFORMED', 'the artifact header is not UTF-8 JSON', { field: 'header' });
  }
  if (!isRecord(header)) throw fail('ARTIFACT_MALFORMED', 'the artifact header is not a JSON object', { field: 'header' });
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(algs as readonly string[]).includes(alg)) {
    throw fail('ARTIFACT_ALGORITHM_NOT_ALLOWED', `algorithm ${JSON.stringify(alg)} is not allowed`, { field: 'header.alg', expected: algs.join(' | '), actual: String(alg) });
  }
  for (const k of Object.keys(header)) if (k !== 'alg' && k !== 'kid' && k !== 'typ') throw fail('ARTIFACT_MALFORMED', `the artifact header has an unsupported parameter ${JSON.stringify(k)}`, { field: `header.${k}` });
  if (header['typ'] !== undefined && header['typ'] !== 'JWT') throw fail('ARTIFACT_MALFORMED', 'the artifact header typ is not JWT', { field: 'header.typ' });
  const kid = header['kid'];
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) throw fail('ARTIFACT_MALFORMED', 'the artifact header has no kid', { field: 'header.kid' });
  const members = jwkFor(keys, kid, alg as RpAlg);
  let key;
  try {
    key = await importJWK(members as Parameters<typeof importJWK>[0], alg);
  } catch (e) {
    throw fail('ARTIFACT_SIGNATURE_INVALID', `key ${kid} in the JWKS is not a valid ${alg} public key`, { field: 'kid', cause: e });
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, key, { algorithms: [alg] }));
  } catch (e) {
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature does not verify', { field: 'signature' });
    throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature could not be verified', { field: 'signature', cause: e });
  }
  try {
    return { payload: JSON.parse(utf8Fatal.decode(payload)), alg: alg as RpAlg, kid };
  } catch {
    throw fail('ARTIFACT_MALFORMED', 'the artifact payload is not UTF-8 JSON', { field: 'payload' });
  }
}

function cbor(bytes: Uint8Array, name: string): CborValue {
  try {
    return decodeStrict(bytes, { name, maxBytes: RP_TOKEN_MAX, maxDepth: 8 });
  } catch (e) {
    throw fail('ARTIFACT_MALFORMED', `the artifact ${name} is not canonical CBOR`, { field: name, cause: e });
  }
}

async function verifyCwt(bytes: Uint8Array, keys: readonly unknown[], algs: readonly RpAlg[]): Promise<{ payload: unknown; alg: RpAlg; kid: string }> {
  // Untagged COSE_Sign1 = [protected: bstr, unprotected: map, payload: bstr, signature: bstr].
  const top = cbor(bytes, 'COSE_Sign1');
  if (!Array.isArray(top) || top.length !== 4) throw fail('ARTIFACT_MALFORMED', 'the artifact is not a COSE_Sign1 array of four items', { field: 'COSE_Sign1' });
  const [prot, unprot, payload, signature] = top as [CborValue, CborValue, CborValue, CborValue];
  if (!(prot instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) throw fail('ARTIFACT_MALFORMED', 'the COSE_Sign1 items are not byte strings', { field: 'COSE_Sign1' });
  if (!(isRecord(unprot) && Object.keys(unprot).length === 0) && !(unprot instanceof Map && unprot.size === 0)) throw fail('ARTIFACT_MALFORMED', 'the COSE_Sign1 unprotected header is not empty', { field: 'unprotected' });
  const hdr = cbor(prot, 'protected');
  if (!(hdr instanceof Map) || hdr.size !== 2) throw fail('ARTIFACT_MALFORMED', 'the protected header must hold alg (1) and kid (4) only', { field: 'protected' });
  const algCode = hdr.get(COSE_HEADER.alg);
  const alg = RP_ALGS.find((a) => COSE_ALG[a] === algCode);
  if (alg === undefined || !algs.includes(alg)) throw fail('ARTIFACT_ALGORITHM_NOT_ALLOWED', `COSE algorithm ${String(algCode)} is not allowed`, { field: 'protected.alg', expected: algs.map((a) => COSE_ALG[a]).join(' | '), actual: String(algCode) });
  const kidBytes = hdr.get(COSE_HEADER.kid);
  let kid: string;
  try {
    if (!(kidBytes instanceof Uint8Array) || kidBytes.length === 0 || kidBytes.length > 128) throw new TypeError('kid');
    kid = utf8Fatal.decode(kidBytes);
  } catch {
    throw fail('ARTIFACT_MALFORMED', 'the protected header has no UTF-8 kid', { field: 'protected.kid' });
  }
  const jwk = jwkFor(keys, kid, alg);
  const s = subtle();
  let ok: boolean;
  try {
    const params = alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' };
    const key = await s.importKey('jwk', jwk, params, false, ['verify']);
    ok = await s.verify(alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' }, key, signature, coseSign1ToBeSigned(prot, payload));
  } catch (e) {
    throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature could not be verified', { field: 'signature', cause: e });
  }
  if (!ok) throw fail('ARTIFACT_SIGNATURE_INVALID', 'the artifact signature does not verify', { field: 'signature' });
  try {
    return { payload: cwtToEarClaims(cbor(payload, 'payload')), alg, kid };
  } catch (e) {
    if (isVouchError(e) && e.code === 'ARTIFACT_MALFORMED') throw e;
    throw fail('ARTIFACT_MALFORMED', 'the artifact claims do not map to EAR claims', { field: 'payload', cause: e });
  }
}

const POP_PARAMS: Record<string, { import: { name: string; namedCurve?: string }; verify: { name: string; hash?: string }; sigLen: number }> = {
  'EC P-256': { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' }, sigLen: 64 },
  'EC P-384': { import: { name: 'ECDSA', namedCurve: 'P-384' }, verify: { name: 'ECDSA', hash: 'SHA-384' }, sigLen: 96 },
  'EC P-521': { import: { name: 'ECDSA', namedCurve: 'P-521' }, verify: { name: 'ECDSA', hash: 'SHA-512' }, sigLen: 132 },
  'OKP Ed25519': { import: { name: 'Ed25519' }, verify: { name: 'Ed25519' }, sigLen: 64 },
};

async function checkPop(claims: EarClaims, pop: RpProofOfPossession): Promise<void> {
  const challenge = typeof pop.challenge === 'string' ? new TextEncoder().encode(pop.challenge) : pop.challenge;
  if (!(challenge instanceof Uint8Array) || challenge.length < 16) throw misuse('pop.challenge', 'pop.challenge must be at least 16 bytes');
  if (pop.signature === undefined || pop.signature.length === 0) throw fail('ARTIFACT_POP_MISSING', 'no proof of possession of the cnf key was presented', { field: 'pop.signature' });
  let signature: Uint8Array;
  if (typeof pop.signature === 'string') {
    try {
      signature = b64decode(pop.signature, 'pop.signature');
    } catch {
      throw fail('ARTIFACT_POP_INVALID', 'the proof of possession is not base64url', { field: 'pop.signature' });
    }
  } else signature = pop.signature;
  const jwk = claims.cnf.jwk;
  const p = POP_PARAMS[`${jwk.kty} ${String(jwk.crv)}`];
  if (p === undefined) throw fail('ARTIFACT_POP_INVALID', `a ${jwk.kty} ${String(jwk.crv)} cnf key cannot sign a proof of possession`, { field: 'cnf.jwk' });
  if (signature.length !== p.sigLen) throw fail('ARTIFACT_POP_INVALID', `the proof of possession is ${signature.length} bytes, not ${p.sigLen}`, { field: 'pop.signature' });
  const s = subtle();
  let ok: boolean;
  try {
    const members = jwk.kty === 'EC' ? { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    const key = await s.importKey('jwk', members, p.import, false, ['verify']);
    ok = await s.verify(p.verify, key, signature, challenge);
  } catch (e) {
    throw fail('ARTIFACT_POP_INVALID', 'the proof of possession could not be checked against the cnf key', { field: 'cnf.jwk', cause: e });
  }
  if (!ok) throw fail('ARTIFACT_POP_INVALID', 'the proof of possession does not verify with the cnf key', { field: 'pop.signature' });
}

function checkOptions(o: RpVerifyOptions): { keys: readonly unknown[]; leeway: number; algs: readonly RpAlg[]; req: RpRequirements } {
  if (!isRecord(o)) throw misuse('options', 'options are required');
  const keys = o.keys ?? o.jwks?.keys;
  if (!Array.isArray(keys) || (o.keys !== undefined && o.jwks !== undefined)) throw misuse('jwks', 'give exactly one of jwks ({ keys: [...] }) and keys ([...])');
  if (typeof o.now !== 'number' || !Number.isFinite(o.now) || o.now < 0) throw misuse('now', 'now must be epoch seconds');
  const leeway = o.leewaySeconds ?? 0;
  if (!Number.isFinite(leeway) || leeway < 0 || leeway > 300) throw misuse('leewaySeconds', 'leewaySeconds must be in 0..300');
  const algs = o.algorithms ?? RP_ALGS;
  if (algs.length === 0 || algs.some((a) => !RP_ALGS.includes(a))) throw misuse('algorithms', `algorithms must be among ${RP_ALGS.join(', ')}`);
  if (o.audience !== undefined && (typeof o.audience !== 'string' || o.audience.length === 0)) throw misuse('audience', 'audience must be a non-empty string');
  const req = o.require ?? {};
  if (req.status !== undefined && (req.status.length === 0 || req.status.some((s) => !EAR_STATUSES.includes(s)))) throw misuse('require.status', `require.status entries must be among ${EAR_STATUSES.join(', ')}`);
  if (req.maxAgeSeconds !== undefined && (!Number.isFinite(req.maxAgeSeconds) || req.maxAgeSeconds <= 0)) throw misuse('require.maxAgeSeconds', 'require.maxAgeSeconds must be positive');
  for (const k of Object.keys(req.trustVector ?? {})) if (!(AR4SI_CLAIMS as readonly string[]).includes(k)) throw misuse(`require.trustVector.${k}`, `${k} is not an AR4SI claim`);
  return { keys, leeway, algs, req };
}

/**
 * Verifies a vouch artifact: a compact JWT (text with two dots), or a CWT (COSE_Sign1 bytes, or
 * their base64url) and returns its claims.
 * @throws VerificationError ARTIFACT_MALFORMED, ARTIFACT_ALGORITHM_NOT_ALLOWED, ARTIFACT_KEY_UNKNOWN,
 *   ARTIFACT_SIGNATURE_INVALID, ARTIFACT_EXPIRED, ARTIFACT_NOT_YET_VALID, ARTIFACT_TOO_OLD,
 *   ARTIFACT_AUDIENCE_MISMATCH, ARTIFACT_NOT_AFFIRMING, ARTIFACT_REQUIREMENT_UNMET,
 *   ARTIFACT_POP_MISSING, ARTIFACT_POP_INVALID
 * @throws MisuseError MISUSE_ARGUMENT for bad options
 */
export async function verifyArtifact(token: string | Uint8Array, options: RpVerifyOptions): Promise<VerifiedArtifact> {
  const { keys, leeway, algs, req } = checkOptions(options);

  // 1–4. Encoding, algorithm, key, signature.
  let v: { payload: unknown; alg: RpAlg; kid: string };
  let format: 'jwt' | 'cwt';
  if (typeof token === 'string') {
    if (token.length > RP_TOKEN_MAX * 2) throw fail('ARTIFACT_MALFORMED', 'the artifact is too long');
    if (token.includes('.')) {
      format = 'jwt';
      v = await verifyJwt(token, keys, algs);
    } else {
      format = 'cwt';
      v = await verifyCwt(b64decode(token, 'artifact'), keys, algs);
    }
  } else if (token instanceof Uint8Array) {
    if (token.length > RP_TOKEN_MAX) throw fail('ARTIFACT_MALFORMED', 'the artifact is too long');
    format = 'cwt';
    v = await verifyCwt(token, keys, algs);
  } else throw fail('ARTIFACT_MALFORMED', 'the artifact is neither a string nor bytes');

  // 5. Claims.
  const claims = v.payload;
  if (!isRecord(claims)) throw fail('ARTIFACT_MALFORMED', 'the artifact claims are not an object', { field: 'payload' });
  if (claims['eat_profile'] !== EAR_PROFILE) throw fail('ARTIFACT_MALFORMED', 'the artifact is not an EAR of the expected profile', { field: 'eat_profile', expected: EAR_PROFILE, actual: String(claims['eat_profile']) });
  const first = Value.Errors(EarClaimsSchema, claims).First();
  if (first !== undefined) throw fail('ARTIFACT_MALFORMED', `the artifact claims do not match the EAR schema at ${first.path || '/'}: ${first.message}`, { field: first.path || '/' });
  const ear = claims as EarClaims;

  // 6. Time.
  if (ear.exp <= ear.iat) throw fail('ARTIFACT_MALFORMED', 'the artifact expires before it is issued', { field: 'exp' });
  if (options.now - leeway >= ear.exp) throw fail('ARTIFACT_EXPIRED', `the artifact expired at ${ear.exp}`, { field: 'exp', expected: `> ${options.now - leeway}`, actual: String(ear.exp) });
  if (ear.iat > options.now + leeway) throw fail('ARTIFACT_NOT_YET_VALID', `the artifact is issued at ${ear.iat}, in the future`, { field: 'iat', expected: `≤ ${options.now + leeway}`, actual: String(ear.iat) });
  if (req.maxAgeSeconds !== undefined && options.now - ear.iat > req.maxAgeSeconds + leeway) {
    throw fail('ARTIFACT_TOO_OLD', `the artifact was issued ${options.now - ear.iat} s ago`, { field: 'iat', expected: `≤ ${req.maxAgeSeconds} s old`, actual: String(ear.iat) });
  }

  // 7. Audience.
  const aud = ear.aud === undefined ? [] : typeof ear.aud === 'string' ? [ear.aud] : ear.aud;
  if (options.audience !== undefined) {
    if (!aud.includes(options.audience)) throw fail('ARTIFACT_AUDIENCE_MISMATCH', `the artifact is not addressed to ${options.audience}`, { field: 'aud', expected: options.audience, actual: aud.join(' | ') || '(none)' });
  } else if (aud.length > 0) {
    throw fail('ARTIFACT_AUDIENCE_MISMATCH', 'the artifact is addressed to an audience; pass options.audience', { field: 'aud', actual: aud.join(' | ') });
  }

  // 8. Statuses, required submodules and trust-vector claims.
  const allow = req.status ?? ['affirming'];
  const names = Object.keys(ear.submods).sort();
  for (const name of names) {
    const sm = ear.submods[name];
    if (sm === undefined) continue;
    const status = sm['ear.status'];
    const vector: TrustVector = sm['ear.trustworthiness-vector'] ?? {};
    if (!tierAtLeast(status, worstTier(vector))) throw fail('ARTIFACT_MALFORMED', `submodule ${name} claims ${status} against a ${worstTier(vector)} trust vector`, { field: `submods.${name}.ear.status` });
    if (!allow.includes(status)) throw fail('ARTIFACT_NOT_AFFIRMING', `submodule ${name} is ${status}`, { field: `submods.${name}.ear.status`, expected: allow.join(' | '), actual: status });
  }
  for (const name of req.submods ?? []) {
    if (!Object.hasOwn(ear.submods, name)) throw fail('ARTIFACT_REQUIREMENT_UNMET', `the artifact has no submodule ${name}`, { field: `submods.${name}`, expected: 'present', actual: names.join(' | ') });
  }
  const scope = req.submods ?? names;
  for (const [claim, want] of Object.entries(req.trustVector ?? {}) as [Ar4siClaim, number | EarStatus][]) {
    for (const name of scope) {
      const got = ear.submods[name]?.['ear.trustworthiness-vector']?.[claim];
      const field = `submods.${name}.ear.trustworthiness-vector.${claim}`;
      if (got === undefined) throw fail('ARTIFACT_REQUIREMENT_UNMET', `submodule ${name} makes no ${claim} claim`, { field, expected: String(want), actual: '(absent)' });
      const ok = typeof want === 'number' ? got === want : trustTier(got) === want;
      if (!ok) throw fail('ARTIFACT_REQUIREMENT_UNMET', `submodule ${name} ${claim} is ${got}`, { field, expected: String(want), actual: String(got) });
    }
  }

  // 9. Proof of possession of the cnf key.
  if (options.pop !== undefined) await checkPop(ear, options.pop);
  else if (req.pop === true) throw fail('ARTIFACT_POP_MISSING', 'a proof of possession of the cnf key is required and none was presented', { field: 'pop' });

  return { claims: ear, format, alg: v.alg, kid: v.kid };
}
