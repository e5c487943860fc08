/**
 * Authenticity of a SEV-SNP attestation report (AMD SEV-SNP ABI spec §7.3; VCEK spec §3).
 *
 * Fixed order: SIGNATURE_ALGO and SIGNING_KEY → the ECDSA P-384 report signature over the exact
 * signed bytes → the chain VCEK → ASK → ARK (or VLEK → ASVK → ARK): RSA-PSS SHA-384 over each
 * exact TBS, validity at the injected time, the ARK pinned by SHA-256 fingerprint → the
 * VCEK/VLEK extensions against the report (product, hwID = CHIP_ID, TCB = REPORTED_TCB) →
 * revocation of the ASK/ASVK by the AMD CRL, and the CRL's age when a maximum is set. Every
 * failure is returned as a value; the result records each allowance that was used and the CRL
 * that was checked. Nothing here reads the clock or the network.
 */
import 'reflect-metadata';
import { constants, createHash, verify as cryptoVerify } from 'node:crypto';
import { X509Crl } from '@peculiar/x509';
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, isVouchError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { locateCertificate } from '../tpm/ek/der.js';
import type { EkCertificate } from '../tpm/ek/certificate.js';
import type { CheckOutcome } from '../tpm/verify/quote.js';
import {
  SNP_SIG_ALGO_ECDSA_P384_SHA384,
  SNP_SIGNING_KEY,
  snpChipIdMasked,
  snpProductOfCpuid,
  snpTcbComponents,
  type DecodedSnpReport,
  type SnpProduct,
} from './abi.js';
import { AMD_ARK_FINGERPRINTS, parseSnpCertificate, snpProductOfName, type AmdExtensions, type SnpCertificate } from './certs.js';

export type { CheckOutcome };

/** A certificate as DER/PEM bytes or already parsed (parsed ones can be cached by the caller). */
export type SnpCertInput = Uint8Array | SnpCertificate;

/** Inputs of {@link verifySnpReport}. Exactly one of `vcek`/`vlek`, with `ask` or `asvk` to match. */
export interface SnpVerifyOptions {
  readonly vcek?: SnpCertInput;
  readonly vlek?: SnpCertInput;
  /** The ASK (VCEK chains) or ASVK (VLEK chains); either name is accepted for either. */
  readonly ask?: SnpCertInput;
  readonly asvk?: SnpCertInput;
  readonly ark: SnpCertInput;
  /** The verification time. */
  readonly now: Date;
  /** AMD's CRL for the product (DER), signed by the ARK. */
  readonly crl?: Uint8Array;
  /** Accept a report whose CHIP_ID is masked (all zero): the hwID comparison is then not made. */
  readonly allowMaskedChipId?: boolean;
  /** Accept the absence of a CRL: revocation is then not checked. */
  readonly allowMissingCrl?: boolean;
  /**
   * Refuse a CRL whose thisUpdate is more than this many seconds before `now`
   * (SNP_CRL_TOO_OLD), even while it is before its nextUpdate. Absent: only the CRL's own
   * thisUpdate..nextUpdate window bounds it. A positive whole number.
   */
  readonly crlMaxAgeSeconds?: number;
  /**
   * ARK fingerprints (SHA-256 of the DER, hex) trusted, with their product. Defaults to
   * {@link AMD_ARK_FINGERPRINTS}; replace only for test-only roots.
   */
  readonly pinnedArks?: Readonly<Record<string, SnpProduct>>;
  /**
   * Results that do not depend on the report or the time, kept across calls by the caller (a
   * verifier holds one): the chain's RSA-4096 signature checks and the parsed, signature-checked
   * CRL. Validity periods, revocation and every report check still run on every call.
   */
  readonly cache?: SnpVerifyCache;
}

/** A parsed CRL with the outcome of its signature check. */
interface CheckedCrl {
  readonly crl?: X509Crl;
  readonly sigOk: boolean;
  readonly parseFailure?: Failure;
}

/**
 * Memo of the time-independent parts of SNP verification, keyed by certificate and CRL
 * fingerprints (SHA-256 of the DER), so a cached entry always describes the exact same bytes.
 * Bounded: the oldest entries go first.
 */
export class SnpVerifyCache {
  readonly #signatures = new Map<string, string | undefined>();
  readonly #crls = new Map<string, CheckedCrl>();
  readonly #max: number;

  constructor(maxEntries = 1024) {
    this.#max = maxEntries;
  }

