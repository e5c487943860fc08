/**
 * The verifier process: reads its configuration, opens the store and the signing key, installs
 * the group policies, listens, and shuts down cleanly on SIGINT/SIGTERM. All request handling is
 * in app.ts.
 */
import { parseAdmissionConfig } from './admission.js';
import { loadSecretsMasterKey } from '../secrets/at-rest.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { MisuseError } from '../lib/errors.js';
import { trustStoreFromCerts, loadTrustDirectory, type EkCertificate } from '../tpm/ek/index.js';
import { parsePolicy, type Policy } from '../policy/index.js';
import { ArtifactSigner } from '../artifact/index.js';
import { SqliteStore, type Store } from '../store/index.js';
import { PostgresStore } from '../store/postgres.js';
import { buildApp } from './app.js';
import { TokenRegistry, TOKENS_FILE } from './auth.js';
import { VerifierService, defaultRandom } from './service.js';
import { KdsClient, defaultFetcher, type BundleImportSummary, type Fetcher, type SnpProduct } from '../snp/collateral.js';
import type { SnpKdsSettings } from './snp-collateral.js';
import type { TdxCollateralSource, TdxSettings } from './tdx-collateral.js';
import { PcsClient, defaultPcsFetcher, type PcsBundleImportSummary } from '../tdx/collateral.js';
import { loadWebhookConfig } from './webhooks.js';
import { DEFAULT_STALE_CHECK_MS } from './stale.js';

/** Everything a verifier process is configured with. */
export interface ServerConfig {
  /** The signing key, caches, tokens, and the SQLite database unless {@link databaseUrl} is set. */
  readonly dataDir: string;
  /**
   * A postgres:// or postgresql:// URL: the store is that PostgreSQL database (shared by several
   * replicas) instead of the SQLite file in `dataDir`. Never logged with its password.
   */
  readonly databaseUrl?: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly verifierId: string;
  /** Directories of trusted TPM vendor CA certificates (EK chains). */
  readonly tpmCaDirs: readonly string[];
  /** group → policy file (YAML or JSON). */
  readonly policies: ReadonlyMap<string, string>;
  readonly requireEkCertificate: boolean;
  readonly challengeTtlSeconds: number;
  readonly rateLimitPerMinute: number;
  /** Admin API tokens (SHA-256 digests); default `{dataDir}/tokens.json`. A missing file: every admin call is 401. */
  readonly tokensFile?: string;
  /**
   * The secrets master key (32 bytes, mode 0600); absent: `VOUCH_SECRETS_KEY` (base64), and
   * with neither the secret and release routes are off.
   */
  readonly secretsKeyFile?: string;
  /** Period of the heartbeat decision in seconds; absent or 0: none (the CLI defaults to 60). */
  readonly heartbeatSeconds?: number;
  /** Job admission rules (`admission: { resources: {...} }`, checked by parseAdmissionConfig); absent: every admission refused. */
  readonly admission?: unknown;
  /** Node events as signed webhooks: a JSON file `{ webhooks: [{id, url, secretFile, events?, groups?}], delivery? }` (see ./webhooks.ts). */
  readonly webhooksFile?: string;
  /** Period of the check for nodes past their deadline (`stale` events), in seconds; absent: 10; 0: none. */
  readonly staleCheckSeconds?: number;
  /** Period of ledger checkpoints in seconds (signed when the ledger grew); absent: 60; 0: on demand only. */
  readonly checkpointSeconds?: number;
  /** Days the retained inputs of decisions are kept (then pruned to their digests); absent: kept. */
  readonly retainInputsDays?: number;
  /** Re-attestation interval and deadline multiple for every group (default 300 s × 3). */
  readonly reattestation?: { readonly intervalSeconds: number; readonly deadlineMultiple: number };
  readonly logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /**
   * SEV-SNP trust beyond the defaults (AMD's pinned ARKs): extra pinned ARKs, CRLs, and AMD KDS
   * for the collateral a report's certificate table lacks (absent: the table and `crls` only).
   */
  readonly snp?: {
    readonly pinnedArks?: Readonly<Record<string, SnpProduct>>;
    readonly crls?: readonly Uint8Array[];
    readonly kds?: SnpKdsConfig;
  };
  /**
   * Intel TDX: where the collateral comes from (a directory or dcap-qvl bundle, a PcsClient, or
   * Intel PCS configured by {@link TdxPcsConfig}) and, for test-only hierarchies, the pinned roots
   * (default the Intel SGX Root CA). Absent: TDX evidence is refused.
   */
  readonly tdx?: TdxServerConfig;
}

