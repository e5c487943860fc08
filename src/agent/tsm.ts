/**
 * The agent's confidential-guest report collector through Linux configfs-tsm
 * (Documentation/ABI/testing/configfs-tsm).
 *
 * A report request is a directory made under `/sys/kernel/config/tsm/report/`. The caller writes
 * `inblob` (up to 64 bytes; the SEV-SNP REPORT_DATA) and optionally `privlevel` (0..3; the VMPL
 * for SEV-SNP), then reads `outblob` (the signed report) and `auxblob` (SEV-SNP: the certificate
 * table the host supplied). `provider` names the TSM driver ("sev_guest" for SEV-SNP).
 * `generation` counts the writes to `inblob` and the options: it is read before and after the
 * blobs, and if it moved another writer changed the request between, so the blobs may belong to
 * its REPORT_DATA and the attempt is discarded. Each attempt uses a fresh entry, removed in every
 * case.
 *
 * Kernels that predate configfs-tsm (before 6.7) have no such tree: {@link tsmReportTreePresent}
 * says so, and src/agent/snp-report.ts then asks `/dev/sev-guest` (src/agent/sev-guest.ts).
 */
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { MisuseError, UnavailableError } from '../lib/errors.js';

/** Default configfs-tsm report root. */
export const TSM_REPORT_ROOT = '/sys/kernel/config/tsm/report';
/** Size of the SEV-SNP REPORT_DATA, the `inblob` written here. */
export const TSM_REPORT_DATA_SIZE = 64;
/** Highest privilege level the ABI accepts. */
export const TSM_PRIVLEVEL_MAX = 3;
/** Attempts made when the generation moves before the request is given up. */
export const TSM_DEFAULT_ATTEMPTS = 3;
/** The `provider` value of the SEV-SNP guest driver. */
export const TSM_PROVIDER_SEV_GUEST = 'sev_guest';

/** The filesystem operations the collector uses; node:fs/promises by default, a fake in tests. */
export interface TsmFs {
  mkdir(path: string): Promise<unknown>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  rmdir(path: string): Promise<void>;
  /** Fails ENOENT when `path` does not exist; optional (an emulated tree without it counts as present). */
  stat?(path: string): Promise<unknown>;
}

const defaultFs: TsmFs = {
  mkdir: (p) => nodeFs.mkdir(p),
  writeFile: (p, d) => nodeFs.writeFile(p, d),
  readFile: (p) => nodeFs.readFile(p),
  rmdir: (p) => nodeFs.rmdir(p),
  stat: (p) => nodeFs.stat(p),
};

/** Inputs of {@link collectTsmReport}. */
export interface CollectTsmReportOptions {
  /** The configfs-tsm report directory. */
  readonly root?: string;
  /** The 64 bytes written to `inblob` (SEV-SNP REPORT_DATA). */
  readonly reportData: Uint8Array;
  /** Written to `privlevel` when given (0..3). */
  readonly privlevel?: number;
  /** Entry name prefix; a random suffix keeps each entry unique. */
  readonly name?: string;
  /** Attempts before a moving generation fails with SNP_TSM_RACE (default 3). */
  readonly attempts?: number;
  /** Filesystem operations (tests inject an emulated configfs-tsm). */
  readonly fs?: TsmFs;
}

/** What one configfs-tsm request returned. */
export interface TsmReport {
  /** The TSM driver, e.g. "sev_guest"; the caller decides whether it is the one it expects. */
  readonly provider: string;
  /** `outblob`: the signed report. */
  readonly report: Uint8Array;
  /** `auxblob` (SEV-SNP certificate table), or null when the provider supplied none. */
  readonly auxblob: Uint8Array | null;
  /** The generation both reads agreed on. */
  readonly generation: number;
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

function unavailable(root: string, e: unknown, what: string): UnavailableError {
  const code = errnoOf(e);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new UnavailableError(
      'SNP_TSM_UNAVAILABLE',
      `configfs-tsm is not available at ${root}: the kernel is too old (configfs-tsm needs Linux 6.7+), this is not a confidential guest, or configfs is not mounted (mount -t configfs none /sys/kernel/config)`,
      { cause: e },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new UnavailableError('SNP_TSM_UNAVAILABLE', `no permission to ${what} under ${root} (configfs-tsm needs root)`, { cause: e });
  }
  return new UnavailableError('SNP_TSM_UNAVAILABLE', `configfs-tsm: could not ${what} under ${root}${code !== undefined ? ` (${code})` : ''}`, { cause: e });
}

function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8').trim();
}

function parseGeneration(b: Uint8Array, root: string): number {
  const s = text(b);
  if (!/^\d{1,15}$/.test(s)) throw new UnavailableError('SNP_TSM_UNAVAILABLE', `configfs-tsm under ${root}: generation is not a decimal counter: ${JSON.stringify(s.slice(0, 32))}`);
  return Number(s);
}

/**
 * Whether the configfs-tsm report tree exists at `root` (default {@link TSM_REPORT_ROOT}). Absent
 * (ENOENT, ENOTDIR) on kernels before 6.7, outside a confidential guest, or when configfs is not
 * mounted. An injected `fs` without `stat` is an emulated tree the caller chose: present.
 *
 * @throws UnavailableError SNP_TSM_UNAVAILABLE (the tree cannot be looked at: no permission, another error)
 */
