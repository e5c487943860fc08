/**
 * Parsers of the two forms of the IMA runtime measurement list (trust stage `abi`).
 *
 * Binary (`/sys/kernel/security/ima/binary_runtime_measurements`, ima_fs.c
 * ima_measurements_show), one entry after another, integers in the writer's byte order
 * (little-endian on x86 and whenever the kernel runs with ima_canonical_fmt):
 *
 * ```
 * u32            pcr
 * u8[H]          template hash (H = 20 for the SHA-1 list; the bank's size for the per-bank
 *                lists of newer kernels, binary_runtime_measurements_sha256 …)
 * u32            template name length (1..15)
 * u8[]           template name ("ima-ng")
 * u32            template data length          (absent for the legacy "ima" template)
 * u8[]           template data: fields as u32 length || data   ("ima": d[20] || u32 len || n)
 * ```
 *
 * ASCII (`ascii_runtime_measurements`, ima_measurements_ascii_show), one line per entry:
 * `%2d` PCR, the template hash in lower-case hex, the template name, then every field preceded
 * by one space (digests as `algo:hex`, the legacy `d` as bare hex, names as text, signatures and
 * buffers as hex; an empty field leaves only its space). The kernel does not escape names, so a
 * name may contain spaces: it is the text between the digest and the template's trailing hex
 * fields, which never contain a space.
 *
 * Every length is checked against the bytes left and against a maximum before it is used;
 * nothing is trusted until replay (replay.ts).
 */
import { ParseError } from '../../lib/errors.js';
import { Reader, type Endian } from '../../lib/reader.js';
import { TPM_ALG, algName } from '../../tpm/abi/constants.js';
import {
  decodeLegacyData,
  decodeTemplateData,
  encodeTemplateData,
  entryField,
  IMA_LIMITS,
  isAllZero,
  isImaTemplate,
  templateAt,
  type DecodedTemplateData,
  kernelHashByName,
  type ImaDigest,
  type ImaEntry,
  type ImaFields,
  type ImaList,
  type ImaTemplateName,
} from './abi.js';

/** Template-hash sizes and the algorithm each stands for when the caller does not say. */
const SIZE_TO_ALG: ReadonlyMap<number, number> = new Map([
  [20, TPM_ALG.SHA1],
  [32, TPM_ALG.SHA256],
  [48, TPM_ALG.SHA384],
  [64, TPM_ALG.SHA512],
]);

const ALG_SIZE: ReadonlyMap<number, number> = new Map([
  [TPM_ALG.SHA1, 20],
  [TPM_ALG.SHA256, 32],
  [TPM_ALG.SHA384, 48],
  [TPM_ALG.SHA512, 64],
  [TPM_ALG.SM3_256, 32],
  [TPM_ALG.SHA3_256, 32],
  [TPM_ALG.SHA3_384, 48],
  [TPM_ALG.SHA3_512, 64],
]);

/**
 * One entry object, every property present (absent optional fields are undefined), so that
 * every entry has the same shape.
 */
function makeEntry(index: number, pcr: number, templateHashAlg: number, templateHash: Uint8Array, template: ImaTemplateName, templateData: Uint8Array, d: DecodedTemplateData): ImaEntry {
  return {
    index,
    pcr,
    templateHashAlg,
    templateHash,
    template,
    templateData,
    digest: d.digest,
    path: d.path,
    signature: d.signature,
    buffer: d.buffer,
    modsig: d.modsig,
    violation: isAllZero(templateHash),
  };
}

