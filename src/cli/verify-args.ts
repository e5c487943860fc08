/** Options the `vouch verify …` commands share: the verification time and the policy file. */
import { MisuseError } from '../lib/errors.js';
import { loadPolicyFile, PolicyInvalidError } from '../policy/parse.js';
import type { Policy } from '../policy/schema.js';
import type { CliIo } from './main.js';

/**
 * The time to verify at: `--at` (ISO 8601 date and time) or, absent, now.
 * @throws MisuseError MISUSE_ARGUMENT for anything else
 */
export function verificationTime(at: string | undefined): Date {
  const now = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(now.getTime()) || (at !== undefined && !/^\d{4}-\d{2}-\d{2}T/.test(at))) {
    throw new MisuseError('MISUSE_ARGUMENT', '--at must be an ISO 8601 date and time (2024-01-01T00:00:00Z)');
  }
  return now;
}

/** Loads --policy; a document that does not load is the caller's mistake (exit 2), named by its code. */
export async function loadPolicyArg(path: string, io: CliIo): Promise<Policy | undefined> {
  try {
    return await loadPolicyFile(path);
  } catch (e) {
    if (e instanceof PolicyInvalidError) {
      io.err(`vouch: ${e.code}: ${e.message}\n`);
      return undefined;
    }
    throw e;
  }
}
