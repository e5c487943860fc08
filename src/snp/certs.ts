/**
 * AMD SEV-SNP certificates: ARK, ASK/ASVK, VCEK/VLEK (AMD "Versioned Chip Endorsement Key (VCEK)
 * Certificate and KDS Interface Specification" §3, extensions under 1.3.6.1.4.1.3704.1).
 *
 * X.509 parsing, the exact TBS bytes and the issuer key come from the EK certificate parser
 * (../tpm/ek/certificate.ts); this file adds the AMD extensions and the pinned ARK keys. An
 * {@link SnpCertificate} is claimed until ./verify.ts has checked its chain.
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { ParseError, isVouchError } from '../lib/errors.js';
import { Reader } from '../lib/reader.js';
import { parseEkCertificate, type EkCertificate } from '../tpm/ek/certificate.js';
import { splitPemCertificates } from '../tpm/ek/der.js';
import type { SnpProduct } from './abi.js';

/** OIDs of the AMD VCEK/VLEK extensions. */
export const AMD_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/**
 * SHA-256 fingerprints (of the DER) of the AMD Root Keys, public facts published by AMD KDS
 * (`/vcek/v1/<product>/cert_chain`), one per product.
 */
export const AMD_ARK_FINGERPRINTS: Readonly<Record<string, SnpProduct>> = {
  '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd': 'Milan',
  '4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1': 'Genoa',
  '1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a': 'Turin',
};

/** The AMD extensions of a VCEK or VLEK, each absent when the certificate lacks it. */
export interface AmdExtensions {
  readonly structVersion?: number;
  /** productName1, e.g. "Milan-B0" or "Turin". */
  readonly productName?: string;
  readonly blSpl?: number;
  readonly teeSpl?: number;
  readonly snpSpl?: number;
  readonly ucodeSpl?: number;
  readonly fmcSpl?: number;
  /** hwID: 64 bytes (Milan, Genoa) or 8 bytes (Turin). VCEK only. */
  readonly hwId?: Uint8Array;
  /** The cloud provider a VLEK was issued to. VLEK only. */
  readonly cspId?: string;
}

/** A parsed AMD certificate. */
export interface SnpCertificate {
  readonly cert: EkCertificate;
  readonly amd: AmdExtensions;
}

function malformed(message: string, field: string, cause?: unknown): ParseError {
  return new ParseError('SNP_CERT_MALFORMED', message, { field, ...(cause !== undefined ? { cause } : {}) });
}

/** A DER TLV with a short or one/two-octet long length, read through the bounds-checked reader. */
function derValue(bytes: Uint8Array, tag: number, field: string): Uint8Array {
  const r = new Reader(bytes, field);
  const t = r.u8('tag');
  if (t !== tag) throw r.error('PARSE_BAD_VALUE', 'tag', `tag 0x${t.toString(16)} is not 0x${tag.toString(16)}`);
  let len = r.u8('length');
  if (len === 0x81) len = r.u8('length');
  else if (len === 0x82) len = r.u16('length');
  else if (len > 0x7f) throw r.error('PARSE_BAD_VALUE', 'length', 'unsupported length form');
  const v = r.bytes(len, 'value');
  r.finish();
  return v;
}

function derSmallInt(bytes: Uint8Array, field: string): number {
  const v = derValue(bytes, 0x02, field);
  if (v.length === 0 || v.length > 4 || ((v[0] as number) & 0x80) !== 0) throw malformed(`${field} is not a small non-negative INTEGER`, field);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

function derIa5(bytes: Uint8Array, field: string): string {
  const v = derValue(bytes, 0x16, field);
  if (v.some((b) => b > 0x7f)) throw malformed(`${field} is not IA5 text`, field);
  return String.fromCharCode(...v);
}

function amdExtensionsOf(der: Uint8Array): AmdExtensions {
  const x = new X509Certificate(der);
  const out: { -readonly [K in keyof AmdExtensions]: AmdExtensions[K] } = {};
  // Repeated extensions never reach here: parseEkCertificate refuses them (RFC 5280 §4.2).
  for (const ext of x.extensions) {
    const v = new Uint8Array(ext.value);
    const field = `extensions.${ext.type}`;
    switch (ext.type) {
      case AMD_OID.structVersion: out.structVersion = derSmallInt(v, field); break;
      case AMD_OID.productName: out.productName = derIa5(v, field); break;
      case AMD_OID.blSpl: out.blSpl = derSmallInt(v, field); break;
      case AMD_OID.teeSpl: out.teeSpl = derSmallInt(v, field); break;
      case AMD_OID.snpSpl: out.snpSpl = derSmallInt(v, field); break;
      case AMD_OID.ucodeSpl: out.ucodeSpl = derSmallInt(v, field); break;
      case AMD_OID.fmcSpl: out.fmcSpl = derSmallInt(v, field); break;
      // hwID is the raw chip id as the extension value (no inner OCTET STRING), as AMD KDS issues it.
      case AMD_OID.hwId: out.hwId = v; break;
      case AMD_OID.cspId: out.cspId = derIa5(v, field); break;
      default: break;
    }
  }
  return out;
}

/**
 * Parses one AMD certificate (DER, or a single PEM block).
 *
 * @throws ParseError SNP_CERT_MALFORMED
 */
export function parseSnpCertificate(bytes: Uint8Array): SnpCertificate {
  let cert: EkCertificate;
  try {
    cert = parseEkCertificate(bytes);
  } catch (e) {
    if (isVouchError(e)) throw malformed(e.message, e.field ?? 'Certificate', e);
    throw e;
  }
  try {
    return { cert, amd: amdExtensionsOf(cert.der) };
  } catch (e) {
    if (isVouchError(e) && e.code === 'SNP_CERT_MALFORMED') throw e;
    throw malformed(`AMD extensions do not parse: ${e instanceof Error ? e.message : String(e)}`, 'extensions', e);
  }
}

/**
 * Parses a PEM bundle (for example AMD KDS `cert_chain`: ASK or ASVK, then ARK).
 *
 * @throws ParseError SNP_CERT_MALFORMED, PARSE_BAD_ENCODING
 */
export function parseSnpCertificatesPem(text: string): SnpCertificate[] {
  return splitPemCertificates(text, 'PEM').map((der) => parseSnpCertificate(der));
}

/** The product of a VCEK/VLEK productName ("Milan-B0" → "Milan"); undefined when unknown. */
export function snpProductOfName(name: string | undefined): SnpProduct | undefined {
  const base = name?.split('-')[0];
  return base === 'Milan' || base === 'Genoa' || base === 'Turin' ? base : undefined;
}
