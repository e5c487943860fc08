/**
 * `vouch verify tdx --quote <file> [--collateral <file|dir>] [--at <ISO time>]
 * [--policy <file> --report-data <hex>] [--allow-trailing-data] [--allow-missing-crl] [--json]`:
 * authenticity of an Intel TDX quote with its collateral (src/tdx/verify.ts) and, with a
 * policy, appraisal against its `tdx` rules (src/tdx/appraise.ts).
 *
 * Without --policy the command checks authenticity only (signatures, PCK chain, revocation,
 * collateral, TCB status and QE Identity) and prints the decoded claims and the TCB status; with
 * --policy it also appraises, and the policy (not the flags) decides the allowances. The rules
 * bind REPORTDATA, so --report-data is required with a policy (TDX_REPORT_DATA_REQUIRED, exit 2);
 * given alone it is checked alone. Exit 0 verified, 1 rejected, 2 misuse. The JSON has the shape
 * of `verify snp`: verified, at, policy, checks, failures, allowancesUsed, then tcb, pck and the
 * decoded quote.
 */
import { fromHex, toHex } from '../lib/bytes.js';
import { MisuseError, isVouchError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { loadPolicyArg, verificationTime } from './verify-args.js';
import { policyDigest } from '../policy/digest.js';
import type { Policy } from '../policy/schema.js';
import { decodeTdxQuote, type DecodedTdxQuote } from '../tdx/abi.js';
import { TDX_REPORT_DATA_SIZE, appraiseTdx, tdxReportDataFailures } from '../tdx/appraise.js';
import { readCollateral, type TdxCollateral } from '../tdx/collateral.js';
import { tdxVerifyAllowances } from '../tdx/policy.js';
import type { TcbStatus } from '../tdx/tcb.js';
import { verifyTdxQuote, type CheckOutcome } from '../tdx/verify.js';
import { EXIT, readArgFile, type CliIo } from './main.js';
import { tdxQuoteView } from './tdx-show.js';

/** Options of {@link verifyTdxCommand}. */
export interface VerifyTdxOptions {
  /** The quote file (raw bytes, as configfs-tsm `outblob` or a capture tool writes it). */
  quote: string;
  /** A collateral directory (tcb_info.json, qe_identity.json, pck_crl.der, … as PCS serves them) or a dcap-qvl collateral.json. */
  collateral?: string;
  /** Verification time (ISO 8601); default: now. */
  at?: string;
  /** A vouch policy file: its `tdx` rules are appraised and decide the allowances. */
  policy?: string;
  /** The expected REPORTDATA, 64 bytes in hex. */
  reportData?: string;
  /** Accept bytes other than zero after the signature data (never interpreted). */
  allowTrailingData?: boolean;
  /** Accept a missing PCK CRL or Root CA CRL (without --policy; recorded). */
  allowMissingCrl?: boolean;
  json?: boolean;
  /**
   * Root fingerprints trusted in place of Intel's, for test-only roots. Not a command-line flag:
   * only a program that embeds the command can set it.
   */
  pinnedRootFingerprints?: readonly string[];
}

/** What `verify tdx` reports, text or JSON. */
interface TdxCommandResult {
  readonly verified: boolean;
  readonly at: string;
  readonly policy?: { readonly id: string; readonly digest: string };
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  readonly allowancesUsed: readonly string[];
  readonly tcb?: { readonly status?: TcbStatus; readonly advisoryIds: readonly string[]; readonly fmspc?: string; readonly tcbEvaluationDataNumber?: number };
  readonly pck?: { readonly ca: string; readonly subject: string; readonly fingerprint: string; readonly fmspc: string };
  readonly quote?: Record<string, unknown>;
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

function render(r: TdxCommandResult): string {
  const lines: string[] = [];
  for (const c of r.checks) {
    const mark = c.outcome === 'pass' ? 'PASS' : c.outcome === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`${mark}  ${c.check}${c.note !== undefined ? `  (${c.note})` : ''}`);
  }
  lines.push(...renderFailures(r.failures));
  if (r.pck !== undefined) lines.push(`pck   ${r.pck.subject}  (${r.pck.ca} CA, FMSPC ${r.pck.fmspc})`);
  if (r.tcb !== undefined) {
    lines.push(`tcb   status ${r.tcb.status ?? 'none'}${r.tcb.advisoryIds.length > 0 ? `, advisories ${r.tcb.advisoryIds.join(' ')}` : ''}${r.tcb.tcbEvaluationDataNumber !== undefined ? ` (TCB Info evaluation ${r.tcb.tcbEvaluationDataNumber})` : ''}`);
  }
  if (r.allowancesUsed.length > 0) lines.push(`allowances used: ${r.allowancesUsed.join(', ')}`);
  if (!r.verified) lines.push(`rejected: ${r.failures.length} failure(s)`);
  else if (r.policy !== undefined) lines.push(`verified and appraised against policy ${r.policy.id} (sha256:${r.policy.digest})`);
  else lines.push('verified (authenticity only: no policy was applied)');
  return `${lines.join('\n')}\n`;
}

function output(r: TdxCommandResult, json: boolean, io: CliIo): number {
  if (json) io.out(`${JSON.stringify(r, null, 2)}\n`);
  else io.out(render(r));
  return r.verified ? EXIT.ok : EXIT.rejected;
}

function parseReportData(hex: string | undefined): Uint8Array | undefined {
  if (hex === undefined) return undefined;
  const h = hex.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]*$/.test(h) || h.length !== TDX_REPORT_DATA_SIZE * 2) {
    throw new MisuseError('MISUSE_ARGUMENT', `--report-data must be ${TDX_REPORT_DATA_SIZE} bytes in hex (${TDX_REPORT_DATA_SIZE * 2} hex digits)`, { actual: `${h.length} characters` });
  }
  return fromHex(h.toLowerCase(), '--report-data');
}


