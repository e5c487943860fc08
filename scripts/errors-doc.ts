/**
 * Writes docs/errors.md from the error registry (`npm run docs:errors`). A test fails when the
 * committed document and the registry disagree, so the table is never stale.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATEGORY_CLASS, ERRORS, type ErrorCode } from '../src/lib/errors.js';

/** The markdown table of every registered code. */
export function errorsTable(): string {
  const rows = (Object.keys(ERRORS) as ErrorCode[]).map((code) => {
    const e = ERRORS[code];
    return `| \`${code}\` | ${e.category} | ${CATEGORY_CLASS[e.category].name} | ${e.status} | ${e.message} |`;
  });
  return ['| code | category | error class | HTTP status | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** The whole document. */
export function errorsDoc(): string {
  return `# Error codes

Every failure vouch reports carries a stable \`code\`. The code decides the category, the error
class thrown by the library, and the HTTP status the verifier answers with. Codes are API: they
are never renamed or reused. Appraisals return the same codes as values, with the spec field,
the expected and the actual value.

Categories:
- **misuse**: the caller used a command or API wrongly (exit status 2 on the command line);
- **malformed**: input does not parse as the structure it claims to be;
- **verification-failed**: well-formed evidence whose signature, chain or binding does not hold;
- **policy-failed**: verified evidence that the policy does not accept;
- **unavailable**: a dependency (TPM, TSS library, database, collateral) could not be used; never an allow (exit status 3).

This table is generated from \`src/lib/errors.ts\` by \`npm run docs:errors\`.

${errorsTable()}
`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'errors.md');
  writeFileSync(out, errorsDoc());
  console.log(`wrote ${out}`);
}