/** Reads one binary entry at the reader's position (field paths use the placeholder "[#]"). */
function readEntry(r: Reader, bytes: Uint8Array, view: Buffer, index: number, alg: number, hashSize: number, endian: Endian): ImaEntry {
  const pcrAt = r.offset;
  const pcr = r.u32('[#].pcr', endian);
  if (pcr > IMA_LIMITS.pcr) {
    throw r.error('PARSE_BAD_VALUE', '[#].pcr', `PCR ${pcr} is not 0..${IMA_LIMITS.pcr}`, { at: pcrAt, expected: `<= ${IMA_LIMITS.pcr}`, actual: String(pcr) });
  }
  const templateHash = r.bytes(hashSize, '[#].templateHash');
  const nameAt = r.offset;
  const nameLen = r.u32('[#].templateName.length', endian);
  if (nameLen < 1 || nameLen > IMA_LIMITS.templateName) {
    throw r.error('PARSE_SIZE_EXCEEDED', '[#].templateName.length', `length ${nameLen} is not 1..${IMA_LIMITS.templateName}`, { at: nameAt, expected: `1..${IMA_LIMITS.templateName}`, actual: String(nameLen) });
  }
  if (nameLen > r.remaining) r.bytes(nameLen, '[#].templateName'); // throws PARSE_TRUNCATED
  const name = templateAt(bytes, r.offset, nameLen);
  if (name === undefined) {
    const shown = Buffer.from(bytes.buffer, bytes.byteOffset + r.offset, nameLen).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
    const e = r.error('PARSE_BAD_VALUE', '[#].templateName', `template "${shown}" is not supported`);
    throw new ParseError('IMA_TEMPLATE_UNSUPPORTED', e.message, { field: e.field as string, offset: e.offset as number, actual: shown });
  }
  for (let k = 0; k < nameLen; k++) r.u8('[#].templateName');
  let templateData: Uint8Array;
  let decoded: DecodedTemplateData;
  if (name === 'ima') {
    const dataAt = r.offset;
    const absAt = r.absoluteOffset;
    r.bytes(20, '[#].d');
    const lenAt = r.offset;
    const len = r.u32('[#].n.length', endian);
    if (len > IMA_LIMITS.legacyName) {
      throw r.error('PARSE_SIZE_EXCEEDED', '[#].n.length', `length ${len} exceeds the maximum ${IMA_LIMITS.legacyName}`, { at: lenAt, expected: `<= ${IMA_LIMITS.legacyName}`, actual: String(len) });
    }
    r.bytes(len, '[#].n');
    templateData = r.bytesBetween(dataAt);
    decoded = decodeLegacyData(templateData, endian, index, absAt);
  } else {
    const lenAt = r.offset;
    const len = r.u32('[#].templateData.length', endian);
    if (len > IMA_LIMITS.templateData) {
      throw r.error('PARSE_SIZE_EXCEEDED', '[#].templateData.length', `length ${len} exceeds the maximum ${IMA_LIMITS.templateData}`, { at: lenAt, expected: `<= ${IMA_LIMITS.templateData}`, actual: String(len) });
    }
    const dataAt = r.absoluteOffset;
    templateData = r.bytes(len, '[#].templateData');
    decoded = decodeTemplateData(name, templateData, endian, index, dataAt, { view, base: dataAt });
  }
  return makeEntry(index, pcr, alg, templateHash, name, templateData, decoded);
}

/** Options of both parsers. */
export interface ImaParseOptions {
  /**
   * TPM_ALG_ID of the list's template hashes. Default: told by their size (20 → SHA-1,
   * 32 → SHA-256, 48 → SHA-384, 64 → SHA-512); name SM3 or SHA-3 lists explicitly.
   */
  readonly templateHashAlg?: number;
  /** Byte order of the binary list and of the field lengths in template data (default 'le'). */
  readonly endian?: Endian;
  /** Index of the first entry in the node's list since boot (a chunk sent from `imaStart`). */
  readonly firstIndex?: number;
}

function sizeOf(alg: number): number {
  const size = ALG_SIZE.get(alg);
  if (size === undefined) throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', `template hash algorithm ${algName(alg)} is not supported`, { field: 'ima.templateHash' });
  return size;
}

function checkFirstIndex(first: number): void {
  if (!Number.isSafeInteger(first) || first < 0 || first > 0xffffffff) {
    throw new ParseError('PARSE_BAD_VALUE', `firstIndex ${first} is not a u32`, { field: 'ima.firstIndex' });
  }
}