/** `vouch verify tdx`. Exit 0 verified, 1 rejected, 2 misuse. */
export async function verifyTdxCommand(opts: VerifyTdxOptions, io: CliIo): Promise<number> {
  const now = verificationTime(opts.at);
  const expectedReportData = parseReportData(opts.reportData);
  const json = opts.json === true;

  let policy: Policy | undefined;
  if (opts.policy !== undefined) {
    if (opts.allowMissingCrl === true) throw new MisuseError('MISUSE_ARGUMENT', 'with --policy, the allowances come from its tdx section: drop --allow-missing-crl');
    policy = await loadPolicyArg(opts.policy, io);
    if (policy === undefined) return EXIT.misuse;
    // Every tdx policy binds REPORTDATA; without the expected value that check cannot run, and an
    // unrun check is not a passed one.
    if (policy.tdx !== undefined && expectedReportData === undefined) {
      throw new MisuseError('TDX_REPORT_DATA_REQUIRED', `the tdx rules of policy ${policy.id} check REPORTDATA: give the expected value with --report-data (${TDX_REPORT_DATA_SIZE * 2} hex digits)`, { field: 'TD_REPORT.REPORTDATA' });
    }
  }
  const policyRefOut = policy !== undefined ? { id: policy.id, digest: policyDigest(policy) } : undefined;
  const rejected = (failures: Failure[]): number =>
    output({ verified: false, at: now.toISOString(), ...(policyRefOut !== undefined ? { policy: policyRefOut } : {}), checks: [], failures, allowancesUsed: [] }, json, io);

  const bytes = await readArgFile(opts.quote, '--quote');
  let quote: DecodedTdxQuote;
  let collateral: TdxCollateral = {};
  try {
    quote = decodeTdxQuote(bytes, { trailing: opts.allowTrailingData === true ? 'any' : 'zeros' });
    if (opts.collateral !== undefined) collateral = await readCollateral(opts.collateral);
  } catch (e) {
    // The quote and the collateral are evidence: bytes that do not parse are a rejection.
    if (!isVouchError(e) || e.category === 'misuse') throw e;
    return rejected([failureFromError(e)]);
  }

  const allowMissingCrl = policy?.tdx !== undefined ? tdxVerifyAllowances(policy.tdx).allowMissingCrl : opts.allowMissingCrl === true;
  const v = verifyTdxQuote(quote, {
    now,
    collateral,
    ...(allowMissingCrl ? { allowMissingCrl: true } : {}),
    ...(opts.pinnedRootFingerprints !== undefined ? { pinnedRootFingerprints: opts.pinnedRootFingerprints } : {}),
  });

  const checks: CheckOutcome[] = [...v.checks];
  const failures: Failure[] = [...v.failures];
  if (policy !== undefined) {
    if (policy.tdx === undefined) {
      checks.push({ check: 'policy.tdx', outcome: 'fail' });
      failures.push(failure('POLICY_TDX_NOT_CONFIGURED', { field: 'policy.tdx', message: `policy ${policy.id} has no tdx section to appraise the quote with` }));
    } else {
      const a = appraiseTdx(v, policy.tdx, { reportData: expectedReportData as Uint8Array });
      const binding = a.failures.filter((f) => f.code === 'TDX_REPORT_DATA_MISMATCH');
      const rules = a.failures.filter((f) => f.code !== 'TDX_REPORT_DATA_MISMATCH');
      checks.push({ check: 'report.REPORTDATA', outcome: binding.length === 0 ? 'pass' : 'fail' });
      checks.push({ check: 'policy.tdx', outcome: rules.length === 0 ? 'pass' : 'fail' });
      failures.push(...binding, ...rules);
    }
  } else if (expectedReportData !== undefined) {
    const f = tdxReportDataFailures(v.report, { reportData: expectedReportData });
    checks.push({ check: 'report.REPORTDATA', outcome: f.length === 0 ? 'pass' : 'fail' });
    failures.push(...f);
  }

  return output(
    {
      verified: failures.length === 0,
      at: now.toISOString(),
      ...(policyRefOut !== undefined ? { policy: policyRefOut } : {}),
      checks,
      failures,
      allowancesUsed: v.allowancesUsed,
      tcb: {
        ...(v.tcb.status !== undefined ? { status: v.tcb.status } : {}),
        advisoryIds: v.tcb.advisoryIds,
        ...(v.tcb.fmspc !== undefined ? { fmspc: v.tcb.fmspc } : {}),
        ...(v.tcb.tcbEvaluationDataNumber !== undefined ? { tcbEvaluationDataNumber: v.tcb.tcbEvaluationDataNumber } : {}),
      },
      ...(v.pck !== undefined ? { pck: { ca: v.pck.ca, subject: v.pck.cert.subject, fingerprint: v.pck.cert.fingerprint, fmspc: toHex(v.pck.sgx.fmspc) } } : {}),
      quote: tdxQuoteView(quote),
    },
    json,
    io,
  );
}
