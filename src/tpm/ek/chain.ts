/**
 * EK certificate chain building and validation (RFC 5280 §6, as far as EK chains need it).
 *
 * The result is a value: every failure of the chosen path is listed with its code, the field
 * concerned (`chain[1].extensions.basicConstraints.cA`), what was expected and what was found.
 * Nothing here reads the clock: the verification time is injected. Signatures are verified
 * with node:crypto over each certificate's exact `tbs` bytes, with the issuer's KeyObject
 * imported once at parse time.
 */
import { constants, verify as cryptoVerify } from 'node:crypto';
import { MisuseError, type ErrorCode } from '../../lib/errors.js';
import { EXT_OID, type EkCertificate } from './certificate.js';
import type { EkTrustStore } from './trust.js';

/** One reason a check did not pass. */
export interface EkFailure {
  readonly code: ErrorCode;
  /** Where: `chain[i].<certificate field>` (or the TPM field for key checks). */
  readonly field?: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly message: string;
}

/** Result of {@link verifyEkChain}. */
export interface EkChainResult {
  /** True only when a chain to a trusted certificate was built and every check on it passed. */
  readonly ok: boolean;
  /**
   * The chain that was checked, leaf first. When `anchored`, it ends at a trusted certificate:
   * the highest one on the path when that chain passes (a root above a trusted intermediate is
   * included), else a lower trusted one that passes. Otherwise it is the path that could be
   * built, for diagnosis.
   */
  readonly chain: readonly EkCertificate[];
  /** True when `chain` ends at a certificate of the trust store. */
  readonly anchored: boolean;
  /** Every failure on `chain` (empty exactly when `ok`). */
  readonly failures: readonly EkFailure[];
}

/** Inputs of {@link verifyEkChain}. */
export interface EkChainOptions {
  /** Trusted TPM CA certificates: roots, or intermediates trusted directly. */
  readonly trust: EkTrustStore;
  /** Untrusted CA certificates that may complete the chain (the TPM's EK-chain NV indices 0x01c00100–0x01c001ff). */
  readonly intermediates?: readonly EkCertificate[];
  /** The verification time. */
  readonly now: Date;
  /** Maximum number of certificates in a chain, leaf and anchor included (default 6, at most 16). */
  readonly maxDepth?: number;
}

/** Default maximum chain length (leaf, up to four intermediates, root). */
export const DEFAULT_MAX_DEPTH = 6;
const MAX_DEPTH_LIMIT = 16;
/** Intermediates accepted from the agent: more than the EK-chain NV range ever holds in practice. */
export const MAX_INTERMEDIATES = 32;
/** Candidate paths examined at most; bounds the work an attacker's same-named intermediates can cause. */
const MAX_PATHS = 64;

/**
 * Critical extensions the validation processes (RFC 5280 §4.2: a certificate with any other
 * critical extension must be rejected). certificatePolicies and extKeyUsage are accepted as
 * they are: EK validation runs with the any-policy initial set and no EKU requirement on CAs.
 */
const HANDLED_CRITICAL: ReadonlySet<string> = new Set([
  EXT_OID.basicConstraints,
  EXT_OID.keyUsage,
  EXT_OID.subjectAltName,
  EXT_OID.certificatePolicies,
  EXT_OID.extKeyUsage,
  EXT_OID.subjectDirectoryAttributes,
]);

function describe(c: EkCertificate): string {
  return c.subject === '' ? `certificate with serial ${c.serial} issued by "${c.issuer}"` : `"${c.subject}"`;
}

/** Verifies signatures once per (certificate, issuer) pair within one call. */
class SignatureChecker {
  readonly #cache = new Map<string, string | undefined>();

