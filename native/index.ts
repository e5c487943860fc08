/**
 * The only part of vouch that touches C: a TPM 2.0 through tpm2-tss, and the SEV-SNP guest device
 * through libc, via koffi. Importing this module loads nothing; the libraries are loaded when a
 * TPM is opened or the first SEV guest request is made.
 */
export { Tpm, allPcrs, DEFAULT_AK_HANDLE } from './tpm.js';
export type { TpmKey, CreatedKey, EkCertificate, PcrBank, TpmInfo, QuoteResult, EnsureAkOptions } from './tpm.js';
export { ESYS_TR, TssCommandFailure, rcLayer, rcHex, tss2 } from './tss2.js';
export { EK_CERT_INDICES, EK_CHAIN_FIRST, EK_CHAIN_LAST, TPMA_NV, decodeTpm2bNvPublic, ekCertificateKind } from './nv.js';
export type { EkCertificateKind, NvPublic } from './nv.js';
export { describeTpm } from './describe.js';
export type { TpmDescription, EkCertificateDescription } from './describe.js';
export { sevGuestExtReport, sevGuestLibcLoaded, SEV_GUEST_PAGE_SIZE, SEV_GUEST_CERTS_LEN_LIMIT } from './sev-guest.js';
export type { SevGuestExtReportCall, SevGuestExtReportOutcome, SevGuestExtReportIoctl } from './sev-guest.js';
