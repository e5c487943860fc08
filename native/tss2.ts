/**
 * koffi bindings to tpm2-tss (libtss2-tctildr, -esys, -mu, -rc).
 *
 * Only byte buffers and opaque pointers cross the FFI. A TPM structure going in is TPM wire bytes
 * that `Tss2_MU_<TYPE>_Unmarshal` turns into an opaque, generously sized native buffer passed to
 * Esys as `void *`; a structure coming out (`TYPE **`) is turned back into wire bytes by
 * `Tss2_MU_<TYPE>_Marshal` and freed with `Esys_Free`. No C structure is laid out in TypeScript.
 *
 * Calling conventions used throughout:
 * - `T **` outputs are koffi out-parameters `_Out_ void **`, passed as a one-element array;
 * - `ESYS_TR *` outputs are 4-byte Buffers (host byte order), `size_t *` offsets 8-byte Buffers.
 *
 * The libraries are loaded on first use ({@link tss2}), never on import, so code that only imports
 * this module runs on hosts without tpm2-tss.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MisuseError, UnavailableError } from '../src/lib/errors.js';
import { Reader } from '../src/lib/reader.js';

/** An opaque native pointer (a koffi external). Never inspected in TypeScript. */
export type NativePointer = object;

/** A one-element array koffi fills with a pointer (`T **` out-parameter). */
export type PointerOut = [NativePointer | null];

/** ESYS_TR constants (tss2_esys.h). */
export const ESYS_TR = {
  NONE: 0xfff,
  PASSWORD: 0x0ff,
  PCR0: 0,
  RH_OWNER: 0x101,
  RH_NULL: 0x107,
  RH_LOCKOUT: 0x10a,
  RH_ENDORSEMENT: 0x10b,
  RH_PLATFORM: 0x10c,
} as const;

/** TPM2_SE session types. */
export const TPM2_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** Structures exchanged with Esys, by their tss2-mu type name. */
export type MuType =
  | 'TPM2B_ATTEST'
  | 'TPM2B_DATA'
  | 'TPM2B_DIGEST'
  | 'TPM2B_ENCRYPTED_SECRET'
  | 'TPM2B_ID_OBJECT'
  | 'TPM2B_MAX_NV_BUFFER'
  | 'TPM2B_NAME'
  | 'TPM2B_NV_PUBLIC'
  | 'TPM2B_PRIVATE'
  | 'TPM2B_PUBLIC'
  | 'TPM2B_SENSITIVE_CREATE'
  | 'TPML_DIGEST'
  | 'TPML_DIGEST_VALUES'
  | 'TPML_PCR_SELECTION'
  | 'TPMS_CAPABILITY_DATA'
  | 'TPMT_SIG_SCHEME'
  | 'TPMT_SIGNATURE'
  | 'TPMT_SYM_DEF';

/**
 * Size of the opaque native buffer a structure is unmarshalled into. The largest structure used
 * here is TPM2B_ATTEST (2306 bytes in tss2_tpm2_types.h 3.x); 8 KiB leaves room for any TSS build.
 */
const NATIVE_STRUCT_SIZE = 8192;
/** Largest wire encoding of any structure used here. */
const WIRE_MAX = 8192;

type Rc = number;
type EsysTr = number;
type Ptr = NativePointer | Buffer | null;

