/**
 * The lineage ledger: the version 1 entry format (canonical CBOR, SHA-256 hash chain) and its
 * offline verification. Pure functions only; storage lives in src/store.
 */
export {
  DECISION_KINDS,
  GENESIS_PREV,
  LEDGER_ENTRY_MAX_BYTES,
  LEDGER_ENTRY_MAX_DEPTH,
  LEDGER_ENTRY_VERSION,
  LEDGER_HASH_LENGTH,
  buildLedgerEntry,
  decodeLedgerEntry,
  ledgerEntryHash,
  type BuiltLedgerEntry,
  type DecisionKind,
  type LedgerEntry,
  type LedgerEntryFields,
} from './entry.js';
export {
  ChainVerifier,
  verifyChain,
  type ChainAnchor,
  type ChainOptions,
  type ChainProblem,
  type ChainProblemCode,
  type ChainRow,
  type ChainVerification,
} from './chain.js';
