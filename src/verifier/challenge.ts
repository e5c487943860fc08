/**
 * A stored challenge as the appraisal sees it (shared by the service and replay).
 */
import type { PcrSelection } from '../tpm/abi/pcr.js';
import type { ChallengeInput } from '../appraisal/appraise.js';
import type { ChallengeRecord } from '../store/types.js';

/**
 * The challenge as the appraisal sees it: the same checks, in the same order, as the store's
 * consumption (unknown → wrong node → consumed → expired); the store repeats them atomically
 * when it records the decision.
 */
export function challengeInput(c: ChallengeRecord | null, nodeId: string, now: number): ChallengeInput {
  if (c === null) return { ok: false, reason: 'unknown' };
  if (c.nodeId !== nodeId) return { ok: false, reason: 'wrong-node' };
  if (c.consumedAt !== null) return { ok: false, reason: 'consumed' };
  if (now >= c.expiresAt) return { ok: false, reason: 'expired' };
  const raw = c.params['selection'];
  const selection: PcrSelection = Array.isArray(raw)
    ? (raw as Array<{ hashAlg: number; pcrs: number[] }>).map((b) => ({
        hashAlg: b.hashAlg,
        pcrs: b.pcrs,
        sizeofSelect: Math.max(3, ((b.pcrs[b.pcrs.length - 1] ?? 0) >> 3) + 1),
      }))
    : [];
  return { ok: true, challengeId: c.challengeId, nodeId: c.nodeId, nonce: c.nonce, selection };
}

