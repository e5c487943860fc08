/**
 * Part 9 of `npm run bench`: the lineage ledger (src/ledger, src/store), on the real code paths.
 *
 * 9a. Appends: `SqliteStore.appendDecision` (durable: synchronous=FULL, group commit) and
 *     `PostgresStore.appendDecision` against a throwaway server from test/helpers/postgres.ts
 *     (whose fsync setting is read back from the server and printed), one append awaited at a
 *     time and 64 in flight; appends/s and p50/p99 latency of one append. The bodies are made by
 *     the verifier's own `attestationDecision` from appraisal-shaped values (digests, a trust
 *     vector, TPM claims over sha256 PCRs 0-7, and for one decision in ten a refusal with its
 *     failures), shaped and sized as the entries part 2's appraisals record. The ledger head
 *     after each run must be exactly the count appended.
 * 9b. Inclusion and consistency proofs at 1,000,000 entries: bench/merkle.ts (its own header).
 * 9c. Whole-ledger verification: a SQLite ledger of BENCH_LEDGER_ENTRIES (default 200,000)
 *     filled by appendDecision with 256 in flight, the signing key recorded as the service
 *     records it (a `trust-anchor` decision `{anchor: "signing-key", kid, jwk}`), four checkpoints
 *     signed by the service's own LedgerService with an ArtifactSigner; then, timed, `verifyLedger`
 *     over the rows read back from a read-only store in pages of 10,000, as `vouch ledger verify`
 *     does (result asserted ok, every entry and checkpoint counted), next to the bare page reads.
 *     A control run over a prefix with one byte flipped must fail. Then `vouch ledger export` and
 *     `vouch ledger verify --from-export --jwks` through the CLI's own command functions.
 *
 * Knobs: BENCH_LEDGER_ENTRIES (9c), BENCH_LEDGER_APPENDS (appends per 64-in-flight run, default
 * 10,000; a run of one in flight does a tenth), BENCH_MERKLE_LEAVES (9b).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ArtifactSigner, AR4SI, toPublicJwk, type CnfJwk, type TrustVector } from '../src/artifact/index.js';
import { failure, type Failure } from '../src/lib/failure.js';
import { canonicalJsonBytes } from '../src/policy/canonical.js';
import { parsePolicy } from '../src/policy/index.js';
import { verifyLedger, type LedgerVerification } from '../src/ledger/verify.js';
import type { ChainRow } from '../src/ledger/chain.js';
import { GENESIS_PREV, buildLedgerEntry } from '../src/ledger/entry.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { DecisionInput, DecisionRecord, Store } from '../src/store/types.js';
import { attestationDecision } from '../src/verifier/attestation.js';
import { LedgerService } from '../src/verifier/ledger.js';
import type { Appraisal } from '../src/appraisal/appraise.js';
import { ledgerExportCommand, ledgerVerifyCommand } from '../src/cli/ledger.js';
import { EXIT, type CliIo } from '../src/cli/main.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { merkleBench } from './merkle.js';

type Out = (s?: string) => void;

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const ms = (ns: number): string => `${(ns / 1e6).toFixed(2)} ms`;
const sec = (ns: number): string => `${(ns / 1e9).toFixed(2)} s`;
/** Nanoseconds since an arbitrary origin. */
const now = (): number => Number(process.hrtime.bigint());
const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** The store page size `vouch ledger verify` reads with (src/cli/ledger.ts). */
const PAGE = 10_000;

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

// --- decision bodies ---------------------------------------------------------------------------

/** The bench policy (PCRs 0-7 of sha256, as bench/fixture.ts): appraisals name it. */
const PCR_VALUE = sha256Hex('bench');
const POLICY_TEXT = `apiVersion: vouch/v1\nkind: AttestationPolicy\nid: bench\ntpm:\n  banks: [sha256]\n  pcrs:\n    sha256:\n${Array.from({ length: 8 }, (_, i) => `      "${i}": ["${PCR_VALUE}"]`).join('\n')}\nartifact:\n  lifetimeSeconds: 300\n`;

interface Decisions {
  /** The `i`-th decision: an appraisal of node `bench-(i mod 1000)`, one in ten refused. */
  (i: number): DecisionInput;
}

