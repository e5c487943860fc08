/**
 * `vouch tdx tcb-recovery --next <tcb_info.json> [--current <tcb_info.json>] [--data-dir DIR] [--json]`:
 * the operator's warning before Intel's next TCB recovery (or before PCS `update=standard`
 * catches up with `update=early`).
 *
 * - With `--current`: which TCB levels of the current TCB Info would stop being accepted under
 *   the next one (../tdx/collateral.ts tcbRecoveryReport).
 * - With `--data-dir`: the verifier's store, opened read-only, is read in pages; for every node,
 *   its LAST affirming decision that carries TDX claims is re-evaluated under the next TCB Info
 *   from the platform TCB inputs the decision recorded (claims.tdx.platformTcb: PCK SGX TCB,
 *   PCESVN, TEE_TCB_SVN, module identity fields, QE ISVSVN and QE TCB status). A node is affected
 *   when the next TCB Info gives it no status (no level matches, module mismatch), a status other
 *   than UpToDate that differs from the one it was affirmed with, or advisory IDs it did not have.
 *   A decision recorded before the TCB inputs were kept cannot be re-evaluated: its node is
 *   listed as affected (fail closed). Nodes of another FMSPC are not judged by this TCB Info.
 *
 * The TCB Info files are PCS bodies (`{"tcbInfo":…,"signature":…}`); they are parsed strictly but
 * their signatures are not verified: this plans a rollout, it decides nothing. The verifier
 * verifies whatever collateral it later uses.
 *
 * Exit status: 0 nothing affected, 1 some node (or, without --data-dir, some accepted TCB level)
 * is affected, 2 misuse (flags, unreadable or malformed files, FMSPC mismatch), 3 the store
 * cannot be read.
 */
import { fromHex, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError } from '../lib/errors.js';
import type { CborObject, CborValue } from '../lib/cbor.js';
import { decodeLedgerEntry } from '../ledger/index.js';
import { SqliteStore } from '../store/index.js';
import { parseTdxTcbInfoBody, tcbRecoveryReport, type RecoveryLevel, type TdxTcbInfo } from '../tdx/collateral.js';
import { IDENTITY_TCB_STATUSES, convergeTcbStatus, evaluateTdxTcb, type IdentityTcbStatus, type TdxPlatformTcb } from '../tdx/tcb.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

/** Options of {@link tdxTcbRecoveryCommand}. */
export interface TdxTcbRecoveryOptions {
  readonly next?: string;
  readonly current?: string;
  readonly dataDir?: string;
  readonly json?: boolean;
}

/** How one node's last affirming TDX decision fares under the next TCB Info. */
export interface RecoveryNode {
  readonly nodeId: string;
  /** The decision re-evaluated. */
  readonly seq: number;
  readonly time: string;
  /** The TCB status the node was affirmed with. */
  readonly currentStatus: string | null;
  /** The status under the next TCB Info; null when none (see `failures`). */
  readonly nextStatus: string | null;
  readonly advisoryIdsGained: readonly string[];
  /** Failure codes under the next TCB Info, or why the decision cannot be re-evaluated. */
  readonly problems: readonly string[];
  readonly affected: boolean;
}

/** The JSON output of the command. */
export interface TcbRecoveryOutput {
  readonly fmspc: string;
  readonly nextEvaluationDataNumber: number;
  readonly currentEvaluationDataNumber?: number;
  /** With --current: each current level and whether it would stop being accepted (UpToDate). */
  readonly levels?: ReadonlyArray<Omit<RecoveryLevel, 'tcbDate'> & { readonly tcbDate: string }>;
  /** With --data-dir: every node of this FMSPC with an affirming TDX decision. */
  readonly nodes?: readonly RecoveryNode[];
  /** With --data-dir: nodes whose last affirming TDX decision is for another FMSPC. */
  readonly otherFmspcNodes?: number;
  readonly affectedNodes?: readonly string[];
}

const PAGE = 1000;

async function readTcbInfo(path: string, flag: string): Promise<TdxTcbInfo> {
  const bytes = await readArgFile(path, flag);
  try {
    return parseTdxTcbInfoBody(bytes, flag);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    throw new MisuseError('MISUSE_UNSUPPORTED_FORMAT', `${flag} ${path}: not a PCS TDX TCB Info body: ${e.message}`, { field: flag, cause: e });
  }
}

// --- reading the recorded claims (our own ledger, still checked: a bad record is named, never guessed)

function asObject(v: CborValue | undefined): CborObject | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map) ? v : undefined;
}
const asString = (v: CborValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const asInt = (v: CborValue | undefined): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined);
function asStrings(v: CborValue | undefined): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string') return undefined;
    out.push(x);
  }
  return out;
}

