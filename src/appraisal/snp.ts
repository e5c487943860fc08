/**
 * SEV-SNP in the appraisal: the report (with the certificate table the guest got from the host)
 * is verified — signature, chain to a pinned ARK, VCEK/VLEK extensions, CRL — and then appraised
 * against the policy's `snp` rules, with REPORT_DATA bound to the challenge nonce and the agent's
 * key. Pure apart from the injected verification cache, which only memoises time-independent checks.
 *
 * Certificates come from the table first; what it lacks may be supplied from AMD KDS or its cache
 * ({@link SnpSuppliedCollateral}, fetched before appraisal by ../verifier/snp-collateral.ts).
 * The CRL comes from KDS when supplied, else from the table, else from the verifier's
 * configuration. The summary records where each certificate and the CRL came from, and their
 * SHA-256, so a recorded decision names the exact collateral it was made with.
 */
import { createHash } from 'node:crypto';
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

/** Where a certificate or CRL used by an appraisal came from. */
export type SnpCollateralSource = 'table' | 'config' | 'kds-cache' | 'kds';

/** A certificate or CRL (DER) supplied from AMD KDS or the verifier's KDS cache. Untrusted until verified. */
export interface SnpSuppliedItem {
  readonly der: Uint8Array;
  readonly source: 'kds-cache' | 'kds';
}

/**
 * Collateral obtained before the appraisal for one SNP report: the certificates its table lacks
 * and the CRL. A VLEK is never supplied (KDS does not serve VLEKs by chip id).
 */
export interface SnpSuppliedCollateral {
  readonly vcek?: SnpSuppliedItem;
  /** The ASK (VCEK chain) or ASVK (VLEK chain). */
  readonly ask?: SnpSuppliedItem;
  readonly ark?: SnpSuppliedItem;
  readonly crl?: SnpSuppliedItem;
  /** What could not be obtained (KDS rate limited, unavailable, malformed, ...): each one refuses. */
  readonly failures: readonly Failure[];
}

/** What the verifier trusts and keeps for SNP. */
export interface SnpTrust {
  /** ARK fingerprints trusted (default: AMD's Milan, Genoa and Turin ARKs). */
  readonly pinnedArks?: Readonly<Record<string, SnpProduct>>;
  /** AMD CRLs the verifier holds (DER), used when neither KDS nor the certificate table supplies one. */
  readonly crls?: readonly Uint8Array[];
  /** Collateral from AMD KDS or its cache for this report, when the verifier uses KDS. */
  readonly collateral?: SnpSuppliedCollateral;
  /** Memo of time-independent chain and CRL checks. */
  readonly cache?: SnpVerifyCache;
}

/** One certificate or CRL an appraisal used. */
export interface SnpCollateralUse {
  readonly source: SnpCollateralSource;
  /** SHA-256 of the DER (hex). */
  readonly sha256: string;
}

/** The collateral an appraisal used, by role. */
export interface SnpCollateralRecord {
  /** The VCEK or VLEK (the summary's `signer` says which). */
  readonly leaf: SnpCollateralUse;
  /** The ASK, or the ASVK of a VLEK. */
  readonly ask: SnpCollateralUse;
  readonly ark: SnpCollateralUse;
  /** Absent when no CRL was used (allowMissingCrl). */
  readonly crl?: SnpCollateralUse;
}

/** The SNP part of a decision, in the decision's words. */
export interface SnpSummary {
  readonly product?: SnpProduct;
  readonly signer: 'vcek' | 'vlek';
  readonly measurement: string;
  readonly vmpl: number;
  readonly reportedTcb: string;
  readonly allowancesUsed: readonly string[];
  /** Where each certificate and the CRL came from. */
  readonly collateral: SnpCollateralRecord;
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
  // Zero-length entries count as absent: a host without cached certificates leaves them empty.
  const fromTable = (kind: 'vcek' | 'vlek' | 'ask' | 'ark' | 'crl'): SnpUsed | undefined => {
    const d = snpCertTableGet(table, kind);
    return d !== undefined && d.length > 0 ? { der: d, source: 'table' } : undefined;
  };
  const supplied = trust.collateral;
  const prior = supplied?.failures ?? [];
  const vcek = fromTable('vcek') ?? supplied?.vcek;
  const vlek = fromTable('vlek');
  const ask = fromTable('ask') ?? supplied?.ask;
  const ark = fromTable('ark') ?? supplied?.ark;
  if ((vcek === undefined) === (vlek === undefined) || ask === undefined || ark === undefined) {
    return {
      failures: [
        ...prior,
        failure('SNP_CERT_MALFORMED', {
          field: 'evidence.snp.certTable',
          message:
            supplied === undefined
              ? 'the certificate table must carry one VCEK or VLEK, the ASK (or ASVK) and the ARK'
              : 'one VCEK or VLEK, the ASK (or ASVK) and the ARK are needed, and neither the certificate table nor AMD KDS supplied them all',
          actual: table.map((e) => e.kind).join(', ') || '(none)',
        }),
      ],
    };
  }
  const leaf = (vcek ?? vlek) as SnpUsed;
  const configCrl = trust.crls?.[0];
  const crl: SnpUsed | undefined = supplied?.crl ?? fromTable('crl') ?? (configCrl !== undefined ? { der: configCrl, source: 'config' } : undefined);
  let verification;
  try {
    verification = verifySnpReport(report, {
      ...(vcek !== undefined ? { vcek: vcek.der } : { vlek: leaf.der }),
      ask: ask.der,
      ark: ark.der,
      now: new Date(now),
      ...(crl !== undefined ? { crl: crl.der } : {}),
      ...snpVerifyAllowances(rules),
      ...(trust.pinnedArks !== undefined ? { pinnedArks: trust.pinnedArks } : {}),
      ...(trust.cache !== undefined ? { cache: trust.cache } : {}),
    });
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failures: [...prior, failureFromError(e)] };
  }
  const appraisal = appraiseSnp(report, rules, binding, verification.product !== undefined ? { product: verification.product } : {});
  return {
    failures: [...prior, ...verification.failures, ...appraisal.failures],
    summary: {
      ...(verification.product !== undefined ? { product: verification.product } : {}),
      signer: verification.signer,
      measurement: toHex(report.measurement),
      vmpl: report.vmpl,
      reportedTcb: report.reportedTcb.toString(16).padStart(16, '0'),
      allowancesUsed: [...verification.allowancesUsed],
      collateral: {
        leaf: used(leaf),
        ask: used(ask),
        ark: used(ark),
        ...(crl !== undefined ? { crl: used(crl) } : {}),
      },
    },
  };
}

/** A certificate or CRL with where it came from. */
interface SnpUsed {
  readonly der: Uint8Array;
  readonly source: SnpCollateralSource;
}

function used(u: SnpUsed): SnpCollateralUse {
  return { source: u.source, sha256: createHash('sha256').update(u.der).digest('hex') };
}
