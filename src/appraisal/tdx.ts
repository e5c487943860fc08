/**
 * Intel TDX in the appraisal of a TPM node's evidence (a TDX trust domain with a vTPM): the quote
 * is verified with its collateral (../tdx/verify.ts: quote signature, PCK chain to a pinned root,
 * QE report, TCB Info, QE Identity, CRLs, TCB status), appraised against the policy's `tdx`
 * rules with REPORTDATA bound to the challenge nonce and the agent's key (../tdx/appraise.ts),
 * and the CCEL event log, when the agent sent one, is replayed to RTMR0..RTMR3 and compared with
 * the verified quote (../tdx/ccel.ts). Pure apart from the injected verification cache, which
 * only memoises time-independent checks; the collateral is obtained before the appraisal
 * (../verifier/tdx-collateral.ts).
 *
 * The summary records the TCB status, the advisory IDs, and the SHA-256 of every collateral
 * item used, so a recorded decision names the exact collateral it was made with.
 */
import { createHash } from 'node:crypto';
import { isVouchError } from '../lib/errors.js';
import { toHex } from '../lib/bytes.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { decodeTdxQuote, type DecodedTdxQuote } from '../tdx/abi.js';
import { appraiseTdx } from '../tdx/appraise.js';
import { ccelClaims, verifyCcel } from '../tdx/ccel.js';
import { pcsBody, type TdxCollateral } from '../tdx/collateral.js';
import { tdxVerifyAllowances, type TdxPolicy } from '../tdx/policy.js';
import { verifyTdxQuote, type TdxQuoteVerifyCache, type TdxQuoteVerification } from '../tdx/verify.js';
import type { TdxEvidence } from '../evidence/envelope.js';

/** Collateral obtained before the appraisal for one quote, with where it came from. */
export interface TdxSuppliedCollateral {
  /** Absent when it could not be obtained (the failures say why). */
  readonly collateral?: TdxCollateral;
  /** "file": a collateral directory or bundle; "pcs": Intel PCS or its cache. */
  readonly source: 'file' | 'pcs';
  /** What could not be obtained: each one refuses. */
  readonly failures: readonly Failure[];
}

/** What the verifier trusts and keeps for TDX. */
export interface TdxTrust {
  /** The collateral for this quote; absent when the verifier has no TDX collateral source. */
  readonly collateral?: TdxSuppliedCollateral;
  /** Trusted root fingerprints; default the Intel SGX Root CA. */
  readonly pinnedRootFingerprints?: readonly string[];
  /** Memo of time-independent chain, collateral and key checks. */
  readonly cache?: TdxQuoteVerifyCache;
}

/** SHA-256 (hex) of each collateral item an appraisal used. */
export interface TdxCollateralRecord {
  readonly source: 'file' | 'pcs';
  /** Of the PCS body `{"tcbInfo":…,"signature":…}` (the exact signed text and its signature). */
  readonly tcbInfo?: string;
  /** Of the PCS body `{"enclaveIdentity":…,"signature":…}`. */
  readonly qeIdentity?: string;
  readonly pckCrl?: string;
  readonly rootCaCrl?: string;
  /** Of the concatenated DER of each issuer chain. */
  readonly tcbInfoIssuerChain?: string;
  readonly qeIdentityIssuerChain?: string;
  readonly pckCrlIssuerChain?: string;
}

/**
 * What TCB evaluation read of the platform, recorded so a decision can be re-evaluated under a
 * later TCB Info (`vouch tdx tcb-recovery`) without the quote: the PCK certificate's SGX TCB
 * (SGX TCB comp SVNs 1..16, PCESVN, FMSPC, PCE-ID), the TD report's TEE_TCB_SVN, MRSIGNERSEAM and
 * SEAMATTRIBUTES, and the QE report's ISVSVN with the QE TCB status and advisory IDs it got from
 * the QE Identity. Hex is lower-case.
 */
