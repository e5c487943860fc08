/**
 * A "no" as a value. Verification and appraisal return every failure they find, in this shape,
 * instead of throwing on the first one.
 */
import { toHex } from './bytes.js';
import { ERRORS, type ErrorCode, type ErrorDetail, type VouchError } from './errors.js';

/** One failed check: a registry code, the spec field, what was expected and what was found. */
export interface Failure extends ErrorDetail {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Builds a {@link Failure}; the message defaults to the registry's. */
export function failure(code: ErrorCode, detail: ErrorDetail & { message?: string } = {}): Failure {
  const { message, ...rest } = detail;
  return { code, message: message ?? ERRORS[code].message, ...rest };
}

/** The failure a thrown VouchError stands for (parse errors become failures of the check that parsed). */
export function failureFromError(e: VouchError): Failure {
  return {
    code: e.code,
    message: e.message,
    ...(e.field !== undefined ? { field: e.field } : {}),
    ...(e.offset !== undefined ? { offset: e.offset } : {}),
    ...(e.expected !== undefined ? { expected: e.expected } : {}),
    ...(e.actual !== undefined ? { actual: e.actual } : {}),
  };
}

/**
 * An allowed-values rule over a byte field (lower-case hex values, or `any`): pushes a failure
 * naming `field` (e.g. "ATTESTATION_REPORT.MEASUREMENT") onto `out` unless `actual` is allowed.
 */
export function checkAllowedHex(out: Failure[], code: ErrorCode, field: string, what: string, rule: 'any' | readonly string[], actual: Uint8Array): void {
  if (rule === 'any') return;
  const hex = toHex(actual);
  if (rule.includes(hex)) return;
  out.push(failure(code, { field, expected: rule.join(' | '), actual: hex, message: `${what} ${hex} is not one of the ${rule.length} value(s) the policy allows` }));
}
