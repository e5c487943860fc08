/**
 * Learning a reference policy from the evidence of one known-good host: a quote, its event log
 * and its IMA measurement list. The operator then reviews and edits what was learned.
 *
 * A reference is never learned from unverified evidence. The order is fixed:
 * 1. the quote verifies (AK template, signature over the exact TPMS_ATTEST bytes, pcrDigest over
 *    the supplied values, and extraData when a nonce is given); only the PCRs it selects are used;
 * 2. the event log, when given, replays to the quoted PCRs it covers (strictly, or with the quirks
 *    the caller names); only then are its events read as boot claims;
 * 3. the IMA list, when given, replays to the quoted PCR 10; only the entries the quote covers are
 *    learned.
 * Evidence that fails a step is refused with every failure, and nothing is learned.
 *
 * What is learned (a PCR proven by a log is constrained by rules over the log, not by its value,
 * so the policy survives the updates the rules allow):
 * - `tpm`: every quoted PCR of the chosen banks with its quoted value, except the PCRs the event
 *   log proves and PCR 10 when an IMA list is given: those are "any";
 * - `measuredBoot`: the proven PCRs; Secure Boot, the db certificates, the dbx hash count, the boot
 *   loader, the kernel, its command line and the S-CRTM version as the log shows them ("any",
 *   with a note, where the log does not show one);
 * - `runtime`: every measured path with the digests measured for it; boot_aggregate required when
 *   it matches PCRs 0-7 of the quote;
 * - `artifact`: a 300-second lifetime.
 *
 * The result is checked with {@link validatePolicy} before it is returned, so a learned policy
 * always loads. Pure: no clock, no I/O.
 */
import { Document, isScalar, visit } from 'yaml';
import { toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError } from '../lib/errors.js';
import { failure, failureFromError, type Failure } from '../lib/failure.js';
import { hashById, TPM_ST_ATTEST } from '../tpm/abi/constants.js';
import type { PcrSelection } from '../tpm/abi/pcr.js';
import { verifyQuote, type PcrValues } from '../tpm/verify/quote.js';
import type { TpmVerifyKey } from '../tpm/verify/keys.js';
import { bootClaims, parseEventLog, QUIRKS, replayEventLog, verifyEventLog, type BootClaims, type EventLog, type Quirk } from '../eventlog/index.js';
import {
  BOOT_AGGREGATE_NAME,
  checkBootAggregate,
  extendImaToQuote,
  IMA_PCR,
  initialImaState,
  parseImaList,
  type ImaEntry,
  type ImaList,
} from '../eventlog/ima/index.js';
import { IMA_DIGEST_PATTERN } from '../eventlog/ima/policy.js';
import { validatePolicy } from './parse.js';
import {
  BANK_NAMES,
  POLICY_API_VERSION,
  POLICY_KIND,
  type BankName,
  type MeasuredBootPolicy,
  type PolicyDocument,
  type RuntimePolicy,
} from './schema.js';
import { POLICY_MAX_CHARS } from './text.js';

/** The artifact lifetime a learned policy starts with. */
export const LEARNED_LIFETIME_SECONDS = 300;

/** What {@link learnPolicy} learns from. */
export interface LearnInput {
  /** The policy id (`[a-z0-9-]{1,64}`). */
  readonly id: string;
  /** The attestation key, imported from its TPMT_PUBLIC (the template is checked). */
  readonly ak: TpmVerifyKey;
  /** TPMS_ATTEST bytes exactly as the TPM returned them. */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE bytes. */
  readonly signature: Uint8Array;
  /** PCR values (any bank, any PCR); only those the quote selects are used. */
  readonly pcrs: PcrValues;
  /** The qualifying data the quote must carry; absent: not checked (noted). */
  readonly nonce?: Uint8Array;
  /** The UEFI event log (binary_bios_measurements). */
  readonly eventLog?: Uint8Array | EventLog;
  /** The IMA measurement list (ASCII or binary), from the boot the quote was made in. */
  readonly ima?: Uint8Array | ImaList;
  /** Banks the policy requires (default: the banks of the quote vouch can name). */
  readonly banks?: readonly BankName[];
  /** Firmware quirks the event-log replay may use; each use is written into the policy. */
  readonly quirks?: readonly Quirk[];
}