export interface TdxPlatformTcbRecord {
  readonly fmspc: string;
  readonly pceId: string;
  readonly sgxTcbComponents: readonly number[];
  readonly pceSvn: number;
  /** TD report field TEE_TCB_SVN, 16 bytes. */
  readonly teeTcbSvn: string;
  readonly mrSignerSeam: string;
  readonly seamAttributes: string;
  /** QE report field ISVSVN. */
  readonly qeIsvSvn: number;
  /** The QE TCB status under the QE Identity used, when one matched. */
  readonly qeTcbStatus?: string;
  readonly qeAdvisoryIds?: readonly string[];
}

/** The TDX part of a decision, in the decision's words. */
export interface TdxSummary {
  /** The converged TCB status; null when none could be determined. */
  readonly tcbStatus: string | null;
  readonly advisoryIds: readonly string[];
  readonly fmspc?: string;
  readonly tcbEvaluationDataNumber?: number;
  readonly quoteVersion: number;
  readonly mrTd: string;
  readonly mrSeam: string;
  readonly rtmrs: readonly string[];
  readonly tdAttributes: string;
  /** SHA-256 of the PCK leaf certificate (DER), when it parsed. */
  readonly pckSha256?: string;
  /** The platform's TCB inputs, when the PCK certificate parsed. */
  readonly platformTcb?: TdxPlatformTcbRecord;
  readonly allowancesUsed: readonly string[];
  readonly collateral: TdxCollateralRecord;
  /** The CCEL replay, when the agent sent the event log: the RTMRs it proved and its event count. */
  readonly ccel?: {
    readonly rtmrsMatched: readonly number[];
    readonly events: number;
    /** What the verified CCEL says booted (../tdx/ccel.ts ccelClaims), in the words measured boot uses. */
    readonly boot: {
      readonly secureBoot: 'enabled' | 'disabled' | 'unknown';
      readonly bootLoader?: string;
      readonly kernel?: string;
      readonly kernelCmdline?: string;
      readonly efiApplications: readonly string[];
      readonly errorSeparator: boolean;
    };
  };
}

/** The outcome of {@link appraiseTdxEvidence}. */
export interface TdxResult {
  readonly failures: readonly Failure[];
  readonly summary?: TdxSummary;
}

