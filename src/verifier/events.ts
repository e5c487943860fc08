/**
 * Node state changes as they happen (issue #7, "Continuous attestation"): an in-process event bus
 * that the verifier service and the node admin emit into, and that `GET /v1/events` streams as
 * server-sent events. One bus per service instance (no global registry); delivery is synchronous
 * and a listener that throws is removed, so a broken subscriber never blocks a decision.
 */

/** What happened to a node. */
export type NodeEventType = 'enrolled' | 'trusted' | 'untrusted' | 'revoked' | 'readmitted';

/** One state change, with the ledger position of the decision that caused it. */
export interface NodeEvent {
  readonly type: NodeEventType;
  readonly nodeId: string;
  readonly group: string;
  /** Ledger sequence number and hash (hex) of the decision. */
  readonly seq: number;
  readonly hash: string;
  /** Decision time, epoch milliseconds. */
  readonly time: number;
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
