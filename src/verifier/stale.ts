/**
 * The `stale` transition under continuous attestation (issue #7): a trusted node whose
 * re-attestation deadline (last affirming appraisal time + interval × deadline multiple, per its
 * group, see ./nodes.ts) passes becomes stale without any request or decision happening. The
 * watcher notices it at a fixed period and publishes one `stale` event per node per crossing on
 * the event bus (so `GET /v1/events` and the webhooks carry it).
 *
 * How it scales: an in-memory deadline index (node → the appraisal it was trusted by, and its
 * deadline), fed by the bus (`trusted` sets the entry; `untrusted`, `revoked`, `readmitted` and
 * `stale` remove it), plus one scan of the store at start (`listNodes` in pages, then the node's
 * last appraisal and revocation). A check then costs one pass over the index in memory, and store
 * reads only for the nodes whose deadline passed: before publishing, each of those is re-read from
 * the store and its state recomputed with {@link nodeState}, so a node revoked or re-attested
 * through another replica is not announced (its entry is dropped or moved to the new deadline).
 *
 * What it does not do: a node that was already past its deadline when the watcher started crossed
 * it while no watcher ran, and is not announced (GET /v1/nodes shows it stale). A node appraised
 * only by another replica (PostgreSQL) is not in this replica's index: that replica announces it.
 */
import type { Store } from '../store/types.js';
import type { EventBus, NodeEvent } from './events.js';
import { NODE_TIMERS, type HeartbeatTimers } from './heartbeat.js';
import { MisuseError } from '../lib/errors.js';
import type { NodeAdmin, NodeView } from './nodes.js';

/** The timer functions the watcher uses (the heartbeat's); injected in tests. */
export type StaleTimers = HeartbeatTimers;


/** 10 seconds: a stale node is announced at most this late. */
export const DEFAULT_STALE_CHECK_MS = 10_000;

/** Options of {@link StaleWatcher}. */
export interface StaleWatcherOptions {
  readonly store: Store;
  /** Re-attestation per group and the node's state (the same NodeAdmin the admin API uses). */
  readonly nodes: NodeAdmin;
  /** Read for `trusted`/`untrusted`/`revoked`/`readmitted`, written with `stale`. */
  readonly events: EventBus;
  readonly clock: () => number;
  /** Period of the check; default {@link DEFAULT_STALE_CHECK_MS}. */
  readonly periodMs?: number;
  readonly timers?: StaleTimers;
  /** Nodes per `listNodes` page of the initial scan (default 500). */
  readonly pageSize?: number;
  /** Called when a periodic check failed (the next period tries again; no entry is lost). */
  readonly onError?: (e: unknown) => void;
}

/** One index entry: the appraisal that made the node trusted, and when that runs out. */
interface Entry {
  /** Ledger seq of that appraisal. */
  readonly seq: number;
  readonly deadline: number;
}

/** Publishes `stale` events between {@link start} and {@link stop}. */
export class StaleWatcher {
  readonly #o: StaleWatcherOptions;
  readonly #periodMs: number;
  readonly #index = new Map<string, Entry>();
  #unsubscribe: (() => void) | null = null;
  #handle: unknown = null;
  #running: Promise<NodeEvent[]> | null = null;
  /** Nodes the bus told about while the initial scan ran: the bus is newer than the scan's read. */
  #touchedDuringScan: Set<string> | null = null;

  constructor(o: StaleWatcherOptions) {
    const period = o.periodMs ?? DEFAULT_STALE_CHECK_MS;
    if (!Number.isSafeInteger(period) || period < 1000) throw new MisuseError('MISUSE_ARGUMENT', 'the stale check period must be an integer of at least 1000 ms', { field: 'staleCheck.periodMs' });
    const page = o.pageSize ?? 500;
    if (!Number.isSafeInteger(page) || page < 1 || page > 10_000) throw new MisuseError('MISUSE_ARGUMENT', 'the stale scan page size must be an integer 1..10000', { field: 'staleCheck.pageSize' });
    this.#o = o;
    this.#periodMs = period;
  }

  get periodMs(): number {
    return this.#periodMs;
  }

  /** Number of trusted nodes being watched. */
  get size(): number {
    return this.#index.size;
  }

  /** The deadline the watcher holds for `nodeId` (trusted nodes only), or null. */
  deadlineOf(nodeId: string): number | null {
    return this.#index.get(nodeId)?.deadline ?? null;
  }

