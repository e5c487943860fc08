/**
 * Linux IMA measurement-list entries: bytes ↔ typed entries (trust stage `abi`: no crypto,
 * no policy).
 *
 * The kernel keeps one entry per measurement (security/integrity/ima/ima_fs.c,
 * ima_measurements_show). Each entry names a template, an ordered list of fields
 * (security/integrity/ima/ima_template.c, builtin_templates):
 *
 * ```
 * template     fields                              what is hashed into the template hash
 * ima          d | n                               d (20 bytes) || n padded with zeros to 256 bytes
 * ima-ng       d-ng | n-ng                         every field as u32 length || data (= template data)
 * ima-sig      d-ng | n-ng | sig                   idem
 * ima-buf      d-ng | n-ng | buf                   idem
 * ima-modsig   d-ng | n-ng | sig | d-modsig | modsig   idem
 * ```
 *
 * Field encodings (ima_template_lib.c):
 * - `d`: the SHA-1 (20-byte) file digest, no algorithm;
 * - `d-ng`, `d-modsig`: `<algo> ':' '\0' <digest>` ("sha256:\0" then 32 bytes); `d-modsig`
 *   and `modsig` are empty together when the file carries no appended signature;
 * - `n`: the file name without a terminating NUL, at most 255 bytes;
 * - `n-ng`: the file name with its terminating NUL (4096 bytes at most, PATH_MAX);
 * - `sig`: the `security.ima` extended attribute when it holds a signature, else empty;
 * - `buf`: the measured buffer (ima-buf: kexec command line, keys, critical data);
 * - `modsig`: the appended module signature (PKCS#7).
 *
 * An entry whose template hash is all zero records a measurement violation (open writers or
 * time of measure/time of use, ima_add_violation); the kernel extends all 0xff into PCR 10
 * for it instead (ima_pcr_extend).
 *
 * Everything decoded here is a claim until the list has been replayed against a quoted PCR 10
 * (replay.ts) and each template hash checked against its template data.
 */
import { ParseError } from '../../lib/errors.js';
import { Writer, type Endian } from '../../lib/reader.js';

/** The PCR IMA extends by default (CONFIG_IMA_MEASURE_PCR_IDX). */
export const IMA_PCR = 10;

/** Templates vouch decodes. */
export const IMA_TEMPLATES = ['ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig'] as const;
/** A template name. */
export type ImaTemplateName = (typeof IMA_TEMPLATES)[number];

/** Field ids of each template, in order (ima_template.c, builtin_templates). */
export const IMA_TEMPLATE_FIELDS: Readonly<Record<ImaTemplateName, readonly string[]>> = {
  ima: ['d', 'n'],
  'ima-ng': ['d-ng', 'n-ng'],
  'ima-sig': ['d-ng', 'n-ng', 'sig'],
  'ima-buf': ['d-ng', 'n-ng', 'buf'],
  'ima-modsig': ['d-ng', 'n-ng', 'sig', 'd-modsig', 'modsig'],
};

/** Size limits checked before any read (the kernel's own, or generous bounds where it has none). */
export const IMA_LIMITS = {
  /** IMA_TEMPLATE_NAME_LEN_MAX. */
  templateName: 15,
  /** No kernel limit; ima-buf entries (keys, critical data) stay far below this. */
  templateData: 1 << 20,
  /** `n`: IMA_EVENT_NAME_LEN_MAX. */
  legacyName: 255,
  /** `n-ng`: PATH_MAX including the NUL. */
  path: 4096,
  /** The length `n` of the legacy template is padded to before hashing (IMA_EVENT_NAME_LEN_MAX + 1). */
  legacyNamePadded: 256,
  /** Highest PCR index an entry may name (a PC Client TPM has 24). */
  pcr: 23,
} as const;

/** A kernel hash algorithm (include/uapi/linux/hash_info.h, enum hash_algo and hash_algo_name). */
export interface KernelHashAlgo {
  /** enum hash_algo value (used in signature headers). */
  readonly id: number;
  /** hash_algo_name, as written in d-ng ("sha256"). */
  readonly name: string;
  readonly size: number;
  /** TPM_ALG_ID of the same algorithm, where there is one. */
  readonly tpmAlg?: number;
}