/** The C functions vouch calls, with TypeScript types for koffi's marshalling. */
export interface Tss2Functions {
  Tss2_TctiLdr_Initialize(nameConf: string, context: PointerOut): Rc;
  Tss2_TctiLdr_Finalize(context: PointerOut): void;
  Tss2_RC_Decode(rc: Rc): string;
  Esys_Initialize(context: PointerOut, tcti: NativePointer, abiVersion: null): Rc;
  Esys_Finalize(context: PointerOut): void;
  Esys_Free(p: NativePointer): void;
  Esys_GetCapability(
    ctx: NativePointer, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    capability: number, property: number, propertyCount: number,
    moreData: Buffer, capabilityData: PointerOut,
  ): Rc;
  Esys_TR_FromTPMPublic(ctx: NativePointer, tpmHandle: number, s1: EsysTr, s2: EsysTr, s3: EsysTr, object: Buffer): Rc;
  Esys_TR_Close(ctx: NativePointer, handle: Buffer): Rc;
  Esys_TR_GetName(ctx: NativePointer, handle: EsysTr, name: PointerOut): Rc;
  Esys_FlushContext(ctx: NativePointer, handle: EsysTr): Rc;
  Esys_NV_ReadPublic(ctx: NativePointer, nvIndex: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, nvPublic: PointerOut, nvName: PointerOut | null): Rc;
  Esys_NV_Read(ctx: NativePointer, authHandle: EsysTr, nvIndex: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, size: number, offset: number, data: PointerOut): Rc;
  Esys_CreatePrimary(
    ctx: NativePointer, primaryHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    inSensitive: Ptr, inPublic: Ptr, outsideInfo: Ptr, creationPcr: Ptr,
    objectHandle: Buffer, outPublic: PointerOut | null, creationData: null, creationHash: null, creationTicket: null,
  ): Rc;
  Esys_Create(
    ctx: NativePointer, parentHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    inSensitive: Ptr, inPublic: Ptr, outsideInfo: Ptr, creationPcr: Ptr,
    outPrivate: PointerOut, outPublic: PointerOut, creationData: null, creationHash: null, creationTicket: null,
  ): Rc;
  Esys_Load(ctx: NativePointer, parentHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, inPrivate: Ptr, inPublic: Ptr, objectHandle: Buffer): Rc;
  Esys_StartAuthSession(
    ctx: NativePointer, tpmKey: EsysTr, bind: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    nonceCaller: Ptr, sessionType: number, symmetric: Ptr, authHash: number, sessionHandle: Buffer,
  ): Rc;
  Esys_PolicySecret(
    ctx: NativePointer, authHandle: EsysTr, policySession: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    nonceTpm: Ptr, cpHashA: Ptr, policyRef: Ptr, expiration: number, timeout: null, policyTicket: null,
  ): Rc;
  Esys_EvictControl(ctx: NativePointer, auth: EsysTr, objectHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, persistentHandle: number, newObjectHandle: Buffer): Rc;
  Esys_ReadPublic(ctx: NativePointer, objectHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, outPublic: PointerOut, name: PointerOut | null, qualifiedName: null): Rc;
  Esys_ActivateCredential(
    ctx: NativePointer, activateHandle: EsysTr, keyHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    credentialBlob: Ptr, secret: Ptr, certInfo: PointerOut,
  ): Rc;
  Esys_Quote(
    ctx: NativePointer, signHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr,
    qualifyingData: Ptr, inScheme: Ptr, pcrSelect: Ptr, quoted: PointerOut, signature: PointerOut,
  ): Rc;
  Esys_PCR_Read(
    ctx: NativePointer, s1: EsysTr, s2: EsysTr, s3: EsysTr, pcrSelectionIn: Ptr,
    pcrUpdateCounter: Buffer | null, pcrSelectionOut: PointerOut, pcrValues: PointerOut,
  ): Rc;
  Esys_PCR_Extend(ctx: NativePointer, pcrHandle: EsysTr, s1: EsysTr, s2: EsysTr, s3: EsysTr, digests: Ptr): Rc;
}

