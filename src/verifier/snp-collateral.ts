/**
 * SEV-SNP collateral for one attestation, fetched through the verifier's KDS client (AMD KDS and
 * its on-disk cache) BEFORE the appraisal, which stays pure.
 *
 * What is fetched, for a report signed by SIGNING_KEY = VCEK or VLEK:
 *
 * | needed           | from the table when it has it | else, or always                                               |
 * | ---------------- | ----------------------------- | ------------------------------------------------------------- |
 * | VCEK             | yes                           | KDS `vcek/v1/{product}/{CHIP_ID}?blSPL…` (cached)             |
 * | VLEK             | yes                           | nothing: SNP_VLEK_MISSING (KDS serves no VLEK by chip id)     |
 * | ASK/ASVK, ARK    | yes, each                     | KDS `{vcek,vlek}/v1/{product}/cert_chain` (cached)            |
 * | CRL              | no                            | always KDS `{vcek,vlek}/v1/{product}/crl` (cached until its nextUpdate) |
 *
 * The TCB asked for is REPORTED_TCB in the product's layout. The product comes from the report's
 * CPUID fields (version 3 and later), else from the table's VCEK/VLEK productName, else from a
 * pinned ARK in the table; a version 2 report with none of these is tried against the configured
 * products, the cache first for every product, then KDS in order, so a known chip never costs a
 * failing request.
 *
 * Trust stage: collection. Nothing here verifies a signature or decides: every certificate and
 * CRL is handed to the appraisal as untrusted bytes. A failure to obtain one (rate limited,
 * unavailable, malformed, mislabelled, offline and not cached) is returned as a {@link Failure}
 * with its registry code; the appraisal puts every such failure in its result, so a KDS problem
 * is always a refusal, recorded in the ledger with its code, and never an allow.
 */
