/**
 * SEV-SNP in the appraisal: the report (with the certificate table the guest got from the host)
 * is verified — signature, chain to a pinned ARK, VCEK/VLEK extensions, CRL — and then appraised
 * against the policy's `snp` rules, with REPORT_DATA bound to the challenge nonce and the agent's
 * key. Pure apart from the injected verification cache, which only memoises time-independent checks.
 */
import { isVouchError } from '../lib/errors.js';
import { toHex } from '../lib/bytes.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import {
  appraiseSnp,
  decodeSnpCertTable,
  decodeSnpReport,
  snpCertTableGet,
  snpVerifyAllowances,
  verifySnpReport,
  type SnpPolicy,
  type SnpVerifyCache,
} from '../snp/index.js';
import type { SnpProduct } from '../snp/collateral.js';
import type { SnpEvidence } from '../evidence/envelope.js';

/** What the verifier trusts and keeps for SNP. */
export interface SnpTrust {
  /** ARK fingerprints trusted (default: AMD's Milan, Genoa and Turin ARKs). */
  readonly pinnedArks?: Readonly<Record<string, SnpProduct>>;
  /** AMD CRLs the verifier holds (DER), used when the certificate table carries none. */
  readonly crls?: readonly Uint8Array[];
  /** Memo of time-independent chain and CRL checks. */
  readonly cache?: SnpVerifyCache;
}

/** The SNP part of a decision, in the decision's words. */
export interface SnpSummary {
  readonly product?: SnpProduct;
  readonly signer: 'vcek' | 'vlek';
  readonly measurement: string;
  readonly vmpl: number;
  readonly reportedTcb: string;
  readonly allowancesUsed: readonly string[];
}

export interface SnpResult {
  readonly failures: readonly Failure[];
  readonly summary?: SnpSummary;
}

/** Verifies and appraises one SNP report. */
export function appraiseSnpEvidence(rules: SnpPolicy, evidence: SnpEvidence, binding: { nonce: Uint8Array; boundKeySpki: Uint8Array }, now: number, trust: SnpTrust): SnpResult {
  let report;
  let table;
  try {
    report = decodeSnpReport(evidence.report);
    table = evidence.certTable === undefined ? [] : decodeSnpCertTable(evidence.certTable);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [failureFromError(e)] };
  }
  const vcek = snpCertTableGet(table, 'vcek');
  const vlek = snpCertTableGet(table, 'vlek');
  const ask = snpCertTableGet(table, 'ask');
  const ark = snpCertTableGet(table, 'ark');
  if ((vcek === undefined) === (vlek === undefined) || ask === undefined || ark === undefined) {
    return {
      failures: [
        failure('SNP_CERT_MALFORMED', {
          field: 'evidence.snp.certTable',
          message: 'the certificate table must carry one VCEK or VLEK, the ASK (or ASVK) and the ARK',
          actual: table.map((e) => e.kind).join(', ') || '(none)',
        }),
      ],
    };
  }
  const crl = snpCertTableGet(table, 'crl') ?? trust.crls?.[0];
  let verification;
  try {
    verification = verifySnpReport(report, {
      ...(vcek !== undefined ? { vcek } : { vlek: vlek as Uint8Array }),
      ask,
      ark,
      now: new Date(now),
      ...(crl !== undefined ? { crl } : {}),
      ...snpVerifyAllowances(rules),
      ...(trust.pinnedArks !== undefined ? { pinnedArks: trust.pinnedArks } : {}),
      ...(trust.cache !== undefined ? { cache: trust.cache } : {}),
    });
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [failureFromError(e)] };
  }
  const appraisal = appraiseSnp(report, rules, binding, verification.product !== undefined ? { product: verification.product } : {});
  return {
    failures: [...verification.failures, ...appraisal.failures],
    summary: {
      ...(verification.product !== undefined ? { product: verification.product } : {}),
      signer: verification.signer,
      measurement: toHex(report.measurement),
      vmpl: report.vmpl,
      reportedTcb: report.reportedTcb.toString(16).padStart(16, '0'),
      allowancesUsed: [...verification.allowancesUsed],
    },
  };
}
