/**
 * The agent of an SNP-only node: a confidential VM on AMD SEV-SNP without a vTPM.
 *
 * Its identity is a long-term ECDSA P-256 node key, generated once inside the CVM and kept in
 * the state directory (`node-key.pem`, PKCS#8, mode 0600; never logged, never sent). Enrollment
 * (POST /v1/enrollments/snp, then /v1/enrollments/snp/:id) sends the public key, gets a nonce,
 * and returns an SEV-SNP report whose REPORT_DATA is teeReportData(nonce, node key) with a key
 * proof: the node key's signature over (nonce, SHA-256(report)) (src/evidence/binding.ts). Each
 * attestation does the same with a challenge's nonce and binds the node key as the evidence's
 * bound key, so the artifact's `cnf` is the node key.
 *
 * Reports come from collectSnpReport (configfs-tsm, else /dev/sev-guest).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64Url, toBase64Url } from '../lib/bytes.js';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { EVIDENCE_VERSION, encodeEvidenceCbor, type SnpOnlyEvidence } from '../evidence/envelope.js';
import { teeReportData } from '../evidence/binding.js';
import { signNodeKeyProof } from '../evidence/key-proof.js';
import type { ChallengeResponse } from '../verifier/service.js';
import type { SevGuestExtReportIoctl } from '../../native/sev-guest.js';
import type { TsmFs } from './tsm.js';
import { collectSnpReport, type CollectedSnpReport } from './snp-report.js';
import type { VerifierClient } from './client.js';
import type { AttestOutcome } from './agent.js';

/** The node key's file in the state directory. */
export const NODE_KEY_FILE = 'node-key.pem';
const STATE_FILE = 'snp-agent-state.json';

/** What an SNP-only agent keeps across restarts (next to its node key). */
export interface SnpAgentState {
  readonly version: 1;
  readonly kind: 'snp';
  readonly verifier: string;
  readonly nodeId: string;
  readonly group: string;
  /** SHA-256 (hex) of the node key's SPKI: the state belongs to that key only. */
  readonly nodeKeySha256: string;
  readonly enrolledAt: string;
}

/** Options of {@link SnpOnlyAgent}. */
export interface SnpOnlyAgentOptions {
  readonly verifier: VerifierClient;
  readonly stateDir: string;
  readonly group: string;
  /** Where reports come from (tests inject an emulated configfs-tsm or sev-guest driver). */
  readonly snp?: {
    readonly root?: string;
    readonly fs?: TsmFs;
    readonly sevGuest?: { readonly path?: string; readonly ioctl?: SevGuestExtReportIoctl };
  };
}

