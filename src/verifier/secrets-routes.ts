/**
 * Key broker routes (src/secrets/broker.ts).
 *
 *   PUT    /v1/secrets/:id            {value (base64url), releasePolicy} → stored (admin)
 *   GET    /v1/secrets                ids and release policies, never values (admin)
 *   DELETE /v1/secrets/:id            removed (admin)
 *   POST   /v1/secrets/:id/release    {artifact, pop: {challenge, signature}, tpmBound?} → HPKE-sealed secret,
 *                                     or a refusal with every reason (no token: the artifact and
 *                                     the proof of possession of its cnf key authenticate)
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ERRORS, VerificationError } from '../lib/errors.js';
import type { SecretBroker } from '../secrets/broker.js';
import { authenticate, requireRole, type Principal, type TokenRegistry } from './auth.js';

const SecretParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }) }, { additionalProperties: false });
const PutBody = Type.Object(
  { value: Type.String({ pattern: '^[A-Za-z0-9_-]{1,10923}$' }), releasePolicy: Type.Object({}, { additionalProperties: true }) },
  { additionalProperties: false },
);
const ReleaseBody = Type.Object(
  {
    artifact: Type.String({ minLength: 1, maxLength: 32 * 1024 }),
    pop: Type.Object(
      { challenge: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }), signature: Type.String({ pattern: '^[A-Za-z0-9_-]{1,256}$' }) },
      { additionalProperties: false },
    ),
    /** Ask for a TPM-bound release (the release policy may also require one). */
    tpmBound: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

function principalOf(req: { principal: Principal | null }): Principal {
  if (req.principal === null) throw new VerificationError('AUTH_UNAUTHENTICATED');
  return req.principal;
}

/** Registers the secret routes: the admin ones in their own encapsulated scope (role admin). */
export async function registerSecretRoutes(app: FastifyInstance, broker: SecretBroker, tokens: TokenRegistry): Promise<void> {
  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['admin']);
    scope.put<{ Params: Static<typeof SecretParams>; Body: Static<typeof PutBody> }>('/v1/secrets/:id', { schema: { params: SecretParams, body: PutBody } }, async (req) =>
      broker.put(principalOf(req), req.params.id, req.body.value, req.body.releasePolicy),
    );
    scope.get('/v1/secrets', async (req) => broker.list(principalOf(req)));
    scope.delete<{ Params: Static<typeof SecretParams> }>('/v1/secrets/:id', { schema: { params: SecretParams } }, async (req) => broker.remove(principalOf(req), req.params.id));
  });
  app.post<{ Params: Static<typeof SecretParams>; Body: Static<typeof ReleaseBody> }>(
    '/v1/secrets/:id/release',
    { schema: { params: SecretParams, body: ReleaseBody } },
    async (req, reply) => {
      const out = await broker.release(req.params.id, req.body.artifact, req.body.pop, req.body.tpmBound === true ? { tpmBound: true } : {});
      if (out.decision === 'released') return out;
      // A refusal answers like any other error: the first reason's code and status, every reason in `failures`.
      const first = out.failures[0];
      return reply.status(first === undefined ? 403 : ERRORS[first.code].status).send({
        ...out,
        error: first === undefined ? undefined : { code: first.code, category: ERRORS[first.code].category, message: first.message, ...(first.field !== undefined ? { field: first.field } : {}) },
      });
    },
  );
}
