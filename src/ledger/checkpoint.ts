/**
 * Ledger checkpoints: signed tree heads over the RFC 9162 Merkle tree of the ledger's entries
 * (./merkle.ts), so that a truncated, rewritten or forked ledger is caught by anyone holding a
 * checkpoint, and an inclusion proof for any decision can be checked against a signed root.
 *
 * A checkpoint is a compact JWS (RFC 7515) signed by the verifier's artifact keyring (ES256 or
 * EdDSA, protected header `{alg, kid, typ}`), whose payload is the canonical JSON
 *
 * ```
 * { "rootHash": <64 lower-case hex>,   MTH of the first treeSize entries (leaf = SHA-256(0x00 ‖ entry))
 *   "time": <epoch ms>,               when the verifier signed it
 *   "treeSize": <n ≥ 1>,              entries 1..n (leaf index = seq - 1)
 *   "type": "vouch-checkpoint/v1",    never an artifact: artifact verification refuses it (no EAR claims)
 *   "verifierId": <string> }
 * ```
 *
 * The public keys that sign checkpoints are themselves ledger decisions (kind `trust-anchor`,
 * body `{anchor: "signing-key", kid, jwk}`), so an export carries them inside the hash chain; a
 * relying party pins them with a JWKS it obtained on its own. Verification here is pure: the
 * caller supplies the keys.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { toHex } from '../lib/bytes.js';
import { ParseError } from '../lib/errors.js';
import { canonicalJsonBytes } from '../policy/canonical.js';
import { MERKLE_HASH_LENGTH } from './merkle.js';

/** The payload `type` of a version 1 checkpoint. */
export const CHECKPOINT_TYPE = 'vouch-checkpoint/v1';

/** Largest checkpoint accepted (a JWS of a few hundred bytes; the bound keeps parsing cheap). */
const CHECKPOINT_MAX_CHARS = 4096;

/** A tree head: what a checkpoint signs. */
export interface TreeHead {
  readonly verifierId: string;
  /** Entries covered: seq 1..treeSize. */
  readonly treeSize: number;
  /** RFC 9162 Merkle Tree Hash of those entries. */
  readonly rootHash: Uint8Array;
  /** Signing time, epoch milliseconds. */
  readonly time: number;
}

/** A decoded (not yet verified) checkpoint. */
export interface DecodedCheckpoint {
  readonly head: TreeHead;
  readonly alg: 'ES256' | 'EdDSA';
  readonly kid: string;
  /** The compact JWS exactly as given. */
  readonly jws: string;
}

/** A public key a checkpoint may be signed with (a JWK of the artifact keyring). */
export interface CheckpointKey {
  readonly kid: string;
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly alg?: string;
}

/** The canonical JSON bytes a checkpoint signs. */
export function checkpointPayload(h: TreeHead): Uint8Array {
  checkHead(h, (m) => new ParseError('LEDGER_CHECKPOINT_MALFORMED', m));
  return canonicalJsonBytes({ rootHash: toHex(h.rootHash), time: h.time, treeSize: h.treeSize, type: CHECKPOINT_TYPE, verifierId: h.verifierId });
}

/** Signs a tree head with a keyring's compact JWS signer (ArtifactSigner.signCompact). */
export async function signCheckpoint(signer: { signCompact(payload: Uint8Array): Promise<string> }, h: TreeHead): Promise<string> {
  return signer.signCompact(checkpointPayload(h));
}

function checkHead(h: TreeHead, fail: (m: string) => Error): void {
  if (typeof h.verifierId !== 'string' || h.verifierId.length === 0 || h.verifierId.length > 256) throw fail('checkpoint verifierId must be 1..256 characters');
  if (!Number.isSafeInteger(h.treeSize) || h.treeSize < 1) throw fail('checkpoint treeSize must be a positive integer');
  if (!(h.rootHash instanceof Uint8Array) || h.rootHash.length !== MERKLE_HASH_LENGTH) throw fail(`checkpoint rootHash must be ${MERKLE_HASH_LENGTH} bytes`);
  if (!Number.isSafeInteger(h.time) || h.time < 0) throw fail('checkpoint time must be non-negative epoch milliseconds');
}