/**
 * The verifier's TDX configuration: exactly one of `collateral` (a path or a ready PcsClient) and
 * `pcs` (a PcsClient this process builds, with its cache and bundle).
 */
export type TdxServerConfig =
  | TdxSettings
  | { readonly pcs: TdxPcsConfig; readonly collateral?: undefined; readonly pinnedRootFingerprints?: readonly string[] };

/**
 * Intel PCS for TDX collateral: TCB Info by FMSPC, QE Identity, PCK CRL by CA type and the Intel
 * SGX Root CA CRL, kept in an on-disk cache (an entry is fetched again after its nextUpdate).
 * The same shape as {@link SnpKdsConfig}.
 */
export interface TdxPcsConfig {
  /** Cache directory; default `{dataDir}/tdx-collateral`. */
  readonly cacheDir?: string;
  /** PCS base URL; default https://api.trustedservices.intel.com. */
  readonly baseUrl?: string;
  /** No network: collateral only from the cache and the imported bundle. */
  readonly offline?: boolean;
  /** An offline bundle (vouch JSON bundle, a collateral directory or a dcap-qvl collateral.json) imported into the cache at start. */
  readonly bundle?: string;
  /** The network; default the global fetch with a timeout. Not used when offline. */
  readonly fetcher?: Fetcher;
  /** Timeout of one request of the default fetcher, in milliseconds (default 10 000). */
  readonly timeoutMs?: number;
}

/**
 * AMD KDS for SEV-SNP collateral: the VCEK by CHIP_ID and REPORTED_TCB, the ASK/ARK chain and the
 * CRL, kept in an on-disk cache (a CRL is fetched again after its nextUpdate).
 */
export interface SnpKdsConfig {
  /** Cache directory; default `{dataDir}/snp-collateral`. */
  readonly cacheDir?: string;
  /** KDS base URL; default https://kdsintf.amd.com. */
  readonly baseUrl?: string;
  /** No network: collateral only from the cache and the imported bundle. */
  readonly offline?: boolean;
  /** An offline bundle (vouch JSON bundle or a directory laid out like the cache) imported into the cache at start. */
  readonly bundle?: string;
  /** The network; default the global fetch with a timeout. Not used when offline. */
  readonly fetcher?: Fetcher;
  /** Timeout of one request of the default fetcher, in milliseconds (default 10 000). */
  readonly timeoutMs?: number;
  /** Products tried for a report that names none (version 2); default the products of the pinned ARKs. */
  readonly products?: readonly SnpProduct[];
}

/** The KDS client of a verifier process, with its bundle imported. */
async function openKds(dataDir: string, cfg: SnpKdsConfig): Promise<{ settings: SnpKdsSettings; imported?: BundleImportSummary }> {
  if (cfg.offline === true && cfg.fetcher !== undefined) throw new MisuseError('MISUSE_ARGUMENT', 'an offline KDS configuration takes no fetcher', { field: 'snp.kds.fetcher' });
  const client = new KdsClient({
    ...(cfg.offline === true ? {} : { fetcher: cfg.fetcher ?? defaultFetcher(cfg.timeoutMs !== undefined ? { timeoutMs: cfg.timeoutMs } : {}) }),
    cacheDir: cfg.cacheDir ?? join(dataDir, 'snp-collateral'),
    clock: () => new Date(),
    ...(cfg.baseUrl !== undefined ? { baseUrl: cfg.baseUrl } : {}),
  });
  const imported = cfg.bundle === undefined ? undefined : await client.importBundle(cfg.bundle);
  return { settings: { client, ...(cfg.products !== undefined ? { products: cfg.products } : {}) }, ...(imported !== undefined ? { imported } : {}) };
}

