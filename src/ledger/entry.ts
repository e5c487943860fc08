/**
 * The lineage ledger entry, version 1: the one record of every decision vouch makes.
 *
 * An entry is one CBOR map in the canonical encoding of src/lib/cbor.ts (RFC 8949 §4.2.1 core
 * deterministic encoding). Its hash is `SHA-256(entry bytes)`; each entry carries the hash of
 * the entry before it, so the entries form one linear hash chain. A relying party verifies a
 * ledger export offline with nothing but a CBOR decoder and SHA-256.
 *
 * ```
 * field    CBOR type             meaning
 * -------  --------------------  ---------------------------------------------------------------
 * v        uint                  entry format version; always 1 for this layout
 * seq      uint (>= 1)           position in the ledger: 1 for the first entry, dense, no gaps
 * prev     bstr .size 32         SHA-256 of the entry at seq - 1; 32 zero bytes when seq = 1
 * time     uint                  decision time, milliseconds since the Unix epoch (UTC), as
 *                                supplied by the verifier's injected clock
 * kind     tstr                  what was decided: enroll, appraise, authorize, release, refusal,
 *                                policy, trust-anchor, revocation, heartbeat (lower-case token)
 * node     tstr / null           the node the decision is about; null for decisions about no node
 * outcome  tstr                  the result as a lower-case token (e.g. affirming, refused)
 * body     map (text keys)       kind-specific detail: digests of the inputs (evidence, policy,
 *                                collateral, trust anchors), reasons, artifact references
 * ```
 *
 * Rules a verifier applies (see {@link decodeLedgerEntry}): exactly these eight keys, in
 * canonical order, no others; the bytes must be the canonical encoding (any other encoding of
 * the same map is rejected, so one entry has one hash); tokens match `[a-z][a-z0-9-]{0,31}`.
 *
 * Later parts of the ledger build on the same bytes: the RFC 9162 Merkle tree uses
 * `SHA-256(0x00 || entry bytes)` as the leaf hash of each entry, and checkpoints sign a tree
 * head over those leaves; neither changes the entry or its chain hash.
 */
import { createHash } from 'node:crypto';
import { decodeStrict, encodeCanonical, type CborObject, type CborValue } from '../lib/cbor.js';
import { MisuseError, ParseError } from '../lib/errors.js';

/** The entry format version this code writes and reads. */
export const LEDGER_ENTRY_VERSION = 1;

/** Length of an entry hash (SHA-256). */
export const LEDGER_HASH_LENGTH = 32;

/** Largest entry accepted, in bytes, by the builder and the decoder alike. */
export const LEDGER_ENTRY_MAX_BYTES = 1024 * 1024;

/** Deepest nesting inside an entry (the entry map itself is depth 1, its body depth 2). */
export const LEDGER_ENTRY_MAX_DEPTH = 32;

/** The `prev` value of the first entry. */
export const GENESIS_PREV: Uint8Array = new Uint8Array(LEDGER_HASH_LENGTH);

/**
 * The kinds of decision vouch records. The decoder accepts any well-formed token, so an offline
 * verifier built today still checks the chain of a ledger that later adds a kind.
 */
export const DECISION_KINDS = [
  'enroll',
  'appraise',
  'authorize',
  'release',
  'refusal',
  'policy',
  'trust-anchor',
  'revocation',
  'heartbeat',
] as const;

/** A kind of decision this version of vouch writes. */
export type DecisionKind = (typeof DECISION_KINDS)[number];

const TOKEN_RE = /^[a-z][a-z0-9-]{0,31}$/;
const NODE_ID_MAX = 256;
const ENTRY_KEYS = ['v', 'seq', 'prev', 'time', 'kind', 'node', 'outcome', 'body'] as const;

/** A decoded version 1 ledger entry. */
export interface LedgerEntry {
  readonly v: 1;
  readonly seq: number;
  /** Hash of the entry at `seq - 1` ({@link GENESIS_PREV} for seq 1). */
  readonly prev: Uint8Array;
  /** Epoch milliseconds. */
  readonly time: number;
  readonly kind: string;
  readonly node: string | null;
  readonly outcome: string;
  readonly body: CborObject;
}

/** What a writer supplies to {@link buildLedgerEntry}; `v` is implied. */
export interface LedgerEntryFields {
  readonly seq: number;
  readonly prev: Uint8Array;
  readonly time: number;
  readonly kind: DecisionKind;
  readonly node: string | null;
  readonly outcome: string;
  readonly body: Readonly<Record<string, unknown>>;
}

/** An encoded entry and its chain hash. */
export interface BuiltLedgerEntry {
  readonly entry: Uint8Array;
  readonly hash: Uint8Array;
}

/** The chain hash of an entry: SHA-256 over its exact stored bytes (never a re-encoding). */
export function ledgerEntryHash(entryBytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(entryBytes).digest());
}

function misuse(field: string, message: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', `ledger entry.${field}: ${message}`, { field: `ledger entry.${field}` });
}

/**
 * Encodes a version 1 entry canonically and hashes it. Every field is checked first, so that
 * whatever this writes, {@link decodeLedgerEntry} reads back.
 *
 * @throws MisuseError MISUSE_ARGUMENT when a field is out of range or the body is outside the
 *   canonical CBOR data model
 */
