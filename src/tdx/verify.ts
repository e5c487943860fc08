/**
 * Authenticity of an Intel TDX quote (v4 or v5) with its collateral: the whole DCAP chain of
 * trust from the TD report up to the pinned Intel SGX Root CA.
 *
 * ```ts
 * verifyTdxQuote(quote: Uint8Array | DecodedTdxQuote, {
 *   now: Date,                       // the verification time (never the clock)
 *   collateral: TdxCollateral,       // TCB Info, QE Identity, CRLs and issuer chains (./collateral.ts)
 *   pinnedRootFingerprints?,         // default: the Intel SGX Root CA; replace only for test-only roots
 *   allowMissingCrl?,                // default false; every use is recorded in allowancesUsed
 *   cache?: TdxQuoteVerifyCache,     // one per verifier: reuse across quotes and calls
 *   trailing?: DcapTrailingRule,     // for bytes: what may follow the signature data (default 'zeros')
 *   root?,                           // the root certificate when the quote's chain stops at the PCK CA
 * }) → { ok, checks, failures, allowancesUsed, quote, report, tcb: { status?, advisoryIds, … }, pck?, ca? }
 * ```
 *
 * Fixed order (Intel DCAP Quote Verification Library, QuoteVerifier.cpp §4.1.2.4; go-tdx-guest
 * verify.go): header QE_VENDOR_ID is Intel's → the quote signature, ECDSA P-256 by the
 * attestation key (x ‖ y in the signature data) over the exact header ‖ [v5 body descriptor ‖]
 * TD report bytes → the PCK chain carried by certification data type 5 (./pck.ts
 * verifyPckChain, with the PCK CRL and the Root CA CRL of the collateral) → the QE report
 * signature, ECDSA P-256 by the PCK leaf over the exact 384 QE report bytes → the QE report's
 * REPORTDATA = SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes, which is what
 * ties the attestation key to the quoting enclave the PCK vouches for → the collateral
 * (./collateral.ts verifyTdxCollateral: TCB Info, QE Identity, CRLs, their chains, signatures
 * and windows) → TCB status and QE Identity (./tcb.ts appraiseTdxTcb). Every failure is
 * returned as a value; `ok` is true only when none was found. The TCB status itself is a claim
 * for the policy (./appraise.ts), except that a platform below every TCB level ("TCB not
 * supported") is a failure here.
 *
 * Nothing here reads the clock or the network. A quote given as bytes that do not decode is a
 * {@link ParseError} (thrown), as from ./abi.ts.
 */
import 'reflect-metadata';
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, isVouchError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { INTEL_QE_VENDOR_ID, decodeTdxQuote, type DcapTrailingRule, type DecodedTdxQuote, type TdReport10, type TdReport15 } from './abi.js';
import { verifyTdxCollateral, type TdxCollateral, type TdxCollateralVerification } from './collateral.js';
import {
  CheckLog,
  TdxVerifyCache,
  checkNow,
  checkPins,
  parseIntelCertificate,
  parseIntelCrl,
  parsePckChainPem,
  verifyPckChain,
  type CheckOutcome,
  type IntelCertificate,
  type PckCaType,
  type PckCertificate,
  type PckChainVerification,
  type TdxAllowance,
} from './pck.js';
import { appraiseTdxTcb, platformTcb, type TcbStatus, type TdxTcbAppraisal } from './tcb.js';

export type { CheckOutcome, TdxAllowance };

/** Options of {@link verifyTdxQuote}. */
export interface TdxQuoteVerifyOptions {
  /** The verification time: certificate validity, CRL and collateral windows. */
  readonly now: Date;
  /** TCB Info, QE Identity, PCK CRL, Root CA CRL and their issuer chains (items may be missing: each is named). */
  readonly collateral: TdxCollateral;
  /** Trusted root fingerprints; default the Intel SGX Root CA. Replace only for test-only roots. */
  readonly pinnedRootFingerprints?: readonly string[];
  /** Accept a missing PCK CRL or Root CA CRL: revocation is then not checked, and the allowance is recorded. */
  readonly allowMissingCrl?: boolean;
  /** Results kept across calls (see {@link TdxQuoteVerifyCache}). */
  readonly cache?: TdxQuoteVerifyCache;
  /** For a quote given as bytes: what may follow its signature data (./abi.ts; default 'zeros'). */
  readonly trailing?: DcapTrailingRule;
  /** The Intel SGX Root CA (DER or PEM) for a quote whose chain stops at the PCK CA; pinned like any root. */
  readonly root?: Uint8Array;
}