/** The recorded platform TCB as evaluation input, with the recorded QE TCB; undefined when absent or malformed. */
function recordedPlatform(rec: CborObject): { platform: TdxPlatformTcb; qeStatus?: IdentityTcbStatus; qeAdvisoryIds: readonly string[] } | undefined {
  const sgx = rec['sgxTcbComponents'];
  const pceSvn = asInt(rec['pceSvn']);
  const hex = ['fmspc', 'pceId', 'teeTcbSvn', 'mrSignerSeam', 'seamAttributes'].map((k) => asString(rec[k]));
  if (!Array.isArray(sgx) || !sgx.every((x) => asInt(x) !== undefined) || pceSvn === undefined || hex.some((x) => x === undefined)) return undefined;
  const [fmspc, pceId, teeTcbSvn, mrSignerSeam, seamAttributes] = hex.map((x, i) => fromHex(x ?? '', `claims.tdx.platformTcb[${i}]`));
  const qe = asString(rec['qeTcbStatus']);
  const qeStatus = (IDENTITY_TCB_STATUSES as readonly string[]).includes(qe ?? '') ? (qe as IdentityTcbStatus) : undefined;
  if (qe !== undefined && qeStatus === undefined) return undefined;
  if (fmspc === undefined || pceId === undefined || teeTcbSvn === undefined || mrSignerSeam === undefined || seamAttributes === undefined) return undefined;
  return {
    platform: { fmspc, pceId, sgxTcbComponents: sgx.map((x) => asInt(x) ?? -1), pceSvn, teeTcbSvn, mrSignerSeam, seamAttributes },
    ...(qeStatus !== undefined ? { qeStatus } : {}),
    qeAdvisoryIds: asStrings(rec['qeAdvisoryIds']) ?? [],
  };
}

interface LastTdxDecision {
  readonly seq: number;
  readonly time: number;
  readonly tdx: CborObject;
}

/** Every node's last affirming decision with TDX claims, read in pages from a read-only store. */
async function lastAffirmingTdx(dataDir: string): Promise<Map<string, LastTdxDecision>> {
  const store = await SqliteStore.open({ dataDir, readOnly: true });
  const last = new Map<string, LastTdxDecision>();
  try {
    for (let from = 1; ; ) {
      const page = await store.listDecisions(from, PAGE);
      for (const row of page) {
        if (row.kind !== 'appraise' || row.outcome !== 'affirming' || row.nodeId === null) continue;
        const body = decodeLedgerEntry(row.entry).body;
        const tdx = asObject(asObject(body['claims'])?.['tdx']);
        if (tdx !== undefined) last.set(row.nodeId, { seq: row.seq, time: row.time, tdx });
      }
      const end = page[page.length - 1];
      if (page.length < PAGE || end === undefined) break;
      from = end.seq + 1;
    }
  } finally {
    await store.close();
  }
  return last;
}

/** Re-evaluates one node's recorded platform under `next`. */
function judgeNode(nodeId: string, d: LastTdxDecision, next: TdxTcbInfo, fmspcHex: string): RecoveryNode | 'other-fmspc' {
  const currentStatus = asString(d.tdx['tcbStatus']) ?? null;
  const currentAdvisories = asStrings(d.tdx['advisoryIds']) ?? [];
  const base = { nodeId, seq: d.seq, time: new Date(d.time).toISOString(), currentStatus };
  const rec = asObject(d.tdx['platformTcb']);
  const recFmspc = asString(rec?.['fmspc']) ?? asString(d.tdx['fmspc']);
  if (recFmspc !== undefined && recFmspc.toLowerCase() !== fmspcHex) return 'other-fmspc';
  let p: ReturnType<typeof recordedPlatform>;
  try {
    p = rec === undefined ? undefined : recordedPlatform(rec);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    p = undefined;
  }
  if (p === undefined) {
    const why = rec === undefined ? 'the decision records no platform TCB inputs (made before they were kept)' : 'the recorded platform TCB inputs do not read';
    return { ...base, nextStatus: null, advisoryIdsGained: [], problems: [why], affected: true };
  }
  let ev: ReturnType<typeof evaluateTdxTcb>;
  try {
    ev = evaluateTdxTcb(next, p.platform);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { ...base, nextStatus: null, advisoryIdsGained: [], problems: [`the recorded platform TCB inputs are out of range: ${e.message}`], affected: true };
  }
  const nextStatus = ev.status === undefined ? null : p.qeStatus !== undefined ? convergeTcbStatus(ev.status, p.qeStatus) : ev.status;
  const nextAdvisories = [...ev.advisoryIds, ...p.qeAdvisoryIds.filter((x) => !ev.advisoryIds.includes(x))];
  const advisoryIdsGained = nextAdvisories.filter((x) => !currentAdvisories.includes(x));
  const problems = ev.failures.map((f) => f.code);
  const affected = nextStatus === null || problems.length > 0 || (nextStatus !== 'UpToDate' && nextStatus !== currentStatus) || advisoryIdsGained.length > 0;
  return { ...base, nextStatus, advisoryIdsGained, problems, affected };
}

