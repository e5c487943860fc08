/**
 * The one error registry of vouch.
 *
 * Every failure that leaves a vouch component carries a stable `code` from {@link ERRORS}.
 * A code belongs to exactly one category, and the category decides the error class and the
 * HTTP status a service answers with. `docs/errors.md` lists the same table; a test keeps the
 * registry, the classes and the document in step, so codes are API: never renumber or reuse one.
 */

/** The five categories of failure, kept apart so callers can react to each. */
export type ErrorCategory =
  | 'misuse' // the caller used an API or command wrongly (bad flag, missing file, wrong type)
  | 'malformed' // input bytes or documents do not parse as the structure they claim to be
  | 'verification-failed' // well-formed evidence whose signature, chain or binding does not hold
  | 'policy-failed' // verified evidence that the policy does not accept
  | 'unavailable'; // a dependency (TPM, TSS library, database, collateral) could not be used

/** One registry row. */
export interface ErrorSpec {
  readonly category: ErrorCategory;
  /** HTTP status a service returns when this error ends a request. */
  readonly status: number;
  /** One-line description, used in docs and as the default message. */
  readonly message: string;
}

function spec(category: ErrorCategory, status: number, message: string): ErrorSpec {
  return { category, status, message };
}

/**
 * code → category → HTTP status → message. Grouped by the part of vouch that raises them.
 * Add new codes at the end of the group they belong to.
 */
