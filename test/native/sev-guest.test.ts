/**
 * The libc binding for /dev/sev-guest (native/sev-guest.ts). No SEV-SNP guest is needed: these
 * tests check that libc is loaded lazily, that the C layouts koffi computes agree with the codec,
 * and that real open/ioctl failures on paths that are not the device map to clear codes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sevGuestExtReport, sevGuestLibcLoaded } from '../../native/sev-guest.js';
import { collectSevGuestReport, SevGuestDeviceMissing } from '../../src/agent/sev-guest.js';
import {
  decodeSnpExtReportReq,
  decodeSnpGuestRequestIoctl,
  encodeSnpReportReq,
  SNP_EXT_REPORT_REQ_LAYOUT,
  SNP_EXT_REPORT_REQ_SIZE,
  SNP_GUEST_REQUEST_IOCTL_LAYOUT,
  SNP_GUEST_REQUEST_IOCTL_SIZE,
  SNP_REPORT_REQ_LAYOUT,
  SNP_REPORT_REQ_SIZE,
  SNP_REPORT_RESP_SIZE,
} from '../../src/agent/sev-guest-abi.js';
import { isVouchError, MisuseError, UnavailableError, type VouchError } from '../../src/lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vouch-sev-guest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const call = { msgVersion: 1, reportReq: encodeSnpReportReq({ userData: new Uint8Array(64).fill(4), vmpl: 0 }), certsLen: 0x4000 };

function thrown(fn: () => unknown): VouchError {
  try {
    fn();
  } catch (e) {
    if (isVouchError(e)) return e;
    throw e;
  }
  throw new Error('expected a throw');
}

async function rejection(p: Promise<unknown>): Promise<VouchError> {
  try {
    await p;
  } catch (e) {
    if (isVouchError(e)) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('native/sev-guest', () => {
  // First in this file: nothing else has loaded libc yet.
  it('loads nothing on import; a C library that cannot be loaded is SNP_GUEST_DEVICE_UNAVAILABLE, and is not cached', () => {
    expect(sevGuestLibcLoaded()).toBe(false);
    const saved = process.env.VOUCH_LIBC;
    process.env.VOUCH_LIBC = '/nonexistent/vouch-libc.so';
    try {
      const e = thrown(() => sevGuestExtReport('/dev/null', call));
      expect(e).toBeInstanceOf(UnavailableError);
      expect(e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
      expect(e.message).toContain('/nonexistent/vouch-libc.so');
      expect(sevGuestLibcLoaded()).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.VOUCH_LIBC;
      else process.env.VOUCH_LIBC = saved;
    }
    expect(sevGuestExtReport('/dev/null', call).stage).toBe('ioctl');
    expect(sevGuestLibcLoaded()).toBe(true);
  });

  it('koffi lays the C structures out at the codec offsets (x86-64 alignment of a u64 after a u8)', () => {
    interface Koffi {
      struct(def: Record<string, unknown>): object;
      array(type: string, n: number): object;
      sizeof(t: object): number;
      offsetof(t: object, member: string): number;
    }
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const reportReq = koffi.struct({ user_data: koffi.array('uint8_t', 64), vmpl: 'uint32_t', rsvd: koffi.array('uint8_t', 28) });
    const extReq = koffi.struct({ data: reportReq, certs_address: 'uint64_t', certs_len: 'uint32_t' });
    const ioctl = koffi.struct({ msg_version: 'uint8_t', req_data: 'uint64_t', resp_data: 'uint64_t', exitinfo2: 'uint64_t' });
    const resp = koffi.struct({ data: koffi.array('uint8_t', 4000) });
    expect(koffi.sizeof(reportReq)).toBe(SNP_REPORT_REQ_SIZE);
    expect(koffi.sizeof(extReq)).toBe(SNP_EXT_REPORT_REQ_SIZE);
    expect(koffi.sizeof(ioctl)).toBe(SNP_GUEST_REQUEST_IOCTL_SIZE);
    expect(koffi.sizeof(resp)).toBe(SNP_REPORT_RESP_SIZE);
    for (const [t, layout] of [
      [reportReq, SNP_REPORT_REQ_LAYOUT],
      [extReq, SNP_EXT_REPORT_REQ_LAYOUT],
      [ioctl, SNP_GUEST_REQUEST_IOCTL_LAYOUT],
    ] as const) {
      for (const fl of layout) if (!fl.name.startsWith('(')) expect(koffi.offsetof(t, fl.name), fl.name).toBe(fl.offset);
    }
  });

  it('a path that does not exist: open fails ENOENT, and the collector says the device is missing', async () => {
    const out = sevGuestExtReport(join(dir, 'no-such-device'), call);
    expect(out).toEqual({ stage: 'open', errno: constants.errno.ENOENT });
    const e = await rejection(collectSevGuestReport({ reportData: new Uint8Array(64), path: join(dir, 'no-such-device') }));
    expect(e).toBeInstanceOf(SevGuestDeviceMissing);
    expect(e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(e.actual).toBe('ENOENT');
  });

  it('a node that is not the device (/dev/null, a regular file): ioctl fails ENOTTY, buffers come back untouched', async () => {
    const file = join(dir, 'regular');
    writeFileSync(file, 'not a device');
    for (const path of ['/dev/null', file]) {
      const out = sevGuestExtReport(path, call);
      if (out.stage !== 'ioctl') throw new Error(`open ${path} failed: ${out.errno}`);
      expect(out.ret).toBe(-1);
      expect(out.errno).toBe(constants.errno.ENOTTY);
      const io = decodeSnpGuestRequestIoctl(out.ioctl);
      expect(io.msgVersion).toBe(1);
      expect(io.exitinfo2).toBe(0n);
      expect(io.reqData).not.toBe(0n);
      expect(io.respData).not.toBe(0n);
      const ext = decodeSnpExtReportReq(out.extReportReq);
      expect(ext.certsLen).toBe(0x4000);
      expect(ext.certsAddress).not.toBe(0n);
      expect(ext.data.userData).toEqual(new Uint8Array(64).fill(4));
      expect(out.resp).toEqual(new Uint8Array(SNP_REPORT_RESP_SIZE));
      expect(out.certs.length).toBe(0x4000);

      const e = await rejection(collectSevGuestReport({ reportData: new Uint8Array(64), path }));
      expect(e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
      expect(e).not.toBeInstanceOf(SevGuestDeviceMissing);
      expect(e.actual).toBe('ENOTTY');
      expect(e.message).toContain(path);
    }
  });

  it('a directory: open fails EISDIR, SNP_GUEST_DEVICE_UNAVAILABLE (not missing)', async () => {
    const e = await rejection(collectSevGuestReport({ reportData: new Uint8Array(64), path: dir }));
    expect(e.code).toBe('SNP_GUEST_DEVICE_UNAVAILABLE');
    expect(e).not.toBeInstanceOf(SevGuestDeviceMissing);
    expect(e.actual).toBe('EISDIR');
  });

  it('refuses malformed calls before opening anything', () => {
    expect(thrown(() => sevGuestExtReport('/dev/null', { ...call, reportReq: new Uint8Array(95) }))).toBeInstanceOf(MisuseError);
    const badRsvd = Uint8Array.from(call.reportReq);
    badRsvd[90] = 1;
    expect(thrown(() => sevGuestExtReport('/dev/null', { ...call, reportReq: badRsvd })).code).toBe('PARSE_RESERVED_NONZERO');
    for (const certsLen of [-4096, 100, 0x11000]) expect(thrown(() => sevGuestExtReport('/dev/null', { ...call, certsLen }))).toBeInstanceOf(MisuseError);
    for (const msgVersion of [0, 256]) expect(thrown(() => sevGuestExtReport('/dev/null', { ...call, msgVersion }))).toBeInstanceOf(MisuseError);
  });
});
