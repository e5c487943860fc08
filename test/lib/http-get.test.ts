import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedFetcher } from '../../src/lib/http-get.js';

class Unavailable extends Error {}
class TooLarge extends Error {}

/** A loopback server: /small answers 10 bytes, /chunked streams 5,000 bytes with no Content-Length, /declared claims 10 MB. */
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/small') return void res.writeHead(200, { 'content-length': '10', 'x-a': 'b' }).end(Buffer.alloc(10, 1));
    if (req.url === '/chunked') {
      res.writeHead(200);
      for (let i = 0; i < 5; i++) res.write(Buffer.alloc(1000, 2));
      return void res.end();
    }
    if (req.url === '/declared') return void res.writeHead(200, { 'content-length': String(10_000_000) }).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const fetcher = (maxBytes: number) =>
  boundedFetcher({ service: 'test', timeoutMs: 2000, maxBytes, unavailable: (m) => new Unavailable(m), tooLarge: (m) => new TooLarge(m) });

describe('boundedFetcher', () => {
  it('returns status, lower-cased headers and the whole body', async () => {
    const r = await fetcher(100)(`${base}/small`);
    expect(r.status).toBe(200);
    expect(r.headers['x-a']).toBe('b');
    expect(r.body).toEqual(new Uint8Array(10).fill(1));
    expect((await fetcher(100)(`${base}/nope`)).status).toBe(404);
  });

  it('refuses a body over the limit, declared or streamed without a Content-Length', async () => {
    await expect(fetcher(1000)(`${base}/declared`)).rejects.toBeInstanceOf(TooLarge);
    await expect(fetcher(4000)(`${base}/chunked`)).rejects.toBeInstanceOf(TooLarge);
    expect((await fetcher(5000)(`${base}/chunked`)).body.length).toBe(5000);
  });

  it('an unreachable service is the caller\'s unavailable error', async () => {
    await expect(fetcher(100)('http://127.0.0.1:1/x')).rejects.toBeInstanceOf(Unavailable);
  });
});
