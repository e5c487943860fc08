/**
 * File formats written by tpm2-tools (5.x), so evidence captured with `tpm2_quote` verifies with
 * vouch and evidence made by vouch verifies with `tpm2_checkquote`.
 *
 * PCR output file of `tpm2_quote -o FILE`:
 * - `-F values`: the selected PCR values concatenated, banks in selection order, PCRs ascending.
 *   The selection itself comes from the (signed) quote.
 * - `-F serialized` (the default): a little-endian dump of the tool's in-memory structures:
 *   ```
 *   TPML_PCR_SELECTION  u32le count; 16 × { u16le hash; u8 sizeofSelect; u8 pcrSelect[4]; u8 pad }   (132 bytes)
 *   u32le               number of TPML_DIGEST that follow
 *   TPML_DIGEST[n]      u32le count; 8 × { u16le size; u8 buffer[64] }                               (532 bytes each)
 *   ```
 *   Values are listed in selection order, at most 8 per TPML_DIGEST.
 * Also accepted: a JSON map `{ "sha256": { "0": "hex", … }, … }` (bank → index → hex).
 */
import { createPublicKey } from 'node:crypto';
import { fromHex } from '../lib/bytes.js';
import { MisuseError, ParseError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';
import { TPM2_MAX, TPM_ALG, TPM_ECC, algName, hashById, hashByName } from './abi/constants.js';
import { decodeTpm2bPublic, decodeTpmtPublic, type TpmtPublic } from './abi/public.js';
import type { PcrBankSelection, PcrSelection } from './abi/pcr.js';
import type { PcrValues } from './verify/quote.js';
import { importTpmPublic, type TpmVerifyKey } from './verify/keys.js';

const SERIALIZED_SELECTION_SIZE = 4 + TPM2_MAX.PCR_BANKS * 8;
const SERIALIZED_DIGEST_LIST_SIZE = 4 + TPM2_MAX.DIGEST_LIST * (2 + TPM2_MAX.DIGEST);

/** The PCR file formats vouch reads. */
export type PcrFileFormat = 'serialized' | 'values' | 'json';

/** A mutable builder for {@link PcrValues}. */
function putValue(out: Map<number, Map<number, Uint8Array>>, bank: number, pcr: number, v: Uint8Array): void {
  let m = out.get(bank);
  if (m === undefined) {
    m = new Map();
    out.set(bank, m);
  }
  m.set(pcr, v);
}

/** Decodes the `-F serialized` PCR file. Strict: reserved padding and unused slots must be zero. */
export function decodeSerializedPcrs(bytes: Uint8Array): { selection: PcrSelection; values: PcrValues } {
  const r = new Reader(bytes, 'tpm2_quote PCR file (serialized)');
  const selR = r.sub(SERIALIZED_SELECTION_SIZE, 'pcrSelection');
  const countAt = selR.offset;
  const count = selR.count(selR.u32('count', 'le'), TPM2_MAX.PCR_BANKS, 'count', countAt);
  const selection: PcrBankSelection[] = [];
  for (let i = 0; i < TPM2_MAX.PCR_BANKS; i++) {
    const f = `pcrSelections[${i}]`;
    if (i >= count) {
      selR.reserved(8, f);
      continue;
    }
    const hashAt = selR.offset;
    const hashAlg = selR.u16(`${f}.hash`, 'le');
    if (hashById(hashAlg) === undefined) {
      throw selR.error('PARSE_UNSUPPORTED_ALGORITHM', `${f}.hash`, `${algName(hashAlg)} is not a supported bank`, { at: hashAt });
    }
    const sizeAt = selR.offset;
    const sizeofSelect = selR.u8(`${f}.sizeofSelect`);
    if (sizeofSelect > TPM2_MAX.PCR_SELECT) {
      throw selR.error('PARSE_SIZE_EXCEEDED', `${f}.sizeofSelect`, `${sizeofSelect} exceeds ${TPM2_MAX.PCR_SELECT}`, { at: sizeAt });
    }
    const bitmap = selR.bytes(TPM2_MAX.PCR_SELECT, `${f}.pcrSelect`);
    selR.reserved(1, `${f}.pad`);
    const pcrs: number[] = [];
    for (let b = 0; b < TPM2_MAX.PCR_SELECT; b++) {
      for (let bit = 0; bit < 8; bit++) {
        if (((bitmap[b] as number) >> bit) & 1) {
          if (b >= sizeofSelect) throw selR.error('PARSE_BAD_VALUE', `${f}.pcrSelect`, `PCR ${b * 8 + bit} is beyond sizeofSelect`);
          pcrs.push(b * 8 + bit);
        }
      }
    }
    selection.push({ hashAlg, pcrs, sizeofSelect });
  }
  selR.finish();

  const listsAt = r.offset;
  const lists = r.count(r.u32('digestLists', 'le'), 32, 'digestLists', listsAt);
  const flat: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) {
    const dl = r.sub(SERIALIZED_DIGEST_LIST_SIZE, `pcrValues[${l}]`);
    const nAt = dl.offset;
    const n = dl.count(dl.u32('count', 'le'), TPM2_MAX.DIGEST_LIST, 'count', nAt);
    for (let i = 0; i < TPM2_MAX.DIGEST_LIST; i++) {
      const f = `digests[${i}]`;
      if (i >= n) {
        dl.reserved(2 + TPM2_MAX.DIGEST, f);
        continue;
      }
      const sAt = dl.offset;
      const size = dl.u16(`${f}.size`, 'le');
      if (size > TPM2_MAX.DIGEST) throw dl.error('PARSE_SIZE_EXCEEDED', `${f}.size`, `${size} exceeds ${TPM2_MAX.DIGEST}`, { at: sAt });
      flat.push(dl.bytes(size, `${f}.buffer`));
      dl.reserved(TPM2_MAX.DIGEST - size, `${f}.unused`);
    }
    dl.finish();
  }
  r.finish();
  return { selection, values: assignValues(selection, flat, r) };
}

