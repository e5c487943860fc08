/**
 * The key broker: secrets stored encrypted at rest, each with a release policy, released only to
 * a node the verifier trusts now, encrypted to the bound (`cnf`) key of its artifact with HPKE.
 *
 * Release request: `{ artifact, pop: { challenge, signature } }`. The challenge is
 * {@link releaseChallenge}: SHA-256("vouch/release/v1" ‖ 0x00 ‖ len(id) ‖ id ‖ artifact
 * `vouch.ledger.hash`), so a proof is bound to one secret and one appraisal; the signature is
 * ECDSA P-256/SHA-256 (r ‖ s) by the cnf key over those 32 bytes. A replayed proof gains
 * nothing: the answer is encrypted to the cnf key.
 *
 * HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; `info` =
 * {@link releaseInfo} ("vouch/release/v1" ‖ 0x00 ‖ len(id) ‖ id ‖ appraisal seq (u64 BE) ‖
 * appraisal ledger hash); aad empty.
 *
 * TPM-bound release (a release policy's `tpmBound`, or the request's): the HPKE plaintext is the
 * secret wrapped with MakeCredential to the node's EK and AK name (./tpm-wrap.ts), so the answer
 * opens only with both the agent's bound key and the node's TPM.
 *
 * Every release and every refusal is a 'release' ledger decision holding digests only.
 */