/** The TCB part of a verification. */
export interface TdxQuoteTcb {
  /** The converged TCB status (TCB level, TDX module, QE); absent when no level matched or collateral is missing. */
  readonly status?: TcbStatus;
  /** Advisory IDs of the TDX TCB level, the module TCB level and the QE TCB level, each once. */
  readonly advisoryIds: readonly string[];
  /** FMSPC of the TCB Info used (hex), when there was one. */
  readonly fmspc?: string;
  /** tcbEvaluationDataNumber of the TCB Info used. */
  readonly tcbEvaluationDataNumber?: number;
  /** The full evaluation (levels matched, module, QE), when it ran. */
  readonly appraisal?: TdxTcbAppraisal;
}

/** The result of {@link verifyTdxQuote}: `ok` only when no check failed. */
export interface TdxQuoteVerification {
  readonly ok: boolean;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  /** Allowances that were used (an allowance given but not needed is not listed). */
  readonly allowancesUsed: readonly TdxAllowance[];
  /** The decoded quote (its fields are trustworthy only when `ok`). */
  readonly quote: DecodedTdxQuote;
  /** The TD report: the claims ./appraise.ts judges. */
  readonly report: TdReport10 | TdReport15;
  readonly tcb: TdxQuoteTcb;
  /** The PCK leaf, when it parsed. */
  readonly pck?: PckCertificate;
  /** The PCK CA type (from the leaf's issuer). */
  readonly ca?: PckCaType;
}

// ---------------------------------------------------------------------------------------------
// The cache

/** A verification reused while its time windows all hold. */
interface Reusable<T> {
  readonly value: T;
  /** The latest notBefore / issueDate / thisUpdate of every window the value depends on. */
  readonly from: number;
  /** The earliest notAfter / nextUpdate. */
  readonly until: number;
}

interface ChainValue {
  readonly verification: PckChainVerification;
}

/**
 * What a verifier keeps across quotes, so that verifying many quotes of one platform with the
 * same collateral re-does only the two per-quote ECDSA P-256 verifications (the quote signature
 * and the QE report signature) and the comparisons:
 *
 * - attestation keys imported as KeyObjects (importing costs more than a verification), by key bytes;
 * - a PCK chain verification, by the SHA-256 of the certification data bytes, and a collateral
 *   verification, both per collateral object and options — reused only when it passed, and only
 *   at a time inside every window it checked (certificate validity, CRL thisUpdate..nextUpdate,
 *   TCB Info and QE Identity issueDate..nextUpdate), where a fresh run would pass again;
 * - underneath, the {@link TdxVerifyCache} of parsed certificates, CRLs and signature checks.
 *
 * Collateral is matched by object identity: a {@link TdxCollateral} and its byte arrays are
 * taken as immutable once handed to {@link verifyTdxQuote} (build a new object for new
 * collateral, as readCollateral and the PCS client do). Failed verifications are never kept.
 * Bounded: the oldest entries go first.
 */
export class TdxQuoteVerifyCache {
  /** Parsed certificates and CRLs, certificate and collateral signature checks. */
  readonly lower: TdxVerifyCache;
  readonly #keys = new Map<string, KeyObject | string>();
  readonly #byCollateral = new WeakMap<TdxCollateral, Map<string, Reusable<ChainValue> | Reusable<TdxCollateralVerification>>>();
  readonly #max: number;

  constructor(maxEntries = 1024) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new MisuseError('MISUSE_ARGUMENT', 'maxEntries must be a positive whole number', { field: 'maxEntries' });
    this.#max = maxEntries;
    this.lower = new TdxVerifyCache(maxEntries * 4);
  }

  /** The attestation key (x ‖ y) as a KeyObject, or why it is not a P-256 public key; imported once. */
  attestationKey(raw: Uint8Array): KeyObject | string {
    const k = toHex(raw);
    const hit = this.#keys.get(k);
    if (hit !== undefined) return hit;
    const v = importAttestationKey(raw);
    if (this.#keys.size >= this.#max) this.#keys.delete(this.#keys.keys().next().value as string);
    this.#keys.set(k, v);
    return v;
  }

  /** @internal A reusable result for `collateral` under `key`, if one holds at `t`. */
  get<T extends ChainValue | TdxCollateralVerification>(collateral: TdxCollateral, key: string, t: number): T | undefined {
    const e = this.#byCollateral.get(collateral)?.get(key);
    if (e === undefined || t < e.from || t > e.until) return undefined;
    return e.value as T;
  }

  /** @internal Keeps a passed result with the window in which it holds. */
  put(collateral: TdxCollateral, key: string, entry: Reusable<ChainValue> | Reusable<TdxCollateralVerification>): void {
    let m = this.#byCollateral.get(collateral);
    if (m === undefined) {
      m = new Map();
      this.#byCollateral.set(collateral, m);
    }
    if (m.size >= this.#max) m.delete(m.keys().next().value as string);
    m.set(key, entry);
  }
}

/** The raw attestation key x ‖ y (big-endian, 32 bytes each) as a P-256 KeyObject, or why not. */
function importAttestationKey(raw: Uint8Array): KeyObject | string {
  if (raw.length !== 64) return `the attestation key is ${raw.length} bytes, expected 64 (x ‖ y)`;
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: Buffer.from(raw.subarray(0, 32)).toString('base64url'), y: Buffer.from(raw.subarray(32)).toString('base64url') },
      format: 'jwk',
    });
  } catch (e) {
    return `the attestation key is not a point of P-256: ${e instanceof Error ? e.message : String(e)}`;
  }
}

