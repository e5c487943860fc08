/**
 * Candidate AMD certificates and CRLs for one report, gathered from where a caller finds them
 * (the report's own certificate table, a trust directory of PEM and DER files), and the choice
 * of the one chain — VCEK → ASK → ARK or VLEK → ASVK → ARK — and the one CRL to verify.
 *
 * Nothing here is trusted or verified: ./verify.ts checks every signature, the ARK pin, the
 * validity periods, the AMD extensions and revocation. The choice decides only which
 * certificates are checked; where it is not unique it is refused with the reason, never guessed.
 * Certificates are told apart by what they are (CA or not, AMD extensions, issuer and subject
 * names), not by file names or table labels.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { X509Crl } from '@peculiar/x509';
import { bytesEqual } from '../lib/bytes.js';
import { ParseError, isVouchError } from '../lib/errors.js';
import { Reader } from '../lib/reader.js';
import { SNP_SIGNING_KEY, snpChipIdMasked, type SnpProduct, type SnpReport } from './abi.js';
import { AMD_ARK_FINGERPRINTS, parseSnpCertificate, type SnpCertificate } from './certs.js';
import type { SnpCertTableEntry } from './certtable.js';

/** Largest PEM or DER collateral item read (1 MiB; AMD certificates and CRLs are < 10 KiB). */
export const SNP_COLLATERAL_MAX_BYTES = 1024 * 1024;

// --- DER: certificate or CRL --------------------------------------------------------------------

const TAG_INTEGER = 0x02;
const TAG_SEQUENCE = 0x30;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_VERSION = 0xa0; // [0] EXPLICIT, context-specific, constructed

/** One DER TLV with a single-octet tag and a definite length of at most four octets. */
function tlv(r: Reader, field: string): { tag: number; value: Uint8Array } {
  const at = r.offset;
  const tag = r.u8(`${field}.tag`);
  if ((tag & 0x1f) === 0x1f) throw r.error('PARSE_BAD_VALUE', `${field}.tag`, 'multi-octet tags do not occur in X.509', { at, actual: `0x${tag.toString(16)}` });
  const lenAt = r.offset;
  const first = r.u8(`${field}.length`);
  let len = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw r.error('PARSE_BAD_VALUE', `${field}.length`, n === 0 ? 'indefinite length is not DER' : `${n} length octets`, { at: lenAt });
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + r.u8(`${field}.length`);
  }
  return { tag, value: r.bytes(len, `${field}.value`) };
}

/**
 * Whether DER bytes are an X.509 certificate or a CRL, from their structure (RFC 5280 §4.1 and
 * §5.1), read through the bounds-checked reader:
 *
 * ```
 * TBSCertificate ::= SEQUENCE { [0] version | serialNumber INTEGER, signature AlgorithmIdentifier,
 *                               issuer Name, validity SEQUENCE, ... }
 * TBSCertList    ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier,
 *                               issuer Name, thisUpdate Time, ... }
 * ```
 *
 * After the optional leading INTEGER, the AlgorithmIdentifier and the issuer Name, a
 * certificate has its validity SEQUENCE and a CRL its thisUpdate time (UTCTime or
 * GeneralizedTime). Bytes after the outer SEQUENCE are left to the parser of the kind found.
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_BAD_VALUE, PARSE_BAD_MAGIC when the bytes are neither
 */
