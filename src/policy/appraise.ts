/**
 * Appraisal of TPM claims against a policy. Pure: no clock, no I/O, no randomness; it never
 * throws for a "no" and returns every failure, in a fixed order (banks in policy order, PCRs
 * ascending), so the same inputs always give the same output.
 *
 * The inputs are claims that the verify stage has already proven (the quote signature and its
 * pcrDigest over these values); nothing here checks a signature.
 */
import { toHex } from '../lib/bytes.js';
import { hashByName, TPM_ALG } from '../tpm/abi/constants.js';
import { MisuseError, type ErrorCode } from '../lib/errors.js';
import { AK_ALGORITHMS, POLICY_BANKS, type AkAlgorithm, type BankName, type Policy } from './schema.js';

/** Codes an appraisal against a policy can yield (all category 'policy-failed', HTTP 403). */
export type PolicyFailureCode = Extract<ErrorCode, 'POLICY_PCR_MISMATCH' | 'POLICY_BANK_MISSING' | 'POLICY_PCR_MISSING' | 'POLICY_AK_ALGORITHM' | 'POLICY_TPM_NOT_CONFIGURED'>;

/** One reason the policy does not accept the evidence. */
export interface PolicyFailure {
  readonly code: PolicyFailureCode;
  /** Policy field concerned: `pcrs.sha256[7]`, `pcrs.sha384`, `akAlgorithms`. */
  readonly field: string;
  /** What the policy allows (allowed values joined by " | "). */
  readonly expected: string;
  /** What the evidence holds (hex for digests; "absent" when missing). */
  readonly actual: string;
  readonly message: string;
}

/** Quoted PCR values: TPM_ALG_ID of the bank → PCR index → value. */
export type QuotedPcrs = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/** One bank of the selection a challenge asks the agent to quote. */
export interface PolicyBankSelection {
  /** TPM_ALG_ID of the bank (TPM_ALG_SHA256 = 0x000b). */
  readonly hashAlg: number;
  readonly bank: BankName;
  /** PCR indices, ascending, at least one. */
  readonly pcrs: readonly number[];
}

/** TPM_ALG_ID of a policy bank name. */
export function bankAlgId(bank: BankName): number {
  const h = hashByName(bank);
  if (h === undefined) throw new MisuseError('MISUSE_ARGUMENT', `bank ${bank} has no TPM_ALG_ID`);
  return h.id;
}

/**
 * The PCR selection derived from the policy: each required bank with the PCRs it lists,
 * ascending. Pass it to `pcrSelection()` (src/tpm/abi/pcr) to build the TPML_PCR_SELECTION.
 */
export function policyPcrSelection(policy: Policy): readonly PolicyBankSelection[] {
  // A policy for SNP-only nodes quotes nothing.
  const tpm = policy.tpm;
  if (tpm === undefined) return [];
  return tpm.banks.map((bank) => {
    const listed = tpm.pcrs[bank];
    const pcrs = listed === undefined ? [] : Object.keys(listed).map(Number).sort((a, b) => a - b);
    if (pcrs.length === 0) throw new MisuseError('MISUSE_ARGUMENT', `policy ${policy.id}: bank ${bank} lists no PCRs (not a validated policy)`);
    return { hashAlg: bankAlgId(bank), bank, pcrs };
  });
}

/** The failure of any TPM rule under a policy that has none (a policy for SNP-only nodes). */
const NO_TPM_RULES: PolicyFailure = {
  code: 'POLICY_TPM_NOT_CONFIGURED',
  field: 'tpm',
  expected: 'tpm rules',
  actual: 'absent',
  message: 'the policy has no tpm rules: it is a policy for SNP-only nodes, and a TPM quote is not appraised under it',
};

/**
 * Compares quoted PCR values with the policy. Returns every failure:
 * - POLICY_BANK_MISSING: a required bank is absent from the quote (its PCRs are not listed again);
 * - POLICY_PCR_MISSING: a listed PCR is absent from the quote;
 * - POLICY_PCR_MISMATCH: a value is not one of the allowed values (for "any", not a digest of
 *   the bank's size).
 * PCRs and banks the policy does not list are ignored: nothing relies on them.
 */
