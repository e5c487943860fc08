/**
 * A TPM 2.0 reached through tpm2-tss (Esys over a TCTI): the device side of vouch.
 *
 * Every operation takes and returns TPM wire bytes or values decoded by the codec in
 * src/tpm/abi; the FFI only ever sees byte buffers and opaque pointers (see ./tss2.ts).
 *
 * Handle hygiene: every transient object and session this class creates for its own use is
 * flushed on every path, errors included; objects returned to the caller are the caller's to
 * {@link Tpm.flush}. Persistent objects are only closed (Esys_TR_Close), never flushed.
 */
import { bytesEqual, toHex } from '../src/lib/bytes.js';
import { MisuseError, UnavailableError } from '../src/lib/errors.js';
import { Writer } from '../src/lib/reader.js';
import { TPM2_MAX, TPM_ALG, TPMA_OBJECT, hashById } from '../src/tpm/abi/constants.js';
import { decodeCapabilityData, TPM_CAP, TPM_HR, TPM_PT, type CapabilityData } from '../src/tpm/abi/capability.js';
import { decodeDigestList, decodePcrSelection, encodePcrSelection, pcrSelection, type PcrSelection } from '../src/tpm/abi/pcr.js';
import { decodeTpm2bPublic, encodeTpm2bPublic, encodeTpmtPublic, type TpmtPublic } from '../src/tpm/abi/public.js';
import { tpmName } from '../src/tpm/name.js';
import { AK_KINDS, EK_KINDS, EK_POLICY_SHA256, type AkKind, type EkKind } from '../src/tpm/templates.js';
import { decodeTpm2bNvPublic, ekCertificateKind, TPMA_NV, type EkCertificateKind, type NvPublic } from './nv.js';
import {
  check,
  ESYS_TR,
  isTpmHandleError,
  ptrOut,
  rcHex,
  tpm2bContent,
  TPM2_SE,
  tss2,
  TssCommandFailure,
  trOut,
  trValue,
  type NativePointer,
  type Tss2,
} from './tss2.js';

/** A key loaded in the TPM. `handle` is an ESYS_TR, meaningful only to the {@link Tpm} that returned it. */
export interface TpmKey {
  readonly handle: number;
  /** The TPM handle for a persistent key (0x81xxxxxx); undefined for a transient one. */
  readonly persistentHandle?: number;
  /** The public area as the TPM returned it (`raw` holds its exact bytes). */
  readonly public: TpmtPublic;
  /** The TPM name: nameAlg ‖ H(TPMT_PUBLIC). */
  readonly name: Uint8Array;
}

/** An AK created under an EK: the loaded key plus its TPM-wrapped private blob. */
export interface CreatedKey extends TpmKey {
  /** TPM2B_PRIVATE wire bytes (encrypted to the parent; can be loaded again under the same EK). */
  readonly privateBlob: Uint8Array;
}

/** One EK certificate (or EK chain certificate) read from NV. */
export interface EkCertificate {
  readonly index: number;
  readonly kind: EkCertificateKind;
  /** The certificate's DER bytes (padding after the DER element is removed). */
  readonly der: Uint8Array;
}

/** An active PCR bank. */
export interface PcrBank {
  readonly hashAlg: number;
  /** Bank name as tpm2-tools writes it ("sha256"), or hex for a hash vouch does not know. */
  readonly name: string;
  readonly pcrs: readonly number[];
}

/** What the TPM says about itself (TPM2_GetCapability; device output, not attested). */
export interface TpmInfo {
  /** TPM_PT_MANUFACTURER as its 4 ASCII characters, trailing NULs and spaces removed ("IBM", "INTC"). */
  readonly manufacturer: string;
  readonly manufacturerId: number;
  /** TPM_PT_VENDOR_STRING_1..4 concatenated, NULs removed. */
  readonly vendorString: string;
  readonly vendorTpmType: number;
  /** TPM_PT_FIRMWARE_VERSION_1 ‖ TPM_PT_FIRMWARE_VERSION_2 as one 64-bit value (as in TPMS_ATTEST.firmwareVersion). */
  readonly firmwareVersion: bigint;
  readonly firmwareVersion1: number;
  readonly firmwareVersion2: number;
  /** TPM_PT_FAMILY_INDICATOR ("2.0"). */
  readonly family: string;
  readonly specLevel: number;
  /** Specification revision × 100 (164 for 1.64). */
  readonly specRevision: number;
  readonly specYear: number;
  readonly specDayOfYear: number;
  readonly pcrCount: number;
  /** Banks with at least one allocated PCR (TPM2_CAP_PCRS). */
  readonly pcrBanks: readonly PcrBank[];
}

/** A TPM2_Quote result: the exact bytes the TPM signed and its signature. */
export interface QuoteResult {
  /** TPMS_ATTEST bytes (content of TPM2B_ATTEST), exactly as signed. */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE wire bytes. */
  readonly signature: Uint8Array;
}

