/**
 * `vouch ledger verify|prove|check-proof|export` and `vouch replay`: the lineage ledger offline,
 * from a verifier's database (SQLite data directory, read-only, or PostgreSQL) or from an export
 * file, with no verifier running.
 */
import { createReadStream, createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fromBase64Url, toBase64Url, toHex } from '../lib/bytes.js';
import { MisuseError, isVouchError } from '../lib/errors.js';
import { decodeLedgerEntry } from '../ledger/entry.js';
import { CheckpointKeys, decodeCheckpoint, type CheckpointKey } from '../ledger/checkpoint.js';
import { exportCheckpointLine, exportEntryLine, exportHeaderLine, exportInputLine, readExport, type ExportInput } from '../ledger/export.js';
import { MerkleTree, verifyMerkleConsistency, verifyMerkleInclusion, merkleLeafHash } from '../ledger/merkle.js';
import { verifyLedger, type LedgerVerification } from '../ledger/verify.js';
import type { ChainRow } from '../ledger/chain.js';
import { parsePolicy } from '../policy/index.js';
import type { DecisionRecord, PolicyRecord, RetainedInput, Store } from '../store/types.js';
import { dryRunPolicy, replayDecision, type ReplaySource } from '../verifier/replay.js';
import { EXIT, type CliIo } from './main.js';

/** Where the ledger is read from. */
export interface LedgerSourceOptions {
  dataDir?: string;
  databaseUrl?: string;
  fromExport?: string;
}

async function openStore(o: LedgerSourceOptions): Promise<Store> {
  if (o.databaseUrl !== undefined && o.dataDir !== undefined) throw new MisuseError('MISUSE_ARGUMENT', '--data-dir and --database-url exclude each other');
  if (o.databaseUrl !== undefined) {
    const { PostgresStore } = await import('../store/postgres.js');
    return PostgresStore.open({ url: o.databaseUrl });
  }
  const { SqliteStore } = await import('../store/sqlite.js');
  return SqliteStore.open({ dataDir: o.dataDir ?? '.vouch/verifier', readOnly: true });
}

async function* storeRows(store: Store): AsyncGenerator<DecisionRecord> {
  for (let next = 1; ; ) {
    const rows = await store.listDecisions(next, 10_000);
    yield* rows;
    if (rows.length < 10_000) return;
    next = (rows[rows.length - 1] as DecisionRecord).seq + 1;
  }
}

async function allCheckpoints(store: Store): Promise<string[]> {
  const out: string[] = [];
  for (let next = 1; ; ) {
    const cs = await store.listCheckpoints(next, 10_000);
    out.push(...cs.map((c) => c.jws));
    if (cs.length < 10_000) return out;
    next = (cs[cs.length - 1]?.treeSize ?? next) + 1;
  }
}

function lines(file: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(file), crlfDelay: Infinity });
}

/** A JWKS file's keys (for --jwks): `{ keys: [...] }`. */
function readJwks(file: string): CheckpointKey[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `--jwks ${file} is not a readable JSON file`, { cause: e });
  }
  const keys = (v as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kid?: unknown }).kid === 'string')) {
    throw new MisuseError('MISUSE_ARGUMENT', `--jwks ${file} is not a JWKS ({"keys": [{kid, kty, crv, x, …}]})`);
  }
  return keys as CheckpointKey[];
}

/** An export loaded for replay: entries (by seq), inputs and policies in memory. */
class ExportSource implements ReplaySource {
  /** Ascending by seq (loadExport sorts them; replay never trusts their position in the file). */
  readonly rows: DecisionRecord[] = [];
  readonly bySeq = new Map<number, DecisionRecord>();
  readonly inputs = new Map<string, ExportInput>();
  async getDecision(seq: number): Promise<DecisionRecord | null> {
    return this.bySeq.get(seq) ?? null;
  }
  async getInput(digest: string): Promise<RetainedInput | null> {
    const i = this.inputs.get(digest);
    return i === undefined ? null : { digest, kind: i.kind, bytes: i.bytes, storedAt: i.storedAt, prunedAt: i.bytes === null ? i.storedAt : null };
  }
  async getPolicy(digest: string): Promise<PolicyRecord | null> {
    const i = this.inputs.get(digest);
    if (i === undefined || i.kind !== 'policy' || i.bytes === null) return null;
    const document = new TextDecoder('utf-8', { fatal: true }).decode(i.bytes);
    return { digest, policyId: parsePolicy(document, 'json').id, document, createdAt: i.storedAt };
  }
  async listDecisions(fromSeq: number, limit: number): Promise<DecisionRecord[]> {
    // The first row with seq >= fromSeq, by binary search.
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.rows[mid] as DecisionRecord).seq < fromSeq) lo = mid + 1;
      else hi = mid;
    }
    return this.rows.slice(lo, lo + limit);
  }
}

