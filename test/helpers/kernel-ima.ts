/**
 * Plays the Linux kernel's IMA for tests: measures files into PCR 10 of a software TPM (the
 * template hash of each bank is that bank's digest of the template data) and keeps the binary
 * measurement list, with a SHA-1 template-hash column as /sys/kernel/security/ima/binary_runtime_measurements has.
 */
import { createHash } from 'node:crypto';
import { encodeImaBinary, encodeTemplateData, type ImaEntryBytes } from '../../src/eventlog/ima/abi.js';
import { TPM_ALG, hashById } from '../../src/tpm/abi/constants.js';
import type { Extender } from './firmware-log.js';

export class KernelIma {
  readonly #entries: ImaEntryBytes[] = [];
  readonly #tpm: Extender;
  readonly #banks: readonly number[];

  constructor(tpm: Extender, banks: readonly number[]) {
    this.#tpm = tpm;
    this.#banks = banks;
  }

  /** Measures a file (ima-ng: sha256 file digest and path). */
  measure(path: string, content: Uint8Array | string): void {
    this.#add(path, new Uint8Array(createHash('sha256').update(content).digest()));
  }

  /** The first entry of a boot: SHA-256 over PCRs 0-7 of the sha256 bank (as the kernel computes it). */
  bootAggregate(pcr0to7: readonly Uint8Array[]): void {
    const h = createHash('sha256');
    for (const v of pcr0to7) h.update(v);
    this.#add('boot_aggregate', new Uint8Array(h.digest()));
  }

  #add(path: string, digest: Uint8Array): void {
    const templateData = encodeTemplateData('ima-ng', { digest: { algorithm: 'sha256', digest }, path });
    for (const alg of this.#banks) {
      const h = hashById(alg);
      if (h === undefined) throw new Error(`bank ${alg}`);
      this.#tpm.pcrExtend(10, alg, new Uint8Array(createHash(h.nodeName).update(templateData).digest()));
    }
    this.#entries.push({ pcr: 10, templateHash: new Uint8Array(createHash('sha1').update(templateData).digest()), template: 'ima-ng', templateData });
  }

  /** The binary measurement list so far. */
  list(): Uint8Array {
    return encodeImaBinary(this.#entries);
  }
}

export const IMA_TEST_BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];
