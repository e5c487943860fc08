import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../src/verifier/server.js';

const POLICY = 'apiVersion: vouch/v1\nkind: AttestationPolicy\nid: p\ntpm:\n  banks: [sha256]\n  pcrs:\n    sha256:\n      "0": any\nartifact:\n  lifetimeSeconds: 60\n';

describe('vouch verifier start --secrets-key-file', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const start = async (secretsKeyFile: string | undefined) => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-secrets-flag-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    return startServer({
      dataDir: join(dir, 'data'),
      host: '127.0.0.1',
      port: 0,
      verifierId: 't',
      tpmCaDirs: [],
      policies: new Map([['default', join(dir, 'policy.yaml')]]),
      requireEkCertificate: false,
      challengeTtlSeconds: 60,
      rateLimitPerMinute: 1000,
      logLevel: 'silent',
      ...(secretsKeyFile !== undefined ? { secretsKeyFile } : {}),
    });
  };

  it('turns the secret routes on (admin token required); without a key they do not exist', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'vouch-secrets-key-'));
    dirs.push(keyDir);
    const key = join(keyDir, 'k');
    writeFileSync(key, randomBytes(32));
    chmodSync(key, 0o600);
    const withKey = await start(key);
    try {
      const r = await fetch(`${withKey.url}/v1/secrets`, { method: 'GET' });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('AUTH_UNAUTHENTICATED');
    } finally {
      await withKey.close();
    }
    const without = await start(undefined);
    try {
      expect((await fetch(`${without.url}/v1/secrets`)).status).toBe(404);
    } finally {
      await without.close();
    }
  });

  it('a key file others may read stops the start', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'vouch-secrets-key-'));
    dirs.push(keyDir);
    const key = join(keyDir, 'k');
    writeFileSync(key, randomBytes(32));
    chmodSync(key, 0o644);
    await expect(start(key)).rejects.toMatchObject({ code: 'SECRETS_KEY_UNUSABLE' });
  });
});
