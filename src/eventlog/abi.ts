/**
 * TCG PC Client Platform Firmware Profile event logs: bytes → typed events, no crypto, no trust.
 *
 * Two formats exist (PFP §10.2, §10.3), both little-endian:
 *
 * ```
 * TCG_PCR_EVENT (legacy, SHA-1)          TCG_PCR_EVENT2 (crypto-agile)
 *   u32  pcrIndex                          u32  pcrIndex
 *   u32  eventType                         u32  eventType
 *   u8   digest[20]                        TPML_DIGEST_VALUES digests
 *   u32  eventDataSize                       u32  count
 *   u8   event[eventDataSize]                TPMT_HA digests[count] { u16 hashAlg; u8 digest[size(hashAlg)] }
 *                                          u32  eventSize
 *                                          u8   event[eventSize]
 * ```
 *
 * A crypto-agile log starts with one TCG_PCR_EVENT (pcrIndex 0, EV_NO_ACTION, zero digest) whose
 * data is the TCG_EfiSpecIdEvent (PFP §10.4.5.1); it declares every hash algorithm of the log and
 * its digest size, which is the only way to know the size of a TPMT_HA of an unknown algorithm.
 *
 * Nothing here is trusted: an event's type and data are not covered by any digest, and its digests
 * are only proven by a replay against a quote. Names say so (`untrustedType`, `untrustedData`).
 */
import { toHex } from '../lib/bytes.js';
import { ParseError } from '../lib/errors.js';
import { Reader } from '../lib/reader.js';
import { algName, hashById } from '../tpm/abi/constants.js';
import { EV, SPEC_ID_EVENT03 } from './constants.js';

/** Limits that bound every loop and allocation of the parser. */
export const EVENTLOG_LIMITS = {
  /** Largest log accepted (real logs are tens of kilobytes; CCEL areas are 64 KiB). */
  maxLogBytes: 64 * 1024 * 1024,
  /** Largest event data (a db or dbx variable is a few tens of kilobytes). */
  maxEventBytes: 16 * 1024 * 1024,
  /** Algorithms a Spec ID event may declare (TPM2_NUM_PCR_BANKS). */
  maxAlgorithms: 16,
  /** Largest digest (sizeof(TPMU_HA)). */
  maxDigestBytes: 64,
  /** PCRs of a PC Client TPM; an extended event names one of 0..23. */
  pcrCount: 24,
} as const;

/** TCG_EfiSpecIdEventAlgorithmSize: one algorithm of the log and its digest size. */
export interface SpecIdAlgorithm {
  readonly hashAlg: number;
  readonly digestSize: number;
}

/** TCG_EfiSpecIdEvent (PFP §10.4.5.1). */
export interface SpecIdEvent {
  readonly platformClass: number;
  readonly specVersionMinor: number;
  readonly specVersionMajor: number;
  readonly specErrata: number;
  /** Size of UINTN in units of UINT32 (1: 32-bit firmware, 2: 64-bit). */
  readonly uintnSize: number;
  readonly algorithms: readonly SpecIdAlgorithm[];
  readonly vendorInfo: Uint8Array;
}

