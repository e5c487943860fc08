/** A verifier on loopback for end-to-end tests, trusting a test swtpm's EK CA. */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type RunningVerifier } from '../../src/verifier/server.js';
import type { TestSwtpm } from './swtpm.js';

/** A directory holding the swtpm local CA's root and issuer certificates (and nothing secret). */
export function trustDirFor(tpm: TestSwtpm, dir: string): string {
  const d = join(dir, 'tpm-ca');
  mkdirSync(d, { recursive: true });
  copyFileSync(tpm.rootCaPem, join(d, 'root.pem'));
  copyFileSync(tpm.issuerCertPem, join(d, 'issuer.pem'));
  return d;
}

/** Starts a verifier in this process with `policy` (a file path, or YAML text) for group "default". */
export async function startTestVerifier(tpm: TestSwtpm, dir: string, policy: { file: string } | { yaml: string }, verifierId = 'test'): Promise<RunningVerifier> {
  let file: string;
  if ('file' in policy) file = policy.file;
  else {
    file = join(dir, 'policy.yaml');
    writeFileSync(file, policy.yaml);
  }
  return startServer({
    dataDir: join(dir, 'verifier'),
    host: '127.0.0.1',
    port: 0,
    verifierId,
    tpmCaDirs: [trustDirFor(tpm, dir)],
    policies: new Map([['default', file]]),
    requireEkCertificate: true,
    challengeTtlSeconds: 60,
    rateLimitPerMinute: 1000,
    logLevel: 'silent',
  });
}