/**
 * Appraise decisions as the verifier records them: `attestationDecision` (src/verifier) over an
 * appraisal of a TPM quote — evidence digest, policy id and digest, trust vector, claims (AK
 * name, counters, firmware, the eight quoted PCRs), the bound key for an affirming one, the
 * retained inputs' references; a refused one carries a POLICY_PCR_MISMATCH failure and the
 * trust vector that goes with it.
 */
function decisions(): Decisions {
  const policy = parsePolicy(POLICY_TEXT, 'yaml');
  const policyDigest = sha256Hex(POLICY_TEXT);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const boundKeyJwk: CnfJwk = toPublicJwk(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
  const good: TrustVector = { 'instance-identity': AR4SI.instanceIdentity.trustworthy, configuration: AR4SI.configuration.approved, executables: AR4SI.executables.approvedBoot, hardware: AR4SI.hardware.genuine };
  const bad: TrustVector = { ...good, configuration: AR4SI.configuration.unsupportable };
  const trust = sha256Hex('bench trust anchors');
  return (i) => {
    const refused = i % 10 === 9;
    const evidenceDigest = sha256Hex(`evidence ${i}`);
    const pcrs: Record<string, string> = {};
    for (let p = 0; p < 8; p++) pcrs[String(p)] = p === 7 && refused ? sha256Hex(`tampered ${i}`) : PCR_VALUE;
    const failures: Failure[] = refused ? [failure('POLICY_PCR_MISMATCH', { field: 'pcrs.sha256.7', expected: PCR_VALUE, actual: pcrs['7'] as string })] : [];
    const appraisal: Appraisal = {
      status: refused ? 'contraindicated' : 'affirming',
      nodeId: `bench-${i % 1000}`,
      challengeId: sha256Hex(`challenge ${i}`).slice(0, 32),
      time: 1_700_000_000_000 + i,
      evidenceDigest,
      policyId: policy.id,
      policyDigest,
      checks: [],
      failures,
      trustVector: refused ? bad : good,
      claims: {
        akName: `000b${sha256Hex(`ak ${i % 1000}`)}`,
        counters: { resetCount: 3, restartCount: 0, clock: String(1_000_000 + i), safe: true },
        firmwareVersion: '0x2000100000000',
        pcrs: { sha256: pcrs },
      },
    };
    const d = attestationDecision(appraisal, { challengeId: appraisal.challengeId, policy, boundKeyJwk, inputs: { evidence: evidenceDigest, context: sha256Hex(`context ${i}`), trust } });
    return { kind: 'appraise', nodeId: appraisal.nodeId, outcome: d.outcome, time: appraisal.time, body: d.body };
  };
}

// --- 9a: appends -------------------------------------------------------------------------------

interface AppendRun {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly count: number;
}

/**
 * Appends `count` decisions with `inFlight` callers, each awaiting its append before the next;
 * returns the rate over the whole run and the latency of one append (call to resolution).
 * The ledger head must move by exactly `count`.
 */
async function appendRun(store: Store, make: Decisions, from: number, count: number, inFlight: number): Promise<AppendRun> {
  const head0 = (await store.ledgerHead())?.seq ?? 0;
  const lat = new Float64Array(count);
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++;
        const d = make(from + i);
        const s = now();
        await store.appendDecision(d);
        lat[i] = now() - s;
      }
    }),
  );
  const wall = now() - t0;
  const head = (await store.ledgerHead())?.seq ?? 0;
  if (head !== head0 + count) throw new Error(`ledger head is ${head} after appending ${count} to ${head0}`);
  lat.sort();
  return { perSecond: count / (wall / 1e9), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), count };
}

async function appendRuns(out: Out, label: string, store: Store, make: Decisions, appends: number): Promise<void> {
  // Warm-up: statements prepared, pool connections opened, first pages of the file touched.
  await appendRun(store, make, 0, 64, 8);
  let from = 64;
  for (const inFlight of [1, 64]) {
    const count = inFlight === 1 ? Math.max(50, Math.floor(appends / 10)) : appends;
    const r = await appendRun(store, make, from, count, inFlight);
    from += count;
    out(`   ${label.padEnd(10)} ${String(inFlight).padStart(2)} in flight: ${fmt(r.perSecond).padStart(6)} appends/s over ${fmt(r.count)}; latency p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`);
  }
}

