/**
 * Numbered schema migrations. Each is applied once, in order, inside a write transaction, and
 * recorded in `schema_migrations` with the SHA-256 of its SQL: a database whose recorded
 * checksum differs, or that has a version this code does not know, is refused
 * (STORE_SCHEMA_MISMATCH) rather than used. Never edit an applied migration; add the next one.
 *
 * Each migration holds one SQL text per dialect with the same tables, columns, constraints and
 * indexes under the same version number: `sqlite` for SqliteStore, `postgres` for PostgresStore
 * (BLOB → BYTEA, INTEGER → BIGINT, `length()` of a blob → `octet_length()`, the append-only
 * triggers as a plpgsql function that raises). Each store records and checks the checksum of its
 * own dialect's text. Adding a version means adding both texts and one line to {@link MIGRATIONS}.
 *
 * PostgreSQL specifics: the text keys that are listed in order (`nodes.node_id`,
 * `secrets.secret_id`) use the "C" collation, so `ORDER BY` and `>` compare code points as
 * SQLite's BINARY collation does, whatever the database's locale; the append-only rule also
 * refuses TRUNCATE, which bypasses row triggers.
 *
 * Column conventions: times are INTEGER epoch milliseconds supplied by the caller; binary
 * values are BLOB; the TPM clock (a UINT64) is TEXT in decimal, so no precision is lost.
 */
import { createHash } from 'node:crypto';

/** One schema step. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The SQL for SQLite (the embedded store). Never edit one that has been released. */
  readonly sqlite: string;
  /** The same step for PostgreSQL (src/store/postgres.ts). Never edit one that has been released. */
  readonly postgres: string;
}

/** The SHA-256 (hex) of a migration's SQL, recorded when it is applied. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/** The table that records applied migrations (created before any migration runs). */
export const SCHEMA_MIGRATIONS_SQLITE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version  INTEGER PRIMARY KEY,
  name     TEXT NOT NULL,
  checksum TEXT NOT NULL
);
`;

/** PostgreSQL's `schema_migrations` (created, under the migration lock, before any migration runs). */
export const SCHEMA_MIGRATIONS_POSTGRES = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version  BIGINT PRIMARY KEY,
  name     TEXT NOT NULL,
  checksum TEXT NOT NULL
);
`;

const V1_SQLITE = `
CREATE TABLE nodes (
  node_id        TEXT PRIMARY KEY,
  group_name     TEXT NOT NULL,
  ek_public      BLOB NOT NULL,
  ek_cert        BLOB,
  ak_public      BLOB NOT NULL,
  ak_name        BLOB NOT NULL UNIQUE,
  enrolled_at    INTEGER NOT NULL,
  reset_count    INTEGER,
  restart_count  INTEGER,
  clock          TEXT,
  last_quote_at  INTEGER,
  updated_at     INTEGER NOT NULL,
  CHECK ((reset_count IS NULL) = (restart_count IS NULL)
     AND (reset_count IS NULL) = (clock IS NULL)
     AND (reset_count IS NULL) = (last_quote_at IS NULL))
);
CREATE INDEX nodes_group ON nodes (group_name);

CREATE TABLE pending_enrollments (
  enrollment_id  TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL,
  group_name     TEXT NOT NULL,
  ek_public      BLOB NOT NULL,
  ek_cert        BLOB,
  ak_public      BLOB NOT NULL,
  ak_name        BLOB NOT NULL,
  secret_sha256  BLOB NOT NULL CHECK (length(secret_sha256) = 32),
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_enrollments_expires ON pending_enrollments (expires_at);

CREATE TABLE challenges (
  challenge_id   TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
  nonce          BLOB NOT NULL,
  params         BLOB NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  consumed_at    INTEGER
);
CREATE INDEX challenges_node ON challenges (node_id);
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE policies (
  digest         TEXT PRIMARY KEY CHECK (length(digest) = 64),
  policy_id      TEXT NOT NULL,
  document       TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);

CREATE TABLE policy_assignments (
  group_name     TEXT PRIMARY KEY,
  policy_digest  TEXT NOT NULL REFERENCES policies (digest),
  assigned_at    INTEGER NOT NULL
);

CREATE TABLE decisions (
  seq            INTEGER PRIMARY KEY CHECK (seq >= 1),
  kind           TEXT NOT NULL,
  node_id        TEXT,
  outcome        TEXT NOT NULL,
  decided_at     INTEGER NOT NULL,
  entry          BLOB NOT NULL,
  prev_hash      BLOB NOT NULL CHECK (length(prev_hash) = 32),
  hash           BLOB NOT NULL UNIQUE CHECK (length(hash) = 32)
);
CREATE INDEX decisions_node ON decisions (node_id, seq);

CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision ledger is append-only'); END;
CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision ledger is append-only'); END;
`;