/** enum hash_algo with hash_algo_name and digest sizes (hash_info.c). */
export const KERNEL_HASH_ALGOS: readonly KernelHashAlgo[] = [
  { id: 0, name: 'md4', size: 16 },
  { id: 1, name: 'md5', size: 16 },
  { id: 2, name: 'sha1', size: 20, tpmAlg: 0x0004 },
  { id: 3, name: 'rmd160', size: 20 },
  { id: 4, name: 'sha256', size: 32, tpmAlg: 0x000b },
  { id: 5, name: 'sha384', size: 48, tpmAlg: 0x000c },
  { id: 6, name: 'sha512', size: 64, tpmAlg: 0x000d },
  { id: 7, name: 'sha224', size: 28 },
  { id: 8, name: 'rmd128', size: 16 },
  { id: 9, name: 'rmd256', size: 32 },
  { id: 10, name: 'rmd320', size: 40 },
  { id: 11, name: 'wp256', size: 32 },
  { id: 12, name: 'wp384', size: 48 },
  { id: 13, name: 'wp512', size: 64 },
  { id: 14, name: 'tgr128', size: 16 },
  { id: 15, name: 'tgr160', size: 20 },
  { id: 16, name: 'tgr192', size: 24 },
  { id: 17, name: 'sm3', size: 32, tpmAlg: 0x0012 },
  { id: 18, name: 'streebog256', size: 32 },
  { id: 19, name: 'streebog512', size: 64 },
  { id: 20, name: 'sha3-256', size: 32, tpmAlg: 0x0027 },
  { id: 21, name: 'sha3-384', size: 48, tpmAlg: 0x0028 },
  { id: 22, name: 'sha3-512', size: 64, tpmAlg: 0x0029 },
];

const ALGO_BY_NAME = new Map(KERNEL_HASH_ALGOS.map((a) => [a.name, a]));

/** The kernel hash algorithm named `name` ("sha256"), or undefined. */
export function kernelHashByName(name: string): KernelHashAlgo | undefined {
  return ALGO_BY_NAME.get(name);
}

/** The kernel hash algorithm with enum value `id`, or undefined. */
export function kernelHashById(id: number): KernelHashAlgo | undefined {
  return KERNEL_HASH_ALGOS[id];
}

/** A file digest with the algorithm that made it. */
export interface ImaDigest {
  /** hash_algo_name ("sha256"); "sha1" for the legacy `d` field. */
  readonly algorithm: string;
  readonly digest: Uint8Array;
}

/** An appended (module) signature, ima-modsig. */
export interface ImaModsig {
  /** d-modsig: the digest the appended signature covers. */
  readonly digest: ImaDigest;
  /** modsig: the PKCS#7 appended signature. */
  readonly signature: Uint8Array;
}

/**
 * One measurement-list entry, decoded. Every field is as claimed by the list: the template
 * hash is bound to the template data, and the list to the TPM, only by replay (replay.ts).
 */
export interface ImaEntry {
  /** Position in the node's measurement list since boot (parse option `firstIndex` + position). */
  readonly index: number;
  /** The PCR the kernel extended. */
  readonly pcr: number;
  /** TPM_ALG_ID of the template-hash form of the list this entry came from. */
  readonly templateHashAlg: number;
  /** The template hash as listed (all zero for a violation). */
  readonly templateHash: Uint8Array;
  readonly template: ImaTemplateName;
  /**
   * The template data exactly as the binary list carries it (for `ima`: `d || u32 len || n`,
   * for the others every field as `u32 len || data`). Lists read from ASCII carry the bytes
   * rebuilt from the fields, which are the bytes the kernel hashed.
   */
  readonly templateData: Uint8Array;
  /** `d` or `d-ng`: the measured file (or buffer) digest. */
  readonly digest: ImaDigest;
  /** `n` or `n-ng`: the path (or, for ima-buf, the buffer's name), without the NUL. */
  readonly path: string;
  /** `sig`: the file signature from security.ima, when not empty. */
  readonly signature?: Uint8Array;
  /** `buf` (ima-buf). */
  readonly buffer?: Uint8Array;
  /** `d-modsig` and `modsig`, when the file carries an appended signature (ima-modsig). */
  readonly modsig?: ImaModsig;
  /** True when the template hash is all zero: a measurement violation, extended as all 0xff. */
  readonly violation: boolean;
}

