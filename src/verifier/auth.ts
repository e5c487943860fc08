/**
 * Who may call the verifier's admin API: bearer tokens with a role, read from a tokens file.
 *
 * The tokens file (`tokens.json` in the data directory by default) holds only the SHA-256 of
 * each token, never the token itself, so reading the file does not let anyone call the API:
 *
 *   { "version": 1,
 *     "tokens": [ { "id": "ops-1", "role": "operator", "tenant": "acme", "resources": ["gpu"],
 *                   "sha256": "<64 hex digits>", "createdAt": 1893456000000 } ] }
 *
 * A token is `vouch_` followed by 43 base64url characters (32 random bytes); `vouch verifier
 * token add` prints it once. `tenant` and `resources` narrow what the token reaches: for the node
 * routes, a tenant-scoped token reaches only the groups assigned to that tenant, and `resources`
 * names the groups it reaches.
 *
 * Routes are protected by encapsulated fastify scopes: {@link authenticate} and
 * {@link requireRole} add hooks to the scope they are given, never a URL match.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MisuseError, ParseError, PolicyError, VerificationError } from '../lib/errors.js';

/** The roles a token can carry. */
export const ROLES = ['admin', 'operator', 'relying-party'] as const;
/** A token's role. */
export type Role = (typeof ROLES)[number];

/** Default tokens file name in the verifier's data directory. */
export const TOKENS_FILE = 'tokens.json';

/** The authenticated caller of a request. Carries no secret. */
export interface Principal {
  readonly id: string;
  readonly role: Role;
  /** The tenant the token is scoped to; absent: every tenant. */
  readonly tenant?: string;
  /** The resources (node groups, secrets) the token is scoped to; absent: every resource of its tenant. */
  readonly resources?: readonly string[];
}

/** One entry of the tokens file. */
export interface TokenEntry extends Principal {
  /** Lower-case hex SHA-256 of the token's UTF-8 bytes. */
  readonly sha256: string;
  readonly createdAt?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link authenticate} in the scopes that require a token; null elsewhere. */
    principal: Principal | null;
  }
}

const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const RESOURCE_RE = /^[a-z0-9-]{1,64}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const TOKEN_RE = /^vouch_[A-Za-z0-9_-]{43}$/;
const ENTRY_KEYS = new Set(['id', 'role', 'tenant', 'resources', 'sha256', 'createdAt']);
const MAX_TOKENS = 10_000;

function invalid(message: string, field?: string): ParseError {
  return new ParseError('AUTH_TOKENS_FILE_INVALID', `tokens file: ${message}`, field !== undefined ? { field } : {});
}

/** SHA-256 (hex) of a token's UTF-8 bytes: what the tokens file stores. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

function parseEntry(v: unknown, i: number): TokenEntry {
  const at = `tokens[${i}]`;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid('an entry is not an object', at);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!ENTRY_KEYS.has(k)) throw invalid(`unknown key ${JSON.stringify(k)}`, `${at}.${k}`);
  if (typeof o['id'] !== 'string' || !ID_RE.test(o['id'])) throw invalid('id must be 1..64 of [A-Za-z0-9._-]', `${at}.id`);
  if (!isRole(o['role'])) throw invalid(`role must be one of ${ROLES.join(', ')}`, `${at}.role`);
  if (typeof o['sha256'] !== 'string' || !HEX64_RE.test(o['sha256'])) throw invalid('sha256 must be 64 lower-case hex digits', `${at}.sha256`);
  const tenant = o['tenant'];
  if (tenant !== undefined && (typeof tenant !== 'string' || !ID_RE.test(tenant))) throw invalid('tenant must be 1..64 of [A-Za-z0-9._-]', `${at}.tenant`);
  const resources = o['resources'];
  if (resources !== undefined && (!Array.isArray(resources) || resources.length > 256 || !resources.every((r) => typeof r === 'string' && RESOURCE_RE.test(r)))) {
    throw invalid('resources must be an array of at most 256 names of [a-z0-9-]', `${at}.resources`);
  }
  const createdAt = o['createdAt'];
  if (createdAt !== undefined && (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0)) throw invalid('createdAt must be epoch milliseconds', `${at}.createdAt`);
  return {
    id: o['id'],
    role: o['role'],
    sha256: o['sha256'],
    ...(tenant !== undefined ? { tenant: tenant as string } : {}),
    ...(resources !== undefined ? { resources: [...(resources as string[])] } : {}),
    ...(createdAt !== undefined ? { createdAt: createdAt as number } : {}),
  };
}

/** Parses a tokens document strictly: version 1, known keys only, unique ids and digests. */
export function parseTokensDocument(text: string): TokenEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('not an object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'version' && k !== 'tokens') throw invalid(`unknown key ${JSON.stringify(k)}`, k);
  if (o['version'] !== 1) throw invalid('version must be 1', 'version');
  const list = o['tokens'];
  if (!Array.isArray(list) || list.length > MAX_TOKENS) throw invalid(`tokens must be an array of at most ${MAX_TOKENS} entries`, 'tokens');
  const entries = list.map(parseEntry);
  const ids = new Set<string>();
  const digests = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (ids.has(e.id)) throw invalid(`id ${e.id} appears twice`, `tokens[${i}].id`);
    if (digests.has(e.sha256)) throw invalid('a token digest appears twice', `tokens[${i}].sha256`);
    ids.add(e.id);
    digests.add(e.sha256);
  }
  return entries;
}

/** The tokens a verifier accepts, matched by digest in constant time per entry. */
export class TokenRegistry {
  readonly #entries: ReadonlyArray<{ readonly digest: Buffer; readonly principal: Principal }>;

