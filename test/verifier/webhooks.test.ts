/**
 * Node events as Standard Webhooks: signatures (and the receiver-side helper), retries with
 * backoff on injected timers, ordering, filters, the bounded queue, stopping, and the strict
 * configuration file. Every request goes to a real HTTP receiver on 127.0.0.1 that checks its
 * signature with verifyWebhookSignature.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isVouchError, type ErrorCode } from '../../src/lib/errors.js';
import type { NodeEvent, NodeEventType } from '../../src/verifier/events.js';
import { EventBus } from '../../src/verifier/events.js';
import {
  DEFAULT_DELIVERY,
  loadWebhookConfig,
  parseWebhookConfig,
  parseWebhookSecret,
  retryDelayMs,
  signWebhook,
  verifyWebhookSignature,
  webhookMessageId,
  WebhookDispatcher,
  type DeliveryPolicy,
  type WebhookConfig,
  type WebhookLogger,
  type WebhookTimers,
} from '../../src/verifier/webhooks.js';
import { verifierConfig, withWebhookOptions, type VerifierStartOptions } from '../../src/cli/verifier.js';
import { fakeClock } from '../helpers/verifier.js';
import { until, webhookReceiver, writeSecretFile, type WebhookReceiver } from '../helpers/webhook-receiver.js';

/** Retry timers the test fires by hand; every requested delay is recorded. */
function manualTimers(): { api: WebhookTimers; delays: number[]; pending: () => number; fire: () => void } {
  const pending = new Map<number, () => void>();
  const delays: number[] = [];
  let n = 0;
  return {
    api: {
      setTimeout(fn, ms) {
        n += 1;
        pending.set(n, fn);
        delays.push(ms);
        return n;
      },
      clearTimeout(h) {
        pending.delete(h as number);
      },
    },
    delays,
    pending: () => pending.size,
    fire() {
      const [first] = pending;
      if (first === undefined) throw new Error('no timer pending');
      pending.delete(first[0]);
      first[1]();
    },
  };
}

