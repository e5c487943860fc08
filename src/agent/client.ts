/**
 * The agent's client of the verifier API. Errors come back as VouchErrors with the verifier's
 * registry code; a verifier that cannot be reached (or answers 5xx) is VERIFIER_UNREACHABLE, which
 * the attestation loop retries with backoff.
 */
import { ERRORS, UnavailableError, vouchError, type ErrorCode } from '../lib/errors.js';
import type { ChallengeResponse, EnrollChallenge, SnpEnrollChallenge, SnpEnrollCompletion, SnpEnrollRequest } from '../verifier/service.js';
import type { Failure } from '../lib/failure.js';
import type { Released } from '../secrets/broker.js';

/** The verifier's answer to an evidence submission. */
export interface AttestationAnswer {
  readonly decision: 'affirming' | 'contraindicated';
  readonly nodeId: string;
  readonly artifact?: string;
  readonly ledger: { readonly seq: number; readonly hash: string };
  readonly failures?: readonly Failure[];
  /** IMA entries of this boot the verifier holds (the next chunk starts there). */
  readonly ima?: { readonly entries: number };
  /** The recorded appraisal, on refusals. */
  readonly appraisal?: { readonly claims?: { readonly runtime?: { readonly entries: number } } };
}

interface ErrorAnswer {
  error?: { code?: string; message?: string; field?: string };
  failures?: Failure[];
}

/** An error answer, with the failures the verifier listed. */
export class VerifierRefusal extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly failures: readonly Failure[];
  constructor(code: ErrorCode, status: number, message: string, failures: readonly Failure[]) {
    super(message);
    this.name = 'VerifierRefusal';
    this.code = code;
    this.status = status;
    this.failures = failures;
  }
}

export class VerifierClient {
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, opts: { timeoutMs?: number } = {}) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
  }

  get baseUrl(): string {
    return this.#base;
  }

  async #send(method: string, path: string, body: Uint8Array | object | undefined, contentType = 'application/json'): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': contentType },
        body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      throw new UnavailableError('VERIFIER_UNREACHABLE', `${method} ${path}: the verifier at ${this.#base} could not be reached`, { cause });
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch (cause) {
      throw new UnavailableError('VERIFIER_UNREACHABLE', `${method} ${path}: answer ${res.status} is not JSON`, { cause });
    }
    if (res.status >= 500) {
      const e = (json as ErrorAnswer).error;
      throw new UnavailableError('VERIFIER_UNREACHABLE', `${method} ${path}: verifier error ${res.status}${e?.code !== undefined ? ` ${e.code}` : ''}`);
    }
    return { status: res.status, json };
  }

  #refusal(status: number, json: unknown): VerifierRefusal {
    const a = json as ErrorAnswer;
    const code = a.error?.code !== undefined && a.error.code in ERRORS ? (a.error.code as ErrorCode) : 'REQUEST_MALFORMED';
    return new VerifierRefusal(code, status, a.error?.message ?? `verifier answered ${status}`, a.failures ?? []);
  }

  async enroll(req: { group: string; ekPublic: string; ekCertificates: string[]; akPublic: string }): Promise<EnrollChallenge> {
    const { status, json } = await this.#send('POST', '/v1/enrollments', req);
    if (status !== 201) throw this.#refusal(status, json);
    return json as EnrollChallenge;
  }

  async activate(enrollmentId: string, secret: string): Promise<{ nodeId: string; akName: string }> {
    const { status, json } = await this.#send('POST', `/v1/enrollments/${encodeURIComponent(enrollmentId)}/activate`, { secret });
    if (status !== 200) throw this.#refusal(status, json);
    return json as { nodeId: string; akName: string };
  }

  /** Step 1 of an SNP-only enrollment: the group and the node key → the nonce to bind. */
  async enrollSnp(req: SnpEnrollRequest): Promise<SnpEnrollChallenge> {
    const { status, json } = await this.#send('POST', '/v1/enrollments/snp', req);
    if (status !== 201) throw this.#refusal(status, json);
    return json as SnpEnrollChallenge;
  }

  /** Step 2 of an SNP-only enrollment: the report, its certificate table and the key proof. */
  async completeSnpEnrollment(enrollmentId: string, body: SnpEnrollCompletion): Promise<{ nodeId: string; ledger: { seq: number; hash: string } }> {
    const { status, json } = await this.#send('POST', `/v1/enrollments/snp/${encodeURIComponent(enrollmentId)}`, body);
    if (status !== 200) throw this.#refusal(status, json);
    return json as { nodeId: string; ledger: { seq: number; hash: string } };
  }

  async challenge(nodeId: string): Promise<ChallengeResponse> {
    const { status, json } = await this.#send('POST', '/v1/challenges', { nodeId });
    if (status !== 201) throw this.#refusal(status, json);
    return json as ChallengeResponse;
  }

  /** Submits CBOR evidence. A refusal is a normal answer, not an exception. */
  async attest(evidenceCbor: Uint8Array): Promise<AttestationAnswer> {
    const { status, json } = await this.#send('POST', '/v1/attestations', evidenceCbor, 'application/cbor');
    // A decision (affirming, or a refusal with the status of its first failure) is an answer.
    if (status === 200 || (status >= 400 && status < 500)) {
      const a = json as AttestationAnswer & ErrorAnswer;
      if ((status === 200 && a.decision === 'affirming') || (status !== 200 && a.decision === 'contraindicated')) return a;
    }
    throw this.#refusal(status, json);
  }

  /**
   * Asks the key broker to release a secret to this agent's bound key (src/secrets/broker.ts). A
   * refusal (4xx with `failures`) is thrown as a {@link VerifierRefusal} listing every reason.
   */
  async release(secretId: string, body: { artifact: string; pop: { challenge: string; signature: string }; tpmBound?: boolean }): Promise<Released> {
    const { status, json } = await this.#send('POST', `/v1/secrets/${encodeURIComponent(secretId)}/release`, body);
    const a = json as Partial<Released>;
    if (status !== 200 || a.decision !== 'released') throw this.#refusal(status, json);
    return json as Released;
  }

  async jwks(): Promise<{ keys: unknown[] }> {
    const { status, json } = await this.#send('GET', '/.well-known/jwks.json', undefined);
    if (status !== 200) throw this.#refusal(status, json);
    return json as { keys: unknown[] };
  }
}

/** Re-raises a refusal as the registry's error class (for the CLI's exit status). */
export function refusalAsError(r: VerifierRefusal): Error {
  return vouchError(r.code, r.message);
}
