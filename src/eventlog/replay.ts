/**
 * Event-log replay (PFP §10.2: a PCR is the hash chain of the digests extended into it) and its
 * comparison with quoted PCR values.
 *
 * Replay proves the digests of the log and nothing else: an event's type and data are trusted only
 * where the data is itself the measured bytes (see claims.ts). Rules applied:
 * - every PCR starts at zero, except PCR 0 when an EV_NO_ACTION "StartupLocality" event precedes
 *   every PCR 0 measurement: PCR 0 then starts at 00..00 || locality (PFP §10.4.5.3, H-CRTM);
 * - EV_NO_ACTION events are never extended (PFP §10.4.1);
 * - a PCR counts as covered by the log only when at least one event extends it; a PCR relied on
 *   without coverage is a failure (EVENTLOG_PCR_NOT_COVERED), whatever its value;
 * - firmware quirks are applied only when named by the caller, only where the strict replay
 *   fails, and the comparison records which were used.
 */
import { createHash } from 'node:crypto';
import { bytesEqual, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { algName, hashById } from '../tpm/abi/constants.js';
import type { PcrValues } from '../tpm/verify/quote.js';
import { parseEventLog, type EventLog, type TcgEvent } from './abi.js';
import { EBS_INVOCATION, EBS_SUCCESS, EV, eventTypeName, STARTUP_LOCALITY_SIGNATURE } from './constants.js';

/**
 * Named firmware quirks a caller may allow.
 * - `ebs-missing`: firmware that extends the two ExitBootServices EV_EFI_ACTION events into PCR 5
 *   without logging them (seen on real machines). Allowed, PCR 5 may equal the replay followed by
 *   the extension of "Exit Boot Services Invocation" and "Exit Boot Services Returned with Success",
 *   when the log holds neither event.
 */
export const QUIRKS = ['ebs-missing'] as const;
export type Quirk = (typeof QUIRKS)[number];

/** Checks quirk names given as text (CLI, policy) and returns them typed. */
export function parseQuirks(names: readonly string[]): Quirk[] {
  const out: Quirk[] = [];
  for (const n of names) {
    const q = QUIRKS.find((k) => k === n);
    if (q === undefined) throw new MisuseError('MISUSE_ARGUMENT', `unknown event-log quirk "${n}" (known: ${QUIRKS.join(', ')})`);
    if (!out.includes(q)) out.push(q);
  }
  return out;
}

/** A value a PCR would have if a quirk applied. */
export interface QuirkValue {
  readonly quirk: Quirk;
  readonly hashAlg: number;
  readonly pcr: number;
  readonly value: Uint8Array;
}

/** A bank, or a PCR of a bank, that the log cannot replay. */
export interface ReplayGap {
  readonly hashAlg: number;
  /** Absent when the whole bank cannot be replayed (an algorithm vouch cannot compute). */
  readonly pcr?: number;
  readonly reason: string;
}

/** Options of {@link replayEventLog}. */
export interface ReplayOptions {
  /** Quirks whose alternative values are computed (they are used only by the comparison). */
  readonly quirks?: readonly Quirk[];
}

/** The strict replay of a log. */
export interface ReplayResult {
  readonly log: EventLog;
  /** TPM_ALG_ID → PCR index → value, for every PCR the log extends in a bank it can replay. */
  readonly pcrs: PcrValues;
  /** The events extended into each PCR, in log order (EV_NO_ACTION events excluded). */
  readonly eventsByPcr: ReadonlyMap<number, readonly TcgEvent[]>;
  /** The locality of TPM2_Startup when a StartupLocality event set PCR 0's initial value. */
  readonly startupLocality?: number;
  readonly gaps: readonly ReplayGap[];
  /** Alternative values for the quirks asked for (only where a quirk can apply). */
  readonly quirkValues: readonly QuirkValue[];
}

const LOCALITY_SIG = new TextEncoder().encode(STARTUP_LOCALITY_SIGNATURE);

/** The locality of a StartupLocality event, or undefined when `e` is not one. */
function startupLocalityOf(e: TcgEvent): number | undefined {
  const d = e.untrustedData;
  if (e.untrustedType !== EV.NO_ACTION || e.pcr !== 0 || d.length !== LOCALITY_SIG.length + 1) return undefined;
  for (let i = 0; i < LOCALITY_SIG.length; i++) if (d[i] !== LOCALITY_SIG[i]) return undefined;
  return d[LOCALITY_SIG.length];
}

/** Extends `pcr` by `digest`: H(pcr || digest). */
function extend(nodeName: string, pcr: Uint8Array, digest: Uint8Array): Uint8Array {
  return createHash(nodeName).update(pcr).update(digest).digest();
}

function textEquals(data: Uint8Array, s: string): boolean {
  if (data.length !== s.length) return false;
  for (let i = 0; i < s.length; i++) if (data[i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * Replays every bank of the log. Never throws for a well-formed log; banks and PCRs it cannot
 * replay are listed in `gaps`.
 */
export function replayEventLog(log: EventLog, opts: ReplayOptions = {}): ReplayResult {
  const gaps: ReplayGap[] = [];
  const eventsByPcr = new Map<number, TcgEvent[]>();
  let startupLocality: number | undefined;
  let pcr0Extended = false;
  const extended: TcgEvent[] = [];
  for (const e of log.untrustedEvents) {
    if (log.format === 'crypto-agile' && e.index === 0) continue; // the Spec ID event
    if (e.untrustedType === EV.NO_ACTION) {
      const loc = startupLocalityOf(e);
      // Only the first one, and only before anything is measured into PCR 0, sets its start value.
      if (loc !== undefined && startupLocality === undefined && !pcr0Extended) startupLocality = loc;
      continue;
    }
    if (e.pcr === 0) pcr0Extended = true;
    extended.push(e);
    let list = eventsByPcr.get(e.pcr);
    if (list === undefined) eventsByPcr.set(e.pcr, (list = []));
    list.push(e);
  }

  const pcrs = new Map<number, Map<number, Uint8Array>>();
  for (const hashAlg of log.banks) {
    const h = hashById(hashAlg);
    if (h === undefined) {
      gaps.push({ hashAlg, reason: `the log's algorithm ${algName(hashAlg)} cannot be computed here` });
      continue;
    }
    const values = new Map<number, Uint8Array>();
    const broken = new Set<number>();
    for (const e of extended) {
      if (broken.has(e.pcr)) continue;
      let digest: Uint8Array | undefined;
      for (const d of e.digests) if (d.hashAlg === hashAlg) digest = d.digest;
      if (digest === undefined) {
        broken.add(e.pcr);
        values.delete(e.pcr);
        gaps.push({ hashAlg, pcr: e.pcr, reason: `event ${e.index} (${eventTypeName(e.untrustedType)}) carries no ${h.name} digest` });
        continue;
      }
      let cur = values.get(e.pcr);
      if (cur === undefined) {
        cur = new Uint8Array(h.size);
        if (e.pcr === 0 && startupLocality !== undefined) cur[h.size - 1] = startupLocality;
      }
      values.set(e.pcr, extend(h.nodeName, cur, digest));
    }
    pcrs.set(hashAlg, values);
  }

  const quirkValues: QuirkValue[] = [];
  const quirks = opts.quirks ?? [];
  if (quirks.includes('ebs-missing')) {
    const pcr5 = eventsByPcr.get(5) ?? [];
    const logged = pcr5.some((e) => e.untrustedType === EV.EFI_ACTION && (textEquals(e.untrustedData, EBS_INVOCATION) || textEquals(e.untrustedData, EBS_SUCCESS)));
    if (!logged) {
      for (const [hashAlg, values] of pcrs) {
        const cur = values.get(5);
        if (cur === undefined) continue;
        const h = hashById(hashAlg)!;
        const a = extend(h.nodeName, cur, createHash(h.nodeName).update(EBS_INVOCATION).digest());
        quirkValues.push({ quirk: 'ebs-missing', hashAlg, pcr: 5, value: extend(h.nodeName, a, createHash(h.nodeName).update(EBS_SUCCESS).digest()) });
      }
    }
  }

  return { log, pcrs, eventsByPcr, ...(startupLocality !== undefined ? { startupLocality } : {}), gaps, quirkValues };
}

/** A short, display-only view of an event (its data is untrusted). */
export interface EventSummary {
  readonly index: number;
  readonly offset: number;
  readonly type: string;
  /** The event's digest in the bank concerned, hex. */
  readonly digest?: string;
  /** Up to 64 bytes of the data: printable text when it is text, else hex. */
  readonly untrustedData: string;
}

/** Display-only rendering of event data: ASCII or UTF-16LE text when printable, else hex. */
export function shortData(d: Uint8Array, max = 64): string {
  const cut = d.subarray(0, max);
  const more = d.length > max ? `… (${d.length} bytes)` : '';
  const printable = (c: number): boolean => (c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a;
  let trimmed = cut;
  while (trimmed.length > 0 && trimmed[trimmed.length - 1] === 0) trimmed = trimmed.subarray(0, trimmed.length - 1);
  if (trimmed.length > 0 && trimmed.every(printable)) return JSON.stringify(String.fromCharCode(...trimmed)) + more;
  if (trimmed.length >= 2) {
    let ok = true;
    let s = '';
    for (let i = 0; i + 1 < trimmed.length; i += 2) {
      const c = trimmed[i]! | (trimmed[i + 1]! << 8);
      if (!printable(c)) ok = false;
      s += String.fromCharCode(c);
    }
    if (ok && trimmed.length % 2 === 0) return `u${JSON.stringify(s)}${more}`;
    if (ok && trimmed.length % 2 === 1 && trimmed[trimmed.length - 1]! < 0x80 && printable(trimmed[trimmed.length - 1]!)) {
      return `u${JSON.stringify(s + String.fromCharCode(trimmed[trimmed.length - 1]!))}${more}`;
    }
  }
  return toHex(cut) + more;
}

/** Display-only summary of an event in bank `hashAlg`. */
export function summarizeEvent(e: TcgEvent, hashAlg?: number): EventSummary {
  const d = hashAlg === undefined ? undefined : e.digests.find((x) => x.hashAlg === hashAlg);
  return {
    index: e.index,
    offset: e.offset,
    type: eventTypeName(e.untrustedType),
    ...(d !== undefined ? { digest: toHex(d.digest) } : {}),
    untrustedData: shortData(e.untrustedData),
  };
}

/** One failed PCR of a comparison. */
export interface PcrFailure extends Failure {
  readonly hashAlg: number;
  /** Bank name ("sha256"). */
  readonly bank: string;
  /** Absent for a failure about a whole bank. */
  readonly pcr?: number;
  /** Replayed value, hex (absent when the log does not cover the PCR). */
  readonly replayed?: string;
  /** Quoted value, hex (absent when the quote lacks the PCR). */
  readonly quoted?: string;
  /** The last events extended into the PCR (up to 5), most recent last. */
  readonly lastEvents: readonly EventSummary[];
}

/** Options of {@link compareWithQuote}. */
export interface CompareOptions {
  /**
   * The PCRs relied on. Each must be quoted, extended by the log and equal to its replay, in every
   * bank compared. Default: every PCR the log extends.
   */
  readonly pcrs?: readonly number[];
  /**
   * The banks relied on (TPM_ALG_IDs). Each must be in the log and in the quote. Default: the
   * banks the log and the quote have in common (at least one).
   */
  readonly banks?: readonly number[];
  /** Quirks allowed; each must also have been given to {@link replayEventLog}. */
  readonly quirks?: readonly Quirk[];
}

/** The comparison of a replay with quoted PCR values. */
export interface EventLogComparison {
  readonly ok: boolean;
  readonly failures: readonly PcrFailure[];
  /** The (bank, PCR) pairs that matched: only events of these PCRs are proven by the quote. */
  readonly matched: readonly { readonly hashAlg: number; readonly pcr: number }[];
  /** The quirks that were needed for a match (empty when the strict replay matched). */
  readonly quirksApplied: readonly Quirk[];
}

const bankName = (hashAlg: number): string => hashById(hashAlg)?.name ?? algName(hashAlg);

/**
 * Compares a replay with quoted PCR values (already verified by {@link verifyQuote}) and returns
 * every failing PCR with the bank, the replayed and quoted values and the last events of the PCR.
 */
export function compareWithQuote(replayed: ReplayResult, quoted: PcrValues, opts: CompareOptions = {}): EventLogComparison {
  const failures: PcrFailure[] = [];
  const matched: { hashAlg: number; pcr: number }[] = [];
  const quirksApplied: Quirk[] = [];
  const allowed = opts.quirks ?? [];
  const logBanks = replayed.log.banks;
  const banks = opts.banks ?? logBanks.filter((b) => quoted.has(b));
  const last = (pcr: number, hashAlg: number): EventSummary[] => (replayed.eventsByPcr.get(pcr) ?? []).slice(-5).map((e) => summarizeEvent(e, hashAlg));

  if (banks.length === 0) {
    failures.push({
      ...failure('EVENTLOG_PCR_NOT_COVERED', {
        field: 'pcrs',
        message: 'the event log and the quote have no PCR bank in common',
        expected: logBanks.map(bankName).join(', '),
        actual: [...quoted.keys()].map(bankName).join(', ') || '(none)',
      }),
      hashAlg: 0,
      bank: '(none)',
      lastEvents: [],
    });
  }
  const relied = opts.pcrs ?? [...replayed.eventsByPcr.keys()].sort((a, b) => a - b);
  for (const hashAlg of banks) {
    const bank = bankName(hashAlg);
    const values = replayed.pcrs.get(hashAlg);
    const q = quoted.get(hashAlg);
    if (values === undefined || q === undefined) {
      const why = values === undefined ? (logBanks.includes(hashAlg) ? `the log's ${bank} bank cannot be replayed` : `the event log has no ${bank} bank`) : `the quote has no ${bank} bank`;
      failures.push({ ...failure('EVENTLOG_PCR_NOT_COVERED', { field: `pcrs.${bank}`, message: why }), hashAlg, bank, lastEvents: [] });
      continue;
    }
    for (const pcr of relied) {
      const field = `pcrs.${bank}[${pcr}]`;
      const r = values.get(pcr);
      const qv = q.get(pcr);
      if (qv === undefined) {
        failures.push({
          ...failure('TPM_QUOTE_PCR_VALUES_MISSING', { field, message: `PCR ${pcr} of the ${bank} bank is relied on but not quoted` }),
          hashAlg,
          bank,
          pcr,
          ...(r !== undefined ? { replayed: toHex(r) } : {}),
          lastEvents: last(pcr, hashAlg),
        });
        continue;
      }
      if (r === undefined) {
        const gap = replayed.gaps.find((g) => g.hashAlg === hashAlg && g.pcr === pcr);
        failures.push({
          ...failure('EVENTLOG_PCR_NOT_COVERED', {
            field,
            message: gap !== undefined ? `PCR ${pcr} (${bank}) cannot be replayed: ${gap.reason}` : `PCR ${pcr} (${bank}) is relied on but no event of the log extends it`,
            actual: toHex(qv),
          }),
          hashAlg,
          bank,
          pcr,
          quoted: toHex(qv),
          lastEvents: last(pcr, hashAlg),
        });
        continue;
      }
      if (bytesEqual(r, qv)) {
        matched.push({ hashAlg, pcr });
        continue;
      }
      const alt = replayed.quirkValues.find((v) => v.hashAlg === hashAlg && v.pcr === pcr && allowed.includes(v.quirk) && bytesEqual(v.value, qv));
      if (alt !== undefined) {
        matched.push({ hashAlg, pcr });
        if (!quirksApplied.includes(alt.quirk)) quirksApplied.push(alt.quirk);
        continue;
      }
      failures.push({
        ...failure('EVENTLOG_REPLAY_MISMATCH', { field, message: `PCR ${pcr} (${bank}) replays to ${toHex(r)}, the quote has ${toHex(qv)}`, expected: toHex(qv), actual: toHex(r) }),
        hashAlg,
        bank,
        pcr,
        replayed: toHex(r),
        quoted: toHex(qv),
        lastEvents: last(pcr, hashAlg),
      });
    }
  }
  return { ok: failures.length === 0, failures, matched, quirksApplied };
}

declare const verifiedBrand: unique symbol;

/** A log whose replay matched a quote; only {@link verifyEventLog} makes one. */
export interface VerifiedEventLog {
  readonly [verifiedBrand]: true;
  readonly log: EventLog;
  readonly replay: ReplayResult;
  /** The (bank, PCR) pairs proven by the quote. */
  readonly matched: readonly { readonly hashAlg: number; readonly pcr: number }[];
  readonly quirksApplied: readonly Quirk[];
}

/** Options of {@link verifyEventLog}. */
export type VerifyEventLogOptions = CompareOptions;

/** The outcome of {@link verifyEventLog}: `verified` is present only when `ok`. */
export interface EventLogVerification {
  readonly ok: boolean;
  /** Parse failures, or the PCR failures of the comparison. */
  readonly failures: readonly Failure[];
  readonly comparison?: EventLogComparison;
  readonly replay?: ReplayResult;
  readonly quirksApplied: readonly Quirk[];
  readonly verified?: VerifiedEventLog;
}

/**
 * Parses, replays and compares an event log with quoted PCR values (which the caller has verified
 * with {@link verifyQuote}). Never throws for bad evidence: a log that does not parse is a failure
 * with its PARSE_* code.
 */
export function verifyEventLog(log: Uint8Array | EventLog, quoted: PcrValues, opts: VerifyEventLogOptions = {}): EventLogVerification {
  let parsed: EventLog;
  try {
    parsed = log instanceof Uint8Array ? parseEventLog(log) : log;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { ok: false, failures: [failureFromError(e)], quirksApplied: [] };
  }
  const replay = replayEventLog(parsed, { quirks: opts.quirks ?? [] });
  const comparison = compareWithQuote(replay, quoted, opts);
  if (!comparison.ok) return { ok: false, failures: comparison.failures, comparison, replay, quirksApplied: comparison.quirksApplied };
  // The brand exists only in the type: this is the one place a VerifiedEventLog is made.
  const verified = { log: parsed, replay, matched: comparison.matched, quirksApplied: comparison.quirksApplied } as unknown as VerifiedEventLog;
  return { ok: true, failures: [], comparison, replay, quirksApplied: comparison.quirksApplied, verified };
}
