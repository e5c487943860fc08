/**
 * TPMS_CAPABILITY_DATA (TPM 2.0 Library Part 2 §10.10.2): the answer to TPM2_GetCapability.
 *
 * ```
 * TPMS_CAPABILITY_DATA { TPM_CAP capability; TPMU_CAPABILITIES data; }   // capability: u32
 *   TPM_CAP_ALGS            TPML_ALG_PROPERTY        { u32 count; { TPM_ALG_ID alg; TPMA_ALGORITHM attrs (u32) }[count] }
 *   TPM_CAP_HANDLES         TPML_HANDLE              { u32 count; TPM_HANDLE (u32)[count] }
 *   TPM_CAP_COMMANDS        TPML_CCA                 { u32 count; TPMA_CC (u32)[count] }
 *   TPM_CAP_PP_COMMANDS,
 *   TPM_CAP_AUDIT_COMMANDS  TPML_CC                  { u32 count; TPM_CC (u32)[count] }
 *   TPM_CAP_PCRS            TPML_PCR_SELECTION
 *   TPM_CAP_TPM_PROPERTIES  TPML_TAGGED_TPM_PROPERTY { u32 count; { TPM_PT property; u32 value }[count] }
 *   TPM_CAP_PCR_PROPERTIES  TPML_TAGGED_PCR_PROPERTY { u32 count; { TPM_PT_PCR tag; u8 sizeofSelect; BYTE pcrSelect[] }[count] }
 *   TPM_CAP_ECC_CURVES      TPML_ECC_CURVE           { u32 count; TPM_ECC_CURVE (u16)[count] }
 * ```
 * Counts are bounded by the TSS's MAX_CAP_* values (MAX_CAP_DATA = 1016 bytes) before any loop.
 * The TPM-side answer is untrusted device output; nothing here is signed.
 */
import { Reader, Writer } from '../../lib/reader.js';
import { MisuseError } from '../../lib/errors.js';
import { TPM2_MAX } from './constants.js';
import { readPcrSelection, writePcrSelection, type PcrSelection } from './pcr.js';

/** TPM_CAP (Part 2 §6.12). */
export const TPM_CAP = {
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  COMMANDS: 0x00000002,
  PP_COMMANDS: 0x00000003,
  AUDIT_COMMANDS: 0x00000004,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
  PCR_PROPERTIES: 0x00000007,
  ECC_CURVES: 0x00000008,
} as const;

/** TPM_PT fixed properties (Part 2 §6.13) that vouch reads. */
export const TPM_PT = {
  FIXED: 0x100,
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  VENDOR_TPM_TYPE: 0x10a,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  PCR_COUNT: 0x112,
  NV_BUFFER_MAX: 0x12c,
} as const;

/** TPM_HT handle ranges (Part 2 §7.2), as the first handle of each range. */
export const TPM_HR = {
  PCR: 0x00000000,
  NV_INDEX: 0x01000000,
  HMAC_SESSION: 0x02000000,
  LOADED_SESSION: 0x02000000,
  POLICY_SESSION: 0x03000000,
  SAVED_SESSION: 0x03000000,
  PERMANENT: 0x40000000,
  TRANSIENT: 0x80000000,
  PERSISTENT: 0x81000000,
} as const;

/** Largest counts of each list (tss2_tpm2_types.h, from MAX_CAP_DATA = 1016). */
const MAX = {
  ALGS: 169,
  HANDLES: 254,
  CC: 254,
  TPM_PROPERTIES: 127,
  PCR_PROPERTIES: 203,
  ECC_CURVES: 508,
} as const;

/** TPMS_TAGGED_PCR_SELECT: a PCR property and the PCRs that have it. */
export interface TaggedPcrSelect {
  readonly tag: number;
  readonly pcrs: readonly number[];
  readonly sizeofSelect: number;
}