/** What the learned policy rests on, for the header of the rendered policy. */
export interface LearnedEvidence {
  readonly banks: readonly BankName[];
  /** Quoted PCRs per chosen bank, ascending. */
  readonly quotedPcrs: Readonly<Partial<Record<BankName, readonly number[]>>>;
  readonly nonceChecked: boolean;
  readonly resetCount: number;
  readonly restartCount: number;
  /** Present when an event log was given (and verified). */
  readonly eventLog?: { readonly events: number; readonly provenPcrs: readonly number[]; readonly quirksApplied: readonly Quirk[] };
  /** Present when an IMA list was given (and verified). */
  readonly ima?: { readonly entries: number; readonly covered: number; readonly paths: number };
}

/** A policy learned from verified evidence, with what the operator must review. */
export interface LearnedPolicy {
  readonly ok: true;
  /** A `vouch/v1` document, keys in schema order; {@link validatePolicy} accepts it. */
  readonly policy: PolicyDocument;
  /** What was learned and what to review, one line each. */
  readonly notes: readonly string[];
  readonly evidence: LearnedEvidence;
}

/** Evidence that did not verify: nothing was learned. */
export interface LearnRefusal {
  readonly ok: false;
  /** Every failure found, in the order of the steps. */
  readonly failures: readonly Failure[];
  /** Hints (for example a quirk that would make the replay match). */
  readonly notes: readonly string[];
}

/** Quote checks that must pass (not merely be skipped) before anything is learned. */
const REQUIRED_CHECKS = ['ak.template', 'signature.parse', 'signature.scheme', 'signature', 'attest.parse', 'attest.type', 'attest.pcrDigest'] as const;

/** PCRs whose events the measured-boot rules read (PFP §3.3.4): the rest are proven but unconstrained. */
const RULE_PCRS: Readonly<Record<number, string>> = { 0: 'sCrtmVersion', 4: 'bootLoaders', 7: 'secureBoot, db, dbx', 8: 'kernelCmdline', 9: 'kernels', 12: 'kernelCmdline' };

/** PCRs 0-7, which boot_aggregate covers in every kernel. */
const BOOT_AGGREGATE_PCRS = [0, 1, 2, 3, 4, 5, 6, 7];

const ID_PATTERN = /^[a-z0-9-]{1,64}$/;
const IMA_DIGEST_RE = new RegExp(IMA_DIGEST_PATTERN);

/**
 * Learns a reference policy from the evidence of a known-good host.
 * @returns the policy and its notes, or a refusal with every failure when the evidence does not verify
 * @throws MisuseError MISUSE_ARGUMENT for a bad id, or banks the quote does not carry
 */
