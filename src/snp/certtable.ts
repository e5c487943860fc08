/**
 * The certificate table of an extended SEV-SNP report (GHCB specification §4.1.8.1,
 * SNP_GET_EXT_REPORT / the configfs-tsm `auxblob`).
 *
 * ```
 * entry[i]: GUID [16] | OFFSET u32 LE | LENGTH u32 LE     (24 bytes each)
 * entry[n]: 24 zero bytes                                 (terminator)
 * data:     certificates at OFFSET (from the start of the table), LENGTH bytes each
 * ```
 *
 * GUIDs are stored in the byte order of their text form (as `uuid_parse` writes them). Every
 * entry is bounds-checked before any slice; the entry count is capped before looping; no two
 * entries may share a GUID. Unknown GUIDs are kept, named by their text. Nothing here trusts the
 * certificates: ../verify.ts does.
 */
import { toHex } from '../lib/bytes.js';
import { MisuseError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';

/**
 * GUIDs of the certificate table entries (GHCB specification, "SNP Extended Guest Request",
 * certificate GUIDs).
 *
 * The specification defines no GUID of its own for the ASVK (the AMD SEV VLEK signing key that
 * issues VLEKs): a host that provisions a VLEK puts the ASVK under the ASK GUID, and the entry is
 * told apart by who it issued (go-sev-guest `abi.AskGUID`: "Used for the ASVK as well"; virtee
 * snphost treats the ASVK as the ASK in the table for the same reason). So the `ask` entry holds
 * the ASK of a VCEK table and the ASVK of a VLEK table; {@link snpCertTableChain} names it by
 * the signer.
 */
export const SNP_CERT_GUID = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  /** The ASK, or the ASVK in a table whose signing key is a VLEK. */
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  crl: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
} as const;
export type SnpCertKind = keyof typeof SNP_CERT_GUID;

/** The table entry that carries the ASVK: the ASK GUID (see {@link SNP_CERT_GUID}). */
export const SNP_ASVK_GUID: string = SNP_CERT_GUID.ask;

/** Entries accepted at most: far more than any host supplies, small enough to bound the work. */
export const SNP_CERT_TABLE_MAX_ENTRIES = 64;
const ENTRY_SIZE = 24;
const ROOT = 'SNP_CERT_TABLE';

/** One entry of the table. */
export interface SnpCertTableEntry {
  /** GUID in text form (lower case). */
  readonly guid: string;
  /** The kind the GUID names, when it is one vouch knows. */
  readonly kind?: SnpCertKind;
  readonly offset: number;
  /** The entry's bytes (a view into the input). */
  readonly data: Uint8Array;
}

