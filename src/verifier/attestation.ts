/**
 * The pure part of an attestation, shared by the service (src/verifier/service.ts) and by replay
 * (src/verifier/replay.ts), so that a recorded decision is re-evaluated by exactly the code that
 * made it:
 *
 *   evaluateAttestation(evidence, challenge, node, IMA state, policy, now, trust, collateral) → Appraisal
 *   attestationDecision(appraisal, …) → the ledger decision's outcome and body
 *
 * and the **appraisal context**, the one retained input (besides the evidence bytes) that holds
 * everything else the evaluation read: the challenge and the node as read, the IMA state, the
 * SEV-SNP or TDX collateral obtained for it, and the digest of the trust anchors in force. It is
 * canonical CBOR, content-addressed by its SHA-256, and named in the decision body:
 *
 * ```
 * body.inputs = { evidence: <SHA-256 hex of the evidence's canonical CBOR>,
 *                 context:  <SHA-256 hex of the appraisal context>,
 *                 trust:    <SHA-256 hex of the trust anchors input> }
 * ```
 *
 * Nothing here reads the clock, the network or randomness.
 */
import { createHash } from 'node:crypto';
import { decodeStrict, encodeCanonical } from '../lib/cbor.js';
import { UnavailableError, isVouchError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { decodeTpmtPublic } from '../tpm/abi/public.js';
import { importTpmPublic, type TpmVerifyKey } from '../tpm/verify/keys.js';
import { toPublicJwk, type CnfJwk } from '../artifact/index.js';
import type { Policy } from '../policy/index.js';
import { appraise, boundKeySupported, type Appraisal } from '../appraisal/appraise.js';
import { appraiseSnpOnly } from '../appraisal/snp-only.js';
import type { SnpSuppliedCollateral, SnpTrust } from '../appraisal/snp.js';
import type { TdxSuppliedCollateral, TdxTrust } from '../appraisal/tdx.js';
import { parseTdxQeIdentityBody, parseTdxTcbInfoBody, pcsBody, type TdxCollateral } from '../tdx/collateral.js';
import type { SnpProduct } from '../snp/collateral.js';
import type { SnpVerifyCache } from '../snp/verify.js';
import type { TdxQuoteVerifyCache } from '../tdx/verify.js';
import type { Evidence } from '../evidence/envelope.js';
import type { ChallengeRecord, ImaStateRecord, NodeRecord, NewRetainedInput, QuoteCounters } from '../store/types.js';
import { challengeInput } from './challenge.js';

const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The node as an appraisal reads it (the fields of a NodeRecord it uses). */
export type NodeSnapshot = Pick<NodeRecord, 'nodeId' | 'group' | 'kind' | 'akPublic' | 'nodeKey' | 'counters' | 'revokedAt'>;

/** The trust anchors an appraisal uses (the EK CAs matter to enrollment only). */
export interface AppraisalTrust {
  readonly snp?: { readonly pinnedArks?: Readonly<Record<string, SnpProduct>>; readonly crls?: readonly Uint8Array[] };
  readonly tdx?: { readonly pinnedRootFingerprints?: readonly string[] };
}

/** Everything {@link evaluateAttestation} reads. */
export interface AttestationEvaluationInput {
  readonly evidence: Evidence;
  readonly evidenceDigest?: Uint8Array;
  readonly challenge: ChallengeRecord | null;
  readonly node: NodeSnapshot | null;
  readonly imaState: ImaStateRecord | null;
  readonly policy: Policy | null;
  readonly now: number;
  readonly trust: AppraisalTrust;
  readonly snpCollateral?: SnpSuppliedCollateral;
  readonly tdxCollateral?: TdxSuppliedCollateral;
  /** Caches of time-independent checks (the service keeps them; replay starts empty). Same results either way. */
  readonly caches?: { readonly snp?: SnpVerifyCache; readonly tdx?: TdxQuoteVerifyCache; readonly akKey?: (node: NodeSnapshot) => TpmVerifyKey; readonly boundKey?: (spki: Uint8Array) => CnfJwk | null };
}

/** The AK of a TPM node as a verification key (never for an SNP node: its akPublic is an empty placeholder). */
export function akKeyOf(node: NodeSnapshot): TpmVerifyKey {
  return importTpmPublic(decodeTpmtPublic(node.akPublic));
}

/** The bound key as a cnf JWK, or null when it is not a key vouch can bind. */
export function boundKeyJwkOf(spki: Uint8Array): CnfJwk | null {
  if (!boundKeySupported(spki)) return null;
  try {
    return toPublicJwk(spki, 'evidence.boundKey');
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return null;
  }
}

/**
 * Appraises the evidence: an SNP-only node (or SNP-only evidence naming no enrolled node) with
 * appraiseSnpOnly, a TPM node with appraise; a revoked node is refused whatever its evidence.
 * May throw (a defect): the caller records that as an internal error, never an allow.
 */
export function evaluateAttestation(i: AttestationEvaluationInput): { appraisal: Appraisal; snpOnly: boolean } {
  const { evidence, node, policy, now } = i;
  const fresh = challengeInput(i.challenge, evidence.nodeId, now);
  const snpOnly = node !== null ? node.kind === 'snp' : evidence.tpm === undefined;
  const snpTrust: SnpTrust = { ...(i.trust.snp ?? {}), ...(i.caches?.snp !== undefined ? { cache: i.caches.snp } : {}), ...(i.snpCollateral !== undefined ? { collateral: i.snpCollateral } : {}) };
  const tdxPins = i.trust.tdx?.pinnedRootFingerprints;
  const tdxTrust: TdxTrust = { ...(i.caches?.tdx !== undefined ? { cache: i.caches.tdx } : {}), ...(tdxPins !== undefined ? { pinnedRootFingerprints: tdxPins } : {}), ...(i.tdxCollateral !== undefined ? { collateral: i.tdxCollateral } : {}) };
  const digest = i.evidenceDigest !== undefined ? { evidenceDigest: i.evidenceDigest } : {};
  const boundKey = i.caches?.boundKey ?? boundKeyJwkOf;
  let appraisal = snpOnly
    ? appraiseSnpOnly({ evidence, challenge: fresh, node: node === null ? null : { nodeId: node.nodeId, kind: node.kind, nodeKey: node.nodeKey }, policy, now, snpTrust, ...digest })
    : appraise({
        evidence,
        challenge: fresh,
        node: node === null ? null : { nodeId: node.nodeId, ak: (i.caches?.akKey ?? akKeyOf)(node), counters: node.counters },
        policy,
        now,
        boundKeySupported: boundKey(evidence.boundKey) !== null,
        imaState: i.imaState,
        snpTrust,
        tdxTrust,
        ...digest,
      });
  // A node an operator revoked gets no affirming decision, whatever its evidence shows.
  if (node !== null && node.revokedAt !== null) {
    appraisal = { ...appraisal, status: 'contraindicated', failures: [failure('APPRAISAL_NODE_REVOKED', { field: 'nodeId', actual: node.nodeId }), ...appraisal.failures] };
  }
  return { appraisal, snpOnly };
}

/**
 * Claims as the ledger records them: what JSON.stringify would keep (members whose value is
 * undefined dropped, undefined array slots as null), without a round trip through text.
 */
export function ledgerClaims(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x: unknown) => (x === undefined ? null : ledgerClaims(x)));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = ledgerClaims(x);
  return out;
}