export function learnPolicy(input: LearnInput): LearnedPolicy | LearnRefusal {
  if (!ID_PATTERN.test(input.id)) throw new MisuseError('MISUSE_ARGUMENT', `policy id "${input.id}" must match [a-z0-9-]{1,64}`, { field: 'id', actual: input.id });
  const notes: string[] = [];

  // 1. The quote.
  const q = verifyQuote({ ak: input.ak, attest: input.attest, signature: input.signature, expectedExtraData: input.nonce, pcrs: input.pcrs });
  const unrun = q.checks.filter((c) => (REQUIRED_CHECKS as readonly string[]).includes(c.check) && c.outcome !== 'pass');
  if (!q.ok || unrun.length > 0 || q.attest === undefined) {
    const failures = [...q.failures];
    if (failures.length === 0) for (const c of unrun) failures.push(failure('TPM_QUOTE_SIGNATURE_INVALID', { field: c.check, message: `quote check ${c.check} did not run${c.note !== undefined ? `: ${c.note}` : ''}` }));
    return { ok: false, failures, notes: ['the quote does not verify: a reference policy is learned only from verified evidence'] };
  }
  const attest = q.attest;
  const attested = attest.attested;
  if (attested.type !== TPM_ST_ATTEST.QUOTE) return { ok: false, failures: [failure('TPM_QUOTE_NOT_QUOTE', { field: 'TPMS_ATTEST.type' })], notes: [] };
  const selection = attested.quote.pcrSelect;
  if (input.nonce === undefined) notes.push('no nonce was given: the freshness of the quote was not checked; learn only from evidence you collected from the host yourself');

  const banks = chooseBanks(selection, input.banks);
  const quoted = quotedValues(selection, input.pcrs, banks);
  const quotedPcrs: Partial<Record<BankName, number[]>> = {};
  for (const b of banks) quotedPcrs[b.name] = [...(quoted.get(b.id)?.keys() ?? [])].sort((x, y) => x - y);
  // PCRs quoted in every chosen bank: the only ones rules may rely on (parse.ts cross-checks).
  const inEveryBank = (pcr: number): boolean => banks.every((b) => quoted.get(b.id)?.has(pcr) === true);

  // 2. The event log.
  let measuredBoot: MeasuredBootPolicy | undefined;
  let eventLogEvidence: LearnedEvidence['eventLog'];
  if (input.eventLog !== undefined) {
    const learned = learnMeasuredBoot(input.eventLog, quoted, banks, input.quirks ?? [], inEveryBank, notes);
    if (!learned.ok) return { ok: false, failures: learned.failures, notes: [...notes, ...learned.notes] };
    measuredBoot = learned.rules;
    eventLogEvidence = learned.evidence;
  } else {
    notes.push('no event log was given: every quoted PCR is pinned to its value, which changes with every firmware, boot loader or kernel update; give the event log to learn measured-boot rules instead');
  }

  // 3. The IMA list.
  let runtime: RuntimePolicy | undefined;
  let imaEvidence: LearnedEvidence['ima'];
  if (input.ima !== undefined) {
    const learned = learnRuntime(input.ima, quoted, banks, attest.clockInfo.resetCount, inEveryBank, notes);
    if (!learned.ok) return { ok: false, failures: learned.failures, notes: [...notes, ...learned.notes] };
    runtime = learned.rules;
    imaEvidence = learned.evidence;
  } else if (banks.some((b) => quoted.get(b.id)?.get(IMA_PCR)?.some((x) => x !== 0) === true)) {
    notes.push('PCR 10 is pinned to its quoted value and is not zero: if IMA is active on this host it changes with every measurement; give the IMA list, or set PCR 10 to any');
  }

  // The tpm section: quoted values, "any" where rules over a verified log constrain the PCR.
  const byRules = new Set<number>([...(measuredBoot?.pcrs ?? []), ...(runtime !== undefined ? [IMA_PCR] : [])]);
  const pcrs: Partial<Record<BankName, Record<string, 'any' | string[]>>> = {};
  for (const b of banks) {
    const m: Record<string, 'any' | string[]> = {};
    for (const pcr of quotedPcrs[b.name] ?? []) {
      const v = quoted.get(b.id)?.get(pcr) as Uint8Array;
      m[String(pcr)] = byRules.has(pcr) ? 'any' : [toHex(v)];
    }
    pcrs[b.name] = m;
  }
  for (const b of banks) {
    const pinned = (quotedPcrs[b.name] ?? []).filter((p) => !byRules.has(p));
    if (pinned.length > 0) notes.push(`${b.name} PCRs ${pinned.join(', ')} are pinned to their quoted values: check that each is stable across reboots of this host class, or set it to any`);
  }

  const policy: PolicyDocument = {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    id: input.id,
    description: 'Reference policy learned from the verified evidence of one known-good host; review it before use.',
    tpm: { banks: banks.map((b) => b.name), pcrs },
    ...(measuredBoot !== undefined ? { measuredBoot } : {}),
    ...(runtime !== undefined ? { runtime } : {}),
    artifact: { lifetimeSeconds: LEARNED_LIFETIME_SECONDS },
  };
  // A learned policy must load; a failure here is a bug in this module, not in the evidence.
  validatePolicy(policy);
  return {
    ok: true,
    policy,
    notes,
    evidence: {
      banks: banks.map((b) => b.name),
      quotedPcrs,
      nonceChecked: input.nonce !== undefined,
      resetCount: attest.clockInfo.resetCount,
      restartCount: attest.clockInfo.restartCount,
      ...(eventLogEvidence !== undefined ? { eventLog: eventLogEvidence } : {}),
      ...(imaEvidence !== undefined ? { ima: imaEvidence } : {}),
    },
  };
}

interface ChosenBank {
  readonly id: number;
  readonly name: BankName;
}

function bankNameOf(id: number): BankName | undefined {
  const name = hashById(id)?.name;
  return BANK_NAMES.find((b) => b === name);
}

