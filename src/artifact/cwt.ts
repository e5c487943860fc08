/**
 * The CWT (RFC 8392) serialisation of a vouch EAR: the same claims as the JWT, with the CBOR
 * labels of the EAR draft (draft-ietf-rats-ear, cddl/cbor-labels.cddl and ar4si.cddl), EAT
 * (RFC 9711) and CWT, inside an untagged COSE_Sign1 (RFC 9052 §4.2).
 *
 * Browser-safe: imports no node-only module (the relying-party SDK decodes with it).
 *
 * | JWT claim                       | CWT label | CWT value                                       |
 * | ------------------------------- | --------- | ----------------------------------------------- |
 * | `iss`                           | 1         | text                                            |
 * | `sub`                           | 2         | text                                            |
 * | `aud`                           | 3         | array of text (as in the JWT; see below)        |
 * | `exp`                           | 4         | uint                                            |
 * | `iat`                           | 6         | uint                                            |
 * | `cnf` / `cnf.jwk`               | 8 / 1     | COSE_Key (RFC 8747 §3.2, RFC 9053 §7)           |
 * | `eat_nonce`                     | 10        | text                                            |
 * | `eat_profile`                   | 265       | text                                            |
 * | `submods`                       | 266       | map text → appraisal                            |
 * | `ear.status`                    | 1000      | 0 none, 2 affirming, 32 warning, 96 contraind.  |
 * | `ear.trustworthiness-vector`    | 1001      | map 0..7 → int (instance-identity 0 … sourced-data 7) |
 * | `ear.appraisal-policy-id`       | 1003      | text                                            |
 * | `ear.verifier-id`               | 1004      | map {0: developer, 1: build}                    |
 * | `vouch.*` (evidence-digest, policy-digest, ledger, collateral) | same text name | same value |
 *
 * Deviations, chosen so that both encodings carry identical claims: `aud` stays an array
 * (RFC 8392 has a single text audience) and `eat_nonce` stays text (EAT allows a text nonce in
 * JSON, a byte string in CBOR). vouch's own claims keep their JWT names as text labels
 * (RFC 8392 §3 allows text claim keys). The COSE_Sign1 is untagged (RFC 9052 §2 allows it when
 * the application says what it is; the strict codec of src/lib/cbor.ts admits no tags).
 */
import { base64url } from 'jose';
import { MisuseError, ParseError } from '../lib/errors.js';
import { encodeCanonical, type CborMap, type CborValue } from '../lib/cbor.js';
import { AR4SI_CLAIMS, EAR_STATUSES, type EarStatus } from './ear.js';

/** CWT / EAT / EAR claim labels. */
export const CWT_LABEL = {
  iss: 1,
  sub: 2,
  aud: 3,
  exp: 4,
  iat: 6,
  cnf: 8,
  eat_nonce: 10,
  eat_profile: 265,
  submods: 266,
  'ear.status': 1000,
  'ear.trustworthiness-vector': 1001,
  'ear.appraisal-policy-id': 1003,
  'ear.verifier-id': 1004,
} as const;

/** COSE algorithm identifiers (RFC 9053 §2.1, §2.2) of the JWS algorithms vouch signs with. */
export const COSE_ALG = { ES256: -7, EdDSA: -8 } as const;

/** COSE header labels (RFC 9052 §3.1). */
export const COSE_HEADER = { alg: 1, kid: 4 } as const;

const STATUS_CODE: Record<EarStatus, number> = { none: 0, affirming: 2, warning: 32, contraindicated: 96 };

/** COSE_Key kty and crv values (RFC 9053 §7) for the JWK key types of `cnf.jwk`. */
const COSE_KTY = { OKP: 1, EC: 2, RSA: 3 } as const;
const COSE_CRV: Record<string, number> = { 'P-256': 1, 'P-384': 2, 'P-521': 3, X25519: 4, Ed25519: 6 };

function malformed(field: string, message: string): ParseError {
  return new ParseError('PARSE_BAD_ENCODING', `CWT ${field} ${message}`, { field });
}

function b64(s: unknown, field: string): Uint8Array {
  if (typeof s !== 'string') throw new MisuseError('MISUSE_ARGUMENT', `${field} must be base64url text`, { field });
  const out = base64url.decode(s);
  if (base64url.encode(out) !== s) throw new MisuseError('MISUSE_ARGUMENT', `${field} is not canonical base64url`, { field });
  return out;
}