/** Options of {@link Tpm.ensureAk}. */
export interface EnsureAkOptions {
  /** Persistent handle of the AK (default 0x81010002). */
  readonly persistentHandle?: number;
  /** AK kind created when none exists (default 'ecc-p256'). */
  readonly kind?: AkKind;
  /** EK kind the AK is created under (default 'rsa2048'). */
  readonly ekKind?: EkKind;
}

/** Default persistent handle of vouch's AK. */
export const DEFAULT_AK_HANDLE = 0x81010002;

/** TPM2B_ATTEST buffer size (sizeof(TPMS_ATTEST) in tss2_tpm2_types.h). */
const ATTEST_MAX = 2304;
/** NV_Read chunk limit named by vouch (TPM2B_MAX_NV_BUFFER may be larger, some TPMs allow less). */
const NV_CHUNK_MAX = 1024;
/** Bound on PCR_Read round trips (each returns ≥ 1 digest; 16 banks × 32 PCRs / 8 per call). */
const PCR_READ_MAX_CALLS = 64;

/** An empty TPM2B_SENSITIVE_CREATE: size 4, empty userAuth, empty data. */
const EMPTY_SENSITIVE_CREATE = Uint8Array.of(0x00, 0x04, 0x00, 0x00, 0x00, 0x00);
/** An empty TPM2B_DATA. */
const EMPTY_DATA = Uint8Array.of(0x00, 0x00);
/** An empty TPML_PCR_SELECTION. */
const EMPTY_PCR_SELECTION = Uint8Array.of(0, 0, 0, 0);
/** TPMT_SYM_DEF and TPMT_SIG_SCHEME with algorithm TPM_ALG_NULL. */
const ALG_NULL = Uint8Array.of(0x00, 0x10);

function ascii4(v: number): string {
  const b = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  return String.fromCharCode(...b.filter((c) => c !== 0));
}

function bankName(hashAlg: number): string {
  return hashById(hashAlg)?.name ?? `0x${hashAlg.toString(16).padStart(4, '0')}`;
}

/**
 * The DER element at the start of `data`, dropping padding the NV index may hold after it.
 * When `data` does not start with a definite-length DER element that fits, `data` is returned
 * whole: the certificate parser decides, not this function.
 */
function trimDer(data: Uint8Array): Uint8Array {
  if (data.length < 2) return data;
  const first = data[1] as number;
  let len: number;
  let hdr: number;
  if (first < 0x80) {
    len = first;
    hdr = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || data.length < 2 + n) return data;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (data[2 + i] as number);
    hdr = 2 + n;
  }
  return hdr + len <= data.length ? data.subarray(0, hdr + len) : data;
}

/** True when `pub` is `template` with a key filled in: every field but `unique` is the template's. */
function matchesTemplate(pub: TpmtPublic, template: TpmtPublic): boolean {
  if (pub.type !== template.type) return false;
  const filled = { ...template, unique: pub.unique, raw: undefined } as TpmtPublic;
  return bytesEqual(encodeTpmtPublic(filled), encodeTpmtPublic(pub));
}

/** A TPM reached through a TCTI. Not thread-safe; one command at a time. */
export class Tpm {
  readonly #api: Tss2;
  #esys: NativePointer | null;
  #tcti: NativePointer | null;
  readonly #tctiConf: string;
  #nvChunk: number | undefined;

  private constructor(api: Tss2, esys: NativePointer, tcti: NativePointer, conf: string) {
    this.#api = api;
    this.#esys = esys;
    this.#tcti = tcti;
    this.#tctiConf = conf;
  }

  /**
   * Opens a TPM. `tcti` is a tpm2-tss TCTI configuration: `device:/dev/tpmrm0`,
   * `swtpm:host=127.0.0.1,port=2321`, `mssim:host=127.0.0.1,port=2321`.
   *
   * @throws UnavailableError TSS_LIBRARY_UNAVAILABLE when tpm2-tss cannot be loaded
   * @throws UnavailableError TSS_TCTI_FAILED when the TCTI cannot be loaded or cannot reach the TPM
   */
  static open(tcti: string): Tpm {
    if (typeof tcti !== 'string' || tcti === '' || tcti.includes('\0')) {
      throw new MisuseError('MISUSE_ARGUMENT', 'the TCTI configuration must be a non-empty string');
    }
    const api = tss2();
    const tctiOut = ptrOut();
    const rc = api.fn.Tss2_TctiLdr_Initialize(tcti, tctiOut);
    const tctiCtx = tctiOut[0];
    if (rc !== 0 || tctiCtx === null) {
      throw new UnavailableError('TSS_TCTI_FAILED', `TCTI "${tcti}" failed: rc ${rcHex(rc)} (${api.fn.Tss2_RC_Decode(rc)})`, { actual: rcHex(rc) });
    }
    const esysOut = ptrOut();
    const rc2 = api.fn.Esys_Initialize(esysOut, tctiCtx, null);
    const esys = esysOut[0];
    if (rc2 !== 0 || esys === null) {
      api.fn.Tss2_TctiLdr_Finalize([tctiCtx]);
      throw new UnavailableError('TSS_TCTI_FAILED', `Esys_Initialize over "${tcti}" failed: rc ${rcHex(rc2)} (${api.fn.Tss2_RC_Decode(rc2)})`, {
        actual: rcHex(rc2),
      });
    }
    return new Tpm(api, esys, tctiCtx, tcti);
  }

