/**
 * TPMS_ATTEST (TPM 2.0 Library Part 2 §10.12.12): the structure a TPM signs for TPM2_Quote,
 * TPM2_Certify and the other attestation commands.
 *
 * ```
 * TPMS_ATTEST {
 *   TPM_GENERATED    magic;            // u32, must be TPM_GENERATED_VALUE 0xff544347
 *   TPMI_ST_ATTEST   type;             // u16, selects `attested`
 *   TPM2B_NAME       qualifiedSigner;
 *   TPM2B_DATA       extraData;        // the caller's qualifying data (nonce)
 *   TPMS_CLOCK_INFO  clockInfo;        // u64 clock, u32 resetCount, u32 restartCount, YES_NO safe
 *   UINT64           firmwareVersion;
 *   TPMU_ATTEST      attested;
 * }
 * ```
 * Until its signature is verified every field is the signer's *claim*; verify/quote.ts checks it.
 */
import { Reader, Writer } from '../../lib/reader.js';
import { toHex } from '../../lib/bytes.js';
import { TPM2_MAX, TPM_GENERATED_VALUE, TPM_ST_ATTEST } from './constants.js';
import { readHashAlg } from './public.js';
import { readPcrSelection, writePcrSelection, type PcrSelection } from './pcr.js';

/** TPMS_CLOCK_INFO (§10.11.1). */
export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** TPMS_QUOTE_INFO (§10.12.4). */
export interface QuoteInfo {
  readonly pcrSelect: PcrSelection;
  readonly pcrDigest: Uint8Array;
}

