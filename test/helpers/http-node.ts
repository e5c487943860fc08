/**
 * A synthetic TPM node that talks to a verifier over real HTTP (global fetch on loopback), the way
 * an agent would, for tests against verifier processes: enrollment (POST /v1/enrollments, then the
 * credential activated in software and POST /v1/enrollments/:id/activate), challenges
 * (POST /v1/challenges) and evidence as CBOR (POST /v1/attestations), built with
 * {@link buildEvidence} from test/helpers/verifier.ts.
 *
 * Answers are returned as values (status and parsed JSON body), never thrown, so a load test can
 * record every one; a request that got no answer (connection refused or reset, timeout) is an
 * answer with `status: null` and the error's text.
 */
import { encodeEvidenceCbor } from '../../src/evidence/envelope.js';
import type { ChallengeResponse } from '../../src/verifier/service.js';
import { activate, b64u, boundKey, buildEvidence, decodeChallenge, enrollBody, syntheticTpm, type Challenge, type EnrollAnswer, type SyntheticTpm, type TestCa } from './verifier.js';

/** The JSON body of a verifier answer, every field optional (challenges, decisions and errors share it). */
export interface AnswerBody {
  readonly decision?: string;
  readonly nodeId?: string;
  readonly artifact?: unknown;
  readonly ledger?: { readonly seq: number; readonly hash: string };
  readonly error?: { readonly code: string; readonly category?: string; readonly message?: string };
  readonly failures?: ReadonlyArray<{ readonly code: string }>;
}

/** One HTTP exchange. */
export interface HttpAnswer<B = AnswerBody> {
  /** The HTTP status, or null when no answer came (the request failed on the network). */
  readonly status: number | null;
  /** The parsed JSON body; null for no answer or a body that is not JSON. */
  readonly body: B | null;
  /** The raw body text ('' for no answer). */
  readonly text: string;
  /** Why no answer came (status null). */
  readonly error?: string;
  /** Date.now() when the request was sent and when its answer (or failure) arrived. */
  readonly sentAt: number;
  readonly answeredAt: number;
}

/** Per request: a verifier that does not answer within this is a failed request, not a hang. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Sends one request; never throws. */
export async function request<B = AnswerBody>(method: 'GET' | 'POST', url: string, opts: { json?: unknown; cbor?: Uint8Array; token?: string } = {}): Promise<HttpAnswer<B>> {
  const headers: Record<string, string> = {};
  let body: string | Uint8Array | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.cbor !== undefined) {
    headers['content-type'] = 'application/cbor';
    body = opts.cbor;
  }
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  const sentAt = Date.now();
  try {
    const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    let parsed: B | null = null;
    try {
      parsed = JSON.parse(text) as B;
    } catch {
      parsed = null;
    }
    return { status: res.status, body: parsed, text, sentAt, answeredAt: Date.now() };
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return { status: null, body: null, text: '', error: `${e instanceof Error ? e.message : String(e)}${cause}`, sentAt, answeredAt: Date.now() };
  }
}

/** A synthetic TPM node enrolled over HTTP. */
export class HttpNode {
  readonly tpm: SyntheticTpm;
  readonly nodeId: string;
  /** The node's bound key (SPKI DER), the same in every evidence. */
  readonly boundKey: Uint8Array = boundKey();
  /** The TPM clock of the next quote: it only moves forward, as a real TPM's does. */
  #clock = 1000n;

  private constructor(tpm: SyntheticTpm, nodeId: string) {
    this.tpm = tpm;
    this.nodeId = nodeId;
  }

  /**
   * A new synthetic TPM (EK certificate from `ca`) enrolled into `group`: step one at `enrollUrl`,
   * the activation at `activateUrl` (default the same verifier; another replica works too).
   *
   * @throws Error when either step does not succeed
   */
  static async enroll(ca: TestCa, enrollUrl: string, opts: { group?: string; activateUrl?: string } = {}): Promise<HttpNode> {
    const tpm = await syntheticTpm(ca);
    const r1 = await request<EnrollAnswer>('POST', `${enrollUrl}/v1/enrollments`, { json: enrollBody(tpm, { group: opts.group ?? 'gpu' }) });
    if (r1.status !== 201 || r1.body === null) throw new Error(`enrollment answered ${r1.status ?? r1.error}: ${r1.text}`);
    const answer = r1.body;
    const r2 = await request('POST', `${opts.activateUrl ?? enrollUrl}/v1/enrollments/${answer.enrollmentId}/activate`, { json: { secret: b64u(activate(tpm, answer)) } });
    if (r2.status !== 200) throw new Error(`activation answered ${r2.status ?? r2.error}: ${r2.text}`);
    return new HttpNode(tpm, answer.nodeId);
  }

  /** POST /v1/challenges; `challenge` is set for a 201 (an error answer's body has `error` instead). */
  async challenge(url: string): Promise<{ answer: HttpAnswer<ChallengeResponse & AnswerBody>; challenge: Challenge | null }> {
    const answer = await request<ChallengeResponse & AnswerBody>('POST', `${url}/v1/challenges`, { json: { nodeId: this.nodeId } });
    return { answer, challenge: answer.status === 201 && answer.body !== null ? decodeChallenge(answer.body) : null };
  }

  /** Honest evidence for `challenge` (GOOD_PCRS, the node's AK and bound key, a later TPM clock), as CBOR. */
  evidence(challenge: Challenge): Uint8Array {
    this.#clock += 1000n;
    return encodeEvidenceCbor(buildEvidence({ challenge, nodeId: this.nodeId, ak: this.tpm.ak, boundKey: this.boundKey, counters: { clock: this.#clock } }));
  }

  /** POST /v1/attestations with CBOR evidence. */
  submit(url: string, cbor: Uint8Array): Promise<HttpAnswer> {
    return request('POST', `${url}/v1/attestations`, { cbor });
  }

  /** One round: a challenge from `challengeUrl`, evidence, submitted to `submitUrl` (default the same). */
  async attest(challengeUrl: string, submitUrl = challengeUrl): Promise<{ challenge: HttpAnswer<ChallengeResponse & AnswerBody>; attestation: HttpAnswer | null }> {
    const c = await this.challenge(challengeUrl);
    if (c.challenge === null) return { challenge: c.answer, attestation: null };
    return { challenge: c.answer, attestation: await this.submit(submitUrl, this.evidence(c.challenge)) };
  }
}