  constructor(entries: readonly TokenEntry[]) {
    this.#entries = entries.map((e) => {
      const { sha256, createdAt: _createdAt, ...principal } = e;
      return { digest: Buffer.from(sha256, 'hex'), principal };
    });
  }

  /** An empty registry: every admin request is refused (the fail-closed default). */
  static empty(): TokenRegistry {
    return new TokenRegistry([]);
  }

  /**
   * Reads a tokens file. A missing file is an empty registry (no token works); a file that does
   * not parse is an error, so a damaged file never silently opens or closes the API.
   */
  static load(file: string): TokenRegistry {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return TokenRegistry.empty();
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `cannot read the tokens file ${file}`, { cause: e });
    }
    return new TokenRegistry(parseTokensDocument(text));
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * The principal of a presented token, or null. The token's SHA-256 is compared with every
   * entry's (timingSafeEqual, no early exit), so timing tells nothing about which entry matched.
   */
  lookup(token: string): Principal | null {
    if (!TOKEN_RE.test(token)) return null;
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | null = null;
    for (const e of this.#entries) {
      if (timingSafeEqual(digest, e.digest) && found === null) found = e.principal;
    }
    return found;
  }
}

/** A new random token (`vouch_` + base64url of 32 bytes). */
export function newToken(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): string {
  return `vouch_${Buffer.from(random(32)).toString('base64url')}`;
}

/** What {@link addToken} adds. */
export interface NewToken {
  readonly id?: string;
  readonly role: Role;
  readonly tenant?: string;
  readonly resources?: readonly string[];
}

/**
 * Adds a token to a tokens file (created when missing, mode 0600, replaced atomically) and
 * returns the token: the only time it exists outside the caller.
 */
export function addToken(file: string, t: NewToken, opts: { now: number; random?: (n: number) => Uint8Array }): { id: string; token: string } {
  if (!isRole(t.role)) throw new MisuseError('MISUSE_ARGUMENT', `--role must be one of ${ROLES.join(', ')}`, { field: 'role' });
  let text: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new MisuseError('MISUSE_FILE_UNREADABLE', `cannot read the tokens file ${file}`, { cause: e });
  }
  const entries = text === null ? [] : parseTokensDocument(text);
  const random = opts.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const token = newToken(random);
  const id = t.id ?? `tok-${Buffer.from(random(4)).toString('hex')}`;
  const entry: TokenEntry = {
    id,
    role: t.role,
    ...(t.tenant !== undefined ? { tenant: t.tenant } : {}),
    ...(t.resources !== undefined ? { resources: [...t.resources] } : {}),
    sha256: tokenDigest(token),
    createdAt: opts.now,
  };
  const next = [...entries, entry];
  // Validates the new entry (id, tenant, resources) and uniqueness like any loaded file.
  try {
    parseTokensDocument(JSON.stringify({ version: 1, tokens: next }));
  } catch (e) {
    throw new MisuseError('MISUSE_ARGUMENT', e instanceof Error ? e.message : 'invalid token', { cause: e });
  }
  // A token may be added before the verifier first ran: the data directory is created like the verifier creates it.
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify({ version: 1, tokens: next }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return { id, token };
}

/** The token of an `Authorization: Bearer <token>` header, or null (one scheme, one token). */
function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(h);
  return m?.[1] ?? null;
}

/**
 * Requires a valid bearer token in `scope` (an encapsulated plugin scope) and sets
 * `req.principal`. No token, or an unknown one: 401 AUTH_UNAUTHENTICATED. The token is never
 * logged; only the principal's id is.
 */
export function authenticate(scope: FastifyInstance, tokens: TokenRegistry): void {
  scope.addHook('onRequest', async (req, reply) => {
    const token = bearer(req);
    const principal = token === null ? null : tokens.lookup(token);
    if (principal === null) {
      reply.header('www-authenticate', 'Bearer realm="vouch"');
      req.log.info({ auth: token === null ? 'missing' : 'unknown-token' }, 'admin request refused: unauthenticated');
      throw new VerificationError('AUTH_UNAUTHENTICATED');
    }
    req.principal = principal;
  });
}

/** Requires one of `roles` in `scope` (after {@link authenticate}): 403 AUTH_ROLE_FORBIDDEN. */
export function requireRole(scope: FastifyInstance, roles: readonly Role[]): void {
  scope.addHook('onRequest', async (req) => {
    const p = req.principal;
    if (p === null) throw new VerificationError('AUTH_UNAUTHENTICATED');
    if (!roles.includes(p.role)) {
      req.log.info({ principal: p.id, role: p.role }, 'admin request refused: role');
      throw new PolicyError('AUTH_ROLE_FORBIDDEN', `role ${p.role} may not call this route (allowed: ${roles.join(', ')})`, { field: 'role', expected: roles.join(', '), actual: p.role });
    }
  });
}

/**
 * Whether `p` reaches node group `group`, whose tenant is `tenant` (undefined: the group belongs
 * to no tenant, so only an unscoped token reaches it).
 */
export function principalReachesGroup(p: Principal, group: string, tenant: string | undefined): boolean {
  if (p.tenant !== undefined && p.tenant !== tenant) return false;
  if (p.resources !== undefined && !p.resources.includes(group)) return false;
  return true;
}

/** Throws 403 AUTH_TENANT_FORBIDDEN unless `p` reaches `group`. */
export function assertReachesGroup(p: Principal, group: string, tenant: string | undefined): void {
  if (!principalReachesGroup(p, group, tenant)) {
    throw new PolicyError('AUTH_TENANT_FORBIDDEN', `token ${p.id} is not scoped to the node's group`, { field: 'tenant', ...(tenant !== undefined ? { actual: tenant } : {}) });
  }
}
