/**
 * Content addressing of policies. A decision names the digest of the policy it was appraised
 * under, so that the exact rules can be found again (and replayed) later.
 *
 * `policyDigest` = SHA-256 over the canonical JSON (RFC 8785) of the normalised policy that
 * `parsePolicy` returns. It does not depend on YAML or JSON formatting, comments, key order or
 * the order of set-valued lists, and defaults are applied before hashing, so two documents
 * that mean the same thing have the same digest.
 */
import { canonicalJson, canonicalJsonSha256 } from './canonical.js';
import type { Policy } from './schema.js';

const cache = new WeakMap<Policy, string>();

/** Lower-case hex SHA-256 of the policy's canonical JSON. */
export function policyDigest(policy: Policy): string {
  // Policies from parsePolicy are frozen, so a cached digest cannot go stale.
  const hit = Object.isFrozen(policy) ? cache.get(policy) : undefined;
  if (hit !== undefined) return hit;
  const d = canonicalJsonSha256(policy);
  if (Object.isFrozen(policy)) cache.set(policy, d);
  return d;
}

/** The canonical JSON text that {@link policyDigest} hashes (for storage and display). */
export function canonicalPolicyJson(policy: Policy): string {
  return canonicalJson(policy);
}

/** The EAR appraisal policy identifier: `policy:<id>@sha256:<digest>`. */
export function policyRef(policy: Policy): string {
  return `policy:${policy.id}@sha256:${policyDigest(policy)}`;
}
