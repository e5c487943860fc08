/**
 * The one HTTP GET that collateral clients (AMD KDS, Intel PCS) use in production: global
 * `fetch` with a timeout and a body size limit enforced while reading, so a body without a
 * Content-Length cannot grow past the limit either. Failures are thrown as the errors the caller
 * makes (its own registry codes); tests inject fakes instead of calling this.
 */

/** What a GET returned: status, lower-cased headers, the whole body. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** The one network operation a collateral client needs: HTTP GET of `url`. Injected; tests use a fake. */
export type Fetcher = (url: string) => Promise<FetchResponse>;

/** How a service's GETs are bounded and how their failures are named. */
export interface BoundedFetcherOptions {
  /** The service, in messages ("AMD KDS", "Intel PCS"). */
  readonly service: string;
  /** Per-request timeout in milliseconds. */
  readonly timeoutMs: number;
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  /** The error for a service that cannot be reached or whose body cannot be read. */
  readonly unavailable: (message: string, cause: unknown) => Error;
  /** The error for a body over the limit. */
  readonly tooLarge: (message: string) => Error;
}

/** A {@link Fetcher} over the global `fetch`, bounded as `options` says. */
export function boundedFetcher(options: BoundedFetcherOptions): Fetcher {
  const { service, timeoutMs, maxBytes } = options;
  return async (url: string): Promise<FetchResponse> => {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      throw options.unavailable(`${service} cannot be reached: ${url}`, e);
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k.toLowerCase()] = v;
    });
    const declared = Number(headers['content-length'] ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw options.tooLarge(`${service} body of ${declared} bytes exceeds ${maxBytes}: ${url}`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    let overLimit = false;
    try {
      if (res.body !== null) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.length;
          if (size > maxBytes) {
            overLimit = true;
            await reader.cancel().catch(() => undefined);
            break;
          }
          chunks.push(value);
        }
      }
    } catch (e) {
      throw options.unavailable(`${service} body could not be read: ${url}`, e);
    }
    if (overLimit) throw options.tooLarge(`${service} body exceeds ${maxBytes} bytes: ${url}`);
    const body = new Uint8Array(size);
    let o = 0;
    for (const c of chunks) {
      body.set(c, o);
      o += c.length;
    }
    return { status: res.status, headers, body };
  };
}