/** The TDX settings of a verifier process: a PCS client is built (and its bundle imported) for the `pcs` form. */
async function openTdx(dataDir: string, cfg: TdxServerConfig): Promise<{ settings: TdxSettings; imported?: PcsBundleImportSummary }> {
  const pins = cfg.pinnedRootFingerprints !== undefined ? { pinnedRootFingerprints: cfg.pinnedRootFingerprints } : {};
  if (!('pcs' in cfg)) return { settings: cfg };
  if (cfg.collateral !== undefined) throw new MisuseError('MISUSE_ARGUMENT', 'TDX collateral comes from a path or client, or from Intel PCS, not both', { field: 'tdx.pcs' });
  const p = cfg.pcs;
  if (p.offline === true && p.fetcher !== undefined) throw new MisuseError('MISUSE_ARGUMENT', 'an offline PCS configuration takes no fetcher', { field: 'tdx.pcs.fetcher' });
  const client = new PcsClient({
    ...(p.offline === true ? {} : { fetcher: p.fetcher ?? defaultPcsFetcher(p.timeoutMs !== undefined ? { timeoutMs: p.timeoutMs } : {}) }),
    cacheDir: p.cacheDir ?? join(dataDir, 'tdx-collateral'),
    clock: () => new Date(),
    ...(p.baseUrl !== undefined ? { baseUrl: p.baseUrl } : {}),
  });
  const imported = p.bundle === undefined ? undefined : await client.importBundle(p.bundle);
  const collateral: TdxCollateralSource = { client };
  return { settings: { collateral, ...pins }, ...(imported !== undefined ? { imported } : {}) };
}

/** A running verifier. */
export interface RunningVerifier {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly service: VerifierService;
  close(): Promise<void>;
}

async function loadPolicies(files: ReadonlyMap<string, string>): Promise<Map<string, Policy>> {
  const out = new Map<string, Policy>();
  for (const [group, path] of files) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `policy file ${path} for group ${group} cannot be read`, { cause });
    }
    out.set(group, parsePolicy(text, path.endsWith('.json') ? 'json' : 'yaml'));
  }
  return out;
}