/**
 * The template-hash size of a binary list, told from its first entry: the one size H in
 * {20, 32, 48, 64} for which the u32 after `pcr` and H bytes is a template-name length of 1..15
 * followed by the name of a supported template. No size or two sizes fitting is an error.
 */
export function detectBinaryTemplateHashSize(bytes: Uint8Array, endian: Endian = 'le'): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fits: number[] = [];
  for (const size of SIZE_TO_ALG.keys()) {
    const at = 4 + size;
    if (bytes.length < at + 4) continue;
    const len = view.getUint32(at, endian === 'le');
    if (len < 1 || len > IMA_LIMITS.templateName || bytes.length < at + 4 + len) continue;
    const name = Buffer.from(bytes.buffer, bytes.byteOffset + at + 4, len).toString('latin1');
    if (isImaTemplate(name)) fits.push(size);
  }
  if (fits.length !== 1) {
    throw new ParseError('PARSE_BAD_VALUE', fits.length === 0
      ? 'ima[0].templateHash: no template-hash size (20, 32, 48, 64) leads to a supported template name'
      : `ima[0].templateHash: template-hash sizes ${fits.join(' and ')} both fit; name the algorithm`, { field: 'ima[0].templateHash', offset: 4 });
  }
  return fits[0] as number;
}

/**
 * Parses a binary measurement list (or a chunk of one: whole entries only).
 * The entries' byte fields are views into `bytes` (no copy).
 * @throws ParseError (PARSE_*, IMA_TEMPLATE_UNSUPPORTED) with the entry's field path and offset
 */
