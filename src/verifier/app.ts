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
 *   GET  /v1/heartbeat                    the last heartbeat decision (seq, hash, time)
 *
 * Admin routes (bearer token; see ./auth.ts), in an encapsulated scope that requires a role:
 *   GET  /v1/nodes                        nodes the token reaches, with their state (admin, operator)
 *   GET  /v1/nodes/:id                    one node (admin, operator)
 *   POST /v1/nodes/:id/revoke             {reason} → revoked, recorded (admin, operator)
 *   POST /v1/nodes/:id/readmit            {reason} → re-admitted, untrusted until it attests (admin, operator)
 *   GET  /v1/events                       node state changes as server-sent events (admin, operator); the same
 *                                         events go to the configured webhooks (./webhooks.ts), `stale` from ./stale.ts
 *   POST /v1/authorize                    {node, action, resource} → admission artifact or refusal (relying-party)
 *
 * Ledger routes (./ledger-routes.ts): the latest signed checkpoint (public), inclusion and
 * consistency proofs (any token), checkpoints on demand, entries and replay (admin, operator).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { ERRORS, ParseError, UnavailableError, VerificationError } from '../lib/errors.js';
import { decodeEvidenceCborWithDigest, decodeEvidenceJsonValue, EVIDENCE_MAX_BYTES } from '../evidence/envelope.js';
import { installCborParser, installErrorHandling, rateLimit } from './plugins.js';
import type { VerifierService } from './service.js';
import { authenticate, principalReachesGroup, requireRole, TokenRegistry, type Principal } from './auth.js';
import { NodeAdmin } from './nodes.js';
import { admissionRoutes, type AdmissionConfig } from './admission.js';
import type { NodeEvent } from './events.js';
import { Heartbeat, lastHeartbeat, type HeartbeatTimers } from './heartbeat.js';
import { SecretBroker } from '../secrets/broker.js';
import type { SecretsMasterKey } from '../secrets/at-rest.js';
import { registerSecretRoutes } from './secrets-routes.js';
import { StaleWatcher, type StaleTimers } from './stale.js';
import { WebhookDispatcher, type WebhookConfig } from './webhooks.js';
import { CheckpointTimer, LedgerService } from './ledger.js';
import { registerLedgerRoutes } from './ledger-routes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The webhook deliveries of {@link AppOptions.webhooks} (counters), or null. */
    webhooks: WebhookDispatcher | null;
    /** The stale watcher of {@link AppOptions.staleCheck}, or null. */
    staleWatcher: StaleWatcher | null;
    /** The ledger's Merkle tree, checkpoints and proofs. */
    ledger: LedgerService;
  }
}

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
const NodeParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' }) }, { additionalProperties: false });
const NodeListQuery = Type.Object(
  { after: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' })), limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })) },
  { additionalProperties: false },
);
const ReasonBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false });

/** Options of {@link buildApp}. */
export interface AppOptions {
  readonly logger?: FastifyServerOptions['logger'];
  /** Requests per client per minute on enrollment and challenge routes. */
  readonly rateLimitPerMinute?: number;
  /** Bearer tokens of the admin API; absent: no token works (every admin call is 401). */
  readonly tokens?: TokenRegistry;
  /** Node state and tenancy for the admin API (re-attestation per group, group → tenant). */
  readonly nodes?: Omit<ConstructorParameters<typeof NodeAdmin>[0], 'store' | 'clock'>;
  /** Append a heartbeat decision at this period while the app runs; absent: no heartbeat. */
  readonly heartbeat?: { readonly periodMs: number; readonly timers?: HeartbeatTimers };
  /** Job admission rules (see ./admission.ts); absent: every resource is unknown, so every request is refused. */
  readonly admission?: AdmissionConfig;
  /** The secrets master key; absent: no secret routes (see ./secrets-routes.ts). */
  readonly secretsKey?: SecretsMasterKey;
  /** Sign a ledger checkpoint at this period while the app runs (when the ledger grew); absent: on demand only. */
  readonly checkpoint?: { readonly periodMs: number; readonly timers?: HeartbeatTimers };
  /** Prune retained inputs older than this (milliseconds), at each checkpoint period; absent: keep them. */
  readonly retainInputsMs?: number;
  /** Node events delivered as signed webhooks (see ./webhooks.ts); absent: none. */
  readonly webhooks?: WebhookConfig;
  /** Publish `stale` events, checking at this period (see ./stale.ts); absent: no stale events. */
  readonly staleCheck?: { readonly periodMs: number; readonly timers?: StaleTimers };
}

/** Never log a bearer token: pino redaction of the header wherever a request is serialised. */
function redactedLogger(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === undefined || logger === false) return false;
  const base = logger === true ? {} : logger;
  return { ...base, redact: { paths: ['req.headers.authorization', 'headers.authorization', 'request.headers.authorization'], censor: '[redacted]' } };
}

