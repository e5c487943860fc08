/**
 * `vouch verify tpm-quote`: offline verification of a TPM2_Quote in the formats tpm2-tools writes.
 */
import { fromHex, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError } from '../lib/errors.js';
import { failureFromError, type Failure } from '../lib/failure.js';
import { hashById, TPM_ST_ATTEST } from '../tpm/abi/constants.js';
import { decodeTpmsAttest } from '../tpm/abi/attest.js';
import type { PcrSelection } from '../tpm/abi/pcr.js';
import { decodeJsonPcrs, decodeSerializedPcrs, decodeValuesPcrs, readAkPublicFile } from '../tpm/tools-formats.js';
import { verifyQuote, type PcrValues, type QuoteVerification } from '../tpm/verify/quote.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

export interface VerifyTpmQuoteOptions {
  ak: string;
  message: string;
  signature: string;
  pcrs?: string;
  pcrsFormat: string;
  nonce?: string;
  json?: boolean;
}

const FORMATS = ['auto', 'serialized', 'values', 'json'] as const;

/** The selection the (still unverified) quote claims, needed to read a `values` PCR file. */
function claimedSelection(message: Uint8Array): PcrSelection | undefined {
  try {
    const a = decodeTpmsAttest(message);
    return a.attested.type === TPM_ST_ATTEST.QUOTE ? a.attested.quote.pcrSelect : undefined;
  } catch {
    // The verification below reports the parse failure with its field path.
    return undefined;
  }
}

function readPcrs(bytes: Uint8Array, format: string, message: Uint8Array): PcrValues {
  let f = format;
  if (f === 'auto') {
    const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    f = first === 0x7b ? 'json' : 'serialized';
  }
  if (f === 'json') return decodeJsonPcrs(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  if (f === 'serialized') return decodeSerializedPcrs(bytes).values;
  const sel = claimedSelection(message);
  if (sel === undefined) return new Map();
  return decodeValuesPcrs(bytes, sel);
}

function render(result: QuoteVerification, extra: readonly Failure[]): string {
  const lines: string[] = [];
  for (const c of result.checks) {
    const mark = c.outcome === 'pass' ? 'PASS' : c.outcome === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`${mark}  ${c.check}${c.note !== undefined ? `  (${c.note})` : ''}`);
  }
  const failures = [...extra, ...result.failures];
  for (const f of failures) {
    lines.push(`  ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`);
    if (f.expected !== undefined) lines.push(`    expected: ${f.expected}`);
    if (f.actual !== undefined) lines.push(`    actual:   ${f.actual}`);
  }
  if (result.attest !== undefined) {
    const a = result.attest;
    lines.push(`quote: extraData=${toHex(a.extraData)} ${`resetCount=${a.clockInfo.resetCount} restartCount=${a.clockInfo.restartCount} clock=${a.clockInfo.clock}`}`);
    if (a.attested.type === TPM_ST_ATTEST.QUOTE) {
      const sel = a.attested.quote.pcrSelect.map((b) => `${hashById(b.hashAlg)?.name ?? b.hashAlg}:${b.pcrs.join(',')}`).join(' ');
      lines.push(`pcrs:  ${sel}`);
    }
  }
  lines.push(failures.length === 0 ? 'verified' : `rejected: ${failures.length} failure(s)`);
  return `${lines.join('\n')}\n`;
}

export async function verifyTpmQuoteCommand(opts: VerifyTpmQuoteOptions, io: CliIo): Promise<number> {
  if (!(FORMATS as readonly string[]).includes(opts.pcrsFormat)) {
    throw new MisuseError('MISUSE_ARGUMENT', `--pcrs-format must be one of ${FORMATS.join(', ')}`);
  }
  let nonce: Uint8Array | undefined;
  if (opts.nonce !== undefined) {
    try {
      nonce = fromHex(opts.nonce.replace(/^0x/i, ''), '--nonce');
    } catch (cause) {
      throw new MisuseError('MISUSE_ARGUMENT', '--nonce must be hex', { cause });
    }
  }
  const [akBytes, message, signature, pcrBytes] = await Promise.all([
    readArgFile(opts.ak, '--ak'),
    readArgFile(opts.message, '--message'),
    readArgFile(opts.signature, '--signature'),
    opts.pcrs === undefined ? Promise.resolve(undefined) : readArgFile(opts.pcrs, '--pcrs'),
  ]);

  // Input files that do not parse are a rejection of the evidence (exit 1), listed like any failure.
  const extra: Failure[] = [];
  let ak;
  try {
    ak = readAkPublicFile(akBytes);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    extra.push(failureFromError(e));
  }
  let pcrs: PcrValues | undefined;
  if (pcrBytes !== undefined) {
    try {
      pcrs = readPcrs(pcrBytes, opts.pcrsFormat, message);
    } catch (e) {
      if (!isVouchError(e)) throw e;
      extra.push(failureFromError(e));
    }
  }
  if (ak === undefined) {
    const out = { verified: false, checks: [], failures: extra };
    io.out(opts.json === true ? `${JSON.stringify(out, null, 2)}\n` : render({ ok: false, checks: [], failures: [] }, extra));
    return EXIT.rejected;
  }
  const result = verifyQuote({
    ak: ak.key,
    akTemplateUnknown: ak.kind === 'pem',
    attest: message,
    signature,
    expectedExtraData: nonce,
    pcrs: pcrBytes !== undefined && pcrs === undefined ? new Map() : pcrs,
  });
  const verified = result.ok && extra.length === 0;
  if (opts.json === true) {
    const a = result.attest;
    const out = {
      verified,
      checks: result.checks,
      failures: [...extra, ...result.failures],
      ...(a !== undefined
        ? {
            quote: {
              extraData: toHex(a.extraData),
              clock: a.clockInfo.clock.toString(),
              resetCount: a.clockInfo.resetCount,
              restartCount: a.clockInfo.restartCount,
              safe: a.clockInfo.safe,
              firmwareVersion: a.firmwareVersion.toString(16),
              ...(a.attested.type === TPM_ST_ATTEST.QUOTE
                ? {
                    pcrSelect: a.attested.quote.pcrSelect.map((b) => ({ bank: hashById(b.hashAlg)?.name ?? String(b.hashAlg), pcrs: b.pcrs })),
                    pcrDigest: toHex(a.attested.quote.pcrDigest),
                  }
                : {}),
            },
          }
        : {}),
    };
    io.out(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    io.out(render(result, extra));
  }
  return verified ? EXIT.ok : EXIT.rejected;
}
