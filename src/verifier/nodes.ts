/**
 * Nodes as operators see them: their state under continuous attestation, and revocation.
 *
 * A node's state follows from the store and the ledger at a given time (injected, never read
 * from the wall clock here):
 *
 * - `revoked`   an operator revoked it (nodes.revoked_at); nothing is issued for it.
 * - `untrusted` its last appraisal refused it, it never attested, or it was re-admitted after a
 *               revocation and has not attested since.
 * - `stale`     its last appraisal affirmed it, but longer ago than its deadline
 *               (re-attestation interval × deadline multiple). Stale is untrusted.
 * - `trusted`   its last appraisal affirmed it, within the deadline.
 */
import { toHex } from '../lib/bytes.js';
import { MisuseError, VerificationError } from '../lib/errors.js';
import type { DecisionRecord, NodeRecord, Store } from '../store/types.js';
import type { EventBus } from './events.js';
import { assertReachesGroup, principalReachesGroup, type Principal } from './auth.js';

/** A node's state under continuous attestation. */
export type NodeState = 'trusted' | 'untrusted' | 'stale' | 'revoked';

/** How often a node must attest, and how late it may be. */
export interface Reattestation {
  /** The node should attest at least this often (milliseconds). */
  readonly intervalMs: number;
  /** It becomes stale `intervalMs × deadlineMultiple` after its last affirming appraisal. */
  readonly deadlineMultiple: number;
}

/** 5 minutes, stale after 3 missed intervals. */
export const DEFAULT_REATTESTATION: Reattestation = { intervalMs: 300_000, deadlineMultiple: 3 };

/** Checks a {@link Reattestation}: positive integers, so no setting silently disables staleness. */
export function checkReattestation(r: Reattestation, field = 'reattestation'): Reattestation {
  if (!Number.isSafeInteger(r.intervalMs) || r.intervalMs < 1000) throw new MisuseError('MISUSE_ARGUMENT', `${field}.intervalMs must be an integer of at least 1000`, { field: `${field}.intervalMs` });
  if (!Number.isSafeInteger(r.deadlineMultiple) || r.deadlineMultiple < 1 || r.deadlineMultiple > 1000) {
    throw new MisuseError('MISUSE_ARGUMENT', `${field}.deadlineMultiple must be an integer 1..1000`, { field: `${field}.deadlineMultiple` });
  }
  return r;
}

/** A ledger position as the API shows it. */
export interface DecisionRef {
  readonly seq: number;
  readonly hash: string;
  readonly kind: string;
  readonly outcome: string;
  readonly time: number;
}

/** A node as the admin API shows it. */
export interface NodeView {
  readonly nodeId: string;
  readonly kind: NodeRecord['kind'];
  readonly group: string;
  readonly enrolledAt: number;
  readonly state: NodeState;
  /** The last appraisal of the node, or null. */
  readonly lastDecision: DecisionRef | null;
  /** When the node should attest next, and when it becomes stale (null before an affirming appraisal). */
  readonly attestDueAt: number | null;
  readonly deadline: number | null;
  readonly revoked: { readonly at: number; readonly reason: string } | null;
}

function ref(d: DecisionRecord | null): DecisionRef | null {
  return d === null ? null : { seq: d.seq, hash: toHex(d.hash), kind: d.kind, outcome: d.outcome, time: d.time };
}

/**
 * The state of `node` at `now`, from its last appraisal and its last revocation-kind decision
 * (revocation or re-admission). Pure.
 */
export function nodeState(
  node: Pick<NodeRecord, 'revokedAt'>,
  lastAppraisal: Pick<DecisionRecord, 'seq' | 'outcome' | 'time'> | null,
  lastRevocation: Pick<DecisionRecord, 'seq'> | null,
  now: number,
  r: Reattestation,
): { state: NodeState; attestDueAt: number | null; deadline: number | null } {
  if (node.revokedAt !== null) return { state: 'revoked', attestDueAt: null, deadline: null };
  // A re-admitted node is trusted again only by an appraisal after its re-admission.
  if (lastAppraisal === null || (lastRevocation !== null && lastRevocation.seq > lastAppraisal.seq)) return { state: 'untrusted', attestDueAt: null, deadline: null };
  if (lastAppraisal.outcome !== 'affirming') return { state: 'untrusted', attestDueAt: null, deadline: null };
  const attestDueAt = lastAppraisal.time + r.intervalMs;
  const deadline = lastAppraisal.time + r.intervalMs * r.deadlineMultiple;
  return { state: now >= deadline ? 'stale' : 'trusted', attestDueAt, deadline };
}

/** What {@link NodeAdmin} needs. */
export interface NodeAdminOptions {
  readonly store: Store;
  readonly clock: () => number;
  /** Re-attestation per group; groups not listed use {@link defaultReattestation}. */
  readonly reattestation?: ReadonlyMap<string, Reattestation>;
  readonly defaultReattestation?: Reattestation;
  /** The tenant each node group belongs to (a group not listed belongs to none). */
  readonly groupTenants?: ReadonlyMap<string, string>;
  /** Where revocations and re-admissions are published (`GET /v1/events`). */
  readonly events?: EventBus;
}

