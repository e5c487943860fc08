/**
 * What both stores check on the way in and on the way out, so SqliteStore and PostgresStore
 * accept the same inputs and read rows with the same strictness.
 *
 * - Input checks: a caller bug is a MisuseError MISUSE_ARGUMENT, raised before the database is
 *   touched.
 * - Row decoders: a row is a plain object with the driver's values (TEXT → string, INTEGER or
 *   BIGINT → number, BLOB or BYTEA → Buffer, NULL → null); a value of the wrong type or out of its
 *   range means a damaged database and is UnavailableError STORE_UNAVAILABLE, never a default.
 *   PostgresStore turns BIGINT strings into numbers (with range checks) before decoding.
 */
import { createHash } from 'node:crypto';
import { decodeStrict, encodeCanonical, type CborObject } from '../lib/cbor.js';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { SNP_AK_NAME_PREFIX } from './types.js';
import type {
  AttestationCommit,
  NewChallenge,
  CheckpointRecord,
  NewRetainedInput,
  RetainedInput,
  ChallengeRecord,
  DecisionInput,
  DecisionRecord,
  ImaStateRecord,
  NewNode,
  NodeKind,
  NodeRecord,
  PendingEnrollment,
  PendingSnpEnrollment,
  PolicyRecord,
  QuoteCounters,
  SecretRecord,
} from './types.js';

/** Most rows one list call returns. */
export const MAX_LIST = 10_000;
/** Longest id (node, challenge, enrollment, group, policy) in characters. */
export const MAX_ID = 256;
/** Largest UINT32. */
export const U32_MAX = 0xffff_ffff;
/** Largest UINT64. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** A policy digest: lower-case hex SHA-256. */
export const HEX64_RE = /^[0-9a-f]{64}$/;
/** Limits for decoding stored challenge parameters (written by us, still decoded strictly). */
export const PARAMS_LIMITS = { name: 'challenges.params', maxBytes: 64 * 1024, maxDepth: 16, maxItems: 4096 } as const;

/** One database row as the driver returns it (column name → value). */
export type Row = Record<string, unknown>;

// --- input checks (a caller bug is a MisuseError, before the database is touched) -------------

/** A caller bug: MisuseError MISUSE_ARGUMENT with a `store: ` message. */
export function misuse(message: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', `store: ${message}`);
}

/** A string of 1..{@link MAX_ID} characters. */
export function checkId(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID) throw misuse(`${name} must be a string of 1..${MAX_ID} characters`);
  return v;
}

/** Non-negative epoch milliseconds (a safe integer). */
export function checkTime(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw misuse(`${name} must be non-negative epoch milliseconds`);
  return v;
}

