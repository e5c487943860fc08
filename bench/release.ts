/**
 * Part 8 of `npm run bench` (issue #7): key release and job admission over HTTP on loopback.
 *
 * The verifier runs in its own process (`bench/main.ts --serve-release DIR`): the in-process
 * fixture's nodes each attest once through the real appraisal; a secret is stored through the
 * admin API; the release bodies (artifact + proof of possession of its cnf key) and admission
 * bodies are written for the load generator. autocannon in this process then sends
 * `POST /v1/secrets/{id}/release` (artifact verification, PoP, node state, release policy,
 * HPKE seal, ledger append) and `POST /v1/authorize` (relying-party token, node state, rules,
 * admission artifact signing, ledger append), and prints throughput and p50/p99 latency. Every
 * answer must be a release or an admission: anything else is counted and reported.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/verifier/app.js';
import { addToken, TokenRegistry } from '../src/verifier/auth.js';
import { SecretsMasterKey } from '../src/secrets/at-rest.js';
import { releaseProof } from '../src/agent/secret.js';
import { boundKeyPair, evidenceFor, fixture, loadRoute, spawnBenchServer, stopBenchServer } from './fixture.js';

const SECRET_ID = 'bench-secret';

interface ReleaseBenchPlan {
  readonly release: readonly string[];
  readonly admission: readonly string[];
  readonly rpToken: string;
}

/** The server side, in its own process: prints `listening URL` once the plan is written. */
export async function serveRelease(dir: string, out: (s: string) => void): Promise<void> {
  const f = await fixture(join(dir, 'release'), 64);
  const tokens = join(dir, 'release', 'tokens.json');
  const admin = addToken(tokens, { id: 'bench-admin', role: 'admin' }, { now: Date.now() }).token;
  const rpToken = addToken(tokens, { id: 'bench-rp', role: 'relying-party' }, { now: Date.now() }).token;
  const app = await buildApp(f.service, {
    rateLimitPerMinute: 1_000_000,
    tokens: TokenRegistry.load(tokens),
    secretsKey: SecretsMasterKey.generate(),
    admission: { resources: { 'gpu-pool': { groups: ['default'], actions: ['run-job'], maxAgeSeconds: 3600 } } },
  });
  const put = await app.inject({ method: 'PUT', url: `/v1/secrets/${SECRET_ID}`, headers: { authorization: `Bearer ${admin}` }, payload: { value: Buffer.from('a 32-byte data-encryption key...').toString('base64url'), releasePolicy: { groups: ['default'], evidence: ['tpm'] } } });
  if (put.statusCode !== 200) throw new Error(`bench secret not stored: ${put.body}`);
  const release: string[] = [];
  const admission: string[] = [];
  for (let i = 0; i < f.nodes.length; i++) {
    const r = await f.service.attest(await evidenceFor(f, i));
    if (r.decision !== 'affirming' || r.artifact === undefined) throw new Error(`bench node refused: ${JSON.stringify(r.failures)}`);
    release.push(JSON.stringify({ artifact: r.artifact, pop: releaseProof(SECRET_ID, r.ledger.hash, boundKeyPair.privateKey) }));
    admission.push(JSON.stringify({ node: r.nodeId, action: 'run-job', resource: 'gpu-pool' }));
  }
  const plan: ReleaseBenchPlan = { release, admission, rpToken };
  writeFileSync(join(dir, 'release-plan.json'), JSON.stringify(plan));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  out(`listening ${url}`);
  process.on('SIGTERM', () => {
    void app
      .close()
      .then(() => f.store.close())
      .then(() => process.exit(0));
  });
}

/** The load generator: spawns the server, then loads each route. */
export async function releaseBench(work: string, out: (s: string) => void, mainScript: string): Promise<void> {
  out('\n8. Key release and job admission over HTTP on loopback: autocannon in this process, the verifier in another');
  const { url, child } = await spawnBenchServer(mainScript, '--serve-release', work);
  try {
    const plan = JSON.parse(readFileSync(join(work, 'release-plan.json'), 'utf8')) as ReleaseBenchPlan;
    const amount = Number(process.env['BENCH_RELEASE_REQUESTS'] ?? '4000');
    const connections = Number(process.env['BENCH_RELEASE_CONNECTIONS'] ?? '10');
    const routes: Array<{ name: string; path: string; bodies: readonly string[]; headers: Record<string, string>; ok: string }> = [
      { name: 'release  POST /v1/secrets/{id}/release', path: `/v1/secrets/${SECRET_ID}/release`, bodies: plan.release, headers: { 'content-type': 'application/json' }, ok: '"decision":"released"' },
      { name: 'admission POST /v1/authorize          ', path: '/v1/authorize', bodies: plan.admission, headers: { 'content-type': 'application/json', authorization: `Bearer ${plan.rpToken}` }, ok: '"decision":"admitted"' },
    ];
    for (const r of routes) {
      const l = await loadRoute({ url, path: r.path, headers: r.headers, bodies: r.bodies, connections, amount, ok: (status, body) => status === 200 && body.includes(r.ok) });
      out(`   ${r.name} ${connections} connections: ${l.answered.toLocaleString('en-US')} answers in ${l.seconds.toFixed(2)} s = ${Math.round(l.perSecond).toLocaleString('en-US')}/s; latency p50 ${l.p50} ms, p99 ${l.p99} ms; not ${r.ok.split(':')[1]}: ${l.wrong}`);
      if (l.wrong > 0) throw new Error(`${l.wrong} ${r.path} answers were not ${r.ok}`);
    }
  } finally {
    await stopBenchServer(child);
  }
}

/** The path of bench/main.ts, which dispatches `--serve-release`. */
export const MAIN_SCRIPT = fileURLToPath(new URL('./main.ts', import.meta.url));
