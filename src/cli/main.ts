/**
 * The `vouch` command. `run(argv, io)` is the whole CLI and returns the exit status, so tests run
 * it in-process; bin/vouch.js only wires it to the process.
 *
 * Exit status: 0 verified / success, 1 rejected (evidence failed a check), 2 misuse (missing file,
 * bad flag), 3 unavailable (a TPM or library could not be used).
 */
import { Command, CommanderError } from 'commander';
import { isVouchError, MisuseError, type VouchError } from '../lib/errors.js';
import { verifyTpmQuoteCommand, type VerifyTpmQuoteOptions } from './verify-tpm-quote.js';
import { tpmInfoCommand } from './tpm-info.js';
import { verifierStartCommand, withLedgerOptions, withSnpKdsOptions, withTdxPcsOptions, type VerifierStartOptions } from './verifier.js';
import { agentCommand, agentSecretCommand, type AgentOptions, type AgentSecretOptions } from './agent.js';
import { registerAdminCommands } from './admin.js';
import { artifactVerifyCommand, rotateKeyCommand, type ArtifactVerifyOptions, type RotateKeyOptions } from './artifact.js';
import { eventlogReplayCommand, eventlogShowCommand } from './eventlog.js';
import { imaReplayCommand, imaShowCommand } from './ima.js';
import { policyLearnCommand, type PolicyLearnOptions } from './policy-learn.js';
import { snpShowCommand, verifySnpCommand, type VerifySnpOptions } from './snp.js';
import { tdxShowCommand, type TdxShowOptions } from './tdx-show.js';
import { tdxTcbRecoveryCommand, type TdxTcbRecoveryOptions } from './tdx-recovery.js';
import { verifyTdxCommand, type VerifyTdxOptions } from './verify-tdx.js';
import { ccelReplayCommand, type CcelReplayOptions } from './ccel.js';
import { ledgerCheckProofCommand, ledgerExportCommand, ledgerProveCommand, ledgerVerifyCommand, replayCommand, type LedgerSourceOptions } from './ledger.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Where the CLI writes; injectable for tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const EXIT = { ok: 0, rejected: 1, misuse: 2, unavailable: 3 } as const;

/** Exit status for an error that ended a command. */
export function exitFor(e: VouchError): number {
  if (e.category === 'misuse') return EXIT.misuse;
  if (e.category === 'unavailable') return EXIT.unavailable;
  return EXIT.rejected;
}