async function loadExport(file: string): Promise<ExportSource> {
  const src = new ExportSource();
  for await (const rec of readExport(lines(file))) {
    if (rec.t === 'entry') {
      const e = decodeLedgerEntry(rec.row.entry);
      src.rows.push({ seq: rec.row.seq, kind: e.kind, nodeId: e.node, outcome: e.outcome, time: e.time, entry: rec.row.entry, prevHash: e.prev, hash: rec.row.hash });
    } else if (rec.t === 'input') src.inputs.set(rec.input.digest, rec.input);
  }
  src.rows.sort((a, b) => a.seq - b.seq);
  for (const r of src.rows) src.bySeq.set(r.seq, r);
  return src;
}

function report(io: CliIo, v: LedgerVerification, json: boolean, source: string): void {
  const { tree: _tree, ...rest } = v;
  if (json) {
    io.out(`${JSON.stringify({ source, ...rest })}\n`);
    return;
  }
  io.out(`${source}: ${v.entries} entries, head #${v.head.seq} ${v.head.hash}\n`);
  io.out(`  Merkle root of all entries ${v.root}\n`);
  io.out(`  checkpoints: ${v.checkpoints.verified}/${v.checkpoints.total} verified (keys: ${v.keys.source === 'pinned' ? 'pinned by --jwks' : 'recorded in the ledger; pin them with --jwks'})${v.checkpoints.witnesses > 0 ? `, ${v.checkpoints.witnesses} witness` : ''}\n`);
  if (v.checkpoints.latest !== null) io.out(`  latest signed tree head: size ${v.checkpoints.latest.treeSize}, root ${v.checkpoints.latest.rootHash}, ${new Date(v.checkpoints.latest.time).toISOString()}\n`);
  if (v.unanchored > 0) io.out(`  ${v.unanchored} entries after the latest checkpoint are chained but not yet under a signed root\n`);
  for (const p of v.chain) io.out(`  ${p.code} at entry ${p.seq}: ${p.message}${p.expected !== undefined ? ` (expected ${p.expected}, actual ${p.actual ?? '?'})` : ''}\n`);
  for (const p of v.checkpoints.problems) io.out(`  ${p.code}${p.treeSize !== undefined ? ` at tree size ${p.treeSize}` : ''}: ${p.message}${p.expected !== undefined ? ` (expected ${p.expected}, actual ${p.actual ?? '?'})` : ''}\n`);
  io.out(v.ok ? '  OK: the chain, the tree and every checkpoint verify\n' : '  FAILED\n');
}

/** `vouch ledger verify`. */
export async function ledgerVerifyCommand(o: LedgerSourceOptions & { jwks?: string; witness: string[]; json?: boolean }, io: CliIo): Promise<number> {
  const pinned = o.jwks !== undefined ? readJwks(o.jwks) : undefined;
  const witnesses = o.witness.map((f) => readFileSync(f, 'utf8').trim());
  let v: LedgerVerification;
  let source: string;
  if (o.fromExport !== undefined) {
    if (o.dataDir !== undefined || o.databaseUrl !== undefined) throw new MisuseError('MISUSE_ARGUMENT', '--from-export excludes --data-dir and --database-url');
    const checkpoints: string[] = [];
    const file = o.fromExport;
    async function* rows(): AsyncGenerator<ChainRow> {
      for await (const rec of readExport(lines(file))) {
        if (rec.t === 'entry') yield rec.row;
        else if (rec.t === 'checkpoint') checkpoints.push(rec.jws);
      }
    }
    v = await verifyLedger({ rows: rows(), checkpoints, witnesses, ...(pinned !== undefined ? { pinnedKeys: pinned } : {}) });
    source = `export ${file}`;
  } else {
    const store = await openStore(o);
    try {
      const checkpoints = await allCheckpoints(store);
      v = await verifyLedger({ rows: storeRows(store), checkpoints, witnesses, ...(pinned !== undefined ? { pinnedKeys: pinned } : {}) });
      source = o.databaseUrl !== undefined ? 'PostgreSQL ledger' : `ledger in ${o.dataDir ?? '.vouch/verifier'}`;
    } finally {
      await store.close();
    }
  }
  report(io, v, o.json === true, source);
  return v.ok ? EXIT.ok : EXIT.rejected;
}