export function snpDerKind(der: Uint8Array, field = 'DER'): 'certificate' | 'crl' {
  const outer = new Reader(der, field);
  const top = tlv(outer, 'outer');
  if (top.tag !== TAG_SEQUENCE) throw outer.error('PARSE_BAD_MAGIC', 'outer.tag', 'not a DER SEQUENCE', { at: 0, expected: '0x30', actual: `0x${top.tag.toString(16)}` });
  // Sub-readers carry the absolute offset of their first byte, so errors point into `der`.
  const bodyAt = outer.offset - top.value.length;
  const body = new Reader(top.value, field, bodyAt);
  const tbs = tlv(body, 'tbs');
  if (tbs.tag !== TAG_SEQUENCE) throw body.error('PARSE_BAD_MAGIC', 'tbs.tag', 'the first element is not a SEQUENCE', { at: 0, expected: '0x30', actual: `0x${tbs.tag.toString(16)}` });
  const r = new Reader(tbs.value, `${field}.tbs`, bodyAt + body.offset - tbs.value.length);
  const first = tlv(r, '[0]');
  if (first.tag === TAG_VERSION) return 'certificate';
  const alg = first.tag === TAG_INTEGER ? tlv(r, '[1]') : first;
  if (alg.tag !== TAG_SEQUENCE) throw r.error('PARSE_BAD_VALUE', 'signature', 'no AlgorithmIdentifier where a certificate or CRL has one');
  const issuer = tlv(r, 'issuer');
  if (issuer.tag !== TAG_SEQUENCE) throw r.error('PARSE_BAD_VALUE', 'issuer', 'no issuer Name where a certificate or CRL has one');
  const next = tlv(r, 'validity|thisUpdate');
  if (next.tag === TAG_SEQUENCE) return 'certificate';
  if (next.tag === TAG_UTC_TIME || next.tag === TAG_GENERALIZED_TIME) return 'crl';
  throw r.error('PARSE_BAD_VALUE', 'validity|thisUpdate', 'neither a certificate validity nor a CRL thisUpdate follows the issuer', { actual: `tag 0x${next.tag.toString(16)}` });
}

// --- PEM: certificates and CRLs -----------------------------------------------------------------

/** PEM labels read (RFC 7468 §5 and §6). */
export type SnpPemLabel = 'CERTIFICATE' | 'X509 CRL';

const PEM_LINE = /^-----(BEGIN|END) ([A-Z0-9 ]+)-----$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function pemError(message: string, field: string, extra: { expected?: string; actual?: string } = {}): ParseError {
  return new ParseError('PARSE_BAD_ENCODING', `${field}: ${message}`, { field, ...extra });
}

/**
 * Splits PEM text into its CERTIFICATE and X509 CRL blocks, in order. Explanatory text between
 * blocks is allowed (RFC 7468 §5.2); inside a block only strict, canonical base64 lines are.
 * Any other label is an error, as is a block without its END line.
 *
 * @throws ParseError PARSE_BAD_ENCODING
 */
export function splitSnpPem(text: string, field = 'PEM'): { label: SnpPemLabel; der: Uint8Array }[] {
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(text)) throw pemError('PEM text holds non-ASCII or control characters', field);
  const out: { label: SnpPemLabel; der: Uint8Array }[] = [];
  let open: { label: SnpPemLabel; lines: string[] } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    const m = PEM_LINE.exec(line);
    const blockField = `${field}[${out.length}]`;
    if (open === undefined) {
      if (m === null) continue;
      const label = m[2];
      if (m[1] !== 'BEGIN' || (label !== 'CERTIFICATE' && label !== 'X509 CRL')) {
        throw pemError(`line ${i + 1} is "${line}": expected a CERTIFICATE or X509 CRL block`, blockField, { expected: 'BEGIN CERTIFICATE | BEGIN X509 CRL', actual: line });
      }
      open = { label, lines: [] };
      continue;
    }
    if (m === null) {
      open.lines.push(line);
      continue;
    }
    if (m[1] !== 'END' || m[2] !== open.label) throw pemError(`line ${i + 1} is "${line}", expected "-----END ${open.label}-----"`, blockField, { expected: `-----END ${open.label}-----`, actual: line });
    const b64 = open.lines.join('');
    if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) throw pemError('the body is not padded base64', blockField);
    const der = Buffer.from(b64, 'base64');
    if (der.toString('base64') !== b64) throw pemError('the body is not canonical base64', blockField);
    out.push({ label: open.label, der: new Uint8Array(der) });
    open = undefined;
  }
  if (open !== undefined) throw pemError(`no "-----END ${open.label}-----" line`, `${field}[${out.length}]`, { expected: `-----END ${open.label}-----` });
  return out;
}

// --- CRLs -------------------------------------------------------------------------------------------

