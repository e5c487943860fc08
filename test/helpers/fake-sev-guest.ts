/**
 * An emulated Linux SEV guest driver (`/dev/sev-guest`, drivers/virt/coco/sev-guest) and host,
 * behind the device function `collectSevGuestReport` takes, so the real collector code path runs
 * with no SEV-SNP guest. It works on the same bytes the kernel sees: it decodes the
 * snp_report_req the collector sends and answers with the snp_guest_request_ioctl,
 * snp_ext_report_req, snp_report_resp and certificate buffer the kernel would leave behind.
 * Reports are synthetic SEV-SNP reports signed with the TEST-ONLY VCEK of attestation-fixtures/snp;
 * the certificate table holds the TEST-ONLY VCEK, ASK and ARK (the same bytes as FakeTsm's auxblob).
 *
 * Kernel behaviour emulated (sev-guest.c, arch/x86/coco/sev): `msg_version` 0 → EINVAL; a
 * certificate buffer that is not whole pages or above SEV_FW_BLOB_MAX_SIZE → EINVAL with exitinfo2
 * 0xff; a host that needs more certificate pages → EIO, exitinfo2 = INVALID_LEN << 32, and
 * `certs_len` rewritten to the bytes needed; a firmware error → EIO with `fw_error`; a VMM error →
 * EIO (ETIMEDOUT for a host that stays busy) with `vmm_error`; a request that never reaches the
 * firmware → EIO with exitinfo2 all ones; a disabled VMPCK → ENOTTY with exitinfo2 0xff.
 */
import { constants } from 'node:os';
import type { SnpReport } from '../../src/snp/abi.js';
import { encodeSnpCertTable, SNP_CERT_GUID } from '../../src/snp/certtable.js';
import { testSnpChain, type TestSnpChain } from '../../attestation-fixtures/snp/index.js';
import type { SevGuestExtReportCall, SevGuestExtReportOutcome, SevGuestExtReportIoctl } from '../../native/sev-guest.js';
import {
  decodeSnpReportReq,
  encodeSnpExtReportReq,
  encodeSnpGuestRequestIoctl,
  encodeSnpReportResp,
  SNP_GUEST_VMM_ERR,
  SNP_REPORT_RESP_SIZE,
} from '../../src/agent/sev-guest-abi.js';
import { signSyntheticSnpReport, syntheticSnpFields } from './fake-tsm.js';

const PAGE = 4096;
const E = constants.errno;

/** Options of {@link FakeSevGuest}. */
export interface FakeSevGuestOptions {
  /** The emulated device node (default /dev/sev-guest). */
  readonly path?: string;
  /** false: no device node (open fails ENOENT), as outside an SNP guest. */
  readonly present?: boolean;
  /** open(2) fails with this errno name (e.g. "EACCES"). */
  readonly openErrno?: keyof typeof constants.errno;
  /** The node is not the SEV guest device: ioctl fails ENOTTY and leaves the structure alone. */
  readonly notDevice?: boolean;
  /** The driver disabled its VMPCK after an earlier failure: ENOTTY, exitinfo2 0xff. */
  readonly vmpckDisabled?: boolean;
  /** SEV_FW_BLOB_MAX_SIZE of the emulated kernel (default 16 KiB). */
  readonly kernelCertsMax?: number;
  /** false: the host supplies no certificates (the buffer stays zero). */
  readonly hostCerts?: boolean;
  /** Bytes of certificate data the host needs (at least the table's length). */
  readonly hostCertsBytes?: number;
  /** What the host claims it needs on INVALID_LEN, per request (default: hostCertsBytes rounded to pages). */
  readonly claimedCertsLen?: (request: number) => number;
  /** A firmware error in exitinfo2 bits 31:0. */
  readonly fwError?: number;
  /** A VMM error in exitinfo2 bits 63:32. */
  readonly vmmError?: number;
  /** The request never reaches the firmware (exitinfo2 = SEV_RET_NO_FW_CALL). */
  readonly noFwCall?: boolean;
  /** MSG_REPORT_RSP.STATUS (default 0). */
  readonly respStatus?: number;
  /** MSG_REPORT_RSP.REPORT_SIZE (default the report's length); the report bytes are cut to it when smaller. */
  readonly respReportSize?: number;
  /** Byte of the MSG_REPORT_RSP reserved range (offset 8 + this) set to 1. */
  readonly respReservedByte?: number;
  /** The response structure is this many bytes instead of 4000. */
  readonly respLength?: number;
  /** Fields the synthetic reports override. */
  readonly reportFields?: Partial<SnpReport>;
}

/** One request the emulated driver received. */
export interface FakeSevGuestCall {
  readonly path: string;
  readonly certsLen: number;
  readonly vmpl: number;
  readonly userData: Uint8Array;
}

