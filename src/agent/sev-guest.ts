/**
 * The agent's SEV-SNP report collector through `/dev/sev-guest` (SNP_GET_EXT_REPORT), for guest
 * kernels that predate configfs-tsm (before Linux 6.7). The device is a function
 * ({@link SevGuestExtReportIoctl}, native/sev-guest.ts by default) so the whole collector runs in
 * tests against an emulated driver.
 *
 * One request: the 64 bytes of REPORT_DATA and the VMPL go in as struct snp_report_req, with a
 * certificate buffer of {@link SEV_GUEST_CERTS_INITIAL} bytes. When the host says that buffer is
 * too small (errno EIO, `vmm_error` SNP_GUEST_VMM_ERR_INVALID_LEN), the kernel writes the length
 * the host needs into `certs_len`; the request is made once more with a buffer of that length,
 * rounded up to whole pages and at most {@link SEV_GUEST_CERTS_MAX}. The kernel already retries
 * a busy host itself, so nothing else is retried: every other failure ends the collection with a
 * registry code naming the errno, the firmware error or the VMM error.
 *
 * The result has the shape configfs-tsm gives (src/agent/tsm.ts): the report bytes exactly as
 * the firmware produced them and the certificate table as the kernel would put it in `auxblob`.
 */
import { constants } from 'node:os';
import { MisuseError, UnavailableError, vouchError, type VouchError } from '../lib/errors.js';
import { sevGuestExtReport, SEV_GUEST_CERTS_LEN_LIMIT, SEV_GUEST_PAGE_SIZE, type SevGuestExtReportIoctl } from '../../native/sev-guest.js';
import {
  decodeSnpExtReportReq,
  decodeSnpGuestRequestIoctl,
  decodeSnpReportResp,
  encodeSnpReportReq,
  sevRetName,
  snpCertBufferTable,
  vmmErrorName,
  SNP_EXITINFO2_NO_FW_CALL,
  SNP_GUEST_VMM_ERR,
  SNP_MSG_VERSION,
  SNP_REPORT_USER_DATA_SIZE,
  SNP_VMPL_MAX,
} from './sev-guest-abi.js';

/** The SEV guest device node. */
export const SEV_GUEST_DEVICE = '/dev/sev-guest';
/**
 * First certificate buffer: 16 KiB, SEV_FW_BLOB_MAX_SIZE of mainline Linux and what the kernel's
 * own configfs-tsm path offers the host, so one request is enough on common hosts.
 */
export const SEV_GUEST_CERTS_INITIAL = 0x4000;
/** Largest certificate buffer offered when the host asks for more (the length is the host's claim). */
export const SEV_GUEST_CERTS_MAX = SEV_GUEST_CERTS_LEN_LIMIT;

/** Inputs of {@link collectSevGuestReport}. */
export interface CollectSevGuestReportOptions {
  /** The 64 bytes of REPORT_DATA. */
  readonly reportData: Uint8Array;
  /** The VMPL the report names (0..3, default 0). */
  readonly vmpl?: number;
  /** The device node (default /dev/sev-guest). */
  readonly path?: string;
  /** The device (native/sev-guest.ts by default; tests inject an emulated driver). */
  readonly ioctl?: SevGuestExtReportIoctl;
  /** First certificate buffer in bytes: whole pages, at most {@link SEV_GUEST_CERTS_MAX} (default 16 KiB). */
  readonly certsLength?: number;
}

/** What SNP_GET_EXT_REPORT returned, in the shape of a configfs-tsm report. */
export interface SevGuestReport {
  /** The signed ATTESTATION_REPORT, as the firmware produced it. */
  readonly report: Uint8Array;
  /** The host's certificate table (what configfs-tsm calls `auxblob`), or null when the host supplied none. */
  readonly auxblob: Uint8Array | null;
  /** Requests made: 1, or 2 after a certificate buffer that was too small. */
  readonly requests: number;
}

