/**
 * Where the agent gets an SEV-SNP report: configfs-tsm when the kernel has it (Linux 6.7+,
 * src/agent/tsm.ts), else `/dev/sev-guest` with SNP_GET_EXT_REPORT (src/agent/sev-guest.ts),
 * else SNP_REPORT_SOURCE_UNAVAILABLE.
 *
 * The choice is made on presence only: once the configfs-tsm tree exists, its failures are the
 * answer and the device is not tried behind them, so a given guest always uses one interface.
 */
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { collectSevGuestReport, SevGuestDeviceMissing, SEV_GUEST_DEVICE } from './sev-guest.js';
import type { SevGuestExtReportIoctl } from '../../native/sev-guest.js';
import { collectTsmReport, tsmReportTreePresent, TSM_PROVIDER_SEV_GUEST, TSM_REPORT_ROOT, type TsmFs } from './tsm.js';

/** The interface a report came through. */
export type SnpReportSource = 'configfs-tsm' | 'sev-guest';

/** Inputs of {@link collectSnpReport}. */
export interface CollectSnpReportOptions {
  /** The 64 bytes of REPORT_DATA. */
  readonly reportData: Uint8Array;
  /** The VMPL the report names (configfs-tsm `privlevel`; 0..3, default 0). */
  readonly privlevel?: number;
  /** configfs-tsm: the report root and the filesystem (tests inject an emulated tree). */
  readonly tsm?: { readonly root?: string; readonly fs?: TsmFs };
  /** /dev/sev-guest: the device node and the device (tests inject an emulated driver). */
  readonly sevGuest?: { readonly path?: string; readonly ioctl?: SevGuestExtReportIoctl };
}

/** A report and the host's certificate table, whichever interface gave them. */
export interface CollectedSnpReport {
  readonly source: SnpReportSource;
  /** The signed ATTESTATION_REPORT as the firmware produced it. */
  readonly report: Uint8Array;
  /** The host's certificate table, or null when the host supplied none. */
  readonly certTable: Uint8Array | null;
}

/**
 * The interface to use: configfs-tsm when its report tree exists, else /dev/sev-guest.
 *
 * @throws UnavailableError SNP_TSM_UNAVAILABLE (the configfs-tsm tree cannot be looked at)
 */
export async function chooseSnpReportSource(tsm: { readonly root?: string; readonly fs?: TsmFs } = {}): Promise<SnpReportSource> {
  return (await tsmReportTreePresent(tsm.root ?? TSM_REPORT_ROOT, tsm.fs)) ? 'configfs-tsm' : 'sev-guest';
}

/**
 * Collects one SEV-SNP report with `reportData` as REPORT_DATA through the interface
 * {@link chooseSnpReportSource} picks.
 *
 * @throws MisuseError MISUSE_ARGUMENT (reportData not 64 bytes, privlevel not 0..3)
 * @throws UnavailableError SNP_REPORT_SOURCE_UNAVAILABLE (neither interface exists); the errors of collectTsmReport (SNP_TSM_UNAVAILABLE also when the provider is not sev_guest) or collectSevGuestReport
 */
export async function collectSnpReport(opts: CollectSnpReportOptions): Promise<CollectedSnpReport> {
  if (opts.privlevel !== undefined && (!Number.isInteger(opts.privlevel) || opts.privlevel < 0 || opts.privlevel > 3)) {
    throw new MisuseError('MISUSE_ARGUMENT', 'privlevel must be an integer 0..3', { field: 'privlevel', actual: String(opts.privlevel) });
  }
  const tsm = opts.tsm ?? {};
  if ((await chooseSnpReportSource(tsm)) === 'configfs-tsm') {
    const r = await collectTsmReport({
      reportData: opts.reportData,
      ...(tsm.root !== undefined ? { root: tsm.root } : {}),
      ...(tsm.fs !== undefined ? { fs: tsm.fs } : {}),
      ...(opts.privlevel !== undefined ? { privlevel: opts.privlevel } : {}),
    });
    if (r.provider !== TSM_PROVIDER_SEV_GUEST) {
      throw new UnavailableError('SNP_TSM_UNAVAILABLE', `configfs-tsm provider is "${r.provider}", not ${TSM_PROVIDER_SEV_GUEST}: this is not an SEV-SNP guest`);
    }
    return { source: 'configfs-tsm', report: r.report, certTable: r.auxblob };
  }
  const path = opts.sevGuest?.path ?? SEV_GUEST_DEVICE;
  try {
    const r = await collectSevGuestReport({
      reportData: opts.reportData,
      path,
      ...(opts.sevGuest?.ioctl !== undefined ? { ioctl: opts.sevGuest.ioctl } : {}),
      ...(opts.privlevel !== undefined ? { vmpl: opts.privlevel } : {}),
    });
    return { source: 'sev-guest', report: r.report, certTable: r.auxblob };
  } catch (e) {
    if (e instanceof SevGuestDeviceMissing) {
      throw new UnavailableError(
        'SNP_REPORT_SOURCE_UNAVAILABLE',
        `no SEV-SNP report interface: neither configfs-tsm (${tsm.root ?? TSM_REPORT_ROOT}) nor ${path} exists; this is not an SEV-SNP guest, or the sev-guest driver is not loaded (modprobe sev-guest; configfs-tsm also needs configfs mounted)`,
        { cause: e },
      );
    }
    throw e;
  }
}