/** What a CRL says about itself, before any signature check. */
export interface SnpCrlHead {
  /** The CRL DER exactly as given. */
  readonly der: Uint8Array;
  /** SHA-256 of `der`, hex. */
  readonly fingerprint: string;
  /** The issuer name, in the same text form as SnpCertificate.cert.subject. */
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

/**
 * Reads a CRL's issuer and update times (not its signature: ./verify.ts checks that).
 *
 * @throws ParseError SNP_CERT_MALFORMED
 */
export function parseSnpCrlHead(der: Uint8Array, field = 'crl'): SnpCrlHead {
  let crl: X509Crl;
  try {
    if (der.length > SNP_COLLATERAL_MAX_BYTES) throw new RangeError(`${der.length} bytes is more than ${SNP_COLLATERAL_MAX_BYTES}`);
    crl = new X509Crl(der);
  } catch (e) {
    throw new ParseError('SNP_CERT_MALFORMED', `${field}: the CRL does not parse: ${e instanceof Error ? e.message : String(e)}`, { field, cause: e });
  }
  return {
    der,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate !== undefined ? { nextUpdate: crl.nextUpdate } : {}),
  };
}

// --- files ---------------------------------------------------------------------------------------

/** Certificates and CRLs read from one file or table entry. */
export interface SnpCollateralItems {
  readonly certificates: SnpCertificate[];
  readonly crls: SnpCrlHead[];
}

/**
 * Reads one file of AMD collateral. DER starts with a SEQUENCE whose length is in the long form
 * (0x30 0x81..0x84: every certificate and CRL is longer than 127 bytes), and that second byte
 * is not ASCII, so it cannot begin PEM text; anything else is read as PEM. A DER item is a
 * certificate or a CRL by its structure ({@link snpDerKind}); a PEM item by its label.
 *
 * @throws ParseError SNP_CERT_MALFORMED, PARSE_BAD_ENCODING, PARSE_* (not a certificate or CRL)
 */
export function readSnpCollateral(bytes: Uint8Array, source: string): SnpCollateralItems {
  if (bytes.length > SNP_COLLATERAL_MAX_BYTES) {
    throw new ParseError('PARSE_SIZE_EXCEEDED', `${source}: ${bytes.length} bytes is more than ${SNP_COLLATERAL_MAX_BYTES}`, { field: source, expected: `<= ${SNP_COLLATERAL_MAX_BYTES} bytes`, actual: `${bytes.length} bytes` });
  }
  const isDer = bytes.length >= 2 && bytes[0] === TAG_SEQUENCE && (bytes[1] as number) >= 0x81 && (bytes[1] as number) <= 0x84;
  const items = isDer
    ? [{ kind: snpDerKind(bytes, source), der: bytes, field: source }]
    : // latin1 maps every byte to one character, so a non-ASCII byte fails the PEM check as itself.
      splitSnpPem(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'), source).map((b, i) => ({
        kind: b.label === 'CERTIFICATE' ? ('certificate' as const) : ('crl' as const),
        der: b.der,
        field: `${source}[${i}]`,
      }));
  const certificates: SnpCertificate[] = [];
  const crls: SnpCrlHead[] = [];
  for (const it of items) {
    if (it.kind === 'crl') crls.push(parseSnpCrlHead(it.der, it.field));
    else certificates.push(withField(it.field, () => parseSnpCertificate(it.der)));
  }
  return { certificates, crls };
}

/** Runs `fn`; an SNP_CERT_MALFORMED it throws names `field` as where the certificate came from. */
function withField<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isVouchError(e) && e.code === 'SNP_CERT_MALFORMED') throw new ParseError('SNP_CERT_MALFORMED', `${field}: ${e.message}`, { field, cause: e });
    throw e;
  }
}

// --- the pool and the choice -------------------------------------------------------------------------

/** Where an item came from: the report's certificate table (host-supplied) or the caller's files. */
export type SnpOrigin = 'table' | 'certs';

/** A candidate certificate with where it came from. */
export interface SnpPoolCertificate {
  readonly cert: SnpCertificate;
  /** A file path, or the table entry ("SNP_CERT_TABLE.entry[1]"). */
  readonly source: string;
  readonly origin: SnpOrigin;
}

/** A candidate CRL with where it came from. */
export interface SnpPoolCrl {
  readonly crl: SnpCrlHead;
  readonly source: string;
  readonly origin: SnpOrigin;
}

/** Every candidate certificate and CRL for one report. */
export interface SnpPool {
  readonly certificates: readonly SnpPoolCertificate[];
  readonly crls: readonly SnpPoolCrl[];
}

/**
 * Adds the items of one file or table entry to a pool (a new pool; the inputs are not changed).
 * Where a file holds several, each is named `source[i]` (the i-th certificate) or
 * `source[crl i]` (the i-th CRL).
 */
