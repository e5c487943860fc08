/**
 * NV index public areas and the TCG EK Credential Profile's NV index map.
 *
 * ```
 * TPM2B_NV_PUBLIC { UINT16 size; TPMS_NV_PUBLIC nvPublic; }          // Part 2 §13.6
 * TPMS_NV_PUBLIC  { TPMI_RH_NV_INDEX nvIndex;   // u32
 *                   TPMI_ALG_HASH    nameAlg;   // u16
 *                   TPMA_NV          attributes;// u32
 *                   TPM2B_DIGEST     authPolicy;
 *                   UINT16           dataSize; }
 * ```
 */
import { Reader } from '../src/lib/reader.js';
import { TPM2_MAX } from '../src/tpm/abi/constants.js';
import { readHashAlg } from '../src/tpm/abi/public.js';

/** TPMA_NV bits (Part 2 §13.4) that decide how an index may be read. */
export const TPMA_NV = {
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  READLOCKED: 1 << 28,
  WRITTEN: 1 << 29,
} as const;

/** A decoded TPMS_NV_PUBLIC (device output, untrusted). */
export interface NvPublic {
  readonly nvIndex: number;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Uint8Array;
  readonly dataSize: number;
}

/** Decodes a TPM2B_NV_PUBLIC; trailing bytes are an error. */
export function decodeTpm2bNvPublic(bytes: Uint8Array): NvPublic {
  const r = new Reader(bytes, 'TPM2B_NV_PUBLIC');
  const p = r.tpm2bReader('nvPublic', 2 + 4 + 2 + 4 + 2 + TPM2_MAX.DIGEST + 2);
  const out: NvPublic = {
    nvIndex: p.u32('nvIndex') >>> 0,
    nameAlg: readHashAlg(p, 'nameAlg', false),
    attributes: p.u32('attributes') >>> 0,
    authPolicy: p.tpm2b('authPolicy', TPM2_MAX.DIGEST),
    dataSize: p.u16('dataSize'),
  };
  p.finish();
  r.finish();
  return out;
}

/**
 * The kinds of EK certificate by NV index (TCG EK Credential Profile 2.3 §2.2.1.5): the low
 * range L-1/L-2 and the high range H-1…H-7.
 */
export const EK_CERT_INDICES = {
  0x01c00002: 'rsa2048',
  0x01c0000a: 'ecc-p256',
  0x01c00012: 'rsa2048-h1',
  0x01c00014: 'ecc-p256-h2',
  0x01c00016: 'ecc-p384',
  0x01c00018: 'ecc-p521',
  0x01c0001a: 'ecc-sm2-p256',
  0x01c0001c: 'rsa3072',
  0x01c0001e: 'rsa4096',
} as const satisfies Record<number, string>;

/** First and last NV index of the EK certificate chain range (EK Credential Profile §2.2.1.5.2). */
export const EK_CHAIN_FIRST = 0x01c00100;
export const EK_CHAIN_LAST = 0x01c001ff;

/** What an EK certificate index holds. `chain` is an intermediate CA certificate of the EK chain. */
export type EkCertificateKind = (typeof EK_CERT_INDICES)[keyof typeof EK_CERT_INDICES] | 'chain';

/** The kind of EK certificate stored at `index`, or undefined when the index is not in the profile. */
export function ekCertificateKind(index: number): EkCertificateKind | undefined {
  if (index >= EK_CHAIN_FIRST && index <= EK_CHAIN_LAST) return 'chain';
  return (EK_CERT_INDICES as Record<number, EkCertificateKind>)[index];
}