/** The filesystem type under `dir` (as `stat -f` names it), or "unknown". */
function fsType(dir: string): string {
  const r = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

async function appendBench(work: string, out: Out, make: Decisions): Promise<void> {
  const appends = Number(process.env['BENCH_LEDGER_APPENDS'] ?? 10_000);
  if (!Number.isSafeInteger(appends) || appends < 64) throw new Error('BENCH_LEDGER_APPENDS must be an integer >= 64');
  const sample = make(9);
  const sizes = [make(0), sample].map((d) => buildLedgerEntry({ seq: 1, prev: GENESIS_PREV, time: d.time, kind: d.kind, node: d.nodeId, outcome: d.outcome, body: d.body }).entry.length);
  out(`   bodies: attestationDecision over appraisal-shaped values; entries of ${sizes[0]} bytes (affirming) and ${sizes[1]} bytes (refused, one in ten); no retained inputs (an appraisal's evidence and context go with it through commitAttestation: part 2)`);

  const dir = join(work, 'ledger-append-sqlite');
  const sqlite = await SqliteStore.open({ dataDir: dir });
  try {
    const d = await sqlite.diagnostics();
    out(`   SQLite: journal ${d.journalMode}, ledger commits synchronous=FULL (one fsync per group commit), file on ${fsType(dir)}`);
    await appendRuns(out, 'SQLite', sqlite, make, appends);
  } finally {
    await sqlite.close();
  }

  const server = await startPostgres();
  try {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    let settings: Record<string, string>;
    try {
      const r = await c.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'server_version')");
      settings = Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
    } finally {
      await c.end();
    }
    const fsyncOff = settings['fsync'] === 'off';
    out(
      `   PostgreSQL ${settings['server_version'] ?? '?'} (throwaway server from test/helpers/postgres.ts, loopback TCP): fsync=${settings['fsync'] ?? '?'}, ` +
        `synchronous_commit=${settings['synchronous_commit'] ?? '?'}, full_page_writes=${settings['full_page_writes'] ?? '?'}` +
        (fsyncOff ? ' — the harness turns fsync off, so these commits are not durable and the figures are above what a production server gives' : ''),
    );
    const store = await PostgresStore.open({ url: server.url });
    try {
      await appendRuns(out, 'PostgreSQL', store, make, appends);
    } finally {
      await store.close();
    }
  } finally {
    await server.close();
  }
}

// --- 9c: whole-ledger verification ---------------------------------------------------------------

/** Every row from a store in pages of 10,000, as `vouch ledger verify` reads them; counts the bytes. */
async function* storeRows(store: Store, bytes: { n: number }): AsyncGenerator<ChainRow> {
  for (let next = 1; ; ) {
    const rows = await store.listDecisions(next, PAGE);
    for (const r of rows) {
      bytes.n += r.entry.length + r.hash.length;
      yield { seq: r.seq, entry: r.entry, hash: r.hash };
    }
    if (rows.length < PAGE) return;
    next = (rows[rows.length - 1] as DecisionRecord).seq + 1;
  }
}

async function allCheckpoints(store: Store): Promise<string[]> {
  const jws: string[] = [];
  for (let next = 1; ; ) {
    const cs = await store.listCheckpoints(next, PAGE);
    jws.push(...cs.map((c) => c.jws));
    if (cs.length < PAGE) return jws;
    next = (cs[cs.length - 1]?.treeSize ?? next) + 1;
  }
}

/** Throws unless `v` is a clean verification of `entries` entries under `checkpoints` checkpoints, all anchored. */
function mustVerify(v: Pick<LedgerVerification, 'ok' | 'entries' | 'chain' | 'checkpoints' | 'unanchored' | 'keys'>, entries: number, checkpoints: number, kid: string, what: string): void {
  const problems = [...v.chain.map((p) => `${p.code} at ${p.seq}`), ...v.checkpoints.problems.map((p) => p.code)];
  if (!v.ok || problems.length > 0) throw new Error(`${what}: the ledger did not verify: ${problems.slice(0, 5).join(', ')}`);
  if (v.entries !== entries) throw new Error(`${what}: verified ${v.entries} entries, the ledger holds ${entries}`);
  if (v.checkpoints.verified !== checkpoints || v.checkpoints.total !== checkpoints) throw new Error(`${what}: ${v.checkpoints.verified}/${v.checkpoints.total} checkpoints verified, ${checkpoints} signed`);
  if (v.unanchored !== 0) throw new Error(`${what}: ${v.unanchored} entries after the last checkpoint`);
  if (!v.keys.kids.includes(kid)) throw new Error(`${what}: the signing key ${kid} was not used`);
}

