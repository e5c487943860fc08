/**
 * Deterministic replay of recorded decisions (`vouch replay`, `POST /v1/ledger/replay`).
 *
 * An appraisal decision names its retained inputs (`body.inputs`: the evidence bytes, the
 * appraisal context and the trust anchors; see ./attestation.ts) and its policy by digest. Replay
 * loads them, re-runs the same pure evaluation at the recorded time, rebuilds the decision, and
 * compares it with the recorded one byte for byte:
 *
 *   resultDigest = SHA-256( canonical CBOR { kind, node, outcome, body } )
 *
 * Identical inputs give identical outcomes, so the digests are equal; any difference is
 * REPLAY_MISMATCH. One difference is explained rather than hidden: a decision whose commit lost a
 * race (a concurrent submission consumed the challenge or moved the counters first, a revocation
 * landed during the appraisal) carries failures the store appended at commit time; replay
 * reports them as `commitFailures` and compares the rest.
 *
 * With another policy (`--policy`), replay is a dry run: what that policy would have decided on
 * the same evidence at the same time; nothing is recorded.
 *
 * Job admissions (`authorize`) replay too: their retained context and the appraisal and
 * revocation decisions they named (in the ledger before them) go through the same pure
 * evaluation. Decisions that record a fact rather than an evaluation (heartbeat, policy, trust
 * anchor, revocation) and those whose result depends on fresh randomness (release ciphertexts,
 * enrollment credentials) are REPLAY_NOT_REPLAYABLE; their entries are still covered by the
 * hash chain and the checkpoints.
 */
import { createHash } from 'node:crypto';
import { encodeCanonical, type CborObject } from '../lib/cbor.js';
import { MisuseError, UnavailableError, isVouchError } from '../lib/errors.js';
import type { Failure } from '../lib/failure.js';
import { decodeLedgerEntry, type LedgerEntry } from '../ledger/entry.js';
import { parsePolicy, policyDigest, type Policy } from '../policy/index.js';
import { decodeEvidenceCborWithDigest } from '../evidence/envelope.js';
import type { Store } from '../store/types.js';

/** What replay reads: a store, or an export loaded in memory (src/cli/ledger.ts). */
export type ReplaySource = Pick<Store, 'getDecision' | 'getInput' | 'getPolicy' | 'listDecisions'>;
import { admissionDecision, decodeAdmissionContext, evaluateAdmission } from './admission.js';
import { attestationDecision, boundKeyJwkOf, decodeAppraisalContext, decodeTrustAnchors, evaluateAttestation, type AppraisalInputRefs } from './attestation.js';

/** Codes the store appends when an attestation's commit loses a race (src/store/commit.ts). */
const COMMIT_RACE_CODES = new Set(['APPRAISAL_NODE_REVOKED', 'CHALLENGE_UNKNOWN', 'CHALLENGE_WRONG_NODE', 'CHALLENGE_REPLAYED', 'CHALLENGE_EXPIRED', 'IMA_STATE_MISMATCH', 'TPM_COUNTER_ROLLBACK']);

/** The result of replaying one decision. */
export interface ReplayResult {
  readonly seq: number;
  readonly kind: string;
  readonly nodeId: string | null;
  /** Recorded time (the evaluation's `now`), epoch ms. */
  readonly time: number;
  readonly recorded: { readonly outcome: string; readonly resultDigest: string; readonly failures: readonly string[] };
  readonly replayed: { readonly outcome: string; readonly resultDigest: string; readonly failures: readonly Failure[]; readonly policyId: string | null; readonly policyDigest: string | null };
  /** True when the replayed decision is byte-identical to the recorded one (with the recorded policy). */
  readonly identical: boolean;
  /** Failures the store added at commit time (lost races), when that is the only difference. */
  readonly commitFailures: readonly string[];
  /** True when another policy was used (a dry run): `identical` then compares outcomes only. */
  readonly dryRun: boolean;
  /** A dry run's verdict change: the recorded outcome → the replayed one, or null when unchanged. */
  readonly change: string | null;
}

/** The digest replay compares: SHA-256 of the canonical CBOR of {kind, node, outcome, body}. */
export function resultDigest(kind: string, nodeId: string | null, outcome: string, body: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(encodeCanonical({ kind, node: nodeId, outcome, body })).digest('hex');
}

function failureCodes(body: CborObject): string[] {
  const f = body['failures'];
  if (!Array.isArray(f)) return [];
  return f.map((x) => (x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Uint8Array) && !(x instanceof Map) && typeof (x as CborObject)['code'] === 'string' ? ((x as CborObject)['code'] as string) : '?'));
}