  /** undefined when `child`'s signature verifies with `issuer`'s key, else why not. */
  check(child: EkCertificate, issuer: EkCertificate): string | undefined {
    const key = `${child.fingerprint}>${issuer.fingerprint}`;
    if (this.#cache.has(key)) return this.#cache.get(key);
    const why = verifyOnce(child, issuer);
    this.#cache.set(key, why);
    return why;
  }
}

function verifyOnce(child: EkCertificate, issuer: EkCertificate): string | undefined {
  const alg = child.signatureAlgorithm;
  if (alg === undefined) return `signature algorithm ${child.signatureAlgorithmOid} is not supported`;
  const keyType = issuer.publicKey.asymmetricKeyType;
  const fits = alg.scheme === 'ecdsa' ? keyType === 'ec' : alg.scheme === 'rsa-pss' ? keyType === 'rsa' || keyType === 'rsa-pss' : keyType === 'rsa';
  if (!fits) return `a ${alg.scheme} signature cannot be made by the issuer's ${keyType ?? 'unknown'} key`;
  let ok: boolean;
  try {
    if (alg.scheme === 'ecdsa') {
      ok = cryptoVerify(alg.hash, child.tbs, { key: issuer.publicKey, dsaEncoding: 'der' }, child.signature);
    } else if (alg.scheme === 'rsa-pss') {
      ok = cryptoVerify(alg.hash, child.tbs, { key: issuer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? 20 }, child.signature);
    } else {
      ok = cryptoVerify(alg.hash, child.tbs, { key: issuer.publicKey, padding: constants.RSA_PKCS1_PADDING }, child.signature);
    }
  } catch (e) {
    // OpenSSL rejects some malformed signatures by throwing rather than returning false;
    // either way the signature does not verify, and the reason is kept.
    return `signature cannot be verified: ${e instanceof Error ? e.message : String(e)}`;
  }
  return ok ? undefined : 'signature does not verify';
}

interface Path {
  readonly certs: readonly EkCertificate[];
  /** The search stopped at maxDepth while issuers were still available. */
  readonly truncated: boolean;
}

function isSelfSigned(c: EkCertificate, sigs: SignatureChecker): boolean {
  return c.selfIssued && sigs.check(c, c) === undefined;
}

/** Candidate issuers of `c`: agent intermediates first, then the trust store, by subject name. */
function issuersOf(c: EkCertificate, intermediates: readonly EkCertificate[], trust: EkTrustStore): EkCertificate[] {
  const out: EkCertificate[] = [];
  const seen = new Set<string>([c.fingerprint]);
  for (const cand of [...intermediates.filter((i) => i.subjectNameKey === c.issuerNameKey), ...trust.withSubject(c.issuerNameKey)]) {
    if (seen.has(cand.fingerprint)) continue;
    seen.add(cand.fingerprint);
    out.push(cand);
  }
  return out;
}

/** Every maximal issuer path from the leaf (depth-first, deterministic order, bounded). */
function buildPaths(leaf: EkCertificate, intermediates: readonly EkCertificate[], trust: EkTrustStore, maxDepth: number, sigs: SignatureChecker): Path[] {
  const paths: Path[] = [];
  const walk = (certs: EkCertificate[]): void => {
    if (paths.length >= MAX_PATHS) return;
    const top = certs[certs.length - 1] as EkCertificate;
    if (isSelfSigned(top, sigs)) {
      paths.push({ certs, truncated: false });
      return;
    }
    const cands = issuersOf(top, intermediates, trust).filter((c) => !certs.some((p) => p.fingerprint === c.fingerprint));
    if (cands.length === 0) {
      paths.push({ certs, truncated: false });
      return;
    }
    if (certs.length >= maxDepth) {
      paths.push({ certs, truncated: true });
      return;
    }
    for (const c of cands) walk([...certs, c]);
  };
  walk([leaf]);
  return paths;
}

/** All checks on an anchored (or, for diagnosis, unanchored) chain. */
function checkChain(chain: readonly EkCertificate[], now: Date, sigs: SignatureChecker): EkFailure[] {
  const failures: EkFailure[] = [];
  const t = now.getTime();
  chain.forEach((c, i) => {
    if (t < c.notBefore.getTime() || t > c.notAfter.getTime()) {
      failures.push({
        code: 'EK_CHAIN_EXPIRED',
        field: `chain[${i}].tbsCertificate.validity`,
        expected: `${c.notBefore.toISOString()}..${c.notAfter.toISOString()}`,
        actual: now.toISOString(),
        message: `${describe(c)} is ${t < c.notBefore.getTime() ? 'not yet valid' : 'expired'} at ${now.toISOString()}`,
      });
    }
    for (const oid of c.criticalExtensions) {
      if (HANDLED_CRITICAL.has(oid)) continue;
      failures.push({
        code: 'EK_CHAIN_CRITICAL_EXTENSION',
        field: `chain[${i}].tbsCertificate.extensions.${oid}`,
        actual: oid,
        message: `${describe(c)} has critical extension ${oid}, which vouch does not process`,
      });
    }
  });
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i] as EkCertificate;
    const issuer = chain[i + 1] as EkCertificate;
    const j = i + 1;
    const why = sigs.check(child, issuer);
    if (why !== undefined) {
      failures.push({
        code: 'EK_CHAIN_SIGNATURE_INVALID',
        field: `chain[${i}].signatureValue`,
        expected: `signature by ${describe(issuer)} (${child.signatureAlgorithmOid})`,
        actual: why,
        message: `${describe(child)}: ${why} with the key of ${describe(issuer)}`,
      });
    }
    const bc = issuer.basicConstraints;
    if (bc === undefined || !bc.ca) {
      failures.push({
        code: 'EK_CHAIN_NOT_CA',
        field: `chain[${j}].extensions.basicConstraints.cA`,
        expected: 'TRUE',
        actual: bc === undefined ? 'extension absent' : 'FALSE',
        message: `${describe(issuer)} issued ${describe(child)} but is not a CA (basicConstraints)`,
      });
    }
    // RFC 5280 §4.2.1.3: a CA MUST include keyUsage, and §6.1.4 (n) requires keyCertSign in it.
    // Path validation alone would accept an absent keyUsage; vouch does not (every TPM vendor
    // CA in the known stores carries it).
    if (issuer.keyUsage === undefined || !issuer.keyUsage.usages.includes('keyCertSign')) {
      failures.push({
        code: 'EK_CHAIN_NOT_CA',
        field: `chain[${j}].extensions.keyUsage.keyCertSign`,
        expected: 'keyCertSign',
        actual: issuer.keyUsage === undefined ? 'extension absent' : issuer.keyUsage.usages.join(',') || 'none',
        message: `${describe(issuer)} issued ${describe(child)} but its key usage does not allow keyCertSign`,
      });
    }
    // RFC 5280 §4.2.1.9: pathLenConstraint bounds the non-self-issued intermediates below it
    // (chain[1..j-1]); the leaf is not counted.
    if (bc?.pathLength !== undefined) {
      const below = chain.slice(1, j).filter((c) => !c.selfIssued).length;
      if (below > bc.pathLength) {
        failures.push({
          code: 'EK_CHAIN_PATH_LENGTH',
          field: `chain[${j}].extensions.basicConstraints.pathLenConstraint`,
          expected: `<= ${bc.pathLength} intermediate CA certificates below`,
          actual: String(below),
          message: `${describe(issuer)} allows ${bc.pathLength} intermediate CAs below it, the chain has ${below}`,
        });
      }
    }
  }
  // A self-signed top is checked too: a damaged or substituted root must not pass unnoticed.
  const n = chain.length - 1;
  const top = chain[n] as EkCertificate;
  if (top.selfIssued) {
    const why = sigs.check(top, top);
    if (why !== undefined) {
      failures.push({
        code: 'EK_CHAIN_SIGNATURE_INVALID',
        field: `chain[${n}].signatureValue`,
        expected: 'self-signature',
        actual: why,
        message: `${describe(top)}: ${why} with its own key`,
      });
    }
  }
  return failures;
}

