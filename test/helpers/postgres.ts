/**
 * A throwaway PostgreSQL server for one test file: `initdb` into a temporary directory, then
 * `pg_ctl start` on a free loopback port with fsync off (a test server: speed over durability;
 * the store still commits with synchronous_commit on).
 *
 * It uses the server binaries of Debian's `postgresql` package (/usr/lib/postgresql/<v>/bin,
 * the newest version found); it never touches the Debian-managed cluster. initdb and the server
 * refuse to run as root, so as root (this machine and CI) every server command runs as the
 * `postgres` OS user (`runuser -u postgres --`), with the temporary directory chowned to it.
 *
 * Access: local socket connections are trusted, TCP needs the superuser password
 * ({@link PostgresServer.url} carries it), so a test can also check that a wrong password
 * fails and that no message shows a password.
 *
 * {@link PostgresServer.stop} and {@link PostgresServer.restart} keep the data and the port, for
 * outage tests; {@link PostgresServer.close} stops the server and removes the directory, and an
 * exit hook does the same if a test file ends without it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Where Debian's postgresql package puts the server binaries, one folder per major version. */
const DEBIAN_PG_ROOT = '/usr/lib/postgresql';

/** A running throwaway server. */
export interface PostgresServer {
  /** postgresql:// URL of the database `vouch` (superuser, with its password, over TCP). */
  readonly url: string;
  readonly port: number;
  /** The superuser password inside {@link url}. */
  readonly password: string;
  /** The server's binary folder (e.g. /usr/lib/postgresql/15/bin). */
  readonly binDir: string;
  /** Creates another empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown: clients are disconnected); data and port are kept. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port, with the same data. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * The newest /usr/lib/postgresql/<version>/bin that holds `postgres`, `initdb` and `pg_ctl`.
 *
 * @throws Error naming the Debian package to install when there is none (tests fail, never skip)
 */
export function findPostgresBin(): string {
  const versions = existsSync(DEBIAN_PG_ROOT) ? readdirSync(DEBIAN_PG_ROOT).filter((v) => /^[0-9]+(\.[0-9]+)?$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(DEBIAN_PG_ROOT, v, 'bin');
    if (['postgres', 'initdb', 'pg_ctl'].every((f) => existsSync(join(bin, f)))) return bin;
  }
  throw new Error(
    `PostgreSQL server binaries not found (${DEBIAN_PG_ROOT}/*/bin/postgres): install Debian's postgresql package ` +
      '(apt-get install postgresql; scripts/ensure-deps.sh and .ci/run do it)',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

const asRoot = userInfo().uid === 0;

/** The uid and gid of the `postgres` OS user (root only). */
function postgresUser(): { uid: number; gid: number } {
  const out = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (out.status !== 0 || gid.status !== 0) {
    throw new Error("running as root, but there is no 'postgres' OS user to run the test server as: install Debian's postgresql package");
  }
  return { uid: Number(out.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Runs a server binary, as the postgres user when we are root; throws with its output on failure.
 * It runs in `cwd` (the server's own directory), since the test's working directory may be one the
 * postgres user cannot enter.
 */
function runPg(binDir: string, cwd: string, tool: string, args: readonly string[], timeoutMs = 60_000): string {
  const file = join(binDir, tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, [...args]];
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Starts a throwaway server with an empty database `vouch`. */
export async function startPostgres(): Promise<PostgresServer> {
  const binDir = findPostgresBin();
  const root = mkdtempSync(join(tmpdir(), 'vouch-pg-'));
  const dataDir = join(root, 'data');
  const sockDir = join(root, 'sock');
  const logFile = join(root, 'server.log');
  const pwFile = join(root, 'pw');
  const password = randomBytes(12).toString('hex');
  mkdirSync(sockDir);
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    const { uid, gid } = postgresUser();
    for (const p of [root, sockDir, pwFile]) chownSync(p, uid, gid);
  }

  let running = false;
  let removed = false;
  const port = await freePort();
  const start = (): void => {
    runPg(binDir, root, 'pg_ctl', [
      '-D', dataDir, '-l', logFile, '-w', '-t', '60',
      '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockDir} -c fsync=off -c full_page_writes=off -c max_connections=200`,
      'start',
    ]);
    running = true;
  };
  const stopNow = (mode: 'fast' | 'immediate'): void => {
    if (!running) return;
    running = false;
    runPg(binDir, root, 'pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-m', mode, 'stop']);
  };
  const cleanup = (): void => {
    try {
      stopNow('immediate');
    } finally {
      if (!removed) {
        removed = true;
        rmSync(root, { recursive: true, force: true });
      }
    }
  };
  // A test file that ends without close() (a failed beforeAll, an uncaught error) still leaves no server behind.
  process.once('exit', cleanup);

  try {
    runPg(binDir, root, 'initdb', ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwFile}`, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    start();
  } catch (e) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : '';
    cleanup();
    process.off('exit', cleanup);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
  }

  const urlOf = (db: string): string => `postgresql://postgres:${password}@127.0.0.1:${port}/${db}`;
  let dbCount = 0;
  const createDatabase = async (name?: string): Promise<string> => {
    const db = name ?? `t_${process.pid}_${++dbCount}`;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(db)) throw new Error(`bad database name ${db}`);
    const c = new pg.Client({ connectionString: urlOf('postgres') });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${db}`);
    } finally {
      await c.end();
    }
    return urlOf(db);
  };
  const url = await createDatabase('vouch');

  return {
    url,
    port,
    password,
    binDir,
    createDatabase,
    async stop() {
      stopNow('fast');
    },
    async restart() {
      if (!running) start();
    },
    async close() {
      cleanup();
      process.off('exit', cleanup);
    },
  };
}

/** The server version string (`SHOW server_version`) as a sanity check for reports. */
export function postgresVersion(binDir: string): string {
  return execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
}