function guidText(b: Uint8Array): string {
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function guidBytes(g: string): Uint8Array {
  const h = g.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/.test(h)) throw new MisuseError('MISUSE_ARGUMENT', `not a GUID: ${g}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function kindOf(guid: string): SnpCertKind | undefined {
  for (const [k, v] of Object.entries(SNP_CERT_GUID)) if (v === guid) return k as SnpCertKind;
  return undefined;
}

/**
 * Decodes a certificate table. Bytes after the terminator and outside every entry are allowed
 * (the host pads the buffer to whole pages), but each entry must lie inside the table, after the
 * entry array, and no GUID may repeat.
 *
 * @throws ParseError PARSE_TRUNCATED (no terminator), PARSE_SIZE_EXCEEDED (too many entries, an entry out of bounds), PARSE_BAD_VALUE (repeated GUID, zero GUID with non-zero offset/length)
 */
export function decodeSnpCertTable(bytes: Uint8Array): SnpCertTableEntry[] {
  const r = new Reader(bytes, ROOT);
  const heads: { guid: string; offset: number; length: number; at: number }[] = [];
  for (let i = 0; ; i++) {
    const field = `entry[${i}]`;
    r.count(i, SNP_CERT_TABLE_MAX_ENTRIES, 'entries');
    const at = r.offset;
    const g = r.bytes(16, `${field}.GUID`);
    const offset = r.u32(`${field}.OFFSET`, 'le');
    const length = r.u32(`${field}.LENGTH`, 'le');
    if (g.every((x) => x === 0)) {
      if (offset !== 0 || length !== 0) {
        throw r.error('PARSE_BAD_VALUE', field, 'the terminating entry has a zero GUID but a non-zero offset or length', { at, expected: 'offset 0, length 0', actual: `offset ${offset}, length ${length}` });
      }
      break;
    }
    heads.push({ guid: guidText(g), offset, length, at });
  }
  const arrayEnd = r.offset;
  const seen = new Set<string>();
  return heads.map((h, i) => {
    const field = `entry[${i}]`;
    if (seen.has(h.guid)) throw r.error('PARSE_BAD_VALUE', `${field}.GUID`, `GUID ${h.guid} appears twice`, { at: h.at, actual: h.guid });
    seen.add(h.guid);
    if (h.offset < arrayEnd || h.offset > bytes.length || h.length > bytes.length - h.offset) {
      throw r.error('PARSE_SIZE_EXCEEDED', field, `entry ${h.offset}+${h.length} is outside the data area ${arrayEnd}..${bytes.length}`, {
        at: h.at + 16,
        expected: `within ${arrayEnd}..${bytes.length}`,
        actual: `${h.offset}..${h.offset + h.length}`,
      });
    }
    const kind = kindOf(h.guid);
    return { guid: h.guid, ...(kind !== undefined ? { kind } : {}), offset: h.offset, data: bytes.subarray(h.offset, h.offset + h.length) };
  });
}

/**
 * Encodes a certificate table: the entry array, the terminator, then each entry's data in order.
 * `decodeSnpCertTable(encodeSnpCertTable(x))` returns the same GUIDs and data.
 */
export function encodeSnpCertTable(entries: readonly { readonly guid: string; readonly data: Uint8Array }[]): Uint8Array {
  if (entries.length > SNP_CERT_TABLE_MAX_ENTRIES) throw new MisuseError('MISUSE_ARGUMENT', `at most ${SNP_CERT_TABLE_MAX_ENTRIES} entries`);
  const w = new Writer();
  let offset = (entries.length + 1) * ENTRY_SIZE;
  for (const e of entries) {
    w.bytes(guidBytes(e.guid)).u32(offset, 'le').u32(e.data.length, 'le');
    offset += e.data.length;
  }
  w.bytes(new Uint8Array(ENTRY_SIZE));
  for (const e of entries) w.bytes(e.data);
  return w.finish();
}

/** The data of the entry of `kind`, if the table has one. */
export function snpCertTableGet(entries: readonly SnpCertTableEntry[], kind: SnpCertKind): Uint8Array | undefined {
  return entries.find((e) => e.kind === kind)?.data;
}

/** The entries of one signer's chain in a table; each absent when the table lacks it or it is empty. */
export interface SnpCertTableChain {
  readonly signer: 'vcek' | 'vlek';
  /** The VCEK or the VLEK, as the signer says. */
  readonly leaf?: Uint8Array;
  /** The ASK (VCEK) or the ASVK (VLEK): the data of the ASK GUID entry either way. */
  readonly ask?: Uint8Array;
  readonly asvk?: Uint8Array;
  readonly ark?: Uint8Array;
  readonly crl?: Uint8Array;
}

/**
 * The certificates of `signer`'s chain in a table: the VCEK with the ASK, or the VLEK with the
 * ASVK (from the ASK GUID entry), the ARK and the CRL. `signer` comes from the report
 * (SIGNING_KEY), so a table that carries both a VCEK and a VLEK gives the one that signed.
 * Zero-length entries count as absent (a host without cached certificates leaves them empty).
 * Nothing here is trusted: the caller verifies the chain.
 */
export function snpCertTableChain(entries: readonly SnpCertTableEntry[], signer: 'vcek' | 'vlek'): SnpCertTableChain {
  const get = (kind: SnpCertKind): Uint8Array | undefined => {
    const d = snpCertTableGet(entries, kind);
    return d !== undefined && d.length > 0 ? d : undefined;
  };
  const leaf = get(signer);
  const mid = get('ask');
  const ark = get('ark');
  const crl = get('crl');
  return {
    signer,
    ...(leaf !== undefined ? { leaf } : {}),
    ...(mid !== undefined ? (signer === 'vcek' ? { ask: mid } : { asvk: mid }) : {}),
    ...(ark !== undefined ? { ark } : {}),
    ...(crl !== undefined ? { crl } : {}),
  };
}
