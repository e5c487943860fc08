/**
 * Job admission (issue #7, "Job admission"): `POST /v1/authorize {node, action, resource}` for
 * relying-party tokens. A pure decision ({@link decideAdmission}) over the node, its state, its
 * latest appraisal and the resource's rules collects every reason to refuse; the route records
 * each answer as an 'authorize' ledger decision and, on admission, signs a short-lived EAR
 * artifact naming the node (`sub`), the action and resource (`vouch.admission`), the admission
 * decision (`vouch.ledger`) and the appraisal it relied on (`vouch.appraisal`).
 *
 * Configuration (`admission` in the verifier config):
 *
 *   { "lifetimeSeconds": 60,
 *     "resources": { "gpu-pool": { "groups": ["gpu"], "actions": ["run-job"], "maxAgeSeconds": 600,
 *                                  "requireSubmods": ["tpm0"], "trustVector": { "hardware": "affirming" } } } }
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { toHex } from '../lib/bytes.js';
import { createHash } from 'node:crypto';
import { decodeStrict, encodeCanonical } from '../lib/cbor.js';
import { ERRORS, MisuseError, UnavailableError, type ErrorCode } from '../lib/errors.js';
import { canonicalJsonBytes } from '../policy/canonical.js';
import { decodeLedgerEntry } from '../ledger/index.js';
import { AR4SI_CLAIMS, EAR_STATUSES, tierAtLeast, trustTier, type Ar4siClaim, type EarStatus, type TrustVector } from '../artifact/ear.js';
import { AR4SI, ARTIFACT_LIFETIME, buildEarClaims, type ArtifactSigner, type SubmodInput } from '../artifact/index.js';
import type { DecisionRecord, NewRetainedInput, NodeRecord, Store } from '../store/types.js';
import { principalReachesGroup, type Principal } from './auth.js';
import { nodeState, type NodeState, type Reattestation } from './nodes.js';

/** One resource's rules. */
export interface AdmissionResource {
  /** Node groups whose nodes may be admitted. */
  readonly groups: readonly string[];
  /** Actions allowed on the resource (e.g. `run-job`). */
  readonly actions: readonly string[];
  /** Devices that must have been appraised (`tpm0`, `cpu0`). */
  readonly requireSubmods?: readonly string[];
  /** Claims every required (or every) submodule must carry: an exact value or a tier. */
  readonly trustVector?: { readonly [K in Ar4siClaim]?: number | EarStatus };
  /** The latest appraisal must be younger than this. */
  readonly maxAgeSeconds: number;
}

/** The `admission` configuration. */
export interface AdmissionConfig {
  readonly resources: Readonly<Record<string, AdmissionResource>>;
  /** Admission artifact lifetime (30..3600 s, default 60). */
  readonly lifetimeSeconds?: number;
}

const NAME_RE = /^[a-z0-9-]{1,64}$/;
const RESOURCE_KEYS = new Set(['groups', 'actions', 'requireSubmods', 'trustVector', 'maxAgeSeconds']);

function invalid(field: string, message: string): MisuseError {
  return new MisuseError('ADMISSION_CONFIG_INVALID', `admission.${field} ${message}`, { field: `admission.${field}` });
}

function names(v: unknown, field: string, allowEmpty: boolean): string[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || v.length > 256 || !v.every((x) => typeof x === 'string' && NAME_RE.test(x))) {
    throw invalid(field, 'must be a non-empty array of names of [a-z0-9-]');
  }
  return [...(v as string[])];
}