function codeOf(f: () => unknown): ErrorCode | undefined {
  try {
    f();
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return undefined;
}

function errorOf(f: () => unknown): { code: ErrorCode; field: string | undefined } {
  try {
    f();
  } catch (e) {
    if (isVouchError(e)) return { code: e.code, field: e.field };
    throw e;
  }
  throw new Error('expected an error');
}

const clock = fakeClock();
let dir: string;
let rx: WebhookReceiver;
const keys = new Map<string, Uint8Array>();
const secretFiles = new Map<string, string>();
const logs: Array<{ obj: object; msg: string }> = [];
const log: WebhookLogger = {
  warn: (obj, msg) => logs.push({ obj, msg }),
  debug: (obj, msg) => logs.push({ obj, msg }),
};
const dispatchers: WebhookDispatcher[] = [];

let seq = 100;
function ev(type: NodeEventType, nodeId = 'tpm-a', group = 'gpu'): NodeEvent {
  seq += 1;
  return { type, nodeId, group, seq, hash: seq.toString(16).padStart(64, '0'), time: clock.now() };
}

/** A dispatcher for subscriptions (path → filters) on the receiver, parsed from a real config. */
function dispatcher(
  subs: Record<string, { events?: NodeEventType[]; groups?: string[] }>,
  over: { delivery?: Partial<DeliveryPolicy>; timers?: WebhookTimers; random?: () => number; url?: string } = {},
): WebhookDispatcher {
  const doc = {
    webhooks: Object.entries(subs).map(([path, f]) => ({ id: path.slice(1), url: `${over.url ?? rx.url}${path}`, secretFile: secretFiles.get(path), ...f })),
  };
  const parsed = parseWebhookConfig(doc, dir);
  const config: WebhookConfig = {
    ...parsed,
    delivery: { ...parsed.delivery, ...over.delivery },
    ...(over.timers !== undefined ? { timers: over.timers } : {}),
    random: over.random ?? (() => 0),
  };
  const d = new WebhookDispatcher({ config, verifierId: 'vouch-test', clock: clock.now, log });
  dispatchers.push(d);
  return d;
}

const PATHS = ['/a', '/b', '/c', '/d', '/order', '/retry', '/jitter', '/queue', '/hang', '/redirect', '/stop'] as const;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouch-webhooks-'));
  for (const p of PATHS) {
    const s = writeSecretFile(dir, `${p.slice(1)}.whsec`);
    keys.set(p, s.key);
    secretFiles.set(p, `${p.slice(1)}.whsec`);
  }
  rx = await webhookReceiver(keys, clock.now);
});
afterEach(async () => {
  for (const d of dispatchers.splice(0)) await d.stop();
});
afterAll(async () => {
  await rx?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Standard Webhooks signatures', () => {
  it('signs as the reference library does (its test vector)', () => {
    // standard-webhooks/libraries/javascript/src/webhook.test.ts, "sign function works".
    const key = parseWebhookSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    const body = '{"test": 2432232314}';
    const sig = signWebhook(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body);
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const headers = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': sig };
    expect(verifyWebhookSignature({ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', headers, body, now: 1614265330_000 })).toEqual({ id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330 });
    // A fetch Headers works as well as node's header object.
    expect(verifyWebhookSignature({ secret: key, headers: new Headers(headers), body, now: 1614265330_000 }).id).toBe('msg_p5jXN8AQM9LWM0D4loKWxJek');
  });

  it('the helper refuses a tampered body, another secret, an old or future timestamp, and bad headers', () => {
    const key = keys.get('/a') as Uint8Array;
    const other = keys.get('/b') as Uint8Array;
    const body = '{"type":"stale","nodeId":"tpm-a"}';
    const ts = Math.floor(clock.now() / 1000);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(key, 'msg_1', ts, body) };
    const check = (o: { body?: string; secret?: Uint8Array; headers?: Record<string, string | string[]>; now?: number }): ErrorCode | undefined =>
      codeOf(() => verifyWebhookSignature({ secret: o.secret ?? key, headers: o.headers ?? headers, body: o.body ?? body, now: o.now ?? clock.now() }));
    expect(check({})).toBeUndefined();
    expect(check({ body: body.replace('tpm-a', 'tpm-b') })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ body: `${body} ` })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ secret: other })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-id': 'msg_2' } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-timestamp': String(ts + 1) } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    // Signed, but outside the 5-minute tolerance either way: a replay.
    expect(check({ now: clock.now() + 301_000 })).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    expect(check({ now: clock.now() - 301_000 })).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    expect(check({ now: clock.now() + 299_000 })).toBeUndefined();
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const { [h]: _gone, ...rest } = headers as Record<string, string>;
      expect(check({ headers: rest }), h).toBe('WEBHOOK_SIGNATURE_INVALID');
    }
    expect(check({ headers: { ...headers, 'webhook-timestamp': 'hello' } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-id': 'msg.1' } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-signature': 'v1,' } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-signature': headers['webhook-signature'].slice(0, 20) } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(check({ headers: { ...headers, 'webhook-signature': [headers['webhook-signature'], headers['webhook-signature']] } })).toBe('WEBHOOK_SIGNATURE_INVALID');
    // A list (secret rotation): one valid v1 entry is enough; other versions are skipped.
    const list = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,AAAA ${headers['webhook-signature']} v2,x`;
    expect(check({ headers: { ...headers, 'webhook-signature': list } })).toBeUndefined();
    expect(check({ headers: { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v1a,') } })).toBe('WEBHOOK_SIGNATURE_INVALID');
  });
});

describe('delivery', () => {
  it('an event is POSTed with the three headers, and the body is the event with its id and the verifier', async () => {
    const d = dispatcher({ '/a': {} });
    const e: NodeEvent = { ...ev('stale'), deadline: clock.now() - 5 };
    d.publish(e);
    await d.whenIdle();
    const got = rx.received.filter((r) => r.path === '/a');
    expect(got).toHaveLength(1);
    const r = got[0]!;
    expect(r.error).toBeNull();
    expect(r.verified).toEqual({ id: webhookMessageId('vouch-test', e), timestamp: Math.floor(clock.now() / 1000) });
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(JSON.parse(r.body)).toEqual({
      type: 'stale',
      timestamp: new Date(e.deadline!).toISOString(),
      deliveryId: r.headers['webhook-id'],
      verifierId: 'vouch-test',
      nodeId: e.nodeId,
      group: e.group,
      seq: e.seq,
      hash: e.hash,
      time: e.time,
      deadline: e.deadline,
    });
    expect(d.counters).toEqual({ delivered: 1, retried: 0, failed: 0, dropped: 0 });
    // The same event announced again (a restart, another replica) has the same message id.
    expect(webhookMessageId('vouch-test', { ...e })).toBe(r.headers['webhook-id']);
    expect(webhookMessageId('vouch-test', { ...e, type: 'trusted' })).not.toBe(r.headers['webhook-id']);
  });

  it('500 twice, then 200: delivered on the 3rd attempt after 1 s and 2 s, same id, a fresh signed timestamp each time', async () => {
    const t = manualTimers();
    const d = dispatcher({ '/retry': {} }, { timers: t.api, random: () => 0 });
    rx.script('/retry', [500, 500]);
    const t0 = Math.floor(clock.now() / 1000);
    d.publish(ev('untrusted'));
    await rx.waitFor(1, '/retry');
    await until(() => t.pending() === 1, 'the first retry timer');
    expect(t.delays).toEqual([1000]);
    clock.advance(1000);
    t.fire();
    await rx.waitFor(2, '/retry');
    await until(() => t.pending() === 1, 'the second retry timer');
    expect(t.delays).toEqual([1000, 2000]);
    clock.advance(2000);
    t.fire();
    await d.whenIdle();
    const got = rx.received.filter((r) => r.path === '/retry');
    expect(got.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(got.every((r) => r.error === null && r.verified !== null)).toBe(true);
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(got.map((r) => r.verified?.timestamp)).toEqual([t0, t0 + 1, t0 + 3]);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(d.counters).toEqual({ delivered: 1, retried: 2, failed: 0, dropped: 0 });
    expect(t.pending()).toBe(0);
  });

  it('the backoff doubles up to its cap, with jitter of up to half the delay', async () => {
    const p = { initialDelayMs: 1000, maxDelayMs: 300_000 };
    expect([1, 2, 3, 4, 5, 8, 9, 10, 20].map((a) => retryDelayMs(a, p, 0))).toEqual([1000, 2000, 4000, 8000, 16000, 128000, 256000, 300000, 300000]);
    expect(retryDelayMs(3, p, 0.5)).toBe(3000);
    expect(retryDelayMs(10, p, 0.999999)).toBe(150000);
    const t = manualTimers();
    const d = dispatcher({ '/jitter': {} }, { timers: t.api, random: () => 0.5 });
    rx.script('/jitter', [503, 503]);
    d.publish(ev('trusted'));
    await until(() => t.pending() === 1, 'a retry timer');
    t.fire();
    await until(() => t.pending() === 1 && t.delays.length === 2, 'the second retry timer');
    t.fire();
    await d.whenIdle();
    expect(t.delays).toEqual([750, 1500]);
  });

  it('receiver down: given up after maxAttempts, logged without the secret, the signature or the URL', async () => {
    // A port with nothing listening: connections are refused.
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
    const t = manualTimers();
    const d = dispatcher({ '/d': {} }, { timers: t.api, url: `http://127.0.0.1:${port}`, delivery: { maxAttempts: 3 } });
    const e = ev('revoked');
    logs.length = 0;
    d.publish(e);
    for (let i = 0; i < 2; i++) {
      await until(() => t.pending() === 1, `retry timer ${i + 1}`);
      t.fire();
    }
    await d.whenIdle();
    expect(t.delays).toEqual([1000, 2000]);
    expect(d.counters).toEqual({ delivered: 0, retried: 2, failed: 1, dropped: 0 });
    const gaveUp = logs.filter((l) => l.msg.includes('given up'));
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]!.obj).toMatchObject({ webhook: 'd', webhookId: webhookMessageId('vouch-test', e), event: 'revoked', nodeId: 'tpm-a', attempt: 3, reason: 'ECONNREFUSED', code: 'WEBHOOK_DELIVERY_FAILED' });
    const text = JSON.stringify(logs);
    const key = keys.get('/d') as Uint8Array;
    expect(text).not.toContain(Buffer.from(key).toString('base64'));
    expect(text).not.toContain('v1,');
    expect(text).not.toContain(String(port));
  });

  it('order is kept per subscription: a failing head blocks the ones behind it', async () => {
    const t = manualTimers();
    const d = dispatcher({ '/order': {} }, { timers: t.api });
    rx.script('/order', [500]);
    const es = [ev('trusted', 'n1'), ev('trusted', 'n2'), ev('untrusted', 'n3')];
    for (const e of es) d.publish(e);
    await until(() => t.pending() === 1, 'the retry timer');
    // Nothing behind the failed head was sent.
    expect(rx.received.filter((r) => r.path === '/order')).toHaveLength(1);
    expect(d.pending).toBe(3);
    t.fire();
    await d.whenIdle();
    const ids = rx.received.filter((r) => r.path === '/order').map((r) => r.verified?.id);
    expect(ids).toEqual([es[0], es[0], es[1], es[2]].map((e) => webhookMessageId('vouch-test', e!)));
    expect(d.counters).toEqual({ delivered: 3, retried: 1, failed: 0, dropped: 0 });
  });

  it('filters by event type and by group; each subscription signs with its own secret', async () => {
    const d = dispatcher({ '/a': {}, '/b': { events: ['stale'] }, '/c': { groups: ['batch'] }, '/d': { events: ['untrusted', 'stale'], groups: ['gpu'] } });
    const before = new Map(['/a', '/b', '/c', '/d'].map((p) => [p, rx.received.filter((r) => r.path === p).length]));
    const bus = new EventBus();
    d.start(bus);
    const es = [ev('trusted', 'g1', 'gpu'), ev('stale', 'g1', 'gpu'), ev('untrusted', 'b1', 'batch'), ev('stale', 'b1', 'batch'), ev('enrolled', 'g2', 'gpu'), ev('untrusted', 'g2', 'gpu')];
    for (const e of es) bus.emit(e);
    await d.whenIdle();
    const seen = (p: string): string[] =>
      rx.received
        .filter((r) => r.path === p)
        .slice(before.get(p))
        .map((r) => {
          expect(r.error).toBeNull();
          const b = JSON.parse(r.body) as { type: string; nodeId: string };
          return `${b.type}:${b.nodeId}`;
        });
    expect(seen('/a')).toEqual(['trusted:g1', 'stale:g1', 'untrusted:b1', 'stale:b1', 'enrolled:g2', 'untrusted:g2']);
    expect(seen('/b')).toEqual(['stale:g1', 'stale:b1']);
    expect(seen('/c')).toEqual(['untrusted:b1', 'stale:b1']);
    expect(seen('/d')).toEqual(['stale:g1', 'untrusted:g2']);
    expect(d.countersOf('b')).toEqual({ delivered: 2, retried: 0, failed: 0, dropped: 0 });
    expect(d.counters.delivered).toBe(12);
  });

  it('a full queue drops its oldest waiting delivery and counts it', async () => {
    const t = manualTimers();
    const d = dispatcher({ '/queue': {} }, { timers: t.api, delivery: { queueLimit: 2 } });
    rx.script('/queue', [500]);
    const es = [1, 2, 3, 4, 5].map((i) => ev('trusted', `q${i}`));
    for (const e of es) d.publish(e);
    expect(d.counters.dropped).toBe(2);
    await until(() => t.pending() === 1, 'the retry timer');
    t.fire();
    await d.whenIdle();
    const nodes = rx.received.filter((r) => r.path === '/queue').map((r) => (JSON.parse(r.body) as { nodeId: string }).nodeId);
    expect(nodes).toEqual(['q1', 'q1', 'q4', 'q5']);
    expect(d.counters).toEqual({ delivered: 3, retried: 1, failed: 0, dropped: 2 });
    expect(logs.filter((l) => l.msg.includes('queue full'))).toHaveLength(2);
  });

  it('no answer within timeoutMs is a failure, retried', async () => {
    const t = manualTimers();
    const d = dispatcher({ '/hang': {} }, { timers: t.api, delivery: { timeoutMs: 200 } });
    rx.script('/hang', ['hang']);
    d.publish(ev('trusted'));
    await until(() => t.pending() === 1, 'the retry timer after the timeout');
    t.fire();
    await d.whenIdle();
    expect(rx.received.filter((r) => r.path === '/hang').map((r) => r.status)).toEqual([0, 200]);
    expect(d.counters).toEqual({ delivered: 1, retried: 1, failed: 0, dropped: 0 });
  });

  it('a redirect is a failure and is not followed', async () => {
    const d = dispatcher({ '/redirect': {} }, { delivery: { maxAttempts: 1 } });
    rx.script('/redirect', [302]);
    d.publish(ev('trusted'));
    await d.whenIdle();
    expect(d.counters).toEqual({ delivered: 0, retried: 0, failed: 1, dropped: 0 });
    expect(rx.received.some((r) => r.path === '/redirected')).toBe(false);
  });

  it('stop clears retry timers, aborts a request in flight, and takes no more events', async () => {
    const t = manualTimers();
    const d = dispatcher({ '/stop': {}, '/retry': {} }, { timers: t.api });
    rx.script('/stop', ['hang']);
    rx.script('/retry', [500]);
    const bus = new EventBus();
    d.start(bus);
    bus.emit(ev('trusted'));
    await rx.waitFor(1, '/stop');
    await until(() => t.pending() === 1, 'the retry timer of /retry');
    const started = Date.now();
    await d.stop();
    // The hanging request was aborted, not waited out (the default timeout is 15 s).
    expect(Date.now() - started).toBeLessThan(DEFAULT_DELIVERY.timeoutMs);
    expect(t.pending()).toBe(0);
    expect(bus.listenerCount).toBe(0);
    const n = rx.received.length;
    d.publish(ev('stale'));
    await new Promise((r) => setTimeout(r, 20));
    expect(rx.received.length).toBe(n);
    expect(d.pending).toBe(0);
    expect(logs.some((l) => l.msg.includes('abandoned'))).toBe(true);
  });
});