export function appraisePcrs(policy: Policy, quotedPcrs: QuotedPcrs): PolicyFailure[] {
  // No TPM rules is not "every PCR allowed": a quote under such a policy is refused.
  if (policy.tpm === undefined) return [NO_TPM_RULES];
  const tpmRules = policy.tpm;
  const out: PolicyFailure[] = [];
  for (const sel of policyPcrSelection(policy)) {
    const size = POLICY_BANKS[sel.bank];
    const bankValues = quotedPcrs.get(sel.hashAlg);
    if (bankValues === undefined) {
      out.push({
        code: 'POLICY_BANK_MISSING',
        field: `pcrs.${sel.bank}`,
        expected: `bank ${sel.bank} with PCRs ${sel.pcrs.join(',')}`,
        actual: 'absent',
        message: `the quote has no ${sel.bank} bank, which the policy requires`,
      });
      continue;
    }
    const allowedByIndex = tpmRules.pcrs[sel.bank] ?? {};
    for (const index of sel.pcrs) {
      const field = `pcrs.${sel.bank}[${index}]`;
      const allowed = allowedByIndex[String(index)];
      const value = bankValues.get(index);
      if (value === undefined) {
        out.push({
          code: 'POLICY_PCR_MISSING',
          field,
          expected: allowed === 'any' ? `any ${size}-byte value` : (allowed ?? []).join(' | '),
          actual: 'absent',
          message: `${sel.bank} PCR ${index} is listed in the policy but absent from the quote`,
        });
        continue;
      }
      const actual = toHex(value);
      if (allowed === 'any') {
        if (value.length !== size) {
          out.push({
            code: 'POLICY_PCR_MISMATCH',
            field,
            expected: `any ${size}-byte value`,
            actual,
            message: `${sel.bank} PCR ${index} is ${value.length} bytes, not ${size}`,
          });
        }
        continue;
      }
      const list = allowed ?? [];
      if (!list.includes(actual)) {
        out.push({
          code: 'POLICY_PCR_MISMATCH',
          field,
          expected: list.join(' | '),
          actual,
          message: `${sel.bank} PCR ${index} holds a value the policy does not allow`,
        });
      }
    }
  }
  return out;
}

/**
 * The policy name of a TPMT_PUBLIC attestation key's algorithm, or undefined when it is
 * neither an ECC NIST P-256 key nor a 2048-bit RSA key.
 */
export function akAlgorithmOf(ak: { readonly type: number; readonly parameters: unknown }): AkAlgorithm | undefined {
  const p = ak.parameters as { curveId?: unknown; keyBits?: unknown };
  if (ak.type === TPM_ALG.ECC && p.curveId === 0x0003) return 'ecc-p256';
  if (ak.type === TPM_ALG.RSA && p.keyBits === 2048) return 'rsa2048';
  return undefined;
}

/**
 * Checks the attestation key's algorithm against `tpm.akAlgorithms` (default: all of
 * {@link AK_ALGORITHMS}). `alg` undefined means an algorithm the policy cannot name.
 */
export function appraiseAkAlgorithm(policy: Policy, alg: AkAlgorithm | undefined): PolicyFailure[] {
  if (policy.tpm === undefined) return [NO_TPM_RULES];
  const allowed = policy.tpm.akAlgorithms;
  if (alg !== undefined && allowed.includes(alg)) return [];
  return [
    {
      code: 'POLICY_AK_ALGORITHM',
      field: 'akAlgorithms',
      expected: allowed.join(' | '),
      actual: alg ?? 'unsupported',
      message: `the attestation key algorithm ${alg ?? '(unsupported)'} is not allowed by the policy (allowed: ${AK_ALGORITHMS.filter((a) => allowed.includes(a)).join(', ')})`,
    },
  ];
}