const V1_POSTGRES = `
CREATE TABLE nodes (
  node_id        TEXT COLLATE "C" PRIMARY KEY,
  group_name     TEXT NOT NULL,
  ek_public      BYTEA NOT NULL,
  ek_cert        BYTEA,
  ak_public      BYTEA NOT NULL,
  ak_name        BYTEA NOT NULL UNIQUE,
  enrolled_at    BIGINT NOT NULL,
  reset_count    BIGINT,
  restart_count  BIGINT,
  clock          TEXT,
  last_quote_at  BIGINT,
  updated_at     BIGINT NOT NULL,
  CHECK ((reset_count IS NULL) = (restart_count IS NULL)
     AND (reset_count IS NULL) = (clock IS NULL)
     AND (reset_count IS NULL) = (last_quote_at IS NULL))
);
CREATE INDEX nodes_group ON nodes (group_name);

CREATE TABLE pending_enrollments (
  enrollment_id  TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL,
  group_name     TEXT NOT NULL,
  ek_public      BYTEA NOT NULL,
  ek_cert        BYTEA,
  ak_public      BYTEA NOT NULL,
  ak_name        BYTEA NOT NULL,
  secret_sha256  BYTEA NOT NULL CHECK (octet_length(secret_sha256) = 32),
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  attempts       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX pending_enrollments_expires ON pending_enrollments (expires_at);

CREATE TABLE challenges (
  challenge_id   TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
  nonce          BYTEA NOT NULL,
  params         BYTEA NOT NULL,
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  consumed_at    BIGINT
);
CREATE INDEX challenges_node ON challenges (node_id);
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE policies (
  digest         TEXT PRIMARY KEY CHECK (length(digest) = 64),
  policy_id      TEXT NOT NULL,
  document       TEXT NOT NULL,
  created_at     BIGINT NOT NULL
);

CREATE TABLE policy_assignments (
  group_name     TEXT PRIMARY KEY,
  policy_digest  TEXT NOT NULL REFERENCES policies (digest),
  assigned_at    BIGINT NOT NULL
);

CREATE TABLE decisions (
  seq            BIGINT PRIMARY KEY CHECK (seq >= 1),
  kind           TEXT NOT NULL,
  node_id        TEXT,
  outcome        TEXT NOT NULL,
  decided_at     BIGINT NOT NULL,
  entry          BYTEA NOT NULL,
  prev_hash      BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
  hash           BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
);
CREATE INDEX decisions_node ON decisions (node_id, seq);

CREATE FUNCTION decisions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the decision ledger is append-only';
END;
$$;
CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions
  FOR EACH ROW EXECUTE FUNCTION decisions_append_only();
CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions
  FOR EACH ROW EXECUTE FUNCTION decisions_append_only();
CREATE TRIGGER decisions_append_only_truncate BEFORE TRUNCATE ON decisions
  FOR EACH STATEMENT EXECUTE FUNCTION decisions_append_only();
`;

/**
 * Version 2: the running IMA state per node, so a re-attestation sends and replays only the
 * measurement-list entries since the last accepted one. `pcr10` is canonical CBOR
 * (TPM_ALG_ID → PCR 10 value); `violations` counts runtime-policy violations since the reset
 * the state belongs to (a node that ran something forbidden stays refused until it reboots).
 */
const V2_SQLITE = `
CREATE TABLE ima_state (
  node_id        TEXT PRIMARY KEY REFERENCES nodes (node_id),
  reset_count    INTEGER NOT NULL CHECK (reset_count >= 0),
  entries        INTEGER NOT NULL CHECK (entries >= 0),
  pcr10          BLOB NOT NULL,
  violations     INTEGER NOT NULL CHECK (violations >= 0),
  updated_at     INTEGER NOT NULL
);
`;

const V2_POSTGRES = `
CREATE TABLE ima_state (
  node_id        TEXT PRIMARY KEY REFERENCES nodes (node_id),
  reset_count    BIGINT NOT NULL CHECK (reset_count >= 0),
  entries        BIGINT NOT NULL CHECK (entries >= 0),
  pcr10          BYTEA NOT NULL,
  violations     BIGINT NOT NULL CHECK (violations >= 0),
  updated_at     BIGINT NOT NULL
);
`;

