/**
 * TEST-ONLY: the fixed parameters of the fake AMD hierarchy and the encoder of the AMD VCEK
 * extensions, shared by ./generate.ts (committed output) and ./index.ts (certificates issued
 * on demand by tests). Nothing in src/ may import this directory.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AMD_OID } from '../../src/snp/certs.js';

/** This directory. */
export const TEST_SNP_DIR = import.meta.dirname;

/** TCB security patch levels as carried by a VCEK (each 0..255). */
export interface FixtureTcb {
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
  readonly fmc?: number;
}

/** AMD VCEK extension OIDs: the verifier's own table (VCEK Certificate and KDS Interface Specification). */
export { AMD_OID } from '../../src/snp/certs.js';

/** The fixed facts of the committed TEST-ONLY hierarchy. */
export const FIXTURE = {
  product: 'Milan' as const,
  productName: 'Milan',
  names: {
    ark: 'CN=vouch TEST-ONLY ARK-Milan,O=vouch TEST-ONLY not AMD',
    ask: 'CN=vouch TEST-ONLY SEV-Milan,O=vouch TEST-ONLY not AMD',
    vcek: 'CN=vouch TEST-ONLY SEV-VCEK,O=vouch TEST-ONLY not AMD',
  },
  serials: { ark: '01', ask: '02', vcek: '03' },
  caNotBefore: new Date('2020-01-01T00:00:00Z'),
  caNotAfter: new Date('2045-01-01T00:00:00Z'),
  vcekNotBefore: new Date('2024-01-01T00:00:00Z'),
  vcekNotAfter: new Date('2031-01-01T00:00:00Z'),
  crlThisUpdate: new Date('2025-01-01T00:00:00Z'),
  crlNextUpdate: new Date('2035-01-01T00:00:00Z'),
  /** 64-byte hwID: SHA-512 of a fixed label, so it is reproducible and obviously fake. */
  chipId: new Uint8Array(createHash('sha512').update('vouch TEST-ONLY chip 1').digest()),
  /** ucode 0xd1 ≥ 0x80 exercises the leading zero byte of a DER INTEGER. */
  tcb: { bl: 3, tee: 0, snp: 8, ucode: 0xd1 } as FixtureTcb,
};

/** RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt, as AMD signs. */
export const pssSign = { name: 'RSA-PSS', saltLength: 48 } as const;

/** PEM armour of `der` (RFC 7468), 64 characters a line. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** DER INTEGER of a small non-negative number (a leading zero when the top bit is set). */
export function derSmallInteger(v: number): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`SPL ${v} out of range`);
  const bytes = v === 0 ? [0] : v < 0x100 ? [v] : [v >> 8, v & 0xff];
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return Uint8Array.of(0x02, bytes.length, ...bytes);
}

/** DER IA5String of ASCII `s` (short form length). */
export function derIa5String(s: string): Uint8Array {
  const b = Buffer.from(s, 'ascii');
  if (b.length > 127) throw new RangeError('product name too long');
  return Uint8Array.of(0x16, b.length, ...b);
}

/**
 * The AMD extensions of a VCEK, encoded as AMD's KDS encodes them: structVersion and each SPL
 * a DER INTEGER, productName a DER IA5String, hwID the raw chip id bytes as the extnValue
 * itself (no inner OCTET STRING). Reserved SPLs 4..7 are present with value 0.
 */
export function amdVcekExtensions(productName: string, chipId: Uint8Array, tcb: FixtureTcb): x509.Extension[] {
  const ext = (oid: string, v: Uint8Array) => new x509.Extension(oid, false, v);
  const out = [
    ext(AMD_OID.structVersion, derSmallInteger(1)),
    ext(AMD_OID.productName, derIa5String(productName)),
    ext(AMD_OID.blSpl, derSmallInteger(tcb.bl)),
    ext(AMD_OID.teeSpl, derSmallInteger(tcb.tee)),
    ext(AMD_OID.snpSpl, derSmallInteger(tcb.snp)),
    ext(AMD_OID.spl4, derSmallInteger(0)),
    ext(AMD_OID.spl5, derSmallInteger(0)),
    ext(AMD_OID.spl6, derSmallInteger(0)),
    ext(AMD_OID.spl7, derSmallInteger(0)),
    ext(AMD_OID.ucodeSpl, derSmallInteger(tcb.ucode)),
  ];
  if (tcb.fmc !== undefined) out.push(ext(AMD_OID.fmcSpl, derSmallInteger(tcb.fmc)));
  out.push(ext(AMD_OID.hwId, chipId));
  return out;
}