/** The node key: loaded from the state directory, or generated and written there once. */
export async function loadOrCreateNodeKey(stateDir: string): Promise<{ privateKey: KeyObject; publicSpki: Uint8Array }> {
  const file = join(stateDir, NODE_KEY_FILE);
  let pem: string | null = null;
  try {
    const st = await stat(file);
    // The private key must be the agent's alone.
    if ((st.mode & 0o077) !== 0) throw new MisuseError('MISUSE_FILE_UNREADABLE', `${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    pem = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (e instanceof MisuseError) throw e;
      throw new UnavailableError('STORE_UNAVAILABLE', `the node key in ${stateDir} cannot be read`, { cause: e });
    }
  }
  if (pem === null) {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const text = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    try {
      // 'wx': never overwrite a key another process wrote in the meantime.
      await writeFile(file, text, { mode: 0o600, flag: 'wx' });
      pem = text;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UnavailableError('STORE_UNAVAILABLE', `the node key cannot be written to ${stateDir}`, { cause: e });
      pem = await readFile(file, 'utf8');
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (cause) {
    // The message names the file only: never the key material.
    throw new UnavailableError('STORE_UNAVAILABLE', `${file} is not a PKCS#8 private key`, { cause });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new UnavailableError('STORE_UNAVAILABLE', `${file} is not an ECDSA P-256 key`);
  }
  const publicSpki = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  return { privateKey, publicSpki };
}

async function readSnpAgentState(stateDir: string): Promise<SnpAgentState | null> {
  let text: string;
  try {
    text = await readFile(join(stateDir, STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UnavailableError('STORE_UNAVAILABLE', `agent state in ${stateDir} cannot be read`, { cause: e });
  }
  const s = JSON.parse(text) as Partial<SnpAgentState>;
  if (s.version !== 1 || s.kind !== 'snp' || typeof s.nodeId !== 'string' || typeof s.nodeKeySha256 !== 'string' || typeof s.group !== 'string' || typeof s.verifier !== 'string') {
    throw new UnavailableError('STORE_UNAVAILABLE', `agent state in ${stateDir} is not a version 1 SNP-only state file`);
  }
  return s as SnpAgentState;
}

async function writeSnpAgentState(stateDir: string, s: SnpAgentState): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `${STATE_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, join(stateDir, STATE_FILE));
}

export class SnpOnlyAgent {
  readonly #opts: SnpOnlyAgentOptions;
  #key: { privateKey: KeyObject; publicSpki: Uint8Array } | null = null;
  #state: SnpAgentState | null = null;

  constructor(opts: SnpOnlyAgentOptions) {
    this.#opts = opts;
  }

  get state(): SnpAgentState | null {
    return this.#state;
  }

  async #nodeKey(): Promise<{ privateKey: KeyObject; publicSpki: Uint8Array }> {
    this.#key ??= await loadOrCreateNodeKey(this.#opts.stateDir);
    return this.#key;
  }

  /** The node key's public SPKI (created on first use). */
  async nodeKeySpki(): Promise<Uint8Array> {
    return (await this.#nodeKey()).publicSpki;
  }

  async #report(nonce: Uint8Array, spki: Uint8Array): Promise<CollectedSnpReport> {
    const snp = this.#opts.snp ?? {};
    return collectSnpReport({
      reportData: teeReportData(nonce, spki),
      tsm: { ...(snp.root !== undefined ? { root: snp.root } : {}), ...(snp.fs !== undefined ? { fs: snp.fs } : {}) },
      ...(snp.sevGuest !== undefined ? { sevGuest: snp.sevGuest } : {}),
    });
  }

  /**
   * Enrolls unless the state directory says this node key already is. Returns the node id. A
   * state file of another key is an error, never a silent re-enrollment.
   */
  async ensureEnrolled(): Promise<string> {
    const key = await this.#nodeKey();
    const keySha = createHash('sha256').update(key.publicSpki).digest('hex');
    const existing = await readSnpAgentState(this.#opts.stateDir);
    if (existing !== null) {
      if (existing.nodeKeySha256 !== keySha) throw new MisuseError('MISUSE_ARGUMENT', `the state in ${this.#opts.stateDir} belongs to another node key; remove it to enroll again`);
      this.#state = existing;
      return existing.nodeId;
    }
    const ch = await this.#opts.verifier.enrollSnp({ group: this.#opts.group, nodeKey: toBase64Url(key.publicSpki) });
    const nonce = fromBase64Url(ch.nonce, 'nonce');
    const r = await this.#report(nonce, key.publicSpki);
    const done = await this.#opts.verifier.completeSnpEnrollment(ch.enrollmentId, {
      report: toBase64Url(r.report),
      ...(r.certTable !== null ? { certTable: toBase64Url(r.certTable) } : {}),
      keyProof: toBase64Url(signNodeKeyProof(key.privateKey, nonce, r.report)),
    });
    const state: SnpAgentState = {
      version: 1,
      kind: 'snp',
      verifier: this.#opts.verifier.baseUrl,
      nodeId: done.nodeId,
      group: this.#opts.group,
      nodeKeySha256: keySha,
      enrolledAt: new Date().toISOString(),
    };
    await writeSnpAgentState(this.#opts.stateDir, state);
    this.#state = state;
    return done.nodeId;
  }

  /** The SNP-only evidence for a challenge: a report bound to its nonce and the node key, and the key proof. */
  async evidenceFor(nodeId: string, ch: ChallengeResponse): Promise<SnpOnlyEvidence> {
    const key = await this.#nodeKey();
    const nonce = fromBase64Url(ch.nonce, 'nonce');
    const r = await this.#report(nonce, key.publicSpki);
    return {
      version: EVIDENCE_VERSION,
      challengeId: ch.challengeId,
      nodeId,
      boundKey: key.publicSpki,
      snp: { report: r.report, ...(r.certTable !== null ? { certTable: r.certTable } : {}) },
      keyProof: signNodeKeyProof(key.privateKey, nonce, r.report),
    };
  }

  /** One attestation: challenge → report + key proof → decision. */
  async attestOnce(): Promise<AttestOutcome> {
    const nodeId = await this.ensureEnrolled();
    const ch = await this.#opts.verifier.challenge(nodeId);
    const evidence = await this.evidenceFor(nodeId, ch);
    const answer = await this.#opts.verifier.attest(encodeEvidenceCbor(evidence));
    return { ...answer, boundKeySpki: evidence.boundKey, missingLogs: [] };
  }

  /**
   * Attests every `intervalMs` until `signal` aborts; an unreachable verifier is retried with
   * exponential backoff (1 s doubling to `intervalMs`), other errors end the loop.
   */
  async run(intervalMs: number, signal: AbortSignal, onOutcome: (o: AttestOutcome | Error) => void): Promise<void> {
    let backoff = 1000;
    while (!signal.aborted) {
      let wait = intervalMs;
      try {
        onOutcome(await this.attestOnce());
        backoff = 1000;
      } catch (e) {
        if (!(e instanceof UnavailableError && e.code === 'VERIFIER_UNREACHABLE')) throw e;
        onOutcome(e);
        wait = Math.min(backoff, intervalMs);
        backoff = Math.min(backoff * 2, intervalMs);
      }
      await new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        const t = setTimeout(resolve, wait);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    }
  }
}
