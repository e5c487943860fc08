/**
 * The SEV-SNP ATTESTATION_REPORT (AMD SEV Secure Nested Paging Firmware ABI Specification,
 * §7.3 "Attestation", Table "ATTESTATION_REPORT Structure"), versions 2, 3 and 5.
 *
 * Bytes ↔ fields only: nothing here verifies a signature, and every field is *claimed* by the
 * report until ../verify.ts has checked the signature over {@link SnpReport.signedBytes}.
 * The report is 1184 (0x4A0) bytes, little-endian; the signature covers bytes 0x000–0x29F.
 *
 * ```
 * 0x000 VERSION u32          0x004 GUEST_SVN u32        0x008 POLICY u64
 * 0x010 FAMILY_ID [16]       0x020 IMAGE_ID [16]        0x030 VMPL u32
 * 0x034 SIGNATURE_ALGO u32   0x038 CURRENT_TCB u64      0x040 PLATFORM_INFO u64
 * 0x048 AUTHOR_KEY_EN:1 MASK_CHIP_KEY:1 SIGNING_KEY:3 reserved:27 (u32)   0x04C reserved u32
 * 0x050 REPORT_DATA [64]     0x090 MEASUREMENT [48]     0x0C0 HOST_DATA [32]
 * 0x0E0 ID_KEY_DIGEST [48]   0x110 AUTHOR_KEY_DIGEST [48]
 * 0x140 REPORT_ID [32]       0x160 REPORT_ID_MA [32]    0x180 REPORTED_TCB u64
 * 0x188 CPUID_FAM_ID u8, CPUID_MOD_ID u8, CPUID_STEP u8 (v3+; reserved in v2), reserved to 0x19F
 * 0x1A0 CHIP_ID [64]         0x1E0 COMMITTED_TCB u64
 * 0x1E8 CURRENT_BUILD u8, CURRENT_MINOR u8, CURRENT_MAJOR u8, reserved u8
 * 0x1EC COMMITTED_BUILD u8, COMMITTED_MINOR u8, COMMITTED_MAJOR u8, reserved u8
 * 0x1F0 LAUNCH_TCB u64
 * 0x1F8 LAUNCH_MIT_VECTOR u64, 0x200 CURRENT_MIT_VECTOR u64 (v5; reserved before), reserved to 0x29F
 * 0x2A0 SIGNATURE: R [72] little-endian, S [72] little-endian, reserved [368]
 * ```
 */
import { MisuseError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';

/** Size of an ATTESTATION_REPORT. */
export const SNP_REPORT_SIZE = 0x4a0;
/** End (exclusive) of the bytes the signature covers. */
export const SNP_SIGNED_SIZE = 0x2a0;
/** Size of one signature component (R or S) as stored: 72 bytes, little-endian, of which P-384 uses 48. */
export const SNP_SIG_COMPONENT_SIZE = 72;
/** Report versions this decoder reads. */
export const SNP_REPORT_VERSIONS = [2, 3, 5] as const;
export type SnpReportVersion = (typeof SNP_REPORT_VERSIONS)[number];

/** SIGNATURE_ALGO value for ECDSA P-384 with SHA-384 (ABI spec, Table "Signature Algorithm Encodings"). */
export const SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;

/** SIGNING_KEY encodings (bits 4:2 of the word at 0x48). */
export const SNP_SIGNING_KEY = { vcek: 0, vlek: 1, none: 7 } as const;
export type SnpSigningKeyName = keyof typeof SNP_SIGNING_KEY;

type FieldKind = 'u8' | 'u32' | 'u64' | 'bytes' | 'reserved';

/** One entry of a report layout: spec name, offset, size, and how it is read. */
export interface SnpFieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: FieldKind;
}

function f(name: string, offset: number, size: number, kind: FieldKind): SnpFieldLayout {
  return { name, offset, size, kind };
}