/** Checks an admission configuration strictly: unknown or misspelled keys are errors, never ignored. */
export function parseAdmissionConfig(v: unknown): AdmissionConfig {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid('', 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'resources' && k !== 'lifetimeSeconds') throw invalid(k, 'is not an admission setting');
  const life = o['lifetimeSeconds'];
  if (life !== undefined && (typeof life !== 'number' || !Number.isSafeInteger(life) || life < ARTIFACT_LIFETIME.min || life > ARTIFACT_LIFETIME.max)) {
    throw invalid('lifetimeSeconds', `must be an integer in ${ARTIFACT_LIFETIME.min}..${ARTIFACT_LIFETIME.max}`);
  }
  const res = o['resources'];
  if (res === null || typeof res !== 'object' || Array.isArray(res)) throw invalid('resources', 'must be an object');
  const resources: Record<string, AdmissionResource> = {};
  for (const [name, r] of Object.entries(res as Record<string, unknown>)) {
    const at = `resources.${name}`;
    if (!NAME_RE.test(name)) throw invalid(at, 'is not a name of [a-z0-9-]');
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw invalid(at, 'must be an object');
    const x = r as Record<string, unknown>;
    for (const k of Object.keys(x)) if (!RESOURCE_KEYS.has(k)) throw invalid(`${at}.${k}`, 'is not a resource rule');
    const maxAge = x['maxAgeSeconds'];
    if (typeof maxAge !== 'number' || !Number.isSafeInteger(maxAge) || maxAge < 1 || maxAge > 86_400) throw invalid(`${at}.maxAgeSeconds`, 'must be an integer in 1..86400');
    const tv = x['trustVector'];
    let trustVector: Partial<Record<Ar4siClaim, number | EarStatus>> | undefined;
    if (tv !== undefined) {
      if (tv === null || typeof tv !== 'object' || Array.isArray(tv)) throw invalid(`${at}.trustVector`, 'must be an object');
      trustVector = {};
      for (const [k, want] of Object.entries(tv as Record<string, unknown>)) {
        if (!(AR4SI_CLAIMS as readonly string[]).includes(k)) throw invalid(`${at}.trustVector.${k}`, 'is not an AR4SI claim');
        const ok = (typeof want === 'number' && Number.isInteger(want) && want >= -128 && want <= 127) || (typeof want === 'string' && (EAR_STATUSES as readonly string[]).includes(want));
        if (!ok) throw invalid(`${at}.trustVector.${k}`, 'must be an integer -128..127 or a tier');
        trustVector[k as Ar4siClaim] = want as number | EarStatus;
      }
    }
    resources[name] = {
      groups: names(x['groups'], `${at}.groups`, false),
      actions: names(x['actions'], `${at}.actions`, false),
      ...(x['requireSubmods'] !== undefined ? { requireSubmods: names(x['requireSubmods'], `${at}.requireSubmods`, false) } : {}),
      ...(trustVector !== undefined ? { trustVector } : {}),
      maxAgeSeconds: maxAge,
    };
  }
  return { resources, ...(life !== undefined ? { lifetimeSeconds: life as number } : {}) };
}

/** One reason to refuse. */
export interface AdmissionReason {
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
  readonly expected?: string;
  readonly actual?: string;
}

/** What {@link decideAdmission} reads. */
export interface AdmissionInput {
  readonly action: string;
  readonly resourceName: string;
  /** The resource's rules, or undefined when the configuration does not name it. */
  readonly resource: AdmissionResource | undefined;
  readonly node: Pick<NodeRecord, 'group' | 'revokedAt'> | null;
  readonly state: NodeState | null;
  /** The node's latest appraisal decision and its trust vector per submodule. */
  readonly appraisal: { readonly outcome: string; readonly time: number; readonly submods: Readonly<Record<string, TrustVector>> } | null;
  /** Epoch milliseconds. */
  readonly now: number;
}

function reason(code: ErrorCode, detail: Omit<AdmissionReason, 'code' | 'message'> & { message?: string } = {}): AdmissionReason {
  const { message, ...rest } = detail;
  return { code, message: message ?? ERRORS[code].message, ...rest };
}