export const ERRORS = {
  // --- misuse: the caller got something wrong --------------------------------------------
  MISUSE_ARGUMENT: spec('misuse', 400, 'an argument is missing, of the wrong type or out of range'),
  MISUSE_FILE_UNREADABLE: spec('misuse', 400, 'a file named by the caller cannot be read'),
  MISUSE_UNSUPPORTED_FORMAT: spec('misuse', 400, 'the input is in a format this command does not accept'),

  // --- malformed: binary parsing (src/lib/reader) ------------------------------------------
  PARSE_TRUNCATED: spec('malformed', 400, 'input ends before the field is complete'),
  PARSE_TRAILING_BYTES: spec('malformed', 400, 'bytes remain after the end of the structure'),
  PARSE_SIZE_EXCEEDED: spec('malformed', 400, 'a declared size or count exceeds the limit for the field'),
  PARSE_BAD_VALUE: spec('malformed', 400, 'a field holds a value the specification does not allow'),
  PARSE_RESERVED_NONZERO: spec('malformed', 400, 'a reserved field or bit is not zero'),
  PARSE_BAD_MAGIC: spec('malformed', 400, 'a magic or tag field does not hold its required value'),
  PARSE_UNSUPPORTED_ALGORITHM: spec('malformed', 400, 'an algorithm identifier is unknown or not supported here'),
  PARSE_BAD_ENCODING: spec('malformed', 400, 'text, hex, base64, PEM or DER encoding is invalid'),

  // --- verification-failed: TPM quotes (src/tpm/verify) -----------------------------------
  TPM_QUOTE_SIGNATURE_INVALID: spec('verification-failed', 422, 'the quote signature does not verify with the attestation key'),
  TPM_QUOTE_SCHEME_MISMATCH: spec('verification-failed', 422, "the signature's scheme or hash is not the attestation key's scheme"),
  TPM_QUOTE_NOT_QUOTE: spec('verification-failed', 422, 'the attestation structure is not of type TPM_ST_ATTEST_QUOTE'),
  TPM_QUOTE_NONCE_MISMATCH: spec('verification-failed', 422, 'TPMS_ATTEST.extraData is not the expected qualifying data'),
  TPM_QUOTE_PCR_SELECTION_MISMATCH: spec('verification-failed', 422, 'the quoted PCR selection is not the requested one'),
  TPM_QUOTE_PCR_DIGEST_MISMATCH: spec('verification-failed', 422, 'the quoted pcrDigest is not the digest of the supplied PCR values'),
  TPM_QUOTE_PCR_VALUES_MISSING: spec('verification-failed', 422, 'a quoted PCR has no supplied value, or a value has the wrong size'),
  TPM_AK_TEMPLATE_INVALID: spec('verification-failed', 422, 'the attestation key public area is not a restricted signing key bound to its TPM'),
  TPM_KEY_UNSUPPORTED: spec('verification-failed', 422, 'the public key type, curve or size is not supported for verification'),

  // --- verification-failed: EK certificates (src/tpm/ek) -----------------------------------
  EK_CERT_MALFORMED: spec('malformed', 400, 'an EK or CA certificate does not parse'),
  EK_CHAIN_NO_ISSUER: spec('verification-failed', 422, 'no trusted CA certificate issued this certificate'),
  EK_CHAIN_SIGNATURE_INVALID: spec('verification-failed', 422, "a certificate's signature does not verify with its issuer's key"),
  EK_CHAIN_EXPIRED: spec('verification-failed', 422, 'a certificate in the chain is outside its validity period at the verification time'),
  EK_CHAIN_NOT_CA: spec('verification-failed', 422, 'an issuing certificate is not a CA (basic constraints or key usage)'),
  EK_CHAIN_PATH_LENGTH: spec('verification-failed', 422, 'the chain is longer than a CA path length constraint allows'),
  EK_CHAIN_TOO_LONG: spec('verification-failed', 422, 'the chain exceeds the maximum depth vouch builds'),
  EK_KEY_MISMATCH: spec('verification-failed', 422, "the EK certificate's public key is not the TPM's endorsement key"),
  EK_CHAIN_CRITICAL_EXTENSION: spec('verification-failed', 422, 'a certificate in the chain has a critical extension vouch does not process'),

  // --- store and ledger (src/store, src/ledger) -----------------------------------------------
  STORE_UNAVAILABLE: spec('unavailable', 503, 'the verifier database could not be opened, read or written'),
  STORE_SCHEMA_MISMATCH: spec('unavailable', 503, 'the database schema is newer than this vouch, or an applied migration differs from its recorded checksum'),
  CHALLENGE_UNKNOWN: spec('verification-failed', 422, 'no challenge with this id was issued'),
  CHALLENGE_EXPIRED: spec('verification-failed', 422, 'the challenge expired before it was used'),
  CHALLENGE_REPLAYED: spec('verification-failed', 409, 'the challenge was already used: a replay'),
  CHALLENGE_WRONG_NODE: spec('verification-failed', 422, 'the challenge was issued to another node'),
  LEDGER_HASH_MISMATCH: spec('verification-failed', 422, 'a ledger entry does not hash to its recorded hash (the entry was altered)'),
  LEDGER_LINK_BROKEN: spec('verification-failed', 422, "a ledger entry's prev field is not the hash of the entry before it"),
  LEDGER_SEQUENCE_GAP: spec('verification-failed', 422, 'ledger sequence numbers are missing, repeated or out of order'),
  LEDGER_ENTRY_MALFORMED: spec('malformed', 400, 'a ledger entry is not a well-formed version 1 entry in canonical CBOR'),
  LEDGER_PROOF_INVALID: spec('verification-failed', 422, 'an inclusion or consistency proof does not verify against the tree head (RFC 9162 §2.1.3.2, §2.1.4.2)'),
  LEDGER_CHECKPOINT_MALFORMED: spec('malformed', 400, 'a ledger checkpoint is not a compact JWS of a version 1 tree head in canonical form'),
  LEDGER_CHECKPOINT_KEY_UNKNOWN: spec('verification-failed', 422, 'a ledger checkpoint is signed by a key that is neither pinned nor recorded in the ledger before the entries it covers'),
  LEDGER_CHECKPOINT_SIGNATURE_INVALID: spec('verification-failed', 422, "a ledger checkpoint's signature does not verify with the key its kid names"),
  LEDGER_CHECKPOINT_MISMATCH: spec('verification-failed', 422, 'the Merkle root of the stored entries is not the root a signed checkpoint holds for that size (entries rewritten, reordered, or the ledger forked)'),
  LEDGER_TRUNCATED: spec('verification-failed', 422, 'a signed checkpoint covers more entries than the ledger holds (entries were deleted from its end)'),
  LEDGER_EXPORT_MALFORMED: spec('malformed', 400, 'a ledger export file is not a version 1 export (header, entry, checkpoint and input lines)'),
  LEDGER_SEQ_UNKNOWN: spec('misuse', 404, 'no ledger entry has this sequence number (or no checkpoint covers it yet)'),
  REPLAY_NOT_REPLAYABLE: spec('misuse', 400, 'this decision records a fact (heartbeat, policy, trust anchor, revocation, release) rather than an evaluation that can be re-run'),
  REPLAY_INPUT_MISSING: spec('unavailable', 503, 'an input of the decision is not retained (recorded before inputs were retained, or its digest is unknown)'),
  REPLAY_INPUT_PRUNED: spec('unavailable', 503, 'an input of the decision was pruned by the retention setting; only its digest remains'),
  REPLAY_MISMATCH: spec('verification-failed', 422, 'the re-evaluated decision differs from the recorded one'),

  // --- policy and artifacts (src/policy, src/artifact) ---------------------------------------
  POLICY_INVALID: spec('malformed', 400, 'a policy document does not parse or does not match the policy schema'),
  POLICY_PCR_MISMATCH: spec('policy-failed', 403, 'a quoted PCR value is not one of the values the policy allows'),
  POLICY_BANK_MISSING: spec('policy-failed', 403, 'a PCR bank the policy requires is absent from the quote'),
  POLICY_PCR_MISSING: spec('policy-failed', 403, 'a PCR the policy lists is absent from the quote'),
  POLICY_AK_ALGORITHM: spec('policy-failed', 403, "the attestation key's algorithm is not one the policy allows"),
  POLICY_EVENTLOG_MISSING: spec('policy-failed', 403, 'the policy has measured-boot rules and the evidence carries no event log'),
  POLICY_SECURE_BOOT: spec('policy-failed', 403, 'Secure Boot is not enabled (or its state is not proven by the event log)'),
  POLICY_DB: spec('policy-failed', 403, 'the Secure Boot db lacks a required certificate or holds a forbidden one'),
  POLICY_DBX: spec('policy-failed', 403, 'the Secure Boot dbx lacks a required revocation'),
  POLICY_BOOT_LOADER: spec('policy-failed', 403, 'the boot loader is not one the policy allows'),
  POLICY_KERNEL: spec('policy-failed', 403, 'the kernel is not one the policy allows'),
  POLICY_KERNEL_CMDLINE: spec('policy-failed', 403, 'the kernel command line is not allowed by the policy'),
  POLICY_SCRTM_VERSION: spec('policy-failed', 403, 'the S-CRTM version is not one the policy allows'),
  POLICY_IMA_LOG_MISSING: spec('policy-failed', 403, 'the policy has runtime rules and the evidence carries no IMA measurement list'),
  IMA_PRIOR_VIOLATION: spec('policy-failed', 403, 'runtime-policy violations were recorded earlier in this boot; the node stays refused until it reboots'),
  POLICY_SNP_EVIDENCE_MISSING: spec('policy-failed', 403, 'the policy has SEV-SNP rules and the evidence carries no SNP report'),
  POLICY_SNP_NOT_CONFIGURED: spec('policy-failed', 403, 'the evidence carries an SNP report and the policy has no SEV-SNP rules to appraise it'),
  POLICY_TDX_EVIDENCE_MISSING: spec('policy-failed', 403, 'the policy has TDX rules and the evidence carries no TDX quote'),
  ARTIFACT_SIGNATURE_INVALID: spec('verification-failed', 401, 'the artifact signature does not verify with a key of the JWKS'),
  ARTIFACT_ALGORITHM_NOT_ALLOWED: spec('verification-failed', 401, 'the artifact is signed with an algorithm outside the allowlist'),
  ARTIFACT_EXPIRED: spec('verification-failed', 401, 'the artifact has expired'),
  ARTIFACT_NOT_YET_VALID: spec('verification-failed', 401, 'the artifact was issued in the future'),
  ARTIFACT_AUDIENCE_MISMATCH: spec('verification-failed', 401, 'the artifact is not addressed to this audience'),
  ARTIFACT_MALFORMED: spec('verification-failed', 401, 'the artifact is not a well-formed EAR JWT'),
  ARTIFACT_NOT_AFFIRMING: spec('verification-failed', 401, 'a submodule of the artifact is not in an accepted status'),
  ARTIFACT_CNF_MISMATCH: spec('verification-failed', 401, "the artifact's cnf key is not the expected key"),
  ARTIFACT_SIGNING_KEY_UNUSABLE: spec('unavailable', 503, 'the artifact signing key cannot be created, read or used'),
  ARTIFACT_KEY_UNKNOWN: spec('verification-failed', 401, 'the artifact names a kid that is not in the JWKS (unknown, or rotated out after its artifacts expired)'),
  ARTIFACT_REQUIREMENT_UNMET: spec('verification-failed', 401, "a claim the relying party requires (submodule, trust-vector claim) is absent or has another value"),
  ARTIFACT_TOO_OLD: spec('verification-failed', 401, 'the artifact was issued longer ago than the relying party accepts'),
  ARTIFACT_POP_MISSING: spec('verification-failed', 401, 'proof of possession of the cnf key is required and none was presented'),
  ARTIFACT_POP_INVALID: spec('verification-failed', 401, 'the proof of possession does not verify with the cnf key of the artifact'),

  // --- evidence, appraisal and the verifier service (src/evidence, src/appraisal, src/verifier)
  EVIDENCE_MALFORMED: spec('malformed', 400, 'the evidence envelope does not match the evidence format'),
  EVIDENCE_UNKNOWN_FIELD: spec('malformed', 400, 'the evidence carries a field this verifier does not know'),
  EVIDENCE_VERSION_UNSUPPORTED: spec('malformed', 400, 'the evidence format version is not supported'),
  EVIDENCE_KIND_UNSUPPORTED: spec('malformed', 400, 'the evidence carries a kind of evidence this verifier cannot appraise yet'),
  EVIDENCE_BOUND_KEY_INVALID: spec('verification-failed', 422, 'the bound public key is not a supported SubjectPublicKeyInfo'),
  APPRAISAL_NODE_UNKNOWN: spec('verification-failed', 404, 'the node is not enrolled'),
  APPRAISAL_NODE_MISMATCH: spec('verification-failed', 422, 'the evidence names another node than the challenge'),
  APPRAISAL_INTERNAL_ERROR: spec('unavailable', 500, 'the appraisal could not be completed; nothing was authorized'),
  TPM_COUNTER_ROLLBACK: spec('verification-failed', 422, "the quote's reset, restart or clock counters went backwards since the node's last quote"),
  POLICY_NOT_ASSIGNED: spec('policy-failed', 403, "no policy is assigned to the node's group"),
  ENROLL_EK_UNTRUSTED: spec('verification-failed', 422, 'the EK certificate does not chain to a trusted TPM CA, or does not match the EK'),
  ENROLL_EK_CERT_MISSING: spec('verification-failed', 422, 'the node sent no EK certificate and the verifier requires one'),
  ENROLL_UNKNOWN: spec('verification-failed', 404, 'no pending enrollment has this id (unknown, expired or already used)'),
  ENROLL_ACTIVATION_FAILED: spec('verification-failed', 422, 'the returned secret is not the credential: the AK and EK are not proven to share a TPM'),
  ENROLL_CONFLICT: spec('verification-failed', 409, 'a node with this id or this AK is already enrolled'),
  ENROLL_GROUP_UNKNOWN: spec('misuse', 400, 'the requested node group does not exist on this verifier'),
  ENROLL_SNP_NOT_ALLOWED: spec('policy-failed', 403, "the group's policy does not admit SNP-only nodes: it has no snp rules, or it has TPM rules (tpm, measuredBoot, runtime)"),
  ENROLL_TPM_NOT_ALLOWED: spec('policy-failed', 403, "the group's policy has no tpm rules: a TPM node cannot enroll into it"),
  ENROLL_NODE_KEY_INVALID: spec('malformed', 400, 'the node key is not a DER SubjectPublicKeyInfo of an ECDSA P-256 key'),
  APPRAISAL_NODE_KIND_MISMATCH: spec('verification-failed', 422, "the evidence is not of the node's kind: TPM evidence from an SNP-only node, or SNP-only evidence from a TPM node"),
  EVIDENCE_BOUND_KEY_NOT_NODE_KEY: spec('verification-failed', 422, "the bound key of an SNP-only node's evidence is not the node key it enrolled"),
  POLICY_TPM_NOT_CONFIGURED: spec('policy-failed', 403, 'the node attests with a TPM and its policy has no tpm rules'),
  POLICY_TPM_RULES_FOR_SNP_NODE: spec('policy-failed', 403, 'the policy has TPM rules (tpm, measuredBoot or runtime) and the node is an SNP-only node without a TPM: nothing is allowed by accident'),
  REQUEST_MALFORMED: spec('malformed', 400, 'the request does not match the route schema'),
  REQUEST_TOO_LARGE: spec('malformed', 413, 'the request body exceeds the size limit'),
  REQUEST_UNSUPPORTED_MEDIA_TYPE: spec('malformed', 415, 'the request body is neither application/cbor nor application/json'),
  RATE_LIMITED: spec('misuse', 429, 'too many requests from this client; retry later'),
  NOT_FOUND: spec('misuse', 404, 'no such route'),
  VERIFIER_UNREACHABLE: spec('unavailable', 503, 'the verifier could not be reached or answered with a server error'),
  AGENT_LOG_UNREADABLE: spec('unavailable', 503, 'a log the agent is configured to send exists but cannot be read'),

  // --- verifier admin API: principals, roles, node revocation (src/verifier/auth, src/verifier/nodes)
  AUTH_UNAUTHENTICATED: spec('verification-failed', 401, 'the request carries no bearer token, or one that is not in the verifier tokens file'),
  AUTH_ROLE_FORBIDDEN: spec('policy-failed', 403, "the token's role may not call this route"),
  AUTH_TENANT_FORBIDDEN: spec('policy-failed', 403, "the token is scoped to another tenant (or resources) than the node's group"),
  AUTH_TOKENS_FILE_INVALID: spec('malformed', 400, 'the verifier tokens file is not a version 1 tokens document (id, role, tenant, resources, sha256 per token)'),
  APPRAISAL_NODE_REVOKED: spec('policy-failed', 403, 'an operator revoked the node: no challenge and no affirming decision until an operator re-admits it'),
  NODE_ALREADY_REVOKED: spec('misuse', 409, 'the node is already revoked'),
  NODE_NOT_REVOKED: spec('misuse', 409, 'the node is not revoked, so there is nothing to re-admit'),

  // --- key broker: secrets at rest and release (src/secrets) ----------------------------------
  SECRETS_KEY_UNUSABLE: spec('unavailable', 503, 'the secrets master key is not configured, or its file is unreadable, not 32 bytes, or readable by others than its owner'),
  SECRET_DECRYPT_FAILED: spec('unavailable', 503, 'a stored secret does not decrypt under the master key (a wrong master key, or a damaged row)'),
  SECRET_POLICY_INVALID: spec('malformed', 400, 'a release policy does not match the release policy schema'),
  SECRET_UNKNOWN: spec('verification-failed', 404, 'no secret with this id is stored (or the token does not reach it)'),
  RELEASE_SECRET_UNKNOWN: spec('verification-failed', 404, 'release refused: no secret with this id is stored'),
  RELEASE_ARTIFACT_INVALID: spec('verification-failed', 401, 'release refused: the artifact is not a valid, unexpired artifact of this verifier'),
  RELEASE_POP_INVALID: spec('verification-failed', 401, "release refused: the signature over the release challenge does not verify with the artifact's cnf key"),
  RELEASE_NODE_UNKNOWN: spec('verification-failed', 403, "release refused: the artifact's node is not enrolled"),
  RELEASE_NODE_REVOKED: spec('policy-failed', 403, 'release refused: an operator revoked the node'),
  RELEASE_NODE_STALE: spec('policy-failed', 403, 'release refused: the node is past its re-attestation deadline'),
  RELEASE_NODE_UNTRUSTED: spec('policy-failed', 403, "release refused: the node's last appraisal did not affirm it"),
  RELEASE_ARTIFACT_SUPERSEDED: spec('policy-failed', 403, "release refused: the artifact is not from the node's last affirming appraisal"),
  RELEASE_GROUP_NOT_ALLOWED: spec('policy-failed', 403, "release refused: the node's group is not one the release policy allows"),
  RELEASE_EVIDENCE_MISSING: spec('policy-failed', 403, 'release refused: an evidence kind the release policy requires was not appraised'),
  RELEASE_CLAIM_UNMET: spec('policy-failed', 403, 'release refused: a trust-vector claim the release policy requires is absent or lower'),
  RELEASE_POLICY_NOT_ALLOWED: spec('policy-failed', 403, "release refused: the artifact's appraisal policy is not one the release policy allows"),
  RELEASE_CNF_UNSUPPORTED: spec('policy-failed', 403, "release refused: the artifact's cnf key is not a P-256 key, so HPKE cannot encrypt to it"),
  RELEASE_HPKE_INVALID: spec('verification-failed', 422, 'the released secret does not open: malformed HPKE encapsulation or ciphertext, or another key, info or aad'),
  RELEASE_TPM_BINDING_UNAVAILABLE: spec('policy-failed', 403, 'release refused: a TPM-bound release was required or asked for, but the node has no enrolled TPM (an SNP-only node)'),
  RELEASE_TPM_UNWRAP_FAILED: spec('verification-failed', 422, 'the TPM-bound secret does not open: this TPM could not activate the credential, or the ciphertext is not for its key'),
  // --- job admission (src/verifier/admission.ts) --------------------------------------------
  ADMISSION_RESOURCE_UNKNOWN: spec('policy-failed', 403, 'admission refused: the resource is not one the verifier configuration names'),
  ADMISSION_ACTION_NOT_ALLOWED: spec('policy-failed', 403, "admission refused: the action is not one the resource's rules allow"),
  ADMISSION_GROUP_NOT_ALLOWED: spec('policy-failed', 403, "admission refused: the node's group is not one the resource's rules allow"),
  ADMISSION_NODE_UNKNOWN: spec('policy-failed', 403, 'admission refused: the node is not enrolled'),
  ADMISSION_NODE_REVOKED: spec('policy-failed', 403, 'admission refused: an operator revoked the node'),
  ADMISSION_NODE_STALE: spec('policy-failed', 403, 'admission refused: the node is past its re-attestation deadline'),
  ADMISSION_NODE_UNTRUSTED: spec('policy-failed', 403, 'admission refused: the node has not attested (or not since it was re-admitted)'),
  ADMISSION_APPRAISAL_REFUSED: spec('policy-failed', 403, "admission refused: the node's latest appraisal did not affirm it"),
  ADMISSION_APPRAISAL_TOO_OLD: spec('policy-failed', 403, "admission refused: the node's latest appraisal is older than the resource's maxAgeSeconds"),
  ADMISSION_SUBMOD_MISSING: spec('policy-failed', 403, "admission refused: a device (submodule) the resource requires was not appraised"),
  ADMISSION_CLAIM_UNMET: spec('policy-failed', 403, "admission refused: a trust-vector claim the resource requires is absent or lower"),
  ADMISSION_CONFIG_INVALID: spec('misuse', 400, 'the admission configuration is not valid (resources with groups, actions, maxAgeSeconds; optional requireSubmods, trustVector)'),
  HEARTBEAT_MISSING: spec('unavailable', 503, 'the verifier has recorded no heartbeat: relying parties must not treat its nodes as attested'),

  // --- node event webhooks (src/verifier/webhooks.ts) ------------------------------------------
  WEBHOOK_SIGNATURE_INVALID: spec('verification-failed', 401, 'a webhook-id, webhook-timestamp or webhook-signature header is missing or malformed, or no v1 signature of webhook-signature is the HMAC-SHA256 of id.timestamp.body under the secret'),
  WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE: spec('verification-failed', 401, 'the webhook is signed, but its webhook-timestamp is further from now than the tolerance allows: a replay, or a clock out of step'),
  WEBHOOK_DELIVERY_FAILED: spec('unavailable', 503, 'a webhook receiver could not be reached, did not answer in time, or answered with a status other than 2xx'),

  // --- IMA (src/eventlog/ima) ---------------------------------------------------------------
  IMA_TEMPLATE_UNSUPPORTED: spec('malformed', 400, 'an IMA entry uses a template vouch does not decode (ima, ima-ng, ima-sig, ima-buf, ima-modsig)'),
  IMA_TEMPLATE_HASH_MISMATCH: spec('verification-failed', 422, "an IMA entry's template hash is not the digest of its template data"),
  IMA_PCR_UNSUPPORTED: spec('verification-failed', 422, 'an IMA entry extends a PCR other than 10, which vouch does not replay'),
  IMA_STATE_MISMATCH: spec('verification-failed', 422, 'the IMA entries do not continue the running state (entry index or PCR banks differ)'),
  IMA_PCR10_MISMATCH: spec('verification-failed', 422, 'the PCR 10 replayed from the IMA list is not the quoted PCR 10'),
  IMA_BOOT_AGGREGATE_MISSING: spec('verification-failed', 422, 'the IMA list does not start with boot_aggregate, or the quote lacks PCRs 0-9 of its bank'),
  IMA_BOOT_AGGREGATE_MISMATCH: spec('verification-failed', 422, 'boot_aggregate is not the digest of PCRs 0-7 (or 0-9) of the same quote'),
  IMA_SIGNATURE_MALFORMED: spec('malformed', 400, 'an IMA file signature is not a supported v2 signature (type 3, version 2) over the measured digest'),
  IMA_SIGNATURE_INVALID: spec('verification-failed', 422, 'an IMA file signature does not verify with the trusted key of its key id'),
  IMA_SIGNATURE_UNTRUSTED_KEY: spec('policy-failed', 403, 'an IMA file signature names a key id that is not among the trusted keys'),
  IMA_SIGNATURE_MISSING: spec('policy-failed', 403, 'the runtime policy requires a file signature and the IMA entry carries none'),
  IMA_PATH_NOT_ALLOWED: spec('policy-failed', 403, 'a measured path is neither allowed by the runtime policy nor excluded'),
  IMA_DIGEST_NOT_ALLOWED: spec('policy-failed', 403, "a measured file's digest is not one the runtime policy allows for its path"),
  IMA_MEASUREMENT_VIOLATION: spec('policy-failed', 403, 'the IMA list records a measurement violation (open writers or time of measure/time of use)'),

  // --- event logs (src/eventlog) -------------------------------------------------------------
  EVENTLOG_REPLAY_MISMATCH: spec('verification-failed', 422, 'the event log does not replay to the quoted PCR value'),
  EVENTLOG_PCR_NOT_COVERED: spec('verification-failed', 422, 'a PCR or bank relied on is not extended by any event of the log, or an event lacks its digest for the bank'),
  EVENTLOG_NOT_REPLAYED: spec('misuse', 400, 'boot claims were asked of an event log whose replay did not match a quote'),

  // --- SEV-SNP (src/snp) -------------------------------------------------------------------
  SNP_CERT_MALFORMED: spec('malformed', 400, 'an AMD VCEK, VLEK, ASK, ASVK or ARK certificate or CRL does not parse, or lacks a required AMD extension'),
  SNP_SIGNATURE_ALGO_UNSUPPORTED: spec('verification-failed', 422, 'the report field SIGNATURE_ALGO is not ECDSA P-384 with SHA-384'),
  SNP_SIGNATURE_INVALID: spec('verification-failed', 422, 'the report signature does not verify with the VCEK or VLEK'),
  SNP_SIGNING_KEY_MISMATCH: spec('verification-failed', 422, 'the report field SIGNING_KEY names another key type than the certificate supplied (VCEK or VLEK)'),
  SNP_CHAIN_SIGNATURE_INVALID: spec('verification-failed', 422, 'a certificate of the AMD chain is not signed by its issuer (RSA-PSS SHA-384)'),
  SNP_CHAIN_EXPIRED: spec('verification-failed', 422, 'a certificate of the AMD chain is outside its validity period at the verification time'),
  SNP_CHAIN_ISSUER_MISMATCH: spec('verification-failed', 422, 'a certificate of the AMD chain does not name the next one as its issuer, or plays the wrong role'),
  SNP_ARK_NOT_PINNED: spec('verification-failed', 422, 'the ARK is not one of the pinned AMD root keys (SHA-256 fingerprint)'),
  SNP_VCEK_HWID_MISMATCH: spec('verification-failed', 422, "the VCEK's hwID extension is not the report field CHIP_ID"),
  SNP_CHIP_ID_MASKED: spec('verification-failed', 422, 'the report field CHIP_ID is masked (all zero) and masked chip ids are not allowed'),
  SNP_VCEK_TCB_MISMATCH: spec('verification-failed', 422, "a TCB component of the VCEK's extensions is not the one in the report field REPORTED_TCB"),
  SNP_VCEK_PRODUCT_MISMATCH: spec('verification-failed', 422, "the VCEK's product name is not the ARK's product, or not the report's CPUID product"),
  SNP_CRL_MISSING: spec('verification-failed', 422, 'no AMD CRL was supplied to check revocation, and a missing CRL was not allowed'),
  SNP_CRL_INVALID: spec('verification-failed', 422, 'the AMD CRL is not signed by the ARK, or is outside its validity period'),
  SNP_REVOKED: spec('verification-failed', 422, 'the ASK or ASVK is revoked by the AMD CRL'),
  SNP_KDS_RATE_LIMITED: spec('unavailable', 503, 'AMD KDS answered 429: no request is made before its Retry-After time'),
  SNP_KDS_UNAVAILABLE: spec('unavailable', 503, 'AMD KDS could not be reached, answered with an error status, or the collateral is not cached offline'),
  SNP_KDS_MALFORMED: spec('unavailable', 503, 'collateral from AMD KDS or an offline bundle does not parse as the certificate, chain or CRL it should be'),
  SNP_COLLATERAL_MISLABELLED: spec('malformed', 400, 'a VCEK, certificate chain or CRL does not match the product, chip id or TCB it was requested or labelled for'),
  SNP_TSM_UNAVAILABLE: spec('unavailable', 503, 'configfs-tsm reports cannot be obtained (no /sys/kernel/config/tsm/report: kernel too old, not a confidential guest, configfs not mounted, or no permission)'),
  SNP_TSM_RACE: spec('unavailable', 503, 'another writer changed the configfs-tsm report entry (generation moved) on every attempt'),
  TDX_TSM_PROVIDER: spec('unavailable', 503, 'the configfs-tsm provider is not tdx_guest: this is not a TDX guest'),
  TDX_CCEL_UNAVAILABLE: spec('unavailable', 503, 'the CCEL event log (ACPI table and log area) cannot be read, or only one of the two exists'),
  SNP_GUEST_DEVICE_UNAVAILABLE: spec('unavailable', 503, '/dev/sev-guest cannot be used for SNP_GET_EXT_REPORT (no permission, not the sev-guest device, its VMPCK disabled, the kernel refused the request, or libc could not be loaded); the errno is named'),
  SNP_GUEST_FIRMWARE_ERROR: spec('unavailable', 503, 'the AMD secure processor failed the SNP guest request, or MSG_REPORT_RSP.STATUS is not success (the firmware error code is named)'),
  SNP_GUEST_VMM_ERROR: spec('unavailable', 503, 'the hypervisor failed the SNP guest request (VMM error in EXITINFO2: busy, a certificate buffer still too small after one retry, or another code, named)'),
  SNP_REPORT_SOURCE_UNAVAILABLE: spec('unavailable', 503, 'no SEV-SNP report interface: neither configfs-tsm (/sys/kernel/config/tsm/report) nor /dev/sev-guest exists (not an SEV-SNP guest, or the sev-guest driver is not loaded)'),
  SNP_REPORT_DATA_MISMATCH: spec('verification-failed', 422, 'the report field REPORT_DATA is not the binding of the challenge nonce and the bound key'),
  POLICY_SNP_DEBUG: spec('policy-failed', 403, 'the guest policy allows debugging (POLICY.DEBUG) and the policy forbids it'),
  POLICY_SNP_MIGRATION_AGENT: spec('policy-failed', 403, 'the guest policy allows a migration agent (POLICY.MIGRATE_MA) and the policy forbids it'),
  POLICY_SNP_SMT: spec('policy-failed', 403, 'the guest policy allows SMT (POLICY.SMT) and the policy forbids it'),
  POLICY_SNP_VMPL: spec('policy-failed', 403, 'the report field VMPL is not one the policy allows'),
  POLICY_SNP_MEASUREMENT: spec('policy-failed', 403, 'the report field MEASUREMENT is not one the policy allows'),
  POLICY_SNP_HOST_DATA: spec('policy-failed', 403, 'the report field HOST_DATA is not one the policy allows'),
  POLICY_SNP_ID_KEY_DIGEST: spec('policy-failed', 403, 'the report field ID_KEY_DIGEST is not one the policy allows'),
  POLICY_SNP_AUTHOR_KEY_DIGEST: spec('policy-failed', 403, 'the report field AUTHOR_KEY_DIGEST is not one the policy allows'),
  POLICY_SNP_FAMILY_ID: spec('policy-failed', 403, 'the report field FAMILY_ID is not one the policy allows'),
  POLICY_SNP_IMAGE_ID: spec('policy-failed', 403, 'the report field IMAGE_ID is not one the policy allows'),
  POLICY_SNP_TCB: spec('policy-failed', 403, 'a component of the report field REPORTED_TCB is below the policy minimum, or its product layout is unknown'),
  POLICY_SNP_GUEST_SVN: spec('policy-failed', 403, 'the report field GUEST_SVN is below the policy minimum'),
  POLICY_SNP_PLATFORM_INFO: spec('policy-failed', 403, 'a flag of the report field PLATFORM_INFO is set where the policy forbids it, or clear where it requires it'),
  SNP_CRL_TOO_OLD: spec('verification-failed', 422, "the AMD CRL's thisUpdate is older than the maximum CRL age at the verification time"),
  SNP_REPORT_DATA_REQUIRED: spec('misuse', 400, 'the SEV-SNP rules check REPORT_DATA and no expected REPORT_DATA was given (vouch verify snp --report-data)'),
  SNP_VLEK_MISSING: spec('verification-failed', 422, 'the report is signed by a VLEK (SIGNING_KEY) and the certificate table carries none: AMD KDS issues VLEKs to cloud providers, it cannot be asked for one by chip id'),
  SNP_PRODUCT_UNKNOWN: spec('verification-failed', 422, 'the AMD product of the report cannot be told (no CPUID in a version 2 report, no VCEK or pinned ARK in the certificate table) and none of the configured products has a VCEK for its CHIP_ID and REPORTED_TCB'),
  SNP_KEY_PROOF_INVALID: spec('verification-failed', 422, 'the key proof is not an ECDSA P-256 signature (IEEE P1363) by the node key over the nonce and the SHA-256 of the report'),

  // --- Intel TDX: quote and CCEL decoding, RTMR replay (src/tdx/abi, src/tdx/ccel) ----------
  TDX_QUOTE_UNSUPPORTED: spec('malformed', 400, 'the quote is a DCAP format vouch does not decode (the version, TEE type, body type or certification data type is named): vouch decodes TDX quotes v4 and v5 and SGX quotes v3 that carry a PCK certificate chain'),
  TDX_QUOTE_TRAILING_DATA: spec('malformed', 400, 'bytes other than zero follow the quote signature data: no signature covers them, so they are refused unless the caller allows trailing data explicitly'),
  TDX_CCEL_CHECKSUM_INVALID: spec('malformed', 400, 'the bytes of the ACPI CCEL table do not sum to zero modulo 256 (field Checksum)'),
  TDX_CCEL_LOG_AREA_INVALID: spec('malformed', 400, 'the CCEL log area is not LAML bytes long, or a byte after its last event is not 0xFF padding'),
  TDX_RTMR_MISMATCH: spec('verification-failed', 422, 'an RTMR replayed from the CCEL event log is not the RTMR of the quote'),

  // --- Intel TDX: PCK chain, PCS collateral, TCB status (src/tdx/pck, src/tdx/collateral, src/tdx/tcb)
  TDX_PCK_CERT_MALFORMED: spec('malformed', 400, 'a PCK, PCK CA, TCB Signing or Intel SGX Root CA certificate does not parse, or the PCK SGX extension (1.2.840.113741.1.13.1) is not well-formed'),
  TDX_CHAIN_ISSUER_MISMATCH: spec('verification-failed', 422, 'a certificate of an Intel chain does not name the next one as its issuer, plays the wrong role (subject CN, CA constraints, key usage), has a critical extension vouch does not process, or the chain has the wrong length'),
  TDX_CHAIN_SIGNATURE_INVALID: spec('verification-failed', 422, 'a certificate of an Intel chain is not signed by its issuer with ECDSA P-256 and SHA-256, or does not carry a P-256 key'),
  TDX_CHAIN_EXPIRED: spec('verification-failed', 422, 'a certificate of an Intel chain is outside its validity period at the verification time'),
  TDX_ROOT_NOT_PINNED: spec('verification-failed', 422, 'the root of an Intel chain is not a pinned Intel SGX Root CA (SHA-256 fingerprint)'),
  TDX_PCK_REVOKED: spec('verification-failed', 422, 'the PCK certificate is revoked by the PCK CRL'),
  TDX_CA_REVOKED: spec('verification-failed', 422, 'an Intel intermediate (PCK Platform or Processor CA, TCB Signing certificate) is revoked by the Intel SGX Root CA CRL'),
  TDX_CRL_MISSING: spec('verification-failed', 422, 'the PCK CRL or the Intel SGX Root CA CRL was not supplied, and a missing CRL was not allowed'),
  TDX_CRL_MALFORMED: spec('malformed', 400, 'a PCK CRL or Intel SGX Root CA CRL does not parse as a DER X.509 CRL'),
  TDX_CRL_INVALID: spec('verification-failed', 422, 'a PCK CRL or Intel SGX Root CA CRL is not signed by its Intel issuer (ECDSA P-256, SHA-256), or names another issuer'),
  TDX_CRL_STALE: spec('verification-failed', 422, 'a PCK CRL or Intel SGX Root CA CRL is outside its thisUpdate..nextUpdate window at the verification time, or has no nextUpdate'),
  TDX_COLLATERAL_MALFORMED: spec('malformed', 400, 'a TCB Info, QE Identity or collateral bundle does not parse as the Intel PCS format it claims (JSON, fields, hex, dates, signature encoding)'),
  TDX_TCB_INFO_MISSING: spec('verification-failed', 422, 'no TDX TCB Info (or no TCB Info issuer chain) was supplied'),
  TDX_TCB_INFO_SIGNATURE_INVALID: spec('verification-failed', 422, 'the TCB Info signature does not verify with the Intel SGX TCB Signing key over the exact tcbInfo text'),
  TDX_TCB_INFO_EXPIRED: spec('verification-failed', 422, 'the TCB Info is outside its issueDate..nextUpdate window at the verification time'),
  TDX_TCB_INFO_MISMATCH: spec('verification-failed', 422, 'the TCB Info is for another FMSPC or PCE ID than the PCK certificate'),
  TDX_QE_IDENTITY_MISSING: spec('verification-failed', 422, 'no TD QE Identity (or no QE Identity issuer chain) was supplied'),
  TDX_QE_IDENTITY_SIGNATURE_INVALID: spec('verification-failed', 422, 'the QE Identity signature does not verify with the Intel SGX TCB Signing key over the exact enclaveIdentity text'),
  TDX_QE_IDENTITY_EXPIRED: spec('verification-failed', 422, 'the QE Identity is outside its issueDate..nextUpdate window at the verification time'),
  TDX_QE_IDENTITY_MISMATCH: spec('verification-failed', 422, 'the QE report does not match the TD QE Identity (MRSIGNER, ISVPRODID, masked MISCSELECT or masked ATTRIBUTES)'),
  TDX_TCB_LEVEL_NOT_FOUND: spec('verification-failed', 422, 'no TCB level of the TCB Info, TDX module identity or QE Identity is at or below the platform (TCB not supported)'),
  TDX_MODULE_MISMATCH: spec('verification-failed', 422, 'MRSIGNERSEAM or masked SEAMATTRIBUTES is not the TCB Info TDX module identity, or the TCB Info has no identity for the module version TEE_TCB_SVN[1]'),
  TDX_PCS_RATE_LIMITED: spec('unavailable', 503, 'Intel PCS answered 429: no request is made before its Retry-After time'),
  TDX_PCS_UNAVAILABLE: spec('unavailable', 503, 'Intel PCS could not be reached or answered with an error status, or the collateral is not cached (or only an expired copy is) while offline'),
  TDX_PCS_MALFORMED: spec('unavailable', 503, 'collateral from Intel PCS, the cache or an offline bundle does not parse as the TCB Info, QE Identity, CRL or issuer chain it should be'),
  TDX_COLLATERAL_MISLABELLED: spec('malformed', 400, 'a cached or bundled TCB Info, QE Identity or CRL is not the one its label names (FMSPC, CA type, identity id)'),
  TDX_COLLATERAL_ROLLBACK: spec('unavailable', 503, 'collateral older than the cached copy (earlier issueDate or thisUpdate, or lower tcbEvaluationDataNumber) was refused'),
  TDX_COLLATERAL_NOT_CONFIGURED: spec('unavailable', 503, 'the verifier has no TDX collateral source (a collateral directory or bundle, or Intel PCS), so it cannot verify TDX quotes'),

  // --- Intel TDX: quote verification and appraisal (src/tdx/verify, src/tdx/appraise) -------
  TDX_QUOTE_SIGNATURE_INVALID: spec('verification-failed', 422, 'the quote signature (ECDSA P-256) does not verify with the attestation key over the exact header and TD report bytes, or the attestation key is not a P-256 point'),
  TDX_QE_REPORT_SIGNATURE_INVALID: spec('verification-failed', 422, 'the QE report signature (ECDSA P-256) does not verify with the PCK certificate key over the exact QE report bytes'),
  TDX_QE_REPORT_DATA_MISMATCH: spec('verification-failed', 422, 'the QE report field REPORTDATA is not SHA-256(attestation key || QE authentication data) followed by 32 zero bytes: the attestation key is not the one the quoting enclave certified'),
  TDX_QE_VENDOR_UNKNOWN: spec('verification-failed', 422, "the quote header QE_VENDOR_ID is not Intel's quoting enclave vendor id"),
  TDX_REPORT_DATA_MISMATCH: spec('verification-failed', 422, 'the TD report field REPORTDATA is not the binding of the challenge nonce and the bound key (or not the expected value)'),
  TDX_REPORT_DATA_REQUIRED: spec('misuse', 400, 'the TDX rules check REPORTDATA and no expected REPORTDATA was given (vouch verify tdx --report-data)'),
  POLICY_TDX_TCB_STATUS: spec('policy-failed', 403, 'the TCB status of the platform (TCB level, TDX module and QE converged) is not one the policy accepts, or no status could be determined'),
  POLICY_TDX_ADVISORY: spec('policy-failed', 403, 'the TCB status names an Intel security advisory the policy does not accept'),
  POLICY_TDX_MRTD: spec('policy-failed', 403, 'the TD report field MRTD is not one the policy allows'),
  POLICY_TDX_RTMR: spec('policy-failed', 403, 'a TD report field RTMR0-3 is not one the policy allows'),
  POLICY_TDX_MRSEAM: spec('policy-failed', 403, 'the TD report field MRSEAM is not one the policy allows'),
  POLICY_TDX_MRCONFIGID: spec('policy-failed', 403, 'the TD report field MRCONFIGID is not one the policy allows'),
  POLICY_TDX_MROWNER: spec('policy-failed', 403, 'the TD report field MROWNER is not one the policy allows'),
  POLICY_TDX_MROWNERCONFIG: spec('policy-failed', 403, 'the TD report field MROWNERCONFIG is not one the policy allows'),
  POLICY_TDX_DEBUG: spec('policy-failed', 403, 'the TD report field TDATTRIBUTES has DEBUG (bit 0) set and the policy forbids a debug TD'),
  POLICY_TDX_ATTRIBUTES: spec('policy-failed', 403, 'a bit of the TD report field TDATTRIBUTES is set where the policy forbids it, or clear where it requires it'),
  POLICY_TDX_XFAM: spec('policy-failed', 403, 'the TD report field XFAM is not one the policy allows'),
  POLICY_TDX_NOT_CONFIGURED: spec('policy-failed', 403, 'the evidence carries a TDX quote and the policy has no TDX rules to appraise it'),

  // --- unavailable: TPM and TSS (native/, swtpm/) --------------------------------------------
  TSS_LIBRARY_UNAVAILABLE: spec('unavailable', 503, 'the tpm2-tss libraries could not be loaded'),
  TSS_TCTI_FAILED: spec('unavailable', 503, 'the TPM could not be reached through the configured TCTI'),
  TSS_COMMAND_FAILED: spec('unavailable', 503, 'a TPM command failed (the TSS layer and response code are named)'),
  TPM_NV_INDEX_ABSENT: spec('unavailable', 404, 'the TPM has no NV index at the requested handle'),
  SWTPM_FAILED: spec('unavailable', 503, 'a software TPM could not be manufactured, started or stopped'),
} as const satisfies Record<string, ErrorSpec>;

