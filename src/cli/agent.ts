/**
 * `vouch agent start` and `vouch agent attest --once`. The TPM collector is loaded lazily, and
 * not at all with `--snp-only` (no TPM: SEV-SNP reports and the node key in the state directory).
 */
import { MisuseError } from '../lib/errors.js';
import { toBase64Url } from '../lib/bytes.js';
import { VerifierClient } from '../agent/client.js';
import type { AttestOutcome } from '../agent/agent.js';
import { EXIT, type CliIo } from './main.js';

export interface AgentOptions {
  verifier: string;
  tcti: string;
  stateDir: string;
  group: string;
  interval: string;
  once?: boolean;
  json?: boolean;
  eventlog: string | false;
  imaLog: string | false;
  snp?: boolean;
  /** Also send a TDX quote (and the CCEL when present): inside a TDX trust domain. */
  tdx?: boolean;
  /** A confidential VM without a vTPM: SEV-SNP reports and the node key alone. */
  snpOnly?: boolean;
}

function report(o: AttestOutcome | Error, io: CliIo, json: boolean): void {
  if (o instanceof Error) {
    io.err(`attestation failed: ${o.message}\n`);
    return;
  }
  if (json) {
    io.out(`${JSON.stringify({ decision: o.decision, nodeId: o.nodeId, ledger: o.ledger, artifact: o.artifact, boundKey: toBase64Url(o.boundKeySpki), failures: o.failures ?? [], missingLogs: o.missingLogs })}\n`);
    return;
  }
  io.out(`${new Date().toISOString()} ${o.nodeId}: ${o.decision} (ledger #${o.ledger.seq})\n`);
  for (const m of o.missingLogs) io.out(`  not sent: no log at ${m}\n`);
  for (const f of o.failures ?? []) io.out(`  ${f.code}${f.field !== undefined ? ` ${f.field}` : ''}${f.expected !== undefined ? ` expected ${f.expected}` : ''}${f.actual !== undefined ? ` actual ${f.actual}` : ''}\n`);
  if (o.artifact !== undefined) io.out(`  artifact: ${o.artifact}\n`);
}

export async function agentCommand(o: AgentOptions, io: CliIo): Promise<number> {
  const interval = Number(o.interval);
  if (!Number.isInteger(interval) || interval < 1) throw new MisuseError('MISUSE_ARGUMENT', '--interval must be a positive number of seconds');
  if (o.snp === true && o.tdx === true) throw new MisuseError('MISUSE_ARGUMENT', '--snp and --tdx exclude each other: a confidential VM is an SEV-SNP guest or a TDX trust domain', { field: '--tdx' });
  if (o.snpOnly === true && o.tdx === true) throw new MisuseError('MISUSE_ARGUMENT', '--snp-only and --tdx exclude each other (TDX evidence is sent next to TPM evidence)', { field: '--tdx' });
  if (o.snpOnly === true) return snpOnlyAgentCommand(o, interval, io);
  const { TpmCollector } = await import('../agent/tpm.js');
  const { Agent } = await import('../agent/agent.js');
  const tpm = TpmCollector.open(o.tcti);
  try {
    const agent = new Agent({ verifier: new VerifierClient(o.verifier), tpm, stateDir: o.stateDir, group: o.group, eventLogPath: o.eventlog === false ? null : o.eventlog, imaLogPath: o.imaLog === false ? null : o.imaLog, snp: o.snp === true ? {} : null, tdx: o.tdx === true ? {} : null });
    if (o.once === true) {
      const outcome = await agent.attestOnce();
      report(outcome, io, o.json === true);
      return outcome.decision === 'affirming' ? EXIT.ok : EXIT.rejected;
    }
    const ctl = new AbortController();
    const stop = (): void => ctl.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await agent.run(interval * 1000, ctl.signal, (x) => report(x, io, o.json === true));
    return EXIT.ok;
  } finally {
    tpm.close();
  }
}

async function snpOnlyAgentCommand(o: AgentOptions, interval: number, io: CliIo): Promise<number> {
  const { SnpOnlyAgent } = await import('../agent/snp-agent.js');
  const agent = new SnpOnlyAgent({ verifier: new VerifierClient(o.verifier), stateDir: o.stateDir, group: o.group });
  if (o.once === true) {
    const outcome = await agent.attestOnce();
    report(outcome, io, o.json === true);
    return outcome.decision === 'affirming' ? EXIT.ok : EXIT.rejected;
  }
  const ctl = new AbortController();
  const stop = (): void => ctl.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await agent.run(interval * 1000, ctl.signal, (x) => report(x, io, o.json === true));
  return EXIT.ok;
}