/** Runs the CLI with `argv` (without the node and script names). */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let status: number = EXIT.ok;
  const program = new Command()
    .name('vouch')
    .description('Hardware-attested runtime verifier: TPM 2.0 evidence in, fail-closed decisions out.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  const verify = program.command('verify').description('verify evidence offline');
  verify
    .command('tpm-quote')
    .description('verify a TPM2_Quote made by tpm2_quote or by vouch')
    .requiredOption('--ak <file>', 'attestation key: TPM2B_PUBLIC, TPMT_PUBLIC or PEM')
    .requiredOption('--message <file>', 'the quoted TPMS_ATTEST bytes (tpm2_quote -m)')
    .requiredOption('--signature <file>', 'the TPMT_SIGNATURE bytes (tpm2_quote -s)')
    .option('--pcrs <file>', 'PCR values (tpm2_quote -o), or a JSON map bank → index → hex')
    .option('--pcrs-format <format>', 'serialized | values | json | auto (JSON if the file starts with "{", else serialized)', 'auto')
    .option('--nonce <hex>', 'the qualifying data the quote must carry (tpm2_quote -q)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: VerifyTpmQuoteOptions) => {
      status = await verifyTpmQuoteCommand(opts, io);
    });

  verify
    .command('snp')
    .description('verify an AMD SEV-SNP attestation report (signature, chain, CRL, TCB) and, with --policy, appraise it')
    .requiredOption('--report <file>', 'the 1184-byte report, raw or hex, or an extended report (the report followed by its certificate table)')
    .option('--certs <path>', 'VCEK/VLEK, ASK/ASVK, ARK and CRL files, or trust directories of them (repeatable)', collect, [])
    .option('--cert-table <file>', 'the certificate table (GUID table) from SNP_GET_EXT_REPORT or configfs-tsm auxblob')
    .option('--at <time>', 'verification time (ISO 8601; default now)')
    .option('--policy <file>', "a vouch policy (YAML or JSON): appraise the report against its snp rules, which also decide the allowances")
    .option('--report-data <hex>', 'the expected REPORT_DATA (64 bytes, 128 hex digits); required with a policy that has snp rules')
    .option('--crl-max-age <seconds>', 'refuse a CRL whose thisUpdate is older than this (without --policy)')
    .option('--allow-masked-chip-id', 'accept a report whose CHIP_ID is masked (recorded; without --policy)')
    .option('--allow-missing-crl', 'accept a chain without a CRL (recorded; without --policy)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: VerifySnpOptions) => {
      status = await verifySnpCommand(opts, io);
    });
  verify
    .command('tdx')
    .description('verify an Intel TDX quote (signatures, PCK chain, CRLs, collateral, TCB status) and, with --policy, appraise it')
    .requiredOption('--quote <file>', 'the quote (raw bytes)')
    .option('--collateral <path>', 'a directory of PCS collateral files (tcb_info.json, qe_identity.json, pck_crl.der, …) or a dcap-qvl collateral.json')
    .option('--at <time>', 'verification time (ISO 8601; default now)')
    .option('--policy <file>', 'a vouch policy (YAML or JSON): appraise the quote against its tdx rules, which also decide the allowances')
    .option('--report-data <hex>', 'the expected REPORTDATA (64 bytes, 128 hex digits); required with a policy that has tdx rules')
    .option('--allow-trailing-data', 'accept bytes other than zero after the signature data (never interpreted)')
    .option('--allow-missing-crl', 'accept a missing PCK CRL or Root CA CRL (recorded; without --policy)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: VerifyTdxOptions) => {
      status = await verifyTdxCommand(opts, io);
    });

  const snp = program.command('snp').description('AMD SEV-SNP reports, offline');
  snp
    .command('show <report>')
    .description('decode every field of a report')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      status = await snpShowCommand(file, opts, io);
    });

  const tdx = program.command('tdx').description('Intel TDX quotes, offline');
  tdx
    .command('show <quote>')
    .description('decode every field of a DCAP quote (TDX v4 and v5, SGX v3), unverified')
    .option('--json', 'print as JSON')
    .option('--allow-trailing-data', 'accept bytes other than zero after the signature data (shown, never interpreted)')
    .action(async (file: string, opts: TdxShowOptions) => {
      status = await tdxShowCommand(file, opts, io);
    });
  tdx
    .command('tcb-recovery')
    .description("which TCB levels, and which nodes' last affirming TDX decisions, a next TCB Info would stop accepting (exit 1 when any)")
    .option('--next <tcb_info.json>', 'the next TCB Info (PCS body), e.g. from update=early or a TCB recovery')
    .option('--current <tcb_info.json>', 'the TCB Info in use: list the TCB levels that would stop being accepted')
    .option('--data-dir <dir>', "the verifier's data directory: its store is read read-only")
    .option('--json', 'print as JSON')
    .action(async (opts: TdxTcbRecoveryOptions) => {
      status = await tdxTcbRecoveryCommand(opts, io);
    });

  const ccel = program.command('ccel').description('TDX CCEL event logs (ACPI table and log area), offline');
  ccel
    .command('replay <table> <data>')
    .description('replay the log to RTMR0-3; with --quote, compare with the quote and print the boot claims')
    .option('--quote <file>', "a TDX quote whose RTMRs the replay is compared with (its signature is not checked here)")
    .option('--rtmr <n>', 'an RTMR (0-3) relied on with --quote (repeatable; default all four)', collect, [])
    .option('--json', 'print as JSON')
    .action(async (table: string, data: string, opts: CcelReplayOptions) => {
      status = await ccelReplayCommand(table, data, opts, io);
    });

  const tpm = program.command('tpm').description('talk to a TPM');
  tpm
    .command('info')
    .description('manufacturer, firmware, PCR banks and EK certificates of a TPM')
    .option('--tcti <config>', 'device:/dev/tpmrm0 | swtpm:host=127.0.0.1,port=2321 | mssim:…', process.env['VOUCH_TCTI'] ?? 'device:/dev/tpmrm0')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { tcti: string; json?: boolean }) => {
      status = await tpmInfoCommand(opts, io);
    });

  const verifier = program.command('verifier').description('the verifier service');
  registerAdminCommands(program, verifier, io, (n) => {
    status = n;
  });
  verifier
    .command('rotate-key')
    .description('rotate the artifact signing key; the old key stays in the JWKS until its artifacts have expired')
    .option('--data-dir <dir>', 'database and signing key', '.vouch/verifier')
    .option('--alg <alg>', 'ES256 (default: the current key\'s) or EdDSA')
    .action(async (opts: RotateKeyOptions) => {
      status = await rotateKeyCommand(opts, io);
    });
  withLedgerOptions(withTdxPcsOptions(withSnpKdsOptions(verifier
    .command('start')
    .description('run the verifier in the foreground until SIGINT/SIGTERM')
    .option('--data-dir <dir>', 'database and signing key', '.vouch/verifier')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8700')
    .option('--tpm-ca-dir <dir>', 'trusted TPM vendor CA certificates (repeatable)', collect, [])
    .option('--policy <group=file>', 'policy of a node group, YAML or JSON (repeatable)', collect, [])
    .option('--verifier-id <id>', 'this verifier in artifacts', 'vouch-verifier')
    .option('--allow-no-ek-cert', 'enroll TPMs without an EK certificate (weaker: trust on first use)')
    .option('--challenge-ttl <seconds>', 'challenge lifetime', '60')
    .option('--rate-limit <n>', 'enrollment and challenge requests per client per minute', '120')
    .option('--admission <file>', 'job admission rules, JSON: { lifetimeSeconds?, resources: { NAME: { groups, actions, maxAgeSeconds, … } } }')
    .option('--secrets-key-file <file>', 'master key of the secret store (32 bytes, mode 0600); or VOUCH_SECRETS_KEY (base64)')
    .option('--log-level <level>', 'silent | error | warn | info | debug', 'info'))))
    .action(async (opts: VerifierStartOptions) => {
      status = await verifierStartCommand(opts, io);
    });

  const agent = program.command('agent').description('the node agent (needs the TPM, or runs with --snp-only inside an SEV-SNP guest; --snp or --tdx add the TEE evidence of a confidential VM)');
  const agentOpts = (c: Command): Command =>
    c
      .requiredOption('--verifier <url>', 'verifier base URL')
      .option('--tcti <config>', 'device:/dev/tpmrm0 | swtpm:host=127.0.0.1,port=2321', process.env['VOUCH_TCTI'] ?? 'device:/dev/tpmrm0')
      .option('--state-dir <dir>', 'where the agent keeps its node id', '.vouch/agent')
      .option('--group <group>', 'node group to enroll into', 'default')
      .option('--interval <seconds>', 'attestation period', '60')
      .option('--eventlog <path>', 'UEFI event log to send', '/sys/kernel/security/tpm0/binary_bios_measurements')
      .option('--no-eventlog', 'send no event log')
      .option('--ima-log <path>', 'IMA binary measurement list to send (new entries only)', '/sys/kernel/security/ima/binary_runtime_measurements')
      .option('--no-ima-log', 'send no IMA list')
      .option('--snp', 'also send a SEV-SNP report (inside an SNP guest: configfs-tsm, or /dev/sev-guest on older kernels)')
      .option('--tdx', 'also send a TDX quote and the CCEL event log (inside a TDX trust domain: configfs-tsm, provider tdx_guest)')
      .option('--snp-only', 'a confidential VM without a vTPM: enroll and attest with SEV-SNP reports and the node key in --state-dir alone (no TPM; --tcti, logs and --snp unused)')
      .option('--json', 'print outcomes as JSON lines');
  agentOpts(agent.command('start').description('enroll once, then attest on an interval')).action(async (opts: AgentOptions) => {
    status = await agentCommand(opts, io);
  });
  agentOpts(agent.command('attest').description('enroll if needed and attest once'))
    .option('--once', 'attest once and exit (the default for this command)', true)
    .action(async (opts: AgentOptions) => {
      status = await agentCommand({ ...opts, once: true }, io);
    });

  agentOpts(agent.command('secret <id>').description('attest, then fetch secret <id> from the key broker to the bound key and decrypt it (standard output, or --out)'))
    .option('--out <file>', 'write the secret to this file (mode 0600) instead of standard output')
    .option('--tpm-bound', 'ask for a TPM-bound release: only this TPM can recover the secret')
    .action(async (id: string, opts: AgentSecretOptions) => {
      status = await agentSecretCommand(id, opts, io);
    });

  const eventlog = program.command('eventlog').description('UEFI TCG event logs (binary_bios_measurements), offline');
  eventlog
    .command('show <file>')
    .description('list the events of a log (fields are untrusted until replayed against a quote)')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      status = await eventlogShowCommand(file, opts, io);
    });
  eventlog
    .command('replay <file>')
    .description('replay a log to PCR values per bank')
    .option('--json', 'print the PCR values per bank as JSON')
    .option('--quirk <name>', 'apply a named firmware quirk (repeatable): ebs-missing', collect, [])
    .action(async (file: string, opts: { json?: boolean; quirk: string[] }) => {
      status = await eventlogReplayCommand(file, opts, io);
    });

  const ima = program.command('ima').description('Linux IMA measurement lists (ASCII or binary), offline');
  ima
    .command('show <file>')
    .description('list the entries of a measurement list')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      status = await imaShowCommand(file, opts, io);
    });
  ima
    .command('replay <file>')
    .description('replay a measurement list to PCR 10 per bank')
    .option('--json', 'print PCR 10 per bank as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      status = await imaReplayCommand(file, opts, io);
    });

  const policy = program.command('policy').description('attestation policies');
  policy
    .command('learn')
    .description('learn a reference policy from the verified evidence of a known-good host (review it before use)')
    .requiredOption('--id <id>', 'policy id')
    .requiredOption('--ak <file>', 'AK: TPM2B_PUBLIC or TPMT_PUBLIC')
    .requiredOption('--message <file>', 'the quoted TPMS_ATTEST')
    .requiredOption('--signature <file>', 'the TPMT_SIGNATURE')
    .requiredOption('--pcrs <file>', 'PCR values (tpm2_quote -o, or JSON)')
    .option('--pcrs-format <format>', 'auto | serialized | values | json', 'auto')
    .option('--nonce <hex>', 'the qualifying data the quote must carry')
    .option('--eventlog <file>', 'the UEFI event log of the same boot')
    .option('--ima <file>', 'the IMA measurement list of the same boot')
    .option('--bank <name>', 'bank to use (repeatable; default: the quote\'s banks)', collect, [])
    .option('--quirk <name>', 'firmware quirk to allow (repeatable): ebs-missing', collect, [])
    .option('--output <file>', 'write the policy here (never overwrites)')
    .action(async (opts: PolicyLearnOptions) => {
      status = await policyLearnCommand(opts, io);
    });

  const artifact = program.command('artifact').description('authorization artifacts');
  artifact
    .command('verify <token>')
    .description("verify an artifact with the verifier's JWKS")
    .requiredOption('--jwks <url|file>', 'JWKS URL (…/.well-known/jwks.json) or file')
    .option('--audience <aud>', 'who is verifying (required when the artifact names an audience)')
    .option('--json', 'print the verified claims as JSON')
    .action(async (token: string, opts: ArtifactVerifyOptions) => {
      status = await artifactVerifyCommand(token, opts, io);
    });

  const ledger = program.command('ledger').description('the lineage ledger, offline: from a data directory (read-only), PostgreSQL, or an export file');
  const source = (c: Command, withExport = true): Command => {
    c.option('--data-dir <dir>', 'the verifier data directory (SQLite, opened read-only)').option('--database-url <url>', 'a PostgreSQL ledger (postgres://…)');
    return withExport ? c.option('--from-export <file>', 'a file written by vouch ledger export') : c;
  };
  source(ledger.command('verify').description('check the hash chain, the Merkle tree and every signed checkpoint; name any tampering'))
    .option('--jwks <file>', "trust only these keys for checkpoints (the verifier's JWKS, obtained on your own)")
    .option('--witness <file>', 'a checkpoint you kept (compact JWS); checked against the ledger (repeatable)', collect, [])
    .option('--json', 'print the result as JSON')
    .action(async (opts: LedgerSourceOptions & { jwks?: string; witness: string[]; json?: boolean }) => {
      status = await ledgerVerifyCommand(opts, io);
    });
  source(ledger.command('prove <seq>').description('the inclusion proof of entry <seq> under a stored checkpoint (or, with --consistency, the consistency proof from tree size <seq>)'), false)
    .option('--tree-size <n>', 'the checkpoint to prove against (default the latest covering it)')
    .option('--consistency', 'prove consistency between the checkpoints of tree sizes <seq> and --tree-size (or the latest)')
    .action(async (seq: string, opts: LedgerSourceOptions & { treeSize?: string; consistency?: boolean }) => {
      status = await ledgerProveCommand(seq, opts, io);
    });
  ledger
    .command('check-proof <file>')
    .description('check a proof from vouch ledger prove or GET /v1/ledger/proofs/…, as a relying party would')
    .requiredOption('--jwks <file>', "the verifier's JWKS (checkpoint keys)")
    .option('--hash <hex>', "the decision the proof must be of (an artifact's vouch.ledger.hash)")
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { jwks: string; hash?: string; json?: boolean }) => {
      status = await ledgerCheckProofCommand(file, opts, io);
    });
  source(ledger.command('export').description('a portable file of every entry, checkpoint, retained input and policy, checked by verify --from-export with no database'), false)
    .option('--out <file>', 'write to this file (default standard output)')
    .option('--no-inputs', 'leave out the retained inputs and policies (then the export cannot be replayed)')
    .option('--verifier-id <id>', 'the verifier id to name in the header', 'vouch')
    .action(async (opts: LedgerSourceOptions & { out?: string; inputs: boolean; verifierId: string }) => {
      status = await ledgerExportCommand(opts, io);
    });
  source(program.command('replay [seq]').description('re-run a recorded appraisal from its retained inputs at its recorded time and compare the result digest; with --policy, a dry run'))
    .option('--policy <file>', 'a dry run: what this policy (YAML or JSON) would have decided')
    .option('--from <seq>', 'with --policy and no seq: the first entry of a range of appraisals')
    .option('--to <seq>', 'the last entry of the range')
    .option('--group <group>', 'only appraisals of nodes in this group')
    .option('--json', 'print the result as JSON')
    .action(async (seq: string | undefined, opts: LedgerSourceOptions & { policy?: string; from?: string; to?: string; group?: string; json?: boolean }) => {
      status = await replayCommand(seq, opts, io);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0.
      return e.exitCode === 0 ? EXIT.ok : EXIT.misuse;
    }
    if (isVouchError(e)) {
      io.err(`vouch: ${e.code}: ${e.message}\n`);
      return exitFor(e);
    }
    io.err(`vouch: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.unavailable;
  }
}

/** Reads a file named on the command line; a missing or unreadable file is misuse. */
export async function readArgFile(path: string, flag: string): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `${flag} ${path}: cannot read the file`, { cause });
  }
}
