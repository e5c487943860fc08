/**
 * Offline TPM2_Quote verification (TPM 2.0 Library Part 3 §18.4).
 *
 * Fixed order, as in a JOSE verifier: parse the signature strictly → the signature's scheme must
 * be the AK's own → verify the signature over the exact TPMS_ATTEST bytes → only then decode the
 * attestation and compare its claims (type, extraData, PCR selection, pcrDigest). Every failure is
 * returned as a value, with the spec field, the expected and the actual value.
 */
import { createHash, verify as cryptoVerify, constants as C } from 'node:crypto';
import { bytesEqual, concatBytes, toHex } from '../../lib/bytes.js';
import { isVouchError } from '../../lib/errors.js';
import { failure, failureFromError, type Failure } from '../../lib/failure.js';
import { TPM_ALG, TPM_ST_ATTEST, algName, hashById } from '../abi/constants.js';
import { decodeTpmsAttest, type TpmsAttest } from '../abi/attest.js';
import { decodeTpmtSignature, type TpmtSignature } from '../abi/signature.js';
import { sameSelection, type PcrSelection } from '../abi/pcr.js';
import { padTo, type TpmVerifyKey } from './keys.js';
import { checkAkTemplate } from './ak.js';

/** PCR values by bank (TPM_ALG_ID of the hash) and PCR index. */
export type PcrValues = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/** The outcome of one named check. */
export interface CheckOutcome {
  /** Stable check name ("signature", "attest.extraData", …). */
  readonly check: string;
  readonly outcome: 'pass' | 'fail' | 'skipped';
  /** Why a check was skipped (an input was not supplied, or an earlier step failed). */
  readonly note?: string;
}

/** What {@link verifyQuote} needs. */
export interface QuoteInput {
  /** The attestation key, imported once ({@link importTpmPublic}) and reused. */
  readonly ak: TpmVerifyKey;
  /** TPMS_ATTEST bytes exactly as the TPM returned them (the signed message). */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE bytes. */
  readonly signature: Uint8Array;
  /** The qualifying data the quote must carry; undefined skips (and reports) the check. */
  readonly expectedExtraData: Uint8Array | undefined;
  /** The PCR selection that was requested; undefined skips (and reports) the check. */
  readonly expectedSelection?: PcrSelection | undefined;
  /** The PCR values the quote must commit to; undefined skips (and reports) the check. */
  readonly pcrs: PcrValues | undefined;
  /**
   * The AK was given without its TPMT_PUBLIC (a PEM key): the template check is reported as not
   * run, and any signing scheme of the key's type is accepted instead of the AK's own.
   */
  readonly akTemplateUnknown?: boolean;
}

/** The result: `ok` only when no check failed. */
export interface QuoteVerification {
  readonly ok: boolean;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  /** The decoded attestation; its fields are trustworthy only when `ok`. */
  readonly attest?: TpmsAttest;
  readonly signature?: TpmtSignature;
}

/** Verifies `sig` over `message` with the AK; false on any mismatch. */
function signatureVerifies(ak: TpmVerifyKey, sig: TpmtSignature, message: Uint8Array): boolean {
  if (sig.sigAlg === TPM_ALG.NULL || sig.sigAlg === TPM_ALG.HMAC) return false;
  const h = hashById(sig.hashAlg);
  if (h === undefined) return false;
  if (sig.sigAlg === TPM_ALG.RSASSA) {
    return cryptoVerify(h.nodeName, message, { key: ak.key, padding: C.RSA_PKCS1_PADDING }, sig.sig);
  }
  if (sig.sigAlg === TPM_ALG.RSAPSS) {
    // TPMs use a salt of the digest size (or the maximum, on older firmware): accept either.
    return cryptoVerify(h.nodeName, message, { key: ak.key, padding: C.RSA_PKCS1_PSS_PADDING, saltLength: C.RSA_PSS_SALTLEN_AUTO }, sig.sig);
  }
  if (sig.sigAlg === TPM_ALG.ECDSA && ak.curve !== undefined) {
    const r = padTo(sig.r, ak.curve.size);
    const s = padTo(sig.s, ak.curve.size);
    if (r === undefined || s === undefined) return false;
    return cryptoVerify(h.nodeName, message, { key: ak.key, dsaEncoding: 'ieee-p1363' }, concatBytes(r, s));
  }
  return false;
}

