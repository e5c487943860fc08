/**
 * EK certificates: parsing (DER, PEM, NV padding, lenient vendor encodings), TPM vendor CA
 * trust stores, chain validation at an injected time, and the EK key binding.
 */
export {
  parseEkCertificate,
  TCG_OID,
  EXT_OID,
  type EkCertificate,
  type CertSignatureAlgorithm,
  type BasicConstraints,
  type KeyUsage,
  type KeyUsageName,
  type TpmSanAttributes,
} from './certificate.js';
export { locateCertificate, splitPemCertificates, type CertificateExtent } from './der.js';
export { EkTrustStore, trustStoreFromCerts, loadTrustDirectory, type TrustDirectory, type TrustLoadProblem } from './trust.js';
export { verifyEkChain, DEFAULT_MAX_DEPTH, MAX_INTERMEDIATES, type EkChainOptions, type EkChainResult, type EkFailure } from './chain.js';
export { ekMatchesPublic, type EkKeyCheck } from './key.js';