/** One TPMT_HA of an event. */
export interface EventDigest {
  /** TPM_ALG_ID of the bank. */
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** One event record, exactly as logged. Untrusted until a replay proves its digests. */
export interface TcgEvent {
  /** Position in the log, 0 for the first record (the Spec ID event of a crypto-agile log). */
  readonly index: number;
  /** Byte offset of the record in the log. */
  readonly offset: number;
  /** The record's exact bytes. */
  readonly raw: Uint8Array;
  /** PCRIndex: bound by replay (an event logged under the wrong PCR makes that PCR mismatch). */
  readonly pcr: number;
  /** EventType: covered by no digest, so never trusted on its own. */
  readonly untrustedType: number;
  /** One digest per bank the event was extended into (TPML_DIGEST_VALUES, or the SHA-1 digest). */
  readonly digests: readonly EventDigest[];
  /** Event data: covered by a digest only for the event types that measure their data. */
  readonly untrustedData: Uint8Array;
}

/** A parsed, not yet verified event log. */
export interface EventLog {
  /** `sha1`: TCG_PCR_EVENT records only (TPM 1.2 format); `crypto-agile`: Spec ID event + TCG_PCR_EVENT2. */
  readonly format: 'sha1' | 'crypto-agile';
  /** The Spec ID event of a crypto-agile log. */
  readonly specId?: SpecIdEvent;
  /** The banks of the log (TPM_ALG_IDs) in declaration order. */
  readonly banks: readonly number[];
  /** Every record, the Spec ID event included, in log order. */
  readonly untrustedEvents: readonly TcgEvent[];
  /** The log's exact bytes. */
  readonly raw: Uint8Array;
}

/** Options of {@link parseEventLog}. */
export interface ParseEventLogOptions {
  /** Overrides {@link EVENTLOG_LIMITS.maxLogBytes}. */
  readonly maxLogBytes?: number;
}

const SHA1 = 0x0004;
const LEGACY_HEADER = 32; // pcrIndex + eventType + digest[20] + eventDataSize
const SPEC_ID_SIGNATURE = new TextEncoder().encode(SPEC_ID_EVENT03);

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

/** Reads an event's size field and checks it against the limit and the bytes left. */
function eventSize(r: Reader, field: string): number {
  const at = r.offset;
  const size = r.u32(field, 'le');
  if (size > EVENTLOG_LIMITS.maxEventBytes) {
    throw r.error('PARSE_SIZE_EXCEEDED', field, `event size ${size} exceeds the maximum ${EVENTLOG_LIMITS.maxEventBytes}`, {
      at,
      expected: `<= ${EVENTLOG_LIMITS.maxEventBytes}`,
      actual: String(size),
    });
  }
  if (size > r.remaining) {
    throw r.error('PARSE_TRUNCATED', field, `event size ${size} exceeds the ${r.remaining} bytes left in the log`, {
      at,
      expected: `<= ${r.remaining}`,
      actual: String(size),
    });
  }
  return size;
}

function checkPcr(r: Reader, pcr: number, type: number, field: string, at: number): void {
  // EV_NO_ACTION events are not extended; any other event must name a PC Client PCR.
  if (type !== EV.NO_ACTION && pcr >= EVENTLOG_LIMITS.pcrCount) {
    throw r.error('PARSE_BAD_VALUE', field, `PCR index ${pcr} is not a PC Client PCR (0..23)`, {
      at,
      expected: '0..23',
      actual: String(pcr),
    });
  }
}

/** One TCG_PCR_EVENT (legacy SHA-1 record). */
function readLegacyEvent(r: Reader, index: number): TcgEvent {
  const start = r.offset;
  const offset = r.absoluteOffset;
  const field = `event[${index}]`;
  const pcrAt = r.offset;
  const pcr = r.u32(`${field}.pcrIndex`, 'le');
  const type = r.u32(`${field}.eventType`, 'le');
  checkPcr(r, pcr, type, `${field}.pcrIndex`, pcrAt);
  const digest = r.bytes(20, `${field}.digest`);
  const size = eventSize(r, `${field}.eventDataSize`);
  const data = r.bytes(size, `${field}.event`);
  return {
    index,
    offset,
    raw: r.bytesBetween(start),
    pcr,
    untrustedType: type,
    digests: [{ hashAlg: SHA1, digest }],
    untrustedData: data,
  };
}

/** TCG_EfiSpecIdEvent, from the data of the first record. */
export function decodeSpecIdEvent(data: Uint8Array, base = 0): SpecIdEvent {
  const r = new Reader(data, 'TCG_EfiSpecIdEvent', base);
  const sigAt = r.offset;
  const signature = r.bytes(16, 'signature');
  if (!startsWith(signature, SPEC_ID_SIGNATURE)) {
    throw r.error('PARSE_BAD_MAGIC', 'signature', 'is not "Spec ID Event03"', { at: sigAt, expected: toHex(SPEC_ID_SIGNATURE), actual: toHex(signature) });
  }
  const platformClass = r.u32('platformClass', 'le');
  const specVersionMinor = r.u8('specVersionMinor');
  const specVersionMajor = r.u8('specVersionMajor');
  const specErrata = r.u8('specErrata');
  const uintnAt = r.offset;
  const uintnSize = r.u8('uintnSize');
  if (uintnSize !== 1 && uintnSize !== 2) {
    throw r.error('PARSE_BAD_VALUE', 'uintnSize', `must be 1 or 2, is ${uintnSize}`, { at: uintnAt, expected: '1 or 2', actual: String(uintnSize) });
  }
  const countAt = r.offset;
  const count = r.count(r.u32('numberOfAlgorithms', 'le'), EVENTLOG_LIMITS.maxAlgorithms, 'numberOfAlgorithms', countAt);
  if (count === 0) {
    throw r.error('PARSE_BAD_VALUE', 'numberOfAlgorithms', 'a crypto-agile log declares at least one algorithm', { at: countAt, expected: '>= 1', actual: '0' });
  }
  const algorithms: SpecIdAlgorithm[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    const hashAlg = r.u16(`digestSizes[${i}].algorithmId`, 'le');
    const digestSize = r.u16(`digestSizes[${i}].digestSize`, 'le');
    const known = hashById(hashAlg);
    if (digestSize === 0 || digestSize > EVENTLOG_LIMITS.maxDigestBytes || (known !== undefined && known.size !== digestSize)) {
      throw r.error('PARSE_BAD_VALUE', `digestSizes[${i}].digestSize`, `digest size ${digestSize} is wrong for ${algName(hashAlg)}`, {
        at: at + 2,
        expected: known !== undefined ? String(known.size) : `1..${EVENTLOG_LIMITS.maxDigestBytes}`,
        actual: String(digestSize),
      });
    }
    if (algorithms.some((a) => a.hashAlg === hashAlg)) {
      throw r.error('PARSE_BAD_VALUE', `digestSizes[${i}].algorithmId`, `${algName(hashAlg)} is declared twice`, { at });
    }
    algorithms.push({ hashAlg, digestSize });
  }
  const vendorInfoSize = r.u8('vendorInfoSize');
  const vendorInfo = r.bytes(vendorInfoSize, 'vendorInfo');
  r.finish();
  return { platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize, algorithms, vendorInfo };
}

/** One TCG_PCR_EVENT2 record; digest sizes come from the Spec ID event. */
function readEvent2(r: Reader, index: number, algs: readonly SpecIdAlgorithm[]): TcgEvent {
  const start = r.offset;
  const offset = r.absoluteOffset;
  const field = `event[${index}]`;
  const pcrAt = r.offset;
  const pcr = r.u32(`${field}.pcrIndex`, 'le');
  const type = r.u32(`${field}.eventType`, 'le');
  checkPcr(r, pcr, type, `${field}.pcrIndex`, pcrAt);
  const countAt = r.offset;
  const count = r.count(r.u32(`${field}.digests.count`, 'le'), algs.length, `${field}.digests.count`, countAt);
  if (count === 0) {
    throw r.error('PARSE_BAD_VALUE', `${field}.digests.count`, 'an event carries at least one digest', { at: countAt, expected: `1..${algs.length}`, actual: '0' });
  }
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    const algAt = r.offset;
    const hashAlg = r.u16(`${field}.digests[${i}].hashAlg`, 'le');
    const decl = algs.find((a) => a.hashAlg === hashAlg);
    if (decl === undefined) {
      throw r.error('PARSE_UNSUPPORTED_ALGORITHM', `${field}.digests[${i}].hashAlg`, `${algName(hashAlg)} is not declared by the Spec ID event`, {
        at: algAt,
        expected: algs.map((a) => algName(a.hashAlg)).join(' | '),
        actual: algName(hashAlg),
      });
    }
    if (digests.some((d) => d.hashAlg === hashAlg)) {
      throw r.error('PARSE_BAD_VALUE', `${field}.digests[${i}].hashAlg`, `${algName(hashAlg)} appears twice in the digest list`, { at: algAt });
    }
    digests.push({ hashAlg, digest: r.bytes(decl.digestSize, `${field}.digests[${i}].digest`) });
  }
  const size = eventSize(r, `${field}.eventSize`);
  const data = r.bytes(size, `${field}.event`);
  return {
    index,
    offset,
    raw: r.bytesBetween(start),
    pcr,
    untrustedType: type,
    digests,
    untrustedData: data,
  };
}