/** The device node does not exist (or has no device behind it): the caller may look elsewhere. */
export class SevGuestDeviceMissing extends UnavailableError {
  /** The path that was opened. */
  readonly path: string;
  constructor(path: string, errno: string) {
    super(
      'SNP_GUEST_DEVICE_UNAVAILABLE',
      `no SEV guest device at ${path} (${errno}): this is not an SEV-SNP guest, or the sev-guest driver is not loaded (modprobe sev-guest)`,
      { field: 'open', actual: errno },
    );
    this.path = path;
  }
}

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The errno's symbolic name ("ENOTTY"), or "errno N" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

function roundUpToPage(n: number): number {
  return Math.ceil(n / SEV_GUEST_PAGE_SIZE) * SEV_GUEST_PAGE_SIZE;
}

function openError(path: string, errno: number): VouchError {
  const name = errnoName(errno);
  if (name === 'ENOENT' || name === 'ENODEV' || name === 'ENXIO') return new SevGuestDeviceMissing(path, name);
  if (name === 'EACCES' || name === 'EPERM') {
    return new UnavailableError('SNP_GUEST_DEVICE_UNAVAILABLE', `no permission to open ${path} (${name}): the SEV guest device needs root`, { field: 'open', actual: name });
  }
  return new UnavailableError('SNP_GUEST_DEVICE_UNAVAILABLE', `${path} could not be opened (${name})`, { field: 'open', actual: name });
}

function ioctlError(path: string, errno: number, certsLen: number, exitinfo2: bigint): VouchError {
  const name = errnoName(errno);
  const detail = { field: 'ioctl', actual: name, expected: '0' };
  if (name === 'ENOTTY') {
    return new UnavailableError(
      'SNP_GUEST_DEVICE_UNAVAILABLE',
      `${path} does not answer SNP_GET_EXT_REPORT (ENOTTY): it is not the SEV guest device, or the driver disabled its VMPCK after an earlier failed request (a reboot restores it)`,
      detail,
    );
  }
  if (name === 'EINVAL') {
    return new UnavailableError(
      'SNP_GUEST_DEVICE_UNAVAILABLE',
      `the kernel rejected SNP_GET_EXT_REPORT on ${path} (EINVAL): a certificate buffer of ${certsLen} bytes may be above its limit`,
      detail,
    );
  }
  const fw = SNP_EXITINFO2_NO_FW_CALL.includes(exitinfo2) ? ', the request did not reach the firmware' : '';
  return new UnavailableError('SNP_GUEST_DEVICE_UNAVAILABLE', `SNP_GET_EXT_REPORT on ${path} failed (${name}${fw})`, detail);
}

function vmmError(path: string, vmm: number, why: string): VouchError {
  return vouchError('SNP_GUEST_VMM_ERROR', `the hypervisor failed SNP_GET_EXT_REPORT on ${path} with VMM error ${vmmErrorName(vmm)}${why}`, {
    field: 'snp_guest_request_ioctl.vmm_error',
    expected: '0x0',
    actual: vmmErrorName(vmm),
  });
}

/**
 * Requests one report with `reportData` as REPORT_DATA through `/dev/sev-guest`.
 *
 * @throws MisuseError MISUSE_ARGUMENT (reportData not 64 bytes, vmpl not 0..3, bad certsLength)
 * @throws UnavailableError SNP_GUEST_DEVICE_UNAVAILABLE (no device — a {@link SevGuestDeviceMissing} —, no permission, not the device, a refused request, libc not loadable), SNP_GUEST_FIRMWARE_ERROR (fw_error, or MSG_REPORT_RSP.STATUS not success), SNP_GUEST_VMM_ERROR (vmm_error, or a certificate buffer still too small)
 * @throws ParseError a response that does not decode (PARSE_BAD_VALUE REPORT_SIZE, PARSE_RESERVED_NONZERO, PARSE_TRUNCATED, …)
 */