async function input(store: ReplaySource, digest: unknown, what: string): Promise<Uint8Array> {
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) throw new UnavailableError('REPLAY_INPUT_MISSING', `the decision names no ${what} input`, { field: `body.inputs.${what}` });
  const i = await store.getInput(digest);
  if (i === null) throw new UnavailableError('REPLAY_INPUT_MISSING', `the ${what} input ${digest} is not retained`, { field: `body.inputs.${what}`, actual: digest });
  if (i.bytes === null) throw new UnavailableError('REPLAY_INPUT_PRUNED', `the ${what} input ${digest} was pruned at ${new Date(i.prunedAt ?? 0).toISOString()} (retention); only its digest remains`, { field: `body.inputs.${what}`, actual: digest });
  // Content-addressed: bytes that no longer hash to their digest are not the input the decision used.
  if (createHash('sha256').update(i.bytes).digest('hex') !== digest) throw new UnavailableError('REPLAY_INPUT_MISSING', `the retained ${what} input ${digest} was altered: its bytes no longer hash to its digest`, { field: `body.inputs.${what}`, actual: digest });
  return i.bytes;
}

/** Options of {@link replayDecision}. */
export interface ReplayOptions {
  /** A dry run with this policy instead of the recorded one. */
  readonly policy?: Policy;
}

/**
 * Replays the decision at `seq`.
 *
 * @throws MisuseError LEDGER_SEQ_UNKNOWN, REPLAY_NOT_REPLAYABLE; UnavailableError REPLAY_INPUT_MISSING, REPLAY_INPUT_PRUNED
 */
