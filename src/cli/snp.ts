/**
 * `vouch snp show <report>` and `vouch verify snp --report <file> [--certs <pem|dir>]…
 * [--cert-table <file>] [--policy <file> --report-data <hex>]`: decoding, authenticity and
 * (with a policy) appraisal of SEV-SNP attestation reports.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fromHex, toHex } from '../lib/bytes.js';
import { MisuseError, ParseError, isVouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { loadPolicyArg, verificationTime } from './verify-args.js';
import { policyDigest } from '../policy/digest.js';
import type { Policy } from '../policy/schema.js';
import {
  SNP_REPORT_SIZE,
  decodeSnpReport,
  snpPolicyFlags,
  snpProductOfCpuid,
  snpSigningKeyName,
  snpTcbBytes,
  snpTcbComponents,
  type DecodedSnpReport,
  type SnpProduct,
} from '../snp/abi.js';
import { SNP_REPORT_DATA_SIZE, appraiseSnp, snpReportDataFailures } from '../snp/appraise.js';
import { AMD_ARK_FINGERPRINTS, snpProductOfName } from '../snp/certs.js';
import { SNP_CERT_GUID, decodeSnpCertTable } from '../snp/certtable.js';
import { SNP_CRL_MAX_AGE_LIMIT_SECONDS, snpVerifyAllowances } from '../snp/policy.js';
import { SNP_EMPTY_POOL, readSnpCollateral, selectSnpChain, snpPoolAdd, snpPoolFromCertTable, type SnpPool, type SnpPoolCertificate } from '../snp/pool.js';
import { verifySnpReport, type CheckOutcome, type SnpCrlUsed } from '../snp/verify.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

const HEX_DIGIT = /^[0-9a-fA-F]$/;

/**
 * A report file is hex only when every byte is a hex digit, optionally followed by one newline
 * ("\n" or "\r\n"); anything else is taken as raw bytes. No other guessing.
 */
export function snpReportBytesFromFile(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d && end < bytes.length) end--;
  if (end === 0) return bytes;
  for (let i = 0; i < end; i++) if (!HEX_DIGIT.test(String.fromCharCode(bytes[i] as number))) return bytes;
  if (end % 2 !== 0) throw new ParseError('PARSE_BAD_ENCODING', 'the hex report file has an odd number of digits', { field: 'report' });
  return Uint8Array.from(Buffer.from(new TextDecoder().decode(bytes.subarray(0, end)), 'hex'));
}

function tcbView(raw: bigint, product: SnpProduct | undefined): Record<string, unknown> {
  return { raw: toHex(snpTcbBytes(raw)), ...(product !== undefined ? { components: snpTcbComponents(raw, product) } : {}) };
}

/** Every field of a report, as JSON-ready values (bytes as hex, u64 as hex strings). */
export function snpReportView(r: DecodedSnpReport, productHint?: SnpProduct): Record<string, unknown> {
  const product = snpProductOfCpuid(r.cpuid) ?? productHint;
  return {
    version: r.version,
    guestSvn: r.guestSvn,
    policy: { raw: `0x${r.policy.toString(16)}`, ...snpPolicyFlags(r.policy) },
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    vmpl: r.vmpl,
    signatureAlgo: r.signatureAlgo,
    currentTcb: tcbView(r.currentTcb, product),
    platformInfo: `0x${r.platformInfo.toString(16)}`,
    authorKeyEn: r.authorKeyEn,
    maskChipKey: r.maskChipKey,
    signingKey: snpSigningKeyName(r.signingKey) ?? r.signingKey,
    reportData: toHex(r.reportData),
    measurement: toHex(r.measurement),
    hostData: toHex(r.hostData),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    reportedTcb: tcbView(r.reportedTcb, product),
    ...(r.cpuid !== undefined ? { cpuid: { family: `0x${r.cpuid.family.toString(16)}`, model: `0x${r.cpuid.model.toString(16)}`, stepping: r.cpuid.stepping } } : {}),
    ...(product !== undefined ? { product } : {}),
    chipId: toHex(r.chipId),
    committedTcb: tcbView(r.committedTcb, product),
    currentVersion: `${r.currentVersion.major}.${r.currentVersion.minor}.${r.currentVersion.build}`,
    committedVersion: `${r.committedVersion.major}.${r.committedVersion.minor}.${r.committedVersion.build}`,
    launchTcb: tcbView(r.launchTcb, product),
    ...(r.launchMitVector !== undefined ? { launchMitVector: `0x${r.launchMitVector.toString(16)}` } : {}),
    ...(r.currentMitVector !== undefined ? { currentMitVector: `0x${r.currentMitVector.toString(16)}` } : {}),
    signature: { r: toHex(r.signature.r), s: toHex(r.signature.s) },
  };
}

