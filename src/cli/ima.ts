/**
 * `vouch ima show <file>` and `vouch ima replay <file>`: offline reading and replay of an IMA
 * runtime measurement list.
 *
 * The form is detected strictly (src/eventlog/ima/parse.ts, detectImaFormat): the file is the
 * ASCII list when it is valid UTF-8 text whose first line starts with a `%2d` PCR number, a space
 * and a hex template hash; otherwise it is read as the binary list (little-endian, the
 * template-hash size told by the first entry). A list that does not parse, or whose template
 * hashes are not the digests of their template data, is a rejection (exit 1) with the code, the
 * entry and the field; an unreadable file is misuse (exit 2).
 *
 * `replay --json` prints `{ format, templateHashAlgorithm, entries, pcrs: { bank: { "10": hex } } }`,
 * the same bank → index → hex map `verify tpm-quote --pcrs` reads.
 */
import { toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, type VouchError } from '../lib/errors.js';
import { hashById, hashByName, TPM_ALG } from '../tpm/abi/constants.js';
import { parseImaList, replayIma, type ImaEntry, type ImaList } from '../eventlog/ima/index.js';
import { decodeImaSignature } from '../eventlog/ima/signature.js';
import { EXIT, exitFor, readArgFile, type CliIo } from './main.js';

/** Options of both commands. */
export interface ImaCommandOptions {
  json?: boolean;
  /** replay only: comma-separated banks (default sha1,sha256,sha384,sha512). */
  banks?: string;
}

const DEFAULT_BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512];

function bankName(id: number): string {
  return hashById(id)?.name ?? `0x${id.toString(16)}`;
}

function report(e: VouchError, json: boolean | undefined, io: CliIo): number {
  if (json === true) io.out(`${JSON.stringify({ ok: false, failures: [e.toJSON()] }, null, 2)}\n`);
  else {
    io.err(`vouch: ${e.code}: ${e.message}\n`);
    if (e.expected !== undefined) io.err(`  expected: ${e.expected}\n`);
    if (e.actual !== undefined) io.err(`  actual:   ${e.actual}\n`);
  }
  return exitFor(e);
}

async function load(file: string): Promise<ImaList> {
  const bytes = await readArgFile(file, 'file');
  return parseImaList(bytes);
}

function keyIdOf(sig: Uint8Array, index: number): string {
  try {
    return decodeImaSignature(sig, index).keyId;
  } catch (e) {
    if (isVouchError(e)) return 'malformed';
    throw e;
  }
}

function entryJson(e: ImaEntry): Record<string, unknown> {
  return {
    index: e.index,
    pcr: e.pcr,
    template: e.template,
    templateHash: toHex(e.templateHash),
    digest: { algorithm: e.digest.algorithm, hex: toHex(e.digest.digest) },
    path: e.path,
    ...(e.signature !== undefined ? { signature: toHex(e.signature), keyId: keyIdOf(e.signature, e.index) } : {}),
    ...(e.buffer !== undefined ? { buffer: toHex(e.buffer) } : {}),
    ...(e.modsig !== undefined ? { modsig: { digest: { algorithm: e.modsig.digest.algorithm, hex: toHex(e.modsig.digest.digest) }, signature: toHex(e.modsig.signature) } } : {}),
    violation: e.violation,
  };
}

/** `vouch ima show <file> [--json]`: the entries of a list (claims: nothing is verified). */
export async function imaShowCommand(file: string, opts: { json?: boolean }, io: CliIo): Promise<number> {
  let list: ImaList;
  try {
    list = await load(file);
  } catch (e) {
    if (isVouchError(e) && e.category !== 'misuse') return report(e, opts.json, io);
    throw e;
  }
  if (opts.json === true) {
    io.out(`${JSON.stringify({ ok: true, format: list.format, templateHashAlgorithm: bankName(list.templateHashAlg), entries: list.entries.map(entryJson) }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [`${list.format} list, ${list.entries.length} entries, ${bankName(list.templateHashAlg)} template hashes (not verified: run "vouch ima replay")`];
  for (const e of list.entries) {
    const extra = [
      e.signature !== undefined ? `sig keyid=${keyIdOf(e.signature, e.index)}` : '',
      e.buffer !== undefined ? `buf ${e.buffer.length} bytes` : '',
      e.modsig !== undefined ? 'modsig' : '',
      e.violation ? 'VIOLATION' : '',
    ].filter((s) => s !== '');
    lines.push(`${String(e.index).padStart(6)} ${String(e.pcr).padStart(2)} ${e.template.padEnd(10)} ${e.digest.algorithm}:${toHex(e.digest.digest)} ${e.path}${extra.length > 0 ? `  [${extra.join(', ')}]` : ''}`);
  }
  io.out(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

function parseBanks(spec: string | undefined): number[] {
  if (spec === undefined) return DEFAULT_BANKS;
  const ids = spec.split(',').map((s) => {
    const h = hashByName(s.trim());
    if (h === undefined) throw new MisuseError('MISUSE_ARGUMENT', `--banks: unknown bank "${s.trim()}"`);
    return h.id;
  });
  if (ids.length === 0 || new Set(ids).size !== ids.length) throw new MisuseError('MISUSE_ARGUMENT', '--banks: name each bank once');
  return ids;
}

/**
 * `vouch ima replay <file> [--json]`: PCR 10 per bank after every entry, each template hash
 * checked against its template data.
 */
export async function imaReplayCommand(file: string, opts: ImaCommandOptions, io: CliIo): Promise<number> {
  const banks = parseBanks(opts.banks);
  let list: ImaList;
  let pcr10: Map<number, Uint8Array>;
  try {
    list = await load(file);
    pcr10 = replayIma(list.entries, { banks });
  } catch (e) {
    if (isVouchError(e) && e.category !== 'misuse') return report(e, opts.json, io);
    throw e;
  }
  if (opts.json === true) {
    const pcrs: Record<string, Record<string, string>> = {};
    for (const [id, v] of pcr10) pcrs[bankName(id)] = { '10': toHex(v) };
    io.out(`${JSON.stringify({ ok: true, format: list.format, templateHashAlgorithm: bankName(list.templateHashAlg), entries: list.entries.length, pcrs }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [`${list.format} list, ${list.entries.length} entries, every template hash matches its template data`];
  for (const [id, v] of pcr10) lines.push(`${bankName(id).padEnd(8)} PCR 10 = ${toHex(v)}`);
  io.out(`${lines.join('\n')}\n`);
  return EXIT.ok;
}
