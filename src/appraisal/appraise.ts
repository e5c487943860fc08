/**
 * The appraisal core: a pure function from (evidence, challenge, node, policy, time) to a
 * decision. No clock, no network, no randomness, no store access: the verifier service gathers
 * the inputs (consuming the challenge atomically first) and records the output. Identical inputs
 * give a byte-identical {@link Appraisal} ({@link encodeAppraisal}), which is what lets a recorded
 * decision be replayed later.
 *
 * A decision is affirming only when every check ran and passed. Every failure is returned, each
 * with its registry code, the spec field, and the expected and actual values.
 */
import { createPublicKey } from 'node:crypto';
import { encodeCanonical } from '../lib/cbor.js';
import { toHex } from '../lib/bytes.js';
import { failure, type Failure } from '../lib/failure.js';
import { TPM_ST_ATTEST, hashById } from '../tpm/abi/constants.js';
import { pcrSelection, type PcrSelection } from '../tpm/abi/pcr.js';
import { verifyQuote, type CheckOutcome } from '../tpm/verify/quote.js';
import type { TpmVerifyKey } from '../tpm/verify/keys.js';
import { akAlgorithmOf, appraiseAkAlgorithm, appraisePcrs, bankAlgId, policyPcrSelection, type Policy } from '../policy/index.js';
import { appraiseMeasuredBoot, type BootSummary } from './measured-boot.js';
import { appraiseRuntime, type RuntimeSummary } from './runtime.js';
import { appraiseSnpEvidence, type SnpSummary, type SnpTrust } from './snp.js';
import { appraiseTdxEvidence, type TdxSummary, type TdxTrust } from './tdx.js';
import type { SnpOnlyClaims } from './snp-only.js';
import { AR4SI, type TrustVector } from '../artifact/ear.js';
import { tpmQualifyingData } from '../evidence/binding.js';
import type { Evidence, TpmEvidence } from '../evidence/envelope.js';
import type { ChallengeRefusal, ImaStateRecord, QuoteCounters } from '../store/types.js';
import { AppraisalLog, appraisalResult, enrolledFailures, freshnessFailures } from './checks.js';

/** The challenge as the store returned it when the appraisal consumed it. */
export type ChallengeInput =
  | { readonly ok: true; readonly challengeId: string; readonly nodeId: string; readonly nonce: Uint8Array; readonly selection: PcrSelection }
  | { readonly ok: false; readonly reason: ChallengeRefusal };

/** The enrolled node, with its AK imported once. */
export interface NodeInput {
  readonly nodeId: string;
  readonly ak: TpmVerifyKey;
  /** Counters of the node's last accepted quote (null before the first). */
  readonly counters: QuoteCounters | null;
}

/** Everything one appraisal depends on. */
export interface AppraisalInput {
  readonly evidence: Evidence;
  readonly challenge: ChallengeInput;
  /** Null when the evidence names a node that is not enrolled. */
  readonly node: NodeInput | null;
  /** Null when no policy is assigned to the node's group. */
  readonly policy: Policy | null;
  /** Appraisal time, epoch milliseconds. */
  readonly now: number;
  /**
   * Whether `evidence.boundKey` is a supported public key, when the caller already parsed it
   * (the service caches it per key); computed here when absent. Same answer either way.
   */
  readonly boundKeySupported?: boolean;
  /** The node's stored IMA state (null: none), for policies with runtime rules. */
  readonly imaState?: ImaStateRecord | null;
  /** Pinned AMD roots, CRLs and the verification cache, for SEV-SNP evidence. */
  readonly snpTrust?: SnpTrust;
  /** Pinned Intel roots, the collateral obtained for this quote and the verification cache, for TDX evidence. */
  readonly tdxTrust?: TdxTrust;
  /**
   * SHA-256 of the envelope's canonical CBOR encoding, when the caller holds those bytes (a
   * received CBOR body: see decodeEvidenceCborWithDigest); computed from `evidence` otherwise.
   */
  readonly evidenceDigest?: Uint8Array;
}

/** True when `spki` is a DER SubjectPublicKeyInfo of a key type an agent may bind (EC, Ed25519, X25519). */
export function boundKeySupported(spki: Uint8Array): boolean {
  try {
    const t = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).asymmetricKeyType;
    return t === 'ec' || t === 'ed25519' || t === 'x25519';
  } catch {
    return false;
  }
}

