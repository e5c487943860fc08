/**
 * The agent's TDX collection against the emulated configfs-tsm of a TD (test/helpers/fake-tsm-tdx.ts):
 * quotes signed by the TEST-ONLY hierarchy carry the REPORTDATA written, a concurrent writer is
 * detected, entries are always removed, and the CCEL is read whole or not at all.
 */
import { createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectTdxQuote, readCcel } from '../../src/agent/tdx.js';
import { decodeTdxQuote } from '../../src/tdx/abi.js';
import { VouchError } from '../../src/lib/errors.js';
import { FakeCcel, FakeTdxTsm } from '../helpers/fake-tsm-tdx.js';

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof VouchError) return e.code;
    throw e;
  }
  return 'none';
};

describe('emulated TDX configfs-tsm', () => {
  it('returns a signed TDX quote whose REPORTDATA is the inblob, and removes its entry', async () => {
    const tsm = new FakeTdxTsm();
    const reportData = new Uint8Array(64).map((_, i) => i);
    const bytes = await collectTdxQuote({ reportData, tsm: { root: tsm.root, fs: tsm } });
    const q = decodeTdxQuote(bytes);
    expect(q.body.report.reportData).toEqual(reportData);
    expect(verify('sha256', q.signedBytes, { key: createPublicKey(tsm.hierarchy.attestationPrivateKey), dsaEncoding: 'ieee-p1363' }, q.signatureData.signature)).toBe(true);
    expect(tsm.live).toEqual([]);
    expect(tsm.removed).toEqual(tsm.created);
  });

  it('a concurrent writer is retried; a writer on every attempt is SNP_TSM_RACE', async () => {
    const once = new FakeTdxTsm({ racingAttempts: 1 });
    const reportData = new Uint8Array(64).fill(3);
    const q = decodeTdxQuote(await collectTdxQuote({ reportData, tsm: { root: once.root, fs: once } }));
    expect(q.body.report.reportData).toEqual(reportData);
    expect(once.created).toHaveLength(2);
    const always = new FakeTdxTsm({ racingAttempts: Infinity });
    expect(await codeOf(collectTdxQuote({ reportData, tsm: { root: always.root, fs: always } }))).toBe('SNP_TSM_RACE');
    expect(always.live).toEqual([]);
  });

  it('another provider, a missing tree and a failing read are refused with their codes', async () => {
    const rd = new Uint8Array(64);
    const sev = new FakeTdxTsm({ provider: 'sev_guest' });
    expect(await codeOf(collectTdxQuote({ reportData: rd, tsm: { root: sev.root, fs: sev } }))).toBe('TDX_TSM_PROVIDER');
    const absent = new FakeTdxTsm({ present: false });
    expect(await codeOf(collectTdxQuote({ reportData: rd, tsm: { root: absent.root, fs: absent } }))).toBe('SNP_TSM_UNAVAILABLE');
    const eio = new FakeTdxTsm({ failReads: ['outblob'] });
    expect(await codeOf(collectTdxQuote({ reportData: rd, tsm: { root: eio.root, fs: eio } }))).toBe('SNP_TSM_UNAVAILABLE');
    expect(eio.live).toEqual([]);
  });

  it('FakeCcel: both files, none, or one alone (refused)', async () => {
    const table = new Uint8Array(56).fill(1);
    const data = new Uint8Array(64).fill(2);
    expect(await readCcel({ fs: new FakeCcel({ table, data }) })).toEqual({ table, data });
    expect(await readCcel({ fs: new FakeCcel() })).toBeNull();
    expect(await codeOf(readCcel({ fs: new FakeCcel({ table }) }))).toBe('TDX_CCEL_UNAVAILABLE');
  });
});
