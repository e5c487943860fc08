/**
 * Ledger routes (issue #8).
 *
 *   GET  /v1/ledger/checkpoint                      the latest signed checkpoint (public, like the JWKS)
 *   GET  /v1/ledger/proofs/inclusion/:seq           ?treeSize=N → entry, leaf hash, path, checkpoint (any token)
 *   GET  /v1/ledger/proofs/consistency              ?from=M[&to=N] → path between two checkpoints (any token)
 *   POST /v1/ledger/checkpoints                     sign a checkpoint now (admin, operator)
 *   GET  /v1/ledger/entries                         ?from=&limit= → rows (seq, hash, entry) (admin, operator)
 *   GET  /v1/ledger/checkpoints                     ?from=&limit= → stored checkpoints (admin, operator)
 *   POST /v1/ledger/replay                          {seq} → replay; {from, to, policy, group?} → policy dry run (admin)
 *
 * Proofs carry the entry's bytes (the decision's details), so they need a token: a relying party
 * asks for the proof of the decision behind an artifact it holds.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { toBase64Url, toHex } from '../lib/bytes.js';
import { MisuseError } from '../lib/errors.js';
import { decodeCheckpoint } from '../ledger/checkpoint.js';
import { parsePolicy } from '../policy/index.js';
import type { Store } from '../store/types.js';
import { authenticate, requireRole, type TokenRegistry } from './auth.js';
import type { LedgerService } from './ledger.js';
import { dryRunPolicy, replayDecision } from './replay.js';

const Int = Type.String({ pattern: '^[1-9][0-9]{0,15}$' });
const SeqParams = Type.Object({ seq: Int }, { additionalProperties: false });
const TreeSizeQuery = Type.Object({ treeSize: Type.Optional(Int) }, { additionalProperties: false });
const ConsistencyQuery = Type.Object({ from: Int, to: Type.Optional(Int) }, { additionalProperties: false });
const PageQuery = Type.Object({ from: Type.Optional(Int), limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$' })) }, { additionalProperties: false });
const ReplayBody = Type.Union([
  Type.Object({ seq: Type.Integer({ minimum: 1 }), policy: Type.Optional(Type.String({ minLength: 1, maxLength: 256 * 1024 })) }, { additionalProperties: false }),
  Type.Object(
    { from: Type.Integer({ minimum: 1 }), to: Type.Integer({ minimum: 1 }), policy: Type.String({ minLength: 1, maxLength: 256 * 1024 }), group: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,64}$' })) },
    { additionalProperties: false },
  ),
]);

/** A policy document sent to the replay route: JSON when it starts with `{`, else YAML. */
function policyOf(text: string): ReturnType<typeof parsePolicy> {
  return parsePolicy(text, text.trimStart().startsWith('{') ? 'json' : 'yaml');
}

/** Registers the ledger routes. */
export async function registerLedgerRoutes(app: FastifyInstance, ledger: LedgerService, store: Store, tokens: TokenRegistry): Promise<void> {
  app.get('/v1/ledger/checkpoint', async () => {
    const c = (await store.latestCheckpoint()) ?? (await ledger.checkpoint());
    if (c === null) throw new MisuseError('LEDGER_SEQ_UNKNOWN', 'the ledger is empty');
    const d = decodeCheckpoint(c.jws);
    return { treeSize: c.treeSize, rootHash: toHex(c.rootHash), time: c.signedAt, kid: c.kid, verifierId: d.head.verifierId, checkpoint: c.jws };
  });

  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['admin', 'operator', 'relying-party']);
    scope.get<{ Params: Static<typeof SeqParams>; Querystring: Static<typeof TreeSizeQuery> }>(
      '/v1/ledger/proofs/inclusion/:seq',
      { schema: { params: SeqParams, querystring: TreeSizeQuery } },
      async (req) => ledger.inclusionProof(Number(req.params.seq), req.query.treeSize === undefined ? undefined : Number(req.query.treeSize)),
    );
    scope.get<{ Querystring: Static<typeof ConsistencyQuery> }>('/v1/ledger/proofs/consistency', { schema: { querystring: ConsistencyQuery } }, async (req) =>
      ledger.consistencyProof(Number(req.query.from), req.query.to === undefined ? undefined : Number(req.query.to)),
    );
  });

  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['admin', 'operator']);
    scope.post('/v1/ledger/checkpoints', async (_req, reply) => {
      const c = await ledger.checkpoint();
      if (c === null) throw new MisuseError('LEDGER_SEQ_UNKNOWN', 'the ledger is empty');
      return reply.status(201).send({ treeSize: c.treeSize, rootHash: toHex(c.rootHash), time: c.signedAt, kid: c.kid, checkpoint: c.jws });
    });
    scope.get<{ Querystring: Static<typeof PageQuery> }>('/v1/ledger/entries', { schema: { querystring: PageQuery } }, async (req) => {
      const rows = await store.listDecisions(Number(req.query.from ?? '1'), Number(req.query.limit ?? '1000'));
      return { entries: rows.map((r) => ({ seq: r.seq, hash: toHex(r.hash), entry: toBase64Url(r.entry) })) };
    });
    scope.get<{ Querystring: Static<typeof PageQuery> }>('/v1/ledger/checkpoints', { schema: { querystring: PageQuery } }, async (req) => {
      const cs = await store.listCheckpoints(Number(req.query.from ?? '1'), Number(req.query.limit ?? '1000'));
      return { checkpoints: cs.map((c) => ({ treeSize: c.treeSize, rootHash: toHex(c.rootHash), time: c.signedAt, kid: c.kid, checkpoint: c.jws })) };
    });
  });

  await app.register(async (scope) => {
    authenticate(scope, tokens);
    requireRole(scope, ['admin']);
    scope.post<{ Body: Static<typeof ReplayBody> }>('/v1/ledger/replay', { schema: { body: ReplayBody }, bodyLimit: 512 * 1024 }, async (req) => {
      const b = req.body;
      if ('seq' in b) return replayDecision(store, b.seq, b.policy !== undefined ? { policy: policyOf(b.policy) } : {});
      return dryRunPolicy(store, policyOf(b.policy), { from: b.from, to: b.to, ...(b.group !== undefined ? { group: b.group } : {}) });
    });
  });
}
