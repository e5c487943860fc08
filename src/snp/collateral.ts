/**
 * SEV-SNP collateral: VCEK certificates, ASK/ARK (or ASVK/ARK) chains and AMD CRLs, from AMD's
 * Key Distribution Service (KDS) or from an offline bundle, with an on-disk cache.
 *
 * KDS interface ("Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
 * Specification", AMD #57230):
 *
 *   GET {base}/vcek/v1/{product}/{hwid}?blSPL=NN&teeSPL=NN&snpSPL=NN&ucodeSPL=NN[&fmcSPL=NN]
 *       → VCEK, DER. hwid is CHIP_ID in hex: 64 bytes (Milan, Genoa), 8 bytes (Turin, which
 *         also takes fmcSPL).
 *   GET {base}/{vcek|vlek}/v1/{product}/cert_chain → ASK (or ASVK) then ARK, PEM.
 *   GET {base}/{vcek|vlek}/v1/{product}/crl        → CRL signed by the ARK, DER.
 *   429 Too Many Requests carries Retry-After (delta-seconds or HTTP-date, RFC 9110 §10.2.3).
 *
 * Trust stage: collection. Nothing here verifies a signature: every certificate and CRL this
 * module returns is *untrusted* until ./verify checks it against the pinned ARK. What this
 * module does check is that collateral is what it is labelled as: a VCEK's product, hwID and
 * TCB are read from its own extensions and must equal the request (or the cache path, or the
 * bundle label); a chain's certificates must carry the product's ARK/ASK names; a CRL must be
 * issued under the product's ARK name. So neither KDS, a cache file nor a bundle can file a
 * certificate under another chip or TCB.
 *
 * Nothing here sleeps or retries: a rate-limited request fails at once with the time after
 * which KDS may be asked again, and the client refuses to ask before then.
 */
import { boundedFetcher, type FetchResponse, type Fetcher } from '../lib/http-get.js';
import 'reflect-metadata';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import { MisuseError, ParseError, UnavailableError, isVouchError } from '../lib/errors.js';
import { bytesEqual, fromHex, toHex } from '../lib/bytes.js';
import { splitPemCertificates } from '../tpm/ek/der.js';
import { AMD_OID } from './certs.js';

// ---------------------------------------------------------------------------------------------
// Types

/** SEV-SNP product names as KDS spells them in URLs. */
export const SNP_PRODUCTS = ['Milan', 'Genoa', 'Turin'] as const;
/** A SEV-SNP product. */
export type SnpProduct = (typeof SNP_PRODUCTS)[number];

/** Which endorsement key family: chip-unique VCEK (chain ASK → ARK) or CSP-provisioned VLEK (ASVK → ARK). */
export type KdsKeyKind = 'vcek' | 'vlek';

/** TCB security patch levels of a VCEK (each 0..255); `fmc` exists on Turin only. */
export interface SnpTcb {
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
  readonly fmc?: number;
}

/** What a {@link Fetcher} answers. Header names may be in any case. */
export type { FetchResponse, Fetcher };

/** Production KDS. */
export const KDS_BASE_URL = 'https://kdsintf.amd.com';

/** Largest certificate, chain or CRL accepted from KDS or a bundle (1 MiB; real ones are < 10 KiB). */
export const MAX_COLLATERAL_BYTES = 1024 * 1024;
/** Largest JSON bundle file read (64 MiB). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
/** Wait assumed when a 429 carries no usable Retry-After. */
export const DEFAULT_RETRY_AFTER_SECONDS = 60;


/** The AMD extensions of a VCEK or VLEK, as claimed by the (not yet verified) certificate. */
export interface VcekExtensions {
  readonly structVersion?: number;
  /** productName as written ("Milan-B0", "Genoa", "Turin"). */
  readonly productName: string;
  /** The product: productName up to its first '-', when it is a known product. */
  readonly product?: SnpProduct;
  /** hwID (the chip id); absent in VLEK certificates. */
  readonly hwId?: Uint8Array;
  readonly tcb: SnpTcb;
}

/** A certificate chain as KDS serves it. Untrusted until verified. */
export interface KdsCertChain {
  /** DER of the ASK (VCEK chain) or ASVK (VLEK chain). */
  readonly ask: Uint8Array;
  /** DER of the ARK. */
  readonly ark: Uint8Array;
}

/** An AMD CRL with its update times. Untrusted until its signature is verified with the ARK. */
export interface KdsCrl {
  readonly der: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

/** Where a piece of collateral came from: the client's cache (filled by KDS or a bundle), or KDS just now. */
export type KdsSource = 'kds-cache' | 'kds';

/** Collateral with where it came from. */
export interface KdsSourced<T> {
  readonly value: T;
  readonly source: KdsSource;
}

/** Options of {@link KdsClient}. */
export interface KdsClientOptions {
  /** The network; absent = offline (cache and imported bundles only). */
  readonly fetcher?: Fetcher;
  /** Cache directory; absent = an in-memory cache for the client's lifetime. */
  readonly cacheDir?: string;
  /** The time: decides CRL freshness and the end of a rate-limit wait. */
  readonly clock: () => Date;
  /** KDS base URL, default {@link KDS_BASE_URL}. */
  readonly baseUrl?: string;
}

/** What {@link KdsClient.importBundle} stored. */
export interface BundleImportSummary {
  readonly vceks: number;
  readonly chains: number;
  readonly crls: number;
  /** CRLs not stored because the cache already holds one with a later thisUpdate. */
  readonly olderCrlsSkipped: number;
}

/** KDS answered 429: no request may be made before `retryAt`. */
export class KdsRateLimitedError extends UnavailableError {
  /** The earliest time KDS may be asked again. */
  readonly retryAt: Date;