export function parseImaBinary(bytes: Uint8Array, opts: ImaParseOptions = {}): ImaList {
  const endian = opts.endian ?? 'le';
  const first = opts.firstIndex ?? 0;
  checkFirstIndex(first);
  let alg = opts.templateHashAlg;
  if (alg === undefined) {
    alg = bytes.length === 0 ? TPM_ALG.SHA1 : (SIZE_TO_ALG.get(detectBinaryTemplateHashSize(bytes, endian)) as number);
  }
  const hashSize = sizeOf(alg);
  const r = new Reader(bytes, 'ima');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: ImaEntry[] = [];
  while (r.remaining > 0) {
    const index = first + entries.length;
    try {
      entries.push(readEntry(r, bytes, view, index, alg, hashSize, endian));
    } catch (e) {
      // Field names are written with the placeholder "[#]" (no string built per read); the
      // error names the entry.
      if (e instanceof ParseError && e.field?.startsWith('ima[#]') === true) {
        const at = `ima[${index}]`;
        throw new ParseError(e.code, e.message.replace('ima[#]', at), {
          field: e.field.replace('ima[#]', at),
          ...(e.offset !== undefined ? { offset: e.offset } : {}),
          ...(e.expected !== undefined ? { expected: e.expected } : {}),
          ...(e.actual !== undefined ? { actual: e.actual } : {}),
          cause: e,
        });
      }
      throw e;
    }
  }
  return { format: 'binary', templateHashAlg: alg, entries };
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/;
const LINE_RE = /^( [0-9]|[1-9][0-9]) ([0-9a-f]+) ([^ ]+) (.*)$/s;
const DIGEST_RE = /^([a-z0-9-]{1,16}):([0-9a-f]*)$/;

function lineError(code: 'PARSE_BAD_VALUE' | 'PARSE_BAD_ENCODING' | 'PARSE_UNSUPPORTED_ALGORITHM' | 'IMA_TEMPLATE_UNSUPPORTED' | 'PARSE_TRUNCATED', index: number, line: number, field: string, message: string, extra: { expected?: string; actual?: string } = {}): ParseError {
  const f = entryField(index, field);
  return new ParseError(code, `${f} (line ${line}): ${message}`, { field: f, ...extra });
}

function hexField(s: string, index: number, line: number, field: string): Uint8Array {
  if (!HEX_RE.test(s)) throw lineError('PARSE_BAD_ENCODING', index, line, field, 'is not even-length lower-case hex');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function digestField(s: string, index: number, line: number, field: string): ImaDigest {
  const m = DIGEST_RE.exec(s);
  if (m === null) throw lineError('PARSE_BAD_VALUE', index, line, field, 'is not <algorithm>:<hex>');
  const algo = kernelHashByName(m[1] as string);
  if (algo === undefined) throw lineError('PARSE_UNSUPPORTED_ALGORITHM', index, line, field, `unknown hash algorithm "${m[1] as string}"`);
  const hex = m[2] as string;
  if (hex.length !== algo.size * 2) {
    throw lineError('PARSE_BAD_VALUE', index, line, field, `a ${algo.name} digest has ${algo.size * 2} hex digits`, { expected: String(algo.size * 2), actual: String(hex.length) });
  }
  return { algorithm: algo.name, digest: hexField(hex, index, line, field) };
}

/** Fields after the template name: [digest, ...name words, ...trailing hex fields]. */
const TRAILING: Readonly<Record<ImaTemplateName, number>> = { ima: 0, 'ima-ng': 0, 'ima-sig': 1, 'ima-buf': 1, 'ima-modsig': 3 };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses an ASCII measurement list. Every line ends with "\n" (a last line without it is a
 * truncated read); no "\r", no empty lines; all template hashes have the same size. The template
 * data of each entry is rebuilt from its fields, in the byte order `endian`, as the kernel hashed it.
 * @throws ParseError naming the entry, its line and field
 */
export function parseImaAscii(input: string | Uint8Array, opts: ImaParseOptions = {}): ImaList {
  const endian = opts.endian ?? 'le';
  const first = opts.firstIndex ?? 0;
  checkFirstIndex(first);
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = UTF8.decode(input);
    } catch (cause) {
      throw new ParseError('PARSE_BAD_ENCODING', 'ima: the ASCII list is not valid UTF-8', { field: 'ima', cause });
    }
  }
  const entries: ImaEntry[] = [];
  let alg = opts.templateHashAlg;
  let hashHexLen = alg === undefined ? undefined : sizeOf(alg) * 2;
  if (text.length === 0) return { format: 'ascii', templateHashAlg: alg ?? TPM_ALG.SHA1, entries };
  if (!text.endsWith('\n')) {
    const lines = text.split('\n').length;
    throw lineError('PARSE_TRUNCATED', first + lines - 1, lines, '', 'the last line does not end with a newline');
  }
  const lines = text.slice(0, -1).split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] as string;
    const index = first + n;
    const lineNo = n + 1;
    const m = LINE_RE.exec(line);
    if (m === null) throw lineError('PARSE_BAD_VALUE', index, lineNo, '', 'is not "PCR template-hash template-name fields…"');
    if (line.includes('\r')) throw lineError('PARSE_BAD_VALUE', index, lineNo, '', 'contains a carriage return');
    const pcr = Number((m[1] as string).trim());
    const hashHex = m[2] as string;
    if (hashHexLen === undefined) {
      const a = SIZE_TO_ALG.get(hashHex.length / 2);
      if (a === undefined || hashHex.length % 2 !== 0) {
        throw lineError('PARSE_BAD_VALUE', index, lineNo, 'templateHash', `${hashHex.length} hex digits is no template-hash size (40, 64, 96, 128)`);
      }
      alg = a;
      hashHexLen = hashHex.length;
    }
    if (hashHex.length !== hashHexLen) {
      throw lineError('PARSE_BAD_VALUE', index, lineNo, 'templateHash', `has ${hashHex.length} hex digits, the list's template hashes have ${hashHexLen}`, { expected: String(hashHexLen), actual: String(hashHex.length) });
    }
    const templateHash = hexField(hashHex, index, lineNo, 'templateHash');
    const name = m[3] as string;
    if (!isImaTemplate(name)) throw lineError('IMA_TEMPLATE_UNSUPPORTED', index, lineNo, 'templateName', `template "${name.replace(/[^\x20-\x7e]/g, '?')}" is not supported`);
    const tokens = (m[4] as string).split(' ');
    const trailing = TRAILING[name];
    if (tokens.length < 2 + trailing) {
      throw lineError('PARSE_BAD_VALUE', index, lineNo, '', `template ${name} has ${2 + trailing} fields, found ${tokens.length}`, { expected: String(2 + trailing), actual: String(tokens.length) });
    }
    const digest: ImaDigest = name === 'ima'
      ? { algorithm: 'sha1', digest: hexFixed(tokens[0] as string, 20, index, lineNo) }
      : digestField(tokens[0] as string, index, lineNo, 'd-ng');
    const path = tokens.slice(1, tokens.length - trailing).join(' ');
    const pathField = name === 'ima' ? 'n' : 'n-ng';
    if (path.includes('\0')) throw lineError('PARSE_BAD_VALUE', index, lineNo, pathField, 'the name contains a NUL');
    const tail = tokens.slice(tokens.length - trailing);
    let fields: ImaFields = { digest, path };
    if (name === 'ima-buf') fields = { ...fields, buffer: hexField(tail[0] as string, index, lineNo, 'buf') };
    if (name === 'ima-sig' || name === 'ima-modsig') {
      const sig = hexField(tail[0] as string, index, lineNo, 'sig');
      if (sig.length > 0) fields = { ...fields, signature: sig };
    }
    if (name === 'ima-modsig') {
      const dm = tail[1] as string;
      const ms = hexField(tail[2] as string, index, lineNo, 'modsig');
      if ((dm === '') !== (ms.length === 0)) throw lineError('PARSE_BAD_VALUE', index, lineNo, 'd-modsig', 'd-modsig and modsig must be both empty or both present');
      if (ms.length > 0) fields = { ...fields, modsig: { digest: digestField(dm, index, lineNo, 'd-modsig'), signature: ms } };
    }
    const pathLimit = name === 'ima' ? IMA_LIMITS.legacyName : IMA_LIMITS.path - 1;
    if (Buffer.byteLength(path, 'utf8') > pathLimit) throw lineError('PARSE_BAD_VALUE', index, lineNo, pathField, `the name exceeds ${pathLimit} bytes`);
    const templateData = encodeTemplateData(name, fields, endian);
    entries.push(makeEntry(index, pcr, alg as number, templateHash, name, templateData, {
      digest: fields.digest,
      path: fields.path,
      signature: fields.signature,
      buffer: fields.buffer,
      modsig: fields.modsig,
    }));
  }
  return { format: 'ascii', templateHashAlg: alg as number, entries };
}

