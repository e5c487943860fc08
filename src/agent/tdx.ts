/**
 * TDX evidence inside a trust domain: a quote through configfs-tsm (provider `tdx_guest`, the
 * 64-byte REPORTDATA written to `inblob`) and the CCEL event log from ACPI.
 *
 * Nothing here is trusted or interpreted: the verifier decodes and verifies the quote
 * (src/tdx) and replays the CCEL to the quote's RTMRs.
 */
import * as nodeFs from 'node:fs/promises';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { collectTsmReport, type TsmFs } from './tsm.js';

/** The `provider` value of the TDX guest driver. */
export const TSM_PROVIDER_TDX_GUEST = 'tdx_guest';
/** The ACPI CCEL table (header, CC type, log area length and address). */
export const CCEL_TABLE_PATH = '/sys/firmware/acpi/tables/CCEL';
/** The CCEL log area the firmware filled. */
export const CCEL_DATA_PATH = '/sys/firmware/acpi/tables/data/CCEL';
/** Largest CCEL table read (the table is 56 bytes; the ACPI header allows some growth). */
export const CCEL_TABLE_MAX_BYTES = 4096;
/** Largest CCEL log area read (firmware reserves 64 KiB to a few MiB). */
export const CCEL_DATA_MAX_BYTES = 16 * 1024 * 1024;

/** Inputs of {@link collectTdxQuote}. */
export interface CollectTdxQuoteOptions {
  /** REPORTDATA: the TEE binding of the challenge nonce and the agent's key (64 bytes). */
  readonly reportData: Uint8Array;
  /** configfs-tsm report root and filesystem (tests inject an emulated tree). */
  readonly tsm?: { readonly root?: string; readonly fs?: TsmFs };
}

/**
 * One TDX quote with `reportData` as REPORTDATA, through configfs-tsm.
 *
 * @throws MisuseError MISUSE_ARGUMENT (reportData not 64 bytes)
 * @throws UnavailableError SNP_TSM_UNAVAILABLE / SNP_TSM_RACE (configfs-tsm, shared with SEV-SNP),
 *   TDX_TSM_PROVIDER (the provider is not tdx_guest: this is not a TDX guest)
 */
export async function collectTdxQuote(opts: CollectTdxQuoteOptions): Promise<Uint8Array> {
  if (!(opts.reportData instanceof Uint8Array) || opts.reportData.length !== 64) {
    throw new MisuseError('MISUSE_ARGUMENT', 'REPORTDATA must be 64 bytes', { field: 'reportData' });
  }
  const r = await collectTsmReport({
    reportData: opts.reportData,
    ...(opts.tsm?.root !== undefined ? { root: opts.tsm.root } : {}),
    ...(opts.tsm?.fs !== undefined ? { fs: opts.tsm.fs } : {}),
  });
  if (r.provider !== TSM_PROVIDER_TDX_GUEST) {
    throw new UnavailableError('TDX_TSM_PROVIDER', `configfs-tsm provider is "${r.provider}", not ${TSM_PROVIDER_TDX_GUEST}: this is not a TDX guest`, {
      field: 'provider',
      expected: TSM_PROVIDER_TDX_GUEST,
      actual: r.provider,
    });
  }
  return r.report;
}

/** The file reads {@link readCcel} uses (node:fs/promises by default). */
export interface CcelFs {
  readFile(path: string): Promise<Uint8Array>;
}

/** The raw CCEL: the ACPI table and the log area, or null when the firmware published none. */
export interface RawCcel {
  readonly table: Uint8Array;
  readonly data: Uint8Array;
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/**
 * Reads the CCEL table and log area. Both absent → null (no CCEL: the verifier decides by
 * policy). One without the other, a read failure other than ENOENT, or an oversized file is an
 * error: a half-present log is never sent as if it were whole.
 *
 * @throws UnavailableError TDX_CCEL_UNAVAILABLE
 */
export async function readCcel(opts: { readonly tablePath?: string; readonly dataPath?: string; readonly fs?: CcelFs } = {}): Promise<RawCcel | null> {
  const fs: CcelFs = opts.fs ?? { readFile: (p) => nodeFs.readFile(p) };
  const read = async (path: string, max: number): Promise<Uint8Array | null> => {
    let b: Uint8Array;
    try {
      b = await fs.readFile(path);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return null;
      throw new UnavailableError('TDX_CCEL_UNAVAILABLE', `${path} cannot be read (${errnoOf(e) ?? 'error'})`, { field: path });
    }
    if (b.length > max) throw new UnavailableError('TDX_CCEL_UNAVAILABLE', `${path} holds ${b.length} bytes, more than ${max}`, { field: path });
    return new Uint8Array(b);
  };
  const tablePath = opts.tablePath ?? CCEL_TABLE_PATH;
  const dataPath = opts.dataPath ?? CCEL_DATA_PATH;
  const [table, data] = await Promise.all([read(tablePath, CCEL_TABLE_MAX_BYTES), read(dataPath, CCEL_DATA_MAX_BYTES)]);
  if (table === null && data === null) return null;
  if (table === null || data === null) {
    throw new UnavailableError('TDX_CCEL_UNAVAILABLE', `${table === null ? tablePath : dataPath} is missing while ${table === null ? dataPath : tablePath} exists`, {
      field: table === null ? tablePath : dataPath,
    });
  }
  return { table, data };
}