function jwkToCoseKey(jwk: Record<string, unknown>): CborMap {
  const kty = jwk['kty'];
  if (kty === 'EC' || kty === 'OKP') {
    const crv = COSE_CRV[String(jwk['crv'])];
    if (crv === undefined) throw new MisuseError('MISUSE_ARGUMENT', `cnf.jwk.crv ${String(jwk['crv'])} has no COSE value`, { field: 'cnf.jwk.crv' });
    const m: CborMap = new Map<number, CborValue>([
      [1, COSE_KTY[kty]],
      [-1, crv],
      [-2, b64(jwk['x'], 'cnf.jwk.x')],
    ]);
    if (kty === 'EC') m.set(-3, b64(jwk['y'], 'cnf.jwk.y'));
    return m;
  }
  if (kty === 'RSA') {
    return new Map<number, CborValue>([
      [1, COSE_KTY.RSA],
      [-1, b64(jwk['n'], 'cnf.jwk.n')],
      [-2, b64(jwk['e'], 'cnf.jwk.e')],
    ]);
  }
  throw new MisuseError('MISUSE_ARGUMENT', 'cnf.jwk.kty must be EC, OKP or RSA', { field: 'cnf.jwk.kty' });
}

function asMap(v: CborValue | undefined, field: string): Map<string | number | bigint, CborValue> {
  if (v instanceof Map) return v;
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) return new Map(Object.entries(v));
  throw malformed(field, 'is not a map');
}

function bytesAt(m: Map<string | number | bigint, CborValue>, k: number, field: string): string {
  const v = m.get(k);
  if (!(v instanceof Uint8Array)) throw malformed(field, 'is not a byte string');
  return base64url.encode(v);
}

function coseKeyToJwk(v: CborValue | undefined): Record<string, string> {
  const m = asMap(v, 'cnf.1');
  const kty = m.get(1);
  if (kty === COSE_KTY.EC || kty === COSE_KTY.OKP) {
    const crvCode = m.get(-1);
    const crv = Object.keys(COSE_CRV).find((name) => COSE_CRV[name] === crvCode);
    if (crv === undefined) throw malformed('cnf.1.-1', 'is not a supported curve');
    if (m.size !== (kty === COSE_KTY.EC ? 4 : 3)) throw malformed('cnf.1', 'has unexpected parameters');
    return kty === COSE_KTY.EC
      ? { kty: 'EC', crv, x: bytesAt(m, -2, 'cnf.1.-2'), y: bytesAt(m, -3, 'cnf.1.-3') }
      : { kty: 'OKP', crv, x: bytesAt(m, -2, 'cnf.1.-2') };
  }
  if (kty === COSE_KTY.RSA) {
    if (m.size !== 3) throw malformed('cnf.1', 'has unexpected parameters');
    return { kty: 'RSA', n: bytesAt(m, -1, 'cnf.1.-1'), e: bytesAt(m, -2, 'cnf.1.-2') };
  }
  throw malformed('cnf.1.1', 'is not a supported COSE key type');
}

/** A JSON value as carried unchanged in a text-labelled claim. */
function jsonToCbor(v: unknown, field: string): CborValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new MisuseError('MISUSE_ARGUMENT', `${field}: only integers are carried in a CWT`, { field });
    return v;
  }
  if (Array.isArray(v)) return v.map((x, i) => jsonToCbor(x, `${field}[${i}]`));
  if (typeof v === 'object') {
    const out: Record<string, CborValue> = {};
    for (const [k, x] of Object.entries(v)) out[k] = jsonToCbor(x, `${field}.${k}`);
    return out;
  }
  throw new MisuseError('MISUSE_ARGUMENT', `${field}: not a JSON value`, { field });
}

function cborToJson(v: CborValue, field: string): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x, i) => cborToJson(x, `${field}[${i}]`));
  if (v instanceof Map || typeof v === 'bigint' || v instanceof Uint8Array) throw malformed(field, 'holds a value JSON cannot carry');
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = cborToJson(x, `${field}.${k}`);
  return out;
}

/**
 * The CWT claims map of an EAR claims set (as built by buildEarClaims), ready for
 * encodeCanonical.
 * @throws MisuseError MISUSE_ARGUMENT for values outside the mapping
 */
