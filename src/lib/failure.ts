/**
 * A "no" as a value. Verification and appraisal return every failure they find, in this shape,
 * instead of throwing on the first one.
 */
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