  constructor(retryAt: Date, url: string) {
    super('SNP_KDS_RATE_LIMITED', `AMD KDS rate limit: no request before ${retryAt.toISOString()} (${url})`, {
      field: 'Retry-After',
      actual: retryAt.toISOString(),
    });
    this.retryAt = retryAt;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

function kdsUnavailable(message: string, cause?: unknown): UnavailableError {
  return new UnavailableError('SNP_KDS_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

function kdsMalformed(message: string, field: string, cause?: unknown): UnavailableError {
  return new UnavailableError('SNP_KDS_MALFORMED', message, { field, ...(cause === undefined ? {} : { cause }) });
}

function mislabelled(message: string, field: string, expected: string, actual: string): ParseError {
  return new ParseError('SNP_COLLATERAL_MISLABELLED', message, { field, expected, actual });
}

function misuse(message: string, field: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', message, { field });
}

// ---------------------------------------------------------------------------------------------
// Argument checks and URL shapes

function checkProduct(product: string): SnpProduct {
  if (!(SNP_PRODUCTS as readonly string[]).includes(product)) {
    throw misuse(`product "${product}" is not one of ${SNP_PRODUCTS.join(', ')}`, 'product');
  }
  return product as SnpProduct;
}

function checkKind(kind: string): KdsKeyKind {
  if (kind !== 'vcek' && kind !== 'vlek') throw misuse(`key kind "${kind}" is neither vcek nor vlek`, 'kind');
  return kind;
}

function checkSpl(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) throw misuse(`${field} must be an integer 0..255`, field);
  return v;
}

/** Checks a TCB for `product`: fmcSPL is required on Turin and absent elsewhere. */
function checkTcb(product: SnpProduct, tcb: SnpTcb): SnpTcb {
  const out: SnpTcb = {
    bl: checkSpl(tcb.bl, 'tcb.bl'),
    tee: checkSpl(tcb.tee, 'tcb.tee'),
    snp: checkSpl(tcb.snp, 'tcb.snp'),
    ucode: checkSpl(tcb.ucode, 'tcb.ucode'),
  };
  if (product === 'Turin') {
    if (tcb.fmc === undefined) throw misuse('a Turin TCB has an FMC SPL (tcb.fmc)', 'tcb.fmc');
    return { ...out, fmc: checkSpl(tcb.fmc, 'tcb.fmc') };
  }
  if (tcb.fmc !== undefined) throw misuse(`a ${product} TCB has no FMC SPL`, 'tcb.fmc');
  return out;
}

/**
 * The hwID KDS is asked for: CHIP_ID (64 bytes) on Milan and Genoa; on Turin the first 8 bytes
 * (the report's CHIP_ID is 64 bytes with the rest zero; 8 bytes are accepted as they are).
 */
export function kdsHwId(product: SnpProduct, chipId: Uint8Array): Uint8Array {
  checkProduct(product);
  if (!(chipId instanceof Uint8Array)) throw misuse('chipId must be bytes', 'chipId');
  if (product === 'Turin') {
    if (chipId.length === 8) return chipId;
    if (chipId.length === 64 && chipId.subarray(8).every((b) => b === 0)) return chipId.subarray(0, 8);
    throw misuse('a Turin chip id is 8 bytes (or 64 bytes, zero after the first 8)', 'chipId');
  }
  if (chipId.length !== 64) throw misuse(`a ${product} chip id is 64 bytes, got ${chipId.length}`, 'chipId');
  return chipId;
}

function splParam(v: number): string {
  return String(v).padStart(2, '0');
}

/** KDS URL of the VCEK of `chipId` at `tcb`. */
export function kdsVcekUrl(baseUrl: string, product: SnpProduct, chipId: Uint8Array, tcb: SnpTcb): string {
  const p = checkProduct(product);
  const t = checkTcb(p, tcb);
  const q = [`blSPL=${splParam(t.bl)}`, `teeSPL=${splParam(t.tee)}`, `snpSPL=${splParam(t.snp)}`, `ucodeSPL=${splParam(t.ucode)}`];
  if (t.fmc !== undefined) q.push(`fmcSPL=${splParam(t.fmc)}`);
  return `${baseUrl}/vcek/v1/${p}/${toHex(kdsHwId(p, chipId))}?${q.join('&')}`;
}

/** KDS URL of the ASK/ARK (vcek) or ASVK/ARK (vlek) chain of `product`. */
export function kdsCertChainUrl(baseUrl: string, product: SnpProduct, kind: KdsKeyKind): string {
  return `${baseUrl}/${checkKind(kind)}/v1/${checkProduct(product)}/cert_chain`;
}

/** KDS URL of the CRL of `product`'s ARK for the vcek or vlek hierarchy. */
export function kdsCrlUrl(baseUrl: string, product: SnpProduct, kind: KdsKeyKind): string {
  return `${baseUrl}/${checkKind(kind)}/v1/${checkProduct(product)}/crl`;
}

function tcbKey(t: SnpTcb): string {
  return `bl${t.bl}-tee${t.tee}-snp${t.snp}-ucode${t.ucode}${t.fmc === undefined ? '' : `-fmc${t.fmc}`}`;
}

/** Cache paths mirror the KDS paths; they are labels, checked against the content on every read. */
const cachePath = {
  vcek: (p: SnpProduct, hwId: Uint8Array, t: SnpTcb) => `vcek/${p}/${toHex(hwId)}/${tcbKey(t)}.der`,
  chain: (p: SnpProduct, k: KdsKeyKind) => `${k}/${p}/cert_chain.pem`,
  crl: (p: SnpProduct, k: KdsKeyKind) => `${k}/${p}/crl.der`,
};

const TCB_KEY_RE = /^bl(\d{1,3})-tee(\d{1,3})-snp(\d{1,3})-ucode(\d{1,3})(?:-fmc(\d{1,3}))?\.der$/;

/** The label a cache or bundle-directory path carries, or undefined for an unknown path. */
type PathLabel =
  | { readonly type: 'vcek'; readonly product: SnpProduct; readonly hwId: Uint8Array; readonly tcb: SnpTcb }
  | { readonly type: 'chain' | 'crl'; readonly product: SnpProduct; readonly kind: KdsKeyKind };

function parseCachePath(rel: string): PathLabel | undefined {
  const parts = rel.split('/');
  const [k, p] = parts;
  if (k === undefined || p === undefined || !(SNP_PRODUCTS as readonly string[]).includes(p)) return undefined;
  if (k !== 'vcek' && k !== 'vlek') return undefined;
  const product = p as SnpProduct;
  if (parts.length === 3 && parts[2] === 'cert_chain.pem') return { type: 'chain', product, kind: k };
  if (parts.length === 3 && parts[2] === 'crl.der') return { type: 'crl', product, kind: k };
  if (parts.length === 4 && k === 'vcek') {
    const hex = parts[2] as string;
    const m = TCB_KEY_RE.exec(parts[3] as string);
    if (m === null || !/^[0-9a-f]+$/.test(hex)) return undefined;
    const n = (i: number) => Number(m[i]);
    const tcb: SnpTcb = { bl: n(1), tee: n(2), snp: n(3), ucode: n(4), ...(m[5] === undefined ? {} : { fmc: n(5) }) };
    if ([tcb.bl, tcb.tee, tcb.snp, tcb.ucode, tcb.fmc ?? 0].some((v) => v > 255)) return undefined;
    return { type: 'vcek', product, hwId: fromHex(hex, 'hwid'), tcb };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Decoding (claims only; no signature is checked here)

/** Strict DER of one primitive TLV with a short or long definite length; returns the value. */
function derPrimitive(bytes: Uint8Array, tag: number, field: string): Uint8Array {
  const bad = (why: string) => new ParseError('SNP_CERT_MALFORMED', `${field}: ${why}`, { field });
  if (bytes.length < 2) throw bad('truncated');
  if (bytes[0] !== tag) throw bad(`tag 0x${(bytes[0] as number).toString(16)}, expected 0x${tag.toString(16)}`);
  let len = bytes[1] as number;
  let off = 2;
  if (len & 0x80) {
    // Long form is only canonical for lengths ≥ 128; AMD values are short, so allow one length byte.
    if (len !== 0x81 || bytes.length < 3 || (bytes[2] as number) < 0x80) throw bad('non-canonical or oversized length');
    len = bytes[2] as number;
    off = 3;
  }
  if (bytes.length !== off + len) throw bad(`length ${len} does not match the ${bytes.length - off} bytes present`);
  return bytes.subarray(off);
}

/** A DER INTEGER in 0..255 (an SPL or structVersion), canonical (no superfluous leading zero). */
function derSpl(ext: Uint8Array, field: string): number {
  const v = derPrimitive(ext, 0x02, field);
  const bad = (why: string) => new ParseError('SNP_CERT_MALFORMED', `${field}: ${why}`, { field });
  if (v.length === 0) throw bad('empty INTEGER');
  if (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0) throw bad('non-canonical INTEGER');
  if ((v[0] as number) & 0x80) throw bad('negative INTEGER');
  const n = v.length === 2 && v[0] === 0 ? (v[1] as number) : v.length === 1 ? (v[0] as number) : -1;
  if (n < 0 || n > 255) throw bad('SPL out of range 0..255');
  return n;
}

function parseCert(der: Uint8Array, field: string): X509Certificate {
  if (der.length === 0 || der.length > MAX_COLLATERAL_BYTES || der[0] !== 0x30) {
    throw new ParseError('SNP_CERT_MALFORMED', `${field} is not a DER certificate`, { field });
  }
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new ParseError('SNP_CERT_MALFORMED', `${field} does not parse as an X.509 certificate`, { field, cause: e });
  }
}

/**
 * Reads the AMD extensions of a VCEK or VLEK certificate (DER). Each AMD extension may occur
 * once; productName and the bl/tee/snp/ucode SPLs are required; hwID is the raw chip id
 * (the extnValue holds the bytes themselves, as KDS issues it).
 *
 * @throws ParseError SNP_CERT_MALFORMED
 */
export function decodeVcekExtensions(der: Uint8Array, field = 'VCEK'): VcekExtensions {
  const cert = parseCert(der, field);
  const byOid = new Map<string, Uint8Array>();
  for (const ext of cert.extensions) {
    if (!ext.type.startsWith('1.3.6.1.4.1.3704.1.')) continue;
    if (byOid.has(ext.type)) throw new ParseError('SNP_CERT_MALFORMED', `${field}: extension ${ext.type} occurs twice`, { field: `${field}.${ext.type}` });
    byOid.set(ext.type, new Uint8Array(ext.value));
  }
  const need = (oid: string, name: string): Uint8Array => {
    const v = byOid.get(oid);
    if (v === undefined) throw new ParseError('SNP_CERT_MALFORMED', `${field} lacks the AMD extension ${name} (${oid})`, { field: `${field}.${name}` });
    return v;
  };
  const spl = (oid: string, name: string) => derSpl(need(oid, name), `${field}.${name}`);
  const nameBytes = derPrimitive(need(AMD_OID.productName, 'productName'), 0x16, `${field}.productName`);
  if (nameBytes.some((b) => b < 0x20 || b > 0x7e)) {
    throw new ParseError('SNP_CERT_MALFORMED', `${field}.productName is not printable ASCII`, { field: `${field}.productName` });
  }
  const productName = Buffer.from(nameBytes).toString('latin1');
  const head = productName.split('-')[0] as string;
  const fmc = byOid.get(AMD_OID.fmcSpl);
  const sv = byOid.get(AMD_OID.structVersion);
  const hw = byOid.get(AMD_OID.hwId);
  return {
    ...(sv === undefined ? {} : { structVersion: derSpl(sv, `${field}.structVersion`) }),
    productName,
    ...((SNP_PRODUCTS as readonly string[]).includes(head) ? { product: head as SnpProduct } : {}),
    ...(hw === undefined ? {} : { hwId: hw }),
    tcb: {
      bl: spl(AMD_OID.blSpl, 'blSPL'),
      tee: spl(AMD_OID.teeSpl, 'teeSPL'),
      snp: spl(AMD_OID.snpSpl, 'snpSPL'),
      ucode: spl(AMD_OID.ucodeSpl, 'ucodeSPL'),
      ...(fmc === undefined ? {} : { fmc: derSpl(fmc, `${field}.fmcSPL`) }),
    },
  };
}

/** Wraps a parse failure of collateral as SNP_KDS_MALFORMED (the source, not the caller, is at fault). */
function asMalformed<T>(f: () => T, what: string, field: string): T {
  try {
    return f();
  } catch (e) {
    if (isVouchError(e) && (e.code === 'SNP_COLLATERAL_MISLABELLED' || e.category === 'misuse')) throw e;
    throw kdsMalformed(`${what} is malformed${isVouchError(e) ? `: ${e.message}` : ''}`, field, e);
  }
}

/**
 * Checks that `der` is a VCEK for exactly `product`, `hwId` and `tcb`.
 * @throws UnavailableError SNP_KDS_MALFORMED, ParseError SNP_COLLATERAL_MISLABELLED
 */
function checkVcek(der: Uint8Array, product: SnpProduct, hwId: Uint8Array, tcb: SnpTcb, what: string): void {
  const ext = asMalformed(() => decodeVcekExtensions(der, 'VCEK'), what, 'VCEK');
  if (ext.product !== product) throw mislabelled(`${what}: productName is "${ext.productName}", expected ${product}`, 'VCEK.productName', product, ext.productName);
  if (ext.hwId === undefined || !bytesEqual(ext.hwId, hwId)) {
    throw mislabelled(`${what}: hwID is not the requested chip id`, 'VCEK.hwID', toHex(hwId), ext.hwId === undefined ? '(absent)' : toHex(ext.hwId));
  }
  if (tcbKey(ext.tcb) !== tcbKey(tcb)) throw mislabelled(`${what}: the TCB SPLs are not the requested TCB`, 'VCEK.tcb', tcbKey(tcb), tcbKey(ext.tcb));
}

function commonName(name: { getField(f: string): string[] }): string {
  return name.getField('CN').join('+');
}

function cnIs(cn: string, expected: string): boolean {
  return cn === expected || cn.endsWith(` ${expected}`);
}

/**
 * Parses a KDS chain (PEM: ASK or ASVK, then ARK) for `product`/`kind`: exactly two
 * certificates, named SEV-{product} (vcek) or SEV-VLEK-{product} (vlek) and ARK-{product},
 * the first issued under the second's name.
 */
function checkChain(pem: Uint8Array, product: SnpProduct, kind: KdsKeyKind, what: string): KdsCertChain {
  const [ask, ark] = asMalformed(
    () => {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(pem);
      const ders = splitPemCertificates(text, 'cert_chain');
      if (ders.length !== 2) throw kdsMalformed(`${what} holds ${ders.length} certificates, expected 2 (ASK, ARK)`, 'cert_chain');
      return ders.map((d, i) => ({ der: d, cert: parseCert(d, `cert_chain[${i}]`) }));
    },
    what,
    'cert_chain',
  ) as [{ der: Uint8Array; cert: X509Certificate }, { der: Uint8Array; cert: X509Certificate }];
  const askName = kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  const askCn = commonName(ask.cert.subjectName);
  const arkCn = commonName(ark.cert.subjectName);
  if (!cnIs(askCn, askName)) throw mislabelled(`${what}: the first certificate is "${askCn}", expected ${askName}`, 'cert_chain[0].subject', askName, askCn);
  if (!cnIs(arkCn, `ARK-${product}`)) throw mislabelled(`${what}: the second certificate is "${arkCn}", expected ARK-${product}`, 'cert_chain[1].subject', `ARK-${product}`, arkCn);
  if (ask.cert.issuer !== ark.cert.subject) throw mislabelled(`${what}: the ${askName} is not issued under the ARK's name`, 'cert_chain[0].issuer', ark.cert.subject, ask.cert.issuer);
  return { ask: ask.der, ark: ark.der };
}

/** Parses a DER CRL issued under ARK-{product}'s name; nextUpdate is required. */
function checkCrl(der: Uint8Array, product: SnpProduct, what: string): KdsCrl {
  const crl = asMalformed(
    () => {
      if (der.length === 0 || der.length > MAX_COLLATERAL_BYTES || der[0] !== 0x30) throw kdsMalformed(`${what} is not a DER CRL`, 'crl');
      return new X509Crl(der);
    },
    what,
    'crl',
  );
  const cn = commonName(crl.issuerName);
  if (!cnIs(cn, `ARK-${product}`)) throw mislabelled(`${what}: the issuer is "${cn}", expected ARK-${product}`, 'crl.issuer', `ARK-${product}`, cn);
  if (crl.nextUpdate === undefined) throw kdsMalformed(`${what} has no nextUpdate`, 'crl.nextUpdate');
  return { der, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
}

// ---------------------------------------------------------------------------------------------
// Cache store

/** In-memory map, backed by a directory when one is given. Files are written atomically. */
class CollateralStore {
  readonly #dir: string | undefined;
  readonly #mem = new Map<string, Uint8Array>();

  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  async get(rel: string): Promise<Uint8Array | undefined> {
    const m = this.#mem.get(rel);
    if (m !== undefined || this.#dir === undefined) return m;
    try {
      const b = new Uint8Array(await readFile(join(this.#dir, rel)));
      this.#mem.set(rel, b);
      return b;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw kdsUnavailable(`the collateral cache file ${rel} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, e);
    }
  }

  async put(rel: string, bytes: Uint8Array): Promise<void> {
    if (this.#dir !== undefined) await writeAtomic(join(this.#dir, rel), bytes);
    this.#mem.set(rel, bytes);
  }

  async list(): Promise<string[]> {
    const out = new Set(this.#mem.keys());
    if (this.#dir !== undefined) for (const f of await listFiles(this.#dir)) out.add(f);
    return [...out].sort();
  }
}

/**
 * Writes `bytes` to `path` through a fresh temporary file (O_EXCL, 0644, fsync) renamed over
 * the target: a reader sees the old file or the new one, never a part. The collateral is public,
 * so group and others may read it.
 */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    throw kdsUnavailable(`the collateral file ${path} cannot be written (${(e as NodeJS.ErrnoException).code ?? 'error'})`, e);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Every regular file under `root`, as '/'-separated relative paths; temporary files skipped. */
async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && dir === root) return;
      throw kdsUnavailable(`the collateral directory ${dir} cannot be read`, e);
    }
    for (const ent of entries) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile() && !ent.name.endsWith('.tmp')) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  await walk(root);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bundles

/** The JSON bundle format written by {@link KdsClient.exportBundle}. */
interface BundleJson {
  readonly format: 'vouch-snp-collateral';
  readonly version: 1;
  readonly vceks: readonly { readonly product: string; readonly chipId: string; readonly tcb: SnpTcb; readonly der: string }[];
  readonly chains: readonly { readonly product: string; readonly kind: string; readonly pem: string }[];
  readonly crls: readonly { readonly product: string; readonly kind: string; readonly der: string }[];
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function strictBase64(s: unknown, field: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !B64_RE.test(s) || s.length > (MAX_COLLATERAL_BYTES * 4) / 3 + 4) {
    throw kdsMalformed(`bundle ${field} is not padded base64`, field);
  }
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw kdsMalformed(`bundle ${field} is not canonical base64`, field);
  return new Uint8Array(b);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], field: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw kdsMalformed(`bundle ${field} has an unknown field "${k}"`, `${field}.${k}`);
}

function bundleArray(o: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || !v.every(isRecord)) throw kdsMalformed(`bundle field "${key}" is not an array of objects`, key);
  return v;
}

/** One validated entry, ready to be stored. */
type BundleEntry = { readonly rel: string; readonly bytes: Uint8Array; readonly crl?: KdsCrl };

// ---------------------------------------------------------------------------------------------
// The client

/**
 * KDS client with an on-disk cache. See the module comment for the URL shapes and what is
 * checked. Every method is fail-closed: it returns collateral that is what was asked for, or
 * throws a VouchError.
 */
export class KdsClient {
  readonly #fetcher: Fetcher | undefined;
  readonly #clock: () => Date;
  readonly #baseUrl: string;
  readonly #store: CollateralStore;
  /** Requests in flight by URL: concurrent attestations of one fleet share one KDS request. */
  readonly #inFlight = new Map<string, Promise<Uint8Array>>();
  #retryAt: Date | undefined;

  constructor(options: KdsClientOptions) {
    if (typeof options.clock !== 'function') throw misuse('KdsClient needs a clock', 'clock');
    this.#fetcher = options.fetcher;
    this.#clock = options.clock;
    this.#baseUrl = (options.baseUrl ?? KDS_BASE_URL).replace(/\/+$/, '');
    this.#store = new CollateralStore(options.cacheDir);
  }

  /** When a 429 is in force: the earliest time KDS may be asked again. */
  get retryAt(): Date | undefined {
    return this.#retryAt;
  }

  /**
   * The VCEK (DER) of `chipId` at `tcb`, from the cache or KDS. Untrusted until verified.
   * @throws MisuseError MISUSE_ARGUMENT (bad product, chip id length, TCB),
   *   {@link KdsRateLimitedError} SNP_KDS_RATE_LIMITED, UnavailableError SNP_KDS_UNAVAILABLE /
   *   SNP_KDS_MALFORMED, ParseError SNP_COLLATERAL_MISLABELLED
   */
  async vcek(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcb): Promise<Uint8Array> {
    return (await this.vcekWithSource(product, chipId, tcb)).value;
  }

  /** {@link KdsClient.vcek}, saying whether the cache or KDS answered. */
  async vcekWithSource(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcb): Promise<KdsSourced<Uint8Array>> {
    const p = checkProduct(product);
    const t = checkTcb(p, tcb);
    const hwId = kdsHwId(p, chipId);
    const cached = await this.#cachedVcek(p, hwId, t);
    if (cached !== undefined) return { value: cached, source: 'kds-cache' };
    const url = kdsVcekUrl(this.#baseUrl, p, hwId, t);
    const body = await this.#get(url);
    checkVcek(body, p, hwId, t, `the VCEK from ${url}`);
    await this.#store.put(cachePath.vcek(p, hwId, t), body);
    return { value: body, source: 'kds' };
  }

  /**
   * The cached VCEK of `chipId` at `tcb`, or undefined; never asks KDS. Lets a caller that does
   * not know the product look in the cache under every candidate before asking KDS at all.
   * @throws as {@link KdsClient.vcek}, except the KDS errors
   */
  async cachedVcek(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcb): Promise<Uint8Array | undefined> {
    const p = checkProduct(product);
    return this.#cachedVcek(p, kdsHwId(p, chipId), checkTcb(p, tcb));
  }

  async #cachedVcek(p: SnpProduct, hwId: Uint8Array, t: SnpTcb): Promise<Uint8Array | undefined> {
    const rel = cachePath.vcek(p, hwId, t);
    const cached = await this.#store.get(rel);
    if (cached !== undefined) checkVcek(cached, p, hwId, t, `cached VCEK ${rel}`);
    return cached;
  }

  /**
   * The ASK/ARK (vcek) or ASVK/ARK (vlek) chain of `product`, from the cache or KDS.
   * @throws as {@link KdsClient.vcek}
   */
  async certChain(product: SnpProduct, kind: KdsKeyKind): Promise<KdsCertChain> {
    return (await this.certChainWithSource(product, kind)).value;
  }

  /** {@link KdsClient.certChain}, saying whether the cache or KDS answered. */
  async certChainWithSource(product: SnpProduct, kind: KdsKeyKind): Promise<KdsSourced<KdsCertChain>> {
    const p = checkProduct(product);
    const k = checkKind(kind);
    const rel = cachePath.chain(p, k);
    const cached = await this.#store.get(rel);
    if (cached !== undefined) return { value: checkChain(cached, p, k, `cached chain ${rel}`), source: 'kds-cache' };
    const url = kdsCertChainUrl(this.#baseUrl, p, k);
    const body = await this.#get(url);
    const chain = checkChain(body, p, k, `the chain from ${url}`);
    await this.#store.put(rel, body);
    return { value: chain, source: 'kds' };
  }

  /**
   * The CRL of `product`'s ARK, from the cache while the clock is before its nextUpdate, else
   * from KDS. A fetched CRL older (by thisUpdate) than the cached one is refused rather than
   * rolled back to. A stale CRL is never returned by this method when KDS cannot be asked:
   * the error says why, and the verifier's policy decides about a missing CRL.
   * @throws as {@link KdsClient.vcek}
   */
  async crl(product: SnpProduct, kind: KdsKeyKind): Promise<KdsCrl> {
    return (await this.crlWithSource(product, kind)).value;
  }

  /** {@link KdsClient.crl}, saying whether the cache or KDS answered. */
  async crlWithSource(product: SnpProduct, kind: KdsKeyKind): Promise<KdsSourced<KdsCrl>> {
    const p = checkProduct(product);
    const k = checkKind(kind);
    const rel = cachePath.crl(p, k);
    const cachedBytes = await this.#store.get(rel);
    const cached = cachedBytes === undefined ? undefined : checkCrl(cachedBytes, p, `cached CRL ${rel}`);
    if (cached !== undefined && this.#clock().getTime() < cached.nextUpdate.getTime()) return { value: cached, source: 'kds-cache' };
    const url = kdsCrlUrl(this.#baseUrl, p, k);
    const body = await this.#get(url);
    const fresh = checkCrl(body, p, `the CRL from ${url}`);
    if (cached !== undefined && fresh.thisUpdate.getTime() < cached.thisUpdate.getTime()) {
      throw kdsMalformed(`the CRL from ${url} (thisUpdate ${fresh.thisUpdate.toISOString()}) is older than the cached one`, 'crl.thisUpdate');
    }
    await this.#store.put(rel, body);
    return { value: fresh, source: 'kds' };
  }

  /**
   * Fills the cache from an offline bundle: a directory laid out like the cache
   * (`vcek/{product}/{hwid}/bl…-tee…-snp…-ucode…[-fmc…].der`, `{vcek|vlek}/{product}/cert_chain.pem`,
   * `{vcek|vlek}/{product}/crl.der`) or a JSON file written by {@link KdsClient.exportBundle}.
   * Every entry is parsed and checked against its label (path or JSON fields) before anything
   * is stored: one bad or mislabelled entry rejects the whole bundle. A CRL older than the
   * cached one is skipped, not rolled back to.
   * @throws UnavailableError SNP_KDS_MALFORMED / SNP_KDS_UNAVAILABLE, ParseError SNP_COLLATERAL_MISLABELLED
   */
  async importBundle(path: string): Promise<BundleImportSummary> {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `bundle ${path} cannot be read`, { field: 'bundle', cause: e });
    }
    const entries = st.isDirectory() ? await this.#readBundleDir(path) : await this.#readBundleJson(path, st.size);
    let vceks = 0;
    let chains = 0;
    let crls = 0;
    let olderCrlsSkipped = 0;
    for (const e of entries) {
      if (e.crl !== undefined) {
        const have = await this.#store.get(e.rel);
        const label = parseCachePath(e.rel);
        if (have !== undefined && label !== undefined) {
          const old = checkCrl(have, label.product, `cached CRL ${e.rel}`);
          if (old.thisUpdate.getTime() > e.crl.thisUpdate.getTime()) {
            olderCrlsSkipped++;
            continue;
          }
        }
        crls++;
      } else if (e.rel.endsWith('cert_chain.pem')) chains++;
      else vceks++;
      await this.#store.put(e.rel, e.bytes);
    }
    return { vceks, chains, crls, olderCrlsSkipped };
  }

  /** Writes every cached VCEK, chain and CRL to `path` as one JSON bundle (atomically). */
  async exportBundle(path: string): Promise<void> {
    const vceks: BundleJson['vceks'][number][] = [];
    const chains: BundleJson['chains'][number][] = [];
    const crls: BundleJson['crls'][number][] = [];
    for (const rel of await this.#store.list()) {
      const label = parseCachePath(rel);
      const bytes = await this.#store.get(rel);
      if (label === undefined || bytes === undefined) continue; // not collateral (a stray file in the cache directory)
      const entry = validateEntry(rel, bytes, label);
      const b64 = Buffer.from(entry.bytes).toString('base64');
      if (label.type === 'vcek') vceks.push({ product: label.product, chipId: toHex(label.hwId), tcb: label.tcb, der: b64 });
      else if (label.type === 'chain') chains.push({ product: label.product, kind: label.kind, pem: Buffer.from(bytes).toString('ascii') });
      else crls.push({ product: label.product, kind: label.kind, der: b64 });
    }
    const doc: BundleJson = { format: 'vouch-snp-collateral', version: 1, vceks, chains, crls };
    await writeAtomic(path, new TextEncoder().encode(`${JSON.stringify(doc, null, 1)}\n`));
  }

  async #readBundleDir(dir: string): Promise<BundleEntry[]> {
    const out: BundleEntry[] = [];
    for (const rel of await listFiles(dir)) {
      const label = parseCachePath(rel);
      if (label === undefined) throw kdsMalformed(`bundle file ${rel} is not at a collateral path`, rel);
      const st = await stat(join(dir, rel));
      if (st.size > MAX_COLLATERAL_BYTES) throw kdsMalformed(`bundle file ${rel} exceeds ${MAX_COLLATERAL_BYTES} bytes`, rel);
      out.push(validateEntry(rel, new Uint8Array(await readFile(join(dir, rel))), label));
    }
    return out;
  }

  async #readBundleJson(file: string, size: number): Promise<BundleEntry[]> {
    if (size > MAX_BUNDLE_BYTES) throw kdsMalformed(`bundle ${file} exceeds ${MAX_BUNDLE_BYTES} bytes`, 'bundle');
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file)));
    } catch (e) {
      throw kdsMalformed(`bundle ${file} is not UTF-8 JSON`, 'bundle', e);
    }
    if (!isRecord(doc) || doc.format !== 'vouch-snp-collateral' || doc.version !== 1) {
      throw kdsMalformed(`bundle ${file} is not a version 1 vouch-snp-collateral document`, 'bundle.format');
    }
    onlyKeys(doc, ['format', 'version', 'vceks', 'chains', 'crls'], 'bundle');
    const out: BundleEntry[] = [];
    bundleArray(doc, 'vceks').forEach((v, i) => {
      const f = `vceks[${i}]`;
      onlyKeys(v, ['product', 'chipId', 'tcb', 'der'], f);
      if (typeof v.product !== 'string' || typeof v.chipId !== 'string' || !isRecord(v.tcb)) throw kdsMalformed(`bundle ${f} lacks product, chipId or tcb`, f);
      const product = asBundleLabel(() => checkProduct(v.product as string), f);
      const hwId = asBundleLabel(() => kdsHwId(product, fromHex(v.chipId as string, `${f}.chipId`)), f);
      const tcb = asBundleLabel(() => checkTcb(product, v.tcb as unknown as SnpTcb), f);
      const rel = cachePath.vcek(product, hwId, tcb);
      out.push(validateEntry(rel, strictBase64(v.der, `${f}.der`), { type: 'vcek', product, hwId, tcb }));
    });
    bundleArray(doc, 'chains').forEach((c, i) => {
      const f = `chains[${i}]`;
      onlyKeys(c, ['product', 'kind', 'pem'], f);
      if (typeof c.pem !== 'string' || c.pem.length > MAX_COLLATERAL_BYTES) throw kdsMalformed(`bundle ${f}.pem is not a string`, `${f}.pem`);
      const product = asBundleLabel(() => checkProduct(c.product as string), f);
      const kind = asBundleLabel(() => checkKind(c.kind as string), f);
      out.push(validateEntry(cachePath.chain(product, kind), new TextEncoder().encode(c.pem), { type: 'chain', product, kind }));
    });
    bundleArray(doc, 'crls').forEach((c, i) => {
      const f = `crls[${i}]`;
      onlyKeys(c, ['product', 'kind', 'der'], f);
      const product = asBundleLabel(() => checkProduct(c.product as string), f);
      const kind = asBundleLabel(() => checkKind(c.kind as string), f);
      out.push(validateEntry(cachePath.crl(product, kind), strictBase64(c.der, `${f}.der`), { type: 'crl', product, kind }));
    });
    const seen = new Set<string>();
    for (const e of out) {
      if (seen.has(e.rel)) throw kdsMalformed(`bundle lists ${e.rel} twice`, 'bundle');
      seen.add(e.rel);
    }
    return out;
  }

  /**
   * GET through the fetcher, honouring a pending Retry-After; only a 200 body is returned.
   * Concurrent requests for one URL share the first one's answer (or error).
   */
  async #get(url: string): Promise<Uint8Array> {
    const pending = this.#inFlight.get(url);
    if (pending !== undefined) return pending;
    const p = this.#request(url).finally(() => this.#inFlight.delete(url));
    this.#inFlight.set(url, p);
    return p;
  }

  async #request(url: string): Promise<Uint8Array> {
    if (this.#fetcher === undefined) throw kdsUnavailable(`offline: ${url} is not in the collateral cache`);
    const now = this.#clock();
    if (this.#retryAt !== undefined) {
      if (now.getTime() < this.#retryAt.getTime()) throw new KdsRateLimitedError(this.#retryAt, url);
      this.#retryAt = undefined;
    }
    let res: FetchResponse;
    try {
      res = await this.#fetcher(url);
    } catch (e) {
      if (isVouchError(e)) throw e;
      throw kdsUnavailable(`AMD KDS request failed: ${url}`, e);
    }
    if (res.status === 429) {
      this.#retryAt = retryAfter(res.headers, now);
      throw new KdsRateLimitedError(this.#retryAt, url);
    }
    if (res.status !== 200) throw kdsUnavailable(`AMD KDS answered HTTP ${res.status}: ${url}`);
    if (!(res.body instanceof Uint8Array) || res.body.length > MAX_COLLATERAL_BYTES) {
      throw kdsMalformed(`AMD KDS answered a body that is not bytes or exceeds ${MAX_COLLATERAL_BYTES} bytes: ${url}`, 'body');
    }
    return res.body;
  }
}

/** A bad label in a bundle is the bundle's fault, not the caller's. */
function asBundleLabel<T>(f: () => T, field: string): T {
  try {
    return f();
  } catch (e) {
    throw kdsMalformed(`bundle ${field} has a bad label${isVouchError(e) ? `: ${e.message}` : ''}`, field, e);
  }
}

/** Parses one cache or bundle entry and checks it against its label. */
function validateEntry(rel: string, bytes: Uint8Array, label: PathLabel): BundleEntry {
  const what = `bundle entry ${rel}`;
  if (bytes.length > MAX_COLLATERAL_BYTES) throw kdsMalformed(`${what} exceeds ${MAX_COLLATERAL_BYTES} bytes`, rel);
  if (label.type === 'vcek') {
    checkVcek(bytes, label.product, label.hwId, label.tcb, what);
    return { rel, bytes };
  }
  if (label.type === 'chain') {
    checkChain(bytes, label.product, label.kind, what);
    return { rel, bytes };
  }
  return { rel, bytes, crl: checkCrl(bytes, label.product, what) };
}

/**
 * The time a 429 asks to wait for: Retry-After as delta-seconds or an HTTP-date
 * (RFC 9110 §10.2.3); absent or unusable → {@link DEFAULT_RETRY_AFTER_SECONDS}. A date in the
 * past still waits the default, so a skewed server clock cannot turn a 429 into a retry storm.
 */
export function retryAfter(headers: Record<string, string>, now: Date): Date {
  let value: string | undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === 'retry-after') value = v.trim();
  const fallback = new Date(now.getTime() + DEFAULT_RETRY_AFTER_SECONDS * 1000);
  if (value === undefined) return fallback;
  if (/^\d{1,9}$/.test(value)) return new Date(now.getTime() + Number(value) * 1000);
  const t = Date.parse(value);
  if (Number.isNaN(t) || t <= now.getTime()) return fallback;
  return new Date(t);
}

/** Options of {@link defaultFetcher}. */
export interface DefaultFetcherOptions {
  /** Per-request timeout, default 10 s. */
  readonly timeoutMs?: number;
}

/** A {@link Fetcher} over the global `fetch` with a timeout and a body size limit; failures are SNP_KDS_UNAVAILABLE / SNP_KDS_MALFORMED. Not used by tests, which inject a fake. */
export function defaultFetcher(options: DefaultFetcherOptions = {}): Fetcher {
  return boundedFetcher({
    service: 'AMD KDS',
    timeoutMs: options.timeoutMs ?? 10_000,
    maxBytes: MAX_COLLATERAL_BYTES,
    unavailable: (message, cause) => kdsUnavailable(message, cause),
    tooLarge: (message) => kdsMalformed(message, 'body'),
  });
}