/** A decoded TPMS_CAPABILITY_DATA, tagged by `capability`. */
export type CapabilityData =
  | { readonly capability: typeof TPM_CAP.ALGS; readonly algs: readonly { readonly alg: number; readonly attributes: number }[] }
  | { readonly capability: typeof TPM_CAP.HANDLES; readonly handles: readonly number[] }
  | { readonly capability: typeof TPM_CAP.COMMANDS; readonly commands: readonly number[] }
  | { readonly capability: typeof TPM_CAP.PP_COMMANDS | typeof TPM_CAP.AUDIT_COMMANDS; readonly commandCodes: readonly number[] }
  | { readonly capability: typeof TPM_CAP.PCRS; readonly pcrs: PcrSelection }
  | { readonly capability: typeof TPM_CAP.TPM_PROPERTIES; readonly properties: readonly { readonly property: number; readonly value: number }[] }
  | { readonly capability: typeof TPM_CAP.PCR_PROPERTIES; readonly pcrProperties: readonly TaggedPcrSelect[] }
  | { readonly capability: typeof TPM_CAP.ECC_CURVES; readonly eccCurves: readonly number[] };

function readCount(r: Reader, field: string, max: number): number {
  const at = r.offset;
  return r.count(r.u32(`${field}.count`), max, `${field}.count`, at);
}

function readU32List(r: Reader, field: string, max: number, item: string): number[] {
  const n = readCount(r, field, max);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.u32(`${field}.${item}[${i}]`));
  return out;
}

/** Decodes a TPMS_CAPABILITY_DATA; trailing bytes are an error. */
export function decodeCapabilityData(bytes: Uint8Array): CapabilityData {
  const r = new Reader(bytes, 'TPMS_CAPABILITY_DATA');
  const capAt = r.offset;
  const capability = r.u32('capability');
  let out: CapabilityData;
  switch (capability) {
    case TPM_CAP.ALGS: {
      const n = readCount(r, 'data.algorithms', MAX.ALGS);
      const algs: { alg: number; attributes: number }[] = [];
      for (let i = 0; i < n; i++) {
        algs.push({ alg: r.u16(`data.algorithms.algProperties[${i}].alg`), attributes: r.u32(`data.algorithms.algProperties[${i}].algProperties`) });
      }
      out = { capability, algs };
      break;
    }
    case TPM_CAP.HANDLES:
      out = { capability, handles: readU32List(r, 'data.handles', MAX.HANDLES, 'handle') };
      break;
    case TPM_CAP.COMMANDS:
      out = { capability, commands: readU32List(r, 'data.command', MAX.CC, 'commandAttributes') };
      break;
    case TPM_CAP.PP_COMMANDS:
    case TPM_CAP.AUDIT_COMMANDS:
      out = { capability, commandCodes: readU32List(r, capability === TPM_CAP.PP_COMMANDS ? 'data.ppCommands' : 'data.auditCommands', MAX.CC, 'commandCodes') };
      break;
    case TPM_CAP.PCRS:
      out = { capability, pcrs: readPcrSelection(r, 'data.assignedPCR') };
      break;
    case TPM_CAP.TPM_PROPERTIES: {
      const n = readCount(r, 'data.tpmProperties', MAX.TPM_PROPERTIES);
      const properties: { property: number; value: number }[] = [];
      for (let i = 0; i < n; i++) {
        properties.push({ property: r.u32(`data.tpmProperties.tpmProperty[${i}].property`), value: r.u32(`data.tpmProperties.tpmProperty[${i}].value`) });
      }
      out = { capability, properties };
      break;
    }
    case TPM_CAP.PCR_PROPERTIES: {
      const n = readCount(r, 'data.pcrProperties', MAX.PCR_PROPERTIES);
      const pcrProperties: TaggedPcrSelect[] = [];
      for (let i = 0; i < n; i++) {
        const f = `data.pcrProperties.pcrProperty[${i}]`;
        const tag = r.u32(`${f}.tag`);
        const sizeAt = r.offset;
        const sizeofSelect = r.u8(`${f}.sizeofSelect`);
        if (sizeofSelect > TPM2_MAX.PCR_SELECT) {
          throw r.error('PARSE_SIZE_EXCEEDED', `${f}.sizeofSelect`, `${sizeofSelect} exceeds ${TPM2_MAX.PCR_SELECT}`, { at: sizeAt });
        }
        const bitmap = r.bytes(sizeofSelect, `${f}.pcrSelect`);
        const pcrs: number[] = [];
        for (let b = 0; b < bitmap.length; b++) for (let bit = 0; bit < 8; bit++) if (((bitmap[b] as number) >> bit) & 1) pcrs.push(b * 8 + bit);
        pcrProperties.push({ tag, pcrs, sizeofSelect });
      }
      out = { capability, pcrProperties };
      break;
    }
    case TPM_CAP.ECC_CURVES: {
      const n = readCount(r, 'data.eccCurves', MAX.ECC_CURVES);
      const eccCurves: number[] = [];
      for (let i = 0; i < n; i++) eccCurves.push(r.u16(`data.eccCurves.eccCurves[${i}]`));
      out = { capability, eccCurves };
      break;
    }
    default:
      throw r.error('PARSE_BAD_VALUE', 'capability', `TPM_CAP 0x${capability.toString(16)} is not supported by this decoder`, {
        at: capAt,
        actual: `0x${capability.toString(16)}`,
      });
  }
  r.finish();
  return out;
}

