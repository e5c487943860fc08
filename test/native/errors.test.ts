import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tpm, TssCommandFailure } from '../../native/index.js';
import { isVouchError, UnavailableError } from '../../src/lib/errors.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

let sw: TestSwtpm;
let tpm: Tpm;

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
});

afterAll(async () => {
  tpm?.close();
  await sw?.dispose();
});

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => res(p));
    });
  });
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('TSS errors', () => {
  it('a bad TCTI string or an unreachable port is TSS_TCTI_FAILED', async () => {
    for (const conf of ['nosuchtcti:foo', `swtpm:host=127.0.0.1,port=${await freePort()}`, `mssim:host=127.0.0.1,port=${await freePort()}`]) {
      const e = thrown(() => Tpm.open(conf));
      expect(e).toBeInstanceOf(UnavailableError);
      expect(isVouchError(e) && e.code).toBe('TSS_TCTI_FAILED');
      expect(String((e as Error).message)).toMatch(/rc 0x000a/);
    }
    expect(() => Tpm.open('')).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });

  it('reading a missing NV index is TPM_NV_INDEX_ABSENT', () => {
    expect(() => tpm.readNv(0x01c0000a)).toThrow(expect.objectContaining({ code: 'TPM_NV_INDEX_ABSENT', status: 404 }));
    expect(() => tpm.readNvPublic(0x01c0000a)).toThrow(expect.objectContaining({ code: 'TPM_NV_INDEX_ABSENT' }));
    expect(() => tpm.readNv(0x81010001)).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });

  it('a garbage ESYS_TR is TSS_COMMAND_FAILED naming the esapi layer and the rc', () => {
    const e = thrown(() => tpm.flush(0x4242));
    expect(e).toBeInstanceOf(TssCommandFailure);
    const f = e as TssCommandFailure;
    expect(f.code).toBe('TSS_COMMAND_FAILED');
    expect(f.layer).toBe('esapi');
    expect(f.message).toMatch(/^Esys_FlushContext failed: esapi layer, rc 0x0007[0-9a-f]{4} \(esapi:/);
  });

  it('an absent persistent handle and a key used wrongly are TSS_COMMAND_FAILED naming the tpm layer', () => {
    const e = thrown(() => tpm.loadPersistent(0x81000999));
    expect(e).toMatchObject({ code: 'TSS_COMMAND_FAILED', layer: 'tpm', rc: 0x18b });
    expect((e as Error).message).toMatch(/Esys_TR_FromTPMPublic failed: tpm layer, rc 0x0000018b \(tpm:handle\(1\)/);
    // An EK is a decryption key: the TPM refuses to sign a quote with it.
    const ek = tpm.createEk('rsa2048');
    try {
      const q = thrown(() => tpm.quote(ek, new Uint8Array(8), []));
      expect(q).toMatchObject({ code: 'TSS_COMMAND_FAILED', layer: 'tpm', command: 'Esys_Quote' });
    } finally {
      tpm.flush(ek);
    }
    expect(tpm.listHandles(0x80000000)).toEqual([]);
  });

  it('a closed Tpm refuses every call', () => {
    const t = Tpm.open(sw.tcti);
    t.close();
    t.close();
    expect(() => t.getInfo()).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });

  it('missing tpm2-tss libraries are TSS_LIBRARY_UNAVAILABLE at open, not at import', async () => {
    vi.resetModules();
    const saved = process.env.VOUCH_TSS2_LIBDIR;
    process.env.VOUCH_TSS2_LIBDIR = '/nonexistent/vouch-tss2';
    try {
      const fresh = await import('../../native/index.js');
      expect(() => fresh.Tpm.open(sw.tcti)).toThrow(expect.objectContaining({ code: 'TSS_LIBRARY_UNAVAILABLE' }));
    } finally {
      if (saved === undefined) delete process.env.VOUCH_TSS2_LIBDIR;
      else process.env.VOUCH_TSS2_LIBDIR = saved;
      vi.resetModules();
    }
  });
});