  /** The TCTI configuration this TPM was opened with. */
  get tcti(): string {
    return this.#tctiConf;
  }

  /** True until {@link Tpm.close}. */
  get isOpen(): boolean {
    return this.#esys !== null;
  }

  /** Releases the Esys context and the TCTI. Objects the caller did not flush stay in the TPM. Idempotent. */
  close(): void {
    if (this.#esys !== null) {
      this.#api.fn.Esys_Finalize([this.#esys]);
      this.#esys = null;
    }
    if (this.#tcti !== null) {
      this.#api.fn.Tss2_TctiLdr_Finalize([this.#tcti]);
      this.#tcti = null;
    }
  }

  #ctx(): NativePointer {
    if (this.#esys === null) throw new MisuseError('MISUSE_ARGUMENT', 'the TPM has been closed');
    return this.#esys;
  }

  // --- capabilities ------------------------------------------------------------------------

  /** One TPM2_GetCapability call, decoded. */
  getCapability(capability: number, property: number, propertyCount: number): { moreData: boolean; data: CapabilityData } {
    const ctx = this.#ctx();
    const more = Buffer.alloc(1);
    const out = ptrOut();
    const rc = this.#api.fn.Esys_GetCapability(ctx, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, capability, property, propertyCount, more, out);
    check(this.#api, 'Esys_GetCapability', rc);
    const wire = this.#api.take('TPMS_CAPABILITY_DATA', out[0], 'Esys_GetCapability');
    const data = decodeCapabilityData(wire);
    if (data.capability !== capability) {
      throw new UnavailableError('TSS_COMMAND_FAILED', `Esys_GetCapability answered capability ${data.capability} for ${capability}`);
    }
    return { moreData: more[0] === 1, data };
  }

  /** Every handle of the range that `first` belongs to, from `first` on (TPM2_CAP_HANDLES, following moreData). */
  listHandles(first: number): number[] {
    const range = (first & 0xff000000) >>> 0;
    const out: number[] = [];
    let next = first >>> 0;
    for (let call = 0; call < 1024; call++) {
      const { moreData, data } = this.getCapability(TPM_CAP.HANDLES, next, 254);
      if (data.capability !== TPM_CAP.HANDLES) break;
      const inRange = data.handles.map((h) => h >>> 0).filter((h) => ((h & 0xff000000) >>> 0) === range);
      out.push(...inRange);
      const last = inRange[inRange.length - 1];
      if (!moreData || last === undefined || inRange.length !== data.handles.length) break;
      next = last + 1;
    }
    return out;
  }

  /** TPM_PT properties from `first` up to (not including) `end`, following moreData. */
  #properties(first: number, end: number): Map<number, number> {
    const out = new Map<number, number>();
    let next = first;
    for (let call = 0; call < 64 && next < end; call++) {
      const { moreData, data } = this.getCapability(TPM_CAP.TPM_PROPERTIES, next, 127);
      if (data.capability !== TPM_CAP.TPM_PROPERTIES || data.properties.length === 0) break;
      for (const p of data.properties) if (p.property < end) out.set(p.property, p.value >>> 0);
      const last = data.properties[data.properties.length - 1] as { property: number };
      if (!moreData) break;
      next = last.property + 1;
    }
    return out;
  }

  /** PCR banks with at least one allocated PCR (TPM2_CAP_PCRS). */
  activeBanks(): PcrBank[] {
    const { data } = this.getCapability(TPM_CAP.PCRS, 0, 1);
    if (data.capability !== TPM_CAP.PCRS) return [];
    return data.pcrs.filter((b) => b.pcrs.length > 0).map((b) => ({ hashAlg: b.hashAlg, name: bankName(b.hashAlg), pcrs: b.pcrs }));
  }

  /** Manufacturer, vendor, firmware and specification properties, and the active PCR banks. */
  getInfo(): TpmInfo {
    const p = this.#properties(TPM_PT.FIXED, TPM_PT.FIXED + 0x100);
    const v = (k: number): number => p.get(k) ?? 0;
    const fw1 = v(TPM_PT.FIRMWARE_VERSION_1);
    const fw2 = v(TPM_PT.FIRMWARE_VERSION_2);
    return {
      manufacturer: ascii4(v(TPM_PT.MANUFACTURER)).trimEnd(),
      manufacturerId: v(TPM_PT.MANUFACTURER),
      vendorString: [TPM_PT.VENDOR_STRING_1, TPM_PT.VENDOR_STRING_2, TPM_PT.VENDOR_STRING_3, TPM_PT.VENDOR_STRING_4].map((k) => ascii4(v(k))).join(''),
      vendorTpmType: v(TPM_PT.VENDOR_TPM_TYPE),
      firmwareVersion: (BigInt(fw1) << 32n) | BigInt(fw2),
      firmwareVersion1: fw1,
      firmwareVersion2: fw2,
      family: ascii4(v(TPM_PT.FAMILY_INDICATOR)),
      specLevel: v(TPM_PT.LEVEL),
      specRevision: v(TPM_PT.REVISION),
      specYear: v(TPM_PT.YEAR),
      specDayOfYear: v(TPM_PT.DAY_OF_YEAR),
      pcrCount: v(TPM_PT.PCR_COUNT),
      pcrBanks: this.activeBanks(),
    };
  }

