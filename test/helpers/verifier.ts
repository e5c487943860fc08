/**
 * An in-process verifier for tests: a temporary data directory with the SQLite store and the
 * artifact signing key, a test-only EK CA, synthetic TPMs (an RSA-2048 EK from node:crypto with
 * an EK certificate, and a synthetic AK), a fake clock and seeded randomness. Nothing listens on
 * a port: requests go through fastify's `inject`.
 *
 * {@link activateCredentialInSoftware} does the TPM's side of credential activation
 * (TPM2_ActivateCredential, TPM 2.0 Library Part 1 §24) in TypeScript, written from the spec and
 * independently of src/tpm/credential.ts, so enrollment can be completed without a TPM and the
 * verifier's MakeCredential is checked by a second implementation.
 */
import 'reflect-metadata';
import {
  constants as C,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  timingSafeEqual,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp, type AppOptions } from '../../src/verifier/app.js';
import type { HeartbeatTimers } from '../../src/verifier/heartbeat.js';
import { VerifierService, type ChallengeResponse, type VerifierSettings } from '../../src/verifier/service.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { ArtifactSigner } from '../../src/artifact/index.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import { parseEkCertificate, trustStoreFromCerts, type EkTrustStore } from '../../src/tpm/ek/index.js';
import { TPM_ALG, decodeTpmtPublic, encodeTpmtPublic, hashByName, pcrSelection, type PcrSelection, type TpmtPublic } from '../../src/tpm/abi/index.js';
import { EK_TEMPLATE_RSA2048 } from '../../src/tpm/templates.js';
import { tpmQualifyingData } from '../../src/evidence/binding.js';
import { EVIDENCE_VERSION, encodeEvidenceCbor, encodeEvidenceJson, type Evidence, type TpmNodeEvidence } from '../../src/evidence/envelope.js';
import type { ErrorCode } from '../../src/lib/errors.js';
import type { Failure } from '../../src/lib/failure.js';
import { syntheticAk, syntheticPcrs, syntheticQuote, signAttest, type SyntheticAk } from './synthetic.js';

// --- time and randomness --------------------------------------------------------------------

/**
 * Interval timers a test fires by hand: `api` is what the verifier's periodic tasks take
 * (heartbeat, stale check, checkpoints); `fn` and `period` are what they registered, `cleared`
 * whether they stopped.
 */
export function manualIntervalTimers(): { fn: (() => void) | null; period: number; cleared: boolean; api: HeartbeatTimers } {
  const t: { fn: (() => void) | null; period: number; cleared: boolean; api: HeartbeatTimers } = {
    fn: null,
    period: 0,
    cleared: false,
    api: {
      setInterval(fn: () => void, ms: number): unknown {
        t.fn = fn;
        t.period = ms;
        return t;
      },
      clearInterval(h: unknown): void {
        if (h === t) t.cleared = true;
      },
    },
  };
  return t;
}

/** A clock the test moves by hand (epoch milliseconds). */
export interface FakeClock {
  readonly now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

/** 2030-01-01T00:00:00Z: inside the test certificates' validity. */
export const T_START = Date.UTC(2030, 0, 1);

export function fakeClock(start = T_START): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
    set(ms) {
      t = ms;
    },
  };
}

/** Deterministic bytes: SHA-256(seed ‖ counter) blocks. Reproducible runs, never secure. */
export function seededRandom(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    let have = 0;
    while (have < n) {
      const block = createHash('sha256').update(seed).update(String(counter++)).digest();
      const take = Math.min(block.length, n - have);
      out.set(block.subarray(0, take), have);
      have += take;
    }
    return out;
  };
}

// --- test PKI and synthetic TPMs ------------------------------------------------------------

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const NOT_BEFORE = new Date('2020-01-01T00:00:00Z');
const NOT_AFTER = new Date('2040-01-01T00:00:00Z');

/** A test-only CA, generated per run. */
export interface TestCa {
  readonly name: string;
  readonly keys: CryptoKeyPair;
  readonly der: Uint8Array;
}

let serial = 1;
function nextSerial(): string {
  return (serial++).toString(16).padStart(8, '0');
}

