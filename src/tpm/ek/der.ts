/**
 * The two byte-level steps of certificate parsing that @peculiar/x509 cannot do for us:
 *
 * - PEM armour (RFC 7468): strict base64 inside `-----BEGIN CERTIFICATE-----` blocks;
 * - the outer extent of a DER certificate read from TPM NV, which is followed by padding up
 *   to the NV index size, and the exact `tbsCertificate` bytes the issuer signed.
 *
 * Everything about certificate *fields* is decoded by @peculiar/x509 in ./certificate.ts; this
 * file only walks tags and lengths of the outermost SEQUENCE and its first element.
 */
import { Reader } from '../../lib/reader.js';
import { ParseError, isVouchError } from '../../lib/errors.js';

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';
const PEM_LINE_RE = /^-----(BEGIN|END) ([A-Z0-9 ]+)-----$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Largest certificate vouch accepts (64 KiB); EK and CA certificates are 0.5–2 KiB. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;

function malformed(message: string, field: string, extra: { offset?: number; expected?: string; actual?: string; cause?: unknown } = {}): ParseError {
  return new ParseError('EK_CERT_MALFORMED', message, { field, ...extra });
}

/** True when `bytes` starts with the ASCII text `-----BEGIN CERTIFICATE-----`. */
export function startsWithPemCertificate(bytes: Uint8Array): boolean {
  if (bytes.length < PEM_BEGIN.length) return false;
  for (let i = 0; i < PEM_BEGIN.length; i++) if (bytes[i] !== PEM_BEGIN.charCodeAt(i)) return false;
  return true;
}

/** Strict base64 (RFC 4648 §4, padded, canonical) of one PEM body, line breaks removed. */
function decodePemBody(lines: readonly string[], field: string): Uint8Array {
  const b64 = lines.map((l) => l.trim()).join('');
  if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64_RE.test(b64)) {
    throw malformed(`${field}: the body is not padded base64`, field);
  }
  const out = Buffer.from(b64, 'base64');
  if (out.toString('base64') !== b64) throw malformed(`${field}: the body is not canonical base64`, field);
  return new Uint8Array(out);
}

/**
 * Splits PEM text into its blocks. Explanatory text outside blocks is allowed (RFC 7468 §5.2,
 * as written by `openssl x509 -text` and CA bundles); inside a block only base64 lines are.
 * Every block must be a CERTIFICATE block.
 *
 * @throws ParseError EK_CERT_MALFORMED on a non-ASCII input, a non-certificate block, a block
 *   without its END line, or a body that is not strict base64
 */
export function splitPemCertificates(text: string, field = 'PEM'): Uint8Array[] {
  // PEM is ASCII; anything else is not a certificate file.
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(text)) throw malformed(`${field}: PEM text holds non-ASCII or control characters`, field);
  const lines = text.split(/\r?\n/);
  const out: Uint8Array[] = [];
  let body: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    const m = PEM_LINE_RE.exec(line);
    const blockField = `${field}[${out.length}]`;
    if (body === undefined) {
      if (m === null) continue; // explanatory text
      if (m[1] !== 'BEGIN' || m[2] !== 'CERTIFICATE') {
        throw malformed(`${blockField}: line ${i + 1} is "${line}", expected "${PEM_BEGIN}"`, blockField, { expected: PEM_BEGIN, actual: line });
      }
      body = [];
      continue;
    }
    if (m === null) {
      body.push(line);
      continue;
    }
    if (m[1] !== 'END' || m[2] !== 'CERTIFICATE') {
      throw malformed(`${blockField}: line ${i + 1} is "${line}", expected "${PEM_END}"`, blockField, { expected: PEM_END, actual: line });
    }
    out.push(decodePemBody(body, blockField));
    body = undefined;
  }
  if (body !== undefined) throw malformed(`${field}[${out.length}]: no "${PEM_END}" line`, `${field}[${out.length}]`, { expected: PEM_END });
  return out;
}

/**
 * Decodes a single PEM certificate: the input must start with `-----BEGIN CERTIFICATE-----`,
 * hold exactly one block, and nothing but whitespace after its END line.
 *
 * @throws ParseError EK_CERT_MALFORMED
 */
export function decodeSinglePemCertificate(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const end = text.indexOf(PEM_END);
  if (end < 0) throw malformed(`PEM: no "${PEM_END}" line`, 'PEM', { expected: PEM_END });
  const after = text.slice(end + PEM_END.length);
  if (after.trim() !== '') {
    throw malformed('PEM: text after the END line (a single certificate is expected)', 'PEM', { expected: 'whitespace only', actual: `${after.length} characters` });
  }
  const blocks = splitPemCertificates(text);
  if (blocks.length !== 1) throw malformed(`PEM: ${blocks.length} certificate blocks, expected 1`, 'PEM', { expected: '1', actual: String(blocks.length) });
  return blocks[0] as Uint8Array;
}

