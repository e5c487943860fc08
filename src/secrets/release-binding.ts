/**
 * The bytes that bind a key-broker release to one secret and one appraisal, shared by the broker
 * (src/secrets/broker.ts) and the agent that asks for the secret (src/agent/agent.ts).
 *
 * ```
 * prefix    = "vouch/release/v1" ‖ 0x00 ‖ u8 len(id) ‖ id (UTF-8, 1..64 bytes)
 * challenge = SHA-256(prefix ‖ artifact vouch.ledger.hash)           signed by the cnf key (ES256, r ‖ s)
 * info      = prefix ‖ u64 BE appraisal seq ‖ appraisal ledger hash   HPKE info, and the AAD of a TPM-bound inner layer
 * ```
 */
import { createHash } from 'node:crypto';
import { MisuseError } from '../lib/errors.js';

const te = new TextEncoder();
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

function prefixed(secretId: string): Buffer {
  const id = te.encode(secretId);
  if (id.length === 0 || id.length > 64) throw new MisuseError('MISUSE_ARGUMENT', 'secret ids are 1..64 bytes');
  return Buffer.concat([Buffer.from('vouch/release/v1\0', 'utf8'), Buffer.of(id.length), id]);
}

/** The release challenge the agent signs: SHA-256("vouch/release/v1" ‖ 0x00 ‖ u8 len ‖ id ‖ artifact ledger hash). */
export function releaseChallenge(secretId: string, artifactLedgerHash: Uint8Array): Uint8Array {
  return sha256(Buffer.concat([prefixed(secretId), artifactLedgerHash]));
}

/** HPKE `info` of a release: "vouch/release/v1" ‖ 0x00 ‖ u8 len ‖ id ‖ u64 BE appraisal seq ‖ appraisal hash. */
export function releaseInfo(secretId: string, appraisal: { seq: number; hash: Uint8Array }): Uint8Array {
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(BigInt(appraisal.seq));
  return new Uint8Array(Buffer.concat([prefixed(secretId), seq, appraisal.hash]));
}