function hexFixed(s: string, size: number, index: number, line: number): Uint8Array {
  if (s.length !== size * 2) throw lineError('PARSE_BAD_VALUE', index, line, 'd', `has ${s.length} hex digits, expected ${size * 2}`, { expected: String(size * 2), actual: String(s.length) });
  return hexField(s, index, line, 'd');
}

const FIRST_LINE_RE = /^( [0-9]|[1-9][0-9]) [0-9a-f]{40}/;

/**
 * Which form a measurement list is in. The rule: ASCII when the bytes are valid UTF-8 and the
 * first line starts with a `%2d` PCR number, one space and at least 40 lower-case hex digits (a
 * template hash); binary otherwise. A binary list starts with a u32 PCR number whose low byte
 * (10 = "\n" for PCR 10) cannot start such a line.
 */
export function detectImaFormat(bytes: Uint8Array): 'ascii' | 'binary' {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 48)).toString('latin1');
  if (!FIRST_LINE_RE.test(head)) return 'binary';
  try {
    UTF8.decode(bytes);
  } catch {
    // Not UTF-8 text, so not an ASCII list; the binary parser reports what is wrong.
    return 'binary';
  }
  return 'ascii';
}

/** Parses a list in either form ({@link detectImaFormat} decides which). */
export function parseImaList(bytes: Uint8Array, opts: ImaParseOptions = {}): ImaList {
  return detectImaFormat(bytes) === 'ascii' ? parseImaAscii(bytes, opts) : parseImaBinary(bytes, opts);
}
