/** AMD SEV-SNP: report and certificate-table codecs (abi), AMD certificates, and report authenticity (verify). */
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
  SNP_CERT_TABLE_MAX_ENTRIES,
  decodeSnpCertTable,
  encodeSnpCertTable,
  snpCertTableGet,
  type SnpCertKind,
  type SnpCertTableEntry,
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
} from './verify.js';
export { appraiseSnp } from './appraise.js';
export { SnpPolicySchema, snpVerifyAllowances, type SnpPolicy } from './policy.js';
/** AMD KDS collateral (VCEK, cert chain, CRL) behind an injected fetcher. */
export * from './collateral.js';