function renderFields(view: Record<string, unknown>): string {
  return `${Object.entries(view).map(([k, v]) => `${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n')}\n`;
}

function renderFailures(failures: readonly Failure[]): string[] {
  const lines: string[] = [];
  for (const f of failures) {
    lines.push(`  ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`);
    if (f.expected !== undefined) lines.push(`    expected: ${f.expected}`);
    if (f.actual !== undefined) lines.push(`    actual:   ${f.actual}`);
  }
  return lines;
}

/** `vouch snp show <report>`: every field of the report, unverified. Exit 0, or 1 when it does not decode. */
export async function snpShowCommand(file: string, opts: { json?: boolean }, io: CliIo): Promise<number> {
  const bytes = await readArgFile(file, 'report');
  let report: DecodedSnpReport;
  try {
    report = decodeSnpReport(snpReportBytesFromFile(bytes));
  } catch (e) {
    if (!isVouchError(e)) throw e;
    const f = failureFromError(e);
    io.out(opts.json === true ? `${JSON.stringify({ parsed: false, failures: [f] }, null, 2)}\n` : `${renderFailures([f]).join('\n')}\nnot a SEV-SNP report\n`);
    return EXIT.rejected;
  }
  const view = snpReportView(report);
  if (opts.json === true) io.out(`${JSON.stringify({ parsed: true, note: 'fields are unverified: no signature was checked', report: view }, null, 2)}\n`);
  else io.out(`${renderFields(view)}(unverified: no signature was checked)\n`);
  return EXIT.ok;
}

/** Options of {@link verifySnpCommand}. */
export interface VerifySnpOptions {
  /** The report: 1184 bytes raw or hex, or an extended report (the report immediately followed by its certificate table). */
  report: string;
  /**
   * PEM/DER files or trust directories: VCEKs and VLEKs, ASKs and ASVKs, ARKs and CRLs. In a
   * directory, files ending .pem .der .crt .cer .crl and files named by a certificate-table
   * GUID (as AMD's sev-guest tools write them) are read; other entries are listed as ignored.
   */
  certs?: string | string[];
  /** The certificate table as SNP_GET_EXT_REPORT / configfs-tsm `auxblob` return it. */
  certTable?: string;
  /** Verification time (ISO 8601); default: now. */
  at?: string;
  /** A vouch policy file: its `snp` rules are appraised and decide the allowances. */
  policy?: string;
  /** The expected REPORT_DATA, 64 bytes in hex. */
  reportData?: string;
  /** Maximum CRL age in seconds (without --policy). */
  crlMaxAge?: string;
  json?: boolean;
  allowMaskedChipId?: boolean;
  allowMissingCrl?: boolean;
  /**
   * ARK fingerprints trusted in place of AMD's, for test-only roots. Not a command-line flag:
   * only a program that embeds the command can set it.
   */
  pinnedArks?: Readonly<Record<string, SnpProduct>>;
}

const CERT_EXT = /\.(pem|der|crt|cer|crl)$/i;
const TABLE_GUIDS: ReadonlySet<string> = new Set(Object.values(SNP_CERT_GUID));

/** Reads --certs files and directories into a pool; returns what a directory held that was not read. */
async function collectCerts(paths: readonly string[], start: SnpPool): Promise<{ pool: SnpPool; ignored: string[] }> {
  let pool = start;
  const ignored: string[] = [];
  const addFile = async (p: string): Promise<void> => {
    const b = await readArgFile(p, '--certs');
    pool = snpPoolAdd(pool, readSnpCollateral(b, p), p, 'certs');
  };
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (cause) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `--certs ${p}: cannot read`, { cause });
    }
    if (!isDir) {
      await addFile(p);
      continue;
    }
    for (const entry of (await readdir(p, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = join(p, entry.name);
      // Trust directories are often links into a store (as in /etc/ssl/certs): follow them.
      const isFile = entry.isFile() || (entry.isSymbolicLink() && (await stat(full).then((st) => st.isFile(), () => false)));
      if (isFile && !entry.name.startsWith('.') && (CERT_EXT.test(entry.name) || TABLE_GUIDS.has(entry.name.toLowerCase()))) await addFile(full);
      else ignored.push(full);
    }
  }
  return { pool, ignored };
}

