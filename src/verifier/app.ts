/**
 * The verifier as a fastify plugin tree: plugins first (errors, body parsers), then routes, each
 * with a TypeBox schema that rejects unknown properties. `server.ts` only runs the process; tests
 * build this app and call it with `inject`.
 *
 * Routes:
 *   POST /v1/enrollments                  EK + AK → credential to activate (rate-limited)
 *   POST /v1/enrollments/:id/activate     activated secret → node enrolled
 *   POST /v1/enrollments/snp              SNP-only node: group + node key → nonce (rate-limited)
 *   POST /v1/enrollments/snp/:id          report + cert table + key proof → node enrolled (rate-limited)
 *   POST /v1/challenges                   node id → single-use nonce + PCR selection (rate-limited)
 *   POST /v1/attestations                 evidence (application/cbor or application/json) → decision + artifact
 *   GET  /.well-known/jwks.json           artifact verification keys
 *   GET  /healthz                         liveness and database reachability
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ERRORS, ParseError } from '../lib/errors.js';
import { decodeEvidenceCborWithDigest, decodeEvidenceJsonValue, EVIDENCE_MAX_BYTES } from '../evidence/envelope.js';
import { installCborParser, installErrorHandling, rateLimit } from './plugins.js';
import type { VerifierService } from './service.js';

const B64 = Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 16384 });

const EnrollBody = Type.Object(
  {
    group: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    ekPublic: B64,
    ekCertificates: Type.Array(B64, { maxItems: 16 }),
    akPublic: B64,
  },
  { additionalProperties: false },
);
const ActivateBody = Type.Object({ secret: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }) }, { additionalProperties: false });
const ActivateParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{32}$' }) }, { additionalProperties: false });
const SnpEnrollBody = Type.Object(
  {
    group: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    // A P-256 SPKI is 91 bytes; parseNodeKey holds it to one encoding.
    nodeKey: Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$' }),
  },
  { additionalProperties: false },
);
/** A certificate table (VCEK or VLEK, ASK or ASVK, ARK, CRL) is a few KiB; 64 KiB at most, as the agent accepts. */
const SNP_CERT_TABLE_B64_MAX = Math.ceil((64 * 1024 * 4) / 3);
const SnpCompleteBody = Type.Object(
  {
    report: Type.String({ pattern: '^[A-Za-z0-9_-]{1,2048}$' }),
    certTable: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: SNP_CERT_TABLE_B64_MAX })),
    keyProof: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }),
  },
  { additionalProperties: false },
);
const ChallengeBody = Type.Object({ nodeId: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' }) }, { additionalProperties: false });

/** Options of {@link buildApp}. */
export interface AppOptions {
  readonly logger?: FastifyServerOptions['logger'];
  /** Requests per client per minute on enrollment and challenge routes. */
  readonly rateLimitPerMinute?: number;
}

/** Builds the verifier app around a service. */
export async function buildApp(service: VerifierService, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 64 * 1024,
    // Validation must reject, never repair: no stripping of unknown keys, no type coercion.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
  });
  installErrorHandling(app);
  installCborParser(app);
  const clock = service.deps.clock;
  const limit = opts.rateLimitPerMinute ?? 120;

  // State-creating routes for unauthenticated callers, in their own scope with a rate limit.
  await app.register(async (scope) => {
    rateLimit(scope, { max: limit, windowMs: 60_000, clock });
    scope.post<{ Body: Static<typeof EnrollBody> }>('/v1/enrollments', { schema: { body: EnrollBody } }, async (req, reply) => {
      const out = await service.enroll(req.body);
      return reply.status(201).send(out);
    });
    scope.post<{ Body: Static<typeof ActivateBody>; Params: Static<typeof ActivateParams> }>(
      '/v1/enrollments/:id/activate',
      { schema: { body: ActivateBody, params: ActivateParams } },
      async (req) => service.activate(req.params.id, req.body.secret),
    );
    scope.post<{ Body: Static<typeof SnpEnrollBody> }>('/v1/enrollments/snp', { schema: { body: SnpEnrollBody } }, async (req, reply) => {
      const out = await service.enrollSnp(req.body);
      return reply.status(201).send(out);
    });
    scope.post<{ Body: Static<typeof SnpCompleteBody>; Params: Static<typeof ActivateParams> }>(
      '/v1/enrollments/snp/:id',
      { schema: { body: SnpCompleteBody, params: ActivateParams }, bodyLimit: 128 * 1024 },
      async (req) => service.completeSnpEnrollment(req.params.id, req.body),
    );
    scope.post<{ Body: Static<typeof ChallengeBody> }>('/v1/challenges', { schema: { body: ChallengeBody } }, async (req, reply) => {
      const out = await service.challenge(req.body.nodeId);
      return reply.status(201).send(out);
    });
  });

  // Evidence: larger bodies, CBOR or JSON by content type (never guessed).
  app.post('/v1/attestations', { bodyLimit: EVIDENCE_MAX_BYTES }, async (req, reply) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    let evidence;
    let evidenceDigest: Uint8Array | undefined;
    if (type === 'application/cbor' && Buffer.isBuffer(req.body)) ({ evidence, digest: evidenceDigest } = decodeEvidenceCborWithDigest(new Uint8Array(req.body)));
    else if (type === 'application/json') evidence = decodeEvidenceJsonValue(req.body);
    else throw new ParseError('REQUEST_UNSUPPORTED_MEDIA_TYPE', 'evidence must be application/cbor or application/json');
    const result = await service.attest(evidence, evidenceDigest !== undefined ? { evidenceDigest } : {});
    if (result.decision === 'affirming') {
      const ima = result.appraisal.claims?.runtime;
      return reply.status(200).send({
        decision: result.decision,
        nodeId: result.nodeId,
        artifact: result.artifact,
        ledger: result.ledger,
        // Where the agent's next IMA chunk starts.
        ...(ima !== undefined ? { ima: { entries: ima.entries } } : {}),
      });
    }
    // A refusal answers like any other error: the first failure's registry code and HTTP status
    // (every failure is listed in `failures`).
    const first = result.failures[0];
    return reply.status(first === undefined ? 403 : ERRORS[first.code].status).send({
      decision: result.decision,
      nodeId: result.nodeId,
      error:
        first === undefined
          ? undefined
          : {
              code: first.code,
              category: ERRORS[first.code].category,
              message: first.message,
              ...(first.field !== undefined ? { field: first.field } : {}),
              ...(first.expected !== undefined ? { expected: first.expected } : {}),
              ...(first.actual !== undefined ? { actual: first.actual } : {}),
            },
      failures: result.failures,
      ledger: result.ledger,
      appraisal: result.appraisal,
    });
  });

  app.get('/.well-known/jwks.json', async () => service.deps.signer.jwks());
  app.get('/healthz', async () => ({ ok: true, schema: await service.deps.store.schemaVersion() }));
  return app;
}