/** Every reason to refuse `input` (empty: admit). Pure. */
export function decideAdmission(input: AdmissionInput): AdmissionReason[] {
  const out: AdmissionReason[] = [];
  const r = input.resource;
  if (r === undefined) out.push(reason('ADMISSION_RESOURCE_UNKNOWN', { field: 'resource', actual: input.resourceName }));
  else if (!r.actions.includes(input.action)) out.push(reason('ADMISSION_ACTION_NOT_ALLOWED', { field: 'action', expected: r.actions.join(' | '), actual: input.action }));
  const node = input.node;
  if (node === null) {
    out.push(reason('ADMISSION_NODE_UNKNOWN', { field: 'node' }));
    return out;
  }
  if (r !== undefined && !r.groups.includes(node.group)) out.push(reason('ADMISSION_GROUP_NOT_ALLOWED', { field: 'group', expected: r.groups.join(' | '), actual: node.group }));
  const a = input.appraisal;
  if (input.state === 'revoked') out.push(reason('ADMISSION_NODE_REVOKED', { field: 'node' }));
  else if (input.state === 'stale') out.push(reason('ADMISSION_NODE_STALE', { field: 'node' }));
  else if (a !== null && a.outcome !== 'affirming') out.push(reason('ADMISSION_APPRAISAL_REFUSED', { field: 'appraisal.outcome', expected: 'affirming', actual: a.outcome }));
  else if (input.state !== 'trusted') out.push(reason('ADMISSION_NODE_UNTRUSTED', { field: 'node', actual: input.state ?? 'unknown' }));
  if (a !== null && r !== undefined && input.now - a.time > r.maxAgeSeconds * 1000) {
    out.push(reason('ADMISSION_APPRAISAL_TOO_OLD', { field: 'appraisal.time', expected: `≤ ${r.maxAgeSeconds} s old`, actual: `${Math.floor((input.now - a.time) / 1000)} s old` }));
  }
  if (a !== null && a.outcome === 'affirming' && r !== undefined) {
    for (const s of r.requireSubmods ?? []) if (a.submods[s] === undefined) out.push(reason('ADMISSION_SUBMOD_MISSING', { field: `submods.${s}` }));
    const checked = r.requireSubmods ?? Object.keys(a.submods);
    for (const s of checked) {
      const vector = a.submods[s];
      if (vector === undefined) continue;
      for (const [claim, want] of Object.entries(r.trustVector ?? {})) {
        const have = vector[claim as Ar4siClaim];
        const ok = have !== undefined && (typeof want === 'number' ? have === want : tierAtLeast(trustTier(have), want));
        if (!ok) out.push(reason('ADMISSION_CLAIM_UNMET', { field: `submods.${s}.${claim}`, expected: String(want), actual: have === undefined ? '(absent)' : String(have) }));
      }
    }
  }
  return out;
}

/** The appraisal body fields an admission relies on, read from the ledger entry's exact bytes. */
interface AppraisalBasis {
  readonly record: DecisionRecord;
  readonly policyId: string;
  readonly policyDigest: string;
  readonly evidenceDigest: string;
  readonly boundKeyJwk: unknown;
  readonly submods: Record<string, TrustVector>;
}

const CPU_VECTOR: TrustVector = {
  'instance-identity': AR4SI.instanceIdentity.trustworthy,
  configuration: AR4SI.configuration.approved,
  hardware: AR4SI.hardware.genuine,
  'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory,
};

function basisOf(record: DecisionRecord, node: Pick<NodeRecord, 'kind'>): AppraisalBasis {
  const body = decodeLedgerEntry(record.entry).body as Record<string, unknown>;
  const str = (k: string): string => (typeof body[k] === 'string' ? (body[k] as string) : '');
  const tv = body['trustVector'];
  const vector: TrustVector = tv !== null && typeof tv === 'object' && !Array.isArray(tv) ? (tv as TrustVector) : {};
  const claims = body['claims'];
  const c = claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : {};
  // The same submodules the appraisal's own artifact named (see service.ts attest).
  const submods: Record<string, TrustVector> =
    node.kind === 'snp' ? { cpu0: vector } : { tpm0: vector, ...(c['snp'] !== undefined || c['tdx'] !== undefined ? { cpu0: CPU_VECTOR } : {}) };
  return { record, policyId: str('policyId'), policyDigest: str('policyDigest'), evidenceDigest: str('evidenceDigest'), boundKeyJwk: body['boundKeyJwk'] ?? null, submods };
}

/**
 * Everything an admission decision reads besides the ledger: retained with the decision (an
 * `admission-context` input), so replay (./replay.ts) re-runs {@link evaluateAdmission} with the
 * appraisal and revocation decisions it names, which are in the ledger.
 */
export interface AdmissionContext {
  readonly now: number;
  /** The node id the request named (the node may not be enrolled). */
  readonly requestedNode: string;
  readonly action: string;
  readonly resourceName: string;
  /** The resource's rules in force, or null when the configuration did not name it. */
  readonly resource: AdmissionResource | null;
  /** The node as read, or null when it is not enrolled. */
  readonly node: { readonly nodeId: string; readonly group: string; readonly kind: NodeRecord['kind']; readonly revokedAt: number | null } | null;
  /** The token that asked, whether it reached the node's group, and the group's tenant. */
  readonly principal: { readonly id: string; readonly reaches: boolean; readonly tenant: string | null };
  /** The node group's re-attestation settings (for its state). */
  readonly reattestation: Reattestation;
  /** Ledger positions of the node's last appraisal and last revocation-kind decision, as read. */
  readonly appraisalSeq: number | null;
  readonly revocationSeq: number | null;
}