/** A parsed list. */
export interface ImaList {
  readonly format: 'binary' | 'ascii';
  /** TPM_ALG_ID of the template hashes the list carries. */
  readonly templateHashAlg: number;
  readonly entries: readonly ImaEntry[];
}

/** The fields of one entry, to encode template data (fixtures, ASCII lists, benchmarks). */
export interface ImaFields {
  readonly digest: ImaDigest;
  readonly path: string;
  readonly signature?: Uint8Array;
  readonly buffer?: Uint8Array;
  readonly modsig?: ImaModsig;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const ENC = new TextEncoder();

/** Field path of entry `i` ("ima[12].n-ng"). */
export function entryField(index: number, field: string): string {
  return field === '' ? `ima[${index}]` : `ima[${index}].${field}`;
}

function malformed(index: number, field: string, message: string, extra: { expected?: string; actual?: string; offset?: number } = {}): ParseError {
  const f = entryField(index, field);
  return new ParseError('PARSE_BAD_VALUE', `${f}: ${message}`, { field: f, ...extra });
}

/** True when every byte of `b` is zero. */
export function isAllZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Encoded names of the kernel hash algorithms, the common ones first (the decoder tries them in order). */
const ALGO_NAMES: readonly { readonly algo: KernelHashAlgo; readonly bytes: Uint8Array }[] = [...KERNEL_HASH_ALGOS]
  .sort((a, b) => (a.tpmAlg === undefined ? 1 : 0) - (b.tpmAlg === undefined ? 1 : 0))
  .map((algo) => ({ algo, bytes: ENC.encode(algo.name) }));

/**
 * Where names are read as text: a Buffer view of the whole input and the offset in it of the
 * bytes being decoded, so that decoding a list does not make a view per name.
 */
export interface TextSource {
  readonly view: Buffer;
  readonly base: number;
}

function latin1(b: Uint8Array, start: number, end: number, src: TextSource | undefined): string {
  if (src !== undefined) return src.view.toString('latin1', src.base + start, src.base + end);
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/**
 * Strict text of a file name held in `b[start, end)`: no NUL, valid UTF-8 (ASCII, the usual
 * case, is read without a decoder).
 */
function nameAt(b: Uint8Array, start: number, end: number, index: number, field: string, src?: TextSource): string {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c === 0) throw malformed(index, field, 'the name contains a NUL byte');
    if (c >= 0x80) ascii = false;
  }
  if (ascii) return latin1(b, start, end, src);
  try {
    return UTF8.decode(b.subarray(start, end));
  } catch (cause) {
    const f = entryField(index, field);
    throw new ParseError('PARSE_BAD_ENCODING', `${f}: the name is not valid UTF-8`, { field: f, cause });
  }
}

/** Strict UTF-8 of a file name; a NUL inside the name is rejected. */
export function decodeName(b: Uint8Array, index: number, field: string): string {
  return nameAt(b, 0, b.length, index, field);
}

/** The algorithm whose name is `b[start, start + len)`, or undefined. */
function algoAt(b: Uint8Array, start: number, len: number): KernelHashAlgo | undefined {
  for (const { algo, bytes } of ALGO_NAMES) {
    if (bytes.length !== len) continue;
    let k = 0;
    while (k < len && b[start + k] === bytes[k]) k++;
    if (k === len) return algo;
  }
  return undefined;
}

/** `d-ng` in `b[start, end)`: `<algo> ':' '\0' <digest>`. */
function digestNgAt(b: Uint8Array, start: number, end: number, index: number, field: string): ImaDigest {
  let colon = -1;
  // Algorithm names are at most 11 characters ("streebog512").
  for (let i = start; i < end && i < start + 16; i++) {
    if (b[i] === 0x3a) {
      colon = i;
      break;
    }
  }
  if (colon <= start || colon + 1 >= end || b[colon + 1] !== 0) throw malformed(index, field, 'not of the form <algorithm>:\\0<digest>');
  const algo = algoAt(b, start, colon - start);
  if (algo === undefined) {
    const name = Buffer.from(b.buffer, b.byteOffset + start, colon - start).toString('latin1');
    const f = entryField(index, field);
    throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', `${f}: unknown hash algorithm "${name.replace(/[^\x20-\x7e]/g, '?')}"`, { field: f });
  }
  const size = end - colon - 2;
  if (size !== algo.size) {
    throw malformed(index, field, `a ${algo.name} digest is ${algo.size} bytes, found ${size}`, { expected: `${algo.size} bytes`, actual: `${size} bytes` });
  }
  return { algorithm: algo.name, digest: b.subarray(colon + 2, end) };
}