/** The banks to learn: those asked for (each must be quoted), else every quoted bank. */
function chooseBanks(selection: PcrSelection, asked: readonly BankName[] | undefined): ChosenBank[] {
  const quotedBanks = selection.filter((s) => s.pcrs.length > 0).map((s) => s.hashAlg);
  const names = quotedBanks.map((id) => bankNameOf(id)).filter((n): n is BankName => n !== undefined);
  const list = asked === undefined || asked.length === 0 ? names : asked;
  if (list.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'the quote selects no PCR of a bank a policy can name');
  const out: ChosenBank[] = [];
  for (const name of BANK_NAMES) {
    if (!list.includes(name)) continue;
    if (!names.includes(name)) {
      throw new MisuseError('MISUSE_ARGUMENT', `bank ${name} is not in the quote (quoted: ${names.join(', ') || 'none'})`, { field: 'banks', expected: names.join(', '), actual: name });
    }
    const id = quotedBanks.find((b) => bankNameOf(b) === name) as number;
    out.push({ id, name });
  }
  return out;
}

/** The supplied values of the PCRs the quote selects, in the chosen banks (verifyQuote proved them). */
function quotedValues(selection: PcrSelection, pcrs: PcrValues, banks: readonly ChosenBank[]): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const sel of selection) {
    if (!banks.some((b) => b.id === sel.hashAlg)) continue;
    const m = new Map<number, Uint8Array>();
    for (const pcr of sel.pcrs) m.set(pcr, pcrs.get(sel.hashAlg)?.get(pcr) as Uint8Array);
    out.set(sel.hashAlg, m);
  }
  return out;
}

type Learned<R, E> = { ok: true; rules: R; evidence: E } | { ok: false; failures: readonly Failure[]; notes: readonly string[] };

function learnMeasuredBoot(
  bytes: Uint8Array | EventLog,
  quoted: PcrValues,
  banks: readonly ChosenBank[],
  quirks: readonly Quirk[],
  inEveryBank: (pcr: number) => boolean,
  notes: string[],
): Learned<MeasuredBootPolicy, NonNullable<LearnedEvidence['eventLog']>> {
  let log: EventLog;
  try {
    log = bytes instanceof Uint8Array ? parseEventLog(bytes) : bytes;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { ok: false, failures: [failureFromError(e)], notes: ['the event log does not parse'] };
  }
  const covered = [...replayEventLog(log).eventsByPcr.keys()].sort((a, b) => a - b);
  const proven = covered.filter(inEveryBank);
  const unquoted = covered.filter((p) => !inEveryBank(p));
  if (proven.length === 0) {
    return {
      ok: false,
      failures: [failure('EVENTLOG_PCR_NOT_COVERED', { field: 'pcrs', message: `the log extends PCRs ${covered.join(', ') || '(none)'}, none of which the quote selects in every chosen bank` })],
      notes: [],
    };
  }
  const bankIds = banks.map((b) => b.id);
  const v = verifyEventLog(log, quoted, { pcrs: proven, banks: bankIds, quirks });
  if (!v.ok || v.verified === undefined) {
    const hints: string[] = ['the event log does not replay to the quote: nothing was learned'];
    const missing = QUIRKS.filter((k) => !quirks.includes(k));
    if (missing.length > 0) {
      const retry = verifyEventLog(log, quoted, { pcrs: proven, banks: bankIds, quirks: [...quirks, ...missing] });
      if (retry.ok) hints.push(`the replay matches with the firmware quirk(s) ${retry.quirksApplied.join(', ')}: if this firmware is known for it, learn again with --quirk ${retry.quirksApplied.join(' --quirk ')}`);
    }
    return { ok: false, failures: v.failures, notes: hints };
  }
  if (unquoted.length > 0) notes.push(`the event log also extends PCRs ${unquoted.join(', ')}, which are not quoted in every chosen bank: their events are not proven and no rule reads them`);
  const quirksApplied = [...v.quirksApplied];
  if (quirksApplied.length > 0) notes.push(`the replay needed the firmware quirk(s) ${quirksApplied.join(', ')}; measuredBoot.quirks allows them for every node under this policy`);

  const c = bootClaims(v);
  const rules = rulesFromClaims(c, proven, quirksApplied, notes);
  const unconstrained = proven.filter((p) => RULE_PCRS[p] === undefined);
  notes.push(`PCRs ${proven.join(', ')} are proven by the event log and set to any in tpm.pcrs; the measured-boot rules constrain PCRs ${proven.filter((p) => RULE_PCRS[p] !== undefined).join(', ') || '(none)'}`);
  if (unconstrained.length > 0) notes.push(`no rule reads the events of PCRs ${unconstrained.join(', ')} (firmware code and configuration, boot variables): they accept any value; pin them in tpm.pcrs and take them out of measuredBoot.pcrs if they must not change`);
  if (c.unboundEvents.length > 0) notes.push(`${c.unboundEvents.length} event(s) of proven PCRs carry data that their digest does not measure (events ${c.unboundEvents.slice(0, 10).join(', ')}): they gave no claim`);
  if (c.undecodableEvents.length > 0) notes.push(`${c.undecodableEvents.length} event(s) did not decode (first: event ${c.undecodableEvents[0]!.event}, ${c.undecodableEvents[0]!.code}): they gave no claim`);
  if (c.errorSeparator) notes.push('a separator event carries an error value: the firmware reported an error during boot; review before trusting this host as a reference');
  return { ok: true, rules, evidence: { events: log.untrustedEvents.length, provenPcrs: proven, quirksApplied } };
}