/** A CliIo that keeps what the command writes. */
function captureIo(): CliIo & { readonly stdout: string[]; readonly stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (s) => void stdout.push(s), err: (s) => void stderr.push(s) };
}

async function verifyBench(work: string, out: Out, make: Decisions): Promise<void> {
  const n = Number(process.env['BENCH_LEDGER_ENTRIES'] ?? 200_000);
  if (!Number.isSafeInteger(n) || n < 4) throw new Error('BENCH_LEDGER_ENTRIES must be an integer >= 4');
  const dataDir = join(work, 'ledger-verify');

  // The ledger, untimed: the signing key recorded first (as VerifierService.installTrustAnchors
  // does at start), appraisals with 256 in flight, a checkpoint after each quarter.
  let store = await SqliteStore.open({ dataDir });
  const signer = await ArtifactSigner.open(dataDir);
  const recorded = new Set<string>();
  // VerifierService.recordSigningKeys: each key of the keyring's JWKS not recorded yet.
  const recordSigningKeys = async (): Promise<void> => {
    for (const jwk of (await signer.currentJwks()).keys) {
      if (recorded.has(jwk.kid)) continue;
      const bytes = canonicalJsonBytes(jwk);
      const digest = sha256Hex(bytes);
      await store.appendDecision({
        kind: 'trust-anchor',
        nodeId: null,
        outcome: 'signing-key-added',
        time: Date.now(),
        body: { anchor: 'signing-key', kid: jwk.kid, jwk: { ...jwk }, jwkSha256: digest, trustSet: sha256Hex('bench trust anchors') },
        inputs: [{ digest, kind: 'signing-key', bytes }],
      });
      recorded.add(jwk.kid);
    }
  };
  await recordSigningKeys();
  const ledger = new LedgerService({ store, signer, clock: Date.now, verifierId: 'bench', recordSigningKeys });
  const quarters = 4;
  let filled = 0;
  const t0 = now();
  for (let q = 1; q <= quarters; q++) {
    const upTo = Math.floor((n * q) / quarters);
    await appendRun(store, make, filled, upTo - filled, 256);
    filled = upTo;
    const c = await ledger.checkpoint();
    if (c === null || c.treeSize !== filled + 1) throw new Error(`checkpoint of tree size ${c?.treeSize} after ${filled + 1} entries`);
  }
  const fillNs = now() - t0;
  const total = n + 1;
  await store.close();
  out(`   ledger: ${fmt(total)} entries (the signing-key record and ${fmt(n)} appraisals) appended with 256 in flight in ${sec(fillNs)} (${fmt(total / (fillNs / 1e9))}/s including 4 checkpoints), file ${(statSync(join(dataDir, 'vouch.sqlite')).size / 1e6).toFixed(1)} MB; not part of the figures below`);

  // Timed: read-only store, pages of 10,000, as `vouch ledger verify --data-dir`.
  store = await SqliteStore.open({ dataDir, readOnly: true });
  try {
    const readBytes = { n: 0 };
    let t = now();
    let rows = 0;
    for await (const _row of storeRows(store, readBytes)) rows++;
    const readNs = now() - t;
    if (rows !== total) throw new Error(`read ${rows} rows of ${total}`);

    const bytes = { n: 0 };
    t = now();
    const checkpoints = await allCheckpoints(store);
    const v = await verifyLedger({ rows: storeRows(store, bytes), checkpoints });
    const verifyNs = now() - t;
    mustVerify(v, total, quarters, signer.kid, 'verifyLedger');
    const mb = bytes.n / 1e6;
    out(`   verifyLedger from the store (keys recorded in the ledger, ${quarters} checkpoints): ${fmt(total)} entries in ${sec(verifyNs)} = ${fmt(total / (verifyNs / 1e9))} entries/s, ${(mb / (verifyNs / 1e9)).toFixed(1)} MB/s of ${mb.toFixed(1)} MB entry and hash bytes; OK, ${v.checkpoints.verified}/${v.checkpoints.total} checkpoints verified`);
    out(`     of which reading the pages alone: ${sec(readNs)} (${fmt(total / (readNs / 1e9))} rows/s)`);

    // Control: the same check must fail on a changed byte (a verification that cannot fail measures nothing).
    const prefix = Math.min(total, 20_000);
    const flipAt = Math.floor(prefix / 2);
    async function* tampered(): AsyncGenerator<ChainRow> {
      for await (const r of storeRows(store, { n: 0 })) {
        if (r.seq > prefix) return;
        if (r.seq !== flipAt) yield r;
        else {
          const entry = new Uint8Array(r.entry);
          entry[entry.length - 1] = (entry[entry.length - 1] as number) ^ 0x01;
          yield { ...r, entry };
        }
      }
    }
    const bad = await verifyLedger({ rows: tampered(), checkpoints });
    if (bad.ok || !bad.chain.some((p) => p.code === 'LEDGER_HASH_MISMATCH' && p.seq === flipAt)) throw new Error('control: a flipped byte was not found');
    out(`     control: the first ${fmt(prefix)} entries with one byte of entry ${fmt(flipAt)} flipped: ${bad.chain.map((p) => p.code).join(', ')}; ${bad.checkpoints.problems.length} checkpoints refused (${[...new Set(bad.checkpoints.problems.map((p) => p.code))].join(', ')})`);
  } finally {
    await store.close();
  }

  // `vouch ledger export` then `vouch ledger verify --from-export --jwks`, through the CLI's command functions.
  const file = join(work, 'ledger.jsonl');
  const jwksFile = join(work, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(await signer.currentJwks()));
  const exportIo = captureIo();
  let t = now();
  const exported = await ledgerExportCommand({ dataDir, inputs: true, verifierId: 'bench', out: file }, exportIo);
  const exportNs = now() - t;
  if (exported !== EXIT.ok) throw new Error(`vouch ledger export exited ${exported}: ${exportIo.stderr.join('')}`);
  const size = statSync(file).size;
  const verifyIo = captureIo();
  t = now();
  const code = await ledgerVerifyCommand({ fromExport: file, jwks: jwksFile, witness: [], json: true }, verifyIo);
  const fromExportNs = now() - t;
  const report = JSON.parse(verifyIo.stdout.join('')) as Pick<LedgerVerification, 'ok' | 'entries' | 'chain' | 'checkpoints' | 'unanchored' | 'keys'>;
  if (code !== EXIT.ok) throw new Error(`vouch ledger verify --from-export exited ${code}`);
  mustVerify(report, total, quarters, signer.kid, 'verify --from-export');
  if (report.keys.source !== 'pinned') throw new Error('verify --from-export did not use the pinned keys');
  out(`   vouch ledger export: ${(size / 1e6).toFixed(1)} MB in ${sec(exportNs)}; verify --from-export --jwks: ${sec(fromExportNs)} = ${fmt(total / (fromExportNs / 1e9))} entries/s, ${(size / 1e6 / (fromExportNs / 1e9)).toFixed(1)} MB/s of the file; OK, ${report.checkpoints.verified}/${report.checkpoints.total} checkpoints under the pinned key`);
}

/** Part 9: prints the lineage ledger figures through `out`; everything it creates is under `work`. */
export async function ledgerBench(work: string, out: Out): Promise<void> {
  out('\n9. Lineage ledger: appends, proofs at 1M entries, whole-ledger verification');
  const make = decisions();
  out('9a. Ledger appends (appendDecision, the real store code; latency = one append from call to commit)');
  await appendBench(work, out, make);
  out('\n9b. Merkle tree and proofs (bench/merkle.ts)');
  const t = now();
  await merkleBench(out);
  out(`  (9b took ${sec(now() - t)} in all)`);
  out('\n9c. Whole-ledger verification (chain + Merkle tree + checkpoints), SQLite');
  await verifyBench(work, out, make);
}