export function snpPoolAdd(pool: SnpPool, items: SnpCollateralItems, source: string, origin: SnpOrigin): SnpPool {
  return {
    certificates: [...pool.certificates, ...items.certificates.map((cert, i) => ({ cert, source: items.certificates.length > 1 ? `${source}[${i}]` : source, origin }))],
    crls: [...pool.crls, ...items.crls.map((crl, i) => ({ crl, source: items.crls.length > 1 ? `${source}[crl ${i}]` : source, origin }))],
  };
}

/** An empty pool. */
export const SNP_EMPTY_POOL: SnpPool = { certificates: [], crls: [] };

/**
 * The certificates and CRL of a decoded certificate table (./certtable.ts), as pool items of
 * origin "table". Entries are read by content: the ASK GUID entry is the ASK or the ASVK, and
 * which one it is follows from the names. Empty entries and GUIDs vouch does not know are
 * returned in `ignored` (by GUID), not read.
 *
 * @throws ParseError SNP_CERT_MALFORMED, PARSE_* when a known entry is not the certificate or CRL its GUID says
 */
export function snpPoolFromCertTable(entries: readonly SnpCertTableEntry[], field = 'SNP_CERT_TABLE'): { pool: SnpPool; ignored: string[] } {
  let pool = SNP_EMPTY_POOL;
  const ignored: string[] = [];
  entries.forEach((e, i) => {
    const source = `${field}.entry[${i}]`;
    if (e.kind === undefined || e.data.length === 0) {
      ignored.push(`${source} (${e.guid}${e.data.length === 0 ? ', empty' : ''})`);
      return;
    }
    const items: SnpCollateralItems =
      e.kind === 'crl'
        ? { certificates: [], crls: [parseSnpCrlHead(e.data, source)] }
        : { certificates: [withField(source, () => parseSnpCertificate(e.data))], crls: [] };
    pool = snpPoolAdd(pool, items, source, 'table');
  });
  return { pool, ignored };
}

function commonName(subject: string): string {
  return /(?:^|,\s*)CN=([^,]+)/.exec(subject)?.[1]?.trim() ?? '';
}

/**
 * The signing-key role of a certificate: a VLEK carries the cspId extension (or is named
 * SEV-VLEK), a VCEK the hwID extension (or is named SEV-VCEK); a CA is neither.
 */
export function snpLeafKind(c: SnpCertificate): 'vcek' | 'vlek' | undefined {
  if (c.cert.basicConstraints?.ca === true) return undefined;
  const cn = commonName(c.cert.subject);
  if (c.amd.cspId !== undefined || cn.endsWith('SEV-VLEK')) return 'vlek';
  if (c.amd.hwId !== undefined || cn.endsWith('SEV-VCEK')) return 'vcek';
  return undefined;
}

/** The chain and CRL chosen for one report. */
export interface SnpChainChoice {
  readonly signer: 'vcek' | 'vlek';
  /** The VCEK or VLEK. */
  readonly leaf: SnpPoolCertificate;
  /** The ASK (VCEK) or the ASVK (VLEK). */
  readonly intermediate: SnpPoolCertificate;
  readonly ark: SnpPoolCertificate;
  /** The CRL issued under the ARK's name, when one was found. */
  readonly crl?: SnpPoolCrl;
}

/** A choice, or why none could be made. */
export type SnpChainSelection = { readonly ok: true; readonly chain: SnpChainChoice } | { readonly ok: false; readonly problem: string };

