/**
 * `vouch policy learn`: a reference policy from the evidence of a known-good host, printed as
 * YAML (or written to `--output`) for the operator to review and edit.
 *
 * ```
 * vouch policy learn --id <id> --ak <file> --message <file> --signature <file> --pcrs <file>
 *   [--pcrs-format auto|serialized|values|json] [--nonce <hex>] [--eventlog <file>] [--ima <file>]
 *   [--bank <name>]… [--quirk <name>]… [--output <file>]
 * ```
 *
 * Exit status: 0 the policy was learned; 1 the evidence was refused (an input file does not
 * parse, the quote, the event log or the IMA list does not verify): the failures go to stderr and
 * nothing is written; 2 misuse (unreadable file, bad flag, a bank the quote lacks).
 *
 * The YAML goes to stdout alone, so `vouch policy learn … > policy.yaml` holds only the policy;
 * refusals and the summary go to stderr. The text is loaded back with parsePolicy before it is
 * printed: a learned policy always loads.
 */
import { writeFile } from 'node:fs/promises';
import { fromHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, ParseError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { TPM_ST_ATTEST } from '../tpm/abi/constants.js';
import { decodeTpmsAttest } from '../tpm/abi/attest.js';
import type { PcrSelection } from '../tpm/abi/pcr.js';
import { decodeJsonPcrs, decodeSerializedPcrs, decodeValuesPcrs, readAkPublicFile } from '../tpm/tools-formats.js';
import type { PcrValues } from '../tpm/verify/quote.js';
import { parseQuirks } from '../eventlog/index.js';
import { BANK_NAMES, parsePolicy, type BankName } from '../policy/index.js';
import { learnPolicy, renderLearnedPolicy } from '../policy/learn.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

/** Options of `vouch policy learn` (commander's names). */
export interface PolicyLearnOptions {
  id: string;
  ak: string;
  message: string;
  signature: string;
  pcrs: string;
  /** auto (default) | serialized | values | json. */
  pcrsFormat?: string;
  nonce?: string;
  eventlog?: string;
  ima?: string;
  /** Banks the policy requires (repeatable); default: the quote's banks. */
  bank?: string[];
  /** Event-log firmware quirks allowed (repeatable). */
  quirk?: string[];
  output?: string;
}

const FORMATS = ['auto', 'serialized', 'values', 'json'] as const;

/** The selection the (still unverified) quote claims: needed only to read a `values` PCR file. */
function claimedSelection(message: Uint8Array): PcrSelection | undefined {
  try {
    const a = decodeTpmsAttest(message);
    return a.attested.type === TPM_ST_ATTEST.QUOTE ? a.attested.quote.pcrSelect : undefined;
  } catch (e) {
    // The quote verification reports the parse failure with its field path.
    if (isVouchError(e)) return undefined;
    throw e;
  }
}

function readPcrs(bytes: Uint8Array, format: string, message: Uint8Array): PcrValues {
  let f = format;
  if (f === 'auto') {
    const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    f = first === 0x7b ? 'json' : 'serialized';
  }
  if (f === 'json') {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (cause) {
      throw new ParseError('PARSE_BAD_ENCODING', 'the JSON PCR file is not UTF-8', { field: '--pcrs', cause });
    }
    return decodeJsonPcrs(text);
  }
  if (f === 'serialized') return decodeSerializedPcrs(bytes).values;
  const sel = claimedSelection(message);
  return sel === undefined ? new Map() : decodeValuesPcrs(bytes, sel);
}

function banksOf(names: readonly string[]): BankName[] {
  const out: BankName[] = [];
  for (const n of names) {
    const b = BANK_NAMES.find((x) => x === n);
    if (b === undefined) throw new MisuseError('MISUSE_ARGUMENT', `--bank ${n}: not a PCR bank (one of ${BANK_NAMES.join(', ')})`);
    if (!out.includes(b)) out.push(b);
  }
  return out;
}

function renderRefusal(failures: readonly Failure[], notes: readonly string[]): string {
  const lines = ['vouch policy learn: the evidence was refused; nothing was learned'];
  for (const f of failures) {
    lines.push(`  ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`);
    if (f.expected !== undefined) lines.push(`    expected: ${f.expected}`);
    if (f.actual !== undefined) lines.push(`    actual:   ${f.actual}`);
  }
  for (const n of notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Runs `vouch policy learn`.
 * @returns EXIT.ok when the policy was learned, EXIT.rejected when the evidence was refused
 * @throws MisuseError for bad flags and unreadable files (the CLI maps it to exit 2)
 */
export async function policyLearnCommand(opts: PolicyLearnOptions, io: CliIo): Promise<number> {
  const format = opts.pcrsFormat ?? 'auto';
  if (!(FORMATS as readonly string[]).includes(format)) throw new MisuseError('MISUSE_ARGUMENT', `--pcrs-format must be one of ${FORMATS.join(', ')}`);
  if (!/^[a-z0-9-]{1,64}$/.test(opts.id)) throw new MisuseError('MISUSE_ARGUMENT', `--id ${JSON.stringify(opts.id)} must match [a-z0-9-]{1,64}`);
  let nonce: Uint8Array | undefined;
  if (opts.nonce !== undefined) {
    try {
      nonce = fromHex(opts.nonce.replace(/^0x/i, ''), '--nonce');
    } catch (cause) {
      throw new MisuseError('MISUSE_ARGUMENT', '--nonce must be hex', { cause });
    }
  }
  const banks = banksOf(opts.bank ?? []);
  const quirks = parseQuirks(opts.quirk ?? []);
  const [akBytes, message, signature, pcrBytes, eventLog, ima] = await Promise.all([
    readArgFile(opts.ak, '--ak'),
    readArgFile(opts.message, '--message'),
    readArgFile(opts.signature, '--signature'),
    readArgFile(opts.pcrs, '--pcrs'),
    opts.eventlog === undefined ? Promise.resolve(undefined) : readArgFile(opts.eventlog, '--eventlog'),
    opts.ima === undefined ? Promise.resolve(undefined) : readArgFile(opts.ima, '--ima'),
  ]);

  // Input files that do not parse are a refusal of the evidence (exit 1), like any failure.
  const refused: Failure[] = [];
  let ak;
  try {
    ak = readAkPublicFile(akBytes);
    if (ak.kind === 'pem') {
      refused.push(failure('TPM_AK_TEMPLATE_INVALID', {
        field: '--ak',
        message: 'the AK is a PEM key: learning needs its TPM public area (tpm2_createak -u, tpm2_readpublic -o) to check that it is a restricted signing key of a TPM',
      }));
    }
  } catch (e) {
    if (!isVouchError(e)) throw e;
    refused.push(failureFromError(e));
  }
  let pcrs: PcrValues | undefined;
  try {
    pcrs = readPcrs(pcrBytes, format, message);
  } catch (e) {
    if (!isVouchError(e) || e instanceof MisuseError) throw e;
    refused.push(failureFromError(e));
  }
  if (ak === undefined || pcrs === undefined || refused.length > 0) {
    io.err(renderRefusal(refused, []));
    return EXIT.rejected;
  }

  const result = learnPolicy({
    id: opts.id,
    ak: ak.key,
    attest: message,
    signature,
    pcrs,
    ...(nonce !== undefined ? { nonce } : {}),
    ...(eventLog !== undefined ? { eventLog } : {}),
    ...(ima !== undefined ? { ima } : {}),
    ...(banks.length > 0 ? { banks } : {}),
    quirks,
  });
  if (!result.ok) {
    io.err(renderRefusal(result.failures, result.notes));
    return EXIT.rejected;
  }
  const text = renderLearnedPolicy(result);
  // The text, not only the object, must load: this is what the operator will deploy.
  parsePolicy(text, 'yaml');
  if (opts.output === undefined) {
    io.out(text);
  } else {
    try {
      // 'wx': a policy the operator has already reviewed and edited is never overwritten.
      await writeFile(opts.output, text, { encoding: 'utf8', flag: 'wx', mode: 0o644 });
    } catch (cause) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `--output ${opts.output}: cannot create the file (it must not exist yet)`, { cause });
    }
    io.err(`vouch policy learn: wrote policy ${opts.id} to ${opts.output}; review the ${result.notes.length} notes at its top before use\n`);
  }
  return EXIT.ok;
}
