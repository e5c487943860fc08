/**
 * Intel DCAP quotes: TDX quotes version 4 and 5 (TD report body 1.0 and 1.5), and SGX quotes
 * version 3, whose signature structures TDX shares. Bytes ↔ fields only: nothing here verifies a
 * signature, and every field is *claimed* until the verify stage has checked the quote signature
 * over {@link DecodedDcapQuote.signedBytes}, the QE report signature over
 * {@link DecodedDcapQuote.qeReportBytes}, and the PCK chain.
 *
 * Sources: Intel TDX DCAP Quoting Library API, Appendix 3 "TD Quote Format" (v4) and the v5 body
 * descriptor; Intel SGX ECDSA Quote Library API, Appendix A "Quote Format" (v3); Intel
 * SGXDataCenterAttestationPrimitives `sgx_quote_4.h`, `sgx_quote_5.h` and `sgx_report.h`. Every
 * offset below was checked against the real quotes in ../shared/fixtures/real/tdx, and the
 * signed range of v5 (header + body descriptor + body) against their attestation-key signatures.
 * All integers are little-endian.
 *
 * ```
 * Quote v4 (TDX)                     Quote v5 (TDX)                          Quote v3 (SGX)
 * 0x000 Header [48]                  0x000 Header [48]                       0x000 Header [48]
 * 0x030 TD report body 1.0 [584]     0x030 BODY_TYPE u16 (2 TD 1.0, 3 TD 1.5) 0x030 SGX report body [384]
 * 0x278 SIGNATURE_DATA_LEN u32       0x032 BODY_SIZE u32 (584 | 648)         0x1B0 SIGNATURE_DATA_LEN u32
 * 0x27C signature data (v4 form)     0x036 body, SIGNATURE_DATA_LEN u32,     0x1B4 signature data (v3 form)
 *                                          signature data (v4 form)
 * Header
 * 0x00 VERSION u16   0x02 ATTESTATION_KEY_TYPE u16 (2: ECDSA-256-with-P-256)   0x04 TEE_TYPE u32 (0x81 TDX, 0 SGX)
 * 0x08 RESERVED [4] (v4, v5: zero)  |  QE_SVN u16, PCE_SVN u16 (v3)
 * 0x0C QE_VENDOR_ID [16]   0x1C USER_DATA [20]
 *
 * Signature data, v4 form                      Signature data, v3 form
 *   SIGNATURE [64] (r || s, big-endian)          SIGNATURE [64], ATTESTATION_KEY [64]
 *   ATTESTATION_KEY [64] (x || y, big-endian)    QE_REPORT [384], QE_REPORT_SIGNATURE [64]
 *   CERTIFICATION_DATA TYPE u16 = 6, SIZE u32:   QE_AUTH_DATA SIZE u16, DATA
 *     QE_REPORT [384] (SGX report body)          QE_CERTIFICATION_DATA TYPE u16 = 5, SIZE u32, DATA
 *     QE_REPORT_SIGNATURE [64]
 *     QE_AUTH_DATA SIZE u16, DATA
 *     QE_CERTIFICATION_DATA TYPE u16 = 5, SIZE u32, DATA (PCK certificate chain, PEM)
 * ```
 *
 * Every sized region must be consumed exactly. What follows the signature data is covered by no
 * signature and by no length field; see {@link DcapTrailingRule} for what is accepted there.
 */
import { MisuseError, ParseError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';
import { toHex } from '../lib/bytes.js';

// ---------------------------------------------------------------------------------------------
// Constants

/** Size of the quote header. */
export const DCAP_HEADER_SIZE = 48;
/** Size of a TD report body 1.0 (quote v4, and v5 body type 2). */
export const TD_REPORT10_SIZE = 584;
/** Size of a TD report body 1.5 (quote v5 body type 3). */
export const TD_REPORT15_SIZE = 648;
/** Size of an SGX report body (the body of a v3 quote, and every QE report). */
export const SGX_REPORT_BODY_SIZE = 384;
/** Size of an ECDSA P-256 signature (r || s) and of an attestation key (x || y). */
export const DCAP_ECDSA_P256_SIZE = 64;
/** Largest quote input accepted (real quotes are about 5 KiB; capture buffers add zero padding). */
export const DCAP_QUOTE_MAX_BYTES = 1024 * 1024;

/** Header TEE_TYPE values. */
export const DCAP_TEE_TYPE = { sgx: 0x00000000, tdx: 0x00000081 } as const;
/** Header ATTESTATION_KEY_TYPE of ECDSA-256-with-P-256, the only one Intel's quoting enclaves use. */
export const DCAP_ATTESTATION_KEY_ECDSA_P256 = 2;
/** v5 BODY_TYPE values. */
export const DCAP_BODY_TYPE = { sgx: 1, td10: 2, td15: 3 } as const;
/** Certification data types (Intel DCAP: 1–3 PPID forms, 4 PCK leaf, 5 PCK chain, 6 QE report certification data). */
export const DCAP_CERT_DATA_TYPE = { pckCertChain: 5, qeReportCertificationData: 6 } as const;
/** QE_VENDOR_ID of Intel's quoting enclaves. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

/** Quote versions this decoder reads. */
export const DCAP_QUOTE_VERSIONS = [3, 4, 5] as const;
/** A quote version this decoder reads: 3 (SGX), 4 and 5 (TDX). */
export type DcapQuoteVersion = (typeof DCAP_QUOTE_VERSIONS)[number];

// ---------------------------------------------------------------------------------------------
// Layouts as data

type FieldKind = 'u16' | 'u32' | 'bytes' | 'reserved';

/** One field of a fixed layout: spec name, offset in its structure, size, and how it is read. */
export interface DcapFieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: FieldKind;
}

