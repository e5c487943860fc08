/** `vouch verifier start`: runs the verifier service in the foreground. */
import type { Command } from 'commander';
import { MisuseError } from '../lib/errors.js';
import { runServerProcess, type ServerConfig, type SnpKdsConfig } from '../verifier/server.js';
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
}

/**
 * The SEV-SNP collateral flags of `vouch verifier start`. Any of them turns AMD KDS on: a report
 * whose certificate table lacks the VCEK or the ASK/ARK gets them from KDS (cached), and the CRL
 * always comes from KDS or its cache.
 */
export function withSnpKdsOptions(c: Command): Command {
  return c
    .option('--snp-kds-cache <dir>', 'SEV-SNP: cache of AMD KDS collateral (VCEK, ASK/ARK, CRL); default <data-dir>/snp-collateral')
    .option('--snp-kds-url <url>', 'SEV-SNP: AMD KDS base URL (default https://kdsintf.amd.com; a mirror or proxy)')
    .option('--snp-kds-offline', 'SEV-SNP: never ask KDS; collateral only from the cache and --snp-collateral-bundle')
    .option('--snp-collateral-bundle <file>', 'SEV-SNP: import a collateral bundle (JSON or directory) into the KDS cache at start')
    .option('--tdx-collateral <path>', 'Intel TDX: collateral directory (tcb_info.json, qe_identity.json, CRLs, issuer chains) or dcap-qvl collateral.json; without it TDX evidence is refused');
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
  return {
    dataDir: o.dataDir,
    ...parseListen(o.listen),
    verifierId: o.verifierId,
    tpmCaDirs: o.tpmCaDir,
    policies,
    requireEkCertificate: o.allowNoEkCert !== true,
    challengeTtlSeconds: ttl,
    rateLimitPerMinute: rate,
    logLevel: o.logLevel as ServerConfig['logLevel'],
    ...(kds !== undefined ? { snp: { kds } } : {}),
    ...(o.tdxCollateral !== undefined ? { tdx: { collateral: { path: tdxCollateralPath(o.tdxCollateral) } } } : {}),
  };
}

export async function verifierStartCommand(o: VerifierStartOptions, io: CliIo): Promise<number> {
  await runServerProcess(verifierConfig(o), io.out);
  return EXIT.ok;
}
