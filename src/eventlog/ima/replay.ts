/**
 * Replay of the IMA measurement list to PCR 10 (trust stage `verify`).
 *
 * For each entry the kernel extends every allocated PCR bank (ima_pcr_extend):
 * `PCR10[bank] = H_bank(PCR10[bank] || T_bank)` where `T_bank` is the digest of the entry's
 * template data (abi.ts, templateHashInput) with the bank's hash, or all 0xff of the bank's
 * size for a measurement violation (the listed template hash is then all zero). The list shows
 * one of those digests, the template hash, in one algorithm (SHA-1 in
 * binary_runtime_measurements); replay recomputes it from the template data and refuses the
 * list when the two differ, so the template data a policy appraises is the data that was
 * extended.
 *
 * Incremental replay: until the next reboot the list only grows, so a verifier keeps, per
 * node, the PCR 10 values after the entries it has accepted ({@link ImaState}) and replays
 * only the entries that follow; the cost of a re-attestation grows with the new entries only.
 */
import { hash } from 'node:crypto';
import { bytesEqual, toHex } from '../../lib/bytes.js';
import { MisuseError, VerificationError } from '../../lib/errors.js';
import { failure, type Failure } from '../../lib/failure.js';
import { hashById, type HashAlg } from '../../tpm/abi/constants.js';
import { entryField, IMA_PCR, templateHashInput, type ImaEntry } from './abi.js';

/** PCR 10 per bank: TPM_ALG_ID → value. */
export type ImaPcr10 = ReadonlyMap<number, Uint8Array>;

/** Options of {@link replayIma}. */
export interface ImaReplayOptions {
  /** Banks to replay (TPM_ALG_ID). */
  readonly banks: readonly number[];
  /** PCR 10 before the first entry, per bank (default all zero: a fresh boot). */
  readonly initial?: ImaPcr10;
}

interface Bank {
  readonly alg: HashAlg;
  readonly ff: Uint8Array;
  /** PCR value (first half) and the digest being extended (second half). */
  readonly scratch: Uint8Array;
}

function banksOf(ids: readonly number[], initial: ImaPcr10 | undefined): Bank[] {
  if (ids.length === 0) throw new MisuseError('MISUSE_ARGUMENT', 'IMA replay needs at least one bank');
  const seen = new Set<number>();
  return ids.map((id) => {
    const alg = hashById(id);
    if (alg === undefined) throw new MisuseError('MISUSE_ARGUMENT', `bank 0x${id.toString(16)} is not a supported hash algorithm`);
    if (seen.has(id)) throw new MisuseError('MISUSE_ARGUMENT', `bank ${alg.name} is listed twice`);
    seen.add(id);
    const scratch = new Uint8Array(alg.size * 2);
    const start = initial?.get(id);
    if (start !== undefined) {
      if (start.length !== alg.size) throw new MisuseError('MISUSE_ARGUMENT', `initial PCR 10 of bank ${alg.name} is ${start.length} bytes, not ${alg.size}`);
      scratch.set(start, 0);
    }
    return { alg, ff: new Uint8Array(alg.size).fill(0xff), scratch };
  });
}

function digest(alg: HashAlg, data: Uint8Array): Buffer {
  return hash(alg.nodeName, data, 'buffer');
}

/**
 * Extends `entries` into the banks' scratch buffers. Throws on the first entry that does not
 * extend PCR 10 or whose template hash is not the digest of its template data.
 */