  /** Subscribes to the bus, scans the store once, then checks every period. */
  async start(): Promise<void> {
    if (this.#unsubscribe !== null) return;
    this.#unsubscribe = this.#o.events.subscribe((e) => this.#onEvent(e));
    this.#touchedDuringScan = new Set();
    try {
      await this.#scan();
    } catch (e) {
      this.#unsubscribe();
      this.#unsubscribe = null;
      this.#index.clear();
      throw e;
    } finally {
      this.#touchedDuringScan = null;
    }
    const timers = this.#o.timers ?? NODE_TIMERS;
    this.#handle = timers.setInterval(() => {
      this.check().catch((e: unknown) => this.#o.onError?.(e));
    }, this.#periodMs);
  }

  /** Stops the timer and the subscription; waits for a check in progress. */
  async stop(): Promise<void> {
    if (this.#handle !== null) (this.#o.timers ?? NODE_TIMERS).clearInterval(this.#handle);
    this.#handle = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    const running = this.#running;
    if (running !== null) await running.catch(() => undefined);
    this.#index.clear();
  }

  /**
   * One check at the clock's now: every watched node whose deadline passed is re-read from the
   * store and, if it is stale there, published. Returns the events published. A check that is
   * already running is joined, never run twice at once.
   */
  check(): Promise<NodeEvent[]> {
    if (this.#running !== null) return this.#running;
    const run = this.#check().finally(() => {
      this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #check(): Promise<NodeEvent[]> {
    const now = this.#o.clock();
    const due: Array<[string, Entry]> = [];
    for (const [nodeId, entry] of this.#index) if (entry.deadline <= now) due.push([nodeId, entry]);
    const out: NodeEvent[] = [];
    for (const [nodeId, entry] of due) {
      // Stopped: no more store reads (the store may be closing).
      if (this.#unsubscribe === null) break;
      const view = await this.#viewOf(nodeId);
      // The bus changed the entry while the store was read: the bus is newer.
      if (this.#index.get(nodeId) !== entry || this.#unsubscribe === null) continue;
      if (view === null || view.state === 'revoked' || view.state === 'untrusted' || view.lastDecision === null || view.deadline === null) {
        this.#index.delete(nodeId);
        continue;
      }
      if (view.state === 'trusted') {
        // Re-attested through another replica: watch the new deadline.
        this.#index.set(nodeId, { seq: view.lastDecision.seq, deadline: view.deadline });
        continue;
      }
      this.#index.delete(nodeId);
      const e: NodeEvent = { type: 'stale', nodeId, group: view.group, seq: view.lastDecision.seq, hash: view.lastDecision.hash, time: view.lastDecision.time, deadline: view.deadline };
      this.#o.events.emit(e);
      out.push(e);
    }
    return out;
  }

  async #viewOf(nodeId: string): Promise<NodeView | null> {
    const node = await this.#o.store.getNode(nodeId);
    return node === null ? null : this.#o.nodes.view(node);
  }

  /** Indexes every node that is trusted now (not those already stale, revoked or untrusted). */
  async #scan(): Promise<void> {
    const size = this.#o.pageSize ?? 500;
    let after: string | null = null;
    for (;;) {
      const page = await this.#o.store.listNodes(after, size);
      const views = await Promise.all(page.filter((n) => n.revokedAt === null).map((n) => this.#o.nodes.view(n)));
      for (const v of views) {
        if (v.state !== 'trusted' || v.lastDecision === null || v.deadline === null) continue;
        if (this.#touchedDuringScan?.has(v.nodeId) === true) continue;
        this.#index.set(v.nodeId, { seq: v.lastDecision.seq, deadline: v.deadline });
      }
      const last = page[page.length - 1];
      if (page.length < size || last === undefined) return;
      after = last.nodeId;
    }
  }

  /** Keeps the index in step with the bus. Never throws (the bus would drop the listener). */
  #onEvent(e: NodeEvent): void {
    this.#touchedDuringScan?.add(e.nodeId);
    if (e.type === 'trusted') {
      const r = this.#o.nodes.reattestationOf(e.group);
      this.#index.set(e.nodeId, { seq: e.seq, deadline: e.time + r.intervalMs * r.deadlineMultiple });
    } else if (e.type !== 'enrolled') {
      // untrusted, revoked, readmitted (untrusted until it attests) and stale: nothing to watch.
      this.#index.delete(e.nodeId);
    }
  }
}
