/**
 * The /dev/sev-guest collector against the emulated driver and host (test/helpers/fake-sev-guest.ts):
 * the real collector code path and codec, with synthetic SEV-SNP reports signed by the TEST-ONLY chain.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectSevGuestReport, errnoName, SevGuestDeviceMissing, SEV_GUEST_CERTS_INITIAL, SEV_GUEST_CERTS_MAX } from '../../src/agent/sev-guest.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { MisuseError, ParseError, UnavailableError, type VouchError } from '../../src/lib/errors.js';
import { decodeSnpCertTable, decodeSnpReport, snpCertTableGet, verifySnpReport } from '../../src/snp/index.js';
import { FakeSevGuest, type FakeSevGuestOptions } from '../helpers/fake-sev-guest.js';
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

async function failWith(opts: FakeSevGuestOptions, extra: { certsLength?: number } = {}): Promise<{ e: VouchError; dev: FakeSevGuest }> {
  const dev = new FakeSevGuest(opts);
  const e = await rejection(collectSevGuestReport({ reportData: new Uint8Array(64).fill(1), ioctl: dev.ioctl, ...extra }));
  return { e, dev };
}

describe('collectSevGuestReport through an emulated /dev/sev-guest', () => {
  it('returns a report that decodes, carries the REPORT_DATA, and verifies against the TEST-ONLY chain, in one request', async () => {
    const dev = new FakeSevGuest();
    const reportData = teeReportData(randomBytes(32), randomBytes(91));
    const got = await collectSevGuestReport({ reportData, ioctl: dev.ioctl });
    expect(got.requests).toBe(1);
    expect(dev.calls.map((c) => c.certsLen)).toEqual([SEV_GUEST_CERTS_INITIAL]);
    expect(dev.calls[0]?.path).toBe('/dev/sev-guest');
    expect(got.report).toEqual(dev.reports[0]);
    const rep = decodeSnpReport(got.report);
    expect(Buffer.from(rep.reportData).equals(Buffer.from(reportData))).toBe(true);
    expect(rep.vmpl).toBe(0);

    const table = decodeSnpCertTable(got.auxblob as Uint8Array);
    expect(table.map((e) => e.kind)).toEqual(['vcek', 'ask', 'ark']);
    const vcek = snpCertTableGet(table, 'vcek') as Uint8Array;
    const ask = snpCertTableGet(table, 'ask') as Uint8Array;
    const ark = snpCertTableGet(table, 'ark') as Uint8Array;
    const pins = { [createHash('sha256').update(dev.chain.ark).digest('hex')]: 'Milan' as const };
    const res = verifySnpReport(rep, { vcek, ask, ark, now: NOW, crl: dev.chain.crl, pinnedArks: pins });
    expect(res.failures).toEqual([]);
    expect(res.ok).toBe(true);
  });

  it('hands the verifier the same certificate table bytes configfs-tsm gives as auxblob', async () => {
    const dev = new FakeSevGuest();
    const got = await collectSevGuestReport({ reportData: new Uint8Array(64), ioctl: dev.ioctl });
    expect(got.auxblob).toEqual(new FakeTsm({}, dev.chain).certTable());
  });

  it('passes the VMPL and the device path', async () => {
    const dev = new FakeSevGuest({ path: '/tmp/sev' });
    const got = await collectSevGuestReport({ reportData: new Uint8Array(64).fill(3), vmpl: 2, path: '/tmp/sev', ioctl: dev.ioctl });
    expect(decodeSnpReport(got.report).vmpl).toBe(2);
    expect(dev.calls[0]?.vmpl).toBe(2);
  });

  it('a host with no certificates: auxblob is null', async () => {
    const got = await collectSevGuestReport({ reportData: new Uint8Array(64), ioctl: new FakeSevGuest({ hostCerts: false }).ioctl });
    expect(got.auxblob).toBeNull();
    expect(decodeSnpReport(got.report).reportData).toEqual(new Uint8Array(64));
  });

  it('a certificate buffer too small: retried once with the length the host asks for, rounded to pages', async () => {
    const dev = new FakeSevGuest({ hostCertsBytes: 0x5001, kernelCertsMax: SEV_GUEST_CERTS_MAX });
    const got = await collectSevGuestReport({ reportData: new Uint8Array(64).fill(9), ioctl: dev.ioctl });
    expect(got.requests).toBe(2);
    expect(dev.calls.map((c) => c.certsLen)).toEqual([0x4000, 0x6000]);
    expect(decodeSnpReport(got.report).reportData).toEqual(new Uint8Array(64).fill(9));
    expect(got.auxblob).toEqual(dev.certTable());

    // A host whose claim is not page-aligned is rounded up.
    const odd = new FakeSevGuest({ hostCertsBytes: 0x2000, claimedCertsLen: () => 0x1801 });
    const got2 = await collectSevGuestReport({ reportData: new Uint8Array(64), ioctl: odd.ioctl, certsLength: 0x1000 });
    expect(odd.calls.map((c) => c.certsLen)).toEqual([0x1000, 0x2000]);
    expect(got2.requests).toBe(2);
  });

  it('a buffer still too small after the retry: SNP_GUEST_VMM_ERROR, no third request', async () => {
    const { e, dev } = await failWith({ hostCertsBytes: 0x8000, kernelCertsMax: SEV_GUEST_CERTS_MAX, claimedCertsLen: (n) => 0x4000 + n * 0x1000 });
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_GUEST_VMM_ERROR');
    expect(e.field).toBe('snp_guest_request_ioctl.vmm_error');
    expect(e.actual).toBe('0x1 (INVALID_LEN)');
    expect(e.message).toMatch(/still too small after a retry/);
    expect(dev.calls.map((c) => c.certsLen)).toEqual([0x4000, 0x5000]);
  });

  it('a host that asks for no more than it got, or for more than the cap: SNP_GUEST_VMM_ERROR after one request', async () => {
    const same = await failWith({ hostCertsBytes: 0x8000, claimedCertsLen: () => 0x4000 });
    expect(same.e.code).toBe('SNP_GUEST_VMM_ERROR');
    expect(same.e.message).toMatch(/not more than/);
    expect(same.dev.calls).toHaveLength(1);
    const huge = await failWith({ hostCertsBytes: 0x8000, claimedCertsLen: () => SEV_GUEST_CERTS_MAX + 0x1000 });
    expect(huge.e.code).toBe('SNP_GUEST_VMM_ERROR');
    expect(huge.e.message).toMatch(/more than the 65536/);
    expect(huge.dev.calls).toHaveLength(1);
  });

  it('a firmware error: SNP_GUEST_FIRMWARE_ERROR naming the code', async () => {
    const { e } = await failWith({ fwError: 0x16 });
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.code).toBe('SNP_GUEST_FIRMWARE_ERROR');
    expect(e.field).toBe('snp_guest_request_ioctl.fw_error');
    expect(e.actual).toBe('0x16 (INVALID_PARAM)');
    expect(e.message).toMatch(/EIO/);
  });

  it('a VMM error: SNP_GUEST_VMM_ERROR naming the code (busy, or a generic host failure)', async () => {
    const busy = await failWith({ vmmError: 2 });
    expect(busy.e.code).toBe('SNP_GUEST_VMM_ERROR');
    expect(busy.e.actual).toBe('0x2 (BUSY)');
    expect(busy.e.message).toMatch(/throttling/);
    const generic = await failWith({ vmmError: 0xffffffff });
    expect(generic.e.code).toBe('SNP_GUEST_VMM_ERROR');
    expect(generic.e.actual).toBe('0xffffffff');
    expect(generic.dev.calls).toHaveLength(1);
  });

  it('MSG_REPORT_RSP.STATUS not success: SNP_GUEST_FIRMWARE_ERROR on the status field', async () => {
    const { e } = await failWith({ respStatus: 0x27 });
    expect(e.code).toBe('SNP_GUEST_FIRMWARE_ERROR');
    expect(e.field).toBe('MSG_REPORT_RSP.STATUS');
    expect(e.actual).toBe('0x27 (INVALID_KEY)');
  });

  it('a short report, a truncated response, a non-zero reserved byte: ParseError naming the field', async () => {
    const short = await failWith({ respReportSize: 1000 });
    expect(short.e).toBeInstanceOf(ParseError);
    expect(short.e.code).toBe('PARSE_BAD_VALUE');
    expect(short.e.field).toBe('MSG_REPORT_RSP.REPORT_SIZE');
    expect(short.e.actual).toBe('1000');
    const cut = await failWith({ respLength: 0x20 + 1000 });
    expect(cut.e.code).toBe('PARSE_TRUNCATED');
    expect(cut.e.field).toBe('MSG_REPORT_RSP.REPORT');
    const reserved = await failWith({ respReservedByte: 5 });
    expect(reserved.e.code).toBe('PARSE_RESERVED_NONZERO');
    expect(reserved.e.field).toBe('MSG_REPORT_RSP.reserved');
    expect(reserved.e.offset).toBe(13);
  });

  it('no device node: SevGuestDeviceMissing (SNP_GUEST_DEVICE_UNAVAILABLE, ENOENT), nothing sent', async () => {
    const { e, dev } = await failWith({ present: false });
    expect(e).toBeInstanceOf(SevGuestDeviceMissing);
    expect(e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(e.actual).toBe('ENOENT');
    expect(e.message).toMatch(/not an SEV-SNP guest/);
    expect(dev.calls).toEqual([]);
  });

  it('no permission, not the device, a disabled VMPCK, a kernel limit, no firmware call: SNP_GUEST_DEVICE_UNAVAILABLE with the errno', async () => {
    const perm = await failWith({ openErrno: 'EACCES' });
    expect(perm.e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(perm.e).not.toBeInstanceOf(SevGuestDeviceMissing);
    expect(perm.e.message).toMatch(/needs root/);
    const notDevice = await failWith({ notDevice: true });
    expect(notDevice.e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(notDevice.e.actual).toBe('ENOTTY');
    expect(notDevice.e.message).toMatch(/not the SEV guest device/);
    const vmpck = await failWith({ vmpckDisabled: true });
    expect(vmpck.e.actual).toBe('ENOTTY');
    expect(vmpck.e.message).toMatch(/VMPCK/);
    const limit = await failWith({}, { certsLength: 0x8000 });
    expect(limit.e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(limit.e.actual).toBe('EINVAL');
    expect(limit.e.message).toMatch(/32768 bytes/);
    const noFw = await failWith({ noFwCall: true });
    expect(noFw.e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(noFw.e.actual).toBe('EIO');
    expect(noFw.e.message).toMatch(/did not reach the firmware/);
  });

  it('messages never carry the REPORT_DATA', async () => {
    const reportData = new Uint8Array(64).fill(0xab);
    const hex = Buffer.from(reportData).toString('hex').slice(0, 16);
    for (const opts of [{ fwError: 0x16 }, { vmmError: 2 }, { respStatus: 0x16 }, { respReservedByte: 0 }, { notDevice: true }] as FakeSevGuestOptions[]) {
      const e = await rejection(collectSevGuestReport({ reportData, ioctl: new FakeSevGuest(opts).ioctl }));
      expect(JSON.stringify({ m: e.message, j: e.toJSON() })).not.toContain(hex);
    }
  });

  it('wrong-size reportData, bad vmpl, bad certsLength: MisuseError before touching the device', async () => {
    const dev = new FakeSevGuest();
    for (const reportData of [new Uint8Array(0), new Uint8Array(32), new Uint8Array(65)]) {
      const e = await rejection(collectSevGuestReport({ reportData, ioctl: dev.ioctl }));
      expect(e).toBeInstanceOf(MisuseError);
      expect(e.code).toBe('MISUSE_ARGUMENT');
    }
    for (const vmpl of [-1, 4, 1.5]) expect(await rejection(collectSevGuestReport({ reportData: new Uint8Array(64), vmpl, ioctl: dev.ioctl }))).toBeInstanceOf(MisuseError);
    for (const certsLength of [0, 1000, 0x1001, SEV_GUEST_CERTS_MAX + 0x1000]) {
      expect(await rejection(collectSevGuestReport({ reportData: new Uint8Array(64), certsLength, ioctl: dev.ioctl }))).toBeInstanceOf(MisuseError);
    }
    expect(dev.opened).toEqual([]);
  });

  it('names errnos', () => {
    expect(errnoName(2)).toBe('ENOENT');
    expect(errnoName(25)).toBe('ENOTTY');
    expect(errnoName(99999)).toBe('errno 99999');
  });
});