/** The claims a successful appraisal establishes. */
export interface AppraisalClaims {
  readonly akName: string;
  readonly counters: { readonly resetCount: number; readonly restartCount: number; readonly clock: string; readonly safe: boolean };
  readonly firmwareVersion: string;
  /** Quoted PCR values by bank name and index (hex). */
  readonly pcrs: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** What the replayed event log says booted (when the policy has measured-boot rules). */
  readonly boot?: BootSummary;
  /** What the IMA replay established (when the policy has runtime rules). */
  readonly runtime?: RuntimeSummary;
  /** The verified SEV-SNP report (when the evidence carries one and the policy has SNP rules). */
  readonly snp?: SnpSummary;
  /** The verified TDX quote (when the evidence carries one and the policy has TDX rules). */
  readonly tdx?: TdxSummary;
}

/** The outcome. Plain data: it is stored with the decision and can be re-encoded canonically. */
export interface Appraisal {
  readonly status: 'affirming' | 'contraindicated';
  readonly nodeId: string;
  readonly challengeId: string;
  readonly time: number;
  readonly evidenceDigest: string;
  readonly policyId: string | null;
  readonly policyDigest: string | null;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  /** AR4SI trust vector of the TPM submodule. */
  readonly trustVector: TrustVector;
  /** Present only when the quote verified: values the TPM signed, and the counters. */
  readonly claims?: AppraisalClaims;
  /**
   * Present only on an affirming appraisal of an SNP-only node (appraiseSnpOnly in
   * ./snp-only.ts), which never has TPM `claims`; the trust vector is then the `cpu0` submodule's.
   */
  readonly snpOnly?: SnpOnlyClaims;
  /**
   * The IMA state to store after this appraisal (runtime rules, entries replayed to the quote).
   * Not part of the recorded appraisal: the store keeps it, the decision records `claims.runtime`.
   */
  readonly imaNext?: ImaStateRecord;
}

/** Counters that go backwards since the node's last accepted quote. */
export function counterFailures(prev: QuoteCounters | null, next: { resetCount: number; restartCount: number; clock: bigint }): Failure[] {
  if (prev === null) return [];
  const field = 'TPMS_ATTEST.clockInfo';
  if (next.resetCount < prev.resetCount) {
    return [failure('TPM_COUNTER_ROLLBACK', { field: `${field}.resetCount`, expected: `>= ${prev.resetCount}`, actual: String(next.resetCount) })];
  }
  if (next.resetCount === prev.resetCount) {
    if (next.restartCount < prev.restartCount) {
      return [failure('TPM_COUNTER_ROLLBACK', { field: `${field}.restartCount`, expected: `>= ${prev.restartCount}`, actual: String(next.restartCount) })];
    }
    if (next.clock < prev.clock) {
      return [
        failure('TPM_COUNTER_ROLLBACK', {
          field: `${field}.clock`,
          expected: `>= ${prev.clock} (no reset since the last quote)`,
          actual: String(next.clock),
        }),
      ];
    }
  }
  return [];
}

function pcrsRecord(selection: PcrSelection, values: TpmEvidence['pcrs']): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const bank of selection) {
    const name = hashById(bank.hashAlg)?.name ?? String(bank.hashAlg);
    const m: Record<string, string> = {};
    for (const p of bank.pcrs) {
      const v = values.get(bank.hashAlg)?.get(p);
      if (v !== undefined) m[String(p)] = toHex(v);
    }
    out[name] = m;
  }
  return out;
}

/**
 * Appraises one TPM evidence submission (a TPM node's; SNP-only nodes are appraised by
 * appraiseSnpOnly in ./snp-only.ts). Pure; never throws for a "no". SNP-only evidence here is
 * a refusal (APPRAISAL_NODE_KIND_MISMATCH), and so is a policy without tpm rules
 * (POLICY_TPM_NOT_CONFIGURED).
 */