function malformed(message: string): ParseError {
  return new ParseError('LEDGER_CHECKPOINT_MALFORMED', `checkpoint: ${message}`, { field: 'checkpoint' });
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function jsonPart(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw malformed(`${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(part, 'base64url')));
  } catch {
    throw malformed(`${what} is not UTF-8 JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw malformed(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Decodes a checkpoint strictly: three base64url parts, a header of exactly `alg` (ES256 or
 * EdDSA), `kid` and `typ`, and a payload of exactly the five fields in canonical form (so one
 * tree head has one encoding).
 *
 * @throws ParseError LEDGER_CHECKPOINT_MALFORMED
 */
export function decodeCheckpoint(jws: string): DecodedCheckpoint {
  if (typeof jws !== 'string' || jws.length === 0 || jws.length > CHECKPOINT_MAX_CHARS) throw malformed(`must be a compact JWS of at most ${CHECKPOINT_MAX_CHARS} characters`);
  const parts = jws.split('.');
  if (parts.length !== 3) throw malformed('must have three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  const header = jsonPart(h, 'the protected header');
  for (const k of Object.keys(header)) if (k !== 'alg' && k !== 'kid' && k !== 'typ') throw malformed(`unknown header parameter ${JSON.stringify(k)}`);
  const alg = header['alg'];
  const kid = header['kid'];
  if (alg !== 'ES256' && alg !== 'EdDSA') throw malformed('alg must be ES256 or EdDSA');
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) throw malformed('kid must be a string of 1..128 characters');
  const payload = jsonPart(p, 'the payload');
  const keys = Object.keys(payload).sort();
  if (keys.join(',') !== 'rootHash,time,treeSize,type,verifierId') throw malformed(`the payload must hold exactly rootHash, time, treeSize, type and verifierId (got ${keys.join(', ')})`);
  if (payload['type'] !== CHECKPOINT_TYPE) throw malformed(`type must be ${CHECKPOINT_TYPE}`);
  const root = payload['rootHash'];
  if (typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root)) throw malformed('rootHash must be 64 lower-case hex digits');
  const head: TreeHead = {
    verifierId: payload['verifierId'] as string,
    treeSize: payload['treeSize'] as number,
    rootHash: new Uint8Array(Buffer.from(root, 'hex')),
    time: payload['time'] as number,
  };
  checkHead(head, (m) => malformed(m));
  if (Buffer.from(checkpointPayload(head)).toString('base64url') !== p) throw malformed('the payload is not in canonical form');
  if (!B64URL.test(s)) throw malformed('the signature is not base64url');
  return { head, alg, kid, jws };
}

/** The outcome of {@link verifyCheckpoint}: a value, never an exception for a bad checkpoint. */
export type CheckpointVerification =
  | { readonly ok: true; readonly checkpoint: DecodedCheckpoint }
  | { readonly ok: false; readonly code: 'LEDGER_CHECKPOINT_MALFORMED' | 'LEDGER_CHECKPOINT_KEY_UNKNOWN' | 'LEDGER_CHECKPOINT_SIGNATURE_INVALID'; readonly message: string; readonly kid?: string };

/** Imported checkpoint keys by kid (importing costs more than verifying). */
export class CheckpointKeys {
  readonly #keys = new Map<string, { alg: 'ES256' | 'EdDSA'; key: KeyObject }>();

  /** Adds a public JWK (P-256 for ES256, Ed25519 for EdDSA); returns false for another key type. */
  add(jwk: CheckpointKey): boolean {
    let alg: 'ES256' | 'EdDSA';
    if (jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string') alg = 'ES256';
    else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string') alg = 'EdDSA';
    else return false;
    try {
      const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y !== undefined ? { y: jwk.y } : {}) }, format: 'jwk' });
      this.#keys.set(jwk.kid, { alg, key });
      return true;
    } catch {
      return false;
    }
  }

  has(kid: string): boolean {
    return this.#keys.has(kid);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Verifies a checkpoint's signature with the key its `kid` names. */
  verify(jws: string): CheckpointVerification {
    let c: DecodedCheckpoint;
    try {
      c = decodeCheckpoint(jws);
    } catch (e) {
      return { ok: false, code: 'LEDGER_CHECKPOINT_MALFORMED', message: e instanceof Error ? e.message : 'malformed checkpoint' };
    }
    const k = this.#keys.get(c.kid);
    if (k === undefined) return { ok: false, code: 'LEDGER_CHECKPOINT_KEY_UNKNOWN', message: `checkpoint of tree size ${c.head.treeSize} is signed by key ${c.kid}, which is not a trusted checkpoint key`, kid: c.kid };
    if (k.alg !== c.alg) return { ok: false, code: 'LEDGER_CHECKPOINT_SIGNATURE_INVALID', message: `checkpoint alg ${c.alg} is not the alg of key ${c.kid}`, kid: c.kid };
    const dot = jws.lastIndexOf('.');
    const input = Buffer.from(jws.slice(0, dot), 'ascii');
    const sig = Buffer.from(jws.slice(dot + 1), 'base64url');
    let ok = false;
    try {
      ok = k.alg === 'ES256' ? sig.length === 64 && cryptoVerify('sha256', input, { key: k.key, dsaEncoding: 'ieee-p1363' }, sig) : cryptoVerify(null, input, k.key, sig);
    } catch {
      ok = false;
    }
    if (!ok) return { ok: false, code: 'LEDGER_CHECKPOINT_SIGNATURE_INVALID', message: `the signature of the checkpoint of tree size ${c.head.treeSize} does not verify with key ${c.kid}`, kid: c.kid };
    return { ok: true, checkpoint: c };
  }
}
