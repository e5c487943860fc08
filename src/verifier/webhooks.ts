/**
 * Node events as webhooks (issue #7, "Continuous attestation"): every event of the bus
 * (./events.ts) that a subscription asks for is POSTed to its URL, signed as the Standard Webhooks
 * specification 1.0 says (https://www.standardwebhooks.com, spec/standard-webhooks.md):
 *
 *   webhook-id:        the message id; the same on every retry (receivers use it as an idempotency key)
 *   webhook-timestamp: integer Unix seconds of this attempt (a retry carries a new one)
 *   webhook-signature: "v1," + base64(HMAC-SHA256(secret, `${id}.${timestamp}.${body}`))
 *
 * The secret is a `whsec_` + base64 string (the spec's serialisation), so the Standard Webhooks
 * libraries verify vouch's webhooks with the same text; {@link verifyWebhookSignature} is the
 * receiver side here. The message id is derived from the verifier id, the event type, the node
 * and the ledger seq, so the same event announced again (a restart, another replica) carries the
 * same id.
 *
 * Delivery: one queue per subscription, one request at a time, so order is kept per
 * subscription. Success is a 2xx answer (redirects are not followed: a 3xx is a failure, as the
 * spec recommends). A failure (network error, timeout, other status) is retried after
 * min(maxDelay, initialDelay × 2^(attempt−1)) × (1 − random/2) ("equal jitter": between half
 * and all of the exponential delay), up to maxAttempts attempts; then the delivery is given up,
 * counted and logged (the subscription id, message id, event and reason; never the secret, the
 * signature or the URL, which may carry a token). A full queue drops its oldest waiting delivery.
 */
import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, isAbsolute, resolve } from 'node:path';
import { MisuseError, UnavailableError, VerificationError } from '../lib/errors.js';
import { NODE_EVENT_TYPES, type EventBus, type NodeEvent, type NodeEventType } from './events.js';

// --- secrets and signatures --------------------------------------------------------------------

const SECRET_PREFIX = 'whsec_';
/** The spec's bounds for a symmetric secret: at least 24 bytes (192 bits), at most 512. */
const SPEC_SECRET_MIN = 24;
const SECRET_MAX = 512;
/** What vouch's own configuration requires (256 bits). */
export const WEBHOOK_SECRET_MIN_BYTES = 32;

/**
 * The HMAC key of a `whsec_<base64>` secret (one encoding only: standard base64 with padding,
 * canonical). @throws MisuseError MISUSE_ARGUMENT
 */
