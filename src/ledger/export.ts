/**
 * The portable ledger export (`vouch ledger export`): one JSON object per line, so a ledger of
 * millions of entries is written and checked as a stream, and read by any tool.
 *
 * ```
 * line 1   {"t":"header","format":"vouch-ledger-export/v1","verifierId":…,"exportedAt":<ms>,"entries":n,"checkpoints":k,"inputs":i}
 * then     {"t":"entry","seq":<n>,"hash":<64 hex>,"entry":<base64url canonical CBOR>}      seq 1..n in stored order
 * then     {"t":"checkpoint","jws":<compact JWS>}                                          ascending tree size
 * then     {"t":"input","digest":<64 hex>,"kind":<token>,"storedAt":<ms>,"bytes":<base64url>|null}   null: pruned
 * ```
 *
 * Reading is strict: every line a JSON object of exactly its documented members, the header first,
 * the sections in this order, the counts the header states; anything else is
 * LEDGER_EXPORT_MALFORMED naming the line. The content of entries and checkpoints is not trusted
 * here: ./verify.ts checks it.
 */
import { createHash } from 'node:crypto';
import { ParseError } from '../lib/errors.js';
import type { ChainRow } from './chain.js';

/** The format tag of a version 1 export. */
export const EXPORT_FORMAT = 'vouch-ledger-export/v1';

/** Longest line accepted: an entry is at most 1 MiB (base64url ~1.4 MiB) plus its members. */
export const EXPORT_MAX_LINE = 2 * 1024 * 1024;

/** The first line. */
export interface ExportHeader {
  readonly verifierId: string;
  readonly exportedAt: number;
  readonly entries: number;
  readonly checkpoints: number;
  readonly inputs: number;
}

/** A retained input as exported. */
export interface ExportInput {
  readonly digest: string;
  readonly kind: string;
  readonly storedAt: number;
  /** Null when the retention setting pruned it (the digest remains). */
  readonly bytes: Uint8Array | null;
}

/** One parsed line. */
export type ExportRecord =
  | { readonly t: 'header'; readonly header: ExportHeader }
  | { readonly t: 'entry'; readonly row: ChainRow }
  | { readonly t: 'checkpoint'; readonly jws: string }
  | { readonly t: 'input'; readonly input: ExportInput };

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

export function exportHeaderLine(h: ExportHeader): string {
  return JSON.stringify({ t: 'header', format: EXPORT_FORMAT, verifierId: h.verifierId, exportedAt: h.exportedAt, entries: h.entries, checkpoints: h.checkpoints, inputs: h.inputs });
}

export function exportEntryLine(row: ChainRow): string {
  return JSON.stringify({ t: 'entry', seq: row.seq, hash: Buffer.from(row.hash).toString('hex'), entry: b64(row.entry) });
}

export function exportCheckpointLine(jws: string): string {
  return JSON.stringify({ t: 'checkpoint', jws });
}

export function exportInputLine(i: ExportInput): string {
  return JSON.stringify({ t: 'input', digest: i.digest, kind: i.kind, storedAt: i.storedAt, bytes: i.bytes === null ? null : b64(i.bytes) });
}

function bad(line: number, message: string): ParseError {
  return new ParseError('LEDGER_EXPORT_MALFORMED', `ledger export line ${line}: ${message}`, { field: `line ${line}` });
}

const HEX64 = /^[0-9a-f]{64}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const TOKEN = /^[a-z][a-z0-9-]{0,31}$/;

function exactly(o: Record<string, unknown>, keys: readonly string[], line: number): void {
  const got = Object.keys(o).sort();
  const want = [...keys].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) throw bad(line, `members must be exactly ${want.join(', ')} (got ${got.join(', ')})`);
}

function count(v: unknown, what: string, line: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(line, `${what} must be a non-negative integer`);
  return v;
}

function bytesOf(v: unknown, what: string, line: number): Uint8Array {
  if (typeof v !== 'string' || !B64URL.test(v) || v.length % 4 === 1) throw bad(line, `${what} must be unpadded base64url`);
  const out = new Uint8Array(Buffer.from(v, 'base64url'));
  if (Buffer.from(out).toString('base64url') !== v) throw bad(line, `${what} is not canonical base64url`);
  return out;
}