/**
 * Version 3: SNP-only nodes (confidential VMs without a vTPM), identified by a long-term P-256
 * node key instead of a TPM.
 *
 * - `nodes.kind` is 'tpm' (every node enrolled before this version) or 'snp'.
 * - `nodes.node_key` holds an SNP node's key (DER SubjectPublicKeyInfo); NULL for a TPM node.
 * - For kind 'snp' the NOT NULL TPM columns hold empty blobs (`ek_public`, `ak_public`) and
 *   `ak_name` holds 0x53 0x4E ("SN") ‖ SHA-256(node_key). A TPM name starts with its nameAlg
 *   (TPM_ALG_ID, big-endian: 0x00 0x04, 0x00 0x0B, …), never with 0x53, so the UNIQUE constraint
 *   on `ak_name` keeps holding for both kinds and also makes a node key enrollable only once.
 *   Nothing may decode an SNP node's empty `ak_public` as a TPM key: every TPM path checks the
 *   kind first (APPRAISAL_NODE_KIND_MISMATCH).
 * - `pending_snp_enrollments`: an SNP enrollment between its two steps (the nonce the report
 *   must bind, with its node key and expiry); taken — read and deleted — by the one completion
 *   attempt it allows.
 */
const V3_SQLITE = `
ALTER TABLE nodes ADD COLUMN kind TEXT NOT NULL DEFAULT 'tpm' CHECK (kind IN ('tpm','snp'));
ALTER TABLE nodes ADD COLUMN node_key BLOB;

CREATE TABLE pending_snp_enrollments (
  enrollment_id  TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL,
  group_name     TEXT NOT NULL,
  node_key       BLOB NOT NULL,
  nonce          BLOB NOT NULL CHECK (length(nonce) >= 16),
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE INDEX pending_snp_enrollments_expires ON pending_snp_enrollments (expires_at);
`;

const V3_POSTGRES = `
ALTER TABLE nodes ADD COLUMN kind TEXT NOT NULL DEFAULT 'tpm' CHECK (kind IN ('tpm','snp'));
ALTER TABLE nodes ADD COLUMN node_key BYTEA;

CREATE TABLE pending_snp_enrollments (
  enrollment_id  TEXT PRIMARY KEY,
  node_id        TEXT NOT NULL,
  group_name     TEXT NOT NULL,
  node_key       BYTEA NOT NULL,
  nonce          BYTEA NOT NULL CHECK (octet_length(nonce) >= 16),
  created_at     BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL
);
CREATE INDEX pending_snp_enrollments_expires ON pending_snp_enrollments (expires_at);
`;

/**
 * Version 4: operator revocation and the verifier heartbeat.
 *
 * - `nodes.revoked_at` / `nodes.revoked_reason`: set together when an operator revokes a node
 *   (both NULL otherwise); a revoked node gets no challenge and no affirming decision until an
 *   operator re-admits it. The revocation itself is a 'revocation' ledger decision.
 * - `decisions_kind`: the last decision of a kind (the last heartbeat) without a scan.
 */
const V4_SQLITE = `
ALTER TABLE nodes ADD COLUMN revoked_at INTEGER;
ALTER TABLE nodes ADD COLUMN revoked_reason TEXT CHECK (revoked_reason IS NULL OR length(revoked_reason) BETWEEN 1 AND 512);
CREATE INDEX decisions_kind ON decisions (kind, seq);
`;

const V4_POSTGRES = `
ALTER TABLE nodes ADD COLUMN revoked_at BIGINT;
ALTER TABLE nodes ADD COLUMN revoked_reason TEXT CHECK (revoked_reason IS NULL OR length(revoked_reason) BETWEEN 1 AND 512);
CREATE INDEX decisions_kind ON decisions (kind, seq);
`;

/**
 * Version 5: secrets of the key broker (src/secrets).
 *
 * - `secrets`: one row per secret id; the value only as AES-256-GCM ciphertext under the
 *   verifier's master key (never stored, never in this database), with its 12-byte nonce; the
 *   release policy as canonical JSON. The tag is the last 16 bytes of `ciphertext`.
 */
const V5_SQLITE = `
CREATE TABLE secrets (
  secret_id      TEXT PRIMARY KEY CHECK (length(secret_id) BETWEEN 1 AND 64),
  tenant         TEXT,
  ciphertext     BLOB NOT NULL CHECK (length(ciphertext) >= 16),
  nonce          BLOB NOT NULL CHECK (length(nonce) = 12),
  release_policy TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
`;

