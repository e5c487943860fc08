/**
 * The artifact signing keyring: the active key, created once in the verifier's data directory
 * and loaded on every start, plus the public halves of rotated-out keys, all published as a JWKS.
 *
 * Rotation ({@link ArtifactSigner.rotate}) writes a new active key and moves the old key's
 * *public* JWK to `<dataDir>/artifact-retired-keys.json` with `notAfter` = rotation time + the
 * longest artifact lifetime + a clock-skew margin: every artifact the old key signed has expired
 * by then, and the key leaves the JWKS (and the file, at the next rotation). The old private key
 * is destroyed at rotation: a retired key can never sign again.
 *
 * The private key lives in `<dataDir>/artifact-signing-key.json` (mode 0600, refused when
 * readable by group or others) and in a private field of {@link ArtifactSigner}; it is never
 * logged, serialised or put in an error (errors about the file carry no cause, because JSON
 * and key-import errors may quote the file's text).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { canonicalJson } from '../policy/canonical.js';
import type { CnfJwk } from './ear.js';
import { jwkThumbprint, publicJwk } from './jwk.js';
import { coseProtectedHeader, coseSign1ToBeSigned } from './cwt.js';
import { encodeCanonical } from '../lib/cbor.js';

/** JWS algorithms vouch signs artifacts with. */
export const ARTIFACT_ALGS = ['ES256', 'EdDSA'] as const;
/** One artifact signing algorithm. */
export type ArtifactAlg = (typeof ARTIFACT_ALGS)[number];

/** File name of the signing key inside the data directory. */
export const SIGNING_KEY_FILE = 'artifact-signing-key.json';

/** File name of the retired public keys inside the data directory. */
export const RETIRED_KEYS_FILE = 'artifact-retired-keys.json';

/**
 * How long a rotated-out key stays in the JWKS: the longest artifact lifetime
 * (ARTIFACT_LIFETIME.max, 3600 s) plus 300 s for relying parties' clock skew (the most leeway
 * the SDK accepts).
 */
export const RETIRED_KEY_GRACE_SECONDS = 3600 + 300;

/** A rotated-out public key and the time (epoch seconds) after which it leaves the JWKS. */
export interface RetiredKey {
  readonly jwk: PublicSigningJwk;
  readonly retiredAt: number;
  readonly notAfter: number;
}

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
  /** Clock (epoch milliseconds) deciding which retired keys are still published (default Date.now). */
  readonly clock?: () => number;
}

interface KeyFile {
  readonly version: 1;
  readonly alg: ArtifactAlg;
  readonly jwk: Record<string, string>;
}

function unusable(message: string): UnavailableError {
  return new UnavailableError('ARTIFACT_SIGNING_KEY_UNUSABLE', message);
}

/** One private signing key (the active one). */
class ActiveKey {
  /** The JWS `alg`. */
  readonly alg: ArtifactAlg;
  /** RFC 7638 thumbprint of the public key; the JWS `kid`. */
  readonly kid: string;
  /** The public key, with `kid`, `alg` and `use`. */
  readonly publicJwk: PublicSigningJwk;
  readonly #privateKey: KeyObject;
  /** base64url of the protected header `{"alg","kid","typ":"JWT"}`, the same for every artifact. */
  readonly #protectedHeader: string;

  constructor(alg: ArtifactAlg, privateKey: KeyObject) {
    const pub = publicJwk(createPublicKey(privateKey).export({ format: 'jwk' }), 'signing key');
    this.alg = alg;
    this.kid = jwkThumbprint(pub);
    this.publicJwk = Object.freeze({ ...pub, kid: this.kid, alg, use: 'sig' as const });
    this.#privateKey = privateKey;
    this.#protectedHeader = Buffer.from(JSON.stringify({ alg, kid: this.kid, typ: 'JWT' })).toString('base64url');
  }

