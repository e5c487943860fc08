/**
 * IMA part of `npm run bench` (issue #4).
 *
 * 1. Replay of a generated binary measurement list of 100,000 ima-ng entries with SHA-256
 *    template hashes (the per-bank list of newer kernels) into the SHA-256 bank: parse from the
 *    bytes, check every template hash against its template data, extend. Next to it, in
 *    alternating rounds, the bare hashing the same replay cannot avoid: for each entry the
 *    digest of its template data and the extend, with the same node:crypto primitive over
 *    pre-sliced buffers. The ratio is the share of the bare rate (goal ≥ 60 %). The rate of
 *    the extends alone is printed for reference.
 * 2. An incremental re-attestation: 100 new entries (parse the chunk, extend until the quoted
 *    PCR 10 matches) on top of a state of 100,000 entries and of 1,000 entries. The two costs
 *    should be the same: only the new entries are touched.
 *
 * Run alone: `tsx bench/ima.ts`.
 */
import { createHash, hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TPM_ALG } from '../src/tpm/abi/constants.js';
import { encodeImaBinary, encodeTemplateData, type ImaEntryBytes } from '../src/eventlog/ima/abi.js';
import { extendIma, extendImaToQuote, initialImaState, parseImaBinary, replayIma, type ImaState } from '../src/eventlog/ima/index.js';
import { median } from './measure.js';

const ENTRIES = 100_000;
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** A list of `n` ima-ng entries as a kernel writes them, SHA-256 template hashes, starting at `first`. */
function generate(n: number, first = 0): { bytes: Uint8Array; data: Uint8Array[] } {
  const entries: ImaEntryBytes[] = [];
  const data: Uint8Array[] = [];
  for (let i = first; i < first + n; i++) {
    const path = i === 0 ? 'boot_aggregate' : `/usr/lib/x86_64-linux-gnu/lib${i % 997}/module-${i}.so`;
    const digest = new Uint8Array(createHash('sha256').update(`file ${i}`).digest());
    const templateData = encodeTemplateData('ima-ng', { digest: { algorithm: 'sha256', digest }, path });
    data.push(templateData);
    entries.push({ pcr: 10, templateHash: new Uint8Array(createHash('sha256').update(templateData).digest()), template: 'ima-ng', templateData });
  }
  return { bytes: encodeImaBinary(entries), data };
}

/** Seconds one call of `fn` takes. */
function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function imaBench(out: (s: string) => void): Promise<void> {
  out(`\nIMA: replay of a generated list of ${fmt(ENTRIES)} ima-ng entries (binary, SHA-256 template hashes, SHA-256 bank)`);
  const { bytes, data } = generate(ENTRIES);
  const banks = [TPM_ALG.SHA256];
  const opts = { templateHashAlg: TPM_ALG.SHA256 };

  // Both paths must agree, or the comparison measures nothing.
  const replayed = replayIma(parseImaBinary(bytes, opts).entries, { banks }).get(TPM_ALG.SHA256) as Uint8Array;
  const scratch = new Uint8Array(64);
  const bare = (): Uint8Array => {
    scratch.fill(0, 0, 32);
    for (const d of data) {
      scratch.set(hash('sha256', d, 'buffer'), 32);
      scratch.set(hash('sha256', scratch, 'buffer'), 0);
    }
    return scratch.slice(0, 32);
  };
  if (Buffer.compare(Buffer.from(bare()), Buffer.from(replayed)) !== 0) throw new Error('bench: the bare hashing does not give the replayed PCR 10');
  const digests = data.map((d) => hash('sha256', d, 'buffer'));
  const extendOnly = (): void => {
    scratch.fill(0, 0, 32);
    for (const d of digests) {
      scratch.set(d, 32);
      scratch.set(hash('sha256', scratch, 'buffer'), 0);
    }
  };

  // Alternating rounds, so both see the same machine load; the median round counts.
  const parsed = parseImaBinary(bytes, opts).entries;
  const full: number[] = [];
  const replayOnly: number[] = [];
  const base: number[] = [];
  const ext: number[] = [];
  for (let r = 0; r < 9; r++) {
    full.push(ENTRIES / seconds(() => void replayIma(parseImaBinary(bytes, opts).entries, { banks })));
    base.push(ENTRIES / seconds(() => void bare()));
    replayOnly.push(ENTRIES / seconds(() => void replayIma(parsed, { banks })));
    ext.push(ENTRIES / seconds(extendOnly));
  }
  const [f, b, ro] = [median(full), median(base), median(replayOnly)];
  out(`   parse + replay ${fmt(f).padStart(10)} entries/s   bare hashing (template digest + extend) ${fmt(b).padStart(10)}/s   ratio ${pct(f / b)} (goal ≥ 60 %)`);
  out(`   replay of parsed entries ${fmt(ro)}/s (ratio ${pct(ro / b)}); extends alone, without the template digest, ${fmt(median(ext))}/s`);

  out('   incremental re-attestation: 100 new entries (parse the chunk, extend to the quoted PCR 10)');
  const stateAfter = (n: number): ImaState => extendIma(initialImaState(1, banks), parseImaBinary(n === ENTRIES ? bytes : generate(n).bytes, opts).entries);
  const cases = [100_000, 1_000].map((n) => {
    const state = stateAfter(n);
    const chunk = generate(100, n).bytes;
    const quoted = new Map([[TPM_ALG.SHA256, extendIma(state, parseImaBinary(chunk, { ...opts, firstIndex: n }).entries).pcr10.get(TPM_ALG.SHA256) as Uint8Array]]);
    const run = (): void => {
      const r = extendImaToQuote(state, parseImaBinary(chunk, { ...opts, firstIndex: n }).entries, quoted);
      if (!r.ok || r.consumed !== 100) throw new Error('bench: the incremental replay did not reach the quote');
    };
    return { n, run, times: [] as number[] };
  });
  for (let r = 0; r < 400; r++) for (const c of cases) c.times.push(seconds(c.run));
  for (const c of cases) {
    const t = c.times.slice(50);
    out(`   on top of ${fmt(c.n).padStart(7)} entries: ${(median(t) * 1e6).toFixed(0).padStart(6)} µs per re-attestation (median of ${t.length})`);
  }
  const [big, small] = cases.map((c) => median(c.times.slice(50)));
  out(`   ratio ${((big as number) / (small as number)).toFixed(2)} (goal ≈ 1: independent of the old entries)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  imaBench((s) => process.stdout.write(`${s}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
