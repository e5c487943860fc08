/**
 * Boot claims decoded from an event log whose replay matched a quote.
 *
 * Replay proves the digests of the events of the PCRs that matched, and nothing else. A claim
 * taken from event data therefore needs a second proof: the event's digest, in every bank it
 * carries, must be the hash of that data (the PFP requires it for variables, separators, actions
 * and GRUB's strings). Events that fail it are counted in `unboundEvents` and give no claim. Claims
 * taken from digests alone (EFI applications, files GRUB loads) need only the replay; the paths
 * shown next to them are not covered by any digest and are named untrusted.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { bytesEqual, concatBytes, toHex } from '../lib/bytes.js';
import { isVouchError, MisuseError, type ErrorCode } from '../lib/errors.js';
import { hashById } from '../tpm/abi/constants.js';
import type { TcgEvent } from './abi.js';
import { EV, GUID } from './constants.js';
import type { EventLogVerification, VerifiedEventLog } from './replay.js';
import { decodeSignatureDatabase, decodeUefiImageLoadEvent, decodeUefiVariableData, devicePathFile, guidText } from './uefi.js';

/** Digests of one event per bank name ("sha256" → hex), only banks whose PCR matched the quote. */
export type BankDigests = Readonly<Record<string, string>>;

/** An X.509 certificate of a signature database. */
export interface CertificateClaim {
  /** Subject DN, RFC 4514-like ("CN=…, O=…"); absent when the DER does not parse. */
  readonly subject?: string;
  /** SHA-256 of the DER. */
  readonly sha256: string;
  readonly owner?: string;
  /** Set when the certificate does not parse (the fingerprint is still given). */
  readonly error?: string;
}

/** The contents of PK, KEK, db or dbx. */
export interface SignatureDbClaim {
  readonly certificates: readonly CertificateClaim[];
  /** EFI_CERT_SHA256 entries: image hashes (allowed in db, revoked in dbx), hex. */
  readonly sha256Hashes: readonly string[];
  /** Entries of other signature types, by type GUID. */
  readonly otherEntries: Readonly<Record<string, number>>;
  /** The event the value came from. */
  readonly event: number;
}

/** An EFI application the firmware loaded (EV_EFI_BOOT_SERVICES_APPLICATION, PCR 4). */
export interface EfiApplicationClaim {
  readonly event: number;
  /** Authenticode digests of the image, per bank. */
  readonly digests: BankDigests;
  /** File path from the event's device path: not covered by the digest. */
  readonly untrustedPath?: string;
}

/** A file GRUB measured into PCR 9 (its digest is the file's hash). */
export interface LoadedFileClaim {
  readonly event: number;
  readonly digests: BankDigests;
  /** The path logged with it: not covered by the digest. */
  readonly untrustedPath: string;
}

/** The certificate or entry that verified an image (EV_EFI_VARIABLE_AUTHORITY, PCR 7). */
export interface AuthorityClaim {
  readonly event: number;
  readonly variable: string;
  readonly vendorGuid: string;
  readonly certificate?: CertificateClaim;
  /** The value as text when it is not a certificate (shim's SbatLevel). */
  readonly text?: string;
}

/** Typed claims about one boot. */
export interface BootClaims {
  /** From the SecureBoot variable (PCR 7); `unknown` when absent, empty or not bound to its digest. */
  readonly secureBoot: { readonly state: 'enabled' | 'disabled' | 'unknown'; readonly event?: number; readonly note?: string };
  readonly pk?: SignatureDbClaim;
  readonly kek?: SignatureDbClaim;
  readonly db?: SignatureDbClaim;
  readonly dbx?: SignatureDbClaim;
  readonly authorities: readonly AuthorityClaim[];
  /** In load order; with shim and GRUB: shim, GRUB, then images loaded through shim. */
  readonly efiApplications: readonly EfiApplicationClaim[];
  /** The first EFI application loaded from a boot option. */
  readonly bootLoader?: EfiApplicationClaim;
  /** GRUB's commands (PCR 8), in order. */
  readonly grubCommands: readonly string[];
  /** Files GRUB measured into PCR 9. */
  readonly loadedFiles: readonly LoadedFileClaim[];
  /** The kernel GRUB loaded: the PCR 9 file that follows its `linux` command. */
  readonly kernel?: LoadedFileClaim;
  readonly initrds: readonly LoadedFileClaim[];
  /** Kernel command line measured by GRUB (PCR 8) or systemd-boot / systemd-stub (PCR 8 or 12). */
  readonly kernelCmdline?: { readonly value: string; readonly source: 'grub' | 'systemd'; readonly event: number };
  /** EV_S_CRTM_VERSION (PCR 0): UCS-2 text, else ASCII, else a GUID (16 bytes), else hex. */
  readonly sCrtmVersion?: { readonly value: string; readonly encoding: 'ucs2' | 'ascii' | 'guid' | 'hex'; readonly event: number };
  readonly separators: readonly { readonly pcr: number; readonly value: string; readonly error: boolean; readonly event: number }[];
  /** True when a separator carries a value other than 00000000 (the PFP's error separator is 00000001). */
  readonly errorSeparator: boolean;
  /** Events of proven PCRs whose data is not what their digest measures: they gave no claim. */
  readonly unboundEvents: readonly number[];
  /** Events whose data did not decode as the structure of their type: they gave no claim. */
  readonly undecodableEvents: readonly { readonly event: number; readonly code: ErrorCode; readonly message: string }[];
}

