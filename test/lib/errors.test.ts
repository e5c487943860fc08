import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CATEGORY_CLASS,
  ERRORS,
  MisuseError,
  ParseError,
  PolicyError,
  UnavailableError,
  VerificationError,
  VouchError,
  vouchError,
  type ErrorCode,
} from '../../src/lib/errors.js';
import { errorsDoc } from '../../scripts/errors-doc.js';

describe('error registry', () => {
  it('docs/errors.md is the registry (run `npm run docs:errors` after adding a code)', () => {
    expect(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')).toBe(errorsDoc());
  });

  it('every code builds an error of its category class, with its status', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const e = vouchError(code);
      expect(e).toBeInstanceOf(VouchError);
      expect(e).toBeInstanceOf(CATEGORY_CLASS[ERRORS[code].category]);
      expect(e.code).toBe(code);
      expect(e.status).toBe(ERRORS[code].status);
      expect(e.message).toBe(ERRORS[code].message);
    }
  });

  it('categories map to distinct classes and statuses in their ranges', () => {
    expect(new Set(Object.values(CATEGORY_CLASS)).size).toBe(5);
    expect([MisuseError, ParseError, VerificationError, PolicyError, UnavailableError].every((c) => Object.values(CATEGORY_CLASS).includes(c))).toBe(true);
    for (const [code, row] of Object.entries(ERRORS)) {
      if (row.category === 'unavailable') expect([500, 503, 404], code).toContain(row.status);
      else expect(row.status >= 400 && row.status < 500, code).toBe(true);
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
    }
  });

  it('toJSON carries the detail but never the cause', () => {
    const e = new VerificationError('TPM_QUOTE_NONCE_MISMATCH', undefined, { field: 'TPMS_ATTEST.extraData', expected: '01', actual: '02', cause: new Error('secret') });
    expect(e.toJSON()).toEqual({
      code: 'TPM_QUOTE_NONCE_MISMATCH',
      category: 'verification-failed',
      message: ERRORS.TPM_QUOTE_NONCE_MISMATCH.message,
      field: 'TPMS_ATTEST.extraData',
      expected: '01',
      actual: '02',
    });
    expect(JSON.stringify(e.toJSON())).not.toContain('secret');
  });
});