/** Every registered error code. */
export type ErrorCode = keyof typeof ERRORS;

/** Structured detail carried by an error and by an appraisal failure. */
export interface ErrorDetail {
  /** Spec name of the field concerned, as a path ("TPMS_ATTEST.extraData"). */
  readonly field?: string;
  /** Byte offset of the field in the input, where the input is binary. */
  readonly offset?: number;
  /** What was required, rendered as text (hex for bytes). */
  readonly expected?: string;
  /** What was found, rendered as text (hex for bytes). */
  readonly actual?: string;
}

/** Options accepted by every {@link VouchError} constructor. */
export interface VouchErrorOptions extends ErrorDetail {
  /** The underlying error, if any. Never put secrets in it. */
  readonly cause?: unknown;
}

/** Base class of every error vouch throws. `code` is stable API. */
export class VouchError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly status: number;
  readonly field?: string;
  readonly offset?: number;
  readonly expected?: string;
  readonly actual?: string;

  constructor(code: ErrorCode, message?: string, options: VouchErrorOptions = {}) {
    const row = ERRORS[code];
    super(message ?? row.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.category = row.category;
    this.status = row.status;
    if (options.field !== undefined) this.field = options.field;
    if (options.offset !== undefined) this.offset = options.offset;
    if (options.expected !== undefined) this.expected = options.expected;
    if (options.actual !== undefined) this.actual = options.actual;
  }

  /** A plain, serialisable view (no stack, no cause). */
  toJSON(): { code: ErrorCode; category: ErrorCategory; message: string } & ErrorDetail {
    return {
      code: this.code,
      category: this.category,
      message: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
      ...(this.offset !== undefined ? { offset: this.offset } : {}),
      ...(this.expected !== undefined ? { expected: this.expected } : {}),
      ...(this.actual !== undefined ? { actual: this.actual } : {}),
    };
  }
}

/** The caller used vouch wrongly. */
export class MisuseError extends VouchError {}
/** Input does not parse as the structure it claims to be. */
export class ParseError extends VouchError {}
/** Well-formed evidence failed a cryptographic or binding check. */
export class VerificationError extends VouchError {}
/** Verified evidence that the policy does not accept. */
export class PolicyError extends VouchError {}
/** A dependency could not be used; never turned into an allow. */
export class UnavailableError extends VouchError {}

/** The error class for each category. */
export const CATEGORY_CLASS = {
  misuse: MisuseError,
  malformed: ParseError,
  'verification-failed': VerificationError,
  'policy-failed': PolicyError,
  unavailable: UnavailableError,
} as const satisfies Record<ErrorCategory, typeof VouchError>;

/** Builds the error of the right class for `code`. */
export function vouchError(code: ErrorCode, message?: string, options?: VouchErrorOptions): VouchError {
  const Cls = CATEGORY_CLASS[ERRORS[code].category];
  return new Cls(code, message, options);
}

/** True when `e` is a {@link VouchError} (of any class). */
export function isVouchError(e: unknown): e is VouchError {
  return e instanceof VouchError;
}
