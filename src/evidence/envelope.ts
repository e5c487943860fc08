/**
 * The evidence envelope, version 1: one map per submission, in canonical CBOR (application/cbor)
 * or JSON with base64url byte strings (application/json). Both decode to the same
 * {@link Evidence}; its digest is taken over the canonical CBOR, so the transport does not change
 * what a decision records.
 *
 * ```
 * {
 *   "v":         1,
 *   "challenge": text      challenge id issued by the verifier
 *   "node":      text      enrolled node id
 *   "boundKey":  bytes     SubjectPublicKeyInfo (DER) of the agent's ephemeral key (an SNP-only
 *                          node binds its enrolled node key)
 *   "tpm": {                required for a TPM node; absent for an SNP-only node
 *     "attest":    bytes   TPMS_ATTEST exactly as TPM2_Quote returned it
 *     "signature": bytes   TPMT_SIGNATURE
 *     "pcrs":      { bank name: { PCR index: bytes } }   e.g. {"sha256": {0: h'…', 7: h'…'}}
 *     "eventLog":  bytes   optional: the UEFI TCG event log (binary_bios_measurements)
 *     "imaLog":    bytes   optional: IMA binary measurement-list entries, from entry `imaStart` on
 *     "imaStart":  uint    with imaLog: index of its first entry in the node's list since boot
 *   }
 *   "snp": {                optional next to the TPM evidence (a confidential VM with a vTPM);
 *                          required without it (an SNP-only node)
 *     "report":    bytes   the 1184-byte SEV-SNP attestation report, REPORT_DATA = teeReportData(nonce, key)
 *     "certTable": bytes   optional: the certificate table of the extended report (VCEK/VLEK, ASK, ARK, CRL)
 *   }
 *   "tdx": {                optional next to the TPM evidence (a TDX trust domain with a vTPM); never
 *                          without it (TDX-only nodes are not supported) and never with `snp`
 *     "quote":     bytes   the DCAP quote exactly as configfs-tsm returned it, REPORTDATA = teeReportData(nonce, key)
 *     "ccelTable": bytes   optional: the ACPI CCEL table (/sys/firmware/acpi/tables/CCEL)
 *     "ccelData":  bytes   with ccelTable: the CCEL log area (/sys/firmware/acpi/tables/data/CCEL)
 *   }
 *   "keyProof":  bytes     SNP-only nodes only, and required there: 64 bytes, ECDSA P-256 (r ‖ s) by
 *                          the node key over nodeKeyProofMessage(nonce, report) (binding.ts)
 * }
 * ```
 * Exactly one of two shapes: `tpm` (with `snp` or `tdx` optional, no `keyProof`), or SNP-only
 * (`snp` and `keyProof`, no `tpm`, no `tdx`). `tdx` without `tpm` is EVIDENCE_KIND_UNSUPPORTED.
 * In JSON, PCR indices are decimal strings and byte strings are unpadded base64url. Any other
 * key, at any level, is an error: an unknown field is never ignored.
 */
import { createHash } from 'node:crypto';
import { decodeStrict, encodeCanonical, type CborValue } from '../lib/cbor.js';
import { fromBase64Url, toBase64Url } from '../lib/bytes.js';
import { ParseError, isVouchError } from '../lib/errors.js';
import { hashById, hashByName } from '../tpm/abi/constants.js';

/** The envelope version this verifier reads. */
export const EVIDENCE_VERSION = 1;

/** Largest evidence accepted (event and IMA logs included). */
export const EVIDENCE_MAX_BYTES = 8 * 1024 * 1024;

/** TPM evidence of one submission. */
export interface TpmEvidence {
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  /** PCR values by hash algorithm id and index. */
  readonly pcrs: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
  readonly eventLog?: Uint8Array;
  /** IMA binary measurement-list entries, the first of which is entry `imaStart` since boot. */
  readonly imaLog?: Uint8Array;
  readonly imaStart?: number;
}

/** What every envelope carries. */
interface EvidenceCommon {
  readonly version: typeof EVIDENCE_VERSION;
  readonly challengeId: string;
  readonly nodeId: string;
  readonly boundKey: Uint8Array;
}

/** Evidence of a TPM node: the quote, and optionally an SEV-SNP report or a TDX quote from the same attestation. */
export interface TpmNodeEvidence extends EvidenceCommon {
  readonly tpm: TpmEvidence;
  /** SEV-SNP report (and certificate table) from the same attestation. */
  readonly snp?: SnpEvidence;
  /** TDX quote (and CCEL) from the same attestation; never together with `snp`. */
  readonly tdx?: TdxEvidence;
  readonly keyProof?: undefined;
}

