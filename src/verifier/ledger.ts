/**
 * The verifier's side of the lineage ledger's Merkle layer: an in-memory RFC 9162 tree of the
 * stored entries (brought up to date from the store before each use, so several replicas on one
 * database each see the whole ledger), signed checkpoints at a fixed period and on demand, and
 * inclusion and consistency proofs.
 *
 * Checkpoints are signed with the artifact keyring; the key is recorded in the ledger (a
 * `trust-anchor` decision) before the first checkpoint it signs, so the tree head of that
 * checkpoint covers the key's record. Two replicas signing the same tree size keep the first
 * (the store's rule); both are heads of the same tree.
 */
import { toBase64Url, toHex } from '../lib/bytes.js';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { MerkleTree, merkleLeafHash } from '../ledger/merkle.js';
import { decodeCheckpoint, signCheckpoint } from '../ledger/checkpoint.js';
import type { CheckpointRecord, DecisionRecord, Store } from '../store/types.js';
import { NODE_TIMERS, type HeartbeatTimers } from './heartbeat.js';

/** An inclusion proof as the API answers it (hex hashes, base64url entry). */
export interface InclusionProofView {
  readonly seq: number;
  /** RFC 9162 leaf index: seq - 1. */
  readonly leafIndex: number;
  readonly treeSize: number;
  /** The entry's exact bytes (canonical CBOR, base64url): SHA-256 of them is the decision's ledger hash. */
  readonly entry: string;
  /** SHA-256 of the entry bytes (the `vouch.ledger.hash` an artifact carries). */
  readonly hash: string;
  /** SHA-256(0x00 ‖ entry). */
  readonly leafHash: string;
  readonly path: readonly string[];
  /** The signed checkpoint of `treeSize` whose root the path leads to. */
  readonly checkpoint: string;
}

/** A consistency proof between two checkpoints. */
export interface ConsistencyProofView {
  readonly from: { readonly treeSize: number; readonly checkpoint: string };
  readonly to: { readonly treeSize: number; readonly checkpoint: string };
  readonly path: readonly string[];
}

/** Options of {@link LedgerService}. */
export interface LedgerServiceOptions {
  readonly store: Store;
  readonly signer: { signCompact(payload: Uint8Array): Promise<string> };
  readonly clock: () => number;
  readonly verifierId: string;
  /** Records the keyring's signing keys in the ledger (VerifierService.recordSigningKeys), before each checkpoint. */
  readonly recordSigningKeys: () => Promise<void>;
}

const PAGE = 10_000;

export class LedgerService {
  readonly #o: LedgerServiceOptions;
  readonly #tree = new MerkleTree();
  /** The running sync, so concurrent callers share one read of the new rows. */
  #syncing: Promise<void> | null = null;
  /** The running checkpoint, for the same reason. */
  #signing: Promise<CheckpointRecord | null> | null = null;

  constructor(o: LedgerServiceOptions) {
    this.#o = o;
  }

  /** Entries the in-memory tree holds. */
  get size(): number {
    return this.#tree.size;
  }