/** A self-signed root CA (ECDSA P-256). */
export async function testCa(name: string): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: name,
    issuer: name,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { name, keys, der: new Uint8Array(cert.rawData) };
}

/** An EK certificate issued by `ca` for the RSA public key `ekKey`. */
export async function issueEkCertificate(ca: TestCa, ekKey: KeyObject, subject = 'CN=Test EK,O=vouch test'): Promise<Uint8Array> {
  const spki = ekKey.export({ format: 'der', type: 'spki' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject,
    issuer: ca.name,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true)],
  });
  return new Uint8Array(cert.rawData);
}

/** A trust store holding `cas`. */
export function ekTrustOf(...cas: TestCa[]): EkTrustStore {
  return trustStoreFromCerts(cas.map((c) => parseEkCertificate(c.der)));
}

/** An RSA-2048 EK shaped by the EK Credential Profile template L-1, with its private key. */
export interface SyntheticEk {
  /** Decoded from its wire bytes, so `raw` is set. */
  readonly public: TpmtPublic;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function syntheticEk(): SyntheticEk {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const n = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).n as string, 'base64url'));
  const pub: TpmtPublic = { ...EK_TEMPLATE_RSA2048, unique: n };
  return { public: decodeTpmtPublic(encodeTpmtPublic(pub)), publicKey, privateKey };
}

/** A synthetic TPM: EK (+ certificate) and AK. */
export interface SyntheticTpm {
  readonly ek: SyntheticEk;
  /** DER of the EK certificate. */
  readonly ekCert: Uint8Array;
  readonly ak: SyntheticAk;
}

export async function syntheticTpm(ca: TestCa, ak: SyntheticAk = syntheticAk('ecc')): Promise<SyntheticTpm> {
  const ek = syntheticEk();
  return { ek, ekCert: await issueEkCertificate(ca, ek.publicKey), ak };
}

/** The TPM name of a public area: nameAlg ‖ SHA-256(TPMT_PUBLIC) (computed here, not with src/tpm/name). */
export function nameOf(pub: TpmtPublic): Uint8Array {
  if (pub.nameAlg !== TPM_ALG.SHA256) throw new TypeError('test helper: only SHA-256 names');
  const digest = createHash('sha256').update(encodeTpmtPublic(pub)).digest();
  return new Uint8Array(Buffer.concat([Buffer.from([0x00, 0x0b]), digest]));
}

// --- TPM2_ActivateCredential in software -----------------------------------------------------

/** Why software activation refused a credential. */
export class ActivationError extends Error {}

/** KDFa (Part 1 §11.4.10.2) with HMAC-SHA256: counter ‖ label ‖ 0 ‖ contextU ‖ contextV ‖ bits. */
function kdfaSha256(key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const bytes = bits / 8;
  const blocks: Buffer[] = [];
  for (let i = 1; blocks.length * 32 < bytes; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(bits);
    blocks.push(createHmac('sha256', key).update(counter).update(label).update(Buffer.from([0])).update(contextU).update(contextV).update(size).digest());
  }
  return new Uint8Array(Buffer.concat(blocks).subarray(0, bytes));
}

/** Reads a u16-size-prefixed field at `at`; throws when it overruns. */
function tpm2b(buf: Uint8Array, at: number, what: string): { value: Uint8Array; end: number } {
  if (at + 2 > buf.length) throw new ActivationError(`${what}: truncated size`);
  const size = ((buf[at] as number) << 8) | (buf[at + 1] as number);
  if (at + 2 + size > buf.length) throw new ActivationError(`${what}: size ${size} overruns the buffer`);
  return { value: buf.subarray(at + 2, at + 2 + size), end: at + 2 + size };
}

/** Inputs of {@link activateCredentialInSoftware}: what ActivateCredential gets, plus the EK private key. */
export interface SoftwareActivation {
  /** RSA EK private key (template L-1: SHA-256 name, AES-128-CFB). */
  readonly ekPrivateKey: KeyObject;
  /** The AK's TPM name (the object the credential is bound to). */
  readonly akName: Uint8Array;
  /** TPM2B_ID_OBJECT, as the verifier returned it. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET, as the verifier returned it. */
  readonly secret: Uint8Array;
}

