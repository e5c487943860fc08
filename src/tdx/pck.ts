/**
 * Intel PCK certificates and the Intel SGX certificate hierarchy used by TDX (and SGX) DCAP
 * attestation.
 *
 * ```
 * Intel SGX Root CA  (self-signed, ECDSA P-256; pinned by SHA-256 fingerprint)
 * ├── Intel SGX PCK Platform CA  ──  Intel SGX PCK Certificate   (PCK leaf, SGX extensions)
 * ├── Intel SGX PCK Processor CA ──  Intel SGX PCK Certificate
 * └── Intel SGX TCB Signing          (signs TCB Info and QE Identity)
 * CRLs: PCK CRL (signed by the PCK Platform/Processor CA), Intel SGX Root CA CRL (signed by the root)
 * ```
 *
 * References: "Intel SGX PCK Certificate and Certificate Revocation List Profile Specification"
 * (the SGX extension 1.2.840.113741.1.13.1 and its sub-OIDs), Intel PCS API v4 documentation,
 * Intel's Quote Verification Library (PckCertVerifier, PckCrlVerifier, TCBSigningChain).
 *
 * Trust anchor decision: vouch embeds no Intel certificate, only the SHA-256 fingerprint of the
 * DER of the Intel SGX Root CA ({@link INTEL_SGX_ROOT_CA_FINGERPRINT}). The root certificate
 * itself comes with the evidence (a TDX quote's certification data type 5 carries all three
 * PCK certificates; PCS issuer-chain headers carry the root too) or, when a chain stops below
 * the root, from the operator's trust directory (the `root` option). Either way the bytes are
 * accepted only when their fingerprint is pinned, and every signature is then checked with node
 * crypto over each certificate's exact `tbsCertificate` bytes (ECDSA P-256 with SHA-256, the
 * only algorithm Intel uses in this hierarchy), with validity at an injected time.
 *
 * Nothing here reads the clock or the network; every "no" is returned as a {@link Failure}.
 */