/** Evidence of an SNP-only node (a confidential VM without a vTPM). */
export interface SnpOnlyEvidence extends EvidenceCommon {
  readonly tpm?: undefined;
  readonly snp: SnpEvidence;
  readonly tdx?: undefined;
  /** ECDSA P-256 (IEEE P1363) by the node key over nodeKeyProofMessage(nonce, snp.report). */
  readonly keyProof: Uint8Array;
}

/** A decoded evidence envelope. Nothing in it is trusted until appraised. */
export type Evidence = TpmNodeEvidence | SnpOnlyEvidence;

/** SEV-SNP evidence of one submission. */
export interface SnpEvidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
}

/** TDX evidence of one submission: raw bytes, untrusted until the quote is verified and the CCEL replayed. */
export interface TdxEvidence {
  /** The DCAP quote exactly as configfs-tsm (provider tdx_guest) returned it. */
  readonly quote: Uint8Array;
  /** The ACPI CCEL table; present exactly when `ccelData` is. */
  readonly ccelTable?: Uint8Array;
  /** The CCEL log area. */
  readonly ccelData?: Uint8Array;
}

const TOP_KEYS = ['v', 'challenge', 'node', 'boundKey', 'tpm', 'snp', 'tdx', 'keyProof'] as const;
const REQUIRED_KEYS = ['v', 'challenge', 'node', 'boundKey'] as const;
/** Size of `keyProof` (ECDSA P-256 r ‖ s). */
const KEY_PROOF_BYTES = 64;
const RESERVED_KINDS = ['gpu'] as const;
const SNP_KEYS = ['report', 'certTable'] as const;
const TDX_KEYS = ['quote', 'ccelTable', 'ccelData'] as const;
/** Largest TDX quote accepted (the decoder's own limit; real quotes are about 5 KiB). */
const TDX_QUOTE_MAX_BYTES = 1024 * 1024;
const TPM_KEYS = ['attest', 'signature', 'pcrs', 'eventLog', 'imaLog', 'imaStart'] as const;
const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

function malformed(field: string, message: string): ParseError {
  return new ParseError('EVIDENCE_MALFORMED', `evidence.${field}: ${message}`, { field: `evidence.${field}` });
}

/** Byte strings: Uint8Array in CBOR, base64url text in JSON. */
type BytesReader = (v: unknown, field: string) => Uint8Array;

const cborBytes: BytesReader = (v, field) => {
  if (v instanceof Uint8Array) return v;
  throw malformed(field, 'must be a byte string');
};

const jsonBytes: BytesReader = (v, field) => {
  if (typeof v !== 'string') throw malformed(field, 'must be a base64url string');
  try {
    return fromBase64Url(v, `evidence.${field}`);
  } catch (e) {
    if (isVouchError(e)) throw malformed(field, 'is not unpadded base64url');
    throw e;
  }
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map);
}

function entriesOf(v: unknown, field: string): Array<[string | number, unknown]> {
  if (v instanceof Map) {
    const out: Array<[string | number, unknown]> = [];
    for (const [k, val] of v) {
      if (typeof k !== 'string' && typeof k !== 'number') throw malformed(field, 'has a key that is neither text nor an integer');
      out.push([k, val]);
    }
    return out;
  }
  if (isRecord(v)) return Object.entries(v);
  throw malformed(field, 'must be a map');
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if ((RESERVED_KINDS as readonly string[]).includes(k) && field === '') {
      throw new ParseError('EVIDENCE_KIND_UNSUPPORTED', `evidence.${k}: this verifier does not appraise ${k} evidence yet`, { field: `evidence.${k}` });
    }
    if (!allowed.includes(k)) {
      const path = field === '' ? `evidence.${k}` : `evidence.${field}.${k}`;
      throw new ParseError('EVIDENCE_UNKNOWN_FIELD', `${path} is not a field of evidence version ${EVIDENCE_VERSION}`, { field: path });
    }
  }
}

function readText(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ID_RE.test(v)) throw malformed(field, 'must be 1..128 characters of [A-Za-z0-9._:-]');
  return v;
}

