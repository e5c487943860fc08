/**
 * A JSON-safe description of a TPM for people and the CLI (`vouch tpm info`): manufacturer,
 * firmware, active banks and the EK certificates in NV with their subject and issuer. Device
 * output, nothing here is verified.
 */
import { X509Certificate } from 'node:crypto';
import { toHex } from '../src/lib/bytes.js';
import { Tpm } from './tpm.js';
import type { EkCertificateKind } from './nv.js';

/** One EK certificate as described to a person. */
export interface EkCertificateDescription {
  readonly index: number;
  readonly kind: EkCertificateKind;
  /** Subject DN, or '' when empty (EK certificates often have an empty subject). */
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Set when the NV bytes do not parse as a certificate. */
  readonly parseError?: string;
  readonly derHex: string;
}

/** What `describeTpm` returns; every value is JSON-serializable. */
export interface TpmDescription {
  readonly tcti: string;
  readonly manufacturer: string;
  readonly vendorString: string;
  /** TPM_PT_FIRMWARE_VERSION_1 ‖ _2 as 16 hex digits. */
  readonly firmwareVersion: string;
  readonly specRevision: number;
  readonly banks: readonly { readonly bank: string; readonly hashAlg: number; readonly pcrs: readonly number[] }[];
  readonly ekCertificates: readonly EkCertificateDescription[];
}

/** Opens the TPM at `tcti`, describes it and closes it. */
export async function describeTpm(tcti: string): Promise<TpmDescription> {
  const tpm = Tpm.open(tcti);
  try {
    const info = tpm.getInfo();
    const ekCertificates = tpm.readEkCertificates().map((c): EkCertificateDescription => {
      try {
        const x = new X509Certificate(c.der);
        return {
          index: c.index,
          kind: c.kind,
          subject: x.subject,
          issuer: x.issuer,
          serialNumber: x.serialNumber,
          notBefore: x.validFrom,
          notAfter: x.validTo,
          derHex: toHex(c.der),
        };
      } catch (e) {
        return {
          index: c.index,
          kind: c.kind,
          subject: '',
          issuer: '',
          serialNumber: '',
          notBefore: '',
          notAfter: '',
          parseError: e instanceof Error ? e.message : String(e),
          derHex: toHex(c.der),
        };
      }
    });
    return {
      tcti,
      manufacturer: info.manufacturer,
      vendorString: info.vendorString,
      firmwareVersion: info.firmwareVersion.toString(16).padStart(16, '0'),
      specRevision: info.specRevision,
      banks: info.pcrBanks.map((b) => ({ bank: b.name, hashAlg: b.hashAlg, pcrs: b.pcrs })),
      ekCertificates,
    };
  } finally {
    tpm.close();
  }
}
