/**
 * The vouch agent: enrolls its TPM once (node id and AK kept in its state directory), then
 * attests on demand or on an interval. It needs no inbound port: it pushes evidence.
 *
 * Each agent process holds an ephemeral P-256 key pair; the SPKI of its public half is bound into
 * every quote (src/evidence/binding.ts), so what the verifier authorizes is tied to this process.
 * The private half never leaves memory.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64Url, toBase64Url, toHex } from '../lib/bytes.js';
import { MisuseError, UnavailableError, isVouchError } from '../lib/errors.js';
import { hashByName } from '../tpm/abi/constants.js';
import { pcrSelection } from '../tpm/abi/pcr.js';
import { encodeEvidenceCbor, EVIDENCE_VERSION, type Evidence } from '../evidence/envelope.js';
import { teeReportData, tpmQualifyingData } from '../evidence/binding.js';
import type { TsmFs } from './tsm.js';
import { collectSnpReport } from './snp-report.js';
import { collectTdxQuote, readCcel, type CcelFs } from './tdx.js';
import type { SevGuestExtReportIoctl } from '../../native/sev-guest.js';
import { decodeTpmsAttest } from '../tpm/abi/attest.js';
import { encodeImaBinary, parseImaBinary } from '../eventlog/ima/index.js';
import { VerifierClient, type AttestationAnswer } from './client.js';
import type { TpmCollector } from './tpm.js';
import { fetchSecret, type FetchedSecret } from './secret.js';

/** What the agent keeps across restarts. */
export interface AgentState {
  readonly version: 1;
  readonly verifier: string;
  readonly nodeId: string;
  readonly group: string;
  readonly akName: string;
  readonly enrolledAt: string;
}

const STATE_FILE = 'agent-state.json';