/** A Uint8Array (of `exactLength` bytes when given), as a Buffer over the same memory. */
export function checkBytes(v: unknown, name: string, exactLength?: number): Buffer {
  if (!(v instanceof Uint8Array)) throw misuse(`${name} must be a Uint8Array`);
  if (exactLength !== undefined && v.length !== exactLength) throw misuse(`${name} must be ${exactLength} bytes`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** TPMS_CLOCK_INFO counters in range; the clock as a decimal string (the TEXT column). */
export function checkCounters(c: QuoteCounters, name: string): { reset: number; restart: number; clock: string } {
  const ok32 = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= U32_MAX;
  if (!ok32(c.resetCount) || !ok32(c.restartCount)) throw misuse(`${name}.resetCount and restartCount must be UINT32 values`);
  if (typeof c.clock !== 'bigint' || c.clock < 0n || c.clock > U64_MAX) throw misuse(`${name}.clock must be a UINT64 bigint`);
  return { reset: c.resetCount, restart: c.restartCount, clock: c.clock.toString(10) };
}

// --- column readers (a value of the wrong type means a damaged database: fail, never default) --

/** A damaged column: STORE_UNAVAILABLE naming `table.column`. */
export function corrupt(table: string, column: string, what: string): UnavailableError {
  return new UnavailableError('STORE_UNAVAILABLE', `store: ${table}.${column} holds ${what}; the database is damaged`, { field: `${table}.${column}` });
}

/** A TEXT column (never NULL). */
export function colText(r: Row, t: string, c: string): string {
  const v = r[c];
  if (typeof v !== 'string') throw corrupt(t, c, `a ${v === null ? 'NULL' : typeof v}, not TEXT`);
  return v;
}

/** A TEXT column or NULL. */
export function colTextOrNull(r: Row, t: string, c: string): string | null {
  return r[c] === null ? null : colText(r, t, c);
}

/** An INTEGER column holding a safe integer (never NULL). */
export function colInt(r: Row, t: string, c: string): number {
  const v = r[c];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw corrupt(t, c, `a ${v === null ? 'NULL' : typeof v}, not an INTEGER`);
  return v;
}

/** An INTEGER column or NULL. */
export function colIntOrNull(r: Row, t: string, c: string): number | null {
  return r[c] === null ? null : colInt(r, t, c);
}

/** A BLOB column (never NULL), copied out of the driver's buffer. */
export function colBlob(r: Row, t: string, c: string): Uint8Array {
  const v = r[c];
  if (!Buffer.isBuffer(v)) throw corrupt(t, c, `a ${v === null ? 'NULL' : typeof v}, not a BLOB`);
  return new Uint8Array(v); // a copy, detached from the driver's buffer
}

/** A BLOB column or NULL. */
export function colBlobOrNull(r: Row, t: string, c: string): Uint8Array | null {
  return r[c] === null ? null : colBlob(r, t, c);
}

/** A key broker secret id. */
export const SECRET_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A `secrets` row. */
export function secretFromRow(r: Row): SecretRecord {
  const t = 'secrets';
  return {
    secretId: colText(r, t, 'secret_id'),
    tenant: colTextOrNull(r, t, 'tenant'),
    ciphertext: colBlob(r, t, 'ciphertext'),
    nonce: colBlob(r, t, 'nonce'),
    releasePolicy: colText(r, t, 'release_policy'),
    createdAt: colInt(r, t, 'created_at'),
    updatedAt: colInt(r, t, 'updated_at'),
  };
}

/** A `nodes` row; the kind and its identity columns must agree. */
export function nodeFromRow(r: Row): NodeRecord {
  const t = 'nodes';
  const kind = colText(r, t, 'kind');
  if (kind !== 'tpm' && kind !== 'snp') throw corrupt(t, 'kind', `the kind ${JSON.stringify(kind)}`);
  const nodeKey = colBlobOrNull(r, t, 'node_key');
  // A node of one kind never carries the other kind's identity (fail, never guess).
  if ((kind === 'snp') !== (nodeKey !== null)) throw corrupt(t, 'node_key', kind === 'snp' ? 'NULL for an SNP node' : 'a key for a TPM node');
  const reset = colIntOrNull(r, t, 'reset_count');
  let counters: QuoteCounters | null = null;
  if (reset !== null) {
    const clock = colText(r, t, 'clock');
    if (!/^[0-9]{1,20}$/.test(clock)) throw corrupt(t, 'clock', 'a value that is not a decimal UINT64');
    counters = { resetCount: reset, restartCount: colInt(r, t, 'restart_count'), clock: BigInt(clock) };
  }
  return {
    nodeId: colText(r, t, 'node_id'),
    group: colText(r, t, 'group_name'),
    kind,
    nodeKey,
    ekPublic: colBlob(r, t, 'ek_public'),
    ekCert: colBlobOrNull(r, t, 'ek_cert'),
    akPublic: colBlob(r, t, 'ak_public'),
    akName: colBlob(r, t, 'ak_name'),
    enrolledAt: colInt(r, t, 'enrolled_at'),
    counters,
    lastQuoteAt: colIntOrNull(r, t, 'last_quote_at'),
    updatedAt: colInt(r, t, 'updated_at'),
    ...revocationFromRow(r),
  };
}

/** revoked_at and revoked_reason are set together or not at all (src/store/migrations.ts, version 4). */
export function revocationFromRow(r: Row): { revokedAt: number | null; revokedReason: string | null } {
  const revokedAt = colIntOrNull(r, 'nodes', 'revoked_at');
  const revokedReason = colTextOrNull(r, 'nodes', 'revoked_reason');
  if ((revokedAt === null) !== (revokedReason === null)) throw corrupt('nodes', 'revoked_reason', 'a value without revoked_at, or none with it');
  return { revokedAt, revokedReason };
}

/** A `pending_snp_enrollments` row. */
export function pendingSnpFromRow(r: Row): PendingSnpEnrollment {
  const t = 'pending_snp_enrollments';
  return {
    enrollmentId: colText(r, t, 'enrollment_id'),
    nodeId: colText(r, t, 'node_id'),
    group: colText(r, t, 'group_name'),
    nodeKey: colBlob(r, t, 'node_key'),
    nonce: colBlob(r, t, 'nonce'),
    createdAt: colInt(r, t, 'created_at'),
    expiresAt: colInt(r, t, 'expires_at'),
  };
}

/**
 * The identity columns of a new node, checked for its kind: a TPM node has no node key and a
 * TPM name (never starting 0x53); an SNP node has a node key, empty TPM columns and the akName
 * 0x53 0x4E ‖ SHA-256(nodeKey) (src/store/migrations.ts, version 3).
 */
export function nodeIdentity(n: NewNode): { kind: NodeKind; nodeKey: Buffer | null } {
  const kind = n.kind ?? 'tpm';
  if (kind !== 'tpm' && kind !== 'snp') throw misuse(`kind must be 'tpm' or 'snp'`);
  if (kind === 'tpm') {
    if (n.nodeKey !== undefined && n.nodeKey !== null) throw misuse('a TPM node has no nodeKey');
    if (n.akName[0] === SNP_AK_NAME_PREFIX[0]) throw misuse('a TPM node name cannot start with 0x53');
    return { kind, nodeKey: null };
  }
  const key = checkBytes(n.nodeKey, 'nodeKey');
  if (key.length === 0) throw misuse('an SNP node needs a nodeKey');
  if (n.ekPublic.length !== 0 || n.akPublic.length !== 0 || n.ekCert !== null) throw misuse('an SNP node has empty ekPublic and akPublic and no ekCert');
  const expected = Buffer.concat([SNP_AK_NAME_PREFIX, createHash('sha256').update(key).digest()]);
  if (!expected.equals(checkBytes(n.akName, 'akName'))) throw misuse('an SNP node akName must be 0x53 0x4e || SHA-256(nodeKey)');
  return { kind, nodeKey: key };
}

/** A `pending_enrollments` row. */
export function pendingFromRow(r: Row): PendingEnrollment {
  const t = 'pending_enrollments';
  return {
    enrollmentId: colText(r, t, 'enrollment_id'),
    nodeId: colText(r, t, 'node_id'),
    group: colText(r, t, 'group_name'),
    ekPublic: colBlob(r, t, 'ek_public'),
    ekCert: colBlobOrNull(r, t, 'ek_cert'),
    akPublic: colBlob(r, t, 'ak_public'),
    akName: colBlob(r, t, 'ak_name'),
    secretSha256: colBlob(r, t, 'secret_sha256'),
    createdAt: colInt(r, t, 'created_at'),
    expiresAt: colInt(r, t, 'expires_at'),
    attempts: colInt(r, t, 'attempts'),
  };
}

/**
 * Decoded challenge parameters by their stored bytes: challenges share a handful of distinct
 * parameter sets (the PCR selections of the policies), so each is decoded once. The values are
 * deep-frozen, as they are shared. Bounded: emptied when full.
 */
const PARAMS_CACHE = new Map<string, CborObject>();
const PARAMS_CACHE_MAX = 256;

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function challengeParams(bytes: Uint8Array): CborObject {
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const hit = PARAMS_CACHE.get(key);
  if (hit !== undefined) return hit;
  const params = decodeStrict(bytes, PARAMS_LIMITS);
  if (params === null || typeof params !== 'object' || Array.isArray(params) || params instanceof Map || params instanceof Uint8Array) {
    throw corrupt('challenges', 'params', 'CBOR that is not a map with text keys');
  }
  if (PARAMS_CACHE.size >= PARAMS_CACHE_MAX) PARAMS_CACHE.clear();
  PARAMS_CACHE.set(key, deepFreeze(params as CborObject));
  return params as CborObject;
}

/** A `challenges` row, its parameters decoded strictly. */
export function challengeFromRow(r: Row): ChallengeRecord {
  const t = 'challenges';
  const params = challengeParams(colBlob(r, t, 'params'));
  return {
    challengeId: colText(r, t, 'challenge_id'),
    nodeId: colText(r, t, 'node_id'),
    nonce: colBlob(r, t, 'nonce'),
    params: params as CborObject,
    createdAt: colInt(r, t, 'created_at'),
    expiresAt: colInt(r, t, 'expires_at'),
    consumedAt: colIntOrNull(r, t, 'consumed_at'),
  };
}

/** A `policies` row. */
export function policyFromRow(r: Row): PolicyRecord {
  const t = 'policies';
  return {
    digest: colText(r, t, 'digest'),
    policyId: colText(r, t, 'policy_id'),
    document: colText(r, t, 'document'),
    createdAt: colInt(r, t, 'created_at'),
  };
}

/** A `decisions` row. */
export function decisionFromRow(r: Row): DecisionRecord {
  const t = 'decisions';
  return {
    seq: colInt(r, t, 'seq'),
    kind: colText(r, t, 'kind'),
    nodeId: colTextOrNull(r, t, 'node_id'),
    outcome: colText(r, t, 'outcome'),
    time: colInt(r, t, 'decided_at'),
    entry: colBlob(r, t, 'entry'),
    prevHash: colBlob(r, t, 'prev_hash'),
    hash: colBlob(r, t, 'hash'),
  };
}

/** PCR 10 per bank as canonical CBOR (TPM_ALG_ID → value). */
export function encodePcr10(m: ReadonlyMap<number, Uint8Array>): Uint8Array {
  return encodeCanonical(new Map([...m]));
}

/** An `ima_state` row, its PCR 10 map decoded strictly. */
export function imaFromRow(r: Row): ImaStateRecord {
  const t = 'ima_state';
  const raw = decodeStrict(colBlob(r, t, 'pcr10'), { name: 'ima_state.pcr10', maxBytes: 4096, maxDepth: 2, maxItems: 32 });
  const pcr10 = new Map<number, Uint8Array>();
  const entries: Array<[unknown, unknown]> = raw instanceof Map ? [...raw] : typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !(raw instanceof Uint8Array) ? Object.entries(raw) : [];
  for (const [k, v] of entries) {
    if (typeof k !== 'number' || !(v instanceof Uint8Array)) throw new UnavailableError('STORE_UNAVAILABLE', 'store: ima_state.pcr10 is damaged');
    pcr10.set(k, v);
  }
  return {
    resetCount: colInt(r, t, 'reset_count'),
    entries: colInt(r, t, 'entries'),
    pcr10,
    violations: colInt(r, t, 'violations'),
  };
}

/** Whether two IMA states are equal (the compare of the compare-and-set). */
export function sameIma(a: ImaStateRecord | null, b: ImaStateRecord | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.resetCount !== b.resetCount || a.entries !== b.entries || a.violations !== b.violations || a.pcr10.size !== b.pcr10.size) return false;
  for (const [k, v] of a.pcr10) {
    const w = b.pcr10.get(k);
    if (w === undefined || Buffer.compare(Buffer.from(v), Buffer.from(w)) !== 0) return false;
  }
  return true;
}

/** A UINT32 value. */
export function checkU32(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > U32_MAX) throw misuse(`${field} must be an integer 0..${U32_MAX}`);
  return v;
}