function extendInto(banks: readonly Bank[], entries: readonly ImaEntry[], after?: (consumed: number) => boolean): number {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as ImaEntry;
    if (e.pcr !== IMA_PCR) {
      throw new VerificationError('IMA_PCR_UNSUPPORTED', `${entryField(e.index, 'pcr')}: the entry extends PCR ${e.pcr}; vouch replays PCR 10 only`, {
        field: entryField(e.index, 'pcr'),
        expected: String(IMA_PCR),
        actual: String(e.pcr),
      });
    }
    if (e.violation) {
      for (const b of banks) {
        b.scratch.set(b.ff, b.alg.size);
        b.scratch.set(digest(b.alg, b.scratch), 0);
      }
    } else {
      const input = templateHashInput(e);
      let listedChecked = false;
      for (const b of banks) {
        const t = digest(b.alg, input);
        if (b.alg.id === e.templateHashAlg) {
          checkTemplateHash(e, t);
          listedChecked = true;
        }
        b.scratch.set(t, b.alg.size);
        b.scratch.set(digest(b.alg, b.scratch), 0);
      }
      if (!listedChecked) {
        const alg = hashById(e.templateHashAlg);
        if (alg === undefined) throw new MisuseError('MISUSE_ARGUMENT', `${entryField(e.index, 'templateHash')}: unsupported template-hash algorithm`);
        checkTemplateHash(e, digest(alg, input));
      }
    }
    if (after !== undefined && after(i + 1)) return i + 1;
  }
  return entries.length;
}

function checkTemplateHash(e: ImaEntry, computed: Buffer): void {
  if (!computed.equals(e.templateHash)) {
    const field = entryField(e.index, 'templateHash');
    throw new VerificationError('IMA_TEMPLATE_HASH_MISMATCH', `${field}: the template hash of "${e.path}" is not the digest of its template data`, {
      field,
      expected: toHex(computed),
      actual: toHex(e.templateHash),
    });
  }
}

function values(banks: readonly Bank[]): Map<number, Uint8Array> {
  return new Map(banks.map((b) => [b.alg.id, b.scratch.slice(0, b.alg.size)]));
}

/**
 * PCR 10 after `entries`, in each of `opts.banks`.
 * @throws VerificationError IMA_TEMPLATE_HASH_MISMATCH (a template hash is not the digest of
 *   its template data), IMA_PCR_UNSUPPORTED (an entry extends another PCR)
 */
export function replayIma(entries: readonly ImaEntry[], opts: ImaReplayOptions): Map<number, Uint8Array> {
  const banks = banksOf(opts.banks, opts.initial);
  extendInto(banks, entries);
  return values(banks);
}

/**
 * A node's running IMA state: PCR 10 per bank after the first `entries` entries of its list
 * since the boot numbered `resetCount` (TPMS_CLOCK_INFO.resetCount of the quote).
 */
export interface ImaState {
  readonly resetCount: number;
  /** Entries accepted so far; the next entry to extend has this index. */
  readonly entries: number;
  readonly pcr10: ImaPcr10;
}

/** The state of a fresh boot: no entries, PCR 10 all zero in each bank. */
export function initialImaState(resetCount: number, banks: readonly number[]): ImaState {
  return { resetCount, entries: 0, pcr10: values(banksOf(banks, undefined)) };
}

/**
 * The state to extend for a quote with `quoteResetCount`. The verifier calls this with the
 * stored state of the node and the verified quote's resetCount: a different resetCount means
 * the node rebooted (the TPM reset PCR 10 and the kernel started a new list), so replay
 * restarts from zero; the same resetCount keeps the stored state. No stored state starts from zero.
 */
export function imaStateForQuote(stored: ImaState | null | undefined, quoteResetCount: number, banks: readonly number[]): ImaState {
  if (stored === null || stored === undefined || stored.resetCount !== quoteResetCount) return initialImaState(quoteResetCount, banks);
  const same = stored.pcr10.size === banks.length && banks.every((b) => stored.pcr10.has(b));
  return same ? stored : initialImaState(quoteResetCount, banks);
}

function checkContinues(state: ImaState, entries: readonly ImaEntry[]): void {
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k] as ImaEntry;
    if (e.index !== state.entries + k) {
      throw new VerificationError('IMA_STATE_MISMATCH', `${entryField(e.index, '')}: entry ${e.index} does not follow the ${state.entries} entries already accepted`, {
        field: entryField(e.index, ''),
        expected: String(state.entries + k),
        actual: String(e.index),
      });
    }
  }
}

