/**
 * The TDX event log: the ACPI CCEL table ("CC Event Log", ACPI 6.5 §5.2.34; Linux
 * `struct acpi_table_ccel` in include/acpi/actbl2.h) and the log area it names, a TCG PC Client
 * crypto-agile log of SHA-384 digests (UEFI 2.10 §38 "Confidential Computing"), replayed to
 * RTMR0–RTMR3 and compared with the RTMRs of a quote.
 *
 * ```
 * CCEL table (56 bytes, little-endian)
 * 0x00 Signature "CCEL"   0x04 Length u32 (56)   0x08 Revision u8 (1)   0x09 Checksum u8 (all bytes sum to 0)
 * 0x0A OEMID [6]   0x10 OEM Table ID [8]   0x18 OEM Revision u32   0x1C Creator ID [4]   0x20 Creator Revision u32
 * 0x24 CC Type u8 (2: Intel TDX)   0x25 CC Subtype u8 (0)   0x26 Reserved u16
 * 0x28 LAML u64 (log area minimum length)   0x30 LASA u64 (log area start address)
 *
 * Log area (LAML bytes)
 *   TCG_PCR_EVENT   MRIndex u32 (0, or 1 as TDVF writes it), EV_NO_ACTION, digest[20] = 0, Spec ID Event03 (SHA-384)
 *   TCG_PCR_EVENT2  MRIndex u32, EventType u32, TPML_DIGEST_VALUES (with SHA-384), EventSize u32, Event
 *   …
 *   0xFF … 0xFF     the unused rest of the area
 * ```
 *
 * The PCRIndex field of a CCEL record holds the CC measurement register index (UEFI 2.10 §38.4.1):
 * 1 → RTMR0 (PCR 1 and 7, and TDVF's PCR 0 events), 2 → RTMR1 (PCR 2–6), 3 → RTMR2 (PCR 8–15),
 * 4 → RTMR3. Index 0 is MRTD, which the TDX module builds from the initial TD pages: no logged
 * event extends it, so a record that is not EV_NO_ACTION must name 1–4. Each RTMR starts at zero
 * and is extended as SHA-384(RTMR || digest); an RTMR no event extends stays zero.
 *
 * Replay proves the SHA-384 digests of the RTMRs that match a verified quote, and nothing else;
 * claims taken from event data need the digest to be the hash of that data ({@link ccelClaims}).
 */
import { createHash } from 'node:crypto';
import { bytesEqual, concatBytes, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, type ErrorCode } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { Reader, Writer } from '../lib/reader.js';
import { decodeSpecIdEvent, EVENTLOG_LIMITS, type EventDigest, type EventLog, type SpecIdEvent, type TcgEvent } from '../eventlog/abi.js';
import { EV, eventTypeName, GUID } from '../eventlog/constants.js';
import { replayEventLog, shortData, summarizeEvent, type EventSummary } from '../eventlog/replay.js';
import { decodeUefiImageLoadEvent, decodeUefiVariableData, devicePathFile } from '../eventlog/uefi.js';

// ---------------------------------------------------------------------------------------------
// The ACPI table

/** Size of a revision 1 CCEL table. */
export const CCEL_TABLE_SIZE = 56;
/** ACPI table signature. */
export const CCEL_SIGNATURE = 'CCEL';
/** CC Type of Intel TDX (ACPI 6.5 Table 5.160: 1 AMD SEV, 2 Intel TDX). */
export const CCEL_CC_TYPE_TDX = 2;
/** TPM_ALG_SHA384: the bank of the RTMRs. */
export const CCEL_HASH_ALG_SHA384 = 0x000c;
/** Size of an RTMR (SHA-384). */
export const RTMR_SIZE = 48;
/** Number of RTMRs. */
export const RTMR_COUNT = 4;

/** One field of the table layout. */
export interface CcelFieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: 'u8' | 'u16' | 'u32' | 'u64' | 'bytes' | 'reserved';
}

/** The CCEL table layout, in order, covering the 56 bytes exactly. */
export const CCEL_TABLE_LAYOUT: readonly CcelFieldLayout[] = [
  { name: 'Signature', offset: 0x00, size: 4, kind: 'bytes' },
  { name: 'Length', offset: 0x04, size: 4, kind: 'u32' },
  { name: 'Revision', offset: 0x08, size: 1, kind: 'u8' },
  { name: 'Checksum', offset: 0x09, size: 1, kind: 'u8' },
  { name: 'OEMID', offset: 0x0a, size: 6, kind: 'bytes' },
  { name: 'OEMTableID', offset: 0x10, size: 8, kind: 'bytes' },
  { name: 'OEMRevision', offset: 0x18, size: 4, kind: 'u32' },
  { name: 'CreatorID', offset: 0x1c, size: 4, kind: 'bytes' },
  { name: 'CreatorRevision', offset: 0x20, size: 4, kind: 'u32' },
  { name: 'CCType', offset: 0x24, size: 1, kind: 'u8' },
  { name: 'CCSubtype', offset: 0x25, size: 1, kind: 'u8' },
  { name: 'Reserved', offset: 0x26, size: 2, kind: 'reserved' },
  { name: 'LAML', offset: 0x28, size: 8, kind: 'u64' },
  { name: 'LASA', offset: 0x30, size: 8, kind: 'u64' },
];

