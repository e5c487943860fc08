/**
 * Cross-cutting plugins of the verifier: the error contract, the CBOR body parser and a
 * per-client rate limit for the routes that create state.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVouchError, ERRORS, type ErrorCode } from '../lib/errors.js';
import { RefusalError } from './service.js';

/** The JSON body of every error answer. */
export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly category: string; readonly message: string; readonly field?: string; readonly expected?: string; readonly actual?: string };
  readonly failures?: readonly unknown[];
  readonly ledger?: { readonly seq: number; readonly hash: string };
}

function send(reply: FastifyReply, code: ErrorCode, message: string, extra: Partial<ErrorBody> & { field?: string } = {}): FastifyReply {
  const row = ERRORS[code];
  const { field, ...rest } = extra;
  return reply.status(row.status).send({
    error: { code, category: row.category, message, ...(field !== undefined ? { field } : {}) },
    ...rest,
  });
}

/**
 * Maps every error to a registry code. A VouchError keeps its code; fastify's own validation and
 * body errors become REQUEST_*; anything else is a 500 APPRAISAL_INTERNAL_ERROR whose detail stays
 * in the log, never in the answer.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof RefusalError) {
      return send(reply, err.code, err.message, { ...(err.field !== undefined ? { field: err.field } : {}), failures: err.failures, ...(err.ledger !== undefined ? { ledger: err.ledger } : {}) });
    }
    if (isVouchError(err)) {
      if (err.category === 'unavailable') req.log.error({ code: err.code }, err.message);
      return reply.status(err.status).send({ error: err.toJSON() });
    }
    const fe = err as FastifyError;
    if (fe.validation !== undefined) return send(reply, 'REQUEST_MALFORMED', fe.message);
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, 'REQUEST_TOO_LARGE', 'the request body exceeds the size limit');
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return send(reply, 'REQUEST_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type');
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe.statusCode === 400) {
      return send(reply, 'REQUEST_MALFORMED', 'the request body does not parse');
    }
    req.log.error({ err }, 'unexpected error');
    return send(reply, 'APPRAISAL_INTERNAL_ERROR', 'internal error; nothing was authorized');
  });
  app.setNotFoundHandler((_req, reply) => send(reply, 'NOT_FOUND', 'no such route'));
}

/** application/cbor bodies arrive as raw bytes; the route decodes them strictly. */
export function installCborParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/cbor', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });
}

/** A fixed-window request limit per client address for one route scope. */
export function rateLimit(app: FastifyInstance, opts: { max: number; windowMs: number; clock: () => number }): void {
  const windows = new Map<string, { start: number; count: number }>();
  app.addHook('onRequest', async (req, reply) => {
    const now = opts.clock();
    const key = req.ip;
    let w = windows.get(key);
    if (w === undefined || now - w.start >= opts.windowMs) {
      w = { start: now, count: 0 };
      windows.set(key, w);
      if (windows.size > 10_000) for (const [k, v] of windows) if (now - v.start >= opts.windowMs) windows.delete(k);
    }
    w.count++;
    if (w.count > opts.max) {
      reply.header('retry-after', String(Math.ceil((w.start + opts.windowMs - now) / 1000)));
      return send(reply, 'RATE_LIMITED', 'too many requests; retry later');
    }
  });
}