/** Distributes a flat list of values over a selection, checking count and sizes. */
function assignValues(selection: PcrSelection, flat: readonly Uint8Array[], r: Reader): PcrValues {
  const want = selection.reduce((n, b) => n + b.pcrs.length, 0);
  if (flat.length !== want) {
    throw r.error('PARSE_BAD_VALUE', 'pcrValues', `${flat.length} values for ${want} selected PCRs`, {
      expected: String(want),
      actual: String(flat.length),
    });
  }
  const out = new Map<number, Map<number, Uint8Array>>();
  let i = 0;
  for (const bank of selection) {
    const h = hashById(bank.hashAlg);
    for (const pcr of bank.pcrs) {
      const v = flat[i++] as Uint8Array;
      if (h !== undefined && v.length !== h.size) {
        throw r.error('PARSE_BAD_VALUE', `pcrValues.${h.name}[${pcr}]`, `value is ${v.length} bytes, the bank's digest is ${h.size}`);
      }
      putValue(out, bank.hashAlg, pcr, v);
    }
  }
  return out;
}

/** Encodes PCR values in the `-F serialized` format that `tpm2_checkquote -f` reads. */
export function encodeSerializedPcrs(selection: PcrSelection, values: PcrValues): Uint8Array {
  if (selection.length > TPM2_MAX.PCR_BANKS) throw new MisuseError('MISUSE_ARGUMENT', 'too many banks');
  const w = new Writer(SERIALIZED_SELECTION_SIZE + 4 + 4 * SERIALIZED_DIGEST_LIST_SIZE);
  w.u32(selection.length, 'le');
  const flat: Uint8Array[] = [];
  for (let i = 0; i < TPM2_MAX.PCR_BANKS; i++) {
    const bank = selection[i];
    if (bank === undefined) {
      w.bytes(new Uint8Array(8));
      continue;
    }
    const bitmap = new Uint8Array(TPM2_MAX.PCR_SELECT);
    for (const pcr of bank.pcrs) {
      bitmap[pcr >> 3] = (bitmap[pcr >> 3] as number) | (1 << (pcr & 7));
      const v = values.get(bank.hashAlg)?.get(pcr);
      if (v === undefined) throw new MisuseError('MISUSE_ARGUMENT', `no value for ${algName(bank.hashAlg)} PCR ${pcr}`);
      flat.push(v);
    }
    w.u16(bank.hashAlg, 'le').u8(bank.sizeofSelect).bytes(bitmap).u8(0);
  }
  const lists = Math.ceil(flat.length / TPM2_MAX.DIGEST_LIST);
  w.u32(lists, 'le');
  for (let l = 0; l < lists; l++) {
    const chunk = flat.slice(l * TPM2_MAX.DIGEST_LIST, (l + 1) * TPM2_MAX.DIGEST_LIST);
    w.u32(chunk.length, 'le');
    for (let i = 0; i < TPM2_MAX.DIGEST_LIST; i++) {
      const v = chunk[i];
      const slot = new Uint8Array(TPM2_MAX.DIGEST);
      if (v !== undefined) slot.set(v);
      w.u16(v?.length ?? 0, 'le').bytes(slot);
    }
  }
  return w.finish();
}