function readPcrs(v: unknown, bytes: BytesReader, json: boolean): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bankName, bankValues] of entriesOf(v, 'tpm.pcrs')) {
    const h = typeof bankName === 'string' ? hashByName(bankName) : undefined;
    if (h === undefined) throw malformed(`tpm.pcrs.${String(bankName)}`, 'is not a supported PCR bank name');
    const m = new Map<number, Uint8Array>();
    for (const [idx, value] of entriesOf(bankValues, `tpm.pcrs.${h.name}`)) {
      const field = `tpm.pcrs.${h.name}[${String(idx)}]`;
      let index: number;
      if (json) {
        if (typeof idx !== 'string' || !/^(?:[0-9]|[12][0-9]|3[01])$/.test(idx)) throw malformed(field, 'the index must be a decimal string 0..31');
        index = Number(idx);
      } else {
        if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || idx > 31) throw malformed(field, 'the index must be an integer 0..31');
        index = idx;
      }
      const digest = bytes(value, field);
      if (digest.length !== h.size) throw malformed(field, `is ${digest.length} bytes, ${h.name} digests are ${h.size}`);
      m.set(index, digest);
    }
    if (m.size === 0) throw malformed(`tpm.pcrs.${h.name}`, 'is empty');
    out.set(h.id, m);
  }
  return out;
}

function fromDataModel(doc: unknown, bytes: BytesReader, json: boolean): Evidence {
  if (!isRecord(doc)) throw malformed('', 'the envelope must be a map with text keys');
  checkKeys(doc, TOP_KEYS, '');
  if (doc['v'] !== EVIDENCE_VERSION) {
    throw new ParseError('EVIDENCE_VERSION_UNSUPPORTED', `evidence.v must be ${EVIDENCE_VERSION}`, {
      field: 'evidence.v',
      expected: String(EVIDENCE_VERSION),
      actual: String(doc['v']),
    });
  }
  for (const k of REQUIRED_KEYS) if (!(k in doc)) throw malformed(k, 'is missing');
  let snp: SnpEvidence | undefined;
  if (doc['snp'] !== undefined) {
    const sd = doc['snp'];
    if (!isRecord(sd)) throw malformed('snp', 'must be a map with text keys');
    checkKeys(sd, SNP_KEYS, 'snp');
    if (!('report' in sd)) throw malformed('snp.report', 'is missing');
    const report = bytes(sd['report'], 'snp.report');
    if (report.length !== 1184) throw malformed('snp.report', `is ${report.length} bytes, an SNP report is 1184`);
    snp = { report, ...(sd['certTable'] !== undefined ? { certTable: bytes(sd['certTable'], 'snp.certTable') } : {}) };
  }
  let tdx: TdxEvidence | undefined;
  if (doc['tdx'] !== undefined) {
    const td = doc['tdx'];
    if (!isRecord(td)) throw malformed('tdx', 'must be a map with text keys');
    checkKeys(td, TDX_KEYS, 'tdx');
    if (!('quote' in td)) throw malformed('tdx.quote', 'is missing');
    const quote = bytes(td['quote'], 'tdx.quote');
    if (quote.length === 0 || quote.length > TDX_QUOTE_MAX_BYTES) throw malformed('tdx.quote', `is ${quote.length} bytes, a TDX quote is 1..${TDX_QUOTE_MAX_BYTES}`);
    const hasTable = td['ccelTable'] !== undefined;
    if (hasTable !== (td['ccelData'] !== undefined)) throw malformed(hasTable ? 'tdx.ccelData' : 'tdx.ccelTable', 'ccelTable and ccelData come together');
    tdx = { quote, ...(hasTable ? { ccelTable: bytes(td['ccelTable'], 'tdx.ccelTable'), ccelData: bytes(td['ccelData'], 'tdx.ccelData') } : {}) };
    if (doc['tpm'] === undefined) {
      throw new ParseError('EVIDENCE_KIND_UNSUPPORTED', 'evidence.tdx: TDX evidence is appraised next to TPM evidence only (a TDX trust domain with a vTPM); TDX-only nodes are not supported', { field: 'evidence.tdx' });
    }
    if (snp !== undefined) throw malformed('tdx', 'snp and tdx exclude each other: one confidential VM is either an SEV-SNP guest or a TDX trust domain');
  }
  const boundKey = bytes(doc['boundKey'], 'boundKey');
  if (boundKey.length === 0 || boundKey.length > 1024) throw malformed('boundKey', 'must be 1..1024 bytes of SubjectPublicKeyInfo');
  const common = {
    version: EVIDENCE_VERSION,
    challengeId: readText(doc['challenge'], 'challenge'),
    nodeId: readText(doc['node'], 'node'),
    boundKey,
  } as const;
  const tpm = doc['tpm'];
  if (tpm === undefined) {
    // SNP-only: the report and the proof of possession of the node key, both required.
    if (snp === undefined) throw malformed('tpm', 'is missing (evidence without tpm is SNP-only and needs snp and keyProof)');
    if (doc['keyProof'] === undefined) throw malformed('keyProof', 'is missing: SNP-only evidence needs the node key proof');
    const keyProof = bytes(doc['keyProof'], 'keyProof');
    if (keyProof.length !== KEY_PROOF_BYTES) throw malformed('keyProof', `is ${keyProof.length} bytes, a key proof is ${KEY_PROOF_BYTES} (r || s)`);
    return { ...common, snp, keyProof };
  }
  if (!isRecord(tpm)) throw malformed('tpm', 'must be a map with text keys');
  if (doc['keyProof'] !== undefined) throw malformed('keyProof', 'is only for SNP-only evidence; a TPM node proves its key with the quote');
  checkKeys(tpm, TPM_KEYS, 'tpm');
  for (const k of ['attest', 'signature', 'pcrs']) if (!(k in tpm)) throw malformed(`tpm.${k}`, 'is missing');
  const hasIma = tpm['imaLog'] !== undefined;
  if (hasIma !== (tpm['imaStart'] !== undefined)) throw malformed('tpm.imaStart', 'imaLog and imaStart come together');
  const imaStart = tpm['imaStart'];
  if (hasIma && (typeof imaStart !== 'number' || !Number.isSafeInteger(imaStart) || imaStart < 0 || imaStart > 0xffffffff)) {
    throw malformed('tpm.imaStart', 'must be an integer 0..2^32-1');
  }
  return {
    ...common,
    tpm: {
      attest: bytes(tpm['attest'], 'tpm.attest'),
      signature: bytes(tpm['signature'], 'tpm.signature'),
      pcrs: readPcrs(tpm['pcrs'], bytes, json),
      ...(tpm['eventLog'] !== undefined ? { eventLog: bytes(tpm['eventLog'], 'tpm.eventLog') } : {}),
      ...(hasIma ? { imaLog: bytes(tpm['imaLog'], 'tpm.imaLog'), imaStart: imaStart as number } : {}),
    },
    ...(snp !== undefined ? { snp } : {}),
    ...(tdx !== undefined ? { tdx } : {}),
  };
}

