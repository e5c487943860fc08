/**
 * The Linux `/dev/sev-guest` ioctl ABI (include/uapi/linux/sev-guest.h) and the SEV-SNP firmware
 * message it returns (AMD SEV Secure Nested Paging Firmware ABI Specification, Table
 * "MSG_REPORT_RSP Message Structure"): bytes ↔ structures only, no device access and no trust.
 *
 * Every structure is in the byte order and C layout of x86-64, the only architecture with SEV-SNP
 * guests: little-endian, a `__u64` aligned to 8 bytes. The offsets below were checked against the
 * kernel header with `offsetof` (linux-libc-dev 6.1, gcc, x86-64):
 *
 * ```
 * struct snp_report_req            (96 bytes)
 *   0x00 user_data [64]            0x40 vmpl u32            0x44 rsvd [28], must be zero
 * struct snp_ext_report_req        (112 bytes)
 *   0x00 data (snp_report_req)     0x60 certs_address u64   0x68 certs_len u32
 *   0x6C tail padding [4] (the struct is 8-aligned)
 * struct snp_guest_request_ioctl   (32 bytes)
 *   0x00 msg_version u8            0x01 padding [7] (req_data is 8-aligned)
 *   0x08 req_data u64              0x10 resp_data u64
 *   0x18 exitinfo2 u64 = fw_error u32 (bits 31:0) | vmm_error u32 (bits 63:32)
 * struct snp_report_resp           (4000 bytes) = MSG_REPORT_RSP, then zeros
 *   0x00 STATUS u32                0x04 REPORT_SIZE u32     0x08 reserved [24]
 *   0x20 REPORT [REPORT_SIZE]      zero padding to 4000 (the kernel's zeroed buffer)
 * ```
 *
 * The ioctl numbers are `_IOWR('S', nr, struct snp_guest_request_ioctl)`: 0xC0205300 (SNP_GET_REPORT),
 * 0xC0205301 (SNP_GET_DERIVED_KEY), 0xC0205302 (SNP_GET_EXT_REPORT).
 *
 * The certificate buffer that SNP_GET_EXT_REPORT fills is the GHCB certificate table
 * (src/snp/certtable.ts): {@link snpCertBufferTable} cuts it to the bytes the table uses, as the
 * kernel does for configfs-tsm's `auxblob`, so both interfaces hand the verifier the same bytes.
 */