/** One queued ledger write: a plain decision, or an attestation with its consumption and counters. */
export type LedgerOp = { readonly kind: 'decision'; readonly decision: DecisionInput } | { readonly kind: 'attestation'; readonly commit: AttestationCommit };

// --- ledger checkpoints and retained inputs (migration v6) ------------------------------------

const INPUT_KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
/** Largest retained input: evidence is at most 1 MiB (EVIDENCE_MAX_BYTES), a context less. */
export const RETAINED_INPUT_MAX_BYTES = 4 * 1024 * 1024;

/** Checks inputs to retain: a 64-hex-digit digest, a lower-case token kind, bytes within the limit. */
export function checkInputs(inputs: readonly NewRetainedInput[] | undefined, name: string, verifyDigest = false): readonly NewRetainedInput[] {
  if (inputs === undefined) return [];
  if (!Array.isArray(inputs) || inputs.length > 64) throw misuse(`${name} must be an array of at most 64 inputs`);
  for (const i of inputs) {
    if (typeof i.digest !== 'string' || !HEX64_RE.test(i.digest)) throw misuse(`${name}: digest must be 64 lower-case hex digits`);
    if (typeof i.kind !== 'string' || !INPUT_KIND_RE.test(i.kind)) throw misuse(`${name}: kind must be a lower-case token`);
    if (!(i.bytes instanceof Uint8Array) || i.bytes.length > RETAINED_INPUT_MAX_BYTES) throw misuse(`${name}: bytes must be a Uint8Array of at most ${RETAINED_INPUT_MAX_BYTES} bytes`);
    // With a decision the digest is the caller's, which hashed the bytes once on the hot path;
    // putInputs takes it again. Readers re-check it anyway: replay refuses bytes that do not hash to their digest.
    if (verifyDigest && createHash('sha256').update(i.bytes).digest('hex') !== i.digest) throw misuse(`${name}: the bytes of input ${i.digest} do not hash to its digest`);
  }
  return inputs;
}