/** measuredBoot rules that hold for the claims `c`, with a note for every rule left at "any". */
function rulesFromClaims(c: BootClaims, pcrs: readonly number[], quirks: readonly Quirk[], notes: string[]): MeasuredBootPolicy {
  const isSha256 = (s: string | undefined): s is string => s !== undefined && /^[0-9a-f]{64}$/.test(s);
  const has = (pcr: number): boolean => pcrs.includes(pcr);

  let secureBoot: MeasuredBootPolicy['secureBoot'] = 'any';
  if (c.secureBoot.state === 'enabled') secureBoot = 'enabled';
  else notes.push(`secureBoot: any, the log shows Secure Boot ${c.secureBoot.state}${c.secureBoot.note !== undefined ? ` (${c.secureBoot.note})` : ''}; require "enabled" once the hosts boot with it`);

  let db: MeasuredBootPolicy['db'] = 'any';
  const dbCerts = [...new Set((c.db?.certificates ?? []).map((x) => x.sha256))].sort();
  if (dbCerts.length > 0) {
    db = { require: dbCerts };
    const subjects = (c.db?.certificates ?? []).map((x) => x.subject ?? x.sha256.slice(0, 16)).join('; ');
    notes.push(`db: requires the ${dbCerts.length} certificate(s) seen (${subjects}); consider forbid for certificates you distrust`);
  } else notes.push(c.db === undefined ? 'db: any, the log carries no db variable in a proven PCR 7' : 'db: any, the db seen holds no certificate');

  let dbx: MeasuredBootPolicy['dbx'] = 'any';
  if (c.dbx !== undefined) {
    // The appraisal counts distinct hashes, so the minimum is the distinct count.
    const n = new Set(c.dbx.sha256Hashes).size;
    dbx = { minHashes: n };
    notes.push(
      n === 0
        ? 'dbx: minHashes 0, the dbx seen revokes no image hash: this host accepts boot loaders that others have revoked; apply the dbx updates and learn again'
        : `dbx: at least ${n} revoked image hash(es), as seen; raise it as dbx updates roll out`,
    );
  } else notes.push('dbx: any, the log carries no dbx variable in a proven PCR 7');

  let bootLoaders: MeasuredBootPolicy['bootLoaders'] = 'any';
  const loader = c.bootLoader?.digests['sha256'];
  if (has(4) && isSha256(loader)) {
    bootLoaders = [loader];
    notes.push(`bootLoaders: the boot loader seen${c.bootLoader?.untrustedPath !== undefined ? ` (${c.bootLoader.untrustedPath}, path not covered by the digest)` : ''}; add the digests of updated boot loaders`);
  } else notes.push('bootLoaders: any, no boot loader with a SHA-256 Authenticode digest in a proven PCR 4');

  let kernels: MeasuredBootPolicy['kernels'] = 'any';
  const kernel = c.kernel?.digests['sha256'];
  if (has(9) && isSha256(kernel)) {
    kernels = [kernel];
    notes.push(`kernels: the kernel seen (${c.kernel?.untrustedPath ?? '?'}, path not covered by the digest); add the digests of updated kernels`);
  } else notes.push('kernels: any, no kernel measured by GRUB with a SHA-256 digest in a proven PCR 9');

  let kernelCmdline: MeasuredBootPolicy['kernelCmdline'] = 'any';
  const cmdline = c.kernelCmdline?.value;
  if (cmdline !== undefined && cmdline.length <= 4096) {
    kernelCmdline = { allow: [cmdline] };
    notes.push('kernelCmdline: allows exactly the command line seen; consider forbidSubstrings (for example "init=") where command lines vary');
  } else notes.push(cmdline === undefined ? 'kernelCmdline: any, no kernel command line in a proven PCR' : 'kernelCmdline: any, the command line seen is longer than 4096 characters');

  let sCrtmVersion: MeasuredBootPolicy['sCrtmVersion'] = 'any';
  const scrtm = c.sCrtmVersion?.value;
  if (scrtm !== undefined && scrtm.length >= 1 && scrtm.length <= 256) {
    sCrtmVersion = [scrtm];
    notes.push(`sCrtmVersion: exactly "${scrtm}"; a firmware update changes it (use { min: "x.y" } where the version is dotted numbers)`);
  } else notes.push('sCrtmVersion: any, no usable S-CRTM version event in a proven PCR 0');

  return { pcrs: [...pcrs], quirks: [...quirks], secureBoot, db, dbx, bootLoaders, kernels, kernelCmdline, sCrtmVersion };
}

