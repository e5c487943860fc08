/**
 * Linux IMA: measurement lists (ASCII and binary), replay to PCR 10 (whole or incremental),
 * file signatures and the runtime policy.
 *
 * Order of use in a verifier: parse the chunk of new entries (`parseImaBinary`, `firstIndex` =
 * the entries already accepted) → `imaStateForQuote` (restart on a new resetCount) →
 * `extendImaToQuote` with the quoted PCR 10 → `checkBootAggregate` on entry 0 →
 * `appraiseIma` on the entries the quote covers.
 */
export {
  IMA_PCR,
  IMA_TEMPLATES,
  IMA_TEMPLATE_FIELDS,
  IMA_LIMITS,
  KERNEL_HASH_ALGOS,
  kernelHashById,
  kernelHashByName,
  encodeTemplateData,
  encodeImaBinary,
  encodeImaAscii,
  templateHashInput,
  type ImaEntry,
  type ImaList,
  type ImaDigest,
  type ImaModsig,
  type ImaFields,
  type ImaTemplateName,
  type KernelHashAlgo,
} from './abi.js';
export { parseImaBinary, parseImaAscii, parseImaList, detectImaFormat, detectBinaryTemplateHashSize, type ImaParseOptions } from './parse.js';
export {
  replayIma,
  extendIma,
  extendImaToQuote,
  initialImaState,
  imaStateForQuote,
  compareImaPcr10,
  type ImaState,
  type ImaPcr10,
  type ImaReplayOptions,
  type ImaQuoteReplay,
} from './replay.js';
export { decodeImaSignature, importImaTrustedKey, verifyImaSignature, type ImaSignatureV2, type ImaTrustedKey } from './signature.js';
export { ImaRuntimePolicySchema, CompiledImaPolicy, compileImaPolicy, type ImaRuntimePolicy } from './policy.js';
export { appraiseIma, checkBootAggregate, BOOT_AGGREGATE_NAME, type ImaAppraisal, type ImaViolation, type BootAggregateCheck, type QuotedPcrs } from './appraise.js';
