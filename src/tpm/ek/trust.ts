/**
 * TPM vendor CA trust stores: the certificates an EK chain may end at.
 *
 * A store is immutable once built, deduplicated by SHA-256 fingerprint and indexed by subject
 * name. Loading a directory reports every file it could not use; it never skips one silently.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { MisuseError, isVouchError, type ErrorCode } from '../../lib/errors.js';
import { parseEkCertificate, type EkCertificate } from './certificate.js';
import { splitPemCertificates, startsWithPemCertificate } from './der.js';

/** A set of trusted TPM CA certificates (roots, or intermediates trusted directly). */
export class EkTrustStore {
  readonly #certs: readonly EkCertificate[];
  readonly #byFingerprint: ReadonlyMap<string, EkCertificate>;
  readonly #bySubject: ReadonlyMap<string, readonly EkCertificate[]>;

  /** Use {@link trustStoreFromCerts} or {@link loadTrustDirectory}. */
  constructor(certs: readonly EkCertificate[]) {
    const byFingerprint = new Map<string, EkCertificate>();
    const bySubject = new Map<string, EkCertificate[]>();
    const list: EkCertificate[] = [];
    for (const c of certs) {
      if (byFingerprint.has(c.fingerprint)) continue;
      byFingerprint.set(c.fingerprint, c);
      list.push(c);
      const same = bySubject.get(c.subjectNameKey);
      if (same === undefined) bySubject.set(c.subjectNameKey, [c]);
      else same.push(c);
    }
    this.#certs = Object.freeze(list);
    this.#byFingerprint = byFingerprint;
    this.#bySubject = bySubject;
  }

  /** Every trusted certificate, first-seen order, without duplicates. */
  get certificates(): readonly EkCertificate[] {
    return this.#certs;
  }

  /** Number of distinct trusted certificates. */
  get size(): number {
    return this.#certs.length;
  }

  /** True when this exact certificate (same DER) is trusted. */
  has(cert: EkCertificate): boolean {
    return this.#byFingerprint.has(cert.fingerprint);
  }

  /** Trusted certificates whose subject name matches `nameKey` (an `issuerNameKey`). */
  withSubject(nameKey: string): readonly EkCertificate[] {
    return this.#bySubject.get(nameKey) ?? [];
  }
}

/** Builds a trust store from parsed certificates (duplicates are dropped). */
export function trustStoreFromCerts(certs: readonly EkCertificate[]): EkTrustStore {
  return new EkTrustStore(certs);
}

/** A file, or one PEM block of a file, that could not be used as a trust anchor. */
export interface TrustLoadProblem {
  /** Path relative to the loaded directory. */
  readonly path: string;
  /** Index of the PEM block in the file, when the file holds PEM blocks. */
  readonly block?: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** What {@link loadTrustDirectory} found. */
export interface TrustDirectory {
  readonly store: EkTrustStore;
  /** Every file or PEM block that did not parse; the caller decides whether that is fatal. */
  readonly problems: readonly TrustLoadProblem[];
  /** Certificate files read (relative paths). */
  readonly files: readonly string[];
  /** Entries that are not certificate files by name (other extensions, special files), relative paths. */
  readonly ignored: readonly string[];
}

const PEM_EXT = /\.pem$/i;
const CERT_EXT = /\.(pem|crt|cer|der)$/i;
/** Directory nesting followed at most (the keylime store is one level down). */
const MAX_DIR_DEPTH = 8;
/** Largest certificate file read (a PEM bundle of a few hundred CAs). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

function listFiles(root: string, dir: string, depth: number, files: string[], ignored: string[]): void {
  const names = readdirSync(dir).sort();
  for (const name of names) {
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) {
      if (depth >= MAX_DIR_DEPTH) ignored.push(relative(root, full));
      else listFiles(root, full, depth + 1, files, ignored);
    } else if (st.isFile() && CERT_EXT.test(name)) {
      files.push(full);
    } else {
      ignored.push(relative(root, full));
    }
  }
}

function problemOf(path: string, e: unknown, block?: number): TrustLoadProblem {
  if (isVouchError(e)) return { path, ...(block !== undefined ? { block } : {}), code: e.code, message: e.message };
  throw e;
}

/**
 * Loads a TPM vendor CA directory, subfolders included: `*.pem` files (one or more
 * `CERTIFICATE` blocks, explanatory text allowed around them), and `*.crt`, `*.cer`, `*.der`
 * files (DER, or a single PEM certificate when the file starts with the PEM header).
 * Files are read in sorted order so the store is the same on every machine.
 *
 * @throws MisuseError MISUSE_FILE_UNREADABLE when `dir` itself cannot be listed
 */
export function loadTrustDirectory(dir: string): TrustDirectory {
  const paths: string[] = [];
  const ignored: string[] = [];
  try {
    listFiles(dir, dir, 0, paths, ignored);
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `trust directory ${dir} cannot be read`, { field: 'trustDirectory', cause: e });
  }
  const certs: EkCertificate[] = [];
  const problems: TrustLoadProblem[] = [];
  const files: string[] = [];
  for (const full of paths) {
    const rel = relative(dir, full);
    files.push(rel);
    let bytes: Uint8Array;
    try {
      if (statSync(full).size > MAX_FILE_BYTES) {
        problems.push({ path: rel, code: 'MISUSE_FILE_UNREADABLE', message: `${rel} is larger than ${MAX_FILE_BYTES} bytes` });
        continue;
      }
      bytes = new Uint8Array(readFileSync(full));
    } catch (e) {
      problems.push({ path: rel, code: 'MISUSE_FILE_UNREADABLE', message: `${rel} cannot be read: ${e instanceof Error ? e.message : String(e)}` });
      continue;
    }
    if (PEM_EXT.test(full) || startsWithPemCertificate(bytes)) {
      let blocks: Uint8Array[];
      try {
        blocks = splitPemCertificates(Buffer.from(bytes).toString('latin1'), rel);
      } catch (e) {
        problems.push(problemOf(rel, e));
        continue;
      }
      if (blocks.length === 0) {
        problems.push({ path: rel, code: 'EK_CERT_MALFORMED', message: `${rel} holds no "-----BEGIN CERTIFICATE-----" block` });
        continue;
      }
      blocks.forEach((der, i) => {
        try {
          certs.push(parseEkCertificate(der));
        } catch (e) {
          problems.push(problemOf(rel, e, i));
        }
      });
    } else {
      try {
        certs.push(parseEkCertificate(bytes));
      } catch (e) {
        problems.push(problemOf(rel, e));
      }
    }
  }
  return { store: new EkTrustStore(certs), problems, files, ignored };
}