/** The emulated driver; pass `ioctl` to `collectSevGuestReport`. */
export class FakeSevGuest {
  readonly path: string;
  readonly chain: TestSnpChain;
  /** Every request that reached the ioctl, in order. */
  readonly calls: FakeSevGuestCall[] = [];
  /** Every path opened, in order (including failed opens). */
  readonly opened: string[] = [];
  /** Reports handed out, in order. */
  readonly reports: Uint8Array[] = [];
  readonly #opts: FakeSevGuestOptions;

  constructor(opts: FakeSevGuestOptions = {}, chain: TestSnpChain = testSnpChain()) {
    this.#opts = opts;
    this.path = opts.path ?? '/dev/sev-guest';
    this.chain = chain;
  }

  /** The certificate table the host supplies: VCEK, ASK, ARK. */
  certTable(): Uint8Array {
    return encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: this.chain.vcek },
      { guid: SNP_CERT_GUID.ask, data: this.chain.ask },
      { guid: SNP_CERT_GUID.ark, data: this.chain.ark },
    ]);
  }

  /** The emulated open + SNP_GET_EXT_REPORT + close, as `collectSevGuestReport` calls it. */
  readonly ioctl: SevGuestExtReportIoctl = (path: string, call: SevGuestExtReportCall): SevGuestExtReportOutcome => {
    const o = this.#opts;
    this.opened.push(path);
    if (path !== this.path || o.present === false) return { stage: 'open', errno: E.ENOENT };
    if (o.openErrno !== undefined) return { stage: 'open', errno: E[o.openErrno] };

    const data = decodeSnpReportReq(call.reportReq);
    const fail = (errno: number, exitinfo2: bigint, certsLenBack = call.certsLen): SevGuestExtReportOutcome => ({
      stage: 'ioctl',
      ret: -1,
      errno,
      ioctl: encodeSnpGuestRequestIoctl({ msgVersion: call.msgVersion, reqData: 0x1000n, respData: 0x2000n, exitinfo2 }),
      extReportReq: encodeSnpExtReportReq({ data, certsAddress: 0x3000n, certsLen: certsLenBack }),
      resp: new Uint8Array(SNP_REPORT_RESP_SIZE),
      certs: new Uint8Array(call.certsLen),
    });
    if (o.notDevice === true) return fail(E.ENOTTY, 0n);
    if (call.msgVersion === 0) return fail(E.EINVAL, 0n);
    if (o.vmpckDisabled === true) return fail(E.ENOTTY, 0xffn);
    if (call.certsLen % PAGE !== 0 || call.certsLen > (o.kernelCertsMax ?? 0x4000)) return fail(E.EINVAL, 0xffn);

    this.calls.push({ path, certsLen: call.certsLen, vmpl: data.vmpl, userData: Uint8Array.from(data.userData) });
    const request = this.calls.length;
    if (o.noFwCall === true) return fail(E.EIO, 0xffff_ffff_ffff_ffffn);
    if (o.vmmError !== undefined) return fail(o.vmmError === SNP_GUEST_VMM_ERR.BUSY ? E.ETIMEDOUT : E.EIO, BigInt(o.vmmError) << 32n);
    if (o.fwError !== undefined) return fail(E.EIO, BigInt(o.fwError));

    const table = o.hostCerts === false ? null : this.certTable();
    const needed = Math.ceil(Math.max(o.hostCertsBytes ?? 0, table?.length ?? 0) / PAGE) * PAGE;
    if (table !== null && call.certsLen > 0 && needed > call.certsLen) {
      const claimed = o.claimedCertsLen?.(request) ?? needed;
      return fail(E.EIO, BigInt(SNP_GUEST_VMM_ERR.INVALID_LEN) << 32n, claimed);
    }

    const reportData = Uint8Array.from(data.userData);
    const report = signSyntheticSnpReport(this.chain, syntheticSnpFields(this.chain, { ...o.reportFields, reportData, vmpl: data.vmpl }));
    this.reports.push(report);
    const size = o.respReportSize ?? report.length;
    let resp = encodeSnpReportResp({ report: report.subarray(0, Math.min(size, report.length)), reportSize: size, status: o.respStatus ?? 0 });
    if (o.respReservedByte !== undefined) resp[8 + o.respReservedByte] = 1;
    if (o.respLength !== undefined) {
      const r = new Uint8Array(o.respLength);
      r.set(resp.subarray(0, Math.min(o.respLength, resp.length)));
      resp = r;
    }
    const certs = new Uint8Array(call.certsLen);
    if (table !== null && call.certsLen > 0) certs.set(table);
    return {
      stage: 'ioctl',
      ret: 0,
      errno: 0,
      ioctl: encodeSnpGuestRequestIoctl({ msgVersion: call.msgVersion, reqData: 0x1000n, respData: 0x2000n, exitinfo2: 0n }),
      extReportReq: encodeSnpExtReportReq({ data, certsAddress: 0x3000n, certsLen: call.certsLen }),
      resp,
      certs,
    };
  };
}