/** The principal set by `authenticate` in an admin scope (never null there). */
function principalOf(req: { principal: Principal | null }): Principal {
  if (req.principal === null) throw new VerificationError('AUTH_UNAUTHENTICATED');
  return req.principal;
}

/** Builds the verifier app around a service. */
export async function buildApp(service: VerifierService, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: redactedLogger(opts.logger),
    bodyLimit: 64 * 1024,
    // Validation must reject, never repair: no stripping of unknown keys, no type coercion.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
  });
  installErrorHandling(app);
  installCborParser(app);
  app.decorateRequest('principal', null);
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
    let evidenceBytes: Uint8Array | undefined;
    if (type === 'application/cbor' && Buffer.isBuffer(req.body)) {
      evidenceBytes = new Uint8Array(req.body);
      ({ evidence, digest: evidenceDigest } = decodeEvidenceCborWithDigest(evidenceBytes));
    }
    else if (type === 'application/json') evidence = decodeEvidenceJsonValue(req.body);
    else throw new ParseError('REQUEST_UNSUPPORTED_MEDIA_TYPE', 'evidence must be application/cbor or application/json');
    // Artifact options from the query: `format=jwt|cwt`, `nonce=<relying party nonce>` (echoed as eat_nonce).
    const query = (req.query ?? {}) as Record<string, unknown>;
    const format = query['format'] ?? 'jwt';
    if (format !== 'jwt' && format !== 'cwt') throw new ParseError('REQUEST_MALFORMED', 'query format must be jwt or cwt', { field: 'format' });
    const nonce = query['nonce'];
    if (nonce !== undefined && (typeof nonce !== 'string' || !/^[\x21-\x7e]{8,88}$/.test(nonce))) throw new ParseError('REQUEST_MALFORMED', 'query nonce must be 8..88 printable ASCII characters', { field: 'nonce' });
    const result = await service.attest(evidence, { ...(evidenceDigest !== undefined ? { evidenceDigest } : {}), ...(evidenceBytes !== undefined ? { evidenceBytes } : {}), format, ...(nonce !== undefined ? { nonce } : {}) });
    if (result.decision === 'affirming') {
      const ima = result.appraisal.claims?.runtime;
      return reply.status(200).send({
        decision: result.decision,
        nodeId: result.nodeId,
        artifact: result.artifact,
        artifactFormat: result.artifactFormat,
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

  // Admin: nodes. Every route of this scope requires a token with one of the roles.
  const nodes = new NodeAdmin({ ...(opts.nodes ?? {}), store: service.deps.store, clock, events: service.events });
  const tokens = opts.tokens ?? TokenRegistry.empty();
  // Open event streams, ended when the app closes (so close() never waits on a subscriber).
  const closers = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...closers]) end();
  });
  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['admin', 'operator']);
    scope.get<{ Querystring: Static<typeof NodeListQuery> }>('/v1/nodes', { schema: { querystring: NodeListQuery } }, async (req) =>
      nodes.list(principalOf(req), req.query.after ?? null, req.query.limit === undefined ? 100 : Number(req.query.limit)),
    );
    scope.get<{ Params: Static<typeof NodeParams> }>('/v1/nodes/:id', { schema: { params: NodeParams } }, async (req) => nodes.view(await nodes.get(principalOf(req), req.params.id)));
    scope.post<{ Params: Static<typeof NodeParams>; Body: Static<typeof ReasonBody> }>('/v1/nodes/:id/revoke', { schema: { params: NodeParams, body: ReasonBody } }, async (req) =>
      nodes.revoke(principalOf(req), req.params.id, req.body.reason),
    );
    scope.post<{ Params: Static<typeof NodeParams>; Body: Static<typeof ReasonBody> }>('/v1/nodes/:id/readmit', { schema: { params: NodeParams, body: ReasonBody } }, async (req) =>
      nodes.readmit(principalOf(req), req.params.id, req.body.reason),
    );
    // Server-sent events: one `event: <type>` per node state change the token reaches, `id` the ledger seq.
    scope.get('/v1/events', async (req, reply) => {
      const p = principalOf(req);
      const tenants = opts.nodes?.groupTenants;
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      raw.write(': vouch events\n\n');
      const unsubscribe = service.events.subscribe((e: NodeEvent) => {
        if (!principalReachesGroup(p, e.group, tenants?.get(e.group))) return;
        raw.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      });
      const end = (): void => {
        unsubscribe();
        closers.delete(end);
        if (!raw.writableEnded) raw.end();
      };
      req.raw.on('close', end);
      raw.on('close', end);
      closers.add(end);
    });
  });

  // Job admission: relying-party tokens, in their own scope.
  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['relying-party']);
    admissionRoutes(scope, {
      store: service.deps.store,
      signer: service.deps.signer,
      clock,
      verifierId: service.settings.verifierId,
      config: opts.admission ?? { resources: {} },
      reattestationOf: (g) => nodes.reattestationOf(g),
      ...(opts.nodes?.groupTenants !== undefined ? { groupTenants: opts.nodes.groupTenants } : {}),
    });
  });

  // Key broker: secrets (admin scope) and their release to attested nodes.
  if (opts.secretsKey !== undefined) {
    const broker = new SecretBroker({
      store: service.deps.store,
      clock,
      masterKey: opts.secretsKey,
      jwks: async () => service.deps.signer.currentJwks(),
      reattestationOf: (g) => nodes.reattestationOf(g),
    });
    await registerSecretRoutes(app, broker, tokens);
  }

  // Liveness for relying parties: the last heartbeat decision (public, like the JWKS).
  app.get('/v1/heartbeat', async () => {
    const hb = await lastHeartbeat(service.deps.store);
    if (hb === null) throw new UnavailableError('HEARTBEAT_MISSING');
    return { ...hb, verifierId: service.settings.verifierId, ...(heartbeat !== undefined ? { periodMs: heartbeat.periodMs } : {}) };
  });
  const heartbeat =
    opts.heartbeat === undefined
      ? undefined
      : new Heartbeat({
          store: service.deps.store,
          clock,
          verifierId: service.settings.verifierId,
          periodMs: opts.heartbeat.periodMs,
          ...(opts.heartbeat.timers !== undefined ? { timers: opts.heartbeat.timers } : {}),
          onError: (e) => app.log.error({ err: e }, 'heartbeat not recorded'),
        });
  if (heartbeat !== undefined) {
    app.addHook('onReady', async () => heartbeat.start());
    app.addHook('onClose', async () => heartbeat.stop());
  }

  // Continuous attestation: webhooks for the bus's events (subscribed first, so they see `stale`
  // too), and the stale watcher.
  const webhooks = opts.webhooks === undefined ? null : new WebhookDispatcher({ config: opts.webhooks, verifierId: service.settings.verifierId, clock, log: app.log });
  const staleWatcher =
    opts.staleCheck === undefined
      ? null
      : new StaleWatcher({
          store: service.deps.store,
          nodes,
          events: service.events,
          clock,
          periodMs: opts.staleCheck.periodMs,
          ...(opts.staleCheck.timers !== undefined ? { timers: opts.staleCheck.timers } : {}),
          onError: (e) => app.log.error({ err: e }, 'stale check failed'),
        });
  app.decorate('webhooks', webhooks);
  app.decorate('staleWatcher', staleWatcher);
  if (webhooks !== null) {
    app.addHook('onReady', async () => webhooks.start(service.events));
    app.addHook('onClose', async () => webhooks.stop());
  }
  if (staleWatcher !== null) {
    app.addHook('onReady', async () => staleWatcher.start());
    app.addHook('onClose', async () => staleWatcher.stop());
  }

  // The ledger: Merkle tree, checkpoints (periodic and on demand), proofs, replay.
  const ledger = new LedgerService({ store: service.deps.store, signer: service.deps.signer, clock, verifierId: service.settings.verifierId, recordSigningKeys: () => service.recordSigningKeys() });
  app.decorate('ledger', ledger);
  await registerLedgerRoutes(app, ledger, service.deps.store, tokens);
  const retainMs = opts.retainInputsMs;
  const checkpoints =
    opts.checkpoint === undefined
      ? undefined
      : new CheckpointTimer({
          ledger,
          periodMs: opts.checkpoint.periodMs,
          ...(opts.checkpoint.timers !== undefined ? { timers: opts.checkpoint.timers } : {}),
          onError: (e) => app.log.error({ err: e }, 'ledger checkpoint not signed'),
          ...(retainMs !== undefined ? { alsoEachPeriod: async () => void (await service.deps.store.pruneInputs(clock() - retainMs, clock())) } : {}),
        });
  if (checkpoints !== undefined) {
    app.addHook('onReady', async () => checkpoints.start());
    // A last checkpoint on a clean shutdown, so the newest decisions are under a signed root too.
    app.addHook('preClose', async () => {
      checkpoints.stop();
      await ledger.checkpoint().catch((e: unknown) => app.log.error({ err: e }, 'final ledger checkpoint not signed'));
    });
  }

  // currentJwks picks up a rotation made by `vouch verifier rotate-key` while the verifier runs.
  app.get('/.well-known/jwks.json', async () => service.deps.signer.currentJwks());
  app.get('/healthz', async () => ({ ok: true, schema: await service.deps.store.schemaVersion() }));
  return app;
}