  /** The signature problem of `child` under `issuer` (undefined: it verifies), computed once. */
  signature(child: EkCertificate, issuer: EkCertificate, compute: () => string | undefined): string | undefined {
    const key = `${child.fingerprint}:${issuer.fingerprint}`;
    if (this.#signatures.has(key)) return this.#signatures.get(key);
    const v = compute();
    this.#put(this.#signatures, key, v);
    return v;
  }

  /** The parsed CRL and its signature check under `ark`, computed once. */
  crl(crlDer: Uint8Array, ark: EkCertificate, compute: () => CheckedCrl): CheckedCrl {
    const key = `${createHash('sha256').update(crlDer).digest('hex')}:${ark.fingerprint}`;
    const hit = this.#crls.get(key);
    if (hit !== undefined) return hit;
    const v = compute();
    this.#put(this.#crls, key, v);
    return v;
  }

  #put<V>(m: Map<string, V>, k: string, v: V): void {
    if (m.size >= this.#max) m.delete(m.keys().next().value as string);
    m.set(k, v);
  }
}

/** An allowance that made a check pass or be skipped instead of failing. */
export type SnpAllowance = 'maskedChipId' | 'missingCrl';

/** The CRL a verification used, as recorded in its result. */
export interface SnpCrlUsed {
  /** tbsCertList.thisUpdate (ISO 8601). */
  readonly thisUpdate: string;
  /** tbsCertList.nextUpdate (ISO 8601), when the CRL has one. */
  readonly nextUpdate?: string;
  /** Seconds from thisUpdate to the verification time. */
  readonly ageSeconds: number;
  /** The maximum age that was applied, when one was. */
  readonly maxAgeSeconds?: number;
}

/** The result: `ok` only when no check failed. */
export interface SnpVerification {
  readonly ok: boolean;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  /** Allowances that were used (an allowance given but not needed is not listed). */
  readonly allowancesUsed: readonly SnpAllowance[];
  /** The signing key type that was checked. */
  readonly signer: 'vcek' | 'vlek';
  /** The product of the pinned ARK, when the ARK was pinned. */
  readonly product?: SnpProduct;
  /** The CRL that was checked, when one was supplied and parsed. */
  readonly crl?: SnpCrlUsed;
}

const PSS_OID = '1.2.840.113549.1.1.10';

function parsed(c: SnpCertInput, field: string, failures: Failure[]): SnpCertificate | undefined {
  if (!(c instanceof Uint8Array)) return c;
  try {
    return parseSnpCertificate(c);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    failures.push(failure('SNP_CERT_MALFORMED', { field, message: `${field}: ${e.message}` }));
    return undefined;
  }
}

function le2be(b: Uint8Array): Uint8Array {
  return Uint8Array.from(b).reverse();
}

/** ECDSA P-384/SHA-384 over the exact signed bytes; undefined when it verifies, else why not. */
function reportSignatureProblem(report: DecodedSnpReport, leaf: EkCertificate): string | undefined {
  const details = leaf.publicKey.asymmetricKeyDetails;
  if (leaf.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    return `the signing key is not an EC P-384 key (${leaf.publicKey.asymmetricKeyType ?? 'unknown'} ${details?.namedCurve ?? ''})`;
  }
  const { r, s } = report.signature;
  // R and S are 72-byte little-endian fields of which P-384 uses the low 48 bytes.
  if (r.subarray(48).some((x) => x !== 0) || s.subarray(48).some((x) => x !== 0)) return 'SIGNATURE.R or SIGNATURE.S exceeds 48 bytes';
  const sig = new Uint8Array(96);
  sig.set(le2be(r.subarray(0, 48)), 0);
  sig.set(le2be(s.subarray(0, 48)), 48);
  try {
    return cryptoVerify('sha384', report.signedBytes, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, sig) ? undefined : 'signature does not verify';
  } catch (e) {
    return `signature cannot be verified: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** RSA-PSS SHA-384 (the only scheme AMD signs its certificates with) of `child` by `issuer`. */
function certSignatureProblem(child: EkCertificate, issuer: EkCertificate): string | undefined {
  const alg = child.signatureAlgorithm;
  if (alg?.scheme !== 'rsa-pss' || alg.hash !== 'sha384') return `signature algorithm ${child.signatureAlgorithmOid} is not RSASSA-PSS with SHA-384`;
  try {
    const ok = cryptoVerify('sha384', child.tbs, { key: issuer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? 48 }, child.signature);
    return ok ? undefined : 'signature does not verify';
  } catch (e) {
    return `signature cannot be verified: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Compares a VCEK/VLEK's TCB extensions with the report field REPORTED_TCB, component by
 * component in the product's TCB layout. Every difference, and every missing extension, is a
 * SNP_VCEK_TCB_MISMATCH failure.
 */
export function compareSnpTcb(amd: AmdExtensions, reportedTcb: bigint, product: SnpProduct): Failure[] {
  const t = snpTcbComponents(reportedTcb, product);
  const rows: [string, string, number | undefined, number | undefined][] = [
    ['blSPL', 'BOOT_LOADER', amd.blSpl, t.bootLoader],
    ['teeSPL', 'TEE', amd.teeSpl, t.tee],
    ['snpSPL', 'SNP', amd.snpSpl, t.snp],
    ['ucodeSPL', 'MICROCODE', amd.ucodeSpl, t.microcode],
    ...(product === 'Turin' ? [['fmcSPL', 'FMC', amd.fmcSpl, t.fmc] as [string, string, number | undefined, number | undefined]] : []),
  ];
  const out: Failure[] = [];
  for (const [ext, comp, certValue, reportValue] of rows) {
    if (certValue === reportValue) continue;
    out.push(failure('SNP_VCEK_TCB_MISMATCH', {
      field: `ATTESTATION_REPORT.REPORTED_TCB.${comp}`,
      expected: certValue === undefined ? `certificate extension ${ext}` : String(certValue),
      actual: String(reportValue),
      message: certValue === undefined ? `the certificate has no ${ext} extension` : `the certificate's ${ext} is ${certValue}, REPORTED_TCB.${comp} is ${reportValue}`,
    }));
  }
  if (!t.reservedZero) {
    out.push(failure('SNP_VCEK_TCB_MISMATCH', { field: 'ATTESTATION_REPORT.REPORTED_TCB', actual: reportedTcb.toString(16), message: `REPORTED_TCB has non-zero bytes that the ${product} layout reserves` }));
  }
  return out;
}

function normSerial(s: string): string {
  return s.toLowerCase().replace(/^0+(?=.)/, '');
}

interface CrlCheck {
  readonly failures: Failure[];
  /** Failures of the maximum-age check, kept apart so it is its own check. */
  readonly ageFailures: Failure[];
  readonly used?: SnpCrlUsed;
}

/** Parses the CRL and checks its signature with the ARK (the time-independent part). */
function parseAndCheckCrl(crlDer: Uint8Array, ark: EkCertificate): CheckedCrl {
  let crl: X509Crl;
  let tbs: Uint8Array;
  try {
    // A CRL has the outer shape of a certificate (SEQUENCE { tbs, algorithm, signature }).
    tbs = locateCertificate(crlDer).tbs;
    crl = new X509Crl(crlDer);
  } catch (e) {
    return { sigOk: false, parseFailure: failure('SNP_CERT_MALFORMED', { field: 'crl', message: `the CRL does not parse: ${e instanceof Error ? e.message : String(e)}` }) };
  }
  let sigOk = false;
  if (crl.signatureAlgorithm !== undefined && (crl as unknown as { asn: { signatureAlgorithm: { algorithm: string } } }).asn.signatureAlgorithm.algorithm === PSS_OID) {
    try {
      sigOk = cryptoVerify('sha384', tbs, { key: ark.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, new Uint8Array(crl.signature));
    } catch {
      // A malformed signature reads as one that does not verify.
      sigOk = false;
    }
  }
  return { crl, sigOk };
}

/**
 * Verifies the CRL with the ARK at `now`, applies the maximum age, and looks up the
 * intermediate's serial.
 */
function checkCrl(crlDer: Uint8Array, ark: EkCertificate, intermediate: EkCertificate, now: Date, maxAgeSeconds: number | undefined, cache: SnpVerifyCache | undefined): CrlCheck {
  const failures: Failure[] = [];
  const ageFailures: Failure[] = [];
  const checked = cache === undefined ? parseAndCheckCrl(crlDer, ark) : cache.crl(crlDer, ark, () => parseAndCheckCrl(crlDer, ark));
  if (checked.parseFailure !== undefined || checked.crl === undefined) return { failures: [checked.parseFailure ?? failure('SNP_CERT_MALFORMED', { field: 'crl' })], ageFailures };
  const crl = checked.crl;
  const sigOk = checked.sigOk;
  if (!sigOk) failures.push(failure('SNP_CRL_INVALID', { field: 'crl.signatureValue', message: 'the CRL is not signed by the ARK with RSASSA-PSS SHA-384' }));
  const t = now.getTime();
  if (t < crl.thisUpdate.getTime() || (crl.nextUpdate !== undefined && t > crl.nextUpdate.getTime())) {
    failures.push(failure('SNP_CRL_INVALID', {
      field: 'crl.tbsCertList.nextUpdate',
      expected: `${crl.thisUpdate.toISOString()}..${crl.nextUpdate?.toISOString() ?? ''}`,
      actual: now.toISOString(),
      message: 'the CRL is not current at the verification time',
    }));
  }
  // A CRL inside its own window can still be older than the relying party accepts: thisUpdate
  // says when AMD last stated the revocation status (RFC 5280 §5.1.2.4).
  const ageSeconds = Math.floor((t - crl.thisUpdate.getTime()) / 1000);
  if (maxAgeSeconds !== undefined && ageSeconds > maxAgeSeconds) {
    ageFailures.push(failure('SNP_CRL_TOO_OLD', {
      field: 'crl.tbsCertList.thisUpdate',
      expected: `>= ${new Date(t - maxAgeSeconds * 1000).toISOString()} (at most ${maxAgeSeconds} s before ${now.toISOString()})`,
      actual: crl.thisUpdate.toISOString(),
      message: `the CRL was issued ${ageSeconds} s before the verification time, more than the maximum CRL age of ${maxAgeSeconds} s`,
    }));
  }
  const used: SnpCrlUsed = {
    thisUpdate: crl.thisUpdate.toISOString(),
    ...(crl.nextUpdate !== undefined ? { nextUpdate: crl.nextUpdate.toISOString() } : {}),
    ageSeconds,
    ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}),
  };
  if (sigOk) {
    const serial = normSerial(intermediate.serial);
    if (crl.entries.some((e) => normSerial(e.serialNumber) === serial)) {
      failures.push(failure('SNP_REVOKED', { field: 'chain[1].tbsCertificate.serialNumber', actual: intermediate.serial, message: `the intermediate ${intermediate.subject} (serial ${intermediate.serial}) is revoked` }));
    }
  }
  return { failures, ageFailures, used };
}

/**
 * Verifies a decoded report with its signing certificate and AMD chain. Returns every failure;
 * `ok` is true only when none was found.
 *
 * @throws MisuseError MISUSE_ARGUMENT when not exactly one of vcek/vlek, or not exactly one of ask/asvk, is given
 */
export function verifySnpReport(report: DecodedSnpReport, opts: SnpVerifyOptions): SnpVerification {
  if ((opts.vcek === undefined) === (opts.vlek === undefined)) throw new MisuseError('MISUSE_ARGUMENT', 'give exactly one of vcek and vlek');
  if ((opts.ask === undefined) === (opts.asvk === undefined)) throw new MisuseError('MISUSE_ARGUMENT', 'give exactly one of ask and asvk');
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime())) throw new MisuseError('MISUSE_ARGUMENT', 'now must be a valid Date');
  if (opts.crlMaxAgeSeconds !== undefined && (!Number.isSafeInteger(opts.crlMaxAgeSeconds) || opts.crlMaxAgeSeconds < 1)) {
    throw new MisuseError('MISUSE_ARGUMENT', 'crlMaxAgeSeconds must be a positive whole number of seconds', { actual: String(opts.crlMaxAgeSeconds) });
  }
  const signer: 'vcek' | 'vlek' = opts.vcek !== undefined ? 'vcek' : 'vlek';
  const checks: CheckOutcome[] = [];
  const failures: Failure[] = [];
  const allowancesUsed: SnpAllowance[] = [];
  const run = (check: string, found: readonly Failure[]): boolean => {
    checks.push({ check, outcome: found.length === 0 ? 'pass' : 'fail' });
    failures.push(...found);
    return found.length === 0;
  };
  const skip = (check: string, note: string): void => {
    checks.push({ check, outcome: 'skipped', note });
  };