/** Starts a verifier with `cfg`; the caller owns shutdown (or use {@link runServerProcess}). */
export async function startServer(cfg: ServerConfig): Promise<RunningVerifier> {
  if (cfg.policies.size === 0) throw new MisuseError('MISUSE_ARGUMENT', 'at least one --policy group=file is required');
  const groups = await loadPolicies(cfg.policies);
  const anchors: EkCertificate[] = [];
  for (const dir of cfg.tpmCaDirs) {
    const t = loadTrustDirectory(dir);
    if (t.problems.length > 0) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `TPM CA directory ${dir}: ${t.problems.length} file(s) do not parse (first: ${t.problems[0]?.path ?? '?'}: ${t.problems[0]?.message ?? ''})`);
    }
    anchors.push(...t.store.certificates);
  }
  // Before the store opens: a bad bundle stops the start with nothing to clean up.
  const kds = cfg.snp?.kds === undefined ? undefined : await openKds(cfg.dataDir, cfg.snp.kds);
  const tdx = cfg.tdx === undefined ? undefined : await openTdx(cfg.dataDir, cfg.tdx);
  const webhooks = cfg.webhooksFile === undefined ? undefined : loadWebhookConfig(cfg.webhooksFile);
  const staleMs = cfg.staleCheckSeconds === undefined ? DEFAULT_STALE_CHECK_MS : cfg.staleCheckSeconds * 1000;
  const store: Store = cfg.databaseUrl === undefined ? await SqliteStore.open({ dataDir: cfg.dataDir }) : await PostgresStore.open({ url: cfg.databaseUrl });
  try {
    const signer = await ArtifactSigner.open(cfg.dataDir);
    const service = new VerifierService(
      {
        verifierId: cfg.verifierId,
        groups,
        ekTrust: trustStoreFromCerts(anchors),
        requireEkCertificate: cfg.requireEkCertificate,
        challengeTtlMs: cfg.challengeTtlSeconds * 1000,
        enrollmentTtlMs: 5 * 60_000,
        maxActivationAttempts: 3,
        ...(cfg.snp !== undefined
          ? {
              snp: {
                ...(cfg.snp.pinnedArks !== undefined ? { pinnedArks: cfg.snp.pinnedArks } : {}),
                ...(cfg.snp.crls !== undefined ? { crls: cfg.snp.crls } : {}),
                ...(kds !== undefined ? { kds: kds.settings } : {}),
              },
            }
          : {}),
        ...(tdx !== undefined ? { tdx: tdx.settings } : {}),
      },
      { store, signer, clock: () => Date.now(), random: defaultRandom },
    );
    await service.installPolicies();
    // The trust anchors and signing keys in force, recorded in the ledger (checkpoints are checked against them).
    await service.installTrustAnchors();
    const checkpointMs = (cfg.checkpointSeconds ?? 60) * 1000;
    const secretsKey = loadSecretsMasterKey(cfg.secretsKeyFile);
    const app = await buildApp(service, {
      ...(secretsKey !== null ? { secretsKey } : {}),
      logger: cfg.logLevel === 'silent' ? false : { level: cfg.logLevel },
      rateLimitPerMinute: cfg.rateLimitPerMinute,
      tokens: TokenRegistry.load(cfg.tokensFile ?? join(cfg.dataDir, TOKENS_FILE)),
      ...(cfg.reattestation !== undefined ? { nodes: { defaultReattestation: { intervalMs: cfg.reattestation.intervalSeconds * 1000, deadlineMultiple: cfg.reattestation.deadlineMultiple } } } : {}),
      ...(cfg.heartbeatSeconds !== undefined && cfg.heartbeatSeconds > 0 ? { heartbeat: { periodMs: cfg.heartbeatSeconds * 1000 } } : {}),
      ...(cfg.admission !== undefined ? { admission: parseAdmissionConfig(cfg.admission) } : {}),
      ...(webhooks !== undefined ? { webhooks } : {}),
      ...(staleMs > 0 ? { staleCheck: { periodMs: staleMs } } : {}),
      ...(checkpointMs > 0 ? { checkpoint: { periodMs: checkpointMs } } : {}),
      ...(cfg.retainInputsDays !== undefined ? { retainInputsMs: cfg.retainInputsDays * 86_400_000 } : {}),
    });
    if (kds?.imported !== undefined) app.log.info({ snpCollateralBundle: kds.imported }, 'SEV-SNP collateral bundle imported into the KDS cache');
    if (tdx?.imported !== undefined) app.log.info({ tdxCollateralBundle: tdx.imported }, 'TDX collateral bundle imported into the PCS cache');
    const address = await app.listen({ host: cfg.host, port: cfg.port });
    let closed = false;
    return {
      url: address,
      app,
      service,
      async close() {
        if (closed) return;
        closed = true;
        await app.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Runs a verifier until SIGINT or SIGTERM; prints its URL on standard output. */
export async function runServerProcess(cfg: ServerConfig, out: (s: string) => void): Promise<void> {
  const v = await startServer(cfg);
  out(`vouch verifier listening on ${v.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void v.close().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