/** Decodes a canonical CBOR envelope. Non-canonical CBOR, unknown keys and wrong types are errors. */
export function decodeEvidenceCbor(bytes: Uint8Array): Evidence {
  if (bytes.length > EVIDENCE_MAX_BYTES) throw new ParseError('REQUEST_TOO_LARGE', `evidence exceeds ${EVIDENCE_MAX_BYTES} bytes`);
  let doc: CborValue;
  try {
    doc = decodeStrict(bytes, { maxBytes: EVIDENCE_MAX_BYTES, maxDepth: 8 });
  } catch (e) {
    if (isVouchError(e)) throw new ParseError('EVIDENCE_MALFORMED', `evidence is not canonical CBOR: ${e.message}`, { field: 'evidence', cause: e });
    throw e;
  }
  return fromDataModel(doc, cborBytes, false);
}

/**
 * Decodes a canonical CBOR envelope and returns its evidence digest, taken over the received
 * bytes: decodeStrict accepts only the canonical encoding, and the envelope maps one to one to
 * its data model, so these bytes are exactly what {@link encodeEvidenceCbor} would write and
 * their SHA-256 is {@link evidenceDigest} without a re-encoding (a test holds the two equal).
 */
export function decodeEvidenceCborWithDigest(bytes: Uint8Array): { evidence: Evidence; digest: Uint8Array } {
  const evidence = decodeEvidenceCbor(bytes);
  return { evidence, digest: new Uint8Array(createHash('sha256').update(bytes).digest()) };
}

/** Decodes a JSON envelope (byte strings as unpadded base64url, PCR indices as decimal strings). */
export function decodeEvidenceJson(text: string): Evidence {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new ParseError('EVIDENCE_MALFORMED', 'evidence is not valid JSON', { field: 'evidence', cause });
  }
  return fromDataModel(doc, jsonBytes, true);
}

/** Decodes an already parsed JSON envelope (as a JSON body parser returns it). */
export function decodeEvidenceJsonValue(doc: unknown): Evidence {
  return fromDataModel(doc, jsonBytes, true);
}

