/**
 * The agent's TPM collector: the one module in src/ that talks to the TPM (through native/).
 * Everything else in src/ — the verifier above all — runs where no TSS library is installed;
 * this module is loaded only by agent commands.
 */
import { Tpm, DEFAULT_AK_HANDLE, describeTpm, type TpmKey, type TpmDescription } from '../../native/index.js';
import type { PcrSelection } from '../tpm/abi/pcr.js';
import type { AkKind, EkKind } from '../tpm/templates.js';

export { Tpm, DEFAULT_AK_HANDLE, describeTpm, type TpmKey, type TpmDescription };

/** The TPM material an agent needs for enrollment and attestation. */
export interface TpmIdentity {
  readonly ek: TpmKey;
  readonly ak: TpmKey;
  /** EK certificate and EK-chain certificates read from NV (DER). */
  readonly ekCertificates: readonly Uint8Array[];
}

/** A TPM session of the agent: opens the TPM, keeps the EK and the persistent AK loaded. */
export class TpmCollector {
  readonly #tpm: Tpm;
  readonly #identity: TpmIdentity;

  private constructor(tpm: Tpm, identity: TpmIdentity) {
    this.#tpm = tpm;
    this.#identity = identity;
  }

  /** Opens the TPM at `tcti`, recreates the EK from its template and loads (or creates) the AK. */
  static open(tcti: string, opts: { ekKind?: EkKind; akKind?: AkKind; akHandle?: number } = {}): TpmCollector {
    const tpm = Tpm.open(tcti);
    try {
      const ekKind = opts.ekKind ?? 'rsa2048';
      const ek = tpm.createEk(ekKind);
      const ak = tpm.ensureAk({ persistentHandle: opts.akHandle ?? DEFAULT_AK_HANDLE, kind: opts.akKind ?? 'ecc-p256', ekKind });
      const ekCertificates = tpm.readEkCertificates().map((c) => c.der);
      return new TpmCollector(tpm, { ek, ak, ekCertificates });
    } catch (e) {
      tpm.close();
      throw e;
    }
  }

  get identity(): TpmIdentity {
    return this.#identity;
  }

  /** TPM2_ActivateCredential with the AK and EK. */
  activate(credentialBlob: Uint8Array, secret: Uint8Array): Uint8Array {
    return this.#tpm.activateCredential(this.#identity.ak, this.#identity.ek, credentialBlob, secret);
  }

  /**
   * A quote over `selection` with the PCR values it covers. PCRs are read before and after the
   * quote; if they moved in between (an extend raced the quote) the pair is taken again.
   */
  quote(qualifyingData: Uint8Array, selection: PcrSelection): { attest: Uint8Array; signature: Uint8Array; pcrs: Map<number, Map<number, Uint8Array>> } {
    for (let attempt = 0; ; attempt++) {
      const before = this.#tpm.pcrRead(selection);
      const q = this.#tpm.quote(this.#identity.ak, qualifyingData, selection);
      const after = this.#tpm.pcrRead(selection);
      if (samePcrs(before, after) || attempt >= 3) return { ...q, pcrs: after };
    }
  }

  /** Extends a PCR (used by the demo to change the node's measurements). */
  extend(pcr: number, hashAlg: number, digest: Uint8Array): void {
    this.#tpm.pcrExtend(pcr, hashAlg, digest);
  }

  /** Flushes the transient EK and closes the TPM; the persistent AK stays. */
  close(): void {
    try {
      this.#tpm.flush(this.#identity.ek);
    } finally {
      this.#tpm.close();
    }
  }
}

function samePcrs(a: Map<number, Map<number, Uint8Array>>, b: Map<number, Map<number, Uint8Array>>): boolean {
  for (const [alg, m] of a) {
    const o = b.get(alg);
    if (o === undefined || o.size !== m.size) return false;
    for (const [i, v] of m) {
      const w = o.get(i);
      if (w === undefined || Buffer.compare(Buffer.from(v), Buffer.from(w)) !== 0) return false;
    }
  }
  return a.size === b.size;
}
