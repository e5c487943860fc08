/**
 * The agent's side of a key-broker release: after an affirming attestation, prove possession of
 * the bound (`cnf`) key over the release challenge, ask for the secret, and open the answer —
 * HPKE with the bound private key, then, for a TPM-bound release, the inner layer with the key
 * that TPM2_ActivateCredential recovers (src/secrets/tpm-wrap.ts).
 *
 * The secret is returned as bytes for the caller to write where the job needs it; it is never
 * logged here.
 */
import { sign, type KeyObject } from 'node:crypto';
import { fromBase64Url, toBase64Url } from '../lib/bytes.js';
import { MisuseError, VerificationError } from '../lib/errors.js';
import { openBase } from '../secrets/hpke.js';
import { releaseChallenge, releaseInfo } from '../secrets/release-binding.js';
import { unwrapWithKek } from '../secrets/tpm-wrap.js';
import type { Released } from '../secrets/broker.js';
import type { VerifierClient } from './client.js';

/** The proof of possession a release request carries. */
export interface ReleaseProof {
  readonly challenge: string;
  readonly signature: string;
}

/** Signs the release challenge of `secretId` for the artifact's appraisal (`vouch.ledger.hash`, hex). */
export function releaseProof(secretId: string, ledgerHashHex: string, boundKey: KeyObject): ReleaseProof {
  if (!/^[0-9a-f]{64}$/.test(ledgerHashHex)) throw new MisuseError('MISUSE_ARGUMENT', 'the artifact ledger hash must be 64 lower-case hex digits', { field: 'ledger.hash' });
  const challenge = releaseChallenge(secretId, new Uint8Array(Buffer.from(ledgerHashHex, 'hex')));
  const signature = new Uint8Array(sign('sha256', challenge, { key: boundKey, dsaEncoding: 'ieee-p1363' }));
  return { challenge: toBase64Url(challenge), signature: toBase64Url(signature) };
}

/** The 32-byte P-256 private scalar of a KeyObject (for HPKE's DH), left-padded. */
function privateScalar(key: KeyObject): Uint8Array {
  const d = key.export({ format: 'jwk' }).d;
  if (typeof d !== 'string') throw new MisuseError('MISUSE_ARGUMENT', 'the bound key is not an EC private key', { field: 'boundKey' });
  const raw = fromBase64Url(d, 'boundKey.d');
  if (raw.length > 32) throw new MisuseError('MISUSE_ARGUMENT', 'the bound key is not a P-256 key', { field: 'boundKey' });
  const out = new Uint8Array(32);
  out.set(raw, 32 - raw.length);
  raw.fill(0);
  return out;
}

/**
 * Opens a release answer. `activate` is TPM2_ActivateCredential with the node's AK and EK; it is
 * required for a TPM-bound answer (`binding: 'tpm'`).
 *
 * @throws VerificationError RELEASE_HPKE_INVALID, RELEASE_TPM_UNWRAP_FAILED
 */
export function openRelease(r: Released, boundKey: KeyObject, activate?: (credentialBlob: Uint8Array, encryptedSecret: Uint8Array) => Uint8Array): Uint8Array {
  const info = releaseInfo(r.secretId, { seq: r.appraisal.seq, hash: new Uint8Array(Buffer.from(r.appraisal.hash, 'hex')) });
  const sk = privateScalar(boundKey);
  let plain: Uint8Array;
  try {
    plain = openBase({ enc: fromBase64Url(r.enc, 'enc'), ciphertext: fromBase64Url(r.ciphertext, 'ciphertext') }, sk, info, new Uint8Array(0));
  } finally {
    sk.fill(0);
  }
  if (r.binding === 'cnf') return plain;
  if (r.binding !== 'tpm' || r.tpm === undefined) throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', `the release answer has binding ${JSON.stringify(r.binding)} without its TPM part`, { field: 'binding' });
  if (activate === undefined) throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', 'a TPM-bound secret needs the node’s TPM to open', { field: 'binding' });
  let kek: Uint8Array;
  try {
    kek = activate(fromBase64Url(r.tpm.credentialBlob, 'tpm.credentialBlob'), fromBase64Url(r.tpm.encryptedSecret, 'tpm.encryptedSecret'));
  } catch (cause) {
    throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', 'this TPM could not activate the credential: the secret was wrapped to another TPM or AK', { field: 'tpm.credentialBlob', cause });
  }
  try {
    return unwrapWithKek(kek, plain, info);
  } finally {
    kek.fill(0);
    plain.fill(0);
  }
}

/** What an agent needs to fetch a secret after it attested. */
export interface FetchSecretInput {
  readonly client: VerifierClient;
  readonly secretId: string;
  /** The artifact of the attestation just made, and its ledger position. */
  readonly artifact: string;
  readonly ledger: { readonly seq: number; readonly hash: string };
  readonly boundKey: KeyObject;
  readonly tpmBound?: boolean;
  readonly activate?: (credentialBlob: Uint8Array, encryptedSecret: Uint8Array) => Uint8Array;
}

/** A fetched secret and the decision that released it. */
export interface FetchedSecret {
  readonly value: Uint8Array;
  readonly binding: 'cnf' | 'tpm';
  readonly ledger: { readonly seq: number; readonly hash: string };
  /** The request that was sent (artifact and proof; no secret in it). */
  readonly request: { readonly artifact: string; readonly pop: ReleaseProof; readonly tpmBound?: boolean };
}

/** Asks for `secretId` with the artifact and a proof of its cnf key, and opens the answer. */
export async function fetchSecret(i: FetchSecretInput): Promise<FetchedSecret> {
  const pop = releaseProof(i.secretId, i.ledger.hash, i.boundKey);
  const request = { artifact: i.artifact, pop, ...(i.tpmBound === true ? { tpmBound: true } : {}) };
  const r = await i.client.release(i.secretId, request);
  const value = openRelease(r, i.boundKey, i.activate);
  return { value, binding: r.binding, ledger: r.ledger, request };
}
