/** `vouch verifier start`: runs the verifier service in the foreground. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { MisuseError } from '../lib/errors.js';
import { runServerProcess, type ServerConfig, type SnpKdsConfig, type TdxPcsConfig } from '../verifier/server.js';
import { checkDatabaseUrl } from '../store/postgres.js';
import { EXIT, type CliIo } from './main.js';

export interface VerifierStartOptions {
  dataDir: string;
  listen: string;
  tpmCaDir: string[];
  policy: string[];
  verifierId: string;
  allowNoEkCert?: boolean;
  challengeTtl: string;
  rateLimit: string;
  logLevel: string;
  /** --admission: a JSON file with the job admission rules ({ lifetimeSeconds?, resources }). */
  admission?: string;
  /** --secrets-key-file: the secrets master key (32 bytes, mode 0600). */
  secretsKeyFile?: string;
  /** --webhooks: a JSON file of webhook subscriptions for node events. */
  webhooks?: string;
  /** --database-url: the PostgreSQL store shared by several replicas (else VOUCH_DATABASE_URL, else SQLite in --data-dir). */
  databaseUrl?: string;
  /** --checkpoint-interval: seconds between ledger checkpoints (0: on demand only). */
  checkpointInterval?: string;
  /** --retain-inputs: days the inputs of decisions are kept. */
  retainInputs?: string;
  /** --snp-kds-cache: the KDS collateral cache directory. */
  snpKdsCache?: string;
  /** --snp-kds-url: KDS base URL (a mirror or proxy). */
  snpKdsUrl?: string;
  /** --snp-kds-offline: no network; cache and bundle only. */
  snpKdsOffline?: boolean;
  /** --snp-collateral-bundle: a bundle imported into the cache at start. */
  snpCollateralBundle?: string;
  /** --tdx-collateral: a TDX collateral directory or dcap-qvl collateral.json (read again when it changes). */
  tdxCollateral?: string;
  /** --tdx-pcs-cache: the Intel PCS collateral cache directory. */
  tdxPcsCache?: string;
  /** --tdx-pcs-url: PCS base URL (a mirror or proxy). */
  tdxPcsUrl?: string;
  /** --tdx-pcs-offline: no network; cache and bundle only. */
  tdxPcsOffline?: boolean;
  /** --tdx-collateral-bundle: a bundle imported into the PCS cache at start. */
  tdxCollateralBundle?: string;
}

/**
 * The SEV-SNP collateral flags of `vouch verifier start`. Any of them turns AMD KDS on: a report
 * whose certificate table lacks the VCEK or the ASK/ARK gets them from KDS (cached), and the CRL
 * always comes from KDS or its cache. Also declares `--tdx-collateral` and, through
 * {@link withWebhookOptions} and {@link withDatabaseOptions}, `--webhooks` and `--database-url`.
 */
export function withSnpKdsOptions(c: Command): Command {
  return withDatabaseOptions(withWebhookOptions(c))
    .option('--snp-kds-cache <dir>', 'SEV-SNP: cache of AMD KDS collateral (VCEK, ASK/ARK, CRL); default <data-dir>/snp-collateral')
    .option('--snp-kds-url <url>', 'SEV-SNP: AMD KDS base URL (default https://kdsintf.amd.com; a mirror or proxy)')
    .option('--snp-kds-offline', 'SEV-SNP: never ask KDS; collateral only from the cache and --snp-collateral-bundle')
    .option('--snp-collateral-bundle <file>', 'SEV-SNP: import a collateral bundle (JSON or directory) into the KDS cache at start')
    .option('--tdx-collateral <path>', 'Intel TDX: collateral directory (tcb_info.json, qe_identity.json, CRLs, issuer chains) or dcap-qvl collateral.json; without it TDX evidence is refused');
}

/**
 * `--webhooks FILE` of `vouch verifier start` (declared with the KDS flags, which the start
 * command already takes from this file).
 */
export function withWebhookOptions(c: Command): Command {
  return c.option('--webhooks <file>', 'node events as signed webhooks (Standard Webhooks), JSON: { webhooks: [{ id, url, secretFile, events?, groups? }], delivery? }');
}

