/**
 * TDX collateral for one attestation (TCB Info, QE Identity, PCK CRL, Root CA CRL and their
 * issuer chains), obtained BEFORE the appraisal, which stays pure:
 *
 * - `{ path }`: a collateral directory (the files of src/tdx/collateral.ts COLLATERAL_FILE_NAMES)
 *   or a dcap-qvl collateral.json, read with `readCollateral`. The parsed collateral is kept and
 *   reused while the files' sizes and modification times stay the same, so the quote verifier's
 *   cache (keyed by the collateral object) keeps working; a changed file is read again.
 * - `{ client }`: a PcsClient (Intel PCS behind an injected fetcher, its on-disk cache and the
 *   bundles imported into it), asked for the FMSPC and the PCK CA type the quote's PCK leaf names.
 *
 * Trust stage: collection. The FMSPC and CA type are read from the PCK certificate the quote
 * carries before anything is verified: they only choose which collateral to fetch, and the
 * verification then checks that the TCB Info is the one for the verified PCK. Nothing here
 * verifies a signature or decides. What cannot be obtained (unreadable or malformed files, PCS
 * rate limited, unavailable, offline and not cached) is returned as a {@link Failure} with its
 * registry code; the appraisal refuses with it, so a collateral problem is never an allow.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isVouchError } from '../lib/errors.js';
import { failureFromError, type Failure } from '../lib/failure.js';
import { decodeTdxQuote } from '../tdx/abi.js';
import { COLLATERAL_FILE_NAMES, readCollateral, type PcsClient, type TdxCollateral } from '../tdx/collateral.js';
import { parsePckCertificate, parsePckChainPem } from '../tdx/pck.js';
import type { TdxEvidence } from '../evidence/envelope.js';

/** Where the verifier's TDX collateral comes from. */
export type TdxCollateralSource = { readonly path: string } | { readonly client: PcsClient };

/** The verifier's TDX settings. */
export interface TdxSettings {
  /** Collateral: a directory or dcap-qvl bundle, or a PCS client. */
  readonly collateral: TdxCollateralSource;
  /** Trusted root fingerprints (SHA-256 of the DER); default the Intel SGX Root CA. Replace only for test-only roots. */
  readonly pinnedRootFingerprints?: readonly string[];
}

/** Collateral for one quote, untrusted until verified, with where it came from. */
export interface ResolvedTdxCollateral {
  readonly collateral?: TdxCollateral;
  readonly source: 'file' | 'pcs';
  /** What could not be obtained: each one refuses. */
  readonly failures: readonly Failure[];
}

/** A collateral path, read once and reused while its files are unchanged. */
export class TdxCollateralFiles {
  readonly path: string;
  #stamp: string | undefined;
  #loaded: TdxCollateral | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async #fingerprint(): Promise<string> {
    const one = async (p: string): Promise<string> => {
      try {
        const s = await stat(p);
        return `${s.size}:${s.mtimeMs}:${s.isDirectory() ? 'd' : 'f'}`;
      } catch {
        return 'absent';
      }
    };
    const top = await one(this.path);
    if (!top.endsWith(':d')) return top;
    const parts = await Promise.all(Object.values(COLLATERAL_FILE_NAMES).map((n) => one(join(this.path, n))));
    return `${top}|${parts.join('|')}`;
  }

  /**
   * The collateral at the path, read again when a file changed.
   * @throws MisuseError MISUSE_FILE_UNREADABLE, ParseError TDX_COLLATERAL_MALFORMED
   */
  async load(): Promise<TdxCollateral> {
    const stamp = await this.#fingerprint();
    if (this.#loaded !== undefined && stamp === this.#stamp) return this.#loaded;
    const c = await readCollateral(this.path);
    this.#loaded = c;
    this.#stamp = stamp;
    return c;
  }
}

/**
 * Obtains the collateral for `evidence.quote`. Never throws a VouchError: what cannot be had is
 * a failure in the result. A quote (or its PCK chain) that does not decode gets no PCS lookup:
 * the appraisal reports why it does not decode.
 */
export async function resolveTdxCollateral(evidence: TdxEvidence, source: TdxCollateralFiles | PcsClient): Promise<ResolvedTdxCollateral> {
  if (source instanceof TdxCollateralFiles) {
    try {
      return { collateral: await source.load(), source: 'file', failures: [] };
    } catch (e) {
      if (!isVouchError(e)) throw e;
      return { source: 'file', failures: [failureFromError(e)] };
    }
  }
  let fmspc: Uint8Array;
  let ca: 'platform' | 'processor';
  try {
    // Untrusted: only which collateral to ask for. The verification checks it against the verified PCK.
    const leaf = parsePckChainPem(decodeTdxQuote(evidence.quote).signatureData.pckCertChain)[0];
    if (leaf === undefined) return { source: 'pcs', failures: [] };
    const pck = parsePckCertificate(leaf, 'pckChain[0]');
    fmspc = pck.sgx.fmspc;
    ca = pck.ca;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { source: 'pcs', failures: [] };
  }
  try {
    return { collateral: await source.collateral(fmspc, ca), source: 'pcs', failures: [] };
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { source: 'pcs', failures: [failureFromError(e)] };
  }
}