/** Decodes the `-F values` PCR file against the selection the quote carries. */
export function decodeValuesPcrs(bytes: Uint8Array, selection: PcrSelection): PcrValues {
  const r = new Reader(bytes, 'tpm2_quote PCR file (values)');
  const flat: Uint8Array[] = [];
  for (const bank of selection) {
    const h = hashById(bank.hashAlg);
    if (h === undefined) throw r.error('PARSE_UNSUPPORTED_ALGORITHM', 'selection', `${algName(bank.hashAlg)} is not supported`);
    for (const pcr of bank.pcrs) flat.push(r.bytes(h.size, `${h.name}[${pcr}]`));
  }
  r.finish();
  return assignValues(selection, flat, r);
}

/** Decodes a JSON PCR map: `{ "<bank>": { "<index>": "<hex>" } }`, or the same under a "pcrs" key. */
export function decodeJsonPcrs(text: string): PcrValues {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new ParseError('PARSE_BAD_ENCODING', 'PCR file is not valid JSON', { cause });
  }
  if (isRecord(doc) && isRecord(doc['pcrs'])) doc = doc['pcrs'];
  if (!isRecord(doc)) throw new ParseError('PARSE_BAD_VALUE', 'PCR JSON must map bank names to objects', { field: 'pcrs' });
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bankName, bankValues] of Object.entries(doc)) {
    const h = hashByName(bankName);
    if (h === undefined) throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', `unknown bank "${bankName}"`, { field: `pcrs.${bankName}` });
    if (!isRecord(bankValues)) throw new ParseError('PARSE_BAD_VALUE', `bank ${bankName} must map indices to hex`, { field: `pcrs.${bankName}` });
    for (const [idx, hex] of Object.entries(bankValues)) {
      const field = `pcrs.${bankName}[${idx}]`;
      if (!/^(?:[0-9]|[12][0-9]|3[01])$/.test(idx)) throw new ParseError('PARSE_BAD_VALUE', `PCR index "${idx}" is not 0..31`, { field });
      if (typeof hex !== 'string') throw new ParseError('PARSE_BAD_VALUE', `${field} must be a hex string`, { field });
      const v = fromHex(hex, field);
      if (v.length !== h.size) {
        throw new ParseError('PARSE_BAD_VALUE', `${field} is ${v.length} bytes, ${bankName} digests are ${h.size}`, {
          field,
          expected: `${h.size} bytes`,
          actual: `${v.length} bytes`,
        });
      }
      putValue(out, h.id, Number(idx), v);
    }
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An AK as given on the command line: with its TPM public area, or only as a PEM key. */
export type AkInput = { readonly kind: 'tpm'; readonly key: TpmVerifyKey } | { readonly kind: 'pem'; readonly key: TpmVerifyKey };

const PEM_PUBLIC = '-----BEGIN PUBLIC KEY-----';

/**
 * Reads an AK public key file: PEM SubjectPublicKeyInfo (`tpm2_readpublic -f pem`), TPM2B_PUBLIC
 * (`tpm2_readpublic -o`, `tpm2_createak -u`), or a bare TPMT_PUBLIC. The three cannot be confused:
 * PEM starts with its armour line, and a TPM2B_PUBLIC's first two bytes equal the remaining
 * length, which a TPMT_PUBLIC's type field (0x0001 or 0x0023) never does for a valid key.
 */
export function readAkPublicFile(bytes: Uint8Array): AkInput {
  const head = Buffer.from(bytes.subarray(0, PEM_PUBLIC.length)).toString('latin1');
  if (head === PEM_PUBLIC) {
    const pem = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    let key;
    try {
      key = createPublicKey({ key: pem, format: 'pem' });
    } catch (cause) {
      throw new ParseError('PARSE_BAD_ENCODING', 'the AK PEM does not hold a public key', { cause });
    }
    const jwk = key.export({ format: 'jwk' });
    const pub = pemToTpmPublic(jwk);
    return { kind: 'pem', key: { ...importTpmPublic(pub), key } };
  }
  let pub: TpmtPublic;
  if (bytes.length >= 2 && (((bytes[0] as number) << 8) | (bytes[1] as number)) === bytes.length - 2) pub = decodeTpm2bPublic(bytes);
  else pub = decodeTpmtPublic(bytes);
  return { kind: 'tpm', key: importTpmPublic(pub) };
}

/**
 * A stand-in TPMT_PUBLIC for a PEM key. Its template and scheme are unknown, so callers verify
 * with `akTemplateUnknown` (the template check is reported as not run and any signing scheme of
 * the key's type is accepted).
 */
function pemToTpmPublic(jwk: { kty?: string; n?: string; e?: string; crv?: string; x?: string; y?: string }): TpmtPublic {
  if (jwk.kty === 'RSA' && jwk.n !== undefined && jwk.e !== undefined) {
    const n = new Uint8Array(Buffer.from(jwk.n, 'base64url'));
    const eBytes = Buffer.from(jwk.e, 'base64url');
    const e = eBytes.reduce((acc, b) => acc * 256 + b, 0);
    return {
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0,
      authPolicy: new Uint8Array(0),
      parameters: {
        symmetric: { algorithm: TPM_ALG.NULL },
        scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
        keyBits: n.length * 8,
        exponent: e === 65537 ? 0 : e,
      },
      unique: n,
    };
  }
  if (jwk.kty === 'EC' && jwk.x !== undefined && jwk.y !== undefined) {
    const curves: Record<string, [number, number]> = {
      'P-256': [TPM_ECC.NIST_P256, TPM_ALG.SHA256],
      'P-384': [TPM_ECC.NIST_P384, TPM_ALG.SHA384],
      'P-521': [TPM_ECC.NIST_P521, TPM_ALG.SHA512],
    };
    const c = curves[jwk.crv ?? ''];
    if (c === undefined) throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', `curve ${jwk.crv ?? '?'} is not supported`);
    return {
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: 0,
      authPolicy: new Uint8Array(0),
      parameters: {
        symmetric: { algorithm: TPM_ALG.NULL },
        scheme: { scheme: TPM_ALG.ECDSA, hashAlg: c[1] },
        curveId: c[0],
        kdf: { scheme: TPM_ALG.NULL },
      },
      unique: { x: new Uint8Array(Buffer.from(jwk.x, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y, 'base64url')) },
    };
  }
  throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', 'the AK PEM key is neither RSA nor EC');
}