export function parseWebhookSecret(text: string, opts: { field?: string; minBytes?: number } = {}): Uint8Array {
  const field = opts.field ?? 'secret';
  const min = opts.minBytes ?? SPEC_SECRET_MIN;
  if (!text.startsWith(SECRET_PREFIX)) throw new MisuseError('MISUSE_ARGUMENT', `the webhook secret must be "${SECRET_PREFIX}" followed by base64`, { field });
  const b64 = text.slice(SECRET_PREFIX.length);
  const key = Buffer.from(b64, 'base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || key.toString('base64') !== b64) throw new MisuseError('MISUSE_ARGUMENT', 'the webhook secret is not canonical base64 after its prefix', { field });
  if (key.length < min || key.length > SECRET_MAX) throw new MisuseError('MISUSE_ARGUMENT', `the webhook secret must be ${min}..${SECRET_MAX} bytes, got ${key.length}`, { field, expected: `${min}..${SECRET_MAX}`, actual: String(key.length) });
  return new Uint8Array(key);
}

/**
 * A secret file: `whsec_<base64 of ≥ 32 random bytes>` (a final newline is allowed), mode 0600
 * or stricter. @throws MisuseError MISUSE_FILE_UNREADABLE, MISUSE_ARGUMENT
 */
export function readWebhookSecretFile(path: string, field = 'secretFile'): Uint8Array {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new MisuseError('MISUSE_FILE_UNREADABLE', `the webhook secret file ${path} is not a regular file`, { field });
    if ((st.mode & 0o077) !== 0) throw new MisuseError('MISUSE_ARGUMENT', `the webhook secret file ${path} may be read by others than its owner (chmod 600)`, { field, expected: '0600', actual: (st.mode & 0o777).toString(8).padStart(4, '0') });
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    if (cause instanceof MisuseError) throw cause;
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `the webhook secret file ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { field });
  }
  return parseWebhookSecret(text.replace(/\r?\n$/, ''), { field, minBytes: WEBHOOK_SECRET_MIN_BYTES });
}

/** The `v1,<base64>` signature of one attempt: HMAC-SHA256(key, `${id}.${timestamp}.${body}`). */
export function signWebhook(key: Uint8Array, id: string, timestamp: number, body: string | Uint8Array): string {
  return `v1,${hmac(key, id, String(timestamp), body).toString('base64')}`;
}

function hmac(key: Uint8Array, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/** Request headers as node:http gives them, or a fetch `Headers`. */
export type WebhookHeaders = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

function headerOf(h: WebhookHeaders, name: string): string | null {
  if (typeof h.get === 'function') return (h as { get(name: string): string | null }).get(name);
  const rec = h as Readonly<Record<string, string | readonly string[] | undefined>>;
  let found: string | null = null;
  for (const [k, v] of Object.entries(rec)) {
    if (k.toLowerCase() !== name || v === undefined) continue;
    // A repeated header is ambiguous: which one was signed?
    if (found !== null || typeof v !== 'string') throw new VerificationError('WEBHOOK_SIGNATURE_INVALID', `the ${name} header is repeated`, { field: name });
    found = v;
  }
  return found;
}

/** What {@link verifyWebhookSignature} checks. */
export interface WebhookVerifyInput {
  /** The subscription's secret: the `whsec_…` text, or the HMAC key bytes. */
  readonly secret: string | Uint8Array;
  readonly headers: WebhookHeaders;
  /** The raw request body, exactly as received (never a re-serialised JSON). */
  readonly body: string | Uint8Array;
  /** Now, epoch milliseconds; default the wall clock. */
  readonly now?: number;
  /** How far webhook-timestamp may be from now, either way (default 300 s, as the reference libraries). */
  readonly toleranceSeconds?: number;
}

/**
 * The receiver's check of a Standard Webhooks request: the three headers well-formed, one `v1`
 * signature of the header `webhook-signature` (a space-separated list; other versions are
 * skipped) equal, in constant time, to HMAC-SHA256(secret, id.timestamp.body), and then the
 * timestamp within the tolerance. Returns the message id (the idempotency key) and timestamp.
 * @throws VerificationError WEBHOOK_SIGNATURE_INVALID, WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE
 */
export function verifyWebhookSignature(o: WebhookVerifyInput): { id: string; timestamp: number } {
  const key = typeof o.secret === 'string' ? parseWebhookSecret(o.secret) : o.secret;
  const id = headerOf(o.headers, 'webhook-id');
  const ts = headerOf(o.headers, 'webhook-timestamp');
  const sig = headerOf(o.headers, 'webhook-signature');
  if (id === null || !/^[\x21-\x2d\x2f-\x7e]{1,256}$/.test(id)) throw new VerificationError('WEBHOOK_SIGNATURE_INVALID', 'webhook-id is missing, or not 1..256 printable ASCII characters without "."', { field: 'webhook-id' });
  if (ts === null || !/^[0-9]{1,12}$/.test(ts)) throw new VerificationError('WEBHOOK_SIGNATURE_INVALID', 'webhook-timestamp is missing or not integer Unix seconds', { field: 'webhook-timestamp' });
  if (sig === null || sig.length === 0 || sig.length > 8192) throw new VerificationError('WEBHOOK_SIGNATURE_INVALID', 'webhook-signature is missing or too long', { field: 'webhook-signature' });
  const want = hmac(key, id, ts, o.body);
  let match = false;
  for (const entry of sig.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const b64 = entry.slice(comma + 1);
    if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) continue;
    // Every candidate is compared, so the time taken does not say which one matched.
    if (timingSafeEqual(Buffer.from(b64, 'base64'), want)) match = true;
  }
  if (!match) throw new VerificationError('WEBHOOK_SIGNATURE_INVALID', undefined, { field: 'webhook-signature' });
  const timestamp = Number(ts);
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const tolerance = o.toleranceSeconds ?? 300;
  if (Math.abs(now - timestamp) > tolerance) {
    throw new VerificationError('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE', undefined, { field: 'webhook-timestamp', expected: `${now} ± ${tolerance}`, actual: ts });
  }
  return { id, timestamp };
}

// --- configuration ------------------------------------------------------------------------------

/** One subscription, its secret loaded. */
export interface WebhookSubscription {
  readonly id: string;
  readonly url: URL;
  /** The HMAC key (never logged). */
  readonly secret: Uint8Array;
  /** Event types delivered; null: all. */
  readonly events: ReadonlySet<NodeEventType> | null;
  /** Node groups delivered; null: all. */
  readonly groups: ReadonlySet<string> | null;
}

/** Retry and queue settings, the same for every subscription. */
export interface DeliveryPolicy {
  /** Attempts per delivery, the first included. */
  readonly maxAttempts: number;
  /** Delay before the first retry; doubled for each next one. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Limit of one request (connect, send, status line). */
  readonly timeoutMs: number;
  /** Deliveries waiting per subscription; when full the oldest waiting one is dropped. */
  readonly queueLimit: number;
}

/** 1 s, 2 s, 4 s … (at most 5 min), 10 attempts (about 8.5 min of retries), 15 s per request (the spec's 15–30 s), 1000 queued. */
export const DEFAULT_DELIVERY: DeliveryPolicy = { maxAttempts: 10, initialDelayMs: 1000, maxDelayMs: 300_000, timeoutMs: 15_000, queueLimit: 1000 };

/** The timer functions of the retries; injected in tests. */
export interface WebhookTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** One POST; resolves with the HTTP status, rejects on a network error or timeout. */
export type WebhookTransport = (req: WebhookRequest) => Promise<number>;

export interface WebhookRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly timeoutMs: number;
  /** Aborted when the dispatcher stops. */
  readonly signal: AbortSignal;
}

/** Webhooks as the app takes them: subscriptions, delivery policy, and the injectable parts. */
export interface WebhookConfig {
  readonly webhooks: readonly WebhookSubscription[];
  readonly delivery: DeliveryPolicy;
  /** Default: node timers (unref'd). */
  readonly timers?: WebhookTimers;
  /** Uniform in [0, 1), for the jitter; default node:crypto. */
  readonly random?: () => number;
  /** Default {@link httpTransport}. */
  readonly transport?: WebhookTransport;
}

const TOP_KEYS = ['webhooks', 'delivery'] as const;
const SUB_KEYS = ['id', 'url', 'secretFile', 'events', 'groups'] as const;
const DELIVERY_BOUNDS: Readonly<Record<keyof DeliveryPolicy, readonly [number, number]>> = {
  maxAttempts: [1, 100],
  initialDelayMs: [100, 3_600_000],
  maxDelayMs: [100, 86_400_000],
  timeoutMs: [100, 120_000],
  queueLimit: [1, 100_000],
};

function misuse(message: string, field: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', message, { field });
}

/** An object with only `keys`; `field` '' is the document itself. */
function strictObject(v: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  const what = field === '' ? 'the webhooks document' : field;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw misuse(`${what} must be an object`, field === '' ? '--webhooks' : field);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw misuse(`${what} has an unknown key "${k}" (allowed: ${keys.join(', ')})`, field === '' ? k : `${field}.${k}`);
  return v as Record<string, unknown>;
}

function uniqueStrings(v: unknown, field: string, pattern: RegExp, max: number): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > max) throw misuse(`${field} must be a non-empty array of at most ${max} entries`, field);
  const out: string[] = [];
  v.forEach((s: unknown, i) => {
    if (typeof s !== 'string' || !pattern.test(s)) throw misuse(`${field}[${i}] is not an allowed value`, `${field}[${i}]`);
    if (out.includes(s)) throw misuse(`${field}[${i}] "${s}" is repeated`, `${field}[${i}]`);
    out.push(s);
  });
  return out;
}

/** https, or http to a loopback address only (a local relay); no credentials, no fragment. */
function webhookUrl(v: unknown, field: string): URL {
  const u = typeof v === 'string' && URL.canParse(v) ? new URL(v) : null;
  if (u === null) throw misuse(`${field} must be an absolute URL`, field);
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(u.hostname);
  if (!(u.protocol === 'https:' || (u.protocol === 'http:' && loopback))) throw misuse(`${field} must be https (http only to a loopback address)`, field);
  if (u.username !== '' || u.password !== '' || u.hash !== '') throw misuse(`${field} must not carry credentials or a fragment`, field);
  return u;
}

/**
 * Checks a webhooks document strictly (unknown keys are errors) and reads the secret files;
 * relative `secretFile` paths are relative to `baseDir`.
 * @throws MisuseError MISUSE_ARGUMENT (field names the key), MISUSE_FILE_UNREADABLE (a secret file)
 */
export function parseWebhookConfig(doc: unknown, baseDir: string): WebhookConfig {
  const top = strictObject(doc, '', TOP_KEYS);
  const list = top['webhooks'];
  if (!Array.isArray(list) || list.length > 64) throw misuse('webhooks must be an array of at most 64 subscriptions', 'webhooks');
  const ids = new Set<string>();
  const webhooks = list.map((raw: unknown, i): WebhookSubscription => {
    const at = `webhooks[${i}]`;
    const s = strictObject(raw, at, SUB_KEYS);
    const id = s['id'];
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw misuse(`${at}.id must be 1..64 of A-Z a-z 0-9 _ -`, `${at}.id`);
    if (ids.has(id)) throw misuse(`${at}.id "${id}" is repeated`, `${at}.id`);
    ids.add(id);
    const secretFile = s['secretFile'];
    if (typeof secretFile !== 'string' || secretFile.trim() === '') throw misuse(`${at}.secretFile must be a path`, `${at}.secretFile`);
    const url = webhookUrl(s['url'], `${at}.url`);
    const events = s['events'] === undefined ? null : new Set(uniqueStrings(s['events'], `${at}.events`, new RegExp(`^(?:${NODE_EVENT_TYPES.join('|')})$`), NODE_EVENT_TYPES.length) as NodeEventType[]);
    const groups = s['groups'] === undefined ? null : new Set(uniqueStrings(s['groups'], `${at}.groups`, /^[a-z0-9-]{1,64}$/, 1000));
    const secret = readWebhookSecretFile(isAbsolute(secretFile) ? secretFile : resolve(baseDir, secretFile), `${at}.secretFile`);
    return { id, url, secret, events, groups };
  });
  const delivery: Record<keyof DeliveryPolicy, number> = { ...DEFAULT_DELIVERY };
  if (top['delivery'] !== undefined) {
    const d = strictObject(top['delivery'], 'delivery', Object.keys(DELIVERY_BOUNDS));
    for (const [k, [lo, hi]] of Object.entries(DELIVERY_BOUNDS) as Array<[keyof DeliveryPolicy, readonly [number, number]]>) {
      const v = d[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) throw misuse(`delivery.${k} must be an integer ${lo}..${hi}`, `delivery.${k}`);
      delivery[k] = v;
    }
    if (delivery.maxDelayMs < delivery.initialDelayMs) throw misuse('delivery.maxDelayMs must be at least delivery.initialDelayMs', 'delivery.maxDelayMs');
  }
  return { webhooks, delivery };
}

/** Reads and checks the `--webhooks` file. @throws MisuseError MISUSE_FILE_UNREADABLE, MISUSE_ARGUMENT */
export function loadWebhookConfig(file: string): WebhookConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `the webhooks file ${file} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { field: '--webhooks' });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
  } catch {
    throw misuse(`the webhooks file ${file} is not JSON`, '--webhooks');
  }
  return parseWebhookConfig(doc, dirname(resolve(file)));
}