  // --- handles -----------------------------------------------------------------------------

  /** An ESYS_TR for a TPM handle already in the TPM (Esys_TR_FromTPMPublic). */
  #fromTpmPublic(tpmHandle: number): number {
    const tr = trOut();
    const rc = this.#api.fn.Esys_TR_FromTPMPublic(this.#ctx(), tpmHandle >>> 0, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, tr);
    check(this.#api, 'Esys_TR_FromTPMPublic', rc);
    return trValue(tr);
  }

  #trClose(handle: number): void {
    const b = trOut();
    b.writeUInt32LE(handle >>> 0, 0);
    check(this.#api, 'Esys_TR_Close', this.#api.fn.Esys_TR_Close(this.#ctx(), b));
  }

  /**
   * Releases a key or session: a transient object or session is flushed from the TPM
   * (Esys_FlushContext); a persistent key is only closed in Esys (Esys_TR_Close).
   */
  flush(key: TpmKey | number): void {
    if (typeof key === 'number') {
      check(this.#api, 'Esys_FlushContext', this.#api.fn.Esys_FlushContext(this.#ctx(), key >>> 0));
      return;
    }
    if (key.persistentHandle !== undefined) this.#trClose(key.handle);
    else check(this.#api, 'Esys_FlushContext', this.#api.fn.Esys_FlushContext(this.#ctx(), key.handle >>> 0));
  }

  /**
   * Runs `fn`, then releases `handle` with `release`. When `fn` throws, a failure to release is
   * dropped so that the original error is the one reported; otherwise it is thrown.
   */
  #using<T>(release: () => void, fn: () => T): T {
    let result: T;
    try {
      result = fn();
    } catch (e) {
      try {
        release();
      } catch {
        // The error from `fn` is the one to report; the release failure is secondary.
      }
      throw e;
    }
    release();
    return result;
  }

  /** The public area and name of a loaded object (Esys_ReadPublic). */
  #readPublic(handle: number): { public: TpmtPublic; name: Uint8Array } {
    const pub = ptrOut();
    const name = ptrOut();
    const rc = this.#api.fn.Esys_ReadPublic(this.#ctx(), handle, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, pub, name, null);
    if (rc !== 0) {
      this.#api.free(pub[0]);
      this.#api.free(name[0]);
      check(this.#api, 'Esys_ReadPublic', rc);
    }
    let pubWire: Uint8Array;
    try {
      pubWire = this.#api.take('TPM2B_PUBLIC', pub[0], 'Esys_ReadPublic');
    } finally {
      this.#api.free(name[0]);
    }
    const p = decodeTpm2bPublic(pubWire);
    return { public: p, name: tpmName(p) };
  }

  /** A persistent key (0x81xxxxxx) as a {@link TpmKey}; release it with {@link Tpm.flush} (closes only). */
  loadPersistent(persistentHandle: number): TpmKey {
    if (((persistentHandle & 0xff000000) >>> 0) !== TPM_HR.PERSISTENT) {
      throw new MisuseError('MISUSE_ARGUMENT', `0x${(persistentHandle >>> 0).toString(16)} is not a persistent handle`);
    }
    const tr = this.#fromTpmPublic(persistentHandle);
    let pub: { public: TpmtPublic; name: Uint8Array } | undefined;
    return this.#using(
      () => {
        if (pub === undefined) this.#trClose(tr);
      },
      () => {
        pub = this.#readPublic(tr);
        return { handle: tr, persistentHandle: persistentHandle >>> 0, ...pub };
      },
    );
  }

  // --- NV ----------------------------------------------------------------------------------