function distinct<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => {
    const k = key(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const certKey = (c: SnpPoolCertificate): string => c.cert.cert.fingerprint;
const list = (cs: readonly { source: string }[]): string => cs.map((c) => c.source).join(', ');

function hwIdMatches(c: SnpCertificate, chipId: Uint8Array): boolean {
  const hw = c.amd.hwId;
  return hw !== undefined && (hw.length === 64 ? bytesEqual(hw, chipId) : hw.length === 8 && bytesEqual(hw, chipId.subarray(0, 8)));
}

/**
 * Chooses, from a pool, the chain of the report's signing key and the CRL of its ARK:
 *
 * 1. the leaf: of the kind the report's SIGNING_KEY names (any kind when the pool has none of
 *    that kind, so that verification reports the mismatch); one from the certificate table
 *    before one from the caller's files; among several VCEKs, the one whose hwID is CHIP_ID;
 * 2. the intermediate: the CA named as the leaf's issuer (ASK or ASVK);
 * 3. the ARK: the self-issued CA named as the intermediate's issuer, a pinned one first;
 * 4. the CRL: issued under the ARK's name, one from the caller's files before the table's.
 *
 * Several distinct candidates left at any step is a problem, not a guess. The same certificate
 * found twice (same SHA-256) counts once.
 */
export function selectSnpChain(
  pool: SnpPool,
  report: Pick<SnpReport, 'signingKey' | 'chipId'>,
  pinnedArks: Readonly<Record<string, SnpProduct>> = AMD_ARK_FINGERPRINTS,
): SnpChainSelection {
  const fail = (problem: string): SnpChainSelection => ({ ok: false, problem });
  const leaves = pool.certificates.filter((c) => snpLeafKind(c.cert) !== undefined);
  if (leaves.length === 0) return fail('no VCEK or VLEK certificate among the certificates given');
  const wanted = report.signingKey === SNP_SIGNING_KEY.vcek ? 'vcek' : report.signingKey === SNP_SIGNING_KEY.vlek ? 'vlek' : undefined;
  let cands = wanted !== undefined && leaves.some((c) => snpLeafKind(c.cert) === wanted) ? leaves.filter((c) => snpLeafKind(c.cert) === wanted) : leaves;
  if (cands.some((c) => c.origin === 'table')) cands = cands.filter((c) => c.origin === 'table');
  cands = distinct(cands, certKey);
  if (cands.length > 1 && !snpChipIdMasked(report) && cands.every((c) => snpLeafKind(c.cert) === 'vcek')) {
    const matching = cands.filter((c) => hwIdMatches(c.cert, report.chipId));
    if (matching.length === 1) cands = matching;
  }
  if (cands.length !== 1) return fail(`${cands.length} different VCEK or VLEK certificates could have signed the report (${list(cands)}); give only the one that did`);
  const leaf = cands[0] as SnpPoolCertificate;
  const signer = snpLeafKind(leaf.cert) as 'vcek' | 'vlek';
  const midName = signer === 'vcek' ? 'ASK' : 'ASVK';

  const mids = distinct(pool.certificates.filter((c) => c.cert.cert.subjectNameKey === leaf.cert.cert.issuerNameKey && !c.cert.cert.selfIssued), certKey);
  if (mids.length === 0) return fail(`no certificate named "${leaf.cert.cert.issuer}" (the ${midName} that issued ${leaf.source})`);
  if (mids.length > 1) return fail(`${mids.length} different certificates are named "${leaf.cert.cert.issuer}" (${list(mids)}); keep one ${midName}`);
  const intermediate = mids[0] as SnpPoolCertificate;

  let arks = distinct(pool.certificates.filter((c) => c.cert.cert.subjectNameKey === intermediate.cert.cert.issuerNameKey && c.cert.cert.selfIssued), certKey);
  if (arks.some((c) => pinnedArks[c.cert.cert.fingerprint] !== undefined)) arks = arks.filter((c) => pinnedArks[c.cert.cert.fingerprint] !== undefined);
  if (arks.length === 0) return fail(`no self-signed certificate named "${intermediate.cert.cert.issuer}" (the ARK that issued ${intermediate.source})`);
  if (arks.length > 1) return fail(`${arks.length} different self-signed certificates are named "${intermediate.cert.cert.issuer}" (${list(arks)}); keep one ARK`);
  const ark = arks[0] as SnpPoolCertificate;

  let crls = distinct(pool.crls.filter((c) => c.crl.issuer === ark.cert.cert.subject), (c) => c.crl.fingerprint);
  if (crls.some((c) => c.origin === 'certs')) crls = crls.filter((c) => c.origin === 'certs');
  if (crls.length > 1) return fail(`${crls.length} different CRLs are issued by "${ark.cert.cert.subject}" (${list(crls)}); keep the one for the ${signer.toUpperCase()} hierarchy`);
  const crl = crls[0];
  return { ok: true, chain: { signer, leaf, intermediate, ark, ...(crl !== undefined ? { crl } : {}) } };
}