/**
 * `--database-url URL` of `vouch verifier start` (declared with the KDS flags, as `--webhooks`):
 * the PostgreSQL database that several verifier replicas share. Without it, `VOUCH_DATABASE_URL`;
 * without either, the SQLite file in `--data-dir`. The data directory keeps the signing key either way.
 */
export function withDatabaseOptions(c: Command): Command {
  return c.option('--database-url <url>', 'PostgreSQL store shared by several replicas, postgres://user:password@host:port/db (or VOUCH_DATABASE_URL); default: SQLite in --data-dir');
}

/**
 * The database URL from `--database-url`, else `VOUCH_DATABASE_URL`; undefined for neither. It must
 * be a postgres:// or postgresql:// URL; the error never repeats it (it may hold a password).
 */
export function databaseUrl(flag: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const fromEnv = env['VOUCH_DATABASE_URL'];
  const url = flag ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  if (url === undefined) return undefined;
  const source = flag !== undefined ? '--database-url' : 'VOUCH_DATABASE_URL';
  try {
    checkDatabaseUrl(url);
  } catch {
    throw new MisuseError('MISUSE_ARGUMENT', `${source} must be a postgres:// or postgresql:// URL`, { field: source });
  }
  return url;
}

/**
 * The Intel TDX collateral flags of `vouch verifier start` that use Intel PCS (the counterpart of
 * {@link withSnpKdsOptions}). Any of them turns the PCS client on: the TCB Info of the quote's
 * FMSPC, the QE Identity, the PCK CRL and the Root CA CRL come from PCS or its cache.
 * `--tdx-collateral` (declared with the SEV-SNP flags) excludes them.
 */
export function withTdxPcsOptions(c: Command): Command {
  return c
    .option('--tdx-pcs-cache <dir>', 'Intel TDX: cache of Intel PCS collateral (TCB Info, QE Identity, CRLs); default <data-dir>/tdx-collateral')
    .option('--tdx-pcs-url <url>', 'Intel TDX: Intel PCS base URL (default https://api.trustedservices.intel.com; a mirror or proxy)')
    .option('--tdx-pcs-offline', 'Intel TDX: never ask PCS; collateral only from the cache and --tdx-collateral-bundle')
    .option('--tdx-collateral-bundle <file>', 'Intel TDX: import a collateral bundle (vouch JSON bundle, collateral directory or dcap-qvl collateral.json) into the PCS cache at start');
}