/**
 * TPM2_ActivateCredential for an RSA-2048 EK with the low-range template: decrypt the seed with
 * RSA-OAEP-SHA256 and label "IDENTITY\0", check the outer HMAC (KDFa "INTEGRITY") over
 * encIdentity ‖ AK name, then AES-128-CFB decrypt (KDFa "STORAGE", context the AK name) the
 * TPM2B_DIGEST credential.
 * @throws ActivationError when the blob is malformed or not made for this EK and AK
 */
export function activateCredentialInSoftware(a: SoftwareActivation): Uint8Array {
  const idObject = tpm2b(a.credentialBlob, 0, 'TPM2B_ID_OBJECT');
  if (idObject.end !== a.credentialBlob.length) throw new ActivationError('TPM2B_ID_OBJECT: trailing bytes');
  const hmac = tpm2b(idObject.value, 0, 'TPMS_ID_OBJECT.integrityHMAC');
  const encIdentity = idObject.value.subarray(hmac.end);
  const encrypted = tpm2b(a.secret, 0, 'TPM2B_ENCRYPTED_SECRET');
  if (encrypted.end !== a.secret.length) throw new ActivationError('TPM2B_ENCRYPTED_SECRET: trailing bytes');

  let seed: Uint8Array;
  try {
    seed = new Uint8Array(
      privateDecrypt({ key: a.ekPrivateKey, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('IDENTITY\0', 'latin1') }, encrypted.value),
    );
  } catch {
    throw new ActivationError('the seed does not decrypt with this EK');
  }
  const hmacKey = kdfaSha256(seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
  const want = createHmac('sha256', hmacKey).update(encIdentity).update(a.akName).digest();
  if (hmac.value.length !== want.length || !timingSafeEqual(hmac.value, want)) throw new ActivationError('integrity HMAC mismatch (TPM_RC_INTEGRITY)');
  const symKey = kdfaSha256(seed, 'STORAGE', a.akName, new Uint8Array(0), 128);
  const d = createDecipheriv('aes-128-cfb', symKey, new Uint8Array(16));
  const plain = new Uint8Array(Buffer.concat([d.update(encIdentity), d.final()]));
  const credential = tpm2b(plain, 0, 'TPM2B_DIGEST credential');
  if (credential.end !== plain.length) throw new ActivationError('credential: trailing bytes');
  return credential.value;
}

// --- policy ---------------------------------------------------------------------------------

/** The synthetic PCR values every well-behaved test node reports. */
export const GOOD_PCRS = syntheticPcrs('pcr');

/** Hex of a synthetic PCR value. */
export function pcrHex(alg: number, index: number, pcrs = GOOD_PCRS): string {
  const v = pcrs.get(alg)?.get(index);
  if (v === undefined) throw new TypeError(`test helper: no PCR ${alg}/${index}`);
  return Buffer.from(v).toString('hex');
}

/** Policy text: sha256 PCRs 0-7 pinned to {@link GOOD_PCRS}, PCR 10 `any`; optionally sha1 0-7 too. */
export function policyText(opts: { id?: string; sha1?: boolean; extraTop?: Record<string, unknown>; lifetimeSeconds?: number } = {}): string {
  const bank = (alg: number): Record<string, string[] | 'any'> => {
    const out: Record<string, string[] | 'any'> = {};
    for (let i = 0; i < 8; i++) out[String(i)] = [pcrHex(alg, i)];
    out['10'] = 'any';
    return out;
  };
  const doc = {
    apiVersion: 'vouch/v1',
    kind: 'AttestationPolicy',
    id: opts.id ?? 'test-nodes',
    tpm: {
      banks: opts.sha1 === true ? ['sha1', 'sha256'] : ['sha256'],
      pcrs: opts.sha1 === true ? { sha1: bank(TPM_ALG.SHA1), sha256: bank(TPM_ALG.SHA256) } : { sha256: bank(TPM_ALG.SHA256) },
    },
    artifact: { lifetimeSeconds: opts.lifetimeSeconds ?? 300, audience: ['key-broker'] },
    ...opts.extraTop,
  };
  return JSON.stringify(doc);
}

export function testPolicy(opts: Parameters<typeof policyText>[0] = {}): Policy {
  return parsePolicy(policyText(opts), 'json');
}

// --- the verifier under test ----------------------------------------------------------------

/** A running in-process verifier. */
export interface TestVerifier {
  readonly dir: string;
  /** The real store (the service may see a wrapper of it). */
  readonly sqlite: SqliteStore;
  readonly signer: ArtifactSigner;
  readonly service: VerifierService;
  readonly app: FastifyInstance;
  readonly clock: FakeClock;
  close(): Promise<void>;
}

export interface TestVerifierOptions {
  readonly groups: ReadonlyMap<string, Policy>;
  readonly ekTrust: EkTrustStore;
  /** Wraps the store the service uses (to inject failures). */
  readonly wrapStore?: (s: SqliteStore) => Store;
  readonly settings?: Partial<Omit<VerifierSettings, 'groups' | 'ekTrust'>>;
  readonly app?: AppOptions;
  readonly seed?: string;
  /** Skip installPolicies (for policies that throw on purpose). */
  readonly skipInstall?: boolean;
}

export async function startVerifier(opts: TestVerifierOptions): Promise<TestVerifier> {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-verifier-'));
  const sqlite = await SqliteStore.open({ dataDir: dir });
  const signer = await ArtifactSigner.open(dir);
  const clock = fakeClock();
  const service = new VerifierService(
    {
      verifierId: 'vouch-test',
      groups: opts.groups,
      ekTrust: opts.ekTrust,
      requireEkCertificate: true,
      challengeTtlMs: 60_000,
      enrollmentTtlMs: 300_000,
      maxActivationAttempts: 3,
      ...opts.settings,
    },
    { store: opts.wrapStore === undefined ? sqlite : opts.wrapStore(sqlite), signer, clock: clock.now, random: seededRandom(opts.seed ?? 'vouch-test') },
  );
  if (opts.skipInstall !== true) await service.installPolicies();
  const app = await buildApp(service, opts.app);
  await app.ready();
  return {
    dir,
    sqlite,
    signer,
    service,
    app,
    clock,
    async close() {
      await app.close();
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- HTTP helpers ---------------------------------------------------------------------------

/** The JSON body of an error answer (and of a refused attestation). */
export interface ErrorAnswer {
  readonly error: { readonly code: ErrorCode; readonly category?: string; readonly message: string; readonly field?: string; readonly expected?: string; readonly actual?: string };
  readonly failures?: readonly Failure[];
  readonly ledger?: { readonly seq: number; readonly hash: string };
  readonly decision?: string;
  readonly artifact?: unknown;
}

export function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

export function fromB64u(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

/** The body of POST /v1/enrollments for `tpm` (AK and certificates overridable). */
export function enrollBody(tpm: SyntheticTpm, over: { group?: string; certs?: readonly Uint8Array[]; akPublic?: TpmtPublic } = {}): Record<string, unknown> {
  return {
    group: over.group ?? 'gpu',
    ekPublic: b64u(encodeTpmtPublic(tpm.ek.public)),
    ekCertificates: (over.certs ?? [tpm.ekCert]).map(b64u),
    akPublic: b64u(encodeTpmtPublic(over.akPublic ?? tpm.ak.public)),
  };
}

export interface EnrollAnswer {
  readonly enrollmentId: string;
  readonly nodeId: string;
  readonly credentialBlob: string;
  readonly secret: string;
  readonly expiresAt: number;
}

export async function postJson(app: FastifyInstance, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

/** Recovers the activation secret of an enrollment answer as the node's TPM would. */
export function activate(tpm: SyntheticTpm, answer: EnrollAnswer): Uint8Array {
  return activateCredentialInSoftware({
    ekPrivateKey: tpm.ek.privateKey,
    akName: nameOf(tpm.ak.public),
    credentialBlob: fromB64u(answer.credentialBlob),
    secret: fromB64u(answer.secret),
  });
}

/** Enrolls `tpm` over HTTP (both steps); fails the test unless it is enrolled. */
export async function enrollOverHttp(app: FastifyInstance, tpm: SyntheticTpm, group = 'gpu'): Promise<string> {
  const r1 = await postJson(app, '/v1/enrollments', enrollBody(tpm, { group }));
  if (r1.statusCode !== 201) throw new Error(`enrollment step 1 answered ${r1.statusCode}: ${r1.body}`);
  const answer = r1.json<EnrollAnswer>();
  const r2 = await postJson(app, `/v1/enrollments/${answer.enrollmentId}/activate`, { secret: b64u(activate(tpm, answer)) });
  if (r2.statusCode !== 200) throw new Error(`activation answered ${r2.statusCode}: ${r2.body}`);
  return answer.nodeId;
}

/** A challenge as the test uses it: the answer plus the decoded nonce and selection. */
export interface Challenge extends ChallengeResponse {
  readonly nonceBytes: Uint8Array;
  readonly selection: PcrSelection;
}

export async function getChallenge(app: FastifyInstance, nodeId: string): Promise<Challenge> {
  const r = await postJson(app, '/v1/challenges', { nodeId });
  if (r.statusCode !== 201) throw new Error(`challenge answered ${r.statusCode}: ${r.body}`);
  return decodeChallenge(r.json<ChallengeResponse>());
}

/** A challenge answer decoded as {@link Challenge} (nonce bytes and PCR selection). */
export function decodeChallenge(c: ChallengeResponse): Challenge {
  const selection = pcrSelection(
    c.pcrSelection.map((b) => {
      const h = hashByName(b.bank);
      if (h === undefined) throw new Error(`unknown bank ${b.bank}`);
      return { hashAlg: h.id, pcrs: b.pcrs };
    }),
  );
  return { ...c, nonceBytes: fromB64u(c.nonce), selection };
}

/** A fresh P-256 key as the agent's bound key (SPKI DER). */
export function boundKey(): Uint8Array {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
}

/** The values of `selection` taken from `pcrs`. */
export function pick(pcrs: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>, selection: PcrSelection): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const bank of selection) {
    const m = new Map<number, Uint8Array>();
    for (const p of bank.pcrs) {
      const v = pcrs.get(bank.hashAlg)?.get(p);
      if (v !== undefined) m.set(p, v);
    }
    out.set(bank.hashAlg, m);
  }
  return out;
}

/** How to build evidence; every field defaults to the honest value. */
export interface EvidenceOptions {
  readonly challenge: Challenge;
  readonly nodeId: string;
  readonly ak: SyntheticAk;
  readonly boundKey?: Uint8Array;
  readonly pcrs?: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
  /** The selection the quote covers (default: the challenge's). */
  readonly quoteSelection?: PcrSelection;
  /** The nonce bound into the quote (default: the challenge's). */
  readonly quoteNonce?: Uint8Array;
  /** The key bound into the quote (default: the evidence's bound key). */
  readonly quoteBoundKey?: Uint8Array;
  /** Signs the quote with this AK instead. */
  readonly signWith?: SyntheticAk;
  readonly counters?: { resetCount?: number; restartCount?: number; clock?: bigint };
}

export function buildEvidence(o: EvidenceOptions): TpmNodeEvidence {
  const key = o.boundKey ?? boundKey();
  const selection = o.quoteSelection ?? o.challenge.selection;
  const values = pick(o.pcrs ?? GOOD_PCRS, selection);
  const extra = tpmQualifyingData(o.quoteNonce ?? o.challenge.nonceBytes, o.quoteBoundKey ?? key);
  const q = syntheticQuote(o.ak, extra, values, selection, o.counters ?? {});
  return {
    version: EVIDENCE_VERSION,
    challengeId: o.challenge.challengeId,
    nodeId: o.nodeId,
    boundKey: key,
    tpm: { attest: q.attest, signature: o.signWith === undefined ? q.signature : signAttest(o.signWith, q.attest), pcrs: values },
  };
}

export async function submit(app: FastifyInstance, evidence: Evidence, as: 'cbor' | 'json' = 'cbor'): Promise<LightMyRequestResponse> {
  return as === 'cbor'
    ? app.inject({ method: 'POST', url: '/v1/attestations', payload: Buffer.from(encodeEvidenceCbor(evidence)), headers: { 'content-type': 'application/cbor' } })
    : app.inject({ method: 'POST', url: '/v1/attestations', payload: encodeEvidenceJson(evidence), headers: { 'content-type': 'application/json' } });
}
