/** Paths into the real-hardware corpus beside the repository (../shared/fixtures/real). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Root of the real corpus; tests that need it skip with a message when it is absent. */
export const REAL = resolve(here, '../../../shared/fixtures/real');
export const HAVE_REAL = existsSync(REAL);
if (!HAVE_REAL) console.warn(`real-hardware fixtures not found at ${REAL}: tests that use them are skipped`);

export function realPath(...parts: string[]): string {
  return join(REAL, ...parts);
}

export function readReal(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(realPath(...parts)));
}