/**
 * The admission decision from its context and the two decisions it names (pure): every reason
 * to refuse, and the appraisal it relies on.
 */
export function evaluateAdmission(ctx: AdmissionContext, appraisal: DecisionRecord | null, revocation: Pick<DecisionRecord, 'seq'> | null): { reasons: AdmissionReason[]; basis: AppraisalBasis | null } {
  const node = ctx.node;
  if (node !== null && !ctx.principal.reaches) {
    return { reasons: [reason('AUTH_TENANT_FORBIDDEN', { message: `token ${ctx.principal.id} is not scoped to the node's group`, field: 'tenant', ...(ctx.principal.tenant !== null ? { actual: ctx.principal.tenant } : {}) })], basis: null };
  }
  let state: NodeState | null = null;
  let basis: AppraisalBasis | null = null;
  if (node !== null) {
    state = nodeState(node, appraisal, revocation, ctx.now, ctx.reattestation).state;
    if (appraisal !== null) basis = basisOf(appraisal, node);
  }
  let reasons = decideAdmission({
    action: ctx.action,
    resourceName: ctx.resourceName,
    resource: ctx.resource ?? undefined,
    node,
    state,
    appraisal: appraisal === null || basis === null ? null : { outcome: appraisal.outcome, time: appraisal.time, submods: basis.submods },
    now: ctx.now,
  });
  if (reasons.length === 0 && (basis === null || basis.boundKeyJwk === null)) {
    reasons = [reason('ADMISSION_NODE_UNTRUSTED', { field: 'appraisal', message: 'admission refused: the latest appraisal recorded no bound key' })];
  }
  return { reasons, basis };
}

/** The authorize decision's outcome and body. */
export function admissionDecision(ctx: AdmissionContext, reasons: readonly AdmissionReason[], basis: AppraisalBasis | null, contextDigest?: string): { outcome: 'admitted' | 'refused'; body: Record<string, unknown> } {
  const relied = basis === null ? null : { seq: basis.record.seq, hash: toHex(basis.record.hash) };
  return {
    outcome: reasons.length === 0 ? 'admitted' : 'refused',
    body: JSON.parse(JSON.stringify({ node: ctx.node?.nodeId ?? ctx.requestedNode, action: ctx.action, resource: ctx.resourceName, by: ctx.principal.id, appraisal: relied, failures: reasons, ...(contextDigest !== undefined ? { inputs: { context: contextDigest } } : {}) })) as Record<string, unknown>,
  };
}

/** The context as a retained input (canonical CBOR; digest = SHA-256 hex). */
export function encodeAdmissionContext(ctx: AdmissionContext): NewRetainedInput {
  const bytes = encodeCanonical(JSON.parse(JSON.stringify({ v: 1, ...ctx })) as Record<string, unknown>);
  return { digest: createHash('sha256').update(bytes).digest('hex'), kind: 'admission-context', bytes };
}

/** Decodes {@link encodeAdmissionContext}'s bytes. @throws UnavailableError REPLAY_INPUT_MISSING */
export function decodeAdmissionContext(b: Uint8Array): AdmissionContext & { requestedNode: string } {
  const v = decodeStrict(b, { name: 'admission context', maxBytes: 256 * 1024, maxDepth: 8, maxItems: 4096 });
  const bad = (m: string): UnavailableError => new UnavailableError('REPLAY_INPUT_MISSING', `admission context: ${m}`, { field: 'admission context' });
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array || v instanceof Map || v['v'] !== 1) throw bad('not a version 1 context');
  const o = v as Record<string, unknown>;
  const { v: _v, ...rest } = o;
  const ctx = rest as unknown as AdmissionContext & { requestedNode: string };
  if (typeof ctx.now !== 'number' || typeof ctx.action !== 'string' || typeof ctx.resourceName !== 'string' || typeof ctx.requestedNode !== 'string' || typeof ctx.principal !== 'object' || ctx.principal === null || typeof ctx.reattestation !== 'object') {
    throw bad('a field is missing or of the wrong type');
  }
  // A resource read back from the context is checked like configuration (strict keys and types).
  const resource = ctx.resource === null ? null : (parseAdmissionConfig({ resources: { [ctx.resourceName]: ctx.resource } }).resources[ctx.resourceName] ?? null);
  return { ...ctx, resource };
}