  // 1. What the report says about its own signature.
  run('report.SIGNATURE_ALGO', report.signatureAlgo === SNP_SIG_ALGO_ECDSA_P384_SHA384 ? [] : [
    failure('SNP_SIGNATURE_ALGO_UNSUPPORTED', { field: 'ATTESTATION_REPORT.SIGNATURE_ALGO', expected: '1 (ECDSA P-384 with SHA-384)', actual: String(report.signatureAlgo) }),
  ]);
  run('report.SIGNING_KEY', report.signingKey === SNP_SIGNING_KEY[signer] ? [] : [
    failure('SNP_SIGNING_KEY_MISMATCH', { field: 'ATTESTATION_REPORT.SIGNING_KEY', expected: `${SNP_SIGNING_KEY[signer]} (${signer.toUpperCase()})`, actual: String(report.signingKey) }),
  ]);

  // 2. Certificates.
  const parseFailures: Failure[] = [];
  const leaf = parsed((opts.vcek ?? opts.vlek) as SnpCertInput, signer, parseFailures);
  const midName = opts.ask !== undefined ? 'ask' : 'asvk';
  const mid = parsed((opts.ask ?? opts.asvk) as SnpCertInput, midName, parseFailures);
  const ark = parsed(opts.ark, 'ark', parseFailures);
  run('certificates.parse', parseFailures);

