/**
 * Admin commands: `vouch verifier token add` (prints a new token once; the tokens file keeps
 * only its SHA-256) and `vouch nodes list|show|revoke` against a running verifier.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { MisuseError, UnavailableError } from '../lib/errors.js';
import { addToken, ROLES, TOKENS_FILE, type Role } from '../verifier/auth.js';
import { EXIT, type CliIo } from './main.js';

export interface TokenAddOptions {
  role: string;
  tenant?: string;
  resource: string[];
  id?: string;
  dataDir: string;
  tokensFile?: string;
}

export function tokenAddCommand(o: TokenAddOptions, io: CliIo): number {
  if (!(ROLES as readonly string[]).includes(o.role)) throw new MisuseError('MISUSE_ARGUMENT', `--role must be one of ${ROLES.join(', ')}`);
  const file = o.tokensFile ?? join(o.dataDir, TOKENS_FILE);
  const r = addToken(
    file,
    { role: o.role as Role, ...(o.id !== undefined ? { id: o.id } : {}), ...(o.tenant !== undefined ? { tenant: o.tenant } : {}), ...(o.resource.length > 0 ? { resources: o.resource } : {}) },
    { now: Date.now() },
  );
  io.err(`token ${r.id} (${o.role}) added to ${file}; it is shown only once:\n`);
  io.out(`${r.token}\n`);
  return EXIT.ok;
}

export interface NodesOptions {
  verifier: string;
  tokenFile: string;
}

async function adminCall(o: NodesOptions, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  let token: string;
  try {
    token = readFileSync(o.tokenFile, 'utf8').trim();
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `cannot read --token-file ${o.tokenFile}`, { cause: e });
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, o.verifier), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new UnavailableError('VERIFIER_UNREACHABLE', `cannot reach ${o.verifier}`, { cause: e });
  }
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function print(io: CliIo, r: { status: number; json: unknown }): Promise<number> {
  if (r.status >= 200 && r.status < 300) {
    io.out(`${JSON.stringify(r.json, null, 2)}\n`);
    return EXIT.ok;
  }
  io.err(`${JSON.stringify(r.json)}\n`);
  return r.status >= 500 ? EXIT.unavailable : r.status === 401 || r.status === 403 ? EXIT.rejected : EXIT.misuse;
}

/** Registers `verifier token add` and `nodes list|show|revoke`. */
export function registerAdminCommands(program: Command, verifier: Command, io: CliIo, setStatus: (n: number) => void): void {
  const collect = (v: string, acc: string[]): string[] => [...acc, v];
  verifier
    .command('token')
    .description('admin API tokens')
    .command('add')
    .description('add a bearer token to the tokens file and print it once')
    .requiredOption('--role <role>', ROLES.join(' | '))
    .option('--tenant <tenant>', 'the tenant the token is scoped to')
    .option('--resource <name>', 'a node group (or resource) the token is scoped to (repeatable)', collect, [])
    .option('--id <id>', 'the token id shown in logs')
    .option('--data-dir <dir>', 'the verifier data directory', '.vouch/verifier')
    .option('--tokens-file <file>', 'the tokens file (default {data-dir}/tokens.json)')
    .action((opts: TokenAddOptions) => {
      setStatus(tokenAddCommand(opts, io));
    });
  const nodes = program.command('nodes').description('nodes of a running verifier (admin API)');
  const common = (c: Command): Command => c.requiredOption('--verifier <url>', 'verifier base URL').requiredOption('--token-file <file>', 'a file holding the bearer token');
  common(nodes.command('list').description('nodes and their state')).action(async (opts: NodesOptions) => {
    setStatus(await print(io, await adminCall(opts, 'GET', '/v1/nodes')));
  });
  common(nodes.command('show <id>').description('one node and its state')).action(async (id: string, opts: NodesOptions) => {
    setStatus(await print(io, await adminCall(opts, 'GET', `/v1/nodes/${encodeURIComponent(id)}`)));
  });
  const secret = program.command('secret').description('secrets of the key broker (admin API; values are sent once and never shown again)');
  common(secret.command('put <id>').description('store or replace a secret with its release policy'))
    .requiredOption('--value-file <file>', 'the secret value (1..8192 bytes); - reads standard input')
    .option('--policy <file>', 'the release policy (JSON: groups, evidence, trustVector, policyIds, audience, tpmBound)')
    .option('--group <group>', 'a node group allowed to receive it (repeatable; a policy of groups only, without --policy)', collect, [])
    .option('--tpm-bound', 'with --group: release only TPM-bound (only the node’s TPM can recover it)')
    .option('--audience <aud>', "with --group: the audience the broker verifies artifacts as (the group policy's artifact audience)")
    .action(async (id: string, opts: NodesOptions & { valueFile: string; policy?: string; group: string[]; tpmBound?: boolean; audience?: string }) => {
      const value = readValue(opts.valueFile);
      try {
        const releasePolicy = releasePolicyFrom(opts);
        setStatus(await print(io, await adminCall(opts, 'PUT', `/v1/secrets/${encodeURIComponent(id)}`, { value: Buffer.from(value).toString('base64url'), releasePolicy })));
      } finally {
        value.fill(0);
      }
    });
  common(secret.command('list').description('secret ids and release policies (never values)')).action(async (opts: NodesOptions) => {
    setStatus(await print(io, await adminCall(opts, 'GET', '/v1/secrets')));
  });
  common(secret.command('rm <id>').description('remove a secret')).action(async (id: string, opts: NodesOptions) => {
    setStatus(await print(io, await adminCall(opts, 'DELETE', `/v1/secrets/${encodeURIComponent(id)}`)));
  });
  common(nodes.command('revoke <id>').description('revoke a node (operator)').requiredOption('--reason <text>', 'why')).action(async (id: string, opts: NodesOptions & { reason: string }) => {
    setStatus(await print(io, await adminCall(opts, 'POST', `/v1/nodes/${encodeURIComponent(id)}/revoke`, { reason: opts.reason })));
  });
}

/** The secret value from a file or standard input (`-`). */
function readValue(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file === '-' ? 0 : file));
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `cannot read --value-file ${file}`, { cause: e });
  }
}

/** The release policy of `secret put`: the --policy file's JSON, or one made of --group (and --tpm-bound). */
function releasePolicyFrom(o: { policy?: string; group: string[]; tpmBound?: boolean; audience?: string }): unknown {
  if (o.policy !== undefined) {
    if (o.group.length > 0 || o.tpmBound === true || o.audience !== undefined) throw new MisuseError('MISUSE_ARGUMENT', '--policy excludes --group, --tpm-bound and --audience (put them in the policy file)');
    let text: string;
    try {
      text = readFileSync(o.policy, 'utf8');
    } catch (e) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `cannot read --policy ${o.policy}`, { cause: e });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new MisuseError('MISUSE_ARGUMENT', `--policy ${o.policy} is not JSON`);
    }
  }
  if (o.group.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'give a release policy: --policy FILE, or --group GROUP (repeatable)');
  return { groups: o.group, ...(o.audience !== undefined ? { audience: o.audience } : {}), ...(o.tpmBound === true ? { tpmBound: true } : {}) };
}