interface Candidate {
  readonly chain: readonly EkCertificate[];
  readonly anchored: boolean;
  readonly failures: EkFailure[];
}

function assertOptions(leaf: EkCertificate, opts: EkChainOptions): number {
  if (typeof leaf !== 'object' || leaf === null || !(leaf.der instanceof Uint8Array)) {
    throw new MisuseError('MISUSE_ARGUMENT', 'verifyEkChain: leaf is not a parsed EkCertificate', { field: 'leaf' });
  }
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime())) {
    throw new MisuseError('MISUSE_ARGUMENT', 'verifyEkChain: now must be a valid Date', { field: 'now' });
  }
  if (typeof opts.trust !== 'object' || opts.trust === null || typeof opts.trust.withSubject !== 'function') {
    throw new MisuseError('MISUSE_ARGUMENT', 'verifyEkChain: trust must be an EkTrustStore', { field: 'trust' });
  }
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH_LIMIT) {
    throw new MisuseError('MISUSE_ARGUMENT', `verifyEkChain: maxDepth must be an integer in 1..${MAX_DEPTH_LIMIT}`, {
      field: 'maxDepth',
      expected: `1..${MAX_DEPTH_LIMIT}`,
      actual: String(maxDepth),
    });
  }
  return maxDepth;
}

