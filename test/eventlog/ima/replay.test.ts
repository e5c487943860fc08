/** Incremental replay, reboots, the quote boundary, violations and the checks replay makes. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../../src/tpm/abi/constants.js';
import { isVouchError } from '../../../src/lib/errors.js';
import {
  compareImaPcr10,
  encodeImaBinary,
  extendIma,
  extendImaToQuote,
  imaStateForQuote,
  initialImaState,
  parseImaBinary,
  replayIma,
  type ImaEntry,
} from '../../../src/eventlog/ima/index.js';
import { HAVE_REAL, readReal } from '../../helpers/real.js';
import { entry, fileDigest } from './synthetic.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];

/** A synthetic list of `n` ima-ng entries (boot_aggregate first). */
function list(n: number, hashAlg = 'sha1'): ImaEntry[] {
  const out: ImaEntry[] = [entry(0, 'ima-ng', { digest: fileDigest('agg'), path: 'boot_aggregate' }, { hashAlg })];
  for (let i = 1; i < n; i++) out.push(entry(i, 'ima-ng', { digest: fileDigest(`f${i}`), path: `/usr/bin/f${i}` }, { hashAlg }));
  return out;
}

/** PCR 10 computed here, independently: extend H(template data) or 0xff… for violations. */
function reference(entries: readonly ImaEntry[], alg: string): string {
  const size = createHash(alg).digest().length;
  let pcr = Buffer.alloc(size);
  for (const e of entries) {
    const t = e.violation ? Buffer.alloc(size, 0xff) : createHash(alg).update(e.templateData).digest();
    pcr = createHash(alg).update(pcr).update(t).digest();
  }
  return pcr.toString('hex');
}

const hexMap = (m: ReadonlyMap<number, Uint8Array>): Record<number, string> => Object.fromEntries([...m].map(([k, v]) => [k, Buffer.from(v).toString('hex')]));

describe('replayIma', () => {
  it('matches an independent computation in every bank, violations extended as 0xff', () => {
    const entries = list(50);
    entries[7] = entry(7, 'ima-ng', { digest: { algorithm: 'sha1', digest: new Uint8Array(20) }, path: '/var/log/x' }, { violation: true });
    const r = replayIma(entries, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384] });
    expect(Buffer.from(r.get(TPM_ALG.SHA1)!).toString('hex')).toBe(reference(entries, 'sha1'));
    expect(Buffer.from(r.get(TPM_ALG.SHA256)!).toString('hex')).toBe(reference(entries, 'sha256'));
    expect(Buffer.from(r.get(TPM_ALG.SHA384)!).toString('hex')).toBe(reference(entries, 'sha384'));
  });

  it('starts from `initial` when given', () => {
    const entries = list(20);
    const mid = replayIma(entries.slice(0, 8), { banks: BANKS });
    expect(hexMap(replayIma(entries.slice(8), { banks: BANKS, initial: mid }))).toEqual(hexMap(replayIma(entries, { banks: BANKS })));
  });

  it('refuses a template hash that is not the digest of the template data (IMA_TEMPLATE_HASH_MISMATCH), in a bank not replayed too', () => {
    for (const banks of [[TPM_ALG.SHA1], [TPM_ALG.SHA256]]) {
      const entries = list(5);
      const bad = { ...entries[3]!, path: '/usr/bin/evil', templateData: entries[2]!.templateData };
      entries[3] = bad;
      let err: unknown;
      try {
        replayIma(entries, { banks });
      } catch (e) {
        err = e;
      }
      expect(isVouchError(err) && err.code).toBe('IMA_TEMPLATE_HASH_MISMATCH');
      expect(isVouchError(err) && err.field).toBe('ima[3].templateHash');
    }
  });

  it('refuses an entry for another PCR (IMA_PCR_UNSUPPORTED)', () => {
    const entries = [...list(3), entry(3, 'ima-ng', { digest: fileDigest('x'), path: '/x' }, { pcr: 11 })];
    expect(() => replayIma(entries, { banks: BANKS })).toThrow(expect.objectContaining({ code: 'IMA_PCR_UNSUPPORTED', field: 'ima[3].pcr' }));
  });

  it('rejects misuse: no bank, an unknown bank, a wrong-size initial value', () => {
    expect(() => replayIma([], { banks: [] })).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => replayIma([], { banks: [0x99] })).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => replayIma([], { banks: [TPM_ALG.SHA1], initial: new Map([[TPM_ALG.SHA1, new Uint8Array(5)]]) })).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });
});