/** `vouch ledger export`: entries, checkpoints, retained inputs and policies, one JSON object per line. */
export async function ledgerExportCommand(o: LedgerSourceOptions & { out?: string; inputs: boolean; verifierId: string }, io: CliIo): Promise<number> {
  const store = await openStore(o);
  const out: WriteStream | null = o.out === undefined ? null : createWriteStream(o.out, { mode: 0o600 });
  const write = (s: string): void => {
    if (out !== null) out.write(`${s}\n`);
    else io.out(`${s}\n`);
  };
  try {
    const head = await store.ledgerHead();
    const checkpoints = await allCheckpoints(store);
    const inputs: ExportInput[] = [];
    if (o.inputs) {
      for (let after: string | null = null; ; ) {
        const page: RetainedInput[] = await store.listInputs(after, 10_000);
        for (const i of page) inputs.push({ digest: i.digest, kind: i.kind, storedAt: i.storedAt, bytes: i.bytes });
        if (page.length < 10_000) break;
        after = (page[page.length - 1] as RetainedInput).digest;
      }
      // The policies the decisions name, so `vouch replay --from-export` needs nothing else.
      const seen = new Set<string>();
      for await (const row of storeRows(store)) {
        // Only appraisals name a policy: the row's kind says so without decoding the others.
        if (row.kind !== 'appraise') continue;
        const d = decodeLedgerEntry(row.entry).body['policyDigest'];
        if (typeof d === 'string' && !seen.has(d)) {
          seen.add(d);
          const p = await store.getPolicy(d);
          if (p !== null) inputs.push({ digest: p.digest, kind: 'policy', storedAt: p.createdAt, bytes: new TextEncoder().encode(p.document) });
        }
      }
    }
    const entries = head?.seq ?? 0;
    write(exportHeaderLine({ verifierId: o.verifierId, exportedAt: Date.now(), entries, checkpoints: checkpoints.length, inputs: inputs.length }));
    let n = 0;
    for await (const row of storeRows(store)) {
      if (row.seq > entries) break;
      write(exportEntryLine(row));
      n++;
    }
    if (n !== entries) throw new MisuseError('MISUSE_ARGUMENT', `the ledger changed during the export (${n} of ${entries} entries)`);
    for (const c of checkpoints) write(exportCheckpointLine(c));
    for (const i of inputs) write(exportInputLine(i));
    io.err(`exported ${entries} entries, ${checkpoints.length} checkpoints, ${inputs.length} inputs${o.out !== undefined ? ` to ${o.out}` : ''}\n`);
  } finally {
    if (out !== null) await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
    await store.close();
  }
  return EXIT.ok;
}