function stripNul(d: Uint8Array): Uint8Array {
  return d.length > 0 && d[d.length - 1] === 0 ? d.subarray(0, d.length - 1) : d;
}

/** True when every digest of `e` in a computable bank is the hash of one of `candidates`. */
function dataBound(e: TcgEvent, candidates: readonly Uint8Array[]): boolean {
  let checked = 0;
  for (const d of e.digests) {
    const h = hashById(d.hashAlg);
    if (h === undefined) continue;
    if (!candidates.some((c) => bytesEqual(createHash(h.nodeName).update(c).digest(), d.digest))) return false;
    checked++;
  }
  return checked > 0;
}

function asciiText(d: Uint8Array): string | undefined {
  const t = stripNul(d);
  for (const c of t) if (c < 0x20 || c > 0x7e) if (c !== 0x0a && c !== 0x09) return undefined;
  return new TextDecoder('latin1').decode(t);
}

/**
 * UCS-2 text of printable ASCII characters, NUL-terminated when `terminated`. One odd trailing zero
 * byte is allowed: some systemd-boot versions log the string one byte short of its NUL.
 */
function ucs2Text(d: Uint8Array, terminated = false): string | undefined {
  const n = d.length - (d.length % 2);
  if (n < 2 || (d.length % 2 === 1 && d[d.length - 1] !== 0)) return undefined;
  let s = '';
  let ended = d.length % 2 === 1;
  for (let i = 0; i < n; i += 2) {
    const c = d[i]! | (d[i + 1]! << 8);
    if (c === 0 && i === n - 2) {
      ended = true;
      break;
    }
    if (c < 0x20 || c > 0x7e) if (c !== 0x09 && c !== 0x0a) return undefined;
    s += String.fromCharCode(c);
  }
  if (terminated && !ended) return undefined;
  return s.length > 0 ? s : undefined;
}

/** The event data padded with one zero byte when its length is odd (see {@link ucs2Text}). */
function evenPadded(d: Uint8Array): Uint8Array {
  if (d.length % 2 === 0) return d;
  const out = new Uint8Array(d.length + 1);
  out.set(d);
  return out;
}

function certificate(der: Uint8Array, owner?: string): CertificateClaim {
  const sha256 = createHash('sha256').update(der).digest('hex');
  try {
    const c = new X509Certificate(der);
    return { subject: c.subject.split('\n').join(', '), sha256, ...(owner !== undefined ? { owner } : {}) };
  } catch (e) {
    return { sha256, ...(owner !== undefined ? { owner } : {}), error: e instanceof Error ? e.message : 'does not parse' };
  }
}

function signatureDb(value: Uint8Array, event: number): SignatureDbClaim {
  const certificates: CertificateClaim[] = [];
  const sha256Hashes: string[] = [];
  const otherEntries: Record<string, number> = {};
  for (const list of decodeSignatureDatabase(value)) {
    for (const s of list.signatures) {
      if (list.signatureType === GUID.EFI_CERT_X509) certificates.push(certificate(s.data, s.owner));
      else if (list.signatureType === GUID.EFI_CERT_SHA256 && s.data.length === 32) sha256Hashes.push(toHex(s.data));
      else otherEntries[list.signatureType] = (otherEntries[list.signatureType] ?? 0) + 1;
    }
  }
  return { certificates, sha256Hashes, otherEntries, event };
}

/** The first whitespace-separated token after `prefix` ("linux (hd0,gpt2)/vmlinuz root=…" → path). */
function argAfter(cmd: string, verbs: readonly string[]): string[] | undefined {
  const parts = cmd.trim().split(/\s+/);
  if (parts.length < 2 || !verbs.includes(parts[0]!)) return undefined;
  return parts.slice(1);
}

/**
 * Decodes the boot claims of a log whose replay matched a quote. Only events of PCRs that matched
 * the quote (in at least one bank) are read.
 *
 * @throws MisuseError EVENTLOG_NOT_REPLAYED when given a verification that did not succeed
 */