/** The KDS part of the configuration, or undefined when no --snp-kds-* / bundle flag is given. */
export function snpKdsConfig(o: Pick<VerifierStartOptions, 'snpKdsCache' | 'snpKdsUrl' | 'snpKdsOffline' | 'snpCollateralBundle'>): SnpKdsConfig | undefined {
  const offline = o.snpKdsOffline === true;
  if (o.snpKdsCache === undefined && o.snpKdsUrl === undefined && !offline && o.snpCollateralBundle === undefined) return undefined;
  if (offline && o.snpKdsUrl !== undefined) throw new MisuseError('MISUSE_ARGUMENT', '--snp-kds-offline and --snp-kds-url exclude each other', { field: '--snp-kds-url' });
  if (offline && o.snpKdsCache === undefined && o.snpCollateralBundle === undefined) {
    throw new MisuseError('MISUSE_ARGUMENT', '--snp-kds-offline needs --snp-kds-cache or --snp-collateral-bundle: offline, collateral comes only from them', { field: '--snp-kds-offline' });
  }
  if (o.snpKdsUrl !== undefined) {
    const u = URL.canParse(o.snpKdsUrl) ? new URL(o.snpKdsUrl) : undefined;
    if (u === undefined || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
      throw new MisuseError('MISUSE_ARGUMENT', `--snp-kds-url must be an http(s) base URL without query, fragment or credentials, got "${o.snpKdsUrl}"`, { field: '--snp-kds-url' });
    }
  }
  for (const [flag, v] of [['--snp-kds-cache', o.snpKdsCache], ['--snp-collateral-bundle', o.snpCollateralBundle]] as const) {
    if (v !== undefined && v.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', `${flag} needs a path`, { field: flag });
  }
  return {
    ...(o.snpKdsCache !== undefined ? { cacheDir: o.snpKdsCache } : {}),
    ...(o.snpKdsUrl !== undefined ? { baseUrl: o.snpKdsUrl } : {}),
    ...(offline ? { offline } : {}),
    ...(o.snpCollateralBundle !== undefined ? { bundle: o.snpCollateralBundle } : {}),
  };
}

/** The PCS part of the configuration, or undefined when no --tdx-pcs-* / bundle flag is given. */
export function tdxPcsConfig(o: Pick<VerifierStartOptions, 'tdxPcsCache' | 'tdxPcsUrl' | 'tdxPcsOffline' | 'tdxCollateralBundle'>): TdxPcsConfig | undefined {
  const offline = o.tdxPcsOffline === true;
  if (o.tdxPcsCache === undefined && o.tdxPcsUrl === undefined && !offline && o.tdxCollateralBundle === undefined) return undefined;
  if (offline && o.tdxPcsUrl !== undefined) throw new MisuseError('MISUSE_ARGUMENT', '--tdx-pcs-offline and --tdx-pcs-url exclude each other', { field: '--tdx-pcs-url' });
  if (offline && o.tdxPcsCache === undefined && o.tdxCollateralBundle === undefined) {
    throw new MisuseError('MISUSE_ARGUMENT', '--tdx-pcs-offline needs --tdx-pcs-cache or --tdx-collateral-bundle: offline, collateral comes only from them', { field: '--tdx-pcs-offline' });
  }
  if (o.tdxPcsUrl !== undefined) {
    const u = URL.canParse(o.tdxPcsUrl) ? new URL(o.tdxPcsUrl) : undefined;
    if (u === undefined || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
      throw new MisuseError('MISUSE_ARGUMENT', `--tdx-pcs-url must be an http(s) base URL without query, fragment or credentials, got "${o.tdxPcsUrl}"`, { field: '--tdx-pcs-url' });
    }
  }
  for (const [flag, v] of [['--tdx-pcs-cache', o.tdxPcsCache], ['--tdx-collateral-bundle', o.tdxCollateralBundle]] as const) {
    if (v !== undefined && v.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', `${flag} needs a path`, { field: flag });
  }
  return {
    ...(o.tdxPcsCache !== undefined ? { cacheDir: o.tdxPcsCache } : {}),
    ...(o.tdxPcsUrl !== undefined ? { baseUrl: o.tdxPcsUrl } : {}),
    ...(offline ? { offline } : {}),
    ...(o.tdxCollateralBundle !== undefined ? { bundle: o.tdxCollateralBundle } : {}),
  };
}

/** The TDX part of the configuration: a collateral path, Intel PCS, or neither (TDX evidence refused). */
function tdxConfig(o: Pick<VerifierStartOptions, 'tdxCollateral' | 'tdxPcsCache' | 'tdxPcsUrl' | 'tdxPcsOffline' | 'tdxCollateralBundle'>): ServerConfig['tdx'] {
  const pcs = tdxPcsConfig(o);
  if (o.tdxCollateral !== undefined && pcs !== undefined) {
    throw new MisuseError('MISUSE_ARGUMENT', '--tdx-collateral and the Intel PCS flags (--tdx-pcs-cache, --tdx-pcs-url, --tdx-pcs-offline, --tdx-collateral-bundle) exclude each other', { field: '--tdx-collateral' });
  }
  if (pcs !== undefined) return { pcs };
  return o.tdxCollateral !== undefined ? { collateral: { path: tdxCollateralPath(o.tdxCollateral) } } : undefined;
}

function webhooksPath(p: string): string {
  if (p.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', '--webhooks needs a path', { field: '--webhooks' });
  return p;
}

function tdxCollateralPath(p: string): string {
  if (p.trim() === '') throw new MisuseError('MISUSE_ARGUMENT', '--tdx-collateral needs a path', { field: '--tdx-collateral' });
  return p;
}

const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;

/** Parses `host:port` (IPv6 in brackets). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) throw new MisuseError('MISUSE_ARGUMENT', `--listen must be host:port, got "${s}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function verifierConfig(o: VerifierStartOptions): ServerConfig {
  const policies = new Map<string, string>();
  for (const p of o.policy) {
    const i = p.indexOf('=');
    if (i <= 0) throw new MisuseError('MISUSE_ARGUMENT', `--policy must be group=file, got "${p}"`);
    policies.set(p.slice(0, i), p.slice(i + 1));
  }
  const ttl = Number(o.challengeTtl);
  const rate = Number(o.rateLimit);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 3600) throw new MisuseError('MISUSE_ARGUMENT', '--challenge-ttl must be 1..3600 seconds');
  if (!Number.isInteger(rate) || rate < 1) throw new MisuseError('MISUSE_ARGUMENT', '--rate-limit must be a positive integer');
  if (!(LOG_LEVELS as readonly string[]).includes(o.logLevel)) throw new MisuseError('MISUSE_ARGUMENT', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const kds = snpKdsConfig(o);
  const tdx = tdxConfig(o);
  const dbUrl = databaseUrl(o.databaseUrl);
  return {
    dataDir: o.dataDir,
    ...(dbUrl !== undefined ? { databaseUrl: dbUrl } : {}),
    ...parseListen(o.listen),
    verifierId: o.verifierId,
    tpmCaDirs: o.tpmCaDir,
    policies,
    requireEkCertificate: o.allowNoEkCert !== true,
    challengeTtlSeconds: ttl,
    rateLimitPerMinute: rate,
    logLevel: o.logLevel as ServerConfig['logLevel'],
    // The heartbeat decision every 60 s (GET /v1/heartbeat); tokens from {dataDir}/tokens.json.
    heartbeatSeconds: 60,
    ...ledgerConfig(o),
    ...(o.secretsKeyFile !== undefined ? { secretsKeyFile: o.secretsKeyFile } : {}),
    ...(o.webhooks !== undefined ? { webhooksFile: webhooksPath(o.webhooks) } : {}),
    ...(o.admission !== undefined ? { admission: readAdmissionFile(o.admission) } : {}),
    ...(kds !== undefined ? { snp: { kds } } : {}),
    ...(tdx !== undefined ? { tdx } : {}),
  };
}

export async function verifierStartCommand(o: VerifierStartOptions, io: CliIo): Promise<number> {
  await runServerProcess(verifierConfig(o), io.out);
  return EXIT.ok;
}

/** The ledger flags of `vouch verifier start`: checkpoint period and input retention. */
export function withLedgerOptions(c: Command): Command {
  return c
    .option('--checkpoint-interval <seconds>', 'sign a ledger checkpoint this often while the ledger grows (0: on demand only)', '60')
    .option('--retain-inputs <days>', 'prune the retained inputs of decisions (evidence, appraisal context) after this many days; their digests stay (default: keep them)');
}

/** Parses --checkpoint-interval and --retain-inputs. */
export function ledgerConfig(o: Pick<VerifierStartOptions, 'checkpointInterval' | 'retainInputs'>): Pick<ServerConfig, 'checkpointSeconds' | 'retainInputsDays'> {
  const every = Number(o.checkpointInterval ?? '60');
  if (!Number.isInteger(every) || every < 0 || every > 86_400 || (every > 0 && every < 1)) throw new MisuseError('MISUSE_ARGUMENT', '--checkpoint-interval must be 0..86400 seconds', { field: '--checkpoint-interval' });
  let days: number | undefined;
  if (o.retainInputs !== undefined) {
    days = Number(o.retainInputs);
    if (!Number.isInteger(days) || days < 1 || days > 36_500) throw new MisuseError('MISUSE_ARGUMENT', '--retain-inputs must be 1..36500 days', { field: '--retain-inputs' });
  }
  return { checkpointSeconds: every, ...(days !== undefined ? { retainInputsDays: days } : {}) };
}

/** The --admission file's JSON (its rules are checked by the server's parseAdmissionConfig). */
function readAdmissionFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MisuseError('MISUSE_ARGUMENT', `--admission ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new MisuseError('MISUSE_ARGUMENT', `--admission ${path} is not JSON`);
  }
}