/** `vouch ledger prove <seq>`: an inclusion proof bundle under a stored checkpoint (or a consistency proof). */
export async function ledgerProveCommand(seqText: string, o: LedgerSourceOptions & { treeSize?: string; consistency?: boolean }, io: CliIo): Promise<number> {
  const seq = Number(seqText);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new MisuseError('MISUSE_ARGUMENT', 'seq must be a positive integer');
  const store = await openStore(o);
  try {
    const checkpoints = (await allCheckpoints(store)).map((j) => decodeCheckpoint(j));
    // The tree of the stored entries (the proof's reader checks it against the signed root).
    const tree = new MerkleTree();
    for await (const row of storeRows(store)) tree.append(merkleLeafHash(row.entry));
    const want = o.treeSize === undefined ? undefined : Number(o.treeSize);
    const pick = (size: number | undefined, atLeast: number) =>
      size !== undefined ? checkpoints.find((c) => c.head.treeSize === size) : checkpoints.filter((c) => c.head.treeSize >= atLeast).sort((a, b) => b.head.treeSize - a.head.treeSize)[0];
    if (o.consistency === true) {
      const to = pick(want, seq);
      const from = checkpoints.find((c) => c.head.treeSize === seq);
      if (from === undefined || to === undefined) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no checkpoints of tree sizes ${seq} and ${want ?? '(latest)'}`);
      io.out(`${JSON.stringify({ from: { treeSize: from.head.treeSize, checkpoint: from.jws }, to: { treeSize: to.head.treeSize, checkpoint: to.jws }, path: tree.consistencyProof(from.head.treeSize, to.head.treeSize).map(toHex) })}\n`);
      return EXIT.ok;
    }
    const c = pick(want, seq);
    const row = await store.getDecision(seq);
    if (row === null) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no ledger entry ${seq}`);
    if (c === undefined || c.head.treeSize < seq) throw new MisuseError('LEDGER_SEQ_UNKNOWN', `no checkpoint covers entry ${seq} yet (ask the running verifier: POST /v1/ledger/checkpoints)`);
    const proof = { seq, leafIndex: seq - 1, treeSize: c.head.treeSize, entry: toBase64Url(row.entry), hash: toHex(row.hash), leafHash: toHex(merkleLeafHash(row.entry)), path: tree.inclusionProof(seq - 1, c.head.treeSize).map(toHex), checkpoint: c.jws };
    io.out(`${JSON.stringify(proof)}\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

/**
 * `vouch ledger check-proof FILE --jwks FILE`: a relying party's check of an inclusion (or
 * consistency) proof: the checkpoint's signature with a pinned key, the entry's hash (the
 * `vouch.ledger.hash` of an artifact, with --hash), and the path to the signed root.
 */
export async function ledgerCheckProofCommand(file: string, o: { jwks: string; hash?: string; json?: boolean }, io: CliIo): Promise<number> {
  const keys = new CheckpointKeys();
  for (const k of readJwks(o.jwks)) keys.add(k);
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `${file} is not a readable JSON proof`, { cause: e });
  }
  const problems: string[] = [];
  const hexList = (v: unknown): Uint8Array[] => (Array.isArray(v) && v.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h)) ? v.map((h: string) => new Uint8Array(Buffer.from(h, 'hex'))) : []);
  const checkCp = (jws: unknown): ReturnType<typeof decodeCheckpoint> | null => {
    const r = keys.verify(typeof jws === 'string' ? jws : '');
    if (!r.ok) {
      problems.push(`${r.code}: ${r.message}`);
      return null;
    }
    return r.checkpoint;
  };
  if ('from' in p && 'to' in p) {
    const a = checkCp((p['from'] as { checkpoint?: unknown }).checkpoint);
    const b = checkCp((p['to'] as { checkpoint?: unknown }).checkpoint);
    if (a !== null && b !== null) {
      const r = verifyMerkleConsistency(a.head.treeSize, b.head.treeSize, hexList(p['path']), a.head.rootHash, b.head.rootHash);
      if (!r.ok) problems.push(`${r.code}: ${r.message}`);
    }
  } else {
    const c = checkCp(p['checkpoint']);
    let entry: Uint8Array | null = null;
    try {
      entry = fromBase64Url(String(p['entry']), 'entry');
    } catch {
      problems.push('the proof has no base64url entry');
    }
    if (entry !== null && c !== null) {
      const hash = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', entry)));
      if (hash !== p['hash']) problems.push(`LEDGER_HASH_MISMATCH: the entry hashes to ${hash}, the proof says ${String(p['hash'])}`);
      if (o.hash !== undefined && o.hash !== hash) problems.push(`LEDGER_HASH_MISMATCH: the entry is not the decision ${o.hash} (its hash is ${hash})`);
      const seq = decodeLedgerEntry(entry).seq;
      if (seq !== p['seq']) problems.push(`LEDGER_SEQUENCE_GAP: the entry is seq ${seq}, the proof says ${String(p['seq'])}`);
      const r = verifyMerkleInclusion(seq - 1, c.head.treeSize, merkleLeafHash(entry), hexList(p['path']), c.head.rootHash);
      if (!r.ok) problems.push(`${r.code}: ${r.message}`);
    }
  }
  if (o.json === true) io.out(`${JSON.stringify({ ok: problems.length === 0, problems })}\n`);
  else io.out(problems.length === 0 ? 'OK: the proof leads to a checkpoint signed by a pinned key\n' : `FAILED:\n${problems.map((x) => `  ${x}\n`).join('')}`);
  return problems.length === 0 ? EXIT.ok : EXIT.rejected;
}

/** `vouch replay <seq> [--policy FILE]` and `vouch replay --from N --to M --policy FILE`. */
export async function replayCommand(seqText: string | undefined, o: LedgerSourceOptions & { policy?: string; from?: string; to?: string; group?: string; json?: boolean }, io: CliIo): Promise<number> {
  const policy = o.policy === undefined ? undefined : parsePolicy(readFileSync(o.policy, 'utf8'), o.policy.endsWith('.json') ? 'json' : 'yaml');
  let src: ReplaySource;
  let close = async (): Promise<void> => {};
  if (o.fromExport !== undefined) src = await loadExport(o.fromExport);
  else {
    const store = await openStore(o);
    src = store;
    close = () => store.close();
  }
  try {
    if (seqText === undefined) {
      if (policy === undefined || o.from === undefined || o.to === undefined) throw new MisuseError('MISUSE_ARGUMENT', 'give a seq, or --from N --to M --policy FILE for a dry run over a range');
      const r = await dryRunPolicy(src, policy, { from: Number(o.from), to: Number(o.to), ...(o.group !== undefined ? { group: o.group } : {}) });
      if (o.json === true) io.out(`${JSON.stringify(r)}\n`);
      else {
        io.out(`policy ${r.policyId} (sha256:${r.policyDigest}) over entries ${r.from}..${r.to}: ${r.replayed} appraisals replayed, ${r.changed.length} would change, ${r.skipped.length} not replayable\n`);
        for (const c of r.changed) io.out(`  #${c.seq} ${c.nodeId ?? '-'}: ${c.change}${c.failures.length > 0 ? ` (${c.failures.join(', ')})` : ''}\n`);
        io.out(`  locked out: ${r.lockedOut.length === 0 ? 'nobody' : r.lockedOut.join(', ')}\n`);
        if (r.admitted.length > 0) io.out(`  newly admitted: ${r.admitted.join(', ')}\n`);
      }
      return EXIT.ok;
    }
    const seq = Number(seqText);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new MisuseError('MISUSE_ARGUMENT', 'seq must be a positive integer');
    const r = await replayDecision(src, seq, policy !== undefined ? { policy } : {});
    if (o.json === true) io.out(`${JSON.stringify(r)}\n`);
    else if (r.dryRun) {
      io.out(`#${r.seq} ${r.nodeId ?? '-'} at ${new Date(r.time).toISOString()}: recorded ${r.recorded.outcome}; under ${r.replayed.policyId} it would be ${r.replayed.outcome}${r.change !== null ? ` (${r.change})` : ' (unchanged)'}\n`);
      for (const f of r.replayed.failures) io.out(`  ${f.code}${f.field !== undefined ? ` ${f.field}` : ''}${f.expected !== undefined ? ` expected ${f.expected}` : ''}${f.actual !== undefined ? ` actual ${f.actual}` : ''}\n`);
    } else {
      io.out(`#${r.seq} ${r.nodeId ?? '-'} at ${new Date(r.time).toISOString()}: recorded ${r.recorded.outcome}, replayed ${r.replayed.outcome}\n`);
      io.out(`  recorded result digest ${r.recorded.resultDigest}\n  replayed result digest ${r.replayed.resultDigest}${r.commitFailures.length > 0 ? ` + commit-time failures ${r.commitFailures.join(', ')}` : ''}\n`);
      io.out(r.identical ? '  IDENTICAL\n' : '  REPLAY_MISMATCH: the re-evaluated decision differs from the recorded one\n');
    }
    return r.identical || r.dryRun ? EXIT.ok : EXIT.rejected;
  } catch (e) {
    if (isVouchError(e) && (e.code === 'REPLAY_NOT_REPLAYABLE' || e.code === 'REPLAY_INPUT_MISSING' || e.code === 'REPLAY_INPUT_PRUNED')) {
      io.err(`${e.code}: ${e.message}\n`);
      return e.code === 'REPLAY_NOT_REPLAYABLE' ? EXIT.misuse : EXIT.unavailable;
    }
    throw e;
  } finally {
    await close();
  }
}
