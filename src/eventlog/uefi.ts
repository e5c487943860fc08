/**
 * UEFI structures carried in event data (bytes → typed values, no crypto). All little-endian.
 *
 * ```
 * UEFI_VARIABLE_DATA (PFP §10.4.5.6)      UEFI_IMAGE_LOAD_EVENT (PFP §10.4.5.4)
 *   EFI_GUID VariableName                   u64 ImageLocationInMemory
 *   u64      UnicodeNameLength (chars)      u64 ImageLengthInMemory
 *   u64      VariableDataLength             u64 ImageLinkTimeAddress
 *   CHAR16   UnicodeName[len]               u64 LengthOfDevicePath
 *   u8       VariableData[len]              EFI_DEVICE_PATH DevicePath[len]
 *
 * EFI_SIGNATURE_LIST (UEFI 2.x §32.4.1), repeated to the end of a db/dbx/KEK/PK value
 *   EFI_GUID SignatureType
 *   u32      SignatureListSize (whole list)
 *   u32      SignatureHeaderSize
 *   u32      SignatureSize (each EFI_SIGNATURE_DATA)
 *   u8       SignatureHeader[SignatureHeaderSize]
 *   EFI_SIGNATURE_DATA { EFI_GUID SignatureOwner; u8 SignatureData[SignatureSize - 16] } [...]
 * ```
 * Decoded values are untrusted: they are claims only when the event's digest is the hash of
 * these bytes and the event's PCR replayed to a quoted value (claims.ts).
 */
import { ParseError } from '../lib/errors.js';
import { Reader } from '../lib/reader.js';

/** EFI_GUID in canonical text: the first three fields are little-endian. */
export function guidText(b: Uint8Array): string {
  const h = (i: number): string => b[i]!.toString(16).padStart(2, '0');
  const r = (idx: number[]): string => idx.map(h).join('');
  return `${r([3, 2, 1, 0])}-${r([5, 4])}-${r([7, 6])}-${r([8, 9])}-${r([10, 11, 12, 13, 14, 15])}`;
}

/** Strict UTF-16LE decoding (an unpaired surrogate is an error). */
export function utf16le(b: Uint8Array, field: string): string {
  if (b.length % 2 !== 0) throw new ParseError('PARSE_BAD_ENCODING', `${field} has an odd number of bytes for UTF-16`, { field });
  try {
    return new TextDecoder('utf-16le', { fatal: true }).decode(b);
  } catch (cause) {
    throw new ParseError('PARSE_BAD_ENCODING', `${field} is not valid UTF-16LE`, { field, cause });
  }
}

/** UEFI_VARIABLE_DATA. */
export interface UefiVariableData {
  readonly vendorGuid: string;
  readonly name: string;
  readonly data: Uint8Array;
}

/** Decodes UEFI_VARIABLE_DATA; the structure must fill `bytes` exactly. */
export function decodeUefiVariableData(bytes: Uint8Array, base = 0): UefiVariableData {
  const r = new Reader(bytes, 'UEFI_VARIABLE_DATA', base);
  const guid = r.bytes(16, 'VariableName');
  const nameLenAt = r.offset;
  const nameLen = r.u64('UnicodeNameLength', 'le');
  const dataLenAt = r.offset;
  const dataLen = r.u64('VariableDataLength', 'le');
  // Both lengths are checked against the bytes left before they become numbers or slices.
  if (nameLen * 2n > BigInt(r.remaining)) throw r.error('PARSE_TRUNCATED', 'UnicodeNameLength', `${nameLen} characters exceed the ${r.remaining} bytes left`, { at: nameLenAt });
  const nameBytes = r.bytes(Number(nameLen) * 2, 'UnicodeName');
  if (dataLen > BigInt(r.remaining)) throw r.error('PARSE_TRUNCATED', 'VariableDataLength', `${dataLen} bytes exceed the ${r.remaining} bytes left`, { at: dataLenAt });
  const data = r.bytes(Number(dataLen), 'VariableData');
  r.finish();
  return { vendorGuid: guidText(guid), name: utf16le(nameBytes, 'UEFI_VARIABLE_DATA.UnicodeName'), data };
}

/** UEFI_IMAGE_LOAD_EVENT. */
export interface UefiImageLoadEvent {
  readonly imageLocationInMemory: bigint;
  readonly imageLengthInMemory: bigint;
  readonly imageLinkTimeAddress: bigint;
  readonly devicePath: Uint8Array;
}

