/**
 * The verifier's operations, independent of HTTP: enrollment (EK chain + credential activation
 * for TPM nodes; a report binding a node key, with its proof of possession, for SNP-only nodes),
 * challenges, appraisal with artifact issuance. Every decision is appended to the ledger.
 *
 * Fail closed: an exception anywhere (store, signer, appraisal) ends the request with an error and
 * no artifact; a refusal is recorded with its reasons before it is returned.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fromBase64Url, toBase64Url, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, ParseError, PolicyError, UnavailableError, VerificationError, type VouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { TPM_ALG, hashById } from '../tpm/abi/constants.js';
import { decodeTpmtPublic, type TpmtPublic } from '../tpm/abi/public.js';
import type { PcrSelection } from '../tpm/abi/pcr.js';
import { checkAkTemplate } from '../tpm/verify/ak.js';
import { importTpmPublic, type TpmVerifyKey } from '../tpm/verify/keys.js';
import { tpmName } from '../tpm/name.js';
import { makeCredential } from '../tpm/credential.js';
import { ekMatchesPublic, parseEkCertificate, verifyEkChain, type EkCertificate, type EkTrustStore } from '../tpm/ek/index.js';
import { canonicalPolicyJson, parsePolicy, policyDigest, type Policy } from '../policy/index.js';
import { EventBus } from './events.js';
import { AR4SI, issueArtifact, issueArtifactCwt, toPublicJwk, type ArtifactSigner, type CnfJwk, type IssueArtifactInput } from '../artifact/index.js';
import type { SnpSummary } from '../appraisal/snp.js';
import type { TdxSummary } from '../appraisal/tdx.js';
import { SnpVerifyCache } from '../snp/verify.js';
import { resolveSnpCollateral, type SnpKdsSettings } from './snp-collateral.js';
import { TdxCollateralFiles, resolveTdxCollateral, type TdxSettings } from './tdx-collateral.js';
import { TdxQuoteVerifyCache } from '../tdx/verify.js';
import type { PcsClient } from '../tdx/collateral.js';
import type { SnpProduct } from '../snp/collateral.js';
import { boundKeySupported, challengeSelection, type Appraisal } from '../appraisal/appraise.js';
import { appraiseSnpEnrollment, snpOnlyPolicyFailures } from '../appraisal/snp-only.js';
import { encodeEvidenceCbor, evidenceDigest, type Evidence } from '../evidence/envelope.js';
import { parseNodeKey } from '../evidence/key-proof.js';
import { CHALLENGE_REFUSAL_CODES, SNP_AK_NAME_PREFIX, type ChallengeRefusal, type AttestationRaceFailures, type NewRetainedInput, type Store } from '../store/types.js';
import { raceFailures } from '../store/commit.js';
import { attestationDecision, encodeAppraisalContext, encodeTrustAnchors, evaluateAttestation, type AppraisalContext, type AppraisalInputRefs, type AppraisalTrust, type NodeSnapshot } from './attestation.js';
import type { SnpSuppliedCollateral } from '../appraisal/snp.js';
import type { TdxSuppliedCollateral } from '../appraisal/tdx.js';
import { decodeLedgerEntry } from '../ledger/entry.js';
import { SIGNING_KEY_ANCHOR } from '../ledger/verify.js';
import { canonicalJsonBytes } from '../policy/canonical.js';
import { challengeInput } from './challenge.js';

/** Settings of a verifier. */
export interface VerifierSettings {
  /** This verifier's id (`ear.verifier-id`, `iss`). */
  readonly verifierId: string;
  /** Policy per node group; a node can only enroll into a listed group. */
  readonly groups: ReadonlyMap<string, Policy>;
  /** Trusted TPM vendor CAs for EK certificates. */
  readonly ekTrust: EkTrustStore;
  /** Refuse nodes without an EK certificate (default true: fail closed). */
  readonly requireEkCertificate: boolean;
  readonly challengeTtlMs: number;
  readonly enrollmentTtlMs: number;
  /** Failed activations after which a pending enrollment is dropped. */
  readonly maxActivationAttempts: number;
  /**
   * SEV-SNP trust: pinned ARKs (default AMD's), CRLs; the verification cache is the service's.
   * With `kds`, what a report's certificate table lacks, and the CRL, come from AMD KDS or its cache.
   */
  readonly snp?: { readonly pinnedArks?: Readonly<Record<string, SnpProduct>>; readonly crls?: readonly Uint8Array[]; readonly kds?: SnpKdsSettings };
  /** Intel TDX: the collateral source and pinned roots (absent: TDX evidence is refused, TDX_COLLATERAL_NOT_CONFIGURED). */
  readonly tdx?: TdxSettings;
  /**
   * Retain the inputs of every appraisal (evidence bytes, appraisal context) content-addressed
   * with its decision, so `vouch replay` can re-run it (default true).
   */
  readonly retainInputs?: boolean;
}

/** What varies between runs: injected so tests and replays are deterministic. */
export interface VerifierDeps {
  readonly store: Store;
  readonly signer: ArtifactSigner;
  /** Epoch milliseconds. */
  readonly clock: () => number;
  readonly random: (n: number) => Uint8Array;
}

/** Enrollment request (JSON, base64url byte strings). */
export interface EnrollRequest {
  readonly group: string;
  readonly ekPublic: string;
  readonly ekCertificates: readonly string[];
  readonly akPublic: string;
}