const sha256 = (...parts: readonly Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

function collateralRecord(s: TdxSuppliedCollateral): TdxCollateralRecord {
  const c = s.collateral;
  if (c === undefined) return { source: s.source };
  return {
    source: s.source,
    ...(c.tcbInfo !== undefined ? { tcbInfo: sha256(pcsBody(c.tcbInfo)) } : {}),
    ...(c.qeIdentity !== undefined ? { qeIdentity: sha256(pcsBody(c.qeIdentity)) } : {}),
    ...(c.pckCrl !== undefined ? { pckCrl: sha256(c.pckCrl) } : {}),
    ...(c.rootCaCrl !== undefined ? { rootCaCrl: sha256(c.rootCaCrl) } : {}),
    ...(c.tcbInfoIssuerChain !== undefined ? { tcbInfoIssuerChain: sha256(...c.tcbInfoIssuerChain) } : {}),
    ...(c.qeIdentityIssuerChain !== undefined ? { qeIdentityIssuerChain: sha256(...c.qeIdentityIssuerChain) } : {}),
    ...(c.pckCrlIssuerChain !== undefined ? { pckCrlIssuerChain: sha256(...c.pckCrlIssuerChain) } : {}),
  };
}

/**
 * Verifies and appraises one TDX quote (and its CCEL). Every failure is returned: collateral that
 * could not be obtained, verification, policy, and the CCEL replay.
 */
export function appraiseTdxEvidence(rules: TdxPolicy, evidence: TdxEvidence, binding: { readonly nonce: Uint8Array; readonly boundKeySpki: Uint8Array }, now: number, trust: TdxTrust): TdxResult {
  const supplied = trust.collateral;
  if (supplied === undefined) {
    return { failures: [failure('TDX_COLLATERAL_NOT_CONFIGURED', { field: 'evidence.tdx.quote', message: 'this verifier has no TDX collateral source configured, so the quote cannot be verified' })] };
  }
  let quote: DecodedTdxQuote;
  let v: TdxQuoteVerification;
  try {
    quote = decodeTdxQuote(evidence.quote);
    v = verifyTdxQuote(quote, {
      now: new Date(now),
      collateral: supplied.collateral ?? {},
      ...tdxVerifyAllowances(rules),
      ...(trust.pinnedRootFingerprints !== undefined ? { pinnedRootFingerprints: trust.pinnedRootFingerprints } : {}),
      ...(trust.cache !== undefined ? { cache: trust.cache } : {}),
    });
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [...supplied.failures, failureFromError(e)] };
  }
  // The policy over the quote's claims; they count only with a verification that passed, and a
  // failed verification refuses anyway, so both are reported.
  const a = appraiseTdx(v, rules, binding);

  // The CCEL, replayed against the RTMRs of this quote.
  let ccelFailures: readonly Failure[] = [];
  let ccel: TdxSummary['ccel'];
  if (evidence.ccelData !== undefined) {
    const c = verifyCcel({ data: evidence.ccelData, ...(evidence.ccelTable !== undefined ? { table: evidence.ccelTable } : {}) }, v.report.rtmrs);
    // Plain failures (code, field, expected, actual): the RTMR comparison's event summaries stay out of the record.
    ccelFailures = c.failures.map((f) => failure(f.code, { field: f.field ?? 'evidence.tdx.ccelData', message: f.message, ...(f.expected !== undefined ? { expected: f.expected } : {}), ...(f.actual !== undefined ? { actual: f.actual } : {}) }));
    if (c.ok && c.replay !== undefined) {
      const k = ccelClaims(c);
      ccel = {
        rtmrsMatched: c.comparison?.matched ?? [],
        events: c.replay.eventsByRtmr.reduce((n, e) => n + e.length, 0),
        boot: {
          secureBoot: k.secureBoot.state,
          ...(k.bootLoader !== undefined ? { bootLoader: k.bootLoader.sha384 } : {}),
          ...(k.kernel !== undefined ? { kernel: k.kernel.sha384 } : {}),
          ...(k.kernelCmdline !== undefined ? { kernelCmdline: k.kernelCmdline.value } : {}),
          efiApplications: k.efiApplications.map((a) => a.sha384),
          errorSeparator: k.errorSeparator,
        },
      };
    }
  }

  const r = v.report;
  const qe = v.tcb.appraisal?.qe;
  const platformTcb: TdxPlatformTcbRecord | undefined =
    v.pck === undefined
      ? undefined
      : {
          fmspc: toHex(v.pck.sgx.fmspc),
          pceId: toHex(v.pck.sgx.pceId),
          sgxTcbComponents: [...v.pck.sgx.tcb.compSvn],
          pceSvn: v.pck.sgx.tcb.pceSvn,
          teeTcbSvn: toHex(r.teeTcbSvn),
          mrSignerSeam: toHex(r.mrSignerSeam),
          seamAttributes: toHex(r.seamAttributes),
          qeIsvSvn: quote.signatureData.qeReport.isvSvn,
          ...(qe?.status !== undefined ? { qeTcbStatus: qe.status, qeAdvisoryIds: [...qe.advisoryIds] } : {}),
        };
  return {
    failures: [...supplied.failures, ...v.failures, ...a.failures, ...ccelFailures],
    summary: {
      tcbStatus: v.tcb.status ?? null,
      advisoryIds: [...v.tcb.advisoryIds],
      ...(v.tcb.fmspc !== undefined ? { fmspc: v.tcb.fmspc } : {}),
      ...(v.tcb.tcbEvaluationDataNumber !== undefined ? { tcbEvaluationDataNumber: v.tcb.tcbEvaluationDataNumber } : {}),
      quoteVersion: quote.header.version,
      mrTd: toHex(r.mrTd),
      mrSeam: toHex(r.mrSeam),
      rtmrs: r.rtmrs.map((x) => toHex(x)),
      tdAttributes: toHex(r.tdAttributes),
      ...(v.pck !== undefined ? { pckSha256: sha256(v.pck.cert.der) } : {}),
      ...(platformTcb !== undefined ? { platformTcb } : {}),
      allowancesUsed: [...v.allowancesUsed],
      collateral: collateralRecord(supplied),
      ...(ccel !== undefined ? { ccel } : {}),
    },
  };
}