/** C prototypes, in the order of {@link Tss2Functions}; grouped by library. */
const PROTOTYPES = {
  tctildr: [
    'uint32_t Tss2_TctiLdr_Initialize(const char *nameConf, _Out_ void **context)',
    'void Tss2_TctiLdr_Finalize(_Inout_ void **context)',
  ],
  rc: ['const char *Tss2_RC_Decode(uint32_t rc)'],
  esys: [
    'uint32_t Esys_Initialize(_Out_ void **ctx, void *tcti, void *abiVersion)',
    'void Esys_Finalize(_Inout_ void **ctx)',
    'void Esys_Free(void *p)',
    'uint32_t Esys_GetCapability(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, uint32_t capability, uint32_t property, uint32_t propertyCount, void *moreData, _Out_ void **capabilityData)',
    'uint32_t Esys_TR_FromTPMPublic(void *ctx, uint32_t tpmHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *object)',
    'uint32_t Esys_TR_Close(void *ctx, void *handle)',
    'uint32_t Esys_TR_GetName(void *ctx, uint32_t handle, _Out_ void **name)',
    'uint32_t Esys_FlushContext(void *ctx, uint32_t handle)',
    'uint32_t Esys_NV_ReadPublic(void *ctx, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, _Out_ void **nvPublic, _Out_ void **nvName)',
    'uint32_t Esys_NV_Read(void *ctx, uint32_t authHandle, uint32_t nvIndex, uint32_t s1, uint32_t s2, uint32_t s3, uint16_t size, uint16_t offset, _Out_ void **data)',
    'uint32_t Esys_CreatePrimary(void *ctx, uint32_t primaryHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *inSensitive, void *inPublic, void *outsideInfo, void *creationPcr, void *objectHandle, _Out_ void **outPublic, _Out_ void **creationData, _Out_ void **creationHash, _Out_ void **creationTicket)',
    'uint32_t Esys_Create(void *ctx, uint32_t parentHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *inSensitive, void *inPublic, void *outsideInfo, void *creationPcr, _Out_ void **outPrivate, _Out_ void **outPublic, _Out_ void **creationData, _Out_ void **creationHash, _Out_ void **creationTicket)',
    'uint32_t Esys_Load(void *ctx, uint32_t parentHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *inPrivate, void *inPublic, void *objectHandle)',
    'uint32_t Esys_StartAuthSession(void *ctx, uint32_t tpmKey, uint32_t bind, uint32_t s1, uint32_t s2, uint32_t s3, void *nonceCaller, uint8_t sessionType, void *symmetric, uint16_t authHash, void *sessionHandle)',
    'uint32_t Esys_PolicySecret(void *ctx, uint32_t authHandle, uint32_t policySession, uint32_t s1, uint32_t s2, uint32_t s3, void *nonceTpm, void *cpHashA, void *policyRef, int32_t expiration, _Out_ void **timeout, _Out_ void **policyTicket)',
    'uint32_t Esys_EvictControl(void *ctx, uint32_t auth, uint32_t objectHandle, uint32_t s1, uint32_t s2, uint32_t s3, uint32_t persistentHandle, void *newObjectHandle)',
    'uint32_t Esys_ReadPublic(void *ctx, uint32_t objectHandle, uint32_t s1, uint32_t s2, uint32_t s3, _Out_ void **outPublic, _Out_ void **name, _Out_ void **qualifiedName)',
    'uint32_t Esys_ActivateCredential(void *ctx, uint32_t activateHandle, uint32_t keyHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *credentialBlob, void *secret, _Out_ void **certInfo)',
    'uint32_t Esys_Quote(void *ctx, uint32_t signHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *qualifyingData, void *inScheme, void *pcrSelect, _Out_ void **quoted, _Out_ void **signature)',
    'uint32_t Esys_PCR_Read(void *ctx, uint32_t s1, uint32_t s2, uint32_t s3, void *pcrSelectionIn, void *pcrUpdateCounter, _Out_ void **pcrSelectionOut, _Out_ void **pcrValues)',
    'uint32_t Esys_PCR_Extend(void *ctx, uint32_t pcrHandle, uint32_t s1, uint32_t s2, uint32_t s3, void *digests)',
  ],
} as const;

/** The minimal koffi surface used here (koffi ships loose `any` typings). */
interface KoffiLib {
  func(prototype: string): (...args: unknown[]) => unknown;
}
interface Koffi {
  load(path: string): KoffiLib;
}

type MuMarshal = (src: NativePointer | Buffer, buffer: Buffer, size: number, offset: Buffer) => Rc;
type MuUnmarshal = (buffer: Buffer, size: number, offset: Buffer, dest: Buffer) => Rc;

/** The loaded libraries. */
export interface Tss2 {
  readonly fn: Tss2Functions;
  /** Wire bytes → opaque native structure (for an Esys input). */
  toNative(type: MuType, wire: Uint8Array): Buffer;
  /** Native structure (an Esys output) → wire bytes. Does not free `p`. */
  fromNative(type: MuType, p: NativePointer): Uint8Array;
  /** Wire bytes of an Esys output, which is then freed with Esys_Free (also on error). */
  take(type: MuType, p: NativePointer | null, command: string): Uint8Array;
  /** Frees an Esys output if present. */
  free(p: NativePointer | null): void;
  /**
   * The outputs of an Esys command, in order, as wire bytes: on a failed `rc` every output is
   * freed and the command's error thrown; if taking one output fails, the rest are freed too.
   */
  takeAll(command: string, rc: number, outputs: ReadonlyArray<readonly [MuType, NativePointer | null]>): Uint8Array[];
}

