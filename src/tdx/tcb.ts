/**
 * TDX TCB status: which TCB level of a (verified) TDX TCB Info a platform is at, the TDX
 * module's TCB from its identity, the QE's TCB from the QE Identity, and how the three
 * converge into one status with advisory IDs.
 *
 * The algorithm follows Intel's Quote Verification Library (SGX-TDX-DCAP-QuoteVerificationLibrary,
 * Verifiers/Checks/TcbLevelCheck.cpp, TdxModuleCheck.cpp, QuoteVerifier.cpp §4.1.2.4.10–17,
 * EnclaveReportVerifier.cpp §4.1.2.9.5–10) and the PCS "TDX TCB Info v3" documentation:
 *
 * 1. FMSPC and PCE-ID of the PCK certificate equal those of the TCB Info (§4.1.2.4.10).
 * 2. TDX module identity (§4.1.2.4.11): with module version v = TEE_TCB_SVN[1] > 0 the TCB Info
 *    must hold the identity "TDX_" + two upper-case hex digits of v (ids compared
 *    case-insensitively), whose mrsigner/attributes/attributesMask replace those of `tdxModule`;
 *    with v = 0 `tdxModule` is used. MRSIGNERSEAM must equal mrsigner and
 *    SEAMATTRIBUTES & attributesMask must equal attributes.
 * 3. TCB levels, in the order the TCB Info lists them (Intel lists them from newest to
 *    oldest): the SGX level is the first whose 16 SGX component SVNs are each ≤ the PCK
 *    certificate's and whose PCESVN ≤ the certificate's; the TDX level is the first level that
 *    also has every TDX component SVN ≤ TEE_TCB_SVN, comparing bytes 2..15 only when v > 0
 *    (bytes 0 and 1 are then the module's ISVSVN and version, judged by the module identity)
 *    and bytes 0..15 otherwise. No SGX or no TDX level → "TCB not supported".
 *    Every comparison is component by component, never lexicographic.
 * 4. Module TCB (v > 0): the first tcbLevel of the identity with isvsvn ≤ TEE_TCB_SVN[0];
 *    none → "TCB not supported". With v = 0 the module adds nothing.
 * 5. Converge: module OutOfDate turns UpToDate/SWHardeningNeeded into OutOfDate and
 *    ConfigurationNeeded/ConfigurationAndSWHardeningNeeded into OutOfDateConfigurationNeeded;
 *    module Revoked gives Revoked. The QE TCB converges the same way.
 * 6. QE Identity: (MISCSELECT & miscselectMask) = miscselect, (ATTRIBUTES & attributesMask) =
 *    attributes, MRSIGNER and ISVPRODID equal; the QE TCB level is the first with
 *    isvsvn ≤ ISVSVN (none → "TCB not supported").
 *
 * Advisory IDs are those of the TDX TCB level, then of the module's TCB level, then of the
 * QE's TCB level, each once. Differences from other verifiers, on purpose: Intel's QVL before
 * 2024 also required tdxtcbcomponents[1] = TEE_TCB_SVN[1] (replaced by the module identities);
 * dcap-qvl compares SVN vectors lexicographically; go-tdx-guest ignores module identities.
 * Not implemented: the "TD relaunch advised" statuses that Intel's QVL derives from
 * TEE_TCB_SVN2 of TD report 1.5.
 *
 * Trust stage: appraise-side helpers over collateral already verified by ./collateral and a
 * PCK already verified by ./pck. No crypto, no clock. A status is a value, not a failure;
 * mismatches and "not supported" are failures.
 */
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import type { QeTcbLevel, TdxModuleTcbLevel, TdxQeIdentity, TdxTcbInfo, TdxTcbLevel } from './collateral.js';
import type { SgxExtensions } from './pck.js';

/** TCB level statuses of a TDX TCB Info (PCS "TCB Info v3", tcbLevels[].tcbStatus). */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
/** A TCB status. */
export type TcbStatus = (typeof TCB_STATUSES)[number];

/** Statuses of QE Identity and TDX module identity TCB levels. */
export const IDENTITY_TCB_STATUSES = ['UpToDate', 'OutOfDate', 'Revoked'] as const;
/** A QE or TDX module TCB status. */
export type IdentityTcbStatus = (typeof IDENTITY_TCB_STATUSES)[number];

