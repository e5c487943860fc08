/**
 * AMD SEV-SNP: report and certificate-table codecs (abi), AMD certificates, the choice of a
 * report's chain from its certificate table and trust directories (pool), report authenticity
 * (verify) and appraisal against the policy's snp rules (appraise).
 */
export {
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  SNP_SIG_COMPONENT_SIZE,
  SNP_REPORT_VERSIONS,
  SNP_REPORT_LAYOUTS,
  SNP_SIG_ALGO_ECDSA_P384_SHA384,
  SNP_SIGNING_KEY,
  decodeSnpReport,
  encodeSnpReport,
  snpProductOfCpuid,
  snpTcbComponents,
  snpTcbBytes,
  snpPolicyFlags,
  snpSigningKeyName,
  snpChipIdMasked,
  type SnpReportVersion,
  type SnpSigningKeyName,
  type SnpFieldLayout,
  type SnpReport,
  type DecodedSnpReport,
  type SnpProduct,
  type SnpTcbComponents,
  type SnpPolicyFlags,
} from './abi.js';
export {
  SNP_CERT_GUID,
  SNP_ASVK_GUID,
  SNP_CERT_TABLE_MAX_ENTRIES,
  decodeSnpCertTable,
  encodeSnpCertTable,
  snpCertTableGet,
  snpCertTableChain,
  type SnpCertKind,
  type SnpCertTableEntry,
  type SnpCertTableChain,
} from './certtable.js';
export {
  AMD_OID,
  AMD_ARK_FINGERPRINTS,
  parseSnpCertificate,
  parseSnpCertificatesPem,
  snpProductOfName,
  type AmdExtensions,
  type SnpCertificate,
} from './certs.js';
export {
  verifySnpReport,
  compareSnpTcb,
  SnpVerifyCache,
  type SnpCertInput,
  type SnpVerifyOptions,
  type SnpVerification,
  type SnpAllowance,
  type SnpCrlUsed,
} from './verify.js';
export {
  appraiseSnp,
  snpReportDataFailures,
  SNP_REPORT_DATA_SIZE,
  type SnpBinding,
  type SnpExpectedReportData,
  type SnpAppraisal,
  type SnpAppraiseOptions,
} from './appraise.js';
export { SnpPolicySchema, snpVerifyAllowances, SNP_CRL_MAX_AGE_LIMIT_SECONDS, type SnpPolicy } from './policy.js';
export {
  SNP_COLLATERAL_MAX_BYTES,
  SNP_EMPTY_POOL,
  snpDerKind,
  splitSnpPem,
  parseSnpCrlHead,
  readSnpCollateral,
  snpPoolAdd,
  snpPoolFromCertTable,
  snpLeafKind,
  selectSnpChain,
  type SnpPemLabel,
  type SnpCrlHead,
  type SnpCollateralItems,
  type SnpOrigin,
  type SnpPoolCertificate,
  type SnpPoolCrl,
  type SnpPool,
  type SnpChainChoice,
  type SnpChainSelection,
} from './pool.js';
/** AMD KDS collateral (VCEK, cert chain, CRL) behind an injected fetcher. */
export * from './collateral.js';