function checkCount(n: number, max: number, what: string): void {
  if (n > max) throw new MisuseError('MISUSE_ARGUMENT', `${what}: at most ${max} entries, got ${n}`);
}

/** Encodes a TPMS_CAPABILITY_DATA (the inverse of {@link decodeCapabilityData}). */
export function encodeCapabilityData(c: CapabilityData): Uint8Array {
  const w = new Writer(64);
  w.u32(c.capability);
  switch (c.capability) {
    case TPM_CAP.ALGS:
      checkCount(c.algs.length, MAX.ALGS, 'TPML_ALG_PROPERTY');
      w.u32(c.algs.length);
      for (const a of c.algs) w.u16(a.alg).u32(a.attributes);
      break;
    case TPM_CAP.HANDLES:
      checkCount(c.handles.length, MAX.HANDLES, 'TPML_HANDLE');
      w.u32(c.handles.length);
      for (const h of c.handles) w.u32(h);
      break;
    case TPM_CAP.COMMANDS:
      checkCount(c.commands.length, MAX.CC, 'TPML_CCA');
      w.u32(c.commands.length);
      for (const h of c.commands) w.u32(h);
      break;
    case TPM_CAP.PP_COMMANDS:
    case TPM_CAP.AUDIT_COMMANDS:
      checkCount(c.commandCodes.length, MAX.CC, 'TPML_CC');
      w.u32(c.commandCodes.length);
      for (const h of c.commandCodes) w.u32(h);
      break;
    case TPM_CAP.PCRS:
      writePcrSelection(w, c.pcrs);
      break;
    case TPM_CAP.TPM_PROPERTIES:
      checkCount(c.properties.length, MAX.TPM_PROPERTIES, 'TPML_TAGGED_TPM_PROPERTY');
      w.u32(c.properties.length);
      for (const p of c.properties) w.u32(p.property).u32(p.value);
      break;
    case TPM_CAP.PCR_PROPERTIES:
      checkCount(c.pcrProperties.length, MAX.PCR_PROPERTIES, 'TPML_TAGGED_PCR_PROPERTY');
      w.u32(c.pcrProperties.length);
      for (const p of c.pcrProperties) {
        const bitmap = new Uint8Array(p.sizeofSelect);
        for (const pcr of p.pcrs) {
          if (!Number.isInteger(pcr) || pcr < 0 || pcr >= p.sizeofSelect * 8) {
            throw new MisuseError('MISUSE_ARGUMENT', `PCR ${pcr} does not fit a ${p.sizeofSelect}-byte selection`);
          }
          bitmap[pcr >> 3] = (bitmap[pcr >> 3] as number) | (1 << (pcr & 7));
        }
        w.u32(p.tag).u8(p.sizeofSelect).bytes(bitmap);
      }
      break;
    case TPM_CAP.ECC_CURVES:
      checkCount(c.eccCurves.length, MAX.ECC_CURVES, 'TPML_ECC_CURVE');
      w.u32(c.eccCurves.length);
      for (const e of c.eccCurves) w.u16(e);
      break;
  }
  return w.finish();
}
