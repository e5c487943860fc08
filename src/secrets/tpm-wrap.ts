/**
 * TPM-bound release: a secret that only one physical TPM can recover.
 *
 * The verifier draws a fresh 32-byte key-encryption key (KEK), seals it with TPM2_MakeCredential
 * to the node's enrolled EK and AK name (src/tpm/credential.ts; TPM 2.0 Part 1 §24), and encrypts
 * the secret under the KEK:
 *
 * ```
 * inner  = nonce (12 bytes) ‖ AES-256-GCM(KEK, nonce, secret, aad = release info) ‖ tag (16 bytes)
 * ```
 *
 * The release answer then carries `inner` sealed again with HPKE to the artifact's `cnf` key, so
 * recovering the secret takes both the attested agent process (its bound private key) and the
 * TPM that holds the EK, with the AK loaded (TPM2_ActivateCredential). A copy of the answer is
 * useless on another host, and so is the agent's key without its TPM.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { MisuseError, VerificationError } from '../lib/errors.js';
import { makeCredential } from '../tpm/credential.js';
import { decodeTpmtPublic } from '../tpm/abi/public.js';

/** The KEK length: AES-256, and no more than a SHA-256 EK's credential limit (32 bytes). */
const KEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What the verifier sends for a TPM-bound release, before the HPKE layer. */
export interface TpmWrapped {
  /** TPM2B_ID_OBJECT for TPM2_ActivateCredential. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET for TPM2_ActivateCredential. */
  readonly encryptedSecret: Uint8Array;
  /** nonce ‖ AES-256-GCM ciphertext ‖ tag of the secret under the KEK. */
  readonly inner: Uint8Array;
}

/**
 * Wraps `value` for the TPM whose EK public area is `ekPublic` (TPMT_PUBLIC bytes, as enrolled)
 * with the AK named `akName`. `info` is bound as the AEAD's additional data.
 */
export function wrapForTpm(ekPublic: Uint8Array, akName: Uint8Array, value: Uint8Array, info: Uint8Array, random: (n: number) => Uint8Array): TpmWrapped {
  if (ekPublic.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'a TPM-bound release needs the node’s EK public area', { field: 'ekPublic' });
  const kek = random(KEK_BYTES);
  try {
    const cred = makeCredential({ ekPublic: decodeTpmtPublic(ekPublic), akName, credential: kek, random });
    const nonce = random(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', kek, nonce);
    c.setAAD(info);
    const inner = new Uint8Array(Buffer.concat([nonce, c.update(value), c.final(), c.getAuthTag()]));
    return { credentialBlob: cred.credentialBlob, encryptedSecret: cred.secret, inner };
  } finally {
    kek.fill(0);
  }
}

/**
 * The agent's side: opens `inner` with the KEK that TPM2_ActivateCredential returned.
 *
 * @throws VerificationError RELEASE_TPM_UNWRAP_FAILED when the KEK or the bytes are wrong
 */
export function unwrapWithKek(kek: Uint8Array, inner: Uint8Array, info: Uint8Array): Uint8Array {
  if (kek.length !== KEK_BYTES) throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', `the activated key is ${kek.length} bytes, not ${KEK_BYTES}`, { field: 'credentialBlob' });
  if (inner.length < NONCE_BYTES + TAG_BYTES) throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', 'the TPM-bound ciphertext is shorter than its nonce and tag', { field: 'ciphertext' });
  const d = createDecipheriv('aes-256-gcm', kek, inner.subarray(0, NONCE_BYTES));
  d.setAAD(info);
  d.setAuthTag(inner.subarray(inner.length - TAG_BYTES));
  try {
    return new Uint8Array(Buffer.concat([d.update(inner.subarray(NONCE_BYTES, inner.length - TAG_BYTES)), d.final()]));
  } catch (cause) {
    throw new VerificationError('RELEASE_TPM_UNWRAP_FAILED', 'the TPM-bound ciphertext does not open with the activated key', { field: 'ciphertext', cause });
  }
}