import { createHash } from 'node:crypto';
import { isVouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { toHex } from '../lib/bytes.js';
import { decodeSnpReport, snpChipIdMasked, snpProductOfCpuid, snpSigningKeyName, snpTcbComponents, type DecodedSnpReport } from '../snp/abi.js';
import { AMD_ARK_FINGERPRINTS } from '../snp/certs.js';
import { decodeSnpCertTable, snpCertTableChain, type SnpCertTableChain } from '../snp/certtable.js';
import { SNP_PRODUCTS, decodeVcekExtensions, type KdsClient, type KdsSourced, type SnpProduct, type SnpTcb } from '../snp/collateral.js';
import type { SnpSuppliedCollateral, SnpSuppliedItem } from '../appraisal/snp.js';
import type { SnpEvidence } from '../evidence/envelope.js';

export type { SnpSuppliedCollateral, SnpSuppliedItem } from '../appraisal/snp.js';

/** What {@link resolveSnpCollateral} looks at. */
export interface SnpCollateralInput {
  /** The report and the certificate table as the agent sent them. */
  readonly evidence: SnpEvidence;
  /** Pinned ARKs (SHA-256 of the DER → product); default AMD's. Names the product of a table's ARK. */
  readonly pinnedArks?: Readonly<Record<string, SnpProduct>> | undefined;
  /**
   * Products tried, in order, when the report names none (version 2, no VCEK in the table).
   * Default: the products of the pinned ARKs.
   */
  readonly products?: readonly SnpProduct[] | undefined;
}

/** The verifier's use of AMD KDS for SEV-SNP collateral. */
export interface SnpKdsSettings {
  /** The client (network, cache directory, clock, rate-limit state); one per verifier process. */
  readonly client: KdsClient;
  /** Products tried for reports that name none; default the products of the pinned ARKs. */
  readonly products?: readonly SnpProduct[];
}

const NOTHING: SnpSuppliedCollateral = { failures: [] };

/**
 * Fetches what the appraisal of `input.evidence` needs and the table lacks (see the module
 * comment). Never throws a VouchError: what cannot be obtained is a failure in the result.
 * Evidence that does not decode gets nothing here: the appraisal reports why.
 */
export async function resolveSnpCollateral(input: SnpCollateralInput, kds: KdsClient): Promise<SnpSuppliedCollateral> {
  let report: DecodedSnpReport;
  let chain: SnpCertTableChain;
  try {
    report = decodeSnpReport(input.evidence.report);
    const signer = snpSigningKeyName(report.signingKey);
    // SIGNING_KEY none (or reserved): no key to look for; the verification refuses the report.
    if (signer !== 'vcek' && signer !== 'vlek') return NOTHING;
    chain = snpCertTableChain(input.evidence.certTable === undefined ? [] : decodeSnpCertTable(input.evidence.certTable), signer);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return NOTHING;
  }
  const signer = chain.signer;
  const failures: Failure[] = [];
  const mid = chain.ask ?? chain.asvk;

  // The leaf and the product.
  let vcek: SnpSuppliedItem | undefined;
  let product = snpProductOfCpuid(report.cpuid) ?? productOfLeaf(chain.leaf) ?? productOfArk(chain.ark, input.pinnedArks);
  if (chain.leaf === undefined) {
    if (signer === 'vlek') {
      failures.push(failure('SNP_VLEK_MISSING', { field: 'evidence.snp.certTable', actual: 'no VLEK entry' }));
    } else if (snpChipIdMasked(report)) {
      failures.push(failure('SNP_CHIP_ID_MASKED', { field: 'ATTESTATION_REPORT.CHIP_ID', message: 'CHIP_ID is masked and the certificate table carries no VCEK: AMD KDS is asked for a VCEK by chip id' }));
    } else {
      const candidates = product !== undefined ? [product] : (input.products ?? pinnedProducts(input.pinnedArks));
      const found = await fetchVcek(kds, report, candidates, product === undefined, failures);
      if (found !== undefined) {
        product = found.product;
        vcek = { der: found.value, source: found.source };
      }
    }
  }
  // Without a signing certificate the report is refused whatever else is fetched: ask KDS no more.
  if (failures.length > 0) return { failures };
  if (product === undefined) {
    // The table has the leaf, but nothing names the product the chain and CRL are asked for.
    return { failures: [productUnknown(report, SNP_PRODUCTS, "the certificate table's VCEK or VLEK names no known product")] };
  }

  // The chain when the table lacks part of it, and the CRL, concurrently.
  const p = product;
  const [certChain, crl] = await Promise.all([
    mid === undefined || chain.ark === undefined ? attempt(() => kds.certChainWithSource(p, signer), 'cert_chain') : undefined,
    attempt(() => kds.crlWithSource(p, signer), 'crl'),
  ]);
  const out: { -readonly [K in keyof SnpSuppliedCollateral]: SnpSuppliedCollateral[K] } = { failures };
  if (vcek !== undefined) out.vcek = vcek;
  if (certChain !== undefined) {
    if ('failure' in certChain) failures.push(certChain.failure);
    else {
      out.ask = { der: certChain.value.ask, source: certChain.source };
      out.ark = { der: certChain.value.ark, source: certChain.source };
    }
  }
  if ('failure' in crl) failures.push(crl.failure);
  else out.crl = { der: crl.value.der, source: crl.source };
  return out;
}

type Attempt<T> = KdsSourced<T> | { readonly failure: Failure };

/** Runs one KDS client call; a VouchError becomes a failure naming the collateral it was for. */
async function attempt<T>(f: () => Promise<KdsSourced<T>>, what: string): Promise<Attempt<T>> {
  try {
    return await f();
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { failure: { ...failureFromError(e), field: `collateral.${what}` } };
  }
}

/**
 * The VCEK of the report's CHIP_ID at REPORTED_TCB for the first of `candidates` that has one:
 * the cache under every candidate first, then KDS in order. A rate limit ends the search
 * (KDS would refuse the rest too). Failures of each KDS request are added to `failures`, and,
 * when the product was a guess and none had the VCEK, SNP_PRODUCT_UNKNOWN.
 */
async function fetchVcek(
  kds: KdsClient,
  report: DecodedSnpReport,
  candidates: readonly SnpProduct[],
  guessing: boolean,
  failures: Failure[],
): Promise<(KdsSourced<Uint8Array> & { readonly product: SnpProduct }) | undefined> {
  const asks: { product: SnpProduct; tcb: SnpTcb }[] = [];
  const tried: Failure[] = [];
  for (const product of candidates) {
    // A Turin hwID is the first 8 bytes of CHIP_ID, the rest zero (VCEK spec §2.1).
    if (product === 'Turin' && report.chipId.subarray(8).some((b) => b !== 0)) {
      tried.push(failure('SNP_VCEK_HWID_MISMATCH', { field: 'ATTESTATION_REPORT.CHIP_ID', expected: '8 bytes then zeros (Turin)', actual: toHex(report.chipId), message: 'a Turin CHIP_ID is 8 bytes followed by zeros: KDS cannot be asked for this one' }));
      continue;
    }
    asks.push({ product, tcb: kdsTcb(report.reportedTcb, product) });
  }
  if (asks.length > 1) {
    for (const a of asks) {
      let der: Uint8Array | undefined;
      try {
        der = await kds.cachedVcek(a.product, report.chipId, a.tcb);
      } catch (e) {
        if (!isVouchError(e)) throw e;
        tried.push({ ...failureFromError(e), field: `collateral.vcek[${a.product}]` });
        continue;
      }
      if (der !== undefined) return { value: der, source: 'kds-cache', product: a.product };
    }
  }
  for (const a of asks) {
    const r = await attempt(() => kds.vcekWithSource(a.product, report.chipId, a.tcb), guessing ? `vcek[${a.product}]` : 'vcek');
    if (!('failure' in r)) return { ...r, product: a.product };
    tried.push(r.failure);
    if (r.failure.code === 'SNP_KDS_RATE_LIMITED') break;
  }
  failures.push(...tried);
  if (guessing) failures.push(productUnknown(report, candidates, 'none of the configured products has its VCEK'));
  return undefined;
}

/** The product a table's VCEK/VLEK names (productName), when it parses and is known. */
function productOfLeaf(der: Uint8Array | undefined): SnpProduct | undefined {
  if (der === undefined) return undefined;
  try {
    return decodeVcekExtensions(der, 'certTable.leaf').product;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return undefined; // the appraisal reports the malformed certificate
  }
}

/** The product of a table's ARK when it is pinned. */
function productOfArk(der: Uint8Array | undefined, pins: Readonly<Record<string, SnpProduct>> | undefined): SnpProduct | undefined {
  if (der === undefined) return undefined;
  return (pins ?? AMD_ARK_FINGERPRINTS)[createHash('sha256').update(der).digest('hex')];
}

/** The distinct products of the pinned ARKs, in KDS order. */
function pinnedProducts(pins: Readonly<Record<string, SnpProduct>> | undefined): SnpProduct[] {
  const have = new Set(Object.values(pins ?? AMD_ARK_FINGERPRINTS));
  return SNP_PRODUCTS.filter((p) => have.has(p));
}

/** REPORTED_TCB as the SPLs KDS is asked for, in `product`'s TCB_VERSION layout. */
function kdsTcb(raw: bigint, product: SnpProduct): SnpTcb {
  const t = snpTcbComponents(raw, product);
  return { bl: t.bootLoader, tee: t.tee, snp: t.snp, ucode: t.microcode, ...(product === 'Turin' ? { fmc: t.fmc ?? 0 } : {}) };
}

function productUnknown(report: DecodedSnpReport, tried: readonly SnpProduct[], why: string): Failure {
  return failure('SNP_PRODUCT_UNKNOWN', {
    field: report.cpuid === undefined ? 'ATTESTATION_REPORT.VERSION' : 'ATTESTATION_REPORT.CPUID_FAM_ID',
    expected: tried.length === 0 ? '(no product configured)' : tried.join(' | '),
    actual: report.cpuid === undefined ? `version ${report.version} (no CPUID)` : `family 0x${report.cpuid.family.toString(16)} model 0x${report.cpuid.model.toString(16)}`,
    message: `the AMD product of the report cannot be told: ${why}`,
  });
}
