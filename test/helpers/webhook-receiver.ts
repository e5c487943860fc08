/**
 * A real webhook receiver for tests: node:http on 127.0.0.1, every request's signature checked
 * with the receiver-side helper (verifyWebhookSignature) against the secret of its path, and an
 * answer scripted per path (a status, or 'hang' for no answer at all).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isVouchError, type ErrorCode } from '../../src/lib/errors.js';
import { verifyWebhookSignature } from '../../src/verifier/webhooks.js';

/** One request as the receiver saw it. */
export interface ReceivedWebhook {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The helper's answer, or the code it threw. */
  readonly verified: { readonly id: string; readonly timestamp: number } | null;
  readonly error: ErrorCode | null;
  /** What the receiver answered (0: nothing). */
  readonly status: number;
}

export type ScriptedAnswer = number | 'hang';

export interface WebhookReceiver {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly received: ReceivedWebhook[];
  /** The answers of the next requests to `path`, in order; after them, 200. */
  script(path: string, answers: readonly ScriptedAnswer[]): void;
  /** Resolves once `n` requests to `path` (or to any path) have arrived. */
  waitFor(n: number, path?: string): Promise<void>;
  close(): Promise<void>;
}

/** A `whsec_` secret file (32 random bytes, mode 0600); returns its path and key. */
export function writeSecretFile(dir: string, name: string, bytes = 32, mode = 0o600): { path: string; key: Uint8Array; text: string } {
  const key = new Uint8Array(randomBytes(bytes));
  const text = `whsec_${Buffer.from(key).toString('base64')}`;
  const path = join(dir, name);
  writeFileSync(path, `${text}\n`);
  chmodSync(path, mode);
  return { path, key, text };
}

/** Polls `cond` every 2 ms (real time) until it holds; fails after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function webhookReceiver(secrets: ReadonlyMap<string, Uint8Array>, now: () => number): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const body = Buffer.concat(chunks).toString('utf8');
      const secret = secrets.get(path);
      let verified: ReceivedWebhook['verified'] = null;
      let error: ErrorCode | null = null;
      // A path without a secret is never verified (verified stays null, which tests reject).
      if (secret !== undefined) {
        try {
          verified = verifyWebhookSignature({ secret, headers: req.headers, body, now: now() });
        } catch (e) {
          if (!isVouchError(e)) throw e;
          error = e.code;
        }
      }
      const answer = scripts.get(path)?.shift() ?? 200;
      received.push({ path, headers: req.headers, body, verified, error, status: answer === 'hang' ? 0 : answer });
      if (answer === 'hang') return;
      res.writeHead(answer, answer >= 300 && answer < 400 ? { location: '/redirected' } : {});
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script(path, answers) {
      scripts.set(path, [...answers]);
    },
    waitFor(n, path) {
      return until(() => received.filter((r) => path === undefined || r.path === path).length >= n, `${n} webhook request(s)${path === undefined ? '' : ` to ${path}`}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
