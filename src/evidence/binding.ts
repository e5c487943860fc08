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
 *
 * An SNP-only node (a confidential VM without a vTPM) also proves possession of its long-term
 * node key for every report it sends, so that another CVM running the same image (same
 * MEASUREMENT, same REPORT_DATA derivation) cannot keep the node looking alive with reports of
 * its own: the node key's private half lives only in the enrolled CVM's state directory.
 *
 * ```
 * keyProofMessage = SHA-256( "vouch/node-key-proof/v1" ‖ 0x00 ‖ u16be(len(nonce)) ‖ nonce ‖ SHA-256(report) )
 * keyProof        = ECDSA P-256 signature with SHA-256 (ES256) by the node key over keyProofMessage,
 *                   IEEE P1363 encoding r ‖ s (64 bytes)
 * ```
 *
 * `report` is the 1184-byte SEV-SNP report exactly as sent; `nonce` is the enrollment's or the
 * challenge's nonce. The 32-byte keyProofMessage is the signed message (ES256 hashes it once
 * more, as every ECDSA-with-SHA-256 signer does).
 */
import { createHash } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';

/** Domain tag of the TPM qualifying data. */
export const TPM_BINDING_TAG = 'vouch/tpm-binding/v1';
/** Domain tag of TEE report data (SEV-SNP REPORT_DATA, TDX REPORTDATA). */
export const TEE_BINDING_TAG = 'vouch/tee-binding/v1';
/** Domain tag of an SNP-only node's proof of possession of its node key. */
export const NODE_KEY_PROOF_TAG = 'vouch/node-key-proof/v1';

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

/**
 * The 32-byte message an SNP-only node signs with its node key for one report and one nonce
 * (see the derivation above; the signing and checking live in src/evidence/key-proof.ts).
 */
export function nodeKeyProofMessage(nonce: Uint8Array, report: Uint8Array): Uint8Array {
  if (nonce.length === 0 || nonce.length > 0xffff) throw new MisuseError('MISUSE_ARGUMENT', 'the nonce must be 1..65535 bytes');
  if (report.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'the report is empty');
  const reportHash = createHash('sha256').update(report).digest();
  const h = createHash('sha256')
    .update(NODE_KEY_PROOF_TAG, 'utf8')
    .update(Uint8Array.of(0, nonce.length >>> 8, nonce.length & 0xff))
    .update(nonce)
    .update(reportHash);
  return new Uint8Array(h.digest());
}
