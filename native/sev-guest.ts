/**
 * koffi binding to libc `open`, `ioctl` and `close` for the SEV-SNP guest device
 * (`/dev/sev-guest`, SNP_GET_EXT_REPORT), the fallback on kernels without configfs-tsm.
 *
 * Only bytes cross the FFI: the structures are encoded and decoded by
 * src/agent/sev-guest-abi.ts, written into native memory from `koffi.alloc` (whose addresses do
 * not move, so they can be placed in `req_data`, `resp_data` and `certs_address`), and copied back
 * out after the call. Nothing is interpreted here: the caller (src/agent/sev-guest.ts) decides
 * what the errno, `exitinfo2` and the response mean.
 *
 * libc is loaded on the first call ({@link sevGuestExtReport}), never on import. The call is
 * synchronous: the driver may sleep while the host throttles requests (up to a minute), and the
 * event loop waits with it, as it does for a TPM command.
 */
import { createRequire } from 'node:module';
import { MisuseError, UnavailableError } from '../src/lib/errors.js';
import {
  decodeSnpReportReq,
  encodeSnpExtReportReq,
  encodeSnpGuestRequestIoctl,
  SNP_EXT_REPORT_REQ_SIZE,
  SNP_GET_EXT_REPORT,
  SNP_GUEST_REQUEST_IOCTL_SIZE,
  SNP_REPORT_REQ_SIZE,
  SNP_REPORT_RESP_SIZE,
} from '../src/agent/sev-guest-abi.js';

/** One SNP_GET_EXT_REPORT request, as bytes. */
export interface SevGuestExtReportCall {
  /** `msg_version` (non-zero). */
  readonly msgVersion: number;
  /** struct snp_report_req, 96 bytes. */
  readonly reportReq: Uint8Array;
  /** Bytes of the certificate buffer: a multiple of the 4096-byte page, 0 for none. */
  readonly certsLen: number;
}

/** What one request did: open(2) failed, or ioctl(2) ran and every buffer is returned as bytes. */
export type SevGuestExtReportOutcome =
  | { readonly stage: 'open'; readonly errno: number }
  | {
      readonly stage: 'ioctl';
      /** What ioctl(2) returned: 0 on success, -1 on failure. */
      readonly ret: number;
      /** errno when `ret` is not 0, else 0. */
      readonly errno: number;
      /** struct snp_guest_request_ioctl after the call (32 bytes). */
      readonly ioctl: Uint8Array;
      /** struct snp_ext_report_req after the call (112 bytes; the kernel may rewrite certs_len). */
      readonly extReportReq: Uint8Array;
      /** struct snp_report_resp (4000 bytes). */
      readonly resp: Uint8Array;
      /** The certificate buffer (`certsLen` bytes). */
      readonly certs: Uint8Array;
    };

/** Opens `path`, issues SNP_GET_EXT_REPORT once, closes: the device as a function, so tests can replace it. */
export type SevGuestExtReportIoctl = (path: string, call: SevGuestExtReportCall) => SevGuestExtReportOutcome;

/** Page size of x86-64, the unit of `certs_len`. */
export const SEV_GUEST_PAGE_SIZE = 4096;
/** Largest certificate buffer this binding allocates. */
export const SEV_GUEST_CERTS_LEN_LIMIT = 0x10000;

/** open(2) flags of x86-64 Linux. */
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

/** An opaque native allocation (a koffi external). */
type NativeMemory = object;

interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, argType: 'void *', arg: NativeMemory): number;
}

/** The minimal koffi surface used here (koffi ships loose `any` typings). */
interface KoffiLib {
  func(prototype: string): (...args: unknown[]) => unknown;
}
interface Koffi {
  load(path: string): KoffiLib;
  alloc(type: string, length: number): NativeMemory;
  free(p: NativeMemory): void;
  address(p: NativeMemory): bigint;
  view(p: NativeMemory, length: number): ArrayBuffer;
  errno(): number;
}

let loaded: { koffi: Koffi; libc: Libc } | undefined;

/** The C library to load: `VOUCH_LIBC` when set, else glibc's soname. */
function libcPath(): string {
  const p = process.env.VOUCH_LIBC;
  return p === undefined || p === '' ? 'libc.so.6' : p;
}

