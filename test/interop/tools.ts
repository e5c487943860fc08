/**
 * Test-only: runs tpm2-tools (an independent TPM stack) against a test swtpm. Each tool runs as
 * a child process with an argument vector (no shell) and a timeout. swtpm has no resource
 * manager, so {@link Tools.flushAll} clears the transient objects and sessions a tool leaves.
 */
import { execFile } from 'node:child_process';
import { run, type CliIo } from '../../src/cli/main.js';

/** How a tool exited and what it printed. */
export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const TOOL_TIMEOUT_MS = 20_000;

/** Runs `tool` with `args` in `cwd`, with the TCTI of the TPM it should use. Never rejects for a non-zero exit. */
export function runTool(tool: string, args: readonly string[], cwd: string, tcti: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      tool,
      args,
      { cwd, timeout: TOOL_TIMEOUT_MS, encoding: 'utf8', env: { ...process.env, TPM2TOOLS_TCTI: tcti } },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        // A non-zero exit is a result; a tool that cannot start or is killed is an error.
        if (typeof err.code === 'number' && err.killed !== true) resolve({ code: err.code, stdout, stderr });
        else reject(new Error(`${tool} ${args.join(' ')}: ${err.message}\n${stderr}`));
      },
    );
  });
}

/** tpm2-tools bound to one TPM and one working directory. */
export class Tools {
  constructor(
    private readonly tcti: () => string,
    readonly cwd: string,
  ) {}

  /** Runs a tool; whatever its exit status. */
  run(tool: string, ...args: string[]): Promise<ToolResult> {
    return runTool(tool, args, this.cwd, this.tcti());
  }

  /** Runs a tool that must succeed, then flushes what it left in the TPM. */
  async ok(tool: string, ...args: string[]): Promise<string> {
    const r = await this.run(tool, ...args);
    if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    await this.flushAll();
    return r.stdout;
  }

  /** Flushes every transient object, loaded session and saved session. */
  async flushAll(): Promise<void> {
    for (const flag of ['-t', '-l', '-s']) {
      const r = await this.run('tpm2_flushcontext', flag);
      if (r.code !== 0) throw new Error(`tpm2_flushcontext ${flag} exited ${r.code}:\n${r.stderr}`);
    }
  }
}

/** The vouch CLI run in-process: exit status and what it wrote. */
export async function vouch(...argv: string[]): Promise<ToolResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}