/** What the route needs. */
export interface AdmissionDeps {
  readonly store: Store;
  readonly signer: ArtifactSigner;
  readonly clock: () => number;
  readonly verifierId: string;
  readonly config: AdmissionConfig;
  readonly reattestationOf: (group: string) => Reattestation;
  readonly groupTenants?: ReadonlyMap<string, string>;
}

const AuthorizeBody = Type.Object(
  {
    node: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' }),
    action: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    resource: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
  },
  { additionalProperties: false },
);

/**
 * Adds `POST /v1/authorize` to `scope`, an encapsulated scope that has already authenticated the
 * caller and required the relying-party role.
 */
export function admissionRoutes(scope: FastifyInstance, d: AdmissionDeps): void {
  scope.post<{ Body: Static<typeof AuthorizeBody> }>('/v1/authorize', { schema: { body: AuthorizeBody } }, async (req, reply) => {
    const p: Principal | null = req.principal;
    if (p === null) throw new MisuseError('MISUSE_ARGUMENT', 'authorize scope without authentication');
    const { node: nodeId, action, resource: resourceName } = req.body;
    const now = d.clock();
    const node = await d.store.getNode(nodeId);
    const resource = Object.hasOwn(d.config.resources, resourceName) ? d.config.resources[resourceName] : undefined;
    // Tenancy first: a token never learns anything about a node outside its tenant.
    const tenant = node === null ? undefined : d.groupTenants?.get(node.group);
    const reaches = node === null || principalReachesGroup(p, node.group, tenant);
    const [appraisal, revocation] = node !== null && reaches ? await Promise.all([d.store.lastDecision('appraise', node.nodeId), d.store.lastDecision('revocation', node.nodeId)]) : [null, null];
    const ctx: AdmissionContext = {
      now,
      requestedNode: nodeId,
      action,
      resourceName,
      resource: resource ?? null,
      node: node === null ? null : { nodeId: node.nodeId, group: node.group, kind: node.kind, revokedAt: node.revokedAt },
      principal: { id: p.id, reaches, tenant: tenant ?? null },
      reattestation: node === null ? { intervalMs: 0, deadlineMultiple: 0 } : d.reattestationOf(node.group),
      appraisalSeq: appraisal?.seq ?? null,
      revocationSeq: revocation?.seq ?? null,
    };
    // The pure decision, shared with replay; its context is retained with the decision.
    const { reasons, basis } = evaluateAdmission(ctx, appraisal, revocation);
    const admitted = reasons.length === 0;
    const relied = basis === null ? null : { seq: basis.record.seq, hash: toHex(basis.record.hash) };
    const retained = encodeAdmissionContext(ctx);
    const decision = admissionDecision(ctx, reasons, basis, retained.digest);
    const d0 = await d.store.appendDecision({ kind: 'authorize', nodeId: node === null ? null : node.nodeId, time: now, ...decision, inputs: [retained] });
    const ledger = { seq: d0.seq, hash: toHex(d0.hash) };
    if (!admitted || basis === null || relied === null) {
      const first = reasons[0] as AdmissionReason;
      return reply.status(ERRORS[first.code].status).send({
        decision: 'refused',
        node: nodeId,
        action,
        resource: resourceName,
        error: { code: first.code, category: ERRORS[first.code].category, message: first.message, ...(first.field !== undefined ? { field: first.field } : {}) },
        failures: reasons,
        ledger,
      });
    }
    const lifetimeSeconds = d.config.lifetimeSeconds ?? 60;
    const submods: Record<string, SubmodInput> = {};
    for (const [k, v] of Object.entries(basis.submods)) submods[k] = { status: 'affirming', trustVector: v };
    const claims = buildEarClaims({
      now: Math.floor(now / 1000),
      lifetimeSeconds,
      verifierId: d.verifierId,
      nodeId,
      submods,
      policyId: basis.policyId,
      policyDigest: basis.policyDigest,
      evidenceDigest: basis.evidenceDigest,
      boundKeyJwk: basis.boundKeyJwk,
      ledger,
    });
    const artifact = await d.signer.signCompact(canonicalJsonBytes({ ...claims, 'vouch.admission': { action, resource: resourceName }, 'vouch.appraisal': relied }));
    return reply.status(200).send({ decision: 'admitted', node: nodeId, action, resource: resourceName, artifact, expiresAt: claims.exp, ledger, appraisal: relied });
  });
}