/** Checks a checkpoint record before it is stored. */
export function checkCheckpoint(c: CheckpointRecord): void {
  if (!Number.isSafeInteger(c.treeSize) || c.treeSize < 1) throw misuse('putCheckpoint: treeSize must be a positive integer');
  checkBytes(c.rootHash, 'rootHash', 32);
  checkTime(c.signedAt, 'signedAt');
  if (typeof c.kid !== 'string' || c.kid.length === 0 || c.kid.length > 128) throw misuse('putCheckpoint: kid must be 1..128 characters');
  if (typeof c.jws !== 'string' || c.jws.length === 0 || c.jws.length > 4096) throw misuse('putCheckpoint: jws must be 1..4096 characters');
}

export function checkpointFromRow(r: Row): CheckpointRecord {
  const t = 'ledger_checkpoints';
  const rootHash = colBlob(r, t, 'root_hash');
  if (rootHash.length !== 32) throw corrupt(t, 'root_hash', `${rootHash.length} bytes`);
  return { treeSize: colInt(r, t, 'tree_size'), rootHash, signedAt: colInt(r, t, 'signed_at'), kid: colText(r, t, 'kid'), jws: colText(r, t, 'jws') };
}

export function inputFromRow(r: Row): RetainedInput {
  const t = 'retained_inputs';
  const digest = colText(r, t, 'digest');
  if (!HEX64_RE.test(digest)) throw corrupt(t, 'digest', 'a value that is not 64 hex digits');
  const bytes = colBlobOrNull(r, t, 'bytes');
  const prunedAt = colIntOrNull(r, t, 'pruned_at');
  if ((bytes === null) !== (prunedAt !== null)) throw corrupt(t, 'pruned_at', bytes === null ? 'NULL for pruned bytes' : 'a time for bytes still held');
  return { digest, kind: colText(r, t, 'kind'), bytes, storedAt: colInt(r, t, 'stored_at'), prunedAt };
}