/** The software layers of a TSS2_RC (bits 16–23), named as in tss2_common.h. */
const RC_LAYERS: Readonly<Record<number, string>> = {
  0: 'tpm',
  6: 'feature',
  7: 'esapi',
  8: 'sys',
  9: 'mu',
  10: 'tcti',
  11: 'resmgr',
  12: 'resmgr-tpm',
};

/** Name of the layer that produced `rc` ("tpm", "esapi", "tcti", …). */
export function rcLayer(rc: number): string {
  const n = (rc >>> 16) & 0xff;
  return RC_LAYERS[n] ?? `layer ${n}`;
}

/** `rc` as 0x-prefixed 8-digit hex. */
export function rcHex(rc: number): string {
  return `0x${(rc >>> 0).toString(16).padStart(8, '0')}`;
}

/** True when a TPM-layer response code is TPM_RC_HANDLE (format 1, error number 0x0b). */
export function isTpmHandleError(rc: number): boolean {
  return (rc >>> 16) === 0 && (rc & 0x80) !== 0 && (rc & 0x3f) === 0x0b;
}

/** A TSS2_RC that is not success, raised as TSS_COMMAND_FAILED with the layer and decoded text. */
export class TssCommandFailure extends UnavailableError {
  /** The raw TSS2_RC. */
  readonly rc: number;
  /** The TSS layer that produced it. */
  readonly layer: string;
  /** The command (C function) that returned it. */
  readonly command: string;
  constructor(command: string, rc: number, text: string) {
    const layer = rcLayer(rc);
    super('TSS_COMMAND_FAILED', `${command} failed: ${layer} layer, rc ${rcHex(rc)} (${text})`, { actual: rcHex(rc) });
    this.rc = rc >>> 0;
    this.layer = layer;
    this.command = command;
  }
}

let loaded: Tss2 | undefined;

/** Directory to load the libraries from, or the dynamic loader's search path when unset. */
function libPath(name: string): string {
  const dir = process.env.VOUCH_TSS2_LIBDIR;
  return dir === undefined || dir === '' ? name : join(dir, name);
}

function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  return require('koffi') as Koffi;
}

/**
 * The tpm2-tss libraries, loaded on first call.
 *
 * Unless `TSS2_LOG` is set, the TSS's own logging is turned off: every failure reaches the caller
 * as a {@link TssCommandFailure} naming the command, layer and code, and expected failures (an
 * absent NV index) would otherwise print errors.
 *
 * @throws UnavailableError TSS_LIBRARY_UNAVAILABLE when koffi or a library cannot be loaded
 */