const V5_POSTGRES = `
CREATE TABLE secrets (
  secret_id      TEXT COLLATE "C" PRIMARY KEY CHECK (length(secret_id) BETWEEN 1 AND 64),
  tenant         TEXT,
  ciphertext     BYTEA NOT NULL CHECK (octet_length(ciphertext) >= 16),
  nonce          BYTEA NOT NULL CHECK (octet_length(nonce) = 12),
  release_policy TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL
);
`;

/**
 * Version 6: the ledger's signed checkpoints and the retained inputs of decisions (issue #8).
 *
 * - `ledger_checkpoints`: one signed tree head per tree size (src/ledger/checkpoint.ts), the JWS
 *   exactly as signed; append-only like the ledger. Two replicas that sign the same size keep the
 *   first (both roots are the same tree's).
 * - `retained_inputs`: content-addressed inputs of decisions (evidence, appraisal context, signing
 *   keys, trust anchors), `digest` = SHA-256 hex of `bytes`. Pruning by the retention setting sets
 *   `bytes` to NULL and `pruned_at`; the digest stays, so a decision still names what it used.
 */
const V6_SQLITE = `
CREATE TABLE ledger_checkpoints (
  tree_size      INTEGER PRIMARY KEY CHECK (tree_size >= 1),
  root_hash      BLOB NOT NULL CHECK (length(root_hash) = 32),
  signed_at      INTEGER NOT NULL,
  kid            TEXT NOT NULL,
  jws            TEXT NOT NULL
);
CREATE TRIGGER ledger_checkpoints_append_only_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER ledger_checkpoints_append_only_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;

CREATE TABLE retained_inputs (
  digest         TEXT PRIMARY KEY CHECK (length(digest) = 64),
  kind           TEXT NOT NULL,
  bytes          BLOB,
  stored_at      INTEGER NOT NULL,
  pruned_at      INTEGER,
  CHECK ((bytes IS NULL) = (pruned_at IS NOT NULL))
);
CREATE INDEX retained_inputs_stored ON retained_inputs (stored_at);
`;

const V6_POSTGRES = `
CREATE TABLE ledger_checkpoints (
  tree_size      BIGINT PRIMARY KEY CHECK (tree_size >= 1),
  root_hash      BYTEA NOT NULL CHECK (octet_length(root_hash) = 32),
  signed_at      BIGINT NOT NULL,
  kid            TEXT NOT NULL,
  jws            TEXT NOT NULL
);
CREATE FUNCTION ledger_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger checkpoints are append-only';
END;
$$;
CREATE TRIGGER ledger_checkpoints_append_only_update BEFORE UPDATE ON ledger_checkpoints
  FOR EACH ROW EXECUTE FUNCTION ledger_checkpoints_append_only();
CREATE TRIGGER ledger_checkpoints_append_only_delete BEFORE DELETE ON ledger_checkpoints
  FOR EACH ROW EXECUTE FUNCTION ledger_checkpoints_append_only();
CREATE TRIGGER ledger_checkpoints_append_only_truncate BEFORE TRUNCATE ON ledger_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_checkpoints_append_only();

CREATE TABLE retained_inputs (
  digest         TEXT COLLATE "C" PRIMARY KEY CHECK (length(digest) = 64),
  kind           TEXT NOT NULL,
  bytes          BYTEA,
  stored_at      BIGINT NOT NULL,
  pruned_at      BIGINT,
  CHECK ((bytes IS NULL) = (pruned_at IS NOT NULL))
);
CREATE INDEX retained_inputs_stored ON retained_inputs (stored_at);
`;

/** Every migration, in version order (dense, from 1). */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial schema', sqlite: V1_SQLITE, postgres: V1_POSTGRES },
  { version: 2, name: 'IMA state per node', sqlite: V2_SQLITE, postgres: V2_POSTGRES },
  { version: 3, name: 'SNP-only nodes', sqlite: V3_SQLITE, postgres: V3_POSTGRES },
  { version: 4, name: 'node revocation and heartbeat', sqlite: V4_SQLITE, postgres: V4_POSTGRES },
  { version: 5, name: 'key broker secrets', sqlite: V5_SQLITE, postgres: V5_POSTGRES },
  { version: 6, name: 'ledger checkpoints and retained inputs', sqlite: V6_SQLITE, postgres: V6_POSTGRES },
];
