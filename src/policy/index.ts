/**
 * Attestation policies, version `vouch/v1`: strict loading (YAML 1.2 or JSON, unknown keys
 * rejected), content addressing, the PCR selection a challenge asks for, and the pure
 * appraisal of quoted PCRs.
 */
export {
  POLICY_API_VERSION,
  POLICY_KIND,
  POLICY_BANKS,
  BANK_NAMES,
  AK_ALGORITHMS,
  PCR_INDEX_MAX,
  PolicyDocumentSchema,
  MeasuredBootPolicySchema,
  RuntimePolicySchema,
  type MeasuredBootPolicy,
  type RuntimePolicy,
  type AkAlgorithm,
  type BankName,
  type PcrAllowed,
  type Policy,
  type PolicyDocument,
} from './schema.js';
export { POLICY_MAX_CHARS, type PolicyFormat } from './text.js';
export { parsePolicy, validatePolicy, loadPolicyFile, PolicyInvalidError, type PolicyIssue } from './parse.js';
export { policyDigest, policyRef, canonicalPolicyJson } from './digest.js';
export { canonicalJson, canonicalJsonBytes, canonicalJsonSha256, type JsonValue } from './canonical.js';
export {
  appraisePcrs,
  appraiseAkAlgorithm,
  akAlgorithmOf,
  policyPcrSelection,
  bankAlgId,
  type PolicyFailure,
  type PolicyFailureCode,
  type PolicyBankSelection,
  type QuotedPcrs,
} from './appraise.js';