export function bootClaims(v: EventLogVerification): BootClaims {
  const verified: VerifiedEventLog | undefined = v.ok ? v.verified : undefined;
  if (verified === undefined) throw new MisuseError('EVENTLOG_NOT_REPLAYED', 'boot claims need an event log whose replay matched the quote');
  const banksOf = new Map<number, number[]>();
  for (const m of verified.matched) {
    const list = banksOf.get(m.pcr) ?? [];
    list.push(m.hashAlg);
    banksOf.set(m.pcr, list);
  }
  const digestsOf = (e: TcgEvent): BankDigests => {
    const out: Record<string, string> = {};
    for (const d of e.digests) if (banksOf.get(e.pcr)?.includes(d.hashAlg) === true) out[hashById(d.hashAlg)?.name ?? String(d.hashAlg)] = toHex(d.digest);
    return out;
  };

  let secureBoot: BootClaims['secureBoot'] = { state: 'unknown', note: 'no SecureBoot variable in a proven PCR 7' };
  const dbs: { pk?: SignatureDbClaim; kek?: SignatureDbClaim; db?: SignatureDbClaim; dbx?: SignatureDbClaim } = {};
  const authorities: AuthorityClaim[] = [];
  const efiApplications: EfiApplicationClaim[] = [];
  let afterBootOption: EfiApplicationClaim | undefined;
  let callingBootOption = false;
  const grubCommands: string[] = [];
  const loadedFiles: LoadedFileClaim[] = [];
  let kernel: LoadedFileClaim | undefined;
  const initrds: LoadedFileClaim[] = [];
  let kernelCmdline: BootClaims['kernelCmdline'];
  let sCrtmVersion: BootClaims['sCrtmVersion'];
  const separators: { pcr: number; value: string; error: boolean; event: number }[] = [];
  const unboundEvents: number[] = [];
  const undecodableEvents: { event: number; code: ErrorCode; message: string }[] = [];
  // GRUB's last `linux`/`initrd` command: the PCR 9 files that follow it are the kernel / initrds.
  let expecting: { kind: 'kernel' | 'initrd'; paths: string[] } | undefined;

  const events = [...verified.replay.eventsByPcr.entries()].filter(([pcr]) => banksOf.has(pcr)).flatMap(([, es]) => es);
  events.sort((a, b) => a.index - b.index);
  for (const e of events) {
    const type = e.untrustedType;
    const data = e.untrustedData;
    try {
      if (type === EV.EFI_VARIABLE_DRIVER_CONFIG && e.pcr === 7) {
        // PFP §10.4.4: the digest is the hash of the whole UEFI_VARIABLE_DATA.
        if (!dataBound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        const v = decodeUefiVariableData(data, e.offset);
        if (v.vendorGuid === GUID.EFI_GLOBAL_VARIABLE && v.name === 'SecureBoot') {
          if (v.data.length === 0) secureBoot = { state: 'unknown', event: e.index, note: 'the SecureBoot variable is empty' };
          else if (v.data.length === 1 && (v.data[0] === 0 || v.data[0] === 1)) secureBoot = { state: v.data[0] === 1 ? 'enabled' : 'disabled', event: e.index };
          else secureBoot = { state: 'unknown', event: e.index, note: `the SecureBoot variable holds ${toHex(v.data)}` };
        } else if (v.vendorGuid === GUID.EFI_GLOBAL_VARIABLE && (v.name === 'PK' || v.name === 'KEK')) {
          dbs[v.name === 'PK' ? 'pk' : 'kek'] = signatureDb(v.data, e.index);
        } else if (v.vendorGuid === GUID.EFI_IMAGE_SECURITY_DATABASE && (v.name === 'db' || v.name === 'dbx')) {
          dbs[v.name] = signatureDb(v.data, e.index);
        }
      } else if (type === EV.EFI_VARIABLE_AUTHORITY && e.pcr === 7) {
        if (!dataBound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        const v = decodeUefiVariableData(data, e.offset);
        const base = { event: e.index, variable: v.name, vendorGuid: v.vendorGuid };
        if (v.data.length > 2 && v.data[0] === 0x30) authorities.push({ ...base, certificate: certificate(v.data) });
        else if (v.data.length > 18 && v.data[16] === 0x30) authorities.push({ ...base, certificate: certificate(v.data.subarray(16), guidText(v.data.subarray(0, 16))) });
        else authorities.push({ ...base, ...(asciiText(v.data) !== undefined ? { text: asciiText(v.data)! } : {}) });
      } else if (type === EV.EFI_ACTION && e.pcr === 4) {
        if (dataBound(e, [data]) && asciiText(data) === 'Calling EFI Application from Boot Option') callingBootOption = true;
      } else if (type === EV.EFI_BOOT_SERVICES_APPLICATION) {
        // The digest is the image's Authenticode hash; the device path is not covered.
        let untrustedPath: string | undefined;
        try {
          untrustedPath = devicePathFile(decodeUefiImageLoadEvent(data, e.offset).devicePath);
        } catch (err) {
          if (!isVouchError(err)) throw err;
        }
        const app = { event: e.index, digests: digestsOf(e), ...(untrustedPath !== undefined ? { untrustedPath } : {}) };
        efiApplications.push(app);
        if (afterBootOption === undefined && callingBootOption) afterBootOption = app;
      } else if (type === EV.IPL && e.pcr === 8) {
        const ascii = asciiText(data);
        const m = ascii === undefined ? null : /^(grub_cmd:? |kernel_cmdline:? |grub_kernel_cmdline )([\s\S]*)$/.exec(ascii);
        // GRUB measures the string without its "grub_cmd: " / "kernel_cmdline: " prefix and
        // without the NUL: the prefix, which tells a command from the command line, is not covered.
        const body = m === null ? undefined : new TextEncoder().encode(m[2]!);
        if (m !== null && body !== undefined && dataBound(e, [body, concatBytes(body, Uint8Array.of(0)), data, stripNul(data)])) {
          if (m[1]!.startsWith('grub_cmd')) {
            const cmd = m[2]!;
            grubCommands.push(cmd);
            const linux = argAfter(cmd, ['linux', 'linuxefi', 'linux16']);
            const initrd = argAfter(cmd, ['initrd', 'initrdefi', 'initrd16']);
            if (linux !== undefined) expecting = { kind: 'kernel', paths: [linux[0]!] };
            else if (initrd !== undefined) expecting = { kind: 'initrd', paths: initrd };
          } else {
            kernelCmdline = { value: m[2]!, source: 'grub', event: e.index };
          }
        } else if (ascii === undefined) {
          // systemd-boot measures the entry's command line as UTF-16 into PCR 8.
          const text = ucs2Text(data);
          if (text !== undefined && dataBound(e, [data, evenPadded(data), stripNul(stripNul(data))])) kernelCmdline = { value: text, source: 'systemd', event: e.index };
          else unboundEvents.push(e.index);
        } else {
          unboundEvents.push(e.index);
        }
      } else if (type === EV.IPL && e.pcr === 12) {
        // systemd-stub measures the kernel command line as UTF-16 into PCR 12.
        const text = ucs2Text(data);
        if (text !== undefined && dataBound(e, [data, evenPadded(data), stripNul(stripNul(data))])) kernelCmdline = { value: text, source: 'systemd', event: e.index };
      } else if (type === EV.IPL && e.pcr === 9) {
        const path = asciiText(data) ?? toHex(data);
        const file = { event: e.index, digests: digestsOf(e), untrustedPath: path };
        loadedFiles.push(file);
        if (expecting !== undefined) {
          const hit = expecting.paths.some((p) => p === path || path.endsWith(p)) || (expecting.kind === 'kernel' && /kernel/i.test(path));
          if (hit && expecting.kind === 'kernel') {
            kernel = file;
            expecting = undefined;
          } else if (hit) {
            initrds.push(file);
          }
        }
      } else if (type === EV.S_CRTM_VERSION && e.pcr === 0) {
        if (!dataBound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        const u = ucs2Text(data, true);
        const a = u === undefined ? asciiText(data) : undefined;
        sCrtmVersion =
          u !== undefined
            ? { value: u, encoding: 'ucs2', event: e.index }
            : a !== undefined && a.length > 0
              ? { value: a, encoding: 'ascii', event: e.index }
              : data.length === 16
                ? { value: guidText(data), encoding: 'guid', event: e.index }
                : { value: toHex(data), encoding: 'hex', event: e.index };
      } else if (type === EV.SEPARATOR) {
        if (!dataBound(e, [data])) {
          unboundEvents.push(e.index);
          continue;
        }
        separators.push({ pcr: e.pcr, value: toHex(data), error: data.some((b) => b !== 0), event: e.index });
      }
    } catch (err) {
      if (!isVouchError(err)) throw err;
      undecodableEvents.push({ event: e.index, code: err.code, message: err.message });
    }
  }

  const bootLoader = afterBootOption ?? efiApplications[0];
  return {
    secureBoot,
    ...dbs,
    authorities,
    efiApplications,
    ...(bootLoader !== undefined ? { bootLoader } : {}),
    grubCommands,
    loadedFiles,
    ...(kernel !== undefined ? { kernel } : {}),
    initrds,
    ...(kernelCmdline !== undefined ? { kernelCmdline } : {}),
    ...(sCrtmVersion !== undefined ? { sCrtmVersion } : {}),
    separators,
    errorSeparator: separators.some((s) => s.error),
    unboundEvents,
    undecodableEvents,
  };
}