/** TPMU_ATTEST, tagged by `type`. */
export type Attested =
  | { readonly type: typeof TPM_ST_ATTEST.QUOTE; readonly quote: QuoteInfo }
  | { readonly type: typeof TPM_ST_ATTEST.CERTIFY; readonly certify: { readonly name: Uint8Array; readonly qualifiedName: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST.CREATION; readonly creation: { readonly objectName: Uint8Array; readonly creationHash: Uint8Array } }
  | {
      readonly type: typeof TPM_ST_ATTEST.COMMAND_AUDIT;
      readonly commandAudit: { readonly auditCounter: bigint; readonly digestAlg: number; readonly auditDigest: Uint8Array; readonly commandDigest: Uint8Array };
    }
  | { readonly type: typeof TPM_ST_ATTEST.SESSION_AUDIT; readonly sessionAudit: { readonly exclusiveSession: boolean; readonly sessionDigest: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST.TIME; readonly time: { readonly time: bigint; readonly clockInfo: ClockInfo; readonly firmwareVersion: bigint } }
  | { readonly type: typeof TPM_ST_ATTEST.NV; readonly nv: { readonly indexName: Uint8Array; readonly offset: number; readonly nvContents: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST.NV_DIGEST; readonly nvDigest: { readonly indexName: Uint8Array; readonly nvDigest: Uint8Array } };

/** A decoded TPMS_ATTEST. `raw` holds the exact bytes the signature covers. */
export interface TpmsAttest {
  readonly magic: number;
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly attested: Attested;
  readonly raw: Uint8Array;
}

function readYesNo(r: Reader, field: string): boolean {
  const at = r.offset;
  const v = r.u8(field);
  if (v > 1) throw r.error('PARSE_BAD_VALUE', field, `TPMI_YES_NO must be 0 or 1, got ${v}`, { at, actual: String(v) });
  return v === 1;
}

function readClockInfo(r: Reader, field: string): ClockInfo {
  return {
    clock: r.u64(`${field}.clock`),
    resetCount: r.u32(`${field}.resetCount`),
    restartCount: r.u32(`${field}.restartCount`),
    safe: readYesNo(r, `${field}.safe`),
  };
}

function writeClockInfo(w: Writer, c: ClockInfo): void {
  w.u64(c.clock).u32(c.resetCount).u32(c.restartCount).u8(c.safe ? 1 : 0);
}

function readName(r: Reader, field: string): Uint8Array {
  return r.tpm2b(field, TPM2_MAX.NAME);
}

function readAttested(r: Reader, type: number, typeAt: number): Attested {
  switch (type) {
    case TPM_ST_ATTEST.QUOTE: {
      const pcrSelect = readPcrSelection(r, 'attested.quote.pcrSelect');
      const pcrDigest = r.tpm2b('attested.quote.pcrDigest', TPM2_MAX.DIGEST);
      return { type, quote: { pcrSelect, pcrDigest } };
    }
    case TPM_ST_ATTEST.CERTIFY:
      return { type, certify: { name: readName(r, 'attested.certify.name'), qualifiedName: readName(r, 'attested.certify.qualifiedName') } };
    case TPM_ST_ATTEST.CREATION:
      return {
        type,
        creation: { objectName: readName(r, 'attested.creation.objectName'), creationHash: r.tpm2b('attested.creation.creationHash', TPM2_MAX.DIGEST) },
      };
    case TPM_ST_ATTEST.COMMAND_AUDIT:
      return {
        type,
        commandAudit: {
          auditCounter: r.u64('attested.commandAudit.auditCounter'),
          digestAlg: readHashAlg(r, 'attested.commandAudit.digestAlg', false),
          auditDigest: r.tpm2b('attested.commandAudit.auditDigest', TPM2_MAX.DIGEST),
          commandDigest: r.tpm2b('attested.commandAudit.commandDigest', TPM2_MAX.DIGEST),
        },
      };
    case TPM_ST_ATTEST.SESSION_AUDIT:
      return {
        type,
        sessionAudit: {
          exclusiveSession: readYesNo(r, 'attested.sessionAudit.exclusiveSession'),
          sessionDigest: r.tpm2b('attested.sessionAudit.sessionDigest', TPM2_MAX.DIGEST),
        },
      };
    case TPM_ST_ATTEST.TIME:
      return {
        type,
        time: {
          time: r.u64('attested.time.time.time'),
          clockInfo: readClockInfo(r, 'attested.time.time.clockInfo'),
          firmwareVersion: r.u64('attested.time.firmwareVersion'),
        },
      };
    case TPM_ST_ATTEST.NV:
      return {
        type,
        nv: {
          indexName: readName(r, 'attested.nv.indexName'),
          offset: r.u16('attested.nv.offset'),
          nvContents: r.tpm2b('attested.nv.nvContents', TPM2_MAX.NV_BUFFER),
        },
      };
    case TPM_ST_ATTEST.NV_DIGEST:
      return {
        type,
        nvDigest: { indexName: readName(r, 'attested.nvDigest.indexName'), nvDigest: r.tpm2b('attested.nvDigest.nvDigest', TPM2_MAX.DIGEST) },
      };
    default:
      throw r.error('PARSE_BAD_MAGIC', 'type', `0x${type.toString(16)} is not a TPMI_ST_ATTEST`, { at: typeAt, actual: `0x${type.toString(16)}` });
  }
}

/**
 * Decodes a TPMS_ATTEST. Strict: the magic must be TPM_GENERATED_VALUE, the type a
 * TPMI_ST_ATTEST, every size within its TPM2B bound, and no byte may follow the structure.
 */
export function decodeTpmsAttest(bytes: Uint8Array): TpmsAttest {
  const r = new Reader(bytes, 'TPMS_ATTEST');
  const magicAt = r.offset;
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw r.error('PARSE_BAD_MAGIC', 'magic', 'not TPM_GENERATED_VALUE', {
      at: magicAt,
      expected: 'ff544347',
      actual: magic.toString(16).padStart(8, '0'),
    });
  }
  const typeAt = r.offset;
  const type = r.u16('type');
  const qualifiedSigner = readName(r, 'qualifiedSigner');
  const extraData = r.tpm2b('extraData', TPM2_MAX.DATA);
  const clockInfo = readClockInfo(r, 'clockInfo');
  const firmwareVersion = r.u64('firmwareVersion');
  const attested = readAttested(r, type, typeAt);
  r.finish();
  return { magic, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested, raw: bytes };
}

/** Encodes a TPMS_ATTEST from its fields (the inverse of {@link decodeTpmsAttest}). */
export function encodeTpmsAttest(a: Omit<TpmsAttest, 'raw'>): Uint8Array {
  const w = new Writer(160);
  w.u32(a.magic).u16(a.attested.type).tpm2b(a.qualifiedSigner).tpm2b(a.extraData);
  writeClockInfo(w, a.clockInfo);
  w.u64(a.firmwareVersion);
  const at = a.attested;
  switch (at.type) {
    case TPM_ST_ATTEST.QUOTE:
      writePcrSelection(w, at.quote.pcrSelect);
      w.tpm2b(at.quote.pcrDigest);
      break;
    case TPM_ST_ATTEST.CERTIFY:
      w.tpm2b(at.certify.name).tpm2b(at.certify.qualifiedName);
      break;
    case TPM_ST_ATTEST.CREATION:
      w.tpm2b(at.creation.objectName).tpm2b(at.creation.creationHash);
      break;
    case TPM_ST_ATTEST.COMMAND_AUDIT:
      w.u64(at.commandAudit.auditCounter).u16(at.commandAudit.digestAlg).tpm2b(at.commandAudit.auditDigest).tpm2b(at.commandAudit.commandDigest);
      break;
    case TPM_ST_ATTEST.SESSION_AUDIT:
      w.u8(at.sessionAudit.exclusiveSession ? 1 : 0).tpm2b(at.sessionAudit.sessionDigest);
      break;
    case TPM_ST_ATTEST.TIME:
      w.u64(at.time.time);
      writeClockInfo(w, at.time.clockInfo);
      w.u64(at.time.firmwareVersion);
      break;
    case TPM_ST_ATTEST.NV:
      w.tpm2b(at.nv.indexName).u16(at.nv.offset).tpm2b(at.nv.nvContents);
      break;
    case TPM_ST_ATTEST.NV_DIGEST:
      w.tpm2b(at.nvDigest.indexName).tpm2b(at.nvDigest.nvDigest);
      break;
  }
  return w.finish();
}

/** A short human description of the signer's claimed clock, for messages. */
export function describeClock(c: ClockInfo): string {
  return `clock=${c.clock} resetCount=${c.resetCount} restartCount=${c.restartCount} safe=${c.safe ? 1 : 0}`;
}

/** Hex of the extra data, for messages. */
export function describeExtraData(a: TpmsAttest): string {
  return toHex(a.extraData);
}
