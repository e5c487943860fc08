import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, allPcrs, DEFAULT_AK_HANDLE } from '../../native/index.js';
import { toHex } from '../../src/lib/bytes.js';
import { decodeTpmsAttest, decodeTpmtSignature, TPM_ALG } from '../../src/tpm/abi/index.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { publicKeyOf, verifyTpmSignature } from './keys.js';

let sw: TestSwtpm;
let tpm: Tpm | undefined;

beforeAll(async () => {
  sw = await startTestSwtpm();
});

afterAll(async () => {
  tpm?.close();
  await sw?.dispose();
});

describe('persistent AK', () => {
  it('ensureAk creates the AK once; after a TPM restart and a new Tpm it returns the same AK', async () => {
    tpm = Tpm.open(sw.tcti);
    const first = tpm.ensureAk({ kind: 'ecc-p256' });
    expect(first.created).toBe(true);
    expect(first.persistentHandle).toBe(DEFAULT_AK_HANDLE);
    const name = toHex(first.name);
    tpm.flush(first);
    expect(tpm.listHandles(0x81000000)).toContain(DEFAULT_AK_HANDLE);
    expect(tpm.listHandles(0x80000000)).toEqual([]);
    tpm.close();

    await sw.restart();
    tpm = Tpm.open(sw.tcti);
    const again = tpm.ensureAk({ kind: 'ecc-p256' });
    expect(again.created).toBe(false);
    expect(toHex(again.name)).toBe(name);
    const nonce = randomBytes(32);
    const q = tpm.quote(again, nonce, allPcrs([TPM_ALG.SHA256]));
    expect(toHex(decodeTpmsAttest(q.attest).extraData)).toBe(toHex(nonce));
    expect(verifyTpmSignature(publicKeyOf(again.public), q.attest, decodeTpmtSignature(q.signature))).toBe(true);
    tpm.flush(again);
  });

  it('refuses to reuse a persistent handle that holds another kind of key', () => {
    const t = tpm as Tpm;
    expect(() => t.ensureAk({ kind: 'rsa2048' })).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    const rsa = t.ensureAk({ kind: 'rsa2048', persistentHandle: 0x81010003 });
    expect(rsa.created).toBe(true);
    expect(rsa.public.type).toBe(TPM_ALG.RSA);
    t.evictPersistent(rsa);
    expect(t.listHandles(0x81000000)).not.toContain(0x81010003);
    expect(t.listHandles(0x80000000)).toEqual([]);
  });

  it('300 quotes (and failing calls between them) leave no transient object or session behind', () => {
    const t = tpm as Tpm;
    const ak = t.ensureAk({ kind: 'ecc-p256' });
    const ek = t.createEk('rsa2048');
    try {
      const sel = allPcrs([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384]);
      for (let i = 0; i < 300; i++) {
        const nonce = randomBytes(32);
        const q = t.quote(ak, nonce, sel);
        expect(q.attest.length).toBeGreaterThan(0);
        if (i % 30 === 0) {
          // Error paths that start a policy session: garbage credential → the TPM refuses.
          const blob = Uint8Array.from([0x00, 0x22, 0x00, 0x20, ...new Uint8Array(32)]);
          const secret = Uint8Array.from([0x01, 0x00, ...new Uint8Array(256)]);
          expect(() => t.activateCredential(ak, ek, blob, secret)).toThrow(expect.objectContaining({ code: 'TSS_COMMAND_FAILED' }));
          const extra = t.createAk(ek, 'ecc-p256');
          t.flush(extra);
        }
      }
    } finally {
      t.flush(ek);
      t.flush(ak);
    }
    expect(t.listHandles(0x80000000)).toEqual([]);
    expect(t.listHandles(0x02000000)).toEqual([]);
    expect(t.listHandles(0x03000000)).toEqual([]);
  });
});
