/** `vouch verifier start`: runs the verifier service in the foreground. */
import { MisuseError } from '../lib/errors.js';
import { runServerProcess, type ServerConfig } from '../verifier/server.js';
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
  };
}

export async function verifierStartCommand(o: VerifierStartOptions, io: CliIo): Promise<number> {
  await runServerProcess(verifierConfig(o), io.out);
  return EXIT.ok;
}