import { MisuseError, vouchError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';
import { SNP_REPORT_SIZE } from '../snp/abi.js';
import { SNP_CERT_TABLE_MAX_ENTRIES } from '../snp/certtable.js';

/** Size of `snp_report_req.user_data`, the report's REPORT_DATA. */
export const SNP_REPORT_USER_DATA_SIZE = 64;
/** sizeof(struct snp_report_req). */
export const SNP_REPORT_REQ_SIZE = 96;
/** sizeof(struct snp_ext_report_req). */
export const SNP_EXT_REPORT_REQ_SIZE = 112;
/** sizeof(struct snp_guest_request_ioctl). */
export const SNP_GUEST_REQUEST_IOCTL_SIZE = 32;
/** sizeof(struct snp_report_resp). */
export const SNP_REPORT_RESP_SIZE = 4000;
/** Size of the MSG_REPORT_RSP header before REPORT. */
export const MSG_REPORT_RSP_HEADER_SIZE = 0x20;
/** Highest VMPL a report request may name. */
export const SNP_VMPL_MAX = 3;
/** MSG_REPORT_REQ message version sent in `msg_version` (must be non-zero). */
export const SNP_MSG_VERSION = 1;
/** REPORT_SIZE values accepted in MSG_REPORT_RSP: the ATTESTATION_REPORT of versions 2, 3 and 5. */
export const SNP_REPORT_RSP_REPORT_SIZES: readonly number[] = [SNP_REPORT_SIZE];

/** `_IOWR(type, nr, size)` of asm-generic/ioctl.h (x86-64: dir bits 31:30, size 29:16, type 15:8, nr 7:0). */
export function iowr(type: number, nr: number, size: number): number {
  return ((3 << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
/** SNP_GUEST_REQ_IOC_TYPE, 'S'. */
export const SNP_GUEST_REQ_IOC_TYPE = 0x53;
/** SNP_GET_REPORT. */
export const SNP_GET_REPORT = iowr(SNP_GUEST_REQ_IOC_TYPE, 0x0, SNP_GUEST_REQUEST_IOCTL_SIZE);
/** SNP_GET_DERIVED_KEY (never issued by vouch; listed for completeness). */
export const SNP_GET_DERIVED_KEY = iowr(SNP_GUEST_REQ_IOC_TYPE, 0x1, SNP_GUEST_REQUEST_IOCTL_SIZE);
/** SNP_GET_EXT_REPORT: a report and the host's certificate table. */
export const SNP_GET_EXT_REPORT = iowr(SNP_GUEST_REQ_IOC_TYPE, 0x2, SNP_GUEST_REQUEST_IOCTL_SIZE);

/** VMM error codes in `vmm_error` (sev-guest.h; GHCB specification, SNP Guest Request). */
export const SNP_GUEST_VMM_ERR = { INVALID_LEN: 1, BUSY: 2 } as const;

/**
 * `exitinfo2` values that say the request never reached the firmware: 0xff is what the driver's
 * ioctl handler starts from, all ones is SEV_RET_NO_FW_CALL (-1) as a u64.
 */
export const SNP_EXITINFO2_NO_FW_CALL: readonly bigint[] = [0xffn, 0xffff_ffff_ffff_ffffn];

/** MSG_REPORT_RSP.STATUS values (SEV-SNP Firmware ABI, Table "MSG_REPORT_RSP Message Structure"). */
export const MSG_REPORT_RSP_STATUS = { SUCCESS: 0x00, INVALID_PARAMETERS: 0x16, INVALID_KEY: 0x27 } as const;

/** Names of the SEV firmware status codes (enum sev_ret_code, include/uapi/linux/psp-sev.h). */
const SEV_RET_NAMES: Readonly<Record<number, string>> = {
  0x00: 'SUCCESS',
  0x01: 'INVALID_PLATFORM_STATE',
  0x02: 'INVALID_GUEST_STATE',
  0x03: 'INVALID_CONFIG',
  0x04: 'INVALID_LEN',
  0x05: 'ALREADY_OWNED',
  0x06: 'INVALID_CERTIFICATE',
  0x07: 'POLICY_FAILURE',
  0x08: 'INACTIVE',
  0x09: 'INVALID_ADDRESS',
  0x0a: 'BAD_SIGNATURE',
  0x0b: 'BAD_MEASUREMENT',
  0x0c: 'ASID_OWNED',
  0x0d: 'INVALID_ASID',
  0x0e: 'WBINVD_REQUIRED',
  0x0f: 'DFFLUSH_REQUIRED',
  0x10: 'INVALID_GUEST',
  0x11: 'INVALID_COMMAND',
  0x12: 'ACTIVE',
  0x13: 'HWSEV_RET_PLATFORM',
  0x14: 'HWSEV_RET_UNSAFE',
  0x15: 'UNSUPPORTED',
  0x16: 'INVALID_PARAM',
  0x17: 'RESOURCE_LIMIT',
  0x18: 'SECURE_DATA_INVALID',
  0x19: 'INVALID_PAGE_SIZE',
  0x1a: 'INVALID_PAGE_STATE',
  0x1b: 'INVALID_MDATA_ENTRY',
  0x1c: 'INVALID_PAGE_OWNER',
  0x1d: 'AEAD_OFLOW',
  0x1f: 'EXIT_RING_BUFFER',
  0x20: 'RMP_INIT_REQUIRED',
  0x21: 'BAD_SVN',
  0x22: 'BAD_VERSION',
  0x23: 'SHUTDOWN_REQUIRED',
  0x24: 'UPDATE_FAILED',
  0x25: 'RESTORE_REQUIRED',
  0x26: 'RMP_INITIALIZATION_FAILED',
  0x27: 'INVALID_KEY',
};

/** "0x16 (INVALID_PARAM)": a firmware status code with its sev_ret_code name when known. */
export function sevRetName(code: number): string {
  const hex = `0x${(code >>> 0).toString(16).padStart(2, '0')}`;
  const name = SEV_RET_NAMES[code];
  return name === undefined ? hex : `${hex} (${name})`;
}

/** "1 (INVALID_LEN)": a VMM error code with its name when known. */
export function vmmErrorName(code: number): string {
  const name = code === SNP_GUEST_VMM_ERR.INVALID_LEN ? 'INVALID_LEN' : code === SNP_GUEST_VMM_ERR.BUSY ? 'BUSY' : undefined;
  const hex = `0x${(code >>> 0).toString(16)}`;
  return name === undefined ? hex : `${hex} (${name})`;
}

type FieldKind = 'u8' | 'u32' | 'u64' | 'bytes' | 'reserved';

/** One field of a fixed layout: C name, offset, size, and how it is read. */
export interface SevGuestFieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: FieldKind;
}

function f(name: string, offset: number, size: number, kind: FieldKind): SevGuestFieldLayout {
  return { name, offset, size, kind };
}

/** struct snp_report_req. */
export const SNP_REPORT_REQ_LAYOUT: readonly SevGuestFieldLayout[] = [
  f('user_data', 0x00, 64, 'bytes'),
  f('vmpl', 0x40, 4, 'u32'),
  f('rsvd', 0x44, 28, 'reserved'),
];

/** struct snp_ext_report_req (`data` is {@link SNP_REPORT_REQ_LAYOUT}). */
export const SNP_EXT_REPORT_REQ_LAYOUT: readonly SevGuestFieldLayout[] = [
  f('data', 0x00, SNP_REPORT_REQ_SIZE, 'bytes'),
  f('certs_address', 0x60, 8, 'u64'),
  f('certs_len', 0x68, 4, 'u32'),
  f('(tail padding)', 0x6c, 4, 'reserved'),
];

/** struct snp_guest_request_ioctl. */
export const SNP_GUEST_REQUEST_IOCTL_LAYOUT: readonly SevGuestFieldLayout[] = [
  f('msg_version', 0x00, 1, 'u8'),
  f('(padding)', 0x01, 7, 'reserved'),
  f('req_data', 0x08, 8, 'u64'),
  f('resp_data', 0x10, 8, 'u64'),
  f('exitinfo2', 0x18, 8, 'u64'),
];

/** The MSG_REPORT_RSP header at the start of struct snp_report_resp. */
export const MSG_REPORT_RSP_HEADER_LAYOUT: readonly SevGuestFieldLayout[] = [
  f('STATUS', 0x00, 4, 'u32'),
  f('REPORT_SIZE', 0x04, 4, 'u32'),
  f('reserved', 0x08, 24, 'reserved'),
];

/** struct snp_report_req. */
export interface SnpReportReq {
  /** The 64 bytes that become the report's REPORT_DATA. */
  readonly userData: Uint8Array;
  /** The VMPL the report names (0..3). */
  readonly vmpl: number;
}

/** struct snp_ext_report_req. */
export interface SnpExtReportReq {
  readonly data: SnpReportReq;
  /** Guest address of the certificate buffer (0: no certificates wanted). */
  readonly certsAddress: bigint;
  /** Bytes of the certificate buffer; after an INVALID_LEN failure, the bytes the host needs. */
  readonly certsLen: number;
}

/** struct snp_guest_request_ioctl. */
export interface SnpGuestRequestIoctl {
  readonly msgVersion: number;
  /** Address of the request structure. */
  readonly reqData: bigint;
  /** Address of the response structure. */
  readonly respData: bigint;
  /** bits 63:32 VMM error, bits 31:0 firmware error. */
  readonly exitinfo2: bigint;
}

/** A decoded snp_guest_request_ioctl, with `exitinfo2` split into its union members. */
export interface DecodedSnpGuestRequestIoctl extends SnpGuestRequestIoctl {
  /** exitinfo2 bits 31:0: the firmware's status for the guest request. */
  readonly fwError: number;
  /** exitinfo2 bits 63:32: the hypervisor's error. */
  readonly vmmError: number;
}

/** A successful MSG_REPORT_RSP. */
export interface MsgReportRsp {
  readonly status: number;
  readonly reportSize: number;
  /** The ATTESTATION_REPORT bytes, exactly as the firmware produced them (a view into the input). */
  readonly report: Uint8Array;
}

function need(cond: boolean, what: string): void {
  if (!cond) throw new MisuseError('MISUSE_ARGUMENT', what);
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function isU64(v: bigint): boolean {
  return typeof v === 'bigint' && v >= 0n && v < 1n << 64n;
}

function readLayout(r: Reader, layout: readonly SevGuestFieldLayout[]): { num: Map<string, number>; big: Map<string, bigint>; raw: Map<string, Uint8Array> } {
  const num = new Map<string, number>();
  const big = new Map<string, bigint>();
  const raw = new Map<string, Uint8Array>();
  for (const fl of layout) {
    if (fl.kind === 'u8') num.set(fl.name, r.u8(fl.name));
    else if (fl.kind === 'u32') num.set(fl.name, r.u32(fl.name, 'le'));
    else if (fl.kind === 'u64') big.set(fl.name, r.u64(fl.name, 'le'));
    else if (fl.kind === 'bytes') raw.set(fl.name, r.bytes(fl.size, fl.name));
    else r.reserved(fl.size, fl.name);
  }
  return { num, big, raw };
}

/**
 * Encodes struct snp_report_req: `userData` (64 bytes), `vmpl` (0..3), zero `rsvd`.
 *
 * @throws MisuseError MISUSE_ARGUMENT
 */
export function encodeSnpReportReq(req: SnpReportReq): Uint8Array {
  need(req.userData instanceof Uint8Array && req.userData.length === SNP_REPORT_USER_DATA_SIZE, `snp_report_req.user_data must be ${SNP_REPORT_USER_DATA_SIZE} bytes`);
  need(Number.isInteger(req.vmpl) && req.vmpl >= 0 && req.vmpl <= SNP_VMPL_MAX, `snp_report_req.vmpl must be an integer 0..${SNP_VMPL_MAX}`);
  return new Writer(SNP_REPORT_REQ_SIZE).bytes(req.userData).u32(req.vmpl, 'le').bytes(new Uint8Array(28)).finish();
}

/**
 * Decodes struct snp_report_req: exactly 96 bytes, `rsvd` zero, `vmpl` 0..3.
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_RESERVED_NONZERO, PARSE_BAD_VALUE (vmpl)
 */
export function decodeSnpReportReq(bytes: Uint8Array, path = 'snp_report_req', base = 0): SnpReportReq {
  const r = new Reader(bytes, path, base);
  const { num, raw } = readLayout(r, SNP_REPORT_REQ_LAYOUT);
  r.finish();
  const vmpl = num.get('vmpl') as number;
  if (vmpl > SNP_VMPL_MAX) {
    throw r.error('PARSE_BAD_VALUE', 'vmpl', `VMPL ${vmpl} is above ${SNP_VMPL_MAX}`, { at: 0x40, expected: `0..${SNP_VMPL_MAX}`, actual: String(vmpl) });
  }
  return { userData: raw.get('user_data') as Uint8Array, vmpl };
}

/**
 * Encodes struct snp_ext_report_req, tail padding zero.
 *
 * @throws MisuseError MISUSE_ARGUMENT
 */
export function encodeSnpExtReportReq(req: SnpExtReportReq): Uint8Array {
  need(isU64(req.certsAddress), 'snp_ext_report_req.certs_address is a u64');
  need(isU32(req.certsLen), 'snp_ext_report_req.certs_len is a u32');
  return new Writer(SNP_EXT_REPORT_REQ_SIZE)
    .bytes(encodeSnpReportReq(req.data))
    .u64(req.certsAddress, 'le')
    .u32(req.certsLen, 'le')
    .bytes(new Uint8Array(4))
    .finish();
}

/**
 * Decodes struct snp_ext_report_req: exactly 112 bytes, `data` as {@link decodeSnpReportReq},
 * tail padding zero.
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_RESERVED_NONZERO, PARSE_BAD_VALUE
 */
export function decodeSnpExtReportReq(bytes: Uint8Array): SnpExtReportReq {
  const r = new Reader(bytes, 'snp_ext_report_req');
  const { num, big, raw } = readLayout(r, SNP_EXT_REPORT_REQ_LAYOUT);
  r.finish();
  return {
    data: decodeSnpReportReq(raw.get('data') as Uint8Array, 'snp_ext_report_req.data', 0),
    certsAddress: big.get('certs_address') as bigint,
    certsLen: num.get('certs_len') as number,
  };
}

/**
 * Encodes struct snp_guest_request_ioctl, padding zero.
 *
 * @throws MisuseError MISUSE_ARGUMENT
 */
export function encodeSnpGuestRequestIoctl(io: SnpGuestRequestIoctl): Uint8Array {
  need(Number.isInteger(io.msgVersion) && io.msgVersion >= 0 && io.msgVersion <= 0xff, 'snp_guest_request_ioctl.msg_version is a u8');
  need(isU64(io.reqData) && isU64(io.respData) && isU64(io.exitinfo2), 'snp_guest_request_ioctl.req_data, resp_data and exitinfo2 are u64');
  return new Writer(SNP_GUEST_REQUEST_IOCTL_SIZE)
    .u8(io.msgVersion)
    .bytes(new Uint8Array(7))
    .u64(io.reqData, 'le')
    .u64(io.respData, 'le')
    .u64(io.exitinfo2, 'le')
    .finish();
}

/**
 * Decodes struct snp_guest_request_ioctl: exactly 32 bytes, padding zero; `exitinfo2` is also
 * split into `fw_error` (bits 31:0) and `vmm_error` (bits 63:32).
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_RESERVED_NONZERO
 */
export function decodeSnpGuestRequestIoctl(bytes: Uint8Array): DecodedSnpGuestRequestIoctl {
  const r = new Reader(bytes, 'snp_guest_request_ioctl');
  const { num, big } = readLayout(r, SNP_GUEST_REQUEST_IOCTL_LAYOUT);
  r.finish();
  const exitinfo2 = big.get('exitinfo2') as bigint;
  return {
    msgVersion: num.get('msg_version') as number,
    reqData: big.get('req_data') as bigint,
    respData: big.get('resp_data') as bigint,
    exitinfo2,
    fwError: Number(exitinfo2 & 0xffff_ffffn),
    vmmError: Number(exitinfo2 >> 32n),
  };
}

/**
 * Encodes struct snp_report_resp holding a MSG_REPORT_RSP: header, `report`, zeros to 4000 bytes.
 * `status` and `reportSize` default to success and the report's length; tests set them to build
 * failing responses.
 *
 * @throws MisuseError MISUSE_ARGUMENT (the report does not fit, a value is not a u32)
 */
export function encodeSnpReportResp(rsp: { readonly report: Uint8Array; readonly status?: number; readonly reportSize?: number }): Uint8Array {
  const status = rsp.status ?? MSG_REPORT_RSP_STATUS.SUCCESS;
  const reportSize = rsp.reportSize ?? rsp.report.length;
  need(isU32(status) && isU32(reportSize), 'MSG_REPORT_RSP.STATUS and REPORT_SIZE are u32');
  need(rsp.report.length <= SNP_REPORT_RESP_SIZE - MSG_REPORT_RSP_HEADER_SIZE, `MSG_REPORT_RSP.REPORT must fit in ${SNP_REPORT_RESP_SIZE - MSG_REPORT_RSP_HEADER_SIZE} bytes`);
  return new Writer(SNP_REPORT_RESP_SIZE)
    .u32(status, 'le')
    .u32(reportSize, 'le')
    .bytes(new Uint8Array(24))
    .bytes(rsp.report)
    .bytes(new Uint8Array(SNP_REPORT_RESP_SIZE - MSG_REPORT_RSP_HEADER_SIZE - rsp.report.length))
    .finish();
}

/**
 * Decodes struct snp_report_resp as MSG_REPORT_RSP. Checked in this order: STATUS is success
 * (otherwise the firmware refused the request), REPORT_SIZE is an allowed report size, the 24
 * reserved bytes are zero, the report is there, and the rest of the 4000 bytes is zero.
 *
 * @param allowedSizes REPORT_SIZE values accepted (default {@link SNP_REPORT_RSP_REPORT_SIZES})
 * @throws UnavailableError SNP_GUEST_FIRMWARE_ERROR (STATUS is not success; the code is named)
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_BAD_VALUE (REPORT_SIZE), PARSE_RESERVED_NONZERO
 */
export function decodeSnpReportResp(bytes: Uint8Array, allowedSizes: readonly number[] = SNP_REPORT_RSP_REPORT_SIZES): MsgReportRsp {
  const r = new Reader(bytes, 'MSG_REPORT_RSP');
  const status = r.u32('STATUS', 'le');
  if (status !== MSG_REPORT_RSP_STATUS.SUCCESS) {
    throw vouchError('SNP_GUEST_FIRMWARE_ERROR', `the firmware answered the report request with MSG_REPORT_RSP.STATUS ${sevRetName(status)}`, {
      field: 'MSG_REPORT_RSP.STATUS',
      offset: 0,
      expected: '0x00',
      actual: sevRetName(status),
    });
  }
  const reportSize = r.u32('REPORT_SIZE', 'le');
  if (!allowedSizes.includes(reportSize)) {
    throw r.error('PARSE_BAD_VALUE', 'REPORT_SIZE', `REPORT_SIZE ${reportSize} is not an ATTESTATION_REPORT size`, {
      at: 4,
      expected: allowedSizes.join(' | '),
      actual: String(reportSize),
    });
  }
  r.reserved(24, 'reserved');
  const report = r.bytes(reportSize, 'REPORT');
  r.reserved(SNP_REPORT_RESP_SIZE - MSG_REPORT_RSP_HEADER_SIZE - reportSize, 'padding');
  r.finish();
  return { status, reportSize, report };
}

const CERT_ENTRY_SIZE = 24;

/**
 * The certificate table in the buffer SNP_GET_EXT_REPORT filled, cut to the bytes it uses (the
 * entry array with its terminator, and every entry's data), or null when the host supplied none
 * (the first entry is the terminator). This is what the kernel hands out as configfs-tsm's
 * `auxblob`; unlike the kernel, an entry reaching past the buffer is an error, not truncated.
 * The entries themselves are decoded and checked by the verifier (src/snp/certtable.ts).
 *
 * ```
 * entry[i]: GUID [16] | OFFSET u32 | LENGTH u32      entry[n]: 24 zero bytes (terminator)
 * ```
 *
 * @throws ParseError PARSE_TRUNCATED (no terminator), PARSE_SIZE_EXCEEDED (too many entries, an entry past the buffer)
 */
export function snpCertBufferTable(buffer: Uint8Array): Uint8Array | null {
  const r = new Reader(buffer, 'SNP_CERT_TABLE');
  let extent = 0;
  for (let i = 0; ; i++) {
    r.count(i, SNP_CERT_TABLE_MAX_ENTRIES, 'entries');
    const at = r.offset;
    const guid = r.bytes(16, `entry[${i}].GUID`);
    const offset = r.u32(`entry[${i}].OFFSET`, 'le');
    const length = r.u32(`entry[${i}].LENGTH`, 'le');
    if (offset === 0 && length === 0 && guid.every((b) => b === 0)) {
      if (i === 0) return null;
      extent = Math.max(extent, at + CERT_ENTRY_SIZE);
      break;
    }
    const end = offset + length;
    if (end > buffer.length) {
      throw r.error('PARSE_SIZE_EXCEEDED', `entry[${i}]`, `certificate at ${offset} (+${length}) ends past the ${buffer.length}-byte buffer`, {
        at,
        expected: `<= ${buffer.length}`,
        actual: String(end),
      });
    }
    extent = Math.max(extent, end);
  }
  return buffer.slice(0, extent);
}