function render(o: TcbRecoveryOutput): string {
  const lines: string[] = [];
  const edn = o.currentEvaluationDataNumber !== undefined ? `${o.currentEvaluationDataNumber} → ${o.nextEvaluationDataNumber}` : `next ${o.nextEvaluationDataNumber}`;
  lines.push(`TDX TCB recovery for FMSPC ${o.fmspc} (tcbEvaluationDataNumber ${edn}; TCB Info signatures not verified)`);
  if (o.levels !== undefined) {
    const failing = o.levels.filter((l) => l.wouldFail);
    lines.push(failing.length === 0 ? 'TCB levels: none that is UpToDate now stops being UpToDate' : 'TCB levels that would stop being accepted:');
    for (const l of failing) lines.push(`  level ${l.index} (tcbDate ${l.tcbDate}): ${l.currentStatus} → ${l.nextStatus ?? 'no matching level'}`);
  }
  if (o.nodes !== undefined) {
    const affected = o.nodes.filter((n) => n.affected);
    lines.push(`Nodes (last affirming TDX decision): ${affected.length} of ${o.nodes.length} affected${o.otherFmspcNodes !== undefined && o.otherFmspcNodes > 0 ? `; ${o.otherFmspcNodes} of another FMSPC not judged` : ''}`);
    for (const n of affected) {
      const gained = n.advisoryIdsGained.length > 0 ? `  gains ${n.advisoryIdsGained.join(', ')}` : '';
      const why = n.problems.length > 0 ? `  (${n.problems.join('; ')})` : '';
      lines.push(`  ${n.nodeId}: ${n.currentStatus ?? 'unknown'} → ${n.nextStatus ?? 'not accepted'}${gained}${why}  [decision ${n.seq}, ${n.time}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `vouch tdx tcb-recovery`. */
export async function tdxTcbRecoveryCommand(opts: TdxTcbRecoveryOptions, io: CliIo): Promise<number> {
  if (opts.next === undefined || opts.next.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', '--next <tcb_info.json> is required', { field: '--next' });
  if (opts.current === undefined && opts.dataDir === undefined) {
    throw new MisuseError('MISUSE_ARGUMENT', 'give --current (which TCB levels change) and/or --data-dir (which nodes are affected)', { field: '--data-dir' });
  }
  if (opts.dataDir !== undefined && opts.dataDir.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', '--data-dir needs a path', { field: '--data-dir' });
  const next = await readTcbInfo(opts.next, '--next');
  const current = opts.current === undefined ? undefined : await readTcbInfo(opts.current, '--current');
  const report = current === undefined ? undefined : tcbRecoveryReport(current, next);
  const fmspc = report?.fmspc ?? toHex(next.fmspc);

  let nodes: RecoveryNode[] | undefined;
  let otherFmspcNodes = 0;
  if (opts.dataDir !== undefined) {
    nodes = [];
    const last = await lastAffirmingTdx(opts.dataDir);
    for (const [nodeId, d] of [...last].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const r = judgeNode(nodeId, d, next, fmspc);
      if (r === 'other-fmspc') otherFmspcNodes++;
      else nodes.push(r);
    }
  }
  const out: TcbRecoveryOutput = {
    fmspc,
    nextEvaluationDataNumber: next.tcbEvaluationDataNumber,
    ...(current !== undefined ? { currentEvaluationDataNumber: current.tcbEvaluationDataNumber } : {}),
    ...(report !== undefined ? { levels: report.levels.map((l) => ({ ...l, tcbDate: l.tcbDate.toISOString() })) } : {}),
    ...(nodes !== undefined ? { nodes, otherFmspcNodes, affectedNodes: nodes.filter((n) => n.affected).map((n) => n.nodeId) } : {}),
  };
  io.out(opts.json === true ? `${JSON.stringify(out, null, 2)}\n` : render(out));
  const affected = nodes !== undefined ? nodes.some((n) => n.affected) : (report?.levels ?? []).some((l) => l.wouldFail);
  return affected ? EXIT.rejected : EXIT.ok;
}
