/**
 * The runtime (IMA) section of a policy: TypeBox schema and its compiled form.
 *
 * ```yaml
 * allowed:                      # path → digests allowed for it
 *   /usr/bin/bash: ["sha256:5ad8…", "c903…"]   # "algo:hex", or bare hex (any algorithm of that size)
 * excludes: ["/tmp/", "/var/log/**", "/home/*\/.cache"]
 * trustedKeys: ["-----BEGIN PUBLIC KEY-----…"]  # PEM public keys or certificates (RSA, ECDSA P-256/P-384)
 * requireSignatures: false      # optional; true: only files signed by a trusted key pass
 * ```
 *
 * Exclusion patterns: a pattern with `*` or `?` is a glob over the whole path (`*` and `?` do
 * not cross "/", `**` does); a pattern ending in "/" is a prefix; any other pattern matches the
 * path itself and everything below it ("/tmp" matches "/tmp" and "/tmp/x", not "/tmpx").
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ParseError } from '../../lib/errors.js';
import { importImaTrustedKey, type ImaTrustedKey } from './signature.js';

/** An allowed digest: lower-case hex of 16..64 bytes, optionally prefixed by the kernel algorithm name. */
export const IMA_DIGEST_PATTERN = '^(?:[a-z0-9-]{2,11}:)?(?:[0-9a-f]{2}){16,64}$';

/** TypeBox schema of the runtime-policy section (unknown keys are an error at every level). */
export const ImaRuntimePolicySchema = Type.Object(
  {
    allowed: Type.Record(
      Type.String({ minLength: 1, maxLength: 4095 }),
      Type.Array(Type.String({ pattern: IMA_DIGEST_PATTERN }), { minItems: 1, maxItems: 1024, uniqueItems: true }),
      { additionalProperties: false, description: 'path (or ima-buf buffer name) → allowed digests' },
    ),
    excludes: Type.Array(Type.String({ minLength: 1, maxLength: 4095 }), { maxItems: 4096, uniqueItems: true, description: 'paths ignored by the appraisal: globs, prefixes ending in "/", or a path and its subtree' }),
    trustedKeys: Type.Array(Type.String({ minLength: 1, maxLength: 65536 }), { maxItems: 256, uniqueItems: true, description: 'PEM public keys or certificates whose IMA signatures are trusted' }),
    requireSignatures: Type.Optional(Type.Boolean({ description: 'true: only files with a valid signature by a trusted key pass' })),
  },
  { additionalProperties: false },
);

/** The runtime-policy section. */
export type ImaRuntimePolicy = Static<typeof ImaRuntimePolicySchema>;

const GLOB_CHARS = /[*?]/;

function globSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*' && pattern[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else out += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return out;
}

/**
 * A runtime policy ready to appraise with: schema-checked, keys imported (key id → keys),
 * exclusions compiled. Build it once per policy version and reuse it.
 */
export class CompiledImaPolicy {
  readonly #allowed: ReadonlyMap<string, ReadonlySet<string>>;
  readonly #prefixes: readonly string[];
  readonly #exact: ReadonlySet<string>;
  readonly #glob: RegExp | undefined;
  /** Trusted keys by key id (hex of the 4-byte id). */
  readonly keys: ReadonlyMap<string, readonly ImaTrustedKey[]>;
  readonly requireSignatures: boolean;

  /** @throws ParseError POLICY_INVALID (schema, PEM) */
  constructor(policy: ImaRuntimePolicy) {
    if (!Value.Check(ImaRuntimePolicySchema, policy)) {
      const first = Value.Errors(ImaRuntimePolicySchema, policy).First();
      const at = first === undefined ? '/' : first.path === '' ? '/' : first.path;
      throw new ParseError('POLICY_INVALID', `runtime policy ${at}: ${first?.message ?? 'does not match the schema'}`, { field: at });
    }
    const allowed = new Map<string, Set<string>>();
    for (const [path, digests] of Object.entries(policy.allowed)) allowed.set(path, new Set(digests));
    this.#allowed = allowed;
    const prefixes: string[] = [];
    const exact = new Set<string>();
    const globs: string[] = [];
    for (const p of policy.excludes) {
      if (GLOB_CHARS.test(p)) globs.push(globSource(p));
      else if (p.endsWith('/')) prefixes.push(p);
      else {
        exact.add(p);
        prefixes.push(`${p}/`);
      }
    }
    this.#prefixes = prefixes;
    this.#exact = exact;
    this.#glob = globs.length === 0 ? undefined : new RegExp(`^(?:${globs.join('|')})$`, 's');
    const keys = new Map<string, ImaTrustedKey[]>();
    policy.trustedKeys.forEach((pem, i) => {
      const k = importImaTrustedKey(pem, `trustedKeys[${i}]`);
      const list = keys.get(k.keyId) ?? [];
      list.push(k);
      keys.set(k.keyId, list);
    });
    this.keys = keys;
    this.requireSignatures = policy.requireSignatures === true;
  }

  /** True when `path` is excluded from the appraisal. */
  isExcluded(path: string): boolean {
    if (this.#exact.has(path)) return true;
    for (const p of this.#prefixes) if (path.startsWith(p)) return true;
    return this.#glob !== undefined && this.#glob.test(path);
  }

  /**
   * Whether the policy lists `path`, and if so whether `algorithm:hex` (or the bare hex) is
   * among its digests.
   */
  allows(path: string, algorithm: string, hex: string): 'allowed' | 'digest-not-allowed' | 'path-not-allowed' {
    const set = this.#allowed.get(path);
    if (set === undefined) return 'path-not-allowed';
    return set.has(`${algorithm}:${hex}`) || set.has(hex) ? 'allowed' : 'digest-not-allowed';
  }

  /** The digests the policy allows for `path` (for messages). */
  allowedFor(path: string): readonly string[] {
    return [...(this.#allowed.get(path) ?? [])];
  }
}

/** Compiles a runtime policy (see {@link CompiledImaPolicy}). */
export function compileImaPolicy(policy: ImaRuntimePolicy): CompiledImaPolicy {
  return new CompiledImaPolicy(policy);
}