/**
 * Builds the chain from `leaf` to a trusted certificate and validates it at `now`.
 *
 * Issuers are found by subject name (compared per RFC 5280 §7.1, so unsorted multi-valued
 * RDNs match) among the agent's `intermediates` and the trust store. Paths are extended to a
 * self-signed root where one is available; any trusted certificate on a path can anchor it,
 * the highest first, so an intermediate placed in the trust store anchors a chain whose root
 * is absent (or fails). The first candidate chain with no failure wins; otherwise the anchored
 * chain with the fewest failures is reported, and an unanchored one only when none is anchored.
 *
 * Checked on the reported chain: validity of every certificate at `now` (EK_CHAIN_EXPIRED);
 * the signature of every link over the exact TBS bytes, and the self-signature of a lone root
 * (EK_CHAIN_SIGNATURE_INVALID); basic constraints cA and keyUsage keyCertSign on every
 * issuer (EK_CHAIN_NOT_CA); path length constraints (EK_CHAIN_PATH_LENGTH); unprocessed
 * critical extensions (EK_CHAIN_CRITICAL_EXTENSION); no trusted issuer (EK_CHAIN_NO_ISSUER);
 * no anchor within `maxDepth` certificates, or too many intermediates (EK_CHAIN_TOO_LONG).
 * Revocation is not checked here.
 *
 * @throws MisuseError MISUSE_ARGUMENT on invalid options (never for a chain that fails)
 */
export function verifyEkChain(leaf: EkCertificate, opts: EkChainOptions): EkChainResult {
  const maxDepth = assertOptions(leaf, opts);
  const intermediates = opts.intermediates ?? [];
  if (intermediates.length > MAX_INTERMEDIATES) {
    return {
      ok: false,
      chain: [leaf],
      anchored: false,
      failures: [
        {
          code: 'EK_CHAIN_TOO_LONG',
          field: 'intermediates',
          expected: `<= ${MAX_INTERMEDIATES}`,
          actual: String(intermediates.length),
          message: `${intermediates.length} intermediate certificates supplied, at most ${MAX_INTERMEDIATES} are considered`,
        },
      ],
    };
  }
  const sigs = new SignatureChecker();
  const paths = buildPaths(leaf, intermediates, opts.trust, maxDepth, sigs);

  let best: Candidate | undefined;
  const better = (c: Candidate): boolean =>
    best === undefined || (c.anchored && !best.anchored) || (c.anchored === best.anchored && c.failures.length < best.failures.length);
  const done = (): boolean => best !== undefined && best.anchored && best.failures.length === 0;
  for (const p of paths) {
    // Every trusted certificate on the path can anchor it. The highest is tried first, so a
    // chain reaches the root when the root is usable; a lower trusted certificate (an
    // intermediate placed in the trust store) anchors it when the part above it fails.
    let anchoredHere = false;
    for (let k = p.certs.length - 1; k >= 0 && !done(); k--) {
      if (!opts.trust.has(p.certs[k] as EkCertificate)) continue;
      anchoredHere = true;
      const chain = p.certs.slice(0, k + 1);
      const cand: Candidate = { chain, anchored: true, failures: checkChain(chain, opts.now, sigs) };
      if (better(cand)) best = cand;
    }
    if (!anchoredHere) {
      const failures = checkChain(p.certs, opts.now, sigs);
      const top = p.certs[p.certs.length - 1] as EkCertificate;
      const i = p.certs.length - 1;
      failures.push(
        p.truncated
          ? {
              code: 'EK_CHAIN_TOO_LONG',
              field: `chain[${i}].issuer`,
              expected: `a trusted certificate within ${maxDepth} certificates`,
              actual: `${p.certs.length} certificates without one`,
              message: `no trusted certificate within ${maxDepth} certificates of ${describe(leaf)}`,
            }
          : {
              code: 'EK_CHAIN_NO_ISSUER',
              field: `chain[${i}].issuer`,
              expected: 'a trusted CA certificate with this subject',
              actual: top.issuer,
              message: `no trusted certificate issued ${describe(top)} (issuer "${top.issuer}")`,
            },
      );
      const cand: Candidate = { chain: p.certs, anchored: false, failures };
      if (better(cand)) best = cand;
    }
    if (done()) break;
  }
  // buildPaths always yields at least the path [leaf].
  const chosen = best as Candidate;
  return { ok: chosen.anchored && chosen.failures.length === 0, chain: chosen.chain, anchored: chosen.anchored, failures: chosen.failures };
}
