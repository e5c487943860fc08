/**
 * Policy loading: text → strict plain value → schema check (every error, with its JSON path)
 * → cross-field checks → normalised, frozen {@link Policy}.
 *
 * All refusals are {@link PolicyInvalidError} (code POLICY_INVALID, category 'malformed',
 * HTTP 400), carrying every problem found, not only the first.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { MisuseError, ParseError, type ErrorCategory, type ErrorCode, type ErrorDetail } from '../lib/errors.js';
import {
  AK_ALGORITHMS,
  BANK_NAMES,
  PolicyDocumentSchema,
  type AkAlgorithm,
  type BankName,
  type MeasuredBootPolicy,
  type RuntimePolicy,
  type PcrAllowed,
  type Policy,
  type PolicyDocument,
} from './schema.js';
import { POLICY_MAX_CHARS, readPolicyText, type PolicyFormat } from './text.js';
import { tdxRules } from '../tdx/policy.js';

/** One problem in a policy document: a JSON pointer into the document and what is wrong. */
export interface PolicyIssue {
  /** JSON pointer (RFC 6901) of the offending value, "/" for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** A policy document that does not parse or validate; `issues` lists every problem. */
export class PolicyInvalidError extends ParseError {
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[], source?: string) {
    const first = issues[0];
    const where = source === undefined ? 'policy' : `policy ${source}`;
    const list = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    super('POLICY_INVALID', `${where} is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}): ${list}`, first === undefined ? {} : { field: first.path });
    this.issues = issues;
  }

  override toJSON(): { code: ErrorCode; category: ErrorCategory; message: string; issues: readonly PolicyIssue[] } & ErrorDetail {
    return { ...super.toJSON(), issues: this.issues };
  }
}

/** Most issues reported for one document (the rest are summarised). */
const MAX_ISSUES = 50;

/**
 * Parses and validates a policy written as YAML 1.2 or JSON.
 * @throws PolicyInvalidError POLICY_INVALID
 */
export function parsePolicy(text: string, format: PolicyFormat): Policy {
  let value: unknown;
  try {
    value = readPolicyText(text, format);
  } catch (e) {
    if (e instanceof ParseError && e.code === 'POLICY_INVALID') {
      throw new PolicyInvalidError([{ path: e.field ?? '/', message: e.message }]);
    }
    throw e;
  }
  return validatePolicy(value);
}

/**
 * Validates an already-parsed value (for example a request body) as a policy document.
 * @throws PolicyInvalidError POLICY_INVALID
 */
export function validatePolicy(value: unknown): Policy {
  // Cross-field rules run even when the schema fails, so one pass reports every problem.
  const issues = [...schemaIssues(PolicyDocumentSchema, value), ...crossFieldIssues(value)];
  if (issues.length > 0) throw new PolicyInvalidError(cap(issues));
  return normalise(value as PolicyDocument);
}

/**
 * Reads a policy file; the format follows the extension (`.yaml`, `.yml`, `.json`).
 * @throws MisuseError MISUSE_FILE_UNREADABLE, MISUSE_UNSUPPORTED_FORMAT
 * @throws PolicyInvalidError POLICY_INVALID
 */
export async function loadPolicyFile(path: string): Promise<Policy> {
  const ext = extname(path).toLowerCase();
  const format: PolicyFormat | undefined = ext === '.yaml' || ext === '.yml' ? 'yaml' : ext === '.json' ? 'json' : undefined;
  if (format === undefined) {
    throw new MisuseError('MISUSE_UNSUPPORTED_FORMAT', `policy file ${path} must end in .yaml, .yml or .json`, { field: 'path', actual: ext || '(none)' });
  }
  let bytes: Buffer;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new MisuseError('MISUSE_FILE_UNREADABLE', `policy file ${path} is not a regular file`, { field: 'path' });
    // Size checked before reading: UTF-8 needs at most 4 bytes per UTF-16 code unit.
    if (st.size > POLICY_MAX_CHARS * 4) throw new PolicyInvalidError([{ path: '/', message: `file is larger than ${POLICY_MAX_CHARS * 4} bytes` }], path);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof MisuseError || e instanceof PolicyInvalidError) throw e;
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `policy file ${path} cannot be read`, { field: 'path', cause: e });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PolicyInvalidError([{ path: '/', message: 'file is not valid UTF-8' }], path);
  }
  try {
    return parsePolicy(text, format);
  } catch (e) {
    if (e instanceof PolicyInvalidError) throw new PolicyInvalidError(e.issues, path);
    throw e;
  }
}

function cap(issues: PolicyIssue[]): PolicyIssue[] {
  if (issues.length <= MAX_ISSUES) return issues;
  return [...issues.slice(0, MAX_ISSUES), { path: '/', message: `and ${issues.length - MAX_ISSUES} more problems` }];
}

// --- schema errors ---------------------------------------------------------------------------