export function earClaimsToCwt(claims: Readonly<Record<string, unknown>>): CborMap {
  const out: CborMap = new Map();
  for (const [name, value] of Object.entries(claims)) {
    if (value === undefined) continue;
    switch (name) {
      case 'ear.verifier-id': {
        const vid = value as { developer: string; build: string };
        out.set(CWT_LABEL[name], new Map<number, CborValue>([[0, vid.developer], [1, vid.build]]));
        break;
      }
      case 'cnf':
        out.set(CWT_LABEL.cnf, new Map<number, CborValue>([[1, jwkToCoseKey((value as { jwk: Record<string, unknown> }).jwk)]]));
        break;
      case 'submods': {
        const subs: Record<string, CborValue> = {};
        for (const [sub, sm] of Object.entries(value as Record<string, Record<string, unknown>>)) {
          const m: CborMap = new Map();
          for (const [k, x] of Object.entries(sm)) {
            if (k === 'ear.status') m.set(CWT_LABEL[k], STATUS_CODE[x as EarStatus]);
            else if (k === 'ear.trustworthiness-vector') {
              const tv = new Map<number, CborValue>();
              for (const [c, n] of Object.entries(x as Record<string, number>)) {
                const idx = (AR4SI_CLAIMS as readonly string[]).indexOf(c);
                if (idx < 0) throw new MisuseError('MISUSE_ARGUMENT', `submods.${sub}: ${c} is not an AR4SI claim`, { field: `submods.${sub}` });
                tv.set(idx, n);
              }
              m.set(CWT_LABEL[k], tv);
            } else if (k === 'ear.appraisal-policy-id') m.set(CWT_LABEL[k], jsonToCbor(x, k));
            else m.set(k, jsonToCbor(x, `submods.${sub}.${k}`));
          }
          subs[sub] = m;
        }
        out.set(CWT_LABEL.submods, subs);
        break;
      }
      default: {
        const label = (CWT_LABEL as Record<string, number>)[name];
        out.set(label ?? name, jsonToCbor(value, name));
      }
    }
  }
  return out;
}

const LABEL_NAME = new Map<number, string>(Object.entries(CWT_LABEL).map(([k, v]) => [v, k]));

/**
 * The EAR claims set (JWT names and JSON values) of a decoded CWT claims map. Unknown integer
 * labels are ignored (EAR: "a receiver MUST ignore any unknown claim"); text labels carry JSON
 * values unchanged. The result still has to pass the EAR claims schema.
 * @throws ParseError PARSE_BAD_ENCODING
 */
export function cwtToEarClaims(value: CborValue): Record<string, unknown> {
  const m = asMap(value, 'claims');
  const out: Record<string, unknown> = {};
  for (const [label, v] of m) {
    const name = typeof label === 'string' ? label : typeof label === 'number' ? LABEL_NAME.get(label) : undefined;
    if (name === undefined) continue;
    if (typeof label === 'string' && (CWT_LABEL as Record<string, number>)[label] !== undefined) throw malformed(label, 'must use its integer label');
    switch (name) {
      case 'ear.verifier-id': {
        const vid = asMap(v, name);
        if (vid.size !== 2) throw malformed(name, 'must hold developer (0) and build (1) only');
        out[name] = { developer: vid.get(0), build: vid.get(1) };
        break;
      }
      case 'cnf': {
        const cnf = asMap(v, name);
        if (cnf.size !== 1) throw malformed(name, 'must hold a COSE_Key (1) only');
        out[name] = { jwk: coseKeyToJwk(cnf.get(1)) };
        break;
      }
      case 'submods': {
        const subs = asMap(v, name);
        const res: Record<string, unknown> = {};
        for (const [sub, smv] of subs) {
          if (typeof sub !== 'string') throw malformed(name, 'names a submodule with a non-text label');
          const sm = asMap(smv, `submods.${sub}`);
          const r: Record<string, unknown> = {};
          for (const [k, x] of sm) {
            if (k === CWT_LABEL['ear.status']) {
              const s = EAR_STATUSES.find((t) => STATUS_CODE[t] === x);
              if (s === undefined) throw malformed(`submods.${sub}.1000`, 'is not a trust tier');
              r['ear.status'] = s;
            } else if (k === CWT_LABEL['ear.trustworthiness-vector']) {
              const tv: Record<string, unknown> = {};
              for (const [i, n] of asMap(x, `submods.${sub}.1001`)) {
                const c = typeof i === 'number' ? AR4SI_CLAIMS[i] : undefined;
                if (c === undefined) throw malformed(`submods.${sub}.1001`, 'has a label outside 0..7');
                tv[c] = n;
              }
              r['ear.trustworthiness-vector'] = tv;
            } else if (k === CWT_LABEL['ear.appraisal-policy-id']) r['ear.appraisal-policy-id'] = cborToJson(x, `submods.${sub}.1003`);
            else if (typeof k === 'string') r[k] = cborToJson(x, `submods.${sub}.${k}`);
          }
          res[sub] = r;
        }
        out[name] = res;
        break;
      }
      default:
        out[name] = cborToJson(v, name);
    }
  }
  return out;
}

/** The protected header bytes `{1: alg, 4: kid}` (kid as the UTF-8 of the JWK kid). */
export function coseProtectedHeader(alg: keyof typeof COSE_ALG, kid: string): Uint8Array {
  return encodeCanonical(new Map<number, CborValue>([[COSE_HEADER.alg, COSE_ALG[alg]], [COSE_HEADER.kid, new TextEncoder().encode(kid)]]));
}

/** Sig_structure of a COSE_Sign1 with empty external AAD (RFC 9052 §4.4). */
export function coseSign1ToBeSigned(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCanonical(['Signature1', protectedHeader, new Uint8Array(0), payload]);
}