  // 3. The report signature.
  if (leaf !== undefined) {
    // Verified even when SIGNATURE_ALGO is wrong: P-384 is the only algorithm a VCEK or VLEK signs with.
    const why = reportSignatureProblem(report, leaf.cert);
    run('report.SIGNATURE', why === undefined ? [] : [failure('SNP_SIGNATURE_INVALID', { field: 'ATTESTATION_REPORT.SIGNATURE', actual: why, message: `the report signature does not verify with the ${signer.toUpperCase()}: ${why}` })]);
  } else skip('report.SIGNATURE', 'the signing certificate did not parse');

  // 4. The chain.
  let product: SnpProduct | undefined;
  if (leaf !== undefined && mid !== undefined && ark !== undefined) {
    const pins = opts.pinnedArks ?? AMD_ARK_FINGERPRINTS;
    product = pins[ark.cert.fingerprint];
    run('chain.ark.pinned', product !== undefined ? [] : [
      failure('SNP_ARK_NOT_PINNED', { field: 'chain[2]', expected: Object.keys(pins).join(' | '), actual: ark.cert.fingerprint }),
    ]);
    const chain = [leaf.cert, mid.cert, ark.cert];
    const names = [signer, midName, 'ark'];
    const chainFailures: Failure[] = [];
    for (let i = 0; i < 3; i++) {
      const child = chain[i] as EkCertificate;
      const issuer = chain[Math.min(i + 1, 2)] as EkCertificate;
      if (child.issuerNameKey !== issuer.subjectNameKey) {
        chainFailures.push(failure('SNP_CHAIN_ISSUER_MISMATCH', { field: `chain[${i}].tbsCertificate.issuer`, expected: issuer.subject, actual: child.issuer, message: `the ${names[i]} is not issued by "${issuer.subject}"` }));
        continue;
      }
      const why = opts.cache === undefined ? certSignatureProblem(child, issuer) : opts.cache.signature(child, issuer, () => certSignatureProblem(child, issuer));
      if (why !== undefined) chainFailures.push(failure('SNP_CHAIN_SIGNATURE_INVALID', { field: `chain[${i}].signatureValue`, actual: why, message: `the ${names[i]}: ${why} with the key of "${issuer.subject}"` }));
    }
    for (const [i, c] of [mid.cert, ark.cert].entries()) {
      if (c.basicConstraints?.ca !== true) {
        chainFailures.push(failure('SNP_CHAIN_ISSUER_MISMATCH', { field: `chain[${i + 1}].extensions.basicConstraints.cA`, expected: 'true', actual: String(c.basicConstraints?.ca ?? 'absent'), message: `the ${names[i + 1]} is not a CA` }));
      }
    }
    run('chain.signatures', chainFailures);
    const t = opts.now.getTime();
    run('chain.validity', chain.flatMap((c, i) =>
      t < c.notBefore.getTime() || t > c.notAfter.getTime()
        ? [failure('SNP_CHAIN_EXPIRED', {
            field: `chain[${i}].tbsCertificate.validity`,
            expected: `${c.notBefore.toISOString()}..${c.notAfter.toISOString()}`,
            actual: opts.now.toISOString(),
            message: `the ${names[i]} is ${t < c.notBefore.getTime() ? 'not yet valid' : 'expired'} at ${opts.now.toISOString()}`,
          })]
        : [],
    ));
  } else {
    skip('chain.ark.pinned', 'a certificate did not parse');
    skip('chain.signatures', 'a certificate did not parse');
    skip('chain.validity', 'a certificate did not parse');
  }

