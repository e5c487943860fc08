/**
 * `vouch eventlog show|replay <file> [--json]`: offline reading of a TCG PC Client event log
 * (/sys/kernel/security/tpm0/binary_bios_measurements). `show` lists the events as logged (all
 * untrusted: no quote is involved); `replay` prints the PCR values per bank the log replays to.
 *
 * Exit status: 0 the log parsed, 1 it does not parse, 2 misuse (unreadable file, unknown quirk).
 */
import { toHex } from '../lib/bytes.js';
import { isVouchError } from '../lib/errors.js';
import { failureFromError } from '../lib/failure.js';
import { algName, hashById } from '../tpm/abi/constants.js';
import { parseEventLog, type EventLog } from '../eventlog/abi.js';
import { parseQuirks, replayEventLog, summarizeEvent } from '../eventlog/replay.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

const bankName = (id: number): string => hashById(id)?.name ?? algName(id);

/** Parses the file; a log that does not parse is reported and gives `undefined`. */
async function load(file: string, json: boolean, io: CliIo): Promise<EventLog | undefined> {
  const bytes = await readArgFile(file, 'eventlog');
  try {
    return parseEventLog(bytes);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    const f = failureFromError(e);
    if (json) io.out(`${JSON.stringify({ parsed: false, failures: [f] }, null, 2)}\n`);
    else io.out(`rejected: ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}\n`);
    return undefined;
  }
}

/** `vouch eventlog show <file>`: every event as logged, untrusted. */
export async function eventlogShowCommand(file: string, opts: { json?: boolean }, io: CliIo): Promise<number> {
  const json = opts.json === true;
  const log = await load(file, json, io);
  if (log === undefined) return EXIT.rejected;
  const events = log.untrustedEvents.map((e) => ({
    index: e.index,
    offset: e.offset,
    pcr: e.pcr,
    type: summarizeEvent(e).type,
    digests: Object.fromEntries(e.digests.map((d) => [bankName(d.hashAlg), toHex(d.digest)])),
    size: e.untrustedData.length,
    data: summarizeEvent(e).untrustedData,
  }));
  if (json) {
    const specId = log.specId;
    io.out(
      `${JSON.stringify(
        {
          parsed: true,
          format: log.format,
          banks: log.banks.map(bankName),
          ...(specId !== undefined
            ? { specId: { platformClass: specId.platformClass, specVersion: `${specId.specVersionMajor}.${specId.specVersionMinor}`, specErrata: specId.specErrata, uintnSize: specId.uintnSize, algorithms: specId.algorithms.map((a) => ({ bank: bankName(a.hashAlg), digestSize: a.digestSize })) } }
            : {}),
          note: 'event types and data are untrusted: no quote was checked',
          events,
        },
        null,
        2,
      )}\n`,
    );
    return EXIT.ok;
  }
  const lines = [`format: ${log.format}   banks: ${log.banks.map(bankName).join(', ')}   events: ${events.length}   (untrusted: no quote was checked)`];
  for (const e of events) {
    lines.push(`#${e.index} @${e.offset} PCR ${e.pcr} ${e.type} (${e.size} bytes)`);
    for (const [bank, d] of Object.entries(e.digests)) lines.push(`    ${bank.padEnd(7)} ${d}`);
    if (e.size > 0) lines.push(`    data    ${e.data}`);
  }
  io.out(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

/** `vouch eventlog replay <file>`: PCR values per bank; `--quirk` adds the values a named quirk gives. */
export async function eventlogReplayCommand(file: string, opts: { json?: boolean; quirk?: string[] }, io: CliIo): Promise<number> {
  const quirks = parseQuirks(opts.quirk ?? []);
  const json = opts.json === true;
  const log = await load(file, json, io);
  if (log === undefined) return EXIT.rejected;
  const r = replayEventLog(log, { quirks });
  const banks: Record<string, Record<string, string>> = {};
  for (const [alg, values] of r.pcrs) {
    banks[bankName(alg)] = Object.fromEntries([...values.entries()].sort((a, b) => a[0] - b[0]).map(([pcr, v]) => [String(pcr), toHex(v)]));
  }
  const gaps = r.gaps.map((g) => ({ bank: bankName(g.hashAlg), ...(g.pcr !== undefined ? { pcr: g.pcr } : {}), reason: g.reason }));
  const quirkValues = r.quirkValues.map((q) => ({ quirk: q.quirk, bank: bankName(q.hashAlg), pcr: q.pcr, value: toHex(q.value) }));
  if (json) {
    io.out(`${JSON.stringify({ format: log.format, pcrs: banks, ...(r.startupLocality !== undefined ? { startupLocality: r.startupLocality } : {}), gaps, quirks: quirkValues }, null, 2)}\n`);
    return EXIT.ok;
  }
  const lines = [`format: ${log.format}${r.startupLocality !== undefined ? `   StartupLocality: ${r.startupLocality} (PCR 0 starts at 00..0${r.startupLocality})` : ''}`];
  for (const [bank, values] of Object.entries(banks)) {
    lines.push(`${bank}:`);
    for (const [pcr, v] of Object.entries(values)) lines.push(`  ${pcr.padStart(2)} : ${v}`);
  }
  for (const g of gaps) lines.push(`not replayed: ${g.bank}${g.pcr !== undefined ? ` PCR ${g.pcr}` : ''}: ${g.reason}`);
  for (const q of quirkValues) lines.push(`with quirk ${q.quirk}: ${q.bank} PCR ${q.pcr} = ${q.value}`);
  io.out(`${lines.join('\n')}\n`);
  return EXIT.ok;
}
