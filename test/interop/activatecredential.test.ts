/**
 * Credentials made by vouch (makeCredential + encodeToolsCredentialFile) for an EK public and an
 * AK name read with tpm2-tools activate with `tpm2_activatecredential` and yield the secret:
 * the RSA EK swtpm_setup persisted at 0x81010001 (policy session with PolicySecret(endorsement))
 * and the P-384 EK at 0x81010016 (password). A credential for another name is refused.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { decodeTpm2bPublic, type TpmtPublic } from '../../src/tpm/abi/public.js';
import { decodeToolsCredentialFile, encodeToolsCredentialFile, makeCredential } from '../../src/tpm/credential.js';
import { tpmName } from '../../src/tpm/name.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { Tools, type ToolResult } from './tools.js';

const RSA_EK = '0x81010001';
const P384_EK = '0x81010016';

let sw: TestSwtpm;
let work: string;
let tools: Tools;
let akName: Uint8Array;
const ekPublic = new Map<string, TpmtPublic>();

beforeAll(async () => {
  sw = await startTestSwtpm();
  work = await mkdtemp(join(tmpdir(), 'vouch-interop-activate-'));
  tools = new Tools(() => sw.tcti, work);
  await tools.flushAll();
  for (const handle of [RSA_EK, P384_EK]) {
    await tools.ok('tpm2_readpublic', '-c', handle, '-o', `ek-${handle}.pub`);
    ekPublic.set(handle, decodeTpm2bPublic(await readFile(join(work, `ek-${handle}.pub`))));
  }
  await tools.ok('tpm2_createak', '-C', RSA_EK, '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name');
  akName = new Uint8Array(await readFile(join(work, 'ak.name')));
});

afterAll(async () => {
  await sw?.dispose();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** Writes a vouch credential for the EK at `handle` and `name` in the tpm2-tools file format. */
async function writeCredential(file: string, handle: string, name: Uint8Array, secret: Uint8Array): Promise<void> {
  const ek = ekPublic.get(handle);
  if (ek === undefined) throw new Error(`no EK public for ${handle}`);
  const made = makeCredential({ ekPublic: ek, akName: name, credential: secret });
  const bytes = encodeToolsCredentialFile(made);
  expect(decodeToolsCredentialFile(bytes)).toEqual(made);
  await writeFile(join(work, file), bytes);
}

/** tpm2_activatecredential with the EK's authorization: a PolicySecret(endorsement) session for the RSA EK, its (empty) password for the P-384 EK. */
async function activate(handle: string, credFile: string, outFile: string): Promise<ToolResult> {
  if (handle !== RSA_EK) {
    const r = await tools.run('tpm2_activatecredential', '-c', 'ak.ctx', '-C', handle, '-i', credFile, '-o', outFile);
    await tools.flushAll();
    return r;
  }
  const session = 'session.ctx';
  const start = await tools.run('tpm2_startauthsession', '--policy-session', '-S', session);
  expect(start.code, start.stderr).toBe(0);
  try {
    const policy = await tools.run('tpm2_policysecret', '-S', session, '-c', 'e');
    expect(policy.code, policy.stderr).toBe(0);
    return await tools.run('tpm2_activatecredential', '-c', 'ak.ctx', '-C', handle, '-i', credFile, '-o', outFile, '-P', `session:${session}`);
  } finally {
    await tools.run('tpm2_flushcontext', session);
    await tools.flushAll();
  }
}

describe('vouch makeCredential → tpm2_activatecredential', () => {
  it('the EK publics are the RSA-2048 and P-384 EKs, and tpm2_createak -n is the name vouch computes', async () => {
    expect(ekPublic.get(RSA_EK)?.type).toBe(TPM_ALG.RSA);
    expect(ekPublic.get(P384_EK)?.type).toBe(TPM_ALG.ECC);
    const akPublic = decodeTpm2bPublic(await readFile(join(work, 'ak.pub')));
    expect(toHex(tpmName(akPublic))).toBe(toHex(akName));
  });

  for (const [label, handle] of [
    ['RSA EK 0x81010001', RSA_EK],
    ['P-384 EK 0x81010016', P384_EK],
  ] as const) {
    it(`${label}: the secret comes back; a credential for another name is refused`, async () => {
      const secret = randomBytes(32);
      await writeCredential('cred', handle, akName, secret);
      const ok = await activate(handle, 'cred', 'secret.out');
      expect(ok.code, ok.stderr).toBe(0);
      expect(toHex(await readFile(join(work, 'secret.out')))).toBe(toHex(secret));

      const otherName = Uint8Array.from(akName);
      otherName[otherName.length - 1] = (otherName[otherName.length - 1] as number) ^ 0x01;
      await writeCredential('cred-other', handle, otherName, randomBytes(32));
      await rm(join(work, 'other.out'), { force: true });
      const refused = await activate(handle, 'cred-other', 'other.out');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/integrity/i);
    });
  }

  it('a credential made for the other EK is refused', async () => {
    await writeCredential('cred-swapped', P384_EK, akName, randomBytes(32));
    const r = await activate(RSA_EK, 'cred-swapped', 'swapped.out');
    expect(r.code).not.toBe(0);
  });
});