const HEAD: readonly SnpFieldLayout[] = [
  f('VERSION', 0x000, 4, 'u32'),
  f('GUEST_SVN', 0x004, 4, 'u32'),
  f('POLICY', 0x008, 8, 'u64'),
  f('FAMILY_ID', 0x010, 16, 'bytes'),
  f('IMAGE_ID', 0x020, 16, 'bytes'),
  f('VMPL', 0x030, 4, 'u32'),
  f('SIGNATURE_ALGO', 0x034, 4, 'u32'),
  f('CURRENT_TCB', 0x038, 8, 'u64'),
  f('PLATFORM_INFO', 0x040, 8, 'u64'),
  f('KEY_INFO', 0x048, 4, 'u32'),
  f('RESERVED_04C', 0x04c, 4, 'reserved'),
  f('REPORT_DATA', 0x050, 64, 'bytes'),
  f('MEASUREMENT', 0x090, 48, 'bytes'),
  f('HOST_DATA', 0x0c0, 32, 'bytes'),
  f('ID_KEY_DIGEST', 0x0e0, 48, 'bytes'),
  f('AUTHOR_KEY_DIGEST', 0x110, 48, 'bytes'),
  f('REPORT_ID', 0x140, 32, 'bytes'),
  f('REPORT_ID_MA', 0x160, 32, 'bytes'),
  f('REPORTED_TCB', 0x180, 8, 'u64'),
];
const CPUID_V2: readonly SnpFieldLayout[] = [f('RESERVED_188', 0x188, 24, 'reserved')];
const CPUID_V3: readonly SnpFieldLayout[] = [
  f('CPUID_FAM_ID', 0x188, 1, 'u8'),
  f('CPUID_MOD_ID', 0x189, 1, 'u8'),
  f('CPUID_STEP', 0x18a, 1, 'u8'),
  f('RESERVED_18B', 0x18b, 21, 'reserved'),
];
const MIDDLE: readonly SnpFieldLayout[] = [
  f('CHIP_ID', 0x1a0, 64, 'bytes'),
  f('COMMITTED_TCB', 0x1e0, 8, 'u64'),
  f('CURRENT_BUILD', 0x1e8, 1, 'u8'),
  f('CURRENT_MINOR', 0x1e9, 1, 'u8'),
  f('CURRENT_MAJOR', 0x1ea, 1, 'u8'),
  f('RESERVED_1EB', 0x1eb, 1, 'reserved'),
  f('COMMITTED_BUILD', 0x1ec, 1, 'u8'),
  f('COMMITTED_MINOR', 0x1ed, 1, 'u8'),
  f('COMMITTED_MAJOR', 0x1ee, 1, 'u8'),
  f('RESERVED_1EF', 0x1ef, 1, 'reserved'),
  f('LAUNCH_TCB', 0x1f0, 8, 'u64'),
];
const TAIL_V2: readonly SnpFieldLayout[] = [f('RESERVED_1F8', 0x1f8, 168, 'reserved')];
const TAIL_V5: readonly SnpFieldLayout[] = [
  f('LAUNCH_MIT_VECTOR', 0x1f8, 8, 'u64'),
  f('CURRENT_MIT_VECTOR', 0x200, 8, 'u64'),
  f('RESERVED_208', 0x208, 152, 'reserved'),
];
const SIG: readonly SnpFieldLayout[] = [
  f('SIGNATURE.R', 0x2a0, 72, 'bytes'),
  f('SIGNATURE.S', 0x2e8, 72, 'bytes'),
  f('SIGNATURE.RESERVED', 0x330, 368, 'reserved'),
];

/** The layout of each supported version, in order, covering 0x000–0x49F exactly. */
export const SNP_REPORT_LAYOUTS: Readonly<Record<SnpReportVersion, readonly SnpFieldLayout[]>> = {
  2: [...HEAD, ...CPUID_V2, ...MIDDLE, ...TAIL_V2, ...SIG],
  3: [...HEAD, ...CPUID_V3, ...MIDDLE, ...TAIL_V2, ...SIG],
  5: [...HEAD, ...CPUID_V3, ...MIDDLE, ...TAIL_V5, ...SIG],
};

/** Reserved bits of the word at 0x48 (bits 31:5). */
const KEY_INFO_RESERVED = 0xffffffe0;

/** A decoded ATTESTATION_REPORT. Every field is claimed until the signature is verified. */
export interface SnpReport {
  readonly version: SnpReportVersion;
  readonly guestSvn: number;
  /** Guest policy (ABI spec §4.3): raw value; see {@link snpPolicyFlags}. */
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  /** TCB_VERSION values: raw u64; see {@link snpTcbComponents} for the per-product view. */
  readonly currentTcb: bigint;
  readonly platformInfo: bigint;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  /** SIGNING_KEY: 0 VCEK, 1 VLEK, 7 none. */
  readonly signingKey: number;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: bigint;
  /** CPUID family/model/stepping of the chip (version 3 and later; absent in version 2). */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId: Uint8Array;
  readonly committedTcb: bigint;
  readonly currentVersion: { readonly major: number; readonly minor: number; readonly build: number };
  readonly committedVersion: { readonly major: number; readonly minor: number; readonly build: number };
  readonly launchTcb: bigint;
  /** Mitigation vectors (version 5). */
  readonly launchMitVector?: bigint;
  readonly currentMitVector?: bigint;
  /** SIGNATURE.R and SIGNATURE.S as stored: 72 bytes each, little-endian. */
  readonly signature: { readonly r: Uint8Array; readonly s: Uint8Array };
}

