/**
 * The AK survives a process restart and a TPM power cycle: a child process creates and persists
 * it; after swtpm restarts, another child process finds it at the same handle with the same
 * name, and a quote by the persisted key verifies with the public area the first process saw.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, allPcrs } from '../../native/index.js';
import { fromHex, toHex } from '../../src/lib/bytes.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { decodeTpm2bPublic } from '../../src/tpm/abi/public.js';
import { tpmName } from '../../src/tpm/name.js';
import type { AkKind } from '../../src/tpm/templates.js';
import { importTpmPublic, verifyQuote } from '../../src/tpm/verify/index.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const ENSURE_AK = fileURLToPath(new URL('./fixtures/ensure-ak.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface EnsureAkLine {
  name: string;
  created: boolean;
  persistentHandle: number;
  public: string;
  leftHandles: number[];
}

let sw: TestSwtpm;

beforeAll(async () => {
  sw = await startTestSwtpm();
});

afterAll(async () => {
  await sw?.dispose();
});

/** Runs the fixture in a fresh node process against the TPM as it is now. */
function ensureAkInChild(kind: AkKind, handle: number): Promise<EnsureAkLine> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ENSURE_AK, sw.tcti, kind, `0x${handle.toString(16)}`],
      { cwd: REPO, timeout: 30_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`ensure-ak child failed (${err.message}): ${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout) as EnsureAkLine);
      },
    );
  });
}

describe('persistent AK across process restarts and TPM power cycles', () => {
  for (const [kind, handle] of [
    ['ecc-p256', 0x81010002],
    ['rsa2048', 0x81010003],
  ] as const) {
    it(`a ${kind} AK at 0x${handle.toString(16)}: created by one process, found with the same name by the next`, async () => {
      const first = await ensureAkInChild(kind, handle);
      expect(first.created).toBe(true);
      expect(first.persistentHandle).toBe(handle);
      expect(first.leftHandles).toEqual([]);
      const firstPublic = decodeTpm2bPublic(fromHex(first.public));
      expect(toHex(tpmName(firstPublic))).toBe(first.name);

      await sw.restart();
      const second = await ensureAkInChild(kind, handle);
      expect(second.created).toBe(false);
      expect(second.name).toBe(first.name);
      expect(second.public).toBe(first.public);
      expect(second.leftHandles).toEqual([]);

      // The key behind the handle is the key the first process saw: its quote verifies with that public area.
      const tpm = Tpm.open(sw.tcti);
      try {
        const ak = tpm.loadPersistent(handle);
        try {
          const nonce = randomBytes(32);
          const sel = allPcrs([TPM_ALG.SHA256]);
          const q = tpm.quote(ak, nonce, sel);
          const r = verifyQuote({
            ak: importTpmPublic(firstPublic),
            attest: q.attest,
            signature: q.signature,
            expectedExtraData: nonce,
            expectedSelection: sel,
            pcrs: tpm.pcrRead(sel),
          });
          expect(r.failures).toEqual([]);
          expect(r.ok).toBe(true);
        } finally {
          tpm.flush(ak);
        }
        expect(tpm.listHandles(0x81000000)).toContain(handle);
      } finally {
        tpm.close();
      }
    });
  }
});