/** A CCEL table (the signature, length and checksum are implied). */
export interface CcelTable {
  readonly revision: number;
  readonly oemId: Uint8Array;
  readonly oemTableId: Uint8Array;
  readonly oemRevision: number;
  readonly creatorId: Uint8Array;
  readonly creatorRevision: number;
  readonly ccType: number;
  readonly ccSubtype: number;
  /** Log Area Minimum Length: the size of the log area. */
  readonly laml: bigint;
  /** Log Area Start Address (guest physical). */
  readonly lasa: bigint;
}

/** A decoded table with its checksum and exact bytes. */
export interface DecodedCcelTable extends CcelTable {
  readonly checksum: number;
  readonly raw: Uint8Array;
}

const SIG_BYTES = new TextEncoder().encode(CCEL_SIGNATURE);

/**
 * Decodes the ACPI CCEL table (/sys/firmware/acpi/tables/CCEL): signature "CCEL", length 56 equal
 * to the input, revision 1, bytes summing to zero, CC type 2 (TDX) subtype 0, reserved zero.
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_BAD_MAGIC, PARSE_BAD_VALUE,
 *   PARSE_RESERVED_NONZERO, TDX_CCEL_CHECKSUM_INVALID
 */
export function decodeCcelTable(bytes: Uint8Array): DecodedCcelTable {
  if (!(bytes instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', 'a CCEL table must be bytes');
  const r = new Reader(bytes, 'CCEL');
  const sigAt = r.offset;
  const sig = r.bytes(4, 'Signature');
  if (!bytesEqual(sig, SIG_BYTES)) throw r.error('PARSE_BAD_MAGIC', 'Signature', 'is not "CCEL"', { at: sigAt, expected: toHex(SIG_BYTES), actual: toHex(sig) });
  const lenAt = r.offset;
  const length = r.u32('Length', 'le');
  if (length !== CCEL_TABLE_SIZE || bytes.length !== CCEL_TABLE_SIZE) {
    throw r.error(bytes.length < CCEL_TABLE_SIZE ? 'PARSE_TRUNCATED' : 'PARSE_BAD_VALUE', 'Length', `the table is ${bytes.length} bytes and its Length field says ${length}; a revision 1 CCEL table is ${CCEL_TABLE_SIZE}`, {
      at: lenAt,
      expected: String(CCEL_TABLE_SIZE),
      actual: `${length} (input ${bytes.length} bytes)`,
    });
  }
  const revAt = r.offset;
  const revision = r.u8('Revision');
  if (revision !== 1) throw r.error('PARSE_BAD_VALUE', 'Revision', `revision ${revision} is not supported`, { at: revAt, expected: '1', actual: String(revision) });
  const checksum = r.u8('Checksum');
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  if (sum !== 0) {
    throw r.error('TDX_CCEL_CHECKSUM_INVALID', 'Checksum', `the table bytes sum to 0x${sum.toString(16).padStart(2, '0')} modulo 256`, {
      at: 9,
      expected: `0x${((checksum - sum) & 0xff).toString(16).padStart(2, '0')}`,
      actual: `0x${checksum.toString(16).padStart(2, '0')}`,
    });
  }
  const oemId = r.bytes(6, 'OEMID');
  const oemTableId = r.bytes(8, 'OEMTableID');
  const oemRevision = r.u32('OEMRevision', 'le');
  const creatorId = r.bytes(4, 'CreatorID');
  const creatorRevision = r.u32('CreatorRevision', 'le');
  const typeAt = r.offset;
  const ccType = r.u8('CCType');
  if (ccType !== CCEL_CC_TYPE_TDX) {
    throw r.error('PARSE_BAD_VALUE', 'CCType', `CC type ${ccType}${ccType === 1 ? ' (AMD SEV)' : ''} is not Intel TDX`, { at: typeAt, expected: String(CCEL_CC_TYPE_TDX), actual: String(ccType) });
  }
  const subAt = r.offset;
  const ccSubtype = r.u8('CCSubtype');
  if (ccSubtype !== 0) throw r.error('PARSE_BAD_VALUE', 'CCSubtype', `CC subtype ${ccSubtype} is not defined for TDX`, { at: subAt, expected: '0', actual: String(ccSubtype) });
  r.reserved(2, 'Reserved');
  const laml = r.u64('LAML', 'le');
  const lasa = r.u64('LASA', 'le');
  r.finish();
  return { revision, oemId, oemTableId, oemRevision, creatorId, creatorRevision, ccType, ccSubtype, laml, lasa, checksum, raw: bytes };
}

function needTable(cond: boolean, what: string): void {
  if (!cond) throw new MisuseError('MISUSE_ARGUMENT', `encodeCcelTable: ${what}`);
}

/**
 * Encodes a CCEL table: the exact inverse of {@link decodeCcelTable}, with the checksum computed.
 *
 * @throws MisuseError MISUSE_ARGUMENT when a field does not fit
 */
export function encodeCcelTable(t: CcelTable): Uint8Array {
  needTable(t.oemId.length === 6 && t.oemTableId.length === 8 && t.creatorId.length === 4, 'OEMID is 6 bytes, OEM Table ID 8, Creator ID 4');
  for (const [k, v] of [
    ['revision', t.revision],
    ['ccType', t.ccType],
    ['ccSubtype', t.ccSubtype],
  ] as const) {
    needTable(Number.isInteger(v) && v >= 0 && v <= 0xff, `${k} is a u8`);
  }
  for (const [k, v] of [
    ['oemRevision', t.oemRevision],
    ['creatorRevision', t.creatorRevision],
  ] as const) {
    needTable(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `${k} is a u32`);
  }
  needTable(t.laml >= 0n && t.laml < 1n << 64n && t.lasa >= 0n && t.lasa < 1n << 64n, 'LAML and LASA are u64');
  const w = new Writer(CCEL_TABLE_SIZE);
  w.bytes(SIG_BYTES).u32(CCEL_TABLE_SIZE, 'le').u8(t.revision).u8(0);
  w.bytes(t.oemId).bytes(t.oemTableId).u32(t.oemRevision, 'le').bytes(t.creatorId).u32(t.creatorRevision, 'le');
  w.u8(t.ccType).u8(t.ccSubtype).u16(0, 'le').u64(t.laml, 'le').u64(t.lasa, 'le');
  const out = w.finish();
  let sum = 0;
  for (const b of out) sum = (sum + b) & 0xff;
  out[9] = (0x100 - sum) & 0xff;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The log area

/** A parsed, not yet verified CCEL log. */
export interface CcelLog {
  /** The table, when one was given (its LAML is the area's length). */
  readonly table?: DecodedCcelTable;
  /** The records in the shape of src/eventlog: `pcr` holds the MR index (1–4 → RTMR0–3). */
  readonly log: EventLog;
  /** Bytes of the area the records use; the rest is 0xFF padding. */
  readonly logBytes: number;
  readonly paddingBytes: number;
  /** The whole area as given. */
  readonly area: Uint8Array;
}

const LEGACY_HEADER = 32; // MRIndex + EventType + digest[20] + EventSize

function eventSize(r: Reader, field: string): number {
  const at = r.offset;
  const size = r.u32(field, 'le');
  if (size > EVENTLOG_LIMITS.maxEventBytes) {
    throw r.error('PARSE_SIZE_EXCEEDED', field, `event size ${size} exceeds the maximum ${EVENTLOG_LIMITS.maxEventBytes}`, { at, expected: `<= ${EVENTLOG_LIMITS.maxEventBytes}`, actual: String(size) });
  }
  if (size > r.remaining) {
    throw r.error('PARSE_TRUNCATED', field, `event size ${size} exceeds the ${r.remaining} bytes left in the log area`, { at, expected: `<= ${r.remaining}`, actual: String(size) });
  }
  return size;
}

/** The first record: TCG_PCR_EVENT carrying the Spec ID event, which must declare SHA-384. */
function readSpecIdRecord(r: Reader): { event: TcgEvent; specId: SpecIdEvent } {
  const mrAt = r.offset;
  const mr = r.u32('event[0].MRIndex', 'le');
  if (mr !== 0 && mr !== 1) {
    throw r.error('PARSE_BAD_VALUE', 'event[0].MRIndex', `the Spec ID event is logged under MR index ${mr}`, { at: mrAt, expected: '0 | 1', actual: String(mr) });
  }
  const typeAt = r.offset;
  const type = r.u32('event[0].EventType', 'le');
  if (type !== EV.NO_ACTION) {
    throw r.error('PARSE_BAD_MAGIC', 'event[0].EventType', 'the first record of a CCEL log is not the EV_NO_ACTION Spec ID event', { at: typeAt, expected: eventTypeName(EV.NO_ACTION), actual: eventTypeName(type) });
  }
  const dAt = r.offset;
  const digest = r.bytes(20, 'event[0].Digest');
  if (digest.some((b) => b !== 0)) throw r.error('PARSE_BAD_VALUE', 'event[0].Digest', 'the Spec ID event carries a zero digest', { at: dAt, expected: '00'.repeat(20), actual: toHex(digest) });
  const size = eventSize(r, 'event[0].EventSize');
  const dataAt = r.absoluteOffset;
  const data = r.bytes(size, 'event[0].Event');
  // TCG_EfiSpecIdEvent: its decoder checks the "Spec ID Event03" signature and every digest size.
  const specId = decodeSpecIdEvent(data, dataAt);
  if (!specId.algorithms.some((a) => a.hashAlg === CCEL_HASH_ALG_SHA384)) {
    throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'event[0].Event.digestSizes', 'the Spec ID event does not declare SHA-384, the bank of the RTMRs', {
      at: dataAt,
      expected: 'TPM_ALG_SHA384 (0x000c)',
      actual: specId.algorithms.map((a) => `0x${a.hashAlg.toString(16).padStart(4, '0')}`).join(', '),
    });
  }
  const event: TcgEvent = { index: 0, offset: 0, raw: r.bytesBetween(0), pcr: mr, untrustedType: type, digests: [{ hashAlg: 0x0004, digest }], untrustedData: data };
  return { event, specId };
}

/** One TCG_PCR_EVENT2 record of the log area. */
function readRecord(r: Reader, index: number, specId: SpecIdEvent): TcgEvent {
  const start = r.offset;
  const offset = r.absoluteOffset;
  const field = `event[${index}]`;
  const mrAt = r.offset;
  const mr = r.u32(`${field}.MRIndex`, 'le');
  const type = r.u32(`${field}.EventType`, 'le');
  const extended = type !== EV.NO_ACTION;
  if ((extended && (mr < 1 || mr > RTMR_COUNT)) || mr > RTMR_COUNT) {
    throw r.error('PARSE_BAD_VALUE', `${field}.MRIndex`, `MR index ${mr} names no RTMR (1–4 → RTMR0–3)${mr === 0 ? '; MRTD is never extended by a logged event' : ''}`, {
      at: mrAt,
      expected: extended ? '1..4' : '0..4',
      actual: String(mr),
    });
  }
  const countAt = r.offset;
  const count = r.count(r.u32(`${field}.Digests.count`, 'le'), specId.algorithms.length, `${field}.Digests.count`, countAt);
  if (count === 0) throw r.error('PARSE_BAD_VALUE', `${field}.Digests.count`, 'an event carries at least one digest', { at: countAt, expected: `1..${specId.algorithms.length}`, actual: '0' });
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    const algAt = r.offset;
    const hashAlg = r.u16(`${field}.Digests[${i}].hashAlg`, 'le');
    const decl = specId.algorithms.find((a) => a.hashAlg === hashAlg);
    if (decl === undefined) {
      throw r.error('PARSE_UNSUPPORTED_ALGORITHM', `${field}.Digests[${i}].hashAlg`, `algorithm 0x${hashAlg.toString(16).padStart(4, '0')} is not declared by the Spec ID event`, { at: algAt });
    }
    if (digests.some((d) => d.hashAlg === hashAlg)) throw r.error('PARSE_BAD_VALUE', `${field}.Digests[${i}].hashAlg`, 'an algorithm appears twice in the digest list', { at: algAt });
    digests.push({ hashAlg, digest: r.bytes(decl.digestSize, `${field}.Digests[${i}].digest`) });
  }
  if (extended && !digests.some((d) => d.hashAlg === CCEL_HASH_ALG_SHA384)) {
    throw r.error('PARSE_BAD_VALUE', `${field}.Digests`, 'the event carries no SHA-384 digest, which its RTMR needs', { at: countAt, expected: 'TPM_ALG_SHA384', actual: digests.map((d) => `0x${d.hashAlg.toString(16).padStart(4, '0')}`).join(', ') });
  }
  const size = eventSize(r, `${field}.EventSize`);
  const data = r.bytes(size, `${field}.Event`);
  return { index, offset, raw: r.bytesBetween(start), pcr: mr, untrustedType: type, digests, untrustedData: data };
}

/**
 * Parses a CCEL log area (/sys/firmware/acpi/tables/data/CCEL). With a table, the area must be
 * exactly LAML bytes. Records are read until the area ends or a record would start with 0xFF;
 * from there every byte must be 0xFF (the firmware's fill of the unused area).
 *
 * @throws ParseError PARSE_* with the record, field and offset; TDX_CCEL_LOG_AREA_INVALID
 */
export function parseCcel(area: Uint8Array, table?: Uint8Array | DecodedCcelTable): CcelLog {
  if (!(area instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', 'a CCEL log area must be bytes');
  const t = table === undefined ? undefined : table instanceof Uint8Array ? decodeCcelTable(table) : table;
  const r = new Reader(area, 'CCEL_LOG');
  if (area.length > EVENTLOG_LIMITS.maxLogBytes) {
    throw r.error('PARSE_SIZE_EXCEEDED', '', `a log area of ${area.length} bytes exceeds the maximum ${EVENTLOG_LIMITS.maxLogBytes}`, { at: 0, expected: `<= ${EVENTLOG_LIMITS.maxLogBytes} bytes`, actual: `${area.length} bytes` });
  }
  if (t !== undefined && BigInt(area.length) !== t.laml) {
    throw r.error('TDX_CCEL_LOG_AREA_INVALID', '', `the log area is ${area.length} bytes, the table's LAML is ${t.laml}`, { at: 0, expected: `${t.laml} bytes`, actual: `${area.length} bytes` });
  }
  if (area.length < LEGACY_HEADER) {
    throw r.error('PARSE_TRUNCATED', 'event[0]', `needs at least ${LEGACY_HEADER} bytes, ${area.length} given`, { at: 0, expected: `>= ${LEGACY_HEADER} bytes`, actual: `${area.length} bytes` });
  }
  const { event: first, specId } = readSpecIdRecord(r);
  const events: TcgEvent[] = [first];
  while (r.remaining > 0) {
    if (area[r.offset] === 0xff) {
      const at = r.offset;
      const pad = r.rest('padding');
      const bad = pad.findIndex((b) => b !== 0xff);
      if (bad >= 0) {
        throw r.error('TDX_CCEL_LOG_AREA_INVALID', 'padding', `byte ${bad} after the last event (of ${pad.length}) is 0x${(pad[bad] as number).toString(16).padStart(2, '0')}, not 0xFF padding`, {
          at: at + bad,
          expected: '0xff',
          actual: `0x${(pad[bad] as number).toString(16).padStart(2, '0')}`,
        });
      }
      return { ...(t !== undefined ? { table: t } : {}), log: logOf(area.subarray(0, at), specId, events), logBytes: at, paddingBytes: pad.length, area };
    }
    events.push(readRecord(r, events.length, specId));
  }
  return { ...(t !== undefined ? { table: t } : {}), log: logOf(area, specId, events), logBytes: area.length, paddingBytes: 0, area };
}

function logOf(raw: Uint8Array, specId: SpecIdEvent, events: TcgEvent[]): EventLog {
  return { format: 'crypto-agile', specId, banks: specId.algorithms.map((a) => a.hashAlg), untrustedEvents: events, raw };
}

// ---------------------------------------------------------------------------------------------
// Replay and comparison

type Rtmrs = readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];

/** The replay of a CCEL log. */
export interface CcelReplay {
  readonly ccel: CcelLog;
  /** RTMR0..RTMR3 as the log replays them (48 zero bytes where no event extends the register). */
  readonly rtmrs: Rtmrs;
  /** The events extended into each RTMR, in log order. */
  readonly eventsByRtmr: readonly [readonly TcgEvent[], readonly TcgEvent[], readonly TcgEvent[], readonly TcgEvent[]];
}

/**
 * Replays the SHA-384 bank of a CCEL log (src/eventlog's replay: EV_NO_ACTION records are not
 * extended) and maps MR index i to RTMR i−1. Never throws for a parsed log.
 */
export function replayCcel(ccel: CcelLog): CcelReplay {
  const r = replayEventLog(ccel.log);
  const values = r.pcrs.get(CCEL_HASH_ALG_SHA384);
  const rtmr = (i: number): Uint8Array => values?.get(i + 1) ?? new Uint8Array(RTMR_SIZE);
  const events = (i: number): readonly TcgEvent[] => r.eventsByPcr.get(i + 1) ?? [];
  return { ccel, rtmrs: [rtmr(0), rtmr(1), rtmr(2), rtmr(3)], eventsByRtmr: [events(0), events(1), events(2), events(3)] };
}

/** One RTMR that does not match. */
export interface RtmrFailure extends Failure {
  /** 0..3. */
  readonly rtmr: number;
  readonly replayed: string;
  readonly quoted: string;
  /** The last events extended into the RTMR (up to 5), most recent last. */
  readonly lastEvents: readonly EventSummary[];
}

/** Options of {@link compareCcelWithQuote} and {@link verifyCcel}. */
export interface CompareCcelOptions {
  /**
   * The RTMRs relied on (0..3). Default: all four. Leave RTMR3 out when the guest extends it at
   * run time without logging in the CCEL (its events are then in another log).
   */
  readonly rtmrs?: readonly number[];
}

/** The comparison of a replay with a quote's RTMRs. */
export interface CcelComparison {
  readonly ok: boolean;
  readonly failures: readonly RtmrFailure[];
  /** The RTMRs (0..3) that matched: only their events are proven. */
  readonly matched: readonly number[];
}

function checkQuoted(quoted: readonly Uint8Array[]): void {
  if (!Array.isArray(quoted) || quoted.length !== RTMR_COUNT || quoted.some((q) => !(q instanceof Uint8Array) || q.length !== RTMR_SIZE)) {
    throw new MisuseError('MISUSE_ARGUMENT', 'the quoted RTMRs are four 48-byte values (RTMR0..RTMR3 of the TD report)', { field: 'rtmrs' });
  }
}

function relied(opts: CompareCcelOptions): number[] {
  const list = opts.rtmrs ?? [0, 1, 2, 3];
  const out: number[] = [];
  for (const i of list) {
    if (!Number.isInteger(i) || i < 0 || i > 3) throw new MisuseError('MISUSE_ARGUMENT', `RTMR index ${String(i)} is not 0..3`, { field: 'rtmrs' });
    if (!out.includes(i)) out.push(i);
  }
  if (out.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'at least one RTMR must be relied on', { field: 'rtmrs' });
  return out.sort((a, b) => a - b);
}

/**
 * Compares a replay with RTMR0..RTMR3 of a quote, which the caller has verified (quote signature,
 * QE report, PCK chain). Returns every failing RTMR with both values and its last events.
 *
 * @throws MisuseError MISUSE_ARGUMENT for malformed quoted values or RTMR indexes
 */
export function compareCcelWithQuote(replay: CcelReplay, quoted: readonly Uint8Array[], opts: CompareCcelOptions = {}): CcelComparison {
  checkQuoted(quoted);
  const failures: RtmrFailure[] = [];
  const matched: number[] = [];
  for (const i of relied(opts)) {
    const rep = replay.rtmrs[i] as Uint8Array;
    const q = quoted[i] as Uint8Array;
    if (bytesEqual(rep, q)) {
      matched.push(i);
      continue;
    }
    const events = replay.eventsByRtmr[i] as readonly TcgEvent[];
    failures.push({
      ...failure('TDX_RTMR_MISMATCH', {
        field: `TD_REPORT_BODY.RTMR${i}`,
        message: `RTMR${i} replays to ${toHex(rep)} from ${events.length} event(s), the quote has ${toHex(q)}`,
        expected: toHex(q),
        actual: toHex(rep),
      }),
      rtmr: i,
      replayed: toHex(rep),
      quoted: toHex(q),
      lastEvents: events.slice(-5).map((e) => summarizeEvent(e, CCEL_HASH_ALG_SHA384)),
    });
  }
  return { ok: failures.length === 0, failures, matched };
}

declare const verifiedCcelBrand: unique symbol;

/** A CCEL log whose relied-on RTMRs matched a quote; only {@link verifyCcel} makes one. */
export interface VerifiedCcel {
  readonly [verifiedCcelBrand]: true;
  readonly ccel: CcelLog;
  readonly replay: CcelReplay;
  /** The RTMRs (0..3) proven by the quote. */
  readonly matched: readonly number[];
}

/** The outcome of {@link verifyCcel}: `verified` is present only when `ok`. */
export interface CcelVerification {
  readonly ok: boolean;
  /** Parse failures, or the RTMR failures of the comparison. */
  readonly failures: readonly Failure[];
  readonly ccel?: CcelLog;
  readonly replay?: CcelReplay;
  readonly comparison?: CcelComparison;
  readonly verified?: VerifiedCcel;
}

/**
 * Parses (unless given parsed), replays and compares a CCEL log with the RTMRs of a verified
 * quote. Never throws for bad evidence: a table or area that does not parse is a failure with
 * its code.
 *
 * @throws MisuseError MISUSE_ARGUMENT for malformed quoted values or options
 */
export function verifyCcel(input: CcelLog | { readonly table?: Uint8Array; readonly data: Uint8Array }, quoted: readonly Uint8Array[], opts: CompareCcelOptions = {}): CcelVerification {
  checkQuoted(quoted);
  relied(opts);
  let ccel: CcelLog;
  if ('log' in input) {
    ccel = input;
  } else {
    try {
      ccel = parseCcel(input.data, input.table);
    } catch (e) {
      if (!isVouchError(e)) throw e;
      return { ok: false, failures: [failureFromError(e)] };
    }
  }
  const replay = replayCcel(ccel);
  const comparison = compareCcelWithQuote(replay, quoted, opts);
  if (!comparison.ok) return { ok: false, failures: comparison.failures, ccel, replay, comparison };
  // The brand exists only in the type: this is the one place a VerifiedCcel is made.
  const verified = { ccel, replay, matched: comparison.matched } as unknown as VerifiedCcel;
  return { ok: true, failures: [], ccel, replay, comparison, verified };
}

// ---------------------------------------------------------------------------------------------
// Claims

/** An event of a proven RTMR, with its SHA-384 digest. */
export interface CcelEventClaim {
  readonly event: number;
  /** 0..3. */
  readonly rtmr: number;
  /** The logged event type: covered by no digest. */
  readonly untrustedType: string;
  readonly sha384: string;
  /** True when the digest is SHA-384 of the event data (the data is then proven too). */
  readonly dataBound: boolean;
}

/** A measured image or file: its digest is proven, its path is not. */
export interface CcelDigestClaim {
  readonly event: number;
  readonly rtmr: number;
  readonly sha384: string;
  readonly untrustedPath?: string;
}

/** Typed claims about a TD's boot, from the events of the RTMRs that matched the quote. */
export interface CcelClaims {
  /** RTMRs (0..3) whose events gave claims. */
  readonly matchedRtmrs: readonly number[];
  /** From the SecureBoot variable (RTMR0); `unknown` when absent, empty or not bound to its digest. */
  readonly secureBoot: { readonly state: 'enabled' | 'disabled' | 'unknown'; readonly event?: number; readonly note?: string };
  /** PK, KEK, db and dbx as measured into RTMR0: SHA-384 and size of each value. */
  readonly secureBootVariables: readonly { readonly name: string; readonly vendorGuid: string; readonly sha384: string; readonly size: number; readonly event: number }[];
  /** EFI applications the firmware loaded (EV_EFI_BOOT_SERVICES_APPLICATION): Authenticode SHA-384. */
  readonly efiApplications: readonly CcelDigestClaim[];
  /** The first EFI application loaded after "Calling EFI Application from Boot Option". */
  readonly bootLoader?: CcelDigestClaim;
  /** GRUB's commands (RTMR2), in order. */
  readonly grubCommands: readonly string[];
  /** The kernel command line GRUB (ASCII) or systemd (UCS-2) measured into RTMR2. */
  readonly kernelCmdline?: { readonly value: string; readonly source: 'grub' | 'systemd'; readonly event: number };
  /**
   * EV_IPL events of RTMR2 whose digest is not the hash of their text: files GRUB measured, and
   * shim's MOK variables (PCR 14 shares RTMR2); the text is the untrusted path or name.
   */
  readonly loadedFiles: readonly CcelDigestClaim[];
  /** The file that follows GRUB's `linux` command. */
  readonly kernel?: CcelDigestClaim;
  /** EV_EVENT_TAG events (the Linux EFI stub's "LOADED_IMAGE::LoadOptions" and "Linux initrd"). */
  readonly taggedEvents: readonly { readonly event: number; readonly rtmr: number; readonly tagId: number; readonly untrustedDescription: string; readonly sha384: string }[];
  readonly separators: readonly { readonly rtmr: number; readonly value: string; readonly error: boolean; readonly event: number }[];
  /** True when a separator carries a value other than 00000000. */
  readonly errorSeparator: boolean;
  /** Every event of the proven RTMRs: the material for digest allowlists. */
  readonly events: readonly CcelEventClaim[];
  /** Events whose data is not what their digest measures where a claim needs it: no claim. */
  readonly unboundEvents: readonly number[];
  /** Events whose data did not decode as the structure of their type: no claim. */
  readonly undecodableEvents: readonly { readonly event: number; readonly code: ErrorCode; readonly message: string }[];
}

const sha384 = (d: Uint8Array): Uint8Array => createHash('sha384').update(d).digest();

function digestOf(e: TcgEvent): Uint8Array {
  const d = e.digests.find((x) => x.hashAlg === CCEL_HASH_ALG_SHA384);
  // The parser refuses extended events without one; replay only yields extended events.
  return d === undefined ? new Uint8Array(0) : d.digest;
}

function bound(e: TcgEvent, candidates: readonly Uint8Array[]): boolean {
  const d = digestOf(e);
  return candidates.some((c) => bytesEqual(sha384(c), d));
}

function stripNul(d: Uint8Array): Uint8Array {
  return d.length > 0 && d[d.length - 1] === 0 ? d.subarray(0, d.length - 1) : d;
}

function asciiText(d: Uint8Array): string | undefined {
  const t = stripNul(d);
  for (const c of t) if ((c < 0x20 || c > 0x7e) && c !== 0x0a && c !== 0x09) return undefined;
  return new TextDecoder('latin1').decode(t);
}

/** UCS-2 text of printable ASCII characters, optionally NUL-terminated. */
function ucs2Text(d: Uint8Array): string | undefined {
  if (d.length < 2 || d.length % 2 !== 0) return undefined;
  let s = '';
  for (let i = 0; i < d.length; i += 2) {
    const c = (d[i] as number) | ((d[i + 1] as number) << 8);
    if (c === 0 && i === d.length - 2) break;
    if ((c < 0x20 || c > 0x7e) && c !== 0x09 && c !== 0x0a) return undefined;
    s += String.fromCharCode(c);
  }
  return s.length > 0 ? s : undefined;
}

/** TCG_PCClientTaggedEvent: taggedEventID u32, taggedEventDataSize u32, taggedEventData. */
function taggedEvent(d: Uint8Array, base: number): { tagId: number; data: Uint8Array } {
  const r = new Reader(d, 'TCG_PCClientTaggedEvent', base);
  const tagId = r.u32('taggedEventID', 'le');
  const size = r.u32('taggedEventDataSize', 'le');
  const data = r.bytes(size, 'taggedEventData');
  r.finish();
  return { tagId, data };
}

/**
 * Decodes the boot claims of a CCEL log whose replay matched a quote. Only events of the RTMRs
 * that matched are read.
 *
 * @throws MisuseError EVENTLOG_NOT_REPLAYED when given a verification that did not succeed
 */
export function ccelClaims(v: CcelVerification): CcelClaims {
  const verified = v.ok ? v.verified : undefined;
  if (verified === undefined) throw new MisuseError('EVENTLOG_NOT_REPLAYED', 'CCEL claims need a log whose replay matched the quote');
  const matched = [...verified.matched];
  const events: TcgEvent[] = matched.flatMap((i) => [...(verified.replay.eventsByRtmr[i] ?? [])]).sort((a, b) => a.index - b.index);
  const rtmrOf = (e: TcgEvent): number => e.pcr - 1;

  let secureBoot: CcelClaims['secureBoot'] = { state: 'unknown', note: 'no SecureBoot variable in a proven RTMR0' };
  const secureBootVariables: { name: string; vendorGuid: string; sha384: string; size: number; event: number }[] = [];
  const efiApplications: CcelDigestClaim[] = [];
  let bootLoader: CcelDigestClaim | undefined;
  let callingBootOption = false;
  const grubCommands: string[] = [];
  let kernelCmdline: CcelClaims['kernelCmdline'];
  const loadedFiles: CcelDigestClaim[] = [];
  let kernel: CcelDigestClaim | undefined;
  let expectingKernel: string | undefined;
  const taggedEvents: { event: number; rtmr: number; tagId: number; untrustedDescription: string; sha384: string }[] = [];
  const separators: { rtmr: number; value: string; error: boolean; event: number }[] = [];
  const unboundEvents: number[] = [];
  const undecodableEvents: { event: number; code: ErrorCode; message: string }[] = [];
  const all: CcelEventClaim[] = [];

  for (const e of events) {
    const rtmr = rtmrOf(e);
    const type = e.untrustedType;
    const data = e.untrustedData;
    const digest = toHex(digestOf(e));
    all.push({ event: e.index, rtmr, untrustedType: eventTypeName(type), sha384: digest, dataBound: bound(e, [data]) });
    try {
      if (type === EV.EFI_VARIABLE_DRIVER_CONFIG && rtmr === 0) {
        // UEFI: the digest is the hash of the whole UEFI_VARIABLE_DATA.
        if (!bound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        const uv = decodeUefiVariableData(data, e.offset);
        if (uv.vendorGuid === GUID.EFI_GLOBAL_VARIABLE && uv.name === 'SecureBoot') {
          if (uv.data.length === 1 && (uv.data[0] === 0 || uv.data[0] === 1)) secureBoot = { state: uv.data[0] === 1 ? 'enabled' : 'disabled', event: e.index };
          else secureBoot = { state: 'unknown', event: e.index, note: uv.data.length === 0 ? 'the SecureBoot variable is empty' : `the SecureBoot variable holds ${toHex(uv.data)}` };
        } else if ((uv.vendorGuid === GUID.EFI_GLOBAL_VARIABLE && (uv.name === 'PK' || uv.name === 'KEK')) || (uv.vendorGuid === GUID.EFI_IMAGE_SECURITY_DATABASE && (uv.name === 'db' || uv.name === 'dbx'))) {
          secureBootVariables.push({ name: uv.name, vendorGuid: uv.vendorGuid, sha384: toHex(sha384(uv.data)), size: uv.data.length, event: e.index });
        }
      } else if (type === EV.EFI_ACTION) {
        if (bound(e, [data]) && asciiText(data) === 'Calling EFI Application from Boot Option') callingBootOption = true;
      } else if (type === EV.EFI_BOOT_SERVICES_APPLICATION) {
        // The digest is the image's Authenticode hash; the device path is not covered.
        let untrustedPath: string | undefined;
        try {
          untrustedPath = devicePathFile(decodeUefiImageLoadEvent(data, e.offset).devicePath);
        } catch (err) {
          if (!isVouchError(err)) throw err;
        }
        const app: CcelDigestClaim = { event: e.index, rtmr, sha384: digest, ...(untrustedPath !== undefined ? { untrustedPath } : {}) };
        efiApplications.push(app);
        if (bootLoader === undefined && callingBootOption) bootLoader = app;
      } else if (type === EV.IPL && rtmr === 2) {
        const ascii = asciiText(data);
        const m = ascii === undefined ? null : /^(grub_cmd:? |kernel_cmdline:? |grub_kernel_cmdline )([\s\S]*)$/.exec(ascii);
        if (m !== null) {
          // GRUB measures the string without its prefix and NUL: the prefix is not covered.
          const text = m[2] as string;
          const body = new TextEncoder().encode(text);
          if (!bound(e, [body, concatBytes(body, Uint8Array.of(0)), data, stripNul(data)])) {
            unboundEvents.push(e.index);
            continue;
          }
          if ((m[1] as string).startsWith('grub_cmd')) {
            grubCommands.push(text);
            const parts = text.trim().split(/\s+/);
            if (parts.length >= 2 && ['linux', 'linuxefi', 'linux16'].includes(parts[0] as string)) expectingKernel = parts[1];
          } else {
            kernelCmdline = { value: text, source: 'grub', event: e.index };
          }
        } else if (ascii === undefined && ucs2Text(data) !== undefined && bound(e, [data, stripNul(stripNul(data))])) {
          kernelCmdline = { value: ucs2Text(data) as string, source: 'systemd', event: e.index };
        } else if (!bound(e, [data])) {
          const file: CcelDigestClaim = { event: e.index, rtmr, sha384: digest, untrustedPath: ascii ?? shortData(data) };
          loadedFiles.push(file);
          if (expectingKernel !== undefined && ascii !== undefined && (ascii === expectingKernel || ascii.endsWith(expectingKernel))) {
            kernel = file;
            expectingKernel = undefined;
          }
        }
      } else if (type === EV.EVENT_TAG) {
        const t = taggedEvent(data, e.offset);
        taggedEvents.push({ event: e.index, rtmr, tagId: t.tagId, untrustedDescription: asciiText(t.data) ?? toHex(t.data), sha384: digest });
      } else if (type === EV.SEPARATOR) {
        if (!bound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        separators.push({ rtmr, value: toHex(data), error: data.some((b) => b !== 0), event: e.index });
      }
    } catch (err) {
      if (!isVouchError(err)) throw err;
      undecodableEvents.push({ event: e.index, code: err.code, message: err.message });
    }
  }

  return {
    matchedRtmrs: matched,
    secureBoot,
    secureBootVariables,
    efiApplications,
    ...(bootLoader !== undefined ? { bootLoader } : {}),
    grubCommands,
    ...(kernelCmdline !== undefined ? { kernelCmdline } : {}),
    loadedFiles,
    ...(kernel !== undefined ? { kernel } : {}),
    taggedEvents,
    separators,
    errorSeparator: separators.some((s) => s.error),
    events: all,
    unboundEvents,
    undecodableEvents,
  };
}