/** Data for canonical CBOR: members whose value is undefined dropped; byte strings and maps kept as they are. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Map) return v;
  if (Array.isArray(v)) return v.map((x: unknown) => (x === undefined ? null : plain(x)));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
  return out;
}

/** The references of a decision's retained inputs (`body.inputs`). */
export interface AppraisalInputRefs {
  readonly evidence: string;
  readonly context: string;
  readonly trust: string;
}

/** The appraise decision's outcome and body, before the store adds any commit-time race failures. */
export function attestationDecision(
  appraisal: Appraisal,
  o: { readonly challengeId: string; readonly policy: Policy | null; readonly boundKeyJwk: CnfJwk | null; readonly inputs?: AppraisalInputRefs },
): { outcome: 'affirming' | 'contraindicated'; body: Record<string, unknown> } {
  return {
    outcome: appraisal.status === 'affirming' && o.policy !== null ? 'affirming' : 'contraindicated',
    body: {
      challengeId: o.challengeId,
      evidenceDigest: appraisal.evidenceDigest,
      policyId: appraisal.policyId,
      policyDigest: appraisal.policyDigest,
      failures: appraisal.failures,
      trustVector: appraisal.trustVector,
      // The agent's bound key, so an admission artifact relying on this appraisal names it in cnf.
      boundKeyJwk: appraisal.status === 'affirming' ? o.boundKeyJwk : null,
      claims: appraisal.claims !== undefined ? ledgerClaims(appraisal.claims) : appraisal.snpOnly !== undefined ? ledgerClaims(appraisal.snpOnly) : null,
      ...(o.inputs !== undefined ? { inputs: { ...o.inputs } } : {}),
    },
  };
}