  // 5. The signing certificate's extensions against the report.
  if (leaf !== undefined) {
    const named = snpProductOfName(leaf.amd.productName);
    const cpuidProduct = snpProductOfCpuid(report.cpuid);
    const pf: Failure[] = [];
    if (named === undefined) pf.push(failure('SNP_VCEK_PRODUCT_MISMATCH', { field: `${signer}.extensions.productName`, expected: product ?? 'Milan | Genoa | Turin', actual: leaf.amd.productName ?? 'absent' }));
    else if (product !== undefined && named !== product) pf.push(failure('SNP_VCEK_PRODUCT_MISMATCH', { field: `${signer}.extensions.productName`, expected: product, actual: leaf.amd.productName ?? '', message: `the ${signer.toUpperCase()} is for ${named}, the ARK for ${product}` }));
    else if (cpuidProduct !== undefined && named !== cpuidProduct) pf.push(failure('SNP_VCEK_PRODUCT_MISMATCH', { field: 'ATTESTATION_REPORT.CPUID_FAM_ID', expected: named, actual: cpuidProduct, message: `the report's CPUID names ${cpuidProduct}, the ${signer.toUpperCase()} ${named}` }));
    run('certificate.productName', pf);

    if (signer === 'vcek') {
      if (snpChipIdMasked(report)) {
        if (opts.allowMaskedChipId === true) {
          allowancesUsed.push('maskedChipId');
          skip('certificate.hwID', 'CHIP_ID is masked; allowed by allowMaskedChipId');
        } else {
          run('certificate.hwID', [failure('SNP_CHIP_ID_MASKED', { field: 'ATTESTATION_REPORT.CHIP_ID', actual: toHex(report.chipId) })]);
        }
      } else {
        const hw = leaf.amd.hwId;
        // Turin VCEKs carry the first 8 bytes of CHIP_ID as hwID.
        const ok = hw !== undefined && (hw.length === 64 ? bytesEqual(hw, report.chipId) : hw.length === 8 && bytesEqual(hw, report.chipId.subarray(0, 8)));
        run('certificate.hwID', ok ? [] : [failure('SNP_VCEK_HWID_MISMATCH', { field: 'ATTESTATION_REPORT.CHIP_ID', expected: hw === undefined ? 'certificate extension hwID' : toHex(hw), actual: toHex(report.chipId) })]);
      }
    } else skip('certificate.hwID', 'a VLEK is not bound to a chip');

    const tcbProduct = product ?? named;
    if (tcbProduct !== undefined) run('certificate.tcb', compareSnpTcb(leaf.amd, report.reportedTcb, tcbProduct));
    else skip('certificate.tcb', 'the product is unknown, so the TCB layout is');
  } else {
    skip('certificate.productName', 'the signing certificate did not parse');
    skip('certificate.hwID', 'the signing certificate did not parse');
    skip('certificate.tcb', 'the signing certificate did not parse');
  }