export async function replayDecision(store: ReplaySource, seq: number, options: ReplayOptions = {}): Promise<ReplayResult> {
  const row = await store.getDecision(seq);
  if (row === null) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no ledger entry ${seq}`, { field: 'seq', actual: String(seq) });
  return replayEntry(store, decodeLedgerEntry(row.entry), options);
}

/** Replays a decoded entry (see {@link replayDecision}). */
export async function replayEntry(store: ReplaySource, e: LedgerEntry, options: ReplayOptions = {}): Promise<ReplayResult> {
  if (e.kind === 'authorize') return replayAdmission(store, e, options);
  if (e.kind !== 'appraise') {
    throw new MisuseError('REPLAY_NOT_REPLAYABLE', `entry ${e.seq} is a ${e.kind} decision: it records a fact (or a result of fresh randomness), not an evaluation to re-run; the hash chain and checkpoints cover it`, { field: 'kind', actual: e.kind });
  }
  const refs = e.body['inputs'];
  if (refs === null || typeof refs !== 'object' || Array.isArray(refs) || refs instanceof Uint8Array || refs instanceof Map) {
    throw new UnavailableError('REPLAY_INPUT_MISSING', `entry ${e.seq} was recorded without retained inputs (before this verifier retained them, or with retention off)`, { field: 'body.inputs' });
  }
  const r = refs as CborObject;
  const { evidence, digest } = decodeEvidenceCborWithDigest(await input(store, r['evidence'], 'evidence'));
  const ctx = decodeAppraisalContext(await input(store, r['context'], 'context'));
  if (ctx.trust !== r['trust']) throw new UnavailableError('REPLAY_INPUT_MISSING', `entry ${e.seq}: the context names trust anchors ${ctx.trust}, the decision ${String(r['trust'])}`, { field: 'body.inputs.trust' });
  const trust = decodeTrustAnchors(await input(store, r['trust'], 'trust'));

  // The recorded policy, from the content-addressed policy store, unless a dry run brings another.
  let policy: Policy | null = null;
  const recordedDigest = e.body['policyDigest'];
  if (options.policy !== undefined) policy = options.policy;
  else if (typeof recordedDigest === 'string') {
    const rec = await store.getPolicy(recordedDigest);
    if (rec === null) throw new UnavailableError('REPLAY_INPUT_MISSING', `the policy ${recordedDigest} is not in the policy store`, { field: 'body.policyDigest', actual: recordedDigest });
    policy = parsePolicy(rec.document, 'json');
    if (policyDigest(policy) !== recordedDigest) throw new UnavailableError('REPLAY_INPUT_MISSING', `the stored policy ${recordedDigest} does not parse to its digest`, { field: 'body.policyDigest' });
  }
  // Otherwise the decision was made with no policy assigned to the node's group: replay the same (null).

  let evaluated;
  try {
    evaluated = evaluateAttestation({
      evidence,
      evidenceDigest: digest,
      challenge: ctx.challenge,
      node: ctx.node,
      imaState: ctx.imaState,
      policy,
      now: ctx.now,
      trust,
      ...(ctx.snpCollateral !== undefined ? { snpCollateral: ctx.snpCollateral } : {}),
      ...(ctx.tdxCollateral !== undefined ? { tdxCollateral: ctx.tdxCollateral } : {}),
    });
  } catch (cause) {
    throw new UnavailableError('REPLAY_MISMATCH', `entry ${e.seq}: the evaluation threw on replay: ${isVouchError(cause) ? cause.code : 'unexpected error'}`, { cause });
  }
  const inputs: AppraisalInputRefs = { evidence: r['evidence'] as string, context: r['context'] as string, trust: r['trust'] as string };
  const d = attestationDecision(evaluated.appraisal, { challengeId: evidence.challengeId, policy, boundKeyJwk: boundKeyJwkOf(evidence.boundKey), inputs });
  const replayedDigest = resultDigest('appraise', evidence.nodeId, d.outcome, d.body);
  const recordedDigestHex = resultDigest(e.kind, e.node, e.outcome, e.body);
  const recordedCodes = failureCodes(e.body);
  const replayedCodes = evaluated.appraisal.failures.map((f) => f.code);

  let identical = replayedDigest === recordedDigestHex;
  let commitFailures: string[] = [];
  if (!identical && options.policy === undefined && e.outcome === 'contraindicated') {
    // The only difference may be failures appended at commit: compare with them added.
    const extra = recordedCodes.slice(replayedCodes.length);
    const recordedFailures = e.body['failures'];
    if (extra.length > 0 && extra.every((c) => COMMIT_RACE_CODES.has(c)) && recordedCodes.slice(0, replayedCodes.length).join() === replayedCodes.join() && Array.isArray(recordedFailures)) {
      const withRace = { ...d.body, failures: [...evaluated.appraisal.failures, ...recordedFailures.slice(replayedCodes.length)] };
      if (resultDigest('appraise', evidence.nodeId, 'contraindicated', withRace) === recordedDigestHex) {
        identical = true;
        commitFailures = extra;
      }
    }
  }
  const dryRun = options.policy !== undefined;
  return {
    seq: e.seq,
    kind: e.kind,
    nodeId: e.node,
    time: e.time,
    recorded: { outcome: e.outcome, resultDigest: recordedDigestHex, failures: recordedCodes },
    replayed: { outcome: d.outcome, resultDigest: replayedDigest, failures: evaluated.appraisal.failures, policyId: policy?.id ?? null, policyDigest: policy === null ? null : policyDigest(policy) },
    identical: dryRun ? d.outcome === e.outcome : identical,
    commitFailures,
    dryRun,
    change: dryRun && d.outcome !== e.outcome ? `${e.outcome} → ${d.outcome}` : null,
  };
}

/**
 * Replays a job admission (`authorize`): its retained context (request, resource rules, node as
 * read, token scope, re-attestation settings) and the appraisal and revocation decisions it
 * named, which are in the ledger before it, through the same pure evaluation.
 */
async function replayAdmission(store: ReplaySource, e: LedgerEntry, options: ReplayOptions): Promise<ReplayResult> {
  if (options.policy !== undefined) throw new MisuseError('MISUSE_ARGUMENT', `entry ${e.seq} is an admission: a dry run takes an appraisal policy, which admissions do not use`, { field: 'policy' });
  const refs = e.body['inputs'];
  const digest = refs !== null && typeof refs === 'object' && !Array.isArray(refs) && !(refs instanceof Uint8Array) && !(refs instanceof Map) ? (refs as CborObject)['context'] : undefined;
  if (digest === undefined) throw new UnavailableError('REPLAY_INPUT_MISSING', `entry ${e.seq} was recorded without its admission context`, { field: 'body.inputs' });
  const ctx = decodeAdmissionContext(await input(store, digest, 'context'));
  const named = async (seq: number | null, what: string) => {
    if (seq === null) return null;
    if (seq >= e.seq) throw new UnavailableError('REPLAY_INPUT_MISSING', `entry ${e.seq} names a later ${what} decision #${seq}`, { field: `context.${what}Seq` });
    const row = await store.getDecision(seq);
    if (row === null) throw new UnavailableError('REPLAY_INPUT_MISSING', `the ${what} decision #${seq} is not in the ledger`, { field: `context.${what}Seq` });
    return row;
  };
  const { reasons, basis } = evaluateAdmission(ctx, await named(ctx.appraisalSeq, 'appraisal'), await named(ctx.revocationSeq, 'revocation'));
  const d = admissionDecision(ctx, reasons, basis, digest as string);
  const replayedDigest = resultDigest('authorize', e.node, d.outcome, d.body);
  const recordedDigestHex = resultDigest(e.kind, e.node, e.outcome, e.body);
  return {
    seq: e.seq,
    kind: e.kind,
    nodeId: e.node,
    time: e.time,
    recorded: { outcome: e.outcome, resultDigest: recordedDigestHex, failures: failureCodes(e.body) },
    replayed: { outcome: d.outcome, resultDigest: replayedDigest, failures: reasons as unknown as Failure[], policyId: null, policyDigest: null },
    identical: replayedDigest === recordedDigestHex,
    commitFailures: [],
    dryRun: false,
    change: null,
  };
}

