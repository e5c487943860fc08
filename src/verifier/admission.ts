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
import { ERRORS, MisuseError, type ErrorCode } from '../lib/errors.js';
import { canonicalJsonBytes } from '../policy/canonical.js';
import { decodeLedgerEntry } from '../ledger/index.js';
import { AR4SI_CLAIMS, EAR_STATUSES, tierAtLeast, trustTier, type Ar4siClaim, type EarStatus, type TrustVector } from '../artifact/ear.js';
import { AR4SI, ARTIFACT_LIFETIME, buildEarClaims, type ArtifactSigner, type SubmodInput } from '../artifact/index.js';
import type { DecisionRecord, NodeRecord, Store } from '../store/types.js';
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

function basisOf(record: DecisionRecord, node: NodeRecord): AppraisalBasis {
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
    let reasons: AdmissionReason[];
    let basis: AppraisalBasis | null = null;
    if (node !== null && !principalReachesGroup(p, node.group, tenant)) {
      reasons = [reason('AUTH_TENANT_FORBIDDEN', { message: `token ${p.id} is not scoped to the node's group`, field: 'tenant', ...(tenant !== undefined ? { actual: tenant } : {}) })];
    } else {
      let appraisal: DecisionRecord | null = null;
      let state: NodeState | null = null;
      if (node !== null) {
        const [a, rev] = await Promise.all([d.store.lastDecision('appraise', node.nodeId), d.store.lastDecision('revocation', node.nodeId)]);
        appraisal = a;
        state = nodeState(node, a, rev, now, d.reattestationOf(node.group)).state;
        if (a !== null && node !== null) basis = basisOf(a, node);
      }
      reasons = decideAdmission({
        action,
        resourceName,
        resource,
        node,
        state,
        appraisal: appraisal === null || basis === null ? null : { outcome: appraisal.outcome, time: appraisal.time, submods: basis.submods },
        now,
      });
      if (reasons.length === 0 && (basis === null || basis.boundKeyJwk === null)) {
        reasons = [reason('ADMISSION_NODE_UNTRUSTED', { field: 'appraisal', message: 'admission refused: the latest appraisal recorded no bound key' })];
      }
    }
    const admitted = reasons.length === 0;
    const relied = basis === null ? null : { seq: basis.record.seq, hash: toHex(basis.record.hash) };
    const d0 = await d.store.appendDecision({
      kind: 'authorize',
      nodeId: node === null ? null : node.nodeId,
      outcome: admitted ? 'admitted' : 'refused',
      time: now,
      body: JSON.parse(JSON.stringify({ node: nodeId, action, resource: resourceName, by: p.id, appraisal: relied, failures: reasons })) as Record<string, unknown>,
    });
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
