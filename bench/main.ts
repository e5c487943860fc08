/**
 * `npm run bench`: measures the real code paths and prints what it measured.
 *
 * 1. TPM quote verification (issue #2): quotes taken from a real swtpm with a P-256 and an
 *    RSA-2048 AK, verified in-process by verifyQuote, next to the bare signature verification
 *    with the same cached key over the same bytes; the ratio is the share of the bare rate.
 * 2. Full in-process appraisal (issue #3): VerifierService.attest — evidence already decoded,
 *    challenge consumption, quote verification, policy, counter update, ledger append (SQLite,
 *    synchronous=FULL), artifact signing — next to the limit measured in the same run: bare
 *    quote-signature verification + artifact signing.
 * 7. Intel TDX (issue #6, bench/tdx.ts): quote verification and appraisal with cached collateral
 *    next to its two bare P-256 verifications, and the cold path.
 * 3. HTTP end to end (issue #3): autocannon on loopback posting CBOR evidence to
 *    /v1/attestations; throughput and p50/p99 latency.
 * 8. Key release and job admission over HTTP (issue #7, bench/release.ts): requests per second
 *    and p50/p99 latency of POST /v1/secrets/{id}/release and POST /v1/authorize.
 * 9. Lineage ledger (bench/ledger.ts): appendDecision per second and p50/p99 latency on SQLite
 *    and PostgreSQL, 1 and 64 in flight; inclusion and consistency proofs at 1M entries
 *    (bench/merkle.ts); whole-ledger verification from the store and from an export.
 * Targets (goals, printed next to the figures): ratios ≥ 60 %, HTTP ≥ 3,000/s with p99 < 20 ms.
 * Knobs: BENCH_ONLY (parts), BENCH_IN_FLIGHT (part 2), BENCH_HTTP_CONNECTIONS and BENCH_HTTP_REQUESTS
 * (part 3), BENCH_PROF_DIR (a CPU profile of the HTTP server under load), BENCH_LEDGER_ENTRIES,
 * BENCH_LEDGER_APPENDS and BENCH_MERKLE_LEAVES (part 9).
 */
import { constants as C, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionSwtpm, startSwtpm } from '../swtpm/index.js';
import { Tpm } from '../native/index.js';
import { TPM_ALG, decodeTpmtSignature, pcrSelection, type TpmtSignature } from '../src/tpm/abi/index.js';
import { importTpmPublic, verifyQuote, padTo, type TpmVerifyKey } from '../src/tpm/verify/index.js';
import { issueArtifact, toPublicJwk } from '../src/artifact/index.js';
import { buildApp } from '../src/verifier/app.js';
import { decodeEvidenceCborWithDigest, encodeEvidenceCbor, type TpmNodeEvidence } from '../src/evidence/envelope.js';
import { boundKey, evidenceFor, fixture, loadRoute, spawnBenchServer, stopBenchServer } from './fixture.js';
import { MAIN_SCRIPT, releaseBench, serveRelease } from './release.js';
import { eventlogBench } from './eventlog.js';
import { imaBench } from './ima.js';
import { snpBench } from './snp.js';
import { tdxBench } from './tdx.js';
import { ledgerBench } from './ledger.js';
import { compareRates } from './measure.js';

const out = (s = ''): void => void process.stdout.write(`${s}\n`);
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');