/** What TCB evaluation needs of a platform: PCK certificate fields and TD report fields, as plain values. */
export interface TdxPlatformTcb {
  /** FMSPC from the PCK certificate, 6 bytes. */
  readonly fmspc: Uint8Array;
  /** PCE-ID from the PCK certificate, 2 bytes. */
  readonly pceId: Uint8Array;
  /** SGX TCB component SVNs 1..16 from the PCK certificate, each 0..255. */
  readonly sgxTcbComponents: readonly number[];
  /** PCESVN from the PCK certificate, 0..65535. */
  readonly pceSvn: number;
  /** TD report field TEE_TCB_SVN, 16 bytes. */
  readonly teeTcbSvn: Uint8Array;
  /** TD report field MRSIGNERSEAM, 48 bytes. */
  readonly mrSignerSeam: Uint8Array;
  /** TD report field SEAMATTRIBUTES, 8 bytes. */
  readonly seamAttributes: Uint8Array;
}

/** The TD report fields TCB evaluation reads. */
export interface TdReportTcbFields {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
}

/** Builds a {@link TdxPlatformTcb} from a verified PCK's SGX extension and the TD report fields. */
export function platformTcb(sgx: SgxExtensions, td: TdReportTcbFields): TdxPlatformTcb {
  return {
    fmspc: sgx.fmspc,
    pceId: sgx.pceId,
    sgxTcbComponents: sgx.tcb.compSvn,
    pceSvn: sgx.tcb.pceSvn,
    teeTcbSvn: td.teeTcbSvn,
    mrSignerSeam: td.mrSignerSeam,
    seamAttributes: td.seamAttributes,
  };
}

/** The QE report (SGX REPORT body of the quoting enclave) fields QE Identity matching reads. */
export interface QeReportFields {
  /** MISCSELECT as the 32-bit value of the report (little-endian in the report). */
  readonly miscSelect: number;
  /** ATTRIBUTES, 16 bytes as in the report. */
  readonly attributes: Uint8Array;
  /** MRSIGNER, 32 bytes. */
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
}

function misuse(message: string, field: string): MisuseError {
  return new MisuseError('MISUSE_ARGUMENT', message, { field });
}

function checkBytes(v: unknown, n: number, field: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== n) throw misuse(`${field} must be ${n} bytes`, field);
  return v;
}

function checkInt(v: unknown, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw misuse(`${field} must be an integer 0..${max}`, field);
  return v;
}

function checkPlatform(p: TdxPlatformTcb): void {
  checkBytes(p.fmspc, 6, 'fmspc');
  checkBytes(p.pceId, 2, 'pceId');
  if (!Array.isArray(p.sgxTcbComponents) || p.sgxTcbComponents.length !== 16) throw misuse('sgxTcbComponents must hold 16 SVNs', 'sgxTcbComponents');
  p.sgxTcbComponents.forEach((v, i) => checkInt(v, 255, `sgxTcbComponents[${i}]`));
  checkInt(p.pceSvn, 0xffff, 'pceSvn');
  checkBytes(p.teeTcbSvn, 16, 'teeTcbSvn');
  checkBytes(p.mrSignerSeam, 48, 'mrSignerSeam');
  checkBytes(p.seamAttributes, 8, 'seamAttributes');
}

