/**
 * The in-process verifier the benchmarks load: SQLite store, signing key, a policy over sha256
 * PCRs 0-7, nodes enrolled with synthetic ECC AKs, and honest evidence made on demand for a
 * challenge issued through the service (the real code path, synthetic TPMs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { SqliteStore } from '../src/store/index.js';
import { ArtifactSigner } from '../src/artifact/index.js';
import { parsePolicy } from '../src/policy/index.js';
import { trustStoreFromCerts } from '../src/tpm/ek/index.js';
import { VerifierService, defaultRandom } from '../src/verifier/service.js';
import type { TpmNodeEvidence } from '../src/evidence/envelope.js';
import { tpmQualifyingData } from '../src/evidence/binding.js';
import { fromBase64Url } from '../src/lib/bytes.js';
import { TPM_ALG, encodeTpmtPublic, pcrSelection } from '../src/tpm/abi/index.js';
import { tpmName } from '../src/tpm/name.js';
import { syntheticAk, syntheticQuote, type SyntheticAk } from '../test/helpers/synthetic.js';

export interface Fixture {
  service: VerifierService;
  store: SqliteStore;
  signer: ArtifactSigner;
  nodes: Array<{ nodeId: string; ak: SyntheticAk; clock: bigint }>;
  pcrValue: Uint8Array;
}

export async function fixture(dir: string, nodeCount: number): Promise<Fixture> {
  const store = await SqliteStore.open({ dataDir: dir });
  const signer = await ArtifactSigner.open(dir);
  const pcrValue = new Uint8Array(createHash('sha256').update('bench').digest());
  const hex = Buffer.from(pcrValue).toString('hex');
  const policy = parsePolicy(
    `apiVersion: vouch/v1\nkind: AttestationPolicy\nid: bench\ntpm:\n  banks: [sha256]\n  pcrs:\n    sha256:\n${Array.from({ length: 8 }, (_, i) => `      "${i}": ["${hex}"]`).join('\n')}\nartifact:\n  lifetimeSeconds: 300\n`,
    'yaml',
  );
  let t = Date.now();
  const service = new VerifierService(
    { verifierId: 'bench', groups: new Map([['default', policy]]), ekTrust: trustStoreFromCerts([]), requireEkCertificate: false, challengeTtlMs: 3_600_000, enrollmentTtlMs: 60_000, maxActivationAttempts: 3 },
    { store, signer, clock: () => t++, random: defaultRandom },
  );
  await service.installPolicies();
  const nodes: Fixture['nodes'] = [];
  const ak = syntheticAk('ecc');
  for (let i = 0; i < nodeCount; i++) {
    // One AK per node would cost key generation only; the verification work is the same.
    const nodeAk = i === 0 ? ak : syntheticAk('ecc');
    const nodeId = `bench-${i}`;
    await store.enrollNode({ nodeId, group: 'default', ekPublic: new Uint8Array([1]), ekCert: null, akPublic: encodeTpmtPublic(nodeAk.public), akName: tpmName(nodeAk.public), enrolledAt: t });
    nodes.push({ nodeId, ak: nodeAk, clock: 1000n });
  }
  return { service, store, signer, nodes, pcrValue };
}

/** The agent key every benchmark node binds (the private half signs release proofs in part 8). */
export const boundKeyPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
export const boundKey = new Uint8Array(boundKeyPair.publicKey.export({ format: 'der', type: 'spki' }));

/** Creates a challenge through the service and the evidence an honest node would send for it. */
export async function evidenceFor(f: Fixture, i: number): Promise<TpmNodeEvidence> {
  const node = f.nodes[i % f.nodes.length]!;
  const ch = await f.service.challenge(node.nodeId);
  const pcrs = new Map([[TPM_ALG.SHA256, new Map(Array.from({ length: 8 }, (_, k) => [k, f.pcrValue] as const))]]);
  node.clock += 10n;
  const sel = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: ch.pcrSelection[0]!.pcrs }]);
  const q = syntheticQuote(node.ak, tpmQualifyingData(fromBase64Url(ch.nonce), boundKey), pcrs, sel, { clock: node.clock, resetCount: 1 });
  return { version: 1, challengeId: ch.challengeId, nodeId: node.nodeId, boundKey, tpm: { attest: q.attest, signature: q.signature, pcrs } };
}


/**
 * Starts a bench server process (`bench/main.ts FLAG DIR`) and resolves with its URL once it prints
 * `listening URL`, so the load generator never shares the server's event loop.
 */
export function spawnBenchServer(mainScript: string, flag: string, dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', mainScript, flag, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening (http:\/\/\S+)/.exec(buf);
      if (m !== null) res({ url: m[1] as string, child });
    });
    child.on('close', (code) => rej(new Error(`bench server exited with ${code}`)));
  });
}

/** Stops a bench server process and waits for it to exit. */
export async function stopBenchServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGTERM');
  await closed;
}

/** What {@link loadRoute} measured. */
export interface RouteLoad {
  readonly answered: number;
  /** Answers that failed `ok`. */
  readonly wrong: number;
  /** Answers per second, between the first and the last answer. */
  readonly perSecond: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * Sends `amount` POSTs to one route with autocannon, the bodies in turn, and counts the answers
 * `ok` refuses. The rate is taken between the first and the last answer: autocannon notices that
 * `amount` is reached only on its next one-second tick.
 */
export async function loadRoute(o: {
  readonly url: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly bodies: readonly (string | Buffer)[];
  readonly connections: number;
  readonly amount: number;
  readonly ok: (status: number, body: string) => boolean;
}): Promise<RouteLoad> {
  let next = 0;
  let wrong = 0;
  let first = 0n;
  let last = 0n;
  let answered = 0;
  const result = await autocannon({
    url: o.url,
    connections: o.connections,
    amount: o.amount,
    requests: [
      {
        method: 'POST',
        path: o.path,
        headers: o.headers,
        setupRequest: (req) => ({ ...req, body: o.bodies[next++ % o.bodies.length] }),
        onResponse: (status, body) => {
          if (!o.ok(status, body)) wrong++;
          const t = process.hrtime.bigint();
          if (first === 0n) first = t;
          last = t;
          answered++;
        },
      },
    ],
  });
  const seconds = Number(last - first) / 1e9;
  return { answered, wrong, perSecond: (answered - 1) / seconds, seconds, p50: result.latency.p50, p99: result.latency.p99 };
}
