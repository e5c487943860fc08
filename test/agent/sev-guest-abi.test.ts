/**
 * The /dev/sev-guest ioctl ABI codec (src/agent/sev-guest-abi.ts): layouts against the kernel
 * header's offsets, round trips, one-byte flips of every reserved and padding byte, and fuzzing
 * of the decoders that read what the kernel and the firmware wrote.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSnpExtReportReq,
  decodeSnpGuestRequestIoctl,
  decodeSnpReportReq,
  decodeSnpReportResp,
  encodeSnpExtReportReq,
  encodeSnpGuestRequestIoctl,
  encodeSnpReportReq,
  encodeSnpReportResp,
  iowr,
  MSG_REPORT_RSP_HEADER_LAYOUT,
  MSG_REPORT_RSP_STATUS,
  sevRetName,
  snpCertBufferTable,
  SNP_EXT_REPORT_REQ_LAYOUT,
  SNP_EXT_REPORT_REQ_SIZE,
  SNP_GET_DERIVED_KEY,
  SNP_GET_EXT_REPORT,
  SNP_GET_REPORT,
  SNP_GUEST_REQUEST_IOCTL_LAYOUT,
  SNP_GUEST_REQUEST_IOCTL_SIZE,
  SNP_REPORT_REQ_LAYOUT,
  SNP_REPORT_REQ_SIZE,
  SNP_REPORT_RESP_SIZE,
  vmmErrorName,
  type SevGuestFieldLayout,
} from '../../src/agent/sev-guest-abi.js';
import { isVouchError, MisuseError, ParseError, UnavailableError, type VouchError } from '../../src/lib/errors.js';
import { encodeSnpCertTable, SNP_CERT_GUID } from '../../src/snp/certtable.js';

function thrown(fn: () => unknown): VouchError {
  try {
    fn();
  } catch (e) {
    if (isVouchError(e)) return e;
    throw e;
  }
  throw new Error('expected a throw');
}

const REPORT_SIZE = 0x4a0;
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

function validResp(fill = 0x5a): Uint8Array {
  return encodeSnpReportResp({ report: new Uint8Array(REPORT_SIZE).fill(fill) });
}

describe('sev-guest ABI layouts', () => {
  // Offsets and sizes printed by offsetof/sizeof against include/uapi/linux/sev-guest.h
  // (linux-libc-dev 6.1, gcc, x86-64).
  it('matches the kernel header: sizes, offsets, the padding after msg_version, the ioctl numbers', () => {
    const offsets = (l: readonly SevGuestFieldLayout[]): Record<string, number> => Object.fromEntries(l.map((x) => [x.name, x.offset]));
    expect(offsets(SNP_REPORT_REQ_LAYOUT)).toMatchObject({ user_data: 0, vmpl: 64, rsvd: 68 });
    expect(offsets(SNP_EXT_REPORT_REQ_LAYOUT)).toMatchObject({ data: 0, certs_address: 96, certs_len: 104 });
    expect(offsets(SNP_GUEST_REQUEST_IOCTL_LAYOUT)).toMatchObject({ msg_version: 0, req_data: 8, resp_data: 16, exitinfo2: 24 });
    expect([SNP_REPORT_REQ_SIZE, SNP_EXT_REPORT_REQ_SIZE, SNP_GUEST_REQUEST_IOCTL_SIZE, SNP_REPORT_RESP_SIZE]).toEqual([96, 112, 32, 4000]);
    expect(SNP_GET_REPORT).toBe(0xc0205300);
    expect(SNP_GET_DERIVED_KEY).toBe(0xc0205301);
    expect(SNP_GET_EXT_REPORT).toBe(0xc0205302);
    expect(iowr(0x53, 2, 32)).toBe(0xc0205302);
  });

  it('every layout is contiguous and covers its structure exactly', () => {
    const sizes: [readonly SevGuestFieldLayout[], number][] = [
      [SNP_REPORT_REQ_LAYOUT, SNP_REPORT_REQ_SIZE],
      [SNP_EXT_REPORT_REQ_LAYOUT, SNP_EXT_REPORT_REQ_SIZE],
      [SNP_GUEST_REQUEST_IOCTL_LAYOUT, SNP_GUEST_REQUEST_IOCTL_SIZE],
      [MSG_REPORT_RSP_HEADER_LAYOUT, 0x20],
    ];
    for (const [layout, size] of sizes) {
      let at = 0;
      for (const fl of layout) {
        expect(fl.offset, fl.name).toBe(at);
        at += fl.size;
      }
      expect(at).toBe(size);
    }
  });

  it('encoders put each field at its layout offset, little-endian', () => {
    const req = encodeSnpExtReportReq({ data: { userData: new Uint8Array(64).fill(0xaa), vmpl: 2 }, certsAddress: 0x1122334455667788n, certsLen: 0x4000 });
    const v = new DataView(req.buffer);
    expect(req[63]).toBe(0xaa);
    expect(v.getUint32(64, true)).toBe(2);
    expect(v.getBigUint64(96, true)).toBe(0x1122334455667788n);
    expect(v.getUint32(104, true)).toBe(0x4000);
    const io = encodeSnpGuestRequestIoctl({ msgVersion: 1, reqData: 0x10n, respData: 0x20n, exitinfo2: (2n << 32n) | 0x16n });
    const w = new DataView(io.buffer);
    expect(io[0]).toBe(1);
    expect(io.subarray(1, 8)).toEqual(new Uint8Array(7));
    expect(w.getBigUint64(8, true)).toBe(0x10n);
    expect(w.getBigUint64(16, true)).toBe(0x20n);
    expect(w.getUint32(24, true)).toBe(0x16);
    expect(w.getUint32(28, true)).toBe(2);
  });
});

describe('sev-guest ABI round trips', () => {
  it('snp_report_req, snp_ext_report_req and snp_guest_request_ioctl: decode(encode(x)) = x and encode(decode(b)) = b', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 3 }), u64, fc.nat({ max: 0xffffffff }), (userData, vmpl, addr, len) => {
        const data = { userData, vmpl };
        const b = encodeSnpReportReq(data);
        expect(decodeSnpReportReq(b)).toEqual(data);
        const ext = { data, certsAddress: addr, certsLen: len };
        const eb = encodeSnpExtReportReq(ext);
        expect(decodeSnpExtReportReq(eb)).toEqual(ext);
        expect(encodeSnpExtReportReq(decodeSnpExtReportReq(eb))).toEqual(eb);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), u64, u64, u64, (msgVersion, reqData, respData, exitinfo2) => {
        const io = { msgVersion, reqData, respData, exitinfo2 };
        const b = encodeSnpGuestRequestIoctl(io);
        const d = decodeSnpGuestRequestIoctl(b);
        expect(d).toMatchObject(io);
        expect(d.fwError).toBe(Number(exitinfo2 & 0xffffffffn));
        expect(d.vmmError).toBe(Number(exitinfo2 >> 32n));
        expect(encodeSnpGuestRequestIoctl(d)).toEqual(b);
      }),
    );
  });

  it('MSG_REPORT_RSP: the report comes back as the same bytes, and re-encodes to the same 4000 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: REPORT_SIZE, maxLength: REPORT_SIZE }), (report) => {
        const b = encodeSnpReportResp({ report });
        expect(b.length).toBe(SNP_REPORT_RESP_SIZE);
        const d = decodeSnpReportResp(b);
        expect(d.status).toBe(0);
        expect(d.reportSize).toBe(REPORT_SIZE);
        expect(d.report).toEqual(report);
        expect(encodeSnpReportResp(d)).toEqual(b);
      }),
      { numRuns: 50 },
    );
  });

  it('encoders refuse values that do not fit', () => {
    expect(thrown(() => encodeSnpReportReq({ userData: new Uint8Array(63), vmpl: 0 }))).toBeInstanceOf(MisuseError);
    expect(thrown(() => encodeSnpReportReq({ userData: new Uint8Array(64), vmpl: 4 }))).toBeInstanceOf(MisuseError);
    expect(thrown(() => encodeSnpExtReportReq({ data: { userData: new Uint8Array(64), vmpl: 0 }, certsAddress: 1n << 64n, certsLen: 0 }))).toBeInstanceOf(MisuseError);
    expect(thrown(() => encodeSnpExtReportReq({ data: { userData: new Uint8Array(64), vmpl: 0 }, certsAddress: 0n, certsLen: -1 }))).toBeInstanceOf(MisuseError);
    expect(thrown(() => encodeSnpGuestRequestIoctl({ msgVersion: 256, reqData: 0n, respData: 0n, exitinfo2: 0n }))).toBeInstanceOf(MisuseError);
    expect(thrown(() => encodeSnpReportResp({ report: new Uint8Array(3969) }))).toBeInstanceOf(MisuseError);
  });
});

describe('sev-guest ABI strict decoding', () => {
  it('a non-zero byte anywhere in a reserved or padding range is PARSE_RESERVED_NONZERO naming the field', () => {
    const cases: [string, Uint8Array, (b: Uint8Array) => unknown, number, number][] = [
      ['snp_report_req.rsvd', encodeSnpReportReq({ userData: new Uint8Array(64), vmpl: 0 }), decodeSnpReportReq, 68, 28],
      ['snp_ext_report_req.data.rsvd', encodeSnpExtReportReq({ data: { userData: new Uint8Array(64), vmpl: 0 }, certsAddress: 0n, certsLen: 0 }), decodeSnpExtReportReq, 68, 28],
      ['snp_ext_report_req.(tail padding)', encodeSnpExtReportReq({ data: { userData: new Uint8Array(64), vmpl: 0 }, certsAddress: 0n, certsLen: 0 }), decodeSnpExtReportReq, 108, 4],
      ['snp_guest_request_ioctl.(padding)', encodeSnpGuestRequestIoctl({ msgVersion: 1, reqData: 0n, respData: 0n, exitinfo2: 0n }), decodeSnpGuestRequestIoctl, 1, 7],
      ['MSG_REPORT_RSP.reserved', validResp(), decodeSnpReportResp, 8, 24],
      ['MSG_REPORT_RSP.padding', validResp(), decodeSnpReportResp, 0x20 + REPORT_SIZE, SNP_REPORT_RESP_SIZE - 0x20 - REPORT_SIZE],
    ];
    for (const [field, good, decode, start, n] of cases) {
      expect(() => decode(good)).not.toThrow();
      for (const i of [start, start + Math.floor(n / 2), start + n - 1]) {
        const bad = Uint8Array.from(good);
        bad[i] = 0x01;
        const e = thrown(() => decode(bad));
        expect(e.code, `${field} byte ${i}`).toBe('PARSE_RESERVED_NONZERO');
        expect(e.field).toBe(field);
        expect(e.offset).toBe(i);
      }
    }
  });

  it('snp_report_req.vmpl above 3 is PARSE_BAD_VALUE', () => {
    const b = encodeSnpReportReq({ userData: new Uint8Array(64), vmpl: 3 });
    b[64] = 4;
    const e = thrown(() => decodeSnpReportReq(b));
    expect(e.code).toBe('PARSE_BAD_VALUE');
    expect(e.field).toBe('snp_report_req.vmpl');
  });

  it('short and long structures: PARSE_TRUNCATED and PARSE_TRAILING_BYTES', () => {
    const io = encodeSnpGuestRequestIoctl({ msgVersion: 1, reqData: 0n, respData: 0n, exitinfo2: 0n });
    expect(thrown(() => decodeSnpGuestRequestIoctl(io.subarray(0, 31))).code).toBe('PARSE_TRUNCATED');
    expect(thrown(() => decodeSnpGuestRequestIoctl(new Uint8Array(33))).code).toBe('PARSE_TRAILING_BYTES');
    const ext = encodeSnpExtReportReq({ data: { userData: new Uint8Array(64), vmpl: 0 }, certsAddress: 0n, certsLen: 0 });
    expect(thrown(() => decodeSnpExtReportReq(ext.subarray(0, 104))).code).toBe('PARSE_TRUNCATED');
    const resp = validResp();
    expect(thrown(() => decodeSnpReportResp(resp.subarray(0, 0x20 + REPORT_SIZE - 1))).code).toBe('PARSE_TRUNCATED');
    expect(thrown(() => decodeSnpReportResp(resp.subarray(0, 3999))).code).toBe('PARSE_TRUNCATED');
    const long = new Uint8Array(4001);
    long.set(resp);
    expect(thrown(() => decodeSnpReportResp(long)).code).toBe('PARSE_TRAILING_BYTES');
  });

  it('MSG_REPORT_RSP.STATUS not success: SNP_GUEST_FIRMWARE_ERROR naming the firmware code', () => {
    for (const [status, name] of [
      [MSG_REPORT_RSP_STATUS.INVALID_PARAMETERS, 'INVALID_PARAM'],
      [MSG_REPORT_RSP_STATUS.INVALID_KEY, 'INVALID_KEY'],
      [0x99, '0x99'],
    ] as const) {
      const e = thrown(() => decodeSnpReportResp(encodeSnpReportResp({ report: new Uint8Array(REPORT_SIZE), status })));
      expect(e).toBeInstanceOf(UnavailableError);
      expect(e.code).toBe('SNP_GUEST_FIRMWARE_ERROR');
      expect(e.field).toBe('MSG_REPORT_RSP.STATUS');
      expect(e.actual).toContain(name);
    }
  });

  it('MSG_REPORT_RSP.REPORT_SIZE other than an ATTESTATION_REPORT: PARSE_BAD_VALUE, even when the bytes are there', () => {
    for (const reportSize of [0, 1000, REPORT_SIZE - 1, REPORT_SIZE + 1, 3968, 0xffffffff]) {
      const e = thrown(() => decodeSnpReportResp(encodeSnpReportResp({ report: new Uint8Array(REPORT_SIZE), reportSize })));
      expect(e.code, String(reportSize)).toBe('PARSE_BAD_VALUE');
      expect(e.field).toBe('MSG_REPORT_RSP.REPORT_SIZE');
      expect(e.actual).toBe(String(reportSize));
    }
    // A caller may allow another size explicitly.
    expect(decodeSnpReportResp(encodeSnpReportResp({ report: new Uint8Array(100) }), [100]).report.length).toBe(100);
  });

  it('fuzz: random bytes and mutated responses yield a decoded response or a VouchError, nothing else', () => {
    const allowed = new Set(['PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES', 'PARSE_BAD_VALUE', 'PARSE_RESERVED_NONZERO', 'SNP_GUEST_FIRMWARE_ERROR']);
    const check = (b: Uint8Array): void => {
      try {
        const d = decodeSnpReportResp(b);
        expect(d.report.length).toBe(REPORT_SIZE);
        expect(encodeSnpReportResp(d)).toEqual(b);
      } catch (e) {
        if (!isVouchError(e)) throw e;
        expect(allowed.has(e.code), e.code).toBe(true);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4100 }), check), { numRuns: 300 });
    const good = validResp();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: SNP_REPORT_RESP_SIZE - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat({ max: 4100 }), (flips, cut) => {
        const b = Uint8Array.from(good);
        for (const [i, v] of flips) b[i] = v;
        check(b.subarray(0, Math.min(cut, b.length)));
        check(b);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 140 }), (b) => {
        for (const decode of [decodeSnpGuestRequestIoctl, decodeSnpExtReportReq, decodeSnpReportReq]) {
          try {
            decode(b);
          } catch (e) {
            expect(e).toBeInstanceOf(ParseError);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('names firmware and VMM codes', () => {
    expect(sevRetName(0x16)).toBe('0x16 (INVALID_PARAM)');
    expect(sevRetName(0x27)).toBe('0x27 (INVALID_KEY)');
    expect(sevRetName(0x1e)).toBe('0x1e');
    expect(vmmErrorName(1)).toBe('0x1 (INVALID_LEN)');
    expect(vmmErrorName(2)).toBe('0x2 (BUSY)');
    expect(vmmErrorName(0xffffffff)).toBe('0xffffffff');
  });
});

describe('the certificate buffer of SNP_GET_EXT_REPORT', () => {
  const table = encodeSnpCertTable([
    { guid: SNP_CERT_GUID.vcek, data: new Uint8Array(1300).fill(1) },
    { guid: SNP_CERT_GUID.ask, data: new Uint8Array(1600).fill(2) },
    { guid: SNP_CERT_GUID.ark, data: new Uint8Array(1600).fill(3) },
  ]);

  it('is cut to the table (what configfs-tsm would give as auxblob); an all-zero buffer is no table', () => {
    const buf = new Uint8Array(0x4000);
    buf.set(table);
    expect(snpCertBufferTable(buf)).toEqual(table);
    expect(snpCertBufferTable(new Uint8Array(0x4000))).toBeNull();
  });

  it('an entry reaching past the buffer, no terminator, or too many entries: a ParseError', () => {
    const past = Uint8Array.from(table);
    new DataView(past.buffer).setUint32(2 * 24 + 20, 1_000_000, true);
    const buf = new Uint8Array(0x2000);
    buf.set(past);
    expect(thrown(() => snpCertBufferTable(buf)).code).toBe('PARSE_SIZE_EXCEEDED');
    const unterminated = new Uint8Array(24 * 3);
    for (let i = 0; i < 3; i++) unterminated[i * 24] = 1;
    expect(thrown(() => snpCertBufferTable(unterminated)).code).toBe('PARSE_TRUNCATED');
    const many = new Uint8Array(24 * 70);
    for (let i = 0; i < 70; i++) many[i * 24] = 1;
    expect(thrown(() => snpCertBufferTable(many)).code).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('fuzz: random buffers yield a table, null or a ParseError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        try {
          const t = snpCertBufferTable(b);
          if (t !== null) expect(t.length).toBeLessThanOrEqual(b.length);
        } catch (e) {
          expect(e).toBeInstanceOf(ParseError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