/** A dry run of a policy over a range of past appraisals. */
export interface PolicyDryRun {
  readonly policyId: string;
  readonly policyDigest: string;
  readonly from: number;
  readonly to: number;
  /** Appraisals replayed, and those that could not be (inputs pruned or missing). */
  readonly replayed: number;
  readonly skipped: ReadonlyArray<{ readonly seq: number; readonly code: string }>;
  /** Appraisals whose outcome the policy would change. */
  readonly changed: ReadonlyArray<{ readonly seq: number; readonly nodeId: string | null; readonly change: string; readonly failures: readonly string[] }>;
  /** Nodes whose latest appraisal in the range affirmed them and would be refused: who would be locked out. */
  readonly lockedOut: readonly string[];
  /** Nodes whose latest appraisal in the range refused them and would be affirmed. */
  readonly admitted: readonly string[];
}

/**
 * Replays every appraisal with seq in [from, to] under `policy` (of nodes in `group` when given),
 * and summarises who would be locked out. Nothing is recorded.
 */
export async function dryRunPolicy(store: ReplaySource, policy: Policy, range: { from: number; to: number; group?: string; max?: number }): Promise<PolicyDryRun> {
  if (!Number.isSafeInteger(range.from) || !Number.isSafeInteger(range.to) || range.from < 1 || range.to < range.from) throw new MisuseError('MISUSE_ARGUMENT', 'from and to must be positive integers with from <= to', { field: 'from' });
  const max = range.max ?? 100_000;
  const skipped: Array<{ seq: number; code: string }> = [];
  const changed: Array<{ seq: number; nodeId: string | null; change: string; failures: string[] }> = [];
  const latest = new Map<string, { recorded: string; replayed: string }>();
  let replayed = 0;
  for (let next = range.from; next <= range.to; ) {
    const rows = await store.listDecisions(next, Math.min(10_000, range.to - next + 1));
    if (rows.length === 0) break;
    for (const row of rows) {
      next = row.seq + 1;
      if (row.kind !== 'appraise' || row.seq > range.to) continue;
      if (replayed + skipped.length >= max) throw new MisuseError('MISUSE_ARGUMENT', `the range holds more than ${max} appraisals; narrow it`, { field: 'to' });
      const e = decodeLedgerEntry(row.entry);
      if (range.group !== undefined) {
        // The node's group at the time, from the retained context (skipped when the context is gone).
        try {
          const refs = e.body['inputs'] as CborObject | undefined;
          const ctx = decodeAppraisalContext(await input(store, refs?.['context'], 'context'));
          if (ctx.node?.group !== range.group) continue;
        } catch (err) {
          if (!isVouchError(err)) throw err;
          skipped.push({ seq: row.seq, code: err.code });
          continue;
        }
      }
      let r: ReplayResult;
      try {
        r = await replayEntry(store, e, { policy });
      } catch (err) {
        if (!isVouchError(err)) throw err;
        skipped.push({ seq: row.seq, code: err.code });
        continue;
      }
      replayed++;
      if (r.change !== null) changed.push({ seq: r.seq, nodeId: r.nodeId, change: r.change, failures: r.replayed.failures.map((f) => f.code) });
      if (r.nodeId !== null) latest.set(r.nodeId, { recorded: r.recorded.outcome, replayed: r.replayed.outcome });
    }
  }
  const lockedOut = [...latest].filter(([, v]) => v.recorded === 'affirming' && v.replayed !== 'affirming').map(([k]) => k).sort();
  const admitted = [...latest].filter(([, v]) => v.recorded !== 'affirming' && v.replayed === 'affirming').map(([k]) => k).sort();
  return { policyId: policy.id, policyDigest: policyDigest(policy), from: range.from, to: range.to, replayed, skipped, changed, lockedOut, admitted };
}