/** Decodes UEFI_IMAGE_LOAD_EVENT; the structure must fill `bytes` exactly. */
export function decodeUefiImageLoadEvent(bytes: Uint8Array, base = 0): UefiImageLoadEvent {
  const r = new Reader(bytes, 'UEFI_IMAGE_LOAD_EVENT', base);
  const imageLocationInMemory = r.u64('ImageLocationInMemory', 'le');
  const imageLengthInMemory = r.u64('ImageLengthInMemory', 'le');
  const imageLinkTimeAddress = r.u64('ImageLinkTimeAddress', 'le');
  const lenAt = r.offset;
  const len = r.u64('LengthOfDevicePath', 'le');
  if (len > BigInt(r.remaining)) throw r.error('PARSE_TRUNCATED', 'LengthOfDevicePath', `${len} bytes exceed the ${r.remaining} bytes left`, { at: lenAt });
  const devicePath = r.bytes(Number(len), 'DevicePath');
  r.finish();
  return { imageLocationInMemory, imageLengthInMemory, imageLinkTimeAddress, devicePath };
}

/**
 * The file path of an EFI_DEVICE_PATH (the MEDIA_FILEPATH_DP nodes, type 4 subtype 4, joined), or
 * undefined when it has none. Node lengths are checked before each node is read.
 */
export function devicePathFile(bytes: Uint8Array): string | undefined {
  const r = new Reader(bytes, 'EFI_DEVICE_PATH');
  const parts: string[] = [];
  while (r.remaining >= 4) {
    const at = r.offset;
    const type = r.u8('Type');
    const subType = r.u8('SubType');
    const length = r.u16('Length', 'le');
    if (length < 4) throw r.error('PARSE_BAD_VALUE', 'Length', `device path node length ${length} is below 4`, { at: at + 2 });
    const body = r.bytes(length - 4, 'Data');
    if (type === 0x7f && subType === 0xff) break;
    if (type === 0x04 && subType === 0x04) parts.push(utf16le(body, 'EFI_DEVICE_PATH.FilePath').replace(/\0+$/, ''));
  }
  return parts.length === 0 ? undefined : parts.join('/').replace(/\/\\/g, '\\');
}

/** One EFI_SIGNATURE_DATA. */
export interface EfiSignatureData {
  readonly owner: string;
  readonly data: Uint8Array;
}

/** One EFI_SIGNATURE_LIST. */
export interface EfiSignatureList {
  readonly signatureType: string;
  readonly header: Uint8Array;
  readonly signatures: readonly EfiSignatureData[];
}

/** Decodes the EFI_SIGNATURE_LISTs that make up a PK, KEK, db or dbx value. */
export function decodeSignatureDatabase(bytes: Uint8Array, base = 0): EfiSignatureList[] {
  const r = new Reader(bytes, 'EFI_SIGNATURE_LIST', base);
  const lists: EfiSignatureList[] = [];
  while (r.remaining > 0) {
    const at = r.offset;
    const field = `[${lists.length}]`;
    const type = r.bytes(16, `${field}.SignatureType`);
    const listSize = r.u32(`${field}.SignatureListSize`, 'le');
    const headerSize = r.u32(`${field}.SignatureHeaderSize`, 'le');
    const sigSize = r.u32(`${field}.SignatureSize`, 'le');
    const bodySize = listSize - 28;
    if (listSize < 28 || bodySize > r.remaining) {
      throw r.error('PARSE_SIZE_EXCEEDED', `${field}.SignatureListSize`, `list size ${listSize} does not fit the ${r.remaining + 28} bytes left`, { at: at + 16 });
    }
    if (headerSize > bodySize || sigSize < 16 || (bodySize - headerSize) % sigSize !== 0) {
      throw r.error('PARSE_BAD_VALUE', `${field}.SignatureSize`, `header ${headerSize} and signature size ${sigSize} do not divide the list body of ${bodySize} bytes`, { at: at + 24 });
    }
    const body = r.sub(bodySize, field);
    const header = body.bytes(headerSize, 'SignatureHeader');
    const count = (bodySize - headerSize) / sigSize;
    const signatures: EfiSignatureData[] = [];
    for (let i = 0; i < count; i++) {
      const owner = guidText(body.bytes(16, `Signatures[${i}].SignatureOwner`));
      signatures.push({ owner, data: body.bytes(sigSize - 16, `Signatures[${i}].SignatureData`) });
    }
    body.finish();
    lists.push({ signatureType: guidText(type), header, signatures });
  }
  return lists;
}
