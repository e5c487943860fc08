/**
 * The node key of an SNP-only node and its proof of possession (the derivation is written once,
 * in ./binding.ts: {@link nodeKeyProofMessage}).
 *
 * A node key is an ECDSA P-256 key whose DER SubjectPublicKeyInfo is sent as is and kept by the
 * verifier; one encoding only: the SPKI must be exactly what node:crypto re-exports for the key
 * (named curve, uncompressed point), so two byte strings can never name the same node key.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { toHex } from '../lib/bytes.js';
import { MisuseError, ParseError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { nodeKeyProofMessage } from './binding.js';

/** Size of a key proof: r ‖ s of ECDSA P-256 (IEEE P1363). */
export const NODE_KEY_PROOF_BYTES = 64;

/** Largest SPKI accepted as a node key (a P-256 SPKI is 91 bytes). */
export const NODE_KEY_MAX_BYTES = 256;

/**
 * Parses a node key: a DER SubjectPublicKeyInfo of an ECDSA P-256 key in its one canonical
 * encoding.
 *
 * @throws ParseError ENROLL_NODE_KEY_INVALID
 */
export function parseNodeKey(spki: Uint8Array, field = 'nodeKey'): KeyObject {
  const invalid = (why: string): ParseError => new ParseError('ENROLL_NODE_KEY_INVALID', `${field}: ${why}`, { field });
  if (spki.length === 0 || spki.length > NODE_KEY_MAX_BYTES) throw invalid(`must be 1..${NODE_KEY_MAX_BYTES} bytes of SubjectPublicKeyInfo`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw invalid('is not a DER SubjectPublicKeyInfo');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw invalid('is not an ECDSA P-256 key');
  const again = new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  if (toHex(again) !== toHex(spki)) throw invalid('is not the canonical SubjectPublicKeyInfo encoding of its key (named curve, uncompressed point)');
  return key;
}

/** Signs the key proof for `report` and `nonce` with the node key's private half (the agent's side). */
export function signNodeKeyProof(privateKey: KeyObject, nonce: Uint8Array, report: Uint8Array): Uint8Array {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec') throw new MisuseError('MISUSE_ARGUMENT', 'the node key must be an EC private key');
  return new Uint8Array(sign('sha256', nodeKeyProofMessage(nonce, report), { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

/**
 * Checks a key proof. Returns SNP_KEY_PROOF_INVALID (field `field`) when it is not 64 bytes or
 * does not verify with `nodeKey` over {@link nodeKeyProofMessage}(nonce, report); [] when it does.
 */
export function checkNodeKeyProof(nodeKey: KeyObject, proof: Uint8Array, nonce: Uint8Array, report: Uint8Array, field = 'evidence.keyProof'): Failure[] {
  if (proof.length !== NODE_KEY_PROOF_BYTES) {
    return [failure('SNP_KEY_PROOF_INVALID', { field, expected: `${NODE_KEY_PROOF_BYTES} bytes (r || s)`, actual: `${proof.length} bytes` })];
  }
  const ok = verify('sha256', nodeKeyProofMessage(nonce, report), { key: nodeKey, dsaEncoding: 'ieee-p1363' }, proof);
  return ok ? [] : [failure('SNP_KEY_PROOF_INVALID', { field })];
}