  /** Brings the tree up to the store's ledger head (reads only the rows it lacks). */
  async sync(): Promise<number> {
    if (this.#syncing === null) {
      this.#syncing = (async () => {
        for (;;) {
          const rows: DecisionRecord[] = await this.#o.store.listDecisions(this.#tree.size + 1, PAGE);
          for (const r of rows) {
            // The store hands rows in seq order from size + 1; anything else is a damaged ledger.
            if (r.seq !== this.#tree.size + 1) throw new UnavailableError('STORE_UNAVAILABLE', `ledger: expected entry ${this.#tree.size + 1}, the store returned ${r.seq}`);
            this.#tree.append(merkleLeafHash(r.entry));
          }
          if (rows.length < PAGE) return;
        }
      })().finally(() => {
        this.#syncing = null;
      });
    }
    await this.#syncing;
    return this.#tree.size;
  }

  /**
   * Signs a checkpoint of the whole ledger now, unless the latest stored checkpoint already
   * covers every entry; returns the latest checkpoint (null for an empty ledger).
   */
  async checkpoint(): Promise<CheckpointRecord | null> {
    if (this.#signing === null) {
      this.#signing = this.#checkpoint().finally(() => {
        this.#signing = null;
      });
    }
    return this.#signing;
  }

  async #checkpoint(): Promise<CheckpointRecord | null> {
    await this.#o.recordSigningKeys();
    const size = await this.sync();
    const latest = await this.#o.store.latestCheckpoint();
    if (size === 0) return latest;
    if (latest !== null && latest.treeSize >= size) return latest;
    const rootHash = this.#tree.root(size);
    const time = this.#o.clock();
    const jws = await signCheckpoint(this.#o.signer, { verifierId: this.#o.verifierId, treeSize: size, rootHash, time });
    const kid = decodeCheckpoint(jws).kid;
    return this.#o.store.putCheckpoint({ treeSize: size, rootHash, signedAt: time, kid, jws });
  }

  /** The checkpoint of exactly `treeSize`, or the first stored one covering `atLeast`; signs one if none does. */
  async #checkpointCovering(atLeast: number, treeSize?: number): Promise<CheckpointRecord> {
    if (treeSize !== undefined) {
      const [c] = await this.#o.store.listCheckpoints(treeSize, 1);
      if (c === undefined || c.treeSize !== treeSize) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no checkpoint has tree size ${treeSize}`, { field: 'treeSize', actual: String(treeSize) });
      return c;
    }
    const latest = await this.#o.store.latestCheckpoint();
    if (latest !== null && latest.treeSize >= atLeast) return latest;
    const made = await this.checkpoint();
    if (made === null || made.treeSize < atLeast) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no ledger entry ${atLeast} yet`, { field: 'seq', actual: String(atLeast) });
    return made;
  }

  /**
   * The inclusion proof of entry `seq` under the checkpoint of `treeSize` (default the latest
   * checkpoint, signed on demand when none covers `seq` yet).
   *
   * @throws MisuseError LEDGER_SEQ_UNKNOWN for an entry that does not exist
   */
  async inclusionProof(seq: number, treeSize?: number): Promise<InclusionProofView> {
    if (!Number.isSafeInteger(seq) || seq < 1) throw new MisuseError('MISUSE_ARGUMENT', 'seq must be a positive integer', { field: 'seq' });
    const row = await this.#o.store.getDecision(seq);
    if (row === null) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no ledger entry ${seq}`, { field: 'seq', actual: String(seq) });
    const c = await this.#checkpointCovering(seq, treeSize);
    if (c.treeSize < seq) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `the checkpoint of tree size ${c.treeSize} does not cover entry ${seq}`, { field: 'treeSize' });
    await this.sync();
    const path = this.#tree.inclusionProof(seq - 1, c.treeSize).map(toHex);
    return { seq, leafIndex: seq - 1, treeSize: c.treeSize, entry: toBase64Url(row.entry), hash: toHex(row.hash), leafHash: toHex(merkleLeafHash(row.entry)), path, checkpoint: c.jws };
  }

  /** The consistency proof between the checkpoints of `from` and `to` (default the latest). */
  async consistencyProof(from: number, to?: number): Promise<ConsistencyProofView> {
    const a = await this.#checkpointCovering(from, from);
    const b = to === undefined ? await this.#checkpointCovering(from) : await this.#checkpointCovering(to, to);
    if (a.treeSize > b.treeSize) throw new MisuseError('MISUSE_ARGUMENT', 'from must not be larger than to', { field: 'from' });
    await this.sync();
    return { from: { treeSize: a.treeSize, checkpoint: a.jws }, to: { treeSize: b.treeSize, checkpoint: b.jws }, path: this.#tree.consistencyProof(a.treeSize, b.treeSize).map(toHex) };
  }
}

/** Decodes a proof's hex path (for clients and tests). */
export function proofPath(path: readonly string[]): Uint8Array[] {
  return path.map((h) => {
    if (!/^[0-9a-f]{64}$/.test(h)) throw new MisuseError('MISUSE_ARGUMENT', 'a proof path holds 64-hex-digit hashes', { field: 'path' });
    return new Uint8Array(Buffer.from(h, 'hex'));
  });
}

/** Signs a checkpoint every `periodMs` while the ledger grew (and prunes retained inputs when asked). */
export class CheckpointTimer {
  readonly #ledger: LedgerService;
  readonly #periodMs: number;
  readonly #timers: HeartbeatTimers;
  readonly #onError: (e: unknown) => void;
  readonly #every: (() => Promise<void>) | undefined;
  #handle: unknown = null;

  constructor(o: { ledger: LedgerService; periodMs: number; timers?: HeartbeatTimers; onError?: (e: unknown) => void; alsoEachPeriod?: () => Promise<void> }) {
    if (!Number.isSafeInteger(o.periodMs) || o.periodMs < 1000) throw new MisuseError('MISUSE_ARGUMENT', 'the checkpoint period must be an integer of at least 1000 ms', { field: 'checkpoint.periodMs' });
    this.#ledger = o.ledger;
    this.#periodMs = o.periodMs;
    this.#timers = o.timers ?? NODE_TIMERS;
    this.#onError = o.onError ?? (() => undefined);
    this.#every = o.alsoEachPeriod;
  }

  start(): void {
    if (this.#handle !== null) return;
    this.#handle = this.#timers.setInterval(() => {
      this.#ledger.checkpoint().then(
        () => this.#every?.(),
        (e: unknown) => this.#onError(e),
      ).catch((e: unknown) => this.#onError(e));
    }, this.#periodMs);
  }

  stop(): void {
    if (this.#handle === null) return;
    this.#timers.clearInterval(this.#handle);
    this.#handle = null;
  }
}