/** True when a signature algorithm can be produced by a key of the AK's type. */
function compatibleWithKey(ak: TpmVerifyKey, sigAlg: number): boolean {
  if (ak.public.type === TPM_ALG.RSA) return sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS;
  if (ak.public.type === TPM_ALG.ECC) return sigAlg === TPM_ALG.ECDSA;
  return false;
}

/** The scheme the AK signs with, from its public area. */
function akScheme(ak: TpmVerifyKey): { scheme: number; hashAlg?: number } {
  const p = ak.public;
  if (p.type === TPM_ALG.RSA || p.type === TPM_ALG.ECC) return p.parameters.scheme;
  return { scheme: TPM_ALG.NULL };
}

/**
 * Computes the pcrDigest a TPM would produce for `selection` over `pcrs`: the hash (with the
 * signing scheme's algorithm) of the selected PCR values, banks in selection order and PCRs in
 * ascending order. Returns the failures instead when a value is absent or has the wrong size.
 */
export function computePcrDigest(selection: PcrSelection, pcrs: PcrValues, hashAlg: number): { digest?: Uint8Array; failures: Failure[] } {
  const failures: Failure[] = [];
  const h = hashById(hashAlg);
  if (h === undefined) {
    return { failures: [failure('TPM_QUOTE_SCHEME_MISMATCH', { field: 'TPMT_SIGNATURE.signature.hash', actual: algName(hashAlg) })] };
  }
  const hash = createHash(h.nodeName);
  for (const bank of selection) {
    const bankHash = hashById(bank.hashAlg);
    const values = pcrs.get(bank.hashAlg);
    for (const pcr of bank.pcrs) {
      const v = values?.get(pcr);
      const field = `pcrs.${bankHash?.name ?? algName(bank.hashAlg)}[${pcr}]`;
      if (v === undefined) {
        failures.push(failure('TPM_QUOTE_PCR_VALUES_MISSING', { field, message: `no value supplied for quoted PCR ${field}` }));
      } else if (bankHash !== undefined && v.length !== bankHash.size) {
        failures.push(failure('TPM_QUOTE_PCR_VALUES_MISSING', { field, expected: `${bankHash.size} bytes`, actual: `${v.length} bytes` }));
      } else {
        hash.update(v);
      }
    }
  }
  if (failures.length > 0) return { failures };
  return { digest: new Uint8Array(hash.digest()), failures };
}

function describeSelection(sel: PcrSelection): string {
  return sel.map((b) => `${hashById(b.hashAlg)?.name ?? algName(b.hashAlg)}:${b.pcrs.join(',')}`).join('+') || '(empty)';
}

/**
 * Verifies a TPM quote offline and returns every check with its outcome.
 * Never throws for bad evidence: malformed bytes become failures with their parse code.
 */
