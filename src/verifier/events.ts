/**
 * Node state changes as they happen (issue #7, "Continuous attestation"): an in-process event bus
 * that the verifier service and the node admin emit into, and that `GET /v1/events` streams as
 * server-sent events. One bus per service instance (no global registry); delivery is synchronous
 * and a listener that throws is removed, so a broken subscriber never blocks a decision.
 */

/**
 * What happened to a node. `stale` is published by the stale watcher (./stale.ts) when a trusted
 * node's re-attestation deadline passes; every other type by the decision that caused it.
 */
export const NODE_EVENT_TYPES = ['enrolled', 'trusted', 'untrusted', 'stale', 'revoked', 'readmitted'] as const;

/** What happened to a node. */
export type NodeEventType = (typeof NODE_EVENT_TYPES)[number];

/** One state change, with the ledger position of the decision that caused it. */
export interface NodeEvent {
  readonly type: NodeEventType;
  readonly nodeId: string;
  readonly group: string;
  /**
   * Ledger sequence number and hash (hex) of the decision. For `stale` no decision is recorded:
   * these are the node's last (affirming) appraisal, the decision whose freshness ran out.
   */
  readonly seq: number;
  readonly hash: string;
  /** Decision time, epoch milliseconds (for `stale`, the time of that appraisal). */
  readonly time: number;
  /** `stale` only: the deadline that passed (appraisal time + interval × deadline multiple), epoch milliseconds. */
  readonly deadline?: number;
}

/** A subscriber. */
export type NodeEventListener = (e: NodeEvent) => void;

/** The in-process bus. */
export class EventBus {
  readonly #listeners = new Set<NodeEventListener>();

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: NodeEventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Delivers `e` to every listener, in subscription order. */
  emit(e: NodeEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch {
        // A subscriber that cannot take an event is dropped; the decision is already recorded.
        this.#listeners.delete(l);
      }
    }
  }
}