const sha256 = (...parts: readonly Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The window [latest start, earliest end] of a set of validity windows. */
function windowOf(windows: readonly (readonly [Date, Date | undefined])[]): { from: number; until: number } | undefined {
  let from = -Infinity;
  let until = Infinity;
  for (const [a, b] of windows) {
    // A window without an end (a CRL without nextUpdate) fails verification, so is never kept.
    if (b === undefined) return undefined;
    from = Math.max(from, a.getTime());
    until = Math.min(until, b.getTime());
  }
  return { from, until };
}

/** Validity windows of certificates (through the cache, where they are already parsed). */
function certWindows(ders: readonly Uint8Array[], lower: TdxVerifyCache): [Date, Date][] {
  return ders.map((d) => {
    const c: IntelCertificate = lower.certificate(d, () => parseIntelCertificate(d));
    return [c.cert.notBefore, c.cert.notAfter];
  });
}

function crlWindow(der: Uint8Array | undefined, lower: TdxVerifyCache): [Date, Date | undefined][] {
  if (der === undefined) return [];
  const c = lower.crl(der, () => parseIntelCrl(der));
  return [[c.thisUpdate, c.nextUpdate]];
}

// ---------------------------------------------------------------------------------------------
// Verification

const failureKey = (f: Failure): string => JSON.stringify([f.code, f.field, f.expected, f.actual, f.message]);

/** ECDSA P-256/SHA-256 over `data` with `key`, signature r ‖ s; undefined when it verifies, else why not. */
function p1363Problem(key: KeyObject, data: Uint8Array, signature: Uint8Array): string | undefined {
  if (signature.length !== 64) return `the signature is ${signature.length} bytes, expected 64 (r ‖ s)`;
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature) ? undefined : 'the signature does not verify';
  } catch (e) {
    return `the signature cannot be verified: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** The quote's PCK chain (leaf first) and the chain verification. */
function verifyChain(q: DecodedTdxQuote, opts: TdxQuoteVerifyOptions, now: Date, pins: readonly string[], cache: TdxQuoteVerifyCache | undefined): PckChainVerification {
  const c = opts.collateral;
  const key = cache === undefined ? '' : `chain|${sha256(q.signatureData.pckCertChain).toString('hex')}|${pins.join(',')}|${opts.allowMissingCrl === true}|${opts.root === undefined ? '' : sha256(opts.root).toString('hex')}`;
  if (cache !== undefined) {
    const hit = cache.get<ChainValue>(c, key, now.getTime());
    if (hit !== undefined) return hit.verification;
  }
  let ders: Uint8Array[];
  try {
    ders = parsePckChainPem(q.signatureData.pckCertChain, 'QE_CERTIFICATION_DATA.DATA');
  } catch (e) {
    if (!isVouchError(e)) throw e;
    const log = new CheckLog();
    log.run('pck.parse', [failure(e.code, { field: e.field ?? 'QE_CERTIFICATION_DATA.DATA', message: e.message })]);
    for (const n of ['roles', 'rootPinned', 'signatures', 'validity']) log.skip(`pck.chain.${n}`, 'the PCK chain did not parse');
    log.skip('pck.rootCaCrl', 'the PCK chain did not parse');
    log.skip('pck.pckCrl', 'the PCK chain did not parse');
    return { ok: false, checks: log.checks, failures: log.failures, allowancesUsed: [] };
  }
  const v = verifyPckChain(ders, {
    now,
    pinnedRootFingerprints: pins,
    ...(c.pckCrl !== undefined ? { pckCrl: c.pckCrl } : {}),
    ...(c.rootCaCrl !== undefined ? { rootCaCrl: c.rootCaCrl } : {}),
    ...(opts.allowMissingCrl === true ? { allowMissingCrl: true } : {}),
    ...(opts.root !== undefined ? { root: opts.root } : {}),
    ...(cache !== undefined ? { cache: cache.lower } : {}),
  });
  if (cache !== undefined && v.ok) {
    const all = opts.root !== undefined && ders.length === 2 ? [...ders, opts.root] : ders;
    const w = windowOf([...certWindows(all, cache.lower), ...crlWindow(c.pckCrl, cache.lower), ...crlWindow(c.rootCaCrl, cache.lower)]);
    if (w !== undefined) cache.put(c, key, { value: { verification: v }, ...w });
  }
  return v;
}

function verifyCollateral(opts: TdxQuoteVerifyOptions, now: Date, pins: readonly string[], pckCa: PckCaType | undefined, cache: TdxQuoteVerifyCache | undefined): TdxCollateralVerification {
  const c = opts.collateral;
  const key = `collateral|${pins.join(',')}|${opts.allowMissingCrl === true}|${pckCa ?? ''}`;
  if (cache !== undefined) {
    const hit = cache.get<TdxCollateralVerification>(c, key, now.getTime());
    if (hit !== undefined) return hit;
  }
  const v = verifyTdxCollateral(c, {
    now,
    pinnedRootFingerprints: pins,
    ...(opts.allowMissingCrl === true ? { allowMissingCrl: true } : {}),
    ...(pckCa !== undefined ? { pckCa } : {}),
    ...(cache !== undefined ? { cache: cache.lower } : {}),
  });
  if (cache !== undefined && v.ok) {
    const docs: [Date, Date][] = [];
    if (c.tcbInfo !== undefined) docs.push([c.tcbInfo.issueDate, c.tcbInfo.nextUpdate]);
    if (c.qeIdentity !== undefined) docs.push([c.qeIdentity.issueDate, c.qeIdentity.nextUpdate]);
    const w = windowOf([
      ...docs,
      ...certWindows([...(c.tcbInfoIssuerChain ?? []), ...(c.qeIdentityIssuerChain ?? []), ...(c.pckCrlIssuerChain ?? [])], cache.lower),
      ...crlWindow(c.pckCrl, cache.lower),
      ...crlWindow(c.rootCaCrl, cache.lower),
    ]);
    if (w !== undefined) cache.put(c, key, { value: v, ...w });
  }
  return v;
}

/**
 * Verifies a TDX quote (v4 or v5) with its collateral at `opts.now`, in the order of the module
 * comment. Returns every failure; `ok` is true only when none was found.
 *
 * @param quote the quote bytes (decoded with `opts.trailing`), or a quote decoded by ./abi.ts
 * @throws ParseError when `quote` is bytes that do not decode as a TDX quote (./abi.ts codes)
 * @throws MisuseError MISUSE_ARGUMENT on a bad `now`, pin list or collateral argument, or a decoded SGX quote
 */
export function verifyTdxQuote(quote: Uint8Array | DecodedTdxQuote, opts: TdxQuoteVerifyOptions): TdxQuoteVerification {
  const now = checkNow(opts.now);
  const pins = checkPins(opts.pinnedRootFingerprints);
  if (typeof opts.collateral !== 'object' || opts.collateral === null) throw new MisuseError('MISUSE_ARGUMENT', 'collateral must be a TdxCollateral (items may be absent)', { field: 'collateral' });
  const q: DecodedTdxQuote = quote instanceof Uint8Array ? decodeTdxQuote(quote, opts.trailing !== undefined ? { trailing: opts.trailing } : {}) : quote;
  if (q.body.kind !== 'td10' && q.body.kind !== 'td15') throw new MisuseError('MISUSE_ARGUMENT', 'verifyTdxQuote verifies TDX quotes (a TD report body), not SGX quotes', { field: 'quote' });
  const cache = opts.cache;
  const log = new CheckLog();
  const report = q.body.report;
  const sd = q.signatureData;

  // 1. Whose quoting enclave.
  const vendor = toHex(q.header.qeVendorId);
  log.run('quote.QE_VENDOR_ID', vendor === INTEL_QE_VENDOR_ID ? [] : [failure('TDX_QE_VENDOR_UNKNOWN', { field: 'DCAP_QUOTE.HEADER.QE_VENDOR_ID', expected: INTEL_QE_VENDOR_ID, actual: vendor })]);

  // 2. The quote signature by the attestation key, over the exact signed bytes.
  const ak = cache !== undefined ? cache.attestationKey(sd.attestationKey) : importAttestationKey(sd.attestationKey);
  const sigWhy = typeof ak === 'string' ? ak : p1363Problem(ak, q.signedBytes, sd.signature);
  log.run('quote.SIGNATURE', sigWhy === undefined ? [] : [failure('TDX_QUOTE_SIGNATURE_INVALID', {
    field: typeof ak === 'string' ? 'DCAP_QUOTE.SIGNATURE_DATA.ATTESTATION_KEY' : 'DCAP_QUOTE.SIGNATURE_DATA.SIGNATURE',
    actual: sigWhy,
    message: `the quote signature over the ${q.signedBytes.length} signed bytes (header and TD report) does not verify with the attestation key: ${sigWhy}`,
  })]);

  // 3. The PCK chain, with the collateral's CRLs.
  const chain = verifyChain(q, opts, now, pins, cache);
  for (const c of chain.checks) log.checks.push(c);
  log.failures.push(...chain.failures);
  const pck = chain.pck;

  // 4. The QE report: signed by the PCK leaf, and binding the attestation key.
  if (pck !== undefined) {
    const why = p1363Problem(pck.cert.publicKey, q.qeReportBytes, sd.qeReportSignature);
    log.run('qeReport.SIGNATURE', why === undefined ? [] : [failure('TDX_QE_REPORT_SIGNATURE_INVALID', {
      field: 'DCAP_QUOTE.SIGNATURE_DATA.QE_REPORT_SIGNATURE',
      actual: why,
      message: `the QE report signature over the 384 QE report bytes does not verify with the PCK certificate key: ${why}`,
    })]);
  } else log.skip('qeReport.SIGNATURE', 'the PCK certificate did not parse');
  const expectedQeData = Buffer.concat([sha256(sd.attestationKey, sd.qeAuthData), Buffer.alloc(32)]);
  log.run('qeReport.REPORTDATA', bytesEqual(expectedQeData, sd.qeReport.reportData) ? [] : [failure('TDX_QE_REPORT_DATA_MISMATCH', {
    field: 'QE_REPORT.REPORTDATA',
    expected: toHex(expectedQeData),
    actual: toHex(sd.qeReport.reportData),
    message: 'QE report field REPORTDATA is not SHA-256(ATTESTATION_KEY ‖ QE_AUTH_DATA) followed by 32 zero bytes',
  })]);

  // 5. The collateral.
  // The PCK chain step has already checked the same two CRLs (with the revocations): a problem
  // of a CRL itself is reported once.
  const col = verifyCollateral(opts, now, pins, pck?.ca, cache);
  for (const c of col.checks) log.checks.push(c);
  const seen = new Set(chain.failures.map(failureKey));
  log.failures.push(...col.failures.filter((f) => !seen.has(failureKey(f))));

  // 6. TCB status and QE Identity.
  const c = opts.collateral;
  let tcb: TdxQuoteTcb = { advisoryIds: [] };
  if (pck !== undefined && c.tcbInfo !== undefined && c.qeIdentity !== undefined) {
    const a = appraiseTdxTcb(c.tcbInfo, c.qeIdentity, platformTcb(pck.sgx, report), sd.qeReport);
    log.run('tcb.tcbInfo', a.platform.failures);
    log.run('tcb.qeIdentity', a.qe.failures);
    tcb = {
      ...(a.status !== undefined ? { status: a.status } : {}),
      advisoryIds: a.advisoryIds,
      fmspc: toHex(c.tcbInfo.fmspc),
      tcbEvaluationDataNumber: c.tcbInfo.tcbEvaluationDataNumber,
      appraisal: a,
    };
  } else {
    const why = pck === undefined ? 'the PCK certificate did not parse' : 'no TCB Info or QE Identity';
    log.skip('tcb.tcbInfo', why);
    log.skip('tcb.qeIdentity', why);
  }

  const allowancesUsed: TdxAllowance[] = [];
  for (const a of [...chain.allowancesUsed, ...col.allowancesUsed]) if (!allowancesUsed.includes(a)) allowancesUsed.push(a);
  return {
    ok: log.failures.length === 0,
    checks: log.checks,
    failures: log.failures,
    allowancesUsed,
    quote: q,
    report,
    tcb,
    ...(pck !== undefined ? { pck, ca: pck.ca } : {}),
  };
}
