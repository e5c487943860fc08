/**
 * The binding of a piece of hardware evidence to one challenge and one agent key.
 *
 * Every quote and TEE report carries, in the field its producer lets the caller choose (the TPM
 * quote's qualifying data, the SNP REPORT_DATA, the TDX REPORTDATA), this value:
 *
 * ```
 * binding = H( domainTag ‖ 0x00 ‖ u16be(len(nonce)) ‖ nonce ‖ SHA-256(SPKI of the bound key) )
 *   TPM quotes:  H = SHA-256, domainTag = "vouch/tpm-binding/v1"   (32 bytes)
 *   TEE reports: H = SHA-512, domainTag = "vouch/tee-binding/v1"   (64 bytes)
 * ```
 *
 * The nonce makes the evidence fresh (single-use challenge); the key hash lets the verifier
 * release secrets encrypted to that key only, since nobody but the attested environment holds
 * its private half. The domain tag keeps a value made for one evidence kind from being replayed
 * as another. The length prefix keeps (nonce, key) pairs from colliding.
 */
import { createHash } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';

/** Domain tag of the TPM qualifying data. */
export const TPM_BINDING_TAG = 'vouch/tpm-binding/v1';
/** Domain tag of TEE report data (SEV-SNP REPORT_DATA, TDX REPORTDATA). */
export const TEE_BINDING_TAG = 'vouch/tee-binding/v1';

function binding(hash: 'sha256' | 'sha512', tag: string, nonce: Uint8Array, boundKeySpki: Uint8Array): Uint8Array {
  if (nonce.length === 0 || nonce.length > 0xffff) throw new MisuseError('MISUSE_ARGUMENT', 'the nonce must be 1..65535 bytes');
  if (boundKeySpki.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'the bound key is empty');
  const keyHash = createHash('sha256').update(boundKeySpki).digest();
  // H(tag || 0x00 || u16be(len(nonce)) || nonce || SHA-256(key)), fed in parts.
  const h = createHash(hash).update(tag, 'utf8').update(Uint8Array.of(0, nonce.length >>> 8, nonce.length & 0xff)).update(nonce).update(keyHash);
  return new Uint8Array(h.digest());
}

/** The 32-byte qualifying data a TPM quote must carry for `nonce` and the bound key. */
export function tpmQualifyingData(nonce: Uint8Array, boundKeySpki: Uint8Array): Uint8Array {
  return binding('sha256', TPM_BINDING_TAG, nonce, boundKeySpki);
}

/** The 64-byte report data a TEE report must carry for `nonce` and the bound key. */
export function teeReportData(nonce: Uint8Array, boundKeySpki: Uint8Array): Uint8Array {
  return binding('sha512', TEE_BINDING_TAG, nonce, boundKeySpki);
}