export interface EnrollChallenge {
  readonly enrollmentId: string;
  readonly nodeId: string;
  readonly credentialBlob: string;
  readonly secret: string;
  readonly expiresAt: number;
}

/** First step of an SNP-only enrollment (JSON): the group and the node key (base64url DER SPKI, P-256). */
export interface SnpEnrollRequest {
  readonly group: string;
  readonly nodeKey: string;
}

/** The answer to {@link SnpEnrollRequest}: the nonce the report and the key proof must bind. */
export interface SnpEnrollChallenge {
  readonly enrollmentId: string;
  readonly nonce: string;
  readonly expiresAt: number;
}

/** Second step of an SNP-only enrollment (JSON, base64url byte strings). */
export interface SnpEnrollCompletion {
  /** The 1184-byte SEV-SNP report, REPORT_DATA = teeReportData(nonce, nodeKey). */
  readonly report: string;
  /** The certificate table of the extended report (VCEK/VLEK, ASK, ARK, CRL). */
  readonly certTable?: string;
  /** ECDSA P-256 (r || s) by the node key over nodeKeyProofMessage(nonce, report). */
  readonly keyProof: string;
}

export interface ChallengeResponse {
  readonly challengeId: string;
  readonly nonce: string;
  readonly expiresAt: number;
  readonly pcrSelection: ReadonlyArray<{ readonly bank: string; readonly pcrs: readonly number[] }>;
}

/** The answer to an evidence submission. */
export interface AttestationResult {
  readonly decision: 'affirming' | 'contraindicated';
  readonly nodeId: string;
  readonly ledger: { readonly seq: number; readonly hash: string };
  readonly failures: readonly Failure[];
  readonly appraisal: Appraisal;
  /** The authorization artifact (EAR JWT, or base64url CWT); only on an affirming decision. */
  readonly artifact?: string;
  /** The encoding of `artifact`. */
  readonly artifactFormat?: 'jwt' | 'cwt';
}

/** An error that carries every failure that caused it (a refused enrollment). */
export class RefusalError extends VerificationError {
  readonly failures: readonly Failure[];
  readonly ledger?: { readonly seq: number; readonly hash: string };
  constructor(e: VouchError | Failure, failures: readonly Failure[], ledger?: { seq: number; hash: string }) {
    super(e.code, e.message, { ...(e.field !== undefined ? { field: e.field } : {}) });
    this.failures = failures;
    if (ledger !== undefined) this.ledger = ledger;
  }
}

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** Node ids derive from the EK: stable across agent reinstalls, never chosen by the node. */
export function nodeIdForEk(ekPublic: TpmtPublic): string {
  return `tpm-${toHex(tpmName(ekPublic).subarray(2, 14))}`;
}

/** An SNP-only node's id: `snp-` + the first 32 hex digits of SHA-256(node key SPKI). */
export function nodeIdForNodeKey(nodeKeySpki: Uint8Array): string {
  return `snp-${toHex(sha256(nodeKeySpki)).slice(0, 32)}`;
}

/**
 * The `akName` an SNP-only node is stored under: 0x53 0x4E ‖ SHA-256(node key SPKI). No TPM
 * name starts with 0x53, so names stay unique across both kinds (src/store/migrations.ts v3).
 */
export function snpAkName(nodeKeySpki: Uint8Array): Uint8Array {
  const out = new Uint8Array(SNP_AK_NAME_PREFIX.length + 32);
  out.set(SNP_AK_NAME_PREFIX);
  out.set(sha256(nodeKeySpki), SNP_AK_NAME_PREFIX.length);
  return out;
}

function b64(field: string, v: string): Uint8Array {
  try {
    return fromBase64Url(v, field);
  } catch {
    throw new ParseError('REQUEST_MALFORMED', `${field} is not unpadded base64url`, { field });
  }
}

export class VerifierService {
  readonly settings: VerifierSettings;
  readonly deps: VerifierDeps;
  /** Imported AK keys by node id: importing costs more than verifying. */
  readonly #akCache = new Map<string, { akPublicHex: string; key: TpmVerifyKey }>();
  /** Time-independent SNP chain and CRL checks, kept across attestations. */
  readonly #snpCache = new SnpVerifyCache();
  /** Time-independent TDX chain, collateral and key checks, kept across attestations. */
  readonly #tdxCache = new TdxQuoteVerifyCache();
  /** The TDX collateral source: files read once and re-read when they change, or the PCS client. */
  readonly #tdxCollateral: TdxCollateralFiles | PcsClient | undefined;
  /** Parsed bound keys by SPKI (an agent binds the same key into every attestation it makes). */
  readonly #boundKeys = new Map<string, CnfJwk | null>();
  /** Node state changes (enrolled, trusted, untrusted), for `GET /v1/events`. */
  readonly events = new EventBus();
  /** The trust anchors appraisals use, and the retained input that records them with the EK CAs. */
  readonly #appraisalTrust: AppraisalTrust;
  readonly #trustInput: NewRetainedInput;
  /** Signing keys (kid) already recorded in the ledger as trust anchors. */
  readonly #recordedKids = new Set<string>();

