/**
 * Plays firmware for tests: extends a software TPM's PCRs the way UEFI firmware and a boot
 * loader would, and writes the matching crypto-agile TCG event log
 * (TCG PC Client Platform Firmware Profile §10: a TCG_PCR_EVENT carrying the Spec ID event, then
 * TCG_PCR_EVENT2 records; all integers little-endian).
 */
import { createHash } from 'node:crypto';
import { Writer } from '../../src/lib/reader.js';
import { hashById } from '../../src/tpm/abi/constants.js';

/** Event types used here (PC Client PFP §10.4.1). */
export const EV = {
  NO_ACTION: 0x00000003,
  SEPARATOR: 0x00000004,
  S_CRTM_VERSION: 0x00000008,
  IPL: 0x0000000d,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_ACTION: 0x80000007,
} as const;

/** EFI_GLOBAL_VARIABLE {8BE4DF61-93CA-11D2-AA0D-00E098032B8C} in its on-disk byte order. */
export const EFI_GLOBAL_VARIABLE = Uint8Array.from([0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);

/** One measured event: its PCR, type, the data logged, and the bytes whose digest is extended. */
export interface FirmwareEvent {
  readonly pcr: number;
  readonly type: number;
  readonly data: Uint8Array;
  /** What is hashed into the PCR (defaults to `data`; an EFI application is measured by its image hash). */
  readonly measured?: Uint8Array;
  /** A digest to extend as is, per bank name, instead of hashing `measured`. */
  readonly digests?: Readonly<Record<string, Uint8Array>>;
}

function ucs2(s: string, terminate: boolean): Uint8Array {
  const b = Buffer.from(terminate ? `${s}\0` : s, 'utf16le');
  return new Uint8Array(b);
}

/** UEFI_VARIABLE_DATA for a variable of EFI_GLOBAL_VARIABLE. */
export function uefiVariable(name: string, value: Uint8Array, guid: Uint8Array = EFI_GLOBAL_VARIABLE): Uint8Array {
  const n = ucs2(name, false);
  return new Writer()
    .bytes(guid)
    .u64(BigInt(name.length), 'le')
    .u64(BigInt(value.length), 'le')
    .bytes(n)
    .bytes(value)
    .finish();
}

/** A plausible boot: S-CRTM version, Secure Boot on, separators, a boot loader, GRUB's command line. */
export function typicalBoot(opts: { secureBoot: boolean; cmdline: string; bootloader: Uint8Array }): FirmwareEvent[] {
  const sep = Uint8Array.of(0, 0, 0, 0);
  return [
    { pcr: 0, type: EV.S_CRTM_VERSION, data: ucs2('vouch test firmware 1.2', true) },
    { pcr: 7, type: EV.EFI_VARIABLE_DRIVER_CONFIG, data: uefiVariable('SecureBoot', Uint8Array.of(opts.secureBoot ? 1 : 0)) },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: EV.SEPARATOR, data: sep })),
    { pcr: 4, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: new Uint8Array(32), measured: opts.bootloader },
    // GRUB logs "kernel_cmdline: <line>" and measures the line itself.
    { pcr: 8, type: EV.IPL, data: new Uint8Array(Buffer.from(`kernel_cmdline: ${opts.cmdline}\0`, 'latin1')), measured: new Uint8Array(Buffer.from(opts.cmdline, 'latin1')) },
  ];
}

/** The digest of `e` in bank `alg` (TPM_ALG_ID). */
export function eventDigest(e: FirmwareEvent, alg: number): Uint8Array {
  const h = hashById(alg);
  if (h === undefined) throw new Error(`bank ${alg} unknown`);
  const given = e.digests?.[h.name];
  if (given !== undefined) return given;
  return new Uint8Array(createHash(h.nodeName).update(e.measured ?? e.data).digest());
}

/** The crypto-agile event log of `events` for `banks` (TPM_ALG_IDs). */
export function encodeEventLog(events: readonly FirmwareEvent[], banks: readonly number[]): Uint8Array {
  const w = new Writer(4096);
  // The Spec ID event, as a legacy TCG_PCR_EVENT (PCR 0, EV_NO_ACTION, 20 zero bytes).
  const spec = new Writer()
    .bytes(new Uint8Array(Buffer.from('Spec ID Event03\0', 'latin1')))
    .u32(0, 'le') // platformClass: client
    .u8(0) // specVersionMinor
    .u8(2) // specVersionMajor
    .u8(0) // specErrata
    .u8(2) // uintnSize: UINT64
    .u32(banks.length, 'le');
  for (const alg of banks) spec.u16(alg, 'le').u16(hashById(alg)?.size ?? 0, 'le');
  spec.u8(0); // vendorInfoSize
  const specBytes = spec.finish();
  w.u32(0, 'le').u32(EV.NO_ACTION, 'le').bytes(new Uint8Array(20)).u32(specBytes.length, 'le').bytes(specBytes);
  for (const e of events) {
    w.u32(e.pcr, 'le').u32(e.type, 'le').u32(banks.length, 'le');
    for (const alg of banks) w.u16(alg, 'le').bytes(eventDigest(e, alg));
    w.u32(e.data.length, 'le').bytes(e.data);
  }
  return w.finish();
}

/** Something that can extend a PCR (the native Tpm, or the agent's collector). */
export interface Extender {
  pcrExtend(pcr: number, hashAlg: number, digest: Uint8Array): void;
}

/** Extends every event into the TPM in every bank and returns the matching event log. */
export function measureBoot(tpm: Extender, events: readonly FirmwareEvent[], banks: readonly number[]): Uint8Array {
  for (const e of events) {
    if (e.type === EV.NO_ACTION) continue;
    for (const alg of banks) tpm.pcrExtend(e.pcr, alg, eventDigest(e, alg));
  }
  return encodeEventLog(events, banks);
}
