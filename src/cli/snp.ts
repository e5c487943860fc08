/**
 * `vouch snp show <report>` and `vouch verify snp --report <file> [--certs <pem|dir>]…`:
 * decoding and authenticity of SEV-SNP attestation reports (no policy: appraisal is separate).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../lib/bytes.js';
import { MisuseError, ParseError, isVouchError } from '../lib/errors.js';
import { failureFromError, type Failure } from '../lib/failure.js';
import {
  decodeSnpReport,
  snpPolicyFlags,
  snpProductOfCpuid,
  snpSigningKeyName,
  snpTcbBytes,
  snpTcbComponents,
  type DecodedSnpReport,
  type SnpProduct,
} from '../snp/abi.js';
import { parseSnpCertificate, parseSnpCertificatesPem, snpProductOfName, type SnpCertificate } from '../snp/certs.js';
import { verifySnpReport, type SnpVerification } from '../snp/verify.js';
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
  report: string;
  /** PEM/DER files or directories holding the VCEK or VLEK, the ASK or ASVK, the ARK, and optionally a CRL (*.crl). */
  certs?: string | string[];
  /** Verification time (ISO 8601); default: now. */
  at?: string;
  json?: boolean;
  allowMaskedChipId?: boolean;
  allowMissingCrl?: boolean;
}

interface Collected {
  readonly certs: SnpCertificate[];
  readonly crls: Uint8Array[];
}

const CERT_EXT = /\.(pem|der|crt|cer)$/i;

async function collect(paths: readonly string[]): Promise<Collected> {
  const certs: SnpCertificate[] = [];
  const crls: Uint8Array[] = [];
  const addFile = async (p: string): Promise<void> => {
    const b = await readArgFile(p, '--certs');
    if (/\.crl$/i.test(p)) {
      crls.push(b);
      return;
    }
    const text = new TextDecoder().decode(b);
    if (text.includes('-----BEGIN CERTIFICATE-----')) certs.push(...parseSnpCertificatesPem(text));
    else certs.push(parseSnpCertificate(b));
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
    for (const name of (await readdir(p)).sort()) {
      if (CERT_EXT.test(name) || /\.crl$/i.test(name)) await addFile(join(p, name));
    }
  }
  return { certs, crls };
}

/** Picks the leaf (VCEK/VLEK by subject CN), then its issuer and that issuer's self-issued issuer by name. */
function assemble(certs: readonly SnpCertificate[]): { leaf: SnpCertificate; kind: 'vcek' | 'vlek'; mid: SnpCertificate; ark: SnpCertificate } {
  const cn = (c: SnpCertificate): string => /CN=([^,]+)/.exec(c.cert.subject)?.[1] ?? '';
  const leaves = certs.filter((c) => cn(c) === 'SEV-VCEK' || cn(c) === 'SEV-VLEK');
  const fps = new Set(leaves.map((c) => c.cert.fingerprint));
  if (fps.size !== 1) throw new MisuseError('MISUSE_ARGUMENT', `--certs must hold exactly one VCEK or VLEK certificate (found ${fps.size})`);
  const leaf = leaves[0] as SnpCertificate;
  const mid = certs.find((c) => c.cert.subjectNameKey === leaf.cert.issuerNameKey && !c.cert.selfIssued);
  if (mid === undefined) throw new MisuseError('MISUSE_ARGUMENT', `--certs holds no certificate named "${leaf.cert.issuer}" (the ASK or ASVK)`);
  const ark = certs.find((c) => c.cert.subjectNameKey === mid.cert.issuerNameKey && c.cert.selfIssued);
  if (ark === undefined) throw new MisuseError('MISUSE_ARGUMENT', `--certs holds no self-signed "${mid.cert.issuer}" (the ARK)`);
  return { leaf, kind: cn(leaf) === 'SEV-VLEK' ? 'vlek' : 'vcek', mid, ark };
}

function render(result: SnpVerification): string {
  const lines: string[] = [];
  for (const c of result.checks) {
    const mark = c.outcome === 'pass' ? 'PASS' : c.outcome === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`${mark}  ${c.check}${c.note !== undefined ? `  (${c.note})` : ''}`);
  }
  lines.push(...renderFailures(result.failures));
  if (result.allowancesUsed.length > 0) lines.push(`allowances used: ${result.allowancesUsed.join(', ')}`);
  lines.push(result.ok ? 'verified (authenticity only: no policy was applied)' : `rejected: ${result.failures.length} failure(s)`);
  return `${lines.join('\n')}\n`;
}

/**
 * `vouch verify snp`: the report's signature, the AMD chain, the pinned ARK, the VCEK/VLEK
 * extensions against the report, and revocation. Exit 0 verified, 1 rejected, 2 misuse.
 */
export async function verifySnpCommand(opts: VerifySnpOptions, io: CliIo): Promise<number> {
  const now = opts.at === undefined ? new Date() : new Date(opts.at);
  if (Number.isNaN(now.getTime()) || (opts.at !== undefined && !/^\d{4}-\d{2}-\d{2}T/.test(opts.at))) {
    throw new MisuseError('MISUSE_ARGUMENT', '--at must be an ISO 8601 date and time (2024-01-01T00:00:00Z)');
  }
  const certPaths = opts.certs === undefined ? [] : Array.isArray(opts.certs) ? opts.certs : [opts.certs];
  if (certPaths.length === 0) throw new MisuseError('MISUSE_ARGUMENT', '--certs is required: the VCEK or VLEK, the ASK or ASVK and the ARK');
  const reportFile = await readArgFile(opts.report, '--report');
  const { certs, crls } = await collect(certPaths);
  if (crls.length > 1) throw new MisuseError('MISUSE_ARGUMENT', '--certs holds more than one CRL');
  const { leaf, kind, mid, ark } = assemble(certs);

  let report: DecodedSnpReport;
  try {
    report = decodeSnpReport(snpReportBytesFromFile(reportFile));
  } catch (e) {
    if (!isVouchError(e)) throw e;
    const failures = [failureFromError(e)];
    io.out(opts.json === true ? `${JSON.stringify({ verified: false, checks: [], failures }, null, 2)}\n` : `${renderFailures(failures).join('\n')}\nrejected: the report does not decode\n`);
    return EXIT.rejected;
  }
  const result = verifySnpReport(report, {
    ...(kind === 'vcek' ? { vcek: leaf, ask: mid } : { vlek: leaf, asvk: mid }),
    ark,
    now,
    ...(crls[0] !== undefined ? { crl: crls[0] } : {}),
    ...(opts.allowMaskedChipId === true ? { allowMaskedChipId: true } : {}),
    ...(opts.allowMissingCrl === true ? { allowMissingCrl: true } : {}),
  });
  const view = snpReportView(report, result.product ?? snpProductOfName(leaf.amd.productName));
  if (opts.json === true) {
    io.out(`${JSON.stringify({ verified: result.ok, at: now.toISOString(), signer: result.signer, product: result.product, checks: result.checks, failures: result.failures, allowancesUsed: result.allowancesUsed, report: view }, null, 2)}\n`);
  } else {
    io.out(render(result));
    if (result.ok) io.out(renderFields(view));
  }
  return result.ok ? EXIT.ok : EXIT.rejected;
}
