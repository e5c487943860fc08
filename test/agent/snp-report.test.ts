/**
 * The choice of SEV-SNP report interface (src/agent/snp-report.ts): configfs-tsm when its tree
 * exists, else /dev/sev-guest, else SNP_REPORT_SOURCE_UNAVAILABLE; with both interfaces emulated.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chooseSnpReportSource, collectSnpReport } from '../../src/agent/snp-report.js';
import { tsmReportTreePresent, type TsmFs } from '../../src/agent/tsm.js';
import { MisuseError, UnavailableError, type VouchError } from '../../src/lib/errors.js';
import { decodeSnpReport } from '../../src/snp/index.js';
import { FakeSevGuest } from '../helpers/fake-sev-guest.js';
import { FakeTsm } from '../helpers/fake-tsm.js';

async function rejection(p: Promise<unknown>): Promise<VouchError> {
  try {
    await p;
  } catch (e) {
    return e as VouchError;
  }
  throw new Error('expected a rejection');
}

const nowhere = (): string => `/nonexistent-${randomBytes(6).toString('hex')}/tsm/report`;

describe('chooseSnpReportSource', () => {
  it('configfs-tsm when the report tree exists, /dev/sev-guest when it does not', async () => {
    expect(await chooseSnpReportSource({ fs: new FakeTsm() })).toBe('configfs-tsm');
    expect(await chooseSnpReportSource({ fs: new FakeTsm({ present: false }) })).toBe('sev-guest');
    // The real filesystem.
    expect(await chooseSnpReportSource({ root: nowhere() })).toBe('sev-guest');
    expect(await tsmReportTreePresent(nowhere())).toBe(false);
  });

  it('an injected tree without stat counts as present', async () => {
    const fake = new FakeTsm();
    const fs: TsmFs = { mkdir: (p) => fake.mkdir(p), writeFile: (p, d) => fake.writeFile(p, d), readFile: (p) => fake.readFile(p), rmdir: (p) => fake.rmdir(p) };
    expect(await chooseSnpReportSource({ fs })).toBe('configfs-tsm');
  });

  it('a tree that cannot be looked at: SNP_TSM_UNAVAILABLE, no guess', async () => {
    const fake = new FakeTsm();
    const fs: TsmFs = {
      mkdir: (p) => fake.mkdir(p),
      writeFile: (p, d) => fake.writeFile(p, d),
      readFile: (p) => fake.readFile(p),
      rmdir: (p) => fake.rmdir(p),
      stat: async (p) => {
        throw Object.assign(new Error(`EACCES: stat '${p}'`), { code: 'EACCES' });
      },
    };
    const e = await rejection(chooseSnpReportSource({ fs }));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_TSM_UNAVAILABLE');
    expect(e.message).toMatch(/no permission/);
  });
});

describe('collectSnpReport', () => {
  it('configfs-tsm present: the report comes from configfs-tsm and the device is never opened', async () => {
    const tsm = new FakeTsm();
    const dev = new FakeSevGuest();
    const reportData = new Uint8Array(64).fill(0x11);
    const got = await collectSnpReport({ reportData, tsm: { fs: tsm }, sevGuest: { ioctl: dev.ioctl } });
    expect(got.source).toBe('configfs-tsm');
    expect(got.report).toEqual(tsm.reports[0]);
    expect(got.certTable).toEqual(tsm.certTable());
    expect(decodeSnpReport(got.report).reportData).toEqual(reportData);
    expect(dev.opened).toEqual([]);
  });

  it('configfs-tsm absent: the report comes from /dev/sev-guest, with the same certificate table', async () => {
    const tsm = new FakeTsm({ present: false });
    const dev = new FakeSevGuest();
    const reportData = new Uint8Array(64).fill(0x22);
    const got = await collectSnpReport({ reportData, privlevel: 1, tsm: { fs: tsm }, sevGuest: { ioctl: dev.ioctl } });
    expect(got.source).toBe('sev-guest');
    expect(got.report).toEqual(dev.reports[0]);
    const rep = decodeSnpReport(got.report);
    expect(rep.reportData).toEqual(reportData);
    expect(rep.vmpl).toBe(1);
    expect(got.certTable).toEqual(new FakeTsm().certTable());
    expect(tsm.created).toEqual([]);

    const onDisk = await collectSnpReport({ reportData, tsm: { root: nowhere() }, sevGuest: { ioctl: dev.ioctl } });
    expect(onDisk.source).toBe('sev-guest');
  });

  it('neither interface: SNP_REPORT_SOURCE_UNAVAILABLE naming both', async () => {
    const e = await rejection(
      collectSnpReport({ reportData: new Uint8Array(64), tsm: { fs: new FakeTsm({ present: false }) }, sevGuest: { ioctl: new FakeSevGuest({ present: false }).ioctl } }),
    );
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_REPORT_SOURCE_UNAVAILABLE');
    expect(e.message).toContain('/sys/kernel/config/tsm/report');
    expect(e.message).toContain('/dev/sev-guest');
  });

  it('a device that exists but fails keeps its own code (no SNP_REPORT_SOURCE_UNAVAILABLE)', async () => {
    const e = await rejection(collectSnpReport({ reportData: new Uint8Array(64), tsm: { fs: new FakeTsm({ present: false }) }, sevGuest: { ioctl: new FakeSevGuest({ fwError: 0x16 }).ioctl } }));
    expect(e.code).toBe('SNP_GUEST_FIRMWARE_ERROR');
  });

  it('configfs-tsm present but failing, or of another provider: its error, and no fallback to the device', async () => {
    const dev = new FakeSevGuest();
    const failing = await rejection(collectSnpReport({ reportData: new Uint8Array(64), tsm: { fs: new FakeTsm({ failReads: ['outblob'] }) }, sevGuest: { ioctl: dev.ioctl } }));
    expect(failing.code).toBe('SNP_TSM_UNAVAILABLE');
    const tdx = await rejection(collectSnpReport({ reportData: new Uint8Array(64), tsm: { fs: new FakeTsm({ provider: 'tdx_guest' }) }, sevGuest: { ioctl: dev.ioctl } }));
    expect(tdx.code).toBe('SNP_TSM_UNAVAILABLE');
    expect(tdx.message).toMatch(/not an SEV-SNP guest/);
    expect(dev.opened).toEqual([]);
  });

  it('a bad privlevel is MisuseError whichever interface would be used', async () => {
    for (const present of [true, false]) {
      const dev = new FakeSevGuest();
      const tsm = new FakeTsm({ present });
      const e = await rejection(collectSnpReport({ reportData: new Uint8Array(64), privlevel: 4, tsm: { fs: tsm }, sevGuest: { ioctl: dev.ioctl } }));
      expect(e).toBeInstanceOf(MisuseError);
      expect(dev.opened).toEqual([]);
      expect(tsm.created).toEqual([]);
    }
  });
});