/**
 * Decodes a `d-ng` (or `d-modsig`) field: `<algo> ':' '\0' <digest>`, the algorithm one the
 * kernel names and the digest exactly its size.
 */
export function decodeDigestNg(b: Uint8Array, index: number, field: string): ImaDigest {
  return digestNgAt(b, 0, b.length, index, field);
}

/** Encodes a `d-ng` field. */
export function encodeDigestNg(d: ImaDigest): Uint8Array {
  const algo = ALGO_BY_NAME.get(d.algorithm);
  if (algo === undefined || algo.size !== d.digest.length) {
    throw new ParseError('PARSE_BAD_VALUE', `digest ${d.algorithm} of ${d.digest.length} bytes cannot be encoded`, { field: 'd-ng' });
  }
  const out = new Uint8Array(algo.name.length + 2 + algo.size);
  out.set(ENC.encode(algo.name), 0);
  out[algo.name.length] = 0x3a;
  out.set(d.digest, algo.name.length + 2);
  return out;
}

/**
 * Splits template data into its length-prefixed fields (every template but `ima`): exactly the
 * template's number of fields, each length checked against the bytes left, nothing after.
 * Returns the field boundaries [start0, end0, start1, end1, …] (no copies, no views).
 */
const FIELD_BOUNDS: number[] = [];