/** Reads one DER/BER identifier octet that must be `tag`, then a definite length. */
function readHeader(r: Reader, tag: number, field: string): number {
  const at = r.offset;
  const t = r.u8(`${field}.tag`);
  if (t !== tag) {
    throw r.error('PARSE_BAD_MAGIC', `${field}.tag`, `tag 0x${t.toString(16).padStart(2, '0')}, expected 0x${tag.toString(16)} (SEQUENCE)`, {
      at,
      expected: `0x${tag.toString(16)}`,
      actual: `0x${t.toString(16).padStart(2, '0')}`,
    });
  }
  const lenAt = r.offset;
  const first = r.u8(`${field}.length`);
  if (first < 0x80) return first;
  // 0x80 is BER's indefinite length: it has no declared end, so NV padding could not be cut.
  // More than 4 length octets cannot describe a certificate of at most 64 KiB.
  const n = first & 0x7f;
  if (n === 0 || n > 4) {
    throw r.error('PARSE_BAD_VALUE', `${field}.length`, n === 0 ? 'indefinite length is not allowed' : `${n} length octets`, { at: lenAt });
  }
  let len = 0;
  // Non-minimal long-form lengths (BER) are tolerated, as the BER decoder that reads the
  // fields tolerates them: the signature is checked over the bytes exactly as they are.
  for (let i = 0; i < n; i++) len = len * 256 + r.u8(`${field}.length`);
  return len;
}

/** The byte ranges found by {@link locateCertificate}. */
export interface CertificateExtent {
  /** The certificate: the outer SEQUENCE exactly as declared (a view into the input). */
  readonly der: Uint8Array;
  /** `tbsCertificate` exactly as it appears in `der`: the bytes the issuer signed. */
  readonly tbs: Uint8Array;
  /** Number of padding bytes (0x00/0xFF) that followed the certificate. */
  readonly padding: number;
}

/**
 * Finds the certificate and its signed bytes by a minimal length walk (X.509, RFC 5280 §4.1):
 *
 * ```
 * Certificate ::= SEQUENCE {        -- 30 <len>: its declared length ends the certificate
 *   tbsCertificate      TBSCertificate,  -- 30 <len>: these bytes, as they are, are signed
 *   signatureAlgorithm  AlgorithmIdentifier,
 *   signatureValue      BIT STRING }
 * ```
 *
 * Bytes after the outer SEQUENCE are accepted only when every one is 0xFF or 0x00: a TPM NV
 * index is larger than the certificate it stores and reads back with that fill. Anything else
 * after the end is an error. The signature must be verified over `tbs`, never over a
 * re-encoding: a DER encoder would, for example, sort the unsorted RDN SETs of Nuvoton's
 * certificates and so change the signed bytes.
 *
 * @throws ParseError EK_CERT_MALFORMED
 */
export function locateCertificate(bytes: Uint8Array): CertificateExtent {
  try {
    const r = new Reader(bytes, 'Certificate');
    const outerLen = readHeader(r, 0x30, 'Certificate');
    if (outerLen > MAX_CERTIFICATE_BYTES) {
      throw r.error('PARSE_SIZE_EXCEEDED', 'Certificate.length', `length ${outerLen} exceeds ${MAX_CERTIFICATE_BYTES}`);
    }
    const content = r.sub(outerLen, 'Certificate');
    const der = bytes.subarray(0, r.offset);
    const trailing = r.rest('padding');
    for (let i = 0; i < trailing.length; i++) {
      const b = trailing[i] as number;
      if (b !== 0xff && b !== 0x00) {
        throw r.error('PARSE_TRAILING_BYTES', 'padding', `byte 0x${b.toString(16).padStart(2, '0')} after the certificate is not NV padding (0xFF or 0x00)`, {
          at: der.length + i,
          expected: '0xff or 0x00',
          actual: `0x${b.toString(16).padStart(2, '0')}`,
        });
      }
    }
    // `content` offsets are relative to the outer SEQUENCE's content, which starts right
    // after the outer header; tbsCertificate is its first element, header included.
    const contentStart = der.length - outerLen;
    const tbsLen = readHeader(content, 0x30, 'tbsCertificate');
    content.bytes(tbsLen, 'tbsCertificate');
    const tbs = der.subarray(contentStart, contentStart + content.offset);
    return { der, tbs, padding: trailing.length };
  } catch (e) {
    if (isVouchError(e) && e.code === 'EK_CERT_MALFORMED') throw e;
    if (isVouchError(e)) {
      throw malformed(e.message, e.field ?? 'Certificate', {
        ...(e.offset !== undefined ? { offset: e.offset } : {}),
        ...(e.expected !== undefined ? { expected: e.expected } : {}),
        ...(e.actual !== undefined ? { actual: e.actual } : {}),
        cause: e,
      });
    }
    throw e;
  }
}