/** The node operations of the admin API; every one is checked against the calling principal. */
export class NodeAdmin {
  readonly #o: NodeAdminOptions;

  constructor(o: NodeAdminOptions) {
    this.#o = o;
    checkReattestation(o.defaultReattestation ?? DEFAULT_REATTESTATION, 'defaultReattestation');
    for (const [g, r] of o.reattestation ?? []) checkReattestation(r, `reattestation.${g}`);
  }

  reattestationOf(group: string): Reattestation {
    return this.#o.reattestation?.get(group) ?? this.#o.defaultReattestation ?? DEFAULT_REATTESTATION;
  }

  /** The node's view at the injected clock's now. */
  async view(node: NodeRecord): Promise<NodeView> {
    const store = this.#o.store;
    const [appraisal, revocation] = await Promise.all([store.lastDecision('appraise', node.nodeId), store.lastDecision('revocation', node.nodeId)]);
    const s = nodeState(node, appraisal, revocation, this.#o.clock(), this.reattestationOf(node.group));
    return {
      nodeId: node.nodeId,
      kind: node.kind,
      group: node.group,
      enrolledAt: node.enrolledAt,
      state: s.state,
      lastDecision: ref(appraisal),
      attestDueAt: s.attestDueAt,
      deadline: s.deadline,
      revoked: node.revokedAt === null || node.revokedReason === null ? null : { at: node.revokedAt, reason: node.revokedReason },
    };
  }

  /** A page of the nodes `p` reaches, ordered by id. */
  async list(p: Principal, after: string | null, limit: number): Promise<{ nodes: NodeView[]; next: string | null }> {
    const page = await this.#o.store.listNodes(after, limit);
    const out: NodeView[] = [];
    for (const n of page) if (principalReachesGroup(p, n.group, this.#o.groupTenants?.get(n.group))) out.push(await this.view(n));
    const last = page[page.length - 1];
    return { nodes: out, next: page.length === limit && last !== undefined ? last.nodeId : null };
  }

  /** One node; 404 APPRAISAL_NODE_UNKNOWN, or 403 AUTH_TENANT_FORBIDDEN when `p` does not reach it. */
  async get(p: Principal, nodeId: string): Promise<NodeRecord> {
    const node = await this.#o.store.getNode(nodeId);
    if (node === null) throw new VerificationError('APPRAISAL_NODE_UNKNOWN', undefined, { field: 'nodeId', actual: nodeId });
    assertReachesGroup(p, node.group, this.#o.groupTenants?.get(node.group));
    return node;
  }

  /**
   * Revokes a node and records a 'revocation' decision (outcome `revoked`). The node row is
   * marked first: should the ledger append then fail, the node stays revoked (fail closed) and
   * the request fails.
   */
  async revoke(p: Principal, nodeId: string, reason: string): Promise<{ node: NodeView; ledger: { seq: number; hash: string } }> {
    const node = await this.get(p, nodeId);
    const now = this.#o.clock();
    const r = await this.#o.store.revokeNode(node.nodeId, reason, now);
    if (!r.ok) {
      if (r.reason === 'unknown') throw new VerificationError('APPRAISAL_NODE_UNKNOWN', undefined, { field: 'nodeId', actual: nodeId });
      throw new MisuseError('NODE_ALREADY_REVOKED', undefined, { field: 'nodeId', actual: nodeId });
    }
    const d = await this.#o.store.appendDecision({ kind: 'revocation', nodeId: node.nodeId, outcome: 'revoked', time: now, body: { group: node.group, reason, by: p.id } });
    this.#o.events?.emit({ type: 'revoked', nodeId: node.nodeId, group: node.group, seq: d.seq, hash: toHex(d.hash), time: now });
    return { node: await this.view(r.node), ledger: { seq: d.seq, hash: toHex(d.hash) } };
  }

  /**
   * Re-admits a revoked node (a 'revocation' decision with outcome `readmitted`). It stays
   * untrusted until its next affirming appraisal.
   */
  async readmit(p: Principal, nodeId: string, reason: string): Promise<{ node: NodeView; ledger: { seq: number; hash: string } }> {
    const node = await this.get(p, nodeId);
    const now = this.#o.clock();
    const r = await this.#o.store.readmitNode(node.nodeId, now);
    if (!r.ok) {
      if (r.reason === 'unknown') throw new VerificationError('APPRAISAL_NODE_UNKNOWN', undefined, { field: 'nodeId', actual: nodeId });
      throw new MisuseError('NODE_NOT_REVOKED', undefined, { field: 'nodeId', actual: nodeId });
    }
    const d = await this.#o.store.appendDecision({ kind: 'revocation', nodeId: node.nodeId, outcome: 'readmitted', time: now, body: { group: node.group, reason, by: p.id } });
    this.#o.events?.emit({ type: 'readmitted', nodeId: node.nodeId, group: node.group, seq: d.seq, hash: toHex(d.hash), time: now });
    return { node: await this.view(r.node), ledger: { seq: d.seq, hash: toHex(d.hash) } };
  }
}
