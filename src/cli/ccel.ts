/**
 * `vouch ccel replay <table> <data> [--json] [--quote <file>] [--rtmr <n>]…`: offline replay of a
 * TDX CCEL event log (/sys/firmware/acpi/tables/CCEL and /sys/firmware/acpi/tables/data/CCEL) to
 * RTMR0–RTMR3. With `--quote`, the replay is compared with the quote's RTMRs and, when they
 * match, the boot claims are printed. The quote's signature is not checked here (`vouch verify
 * tdx` does that): a match says the log is the one the quote's RTMRs summarise, nothing more.
 *
 * Exit status: 0 the log replayed (and matched the quote), 1 the table, log or quote does not
 * parse or an RTMR does not match, 2 misuse (unreadable file, bad --rtmr).
 */
import { toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError } from '../lib/errors.js';
import { failureFromError, type Failure } from '../lib/failure.js';
import { EV } from '../eventlog/constants.js';
import { summarizeEvent } from '../eventlog/replay.js';
import { decodeTdxQuote, type DecodedTdxQuote } from '../tdx/abi.js';
import { CCEL_HASH_ALG_SHA384, ccelClaims, parseCcel, replayCcel, verifyCcel, type CcelLog } from '../tdx/ccel.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

/** Options of {@link ccelReplayCommand}. */
export interface CcelReplayOptions {
  readonly json?: boolean;
  /** A TDX quote whose RTMRs the replay is compared with. */
  readonly quote?: string;
  /** RTMR indexes (0..3) relied on with --quote; default all four. */
  readonly rtmr?: readonly string[];
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function parseRtmrs(list: readonly string[] | undefined): number[] | undefined {
  if (list === undefined || list.length === 0) return undefined;
  return list.map((s) => {
    if (!/^[0-3]$/.test(s)) throw new MisuseError('MISUSE_ARGUMENT', `--rtmr ${s}: an RTMR index is 0, 1, 2 or 3`);
    return Number(s);
  });
}

function reject(failures: readonly Failure[], json: boolean, io: CliIo, what: string): number {
  if (json) {
    io.out(`${JSON.stringify({ parsed: false, failures }, null, 2)}\n`);
  } else {
    const lines: string[] = [];
    for (const f of failures) {
      lines.push(`rejected: ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`);
      if (f.expected !== undefined) lines.push(`  expected: ${f.expected}`);
      if (f.actual !== undefined) lines.push(`  actual:   ${f.actual}`);
    }
    lines.push(what);
    io.out(`${lines.join('\n')}\n`);
  }
  return EXIT.rejected;
}

function tableView(c: CcelLog): Record<string, unknown> | undefined {
  const t = c.table;
  if (t === undefined) return undefined;
  return {
    revision: t.revision,
    checksum: `0x${t.checksum.toString(16).padStart(2, '0')}`,
    oemId: latin1(t.oemId),
    oemTableId: latin1(t.oemTableId),
    oemRevision: t.oemRevision,
    creatorId: latin1(t.creatorId),
    creatorRevision: `0x${t.creatorRevision.toString(16)}`,
    ccType: t.ccType,
    ccSubtype: t.ccSubtype,
    laml: Number(t.laml),
    lasa: `0x${t.lasa.toString(16)}`,
  };
}

/** `vouch ccel replay <table> <data>`: RTMR0–3 from the CCEL log, and the comparison with a quote. */
export async function ccelReplayCommand(tableFile: string, dataFile: string, opts: CcelReplayOptions, io: CliIo): Promise<number> {
  const json = opts.json === true;
  const rtmrs = parseRtmrs(opts.rtmr);
  if (rtmrs !== undefined && opts.quote === undefined) throw new MisuseError('MISUSE_ARGUMENT', '--rtmr selects the RTMRs compared with --quote');
  const table = await readArgFile(tableFile, 'table');
  const data = await readArgFile(dataFile, 'data');
  const quoteBytes = opts.quote === undefined ? undefined : await readArgFile(opts.quote, '--quote');

  let ccel: CcelLog;
  try {
    ccel = parseCcel(data, table);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return reject([failureFromError(e)], json, io, 'not a TDX CCEL table and log area');
  }
  let quote: DecodedTdxQuote | undefined;
  if (quoteBytes !== undefined) {
    try {
      quote = decodeTdxQuote(quoteBytes);
    } catch (e) {
      if (!isVouchError(e)) throw e;
      return reject([failureFromError(e)], json, io, 'the --quote file is not a TDX quote vouch decodes');
    }
  }

  const replay = replayCcel(ccel);
  const rtmrView = Object.fromEntries(replay.rtmrs.map((v, i) => [`RTMR${i}`, toHex(v)]));
  const events = ccel.log.untrustedEvents.map((e) => {
    const s = summarizeEvent(e, CCEL_HASH_ALG_SHA384);
    return { index: e.index, offset: e.offset, mrIndex: e.pcr, ...(e.index > 0 && e.untrustedType !== EV.NO_ACTION ? { rtmr: e.pcr - 1 } : {}), type: s.type, ...(s.digest !== undefined ? { sha384: s.digest } : {}), size: e.untrustedData.length, data: s.untrustedData };
  });
  const base = {
    parsed: true,
    table: tableView(ccel),
    log: { banks: ccel.log.banks.map((b) => `0x${b.toString(16).padStart(4, '0')}`), events: events.length, logBytes: ccel.logBytes, paddingBytes: ccel.paddingBytes },
    rtmrs: rtmrView,
  };

  if (quote === undefined) {
    if (json) {
      io.out(`${JSON.stringify({ ...base, note: 'event types and data are untrusted: no quote was compared', events }, null, 2)}\n`);
      return EXIT.ok;
    }
    const t = ccel.table;
    const lines = [
      `CCEL table: ${t !== undefined ? `OEM "${latin1(t.oemId).trim()}" "${latin1(t.oemTableId).trim()}", CC type ${t.ccType} (TDX), LAML ${t.laml}, LASA 0x${t.lasa.toString(16)}` : '(none)'}`,
      `log: ${events.length} records in ${ccel.logBytes} bytes, ${ccel.paddingBytes} bytes of 0xFF padding`,
      ...replay.rtmrs.map((v, i) => `RTMR${i} ${toHex(v)}  (${replay.eventsByRtmr[i]?.length ?? 0} events)`),
      '(untrusted: no quote was compared)',
    ];
    io.out(`${lines.join('\n')}\n`);
    return EXIT.ok;
  }

  const v = verifyCcel(ccel, quote.body.report.rtmrs, rtmrs !== undefined ? { rtmrs } : {});
  const comparison = v.comparison;
  const claims = v.ok ? ccelClaims(v) : undefined;
  const note = "the quote's signature was not checked: a match says the log is the one the quote's RTMRs summarise";
  if (json) {
    io.out(
      `${JSON.stringify(
        {
          ...base,
          quote: { version: quote.header.version, rtmrs: Object.fromEntries(quote.body.report.rtmrs.map((r, i) => [`RTMR${i}`, toHex(r)])) },
          comparison: { ok: v.ok, matched: comparison?.matched ?? [], failures: v.failures },
          ...(claims !== undefined ? { claims } : {}),
          note,
          events,
        },
        null,
        2,
      )}\n`,
    );
    return v.ok ? EXIT.ok : EXIT.rejected;
  }
  const lines: string[] = [];
  for (let i = 0; i < 4; i++) {
    const relied = rtmrs === undefined || rtmrs.includes(i);
    const ok = comparison?.matched.includes(i) === true;
    lines.push(`RTMR${i} ${toHex(replay.rtmrs[i] as Uint8Array)}  ${!relied ? 'not compared' : ok ? 'matches the quote' : 'DOES NOT match the quote'}`);
  }
  // The log is parsed already: every failure is an RTMR failure of the comparison.
  for (const f of comparison?.failures ?? []) {
    lines.push(`  ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`);
    for (const e of f.lastEvents) lines.push(`    last event #${e.index} ${e.type} ${e.untrustedData}`);
  }
  if (claims !== undefined) {
    lines.push(`secure boot: ${claims.secureBoot.state}`);
    if (claims.bootLoader !== undefined) lines.push(`boot loader: ${claims.bootLoader.untrustedPath ?? '(no path)'} sha384 ${claims.bootLoader.sha384}`);
    for (const a of claims.efiApplications) lines.push(`EFI application: ${a.untrustedPath ?? '(no path)'} sha384 ${a.sha384}`);
    if (claims.kernel !== undefined) lines.push(`kernel: ${claims.kernel.untrustedPath ?? ''} sha384 ${claims.kernel.sha384}`);
    if (claims.kernelCmdline !== undefined) lines.push(`kernel command line (${claims.kernelCmdline.source}): ${claims.kernelCmdline.value}`);
  }
  lines.push(v.ok ? `CCEL matches the quote's RTMRs (${note})` : 'rejected: the CCEL does not replay to the quote');
  io.out(`${lines.join('\n')}\n`);
  return v.ok ? EXIT.ok : EXIT.rejected;
}
