/**
 * The verifier's own liveness: a 'heartbeat' decision appended to the ledger at a fixed period.
 * A relying party that requires a recent heartbeat (GET /v1/heartbeat) notices a verifier that
 * died, instead of trusting the last artifacts it issued for ever.
 */
import { toHex } from '../lib/bytes.js';
import { MisuseError } from '../lib/errors.js';
import type { Store } from '../store/types.js';

/** The timer functions the heartbeat uses; injected in tests. */
export interface HeartbeatTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Node's interval timers, unref'd: a periodic task (heartbeat, stale check, checkpoints) alone does not keep the process alive. */
export const NODE_TIMERS: HeartbeatTimers = {
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval(h) {
    clearInterval(h as ReturnType<typeof setInterval>);
  },
};

/** Options of {@link Heartbeat}. */
export interface HeartbeatOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly verifierId: string;
  readonly periodMs: number;
  readonly timers?: HeartbeatTimers;
  /** Called when a beat could not be recorded (the next period tries again). */
  readonly onError?: (e: unknown) => void;
}

/** The last heartbeat as GET /v1/heartbeat answers it. */
export interface HeartbeatView {
  readonly seq: number;
  readonly hash: string;
  readonly time: number;
}

/** Appends a heartbeat decision every `periodMs` between {@link start} and {@link stop}. */
export class Heartbeat {
  readonly #o: HeartbeatOptions;
  #handle: unknown = null;

  constructor(o: HeartbeatOptions) {
    if (!Number.isSafeInteger(o.periodMs) || o.periodMs < 1000) throw new MisuseError('MISUSE_ARGUMENT', 'the heartbeat period must be an integer of at least 1000 ms', { field: 'heartbeat.periodMs' });
    this.#o = o;
  }

  get periodMs(): number {
    return this.#o.periodMs;
  }

  /** Records one heartbeat now. */
  async beat(): Promise<HeartbeatView> {
    const time = this.#o.clock();
    const d = await this.#o.store.appendDecision({ kind: 'heartbeat', nodeId: null, outcome: 'alive', time, body: { verifierId: this.#o.verifierId, periodMs: this.#o.periodMs } });
    return { seq: d.seq, hash: toHex(d.hash), time };
  }

  /** Records a heartbeat now, then one every period. */
  async start(): Promise<void> {
    if (this.#handle !== null) return;
    await this.beat();
    const timers = this.#o.timers ?? NODE_TIMERS;
    this.#handle = timers.setInterval(() => {
      this.beat().catch((e: unknown) => this.#o.onError?.(e));
    }, this.#o.periodMs);
  }

  stop(): void {
    if (this.#handle === null) return;
    (this.#o.timers ?? NODE_TIMERS).clearInterval(this.#handle);
    this.#handle = null;
  }
}

/** The last recorded heartbeat, or null. */
export async function lastHeartbeat(store: Store): Promise<HeartbeatView | null> {
  const d = await store.lastDecision('heartbeat');
  return d === null ? null : { seq: d.seq, hash: toHex(d.hash), time: d.time };
}