export async function collectSevGuestReport(opts: CollectSevGuestReportOptions): Promise<SevGuestReport> {
  const path = opts.path ?? SEV_GUEST_DEVICE;
  const ioctl = opts.ioctl ?? sevGuestExtReport;
  const vmpl = opts.vmpl ?? 0;
  if (!(opts.reportData instanceof Uint8Array) || opts.reportData.length !== SNP_REPORT_USER_DATA_SIZE) {
    throw new MisuseError('MISUSE_ARGUMENT', `reportData must be ${SNP_REPORT_USER_DATA_SIZE} bytes`, {
      field: 'reportData',
      expected: String(SNP_REPORT_USER_DATA_SIZE),
      actual: opts.reportData instanceof Uint8Array ? String(opts.reportData.length) : typeof opts.reportData,
    });
  }
  if (!Number.isInteger(vmpl) || vmpl < 0 || vmpl > SNP_VMPL_MAX) {
    throw new MisuseError('MISUSE_ARGUMENT', `vmpl must be an integer 0..${SNP_VMPL_MAX}`, { field: 'vmpl', actual: String(vmpl) });
  }
  let certsLen = opts.certsLength ?? SEV_GUEST_CERTS_INITIAL;
  if (!Number.isInteger(certsLen) || certsLen < SEV_GUEST_PAGE_SIZE || certsLen > SEV_GUEST_CERTS_MAX || certsLen % SEV_GUEST_PAGE_SIZE !== 0) {
    throw new MisuseError('MISUSE_ARGUMENT', `certsLength must be whole ${SEV_GUEST_PAGE_SIZE}-byte pages, at most ${SEV_GUEST_CERTS_MAX}`, { field: 'certsLength', actual: String(certsLen) });
  }
  const reportReq = encodeSnpReportReq({ userData: opts.reportData, vmpl });

  for (let request = 1; ; request++) {
    const out = ioctl(path, { msgVersion: SNP_MSG_VERSION, reportReq, certsLen });
    if (out.stage === 'open') throw openError(path, out.errno);
    if (out.ret === 0) {
      const rsp = decodeSnpReportResp(out.resp);
      if (out.certs.length !== certsLen) {
        throw new UnavailableError('SNP_GUEST_DEVICE_UNAVAILABLE', `SNP_GET_EXT_REPORT on ${path} returned a ${out.certs.length}-byte certificate buffer for ${certsLen}`, {
          field: 'certs',
          expected: String(certsLen),
          actual: String(out.certs.length),
        });
      }
      return { report: rsp.report.slice(), auxblob: snpCertBufferTable(out.certs), requests: request };
    }
    const io = decodeSnpGuestRequestIoctl(out.ioctl);
    // The kernel leaves exitinfo2 alone (0) when the request is not its own, and sets 0xff or all
    // ones when it failed before the firmware: then only the errno says what happened.
    if (io.exitinfo2 === 0n || SNP_EXITINFO2_NO_FW_CALL.includes(io.exitinfo2)) throw ioctlError(path, out.errno, certsLen, io.exitinfo2);
    if (io.vmmError === SNP_GUEST_VMM_ERR.INVALID_LEN) {
      if (request > 1) throw vmmError(path, io.vmmError, `: the certificate buffer of ${certsLen} bytes is still too small after a retry`);
      const needed = decodeSnpExtReportReq(out.extReportReq).certsLen;
      if (needed <= certsLen) throw vmmError(path, io.vmmError, `: the host asks for ${needed} certificate bytes, not more than the ${certsLen} given`);
      if (needed > SEV_GUEST_CERTS_MAX) throw vmmError(path, io.vmmError, `: the host asks for ${needed} certificate bytes, more than the ${SEV_GUEST_CERTS_MAX} vouch offers`);
      certsLen = roundUpToPage(needed);
      continue;
    }
    if (io.vmmError !== 0) throw vmmError(path, io.vmmError, io.vmmError === SNP_GUEST_VMM_ERR.BUSY ? ' (the host kept throttling requests)' : '');
    throw vouchError('SNP_GUEST_FIRMWARE_ERROR', `the AMD secure processor failed SNP_GET_EXT_REPORT on ${path} with firmware error ${sevRetName(io.fwError)} (${errnoName(out.errno)})`, {
      field: 'snp_guest_request_ioctl.fw_error',
      expected: '0x00',
      actual: sevRetName(io.fwError),
    });
  }
}