import 'reflect-metadata';
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import { MisuseError, ParseError, isVouchError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { Reader } from '../lib/reader.js';
import { EXT_OID, parseEkCertificate, type EkCertificate } from '../tpm/ek/certificate.js';
import { locateCertificate, splitPemCertificates } from '../tpm/ek/der.js';
import type { CheckOutcome } from '../tpm/verify/quote.js';

/** One named check and its outcome, as every verify step of vouch records it. */
export type { CheckOutcome };

// ---------------------------------------------------------------------------------------------
// Constants

/**
 * SHA-256 of the DER of the Intel SGX Root CA ("CN=Intel SGX Root CA, O=Intel Corporation,
 * L=Santa Clara, ST=CA, C=US", valid 2018-05-21..2049-12-31), a public fact: it is the root
 * certificate Intel publishes at certificates.trustedservices.intel.com and that every PCK chain
 * in a TDX quote ends with.
 */
export const INTEL_SGX_ROOT_CA_FINGERPRINT = '44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3';

/** OIDs of the Intel SGX PCK certificate extension (PCK Certificate and CRL Profile, §1.5). */
export const SGX_OID = {
  extension: '1.2.840.113741.1.13.1',
  ppid: '1.2.840.113741.1.13.1.1',
  tcb: '1.2.840.113741.1.13.1.2',
  /** TCB component n (1..16) is `tcb.n`; 17 is PCESVN, 18 is CPUSVN. */
  pceId: '1.2.840.113741.1.13.1.3',
  fmspc: '1.2.840.113741.1.13.1.4',
  sgxType: '1.2.840.113741.1.13.1.5',
  platformInstanceId: '1.2.840.113741.1.13.1.6',
  configuration: '1.2.840.113741.1.13.1.7',
} as const;

/** The role a certificate plays in an Intel SGX chain, named by its subject CN. */
export type IntelCertRole = 'root' | 'pckPlatformCa' | 'pckProcessorCa' | 'pck' | 'tcbSigning';

/** Subject common name required for each role (exact match, as Intel issues them). */
export const INTEL_ROLE_CN: Readonly<Record<IntelCertRole, string>> = {
  root: 'Intel SGX Root CA',
  pckPlatformCa: 'Intel SGX PCK Platform CA',
  pckProcessorCa: 'Intel SGX PCK Processor CA',
  pck: 'Intel SGX PCK Certificate',
  tcbSigning: 'Intel SGX TCB Signing',
};

/** Which PCK CA issued a PCK certificate (the `ca` parameter of the PCS PCK CRL API). */
export type PckCaType = 'platform' | 'processor';

const ECDSA_SHA256_OID = '1.2.840.10045.4.3.2';
const P256 = 'prime256v1';
/** Largest SGX extension accepted (real ones are ~550 bytes). */
const MAX_SGX_EXTENSION_BYTES = 4096;
/** Largest CRL accepted (the platform PCK CRL is ~5 KiB and grows with revocations). */
export const MAX_CRL_BYTES = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The SGX extension

/** SGX TCB of a PCK certificate (extension `…13.1.2`). */
export interface SgxTcb {
  /** SGX TCB component SVNs 1..16 (`…13.1.2.1`–`…13.1.2.16`), each 0..255, in order. */
  readonly compSvn: readonly number[];
  /** PCESVN (`…13.1.2.17`), 0..65535. */
  readonly pceSvn: number;
  /** CPUSVN (`…13.1.2.18`), 16 bytes. */
  readonly cpuSvn: Uint8Array;
}

/** SGX type (`…13.1.5`, ENUMERATED). */
export type SgxType = 'Standard' | 'Scalable' | 'ScalableWithIntegrity';
const SGX_TYPES: readonly SgxType[] = ['Standard', 'Scalable', 'ScalableWithIntegrity'];

/** Platform configuration (`…13.1.7`), present in PCK certificates of the PCK Platform CA. */
export interface SgxConfiguration {
  readonly dynamicPlatform?: boolean;
  readonly cachedKeys?: boolean;
  readonly smtEnabled?: boolean;
}

/** The decoded SGX extension of a PCK certificate. Claimed until the chain is verified. */
export interface SgxExtensions {
  /** PPID (`…13.1.1`), 16 bytes. */
  readonly ppid: Uint8Array;
  readonly tcb: SgxTcb;
  /** PCE-ID (`…13.1.3`), 2 bytes. */
  readonly pceId: Uint8Array;
  /** FMSPC (`…13.1.4`), 6 bytes. */
  readonly fmspc: Uint8Array;
  readonly sgxType: SgxType;
  /** Platform instance id (`…13.1.6`), 16 bytes; PCK Platform CA certificates only. */
  readonly platformInstanceId?: Uint8Array;
  /** Platform configuration (`…13.1.7`); PCK Platform CA certificates only. */
  readonly configuration?: SgxConfiguration;
}

function sgxMalformed(message: string, field: string, extra: { offset?: number; cause?: unknown } = {}): ParseError {
  return new ParseError('TDX_PCK_CERT_MALFORMED', message, { field, ...extra });
}

/** One DER TLV header: the tag must be `tag`, the length definite and minimally encoded. */
function derSub(r: Reader, tag: number, field: string): Reader {
  const at = r.offset;
  const t = r.u8(`${field}.tag`);
  if (t !== tag) {
    throw r.error('PARSE_BAD_VALUE', `${field}.tag`, `tag 0x${t.toString(16).padStart(2, '0')}, expected 0x${tag.toString(16).padStart(2, '0')}`, { at });
  }
  const first = r.u8(`${field}.length`);
  let len = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw r.error('PARSE_BAD_VALUE', `${field}.length`, n === 0 ? 'indefinite length' : `${n} length octets`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + r.u8(`${field}.length`);
    // DER (X.690 §10.1): the long form only for lengths ≥ 128, with no leading zero octet.
    if (len < 0x80 || len < 2 ** (8 * (n - 1))) throw r.error('PARSE_BAD_VALUE', `${field}.length`, `non-minimal length encoding of ${len}`);
  }
  return r.sub(len, field);
}

/** An OBJECT IDENTIFIER as dotted text, canonical base-128 arcs (X.690 §8.19). */
function derOid(r: Reader, field: string): string {
  const s = derSub(r, 0x06, field);
  const b = s.rest(field);
  if (b.length === 0 || b.length > 32) throw sgxMalformed(`${field}: OBJECT IDENTIFIER of ${b.length} bytes`, field);
  const arcs: number[] = [];
  let v = 0;
  let fresh = true;
  for (const x of b) {
    if (fresh && x === 0x80) throw sgxMalformed(`${field}: non-minimal OBJECT IDENTIFIER arc`, field);
    v = v * 128 + (x & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw sgxMalformed(`${field}: OBJECT IDENTIFIER arc too large`, field);
    fresh = (x & 0x80) === 0;
    if (fresh) {
      arcs.push(v);
      v = 0;
    }
  }
  if (!fresh) throw sgxMalformed(`${field}: OBJECT IDENTIFIER ends inside an arc`, field);
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A non-negative DER INTEGER (canonical, X.690 §8.3) no larger than `max`. */
function derUint(r: Reader, max: number, field: string, tag = 0x02): number {
  const s = derSub(r, tag, field);
  const b = s.rest(field);
  if (b.length === 0) throw sgxMalformed(`${field}: empty INTEGER`, field);
  if (((b[0] as number) & 0x80) !== 0) throw sgxMalformed(`${field}: negative INTEGER`, field);
  if (b.length > 1 && b[0] === 0 && ((b[1] as number) & 0x80) === 0) throw sgxMalformed(`${field}: non-minimal INTEGER`, field);
  if (b.length > 4) throw sgxMalformed(`${field}: INTEGER out of range 0..${max}`, field);
  let n = 0;
  for (const x of b) n = n * 256 + x;
  if (n > max) throw sgxMalformed(`${field}: ${n} is out of range 0..${max}`, field);
  return n;
}

function derOctets(r: Reader, size: number, field: string): Uint8Array {
  const b = derSub(r, 0x04, field).rest(field);
  if (b.length !== size) throw sgxMalformed(`${field}: OCTET STRING of ${b.length} bytes, expected ${size}`, field);
  return b.slice();
}

function derBool(r: Reader, field: string): boolean {
  const b = derSub(r, 0x01, field).rest(field);
  // DER (X.690 §11.1): TRUE is 0xFF, FALSE is 0x00.
  if (b.length !== 1 || (b[0] !== 0x00 && b[0] !== 0xff)) throw sgxMalformed(`${field}: not a DER BOOLEAN`, field);
  return b[0] === 0xff;
}

/** `SEQUENCE { OID, value }` whose OID must be `oid`; returns a reader over the rest. */
function derEntry(r: Reader, oid: string, field: string): Reader {
  const e = derSub(r, 0x30, field);
  const got = derOid(e, `${field}.type`);
  if (got !== oid) throw sgxMalformed(`${field}: OID ${got}, expected ${oid}`, `${field}.type`);
  return e;
}

/**
 * Decodes the value (extnValue contents) of the SGX extension 1.2.840.113741.1.13.1:
 *
 * ```
 * SEQUENCE {
 *   SEQUENCE { …13.1.1 PPID         OCTET STRING (16) }
 *   SEQUENCE { …13.1.2 TCB          SEQUENCE {
 *       SEQUENCE { …13.1.2.1  SGX TCB COMP01 SVN  INTEGER (0..255) }   … through .16
 *       SEQUENCE { …13.1.2.17 PCESVN              INTEGER (0..65535) }
 *       SEQUENCE { …13.1.2.18 CPUSVN              OCTET STRING (16) } } }
 *   SEQUENCE { …13.1.3 PCE-ID       OCTET STRING (2) }
 *   SEQUENCE { …13.1.4 FMSPC        OCTET STRING (6) }
 *   SEQUENCE { …13.1.5 SGX Type     ENUMERATED (0 Standard, 1 Scalable, 2 ScalableWithIntegrity) }
 *   -- PCK Platform CA certificates only, both or neither:
 *   SEQUENCE { …13.1.6 PlatformInstanceID OCTET STRING (16) }
 *   SEQUENCE { …13.1.7 Configuration SEQUENCE {
 *       SEQUENCE { …13.1.7.1 dynamicPlatform BOOLEAN } OPTIONAL
 *       SEQUENCE { …13.1.7.2 cachedKeys      BOOLEAN } OPTIONAL
 *       SEQUENCE { …13.1.7.3 SMTEnabled      BOOLEAN } OPTIONAL } } }
 * ```
 *
 * Strict: the entries in this order, each once, canonical DER, every declared length consumed,
 * nothing after the outer SEQUENCE.
 *
 * @throws ParseError TDX_PCK_CERT_MALFORMED
 */
export function parseSgxExtensions(value: Uint8Array): SgxExtensions {
  if (!(value instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', 'the SGX extension value must be bytes', { field: 'sgxExtension' });
  if (value.length > MAX_SGX_EXTENSION_BYTES) throw sgxMalformed(`the SGX extension is ${value.length} bytes, more than ${MAX_SGX_EXTENSION_BYTES}`, 'sgxExtension');
  try {
    const top = new Reader(value, 'sgxExtension');
    const seq = derSub(top, 0x30, '');
    top.finish();

    const ppid = derOctets(derEntry(seq, SGX_OID.ppid, 'ppid'), 16, 'ppid.value');

    const tcbEntry = derEntry(seq, SGX_OID.tcb, 'tcb');
    const tcbSeq = derSub(tcbEntry, 0x30, 'tcb.value');
    tcbEntry.finish();
    const compSvn: number[] = [];
    for (let i = 1; i <= 16; i++) {
      const c = derEntry(tcbSeq, `${SGX_OID.tcb}.${i}`, `tcb.sgxTcbComp${String(i).padStart(2, '0')}Svn`);
      compSvn.push(derUint(c, 255, `tcb.sgxTcbComp${String(i).padStart(2, '0')}Svn.value`));
      c.finish();
    }
    const pceEntry = derEntry(tcbSeq, `${SGX_OID.tcb}.17`, 'tcb.pceSvn');
    const pceSvn = derUint(pceEntry, 0xffff, 'tcb.pceSvn.value');
    pceEntry.finish();
    const cpuEntry = derEntry(tcbSeq, `${SGX_OID.tcb}.18`, 'tcb.cpuSvn');
    const cpuSvn = derOctets(cpuEntry, 16, 'tcb.cpuSvn.value');
    cpuEntry.finish();
    tcbSeq.finish();

    const pceIdEntry = derEntry(seq, SGX_OID.pceId, 'pceId');
    const pceId = derOctets(pceIdEntry, 2, 'pceId.value');
    pceIdEntry.finish();
    const fmspcEntry = derEntry(seq, SGX_OID.fmspc, 'fmspc');
    const fmspc = derOctets(fmspcEntry, 6, 'fmspc.value');
    fmspcEntry.finish();
    const typeEntry = derEntry(seq, SGX_OID.sgxType, 'sgxType');
    const typeIndex = derUint(typeEntry, 255, 'sgxType.value', 0x0a);
    typeEntry.finish();
    const sgxType = SGX_TYPES[typeIndex];
    if (sgxType === undefined) throw sgxMalformed(`sgxType ${typeIndex} is not 0 (Standard), 1 (Scalable) or 2 (ScalableWithIntegrity)`, 'sgxType.value');

    let platformInstanceId: Uint8Array | undefined;
    let configuration: SgxConfiguration | undefined;
    if (seq.remaining > 0) {
      const piEntry = derEntry(seq, SGX_OID.platformInstanceId, 'platformInstanceId');
      platformInstanceId = derOctets(piEntry, 16, 'platformInstanceId.value');
      piEntry.finish();
      const cfgEntry = derEntry(seq, SGX_OID.configuration, 'configuration');
      const cfgSeq = derSub(cfgEntry, 0x30, 'configuration.value');
      cfgEntry.finish();
      const cfg: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean } = {};
      const names = ['dynamicPlatform', 'cachedKeys', 'smtEnabled'] as const;
      let next = 1;
      while (cfgSeq.remaining > 0) {
        const e = derSub(cfgSeq, 0x30, 'configuration.entry');
        const oid = derOid(e, 'configuration.entry.type');
        const m = /^1\.2\.840\.113741\.1\.13\.1\.7\.([123])$/.exec(oid);
        const idx = m === null ? 0 : Number(m[1]);
        // Each flag at most once, in increasing OID order.
        if (idx < next) throw sgxMalformed(`configuration: unexpected or repeated entry ${oid}`, 'configuration.entry.type');
        next = idx + 1;
        const name = names[idx - 1] as (typeof names)[number];
        cfg[name] = derBool(e, `configuration.${name}`);
        e.finish();
      }
      configuration = cfg;
    }
    seq.finish();
    return {
      ppid,
      tcb: { compSvn, pceSvn, cpuSvn },
      pceId,
      fmspc,
      sgxType,
      ...(platformInstanceId !== undefined ? { platformInstanceId } : {}),
      ...(configuration !== undefined ? { configuration } : {}),
    };
  } catch (e) {
    if (isVouchError(e) && e.code === 'TDX_PCK_CERT_MALFORMED') throw e;
    if (isVouchError(e)) {
      throw sgxMalformed(`the SGX extension does not parse: ${e.message}`, e.field ?? 'sgxExtension', { ...(e.offset !== undefined ? { offset: e.offset } : {}), cause: e });
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates

/** A certificate of the Intel SGX hierarchy, parsed; claimed until its chain is verified. */
export interface IntelCertificate {
  readonly cert: EkCertificate;
  /** The subject's single common name. */
  readonly commonName: string;
}

/** A PCK leaf certificate with its SGX extension. */
export interface PckCertificate extends IntelCertificate {
  readonly sgx: SgxExtensions;
  /** The issuing CA, from the issuer's common name. */
  readonly ca: PckCaType;
}

function certMalformed(message: string, field: string, cause?: unknown): ParseError {
  return new ParseError('TDX_PCK_CERT_MALFORMED', message, { field, ...(cause !== undefined ? { cause } : {}) });
}

function singleCn(names: readonly string[], field: string): string {
  if (names.length !== 1) throw certMalformed(`${field} has ${names.length} common names, expected 1`, field);
  return names[0] as string;
}

/**
 * Parses one certificate of the Intel SGX hierarchy (DER, or a single PEM block).
 *
 * @throws ParseError TDX_PCK_CERT_MALFORMED
 */
export function parseIntelCertificate(bytes: Uint8Array, field = 'certificate'): IntelCertificate {
  let cert: EkCertificate;
  try {
    cert = parseEkCertificate(bytes);
  } catch (e) {
    if (isVouchError(e)) throw certMalformed(`${field}: ${e.message}`, field, e);
    throw e;
  }
  let commonName: string;
  try {
    commonName = singleCn(new X509Certificate(cert.der).subjectName.getField('CN'), `${field}.subject`);
  } catch (e) {
    if (isVouchError(e)) throw e;
    throw certMalformed(`${field}: the subject does not decode`, `${field}.subject`, e);
  }
  return { cert, commonName };
}

/**
 * Parses a PCK leaf certificate: the certificate, its SGX extension (required), and the CA type
 * from the issuer CN (Intel SGX PCK Platform CA or Intel SGX PCK Processor CA). A Platform CA
 * PCK must carry the platform instance id and configuration, a Processor CA PCK must not.
 *
 * @throws ParseError TDX_PCK_CERT_MALFORMED
 */
export function parsePckCertificate(bytes: Uint8Array, field = 'pck'): PckCertificate {
  const ic = parseIntelCertificate(bytes, field);
  const x = new X509Certificate(ic.cert.der);
  let issuerCn: string;
  try {
    issuerCn = singleCn(x.issuerName.getField('CN'), `${field}.issuer`);
  } catch (e) {
    if (isVouchError(e)) throw e;
    throw certMalformed(`${field}: the issuer does not decode`, `${field}.issuer`, e);
  }
  const ca: PckCaType | undefined =
    issuerCn === INTEL_ROLE_CN.pckPlatformCa ? 'platform' : issuerCn === INTEL_ROLE_CN.pckProcessorCa ? 'processor' : undefined;
  if (ca === undefined) {
    throw new ParseError('TDX_PCK_CERT_MALFORMED', `${field}: issuer "${issuerCn}" is neither the PCK Platform CA nor the PCK Processor CA`, {
      field: `${field}.issuer`,
      expected: `${INTEL_ROLE_CN.pckPlatformCa} | ${INTEL_ROLE_CN.pckProcessorCa}`,
      actual: issuerCn,
    });
  }
  const ext = x.extensions.find((e) => e.type === SGX_OID.extension);
  if (ext === undefined) throw certMalformed(`${field}: no SGX extension ${SGX_OID.extension}`, `${field}.extensions.${SGX_OID.extension}`);
  const sgx = parseSgxExtensions(new Uint8Array(ext.value));
  const hasPlatform = sgx.platformInstanceId !== undefined;
  if (hasPlatform !== (ca === 'platform')) {
    throw certMalformed(
      `${field}: a ${ca} CA PCK certificate ${ca === 'platform' ? 'lacks' : 'carries'} the platform instance id and configuration`,
      `${field}.extensions.${SGX_OID.extension}.platformInstanceId`,
    );
  }
  return { ...ic, sgx, ca };
}

/**
 * The PEM chain of a TDX quote's certification data type 5 ("concatenated PCK cert chain",
 * leaf first), as DER certificates. The quoting enclave writes it as a C string, so one NUL
 * after the last END line is accepted; any other byte outside the blocks is not.
 *
 * @throws ParseError TDX_PCK_CERT_MALFORMED
 */
export function parsePckChainPem(bytes: Uint8Array, field = 'pckChain'): Uint8Array[] {
  if (!(bytes instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', 'the PCK chain must be bytes', { field });
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length;
  const body = bytes.subarray(0, end);
  if (body.includes(0)) throw certMalformed(`${field}: a NUL byte inside the PEM text`, field);
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  if (text.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '').trim() !== '') {
    throw certMalformed(`${field}: text outside the CERTIFICATE blocks`, field);
  }
  try {
    return splitPemCertificates(text, field);
  } catch (e) {
    if (isVouchError(e)) throw certMalformed(e.message, e.field ?? field, e);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// A memo of time-independent results

/**
 * Memo of the time-independent parts of TDX verification: certificate, CRL and collateral
 * signature checks, keyed by SHA-256 of the exact bytes and of the key, so an entry always
 * describes the same inputs. Validity windows, revocation lookups and every comparison still
 * run on every call. Bounded: the oldest entries go first.
 */
export class TdxVerifyCache {
  readonly #entries = new Map<string, string | undefined>();
  readonly #certs = new Map<string, IntelCertificate>();
  readonly #crls = new Map<string, IntelCrl>();
  readonly #max: number;

  constructor(maxEntries = 4096) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new MisuseError('MISUSE_ARGUMENT', 'maxEntries must be a positive whole number', { field: 'maxEntries' });
    this.#max = maxEntries;
  }

  /** The problem (undefined: none) of the check named by `key`, computed once. */
  memo(key: string, compute: () => string | undefined): string | undefined {
    if (this.#entries.has(key)) return this.#entries.get(key);
    const v = compute();
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, v);
    return v;
  }

  /** The parsed certificate of exactly these bytes, parsed once (a parse error is not kept). */
  certificate(bytes: Uint8Array, parse: () => IntelCertificate): IntelCertificate {
    return this.#value(this.#certs, `cert:${sha256Hex(bytes)}`, parse);
  }

  /** The parsed CRL of exactly these bytes, parsed once (a parse error is not kept). */
  crl(bytes: Uint8Array, parse: () => IntelCrl): IntelCrl {
    return this.#value(this.#crls, `crl:${sha256Hex(bytes)}`, parse);
  }

  #value<V>(m: Map<string, V>, key: string, compute: () => V): V {
    const hit = m.get(key);
    if (hit !== undefined) return hit;
    const v = compute();
    if (m.size >= this.#max) m.delete(m.keys().next().value as string);
    m.set(key, v);
    return v;
  }
}

function sha256Hex(...parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Signatures

/** Whether `cert` carries an EC P-256 key; undefined when it does, else why not. */
export function p256KeyProblem(cert: EkCertificate): string | undefined {
  const k = cert.publicKey;
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== P256) {
    return `the key is not an EC P-256 key (${k.asymmetricKeyType ?? 'unknown'} ${k.asymmetricKeyDetails?.namedCurve ?? ''})`.trimEnd();
  }
  return undefined;
}

/**
 * ECDSA P-256 with SHA-256 by `signer` over `data`. `encoding` is 'der' for X.509 signatures
 * (ECDSA-Sig-Value) and 'ieee-p1363' for PCS collateral and quote signatures (r ‖ s, 32 bytes
 * each, big-endian). Undefined when it verifies, else why not.
 */
export function p256SignatureProblem(signer: EkCertificate, data: Uint8Array, signature: Uint8Array, encoding: 'der' | 'ieee-p1363', cache?: TdxVerifyCache): string | undefined {
  const compute = (): string | undefined => {
    const keyWhy = p256KeyProblem(signer);
    if (keyWhy !== undefined) return keyWhy;
    if (encoding === 'ieee-p1363' && signature.length !== 64) return `the signature is ${signature.length} bytes, expected 64 (r ‖ s)`;
    try {
      return cryptoVerify('sha256', data, { key: signer.publicKey, dsaEncoding: encoding }, signature) ? undefined : 'the signature does not verify';
    } catch (e) {
      return `the signature cannot be verified: ${e instanceof Error ? e.message : String(e)}`;
    }
  };
  if (cache === undefined) return compute();
  return cache.memo(`sig:${encoding}:${signer.fingerprint}:${sha256Hex(data)}:${sha256Hex(signature)}`, compute);
}

// ---------------------------------------------------------------------------------------------
// Chains

/** Options of {@link checkIntelChain}. */
export interface IntelChainCheckOptions {
  readonly now: Date;
  /** Trusted root fingerprints (SHA-256 of the DER, lower-case hex). */
  readonly pins: readonly string[];
  /** Field prefix of failures ("pckChain", "tcbInfoIssuerChain"). */
  readonly field: string;
  readonly cache?: TdxVerifyCache;
}

/** The outcome of {@link checkIntelChain}, one list per check. */
export interface IntelChainCheck {
  /** Subject CNs, issuer names, CA constraints, key usage, critical extensions, chain length. */
  readonly roles: readonly Failure[];
  readonly pinned: readonly Failure[];
  readonly signatures: readonly Failure[];
  readonly validity: readonly Failure[];
}

/** Roles that issue certificates or CRLs; the others are end entities. */
const CA_ROLES = new Set<IntelCertRole>(['root', 'pckPlatformCa', 'pckProcessorCa']);

const PROCESSED_CRITICAL = new Set<string>([EXT_OID.basicConstraints, EXT_OID.keyUsage, SGX_OID.extension]);

/**
 * Checks an Intel chain, leaf first, ending at the root: each certificate's role (exact subject
 * CN), issuer name = the next one's subject, ECDSA P-256/SHA-256 signature by the next one's
 * key over the exact TBS bytes (the root by itself), CA constraints (basicConstraints cA and
 * keyCertSign on issuers, not cA on the leaf, path lengths), no unprocessed critical extension,
 * validity at `now`, and the root's fingerprint among `pins`. Every failure is returned.
 */
export function checkIntelChain(chain: readonly IntelCertificate[], roles: readonly (IntelCertRole | readonly IntelCertRole[])[], opts: IntelChainCheckOptions): IntelChainCheck {
  const roleFailures: Failure[] = [];
  const pinned: Failure[] = [];
  const signatures: Failure[] = [];
  const validity: Failure[] = [];
  const f = opts.field;
  if (chain.length !== roles.length || chain.length === 0) {
    roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: f, expected: `${roles.length} certificates`, actual: `${chain.length} certificates`, message: `the ${f} has ${chain.length} certificates, expected ${roles.length}` }));
    return { roles: roleFailures, pinned, signatures, validity };
  }
  const t = opts.now.getTime();
  const last = chain.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = chain[i] as IntelCertificate;
    const issuer = chain[Math.min(i + 1, last)] as IntelCertificate;
    const allowed = ([] as IntelCertRole[]).concat(roles[i] as IntelCertRole | IntelCertRole[]);
    const here = `${f}[${i}]`;
    if (!allowed.some((r) => INTEL_ROLE_CN[r] === c.commonName)) {
      roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.tbsCertificate.subject`, expected: allowed.map((r) => INTEL_ROLE_CN[r]).join(' | '), actual: c.commonName, message: `${here} is "${c.commonName}", not ${allowed.map((r) => `"${INTEL_ROLE_CN[r]}"`).join(' or ')}` }));
    }
    if (c.cert.issuerNameKey !== issuer.cert.subjectNameKey) {
      roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.tbsCertificate.issuer`, expected: issuer.cert.subject, actual: c.cert.issuer, message: `${here} is not issued by "${issuer.cert.subject}"` }));
    }
    const bc = c.cert.basicConstraints;
    if (!CA_ROLES.has(allowed[0] as IntelCertRole)) {
      if (bc?.ca === true) roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.extensions.basicConstraints.cA`, expected: 'false', actual: 'true', message: `the end-entity ${here} is a CA` }));
    } else {
      if (bc?.ca !== true) roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.extensions.basicConstraints.cA`, expected: 'true', actual: String(bc?.ca ?? 'absent'), message: `${here} issues certificates but is not a CA` }));
      if (c.cert.keyUsage === undefined || !c.cert.keyUsage.usages.includes('keyCertSign')) {
        roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.extensions.keyUsage`, expected: 'keyCertSign', actual: c.cert.keyUsage?.usages.join(',') ?? 'absent', message: `${here} issues certificates without keyCertSign` }));
      }
      // CA certificates below this one in the chain (RFC 5280 §4.2.1.9: the end entity is not counted).
      const below = chain.slice(0, i).filter((_, k) => CA_ROLES.has(([] as IntelCertRole[]).concat(roles[k] as IntelCertRole | IntelCertRole[])[0] as IntelCertRole)).length;
      if (bc?.pathLength !== undefined && below > bc.pathLength) {
        roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.extensions.basicConstraints.pathLenConstraint`, expected: `>= ${below}`, actual: String(bc.pathLength), message: `${here} allows ${bc.pathLength} intermediates below it, the chain has ${below}` }));
      }
    }
    for (const oid of c.cert.criticalExtensions) {
      if (!PROCESSED_CRITICAL.has(oid)) {
        roleFailures.push(failure('TDX_CHAIN_ISSUER_MISMATCH', { field: `${here}.extensions.${oid}`, actual: oid, message: `${here} has a critical extension ${oid} that vouch does not process` }));
      }
    }
    const alg = c.cert.signatureAlgorithmOid;
    let why: string | undefined;
    if (alg !== ECDSA_SHA256_OID) why = `the signature algorithm ${alg} is not ecdsa-with-SHA256`;
    else {
      const key = `cert:${c.cert.fingerprint}:${issuer.cert.fingerprint}`;
      const compute = (): string | undefined => p256SignatureProblem(issuer.cert, c.cert.tbs, c.cert.signature, 'der');
      why = opts.cache === undefined ? compute() : opts.cache.memo(key, compute);
    }
    const keyWhy = p256KeyProblem(c.cert);
    if (keyWhy !== undefined) signatures.push(failure('TDX_CHAIN_SIGNATURE_INVALID', { field: `${here}.tbsCertificate.subjectPublicKeyInfo`, actual: keyWhy, message: `${here}: ${keyWhy}` }));
    if (why !== undefined) signatures.push(failure('TDX_CHAIN_SIGNATURE_INVALID', { field: `${here}.signatureValue`, actual: why, message: `${here} ("${c.commonName}"): ${why} with the key of "${issuer.commonName}"` }));
    if (t < c.cert.notBefore.getTime() || t > c.cert.notAfter.getTime()) {
      validity.push(failure('TDX_CHAIN_EXPIRED', {
        field: `${here}.tbsCertificate.validity`,
        expected: `${c.cert.notBefore.toISOString()}..${c.cert.notAfter.toISOString()}`,
        actual: opts.now.toISOString(),
        message: `${here} ("${c.commonName}") is ${t < c.cert.notBefore.getTime() ? 'not yet valid' : 'expired'} at ${opts.now.toISOString()}`,
      }));
    }
  }
  const root = chain[last] as IntelCertificate;
  if (!opts.pins.includes(root.cert.fingerprint)) {
    pinned.push(failure('TDX_ROOT_NOT_PINNED', { field: `${f}[${last}]`, expected: opts.pins.join(' | '), actual: root.cert.fingerprint }));
  }
  return { roles: roleFailures, pinned, signatures, validity };
}