/** Every schema error of `value`, each with its JSON path; unions are explained, not just named. */
function schemaIssues(schema: TSchema, value: unknown): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string): void => {
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ path: path === '' ? '/' : path, message });
  };
  const missing = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    // A missing property yields "Expected required property" and then a type error for the
    // same undefined value; the first says it all.
    if (e.value === undefined) {
      if (missing.has(e.path)) continue;
      missing.add(e.path);
    }
    addError(e, add);
  }
  return out;
}

/**
 * A union error says only "Expected union value". Where one branch fails deeper inside the
 * value (a bad digest inside a list), that deeper error is the useful one; otherwise the
 * union is described by its branches.
 */
function addError(e: ValueError, add: (path: string, message: string) => void): void {
  if (e.errors.length > 0) {
    const deeper: ValueError[] = [];
    for (const branch of e.errors) for (const sub of branch) if (sub.path.length > e.path.length) deeper.push(sub);
    if (deeper.length > 0) {
      for (const sub of deeper) addError(sub, add);
      return;
    }
    add(e.path, `expected ${describeUnion(e.schema)}, got ${describeValue(e.value)}`);
    return;
  }
  const description = (e.schema as { description?: unknown }).description;
  if (typeof description === 'string' && description.startsWith('lower-case hex') && typeof e.value === 'string') {
    add(e.path, `expected ${description}, got ${e.value.length} characters${/^[0-9a-f]*$/.test(e.value) ? '' : ' that are not all lower-case hex digits'}`);
    return;
  }
  add(e.path, e.message === 'Unexpected property' ? 'unknown key (not part of the vouch/v1 policy schema)' : e.message);
}

function describeUnion(schema: TSchema): string {
  const anyOf: unknown = (schema as { anyOf?: unknown }).anyOf;
  if (!Array.isArray(anyOf)) return 'a different value';
  return anyOf
    .map((s: unknown) => {
      const x = s as { const?: unknown; type?: unknown };
      if (x.const !== undefined) return JSON.stringify(x.const);
      if (x.type === 'array') return 'a list';
      return typeof x.type === 'string' ? `a ${x.type}` : 'a value';
    })
    .join(' or ');
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

// --- cross-field checks ------------------------------------------------------------------------

/**
 * Rules the schema cannot express. An unset check is not a passed check: a required bank
 * must list its PCRs, and PCRs of a bank that is not required would never be enforced.
 */
function crossFieldIssues(value: unknown): PolicyIssue[] {
  if (!isRecord(value)) return [];
  // A policy without TPM rules is a policy for SNP-only nodes: it must have SNP rules, and it
  // cannot have rules that only a TPM quote can satisfy.
  if (value['tpm'] === undefined) {
    const out: PolicyIssue[] = [];
    if (value['snp'] === undefined && value['tdx'] === undefined) out.push({ path: '/tpm', message: 'a policy needs tpm rules, snp or tdx rules (a policy for confidential VMs without a TPM), or both' });
    for (const k of ['measuredBoot', 'runtime']) {
      if (value[k] !== undefined) out.push({ path: `/${k}`, message: `${k} rules are checked against a TPM quote and need tpm rules` });
    }
    return out;
  }
  const tpm = value['tpm'];
  if (!isRecord(tpm) || !Array.isArray(tpm['banks']) || !isRecord(tpm['pcrs'])) return [];
  const banks = tpm['banks'].filter((b): b is BankName => typeof b === 'string' && (BANK_NAMES as readonly string[]).includes(b));
  const pcrs = tpm['pcrs'];
  const out: PolicyIssue[] = [];
  for (const bank of BANK_NAMES) {
    if (banks.includes(bank) && pcrs[bank] === undefined) {
      out.push({ path: `/tpm/pcrs/${bank}`, message: `bank ${bank} is required by /tpm/banks but lists no PCRs; list each PCR with its allowed values or "any"` });
    }
    if (pcrs[bank] !== undefined && !banks.includes(bank)) {
      out.push({ path: `/tpm/pcrs/${bank}`, message: `bank ${bank} lists PCRs but is not named in /tpm/banks, so they would never be checked` });
    }
  }
  // Every PCR the event log must prove is quoted: listed in tpm.pcrs of every required bank.
  const mb = isRecord(value) ? value['measuredBoot'] : undefined;
  if (isRecord(mb) && Array.isArray(mb['pcrs'])) {
    for (const pcr of mb['pcrs']) {
      for (const bank of banks) {
        const listed = pcrs[bank];
        if (isRecord(listed) && listed[String(pcr)] === undefined) {
          out.push({ path: '/measuredBoot/pcrs', message: `PCR ${String(pcr)} must be listed in /tpm/pcrs/${bank} (with "any" or values) so that it is quoted` });
        }
      }
    }
  }
  // The IMA replay is checked against PCR 10, and boot_aggregate against PCRs 0-7: quoted.
  const rt = isRecord(value) ? value['runtime'] : undefined;
  if (isRecord(rt)) {
    const need = rt['bootAggregate'] === 'required' ? [10, 0, 1, 2, 3, 4, 5, 6, 7] : [10];
    for (const bank of banks) {
      const listed = pcrs[bank];
      if (!isRecord(listed)) continue;
      const missing = need.filter((p) => listed[String(p)] === undefined);
      if (missing.length > 0) {
        out.push({ path: '/runtime', message: `PCR ${missing.join(', ')} must be listed in /tpm/pcrs/${bank} (with "any" or values) so that ${missing.includes(10) ? 'the IMA replay' : 'boot_aggregate'} can be checked against the quote` });
      }
    }
  }
  return out;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

// --- normalisation -------------------------------------------------------------------------------

function normaliseTpm(docTpm: NonNullable<PolicyDocument['tpm']>): NonNullable<Policy['tpm']> {
  const banks = BANK_NAMES.filter((b) => docTpm.banks.includes(b));
  const docPcrs = docTpm.pcrs as Partial<Record<BankName, Record<string, 'any' | string[]>>>;
  const pcrs: Partial<Record<BankName, Record<string, PcrAllowed>>> = {};
  for (const bank of banks) {
    const src = docPcrs[bank] ?? {};
    const indices = Object.keys(src).map(Number).sort((a, b) => a - b);
    const m: Record<string, PcrAllowed> = {};
    for (const i of indices) {
      const allowed = src[String(i)];
      if (allowed === undefined) continue;
      m[String(i)] = allowed === 'any' ? 'any' : [...allowed].sort();
    }
    pcrs[bank] = m;
  }
  const akAlgorithms: AkAlgorithm[] = AK_ALGORITHMS.filter((a) => (docTpm.akAlgorithms ?? AK_ALGORITHMS).includes(a));
  return { banks, pcrs, akAlgorithms };
}

function normalise(doc: PolicyDocument): Policy {
  const policy: Policy = {
    apiVersion: doc.apiVersion,
    kind: doc.kind,
    id: doc.id,
    ...(doc.description !== undefined ? { description: doc.description } : {}),
    ...(doc.tpm !== undefined ? { tpm: normaliseTpm(doc.tpm) } : {}),
    ...(doc.measuredBoot !== undefined ? { measuredBoot: normaliseMeasuredBoot(doc.measuredBoot) } : {}),
    ...(doc.runtime !== undefined ? { runtime: normaliseRuntime(doc.runtime) } : {}),
    ...(doc.snp !== undefined ? { snp: normaliseSets(doc.snp) } : {}),
    ...(doc.tdx !== undefined ? { tdx: normaliseSets(tdxRules(doc.tdx)) } : {}),
    artifact: {
      lifetimeSeconds: doc.artifact.lifetimeSeconds,
      ...(doc.artifact.audience !== undefined ? { audience: [...doc.artifact.audience].sort() } : {}),
    },
  };
  return deepFreeze(policy);
}

/** Lists of scalars sorted (they are sets), recursively, so equivalent documents digest alike. */
function normaliseSets<T>(v: T): T {
  if (Array.isArray(v)) return [...v].map(normaliseSets).sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0)) as T;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) out[k] = normaliseSets((v as Record<string, unknown>)[k]);
    return out as T;
  }
  return v;
}