function f(name: string, offset: number, size: number, kind: FieldKind): DcapFieldLayout {
  return { name, offset, size, kind };
}

const HEADER_HEAD: readonly DcapFieldLayout[] = [f('VERSION', 0x00, 2, 'u16'), f('ATTESTATION_KEY_TYPE', 0x02, 2, 'u16'), f('TEE_TYPE', 0x04, 4, 'u32')];
const HEADER_TAIL: readonly DcapFieldLayout[] = [f('QE_VENDOR_ID', 0x0c, 16, 'bytes'), f('USER_DATA', 0x1c, 20, 'bytes')];

/** The header of each version (v3 keeps QE_SVN and PCE_SVN where v4 and v5 reserve 4 bytes). */
export const DCAP_HEADER_LAYOUTS: Readonly<Record<DcapQuoteVersion, readonly DcapFieldLayout[]>> = {
  3: [...HEADER_HEAD, f('QE_SVN', 0x08, 2, 'u16'), f('PCE_SVN', 0x0a, 2, 'u16'), ...HEADER_TAIL],
  4: [...HEADER_HEAD, f('RESERVED', 0x08, 4, 'reserved'), ...HEADER_TAIL],
  5: [...HEADER_HEAD, f('RESERVED', 0x08, 4, 'reserved'), ...HEADER_TAIL],
};

const TD10: readonly DcapFieldLayout[] = [
  f('TEE_TCB_SVN', 0, 16, 'bytes'),
  f('MRSEAM', 16, 48, 'bytes'),
  f('MRSIGNERSEAM', 64, 48, 'bytes'),
  f('SEAMATTRIBUTES', 112, 8, 'bytes'),
  f('TDATTRIBUTES', 120, 8, 'bytes'),
  f('XFAM', 128, 8, 'bytes'),
  f('MRTD', 136, 48, 'bytes'),
  f('MRCONFIGID', 184, 48, 'bytes'),
  f('MROWNER', 232, 48, 'bytes'),
  f('MROWNERCONFIG', 280, 48, 'bytes'),
  f('RTMR0', 328, 48, 'bytes'),
  f('RTMR1', 376, 48, 'bytes'),
  f('RTMR2', 424, 48, 'bytes'),
  f('RTMR3', 472, 48, 'bytes'),
  f('REPORTDATA', 520, 64, 'bytes'),
];

/** TD report body 1.0 (584 bytes) and 1.5 (648 bytes: TEE_TCB_SVN2 and MRSERVICETD appended). */
export const TD_REPORT_LAYOUTS = {
  td10: TD10,
  td15: [...TD10, f('TEE_TCB_SVN2', 584, 16, 'bytes'), f('MRSERVICETD', 600, 48, 'bytes')],
} as const satisfies Record<string, readonly DcapFieldLayout[]>;

/**
 * The SGX REPORT body (384 bytes; `sgx_report_body_t` of sgx_report.h): the body of a v3 quote
 * and every QE report. The reserved ranges must be zero.
 */
export const SGX_REPORT_BODY_LAYOUT: readonly DcapFieldLayout[] = [
  f('CPUSVN', 0, 16, 'bytes'),
  f('MISCSELECT', 16, 4, 'u32'),
  f('RESERVED1', 20, 12, 'reserved'),
  f('ISVEXTPRODID', 32, 16, 'bytes'),
  f('ATTRIBUTES', 48, 16, 'bytes'),
  f('MRENCLAVE', 64, 32, 'bytes'),
  f('RESERVED2', 96, 32, 'reserved'),
  f('MRSIGNER', 128, 32, 'bytes'),
  f('RESERVED3', 160, 32, 'reserved'),
  f('CONFIGID', 192, 64, 'bytes'),
  f('ISVPRODID', 256, 2, 'u16'),
  f('ISVSVN', 258, 2, 'u16'),
  f('CONFIGSVN', 260, 2, 'u16'),
  f('RESERVED4', 262, 42, 'reserved'),
  f('ISVFAMILYID', 304, 16, 'bytes'),
  f('REPORTDATA', 320, 64, 'bytes'),
];