/** True when the first record of `bytes` is a TCG_PCR_EVENT carrying "Spec ID Event03". */
function isCryptoAgile(bytes: Uint8Array): boolean {
  if (bytes.length < LEGACY_HEADER + SPEC_ID_SIGNATURE.length) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(4, true) !== EV.NO_ACTION) return false;
  return startsWith(bytes.subarray(LEGACY_HEADER), SPEC_ID_SIGNATURE);
}

/**
 * Parses a TCG event log as found in /sys/kernel/security/tpm0/binary_bios_measurements.
 * Every declared size and count is checked against its limit and the bytes left before it is used;
 * the log must end exactly after its last record.
 *
 * @throws ParseError (PARSE_*) with the record, field and byte offset
 */
export function parseEventLog(bytes: Uint8Array, opts: ParseEventLogOptions = {}): EventLog {
  const max = opts.maxLogBytes ?? EVENTLOG_LIMITS.maxLogBytes;
  if (bytes.length > max) {
    throw new ParseError('PARSE_SIZE_EXCEEDED', `event log of ${bytes.length} bytes exceeds the maximum ${max}`, {
      field: 'TCG_EVENT_LOG',
      expected: `<= ${max} bytes`,
      actual: `${bytes.length} bytes`,
    });
  }
  if (bytes.length === 0) {
    throw new ParseError('PARSE_TRUNCATED', 'the event log is empty', { field: 'TCG_EVENT_LOG', offset: 0, expected: 'at least one event', actual: '0 bytes' });
  }
  const r = new Reader(bytes, 'TCG_EVENT_LOG');
  const events: TcgEvent[] = [];
  if (!isCryptoAgile(bytes)) {
    while (r.remaining > 0) events.push(readLegacyEvent(r, events.length));
    return { format: 'sha1', banks: [SHA1], untrustedEvents: events, raw: bytes };
  }
  const first = readLegacyEvent(r, 0);
  if (first.pcr !== 0 || first.digests[0]!.digest.some((b) => b !== 0)) {
    throw r.error('PARSE_BAD_VALUE', 'event[0]', 'the Spec ID event must be logged under PCR 0 with a zero digest', { at: 0 });
  }
  const specId = decodeSpecIdEvent(first.untrustedData, LEGACY_HEADER);
  events.push(first);
  while (r.remaining > 0) events.push(readEvent2(r, events.length, specId.algorithms));
  return { format: 'crypto-agile', specId, banks: specId.algorithms.map((a) => a.hashAlg), untrustedEvents: events, raw: bytes };
}
