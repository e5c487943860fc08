/**
 * The artifact signing key: created once in the verifier's data directory, loaded on every
 * start, published as a JWKS.
 *
 * The private key lives in `<dataDir>/artifact-signing-key.json` (mode 0600, refused when
 * readable by group or others) and in a private field of {@link ArtifactSigner}; it is never
 * logged, serialised or put in an error (errors about the file carry no cause, because JSON
 * and key-import errors may quote the file's text).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, lstat, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { canonicalJson } from '../policy/canonical.js';
import type { CnfJwk } from './ear.js';
import { jwkThumbprint, publicJwk } from './jwk.js';

/** JWS algorithms vouch signs artifacts with. */
export const ARTIFACT_ALGS = ['ES256', 'EdDSA'] as const;
/** One artifact signing algorithm. */
export type ArtifactAlg = (typeof ARTIFACT_ALGS)[number];

/** File name of the signing key inside the data directory. */
export const SIGNING_KEY_FILE = 'artifact-signing-key.json';

/** A public key in the verifier's JWKS. */
export type PublicSigningJwk = CnfJwk & { readonly kid: string; readonly alg: ArtifactAlg; readonly use: 'sig' };

/** The JWKS served at `/.well-known/jwks.json`. */
export interface Jwks {
  readonly keys: readonly PublicSigningJwk[];
}

/** Options of {@link ArtifactSigner.open}. */
export interface ArtifactSignerOptions {
  /**
   * Algorithm for a key created now (default ES256). When a key already exists and `alg` is
   * given, it must match the stored key's algorithm.
   */
  readonly alg?: ArtifactAlg;
}

interface KeyFile {
  readonly version: 1;
  readonly alg: ArtifactAlg;
  readonly jwk: Record<string, string>;
}

function unusable(message: string): UnavailableError {
  return new UnavailableError('ARTIFACT_SIGNING_KEY_UNUSABLE', message);
}

/** Signs artifacts with the verifier's persistent key. */
export class ArtifactSigner {
  /** The JWS `alg`. */
  readonly alg: ArtifactAlg;
  /** RFC 7638 thumbprint of the public key; the JWS `kid`. */
  readonly kid: string;
  /** The public key, with `kid`, `alg` and `use`. */
  readonly publicJwk: PublicSigningJwk;
  readonly #privateKey: KeyObject;
  /** base64url of the protected header `{"alg","kid","typ":"JWT"}`, the same for every artifact. */
  readonly #protectedHeader: string;

  private constructor(alg: ArtifactAlg, privateKey: KeyObject) {
    const pub = publicJwk(createPublicKey(privateKey).export({ format: 'jwk' }), 'signing key');
    this.alg = alg;
    this.kid = jwkThumbprint(pub);
    this.publicJwk = Object.freeze({ ...pub, kid: this.kid, alg, use: 'sig' as const });
    this.#privateKey = privateKey;
    this.#protectedHeader = Buffer.from(JSON.stringify({ alg, kid: this.kid, typ: 'JWT' })).toString('base64url');
  }

  /**
   * Loads the signing key from `dataDir`, creating it (and the directory, mode 0700) when
   * absent. Safe against concurrent creation: the key file appears atomically and the first
   * writer wins.
   * @throws UnavailableError ARTIFACT_SIGNING_KEY_UNUSABLE
   * @throws MisuseError MISUSE_ARGUMENT when `options.alg` differs from the stored key's
   */
  static async open(dataDir: string, options: ArtifactSignerOptions = {}): Promise<ArtifactSigner> {
    if (options.alg !== undefined && !ARTIFACT_ALGS.includes(options.alg)) {
      throw new MisuseError('MISUSE_ARGUMENT', `artifact signing algorithm must be one of ${ARTIFACT_ALGS.join(', ')}`, { field: 'alg', actual: String(options.alg) });
    }
    const path = join(dataDir, SIGNING_KEY_FILE);
    let loaded = await ArtifactSigner.#load(path);
    if (loaded === undefined) {
      await ArtifactSigner.#create(dataDir, path, options.alg ?? 'ES256');
      loaded = await ArtifactSigner.#load(path);
      if (loaded === undefined) throw unusable(`signing key ${path} vanished after it was created`);
    }
    if (options.alg !== undefined && options.alg !== loaded.alg) {
      throw new MisuseError('MISUSE_ARGUMENT', `the signing key in ${path} is ${loaded.alg}, not ${options.alg}; remove it to change algorithm`, {
        field: 'alg',
        expected: loaded.alg,
        actual: options.alg,
      });
    }
    return loaded;
  }

  /** The public JWKS (one key for now; rotation keeps old keys here until their artifacts expire). */
  jwks(): Jwks {
    return { keys: [this.publicJwk] };
  }

  /**
   * Signs `payload` as a compact JWS with protected header `{alg, kid, typ: "JWT"}` (in that
   * canonical form). ES256 signatures are randomised; everything else is deterministic.
   */
  async signCompact(payload: Uint8Array): Promise<string> {
    // RFC 7515 compact serialization, signed with node:crypto directly (the relying-party side
    // verifies with jose): ES256 signatures are r ‖ s (RFC 7518 §3.4), EdDSA per RFC 8037.
    const input = `${this.#protectedHeader}.${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64url')}`;
    let sig: Buffer;
    try {
      sig = this.alg === 'ES256' ? cryptoSign('sha256', Buffer.from(input), { key: this.#privateKey, dsaEncoding: 'ieee-p1363' }) : cryptoSign(null, Buffer.from(input), this.#privateKey);
    } catch {
      throw unusable('the artifact signing key could not sign');
    }
    return `${input}.${sig.toString('base64url')}`;
  }

  /** Never expose the key through JSON.stringify. */
  toJSON(): { alg: ArtifactAlg; kid: string } {
    return { alg: this.alg, kid: this.kid };
  }

  static async #load(path: string): Promise<ArtifactSigner | undefined> {
    let st;
    try {
      st = await lstat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw unusable(`signing key ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!st.isFile()) throw unusable(`signing key ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw unusable(`signing key ${path} is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600`);
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw unusable(`signing key ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw unusable(`signing key ${path} is not valid JSON`);
    }
    const file = parsed as Partial<KeyFile> | null;
    if (file === null || typeof file !== 'object' || file.version !== 1 || !ARTIFACT_ALGS.includes(file.alg as ArtifactAlg) || typeof file.jwk !== 'object' || file.jwk === null) {
      throw unusable(`signing key ${path} is not a version 1 vouch key file`);
    }
    const alg = file.alg as ArtifactAlg;
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: file.jwk, format: 'jwk' });
    } catch {
      throw unusable(`signing key ${path} does not hold a valid private key`);
    }
    const type = key.asymmetricKeyType;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const ok = alg === 'ES256' ? type === 'ec' && (curve === 'prime256v1' || curve === 'P-256') : type === 'ed25519';
    if (!ok) throw unusable(`signing key ${path} is not a key for ${alg}`);
    return new ArtifactSigner(alg, key);
  }

  static async #create(dataDir: string, path: string, alg: ArtifactAlg): Promise<void> {
    const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('ed25519');
    const jwk = pair.privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const body = `${canonicalJson({ version: 1, alg, jwk })}\n`;
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      // O_EXCL + mode 0600 from the first byte: the key is never readable by others, not even briefly.
      const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(body, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        // link() fails when the key exists: a concurrent creator's key wins and ours is dropped.
        await link(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    } catch (e) {
      throw unusable(`signing key ${path} cannot be created (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    } finally {
      // The temporary name only: absent when creation failed before it was written.
      await unlink(tmp).catch(() => undefined);
    }
  }
}