function splitFields(data: Uint8Array, names: readonly string[], endian: Endian, index: number, base: number): number[] {
  // One array reused by every call (decoding is synchronous and reads it before the next call).
  const out = FIELD_BOUNDS;
  out.length = 0;
  const le = endian === 'le';
  let o = 0;
  for (const name of names) {
    if (data.length - o < 4) {
      const f = entryField(index, `${name}.length`);
      throw new ParseError('PARSE_TRUNCATED', `${f} at offset ${base + o}: needs 4 bytes, ${data.length - o} left`, { field: f, offset: base + o });
    }
    const b0 = data[o] as number;
    const b1 = data[o + 1] as number;
    const b2 = data[o + 2] as number;
    const b3 = data[o + 3] as number;
    const len = le ? (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0 : ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0;
    o += 4;
    if (len > data.length - o) {
      const f = entryField(index, name);
      throw new ParseError('PARSE_TRUNCATED', `${f} at offset ${base + o}: declares ${len} bytes, ${data.length - o} left in the template data`, {
        field: f,
        offset: base + o,
        expected: `<= ${data.length - o} bytes`,
        actual: `${len} bytes`,
      });
    }
    out.push(o, o + len);
    o += len;
  }
  if (o !== data.length) {
    const f = entryField(index, 'templateData');
    throw new ParseError('PARSE_TRAILING_BYTES', `${f} at offset ${base + o}: ${data.length - o} bytes after the last field of the template`, { field: f, offset: base + o });
  }
  return out;
}

/** n-ng in `b[start, end)`: the name with its NUL; at most PATH_MAX. */
function pathNgAt(b: Uint8Array, start: number, end: number, index: number, src: TextSource | undefined): string {
  if (end === start || b[end - 1] !== 0) throw malformed(index, 'n-ng', 'the name does not end with its NUL');
  if (end - start > IMA_LIMITS.path) throw new ParseError('PARSE_SIZE_EXCEEDED', `${entryField(index, 'n-ng')}: ${end - start} bytes exceed PATH_MAX`, { field: entryField(index, 'n-ng') });
  return nameAt(b, start, end - 1, index, 'n-ng', src);
}

/** The decoded fields of one entry's template data (absent fields are undefined). */
export interface DecodedTemplateData {
  readonly digest: ImaDigest;
  readonly path: string;
  readonly signature: Uint8Array | undefined;
  readonly buffer: Uint8Array | undefined;
  readonly modsig: ImaModsig | undefined;
}

/**
 * Decodes the template data of a template other than `ima` (whose binary form has no data
 * length; see {@link decodeLegacyData}).
 * @param base absolute offset of `data` in the input, for error messages
 * @param text the input as a Buffer, `data` lying at `text.base` in it (optional: saves a view per name)
 */
export function decodeTemplateData(template: Exclude<ImaTemplateName, 'ima'>, data: Uint8Array, endian: Endian, index: number, base = 0, text?: TextSource): DecodedTemplateData {
  const f = splitFields(data, IMA_TEMPLATE_FIELDS[template], endian, index, base);
  const digest = digestNgAt(data, f[0] as number, f[1] as number, index, 'd-ng');
  const path = pathNgAt(data, f[2] as number, f[3] as number, index, text);
  if (template === 'ima-ng') return { digest, path, signature: undefined, buffer: undefined, modsig: undefined };
  const third = data.subarray(f[4] as number, f[5] as number);
  if (template === 'ima-buf') return { digest, path, signature: undefined, buffer: third, modsig: undefined };
  const signature = third.length > 0 ? third : undefined;
  if (template === 'ima-sig') return { digest, path, signature, buffer: undefined, modsig: undefined };
  const dModsigLen = (f[7] as number) - (f[6] as number);
  const modsigLen = (f[9] as number) - (f[8] as number);
  if ((dModsigLen === 0) !== (modsigLen === 0)) throw malformed(index, 'd-modsig', 'd-modsig and modsig must be both empty or both present');
  if (modsigLen === 0) return { digest, path, signature, buffer: undefined, modsig: undefined };
  const modsig = { digest: digestNgAt(data, f[6] as number, f[7] as number, index, 'd-modsig'), signature: data.subarray(f[8] as number, f[9] as number) };
  return { digest, path, signature, buffer: undefined, modsig };
}

/**
 * Legacy `ima` template data as the binary list carries it: `d` (20 bytes, no length), then
 * `n` as u32 length (strlen, at most 255) and the name without NUL.
 */
export function decodeLegacyData(data: Uint8Array, endian: Endian, index: number, base = 0): DecodedTemplateData {
  if (data.length < 24) {
    const fp = entryField(index, 'd');
    throw new ParseError('PARSE_TRUNCATED', `${fp} at offset ${base}: the ima template needs at least 24 bytes`, { field: fp, offset: base });
  }
  const len = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(20, endian === 'le');
  if (len > IMA_LIMITS.legacyName) {
    const fp = entryField(index, 'n.length');
    throw new ParseError('PARSE_SIZE_EXCEEDED', `${fp} at offset ${base + 20}: ${len} exceeds the maximum ${IMA_LIMITS.legacyName}`, { field: fp, offset: base + 20, expected: `<= ${IMA_LIMITS.legacyName}`, actual: String(len) });
  }
  if (24 + len !== data.length) throw malformed(index, 'n', `declares ${len} bytes, ${data.length - 24} present`);
  return { digest: { algorithm: 'sha1', digest: data.subarray(0, 20) }, path: nameAt(data, 24, data.length, index, 'n'), signature: undefined, buffer: undefined, modsig: undefined };
}

/**
 * Encodes template data from fields: the exact inverse of {@link decodeTemplateData} and
 * {@link decodeLegacyData}. Used to rebuild the hashed bytes of an ASCII list and to make fixtures.
 */
export function encodeTemplateData(template: ImaTemplateName, fields: ImaFields, endian: Endian = 'le'): Uint8Array {
  const name = ENC.encode(fields.path);
  const w = new Writer(64 + name.length);
  if (template === 'ima') {
    if (fields.digest.digest.length !== 20 || fields.digest.algorithm !== 'sha1') throw new ParseError('PARSE_BAD_VALUE', 'the ima template carries a SHA-1 digest', { field: 'd' });
    if (name.length > IMA_LIMITS.legacyName) throw new ParseError('PARSE_SIZE_EXCEEDED', 'the ima template name is at most 255 bytes', { field: 'n' });
    return w.bytes(fields.digest.digest).u32(name.length, endian).bytes(name).finish();
  }
  const field = (b: Uint8Array): void => {
    w.u32(b.length, endian).bytes(b);
  };
  field(encodeDigestNg(fields.digest));
  const path = new Uint8Array(name.length + 1);
  path.set(name);
  field(path);
  if (template === 'ima-ng') return w.finish();
  if (template === 'ima-buf') {
    field(fields.buffer ?? new Uint8Array(0));
    return w.finish();
  }
  field(fields.signature ?? new Uint8Array(0));
  if (template === 'ima-modsig') {
    field(fields.modsig === undefined ? new Uint8Array(0) : encodeDigestNg(fields.modsig.digest));
    field(fields.modsig?.signature ?? new Uint8Array(0));
  }
  return w.finish();
}

/**
 * The bytes the kernel hashes into the template hash (ima_calc_field_array_hash): the template
 * data itself for every template but `ima`, for which it is `d || n` padded with zeros to
 * 256 bytes (no length prefixes).
 */
export function templateHashInput(entry: Pick<ImaEntry, 'template' | 'templateData'>): Uint8Array {
  if (entry.template !== 'ima') return entry.templateData;
  const out = new Uint8Array(20 + IMA_LIMITS.legacyNamePadded);
  out.set(entry.templateData.subarray(0, 20), 0);
  out.set(entry.templateData.subarray(24), 20);
  return out;
}

const TEMPLATE_SET: ReadonlySet<string> = new Set(IMA_TEMPLATES);

const TEMPLATE_BYTES: readonly { readonly name: ImaTemplateName; readonly bytes: Uint8Array }[] = IMA_TEMPLATES.map((name) => ({ name, bytes: ENC.encode(name) }));

/** The template whose name is exactly `b[start, start + len)`, or undefined. */
export function templateAt(b: Uint8Array, start: number, len: number): ImaTemplateName | undefined {
  for (const { name, bytes } of TEMPLATE_BYTES) {
    if (bytes.length !== len) continue;
    let k = 0;
    while (k < len && b[start + k] === bytes[k]) k++;
    if (k === len) return name;
  }
  return undefined;
}

/** True when `name` is a template vouch decodes. */
export function isImaTemplate(name: string): name is ImaTemplateName {
  return TEMPLATE_SET.has(name);
}

/** What an encoder needs of an entry. */
export type ImaEntryBytes = Pick<ImaEntry, 'pcr' | 'templateHash' | 'template' | 'templateData'>;

/**
 * Encodes entries as a binary measurement list (the exact inverse of the binary parser):
 * `pcr u32 | template hash | name length u32 | name | [data length u32] | data`.
 */
export function encodeImaBinary(entries: readonly ImaEntryBytes[], endian: Endian = 'le'): Uint8Array {
  let size = 0;
  for (const e of entries) size += 16 + e.templateHash.length + e.template.length + e.templateData.length;
  const w = new Writer(size);
  for (const e of entries) {
    w.u32(e.pcr, endian).bytes(e.templateHash).u32(e.template.length, endian).bytes(ENC.encode(e.template));
    if (e.template !== 'ima') w.u32(e.templateData.length, endian);
    w.bytes(e.templateData);
  }
  return w.finish();
}

/** Lower-case hex (no Buffer copy). */
function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** The ASCII form of a digest field ("sha256:ab…", or bare hex for `d`). */
export function digestText(d: ImaDigest, legacy = false): string {
  return legacy ? hex(d.digest) : `${d.algorithm}:${hex(d.digest)}`;
}

/**
 * Encodes entries as an ASCII measurement list (ima_measurements_ascii_show): `%2d` PCR, the
 * template hash in hex, the template name, then each field preceded by one space (an empty
 * field leaves only its space).
 */
export function encodeImaAscii(entries: readonly ImaEntry[]): string {
  const lines: string[] = [];
  for (const e of entries) {
    const fields: string[] = [];
    if (e.template === 'ima') fields.push(digestText(e.digest, true), e.path);
    else {
      fields.push(digestText(e.digest), e.path);
      if (e.template === 'ima-buf') fields.push(hex(e.buffer ?? new Uint8Array(0)));
      if (e.template === 'ima-sig' || e.template === 'ima-modsig') fields.push(hex(e.signature ?? new Uint8Array(0)));
      if (e.template === 'ima-modsig') fields.push(e.modsig === undefined ? '' : digestText(e.modsig.digest), hex(e.modsig?.signature ?? new Uint8Array(0)));
    }
    lines.push(`${String(e.pcr).padStart(2, ' ')} ${hex(e.templateHash)} ${e.template} ${fields.join(' ')}\n`);
  }
  return lines.join('');
}