// --- the appraisal context: encode and decode ---------------------------------------------------

const CONTEXT_VERSION = 1;
const CONTEXT_LIMITS = { name: 'appraisal context', maxBytes: 4 * 1024 * 1024, maxDepth: 16, maxItems: 65_536 } as const;

/** What the context holds (see the module comment). */
export interface AppraisalContext {
  readonly now: number;
  readonly challenge: ChallengeRecord | null;
  readonly node: NodeSnapshot | null;
  readonly imaState: ImaStateRecord | null;
  readonly snpCollateral?: SnpSuppliedCollateral;
  readonly tdxCollateral?: TdxSuppliedCollateral;
  /** SHA-256 hex of the trust anchors input in force. */
  readonly trust: string;
}

function failuresData(fs: readonly Failure[]): unknown[] {
  return fs.map((f) => plain(f));
}

function tdxCollateralData(c: TdxCollateral): Record<string, unknown> {
  return plain({
    tcbInfoBody: c.tcbInfo !== undefined ? pcsBody(c.tcbInfo) : undefined,
    tcbInfoIssuerChain: c.tcbInfoIssuerChain,
    qeIdentityBody: c.qeIdentity !== undefined ? pcsBody(c.qeIdentity) : undefined,
    qeIdentityIssuerChain: c.qeIdentityIssuerChain,
    pckCrl: c.pckCrl,
    pckCrlIssuerChain: c.pckCrlIssuerChain,
    rootCaCrl: c.rootCaCrl,
  }) as Record<string, unknown>;
}

/** The canonical CBOR of a context and its digest, as a retained input. */
export function encodeAppraisalContext(c: AppraisalContext): NewRetainedInput {
  const node = c.node === null ? null : { ...c.node, counters: c.node.counters === null ? null : { resetCount: c.node.counters.resetCount, restartCount: c.node.counters.restartCount, clock: c.node.counters.clock.toString(10) } };
  const ima = c.imaState === null ? null : { resetCount: c.imaState.resetCount, entries: c.imaState.entries, violations: c.imaState.violations, pcr10: new Map([...c.imaState.pcr10].sort(([a], [b]) => a - b)) };
  const value = {
    v: CONTEXT_VERSION,
    now: c.now,
    challenge: c.challenge,
    node,
    imaState: ima,
    snpCollateral: c.snpCollateral === undefined ? null : plain({ ...c.snpCollateral, failures: failuresData(c.snpCollateral.failures) }),
    tdxCollateral: c.tdxCollateral === undefined ? null : plain({ source: c.tdxCollateral.source, failures: failuresData(c.tdxCollateral.failures), collateral: c.tdxCollateral.collateral === undefined ? undefined : tdxCollateralData(c.tdxCollateral.collateral) }),
    trust: c.trust,
  };
  const bytes = encodeCanonical(value, { maxDepth: 16 });
  return { digest: sha256hex(bytes), kind: 'appraisal-context', bytes };
}

/** A retained context or trust input that does not decode is as good as missing: replay cannot use it. */
function bad(field: string, message: string): UnavailableError {
  return new UnavailableError('REPLAY_INPUT_MISSING', `appraisal context.${field}: ${message}`, { field: `appraisal context.${field}` });
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map);
const num = (o: Obj, k: string, at: string): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`${at}.${k}`, 'not an integer');
  return v;
};
const str = (o: Obj, k: string, at: string): string => {
  const v = o[k];
  if (typeof v !== 'string') throw bad(`${at}.${k}`, 'not text');
  return v;
};
const bytes = (o: Obj, k: string, at: string): Uint8Array => {
  const v = o[k];
  if (!(v instanceof Uint8Array)) throw bad(`${at}.${k}`, 'not bytes');
  return v;
};
const intOrNull = (o: Obj, k: string, at: string): number | null => (o[k] === null ? null : num(o, k, at));
const bytesList = (v: unknown, at: string): Uint8Array[] | undefined => {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => x instanceof Uint8Array)) throw bad(at, 'not a list of byte strings');
  return v as Uint8Array[];
};
const failuresOf = (v: unknown, at: string): Failure[] => {
  if (!Array.isArray(v) || !v.every(isObj)) throw bad(at, 'not a list of failures');
  return v as unknown as Failure[];
};

