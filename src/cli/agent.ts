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

/** Options of `vouch agent secret <id>`. */
export interface AgentSecretOptions extends AgentOptions {
  /** Write the secret here (mode 0600) instead of standard output. */
  out?: string;
  tpmBound?: boolean;
}

/**
 * `vouch agent secret <id>`: attest once, then fetch the secret released to this attestation's
 * bound key. The value goes to `--out` (mode 0600, written atomically) or to standard output;
 * it never appears in the JSON report or in an error. Exit 0 released, 1 refused (attestation or
 * release, every reason on standard error), 3 unavailable.
 */
export async function agentSecretCommand(secretId: string, o: AgentSecretOptions, io: CliIo): Promise<number> {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(secretId)) throw new MisuseError('MISUSE_ARGUMENT', 'the secret id must be 1..64 characters of [a-z0-9._-]', { field: 'id' });
  if (o.snpOnly === true) throw new MisuseError('MISUSE_ARGUMENT', 'agent secret needs the TPM agent (--snp-only is not supported here yet)', { field: '--snp-only' });
  if (o.json === true && o.out === undefined) throw new MisuseError('MISUSE_ARGUMENT', '--json needs --out: the secret is never printed inside the JSON report', { field: '--json' });
  const { TpmCollector } = await import('../agent/tpm.js');
  const { Agent } = await import('../agent/agent.js');
  const { VerifierRefusal } = await import('../agent/client.js');
  const tpm = TpmCollector.open(o.tcti);
  try {
    const agent = new Agent({ verifier: new VerifierClient(o.verifier), tpm, stateDir: o.stateDir, group: o.group, eventLogPath: o.eventlog === false ? null : o.eventlog, imaLogPath: o.imaLog === false ? null : o.imaLog, snp: o.snp === true ? {} : null, tdx: o.tdx === true ? {} : null });
    let result: Awaited<ReturnType<typeof agent.attestAndFetchSecret>>;
    try {
      result = await agent.attestAndFetchSecret(secretId, o.tpmBound === true ? { tpmBound: true } : {});
    } catch (e) {
      if (!(e instanceof VerifierRefusal)) throw e;
      if (o.json === true) io.out(`${JSON.stringify({ decision: 'refused', secretId, code: e.code, failures: e.failures })}\n`);
      io.err(`release of ${secretId} refused: ${e.code}: ${e.message}\n`);
      for (const f of e.failures) io.err(`  ${f.code}${f.field !== undefined ? ` ${f.field}` : ''}${f.expected !== undefined ? ` expected ${f.expected}` : ''}${f.actual !== undefined ? ` actual ${f.actual}` : ''}\n`);
      return EXIT.rejected;
    }
    const { attestation: a, secret } = result;
    if (secret === null) {
      if (o.json === true) io.out(`${JSON.stringify({ decision: 'refused', secretId, attestation: { decision: a.decision, ledger: a.ledger, failures: a.failures ?? [] } })}\n`);
      io.err(`release of ${secretId} not asked for: the attestation was refused (ledger #${a.ledger.seq})\n`);
      for (const f of a.failures ?? []) io.err(`  ${f.code}${f.field !== undefined ? ` ${f.field}` : ''}\n`);
      return EXIT.rejected;
    }
    try {
      if (o.out !== undefined) await writeSecretFile(o.out, secret.value);
      else io.out(secretText(secret.value));
    } finally {
      secret.value.fill(0);
    }
    if (o.json === true) {
      io.out(`${JSON.stringify({ decision: 'released', secretId, binding: secret.binding, out: o.out, attestation: { nodeId: a.nodeId, ledger: a.ledger }, ledger: secret.ledger, request: secret.request })}\n`);
    } else io.err(`secret ${secretId} released (${secret.binding === 'tpm' ? 'TPM-bound' : 'to the bound key'}; ledger #${secret.ledger.seq})${o.out !== undefined ? ` and written to ${o.out}` : ''}\n`);
    return EXIT.ok;
  } finally {
    tpm.close();
  }
}

/** Writes a secret with mode 0600 through a temporary file in the same directory, then renames it. */
async function writeSecretFile(path: string, value: Uint8Array): Promise<void> {
  const { open, rename, unlink } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(value);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}

/** A secret as text for standard output: UTF-8 only (a binary secret needs --out, so no byte is mangled). */
function secretText(value: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    throw new MisuseError('MISUSE_ARGUMENT', 'the secret is not UTF-8 text: write it to a file with --out', { field: '--out' });
  }
}