function learnRuntime(
  input: Uint8Array | ImaList,
  quoted: PcrValues,
  banks: readonly ChosenBank[],
  resetCount: number,
  inEveryBank: (pcr: number) => boolean,
  notes: string[],
): Learned<RuntimePolicy, NonNullable<LearnedEvidence['ima']>> {
  if (!inEveryBank(IMA_PCR)) {
    const names = banks.map((b) => b.name).join(', ');
    return {
      ok: false,
      failures: [failure('IMA_PCR10_MISMATCH', { field: 'pcrs', message: `PCR 10 is not quoted in every chosen bank (${names}): the IMA list cannot be proven`, expected: `PCR 10 in ${names}`, actual: 'not quoted' })],
      notes: [],
    };
  }
  let list: ImaList;
  try {
    list = input instanceof Uint8Array ? parseImaList(input) : input;
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { ok: false, failures: [failureFromError(e)], notes: ['the IMA list does not parse'] };
  }
  const ids = banks.map((b) => b.id);
  const pcr10 = new Map(ids.map((id) => [id, quoted.get(id)?.get(IMA_PCR) as Uint8Array]));
  let replay;
  try {
    replay = extendImaToQuote(initialImaState(resetCount, ids), list.entries, pcr10);
  } catch (e) {
    if (!isVouchError(e)) throw e;
    return { ok: false, failures: [failureFromError(e)], notes: ['the IMA list does not replay'] };
  }
  if (!replay.ok) return { ok: false, failures: replay.failures, notes: ['the IMA list does not replay to the quoted PCR 10: nothing was learned'] };
  const entries = list.entries.slice(0, replay.consumed);
  if (replay.consumed < list.entries.length) {
    notes.push(`${list.entries.length - replay.consumed} IMA entries follow the quoted PCR 10 (appended after the quote): they are not proven and were not learned`);
  }

  let bootAggregate: RuntimePolicy['bootAggregate'] = 'any';
  const first = entries[0];
  if (BOOT_AGGREGATE_PCRS.every(inEveryBank)) {
    const check = first === undefined ? undefined : checkBootAggregate(first, quoted);
    if (check?.ok === true) bootAggregate = 'required';
    else notes.push(`runtime.bootAggregate: any, ${check?.failures[0]?.message ?? 'the list is empty'}`);
  } else notes.push('runtime.bootAggregate: any, PCRs 0-7 are not quoted in every chosen bank; quote them to check boot_aggregate');

  const allowed = new Map<string, Set<string>>();
  let violations = 0;
  let signed = 0;
  const skipped: string[] = [];
  for (const e of entries) {
    if (e.index === 0 && e.path === BOOT_AGGREGATE_NAME) continue;
    if (e.violation) {
      violations++;
      continue;
    }
    if (e.signature !== undefined) signed++;
    const digest = `${e.digest.algorithm}:${toHex(e.digest.digest)}`;
    if (e.path.length === 0 || e.path.length > 4095 || !IMA_DIGEST_RE.test(digest)) {
      skipped.push(`${entryName(e)} ${digest}`);
      continue;
    }
    let set = allowed.get(e.path);
    if (set === undefined) allowed.set(e.path, (set = new Set()));
    set.add(digest);
  }
  const sorted: Record<string, string[]> = {};
  for (const path of [...allowed.keys()].sort()) {
    const digests = [...(allowed.get(path) as Set<string>)].sort();
    // defineProperty: a path named "__proto__" stays an own key.
    Object.defineProperty(sorted, path, { value: digests, enumerable: true, writable: true, configurable: true });
  }
  const tooMany = Object.entries(sorted).filter(([, d]) => d.length > 1024).map(([p]) => p);
  if (tooMany.length > 0) {
    return { ok: false, failures: [failure('POLICY_INVALID', { field: 'runtime.ima.allowed', message: `paths measured with more than 1024 distinct digests cannot be listed: ${tooMany.slice(0, 5).join(', ')}` })], notes: ['exclude these paths and learn again'] };
  }

  notes.push(`runtime.ima.allowed: ${allowed.size} path(s) with the digests of ${entries.length} IMA entries (boot_aggregate not counted); every other path or digest will be refused: add the digests of updated files, and excludes for paths whose content changes (logs, caches)`);
  if (signed > 0) notes.push(`${signed} entries carry a file signature: add the signing keys to runtime.ima.trustedKeys to accept signed files by key instead of by digest`);
  if (violations > 0) notes.push(`${violations} entries record a measurement violation: they were not learned, and the runtime appraisal refuses them; a reference host should have none`);
  if (skipped.length > 0) notes.push(`${skipped.length} entries cannot be written as allowed paths and were not learned (first: ${skipped[0]!}); the runtime appraisal refuses them`);
  return {
    ok: true,
    rules: { bootAggregate, ima: { allowed: sorted, excludes: [], trustedKeys: [], requireSignatures: false } },
    evidence: { entries: list.entries.length, covered: entries.length, paths: allowed.size },
  };
}