export async function tsmReportTreePresent(root: string = TSM_REPORT_ROOT, fs: TsmFs = defaultFs): Promise<boolean> {
  if (fs.stat === undefined) return true;
  try {
    await fs.stat(root);
    return true;
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw unavailable(root, e, 'look up the report tree');
  }
}

/**
 * Requests one report through configfs-tsm with `reportData` as `inblob`. Each attempt makes a
 * fresh entry, writes `inblob` (and `privlevel`), reads `generation`, `outblob`, `auxblob` and
 * `generation` again, and removes the entry. The generation must be the count of this attempt's
 * own writes at both reads; otherwise another writer raced and the attempt is retried.
 *
 * @throws MisuseError MISUSE_ARGUMENT (reportData not 64 bytes, privlevel not 0..3, bad name or attempts)
 * @throws UnavailableError SNP_TSM_UNAVAILABLE (no configfs-tsm tree, no permission, a read or write failed), SNP_TSM_RACE (the generation moved on every attempt)
 */
export async function collectTsmReport(opts: CollectTsmReportOptions): Promise<TsmReport> {
  const root = opts.root ?? TSM_REPORT_ROOT;
  const fs = opts.fs ?? defaultFs;
  const attempts = opts.attempts ?? TSM_DEFAULT_ATTEMPTS;
  if (!(opts.reportData instanceof Uint8Array) || opts.reportData.length !== TSM_REPORT_DATA_SIZE) {
    throw new MisuseError('MISUSE_ARGUMENT', `reportData must be ${TSM_REPORT_DATA_SIZE} bytes`, {
      field: 'reportData',
      expected: String(TSM_REPORT_DATA_SIZE),
      actual: opts.reportData instanceof Uint8Array ? String(opts.reportData.length) : typeof opts.reportData,
    });
  }
  if (opts.privlevel !== undefined && (!Number.isInteger(opts.privlevel) || opts.privlevel < 0 || opts.privlevel > TSM_PRIVLEVEL_MAX)) {
    throw new MisuseError('MISUSE_ARGUMENT', `privlevel must be an integer 0..${TSM_PRIVLEVEL_MAX}`, { field: 'privlevel', actual: String(opts.privlevel) });
  }
  const prefix = opts.name ?? 'vouch';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix) || prefix.startsWith('.')) {
    throw new MisuseError('MISUSE_ARGUMENT', 'name must be 1..64 characters of [A-Za-z0-9_.-], not starting with a dot', { field: 'name' });
  }
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) {
    throw new MisuseError('MISUSE_ARGUMENT', 'attempts must be an integer 1..100', { field: 'attempts' });
  }

  let last: { before: number; after: number; expected: number } | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const entry = join(root, `${prefix}-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await fs.mkdir(entry);
    } catch (e) {
      throw unavailable(root, e, 'make a report entry');
    }
    try {
      let writes = 0;
      const write = async (file: string, data: Uint8Array | string): Promise<void> => {
        try {
          await fs.writeFile(join(entry, file), data);
        } catch (e) {
          throw unavailable(root, e, `write ${file}`);
        }
        writes++;
      };
      const read = async (file: string): Promise<Uint8Array> => {
        try {
          return new Uint8Array(await fs.readFile(join(entry, file)));
        } catch (e) {
          throw unavailable(root, e, `read ${file}`);
        }
      };

      await write('inblob', opts.reportData);
      if (opts.privlevel !== undefined) await write('privlevel', `${opts.privlevel}\n`);
      const before = parseGeneration(await read('generation'), root);
      const provider = text(await read('provider'));
      const report = await read('outblob');
      let auxblob: Uint8Array | null;
      try {
        const aux = new Uint8Array(await fs.readFile(join(entry, 'auxblob')));
        auxblob = aux.length > 0 ? aux : null;
      } catch (e) {
        // Kernels before auxblob support have no such attribute: no certificate table.
        if (errnoOf(e) !== 'ENOENT') throw unavailable(root, e, 'read auxblob');
        auxblob = null;
      }
      const after = parseGeneration(await read('generation'), root);
      // A fresh entry starts at generation 0 and each of this attempt's writes bumps it once.
      if (before === writes && after === before) {
        if (report.length === 0) throw new UnavailableError('SNP_TSM_UNAVAILABLE', `configfs-tsm under ${root}: outblob is empty (provider ${JSON.stringify(provider)})`);
        return { provider, report, auxblob, generation: after };
      }
      last = { before, after, expected: writes };
    } finally {
      // Always remove the entry; a failure to remove must not hide the result or the first error.
      await fs.rmdir(entry).catch(() => undefined);
    }
  }
  throw new UnavailableError('SNP_TSM_RACE', `configfs-tsm under ${root}: another writer changed the report entry on each of ${attempts} attempts`, {
    field: 'generation',
    ...(last !== undefined ? { expected: String(last.expected), actual: `${last.before} then ${last.after}` } : {}),
  });
}