/**
 * Decodes a context written by {@link encodeAppraisalContext} (strict canonical CBOR).
 *
 * @throws UnavailableError REPLAY_INPUT_MISSING (or a PARSE_* ParseError) when the bytes are not such a context
 */
export function decodeAppraisalContext(b: Uint8Array): AppraisalContext {
  const v = decodeStrict(b, CONTEXT_LIMITS);
  if (!isObj(v) || v['v'] !== CONTEXT_VERSION) throw bad('v', `not a version ${CONTEXT_VERSION} context`);
  const now = num(v, 'now', '');
  let challenge: ChallengeRecord | null = null;
  if (v['challenge'] !== null) {
    const c = v['challenge'];
    if (!isObj(c) || !isObj(c['params'])) throw bad('challenge', 'not a challenge record');
    challenge = { challengeId: str(c, 'challengeId', 'challenge'), nodeId: str(c, 'nodeId', 'challenge'), nonce: bytes(c, 'nonce', 'challenge'), params: c['params'] as ChallengeRecord['params'], createdAt: num(c, 'createdAt', 'challenge'), expiresAt: num(c, 'expiresAt', 'challenge'), consumedAt: intOrNull(c, 'consumedAt', 'challenge') };
  }
  let node: NodeSnapshot | null = null;
  if (v['node'] !== null) {
    const n = v['node'];
    if (!isObj(n)) throw bad('node', 'not a node snapshot');
    const kind = n['kind'];
    if (kind !== 'tpm' && kind !== 'snp') throw bad('node.kind', 'not tpm or snp');
    let counters: QuoteCounters | null = null;
    if (n['counters'] !== null) {
      const k = n['counters'];
      if (!isObj(k) || typeof k['clock'] !== 'string' || !/^[0-9]{1,20}$/.test(k['clock'])) throw bad('node.counters', 'not TPM counters');
      counters = { resetCount: num(k, 'resetCount', 'node.counters'), restartCount: num(k, 'restartCount', 'node.counters'), clock: BigInt(k['clock']) };
    }
    node = { nodeId: str(n, 'nodeId', 'node'), group: str(n, 'group', 'node'), kind, akPublic: bytes(n, 'akPublic', 'node'), nodeKey: n['nodeKey'] === null ? null : bytes(n, 'nodeKey', 'node'), counters, revokedAt: intOrNull(n, 'revokedAt', 'node') };
  }
  let imaState: ImaStateRecord | null = null;
  if (v['imaState'] !== null) {
    const m = v['imaState'];
    if (!isObj(m) || !(m['pcr10'] instanceof Map)) throw bad('imaState', 'not an IMA state');
    const pcr10 = new Map<number, Uint8Array>();
    for (const [alg, val] of m['pcr10']) {
      if (typeof alg !== 'number' || !(val instanceof Uint8Array)) throw bad('imaState.pcr10', 'not bank → value');
      pcr10.set(alg, val);
    }
    imaState = { resetCount: num(m, 'resetCount', 'imaState'), entries: num(m, 'entries', 'imaState'), violations: num(m, 'violations', 'imaState'), pcr10 };
  }
  let snpCollateral: SnpSuppliedCollateral | undefined;
  if (v['snpCollateral'] !== null) {
    const s = v['snpCollateral'];
    if (!isObj(s)) throw bad('snpCollateral', 'not SEV-SNP collateral');
    const item = (k: string): SnpSuppliedCollateral['vcek'] => {
      const x = s[k];
      if (x === undefined) return undefined;
      if (!isObj(x) || (x['source'] !== 'kds' && x['source'] !== 'kds-cache')) throw bad(`snpCollateral.${k}`, 'not a supplied item');
      return { der: bytes(x, 'der', `snpCollateral.${k}`), source: x['source'] };
    };
    const [vcek, ask, ark, crl] = [item('vcek'), item('ask'), item('ark'), item('crl')];
    snpCollateral = { ...(vcek !== undefined ? { vcek } : {}), ...(ask !== undefined ? { ask } : {}), ...(ark !== undefined ? { ark } : {}), ...(crl !== undefined ? { crl } : {}), failures: failuresOf(s['failures'], 'snpCollateral.failures') };
  }
  let tdxCollateral: TdxSuppliedCollateral | undefined;
  if (v['tdxCollateral'] !== null) {
    const t = v['tdxCollateral'];
    if (!isObj(t) || (t['source'] !== 'file' && t['source'] !== 'pcs')) throw bad('tdxCollateral', 'not TDX collateral');
    let collateral: TdxCollateral | undefined;
    if (t['collateral'] !== undefined) {
      const c = t['collateral'];
      if (!isObj(c)) throw bad('tdxCollateral.collateral', 'not collateral');
      const opt = <T>(k: string, f: (x: unknown) => T): T | undefined => (c[k] === undefined ? undefined : f(c[k]));
      const tcbInfo = opt('tcbInfoBody', (x) => parseTdxTcbInfoBody(x as Uint8Array));
      const qeIdentity = opt('qeIdentityBody', (x) => parseTdxQeIdentityBody(x as Uint8Array));
      const chain = (k: string): Uint8Array[] | undefined => bytesList(c[k], `tdxCollateral.collateral.${k}`);
      const der = (k: string): Uint8Array | undefined => (c[k] === undefined ? undefined : bytes(c, k, 'tdxCollateral.collateral'));
      const parts: Record<string, unknown> = { tcbInfo, tcbInfoIssuerChain: chain('tcbInfoIssuerChain'), qeIdentity, qeIdentityIssuerChain: chain('qeIdentityIssuerChain'), pckCrl: der('pckCrl'), pckCrlIssuerChain: chain('pckCrlIssuerChain'), rootCaCrl: der('rootCaCrl') };
      for (const k of Object.keys(parts)) if (parts[k] === undefined) delete parts[k];
      collateral = parts as TdxCollateral;
    }
    tdxCollateral = { source: t['source'], failures: failuresOf(t['failures'], 'tdxCollateral.failures'), ...(collateral !== undefined ? { collateral } : {}) };
  }
  return { now, challenge, node, imaState, ...(snpCollateral !== undefined ? { snpCollateral } : {}), ...(tdxCollateral !== undefined ? { tdxCollateral } : {}), trust: str(v, 'trust', '') };
}