import { createHash, createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import { fromBase64Url, toBase64Url, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, ParseError, VerificationError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { AR4SI_CLAIMS, EAR_STATUSES, trustTier, type Ar4siClaim, type EarClaims, type EarStatus } from '../artifact/ear.js';
import { verifyArtifact } from '../rp/verify.js';
import type { NodeRecord, Store } from '../store/types.js';
import type { Principal } from '../verifier/auth.js';
import { nodeState, type Reattestation } from '../verifier/nodes.js';
import { sealBase } from './hpke.js';
import { releaseChallenge, releaseInfo } from './release-binding.js';
import { wrapForTpm, type TpmWrapped } from './tpm-wrap.js';
import type { SecretsMasterKey } from './at-rest.js';

/** Evidence kinds a release policy can require. */
export const EVIDENCE_KINDS = ['tpm', 'snp', 'tdx'] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/** Which nodes may receive a secret. Every listed condition must hold. */
export interface ReleasePolicy {
  /** Node groups allowed (at least one). */
  readonly groups: readonly string[];
  /** Evidence kinds that must have been appraised (default none beyond what the group's policy requires). */
  readonly evidence: readonly EvidenceKind[];
  /** Trust-vector claims every submodule must carry: a number exactly, or a tier. */
  readonly trustVector: { readonly [K in Ar4siClaim]?: number | EarStatus };
  /** Appraisal policy ids allowed; absent: any. */
  readonly policyIds?: readonly string[];
  /** The audience the broker verifies artifacts as, when the group's policy names one. */
  readonly audience?: string;
  /**
   * Release only TPM-bound (src/secrets/tpm-wrap.ts): the secret is wrapped with MakeCredential to
   * the node's EK and AK name as well as sealed to the cnf key, so only that physical TPM can
   * recover it. Default false (a release request may still ask for it).
   */
  readonly tpmBound?: boolean;
}

const GROUP_RE = /^[a-z0-9-]{1,64}$/;
const POLICY_KEYS = new Set(['groups', 'evidence', 'trustVector', 'policyIds', 'audience', 'tpmBound']);

function bad(message: string, field: string): ParseError {
  return new ParseError('SECRET_POLICY_INVALID', `release policy: ${message}`, { field });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses a release policy strictly (known keys only, non-empty groups, unique entries). */
export function parseReleasePolicy(v: unknown): ReleasePolicy {
  if (!isRecord(v)) throw bad('not an object', 'releasePolicy');
  for (const k of Object.keys(v)) if (!POLICY_KEYS.has(k)) throw bad(`unknown key ${JSON.stringify(k)}`, `releasePolicy.${k}`);
  const groups = v['groups'];
  if (!Array.isArray(groups) || groups.length === 0 || groups.length > 64 || !groups.every((g) => typeof g === 'string' && GROUP_RE.test(g)) || new Set(groups).size !== groups.length) {
    throw bad('groups must be 1..64 unique group names', 'releasePolicy.groups');
  }
  const evidence = v['evidence'] ?? [];
  if (!Array.isArray(evidence) || !evidence.every((e) => (EVIDENCE_KINDS as readonly unknown[]).includes(e)) || new Set(evidence).size !== evidence.length) {
    throw bad(`evidence must be unique entries of ${EVIDENCE_KINDS.join(', ')}`, 'releasePolicy.evidence');
  }
  const tv = v['trustVector'] ?? {};
  if (!isRecord(tv)) throw bad('trustVector must be an object', 'releasePolicy.trustVector');
  for (const [k, x] of Object.entries(tv)) {
    if (!(AR4SI_CLAIMS as readonly string[]).includes(k)) throw bad(`${k} is not an AR4SI claim`, `releasePolicy.trustVector.${k}`);
    const ok = (typeof x === 'number' && Number.isInteger(x) && x >= -128 && x <= 127) || (typeof x === 'string' && (EAR_STATUSES as readonly string[]).includes(x));
    if (!ok) throw bad(`trustVector.${k} must be an integer claim value or a tier`, `releasePolicy.trustVector.${k}`);
  }
  const policyIds = v['policyIds'];
  if (policyIds !== undefined && (!Array.isArray(policyIds) || policyIds.length === 0 || policyIds.length > 64 || !policyIds.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 512))) {
    throw bad('policyIds must be 1..64 policy ids', 'releasePolicy.policyIds');
  }
  const audience = v['audience'];
  if (audience !== undefined && (typeof audience !== 'string' || audience.length === 0 || audience.length > 256)) throw bad('audience must be a non-empty string', 'releasePolicy.audience');
  const tpmBound = v['tpmBound'];
  if (tpmBound !== undefined && typeof tpmBound !== 'boolean') throw bad('tpmBound must be true or false', 'releasePolicy.tpmBound');
  return {
    groups: [...(groups as string[])].sort(),
    evidence: [...(evidence as EvidenceKind[])].sort(),
    trustVector: Object.fromEntries(Object.entries(tv).sort(([a], [b]) => (a < b ? -1 : 1))) as ReleasePolicy['trustVector'],
    ...(policyIds !== undefined ? { policyIds: [...(policyIds as string[])].sort() } : {}),
    ...(audience !== undefined ? { audience: audience as string } : {}),
    ...(tpmBound === true ? { tpmBound: true } : {}),
  };
}

const te = new TextEncoder();
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

export { releaseChallenge, releaseInfo } from './release-binding.js';

/** The uncompressed P-256 point of a cnf JWK, or null for another key type. */
export function cnfPoint(jwk: EarClaims['cnf']['jwk']): Uint8Array | null {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.x === undefined || jwk.y === undefined) return null;
  try {
    const x = fromBase64Url(jwk.x, 'cnf.jwk.x');
    const y = fromBase64Url(jwk.y, 'cnf.jwk.y');
    if (x.length !== 32 || y.length !== 32) return null;
    return new Uint8Array(Buffer.concat([Buffer.of(4), x, y]));
  } catch {
    return null;
  }
}

/** A secret as the admin API lists it: never its value. */
export interface SecretView {
  readonly id: string;
  readonly tenant: string | null;
  readonly releasePolicy: ReleasePolicy;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A release answer: the secret sealed to the cnf key (and, TPM-bound, wrapped to the node's TPM). */
export interface Released {
  readonly decision: 'released';
  readonly secretId: string;
  readonly suite: 'DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM';
  /** 'cnf': the HPKE plaintext is the secret; 'tpm': it is the TPM-wrapped secret (src/secrets/tpm-wrap.ts). */
  readonly binding: 'cnf' | 'tpm';
  readonly enc: string;
  readonly ciphertext: string;
  /** For binding 'tpm': the TPM2_ActivateCredential inputs (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET), base64url. */
  readonly tpm?: { readonly credentialBlob: string; readonly encryptedSecret: string };
  /** The appraisal the release relied on (bound into the HPKE info). */
  readonly appraisal: { readonly seq: number; readonly hash: string };
  readonly ledger: { readonly seq: number; readonly hash: string };
}

/** A refused release: every reason. */
export interface ReleaseRefused {
  readonly decision: 'refused';
  readonly secretId: string;
  readonly failures: readonly Failure[];
  readonly ledger: { readonly seq: number; readonly hash: string };
}

/** What {@link SecretBroker} needs. */
export interface SecretBrokerOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly masterKey: SecretsMasterKey;
  readonly jwks: () => Promise<{ readonly keys: readonly unknown[] }>;
  readonly reattestationOf: (group: string) => Reattestation;
  /** Randomness for TPM-bound releases (the KEK and MakeCredential's seed); default node:crypto. */
  readonly random?: (n: number) => Uint8Array;
}

/** Options of one release request. */
export interface ReleaseOptions {
  /** Ask for a TPM-bound release even when the release policy does not require one. */
  readonly tpmBound?: boolean;
}

function reaches(p: Principal, tenant: string | null): boolean {
  return p.tenant === undefined || p.tenant === tenant;
}

/** Evidence kinds an artifact shows: `tpm0` → tpm; `cpu0` collateral names snp.* / tdx.*. */
export function evidenceKindsOf(claims: EarClaims): Set<EvidenceKind> {
  const out = new Set<EvidenceKind>();
  if (claims.submods['tpm0'] !== undefined) out.add('tpm');
  const cpu = claims.submods['cpu0']?.['vouch.collateral'] ?? {};
  for (const k of Object.keys(cpu)) {
    if (k.startsWith('snp.')) out.add('snp');
    if (k.startsWith('tdx.')) out.add('tdx');
  }
  return out;
}

/** The secrets of the admin API and their release. */
export class SecretBroker {
  readonly #o: SecretBrokerOptions;
  constructor(o: SecretBrokerOptions) {
    this.#o = o;
  }

  /** Stores (or replaces) a secret and records a 'policy' decision with the value's digest only. */
  async put(p: Principal, secretId: string, valueB64: string, policyIn: unknown): Promise<{ secret: SecretView; ledger: { seq: number; hash: string } }> {
    const policy = parseReleasePolicy(policyIn);
    const value = fromBase64Url(valueB64, 'value');
    if (value.length === 0 || value.length > 8192) throw new ParseError('REQUEST_MALFORMED', 'value must be 1..8192 bytes', { field: 'value' });
    const existing = await this.#o.store.getSecret(secretId);
    if (existing !== null && !reaches(p, existing.tenant)) throw new VerificationError('SECRET_UNKNOWN', undefined, { field: 'id', actual: secretId });
    const now = this.#o.clock();
    const { nonce, ciphertext } = this.#o.masterKey.seal(secretId, value);
    const valueDigest = toHex(sha256(value));
    value.fill(0);
    const tenant = p.tenant ?? existing?.tenant ?? null;
    const releasePolicy = JSON.stringify(policy);
    await this.#o.store.putSecret({ secretId, tenant, ciphertext, nonce, releasePolicy, createdAt: existing?.createdAt ?? now, updatedAt: now });
    const d = await this.#o.store.appendDecision({
      kind: 'policy',
      nodeId: null,
      outcome: existing === null ? 'secret-created' : 'secret-replaced',
      time: now,
      body: { secretId, tenant, valueSha256: valueDigest, releasePolicySha256: toHex(sha256(te.encode(releasePolicy))), by: p.id },
    });
    return { secret: { id: secretId, tenant, releasePolicy: policy, createdAt: existing?.createdAt ?? now, updatedAt: now }, ledger: { seq: d.seq, hash: toHex(d.hash) } };
  }

  /** Ids and policies of the secrets `p` reaches. */
  async list(p: Principal): Promise<{ secrets: SecretView[] }> {
    const rows = await this.#o.store.listSecrets();
    return {
      secrets: rows
        .filter((r) => reaches(p, r.tenant))
        .map((r) => ({ id: r.secretId, tenant: r.tenant, releasePolicy: parseReleasePolicy(JSON.parse(r.releasePolicy)), createdAt: r.createdAt, updatedAt: r.updatedAt })),
    };
  }

  /** Removes a secret and records a 'policy' decision. */
  async remove(p: Principal, secretId: string): Promise<{ ledger: { seq: number; hash: string } }> {
    const existing = await this.#o.store.getSecret(secretId);
    if (existing === null || !reaches(p, existing.tenant)) throw new VerificationError('SECRET_UNKNOWN', undefined, { field: 'id', actual: secretId });
    await this.#o.store.deleteSecret(secretId);
    const d = await this.#o.store.appendDecision({ kind: 'policy', nodeId: null, outcome: 'secret-removed', time: this.#o.clock(), body: { secretId, tenant: existing.tenant, by: p.id } });
    return { ledger: { seq: d.seq, hash: toHex(d.hash) } };
  }

  /** Releases a secret to the bound key of a valid artifact, or refuses with every reason. */
  async release(secretId: string, artifact: string, pop: { challenge: string; signature: string }, options: ReleaseOptions = {}): Promise<Released | ReleaseRefused> {
    const now = this.#o.clock();
    const failures: Failure[] = [];
    const artifactSha256 = toHex(sha256(te.encode(artifact)));
    const row = await this.#o.store.getSecret(secretId);
    if (row === null) failures.push(failure('RELEASE_SECRET_UNKNOWN', { field: 'id', actual: secretId }));
    const policy = row === null ? null : parseReleasePolicy(JSON.parse(row.releasePolicy));
    let claims: EarClaims | null = null;
    try {
      claims = (await verifyArtifact(artifact, { jwks: await this.#o.jwks(), now: Math.floor(now / 1000), ...(policy?.audience !== undefined ? { audience: policy.audience } : {}) })).claims;
    } catch (e) {
      if (!isVouchError(e)) throw e;
      failures.push(failure('RELEASE_ARTIFACT_INVALID', { field: 'artifact', actual: e.code, message: `release refused: ${e.message}` }));
    }
    let node: NodeRecord | null = null;
    let appraisal: { seq: number; hash: Uint8Array } | null = null;
    const tpmBound = policy?.tpmBound === true || options.tpmBound === true;
    if (claims !== null) {
      appraisal = { seq: claims['vouch.ledger'].seq, hash: hexBytes(claims['vouch.ledger'].hash) };
      this.#checkPop(claims, secretId, appraisal.hash, pop, failures);
      node = await this.#o.store.getNode(claims.sub);
      if (node === null) failures.push(failure('RELEASE_NODE_UNKNOWN', { field: 'sub', actual: claims.sub }));
      else {
        const [last, revocation] = await Promise.all([this.#o.store.lastDecision('appraise', node.nodeId), this.#o.store.lastDecision('revocation', node.nodeId)]);
        const s = nodeState(node, last, revocation, now, this.#o.reattestationOf(node.group));
        if (s.state === 'revoked') failures.push(failure('RELEASE_NODE_REVOKED', { field: 'sub', actual: node.nodeId }));
        else if (s.state === 'stale') failures.push(failure('RELEASE_NODE_STALE', { field: 'sub', expected: `an appraisal before the deadline ${s.deadline === null ? '' : new Date(s.deadline).toISOString()}`, actual: node.nodeId }));
        else if (s.state === 'untrusted') failures.push(failure('RELEASE_NODE_UNTRUSTED', { field: 'sub', actual: node.nodeId }));
        if (last !== null && s.state !== 'revoked' && (last.seq !== appraisal.seq || toHex(last.hash) !== toHex(appraisal.hash))) {
          failures.push(failure('RELEASE_ARTIFACT_SUPERSEDED', { field: 'vouch.ledger', expected: `#${last.seq}`, actual: `#${appraisal.seq}` }));
        }
        if (policy !== null && !policy.groups.includes(node.group)) failures.push(failure('RELEASE_GROUP_NOT_ALLOWED', { field: 'releasePolicy.groups', expected: policy.groups.join(' | '), actual: node.group }));
        if (tpmBound && node.kind !== 'tpm') {
          failures.push(failure('RELEASE_TPM_BINDING_UNAVAILABLE', { field: policy?.tpmBound === true ? 'releasePolicy.tpmBound' : 'tpmBound', expected: 'a node with an enrolled TPM', actual: `${node.kind} node` }));
        }
      }
      if (policy !== null) this.#checkPolicy(policy, claims, failures);
      if (cnfPoint(claims.cnf.jwk) === null) failures.push(failure('RELEASE_CNF_UNSUPPORTED', { field: 'cnf.jwk', actual: `${claims.cnf.jwk.kty} ${String(claims.cnf.jwk.crv)}` }));
    }

    const base = { secretId, artifactSha256, binding: tpmBound ? 'tpm' : 'cnf', appraisal: appraisal === null ? null : { seq: appraisal.seq, hash: toHex(appraisal.hash) } };
    if (failures.length > 0 || row === null || claims === null || appraisal === null || node === null) {
      const d = await this.#o.store.appendDecision({ kind: 'release', nodeId: node?.nodeId ?? null, outcome: 'refused', time: now, body: { ...base, failures: failures.map((f) => ({ code: f.code, ...(f.field !== undefined ? { field: f.field } : {}), ...(f.actual !== undefined ? { actual: f.actual } : {}) })) } });
      return { decision: 'refused', secretId, failures, ledger: { seq: d.seq, hash: toHex(d.hash) } };
    }
    const info = releaseInfo(secretId, appraisal);
    const value = this.#o.masterKey.open(secretId, row.nonce, row.ciphertext);
    let sealed: ReturnType<typeof sealBase>;
    let wrapped: TpmWrapped | undefined;
    try {
      // TPM-bound: only the node's TPM (EK + AK name, as enrolled) can recover the KEK of the inner layer.
      if (tpmBound) wrapped = wrapForTpm(node.ekPublic, node.akName, value, info, this.#o.random ?? defaultRandom);
      sealed = sealBase(cnfPoint(claims.cnf.jwk) as Uint8Array, info, new Uint8Array(0), wrapped?.inner ?? value);
    } finally {
      value.fill(0);
    }
    const d = await this.#o.store.appendDecision({
      kind: 'release',
      nodeId: claims.sub,
      outcome: 'released',
      time: now,
      body: {
        ...base,
        encSha256: toHex(sha256(sealed.enc)),
        ciphertextSha256: toHex(sha256(sealed.ciphertext)),
        ...(wrapped !== undefined ? { credentialBlobSha256: toHex(sha256(wrapped.credentialBlob)), encryptedSecretSha256: toHex(sha256(wrapped.encryptedSecret)) } : {}),
      },
    });
    return {
      decision: 'released',
      secretId,
      suite: 'DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM',
      binding: wrapped !== undefined ? 'tpm' : 'cnf',
      enc: toBase64Url(sealed.enc),
      ciphertext: toBase64Url(sealed.ciphertext),
      ...(wrapped !== undefined ? { tpm: { credentialBlob: toBase64Url(wrapped.credentialBlob), encryptedSecret: toBase64Url(wrapped.encryptedSecret) } } : {}),
      appraisal: { seq: appraisal.seq, hash: toHex(appraisal.hash) },
      ledger: { seq: d.seq, hash: toHex(d.hash) },
    };
  }

  #checkPop(claims: EarClaims, secretId: string, ledgerHash: Uint8Array, pop: { challenge: string; signature: string }, failures: Failure[]): void {
    const want = releaseChallenge(secretId, ledgerHash);
    let challenge: Uint8Array;
    let signature: Uint8Array;
    try {
      challenge = fromBase64Url(pop.challenge, 'pop.challenge');
      signature = fromBase64Url(pop.signature, 'pop.signature');
    } catch {
      failures.push(failure('RELEASE_POP_INVALID', { field: 'pop', message: 'release refused: pop.challenge and pop.signature must be base64url' }));
      return;
    }
    if (toHex(challenge) !== toHex(want)) {
      failures.push(failure('RELEASE_POP_INVALID', { field: 'pop.challenge', expected: toBase64Url(want), actual: pop.challenge, message: 'release refused: pop.challenge is not the release challenge of this secret and artifact' }));
      return;
    }
    const jwk = claims.cnf.jwk;
    let ok = false;
    if (jwk.kty === 'EC' && jwk.crv === 'P-256' && signature.length === 64) {
      try {
        const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' });
        ok = verifySignature('sha256', want, { key, dsaEncoding: 'ieee-p1363' }, signature);
      } catch {
        ok = false;
      }
    }
    if (!ok) failures.push(failure('RELEASE_POP_INVALID', { field: 'pop.signature' }));
  }

  #checkPolicy(policy: ReleasePolicy, claims: EarClaims, failures: Failure[]): void {
    const kinds = evidenceKindsOf(claims);
    for (const k of policy.evidence) if (!kinds.has(k)) failures.push(failure('RELEASE_EVIDENCE_MISSING', { field: 'releasePolicy.evidence', expected: k, actual: [...kinds].sort().join(' | ') || '(none)' }));
    for (const [claim, want] of Object.entries(policy.trustVector) as [Ar4siClaim, number | EarStatus][]) {
      for (const name of Object.keys(claims.submods).sort()) {
        const got = claims.submods[name]?.['ear.trustworthiness-vector']?.[claim];
        const ok = got !== undefined && (typeof want === 'number' ? got === want : trustTier(got) === want);
        if (!ok) failures.push(failure('RELEASE_CLAIM_UNMET', { field: `submods.${name}.ear.trustworthiness-vector.${claim}`, expected: String(want), actual: got === undefined ? '(absent)' : String(got) }));
      }
    }
    const policyId = claims.submods['tpm0']?.['ear.appraisal-policy-id'] ?? claims.submods['cpu0']?.['ear.appraisal-policy-id'];
    if (policy.policyIds !== undefined && (policyId === undefined || !policy.policyIds.includes(policyId))) {
      failures.push(failure('RELEASE_POLICY_NOT_ALLOWED', { field: 'ear.appraisal-policy-id', expected: policy.policyIds.join(' | '), actual: policyId ?? '(absent)' }));
    }
  }
}

function defaultRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** `vouch.ledger.hash` is lower-case hex (the EAR schema's Hex256). */
function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