/** The status that results when `other` (module or QE TCB) is combined with a level status (QVL converge*). */
export function convergeTcbStatus(levelStatus: TcbStatus, other: IdentityTcbStatus | undefined): TcbStatus {
  if (other === 'Revoked') return 'Revoked';
  if (other === 'OutOfDate') {
    if (levelStatus === 'UpToDate' || levelStatus === 'SWHardeningNeeded') return 'OutOfDate';
    if (levelStatus === 'ConfigurationNeeded' || levelStatus === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  return levelStatus;
}

/** The platform-level match of {@link matchTcbLevels}. */
export interface TcbLevelMatch {
  /** Index and level of the first level the SGX TCB (components and PCESVN) is at or above. */
  readonly sgx?: { readonly index: number; readonly level: TdxTcbLevel };
  /** Index and level of the first level the SGX and the TDX TCB are both at or above. */
  readonly tdx?: { readonly index: number; readonly level: TdxTcbLevel };
}

/**
 * Steps 3 of the module comment: the SGX and the TDX TCB level of a platform, in list order.
 * Inputs are the raw SVN vectors; `teeTcbSvn[1] > 0` excludes bytes 0..1 from the TDX comparison.
 */
export function matchTcbLevels(levels: readonly TdxTcbLevel[], sgxTcbComponents: readonly number[], pceSvn: number, teeTcbSvn: Uint8Array): TcbLevelMatch {
  const from = (teeTcbSvn[1] as number) > 0 ? 2 : 0;
  let sgx: TcbLevelMatch['sgx'];
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as TdxTcbLevel;
    const sgxOk = level.pceSvn <= pceSvn && level.sgxTcbComponents.every((c, k) => c.svn <= (sgxTcbComponents[k] as number));
    if (!sgxOk) continue;
    sgx ??= { index: i, level };
    let tdxOk = true;
    for (let k = from; k < 16; k++) if ((level.tdxTcbComponents[k]?.svn ?? 0) > (teeTcbSvn[k] as number)) tdxOk = false;
    if (tdxOk) return { sgx, tdx: { index: i, level } };
  }
  return sgx === undefined ? {} : { sgx };
}

/** The TDX module part of an evaluation. */
export interface TdxModuleEvaluation {
  /** TEE_TCB_SVN[1]. */
  readonly version: number;
  /** TEE_TCB_SVN[0]. */
  readonly isvSvn: number;
  /** The identity id looked up ("TDX_03"), or "tdxModule" for version 0. */
  readonly identity: string;
  /** The module TCB level (version > 0 only). */
  readonly level?: TdxModuleTcbLevel;
  /** The module TCB status; absent for version 0 (nothing to converge) or when no level matched. */
  readonly status?: IdentityTcbStatus;
}

/** The result of {@link evaluateTdxTcb}. */
export interface TdxTcbEvaluation {
  /** True when every check passed and a status was found. */
  readonly ok: boolean;
  readonly failures: readonly Failure[];
  /** The converged TCB status (TCB level, then module); absent when no level matched. */
  readonly status?: TcbStatus;
  /** The TDX TCB level's own status, before convergence. */
  readonly levelStatus?: TcbStatus;
  readonly sgxLevel?: TcbLevelMatch['sgx'];
  readonly tdxLevel?: TcbLevelMatch['tdx'];
  readonly module?: TdxModuleEvaluation;
  /** Advisory IDs of the TDX TCB level and the module TCB level, each once. */
  readonly advisoryIds: readonly string[];
}

function moduleIdentityId(version: number): string {
  return `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
}

function masked(value: Uint8Array, mask: Uint8Array): Uint8Array {
  return value.map((b, i) => b & (mask[i] as number));
}

function uniq(...lists: readonly (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const l of lists) for (const id of l) if (!out.includes(id)) out.push(id);
  return out;
}

/**
 * Evaluates a platform against a TDX TCB Info (steps 1–5 of the module comment). Every
 * mismatch is returned; the status is present whenever a TCB level matched.
 *
 * @throws MisuseError MISUSE_ARGUMENT on inputs of the wrong size or range
 */
export function evaluateTdxTcb(tcbInfo: TdxTcbInfo, platform: TdxPlatformTcb): TdxTcbEvaluation {
  checkPlatform(platform);
  const failures: Failure[] = [];
  if (!bytesEqual(platform.fmspc, tcbInfo.fmspc)) {
    failures.push(failure('TDX_TCB_INFO_MISMATCH', { field: 'tcbInfo.fmspc', expected: toHex(platform.fmspc), actual: toHex(tcbInfo.fmspc), message: `the TCB Info is for FMSPC ${toHex(tcbInfo.fmspc)}, the PCK certificate names ${toHex(platform.fmspc)}` }));
  }
  if (!bytesEqual(platform.pceId, tcbInfo.pceId)) {
    failures.push(failure('TDX_TCB_INFO_MISMATCH', { field: 'tcbInfo.pceId', expected: toHex(platform.pceId), actual: toHex(tcbInfo.pceId), message: `the TCB Info is for PCE-ID ${toHex(tcbInfo.pceId)}, the PCK certificate names ${toHex(platform.pceId)}` }));
  }

  // The TDX module identity.
  const version = platform.teeTcbSvn[1] as number;
  const isvSvn = platform.teeTcbSvn[0] as number;
  let expected = tcbInfo.tdxModule;
  let identityName = 'tdxModule';
  let identityLevels: readonly TdxModuleTcbLevel[] | undefined;
  if (version > 0) {
    const want = moduleIdentityId(version);
    const found = tcbInfo.tdxModuleIdentities.find((m) => m.id.toUpperCase() === want);
    identityName = want;
    if (found === undefined) {
      failures.push(failure('TDX_MODULE_MISMATCH', {
        field: 'TD_REPORT.TEE_TCB_SVN[1]',
        expected: tcbInfo.tdxModuleIdentities.map((m) => m.id).join(' | ') || 'a tdxModuleIdentities entry',
        actual: want,
        message: `the TCB Info has no TDX module identity ${want} for module version ${version}`,
      }));
    } else {
      expected = found;
      identityLevels = found.tcbLevels;
    }
  }
  if (version === 0 || identityLevels !== undefined) {
    if (!bytesEqual(platform.mrSignerSeam, expected.mrSigner)) {
      failures.push(failure('TDX_MODULE_MISMATCH', { field: 'TD_REPORT.MRSIGNERSEAM', expected: toHex(expected.mrSigner), actual: toHex(platform.mrSignerSeam), message: `MRSIGNERSEAM is not the mrsigner of ${identityName}` }));
    }
    if (!bytesEqual(masked(platform.seamAttributes, expected.attributesMask), expected.attributes)) {
      failures.push(failure('TDX_MODULE_MISMATCH', {
        field: 'TD_REPORT.SEAMATTRIBUTES',
        expected: `${toHex(expected.attributes)} under mask ${toHex(expected.attributesMask)}`,
        actual: toHex(platform.seamAttributes),
        message: `SEAMATTRIBUTES under the attributesMask of ${identityName} is not its attributes`,
      }));
    }
  }

  // The TCB levels.
  const match = matchTcbLevels(tcbInfo.tcbLevels, platform.sgxTcbComponents, platform.pceSvn, platform.teeTcbSvn);
  if (match.sgx === undefined || match.tdx === undefined) {
    failures.push(failure('TDX_TCB_LEVEL_NOT_FOUND', {
      field: match.sgx === undefined ? 'pck.sgxExtension.tcb' : 'TD_REPORT.TEE_TCB_SVN',
      expected: `at or above one of ${tcbInfo.tcbLevels.length} TCB levels`,
      actual: match.sgx === undefined ? `SGX TCB ${platform.sgxTcbComponents.join(',')} PCESVN ${platform.pceSvn}` : `TEE_TCB_SVN ${toHex(platform.teeTcbSvn)}`,
      message: match.sgx === undefined ? 'the SGX TCB of the PCK certificate is below every TCB level of the TCB Info' : 'TEE_TCB_SVN is below the TDX components of every TCB level the SGX TCB reaches',
    }));
  }

  // The module's TCB level.
  let module: TdxModuleEvaluation = { version, isvSvn, identity: identityName };
  if (version > 0 && identityLevels !== undefined) {
    const level = identityLevels.find((l) => l.isvSvn <= isvSvn);
    if (level === undefined) {
      failures.push(failure('TDX_TCB_LEVEL_NOT_FOUND', {
        field: 'TD_REPORT.TEE_TCB_SVN[0]',
        expected: `>= ${Math.min(...identityLevels.map((l) => l.isvSvn))}`,
        actual: String(isvSvn),
        message: `the TDX module ISVSVN ${isvSvn} is below every TCB level of identity ${identityName}`,
      }));
    } else module = { ...module, level, status: level.tcbStatus };
  }

  const levelStatus = match.tdx?.level.tcbStatus;
  const status = levelStatus === undefined || (version > 0 && module.status === undefined) ? undefined : convergeTcbStatus(levelStatus, module.status);
  return {
    ok: failures.length === 0 && status !== undefined,
    failures,
    ...(status !== undefined ? { status } : {}),
    ...(levelStatus !== undefined ? { levelStatus } : {}),
    ...(match.sgx !== undefined ? { sgxLevel: match.sgx } : {}),
    ...(match.tdx !== undefined ? { tdxLevel: match.tdx } : {}),
    module,
    advisoryIds: uniq(match.tdx?.level.advisoryIds ?? [], module.level?.advisoryIds ?? []),
  };
}

/** The result of {@link matchQeIdentity}. */
export interface QeIdentityMatch {
  readonly ok: boolean;
  readonly failures: readonly Failure[];
  /** The QE TCB status; absent when no level matched. */
  readonly status?: IdentityTcbStatus;
  readonly level?: QeTcbLevel;
  readonly advisoryIds: readonly string[];
}

/** MISCSELECT of a QE Identity as a number: the hex text is the field's little-endian bytes (Intel QVL vectorToUint32). */
function u32le(b: Uint8Array): number {
  return ((b[0] as number) | ((b[1] as number) << 8) | ((b[2] as number) << 16) | ((b[3] as number) << 24)) >>> 0;
}

/**
 * Matches a QE report against a TD QE Identity (step 6 of the module comment), returning every
 * mismatch and the QE TCB status.
 *
 * @throws MisuseError MISUSE_ARGUMENT on inputs of the wrong size or range
 */
export function matchQeIdentity(identity: TdxQeIdentity, qe: QeReportFields): QeIdentityMatch {
  const miscSelect = checkInt(qe.miscSelect, 0xffffffff, 'miscSelect');
  checkBytes(qe.attributes, 16, 'attributes');
  checkBytes(qe.mrSigner, 32, 'mrSigner');
  checkInt(qe.isvProdId, 0xffff, 'isvProdId');
  checkInt(qe.isvSvn, 0xffff, 'isvSvn');
  const failures: Failure[] = [];
  const mask = u32le(identity.miscselectMask);
  const want = u32le(identity.miscselect);
  const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
  if (((miscSelect & mask) >>> 0) !== want) {
    failures.push(failure('TDX_QE_IDENTITY_MISMATCH', { field: 'QE_REPORT.MISCSELECT', expected: `${hex8(want)} under mask ${hex8(mask)}`, actual: hex8(miscSelect), message: 'MISCSELECT of the QE report under miscselectMask is not the QE Identity miscselect' }));
  }
  if (!bytesEqual(masked(qe.attributes, identity.attributesMask), identity.attributes)) {
    failures.push(failure('TDX_QE_IDENTITY_MISMATCH', { field: 'QE_REPORT.ATTRIBUTES', expected: `${toHex(identity.attributes)} under mask ${toHex(identity.attributesMask)}`, actual: toHex(qe.attributes), message: 'ATTRIBUTES of the QE report under attributesMask are not the QE Identity attributes' }));
  }
  if (!bytesEqual(qe.mrSigner, identity.mrSigner)) {
    failures.push(failure('TDX_QE_IDENTITY_MISMATCH', { field: 'QE_REPORT.MRSIGNER', expected: toHex(identity.mrSigner), actual: toHex(qe.mrSigner) }));
  }
  if (qe.isvProdId !== identity.isvProdId) {
    failures.push(failure('TDX_QE_IDENTITY_MISMATCH', { field: 'QE_REPORT.ISVPRODID', expected: String(identity.isvProdId), actual: String(qe.isvProdId) }));
  }
  const level = identity.tcbLevels.find((l) => l.isvSvn <= qe.isvSvn);
  if (level === undefined) {
    failures.push(failure('TDX_TCB_LEVEL_NOT_FOUND', {
      field: 'QE_REPORT.ISVSVN',
      expected: `>= ${Math.min(...identity.tcbLevels.map((l) => l.isvSvn))}`,
      actual: String(qe.isvSvn),
      message: `the QE ISVSVN ${qe.isvSvn} is below every TCB level of the QE Identity`,
    }));
  }
  return {
    ok: failures.length === 0,
    failures,
    ...(level !== undefined ? { status: level.tcbStatus, level } : {}),
    advisoryIds: level?.advisoryIds ?? [],
  };
}

/** The result of {@link appraiseTdxTcb}. */
export interface TdxTcbAppraisal {
  /** True when TCB Info and QE Identity matching found no failure. The status is then present; whether it is acceptable is policy. */
  readonly ok: boolean;
  readonly failures: readonly Failure[];
  /** The final status: TCB level, converged with the module, then with the QE TCB. */
  readonly status?: TcbStatus;
  readonly platform: TdxTcbEvaluation;
  readonly qe: QeIdentityMatch;
  /** Advisory IDs of the TDX TCB level, the module TCB level and the QE TCB level, each once. */
  readonly advisoryIds: readonly string[];
}

/** The whole TCB status of a TD: {@link evaluateTdxTcb} and {@link matchQeIdentity}, converged. */
export function appraiseTdxTcb(tcbInfo: TdxTcbInfo, qeIdentity: TdxQeIdentity, platform: TdxPlatformTcb, qeReport: QeReportFields): TdxTcbAppraisal {
  const p = evaluateTdxTcb(tcbInfo, platform);
  const qe = matchQeIdentity(qeIdentity, qeReport);
  const status = p.status !== undefined && qe.status !== undefined ? convergeTcbStatus(p.status, qe.status) : undefined;
  const failures = [...p.failures, ...qe.failures];
  return {
    ok: failures.length === 0 && status !== undefined,
    failures,
    ...(status !== undefined ? { status } : {}),
    platform: p,
    qe,
    advisoryIds: uniq(p.advisoryIds, qe.advisoryIds),
  };
}