/** A decoded report with the exact bytes it came from. */
export interface DecodedSnpReport extends SnpReport {
  /** Bytes 0x000–0x29F exactly as received: what the signature covers. */
  readonly signedBytes: Uint8Array;
  /** The whole 1184-byte report as received. */
  readonly raw: Uint8Array;
}

const ROOT = 'ATTESTATION_REPORT';

function isVersion(v: number): v is SnpReportVersion {
  return (SNP_REPORT_VERSIONS as readonly number[]).includes(v);
}

/**
 * Decodes an ATTESTATION_REPORT. The input must be exactly 1184 bytes; every reserved range
 * (and the reserved bits of the word at 0x48) must be zero.
 *
 * @throws ParseError PARSE_TRUNCATED, PARSE_TRAILING_BYTES, PARSE_BAD_VALUE (VERSION, SIGNING_KEY), PARSE_RESERVED_NONZERO
 */
export function decodeSnpReport(bytes: Uint8Array): DecodedSnpReport {
  const head = new Reader(bytes, ROOT);
  if (bytes.length < SNP_REPORT_SIZE) {
    throw head.error('PARSE_TRUNCATED', '', `needs ${SNP_REPORT_SIZE} bytes, ${bytes.length} given`, {
      expected: `${SNP_REPORT_SIZE} bytes`,
      actual: `${bytes.length} bytes`,
    });
  }
  const version = head.u32('VERSION', 'le');
  if (!isVersion(version)) {
    throw head.error('PARSE_BAD_VALUE', 'VERSION', `report version ${version} is not supported`, {
      at: 0,
      expected: SNP_REPORT_VERSIONS.join(' | '),
      actual: String(version),
    });
  }
  const r = new Reader(bytes, ROOT);
  const num = new Map<string, number>();
  const big = new Map<string, bigint>();
  const raw = new Map<string, Uint8Array>();
  for (const fl of SNP_REPORT_LAYOUTS[version]) {
    if (fl.kind === 'u8') num.set(fl.name, r.u8(fl.name));
    else if (fl.kind === 'u32') num.set(fl.name, r.u32(fl.name, 'le'));
    else if (fl.kind === 'u64') big.set(fl.name, r.u64(fl.name, 'le'));
    else if (fl.kind === 'bytes') raw.set(fl.name, r.bytes(fl.size, fl.name));
    else r.reserved(fl.size, fl.name);
  }
  r.finish();
  const n = (k: string): number => num.get(k) as number;
  const b = (k: string): bigint => big.get(k) as bigint;
  const y = (k: string): Uint8Array => raw.get(k) as Uint8Array;

  const keyInfo = n('KEY_INFO');
  if ((keyInfo & KEY_INFO_RESERVED) >>> 0 !== 0) {
    throw r.error('PARSE_RESERVED_NONZERO', 'KEY_INFO', `reserved bits 31:5 are 0x${(keyInfo >>> 0).toString(16)}`, {
      at: 0x48,
      expected: 'bits 31:5 zero',
      actual: `0x${(keyInfo >>> 0).toString(16).padStart(8, '0')}`,
    });
  }
  const signingKey = (keyInfo >>> 2) & 7;
  if (signingKey !== 0 && signingKey !== 1 && signingKey !== 7) {
    throw r.error('PARSE_BAD_VALUE', 'SIGNING_KEY', `SIGNING_KEY ${signingKey} is reserved`, { at: 0x48, expected: '0 (VCEK) | 1 (VLEK) | 7 (none)', actual: String(signingKey) });
  }
  return {
    version,
    guestSvn: n('GUEST_SVN'),
    policy: b('POLICY'),
    familyId: y('FAMILY_ID'),
    imageId: y('IMAGE_ID'),
    vmpl: n('VMPL'),
    signatureAlgo: n('SIGNATURE_ALGO'),
    currentTcb: b('CURRENT_TCB'),
    platformInfo: b('PLATFORM_INFO'),
    authorKeyEn: (keyInfo & 1) !== 0,
    maskChipKey: (keyInfo & 2) !== 0,
    signingKey,
    reportData: y('REPORT_DATA'),
    measurement: y('MEASUREMENT'),
    hostData: y('HOST_DATA'),
    idKeyDigest: y('ID_KEY_DIGEST'),
    authorKeyDigest: y('AUTHOR_KEY_DIGEST'),
    reportId: y('REPORT_ID'),
    reportIdMa: y('REPORT_ID_MA'),
    reportedTcb: b('REPORTED_TCB'),
    ...(version >= 3 ? { cpuid: { family: n('CPUID_FAM_ID'), model: n('CPUID_MOD_ID'), stepping: n('CPUID_STEP') } } : {}),
    chipId: y('CHIP_ID'),
    committedTcb: b('COMMITTED_TCB'),
    currentVersion: { major: n('CURRENT_MAJOR'), minor: n('CURRENT_MINOR'), build: n('CURRENT_BUILD') },
    committedVersion: { major: n('COMMITTED_MAJOR'), minor: n('COMMITTED_MINOR'), build: n('COMMITTED_BUILD') },
    launchTcb: b('LAUNCH_TCB'),
    ...(version >= 5 ? { launchMitVector: b('LAUNCH_MIT_VECTOR'), currentMitVector: b('CURRENT_MIT_VECTOR') } : {}),
    signature: { r: y('SIGNATURE.R'), s: y('SIGNATURE.S') },
    signedBytes: bytes.subarray(0, SNP_SIGNED_SIZE),
    raw: bytes.subarray(0, SNP_REPORT_SIZE),
  };
}