export function appraise(input: AppraisalInput): Appraisal {
  const { evidence, challenge, node, policy, now } = input;
  const log = new AppraisalLog();
  const { checks, failures } = log;
  const record = (check: string, found: readonly Failure[]): boolean => log.record(check, found);
  const skip = (check: string, note: string): void => log.skip(check, note);

  // Freshness: the challenge was consumed by this appraisal, for this node.
  const freshOk = record('challenge', freshnessFailures(challenge, evidence));

  // Identity: the node is enrolled.
  record('node.enrolled', enrolledFailures(node, evidence));

  // The evidence is a TPM node's: SNP-only evidence (no quote) is never appraised as a TPM node's.
  const tpmEv = evidence.tpm;
  const kindOk = record(
    'node.kind',
    tpmEv === undefined ? [failure('APPRAISAL_NODE_KIND_MISMATCH', { field: 'evidence.tpm', expected: 'TPM evidence (the node enrolled with a TPM)', actual: 'SNP-only evidence' })] : [],
  );

  // The bound key must be a public key the agent can later prove possession of.
  const boundKeyOk = input.boundKeySupported ?? boundKeySupported(evidence.boundKey);
  record('boundKey', boundKeyOk ? [] : [failure('EVIDENCE_BOUND_KEY_INVALID', { field: 'evidence.boundKey' })]);

  // A node that is not enrolled has no group, so no policy: that is APPRAISAL_NODE_UNKNOWN alone.
  if (node === null) skip('policy.assigned', 'the node is not enrolled');
  else record('policy.assigned', policy === null ? [failure('POLICY_NOT_ASSIGNED', { field: 'node.group' })] : []);

  // The quote: signature, binding (nonce + bound key), selection and PCR digest.
  let claims: AppraisalClaims | undefined;
  let quoteOk = false;
  let countersOk = false;
  if (node !== null && challenge.ok && boundKeyOk && tpmEv !== undefined) {
    const quoted = verifyQuote({
      ak: node.ak,
      attest: tpmEv.attest,
      signature: tpmEv.signature,
      expectedExtraData: tpmQualifyingData(challenge.nonce, evidence.boundKey),
      expectedSelection: challenge.selection,
      pcrs: tpmEv.pcrs,
    });
    for (const c of quoted.checks) checks.push({ ...c, check: `tpm.${c.check}` });
    failures.push(...quoted.failures);
    quoteOk = quoted.ok;
    const a = quoted.attest;
    if (quoted.ok && a !== undefined && a.attested.type === TPM_ST_ATTEST.QUOTE) {
      const sel = a.attested.quote.pcrSelect;
      countersOk = record('tpm.counters', counterFailures(node.counters, a.clockInfo));
      claims = {
        akName: toHex(node.ak.name),
        counters: { resetCount: a.clockInfo.resetCount, restartCount: a.clockInfo.restartCount, clock: a.clockInfo.clock.toString(), safe: a.clockInfo.safe },
        firmwareVersion: a.firmwareVersion.toString(16),
        pcrs: pcrsRecord(sel, tpmEv.pcrs),
      };
    } else {
      skip('tpm.counters', 'the quote did not verify');
    }
  } else {
    skip('tpm.quote', 'no enrolled node, fresh challenge, valid bound key and TPM evidence to check the quote against');
  }

  // Policy: only over values the TPM signed (the quoted selection).
  let policyOk = false;
  let boot: BootSummary | undefined;
  let runtime: RuntimeSummary | undefined;
  let snp: SnpSummary | undefined;
  let tdx: TdxSummary | undefined;
  let imaNext: ImaStateRecord | undefined;
  if (policy !== null && quoteOk && node !== null && challenge.ok && tpmEv !== undefined) {
    const quotedValues = new Map<number, Map<number, Uint8Array>>();
    for (const bank of challenge.selection) {
      const m = new Map<number, Uint8Array>();
      for (const p of bank.pcrs) {
        const v = tpmEv.pcrs.get(bank.hashAlg)?.get(p);
        if (v !== undefined) m.set(p, v);
      }
      quotedValues.set(bank.hashAlg, m);
    }
    // A policy without tpm rules (one for SNP-only nodes) yields POLICY_TPM_NOT_CONFIGURED once.
    const pf = policy.tpm === undefined ? appraisePcrs(policy, quotedValues) : [...appraiseAkAlgorithm(policy, akAlgorithmOf(node.ak.public)), ...appraisePcrs(policy, quotedValues)];
    policyOk = record('policy', pf.map((f) => failure(f.code, f)));
    const policyBanks = (policy.tpm?.banks ?? []).map(bankAlgId);
    if (policy.runtime !== undefined && claims !== undefined) {
      const rt = appraiseRuntime(policy.runtime, { ...evidence, tpm: tpmEv }, quotedValues, policyBanks, claims.counters.resetCount, input.imaState ?? null);
      policyOk = record('runtime', rt.failures) && policyOk;
      runtime = rt.summary;
      imaNext = rt.next;
    } else {
      skip('runtime', 'the policy has no runtime rules');
    }
    if (evidence.snp !== undefined || policy.snp !== undefined) {
      if (policy.snp === undefined) policyOk = record('snp', [failure('POLICY_SNP_NOT_CONFIGURED', { field: 'evidence.snp' })]) && policyOk;
      else if (evidence.snp === undefined) policyOk = record('snp', [failure('POLICY_SNP_EVIDENCE_MISSING', { field: 'evidence.snp' })]) && policyOk;
      else {
        const r = appraiseSnpEvidence(policy.snp, evidence.snp, { nonce: challenge.nonce, boundKeySpki: evidence.boundKey }, now, input.snpTrust ?? {});
        policyOk = record('snp', r.failures) && policyOk;
        snp = r.summary;
      }
    } else {
      skip('snp', 'no SEV-SNP evidence and no SNP rules');
    }
    if (evidence.tdx !== undefined || policy.tdx !== undefined) {
      if (policy.tdx === undefined) policyOk = record('tdx', [failure('POLICY_TDX_NOT_CONFIGURED', { field: 'evidence.tdx' })]) && policyOk;
      else if (evidence.tdx === undefined) policyOk = record('tdx', [failure('POLICY_TDX_EVIDENCE_MISSING', { field: 'evidence.tdx' })]) && policyOk;
      else {
        const r = appraiseTdxEvidence(policy.tdx, evidence.tdx, { nonce: challenge.nonce, boundKeySpki: evidence.boundKey }, now, input.tdxTrust ?? {});
        policyOk = record('tdx', r.failures) && policyOk;
        tdx = r.summary;
      }
    } else {
      skip('tdx', 'no TDX evidence and no TDX rules');
    }
    if (policy.measuredBoot !== undefined) {
      const mb = appraiseMeasuredBoot(policy.measuredBoot, tpmEv.eventLog, quotedValues, policyBanks);
      policyOk = record('measuredBoot', mb.failures) && policyOk;
      boot = mb.summary;
    } else {
      skip('measuredBoot', 'the policy has no measured-boot rules');
    }
  } else {
    skip('policy', 'the quote did not verify, or no policy is assigned');
  }
  if (claims !== undefined && boot !== undefined) claims = { ...claims, boot };
  if (claims !== undefined && runtime !== undefined) claims = { ...claims, runtime };
  if (claims !== undefined && snp !== undefined) claims = { ...claims, snp };
  if (claims !== undefined && tdx !== undefined) claims = { ...claims, tdx };

  const ok = failures.length === 0 && freshOk && kindOk && quoteOk && countersOk && policyOk;
  const trustVector: TrustVector = {
    'instance-identity': quoteOk && node !== null ? AR4SI.instanceIdentity.trustworthy : node === null ? AR4SI.instanceIdentity.unrecognized : AR4SI.cryptoValidationFailed,
    configuration: policyOk ? AR4SI.configuration.approved : quoteOk ? AR4SI.configuration.unsupportable : AR4SI.noClaim,
    executables: policyOk ? AR4SI.executables.approvedBoot : quoteOk ? AR4SI.executables.contraindicatedRuntime : AR4SI.noClaim,
    hardware: quoteOk ? AR4SI.hardware.genuine : AR4SI.noClaim,
  };
  return {
    ...appraisalResult(input, ok, log, trustVector),
    ...(claims !== undefined ? { claims } : {}),
    ...(imaNext !== undefined ? { imaNext } : {}),
  };
}

/** The canonical CBOR bytes of an appraisal (for determinism checks and the ledger). */
export function encodeAppraisal(a: Appraisal): Uint8Array {
  const { imaNext: _state, ...recorded } = a;
  return encodeCanonical(JSON.parse(JSON.stringify(recorded)) as unknown);
}

/** The PCR selection a challenge asks for under `policy` (every bank and PCR it relies on). */
export function challengeSelection(policy: Policy): PcrSelection {
  return pcrSelection(policyPcrSelection(policy));
}
