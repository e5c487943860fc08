/**
 * Secrets at rest: AES-256-GCM under the verifier's master key. The AAD binds the secret id, so a
 * ciphertext moved to another row does not open. The master key comes from a file of exactly 32
 * bytes readable by its owner only (`--secrets-key-file`) or from `VOUCH_SECRETS_KEY` (base64);
 * it is held in a KeyObject and never appears in an error, a log line or the ledger.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { UnavailableError } from '../lib/errors.js';

/** The master key of the secrets store. */
export class SecretsMasterKey {
  readonly #key: KeyObject;
  private constructor(key: KeyObject) {
    this.#key = key;
  }

  /** From 32 raw bytes (the caller's copy is not kept). */
  static fromBytes(bytes: Uint8Array): SecretsMasterKey {
    if (bytes.length !== 32) throw new UnavailableError('SECRETS_KEY_UNUSABLE', `the secrets master key is ${bytes.length} bytes, not 32`);
    return new SecretsMasterKey(createSecretKey(Buffer.from(bytes)));
  }

  /** From a file of exactly 32 bytes, mode 0600 or stricter (no group or other bits). */
  static fromFile(file: string): SecretsMasterKey {
    let mode: number;
    let bytes: Buffer;
    try {
      mode = statSync(file).mode;
      bytes = readFileSync(file);
    } catch {
      throw new UnavailableError('SECRETS_KEY_UNUSABLE', `the secrets master key file ${file} cannot be read`, { field: '--secrets-key-file' });
    }
    if ((mode & 0o077) !== 0) throw new UnavailableError('SECRETS_KEY_UNUSABLE', `the secrets master key file ${file} is readable by others than its owner (chmod 600)`, { field: '--secrets-key-file' });
    try {
      return SecretsMasterKey.fromBytes(bytes);
    } finally {
      bytes.fill(0);
    }
  }

  /** From base64 (standard or url alphabet) text, as in `VOUCH_SECRETS_KEY`. */
  static fromBase64(text: string): SecretsMasterKey {
    const t = text.trim();
    if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) throw new UnavailableError('SECRETS_KEY_UNUSABLE', 'VOUCH_SECRETS_KEY is not the base64 of 32 bytes', { field: 'VOUCH_SECRETS_KEY' });
    const bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    try {
      return SecretsMasterKey.fromBytes(bytes);
    } finally {
      bytes.fill(0);
    }
  }

  /** A fresh random key (tests, `vouch verifier init`). */
  static generate(): SecretsMasterKey {
    return SecretsMasterKey.fromBytes(randomBytes(32));
  }

  /** Encrypts `plaintext` for the row `secretId`; returns the nonce and ciphertext ‖ tag. */
  seal(secretId: string, plaintext: Uint8Array): { nonce: Uint8Array; ciphertext: Uint8Array } {
    const nonce = new Uint8Array(randomBytes(12));
    const c = createCipheriv('aes-256-gcm', this.#key, nonce);
    c.setAAD(secretAad(secretId));
    const ciphertext = new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
    return { nonce, ciphertext };
  }

  /** Decrypts a row. @throws UnavailableError SECRET_DECRYPT_FAILED (wrong master key, damaged row, moved row) */
  open(secretId: string, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (nonce.length !== 12 || ciphertext.length < 16) throw new UnavailableError('SECRET_DECRYPT_FAILED', `secret ${secretId}: the stored nonce or ciphertext has the wrong size`);
    const d = createDecipheriv('aes-256-gcm', this.#key, nonce);
    d.setAAD(secretAad(secretId));
    d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    try {
      return new Uint8Array(Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]));
    } catch {
      throw new UnavailableError('SECRET_DECRYPT_FAILED', `secret ${secretId} does not decrypt under the configured master key (a wrong --secrets-key-file or VOUCH_SECRETS_KEY?)`);
    }
  }

  /** Never serialise the key. */
  toJSON(): string {
    return '[secrets master key]';
  }
}

/** AAD of a stored secret: "vouch/secret/v1" ‖ 0x00 ‖ the UTF-8 secret id. */
export function secretAad(secretId: string): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from('vouch/secret/v1\0', 'utf8'), Buffer.from(secretId, 'utf8')]));
}

/** The master key from `--secrets-key-file` when given, else `VOUCH_SECRETS_KEY`, else null (secrets disabled). */
export function loadSecretsMasterKey(file: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): SecretsMasterKey | null {
  if (file !== undefined) return SecretsMasterKey.fromFile(file);
  const v = env['VOUCH_SECRETS_KEY'];
  return v === undefined || v === '' ? null : SecretsMasterKey.fromBase64(v);
}