describe('incremental replay', () => {
  it('extendIma over chunks equals the full replay, whatever the split', () => {
    const entries = list(200);
    const full = hexMap(replayIma(entries, { banks: BANKS }));
    for (const cuts of [[0, 200], [1, 100, 200], [37, 38, 150, 199, 200]]) {
      let state = initialImaState(5, BANKS);
      let from = 0;
      for (const to of cuts) {
        state = extendIma(state, entries.slice(from, to));
        from = to;
      }
      expect(state.entries).toBe(200);
      expect(state.resetCount).toBe(5);
      expect(hexMap(state.pcr10)).toEqual(full);
    }
  });

  it.skipIf(!HAVE_REAL)('a real list parsed in chunks with firstIndex extends to the known replay', () => {
    const all = parseImaBinary(readReal('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements')).entries;
    const bytes = (from: number, to: number): Uint8Array => encodeImaBinary(all.slice(from, to));
    let state = initialImaState(1, BANKS);
    for (const [from, to] of [[0, 100], [100, 101], [101, 362]] as const) {
      state = extendIma(state, parseImaBinary(bytes(from, to), { firstIndex: from }).entries);
    }
    expect(hexMap(state.pcr10)).toEqual(hexMap(replayIma(all, { banks: BANKS })));
  });

  it('does not change the state it is given', () => {
    const entries = list(10);
    const s0 = extendIma(initialImaState(1, BANKS), entries.slice(0, 5));
    const before = hexMap(s0.pcr10);
    extendIma(s0, entries.slice(5));
    expect(hexMap(s0.pcr10)).toEqual(before);
    expect(s0.entries).toBe(5);
  });

  it('refuses entries that do not continue the state (IMA_STATE_MISMATCH)', () => {
    const entries = list(10);
    const s = extendIma(initialImaState(1, BANKS), entries.slice(0, 5));
    expect(() => extendIma(s, entries.slice(6))).toThrow(expect.objectContaining({ code: 'IMA_STATE_MISMATCH', expected: '5', actual: '6' }));
    expect(() => extendIma(s, entries.slice(4))).toThrow(expect.objectContaining({ code: 'IMA_STATE_MISMATCH' }));
  });

  it('a reboot (another resetCount) restarts from zero; the same resetCount keeps the state', () => {
    const entries = list(10);
    const stored = extendIma(initialImaState(7, BANKS), entries);
    expect(imaStateForQuote(stored, 7, BANKS)).toBe(stored);
    const fresh = imaStateForQuote(stored, 8, BANKS);
    expect(fresh.entries).toBe(0);
    expect(fresh.resetCount).toBe(8);
    for (const v of fresh.pcr10.values()) expect(v.every((b) => b === 0)).toBe(true);
    expect(imaStateForQuote(null, 3, BANKS).entries).toBe(0);
    // Other banks than the stored ones: restart (the stored state cannot serve them).
    expect(imaStateForQuote(stored, 7, [TPM_ALG.SHA256]).entries).toBe(0);
  });
});

describe('extendImaToQuote', () => {
  const entries = list(30);
  const quotedAt = (n: number): Map<number, Uint8Array> => replayIma(entries.slice(0, n), { banks: BANKS });

  it('consumes exactly the entries the quote covers, leaving later ones for the next attestation', () => {
    const s0 = extendIma(initialImaState(1, BANKS), entries.slice(0, 10));
    const r = extendImaToQuote(s0, entries.slice(10), quotedAt(25));
    expect(r.ok).toBe(true);
    expect(r.consumed).toBe(15);
    expect(r.state.entries).toBe(25);
    expect(hexMap(r.state.pcr10)).toEqual(hexMap(quotedAt(25)));
    // No new entries, same quote: nothing to do.
    const again = extendImaToQuote(r.state, [], quotedAt(25));
    expect(again).toMatchObject({ ok: true, consumed: 0 });
  });

  it('reports IMA_PCR10_MISMATCH per bank when no prefix matches, and keeps the old state', () => {
    const s0 = initialImaState(1, BANKS);
    const quoted = new Map([[TPM_ALG.SHA1, new Uint8Array(20).fill(1)], [TPM_ALG.SHA256, new Uint8Array(32).fill(2)]]);
    const r = extendImaToQuote(s0, entries, quoted);
    expect(r.ok).toBe(false);
    expect(r.state).toBe(s0);
    expect(r.failures.map((f) => [f.code, f.field])).toEqual([['IMA_PCR10_MISMATCH', 'pcrs.sha1[10]'], ['IMA_PCR10_MISMATCH', 'pcrs.sha256[10]']]);
    expect(r.failures[0]!.actual).toBe(reference(entries, 'sha1'));
  });

  it('a bank of the state missing from the quote is a failure, not a pass', () => {
    const r = extendImaToQuote(initialImaState(1, BANKS), entries, new Map([[TPM_ALG.SHA1, quotedAt(30).get(TPM_ALG.SHA1)!]]));
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatchObject({ code: 'IMA_PCR10_MISMATCH', field: 'pcrs.sha256[10]' });
  });

  it('compareImaPcr10 names the failing banks only', () => {
    const good = quotedAt(30);
    expect(compareImaPcr10(good, good)).toEqual([]);
    const bad = new Map(good);
    bad.set(TPM_ALG.SHA256, new Uint8Array(32));
    expect(compareImaPcr10(good, bad).map((f) => f.field)).toEqual(['pcrs.sha256[10]']);
  });
});