export function tss2(): Tss2 {
  if (loaded !== undefined) return loaded;
  if (process.env.TSS2_LOG === undefined) process.env.TSS2_LOG = 'all+NONE';
  let koffi: Koffi;
  const libs: Partial<Record<'tctildr' | 'rc' | 'esys' | 'mu', KoffiLib>> = {};
  try {
    koffi = loadKoffi();
    libs.tctildr = koffi.load(libPath('libtss2-tctildr.so.0'));
    libs.rc = koffi.load(libPath('libtss2-rc.so.0'));
    libs.esys = koffi.load(libPath('libtss2-esys.so.0'));
    libs.mu = koffi.load(libPath('libtss2-mu.so.0'));
  } catch (e) {
    throw new UnavailableError('TSS_LIBRARY_UNAVAILABLE', `the tpm2-tss libraries could not be loaded: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const fns: Record<string, (...args: unknown[]) => unknown> = {};
  for (const [lib, protos] of Object.entries(PROTOTYPES) as [keyof typeof PROTOTYPES, readonly string[]][]) {
    const l = libs[lib] as KoffiLib;
    for (const proto of protos) {
      const name = /([A-Za-z0-9_]+)\(/.exec(proto)?.[1] as string;
      try {
        fns[name] = l.func(proto);
      } catch (e) {
        throw new UnavailableError('TSS_LIBRARY_UNAVAILABLE', `tpm2-tss has no usable ${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
  }
  const fn = fns as unknown as Tss2Functions;
  const mu = libs.mu as KoffiLib;
  const marshal = new Map<MuType, MuMarshal>();
  const unmarshal = new Map<MuType, MuUnmarshal>();
  const muMarshal = (type: MuType): MuMarshal => {
    let f = marshal.get(type);
    if (f === undefined) {
      f = mu.func(`uint32_t Tss2_MU_${type}_Marshal(const void *src, void *buffer, size_t bufferSize, void *offset)`) as MuMarshal;
      marshal.set(type, f);
    }
    return f;
  };
  const muUnmarshal = (type: MuType): MuUnmarshal => {
    let f = unmarshal.get(type);
    if (f === undefined) {
      f = mu.func(`uint32_t Tss2_MU_${type}_Unmarshal(const void *buffer, size_t bufferSize, void *offset, void *dest)`) as MuUnmarshal;
      unmarshal.set(type, f);
    }
    return f;
  };
  const fail = (command: string, rc: number): TssCommandFailure => new TssCommandFailure(command, rc, fn.Tss2_RC_Decode(rc));

  const api: Tss2 = {
    fn,
    toNative(type, wire) {
      if (wire.length > WIRE_MAX) throw new MisuseError('MISUSE_ARGUMENT', `${type}: ${wire.length} bytes is more than ${WIRE_MAX}`);
      const src = Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength);
      const dest = Buffer.alloc(NATIVE_STRUCT_SIZE);
      const offset = Buffer.alloc(8);
      const rc = muUnmarshal(type)(src, src.length, offset, dest);
      if (rc !== 0) throw fail(`Tss2_MU_${type}_Unmarshal`, rc);
      const used = Number(offset.readBigUInt64LE(0));
      if (used !== wire.length) {
        throw new MisuseError('MISUSE_ARGUMENT', `${type}: ${wire.length - used} bytes after the end of the structure`);
      }
      return dest;
    },
    fromNative(type, p) {
      const out = Buffer.alloc(WIRE_MAX);
      const offset = Buffer.alloc(8);
      const rc = muMarshal(type)(p, out, out.length, offset);
      if (rc !== 0) throw fail(`Tss2_MU_${type}_Marshal`, rc);
      return new Uint8Array(out.subarray(0, Number(offset.readBigUInt64LE(0))));
    },
    take(type, p, command) {
      if (p === null) {
        throw new UnavailableError('TSS_COMMAND_FAILED', `${command} succeeded but returned no ${type}`);
      }
      try {
        return api.fromNative(type, p);
      } finally {
        fn.Esys_Free(p);
      }
    },
    free(p) {
      if (p !== null) fn.Esys_Free(p);
    },
    takeAll(command, rc, outputs) {
      if (rc !== 0) {
        for (const [, p] of outputs) api.free(p);
        check(api, command, rc);
      }
      const out: Uint8Array[] = [];
      for (let i = 0; i < outputs.length; i++) {
        const [type, p] = outputs[i] as readonly [MuType, NativePointer | null];
        try {
          out.push(api.take(type, p, command));
        } catch (e) {
          for (const [, rest] of outputs.slice(i + 1)) api.free(rest);
          throw e;
        }
      }
      return out;
    },
  };
  loaded = api;
  return api;
}

/** Throws {@link TssCommandFailure} when `rc` is not TSS2_RC_SUCCESS. */
export function check(api: Tss2, command: string, rc: number): void {
  if (rc !== 0) throw new TssCommandFailure(command, rc, api.fn.Tss2_RC_Decode(rc));
}

/** A 4-byte buffer for an `ESYS_TR *` output. */
export function trOut(): Buffer {
  return Buffer.alloc(4);
}

/** Reads an `ESYS_TR` written by the library (host byte order: little-endian on every supported host). */
export function trValue(b: Buffer): number {
  return b.readUInt32LE(0);
}

/** A fresh `T **` out-parameter. */
export function ptrOut(): PointerOut {
  return [null];
}

/** The content of a TPM2B given as wire bytes (u16 size, then exactly that many bytes). */
export function tpm2bContent(wire: Uint8Array, what: string, max: number): Uint8Array {
  const r = new Reader(wire, what);
  const c = r.tpm2b('buffer', max);
  r.finish();
  return c;
}