  /**
   * Loads the signing key at `path`, creating it (and the directory, mode 0700) when absent.
   * Safe against concurrent creation: the key file appears atomically and the first writer wins.
   */
  static async open(dataDir: string, path: string, alg: ArtifactAlg | undefined): Promise<ActiveKey> {
    let loaded = await ActiveKey.load(path);
    if (loaded === undefined) {
      await ActiveKey.create(dataDir, path, alg ?? 'ES256');
      loaded = await ActiveKey.load(path);
      if (loaded === undefined) throw unusable(`signing key ${path} vanished after it was created`);
    }
    if (alg !== undefined && alg !== loaded.alg) {
      throw new MisuseError('MISUSE_ARGUMENT', `the signing key in ${path} is ${loaded.alg}, not ${alg}; use rotate-key to change algorithm`, {
        field: 'alg',
        expected: loaded.alg,
        actual: alg,
      });
    }
    return loaded;
  }

  #sign(input: Uint8Array): Uint8Array {
    // ES256 signatures are r ‖ s (RFC 7518 §3.4, RFC 9053 §2.1), EdDSA per RFC 8037 / RFC 9053 §2.2.
    try {
      return new Uint8Array(this.alg === 'ES256' ? cryptoSign('sha256', input, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' }) : cryptoSign(null, input, this.#privateKey));
    } catch {
      throw unusable('the artifact signing key could not sign');
    }
  }

  signCompact(payload: Uint8Array): string {
    // RFC 7515 compact serialization, signed with node:crypto directly (the relying-party side
    // verifies with jose).
    const input = `${this.#protectedHeader}.${Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64url')}`;
    const sig = this.#sign(Buffer.from(input));
    return `${input}.${Buffer.from(sig).toString('base64url')}`;
  }

  signCose(payload: Uint8Array): Uint8Array {
    const protectedHeader = coseProtectedHeader(this.alg, this.kid);
    const sig = this.#sign(coseSign1ToBeSigned(protectedHeader, payload));
    // Untagged COSE_Sign1 = [protected, unprotected, payload, signature] (RFC 9052 §4.2).
    return encodeCanonical([protectedHeader, new Map(), payload, sig]);
  }

  /** Never expose the key through JSON.stringify. */
  toJSON(): { alg: ArtifactAlg; kid: string } {
    return { alg: this.alg, kid: this.kid };
  }

  static async load(path: string): Promise<ActiveKey | undefined> {
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
    return new ActiveKey(alg, key);
  }

  static async create(dataDir: string, path: string, alg: ArtifactAlg): Promise<void> {
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

/** Identity of a file's current version (a rotation replaces the file, so its inode changes). */
async function fileStamp(path: string): Promise<string> {
  try {
    const st = await lstat(path);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw unusable(`${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

async function loadRetired(path: string): Promise<RetiredKey[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw unusable(`retired keys ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw unusable(`retired keys ${path} is not valid JSON`);
  }
  if (!isRecord(parsed) || parsed['version'] !== 1 || !Array.isArray(parsed['keys'])) throw unusable(`retired keys ${path} is not a version 1 vouch retired-keys file`);
  const out: RetiredKey[] = [];
  for (const k of parsed['keys'] as unknown[]) {
    if (!isRecord(k) || !isRecord(k['jwk']) || !Number.isSafeInteger(k['retiredAt']) || !Number.isSafeInteger(k['notAfter'])) throw unusable(`retired keys ${path} holds a malformed entry`);
    const j = k['jwk'];
    const alg = j['alg'];
    if (!ARTIFACT_ALGS.includes(alg as ArtifactAlg)) throw unusable(`retired keys ${path} holds a key of unknown alg`);
    let pub: CnfJwk;
    try {
      pub = publicJwk(Object.fromEntries(Object.entries(j).filter(([m]) => m !== 'kid' && m !== 'alg' && m !== 'use')), 'retired key');
    } catch {
      throw unusable(`retired keys ${path} holds a key that is not a public key`);
    }
    const kid = jwkThumbprint(pub);
    if (j['kid'] !== kid) throw unusable(`retired keys ${path} holds a key whose kid is not its thumbprint`);
    out.push({ jwk: Object.freeze({ ...pub, kid, alg: alg as ArtifactAlg, use: 'sig' as const }), retiredAt: k['retiredAt'] as number, notAfter: k['notAfter'] as number });
  }
  return out;
}

/** Writes `body` to `path` atomically (temporary file, mode 0600, fsync, rename). */
async function writeAtomic(dir: string, path: string, body: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw unusable(`${path} cannot be written (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * Signs artifacts with the verifier's active key and publishes the keyring (active key plus
 * retired keys still within their grace period) as a JWKS. A key rotated by another process
 * (`vouch verifier rotate-key`) is picked up by {@link ArtifactSigner.refresh}, which the
 * signing methods and {@link ArtifactSigner.currentJwks} call.
 */
export class ArtifactSigner {
  readonly #dataDir: string;
  readonly #clock: () => number;
  #active: ActiveKey;
  #retired: readonly RetiredKey[];
  #stamp: string;

  private constructor(dataDir: string, clock: () => number, active: ActiveKey, retired: readonly RetiredKey[], stamp: string) {
    this.#dataDir = dataDir;
    this.#clock = clock;
    this.#active = active;
    this.#retired = retired;
    this.#stamp = stamp;
  }

  /** The active key's JWS `alg`. */
  get alg(): ArtifactAlg {
    return this.#active.alg;
  }

  /** RFC 7638 thumbprint of the active public key; the JWS `kid` and the COSE kid (UTF-8). */
  get kid(): string {
    return this.#active.kid;
  }

  /** The active public key, with `kid`, `alg` and `use`. */
  get publicJwk(): PublicSigningJwk {
    return this.#active.publicJwk;
  }

  /**
   * Loads the keyring from `dataDir`, creating the active key (and the directory, mode 0700)
   * when absent. Safe against concurrent creation: the first writer's key wins.
   * @throws UnavailableError ARTIFACT_SIGNING_KEY_UNUSABLE
   * @throws MisuseError MISUSE_ARGUMENT when `options.alg` differs from the stored key's
   */
  static async open(dataDir: string, options: ArtifactSignerOptions = {}): Promise<ArtifactSigner> {
    if (options.alg !== undefined && !ARTIFACT_ALGS.includes(options.alg)) {
      throw new MisuseError('MISUSE_ARGUMENT', `artifact signing algorithm must be one of ${ARTIFACT_ALGS.join(', ')}`, { field: 'alg', actual: String(options.alg) });
    }
    const keyPath = join(dataDir, SIGNING_KEY_FILE);
    const active = await ActiveKey.open(dataDir, keyPath, options.alg);
    const stamp = await ArtifactSigner.#stampOf(dataDir);
    const retired = await loadRetired(join(dataDir, RETIRED_KEYS_FILE));
    return new ArtifactSigner(dataDir, options.clock ?? Date.now, active, retired, stamp);
  }

  static async #stampOf(dataDir: string): Promise<string> {
    return `${await fileStamp(join(dataDir, SIGNING_KEY_FILE))}|${await fileStamp(join(dataDir, RETIRED_KEYS_FILE))}`;
  }

  /**
   * Rotates the keyring in `dataDir`: a new active key of `alg` (default: the current key's),
   * the old key's public half kept in the JWKS for {@link RETIRED_KEY_GRACE_SECONDS}, retired
   * keys past their grace period dropped. Returns the new and the retired kid. Rotations of one
   * data directory must not run concurrently (the CLI is run by an operator).
   * @throws UnavailableError ARTIFACT_SIGNING_KEY_UNUSABLE
   */
  static async rotate(dataDir: string, options: { readonly alg?: ArtifactAlg; readonly now?: number } = {}): Promise<{ kid: string; retiredKid: string; alg: ArtifactAlg }> {
    if (options.alg !== undefined && !ARTIFACT_ALGS.includes(options.alg)) {
      throw new MisuseError('MISUSE_ARGUMENT', `artifact signing algorithm must be one of ${ARTIFACT_ALGS.join(', ')}`, { field: 'alg', actual: String(options.alg) });
    }
    const now = options.now ?? Math.floor(Date.now() / 1000);
    const keyPath = join(dataDir, SIGNING_KEY_FILE);
    const retiredPath = join(dataDir, RETIRED_KEYS_FILE);
    const old = await ActiveKey.open(dataDir, keyPath, undefined);
    const alg = options.alg ?? old.alg;
    // Create the new key under a temporary name (0600 from the first byte), load it back to check it.
    const staged = `${keyPath}.next-${process.pid}-${randomBytes(6).toString('hex')}`;
    await ActiveKey.create(dataDir, staged, alg);
    try {
      const next = await ActiveKey.load(staged);
      if (next === undefined) throw unusable(`signing key ${staged} vanished after it was created`);
      // 1. Publish the old key as retired first, so that the JWKS never lacks it.
      const kept = (await loadRetired(retiredPath)).filter((k) => k.notAfter > now && k.jwk.kid !== old.kid);
      const retired = [...kept, { jwk: old.publicJwk, retiredAt: now, notAfter: now + RETIRED_KEY_GRACE_SECONDS }];
      await writeAtomic(dataDir, retiredPath, `${canonicalJson({ version: 1, keys: retired })}\n`);
      // 2. Switch the active key; the old private key is gone with the replaced file.
      try {
        await rename(staged, keyPath);
      } catch (e) {
        throw unusable(`signing key ${keyPath} cannot be replaced (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      return { kid: next.kid, retiredKid: old.kid, alg };
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  /** Rotates this signer's keyring (see {@link ArtifactSigner.rotate}) and reloads it. */
  async rotate(alg?: ArtifactAlg): Promise<{ kid: string; retiredKid: string; alg: ArtifactAlg }> {
    const r = await ArtifactSigner.rotate(this.#dataDir, { ...(alg !== undefined ? { alg } : {}), now: Math.floor(this.#clock() / 1000) });
    await this.refresh();
    return r;
  }

  /** Reloads the keyring when another process rotated it since it was loaded. */
  async refresh(): Promise<void> {
    const stamp = await ArtifactSigner.#stampOf(this.#dataDir);
    if (stamp === this.#stamp) return;
    const active = await ActiveKey.open(this.#dataDir, join(this.#dataDir, SIGNING_KEY_FILE), undefined);
    const retired = await loadRetired(join(this.#dataDir, RETIRED_KEYS_FILE));
    this.#active = active;
    this.#retired = retired;
    this.#stamp = stamp;
  }

  /**
   * The public JWKS: the active key first, then every retired key whose grace period has not
   * ended at the signer's clock.
   */
  jwks(): Jwks {
    const now = Math.floor(this.#clock() / 1000);
    const keys: PublicSigningJwk[] = [this.#active.publicJwk];
    for (const r of this.#retired) if (r.notAfter > now && r.jwk.kid !== this.#active.kid) keys.push(r.jwk);
    return { keys };
  }

  /** {@link ArtifactSigner.jwks} after {@link ArtifactSigner.refresh}. */
  async currentJwks(): Promise<Jwks> {
    await this.refresh();
    return this.jwks();
  }

  /**
   * Signs `payload` as a compact JWS with protected header `{alg, kid, typ: "JWT"}` (in that
   * canonical form). ES256 signatures are randomised; everything else is deterministic.
   */
  async signCompact(payload: Uint8Array): Promise<string> {
    await this.refresh();
    return this.#active.signCompact(payload);
  }

  /**
   * Signs `payload` (the CBOR claims) as an untagged COSE_Sign1 (RFC 9052 §4.2) with protected
   * header `{1: alg, 4: kid}` and an empty unprotected header.
   */
  async signCose(payload: Uint8Array): Promise<Uint8Array> {
    await this.refresh();
    return this.#active.signCose(payload);
  }

  /** Never expose the key through JSON.stringify. */
  toJSON(): { alg: ArtifactAlg; kid: string } {
    return this.#active.toJSON();
  }
}
