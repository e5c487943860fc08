/**
 * Event-log replay benchmark (issue #4): the largest log of the real corpus, parsed and replayed
 * from its bytes (parseEventLog + replayEventLog, every bank), next to the bare hashing cost of the
 * same extends — one node:crypto createHash per extend, same algorithms, same digests — measured
 * in alternating rounds so that both see the same machine load. Goal: replay ≥ 60 % of the bare rate.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEventLog } from '../src/eventlog/abi.js';
import { replayEventLog } from '../src/eventlog/replay.js';
import { EV } from '../src/eventlog/constants.js';
import { hashById } from '../src/tpm/abi/constants.js';
import { compareRates } from './measure.js';

const EVENTLOGS = resolve(dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures/real/tpm/eventlogs');


/** Runs the benchmark and writes its lines with `out`. */
export async function eventlogBench(out: (s: string) => void): Promise<void> {
  out('\n4. UEFI event-log replay (largest real log, parse + replay of every bank) vs bare hashing of the same extends');
  if (!existsSync(EVENTLOGS)) {
    out(`   skipped: real event logs not found at ${EVENTLOGS}`);
    return;
  }
  const files = readdirSync(EVENTLOGS).filter((f) => f.endsWith('.bin'));
  const largest = files.map((f) => ({ f, size: statSync(join(EVENTLOGS, f)).size })).sort((x, y) => y.size - x.size)[0];
  if (largest === undefined) {
    out('   skipped: no event log in the corpus');
    return;
  }
  const bytes = new Uint8Array(readFileSync(join(EVENTLOGS, largest.f)));
  const log = parseEventLog(bytes);
  // The extends the replay performs: every (bank, digest) of every event that is not EV_NO_ACTION.
  const extendsList: { nodeName: string; size: number; pcr: number; digest: Uint8Array }[] = [];
  for (const e of log.untrustedEvents) {
    if (e.untrustedType === EV.NO_ACTION || (log.format === 'crypto-agile' && e.index === 0)) continue;
    for (const d of e.digests) {
      const h = hashById(d.hashAlg);
      if (h !== undefined) extendsList.push({ nodeName: h.nodeName, size: h.size, pcr: e.pcr, digest: d.digest });
    }
  }
  const check = replayEventLog(log);
  if (check.pcrs.size === 0) throw new Error('bench log replays to nothing');
  const zero = new Map<number, Uint8Array>([20, 32, 48, 64].map((n) => [n, new Uint8Array(n)]));

  const { a: full, b: bare } = compareRates(
    9,
    300,
    () => {
      const r = replayEventLog(parseEventLog(bytes));
      if (r.pcrs.size === 0) throw new Error("replay lost its banks");
    },
    () => {
      // Same hash calls, PCR state kept per (algorithm, PCR) in a plain array: nothing but hashing.
      const state: Uint8Array[] = [];
      for (const x of extendsList) {
        const k = x.size * 32 + x.pcr;
        const cur = state[k] ?? (zero.get(x.size) as Uint8Array);
        state[k] = createHash(x.nodeName).update(cur).update(x.digest).digest();
      }

    },
  );
  out(
    `   ${largest.f} (${largest.size.toLocaleString('en-US')} bytes, ${log.untrustedEvents.length} events, ${extendsList.length} extends): ` +
      `replay ${Math.round(full).toLocaleString('en-US')} logs/s   bare hashing ${Math.round(bare).toLocaleString('en-US')}/s   ratio ${((full / bare) * 100).toFixed(1)} % (goal ≥ 60 %)`,
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  eventlogBench((s) => void process.stdout.write(`${s}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