/**
 * Parses an export line by line (the lines without their newline), checking the order and the
 * counts. Yields each record; throws LEDGER_EXPORT_MALFORMED at the first line that is wrong.
 */
export async function* readExport(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<ExportRecord> {
  let n = 0;
  let header: ExportHeader | null = null;
  let section: 'entry' | 'checkpoint' | 'input' = 'entry';
  const seen = { entry: 0, checkpoint: 0, input: 0 };
  for await (const text of lines) {
    n++;
    if (text.length > EXPORT_MAX_LINE) throw bad(n, `longer than ${EXPORT_MAX_LINE} characters`);
    if (text === '' ) throw bad(n, 'empty line');
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw bad(n, 'not JSON');
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(n, 'not a JSON object');
    const o = v as Record<string, unknown>;
    const t = o['t'];
    if (header === null) {
      if (t !== 'header') throw bad(n, 'the first line must be the header');
      exactly(o, ['t', 'format', 'verifierId', 'exportedAt', 'entries', 'checkpoints', 'inputs'], n);
      if (o['format'] !== EXPORT_FORMAT) throw bad(n, `format must be ${EXPORT_FORMAT}`);
      if (typeof o['verifierId'] !== 'string' || o['verifierId'].length === 0 || o['verifierId'].length > 256) throw bad(n, 'verifierId must be 1..256 characters');
      header = { verifierId: o['verifierId'], exportedAt: count(o['exportedAt'], 'exportedAt', n), entries: count(o['entries'], 'entries', n), checkpoints: count(o['checkpoints'], 'checkpoints', n), inputs: count(o['inputs'], 'inputs', n) };
      yield { t: 'header', header };
      continue;
    }
    if (t !== 'entry' && t !== 'checkpoint' && t !== 'input') throw bad(n, `unknown record type ${JSON.stringify(t)}`);
    const order = { entry: 0, checkpoint: 1, input: 2 } as const;
    if (order[t] < order[section]) throw bad(n, `a ${t} line after the ${section} lines`);
    section = t;
    seen[t]++;
    if (t === 'entry') {
      exactly(o, ['t', 'seq', 'hash', 'entry'], n);
      const seq = count(o['seq'], 'seq', n);
      if (typeof o['hash'] !== 'string' || !HEX64.test(o['hash'])) throw bad(n, 'hash must be 64 lower-case hex digits');
      yield { t: 'entry', row: { seq, hash: new Uint8Array(Buffer.from(o['hash'], 'hex')), entry: bytesOf(o['entry'], 'entry', n) } };
    } else if (t === 'checkpoint') {
      exactly(o, ['t', 'jws'], n);
      if (typeof o['jws'] !== 'string' || o['jws'].length === 0 || o['jws'].length > 4096) throw bad(n, 'jws must be a string of 1..4096 characters');
      yield { t: 'checkpoint', jws: o['jws'] };
    } else {
      exactly(o, ['t', 'digest', 'kind', 'storedAt', 'bytes'], n);
      if (typeof o['digest'] !== 'string' || !HEX64.test(o['digest'])) throw bad(n, 'digest must be 64 lower-case hex digits');
      if (typeof o['kind'] !== 'string' || !TOKEN.test(o['kind'])) throw bad(n, 'kind must be a lower-case token');
      const bytes = o['bytes'] === null ? null : bytesOf(o['bytes'], 'bytes', n);
      if (bytes !== null && createHash('sha256').update(bytes).digest('hex') !== o['digest']) throw bad(n, 'bytes do not hash to their digest');
      yield { t: 'input', input: { digest: o['digest'], kind: o['kind'], storedAt: count(o['storedAt'], 'storedAt', n), bytes } };
    }
  }
  if (header === null) throw bad(n + 1, 'no header: the file is empty');
  for (const k of ['entry', 'checkpoint', 'input'] as const) {
    const want = k === 'entry' ? header.entries : k === 'checkpoint' ? header.checkpoints : header.inputs;
    if (seen[k] !== want) throw bad(n, `the header announces ${want} ${k} lines, the file holds ${seen[k]} (truncated or appended)`);
  }
}