export function verifyQuote(input: QuoteInput): QuoteVerification {
  const checks: CheckOutcome[] = [];
  const failures: Failure[] = [];
  const record = (check: string, found: readonly Failure[]): void => {
    checks.push({ check, outcome: found.length === 0 ? 'pass' : 'fail' });
    failures.push(...found);
  };
  const skip = (check: string, note: string): void => {
    checks.push({ check, outcome: 'skipped', note });
  };

  const templateUnknown = input.akTemplateUnknown === true;
  if (templateUnknown) skip('ak.template', 'the AK was given without its TPMT_PUBLIC');
  else record('ak.template', checkAkTemplate(input.ak.public));

  // 1. Parse the signature strictly.
  let sig: TpmtSignature | undefined;
  try {
    sig = decodeTpmtSignature(input.signature);
    record('signature.parse', []);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    record('signature.parse', [failureFromError(e)]);
  }

  // 2. The signature must use the AK's own scheme and hash.
  let sigUsable = false;
  if (sig !== undefined) {
    const want = akScheme(input.ak);
    const gotHash = sig.sigAlg === TPM_ALG.NULL ? undefined : sig.hashAlg;
    const schemeOk = templateUnknown
      ? sig.sigAlg !== TPM_ALG.NULL && compatibleWithKey(input.ak, sig.sigAlg)
      : want.scheme !== TPM_ALG.NULL && sig.sigAlg === want.scheme && gotHash === want.hashAlg;
    record(
      'signature.scheme',
      schemeOk
        ? []
        : [
            failure('TPM_QUOTE_SCHEME_MISMATCH', {
              field: 'TPMT_SIGNATURE.sigAlg',
              expected: `${algName(want.scheme)}/${want.hashAlg === undefined ? '-' : algName(want.hashAlg)}`,
              actual: `${algName(sig.sigAlg)}/${gotHash === undefined ? '-' : algName(gotHash)}`,
            }),
          ],
    );
    sigUsable = schemeOk;
  } else {
    skip('signature.scheme', 'the signature did not parse');
  }

  // 3. The signature over the exact attestation bytes.
  let signatureOk = false;
  if (sig !== undefined && sigUsable) {
    signatureOk = signatureVerifies(input.ak, sig, input.attest);
    record('signature', signatureOk ? [] : [failure('TPM_QUOTE_SIGNATURE_INVALID', { field: 'TPMT_SIGNATURE' })]);
  } else {
    record('signature', [failure('TPM_QUOTE_SIGNATURE_INVALID', { field: 'TPMT_SIGNATURE', message: 'the signature could not be checked' })]);
  }

  // 4. Decode the attestation (its claims are only trusted when the signature held).
  let attest: TpmsAttest | undefined;
  try {
    attest = decodeTpmsAttest(input.attest);
    record('attest.parse', []);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    record('attest.parse', [failureFromError(e)]);
  }

  if (attest === undefined) {
    for (const c of ['attest.type', 'attest.extraData', 'attest.pcrSelect', 'attest.pcrDigest']) skip(c, 'TPMS_ATTEST did not parse');
  } else {
    const at = attest.attested;
    record(
      'attest.type',
      at.type === TPM_ST_ATTEST.QUOTE
        ? []
        : [failure('TPM_QUOTE_NOT_QUOTE', { field: 'TPMS_ATTEST.type', expected: '0x8018', actual: `0x${at.type.toString(16)}` })],
    );

    if (input.expectedExtraData === undefined) skip('attest.extraData', 'no expected nonce was supplied');
    else
      record(
        'attest.extraData',
        bytesEqual(attest.extraData, input.expectedExtraData)
          ? []
          : [failure('TPM_QUOTE_NONCE_MISMATCH', { field: 'TPMS_ATTEST.extraData', expected: toHex(input.expectedExtraData), actual: toHex(attest.extraData) })],
      );

    if (at.type !== TPM_ST_ATTEST.QUOTE) {
      skip('attest.pcrSelect', 'not a quote');
      skip('attest.pcrDigest', 'not a quote');
    } else {
      const quoted = at.quote.pcrSelect;
      if (input.expectedSelection === undefined) skip('attest.pcrSelect', 'no expected selection was supplied');
      else
        record(
          'attest.pcrSelect',
          sameSelection(quoted, input.expectedSelection)
            ? []
            : [
                failure('TPM_QUOTE_PCR_SELECTION_MISMATCH', {
                  field: 'TPMS_ATTEST.attested.quote.pcrSelect',
                  expected: describeSelection(input.expectedSelection),
                  actual: describeSelection(quoted),
                }),
              ],
        );

      if (input.pcrs === undefined) skip('attest.pcrDigest', 'no PCR values were supplied');
      else if (sig === undefined || sig.sigAlg === TPM_ALG.NULL) skip('attest.pcrDigest', 'the signing hash is unknown');
      else {
        const { digest, failures: missing } = computePcrDigest(quoted, input.pcrs, sig.hashAlg);
        if (digest === undefined) record('attest.pcrDigest', missing);
        else
          record(
            'attest.pcrDigest',
            bytesEqual(digest, at.quote.pcrDigest)
              ? []
              : [
                  failure('TPM_QUOTE_PCR_DIGEST_MISMATCH', {
                    field: 'TPMS_ATTEST.attested.quote.pcrDigest',
                    expected: toHex(digest),
                    actual: toHex(at.quote.pcrDigest),
                  }),
                ],
          );
      }
    }
  }

  return {
    ok: failures.length === 0,
    checks,
    failures,
    ...(attest !== undefined ? { attest } : {}),
    ...(sig !== undefined ? { signature: sig } : {}),
  };
}