// --- trust anchors as an input ------------------------------------------------------------------

/** The trust anchors in force as a retained input: EK CA certificates (DER), SNP pins and CRLs, TDX pins. */
export function encodeTrustAnchors(t: AppraisalTrust & { readonly tpmCas: readonly Uint8Array[] }): NewRetainedInput {
  const pins = t.snp?.pinnedArks ?? null;
  const value = {
    v: 1,
    tpmCas: [...t.tpmCas].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    snpPinnedArks: pins === null ? null : Object.fromEntries(Object.entries(pins).sort(([a], [b]) => (a < b ? -1 : 1))),
    snpCrls: t.snp?.crls === undefined ? null : [...t.snp.crls],
    tdxPinnedRoots: t.tdx?.pinnedRootFingerprints === undefined ? null : [...t.tdx.pinnedRootFingerprints],
  };
  const b = encodeCanonical(value);
  return { digest: sha256hex(b), kind: 'trust-anchors', bytes: b };
}

/** Decodes {@link encodeTrustAnchors}' bytes back into the trust an appraisal uses. */
export function decodeTrustAnchors(b: Uint8Array): AppraisalTrust & { tpmCas: Uint8Array[] } {
  const v = decodeStrict(b, { name: 'trust anchors', maxBytes: 4 * 1024 * 1024, maxDepth: 4, maxItems: 65_536 });
  if (!isObj(v) || v['v'] !== 1) throw bad('trust', 'not a version 1 trust anchors input');
  const tpmCas = bytesList(v['tpmCas'], 'trust.tpmCas') ?? [];
  const pins = v['snpPinnedArks'];
  const crls = v['snpCrls'] === null ? undefined : bytesList(v['snpCrls'], 'trust.snpCrls');
  const roots = v['tdxPinnedRoots'];
  if (roots !== null && (!Array.isArray(roots) || !roots.every((x) => typeof x === 'string'))) throw bad('trust.tdxPinnedRoots', 'not a list of fingerprints');
  if (pins !== null && !isObj(pins)) throw bad('trust.snpPinnedArks', 'not fingerprint → product');
  return {
    tpmCas,
    ...(pins !== null || crls !== undefined ? { snp: { ...(pins !== null ? { pinnedArks: pins as Record<string, SnpProduct> } : {}), ...(crls !== undefined ? { crls } : {}) } } : {}),
    ...(roots !== null ? { tdx: { pinnedRootFingerprints: roots as string[] } } : {}),
  };
}
