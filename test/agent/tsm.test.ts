/**
 * The configfs-tsm collector against the emulated configfs-tsm (test/helpers/fake-tsm.ts): the
 * real collector code path, with synthetic SEV-SNP reports signed by the TEST-ONLY chain.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectTsmReport, TSM_PROVIDER_SEV_GUEST } from '../../src/agent/tsm.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { MisuseError, UnavailableError, type VouchError } from '../../src/lib/errors.js';
import { decodeSnpCertTable, decodeSnpReport, snpCertTableGet, verifySnpReport } from '../../src/snp/index.js';
import { FakeTsm } from '../helpers/fake-tsm.js';

const NOW = new Date('2026-01-01T00:00:00Z');

async function rejection(p: Promise<unknown>): Promise<VouchError> {
  try {
    await p;
  } catch (e) {
    return e as VouchError;
  }
  throw new Error('expected a rejection');
}

describe('collectTsmReport through an emulated configfs-tsm', () => {
  it('returns a report that decodes, carries the REPORT_DATA, and verifies against the TEST-ONLY chain', async () => {
    const tsm = new FakeTsm();
    const reportData = teeReportData(randomBytes(32), randomBytes(91));
    const got = await collectTsmReport({ reportData, fs: tsm });
    expect(got.provider).toBe(TSM_PROVIDER_SEV_GUEST);
    expect(got.generation).toBe(1);
    const rep = decodeSnpReport(got.report);
    expect(Buffer.from(rep.reportData).equals(Buffer.from(reportData))).toBe(true);
    expect(rep.vmpl).toBe(0);

    expect(got.auxblob).not.toBeNull();
    const table = decodeSnpCertTable(got.auxblob as Uint8Array);
    expect(table.map((e) => e.kind)).toEqual(['vcek', 'ask', 'ark']);
    const vcek = snpCertTableGet(table, 'vcek');
    const ask = snpCertTableGet(table, 'ask');
    const ark = snpCertTableGet(table, 'ark');
    expect(Buffer.from(vcek as Uint8Array).equals(Buffer.from(tsm.chain.vcek))).toBe(true);
    expect(Buffer.from(ask as Uint8Array).equals(Buffer.from(tsm.chain.ask))).toBe(true);
    expect(Buffer.from(ark as Uint8Array).equals(Buffer.from(tsm.chain.ark))).toBe(true);

    const pins = { [createHash('sha256').update(tsm.chain.ark).digest('hex')]: 'Milan' as const };
    const res = verifySnpReport(rep, { vcek: vcek as Uint8Array, ask: ask as Uint8Array, ark: ark as Uint8Array, now: NOW, crl: tsm.chain.crl, pinnedArks: pins });
    expect(res.failures).toEqual([]);
    expect(res.ok).toBe(true);

    // The TEST-ONLY ARK is not trusted without the pin.
    expect(verifySnpReport(rep, { vcek: vcek as Uint8Array, ask: ask as Uint8Array, ark: ark as Uint8Array, now: NOW, allowMissingCrl: true }).ok).toBe(false);

    expect(tsm.created).toHaveLength(1);
    expect(tsm.live).toEqual([]);
  });

  it('writes privlevel when given (VMPL in the report, one more generation)', async () => {
    const tsm = new FakeTsm();
    const got = await collectTsmReport({ reportData: new Uint8Array(64).fill(3), privlevel: 2, fs: tsm, name: 'agent' });
    expect(got.generation).toBe(2);
    expect(decodeSnpReport(got.report).vmpl).toBe(2);
    expect(tsm.created[0]).toMatch(/^agent-/);
    expect(tsm.live).toEqual([]);
  });

  it('returns the provider as found; the caller decides', async () => {
    const got = await collectTsmReport({ reportData: new Uint8Array(64), fs: new FakeTsm({ provider: 'tdx_guest' }) });
    expect(got.provider).toBe('tdx_guest');
  });

  it('no auxblob attribute: auxblob is null', async () => {
    const got = await collectTsmReport({ reportData: new Uint8Array(64), fs: new FakeTsm({ auxblob: false }) });
    expect(got.auxblob).toBeNull();
    expect(decodeSnpReport(got.report).reportData).toEqual(new Uint8Array(64));
  });

  it('a racing writer: the attempt is discarded and retried in a fresh entry', async () => {
    const tsm = new FakeTsm({ racingAttempts: 2 });
    const reportData = new Uint8Array(64).fill(0x5a);
    const got = await collectTsmReport({ reportData, fs: tsm });
    expect(tsm.created).toHaveLength(3);
    expect(new Set(tsm.created).size).toBe(3);
    expect(tsm.removed).toEqual(tsm.created);
    expect(tsm.live).toEqual([]);
    expect(decodeSnpReport(got.report).reportData).toEqual(reportData);
    expect(got.generation).toBe(1);
  });

  it('a writer that keeps racing: SNP_TSM_RACE after the bounded attempts, entries removed', async () => {
    const tsm = new FakeTsm({ racingAttempts: Infinity });
    const e = await rejection(collectTsmReport({ reportData: new Uint8Array(64), fs: tsm }));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_TSM_RACE');
    expect(e.field).toBe('generation');
    expect(tsm.created).toHaveLength(3);
    expect(tsm.live).toEqual([]);

    const tsm5 = new FakeTsm({ racingAttempts: Infinity });
    expect((await rejection(collectTsmReport({ reportData: new Uint8Array(64), fs: tsm5, attempts: 5 }))).code).toBe('SNP_TSM_RACE');
    expect(tsm5.created).toHaveLength(5);
    expect(tsm5.live).toEqual([]);
  });

  it('a read that fails: SNP_TSM_UNAVAILABLE, and the entry is still removed', async () => {
    for (const attr of ['outblob', 'generation', 'provider', 'auxblob']) {
      const tsm = new FakeTsm({ failReads: [attr] });
      const e = await rejection(collectTsmReport({ reportData: new Uint8Array(64), fs: tsm }));
      expect(e).toBeInstanceOf(UnavailableError);
      expect(e.code).toBe('SNP_TSM_UNAVAILABLE');
      expect(e.message).toContain(attr);
      expect(tsm.created).toHaveLength(1);
      expect(tsm.live).toEqual([]);
    }
  });

  it('a missing configfs-tsm tree: SNP_TSM_UNAVAILABLE naming the likely causes', async () => {
    const e = await rejection(collectTsmReport({ reportData: new Uint8Array(64), fs: new FakeTsm({ present: false }) }));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_TSM_UNAVAILABLE');
    expect(e.message).toMatch(/kernel is too old/);
    expect(e.message).toMatch(/configfs is not mounted/);
  });

  it('the real filesystem with no such tree: SNP_TSM_UNAVAILABLE', async () => {
    const e = await rejection(collectTsmReport({ root: `/nonexistent-${randomBytes(6).toString('hex')}/tsm/report`, reportData: new Uint8Array(64) }));
    expect(e.code).toBe('SNP_TSM_UNAVAILABLE');
  });

  it('wrong-size reportData, bad privlevel, bad name: MisuseError before touching the tree', async () => {
    const tsm = new FakeTsm();
    for (const reportData of [new Uint8Array(0), new Uint8Array(32), new Uint8Array(65)]) {
      const e = await rejection(collectTsmReport({ reportData, fs: tsm }));
      expect(e).toBeInstanceOf(MisuseError);
      expect(e.code).toBe('MISUSE_ARGUMENT');
    }
    expect(await rejection(collectTsmReport({ reportData: new Uint8Array(64), privlevel: 4, fs: tsm }))).toBeInstanceOf(MisuseError);
    expect(await rejection(collectTsmReport({ reportData: new Uint8Array(64), privlevel: -1, fs: tsm }))).toBeInstanceOf(MisuseError);
    expect(await rejection(collectTsmReport({ reportData: new Uint8Array(64), name: '../x', fs: tsm }))).toBeInstanceOf(MisuseError);
    expect(await rejection(collectTsmReport({ reportData: new Uint8Array(64), attempts: 0, fs: tsm }))).toBeInstanceOf(MisuseError);
    expect(tsm.created).toEqual([]);
  });
});