/** The lower-case hex digest check of store calls that take one. */
export function checkDigest(v: unknown, name: string): string {
  if (typeof v !== 'string' || !HEX64_RE.test(v)) throw misuse(`${name} must be 64 lower-case hex digits`);
  return v;
}

// --- argument checks both stores make, before the database is touched --------------------------
// `id` is the store's id check (checkId; PostgreSQL's also refuses U+0000, which its text cannot hold).

/** An id check: returns the id, or throws MISUSE_ARGUMENT. */
export type IdCheck = (v: unknown, name: string) => string;

/** A `limit` of a list call: 1..MAX_LIST. */
export function checkLimit(limit: number, op: string): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST) throw misuse(`${op}: limit must be 1..${MAX_LIST}`);
}

/** A ledger seq argument: a positive integer. */
export function checkSeq(seq: number, what: string): void {
  if (!Number.isSafeInteger(seq) || seq < 1) throw misuse(`${what} must be a positive integer`);
}

/** A secret id: 1..64 of [a-z0-9._-]. */
export function checkSecretId(v: unknown, op: string): string {
  if (typeof v !== 'string' || !SECRET_ID_RE.test(v)) throw misuse(`${op}: secretId must be 1..64 of [a-z0-9._-]`);
  return v;
}

/** An operator's revocation reason: 1..512 characters. */
export function checkRevokeReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > 512) throw misuse('revokeNode: reason must be 1..512 characters');
  return reason;
}