function parseReportData(hex: string | undefined): Uint8Array | undefined {
  if (hex === undefined) return undefined;
  const h = hex.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]*$/.test(h) || h.length !== SNP_REPORT_DATA_SIZE * 2) {
    throw new MisuseError('MISUSE_ARGUMENT', `--report-data must be ${SNP_REPORT_DATA_SIZE} bytes in hex (${SNP_REPORT_DATA_SIZE * 2} hex digits)`, { actual: `${h.length} characters` });
  }
  return fromHex(h.toLowerCase(), '--report-data');
}

function parseCrlMaxAge(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = /^[1-9][0-9]{0,9}$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n > SNP_CRL_MAX_AGE_LIMIT_SECONDS) {
    throw new MisuseError('MISUSE_ARGUMENT', `--crl-max-age must be a whole number of seconds from 1 to ${SNP_CRL_MAX_AGE_LIMIT_SECONDS}`, { actual: s });
  }
  return n;
}

/** What `verify snp` reports, text or JSON. */
interface SnpCommandResult {
  readonly verified: boolean;
  readonly at: string;
  readonly signer?: 'vcek' | 'vlek';
  readonly product?: SnpProduct;
  readonly policy?: { readonly id: string; readonly digest: string };
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  readonly allowancesUsed: readonly string[];
  readonly certificates?: readonly { readonly role: string; readonly subject: string; readonly fingerprint: string; readonly source: string }[];
  readonly crl?: SnpCrlUsed & { readonly source: string };
  readonly ignored?: readonly string[];
  readonly report?: Record<string, unknown>;
}

function render(r: SnpCommandResult): string {
  const lines: string[] = [];
  for (const c of r.checks) {
    const mark = c.outcome === 'pass' ? 'PASS' : c.outcome === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`${mark}  ${c.check}${c.note !== undefined ? `  (${c.note})` : ''}`);
  }
  lines.push(...renderFailures(r.failures));
  for (const c of r.certificates ?? []) lines.push(`${c.role.padEnd(5)} ${c.subject}  (${c.source})`);
  if (r.crl !== undefined) lines.push(`crl   thisUpdate ${r.crl.thisUpdate}, nextUpdate ${r.crl.nextUpdate ?? 'none'}${r.crl.maxAgeSeconds !== undefined ? `, max age ${r.crl.maxAgeSeconds} s` : ''}  (${r.crl.source})`);
  for (const i of r.ignored ?? []) lines.push(`ignored: ${i}`);
  if (r.allowancesUsed.length > 0) lines.push(`allowances used: ${r.allowancesUsed.join(', ')}`);
  if (!r.verified) lines.push(`rejected: ${r.failures.length} failure(s)`);
  else if (r.policy !== undefined) lines.push(`verified and appraised against policy ${r.policy.id} (sha256:${r.policy.digest})`);
  else lines.push('verified (authenticity only: no policy was applied)');
  return `${lines.join('\n')}\n`;
}

function output(r: SnpCommandResult, json: boolean, io: CliIo): number {
  if (json) io.out(`${JSON.stringify(r, null, 2)}\n`);
  else {
    io.out(render(r));
    if (r.verified && r.report !== undefined) io.out(renderFields(r.report));
  }
  return r.verified ? EXIT.ok : EXIT.rejected;
}