// ---------------------------------------------------------------------------------------------
// Types

/** The quote header. */
export interface DcapQuoteHeader {
  readonly version: DcapQuoteVersion;
  readonly attestationKeyType: number;
  readonly teeType: number;
  /** QE_SVN and PCE_SVN: v3 only (v4 and v5 reserve these bytes). */
  readonly qeSvn?: number;
  readonly pceSvn?: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
}

/** TD report body 1.0. Byte strings as stored; attributes are little-endian u64 values in 8 bytes. */
export interface TdReport10 {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  /** RTMR0..RTMR3. */
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly reportData: Uint8Array;
}

/** TD report body 1.5: 1.0 plus TEE_TCB_SVN2 and MRSERVICETD. */
export interface TdReport15 extends TdReport10 {
  readonly teeTcbSvn2: Uint8Array;
  readonly mrServiceTd: Uint8Array;
}

/** An SGX report body (QE reports, and the body of a v3 quote). */
export interface SgxReportBody {
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  readonly isvExtProdId: Uint8Array;
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly configId: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly configSvn: number;
  readonly isvFamilyId: Uint8Array;
  readonly reportData: Uint8Array;
}

/** The report body of a quote, by kind: TD 1.0 (v4, v5 type 2), TD 1.5 (v5 type 3), SGX (v3). */
export type DcapQuoteBody = { readonly kind: 'td10'; readonly report: TdReport10 } | { readonly kind: 'td15'; readonly report: TdReport15 } | { readonly kind: 'sgx'; readonly report: SgxReportBody };

/** The signature data, v3 and v4 forms alike once decoded. */
export interface DcapSignatureData {
  /** ECDSA P-256 signature of the attestation key over the signed bytes: r || s, big-endian. */
  readonly signature: Uint8Array;
  /** The attestation key: x || y, big-endian (64 bytes, no 0x04 prefix). */
  readonly attestationKey: Uint8Array;
  /** The QE report: an SGX report body whose REPORTDATA binds the attestation key. */
  readonly qeReport: SgxReportBody;
  /** ECDSA P-256 signature of the PCK over the QE report: r || s, big-endian. */
  readonly qeReportSignature: Uint8Array;
  /** QE authentication data (hashed with the attestation key into the QE report's REPORTDATA). */
  readonly qeAuthData: Uint8Array;
  /** Certification data type 5: the PCK certificate chain, PEM, exactly as carried (often NUL-terminated). */
  readonly pckCertChain: Uint8Array;
}

/** A quote, as the encoder takes it and the decoder returns it. */
export interface DcapQuote {
  readonly header: DcapQuoteHeader;
  readonly body: DcapQuoteBody;
  readonly signatureData: DcapSignatureData;
  /** Bytes after the signature data (absent when there are none); covered by no signature. */
  readonly trailing?: Uint8Array;
}

/** A decoded quote with the exact bytes it came from. */
export interface DecodedDcapQuote extends DcapQuote {
  /** Header and body (v5: with the body descriptor) exactly as received: what the attestation key signs. */
  readonly signedBytes: Uint8Array;
  /** The 384 QE report bytes exactly as received: what the PCK signs. */
  readonly qeReportBytes: Uint8Array;
  /** The quote up to the end of its signature data (no trailing bytes). */
  readonly quoteBytes: Uint8Array;
  /** Number of bytes after the signature data (see {@link DcapTrailingRule}). */
  readonly trailingBytes: number;
  /** The whole input. */
  readonly raw: Uint8Array;
}

/** A decoded TDX quote (v4 or v5): its body is a TD report. */
export interface DecodedTdxQuote extends DecodedDcapQuote {
  readonly body: Extract<DcapQuoteBody, { kind: 'td10' | 'td15' }>;
}

/**
 * What may follow the signature data, which no signature and no length field covers:
 * - `zeros` (default): nothing, or zero bytes only. Capture tools hand quotes over in fixed-size
 *   buffers (the GCP quote of the real corpus sits in an 8000-byte buffer, two others carry 70
 *   zero bytes), and zero padding carries no information.
 * - `none`: nothing at all (Intel's QVL rule).
 * - `any`: any bytes, kept in {@link DcapQuote.trailing} and never interpreted. Only for captures
 *   known to carry appended data (go-tdx-guest's test quote ends with a text it appended).
 * Non-zero trailing bytes are otherwise refused: they mean a wrong framing (two quotes back to
 * back, a quote inside another container) or data smuggled next to signed evidence.
 */
export type DcapTrailingRule = 'zeros' | 'none' | 'any';