/** A challenge to create; returns its nonce and its parameters as canonical CBOR. */
export function checkNewChallenge(c: NewChallenge, id: IdCheck): { nonce: Buffer; params: Buffer } {
  id(c.challengeId, 'challengeId');
  id(c.nodeId, 'nodeId');
  const nonce = checkBytes(c.nonce, 'nonce');
  checkTime(c.createdAt, 'createdAt');
  checkTime(c.expiresAt, 'expiresAt');
  if (c.expiresAt <= c.createdAt) throw misuse('createChallenge: expiresAt must be after createdAt');
  const params = Buffer.from(encodeCanonical(c.params, { maxDepth: PARAMS_LIMITS.maxDepth }));
  if (params.length > PARAMS_LIMITS.maxBytes) throw misuse(`createChallenge: params exceed ${PARAMS_LIMITS.maxBytes} bytes`);
  return { nonce, params };
}

/** An SNP-only enrollment's first step; returns the insert's values in column order. */
export function checkNewPendingSnp(p: PendingSnpEnrollment, id: IdCheck): [string, string, string, Buffer, Buffer, number, number] {
  const args: [string, string, string, Buffer, Buffer, number, number] = [
    id(p.enrollmentId, 'enrollmentId'),
    id(p.nodeId, 'nodeId'),
    id(p.group, 'group'),
    checkBytes(p.nodeKey, 'nodeKey'),
    checkBytes(p.nonce, 'nonce'),
    checkTime(p.createdAt, 'createdAt'),
    checkTime(p.expiresAt, 'expiresAt'),
  ];
  if (p.nodeKey.length === 0) throw misuse('createPendingSnpEnrollment: nodeKey is empty');
  if (p.nonce.length < 16) throw misuse('createPendingSnpEnrollment: nonce must be at least 16 bytes');
  if (p.expiresAt <= p.createdAt) throw misuse('createPendingSnpEnrollment: expiresAt must be after createdAt');
  return args;
}

/** A secret row to store (ciphertext only). */
export function checkSecretRecord(r: SecretRecord, id: IdCheck): void {
  checkSecretId(r.secretId, 'putSecret');
  if (r.tenant !== null) id(r.tenant, 'tenant');
  if (r.nonce.length !== 12 || r.ciphertext.length < 16) throw misuse('putSecret: nonce must be 12 bytes and ciphertext at least 16');
  checkTime(r.createdAt, 'createdAt');
  checkTime(r.updatedAt, 'updatedAt');
}