/** Sorted sets, so equivalent documents digest alike. */
function normaliseRuntime(r: RuntimePolicy): RuntimePolicy {
  const allowed: Record<string, string[]> = {};
  for (const path of Object.keys(r.ima.allowed).sort()) allowed[path] = [...(r.ima.allowed[path] ?? [])].sort();
  return {
    bootAggregate: r.bootAggregate,
    ima: {
      allowed,
      excludes: [...r.ima.excludes].sort(),
      trustedKeys: [...r.ima.trustedKeys].sort(),
      requireSignatures: r.ima.requireSignatures ?? false,
    },
  };
}

/** Sorted sets, so equivalent documents digest alike. */
function normaliseMeasuredBoot(m: MeasuredBootPolicy): MeasuredBootPolicy {
  const sorted = (xs: readonly string[] | undefined): string[] | undefined => (xs === undefined ? undefined : [...xs].sort());
  const opt = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> => (v === undefined ? {} : ({ [k]: v } as Record<K, V>));
  return {
    pcrs: [...m.pcrs].sort((a, b) => a - b),
    quirks: [...(m.quirks ?? [])].sort(),
    secureBoot: m.secureBoot,
    db: m.db === 'any' ? 'any' : { ...opt('require', sorted(m.db.require)), ...opt('forbid', sorted(m.db.forbid)) },
    dbx:
      m.dbx === 'any'
        ? 'any'
        : { ...opt('requireHashes', sorted(m.dbx.requireHashes)), ...opt('requireCertificates', sorted(m.dbx.requireCertificates)), ...opt('minHashes', m.dbx.minHashes) },
    bootLoaders: m.bootLoaders === 'any' ? 'any' : [...m.bootLoaders].sort(),
    kernels: m.kernels === 'any' ? 'any' : [...m.kernels].sort(),
    kernelCmdline: m.kernelCmdline === 'any' ? 'any' : { ...opt('allow', sorted(m.kernelCmdline.allow)), ...opt('forbidSubstrings', sorted(m.kernelCmdline.forbidSubstrings)) },
    sCrtmVersion: Array.isArray(m.sCrtmVersion) ? [...m.sCrtmVersion].sort() : m.sCrtmVersion,
  };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v as object)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
