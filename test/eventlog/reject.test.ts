/**
 * Rejections, each with its code: the parser checks every size, count, algorithm and magic before
 * use; replay and comparison report each failing PCR. Logs are built with the test firmware helper.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError, type ErrorCode } from '../../src/lib/errors.js';
import { Writer } from '../../src/lib/reader.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { bootClaims, compareWithQuote, EV, parseEventLog, parseQuirks, replayEventLog, verifyEventLog } from '../../src/eventlog/index.js';
import { decodeSignatureDatabase, decodeUefiVariableData } from '../../src/eventlog/uefi.js';
import { encodeEventLog, typicalBoot, uefiVariable } from '../helpers/firmware-log.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];
const boot = typicalBoot({ secureBoot: true, cmdline: 'root=/dev/vda1 ro', bootloader: new Uint8Array(Buffer.from('boot loader image')) });
const good = (): Uint8Array => encodeEventLog(boot, BANKS);
const specIdSize = 16 + 4 + 4 + 4 + 4 * BANKS.length + 1; // signature … vendorInfoSize
const firstEvent = 32 + specIdSize; // the TCG_PCR_EVENT that carries the Spec ID event

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return undefined;
}

function patch(b: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = new Uint8Array(b);
  out.set(bytes, at);
  return out;
}

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

describe('parseEventLog rejects', () => {
  it('accepts the well-formed synthetic log (baseline)', () => {
    const l = parseEventLog(good());
    expect(l.format).toBe('crypto-agile');
    expect(l.banks).toEqual(BANKS);
    expect(l.untrustedEvents).toHaveLength(boot.length + 1);
  });

  it('an empty log: PARSE_TRUNCATED', () => {
    expect(codeOf(() => parseEventLog(new Uint8Array(0)))).toBe('PARSE_TRUNCATED');
  });

  it('a log larger than the limit: PARSE_SIZE_EXCEEDED', () => {
    expect(codeOf(() => parseEventLog(good(), { maxLogBytes: 100 }))).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('an event size beyond the bytes left: PARSE_TRUNCATED, before any slice', () => {
    const b = good();
    const l = parseEventLog(b);
    const e = l.untrustedEvents[1]!;
    const sizeAt = e.offset + e.raw.length - e.untrustedData.length - 4;
    expect(codeOf(() => parseEventLog(patch(b, sizeAt, le32(b.length))))).toBe('PARSE_TRUNCATED');
  });

  it('an event size above the sane maximum: PARSE_SIZE_EXCEEDED', () => {
    const b = good();
    const e = parseEventLog(b).untrustedEvents[1]!;
    const sizeAt = e.offset + e.raw.length - e.untrustedData.length - 4;
    expect(codeOf(() => parseEventLog(patch(b, sizeAt, le32(0x7fffffff))))).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('a digest count above the declared algorithms: PARSE_SIZE_EXCEEDED', () => {
    const b = good();
    expect(codeOf(() => parseEventLog(patch(b, firstEvent + 8, le32(3))))).toBe('PARSE_SIZE_EXCEEDED');
    expect(codeOf(() => parseEventLog(patch(b, firstEvent + 8, le32(0xffffffff))))).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('a digest count of zero: PARSE_BAD_VALUE', () => {
    expect(codeOf(() => parseEventLog(patch(good(), firstEvent + 8, le32(0))))).toBe('PARSE_BAD_VALUE');
  });

  it('a digest of an algorithm the Spec ID event does not declare: PARSE_UNSUPPORTED_ALGORITHM', () => {
    expect(codeOf(() => parseEventLog(patch(good(), firstEvent + 12, [0x0c, 0x00])))).toBe('PARSE_UNSUPPORTED_ALGORITHM');
  });

  it('the same algorithm twice in one digest list: PARSE_BAD_VALUE', () => {
    // Second TPMT_HA's hashAlg (after the 20-byte SHA-1 digest) set to SHA-1 again.
    expect(codeOf(() => parseEventLog(patch(good(), firstEvent + 12 + 2 + 20, [0x04, 0x00])))).toBe('PARSE_BAD_VALUE');
  });

  it('a Spec ID event with a wrong digest size for a known algorithm: PARSE_BAD_VALUE', () => {
    // digestSizes[0].digestSize (SHA-1) at 32 + 16 + 4 + 4 + 4 + 2.
    expect(codeOf(() => parseEventLog(patch(good(), 32 + 30, [21, 0])))).toBe('PARSE_BAD_VALUE');
  });

  it('a Spec ID event declaring too many algorithms: PARSE_SIZE_EXCEEDED', () => {
    expect(codeOf(() => parseEventLog(patch(good(), 32 + 24, le32(1000))))).toBe('PARSE_SIZE_EXCEEDED');
  });

  it('a Spec ID event with bytes after vendorInfo: PARSE_TRAILING_BYTES', () => {
    const b = good();
    // eventDataSize of the first record one larger: the Spec ID structure then has a trailing byte.
    const grown = new Writer().bytes(b.subarray(0, 28)).u32(specIdSize + 1, 'le').bytes(b.subarray(32, firstEvent)).u8(0).bytes(b.subarray(firstEvent)).finish();
    expect(codeOf(() => parseEventLog(grown))).toBe('PARSE_TRAILING_BYTES');
  });

  it('a Spec ID event with a bad uintnSize: PARSE_BAD_VALUE', () => {
    expect(codeOf(() => parseEventLog(patch(good(), 32 + 23, [3])))).toBe('PARSE_BAD_VALUE');
  });

  it('a Spec ID event under a non-zero digest: PARSE_BAD_VALUE', () => {
    expect(codeOf(() => parseEventLog(patch(good(), 8, [1])))).toBe('PARSE_BAD_VALUE');
  });

  it('an extended event naming PCR 24 or above: PARSE_BAD_VALUE', () => {
    expect(codeOf(() => parseEventLog(patch(good(), firstEvent, le32(24))))).toBe('PARSE_BAD_VALUE');
  });

  it('a legacy log truncated inside a record: PARSE_TRUNCATED', () => {
    const legacy = new Writer().u32(0, 'le').u32(EV.SEPARATOR, 'le').bytes(new Uint8Array(20)).u32(4, 'le').bytes(new Uint8Array(4)).finish();
    expect(parseEventLog(legacy).format).toBe('sha1');
    expect(codeOf(() => parseEventLog(legacy.subarray(0, legacy.length - 1)))).toBe('PARSE_TRUNCATED');
  });

  it('verifyEventLog returns a parse failure as a value, with its code', () => {
    const v = verifyEventLog(good().subarray(0, 100), new Map());
    expect(v.ok).toBe(false);
    expect(v.failures[0]!.code).toBe('PARSE_TRUNCATED');
    expect(() => bootClaims(v)).toThrow(expect.objectContaining({ code: 'EVENTLOG_NOT_REPLAYED' }));
  });
});

describe('UEFI structures reject', () => {
  it('UEFI_VARIABLE_DATA lengths beyond the data: PARSE_TRUNCATED', () => {
    const v = uefiVariable('SecureBoot', Uint8Array.of(1));
    expect(decodeUefiVariableData(v).name).toBe('SecureBoot');
    expect(codeOf(() => decodeUefiVariableData(patch(v, 16, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])))).toBe('PARSE_TRUNCATED');
    expect(codeOf(() => decodeUefiVariableData(patch(v, 24, [2])))).toBe('PARSE_TRUNCATED');
    expect(codeOf(() => decodeUefiVariableData(new Uint8Array([...v, 0])))).toBe('PARSE_TRAILING_BYTES');
  });

  it('EFI_SIGNATURE_LIST sizes that do not divide or fit: typed errors', () => {
    const list = new Writer().bytes(new Uint8Array(16)).u32(28 + 48, 'le').u32(0, 'le').u32(48, 'le').bytes(new Uint8Array(48)).finish();
    expect(decodeSignatureDatabase(list)[0]!.signatures).toHaveLength(1);
    expect(codeOf(() => decodeSignatureDatabase(patch(list, 24, le32(47))))).toBe('PARSE_BAD_VALUE');
    expect(codeOf(() => decodeSignatureDatabase(patch(list, 24, le32(0))))).toBe('PARSE_BAD_VALUE');
    expect(codeOf(() => decodeSignatureDatabase(patch(list, 16, le32(1000))))).toBe('PARSE_SIZE_EXCEEDED');
    expect(codeOf(() => decodeSignatureDatabase(patch(list, 16, le32(10))))).toBe('PARSE_SIZE_EXCEEDED');
  });
});

describe('replay and comparison', () => {
  const replayed = () => replayEventLog(parseEventLog(good()));

  it('the synthetic log verifies against its own PCRs and gives its claims', () => {
    const v = verifyEventLog(good(), replayed().pcrs);
    expect(v.ok).toBe(true);
    const c = bootClaims(v);
    expect(c.secureBoot.state).toBe('enabled');
    expect(c.kernelCmdline).toMatchObject({ value: 'root=/dev/vda1 ro', source: 'grub' });
    expect(c.sCrtmVersion).toMatchObject({ value: 'vouch test firmware 1.2', encoding: 'ucs2' });
    expect(c.separators).toHaveLength(8);
  });

  it('EV_NO_ACTION events are not extended', () => {
    const withNoAction = encodeEventLog([{ pcr: 4, type: EV.NO_ACTION, data: new Uint8Array(8) }, ...boot], BANKS);
    const a = replayed().pcrs;
    const b = replayEventLog(parseEventLog(withNoAction)).pcrs;
    for (const bank of BANKS) for (const [pcr, v] of a.get(bank)!) expect(toHex(b.get(bank)!.get(pcr)!)).toBe(toHex(v));
  });

  it('a StartupLocality event after a PCR 0 measurement does not change PCR 0', () => {
    const loc = { pcr: 0, type: EV.NO_ACTION, data: new Uint8Array([...Buffer.from('StartupLocality\0', 'latin1'), 3]) };
    const before = replayEventLog(parseEventLog(encodeEventLog([loc, ...boot], BANKS)));
    const after = replayEventLog(parseEventLog(encodeEventLog([...boot, loc], BANKS)));
    expect(before.startupLocality).toBe(3);
    expect(after.startupLocality).toBeUndefined();
    expect(toHex(after.pcrs.get(TPM_ALG.SHA256)!.get(0)!)).toBe(toHex(replayed().pcrs.get(TPM_ALG.SHA256)!.get(0)!));
    expect(toHex(before.pcrs.get(TPM_ALG.SHA256)!.get(0)!)).not.toBe(toHex(replayed().pcrs.get(TPM_ALG.SHA256)!.get(0)!));
  });

  it('a changed event is EVENTLOG_REPLAY_MISMATCH naming the PCR and showing the changed event', () => {
    const quoted = replayed().pcrs;
    const changed = typicalBoot({ secureBoot: false, cmdline: 'root=/dev/vda1 ro', bootloader: new Uint8Array(Buffer.from('boot loader image')) });
    const v = verifyEventLog(encodeEventLog(changed, BANKS), quoted);
    expect(v.ok).toBe(false);
    expect(v.comparison!.failures.map((f) => [f.code, f.bank, f.pcr])).toEqual([
      ['EVENTLOG_REPLAY_MISMATCH', 'sha1', 7],
      ['EVENTLOG_REPLAY_MISMATCH', 'sha256', 7],
    ]);
    expect(v.comparison!.failures[0]!.lastEvents.map((e) => e.type)).toEqual(['EV_EFI_VARIABLE_DRIVER_CONFIG', 'EV_SEPARATOR']);
  });

  it('an event without a digest for a bank leaves that PCR not covered in that bank', () => {
    const b = good();
    // Rewrite the first TCG_PCR_EVENT2 with a single (SHA-1) digest.
    const e = parseEventLog(b).untrustedEvents[1]!;
    const one = new Writer().u32(e.pcr, 'le').u32(e.untrustedType, 'le').u32(1, 'le').u16(TPM_ALG.SHA1, 'le').bytes(e.digests[0]!.digest).u32(e.untrustedData.length, 'le').bytes(e.untrustedData).finish();
    const log = parseEventLog(new Writer().bytes(b.subarray(0, e.offset)).bytes(one).bytes(b.subarray(e.offset + e.raw.length)).finish());
    const r = replayEventLog(log);
    expect(r.gaps).toEqual([expect.objectContaining({ hashAlg: TPM_ALG.SHA256, pcr: e.pcr })]);
    const c = compareWithQuote(r, replayed().pcrs, { pcrs: [e.pcr] });
    expect(c.failures.map((f) => [f.code, f.bank])).toEqual([['EVENTLOG_PCR_NOT_COVERED', 'sha256']]);
  });

  it('a relied-on PCR the quote lacks is TPM_QUOTE_PCR_VALUES_MISSING; no common bank is not covered', () => {
    const r = replayed();
    const partial = new Map([[TPM_ALG.SHA256, new Map([[0, r.pcrs.get(TPM_ALG.SHA256)!.get(0)!]])]]);
    expect(compareWithQuote(r, partial, { pcrs: [0, 4] }).failures.map((f) => f.code)).toEqual(['TPM_QUOTE_PCR_VALUES_MISSING']);
    expect(compareWithQuote(r, new Map([[TPM_ALG.SHA384, new Map()]])).failures.map((f) => f.code)).toEqual(['EVENTLOG_PCR_NOT_COVERED']);
  });

  it('claims: a variable whose data is not what its digest measures gives no claim', () => {
    const forged = boot.map((e) => (e.type === EV.EFI_VARIABLE_DRIVER_CONFIG ? { ...e, measured: uefiVariable('SecureBoot', Uint8Array.of(0)) } : e));
    const bytes = encodeEventLog(forged, BANKS);
    const v = verifyEventLog(bytes, replayEventLog(parseEventLog(bytes)).pcrs);
    const c = bootClaims(v);
    expect(c.secureBoot.state).toBe('unknown');
    expect(c.unboundEvents).toHaveLength(1);
  });

  it('unknown quirk names are misuse', () => {
    expect(parseQuirks(['ebs-missing', 'ebs-missing'])).toEqual(['ebs-missing']);
    expect(codeOf(() => parseQuirks(['ebs'])) ).toBe('MISUSE_ARGUMENT');
  });
});