/** Reads the agent state, or null when the agent has not enrolled yet. */
export async function readAgentState(stateDir: string): Promise<AgentState | null> {
  let text: string;
  try {
    text = await readFile(join(stateDir, STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UnavailableError('STORE_UNAVAILABLE', `agent state in ${stateDir} cannot be read`, { cause: e });
  }
  const s = JSON.parse(text) as Partial<AgentState>;
  if (s.version !== 1 || typeof s.nodeId !== 'string' || typeof s.akName !== 'string' || typeof s.group !== 'string' || typeof s.verifier !== 'string') {
    throw new UnavailableError('STORE_UNAVAILABLE', `agent state in ${stateDir} is not a version 1 state file`);
  }
  return s as AgentState;
}

async function writeAgentState(stateDir: string, s: AgentState): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `${STATE_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, join(stateDir, STATE_FILE));
}

/** One attestation's outcome, as the agent reports it. */
export interface AttestOutcome extends AttestationAnswer {
  readonly boundKeySpki: Uint8Array;
  /** Logs the agent was configured to send but did not find. */
  readonly missingLogs: readonly string[];
}

export interface AgentOptions {
  readonly verifier: VerifierClient;
  readonly tpm: TpmCollector;
  readonly stateDir: string;
  readonly group: string;
  /**
   * The UEFI event log to send (binary_bios_measurements); null sends none. A path that does
   * not exist sends none either, and the outcome says so: the verifier decides by policy.
   */
  readonly eventLogPath?: string | null;
  /**
   * The IMA binary measurement list (binary_runtime_measurements); null sends none. Only the
   * entries the verifier does not hold yet are sent.
   */
  readonly imaLogPath?: string | null;
  /**
   * Collect a SEV-SNP report (inside an SNP guest), REPORT_DATA bound to the challenge and the
   * agent's key, through configfs-tsm (`root`, `fs`) when the kernel has it, else through
   * /dev/sev-guest (`sevGuest`); undefined or null collects none.
   */
  readonly snp?: {
    readonly root?: string;
    readonly fs?: TsmFs;
    readonly sevGuest?: { readonly path?: string; readonly ioctl?: SevGuestExtReportIoctl };
  } | null;
  /**
   * Collect a TDX quote (inside a TDX trust domain), REPORTDATA bound to the challenge and the
   * agent's key, through configfs-tsm (`root`, `fs`; provider tdx_guest), and send the ACPI CCEL
   * table and log area when the firmware published them (`ccel` paths and reads); undefined or
   * null collects none. Never together with `snp`.
   */
  readonly tdx?: {
    readonly root?: string;
    readonly fs?: TsmFs;
    readonly ccel?: { readonly tablePath?: string; readonly dataPath?: string; readonly fs?: CcelFs };
  } | null;
}

/** Where Linux exposes the IMA measurement list. */
export const DEFAULT_IMA_PATH = '/sys/kernel/security/ima/binary_runtime_measurements';

/** Where Linux exposes the firmware event log. */
export const DEFAULT_EVENTLOG_PATH = '/sys/kernel/security/tpm0/binary_bios_measurements';

/** Reads a log file; null when it does not exist. */
async function readOptional(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UnavailableError('AGENT_LOG_UNREADABLE', `the log ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check permissions`, { cause: e });
  }
}

export class Agent {
  readonly #opts: AgentOptions;
  readonly #boundKey: { publicSpki: Uint8Array; privateKey: KeyObject };
  #state: AgentState | null = null;
  /** IMA entries the verifier holds for the boot `#imaBoot` (the next chunk starts there). */
  #imaNext = 0;
  #imaBoot: number | null = null;

  constructor(opts: AgentOptions) {
    if (opts.snp !== undefined && opts.snp !== null && opts.tdx !== undefined && opts.tdx !== null) {
      throw new MisuseError('MISUSE_ARGUMENT', 'snp and tdx exclude each other: a confidential VM is an SEV-SNP guest or a TDX trust domain', { field: 'tdx' });
    }
    this.#opts = opts;
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#boundKey = { publicSpki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })), privateKey };
  }

  /** The bound key's private half, for proofs of possession (never serialised). */
  get boundPrivateKey(): KeyObject {
    return this.#boundKey.privateKey;
  }

  get state(): AgentState | null {
    return this.#state;
  }

  /**
   * Enrolls unless the state directory says this TPM's AK already is. Returns the node id.
   * A state file whose AK name is not the TPM's AK (a different TPM, a cleared TPM) is an error
   * rather than a silent re-enrollment.
   */
  async ensureEnrolled(): Promise<string> {
    const id = this.#opts.tpm.identity;
    const existing = await readAgentState(this.#opts.stateDir);
    if (existing !== null) {
      if (existing.akName !== toHex(id.ak.name)) {
        throw new MisuseError('MISUSE_ARGUMENT', `the state in ${this.#opts.stateDir} belongs to another AK; remove it to enroll this TPM again`);
      }
      this.#state = existing;
      return existing.nodeId;
    }
    const ch = await this.#opts.verifier.enroll({
      group: this.#opts.group,
      ekPublic: toBase64Url(id.ek.public.raw ?? new Uint8Array(0)),
      ekCertificates: id.ekCertificates.map((c) => toBase64Url(c)),
      akPublic: toBase64Url(id.ak.public.raw ?? new Uint8Array(0)),
    });
    const secret = this.#opts.tpm.activate(fromBase64Url(ch.credentialBlob, 'credentialBlob'), fromBase64Url(ch.secret, 'secret'));
    const done = await this.#opts.verifier.activate(ch.enrollmentId, toBase64Url(secret));
    const state: AgentState = {
      version: 1,
      verifier: this.#opts.verifier.baseUrl,
      nodeId: done.nodeId,
      group: this.#opts.group,
      akName: done.akName,
      enrolledAt: new Date().toISOString(),
    };
    await writeAgentState(this.#opts.stateDir, state);
    this.#state = state;
    return done.nodeId;
  }

  /** Builds the evidence for a challenge: quote + PCR values (+ logs), bound to nonce and key. */
  async evidenceFor(nodeId: string): Promise<Evidence> {
    return (await this.#evidence(nodeId)).evidence;
  }

  async #evidence(nodeId: string): Promise<{ evidence: Evidence; missingLogs: string[] }> {
    const missingLogs: string[] = [];
    const logPath = this.#opts.eventLogPath === undefined ? DEFAULT_EVENTLOG_PATH : this.#opts.eventLogPath;
    // Read the log before the quote: a log read after it could hold events the quote does not cover.
    const eventLog = logPath === null ? null : await readOptional(logPath);
    if (logPath !== null && eventLog === null) missingLogs.push(logPath);
    const ch = await this.#opts.verifier.challenge(nodeId);
    const selection = pcrSelection(
      ch.pcrSelection.map((b) => {
        const h = hashByName(b.bank);
        if (h === undefined) throw new UnavailableError('VERIFIER_UNREACHABLE', `the verifier asked for unknown bank ${b.bank}`);
        return { hashAlg: h.id, pcrs: b.pcrs };
      }),
    );
    const nonce = fromBase64Url(ch.nonce, 'nonce');
    const imaPath = this.#opts.imaLogPath === undefined ? DEFAULT_IMA_PATH : this.#opts.imaLogPath;
    // The IMA list is read before the quote too: the verifier replays only up to the quoted PCR 10.
    const imaList = imaPath === null ? null : await readOptional(imaPath);
    if (imaPath !== null && imaList === null) missingLogs.push(imaPath);
    const q = this.#opts.tpm.quote(tpmQualifyingData(nonce, this.#boundKey.publicSpki), selection);
    let ima: { imaLog: Uint8Array; imaStart: number } | undefined;
    if (imaList !== null) {
      // A new boot (reset count) starts the list again from its first entry.
      const resetCount = decodeTpmsAttest(q.attest).clockInfo.resetCount;
      if (this.#imaBoot !== resetCount) {
        this.#imaBoot = resetCount;
        this.#imaNext = 0;
      }
      const entries = parseImaBinary(imaList).entries;
      if (this.#imaNext > entries.length) this.#imaNext = 0;
      ima = { imaLog: encodeImaBinary(entries.slice(this.#imaNext)), imaStart: this.#imaNext };
    }
    let snp: Evidence['snp'];
    if (this.#opts.snp !== undefined && this.#opts.snp !== null) {
      const r = await collectSnpReport({
        reportData: teeReportData(nonce, this.#boundKey.publicSpki),
        tsm: {
          ...(this.#opts.snp.root !== undefined ? { root: this.#opts.snp.root } : {}),
          ...(this.#opts.snp.fs !== undefined ? { fs: this.#opts.snp.fs } : {}),
        },
        ...(this.#opts.snp.sevGuest !== undefined ? { sevGuest: this.#opts.snp.sevGuest } : {}),
      });
      snp = { report: r.report, ...(r.certTable !== null ? { certTable: r.certTable } : {}) };
    }
    let tdx: Evidence['tdx'];
    if (this.#opts.tdx !== undefined && this.#opts.tdx !== null) {
      const t = this.#opts.tdx;
      // The CCEL before the quote, as the event log: the quote then covers at least what the log says.
      const ccel = await readCcel(t.ccel ?? {});
      const quote = await collectTdxQuote({
        reportData: teeReportData(nonce, this.#boundKey.publicSpki),
        tsm: { ...(t.root !== undefined ? { root: t.root } : {}), ...(t.fs !== undefined ? { fs: t.fs } : {}) },
      });
      tdx = { quote, ...(ccel !== null ? { ccelTable: ccel.table, ccelData: ccel.data } : {}) };
    }
    const evidence: Evidence = {
      version: EVIDENCE_VERSION,
      challengeId: ch.challengeId,
      nodeId,
      boundKey: this.#boundKey.publicSpki,
      tpm: { attest: q.attest, signature: q.signature, pcrs: q.pcrs, ...(eventLog !== null ? { eventLog } : {}), ...(ima ?? {}) },
      ...(snp !== undefined ? { snp } : {}),
      ...(tdx !== undefined ? { tdx } : {}),
    };
    return { evidence, missingLogs };
  }

  /** One attestation: challenge → quote → evidence → decision. */
  async attestOnce(): Promise<AttestOutcome> {
    const nodeId = await this.ensureEnrolled();
    const { evidence, missingLogs } = await this.#evidence(nodeId);
    const answer = await this.#opts.verifier.attest(encodeEvidenceCbor(evidence));
    // Continue the IMA list where the verifier's state now is.
    const held = answer.ima?.entries ?? answer.appraisal?.claims?.runtime?.entries;
    const mismatch = answer.failures?.find((f) => f.code === 'IMA_STATE_MISMATCH' && f.field === 'evidence.tpm.imaStart');
    if (held !== undefined) this.#imaNext = held;
    else if (mismatch?.expected !== undefined && /^[0-9]+$/.test(mismatch.expected)) this.#imaNext = Number(mismatch.expected);
    return { ...answer, boundKeySpki: this.#boundKey.publicSpki, missingLogs };
  }

  /**
   * Attests once and, if affirmed, asks the key broker for `secretId` with the fresh artifact and
   * a proof of its bound key; a TPM-bound answer is opened with this TPM (ActivateCredential).
   * `secret` is null when the attestation was refused (nothing is asked for then).
   *
   * @throws VerifierRefusal when the broker refuses (every reason in `failures`)
   */
  async attestAndFetchSecret(secretId: string, opts: { readonly tpmBound?: boolean } = {}): Promise<{ attestation: AttestOutcome; secret: FetchedSecret | null }> {
    const attestation = await this.attestOnce();
    if (attestation.decision !== 'affirming' || attestation.artifact === undefined) return { attestation, secret: null };
    const secret = await fetchSecret({
      client: this.#opts.verifier,
      secretId,
      artifact: attestation.artifact,
      ledger: attestation.ledger,
      boundKey: this.#boundKey.privateKey,
      ...(opts.tpmBound === true ? { tpmBound: true } : {}),
      activate: (blob, encrypted) => this.#opts.tpm.activate(blob, encrypted),
    });
    return { attestation, secret };
  }

  /**
   * Attests every `intervalMs` until `signal` aborts. A verifier that cannot be reached is retried
   * with exponential backoff (1 s doubling to `intervalMs`); other errors end the loop.
   */
  async run(intervalMs: number, signal: AbortSignal, onOutcome: (o: AttestOutcome | Error) => void): Promise<void> {
    let backoff = 1000;
    while (!signal.aborted) {
      let wait = intervalMs;
      try {
        onOutcome(await this.attestOnce());
        backoff = 1000;
      } catch (e) {
        if (!(isVouchError(e) && e.code === 'VERIFIER_UNREACHABLE')) throw e;
        onOutcome(e);
        wait = Math.min(backoff, intervalMs);
        backoff = Math.min(backoff * 2, intervalMs);
      }
      await sleep(wait, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
