/**
 * Measured-boot appraisal: the event log is replayed against the quoted PCRs, and only then are
 * its events read as claims and compared with the policy's `measuredBoot` rules. Pure: every
 * failure is returned (code, field, expected, actual), nothing is thrown for a "no".
 */
import { failure, type Failure } from '../lib/failure.js';
import { bootClaims, verifyEventLog, type BootClaims } from '../eventlog/index.js';
import type { MeasuredBootPolicy } from '../policy/index.js';
import type { PcrValues } from '../tpm/verify/quote.js';

/** What a successful replay established, in the decision's words. */
export interface BootSummary {
  readonly secureBoot: BootClaims['secureBoot']['state'];
  readonly bootLoader?: string;
  readonly kernel?: string;
  readonly kernelCmdline?: string;
  readonly sCrtmVersion?: string;
  readonly dbCertificates: number;
  readonly dbxHashes: number;
  /** Firmware quirks the replay needed (each allowed by name in the policy). */
  readonly quirksApplied: readonly string[];
}

export interface MeasuredBootResult {
  readonly failures: readonly Failure[];
  readonly summary?: BootSummary;
}

/** Dotted-number comparison: negative, zero or positive; undefined when either is not dotted numbers. */
export function compareVersions(a: string, b: string): number | undefined {
  const re = /^[0-9]+(?:\.[0-9]+)*$/;
  if (!re.test(a) || !re.test(b)) return undefined;
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The dotted version inside an S-CRTM string ("… 1.2.3 …" → "1.2.3"), if any. */
function versionIn(s: string): string | undefined {
  return /[0-9]+(?:\.[0-9]+)+/.exec(s)?.[0];
}

/** Appraises `eventLog` against the quoted PCRs and the rules. */
export function appraiseMeasuredBoot(rules: MeasuredBootPolicy, eventLog: Uint8Array | undefined, quoted: PcrValues, banks: readonly number[]): MeasuredBootResult {
  if (eventLog === undefined) return { failures: [failure('POLICY_EVENTLOG_MISSING', { field: 'evidence.tpm.eventLog' })] };
  const v = verifyEventLog(eventLog, quoted, { pcrs: rules.pcrs, banks, quirks: rules.quirks ?? [] });
  if (!v.ok) return { failures: v.failures };
  const c = bootClaims(v);
  const out: Failure[] = [];
  const f = 'measuredBoot';

  if (rules.secureBoot === 'enabled' && c.secureBoot.state !== 'enabled') {
    out.push(failure('POLICY_SECURE_BOOT', { field: `${f}.secureBoot`, expected: 'enabled', actual: c.secureBoot.state }));
  }
  if (rules.db !== 'any') {
    const have = new Set((c.db?.certificates ?? []).map((x) => x.sha256));
    for (const fp of rules.db.require ?? []) if (!have.has(fp)) out.push(failure('POLICY_DB', { field: `${f}.db.require`, expected: fp, actual: 'absent from db' }));
    for (const fp of rules.db.forbid ?? []) if (have.has(fp)) out.push(failure('POLICY_DB', { field: `${f}.db.forbid`, expected: `not ${fp}`, actual: 'present in db' }));
  }
  if (rules.dbx !== 'any') {
    const hashes = new Set(c.dbx?.sha256Hashes ?? []);
    const certs = new Set((c.dbx?.certificates ?? []).map((x) => x.sha256));
    for (const h of rules.dbx.requireHashes ?? []) if (!hashes.has(h)) out.push(failure('POLICY_DBX', { field: `${f}.dbx.requireHashes`, expected: h, actual: 'absent from dbx' }));
    for (const h of rules.dbx.requireCertificates ?? []) if (!certs.has(h)) out.push(failure('POLICY_DBX', { field: `${f}.dbx.requireCertificates`, expected: h, actual: 'absent from dbx' }));
    if (rules.dbx.minHashes !== undefined && hashes.size < rules.dbx.minHashes) {
      out.push(failure('POLICY_DBX', { field: `${f}.dbx.minHashes`, expected: `>= ${rules.dbx.minHashes}`, actual: String(hashes.size) }));
    }
  }
  const bootLoader = c.bootLoader?.digests['sha256'];
  if (rules.bootLoaders !== 'any' && (bootLoader === undefined || !rules.bootLoaders.includes(bootLoader))) {
    out.push(failure('POLICY_BOOT_LOADER', { field: `${f}.bootLoaders`, expected: rules.bootLoaders.join(' | '), actual: bootLoader ?? 'no boot loader in the log' }));
  }
  const kernel = c.kernel?.digests['sha256'];
  if (rules.kernels !== 'any' && (kernel === undefined || !rules.kernels.includes(kernel))) {
    out.push(failure('POLICY_KERNEL', { field: `${f}.kernels`, expected: rules.kernels.join(' | '), actual: kernel ?? 'no kernel in the log' }));
  }
  const cmdline = c.kernelCmdline?.value;
  if (rules.kernelCmdline !== 'any') {
    if (cmdline === undefined) out.push(failure('POLICY_KERNEL_CMDLINE', { field: `${f}.kernelCmdline`, actual: 'no kernel command line in the log' }));
    else {
      if (rules.kernelCmdline.allow !== undefined && !rules.kernelCmdline.allow.includes(cmdline)) {
        out.push(failure('POLICY_KERNEL_CMDLINE', { field: `${f}.kernelCmdline.allow`, expected: rules.kernelCmdline.allow.join(' | '), actual: cmdline }));
      }
      for (const bad of rules.kernelCmdline.forbidSubstrings ?? []) {
        if (cmdline.includes(bad)) out.push(failure('POLICY_KERNEL_CMDLINE', { field: `${f}.kernelCmdline.forbidSubstrings`, expected: `no "${bad}"`, actual: cmdline }));
      }
    }
  }
  const scrtm = c.sCrtmVersion?.value;
  if (rules.sCrtmVersion !== 'any') {
    if (scrtm === undefined) out.push(failure('POLICY_SCRTM_VERSION', { field: `${f}.sCrtmVersion`, actual: 'no S-CRTM version in the log' }));
    else if (Array.isArray(rules.sCrtmVersion)) {
      if (!rules.sCrtmVersion.includes(scrtm)) out.push(failure('POLICY_SCRTM_VERSION', { field: `${f}.sCrtmVersion`, expected: rules.sCrtmVersion.join(' | '), actual: scrtm }));
    } else {
      const found = versionIn(scrtm);
      const cmp = found === undefined ? undefined : compareVersions(found, rules.sCrtmVersion.min);
      if (cmp === undefined || cmp < 0) {
        out.push(failure('POLICY_SCRTM_VERSION', { field: `${f}.sCrtmVersion.min`, expected: `>= ${rules.sCrtmVersion.min}`, actual: scrtm }));
      }
    }
  }
  const summary: BootSummary = {
    secureBoot: c.secureBoot.state,
    ...(bootLoader !== undefined ? { bootLoader } : {}),
    ...(kernel !== undefined ? { kernel } : {}),
    ...(cmdline !== undefined ? { kernelCmdline: cmdline } : {}),
    ...(scrtm !== undefined ? { sCrtmVersion: scrtm } : {}),
    dbCertificates: c.db?.certificates.length ?? 0,
    dbxHashes: c.dbx?.sha256Hashes.length ?? 0,
    quirksApplied: [...v.quirksApplied],
  };
  return { failures: out, summary };
}
