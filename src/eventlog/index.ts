/**
 * TCG PC Client event logs: parse (abi), replay and compare with a quote (replay), and decode
 * boot claims from a log whose replay matched (claims).
 */
export { EVENTLOG_LIMITS, parseEventLog, decodeSpecIdEvent } from './abi.js';
export type { EventDigest, EventLog, ParseEventLogOptions, SpecIdAlgorithm, SpecIdEvent, TcgEvent } from './abi.js';
export { EV, GUID, eventTypeName } from './constants.js';
export { QUIRKS, compareWithQuote, parseQuirks, replayEventLog, shortData, summarizeEvent, verifyEventLog } from './replay.js';
export type {
  CompareOptions,
  EventLogComparison,
  EventLogVerification,
  EventSummary,
  PcrFailure,
  Quirk,
  QuirkValue,
  ReplayGap,
  ReplayOptions,
  ReplayResult,
  VerifiedEventLog,
  VerifyEventLogOptions,
} from './replay.js';
export { bootClaims } from './claims.js';
export type { AuthorityClaim, BankDigests, BootClaims, CertificateClaim, EfiApplicationClaim, LoadedFileClaim, SignatureDbClaim } from './claims.js';
export { decodeSignatureDatabase, decodeUefiImageLoadEvent, decodeUefiVariableData, devicePathFile, guidText } from './uefi.js';
export type { EfiSignatureData, EfiSignatureList, UefiImageLoadEvent, UefiVariableData } from './uefi.js';