function need(cond: boolean, what: string): void {
  if (!cond) throw new MisuseError('MISUSE_ARGUMENT', `encodeSnpReport: ${what}`);
}

/**
 * Encodes a report: the exact inverse of {@link decodeSnpReport} (reserved ranges written as
 * zero). Used to build synthetic reports and to round-trip real ones.
 *
 * @throws MisuseError MISUSE_ARGUMENT when a field does not fit its layout or the version
 */
export function encodeSnpReport(rep: SnpReport): Uint8Array {
  need(isVersion(rep.version), `version ${rep.version} is not supported`);
  need((rep.version >= 3) === (rep.cpuid !== undefined), 'cpuid is present exactly for version 3 and later');
  need((rep.version >= 5) === (rep.launchMitVector !== undefined && rep.currentMitVector !== undefined), 'mitigation vectors are present exactly for version 5');
  need(rep.signingKey >= 0 && rep.signingKey <= 7, 'signingKey is a 3-bit value');
  const keyInfo = (rep.authorKeyEn ? 1 : 0) | (rep.maskChipKey ? 2 : 0) | (rep.signingKey << 2);
  const num: Record<string, number> = {
    VERSION: rep.version,
    GUEST_SVN: rep.guestSvn,
    VMPL: rep.vmpl,
    SIGNATURE_ALGO: rep.signatureAlgo,
    KEY_INFO: keyInfo,
    CURRENT_BUILD: rep.currentVersion.build,
    CURRENT_MINOR: rep.currentVersion.minor,
    CURRENT_MAJOR: rep.currentVersion.major,
    COMMITTED_BUILD: rep.committedVersion.build,
    COMMITTED_MINOR: rep.committedVersion.minor,
    COMMITTED_MAJOR: rep.committedVersion.major,
    ...(rep.cpuid !== undefined ? { CPUID_FAM_ID: rep.cpuid.family, CPUID_MOD_ID: rep.cpuid.model, CPUID_STEP: rep.cpuid.stepping } : {}),
  };
  const big: Record<string, bigint> = {
    POLICY: rep.policy,
    CURRENT_TCB: rep.currentTcb,
    PLATFORM_INFO: rep.platformInfo,
    REPORTED_TCB: rep.reportedTcb,
    COMMITTED_TCB: rep.committedTcb,
    LAUNCH_TCB: rep.launchTcb,
    ...(rep.launchMitVector !== undefined ? { LAUNCH_MIT_VECTOR: rep.launchMitVector } : {}),
    ...(rep.currentMitVector !== undefined ? { CURRENT_MIT_VECTOR: rep.currentMitVector } : {}),
  };
  const raw: Record<string, Uint8Array> = {
    FAMILY_ID: rep.familyId,
    IMAGE_ID: rep.imageId,
    REPORT_DATA: rep.reportData,
    MEASUREMENT: rep.measurement,
    HOST_DATA: rep.hostData,
    ID_KEY_DIGEST: rep.idKeyDigest,
    AUTHOR_KEY_DIGEST: rep.authorKeyDigest,
    REPORT_ID: rep.reportId,
    REPORT_ID_MA: rep.reportIdMa,
    CHIP_ID: rep.chipId,
    'SIGNATURE.R': rep.signature.r,
    'SIGNATURE.S': rep.signature.s,
  };
  const w = new Writer(SNP_REPORT_SIZE);
  for (const fl of SNP_REPORT_LAYOUTS[rep.version]) {
    if (fl.kind === 'reserved') {
      w.bytes(new Uint8Array(fl.size));
      continue;
    }
    if (fl.kind === 'u64') {
      const v = big[fl.name];
      need(v !== undefined && v >= 0n && v < 1n << 64n, `${fl.name} is a u64`);
      w.u64(v as bigint, 'le');
    } else if (fl.kind === 'bytes') {
      const v = raw[fl.name];
      need(v !== undefined && v.length === fl.size, `${fl.name} must be ${fl.size} bytes`);
      w.bytes(v as Uint8Array);
    } else {
      const v = num[fl.name];
      const max = fl.kind === 'u8' ? 0xff : 0xffffffff;
      need(v !== undefined && Number.isInteger(v) && v >= 0 && v <= max, `${fl.name} is a ${fl.kind}`);
      if (fl.kind === 'u8') w.u8(v as number);
      else w.u32(v as number, 'le');
    }
  }
  return w.finish();
}