  constructor(settings: VerifierSettings, deps: VerifierDeps) {
    this.settings = settings;
    this.deps = deps;
    const snp = settings.snp;
    this.#appraisalTrust = {
      ...(snp?.pinnedArks !== undefined || snp?.crls !== undefined ? { snp: { ...(snp.pinnedArks !== undefined ? { pinnedArks: snp.pinnedArks } : {}), ...(snp.crls !== undefined ? { crls: snp.crls } : {}) } } : {}),
      ...(settings.tdx?.pinnedRootFingerprints !== undefined ? { tdx: { pinnedRootFingerprints: settings.tdx.pinnedRootFingerprints } } : {}),
    };
    this.#trustInput = encodeTrustAnchors({ ...this.#appraisalTrust, tpmCas: settings.ekTrust.certificates.map((c) => c.der) });
    const src = settings.tdx?.collateral;
    this.#tdxCollateral = src === undefined ? undefined : 'path' in src ? new TdxCollateralFiles(src.path) : src.client;
  }

  /** Stores every group's policy (content-addressed) and assigns it; records the change. */
  async installPolicies(): Promise<void> {
    const now = this.deps.clock();
    for (const [group, policy] of this.settings.groups) {
      const digest = policyDigest(policy);
      const current = await this.deps.store.getAssignedPolicy(group);
      if (current?.digest === digest) continue;
      const rec = await this.deps.store.putPolicy(policy.id, canonicalPolicyJson(policy), now);
      if (rec.digest !== digest) throw new UnavailableError('STORE_UNAVAILABLE', 'stored policy digest differs from the computed digest');
      await this.deps.store.assignPolicy(group, digest, now);
      await this.deps.store.appendDecision({
        kind: 'policy',
        nodeId: null,
        outcome: 'assigned',
        time: now,
        body: { group, policyId: policy.id, policyDigest: digest, previous: current?.digest ?? null },
      });
    }
  }

  /**
   * Records the trust anchors in force as a `trust-anchor` decision (with the anchors retained
   * as an input) when they differ from the last recorded set, and every signing key of the
   * keyring not recorded yet. Call at start, after {@link installPolicies}.
   */
  async installTrustAnchors(): Promise<void> {
    const now = this.deps.clock();
    const last = await this.deps.store.lastDecision('trust-anchor');
    const lastSet = last === null ? null : decodeLedgerEntry(last.entry).body['trustSet'];
    if (lastSet !== this.#trustInput.digest) {
      await this.deps.store.appendDecision({
        kind: 'trust-anchor',
        nodeId: null,
        outcome: 'anchors-set',
        time: now,
        body: { anchor: 'trust-set', trustSet: this.#trustInput.digest, previous: typeof lastSet === 'string' ? lastSet : null, tpmCas: this.settings.ekTrust.certificates.map((c) => toHex(sha256(c.der))).sort() },
        inputs: [this.#trustInput],
      });
    }
    await this.recordSigningKeys();
  }

  /**
   * Records each key of the signing keyring's JWKS that the ledger does not hold yet, as a
   * `trust-anchor` decision `{anchor: "signing-key", kid, jwk}`: checkpoints (and artifacts) it
   * signs can then be checked against a key the hash chain itself carries.
   */
  async recordSigningKeys(): Promise<void> {
    const jwks = await this.deps.signer.currentJwks();
    for (const jwk of jwks.keys) {
      if (this.#recordedKids.has(jwk.kid)) continue;
      const bytes = canonicalJsonBytes(jwk);
      const digest = toHex(sha256(bytes));
      if ((await this.deps.store.getInput(digest)) === null) {
        await this.deps.store.appendDecision({
          kind: 'trust-anchor',
          nodeId: null,
          outcome: 'signing-key-added',
          time: this.deps.clock(),
          body: { anchor: SIGNING_KEY_ANCHOR, kid: jwk.kid, jwk: { ...jwk }, jwkSha256: digest, trustSet: this.#trustInput.digest },
          inputs: [{ digest, kind: 'signing-key', bytes }],
        });
      }
      this.#recordedKids.add(jwk.kid);
    }
  }

  /** The retained inputs of an appraisal and their references for the decision body. */
  #retainedInputs(evidence: Evidence, received: { bytes: Uint8Array; digest: Uint8Array } | undefined, ctx: Omit<AppraisalContext, 'trust'>): { inputs: NewRetainedInput[]; refs: AppraisalInputRefs } {
    // The received body's digest was taken when it was decoded; a JSON submission is re-encoded.
    const bytes = received?.bytes ?? encodeEvidenceCbor(evidence);
    const ev: NewRetainedInput = { digest: toHex(received?.digest ?? sha256(bytes)), kind: 'evidence', bytes };
    const context = encodeAppraisalContext({ ...ctx, trust: this.#trustInput.digest });
    return { inputs: [ev, context], refs: { evidence: ev.digest, context: context.digest, trust: this.#trustInput.digest } };
  }

  /** Step 1 of enrollment: check the EK and AK, seal a credential to them. */
  async enroll(req: EnrollRequest): Promise<EnrollChallenge> {
    const now = this.deps.clock();
    const failures: Failure[] = [];
    if (!this.settings.groups.has(req.group)) {
      throw new MisuseError('ENROLL_GROUP_UNKNOWN', `group "${req.group}" is not configured on this verifier`, { field: 'group', actual: req.group });
    }
    const ekPublic = decodeTpmtPublic(b64('ekPublic', req.ekPublic));
    const akPublic = decodeTpmtPublic(b64('akPublic', req.akPublic));
    const nodeId = nodeIdForEk(ekPublic);
    const akName = tpmName(akPublic);

    // A group whose policy has no tpm rules (one for SNP-only nodes) admits no TPM node.
    if (this.settings.groups.get(req.group)?.tpm === undefined) {
      failures.push(failure('ENROLL_TPM_NOT_ALLOWED', { field: 'group', actual: req.group }));
    }

    // The AK: a restricted signing key whose key can be imported.
    failures.push(...checkAkTemplate(akPublic));
    try {
      importTpmPublic(akPublic);
    } catch (e) {
      if (!isVouchError(e)) throw e;
      failures.push(failureFromError(e));
    }

    // The EK certificate chain (leaf first, then intermediates the TPM stores in NV).
    const certs: EkCertificate[] = [];
    for (const [i, c] of req.ekCertificates.entries()) {
      try {
        certs.push(parseEkCertificate(b64(`ekCertificates[${i}]`, c)));
      } catch (e) {
        if (!isVouchError(e)) throw e;
        failures.push({ ...failureFromError(e), field: `ekCertificates[${i}]` });
      }
    }
    const leaf = certs.find((c) => ekMatchesPublic(c, ekPublic).ok);
    if (certs.length === 0) {
      if (this.settings.requireEkCertificate) failures.push(failure('ENROLL_EK_CERT_MISSING', { field: 'ekCertificates' }));
    } else if (leaf === undefined) {
      failures.push(failure('EK_KEY_MISMATCH', { field: 'ekCertificates', message: 'no certificate holds the EK public key' }));
    } else {
      const chain = verifyEkChain(leaf, { trust: this.settings.ekTrust, intermediates: certs.filter((c) => c !== leaf), now: new Date(now) });
      if (!chain.ok) {
        failures.push(failure('ENROLL_EK_UNTRUSTED', { field: 'ekCertificates' }));
        failures.push(...chain.failures.map((f) => failure(f.code, f)));
      }
    }
    if (ekPublic.type !== TPM_ALG.RSA && ekPublic.type !== TPM_ALG.ECC) failures.push(failure('ENROLL_EK_UNTRUSTED', { field: 'ekPublic', message: 'the EK must be an RSA or ECC key' }));

    if (failures.length > 0) {
      const seq = await this.#record('enroll', nodeId, 'refused', now, { group: req.group, akName: toHex(akName), failures });
      throw new RefusalError(failures[0] as Failure, failures, seq);
    }

    const secret = this.deps.random(32);
    const cred = makeCredential({ ekPublic, akName, credential: secret, random: this.deps.random });
    const enrollmentId = toHex(this.deps.random(16));
    await this.deps.store.createPendingEnrollment({
      enrollmentId,
      nodeId,
      group: req.group,
      ekPublic: ekPublic.raw ?? new Uint8Array(0),
      ekCert: leaf?.der ?? null,
      akPublic: akPublic.raw ?? new Uint8Array(0),
      akName,
      secretSha256: sha256(secret),
      createdAt: now,
      expiresAt: now + this.settings.enrollmentTtlMs,
    });
    return {
      enrollmentId,
      nodeId,
      credentialBlob: toBase64Url(cred.credentialBlob),
      secret: toBase64Url(cred.secret),
      expiresAt: now + this.settings.enrollmentTtlMs,
    };
  }

  /** Step 2 of enrollment: the node returns the activated secret; only then is it enrolled. */
  async activate(enrollmentId: string, secretB64: string): Promise<{ nodeId: string; akName: string; ledger: { seq: number; hash: string } }> {
    const now = this.deps.clock();
    const pending = await this.deps.store.getPendingEnrollment(enrollmentId);
    if (pending === null || pending.expiresAt <= now) {
      throw new VerificationError('ENROLL_UNKNOWN', undefined, { field: 'enrollmentId', actual: enrollmentId });
    }
    const got = sha256(b64('secret', secretB64));
    if (!timingSafeEqual(got, pending.secretSha256)) {
      const attempts = await this.deps.store.recordEnrollmentAttempt(enrollmentId);
      if (attempts !== null && attempts >= this.settings.maxActivationAttempts) await this.deps.store.deletePendingEnrollment(enrollmentId);
      const f = failure('ENROLL_ACTIVATION_FAILED', { field: 'secret' });
      const seq = await this.#record('enroll', pending.nodeId, 'refused', now, { group: pending.group, akName: toHex(pending.akName), failures: [f] });
      throw new RefusalError(f, [f], seq);
    }
    const done = await this.deps.store.completeEnrollment(enrollmentId, now);
    if (!done.ok) {
      if (done.reason === 'unknown' || done.reason === 'expired') throw new VerificationError('ENROLL_UNKNOWN', undefined, { field: 'enrollmentId' });
      // A refusal like any other: recorded, and the pending enrollment (which can never succeed) dropped.
      await this.deps.store.deletePendingEnrollment(enrollmentId);
      const f = failure('ENROLL_CONFLICT', { message: `enrollment refused: ${done.reason}`, field: 'nodeId', actual: pending.nodeId });
      const seq = await this.#record('enroll', pending.nodeId, 'refused', now, { group: pending.group, akName: toHex(pending.akName), failures: [f] });
      throw new RefusalError(f, [f], seq);
    }
    const ledger = await this.#record('enroll', pending.nodeId, 'enrolled', now, {
      group: pending.group,
      akName: toHex(pending.akName),
      ekPublicSha256: toHex(sha256(pending.ekPublic)),
      ekCertSha256: pending.ekCert === null ? null : toHex(sha256(pending.ekCert)),
    });
    this.events.emit({ type: 'enrolled', nodeId: pending.nodeId, group: pending.group, seq: ledger.seq, hash: ledger.hash, time: now });
    return { nodeId: pending.nodeId, akName: toHex(pending.akName), ledger };
  }

  /**
   * Step 1 of an SNP-only enrollment: the group's policy must admit SNP-only nodes (snp rules, no
   * TPM rules) and the node key must be a P-256 SPKI; the answer is the nonce that the report's
   * REPORT_DATA (with the node key) and the key proof must bind.
   */
  async enrollSnp(req: SnpEnrollRequest): Promise<SnpEnrollChallenge> {
    const now = this.deps.clock();
    const policy = this.settings.groups.get(req.group);
    if (policy === undefined) {
      throw new MisuseError('ENROLL_GROUP_UNKNOWN', `group "${req.group}" is not configured on this verifier`, { field: 'group', actual: req.group });
    }
    const nodeKey = b64('nodeKey', req.nodeKey);
    parseNodeKey(nodeKey, 'nodeKey');
    const nodeId = nodeIdForNodeKey(nodeKey);
    const pf = snpOnlyPolicyFailures(policy);
    if (pf.length > 0) {
      const failures = [failure('ENROLL_SNP_NOT_ALLOWED', { field: 'group', actual: pf.map((f) => f.code).join(', ') }), ...pf];
      const seq = await this.#record('enroll', nodeId, 'refused', now, { kind: 'snp', group: req.group, nodeKeySha256: toHex(sha256(nodeKey)), failures });
      throw new RefusalError(failures[0] as Failure, failures, seq);
    }
    const enrollmentId = toHex(this.deps.random(16));
    const nonce = this.deps.random(32);
    const expiresAt = now + this.settings.enrollmentTtlMs;
    await this.deps.store.createPendingSnpEnrollment({ enrollmentId, nodeId, group: req.group, nodeKey, nonce, createdAt: now, expiresAt });
    return { enrollmentId, nonce: toBase64Url(nonce), expiresAt };
  }

  /**
   * Step 2 of an SNP-only enrollment. The pending enrollment is taken (single use: a refusal
   * ends it too); the report is verified and appraised against the group's `snp` rules with
   * REPORT_DATA = teeReportData(nonce, node key), and the key proof is checked. Only then is the
   * node enrolled, as `snp-…` with kind 'snp'. Every outcome past the lookup is recorded.
   */
  async completeSnpEnrollment(enrollmentId: string, body: SnpEnrollCompletion): Promise<{ nodeId: string; ledger: { seq: number; hash: string } }> {
    const now = this.deps.clock();
    // Decode first: a malformed body does not use up the enrollment.
    const report = b64('report', body.report);
    const certTable = body.certTable === undefined ? undefined : b64('certTable', body.certTable);
    const keyProof = b64('keyProof', body.keyProof);
    const taken = await this.deps.store.takePendingSnpEnrollment(enrollmentId, now);
    if (!taken.ok) {
      throw new VerificationError('ENROLL_UNKNOWN', taken.reason === 'expired' ? 'the pending enrollment expired before it was completed' : undefined, { field: 'enrollmentId', actual: enrollmentId });
    }
    const pending = taken.pending;
    const policy = this.settings.groups.get(pending.group) ?? null;
    // KDS collateral as at attestation; the enrollment was taken (single use) before any fetch.
    const kds = this.settings.snp?.kds;
    const snpCollateral =
      kds !== undefined && policy?.snp !== undefined
        ? await resolveSnpCollateral({ evidence: { report, ...(certTable !== undefined ? { certTable } : {}) }, pinnedArks: this.settings.snp?.pinnedArks, products: kds.products }, kds.client)
        : undefined;
    const a = appraiseSnpEnrollment({
      policy,
      nodeKey: pending.nodeKey,
      nonce: pending.nonce,
      snp: { report, ...(certTable !== undefined ? { certTable } : {}) },
      keyProof,
      now,
      snpTrust: { ...(this.settings.snp ?? {}), cache: this.#snpCache, ...(snpCollateral !== undefined ? { collateral: snpCollateral } : {}) },
    });
    const body0 = {
      kind: 'snp',
      group: pending.group,
      nodeKeySha256: toHex(sha256(pending.nodeKey)),
      reportSha256: a.reportSha256,
      chipId: a.chipId ?? null,
      measurement: a.snp?.measurement ?? null,
      policyId: policy?.id ?? null,
      policyDigest: policy === null ? null : policyDigest(policy),
    };
    if (!a.ok) {
      const failures = a.failures.length > 0 ? a.failures : [failure('APPRAISAL_INTERNAL_ERROR', { message: 'the report was not verified' })];
      const seq = await this.#record('enroll', pending.nodeId, 'refused', now, { ...body0, failures });
      throw new RefusalError(failures[0] as Failure, failures, seq);
    }
    const done = await this.deps.store.enrollNode({
      nodeId: pending.nodeId,
      group: pending.group,
      kind: 'snp',
      nodeKey: pending.nodeKey,
      ekPublic: new Uint8Array(0),
      ekCert: null,
      akPublic: new Uint8Array(0),
      akName: snpAkName(pending.nodeKey),
      enrolledAt: now,
    });
    if (!done.ok) {
      const f = failure('ENROLL_CONFLICT', { message: `enrollment refused: ${done.reason}`, field: 'nodeId', actual: pending.nodeId });
      const seq = await this.#record('enroll', pending.nodeId, 'refused', now, { ...body0, failures: [f] });
      throw new RefusalError(f, [f], seq);
    }
    const ledger = await this.#record('enroll', pending.nodeId, 'enrolled', now, body0);
    this.events.emit({ type: 'enrolled', nodeId: pending.nodeId, group: pending.group, seq: ledger.seq, hash: ledger.hash, time: now });
    return { nodeId: pending.nodeId, ledger };
  }

  /** Issues a single-use challenge for an enrolled node, with the PCR selection its policy needs. */
  async challenge(nodeId: string): Promise<ChallengeResponse> {
    const now = this.deps.clock();
    const node = await this.deps.store.getNode(nodeId);
    if (node === null) throw new VerificationError('APPRAISAL_NODE_UNKNOWN', undefined, { field: 'nodeId', actual: nodeId });
    if (node.revokedAt !== null) throw new PolicyError('APPRAISAL_NODE_REVOKED', undefined, { field: 'nodeId', actual: nodeId });
    const policy = this.settings.groups.get(node.group);
    if (policy === undefined) throw new VerificationError('POLICY_NOT_ASSIGNED', undefined, { field: 'group', actual: node.group });
    const selection = challengeSelection(policy);
    const challengeId = toHex(this.deps.random(16));
    const nonce = this.deps.random(32);
    const expiresAt = now + this.settings.challengeTtlMs;
    await this.deps.store.createChallenge({
      challengeId,
      nodeId,
      nonce,
      params: { policyDigest: policyDigest(policy), selection: selection.map((b) => ({ hashAlg: b.hashAlg, pcrs: [...b.pcrs] })) },
      createdAt: now,
      expiresAt,
    });
    return {
      challengeId,
      nonce: toBase64Url(nonce),
      expiresAt,
      pcrSelection: selection.map((b) => ({ bank: hashById(b.hashAlg)?.name ?? String(b.hashAlg), pcrs: [...b.pcrs] })),
    };
  }

  #akKey(node: NodeSnapshot): TpmVerifyKey {
    // An SNP node's ak_public is an empty placeholder: never decoded as a TPM key.
    if (node.kind !== 'tpm') throw new VerificationError('APPRAISAL_NODE_KIND_MISMATCH', `node ${node.nodeId} is an SNP-only node and has no attestation key`, { field: 'node.kind', expected: 'tpm', actual: node.kind });
    const hex = toHex(node.akPublic);
    const hit = this.#akCache.get(node.nodeId);
    if (hit !== undefined && hit.akPublicHex === hex) return hit.key;
    const key = importTpmPublic(decodeTpmtPublic(node.akPublic));
    this.#akCache.set(node.nodeId, { akPublicHex: hex, key });
    return key;
  }

  /** The bound key as a JWK, or null when it is not a supported key; cached per SPKI (bounded). */
  #boundKey(spki: Uint8Array): CnfJwk | null {
    const hex = toHex(spki);
    const hit = this.#boundKeys.get(hex);
    if (hit !== undefined) return hit;
    let jwk: CnfJwk | null = null;
    if (boundKeySupported(spki)) {
      try {
        jwk = toPublicJwk(spki, 'evidence.boundKey');
      } catch (e) {
        if (!isVouchError(e)) throw e;
      }
    }
    if (this.#boundKeys.size >= 4096) this.#boundKeys.delete(this.#boundKeys.keys().next().value as string);
    this.#boundKeys.set(hex, jwk);
    return jwk;
  }

  /** Appraises evidence; an affirming decision returns a signed artifact. */
  /**
   * Appraises evidence and records the decision. `options.evidenceDigest` is the SHA-256 of the
   * received canonical CBOR body when there is one (decodeEvidenceCborWithDigest).
   */
  async attest(evidence: Evidence, options: AttestOptions = {}): Promise<AttestationResult> {
    const now = this.deps.clock();
    const store = this.deps.store;
    // Read the challenge and the node; the challenge is consumed, and the counters moved, in the
    // transaction that records the decision (Store.commitAttestation), so a concurrent replay
    // loses there even when both submissions appraised clean.
    const { challenge, node, imaState } = await store.attestationInputs(evidence.challengeId, evidence.nodeId);
    const policy = node === null ? null : (this.settings.groups.get(node.group) ?? null);

    const fresh = challengeInput(challenge, evidence.nodeId, now);
    let appraisal: Appraisal;
    let snpOnly: boolean;
    let snpCollateral: SnpSuppliedCollateral | undefined;
    let tdxCollateral: TdxSuppliedCollateral | undefined;
    try {
      // SEV-SNP collateral from AMD KDS or its cache, fetched before the pure appraisal, and only
      // for a live (single-use) challenge of an enrolled node whose policy has SNP rules.
      const kds = this.settings.snp?.kds;
      snpCollateral =
        evidence.snp !== undefined && kds !== undefined && fresh.ok && node !== null && policy?.snp !== undefined
          ? await resolveSnpCollateral({ evidence: evidence.snp, pinnedArks: this.settings.snp?.pinnedArks, products: kds.products }, kds.client)
          : undefined;
      // TDX collateral (files or Intel PCS), obtained before the pure appraisal under the same conditions.
      tdxCollateral =
        evidence.tdx !== undefined && this.#tdxCollateral !== undefined && fresh.ok && node !== null && policy?.tdx !== undefined ? await resolveTdxCollateral(evidence.tdx, this.#tdxCollateral) : undefined;
      // The pure evaluation, shared with replay (src/verifier/attestation.ts): an SNP-only node is
      // appraised by appraiseSnpOnly, a TPM node by appraise; a revoked node is refused.
      ({ appraisal, snpOnly } = evaluateAttestation({
        evidence,
        ...(options.evidenceDigest !== undefined ? { evidenceDigest: options.evidenceDigest } : {}),
        challenge,
        node,
        imaState,
        policy,
        now,
        trust: this.#appraisalTrust,
        ...(snpCollateral !== undefined ? { snpCollateral } : {}),
        ...(tdxCollateral !== undefined ? { tdxCollateral } : {}),
        caches: { snp: this.#snpCache, tdx: this.#tdxCache, akKey: (n) => this.#akKey(n), boundKey: (spki) => this.#boundKey(spki) },
      }));
    } catch (cause) {
      // An exception inside appraisal is never an allow: record it and answer 5xx.
      const f = failure('APPRAISAL_INTERNAL_ERROR', { message: isVouchError(cause) ? `${cause.code}: ${cause.message}` : 'unexpected error' });
      await this.#record('refusal', evidence.nodeId, 'error', now, { evidenceDigest: toHex(options.evidenceDigest ?? evidenceDigest(evidence)), failures: [f] }).catch(() => undefined);
      throw new UnavailableError('APPRAISAL_INTERNAL_ERROR', undefined, { cause });
    }
    // What the evaluation read, retained content-addressed so the decision can be replayed.
    const retained = this.settings.retainInputs === false ? undefined : this.#retainedInputs(evidence, options.evidenceBytes !== undefined && options.evidenceDigest !== undefined ? { bytes: options.evidenceBytes, digest: options.evidenceDigest } : undefined, { now, challenge, node, imaState, ...(snpCollateral !== undefined ? { snpCollateral } : {}), ...(tdxCollateral !== undefined ? { tdxCollateral } : {}) });

    const claims = appraisal.claims;
    // An SNP-only node has no TPM counters: its attestations commit with counters null.
    const wantsCounters = !snpOnly && appraisal.status === 'affirming' && node !== null && claims !== undefined;
    // What to add if a step loses a race with a concurrent submission of this node (see
    // src/store/commit.ts): a challenge fresh when read but consumed first is a replay.
    const onRace: AttestationRaceFailures<Failure> = {
      // A revocation that lands between this read and the commit still refuses.
      ...(node !== null && node.revokedAt === null ? { revoked: failure('APPRAISAL_NODE_REVOKED', { field: 'nodeId', actual: node.nodeId, message: 'an operator revoked the node while its evidence was appraised' }) } : {}),
      ...(fresh.ok
        ? { challenge: Object.fromEntries(CHALLENGE_REFUSALS.map((r) => [r, failure(CHALLENGE_REFUSAL_CODES[r], { field: 'evidence.challenge', actual: evidence.challengeId })])) as Record<ChallengeRefusal, Failure> }
        : {}),
      ima: failure('IMA_STATE_MISMATCH', { field: 'ima', message: 'another attestation of this node advanced the IMA state concurrently' }),
      counters: failure('TPM_COUNTER_ROLLBACK', { field: 'TPMS_ATTEST.clockInfo', message: 'another quote of this node was accepted concurrently' }),
    };
    const appended = await store.commitAttestation({
      challengeId: evidence.challengeId,
      nodeId: evidence.nodeId,
      now,
      counters: wantsCounters
        ? { expected: node.counters, next: { resetCount: claims.counters.resetCount, restartCount: claims.counters.restartCount, clock: BigInt(claims.counters.clock) } }
        : null,
      // The IMA state advances whenever the entries replayed to the quote, refusals included:
      // a violation stays on record for the rest of the boot.
      ima: appraisal.imaNext === undefined ? null : { expected: imaState, next: appraisal.imaNext },
      decision: {
        kind: 'appraise',
        nodeId: evidence.nodeId,
        time: now,
        ...attestationDecision(appraisal, { challengeId: evidence.challengeId, policy, boundKeyJwk: this.#boundKey(evidence.boundKey), ...(retained !== undefined ? { inputs: retained.refs } : {}) }),
        ...(retained !== undefined ? { inputs: retained.inputs } : {}),
      },
      onRace,
    });
    const extra = raceFailures(onRace, appended.outcome);
    const final: Appraisal = extra.length === 0 ? appraisal : { ...appraisal, status: 'contraindicated', failures: [...appraisal.failures, ...extra] };
    const ledger = { seq: appended.seq, hash: toHex(appended.hash) };
    if (node !== null) this.events.emit({ type: final.status === 'affirming' && policy !== null ? 'trusted' : 'untrusted', nodeId: node.nodeId, group: node.group, seq: ledger.seq, hash: ledger.hash, time: now });
    if (final.status !== 'affirming' || policy === null) {
      return { decision: 'contraindicated', nodeId: evidence.nodeId, ledger, failures: final.failures, appraisal: final };
    }
    const cpu = final.claims?.snp ?? final.snpOnly?.snp;
    const cpuCollateral = cpu !== undefined ? snpCollateralDigests(cpu) : final.claims?.tdx !== undefined ? tdxCollateralDigests(final.claims.tdx) : {};
    const artifactInput: IssueArtifactInput = {
      now: Math.floor(now / 1000),
      lifetimeSeconds: policy.artifact.lifetimeSeconds,
      verifierId: this.settings.verifierId,
      nodeId: evidence.nodeId,
      ...(policy.artifact.audience !== undefined ? { audience: policy.artifact.audience } : {}),
      // An SNP-only node has only `cpu0` (no TPM was appraised, so no `tpm0`).
      submods: snpOnly
        ? { cpu0: { status: 'affirming' as const, trustVector: final.trustVector, collateral: cpuCollateral } }
        : {
            tpm0: { status: 'affirming', trustVector: final.trustVector },
            // A verified SEV-SNP report or TDX quote: a genuine AMD or Intel platform, approved configuration, encrypted memory.
            ...(final.claims?.snp !== undefined || final.claims?.tdx !== undefined
              ? { cpu0: { status: 'affirming' as const, trustVector: { 'instance-identity': AR4SI.instanceIdentity.trustworthy, configuration: AR4SI.configuration.approved, hardware: AR4SI.hardware.genuine, 'runtime-opaque': AR4SI.runtimeOpaque.encryptedMemory }, collateral: cpuCollateral } }
              : {}),
          },
      policyId: policy.id,
      policyDigest: policyDigest(policy),
      evidenceDigest: final.evidenceDigest,
      boundKeyJwk: this.#boundKey(evidence.boundKey),
      ledger,
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
    };
    // The artifact in the encoding the request asked for: a JWT, or a CWT (base64url COSE_Sign1).
    const artifact = options.format === 'cwt' ? toBase64Url(await issueArtifactCwt(this.deps.signer, artifactInput)) : await issueArtifact(this.deps.signer, artifactInput);
    return { decision: 'affirming', nodeId: evidence.nodeId, ledger, failures: [], appraisal: final, artifact, artifactFormat: options.format ?? 'jwt' };
  }

  async #record(kind: 'enroll' | 'appraise' | 'refusal', nodeId: string | null, outcome: string, time: number, body: Record<string, unknown>): Promise<{ seq: number; hash: string }> {
    // An enrollment names the trust anchors (EK CAs) it was checked against, by the digest of the recorded set.
    const withTrust = kind === 'enroll' ? { ...body, trustSet: this.#trustInput.digest } : body;
    const r = await this.deps.store.appendDecision({ kind, nodeId, outcome, time, body: JSON.parse(JSON.stringify(withTrust)) as Record<string, unknown> });
    return { seq: r.seq, hash: toHex(r.hash) };
  }
}

/** Options of {@link VerifierService.attest}. */
export interface AttestOptions {
  /** SHA-256 of the received canonical CBOR body, when there is one. */
  readonly evidenceDigest?: Uint8Array;
  /** The received canonical CBOR body itself (retained for replay; re-encoded from `evidence` when absent). */
  readonly evidenceBytes?: Uint8Array;
  /** A relying party's nonce (8..88 printable ASCII) to echo as `eat_nonce` in the artifact. */
  readonly nonce?: string;
  /** Artifact encoding (default jwt). */
  readonly format?: 'jwt' | 'cwt';
}

/** `vouch.collateral` of an SEV-SNP appraisal: the VCEK/VLEK, ASK/ASVK, ARK and CRL digests. */
function snpCollateralDigests(s: SnpSummary): Record<string, string> {
  const c = s.collateral;
  return { [`snp.${s.signer}`]: c.leaf.sha256, 'snp.ask': c.ask.sha256, 'snp.ark': c.ark.sha256, ...(c.crl !== undefined ? { 'snp.crl': c.crl.sha256 } : {}) };
}

/** `vouch.collateral` of a TDX appraisal: the PCK certificate and every collateral item. */
function tdxCollateralDigests(t: TdxSummary): Record<string, string> {
  const out: Record<string, string> = {};
  if (t.pckSha256 !== undefined) out['tdx.pck'] = t.pckSha256;
  for (const [k, v] of Object.entries(t.collateral)) if (k !== 'source' && typeof v === 'string') out[`tdx.${k}`] = v;
  return out;
}

const CHALLENGE_REFUSALS = Object.keys(CHALLENGE_REFUSAL_CODES) as ChallengeRefusal[];


export { challengeInput };

/** Parses a policy file's text for a group (YAML or JSON by extension). */
export function policyFromText(text: string, path: string): Policy {
  return parsePolicy(text, path.endsWith('.json') ? 'json' : 'yaml');
}

/** Default randomness. */
export function defaultRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}