describe('configuration file', () => {
  const write = (name: string, doc: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return p;
  };
  const sub = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 'ops', url: 'https://hooks.example/vouch', secretFile: 'a.whsec', ...over });

  it('a valid file: defaults, filters, and a secretFile relative to the file', () => {
    const cfg = loadWebhookConfig(write('ok.json', { webhooks: [sub({ events: ['stale', 'untrusted'], groups: ['gpu'] }), sub({ id: 'local', url: 'http://127.0.0.1:9000/x' })], delivery: { maxAttempts: 5 } }));
    expect(cfg.delivery).toEqual({ ...DEFAULT_DELIVERY, maxAttempts: 5 });
    expect(cfg.webhooks.map((w) => [w.id, w.url.href, w.events === null ? null : [...w.events], w.groups === null ? null : [...w.groups]])).toEqual([
      ['ops', 'https://hooks.example/vouch', ['stale', 'untrusted'], ['gpu']],
      ['local', 'http://127.0.0.1:9000/x', null, null],
    ]);
    expect(Buffer.from(cfg.webhooks[0]!.secret).equals(Buffer.from(keys.get('/a')!))).toBe(true);
    expect(loadWebhookConfig(write('empty.json', { webhooks: [] })).webhooks).toEqual([]);
  });

  it('every mistake is refused with its code and the field it names', () => {
    const short = writeSecretFile(dir, 'short.whsec', 24);
    const open = writeSecretFile(dir, 'open.whsec', 32, 0o644);
    writeFileSync(join(dir, 'raw.whsec'), Buffer.alloc(32, 7), { mode: 0o600 });
    const cases: Array<[string, unknown, ErrorCode, string]> = [
      ['not JSON', '{"webhooks": [', 'MISUSE_ARGUMENT', '--webhooks'],
      ['not an object', '[]', 'MISUSE_ARGUMENT', '--webhooks'],
      ['unknown top-level key', { webhooks: [], retries: 3 }, 'MISUSE_ARGUMENT', 'retries'],
      ['webhooks not an array', { webhooks: {} }, 'MISUSE_ARGUMENT', 'webhooks'],
      ['unknown subscription key', { webhooks: [sub({ secret: 'whsec_x' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].secret'],
      ['bad id', { webhooks: [sub({ id: 'a b' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].id'],
      ['repeated id', { webhooks: [sub(), sub()] }, 'MISUSE_ARGUMENT', 'webhooks[1].id'],
      ['plain http to another host', { webhooks: [sub({ url: 'http://hooks.example/' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].url'],
      ['credentials in the URL', { webhooks: [sub({ url: 'https://u:p@hooks.example/' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].url'],
      ['not a URL', { webhooks: [sub({ url: 'hooks' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].url'],
      ['unknown event type', { webhooks: [sub({ events: ['stale', 'exploded'] })] }, 'MISUSE_ARGUMENT', 'webhooks[0].events[1]'],
      ['repeated event type', { webhooks: [sub({ events: ['stale', 'stale'] })] }, 'MISUSE_ARGUMENT', 'webhooks[0].events[1]'],
      ['empty events', { webhooks: [sub({ events: [] })] }, 'MISUSE_ARGUMENT', 'webhooks[0].events'],
      ['bad group', { webhooks: [sub({ groups: ['GPU'] })] }, 'MISUSE_ARGUMENT', 'webhooks[0].groups[0]'],
      ['no secretFile', { webhooks: [sub({ secretFile: undefined })] }, 'MISUSE_ARGUMENT', 'webhooks[0].secretFile'],
      ['missing secret file', { webhooks: [sub({ secretFile: 'absent.whsec' })] }, 'MISUSE_FILE_UNREADABLE', 'webhooks[0].secretFile'],
      ['secret file others may read', { webhooks: [sub({ secretFile: open.path })] }, 'MISUSE_ARGUMENT', 'webhooks[0].secretFile'],
      ['secret under 32 bytes', { webhooks: [sub({ secretFile: short.path })] }, 'MISUSE_ARGUMENT', 'webhooks[0].secretFile'],
      ['secret not whsec_ base64', { webhooks: [sub({ secretFile: 'raw.whsec' })] }, 'MISUSE_ARGUMENT', 'webhooks[0].secretFile'],
      ['unknown delivery key', { webhooks: [], delivery: { retries: 3 } }, 'MISUSE_ARGUMENT', 'delivery.retries'],
      ['maxAttempts 0', { webhooks: [], delivery: { maxAttempts: 0 } }, 'MISUSE_ARGUMENT', 'delivery.maxAttempts'],
      ['maxDelay under initialDelay', { webhooks: [], delivery: { initialDelayMs: 5000, maxDelayMs: 1000 } }, 'MISUSE_ARGUMENT', 'delivery.maxDelayMs'],
    ];
    cases.forEach(([what, doc, code, field], i) => {
      expect(errorOf(() => loadWebhookConfig(write(`bad-${i}.json`, doc))), what).toEqual({ code, field });
    });
    expect(errorOf(() => loadWebhookConfig(join(dir, 'absent.json')))).toEqual({ code: 'MISUSE_FILE_UNREADABLE', field: '--webhooks' });
    expect(codeOf(() => parseWebhookSecret('whsec_not*base64'))).toBe('MISUSE_ARGUMENT');
  });

  it('vouch verifier start --webhooks FILE reaches the server configuration', () => {
    const opts = withWebhookOptions(new Command().exitOverride()).parse(['--webhooks', 'hooks.json'], { from: 'user' }).opts<Record<string, unknown>>();
    expect(opts).toEqual({ webhooks: 'hooks.json' });
    const base: VerifierStartOptions = { dataDir: 'd', listen: '127.0.0.1:0', tpmCaDir: [], policy: ['g=p.yaml'], verifierId: 'v', challengeTtl: '60', rateLimit: '10', logLevel: 'info' };
    expect(verifierConfig({ ...base, webhooks: 'hooks.json' }).webhooksFile).toBe('hooks.json');
    expect(verifierConfig(base).webhooksFile).toBeUndefined();
    expect(codeOf(() => verifierConfig({ ...base, webhooks: ' ' }))).toBe('MISUSE_ARGUMENT');
  });
});