  // 6. Revocation, and the CRL's age when a maximum is set.
  let crlUsed: SnpCrlUsed | undefined;
  if (opts.crl !== undefined) {
    if (ark !== undefined && mid !== undefined) {
      const c = checkCrl(opts.crl, ark.cert, mid.cert, opts.now, opts.crlMaxAgeSeconds, opts.cache);
      run('crl', c.failures);
      crlUsed = c.used;
      if (opts.crlMaxAgeSeconds !== undefined) {
        if (c.used !== undefined) run('crl.maxAge', c.ageFailures);
        else skip('crl.maxAge', 'the CRL did not parse');
      }
    } else {
      skip('crl', 'a certificate did not parse');
      if (opts.crlMaxAgeSeconds !== undefined) skip('crl.maxAge', 'a certificate did not parse');
    }
  } else if (opts.allowMissingCrl === true) {
    allowancesUsed.push('missingCrl');
    skip('crl', 'no CRL supplied; allowed by allowMissingCrl');
    if (opts.crlMaxAgeSeconds !== undefined) skip('crl.maxAge', 'no CRL supplied; allowed by allowMissingCrl');
  } else {
    run('crl', [failure('SNP_CRL_MISSING', { field: 'crl' })]);
    if (opts.crlMaxAgeSeconds !== undefined) skip('crl.maxAge', 'no CRL supplied');
  }

  return {
    ok: failures.length === 0,
    checks,
    failures,
    allowancesUsed,
    signer,
    ...(product !== undefined ? { product } : {}),
    ...(crlUsed !== undefined ? { crl: crlUsed } : {}),
  };
}