// ---------------------------------------------------------------------------------------------
// CRLs

/** A parsed Intel CRL. Untrusted until {@link checkIntelCrl} has verified it. */
export interface IntelCrl {
  readonly der: Uint8Array;
  /** tbsCertList exactly as signed. */
  readonly tbs: Uint8Array;
  readonly issuer: string;
  /** The issuer's common names (one for every Intel CRL). */
  readonly issuerCommonNames: readonly string[];
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** Revoked serial numbers, lower-case hex without leading zeros. */
  readonly revokedSerials: ReadonlySet<string>;
  readonly signatureAlgorithmOid: string;
  /** signatureValue (a DER ECDSA-Sig-Value). */
  readonly signature: Uint8Array;
}

/** The CRL's ASN.1 structure, which @peculiar/x509 keeps protected. */
class AsnX509Crl extends X509Crl {
  get asnCrl() {
    return this.asn;
  }
}

/** Serial-number key: lower-case hex without leading zeros. */
export function serialKey(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/**
 * Parses a DER CRL (RFC 5280 §5) and locates its exact tbsCertList.
 *
 * @throws ParseError TDX_CRL_MALFORMED
 */
export function parseIntelCrl(der: Uint8Array, field = 'crl'): IntelCrl {
  if (!(der instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', `${field} must be bytes`, { field });
  if (der.length === 0 || der.length > MAX_CRL_BYTES || der[0] !== 0x30) {
    throw new ParseError('TDX_CRL_MALFORMED', `${field} is not a DER CRL of at most ${MAX_CRL_BYTES} bytes`, { field });
  }
  try {
    // A CRL has the outer shape of a certificate: SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }.
    const { der: exact, tbs, padding } = locateCertificate(der);
    if (padding !== 0) throw new ParseError('TDX_CRL_MALFORMED', `${field}: ${padding} bytes after the CRL`, { field });
    const own = exact.slice();
    // The unsigned outer layer, strictly: CertificateList ::= SEQUENCE { tbsCertList,
    // signatureAlgorithm, signatureValue BIT STRING with no unused bits } and nothing else.
    const outerReader = new Reader(own, field);
    const outer = derSub(outerReader, 0x30, '');
    outerReader.finish();
    derSub(outer, 0x30, 'tbsCertList');
    derSub(outer, 0x30, 'signatureAlgorithm');
    const bits = derSub(outer, 0x03, 'signatureValue');
    if (bits.u8('signatureValue.unusedBits') !== 0) throw new ParseError('TDX_CRL_MALFORMED', `${field}: signatureValue has unused bits`, { field: `${field}.signatureValue` });
    outer.finish();
    const crl = new AsnX509Crl(own);
    const asn = crl.asnCrl;
    if (asn.signatureAlgorithm.algorithm !== asn.tbsCertList.signature.algorithm) {
      throw new ParseError('TDX_CRL_MALFORMED', `${field}: signatureAlgorithm differs from tbsCertList.signature`, { field: `${field}.signatureAlgorithm` });
    }
    const revokedSerials = new Set<string>();
    for (const e of crl.entries) revokedSerials.add(serialKey(e.serialNumber));
    return {
      der: own,
      tbs: own.subarray(tbs.byteOffset - exact.byteOffset, tbs.byteOffset - exact.byteOffset + tbs.length),
      issuer: crl.issuer,
      issuerCommonNames: crl.issuerName.getField('CN'),
      thisUpdate: crl.thisUpdate,
      ...(crl.nextUpdate !== undefined ? { nextUpdate: crl.nextUpdate } : {}),
      revokedSerials,
      signatureAlgorithmOid: asn.signatureAlgorithm.algorithm,
      signature: new Uint8Array(crl.signature),
    };
  } catch (e) {
    if (isVouchError(e) && e.code === 'TDX_CRL_MALFORMED') throw e;
    throw new ParseError('TDX_CRL_MALFORMED', `${field} does not parse as an X.509 CRL: ${e instanceof Error ? e.message : String(e)}`, { field, cause: e });
  }
}

/** A certificate whose serial a CRL must not list. */
export interface CrlSubject {
  readonly cert: IntelCertificate;
  /** Field of the certificate in failures ("pckChain[0]"). */
  readonly field: string;
  readonly code: 'TDX_PCK_REVOKED' | 'TDX_CA_REVOKED';
}

/** The outcome of {@link checkIntelCrl}. */
export interface IntelCrlCheck {
  /** Parse, issuer and signature failures. */
  readonly integrity: readonly Failure[];
  /** thisUpdate..nextUpdate window failures. */
  readonly window: readonly Failure[];
  /** Revocations of the subjects. */
  readonly revoked: readonly Failure[];
  readonly crl?: IntelCrl;
}

/**
 * Verifies a CRL (DER) with its Intel issuer: issuer name, ECDSA P-256/SHA-256 signature over
 * the exact tbsCertList, thisUpdate ≤ now ≤ nextUpdate (a CRL without nextUpdate is stale),
 * then looks up each subject's serial. Revocations are only reported from a CRL whose signature
 * verified: an unverified list proves nothing either way, and its failure is reported instead.
 */
export function checkIntelCrl(crlDer: Uint8Array, issuer: IntelCertificate, now: Date, field: string, subjects: readonly CrlSubject[], cache?: TdxVerifyCache): IntelCrlCheck {
  let crl: IntelCrl;
  try {
    crl = cache === undefined ? parseIntelCrl(crlDer, field) : cache.crl(crlDer, () => parseIntelCrl(crlDer, field));
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { integrity: [failure(e.code, { field: e.field ?? field, message: e.message })], window: [], revoked: [] };
  }
  const integrity: Failure[] = [];
  if (crl.issuer !== issuer.cert.subject) {
    integrity.push(failure('TDX_CRL_INVALID', { field: `${field}.tbsCertList.issuer`, expected: issuer.cert.subject, actual: crl.issuer, message: `${field} is issued by "${crl.issuer}", not "${issuer.cert.subject}"` }));
  }
  if (issuer.cert.keyUsage === undefined || !issuer.cert.keyUsage.usages.includes('cRLSign')) {
    integrity.push(failure('TDX_CRL_INVALID', { field: `${field}.issuer.extensions.keyUsage`, expected: 'cRLSign', actual: issuer.cert.keyUsage?.usages.join(',') ?? 'absent', message: `"${issuer.commonName}" may not sign CRLs (no cRLSign key usage)` }));
  }
  let sigWhy: string | undefined;
  if (crl.signatureAlgorithmOid !== ECDSA_SHA256_OID) sigWhy = `the signature algorithm ${crl.signatureAlgorithmOid} is not ecdsa-with-SHA256`;
  else sigWhy = p256SignatureProblem(issuer.cert, crl.tbs, crl.signature, 'der', cache);
  if (sigWhy !== undefined) integrity.push(failure('TDX_CRL_INVALID', { field: `${field}.signatureValue`, actual: sigWhy, message: `${field}: ${sigWhy} with the key of "${issuer.commonName}"` }));
  const window: Failure[] = [];
  const t = now.getTime();
  if (crl.nextUpdate === undefined) {
    window.push(failure('TDX_CRL_STALE', { field: `${field}.tbsCertList.nextUpdate`, expected: 'a nextUpdate time', actual: 'absent', message: `${field} has no nextUpdate, so its freshness cannot be judged` }));
  } else if (t < crl.thisUpdate.getTime() || t > crl.nextUpdate.getTime()) {
    window.push(failure('TDX_CRL_STALE', {
      field: `${field}.tbsCertList.${t < crl.thisUpdate.getTime() ? 'thisUpdate' : 'nextUpdate'}`,
      expected: `${crl.thisUpdate.toISOString()}..${crl.nextUpdate.toISOString()}`,
      actual: now.toISOString(),
      message: `${field} is ${t < crl.thisUpdate.getTime() ? 'not yet valid' : 'past its nextUpdate'} at ${now.toISOString()}`,
    }));
  }
  const revoked: Failure[] = [];
  if (integrity.length === 0) {
    for (const s of subjects) {
      if (crl.revokedSerials.has(serialKey(s.cert.cert.serial))) {
        revoked.push(failure(s.code, { field: `${s.field}.tbsCertificate.serialNumber`, actual: s.cert.cert.serial, message: `${s.field} ("${s.cert.commonName}", serial ${s.cert.cert.serial}) is revoked by the ${field}` }));
      }
    }
  }
  return { integrity, window, revoked, crl };
}

// ---------------------------------------------------------------------------------------------
// The PCK chain

/** A certificate as DER/PEM bytes, or already parsed (parsed ones can be kept by the caller). */
export type IntelCertInput = Uint8Array | IntelCertificate;

/** Options of {@link verifyPckChain}. */
export interface PckChainVerifyOptions {
  /** The verification time. */
  readonly now: Date;
  /** The PCK CRL (DER) of the leaf's CA, signed by that CA. */
  readonly pckCrl?: Uint8Array;
  /** The Intel SGX Root CA CRL (DER), signed by the root. */
  readonly rootCaCrl?: Uint8Array;
  /** Accept the absence of either CRL: that revocation check is then skipped and recorded. */
  readonly allowMissingCrl?: boolean;
  /**
   * The root certificate, for a chain that stops at the PCK CA (from the operator's trust
   * directory). It is pinned like a root carried by the chain.
   */
  readonly root?: IntelCertInput;
  /** Trusted root fingerprints; default [{@link INTEL_SGX_ROOT_CA_FINGERPRINT}]. Replace only for test-only roots. */
  readonly pinnedRootFingerprints?: readonly string[];
  readonly cache?: TdxVerifyCache;
}

/** An allowance that made a check be skipped instead of failing. */
export type TdxAllowance = 'missingPckCrl' | 'missingRootCaCrl';

/** Result of {@link verifyPckChain}: `ok` only when no check failed. */
export interface PckChainVerification {
  readonly ok: boolean;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  readonly allowancesUsed: readonly TdxAllowance[];
  /** The parsed PCK leaf (its SGX extension is trustworthy only when `ok`). */
  readonly pck?: PckCertificate;
  /** The PCK CA type named by the leaf's issuer. */
  readonly ca?: PckCaType;
}

/** Normalizes a pin list: lower-case 64-digit hex. */
export function checkPins(pins: readonly string[] | undefined): readonly string[] {
  const out = (pins ?? [INTEL_SGX_ROOT_CA_FINGERPRINT]).map((p) => (typeof p === 'string' ? p.toLowerCase() : ''));
  if (out.length === 0 || out.some((p) => !/^[0-9a-f]{64}$/.test(p))) {
    throw new MisuseError('MISUSE_ARGUMENT', 'pinnedRootFingerprints must be SHA-256 fingerprints (64 hex digits)', { field: 'pinnedRootFingerprints' });
  }
  return out;
}

/** Checks the injected verification time. @throws MisuseError MISUSE_ARGUMENT */
export function checkNow(now: unknown): Date {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new MisuseError('MISUSE_ARGUMENT', 'now must be a valid Date', { field: 'now' });
  return now;
}

/** Collects checks and failures in the order they run. */
export class CheckLog {
  readonly checks: CheckOutcome[] = [];
  readonly failures: Failure[] = [];

  run(check: string, found: readonly Failure[]): boolean {
    this.checks.push({ check, outcome: found.length === 0 ? 'pass' : 'fail' });
    this.failures.push(...found);
    return found.length === 0;
  }

  skip(check: string, note: string): void {
    this.checks.push({ check, outcome: 'skipped', note });
  }
}

/**
 * Verifies a PCK chain (leaf → PCK Platform/Processor CA → Intel SGX Root CA), in this order:
 * parse (the leaf with its SGX extension) → roles, issuer names and CA constraints → root
 * pinned by fingerprint → ECDSA P-256/SHA-256 signatures over each exact TBS → validity at
 * `now` → the Root CA CRL (signed by the root, current; the PCK CA not revoked) → the PCK CRL
 * (signed by the PCK CA, current; the leaf not revoked). Every failure is returned.
 *
 * @param chain DER (or PEM, or parsed) certificates, leaf first: three, or two with `root` given
 * @throws MisuseError MISUSE_ARGUMENT on a bad argument shape
 */
export function verifyPckChain(chain: readonly IntelCertInput[], opts: PckChainVerifyOptions): PckChainVerification {
  if (!Array.isArray(chain)) throw new MisuseError('MISUSE_ARGUMENT', 'chain must be an array of certificates', { field: 'chain' });
  const now = checkNow(opts.now);
  const pins = checkPins(opts.pinnedRootFingerprints);
  const log = new CheckLog();
  const allowancesUsed: TdxAllowance[] = [];
  const inputs = opts.root !== undefined && chain.length === 2 ? [...chain, opts.root] : [...chain];

  const parseFailures: Failure[] = [];
  const parsed: (IntelCertificate | undefined)[] = inputs.map((c, i) => {
    const field = `pckChain[${i}]`;
    try {
      if (i === 0) {
        if (!(c instanceof Uint8Array)) return 'sgx' in c ? c : parsePckCertificate(c.cert.der, field);
        return opts.cache === undefined ? parsePckCertificate(c, field) : opts.cache.certificate(c, () => parsePckCertificate(c, field));
      }
      if (!(c instanceof Uint8Array)) return c;
      return opts.cache === undefined ? parseIntelCertificate(c, field) : opts.cache.certificate(c, () => parseIntelCertificate(c, field));
    } catch (e) {
      if (!isVouchError(e)) throw e;
      parseFailures.push(failure(e.code, { field: e.field ?? field, message: e.message, ...(e.expected !== undefined ? { expected: e.expected } : {}), ...(e.actual !== undefined ? { actual: e.actual } : {}) }));
      return undefined;
    }
  });
  log.run('pck.parse', parseFailures);
  const pck = parsed[0] as PckCertificate | undefined;
  const complete = parsed.every((c) => c !== undefined) ? (parsed as IntelCertificate[]) : undefined;

  if (complete !== undefined) {
    const caRole: IntelCertRole = pck?.ca === 'processor' ? 'pckProcessorCa' : 'pckPlatformCa';
    const c = checkIntelChain(complete, ['pck', caRole, 'root'], { now, pins, field: 'pckChain', ...(opts.cache !== undefined ? { cache: opts.cache } : {}) });
    log.run('pck.chain.roles', c.roles);
    log.run('pck.chain.rootPinned', c.pinned);
    log.run('pck.chain.signatures', c.signatures);
    log.run('pck.chain.validity', c.validity);
  } else {
    for (const n of ['roles', 'rootPinned', 'signatures', 'validity']) log.skip(`pck.chain.${n}`, 'a certificate did not parse');
  }

  // Revocation. The root CRL covers the PCK CA, the PCK CRL covers the leaf.
  const crlStep = (name: 'rootCaCrl' | 'pckCrl', der: Uint8Array | undefined, issuer: IntelCertificate | undefined, subject: CrlSubject | undefined): void => {
    const check = `pck.${name}`;
    if (der === undefined) {
      if (opts.allowMissingCrl === true) {
        allowancesUsed.push(name === 'pckCrl' ? 'missingPckCrl' : 'missingRootCaCrl');
        log.skip(check, `no ${name} supplied; allowed by allowMissingCrl`);
      } else {
        log.run(check, [failure('TDX_CRL_MISSING', { field: name, message: `no ${name === 'pckCrl' ? 'PCK CRL' : 'Intel SGX Root CA CRL'} was supplied, and a missing CRL was not allowed` })]);
      }
      return;
    }
    if (issuer === undefined || subject === undefined) {
      log.skip(check, 'a certificate did not parse');
      return;
    }
    const r = checkIntelCrl(der, issuer, now, name, [subject], opts.cache);
    log.run(check, [...r.integrity, ...r.window, ...r.revoked]);
  };
  const [leaf, mid, root] = complete ?? [];
  crlStep('rootCaCrl', opts.rootCaCrl, root, mid === undefined ? undefined : { cert: mid, field: 'pckChain[1]', code: 'TDX_CA_REVOKED' });
  crlStep('pckCrl', opts.pckCrl, mid, leaf === undefined ? undefined : { cert: leaf, field: 'pckChain[0]', code: 'TDX_PCK_REVOKED' });

  return {
    ok: log.failures.length === 0,
    checks: log.checks,
    failures: log.failures,
    allowancesUsed,
    ...(pck !== undefined ? { pck, ca: pck.ca } : {}),
  };
}