/**
 * `vouch verify snp`: the report's signature, the AMD chain (from the report's certificate
 * table and/or --certs), the pinned ARK, the VCEK/VLEK extensions against the report,
 * revocation and the CRL's age; with --policy also the policy's `snp` rules and REPORT_DATA.
 * Exit 0 verified, 1 rejected, 2 misuse.
 */
export async function verifySnpCommand(opts: VerifySnpOptions, io: CliIo): Promise<number> {
  const now = verificationTime(opts.at);
  const expectedReportData = parseReportData(opts.reportData);
  const crlMaxAgeSeconds = parseCrlMaxAge(opts.crlMaxAge);
  const certPaths = opts.certs === undefined ? [] : Array.isArray(opts.certs) ? opts.certs : [opts.certs];
  const json = opts.json === true;

  let policy: Policy | undefined;
  if (opts.policy !== undefined) {
    if (opts.allowMaskedChipId === true || opts.allowMissingCrl === true || crlMaxAgeSeconds !== undefined) {
      throw new MisuseError('MISUSE_ARGUMENT', 'with --policy, the allowances and the CRL age come from its snp section: drop --allow-masked-chip-id, --allow-missing-crl and --crl-max-age');
    }
    policy = await loadPolicyArg(opts.policy, io);
    if (policy === undefined) return EXIT.misuse;
    // Every snp policy binds REPORT_DATA; without the expected value that check cannot run, and an
    // unrun check is not a passed one.
    if (policy.snp !== undefined && expectedReportData === undefined) {
      throw new MisuseError('SNP_REPORT_DATA_REQUIRED', `the snp rules of policy ${policy.id} check REPORT_DATA: give the expected value with --report-data (${SNP_REPORT_DATA_SIZE * 2} hex digits)`, { field: 'ATTESTATION_REPORT.REPORT_DATA' });
    }
  }
  const policyRefOut = policy !== undefined ? { id: policy.id, digest: policyDigest(policy) } : undefined;
  const rejected = (failures: Failure[], extra: Partial<SnpCommandResult> = {}): number =>
    output({ verified: false, at: now.toISOString(), ...(policyRefOut !== undefined ? { policy: policyRefOut } : {}), checks: [], failures, allowancesUsed: [], ...extra }, json, io);

  // The report, and the certificate table after it in an extended report (go-sev-guest
  // `attest -extended -outform bin`): a report is always SNP_REPORT_SIZE bytes, so the split is
  // fixed by the ABI, not guessed.
  const fileBytes = await readArgFile(opts.report, '--report');
  let reportBytes: Uint8Array;
  let tableBytes: { bytes: Uint8Array; field: string } | undefined;
  try {
    reportBytes = snpReportBytesFromFile(fileBytes);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return rejected([failureFromError(e)]);
  }
  if (reportBytes.length > SNP_REPORT_SIZE) {
    if (opts.certTable !== undefined) throw new MisuseError('MISUSE_ARGUMENT', `--report ${opts.report} is an extended report with its own certificate table; --cert-table cannot be given too`);
    tableBytes = { bytes: reportBytes.subarray(SNP_REPORT_SIZE), field: 'SNP_CERT_TABLE' };
    reportBytes = reportBytes.subarray(0, SNP_REPORT_SIZE);
  } else if (opts.certTable !== undefined) {
    tableBytes = { bytes: await readArgFile(opts.certTable, '--cert-table'), field: 'SNP_CERT_TABLE' };
  }

  let report: DecodedSnpReport;
  let pool: SnpPool = SNP_EMPTY_POOL;
  const ignored: string[] = [];
  try {
    report = decodeSnpReport(reportBytes);
    if (tableBytes !== undefined) {
      const fromTable = snpPoolFromCertTable(decodeSnpCertTable(tableBytes.bytes), tableBytes.field);
      pool = fromTable.pool;
      ignored.push(...fromTable.ignored);
    }
  } catch (e) {
    // The report and its table are evidence: bytes that do not parse are a rejection.
    if (!isVouchError(e) || e.category === 'misuse') throw e;
    return rejected([failureFromError(e)]);
  }
  try {
    const collected = await collectCerts(certPaths, pool);
    pool = collected.pool;
    ignored.push(...collected.ignored);
  } catch (e) {
    // A --certs file that is not a certificate or CRL is listed like any failure (exit 1).
    if (!isVouchError(e) || e.category === 'misuse') throw e;
    return rejected([failureFromError(e)]);
  }
  if (pool.certificates.length === 0) {
    throw new MisuseError('MISUSE_ARGUMENT', 'no certificates: give --certs (files or a trust directory), --cert-table, or an extended report that carries its certificate table');
  }
  const pins = opts.pinnedArks ?? AMD_ARK_FINGERPRINTS;
  const selection = selectSnpChain(pool, report, pins);
  if (!selection.ok) throw new MisuseError('MISUSE_ARGUMENT', `cannot choose the certificates to verify with: ${selection.problem}`);
  const { signer, leaf, intermediate, ark, crl } = selection.chain;

  const allowances = policy?.snp !== undefined
    ? snpVerifyAllowances(policy.snp)
    : {
        ...(opts.allowMaskedChipId === true ? { allowMaskedChipId: true } : {}),
        ...(opts.allowMissingCrl === true ? { allowMissingCrl: true } : {}),
        ...(crlMaxAgeSeconds !== undefined ? { crlMaxAgeSeconds } : {}),
      };
  const result = verifySnpReport(report, {
    ...(signer === 'vcek' ? { vcek: leaf.cert, ask: intermediate.cert } : { vlek: leaf.cert, asvk: intermediate.cert }),
    ark: ark.cert,
    now,
    ...(crl !== undefined ? { crl: crl.crl.der } : {}),
    ...allowances,
    ...(opts.pinnedArks !== undefined ? { pinnedArks: opts.pinnedArks } : {}),
  });

  const checks: CheckOutcome[] = [...result.checks];
  const failures: Failure[] = [...result.failures];
  const appraiseOpts = result.product !== undefined ? { product: result.product } : {};
  if (policy !== undefined) {
    if (policy.snp === undefined) {
      const f = failure('POLICY_SNP_NOT_CONFIGURED', { field: 'policy.snp', message: `policy ${policy.id} has no snp section to appraise the report with` });
      checks.push({ check: 'policy.snp', outcome: 'fail' });
      failures.push(f);
    } else {
      const a = appraiseSnp(report, policy.snp, { reportData: expectedReportData as Uint8Array }, appraiseOpts);
      const binding = a.failures.filter((f) => f.code === 'SNP_REPORT_DATA_MISMATCH');
      const rules = a.failures.filter((f) => f.code !== 'SNP_REPORT_DATA_MISMATCH');
      checks.push({ check: 'report.REPORT_DATA', outcome: binding.length === 0 ? 'pass' : 'fail' });
      checks.push({ check: 'policy.snp', outcome: rules.length === 0 ? 'pass' : 'fail' });
      failures.push(...binding, ...rules);
    }
  } else if (expectedReportData !== undefined) {
    const f = snpReportDataFailures(report, { reportData: expectedReportData });
    checks.push({ check: 'report.REPORT_DATA', outcome: f.length === 0 ? 'pass' : 'fail' });
    failures.push(...f);
  }

  const role = (c: SnpPoolCertificate, name: string) => ({ role: name, subject: c.cert.cert.subject, fingerprint: c.cert.cert.fingerprint, source: c.source });
  return output(
    {
      verified: failures.length === 0,
      at: now.toISOString(),
      signer: result.signer,
      ...(result.product !== undefined ? { product: result.product } : {}),
      ...(policyRefOut !== undefined ? { policy: policyRefOut } : {}),
      checks,
      failures,
      allowancesUsed: result.allowancesUsed,
      certificates: [role(leaf, signer), role(intermediate, signer === 'vcek' ? 'ask' : 'asvk'), role(ark, 'ark')],
      ...(result.crl !== undefined && crl !== undefined ? { crl: { ...result.crl, source: crl.source } } : {}),
      ...(ignored.length > 0 ? { ignored } : {}),
      report: snpReportView(report, result.product ?? snpProductOfName(leaf.cert.amd.productName)),
    },
    json,
    io,
  );
}
