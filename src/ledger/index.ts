/**
 * The lineage ledger: the version 1 entry format (canonical CBOR, SHA-256 hash chain), its
 * offline verification, the RFC 9162 Merkle tree over the entries (roots, inclusion and
 * consistency proofs), signed checkpoints, whole-ledger verification and the portable export.
 * Pure functions only; storage lives in src/store.
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
export {
  MERKLE_EMPTY_ROOT,
  MERKLE_HASH_LENGTH,
  MERKLE_TREE_MAX_LEAVES,
  MerkleTree,
  merkleConsistencyProof,
  merkleInclusionProof,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
  type MerkleProofVerification,
} from './merkle.js';
export {
  CHECKPOINT_TYPE,
  CheckpointKeys,
  checkpointPayload,
  decodeCheckpoint,
  signCheckpoint,
  type CheckpointKey,
  type CheckpointVerification,
  type DecodedCheckpoint,
  type TreeHead,
} from './checkpoint.js';
export { SIGNING_KEY_ANCHOR, verifyLedger, type CheckpointProblem, type CheckpointProblemCode, type LedgerVerification, type LedgerVerifyInput } from './verify.js';
export { EXPORT_FORMAT, exportCheckpointLine, exportEntryLine, exportHeaderLine, exportInputLine, readExport, type ExportHeader, type ExportInput, type ExportRecord } from './export.js';