/** The AMD product generations vouch knows. */
export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';

/**
 * The product named by a report's CPUID fields (version 3 and later): family 0x19 models
 * 0x00–0x0F Milan, 0x10–0x1F and 0xA0–0xAF Genoa; family 0x1A models 0x00–0x1F Turin.
 * Undefined for version 2 reports and for unknown CPUIDs.
 */
export function snpProductOfCpuid(cpuid: SnpReport['cpuid']): SnpProduct | undefined {
  if (cpuid === undefined) return undefined;
  const { family, model } = cpuid;
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
  if (family === 0x1a && model <= 0x1f) return 'Turin';
  return undefined;
}

/** The security patch levels of a TCB_VERSION, by component. `fmc` exists on Turin only. */
export interface SnpTcbComponents {
  readonly bootLoader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number;
  /** True when the bytes the product's layout reserves are all zero. */
  readonly reservedZero: boolean;
}

/**
 * The per-product view of a TCB_VERSION (ABI spec, "TCB_VERSION Structure"). Byte i is bits
 * 8i+7:8i of the little-endian u64.
 *
 * - Milan, Genoa: byte 0 BOOT_LOADER, 1 TEE, 2–5 reserved, 6 SNP, 7 MICROCODE.
 * - Turin: byte 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 4–6 reserved, 7 MICROCODE.
 */
export function snpTcbComponents(raw: bigint, product: SnpProduct): SnpTcbComponents {
  const byte = (i: number): number => Number((raw >> BigInt(8 * i)) & 0xffn);
  if (product === 'Turin') {
    return { fmc: byte(0), bootLoader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7), reservedZero: byte(4) === 0 && byte(5) === 0 && byte(6) === 0 };
  }
  return { bootLoader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7), reservedZero: byte(2) === 0 && byte(3) === 0 && byte(4) === 0 && byte(5) === 0 };
}

/** The 8 bytes of a TCB_VERSION as stored in the report (little-endian), e.g. for KDS URLs and display. */
export function snpTcbBytes(raw: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, raw, true);
  return out;
}

/** The guest policy bits (ABI spec §4.3, "Guest Policy Structure"). */
export interface SnpPolicyFlags {
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllow: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHiding: boolean;
  readonly pageSwapDisable: boolean;
}

/** Decodes the POLICY bits. */
export function snpPolicyFlags(policy: bigint): SnpPolicyFlags {
  const bit = (i: number): boolean => ((policy >> BigInt(i)) & 1n) === 1n;
  return {
    abiMinor: Number(policy & 0xffn),
    abiMajor: Number((policy >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

/** The name of a SIGNING_KEY value. */
export function snpSigningKeyName(v: number): SnpSigningKeyName | undefined {
  return v === 0 ? 'vcek' : v === 1 ? 'vlek' : v === 7 ? 'none' : undefined;
}

/** True when CHIP_ID is all zero (MASK_CHIP_ID set by the host). */
export function snpChipIdMasked(rep: Pick<SnpReport, 'chipId'>): boolean {
  return rep.chipId.every((x) => x === 0);
}