function load(): { koffi: Koffi; libc: Libc } {
  if (loaded !== undefined) return loaded;
  const path = libcPath();
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load(path);
    const open = lib.func('int open(const char *path, int flags, ...)');
    const close = lib.func('int close(int fd)');
    const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
    const libc: Libc = {
      open: (p, flags) => open(p, flags) as number,
      close: (fd) => close(fd) as number,
      ioctl: (fd, request, argType, arg) => ioctl(fd, request, argType, arg) as number,
    };
    loaded = { koffi, libc };
    return loaded;
  } catch (e) {
    throw new UnavailableError('SNP_GUEST_DEVICE_UNAVAILABLE', `the C library ${path} could not be loaded for /dev/sev-guest: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}

/** True once libc has been loaded (for tests: importing this module loads nothing). */
export function sevGuestLibcLoaded(): boolean {
  return loaded !== undefined;
}

/**
 * Opens `path` read-write, issues SNP_GET_EXT_REPORT with `call`, closes the descriptor. Every
 * native buffer is allocated here, zeroed, and freed before returning.
 *
 * @throws MisuseError MISUSE_ARGUMENT (reportReq not a valid snp_report_req, bad certsLen or msgVersion)
 * @throws UnavailableError SNP_GUEST_DEVICE_UNAVAILABLE (libc could not be loaded)
 */
export const sevGuestExtReport: SevGuestExtReportIoctl = (path, call) => {
  if (!(call.reportReq instanceof Uint8Array) || call.reportReq.length !== SNP_REPORT_REQ_SIZE) {
    throw new MisuseError('MISUSE_ARGUMENT', `reportReq must be a ${SNP_REPORT_REQ_SIZE}-byte snp_report_req`);
  }
  const data = decodeSnpReportReq(call.reportReq);
  if (!Number.isInteger(call.certsLen) || call.certsLen < 0 || call.certsLen > SEV_GUEST_CERTS_LEN_LIMIT || call.certsLen % SEV_GUEST_PAGE_SIZE !== 0) {
    throw new MisuseError('MISUSE_ARGUMENT', `certsLen must be a multiple of ${SEV_GUEST_PAGE_SIZE} up to ${SEV_GUEST_CERTS_LEN_LIMIT}`, { actual: String(call.certsLen) });
  }
  if (!Number.isInteger(call.msgVersion) || call.msgVersion < 1 || call.msgVersion > 0xff) {
    throw new MisuseError('MISUSE_ARGUMENT', 'msgVersion must be 1..255', { actual: String(call.msgVersion) });
  }
  const { koffi, libc } = load();
  const fd = libc.open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return { stage: 'open', errno: koffi.errno() };

  const allocated: NativeMemory[] = [];
  const alloc = (n: number): { p: NativeMemory; bytes: Uint8Array } => {
    const p = koffi.alloc('uint8_t', n);
    allocated.push(p);
    const bytes = new Uint8Array(koffi.view(p, n));
    bytes.fill(0);
    return { p, bytes };
  };
  try {
    const req = alloc(SNP_EXT_REPORT_REQ_SIZE);
    const resp = alloc(SNP_REPORT_RESP_SIZE);
    const certs = call.certsLen > 0 ? alloc(call.certsLen) : null;
    const io = alloc(SNP_GUEST_REQUEST_IOCTL_SIZE);
    req.bytes.set(encodeSnpExtReportReq({ data, certsAddress: certs === null ? 0n : koffi.address(certs.p), certsLen: call.certsLen }));
    io.bytes.set(encodeSnpGuestRequestIoctl({ msgVersion: call.msgVersion, reqData: koffi.address(req.p), respData: koffi.address(resp.p), exitinfo2: 0n }));
    const ret = libc.ioctl(fd, SNP_GET_EXT_REPORT, 'void *', io.p);
    // errno is read before any other native call can change it.
    const errno = ret !== 0 ? koffi.errno() : 0;
    return {
      stage: 'ioctl',
      ret,
      errno,
      ioctl: io.bytes.slice(),
      extReportReq: req.bytes.slice(),
      resp: resp.bytes.slice(),
      certs: certs === null ? new Uint8Array(0) : certs.bytes.slice(),
    };
  } finally {
    for (const p of allocated) koffi.free(p);
    libc.close(fd);
  }
};
