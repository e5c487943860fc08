/**
 * The appraisal of SNP-only nodes: confidential VMs without a vTPM, identified by a long-term
 * P-256 node key that the agent generated inside the CVM and enrolled with a report binding it.
 *
 * Two pure functions, each returning every failure (no clock, network or randomness inside; the
 * SNP verification cache only memoises time-independent checks):
 *
 * - {@link appraiseSnpEnrollment}: the second step of an SNP-only enrollment — the group's
 *   policy admits SNP-only nodes, the report is a genuine AMD SEV-SNP report that the policy's
 *   `snp` rules accept, its REPORT_DATA is teeReportData(enrollment nonce, node key), and the
 *   key proof verifies with the node key over (nonce, report).
 * - {@link appraiseSnpOnly}: one attestation of an enrolled SNP-only node — a fresh challenge
 *   for this node, SNP-only evidence from a node of kind 'snp', the bound key is the enrolled
 *   node key, the key proof verifies, the report verifies and passes the `snp` rules with
 *   REPORT_DATA = teeReportData(challenge nonce, node key), and the policy holds no TPM rules
 *   (a policy with TPM rules never allows a node that has no TPM to satisfy them).
 */
import { createHash } from 'node:crypto';
import { toHex } from '../lib/bytes.js';
import { isVouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { AR4SI, type TrustVector } from '../artifact/ear.js';
import { decodeSnpReport } from '../snp/index.js';
import type { Evidence, SnpEvidence } from '../evidence/envelope.js';
import { checkNodeKeyProof, parseNodeKey } from '../evidence/key-proof.js';
import type { Policy } from '../policy/index.js';
import type { NodeKind } from '../store/types.js';
import { appraiseSnpEvidence, type SnpSummary, type SnpTrust } from './snp.js';
import type { Appraisal, ChallengeInput } from './appraise.js';
import { AppraisalLog, appraisalResult, enrolledFailures, freshnessFailures } from './checks.js';

/** The enrolled node, as an SNP-only appraisal needs it. */
export interface SnpNodeInput {
  readonly nodeId: string;
  readonly kind: NodeKind;
  /** DER SubjectPublicKeyInfo of the node key (null for a TPM node). */
  readonly nodeKey: Uint8Array | null;
}

/** Everything one SNP-only attestation appraisal depends on. */
export interface SnpOnlyAppraisalInput {
  readonly evidence: Evidence;
  readonly challenge: ChallengeInput;
  /** Null when the evidence names a node that is not enrolled. */
  readonly node: SnpNodeInput | null;
  /** Null when no policy is assigned to the node's group. */
  readonly policy: Policy | null;
  /** Appraisal time, epoch milliseconds. */
  readonly now: number;
  readonly snpTrust?: SnpTrust;
  /** SHA-256 of the received canonical CBOR, when the caller holds it. */
  readonly evidenceDigest?: Uint8Array;
}

/** What a successful SNP-only appraisal establishes (recorded with the decision). */
export interface SnpOnlyClaims {
  /** SHA-256 (hex) of the node key's SubjectPublicKeyInfo. */
  readonly nodeKeySha256: string;
  /** SHA-256 (hex) of the report. */
  readonly reportSha256: string;
  /** The report field CHIP_ID (hex). */
  readonly chipId: string;
  readonly snp: SnpSummary;
}

/**
 * Why a policy cannot appraise SNP-only nodes, or [] when it can: it must have `snp` rules and
 * no TPM rules (`tpm`, `measuredBoot`, `runtime`), which a node without a TPM could never meet.
 */
export function snpOnlyPolicyFailures(policy: Policy): Failure[] {
  const out: Failure[] = [];
  const tpmRules = (['tpm', 'measuredBoot', 'runtime'] as const).filter((k) => policy[k] !== undefined);
  if (tpmRules.length > 0) {
    out.push(failure('POLICY_TPM_RULES_FOR_SNP_NODE', { field: tpmRules.map((k) => `policy.${k}`).join(', '), expected: 'no TPM rules', actual: tpmRules.join(', ') }));
  }
  if (policy.snp === undefined) out.push(failure('POLICY_SNP_NOT_CONFIGURED', { field: 'policy.snp', expected: 'snp rules', actual: 'absent' }));
  return out;
}

/** SHA-256 as lower-case hex. */
function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** CHIP_ID of a report that decodes (hex), else undefined (its decoding failure is reported elsewhere). */
function chipIdOf(report: Uint8Array): string | undefined {
  try {
    return toHex(decodeSnpReport(report).chipId);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return undefined;
  }
}

/** Inputs of {@link appraiseSnpEnrollment}. */
export interface SnpEnrollmentInput {
  /** The group's policy (null: none assigned). */
  readonly policy: Policy | null;
  /** The node key the first step registered (DER SPKI). */
  readonly nodeKey: Uint8Array;
  /** The enrollment's nonce. */
  readonly nonce: Uint8Array;
  readonly snp: SnpEvidence;
  readonly keyProof: Uint8Array;
  readonly now: number;
  readonly snpTrust?: SnpTrust;
}

/** The outcome of {@link appraiseSnpEnrollment}: every failure, and what the ledger records. */
export interface SnpEnrollmentAppraisal {
  readonly ok: boolean;
  readonly failures: readonly Failure[];
  readonly reportSha256: string;
  /** CHIP_ID (hex), when the report decodes. */
  readonly chipId?: string;
  /** MEASUREMENT and the rest of the verified report, when it was verified. */
  readonly snp?: SnpSummary;
}

/** Appraises the second step of an SNP-only enrollment. Pure; never throws for a "no". */
export function appraiseSnpEnrollment(input: SnpEnrollmentInput): SnpEnrollmentAppraisal {
  const failures: Failure[] = [];
  const { policy } = input;
  if (policy === null) failures.push(failure('POLICY_NOT_ASSIGNED', { field: 'group' }));
  else {
    const pf = snpOnlyPolicyFailures(policy);
    if (pf.length > 0) failures.push(failure('ENROLL_SNP_NOT_ALLOWED', { field: 'group', actual: pf.map((f) => f.code).join(', ') }), ...pf);
  }
  let summary: SnpSummary | undefined;
  if (policy?.snp !== undefined) {
    const r = appraiseSnpEvidence(policy.snp, input.snp, { nonce: input.nonce, boundKeySpki: input.nodeKey }, input.now, input.snpTrust ?? {});
    failures.push(...r.failures);
    summary = r.summary;
  }
  try {
    failures.push(...checkNodeKeyProof(parseNodeKey(input.nodeKey, 'nodeKey'), input.keyProof, input.nonce, input.snp.report, 'keyProof'));
  } catch (e) {
    if (!isVouchError(e)) throw e;
    failures.push(failureFromError(e));
  }
  const chipId = chipIdOf(input.snp.report);
  return {
    ok: failures.length === 0 && summary !== undefined,
    failures,
    reportSha256: sha256Hex(input.snp.report),
    ...(chipId !== undefined ? { chipId } : {}),
    ...(summary !== undefined ? { snp: summary } : {}),
  };
}

/**
 * Appraises one attestation of an SNP-only node. Pure; never throws for a "no". The result has
 * no TPM `claims`; what it establishes is in `snpOnly`, and its trust vector is the `cpu0`
 * submodule's.
 */
export function appraiseSnpOnly(input: SnpOnlyAppraisalInput): Appraisal {
  const { evidence, challenge, node, policy, now } = input;
  const log = new AppraisalLog();
  const { checks, failures } = log;
  const record = (check: string, found: readonly Failure[]): boolean => log.record(check, found);
  const skip = (check: string, note: string): void => log.skip(check, note);

  // Freshness: the challenge is this node's, unused and unexpired (consumed when recorded).
  const freshOk = record('challenge', freshnessFailures(challenge, evidence));

  record('node.enrolled', enrolledFailures(node, evidence));

  // Kinds: an SNP node sends SNP-only evidence, and only an SNP node is appraised here.
  const kindFailures: Failure[] = [];
  if (node !== null && node.kind !== 'snp') {
    kindFailures.push(failure('APPRAISAL_NODE_KIND_MISMATCH', { field: 'node.kind', expected: 'snp', actual: node.kind }));
  }
  if (evidence.tpm !== undefined) {
    kindFailures.push(failure('APPRAISAL_NODE_KIND_MISMATCH', { field: 'evidence.tpm', expected: 'SNP-only evidence (the node enrolled without a TPM)', actual: 'TPM evidence' }));
  }
  const kindOk = record('node.kind', kindFailures);

  // The bound key is the enrolled node key: the artifact's cnf names the key the node proved.
  const nodeKey = node !== null && node.kind === 'snp' ? node.nodeKey : null;
  let boundKeyOk = false;
  if (nodeKey === null) skip('boundKey', 'no enrolled SNP node key to compare with');
  else {
    boundKeyOk = record(
      'boundKey',
      toHex(evidence.boundKey) === toHex(nodeKey)
        ? []
        : [failure('EVIDENCE_BOUND_KEY_NOT_NODE_KEY', { field: 'evidence.boundKey', expected: `SPKI with SHA-256 ${sha256Hex(nodeKey)}`, actual: `SPKI with SHA-256 ${sha256Hex(evidence.boundKey)}` })],
    );
  }

  // The policy: assigned, with snp rules and without TPM rules.
  let policyShapeOk = false;
  if (node === null) skip('policy.assigned', 'the node is not enrolled');
  else if (record('policy.assigned', policy === null ? [failure('POLICY_NOT_ASSIGNED', { field: 'node.group' })] : []) && policy !== null) {
    policyShapeOk = record('policy.snpOnly', snpOnlyPolicyFailures(policy));
  }

  // Possession of the node key, over this challenge's nonce and this report.
  let proofOk = false;
  const snpEv = evidence.tpm === undefined ? evidence.snp : undefined;
  const keyProof = evidence.keyProof;
  if (nodeKey !== null && challenge.ok && snpEv !== undefined && keyProof !== undefined) {
    let found: Failure[];
    try {
      found = checkNodeKeyProof(parseNodeKey(nodeKey, 'node.nodeKey'), keyProof, challenge.nonce, snpEv.report);
    } catch (e) {
      if (!isVouchError(e)) throw e;
      found = [failureFromError(e)];
    }
    proofOk = record('keyProof', found);
  } else {
    skip('keyProof', 'no enrolled SNP node key, fresh challenge and SNP-only evidence to check the key proof against');
  }

  // The report: genuine, bound to (challenge nonce, node key), accepted by the snp rules.
  let snpOk = false;
  let summary: SnpSummary | undefined;
  if (nodeKey !== null && challenge.ok && snpEv !== undefined && policy?.snp !== undefined) {
    const r = appraiseSnpEvidence(policy.snp, snpEv, { nonce: challenge.nonce, boundKeySpki: nodeKey }, now, input.snpTrust ?? {});
    snpOk = record('snp', r.failures);
    summary = r.summary;
  } else {
    skip('snp', 'no enrolled SNP node, fresh challenge, SNP-only evidence and snp rules to appraise the report with');
  }

  const verified = boundKeyOk && proofOk && summary !== undefined && snpOk;
  const ok = failures.length === 0 && freshOk && kindOk && policyShapeOk && verified;
  const chipId = snpEv === undefined ? undefined : chipIdOf(snpEv.report);
  const snpOnly: SnpOnlyClaims | undefined =
    ok && nodeKey !== null && snpEv !== undefined && summary !== undefined && chipId !== undefined
      ? { nodeKeySha256: sha256Hex(nodeKey), reportSha256: sha256Hex(snpEv.report), chipId, snp: summary }
      : undefined;
  const trustVector: TrustVector = {
    'instance-identity': boundKeyOk && proofOk ? AR4SI.instanceIdentity.trustworthy : node === null ? AR4SI.instanceIdentity.unrecognized : AR4SI.cryptoValidationFailed,
    configuration: ok ? AR4SI.configuration.approved : summary !== undefined ? AR4SI.configuration.unsupportable : AR4SI.noClaim,
    hardware: snpOk ? AR4SI.hardware.genuine : AR4SI.noClaim,
    ...(ok ? { 'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory } : {}),
  };
  return {
    ...appraisalResult(input, ok, log, trustVector),
    ...(snpOnly !== undefined ? { snpOnly } : {}),
  };
}