function bareVerify(ak: TpmVerifyKey, sig: TpmtSignature, msg: Uint8Array): boolean {
  if (sig.sigAlg === TPM_ALG.ECDSA && ak.curve !== undefined) {
    return cryptoVerify('sha256', msg, { key: ak.key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([padTo(sig.r, 32)!, padTo(sig.s, 32)!]));
  }
  if (sig.sigAlg === TPM_ALG.RSASSA) return cryptoVerify('sha256', msg, { key: ak.key, padding: C.RSA_PKCS1_PADDING }, sig.sig);
  throw new Error('unexpected signature');
}

async function quoteBench(work: string): Promise<void> {
  out('1. TPM quote verification on swtpm quotes (sha256 PCRs 0-23)');
  const made = await provisionSwtpm({ dir: join(work, 'tpm') });
  const sw = await startSwtpm({ stateDir: made.stateDir });
  const tpm = Tpm.open(sw.tcti);
  try {
    const ek = tpm.createEk('rsa2048');
    const selection = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    const pcrs = tpm.pcrRead(selection);
    for (const kind of ['ecc-p256', 'rsa2048'] as const) {
      const ak = tpm.createAk(ek, kind);
      const quotes = Array.from({ length: 32 }, () => {
        const nonce = new Uint8Array(randomBytes(32));
        return { nonce, ...tpm.quote(ak, nonce, selection) };
      });
      tpm.flush(ak);
      const key = importTpmPublic(ak.public);
      for (const q of quotes) {
        const r = verifyQuote({ ak: key, attest: q.attest, signature: q.signature, expectedExtraData: q.nonce, expectedSelection: selection, pcrs });
        if (!r.ok) throw new Error(`a genuine swtpm quote did not verify: ${JSON.stringify(r.failures)}`);
      }
      const sigs = quotes.map((q) => decodeTpmtSignature(q.signature));
      const { a: full, b: bare } = compareRates(
        9,
        300,
        (i) => {
          const q = quotes[i % quotes.length]!;
          if (!verifyQuote({ ak: key, attest: q.attest, signature: q.signature, expectedExtraData: q.nonce, expectedSelection: selection, pcrs }).ok) throw new Error('verify failed');
        },
        (i) => {
          const j = i % quotes.length;
          if (!bareVerify(key, sigs[j]!, quotes[j]!.attest)) throw new Error('bare verify failed');
        },
      );
      out(`   ${kind.padEnd(9)} verifyQuote ${fmt(full).padStart(7)}/s   bare signature verify ${fmt(bare).padStart(7)}/s   ratio ${pct(full / bare)} (goal ≥ 60 %)`);
    }
    tpm.flush(ek);
  } finally {
    tpm.close();
    await sw.stop();
  }
}

async function appraisalBench(work: string): Promise<void> {
  out('\n2. Full in-process appraisal (CBOR parse, challenge consumption, quote, policy, counters, ledger append, artifact), 16 in flight');
  const f = await fixture(join(work, 'inproc'), 64);
  try {
    const count = 3000;
    const evidence: TpmNodeEvidence[] = [];
    for (let i = 0; i < count; i++) evidence.push(await evidenceFor(f, i));
    const bodies = evidence.map((e) => encodeEvidenceCbor(e));
    // 16 submissions in flight, as a server sees them: the ledger commits them in groups.
    // Each is parsed from its CBOR body as the HTTP route does (the digest is taken over those bytes).
    const concurrency = Number(process.env['BENCH_IN_FLIGHT'] ?? '16');
    let next = 0;
    const profile = await startProfile();
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const body = bodies[next++]!;
          const { evidence: e, digest } = decodeEvidenceCborWithDigest(body);
          const r = await f.service.attest(e, { evidenceDigest: digest, evidenceBytes: body });
          if (r.decision !== 'affirming') throw new Error(`bench evidence refused: ${JSON.stringify(r.failures)}`);
        }
      }),
    );
    const full = { perSecond: count / (Number(process.hrtime.bigint() - t0) / 1e9), done: count };
    const elu = performance.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    await profile('appraisal');
    // The limit: the two steps no implementation can skip — the quote signature and the artifact signature.
    const ak = importTpmPublic(f.nodes[0]!.ak.public);
    const e0 = evidence[0]!;
    const sig0 = decodeTpmtSignature(e0.tpm.signature);
    const jwk = toPublicJwk(boundKey);
    const payload = { now: 1_700_000_000, lifetimeSeconds: 300, verifierId: 'bench', nodeId: 'bench-0', submods: { tpm0: { status: 'affirming' as const, trustVector: { 'instance-identity': 2, hardware: 2 } } }, policyId: 'bench', policyDigest: 'a'.repeat(64), evidenceDigest: 'b'.repeat(64), boundKeyJwk: jwk };
    let n = 0;
    const start = process.hrtime.bigint();
    const end = start + 3_000_000_000n;
    while (process.hrtime.bigint() < end) {
      if (!bareVerify(ak, sig0, e0.tpm.attest)) throw new Error('bare verify failed');
      await issueArtifact(f.signer, { ...payload, ledger: { seq: n + 1, hash: 'c'.repeat(64) } });
      n++;
    }
    const limit = n / (Number(process.hrtime.bigint() - start) / 1e9);
    out(`   appraisals ${fmt(full.perSecond)}/s over ${full.done}   limit (quote verify + artifact sign) ${fmt(limit)}/s   ratio ${pct(full.perSecond / limit)} (goal ≥ 60 %)`);
    out(`   event loop busy ${pct(elu.utilization)}; process CPU ${fmt((cpu.user + cpu.system) / count)} µs per appraisal (user ${fmt(cpu.user / count)}, system ${fmt(cpu.system / count)}) vs ${fmt(1e6 / limit)} µs for the limit's two signatures`);
  } finally {
    await f.store.close();
  }
}

/**
 * BENCH_PROF_DIR=dir: starts a CPU profile; the returned function stops it and writes
 * dir/NAME-PID.cpuprofile. Without the knob both are no-ops.
 */