/** The CBOR data model of an envelope (what is encoded and digested). */
function toDataModel(e: Evidence): Map<string, unknown> {
  const out = new Map<string, unknown>([
    ['v', e.version],
    ['challenge', e.challengeId],
    ['node', e.nodeId],
    ['boundKey', e.boundKey],
  ]);
  if (e.tpm !== undefined) {
    const pcrs = new Map<string, Map<number, Uint8Array>>();
    for (const [alg, values] of e.tpm.pcrs) {
      const h = hashById(alg);
      if (h === undefined) throw malformed('tpm.pcrs', `bank ${alg} is not supported`);
      pcrs.set(h.name, new Map(values));
    }
    const tpm = new Map<string, unknown>([
      ['attest', e.tpm.attest],
      ['signature', e.tpm.signature],
      ['pcrs', pcrs],
    ]);
    if (e.tpm.eventLog !== undefined) tpm.set('eventLog', e.tpm.eventLog);
    if (e.tpm.imaLog !== undefined) tpm.set('imaLog', e.tpm.imaLog);
    if (e.tpm.imaStart !== undefined) tpm.set('imaStart', e.tpm.imaStart);
    out.set('tpm', tpm);
  }
  if (e.snp !== undefined) {
    const snp = new Map<string, unknown>([['report', e.snp.report]]);
    if (e.snp.certTable !== undefined) snp.set('certTable', e.snp.certTable);
    out.set('snp', snp);
  }
  if (e.tdx !== undefined) {
    const tdx = new Map<string, unknown>([['quote', e.tdx.quote]]);
    if (e.tdx.ccelTable !== undefined) tdx.set('ccelTable', e.tdx.ccelTable);
    if (e.tdx.ccelData !== undefined) tdx.set('ccelData', e.tdx.ccelData);
    out.set('tdx', tdx);
  }
  if (e.keyProof !== undefined) out.set('keyProof', e.keyProof);
  return out;
}

/** The canonical CBOR encoding of an envelope. */
export function encodeEvidenceCbor(e: Evidence): Uint8Array {
  return encodeCanonical(toDataModel(e));
}

/** The JSON encoding of an envelope. */
export function encodeEvidenceJson(e: Evidence): string {
  let tpm: Record<string, unknown> | undefined;
  if (e.tpm !== undefined) {
    const pcrs: Record<string, Record<string, string>> = {};
    for (const [alg, values] of e.tpm.pcrs) {
      const h = hashById(alg);
      if (h === undefined) throw malformed('tpm.pcrs', `bank ${alg} is not supported`);
      pcrs[h.name] = Object.fromEntries([...values].sort(([a], [b]) => a - b).map(([i, v]) => [String(i), toBase64Url(v)]));
    }
    tpm = {
      attest: toBase64Url(e.tpm.attest),
      signature: toBase64Url(e.tpm.signature),
      pcrs,
      ...(e.tpm.eventLog !== undefined ? { eventLog: toBase64Url(e.tpm.eventLog) } : {}),
      ...(e.tpm.imaLog !== undefined ? { imaLog: toBase64Url(e.tpm.imaLog) } : {}),
      ...(e.tpm.imaStart !== undefined ? { imaStart: e.tpm.imaStart } : {}),
    };
  }
  return JSON.stringify({
    v: e.version,
    challenge: e.challengeId,
    node: e.nodeId,
    boundKey: toBase64Url(e.boundKey),
    ...(tpm !== undefined ? { tpm } : {}),
    ...(e.snp !== undefined
      ? { snp: { report: toBase64Url(e.snp.report), ...(e.snp.certTable !== undefined ? { certTable: toBase64Url(e.snp.certTable) } : {}) } }
      : {}),
    ...(e.tdx !== undefined
      ? {
          tdx: {
            quote: toBase64Url(e.tdx.quote),
            ...(e.tdx.ccelTable !== undefined ? { ccelTable: toBase64Url(e.tdx.ccelTable) } : {}),
            ...(e.tdx.ccelData !== undefined ? { ccelData: toBase64Url(e.tdx.ccelData) } : {}),
          },
        }
      : {}),
    ...(e.keyProof !== undefined ? { keyProof: toBase64Url(e.keyProof) } : {}),
  });
}

/** SHA-256 of the canonical CBOR encoding: the evidence digest every decision records. */
export function evidenceDigest(e: Evidence): Uint8Array {
  return new Uint8Array(createHash('sha256').update(encodeEvidenceCbor(e)).digest());
}
