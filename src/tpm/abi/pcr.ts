/**
 * TPML_PCR_SELECTION, TPMS_PCR_SELECTION and TPML_DIGEST (TPM 2.0 Library Part 2 §10.6, §10.9).
 *
 * ```
 * TPMS_PCR_SELECTION { TPMI_ALG_HASH hash; UINT8 sizeofSelect; BYTE pcrSelect[sizeofSelect]; }
 * TPML_PCR_SELECTION { UINT32 count; TPMS_PCR_SELECTION pcrSelections[count]; }
 * TPML_DIGEST        { UINT32 count; TPM2B_DIGEST digests[count]; }
 * ```
 * Bit `j` of pcrSelect byte `i` selects PCR `8*i + j`.
 */
import { Reader, Writer } from '../../lib/reader.js';
import { MisuseError } from '../../lib/errors.js';
import { TPM2_MAX } from './constants.js';
import { readHashAlg } from './public.js';

/** One bank of a selection: the hash algorithm and the selected PCR indices, ascending. */
export interface PcrBankSelection {
  readonly hashAlg: number;
  readonly pcrs: readonly number[];
  /** sizeofSelect as read (3 for 24 PCRs); kept so the encoder is the decoder's exact inverse. */
  readonly sizeofSelect: number;
}

/** A decoded TPML_PCR_SELECTION, in wire order. */
export type PcrSelection = readonly PcrBankSelection[];

/** PCR_SELECT_MIN for a 24-PCR TPM (Part 2 §10.6.1). */
export const PCR_SELECT_MIN = 3;

/** `field.sub`, or `sub` alone when the structure is the reader's root. */
function member(field: string, sub: string): string {
  return field === '' ? sub : `${field}.${sub}`;
}

/** Reads a TPML_PCR_SELECTION. */
export function readPcrSelection(r: Reader, field: string): PcrSelection {
  const at = r.offset;
  const count = r.count(r.u32(member(field, 'count')), TPM2_MAX.PCR_BANKS, member(field, 'count'), at);
  const out: PcrBankSelection[] = [];
  for (let i = 0; i < count; i++) {
    const f = member(field, `pcrSelections[${i}]`);
    const hashAlg = readHashAlg(r, `${f}.hash`, false);
    const sizeAt = r.offset;
    const sizeofSelect = r.u8(`${f}.sizeofSelect`);
    if (sizeofSelect > TPM2_MAX.PCR_SELECT) {
      throw r.error('PARSE_SIZE_EXCEEDED', `${f}.sizeofSelect`, `${sizeofSelect} exceeds ${TPM2_MAX.PCR_SELECT}`, { at: sizeAt });
    }
    const bitmap = r.bytes(sizeofSelect, `${f}.pcrSelect`);
    const pcrs: number[] = [];
    for (let b = 0; b < bitmap.length; b++) {
      const byte = bitmap[b] as number;
      for (let bit = 0; bit < 8; bit++) if ((byte >> bit) & 1) pcrs.push(b * 8 + bit);
    }
    out.push({ hashAlg, pcrs, sizeofSelect });
  }
  return out;
}

/** Decodes a whole TPML_PCR_SELECTION. */
export function decodePcrSelection(bytes: Uint8Array): PcrSelection {
  const r = new Reader(bytes, 'TPML_PCR_SELECTION');
  const s = readPcrSelection(r, '');
  r.finish();
  return s;
}

/** Writes a TPML_PCR_SELECTION. */
export function writePcrSelection(w: Writer, sel: PcrSelection): void {
  if (sel.length > TPM2_MAX.PCR_BANKS) throw new MisuseError('MISUSE_ARGUMENT', `at most ${TPM2_MAX.PCR_BANKS} banks`);
  w.u32(sel.length);
  for (const bank of sel) {
    const size = bank.sizeofSelect;
    const bitmap = new Uint8Array(size);
    for (const pcr of bank.pcrs) {
      if (!Number.isInteger(pcr) || pcr < 0 || pcr >= size * 8) {
        throw new MisuseError('MISUSE_ARGUMENT', `PCR ${pcr} does not fit a ${size}-byte selection`);
      }
      bitmap[pcr >> 3] = (bitmap[pcr >> 3] as number) | (1 << (pcr & 7));
    }
    w.u16(bank.hashAlg).u8(size).bytes(bitmap);
  }
}

/** Encodes a TPML_PCR_SELECTION. */
export function encodePcrSelection(sel: PcrSelection): Uint8Array {
  const w = new Writer(64);
  writePcrSelection(w, sel);
  return w.finish();
}

/**
 * Builds a selection from bank → PCR indices, with the minimum bitmap size that holds them
 * (at least PCR_SELECT_MIN). PCRs are sorted and deduplicated.
 */
export function pcrSelection(banks: ReadonlyArray<{ hashAlg: number; pcrs: readonly number[] }>): PcrSelection {
  return banks.map(({ hashAlg, pcrs }) => {
    const sorted = [...new Set(pcrs)].sort((a, b) => a - b);
    const max = sorted.length === 0 ? 0 : (sorted[sorted.length - 1] as number);
    const sizeofSelect = Math.max(PCR_SELECT_MIN, (max >> 3) + 1);
    return { hashAlg, pcrs: sorted, sizeofSelect };
  });
}

/** True when two selections select the same PCRs of the same banks in the same order. */
export function sameSelection(a: PcrSelection, b: PcrSelection): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i] as PcrBankSelection;
    return x.hashAlg === y.hashAlg && x.pcrs.length === y.pcrs.length && x.pcrs.every((p, j) => p === y.pcrs[j]);
  });
}

/** Reads a TPML_DIGEST. */
export function readDigestList(r: Reader, field: string): Uint8Array[] {
  const at = r.offset;
  const count = r.count(r.u32(member(field, 'count')), TPM2_MAX.DIGEST_LIST, member(field, 'count'), at);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.tpm2b(member(field, `digests[${i}]`), TPM2_MAX.DIGEST));
  return out;
}

/** Decodes a whole TPML_DIGEST. */
export function decodeDigestList(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes, 'TPML_DIGEST');
  const d = readDigestList(r, '');
  r.finish();
  return d;
}

/** Encodes a TPML_DIGEST. */
export function encodeDigestList(digests: readonly Uint8Array[]): Uint8Array {
  if (digests.length > TPM2_MAX.DIGEST_LIST) throw new MisuseError('MISUSE_ARGUMENT', `at most ${TPM2_MAX.DIGEST_LIST} digests`);
  const w = new Writer(64 * digests.length + 4);
  w.u32(digests.length);
  for (const d of digests) w.tpm2b(d);
  return w.finish();
}