// --- transport ------------------------------------------------------------------------------------

/**
 * POST with node:http(s): no connection pooling (nothing stays open after a request), no
 * redirects, the whole request and status line within `timeoutMs`; the answer's body is
 * discarded.
 */
export const httpTransport: WebhookTransport = (req) =>
  new Promise<number>((resolveStatus, reject) => {
    const body = Buffer.from(req.body, 'utf8');
    const send = req.url.protocol === 'https:' ? httpsRequest : httpRequest;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      r.destroy(new UnavailableError('WEBHOOK_DELIVERY_FAILED', 'the verifier is stopping'));
    };
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      req.signal.removeEventListener('abort', onAbort);
    };
    const r = send(req.url, { method: 'POST', headers: { ...req.headers, 'content-length': String(body.length) }, agent: false }, (res) => {
      done();
      res.on('error', () => undefined);
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    r.on('error', (e) => {
      done();
      reject(e);
    });
    timer = setTimeout(() => r.destroy(new UnavailableError('WEBHOOK_DELIVERY_FAILED', `no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    timer.unref();
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
    r.end(body);
  });

// --- delivery -------------------------------------------------------------------------------------

/** Counters of one subscription, or of all. */
export interface WebhookCounters {
  /** Deliveries answered 2xx. */
  readonly delivered: number;
  /** Retries scheduled after a failed attempt. */
  readonly retried: number;
  /** Deliveries given up after their last attempt. */
  readonly failed: number;
  /** Deliveries dropped from a full queue, unsent. */
  readonly dropped: number;
}

/** Where delivery outcomes are logged (pino's signature). */
export interface WebhookLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Options of {@link WebhookDispatcher}. */
export interface WebhookDispatcherOptions {
  readonly config: WebhookConfig;
  /** Put in every payload, and in the message id. */
  readonly verifierId: string;
  /** The source of webhook-timestamp (epoch milliseconds). */
  readonly clock: () => number;
  readonly log?: WebhookLogger;
}

/** The delay before retry number `attempt` (1 = the first retry), with `r` uniform in [0, 1). */
export function retryDelayMs(attempt: number, p: Pick<DeliveryPolicy, 'initialDelayMs' | 'maxDelayMs'>, r: number): number {
  const exp = Math.min(p.maxDelayMs, p.initialDelayMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(exp * (1 - r / 2));
}

/** The Standard Webhooks message id of an event: the same for the same event, wherever it is announced. */
export function webhookMessageId(verifierId: string, e: Pick<NodeEvent, 'type' | 'nodeId' | 'seq'>): string {
  const h = createHash('sha256').update(`vouch/webhook/v1\0${verifierId}\0${e.type}\0${e.nodeId}\0${e.seq}`, 'utf8').digest('hex');
  return `msg_${h.slice(0, 32)}`;
}

/** The JSON body of an event: the event, its message id, the verifier, and the spec's `timestamp` (ISO 8601, when it happened). */
export function webhookPayload(verifierId: string, e: NodeEvent): { id: string; body: string } {
  const id = webhookMessageId(verifierId, e);
  const body = JSON.stringify({
    type: e.type,
    timestamp: new Date(e.deadline ?? e.time).toISOString(),
    deliveryId: id,
    verifierId,
    nodeId: e.nodeId,
    group: e.group,
    seq: e.seq,
    hash: e.hash,
    time: e.time,
    ...(e.deadline !== undefined ? { deadline: e.deadline } : {}),
  });
  return { id, body };
}

interface Delivery {
  readonly id: string;
  readonly body: string;
  readonly event: NodeEvent;
  attempts: number;
}

interface Counts {
  delivered: number;
  retried: number;
  failed: number;
  dropped: number;
}

/** One subscription's queue: at most one delivery in flight or waiting for its retry. */
interface Lane {
  readonly sub: WebhookSubscription;
  readonly waiting: Delivery[];
  current: Delivery | null;
  timer: unknown;
  inFlight: Promise<void> | null;
  readonly counts: Counts;
}

const NODE_TIMERS: WebhookTimers = {
  setTimeout(fn, ms) {
    const h = setTimeout(fn, ms);
    h.unref();
    return h;
  },
  clearTimeout(h) {
    clearTimeout(h as ReturnType<typeof setTimeout>);
  },
};

function defaultRandom(): number {
  return randomInt(0, 2 ** 32) / 2 ** 32;
}

/** Why an attempt failed, for the log (never the body, the headers or the URL). */
function reasonOf(e: unknown): string {
  if (e instanceof UnavailableError) return e.message;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.name;
  return 'error';
}

/** Delivers the bus's events to the subscriptions between {@link start} and {@link stop}. */
export class WebhookDispatcher {
  readonly #o: WebhookDispatcherOptions;
  readonly #lanes: Lane[];
  readonly #timers: WebhookTimers;
  readonly #random: () => number;
  readonly #transport: WebhookTransport;
  readonly #abort = new AbortController();
  readonly #idleWaiters: Array<() => void> = [];
  #unsubscribe: (() => void) | null = null;
  #stopped = false;

  constructor(o: WebhookDispatcherOptions) {
    const d = o.config.delivery;
    for (const [k, [lo, hi]] of Object.entries(DELIVERY_BOUNDS) as Array<[keyof DeliveryPolicy, readonly [number, number]]>) {
      if (!Number.isSafeInteger(d[k]) || d[k] < lo || d[k] > hi) throw misuse(`delivery.${k} must be an integer ${lo}..${hi}`, `delivery.${k}`);
    }
    if (d.maxDelayMs < d.initialDelayMs) throw misuse('delivery.maxDelayMs must be at least delivery.initialDelayMs', 'delivery.maxDelayMs');
    this.#o = o;
    this.#timers = o.config.timers ?? NODE_TIMERS;
    this.#random = o.config.random ?? defaultRandom;
    this.#transport = o.config.transport ?? httpTransport;
    this.#lanes = o.config.webhooks.map((sub) => ({ sub, waiting: [], current: null, timer: null, inFlight: null, counts: { delivered: 0, retried: 0, failed: 0, dropped: 0 } }));
  }

  /** Totals over every subscription. */
  get counters(): WebhookCounters {
    const t: Counts = { delivered: 0, retried: 0, failed: 0, dropped: 0 };
    for (const l of this.#lanes) {
      t.delivered += l.counts.delivered;
      t.retried += l.counts.retried;
      t.failed += l.counts.failed;
      t.dropped += l.counts.dropped;
    }
    return t;
  }

  /** One subscription's counters. */
  countersOf(id: string): WebhookCounters | null {
    const l = this.#lanes.find((x) => x.sub.id === id);
    return l === undefined ? null : { ...l.counts };
  }

  /** Deliveries queued or in progress (retries waiting included). */
  get pending(): number {
    return this.#lanes.reduce((n, l) => n + l.waiting.length + (l.current === null ? 0 : 1), 0);
  }

  /** Delivers `bus`'s events from now on. */
  start(bus: EventBus): void {
    if (this.#stopped || this.#unsubscribe !== null) return;
    this.#unsubscribe = bus.subscribe((e) => this.publish(e));
  }

  /** Resolves when no delivery is queued or in progress (a retry waiting on its timer is in progress). */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Queues `e` for every subscription that asks for its type and group. Never throws. */
  publish(e: NodeEvent): void {
    if (this.#stopped) return;
    let payload: { id: string; body: string } | null = null;
    for (const lane of this.#lanes) {
      const s = lane.sub;
      if ((s.events !== null && !s.events.has(e.type)) || (s.groups !== null && !s.groups.has(e.group))) continue;
      payload ??= webhookPayload(this.#o.verifierId, e);
      if (lane.waiting.length >= this.#o.config.delivery.queueLimit) {
        const old = lane.waiting.shift();
        lane.counts.dropped++;
        if (old !== undefined) this.#o.log?.warn({ webhook: s.id, webhookId: old.id, event: old.event.type, nodeId: old.event.nodeId }, 'webhook queue full: oldest waiting delivery dropped');
      }
      lane.waiting.push({ id: payload.id, body: payload.body, event: e, attempts: 0 });
      this.#next(lane);
    }
  }

  /**
   * Stops: no new events, retry timers cleared, requests in flight aborted (and waited for).
   * Deliveries still queued are abandoned and logged as a count.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#abort.abort();
    const flights: Array<Promise<void>> = [];
    for (const l of this.#lanes) {
      if (l.timer !== null) this.#timers.clearTimeout(l.timer);
      l.timer = null;
      if (l.inFlight !== null) flights.push(l.inFlight);
    }
    await Promise.all(flights);
    for (const l of this.#lanes) {
      const abandoned = l.waiting.length + (l.current === null ? 0 : 1);
      if (abandoned > 0) this.#o.log?.warn({ webhook: l.sub.id, abandoned }, 'verifier stopping: queued webhook deliveries abandoned');
      l.waiting.length = 0;
      l.current = null;
    }
    this.#settle();
  }

  #next(lane: Lane): void {
    if (this.#stopped || lane.current !== null) return;
    const d = lane.waiting.shift();
    if (d === undefined) {
      this.#settle();
      return;
    }
    lane.current = d;
    this.#attempt(lane, d);
  }

  #attempt(lane: Lane, d: Delivery): void {
    d.attempts++;
    const timestamp = Math.floor(this.#o.clock() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'vouch-webhooks/1',
      'webhook-id': d.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(lane.sub.secret, d.id, timestamp, d.body),
    };
    const req: WebhookRequest = { url: lane.sub.url, headers, body: d.body, timeoutMs: this.#o.config.delivery.timeoutMs, signal: this.#abort.signal };
    // Through a resolved promise, so a transport that throws at once is a failed attempt too.
    const flight = Promise.resolve(req).then(this.#transport).then(
      (status) => (status >= 200 && status <= 299 ? null : `HTTP ${status}`),
      (e: unknown) => reasonOf(e),
    );
    lane.inFlight = flight.then((failure) => {
      lane.inFlight = null;
      if (this.#stopped) return;
      this.#settled(lane, d, failure);
    });
  }

  #settled(lane: Lane, d: Delivery, failure: string | null): void {
    const log = { webhook: lane.sub.id, webhookId: d.id, event: d.event.type, nodeId: d.event.nodeId, attempt: d.attempts };
    if (failure === null) {
      lane.counts.delivered++;
      this.#o.log?.debug(log, 'webhook delivered');
    } else if (d.attempts >= this.#o.config.delivery.maxAttempts) {
      lane.counts.failed++;
      this.#o.log?.warn({ ...log, reason: failure, code: 'WEBHOOK_DELIVERY_FAILED' }, 'webhook delivery given up after its last attempt');
    } else {
      lane.counts.retried++;
      const delay = retryDelayMs(d.attempts, this.#o.config.delivery, this.#random());
      this.#o.log?.debug({ ...log, reason: failure, retryInMs: delay }, 'webhook attempt failed; retrying');
      lane.timer = this.#timers.setTimeout(() => {
        lane.timer = null;
        if (!this.#stopped) this.#attempt(lane, d);
      }, delay);
      return;
    }
    lane.current = null;
    this.#next(lane);
  }

  #settle(): void {
    if (this.pending !== 0 && !this.#stopped) return;
    for (const r of this.#idleWaiters.splice(0)) r();
  }
}