  /** The NV chunk size: min(1024, TPM_PT_NV_BUFFER_MAX). */
  #nvChunkSize(): number {
    if (this.#nvChunk === undefined) {
      const max = this.#properties(TPM_PT.NV_BUFFER_MAX, TPM_PT.NV_BUFFER_MAX + 1).get(TPM_PT.NV_BUFFER_MAX);
      this.#nvChunk = Math.min(NV_CHUNK_MAX, max !== undefined && max > 0 ? max : 512);
    }
    return this.#nvChunk;
  }

  /** ESYS_TR of an NV index; an absent index is TPM_NV_INDEX_ABSENT. */
  #nvHandle(index: number): number {
    if (((index & 0xff000000) >>> 0) !== TPM_HR.NV_INDEX) {
      throw new MisuseError('MISUSE_ARGUMENT', `0x${(index >>> 0).toString(16)} is not an NV index handle`);
    }
    try {
      return this.#fromTpmPublic(index);
    } catch (e) {
      if (e instanceof TssCommandFailure && isTpmHandleError(e.rc)) {
        throw new UnavailableError('TPM_NV_INDEX_ABSENT', `the TPM has no NV index 0x${(index >>> 0).toString(16).padStart(8, '0')}`, { cause: e });
      }
      throw e;
    }
  }

  #nvReadPublic(tr: number): NvPublic {
    const out = ptrOut();
    const rc = this.#api.fn.Esys_NV_ReadPublic(this.#ctx(), tr, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, out, null);
    check(this.#api, 'Esys_NV_ReadPublic', rc);
    return decodeTpm2bNvPublic(this.#api.take('TPM2B_NV_PUBLIC', out[0], 'Esys_NV_ReadPublic'));
  }

  /** The public area of an NV index. @throws UnavailableError TPM_NV_INDEX_ABSENT */
  readNvPublic(index: number): NvPublic {
    const tr = this.#nvHandle(index);
    return this.#using(
      () => this.#trClose(tr),
      () => this.#nvReadPublic(tr),
    );
  }

  /**
   * The whole content of an NV index: NV_ReadPublic for its size, then NV_Read in chunks,
   * authorized by the index itself (TPMA_NV_AUTHREAD, empty auth value) or else by the owner
   * hierarchy (TPMA_NV_OWNERREAD, empty owner auth).
   *
   * @throws UnavailableError TPM_NV_INDEX_ABSENT when there is no such index
   * @throws UnavailableError TSS_COMMAND_FAILED when the TPM refuses the read
   */
  readNv(index: number): Uint8Array {
    const tr = this.#nvHandle(index);
    return this.#using(
      () => this.#trClose(tr),
      () => this.#readNvContent(tr, this.#nvReadPublic(tr)),
    );
  }

  #readNvContent(tr: number, pub: NvPublic): Uint8Array {
    let auth: number;
    if ((pub.attributes & TPMA_NV.AUTHREAD) !== 0) auth = tr;
    else if ((pub.attributes & TPMA_NV.OWNERREAD) !== 0) auth = ESYS_TR.RH_OWNER;
    else {
      throw new UnavailableError('TSS_COMMAND_FAILED', `NV index 0x${pub.nvIndex.toString(16)} can be read neither with its own auth nor the owner's (attributes 0x${pub.attributes.toString(16)})`);
    }
    const chunk = this.#nvChunkSize();
    const out = new Uint8Array(pub.dataSize);
    for (let off = 0; off < pub.dataSize; off += chunk) {
      const n = Math.min(chunk, pub.dataSize - off);
      const data = ptrOut();
      const rc = this.#api.fn.Esys_NV_Read(this.#ctx(), auth, tr, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, n, off, data);
      check(this.#api, 'Esys_NV_Read', rc);
      const part = tpm2bContent(this.#api.take('TPM2B_MAX_NV_BUFFER', data[0], 'Esys_NV_Read'), 'TPM2B_MAX_NV_BUFFER', TPM2_MAX.NV_BUFFER);
      if (part.length !== n) {
        throw new UnavailableError('TSS_COMMAND_FAILED', `Esys_NV_Read returned ${part.length} bytes for ${n} at offset ${off}`);
      }
      out.set(part, off);
    }
    return out;
  }

  /**
   * Every EK certificate the TPM holds in the TCG EK Credential Profile indices, and the EK
   * chain certificates in 0x01c00100..0x01c001ff. Indices are listed first (TPM2_CAP_HANDLES);
   * absent or unwritten ones are skipped.
   */
  readEkCertificates(): EkCertificate[] {
    const out: EkCertificate[] = [];
    for (const index of this.listHandles(TPM_HR.NV_INDEX)) {
      const kind = ekCertificateKind(index);
      if (kind === undefined) continue;
      const tr = this.#nvHandle(index);
      const der = this.#using(
        () => this.#trClose(tr),
        () => {
          const pub = this.#nvReadPublic(tr);
          if ((pub.attributes & TPMA_NV.WRITTEN) === 0 || pub.dataSize === 0) return undefined;
          return this.#readNvContent(tr, pub);
        },
      );
      if (der !== undefined) out.push({ index, kind, der: trimDer(der) });
    }
    return out;
  }

  // --- keys --------------------------------------------------------------------------------

  /**
   * Creates the EK of `kind` from its TCG template under the endorsement hierarchy
   * (TPM2_CreatePrimary). The same template on the same TPM always gives the same key, so the
   * result matches the EK certificate. Flush the returned key when done.
   */
  createEk(kind: EkKind): TpmKey {
    const entry = EK_KINDS[kind];
    if (entry === undefined) throw new MisuseError('MISUSE_ARGUMENT', `unknown EK kind ${String(kind)}`);
    const api = this.#api;
    const handle = trOut();
    const pub = ptrOut();
    const rc = api.fn.Esys_CreatePrimary(
      this.#ctx(),
      ESYS_TR.RH_ENDORSEMENT,
      ESYS_TR.PASSWORD,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      api.toNative('TPM2B_SENSITIVE_CREATE', EMPTY_SENSITIVE_CREATE),
      api.toNative('TPM2B_PUBLIC', encodeTpm2bPublic(entry.template)),
      api.toNative('TPM2B_DATA', EMPTY_DATA),
      api.toNative('TPML_PCR_SELECTION', EMPTY_PCR_SELECTION),
      handle,
      pub,
      null,
      null,
      null,
    );
    if (rc !== 0) {
      api.free(pub[0]);
      check(api, 'Esys_CreatePrimary', rc);
    }
    const tr = trValue(handle);
    let done = false;
    return this.#using(
      () => {
        if (!done) this.flush(tr);
      },
      () => {
        const p = decodeTpm2bPublic(api.take('TPM2B_PUBLIC', pub[0], 'Esys_CreatePrimary'));
        done = true;
        return { handle: tr, public: p, name: tpmName(p) };
      },
    );
  }

  /**
   * Runs `fn` with the session that authorizes use of `ek`: for an EK with the PolicySecret
   * (TPM_RH_ENDORSEMENT) policy of the low-range templates, a fresh SHA-256 policy session
   * satisfied by TPM2_PolicySecret (flushed afterwards, on every path); for an EK with
   * userWithAuth, the password session.
   */
  #withEkAuth<T>(ek: TpmKey, fn: (session: number) => T): T {
    if (ek.public.nameAlg === TPM_ALG.SHA256 && bytesEqual(ek.public.authPolicy, EK_POLICY_SHA256)) {
      const session = this.#startPolicySession(TPM_ALG.SHA256);
      return this.#using(
        () => this.flush(session),
        () => {
          const rc = this.#api.fn.Esys_PolicySecret(
            this.#ctx(),
            ESYS_TR.RH_ENDORSEMENT,
            session,
            ESYS_TR.PASSWORD,
            ESYS_TR.NONE,
            ESYS_TR.NONE,
            null,
            null,
            null,
            0,
            null,
            null,
          );
          check(this.#api, 'Esys_PolicySecret', rc);
          return fn(session);
        },
      );
    }
    if ((ek.public.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0) return fn(ESYS_TR.PASSWORD);
    throw new MisuseError('MISUSE_ARGUMENT', `no supported authorization for the EK with authPolicy ${toHex(ek.public.authPolicy)}`);
  }

  #startPolicySession(authHash: number): number {
    const session = trOut();
    const rc = this.#api.fn.Esys_StartAuthSession(
      this.#ctx(),
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      null,
      TPM2_SE.POLICY,
      this.#api.toNative('TPMT_SYM_DEF', ALG_NULL),
      authHash,
      session,
    );
    check(this.#api, 'Esys_StartAuthSession', rc);
    return trValue(session);
  }

  /**
   * Creates and loads an attestation key of `kind` under `ek` (TPM2_Create + TPM2_Load, each
   * authorized with a fresh EK policy session). Flush the returned key when done.
   */
  createAk(ek: TpmKey, kind: AkKind): CreatedKey {
    const template = AK_KINDS[kind];
    if (template === undefined) throw new MisuseError('MISUSE_ARGUMENT', `unknown AK kind ${String(kind)}`);
    const api = this.#api;
    const { privateBlob, publicWire } = this.#withEkAuth(ek, (session) => {
      const priv = ptrOut();
      const pub = ptrOut();
      const rc = api.fn.Esys_Create(
        this.#ctx(),
        ek.handle,
        session,
        ESYS_TR.NONE,
        ESYS_TR.NONE,
        api.toNative('TPM2B_SENSITIVE_CREATE', EMPTY_SENSITIVE_CREATE),
        api.toNative('TPM2B_PUBLIC', encodeTpm2bPublic(template)),
        api.toNative('TPM2B_DATA', EMPTY_DATA),
        api.toNative('TPML_PCR_SELECTION', EMPTY_PCR_SELECTION),
        priv,
        pub,
        null,
        null,
        null,
      );
      const [p, publicWire] = api.takeAll('Esys_Create', rc, [
        ['TPM2B_PRIVATE', priv[0]],
        ['TPM2B_PUBLIC', pub[0]],
      ]) as [Uint8Array, Uint8Array];
      return { privateBlob: p, publicWire };
    });
    const handle = this.#withEkAuth(ek, (session) => {
      const h = trOut();
      const rc = api.fn.Esys_Load(
        this.#ctx(),
        ek.handle,
        session,
        ESYS_TR.NONE,
        ESYS_TR.NONE,
        api.toNative('TPM2B_PRIVATE', privateBlob),
        api.toNative('TPM2B_PUBLIC', publicWire),
        h,
      );
      check(api, 'Esys_Load', rc);
      return trValue(h);
    });
    try {
      const p = decodeTpm2bPublic(publicWire);
      return { handle, public: p, name: tpmName(p), privateBlob };
    } catch (e) {
      this.flush(handle);
      throw e;
    }
  }

  /**
   * Makes a loaded transient key persistent at `persistentHandle` (TPM2_EvictControl, owner
   * authorization). The transient copy stays loaded: flush it. Returns the persistent key.
   */
  persistAk(key: TpmKey, persistentHandle: number): TpmKey {
    if (((persistentHandle & 0xff000000) >>> 0) !== TPM_HR.PERSISTENT) {
      throw new MisuseError('MISUSE_ARGUMENT', `0x${(persistentHandle >>> 0).toString(16)} is not a persistent handle`);
    }
    if (key.persistentHandle !== undefined) throw new MisuseError('MISUSE_ARGUMENT', 'the key is already persistent');
    const handle = this.#evictControl(key.handle, persistentHandle >>> 0);
    return { handle, persistentHandle: persistentHandle >>> 0, public: key.public, name: key.name };
  }

  /**
   * The persistent AK at `persistentHandle`, created under a fresh EK and persisted when there
   * is none, so that every process on this TPM uses the same AK (and AK name).
   *
   * @throws MisuseError when the handle holds a key that is not an AK of the requested kind
   */
  ensureAk(opts: EnsureAkOptions = {}): TpmKey & { readonly created: boolean } {
    const persistentHandle = (opts.persistentHandle ?? DEFAULT_AK_HANDLE) >>> 0;
    const kind = opts.kind ?? 'ecc-p256';
    const template = AK_KINDS[kind];
    if (template === undefined) throw new MisuseError('MISUSE_ARGUMENT', `unknown AK kind ${String(kind)}`);
    if (this.listHandles(TPM_HR.PERSISTENT).includes(persistentHandle)) {
      const key = this.loadPersistent(persistentHandle);
      if (!matchesTemplate(key.public, template)) {
        this.flush(key);
        throw new MisuseError(
          'MISUSE_ARGUMENT',
          `persistent handle 0x${persistentHandle.toString(16)} holds a key that is not a vouch ${kind} attestation key`,
        );
      }
      return { ...key, created: false };
    }
    const ek = this.createEk(opts.ekKind ?? 'rsa2048');
    return this.#using(
      () => this.flush(ek),
      () => {
        const ak = this.createAk(ek, kind);
        const persisted = this.#using(
          () => this.flush(ak),
          () => this.persistAk(ak, persistentHandle),
        );
        return { ...persisted, created: true };
      },
    );
  }

  /**
   * Removes a persistent object (TPM2_EvictControl with the owner hierarchy). `key` must come
   * from {@link Tpm.loadPersistent}; its ESYS_TR is released.
   */
  evictPersistent(key: TpmKey): void {
    if (key.persistentHandle === undefined) throw new MisuseError('MISUSE_ARGUMENT', 'the key is not persistent');
    this.#evictControl(key.handle, key.persistentHandle);
  }

  /**
   * TPM2_EvictControl under the owner hierarchy: makes a loaded object persistent at
   * `persistentHandle`, or removes the persistent object `handle`. Returns the new ESYS_TR.
   */
  #evictControl(handle: number, persistentHandle: number): number {
    const out = trOut();
    const rc = this.#api.fn.Esys_EvictControl(this.#ctx(), ESYS_TR.RH_OWNER, handle, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, persistentHandle, out);
    check(this.#api, 'Esys_EvictControl', rc);
    return trValue(out);
  }

  // --- credential activation and quotes ---------------------------------------------------------

  /**
   * TPM2_ActivateCredential: recovers the secret a verifier bound to (AK name, EK) with
   * MakeCredential. `credentialBlob` is TPM2B_ID_OBJECT and `encryptedSecret` TPM2B_ENCRYPTED_SECRET
   * wire bytes. Returns the content of the TPM2B_DIGEST certInfo.
   */
  activateCredential(ak: TpmKey, ek: TpmKey, credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Uint8Array {
    const api = this.#api;
    const blob = api.toNative('TPM2B_ID_OBJECT', credentialBlob);
    const secret = api.toNative('TPM2B_ENCRYPTED_SECRET', encryptedSecret);
    const wire = this.#withEkAuth(ek, (session) => {
      const out = ptrOut();
      const rc = api.fn.Esys_ActivateCredential(this.#ctx(), ak.handle, ek.handle, ESYS_TR.PASSWORD, session, ESYS_TR.NONE, blob, secret, out);
      check(api, 'Esys_ActivateCredential', rc);
      return api.take('TPM2B_DIGEST', out[0], 'Esys_ActivateCredential');
    });
    return tpm2bContent(wire, 'TPM2B_DIGEST', TPM2_MAX.DIGEST);
  }

  /**
   * TPM2_Quote with the AK's own scheme (inScheme TPM_ALG_NULL). Returns the exact TPMS_ATTEST
   * bytes and the TPMT_SIGNATURE bytes; verification is the verifier's job.
   */
  quote(ak: TpmKey, qualifyingData: Uint8Array, selection: PcrSelection): QuoteResult {
    if (qualifyingData.length > TPM2_MAX.DIGEST) {
      throw new MisuseError('MISUSE_ARGUMENT', `qualifying data is ${qualifyingData.length} bytes; at most ${TPM2_MAX.DIGEST}`);
    }
    const api = this.#api;
    const data = api.toNative('TPM2B_DATA', new Writer(2 + qualifyingData.length).tpm2b(qualifyingData).finish());
    const scheme = api.toNative('TPMT_SIG_SCHEME', ALG_NULL);
    const sel = api.toNative('TPML_PCR_SELECTION', encodePcrSelection(selection));
    const quoted = ptrOut();
    const sig = ptrOut();
    const rc = api.fn.Esys_Quote(this.#ctx(), ak.handle, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, data, scheme, sel, quoted, sig);
    const [attestWire, signature] = api.takeAll('Esys_Quote', rc, [
      ['TPM2B_ATTEST', quoted[0]],
      ['TPMT_SIGNATURE', sig[0]],
    ]) as [Uint8Array, Uint8Array];
    return { attest: tpm2bContent(attestWire, 'TPM2B_ATTEST', ATTEST_MAX), signature };
  }

  // --- PCRs --------------------------------------------------------------------------------

  /**
   * PCR values of `selection`, by hash algorithm then PCR index. TPM2_PCR_Read returns at most
   * 8 digests per call, so it is repeated for what is left; PCRs of unallocated banks are absent
   * from the result.
   */
  pcrRead(selection: PcrSelection): Map<number, Map<number, Uint8Array>> {
    const api = this.#api;
    const out = new Map<number, Map<number, Uint8Array>>();
    let remaining = selection.map((b) => ({ hashAlg: b.hashAlg, pcrs: [...b.pcrs], sizeofSelect: b.sizeofSelect })).filter((b) => b.pcrs.length > 0);
    for (let call = 0; remaining.length > 0; call++) {
      if (call >= PCR_READ_MAX_CALLS) throw new UnavailableError('TSS_COMMAND_FAILED', 'Esys_PCR_Read did not complete the selection');
      const selOut = ptrOut();
      const values = ptrOut();
      const rc = api.fn.Esys_PCR_Read(this.#ctx(), ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, api.toNative('TPML_PCR_SELECTION', encodePcrSelection(remaining)), null, selOut, values);
      const [selWire, valuesWire] = api.takeAll('Esys_PCR_Read', rc, [
        ['TPML_PCR_SELECTION', selOut[0]],
        ['TPML_DIGEST', values[0]],
      ]) as [Uint8Array, Uint8Array];
      const readSel: PcrSelection = decodePcrSelection(selWire);
      const digests = decodeDigestList(valuesWire);
      const pairs = readSel.flatMap((b) => b.pcrs.map((pcr) => [b.hashAlg, pcr] as const));
      if (pairs.length !== digests.length) {
        throw new UnavailableError('TSS_COMMAND_FAILED', `Esys_PCR_Read returned ${digests.length} digests for ${pairs.length} selected PCRs`);
      }
      if (pairs.length === 0) break;
      pairs.forEach(([alg, pcr], i) => {
        let bank = out.get(alg);
        if (bank === undefined) out.set(alg, (bank = new Map()));
        bank.set(pcr, digests[i] as Uint8Array);
      });
      remaining = remaining
        .map((b) => ({ ...b, pcrs: b.pcrs.filter((p) => !(out.get(b.hashAlg)?.has(p) ?? false)) }))
        .filter((b) => b.pcrs.length > 0);
    }
    return out;
  }

  /** TPM2_PCR_Extend of one bank of PCR `pcr` with `digest` (platform/empty PCR auth). */
  pcrExtend(pcr: number, hashAlg: number, digest: Uint8Array): void {
    const h = hashById(hashAlg);
    if (h === undefined) throw new MisuseError('MISUSE_ARGUMENT', `unknown hash algorithm 0x${hashAlg.toString(16)}`);
    if (digest.length !== h.size) throw new MisuseError('MISUSE_ARGUMENT', `a ${h.name} digest is ${h.size} bytes, got ${digest.length}`);
    if (!Number.isInteger(pcr) || pcr < 0 || pcr > 31) throw new MisuseError('MISUSE_ARGUMENT', `PCR index ${pcr} out of range`);
    const values = new Writer(8 + h.size).u32(1).u16(hashAlg).bytes(digest).finish();
    const rc = this.#api.fn.Esys_PCR_Extend(
      this.#ctx(),
      ESYS_TR.PCR0 + pcr,
      ESYS_TR.PASSWORD,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      this.#api.toNative('TPML_DIGEST_VALUES', values),
    );
    check(this.#api, 'Esys_PCR_Extend', rc);
  }
}

/** A selection of PCRs 0–23 in each of `banks` (hash algorithm ids). */
export function allPcrs(banks: readonly number[]): PcrSelection {
  return pcrSelection(banks.map((hashAlg) => ({ hashAlg, pcrs: Array.from({ length: 24 }, (_, i) => i) })));
}