function entryName(e: ImaEntry): string {
  return `ima[${e.index}] ${JSON.stringify(e.path.length > 64 ? `${e.path.slice(0, 64)}…` : e.path)}`;
}

/** A comment line: no line breaks, no control characters. */
function commentLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, ' ');
}

/**
 * Renders a learned policy as YAML 1.2: keys in schema order, PCR indices ascending, paths sorted,
 * digest lists in flow style; at the top, comments listing the evidence, what was learned and what
 * the operator must review. The text loads with parsePolicy (no anchors, tags or aliases).
 */
export function renderLearnedPolicy(learned: LearnedPolicy): string {
  const ev = learned.evidence;
  const header: string[] = [
    ' Reference policy learned by `vouch policy learn` from one known-good host.',
    ' Review every line before use: a learned policy accepts exactly what this host showed.',
    '',
    ' Evidence (verified before anything was learned):',
    `   quote: banks ${ev.banks.join(', ')}; PCRs ${ev.banks.map((b) => `${b}:${(ev.quotedPcrs[b] ?? []).join(',')}`).join(' ')}; resetCount ${ev.resetCount}, restartCount ${ev.restartCount}; nonce ${ev.nonceChecked ? 'checked' : 'NOT checked'}`,
    ev.eventLog !== undefined
      ? `   event log: ${ev.eventLog.events} events, replayed to the quoted PCRs ${ev.eventLog.provenPcrs.join(', ')}${ev.eventLog.quirksApplied.length > 0 ? ` with quirks ${ev.eventLog.quirksApplied.join(', ')}` : ''}`
      : '   event log: not given',
    ev.ima !== undefined ? `   IMA list: ${ev.ima.entries} entries, ${ev.ima.covered} covered by the quoted PCR 10, ${ev.ima.paths} paths learned` : '   IMA list: not given',
    '',
    ' Learned, and to review:',
    ...learned.notes.map((n) => ` - ${commentLine(n)}`),
  ];
  const doc = new Document(learned.policy, { aliasDuplicateObjects: false });
  doc.commentBefore = header.join('\n');
  // Lists of scalars (digests, PCR indices, banks) in flow style: one PCR, one path per line.
  visit(doc, {
    Seq(_, node) {
      if (node.items.length > 0 && node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  const text = doc.toString({ lineWidth: 0, minContentWidth: 0 });
  if (text.length > POLICY_MAX_CHARS) {
    throw new MisuseError('MISUSE_ARGUMENT', `the learned policy is ${text.length} characters, more than a policy may have (${POLICY_MAX_CHARS}); exclude paths of the IMA list or learn without it`);
  }
  return text;
}