export function buildLedgerEntry(fields: LedgerEntryFields): BuiltLedgerEntry {
  if (!Number.isSafeInteger(fields.seq) || fields.seq < 1) throw misuse('seq', `must be a positive safe integer, got ${fields.seq}`);
  if (!(fields.prev instanceof Uint8Array) || fields.prev.length !== LEDGER_HASH_LENGTH) {
    throw misuse('prev', `must be ${LEDGER_HASH_LENGTH} bytes`);
  }
  if (!Number.isSafeInteger(fields.time) || fields.time < 0) throw misuse('time', `must be non-negative epoch milliseconds, got ${fields.time}`);
  if (!(DECISION_KINDS as readonly string[]).includes(fields.kind)) throw misuse('kind', `unknown decision kind ${JSON.stringify(fields.kind)}`);
  if (fields.node !== null && (typeof fields.node !== 'string' || fields.node.length === 0 || fields.node.length > NODE_ID_MAX)) {
    throw misuse('node', `must be null or a string of 1..${NODE_ID_MAX} characters`);
  }
  if (typeof fields.outcome !== 'string' || !TOKEN_RE.test(fields.outcome)) throw misuse('outcome', `must match ${TOKEN_RE.source}`);
  const body: unknown = fields.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Map || body instanceof Uint8Array) {
    throw misuse('body', 'must be a plain object with text keys');
  }
  const entry = encodeCanonical({
    v: LEDGER_ENTRY_VERSION,
    seq: fields.seq,
    prev: fields.prev,
    time: fields.time,
    kind: fields.kind,
    node: fields.node,
    outcome: fields.outcome,
    body,
  }, { maxDepth: LEDGER_ENTRY_MAX_DEPTH });
  if (entry.length > LEDGER_ENTRY_MAX_BYTES) throw misuse('body', `entry of ${entry.length} bytes exceeds ${LEDGER_ENTRY_MAX_BYTES}`);
  return { entry, hash: ledgerEntryHash(entry) };
}

function malformed(field: string, message: string, actual?: string): ParseError {
  return new ParseError('LEDGER_ENTRY_MALFORMED', `ledger entry.${field}: ${message}`, {
    field: `ledger entry.${field}`,
    ...(actual !== undefined ? { actual } : {}),
  });
}

function describe(v: CborValue): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `${v.length}-byte string`;
  if (Array.isArray(v)) return 'array';
  if (v instanceof Map) return 'map';
  return typeof v;
}

/**
 * Strictly decodes a version 1 entry: canonical CBOR (see {@link decodeStrict}), exactly the
 * eight documented keys, each of its documented type and range.
 *
 * @throws ParseError PARSE_* when the bytes are not canonical CBOR within the entry limits,
 *   LEDGER_ENTRY_MALFORMED when the map is not a version 1 entry
 */
export function decodeLedgerEntry(bytes: Uint8Array): LedgerEntry {
  const value = decodeStrict(bytes, { name: 'ledger entry', maxBytes: LEDGER_ENTRY_MAX_BYTES, maxDepth: LEDGER_ENTRY_MAX_DEPTH });
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Map || value instanceof Uint8Array) {
    throw malformed('', 'is not a map with text keys', describe(value));
  }
  const keys = Object.keys(value);
  for (const k of keys) {
    if (!(ENTRY_KEYS as readonly string[]).includes(k)) throw malformed(k, 'unknown field');
  }
  for (const k of ENTRY_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) throw malformed(k, 'missing field');
  }
  const { v, seq, prev, time, kind, node, outcome, body } = value as Record<(typeof ENTRY_KEYS)[number], CborValue>;
  if (v !== LEDGER_ENTRY_VERSION) throw malformed('v', `unsupported version (expected ${LEDGER_ENTRY_VERSION})`, String(v));
  if (typeof seq !== 'number' || seq < 1) throw malformed('seq', 'must be a positive integer', String(seq));
  if (!(prev instanceof Uint8Array) || prev.length !== LEDGER_HASH_LENGTH) {
    throw malformed('prev', `must be a ${LEDGER_HASH_LENGTH}-byte string`, describe(prev));
  }
  if (typeof time !== 'number' || time < 0) throw malformed('time', 'must be non-negative epoch milliseconds', String(time));
  if (typeof kind !== 'string' || !TOKEN_RE.test(kind)) throw malformed('kind', `must match ${TOKEN_RE.source}`, describe(kind));
  if (node !== null && (typeof node !== 'string' || node.length === 0 || node.length > NODE_ID_MAX)) {
    throw malformed('node', `must be null or a string of 1..${NODE_ID_MAX} characters`, describe(node));
  }
  if (typeof outcome !== 'string' || !TOKEN_RE.test(outcome)) throw malformed('outcome', `must match ${TOKEN_RE.source}`, describe(outcome));
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body instanceof Map || body instanceof Uint8Array) {
    throw malformed('body', 'must be a map with text keys', describe(body));
  }
  return { v: LEDGER_ENTRY_VERSION, seq, prev, time, kind, node, outcome, body };
}