/**
 * The state after `newEntries`, which must be entries `state.entries`, `state.entries + 1`, …
 * of the same list (parse them with `firstIndex: state.entries`). Pure: `state` is not changed.
 * Cost: the new entries only.
 * @throws VerificationError IMA_STATE_MISMATCH, IMA_TEMPLATE_HASH_MISMATCH, IMA_PCR_UNSUPPORTED
 */
export function extendIma(state: ImaState, newEntries: readonly ImaEntry[]): ImaState {
  checkContinues(state, newEntries);
  const banks = banksOf([...state.pcr10.keys()], state.pcr10);
  extendInto(banks, newEntries);
  return { resetCount: state.resetCount, entries: state.entries + newEntries.length, pcr10: values(banks) };
}

/** Every bank of `quoted` that differs from `replayed` (or is missing from it), as failures. */
export function compareImaPcr10(replayed: ImaPcr10, quoted: ImaPcr10): Failure[] {
  const out: Failure[] = [];
  for (const [id, want] of quoted) {
    const got = replayed.get(id);
    const bank = hashById(id)?.name ?? `0x${id.toString(16)}`;
    if (got === undefined || !bytesEqual(got, want)) {
      out.push(failure('IMA_PCR10_MISMATCH', {
        message: got === undefined ? `PCR 10 of bank ${bank} was not replayed` : `the IMA list replays to another PCR 10 in bank ${bank}`,
        field: `pcrs.${bank}[10]`,
        expected: toHex(want),
        actual: got === undefined ? 'not replayed' : toHex(got),
      }));
    }
  }
  return out;
}

/** Outcome of {@link extendImaToQuote}. */
export interface ImaQuoteReplay {
  readonly ok: boolean;
  /** The state after the accepted entries (the input state when !ok). */
  readonly state: ImaState;
  /** How many of the new entries the quote covers; later ones were appended after the quote. */
  readonly consumed: number;
  readonly failures: readonly Failure[];
}

/**
 * Extends the new entries one by one until PCR 10 equals the quoted PCR 10 in every bank of
 * the state. The kernel appends an entry to the list before it extends the TPM, so a list read
 * after a quote may hold entries the quote does not cover: those are left for the next
 * attestation (`consumed` < `newEntries.length`), which is not a failure. No prefix matching
 * is IMA_PCR10_MISMATCH, with the values after all the entries.
 * @param quoted PCR 10 per bank from the verified quote; every bank of the state must be there
 */
export function extendImaToQuote(state: ImaState, newEntries: readonly ImaEntry[], quoted: ImaPcr10): ImaQuoteReplay {
  checkContinues(state, newEntries);
  const ids = [...state.pcr10.keys()];
  const missing = ids.filter((id) => !quoted.has(id));
  if (missing.length > 0) {
    return { ok: false, state, consumed: 0, failures: missing.map((id) => failure('IMA_PCR10_MISMATCH', { message: `the quote has no PCR 10 in bank ${hashById(id)?.name ?? id}`, field: `pcrs.${hashById(id)?.name ?? id}[10]`, expected: 'a quoted value', actual: 'absent' })) };
  }
  const banks = banksOf(ids, state.pcr10);
  const matches = (): boolean => banks.every((b) => bytesEqual(b.scratch.subarray(0, b.alg.size), quoted.get(b.alg.id) as Uint8Array));
  if (matches()) return { ok: true, state, consumed: 0, failures: [] };
  let matched = false;
  const consumed = extendInto(banks, newEntries, () => (matched = matches()));
  if (!matched) {
    return { ok: false, state, consumed: 0, failures: compareImaPcr10(values(banks), new Map(ids.map((id) => [id, quoted.get(id) as Uint8Array]))) };
  }
  return { ok: true, state: { resetCount: state.resetCount, entries: state.entries + consumed, pcr10: values(banks) }, consumed, failures: [] };
}