/** Options of {@link decodeDcapQuote}. */
export interface DecodeDcapQuoteOptions {
  readonly trailing?: DcapTrailingRule;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const ROOT = 'DCAP_QUOTE';

type Values = Map<string, number | Uint8Array>;

function readLayout(r: Reader, layout: readonly DcapFieldLayout[]): Values {
  const out: Values = new Map();
  for (const fl of layout) {
    if (fl.kind === 'u16') out.set(fl.name, r.u16(fl.name, 'le'));
    else if (fl.kind === 'u32') out.set(fl.name, r.u32(fl.name, 'le'));
    else if (fl.kind === 'bytes') out.set(fl.name, r.bytes(fl.size, fl.name));
    else r.reserved(fl.size, fl.name);
  }
  return out;
}

const num = (v: Values, k: string): number => v.get(k) as number;
const byt = (v: Values, k: string): Uint8Array => v.get(k) as Uint8Array;

function isVersion(v: number): v is DcapQuoteVersion {
  return (DCAP_QUOTE_VERSIONS as readonly number[]).includes(v);
}

function unsupported(r: Reader, field: string, message: string, at: number, expected: string, actual: string): ParseError {
  return r.error('TDX_QUOTE_UNSUPPORTED', field, message, { at, expected, actual });
}

function readSgxReportBody(r: Reader): SgxReportBody {
  const v = readLayout(r, SGX_REPORT_BODY_LAYOUT);
  r.finish();
  return {
    cpuSvn: byt(v, 'CPUSVN'),
    miscSelect: num(v, 'MISCSELECT'),
    isvExtProdId: byt(v, 'ISVEXTPRODID'),
    attributes: byt(v, 'ATTRIBUTES'),
    mrEnclave: byt(v, 'MRENCLAVE'),
    mrSigner: byt(v, 'MRSIGNER'),
    configId: byt(v, 'CONFIGID'),
    isvProdId: num(v, 'ISVPRODID'),
    isvSvn: num(v, 'ISVSVN'),
    configSvn: num(v, 'CONFIGSVN'),
    isvFamilyId: byt(v, 'ISVFAMILYID'),
    reportData: byt(v, 'REPORTDATA'),
  };
}

function readTdReport(r: Reader, kind: 'td10' | 'td15'): DcapQuoteBody {
  const v = readLayout(r, TD_REPORT_LAYOUTS[kind]);
  r.finish();
  const base: TdReport10 = {
    teeTcbSvn: byt(v, 'TEE_TCB_SVN'),
    mrSeam: byt(v, 'MRSEAM'),
    mrSignerSeam: byt(v, 'MRSIGNERSEAM'),
    seamAttributes: byt(v, 'SEAMATTRIBUTES'),
    tdAttributes: byt(v, 'TDATTRIBUTES'),
    xfam: byt(v, 'XFAM'),
    mrTd: byt(v, 'MRTD'),
    mrConfigId: byt(v, 'MRCONFIGID'),
    mrOwner: byt(v, 'MROWNER'),
    mrOwnerConfig: byt(v, 'MROWNERCONFIG'),
    rtmrs: [byt(v, 'RTMR0'), byt(v, 'RTMR1'), byt(v, 'RTMR2'), byt(v, 'RTMR3')],
    reportData: byt(v, 'REPORTDATA'),
  };
  if (kind === 'td10') return { kind, report: base };
  return { kind, report: { ...base, teeTcbSvn2: byt(v, 'TEE_TCB_SVN2'), mrServiceTd: byt(v, 'MRSERVICETD') } };
}

/** QE_CERTIFICATION_DATA: TYPE u16 (must be 5), SIZE u32, the PEM chain. */
function readPckChain(r: Reader, field: string): Uint8Array {
  const at = r.offset;
  const type = r.u16(`${field}.TYPE`, 'le');
  if (type !== DCAP_CERT_DATA_TYPE.pckCertChain) {
    throw unsupported(r, `${field}.TYPE`, `certification data type ${type} is not supported: vouch needs the PCK certificate chain (type 5)`, at, '5', String(type));
  }
  const size = r.u32(`${field}.SIZE`, 'le');
  return r.bytes(size, `${field}.DATA`);
}

/** QE_REPORT, QE_REPORT_SIGNATURE, QE_AUTH_DATA, QE_CERTIFICATION_DATA (shared by both forms). */
function readQeParts(r: Reader): { qeReport: SgxReportBody; qeReportBytes: Uint8Array; qeReportSignature: Uint8Array; qeAuthData: Uint8Array; pckCertChain: Uint8Array } {
  const start = r.offset;
  const qr = r.sub(SGX_REPORT_BODY_SIZE, 'QE_REPORT');
  const qeReportBytes = r.bytesBetween(start);
  const qeReport = readSgxReportBody(qr);
  const qeReportSignature = r.bytes(DCAP_ECDSA_P256_SIZE, 'QE_REPORT_SIGNATURE');
  const authSize = r.u16('QE_AUTH_DATA.SIZE', 'le');
  const qeAuthData = r.bytes(authSize, 'QE_AUTH_DATA.DATA');
  const pckCertChain = readPckChain(r, 'QE_CERTIFICATION_DATA');
  return { qeReport, qeReportBytes, qeReportSignature, qeAuthData, pckCertChain };
}

function applyTrailingRule(r: Reader, rule: DcapTrailingRule, trailing: Uint8Array): void {
  if (trailing.length === 0 || rule === 'any') return;
  const at = r.offset - trailing.length;
  if (rule === 'none') {
    throw r.error('PARSE_TRAILING_BYTES', 'TRAILING', `${trailing.length} bytes follow the signature data`, { at, expected: '0 bytes', actual: `${trailing.length} bytes` });
  }
  const i = trailing.findIndex((b) => b !== 0);
  if (i >= 0) {
    throw r.error('TDX_QUOTE_TRAILING_DATA', 'TRAILING', `${trailing.length} bytes follow the signature data and byte ${i} of them is 0x${(trailing[i] as number).toString(16).padStart(2, '0')}: only zero padding is accepted`, {
      at: at + i,
      expected: `${trailing.length} zero bytes`,
      actual: toHex(trailing.subarray(0, Math.min(trailing.length, 64))) + (trailing.length > 64 ? '…' : ''),
    });
  }
}

/**
 * Decodes a DCAP quote: TDX v4, TDX v5 (body type 2 or 3) or SGX v3. The attestation key type
 * must be ECDSA-256-with-P-256, reserved bytes zero, every size consistent and every sized region
 * consumed exactly; the certification data must lead to a PCK certificate chain (type 5).
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_SIZE_EXCEEDED, PARSE_BAD_VALUE (VERSION, TEE_TYPE,
 *   BODY_SIZE), PARSE_RESERVED_NONZERO, PARSE_UNSUPPORTED_ALGORITHM (ATTESTATION_KEY_TYPE),
 *   PARSE_TRAILING_BYTES, TDX_QUOTE_UNSUPPORTED, TDX_QUOTE_TRAILING_DATA
 */
export function decodeDcapQuote(bytes: Uint8Array, opts: DecodeDcapQuoteOptions = {}): DecodedDcapQuote {
  if (!(bytes instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', 'a quote must be bytes');
  const rule = opts.trailing ?? 'zeros';
  if (rule !== 'zeros' && rule !== 'none' && rule !== 'any') throw new MisuseError('MISUSE_ARGUMENT', `unknown trailing-bytes rule "${String(rule)}" (zeros | none | any)`);
  const r = new Reader(bytes, ROOT);
  if (bytes.length > DCAP_QUOTE_MAX_BYTES) {
    throw r.error('PARSE_SIZE_EXCEEDED', '', `a quote of ${bytes.length} bytes exceeds the maximum ${DCAP_QUOTE_MAX_BYTES}`, { at: 0, expected: `<= ${DCAP_QUOTE_MAX_BYTES} bytes`, actual: `${bytes.length} bytes` });
  }
  if (bytes.length < DCAP_HEADER_SIZE) {
    throw r.error('PARSE_TRUNCATED', 'HEADER', `needs ${DCAP_HEADER_SIZE} bytes, ${bytes.length} given`, { at: 0, expected: `>= ${DCAP_HEADER_SIZE} bytes`, actual: `${bytes.length} bytes` });
  }
  const peek = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = peek.getUint16(0, true);
  if (!isVersion(version)) {
    throw unsupported(r, 'HEADER.VERSION', `quote version ${version} is not supported`, 0, DCAP_QUOTE_VERSIONS.join(' | '), String(version));
  }

  // Header
  const hr = r.sub(DCAP_HEADER_SIZE, 'HEADER');
  const hv = readLayout(hr, DCAP_HEADER_LAYOUTS[version]);
  hr.finish();
  const attestationKeyType = num(hv, 'ATTESTATION_KEY_TYPE');
  if (attestationKeyType !== DCAP_ATTESTATION_KEY_ECDSA_P256) {
    throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'HEADER.ATTESTATION_KEY_TYPE', `attestation key type ${attestationKeyType} is not ECDSA-256-with-P-256 (2)`, {
      at: 2,
      expected: '2',
      actual: String(attestationKeyType),
    });
  }
  const teeType = num(hv, 'TEE_TYPE');
  const wantTee = version === 3 ? DCAP_TEE_TYPE.sgx : DCAP_TEE_TYPE.tdx;
  if (teeType !== wantTee) {
    const known = teeType === DCAP_TEE_TYPE.sgx || teeType === DCAP_TEE_TYPE.tdx;
    const message = `TEE type 0x${teeType.toString(16)} with quote version ${version}`;
    if (known) throw unsupported(r, 'HEADER.TEE_TYPE', `${message} is not supported (SGX quotes v3, TDX quotes v4 and v5)`, 4, `0x${wantTee.toString(16)}`, `0x${teeType.toString(16)}`);
    throw r.error('PARSE_BAD_VALUE', 'HEADER.TEE_TYPE', `${message}: not a TEE type (0 SGX, 0x81 TDX)`, { at: 4, expected: `0x${wantTee.toString(16)}`, actual: `0x${teeType.toString(16)}` });
  }
  const header: DcapQuoteHeader = {
    version,
    attestationKeyType,
    teeType,
    ...(version === 3 ? { qeSvn: num(hv, 'QE_SVN'), pceSvn: num(hv, 'PCE_SVN') } : {}),
    qeVendorId: byt(hv, 'QE_VENDOR_ID'),
    userData: byt(hv, 'USER_DATA'),
  };

  // Body
  let body: DcapQuoteBody;
  if (version === 3) {
    body = { kind: 'sgx', report: readSgxReportBody(r.sub(SGX_REPORT_BODY_SIZE, 'SGX_REPORT_BODY')) };
  } else if (version === 4) {
    body = readTdReport(r.sub(TD_REPORT10_SIZE, 'TD_REPORT_BODY'), 'td10');
  } else {
    const typeAt = r.offset;
    const bodyType = r.u16('BODY_TYPE', 'le');
    if (bodyType !== DCAP_BODY_TYPE.td10 && bodyType !== DCAP_BODY_TYPE.td15) {
      throw unsupported(r, 'BODY_TYPE', `v5 body type ${bodyType} is not supported (2: TD report 1.0, 3: TD report 1.5)`, typeAt, '2 | 3', String(bodyType));
    }
    const kind = bodyType === DCAP_BODY_TYPE.td10 ? 'td10' : 'td15';
    const want = kind === 'td10' ? TD_REPORT10_SIZE : TD_REPORT15_SIZE;
    const sizeAt = r.offset;
    const bodySize = r.u32('BODY_SIZE', 'le');
    if (bodySize !== want) {
      throw r.error('PARSE_BAD_VALUE', 'BODY_SIZE', `body type ${bodyType} has ${want} bytes, BODY_SIZE says ${bodySize}`, { at: sizeAt, expected: String(want), actual: String(bodySize) });
    }
    body = readTdReport(r.sub(want, 'TD_REPORT_BODY'), kind);
  }
  const signedBytes = bytes.subarray(0, r.offset);

  // Signature data
  const sigLen = r.u32('SIGNATURE_DATA_LEN', 'le');
  const sr = r.sub(sigLen, 'SIGNATURE_DATA');
  const signature = sr.bytes(DCAP_ECDSA_P256_SIZE, 'SIGNATURE');
  const attestationKey = sr.bytes(DCAP_ECDSA_P256_SIZE, 'ATTESTATION_KEY');
  let qe: ReturnType<typeof readQeParts>;
  if (version === 3) {
    qe = readQeParts(sr);
  } else {
    const typeAt = sr.offset;
    const certType = sr.u16('CERTIFICATION_DATA.TYPE', 'le');
    if (certType !== DCAP_CERT_DATA_TYPE.qeReportCertificationData) {
      throw unsupported(sr, 'CERTIFICATION_DATA.TYPE', `certification data type ${certType} is not supported: a v${version} quote carries QE report certification data (type 6)`, typeAt, '6', String(certType));
    }
    const certSize = sr.u32('CERTIFICATION_DATA.SIZE', 'le');
    const cr = sr.sub(certSize, 'CERTIFICATION_DATA.QE_REPORT_CERTIFICATION_DATA');
    qe = readQeParts(cr);
    cr.finish();
  }
  sr.finish();
  const quoteBytes = bytes.subarray(0, r.offset);
  const trailing = r.rest('TRAILING');
  applyTrailingRule(r, rule, trailing);

  return {
    header,
    body,
    signatureData: {
      signature,
      attestationKey,
      qeReport: qe.qeReport,
      qeReportSignature: qe.qeReportSignature,
      qeAuthData: qe.qeAuthData,
      pckCertChain: qe.pckCertChain,
    },
    ...(trailing.length > 0 ? { trailing } : {}),
    signedBytes,
    qeReportBytes: qe.qeReportBytes,
    quoteBytes,
    trailingBytes: trailing.length,
    raw: bytes,
  };
}

/**
 * Decodes a TDX quote (v4, or v5 with a TD report body). An SGX quote is refused.
 *
 * @throws ParseError as {@link decodeDcapQuote}; TDX_QUOTE_UNSUPPORTED for an SGX quote
 */
export function decodeTdxQuote(bytes: Uint8Array, opts: DecodeDcapQuoteOptions = {}): DecodedTdxQuote {
  const q = decodeDcapQuote(bytes, opts);
  if (q.body.kind === 'sgx') {
    throw new ParseError('TDX_QUOTE_UNSUPPORTED', `${ROOT}.HEADER.TEE_TYPE at offset 4: an SGX quote (version ${q.header.version}) is not a TDX quote`, {
      field: `${ROOT}.HEADER.TEE_TYPE`,
      offset: 4,
      expected: '0x81',
      actual: '0x0',
    });
  }
  return { ...q, body: q.body };
}

// ---------------------------------------------------------------------------------------------
// Encoding

function need(cond: boolean, what: string): void {
  if (!cond) throw new MisuseError('MISUSE_ARGUMENT', `encodeDcapQuote: ${what}`);
}

function writeLayout(w: Writer, layout: readonly DcapFieldLayout[], values: ReadonlyMap<string, number | Uint8Array>, where: string): void {
  for (const fl of layout) {
    if (fl.kind === 'reserved') {
      w.bytes(new Uint8Array(fl.size));
      continue;
    }
    const v = values.get(fl.name);
    if (fl.kind === 'bytes') {
      need(v instanceof Uint8Array && v.length === fl.size, `${where}.${fl.name} must be ${fl.size} bytes`);
      w.bytes(v as Uint8Array);
    } else {
      const max = fl.kind === 'u16' ? 0xffff : 0xffffffff;
      need(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max, `${where}.${fl.name} is a ${fl.kind}`);
      if (fl.kind === 'u16') w.u16(v as number, 'le');
      else w.u32(v as number, 'le');
    }
  }
}

function sgxValues(b: SgxReportBody): Map<string, number | Uint8Array> {
  return new Map<string, number | Uint8Array>([
    ['CPUSVN', b.cpuSvn],
    ['MISCSELECT', b.miscSelect],
    ['ISVEXTPRODID', b.isvExtProdId],
    ['ATTRIBUTES', b.attributes],
    ['MRENCLAVE', b.mrEnclave],
    ['MRSIGNER', b.mrSigner],
    ['CONFIGID', b.configId],
    ['ISVPRODID', b.isvProdId],
    ['ISVSVN', b.isvSvn],
    ['CONFIGSVN', b.configSvn],
    ['ISVFAMILYID', b.isvFamilyId],
    ['REPORTDATA', b.reportData],
  ]);
}

function tdValues(b: TdReport10 | TdReport15): Map<string, number | Uint8Array> {
  need(Array.isArray(b.rtmrs) && b.rtmrs.length === 4, 'a TD report has four RTMRs');
  const m = new Map<string, number | Uint8Array>([
    ['TEE_TCB_SVN', b.teeTcbSvn],
    ['MRSEAM', b.mrSeam],
    ['MRSIGNERSEAM', b.mrSignerSeam],
    ['SEAMATTRIBUTES', b.seamAttributes],
    ['TDATTRIBUTES', b.tdAttributes],
    ['XFAM', b.xfam],
    ['MRTD', b.mrTd],
    ['MRCONFIGID', b.mrConfigId],
    ['MROWNER', b.mrOwner],
    ['MROWNERCONFIG', b.mrOwnerConfig],
    ['RTMR0', b.rtmrs[0]],
    ['RTMR1', b.rtmrs[1]],
    ['RTMR2', b.rtmrs[2]],
    ['RTMR3', b.rtmrs[3]],
    ['REPORTDATA', b.reportData],
  ]);
  if ('teeTcbSvn2' in b) {
    m.set('TEE_TCB_SVN2', b.teeTcbSvn2);
    m.set('MRSERVICETD', b.mrServiceTd);
  }
  return m;
}

function writeQeParts(w: Writer, s: DcapSignatureData): void {
  writeLayout(w, SGX_REPORT_BODY_LAYOUT, sgxValues(s.qeReport), 'qeReport');
  need(s.qeReportSignature.length === DCAP_ECDSA_P256_SIZE, 'qeReportSignature must be 64 bytes');
  w.bytes(s.qeReportSignature);
  need(s.qeAuthData.length <= 0xffff, 'qeAuthData is at most 65535 bytes');
  w.u16(s.qeAuthData.length, 'le').bytes(s.qeAuthData);
  need(s.pckCertChain.length <= 0xffffffff, 'pckCertChain is too long');
  w.u16(DCAP_CERT_DATA_TYPE.pckCertChain, 'le').u32(s.pckCertChain.length, 'le').bytes(s.pckCertChain);
}

/**
 * Encodes a quote: the exact inverse of {@link decodeDcapQuote} (reserved ranges written as zero,
 * every size computed). Used to build synthetic quotes and to round-trip real ones.
 *
 * @throws MisuseError MISUSE_ARGUMENT when a field does not fit its layout or the version
 */
export function encodeDcapQuote(q: DcapQuote): Uint8Array {
  const h = q.header;
  need(isVersion(h.version), `version ${h.version} is not supported`);
  const kindOk = h.version === 3 ? q.body.kind === 'sgx' : h.version === 4 ? q.body.kind === 'td10' : q.body.kind === 'td10' || q.body.kind === 'td15';
  need(kindOk, `a version ${h.version} quote cannot carry a ${q.body.kind} body`);
  need((h.version === 3) === (h.qeSvn !== undefined && h.pceSvn !== undefined), 'qeSvn and pceSvn are present exactly for version 3');
  if (q.body.kind === 'td15') need('teeTcbSvn2' in q.body.report && 'mrServiceTd' in q.body.report, 'a TD report 1.5 carries teeTcbSvn2 and mrServiceTd');
  if (q.body.kind === 'td10') need(!('teeTcbSvn2' in q.body.report) && !('mrServiceTd' in q.body.report), 'a TD report 1.0 carries no teeTcbSvn2 or mrServiceTd');

  const w = new Writer(8192);
  const hv = new Map<string, number | Uint8Array>([
    ['VERSION', h.version],
    ['ATTESTATION_KEY_TYPE', h.attestationKeyType],
    ['TEE_TYPE', h.teeType],
    ['QE_VENDOR_ID', h.qeVendorId],
    ['USER_DATA', h.userData],
  ]);
  if (h.qeSvn !== undefined) hv.set('QE_SVN', h.qeSvn);
  if (h.pceSvn !== undefined) hv.set('PCE_SVN', h.pceSvn);
  writeLayout(w, DCAP_HEADER_LAYOUTS[h.version], hv, 'header');

  const body = q.body;
  if (body.kind === 'sgx') {
    writeLayout(w, SGX_REPORT_BODY_LAYOUT, sgxValues(body.report), 'body');
  } else {
    if (h.version === 5) {
      const td15 = body.kind === 'td15';
      w.u16(td15 ? DCAP_BODY_TYPE.td15 : DCAP_BODY_TYPE.td10, 'le').u32(td15 ? TD_REPORT15_SIZE : TD_REPORT10_SIZE, 'le');
    }
    writeLayout(w, TD_REPORT_LAYOUTS[body.kind], tdValues(body.report), 'body');
  }

  const s = q.signatureData;
  need(s.signature.length === DCAP_ECDSA_P256_SIZE && s.attestationKey.length === DCAP_ECDSA_P256_SIZE, 'signature and attestationKey must be 64 bytes');
  const sw = new Writer(8192);
  sw.bytes(s.signature).bytes(s.attestationKey);
  if (h.version === 3) {
    writeQeParts(sw, s);
  } else {
    const cw = new Writer(8192);
    writeQeParts(cw, s);
    const cert = cw.finish();
    sw.u16(DCAP_CERT_DATA_TYPE.qeReportCertificationData, 'le').u32(cert.length, 'le').bytes(cert);
  }
  const sig = sw.finish();
  w.u32(sig.length, 'le').bytes(sig);
  if (q.trailing !== undefined) w.bytes(q.trailing);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Field views

/** TDATTRIBUTES bits (Intel TDX Module ABI; Linux arch/x86/include/asm/shared/tdx.h). */
export const TD_ATTRIBUTES_BITS = {
  DEBUG: 0,
  HGS_PLUS_PROF: 4,
  PERF_PROF: 5,
  PMT_PROF: 6,
  ICSSD: 16,
  LASS: 27,
  SEPT_VE_DISABLE: 28,
  MIGRATABLE: 29,
  PKS: 30,
  KL: 31,
  TPA: 62,
  PERFMON: 63,
} as const;
/** The name of a TDATTRIBUTES bit ("DEBUG", "SEPT_VE_DISABLE", …). */
export type TdAttributeName = keyof typeof TD_ATTRIBUTES_BITS;

/** An 8-byte little-endian attribute field as a u64. */
export function attributesValue(b: Uint8Array): bigint {
  if (b.length !== 8) throw new MisuseError('MISUSE_ARGUMENT', 'an attribute field is 8 bytes');
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

/**
 * The TDATTRIBUTES view: every named bit, and the set bits no name covers (bits the TDX module
 * defines later; the appraisal decides about them, the decoder does not).
 */
export function tdAttributes(b: Uint8Array): { readonly value: bigint; readonly flags: Readonly<Record<TdAttributeName, boolean>>; readonly unknownBits: readonly number[] } {
  const value = attributesValue(b);
  const flags = {} as Record<TdAttributeName, boolean>;
  let known = 0n;
  for (const [name, bit] of Object.entries(TD_ATTRIBUTES_BITS) as [TdAttributeName, number][]) {
    flags[name] = ((value >> BigInt(bit)) & 1n) === 1n;
    known |= 1n << BigInt(bit);
  }
  const unknownBits: number[] = [];
  for (let i = 0; i < 64; i++) if (((value & ~known) >> BigInt(i)) & 1n) unknownBits.push(i);
  return { value, flags, unknownBits };
}

/** The report body of a decoded quote's TD report, or undefined for an SGX quote. */
export function tdReportOf(q: DcapQuote): TdReport10 | TdReport15 | undefined {
  return q.body.kind === 'sgx' ? undefined : q.body.report;
}