async function startProfile(): Promise<(name: string) => Promise<void>> {
  const profDir = process.env['BENCH_PROF_DIR'];
  if (profDir === undefined) return async () => {};
  const session = new Session();
  session.connect();
  await new Promise<void>((r) => session.post('Profiler.enable', () => session.post('Profiler.start', () => r())));
  return (name) =>
    new Promise<void>((r) =>
      session.post('Profiler.stop', (_e: Error | null, res: { profile: object }) => {
        writeFileSync(join(profDir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
        session.disconnect();
        r();
      }),
    );
}

/**
 * The HTTP server side of part 3, run in its own process (`bench/main.ts --serve DIR`), so the
 * load generator does not share the server's event loop: builds the fixture, writes the
 * evidence bodies for the load generator to DIR/bodies.bin, listens, prints its URL.
 */
async function serve(dir: string): Promise<void> {
  const f = await fixture(join(dir, 'http'), 2048);
  const app = await buildApp(f.service, { rateLimitPerMinute: 1_000_000 });
  const count = Number(process.env['BENCH_HTTP_REQUESTS'] ?? '8000');
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(encodeEvidenceCbor(await evidenceFor(f, i)));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    parts.push(len, body);
  }
  writeFileSync(join(dir, 'bodies.bin'), Buffer.concat(parts));
  // BENCH_PROF_DIR=dir writes a CPU profile of the server under load (fixture building excluded).
  const profile = await startProfile();
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  out(`listening ${url}`);
  process.on('SIGTERM', () => {
    void profile('server')
      .then(() => app.close())
      .then(() => f.store.close())
      .then(() => process.exit(0));
  });
}

async function httpBench(work: string): Promise<void> {
  out('\n3. HTTP end to end: POST /v1/attestations (CBOR) on loopback, autocannon in this process, the verifier in another');
  // BENCH_PROF_DIR=dir writes a CPU profile of the server process there.
  const { url, child } = await spawnBenchServer(fileURLToPath(import.meta.url), '--serve', work);
  try {
    const raw = readFileSync(join(work, 'bodies.bin'));
    const bodies: Buffer[] = [];
    for (let o = 0; o < raw.length; ) {
      const n = raw.readUInt32BE(o);
      bodies.push(raw.subarray(o + 4, o + 4 + n));
      o += 4 + n;
    }
    const conns = (process.env['BENCH_HTTP_CONNECTIONS'] ?? '10,32').split(',').map(Number);
    for (const connections of conns) {
      // Each run uses its own share of the evidence: a challenge can be used once.
      const share = Math.floor(bodies.length / conns.length);
      const k = conns.indexOf(connections);
      const slice = bodies.slice(k * share, (k + 1) * share);
      const l = await loadRoute({ url, path: '/v1/attestations', headers: { 'content-type': 'application/cbor' }, bodies: slice, connections, amount: slice.length, ok: (status) => status === 200 });
      out(`   ${String(connections).padStart(2)} connections: ${fmt(l.answered)} answers in ${l.seconds.toFixed(2)} s = ${fmt(l.perSecond)}/s; latency p50 ${l.p50} ms, p99 ${l.p99} ms; non-200: ${l.wrong}`);
    }
    out('   (goal ≥ 3,000/s with p99 < 20 ms)');
  } finally {
    await stopBenchServer(child);
  }
}

/** Diagnostic (BENCH_ONLY=inject): the HTTP route through fastify's inject, no sockets, 16 in flight. */
async function injectBench(work: string): Promise<void> {
  out('\n2b. POST /v1/attestations through fastify inject (no sockets), 16 in flight');
  const f = await fixture(join(work, 'inject'), 256);
  const app = await buildApp(f.service, { rateLimitPerMinute: 1_000_000 });
  try {
    const count = 3000;
    const bodies: Buffer[] = [];
    for (let i = 0; i < count; i++) bodies.push(Buffer.from(encodeEvidenceCbor(await evidenceFor(f, i))));
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const res = await app.inject({ method: 'POST', url: '/v1/attestations', headers: { 'content-type': 'application/cbor' }, payload: bodies[next++] });
          if (res.statusCode !== 200) throw new Error(`refused: ${res.body}`);
        }
      }),
    );
    out(`   ${fmt(count / (Number(process.hrtime.bigint() - t0) / 1e9))}/s`);
  } finally {
    await app.close();
    await f.store.close();
  }
}

async function main(): Promise<void> {
  const serveAt = process.argv.indexOf('--serve');
  if (serveAt !== -1) return serve(process.argv[serveAt + 1] as string);
  const serveReleaseAt = process.argv.indexOf('--serve-release');
  if (serveReleaseAt !== -1) return serveRelease(process.argv[serveReleaseAt + 1] as string, out);
  const work = mkdtempSync(join(tmpdir(), 'vouch-bench-'));
  try {
    out(`vouch benchmarks — node ${process.version}, ${new Date().toISOString()}`);
    // BENCH_ONLY=1,3 runs a subset (for profiling one part).
    const only = (process.env['BENCH_ONLY'] ?? '1,2,3,4,5,6,7,8,9').split(',');
    if (only.includes('1')) await quoteBench(work);
    if (only.includes('2')) await appraisalBench(work);
    if (only.includes('inject')) await injectBench(work);
    if (only.includes('4')) await eventlogBench(out);
    if (only.includes('5')) await imaBench(out);
    if (only.includes('6')) await snpBench(out);
    if (only.includes('7')) await tdxBench(out);
    if (only.includes('3')) await httpBench(work);
    if (only.includes('8')) await releaseBench(work, out, MAIN_SCRIPT);
    if (only.includes('9')) await ledgerBench(work, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
