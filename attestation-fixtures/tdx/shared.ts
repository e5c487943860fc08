/**
 * TEST-ONLY: the fixed parameters of the fake Intel SGX/TDX hierarchy, the DER encoder of the PCK
 * SGX extension, and the builders of TDX TCB Info (v3) and TD QE Identity (v2) in the exact form
 * Intel PCS serves them. Shared by ./generate.ts (committed output) and ./index.ts (collateral
 * and quotes made on demand by tests). Nothing in src/ may import this directory.
 */
import 'reflect-metadata';
import { createHash, sign, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SGX_OID } from '../../src/tdx/pck.js';

/** This directory. */
export const TEST_TDX_DIR = import.meta.dirname;

const sha = (alg: 'sha256' | 'sha384', label: string): Uint8Array => new Uint8Array(createHash(alg).update(label).digest());

/** The SGX TCB of the TEST-ONLY PCK certificate. */
export interface FixtureSgxTcb {
  /** SGX TCB component SVNs 1..16. */
  readonly compSvn: readonly number[];
  readonly pceSvn: number;
  /** 16 bytes. */
  readonly cpuSvn: Uint8Array;
}

const COMP_SVN = [3, 3, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0] as const;

/**
 * The fixed facts of the committed TEST-ONLY hierarchy. The common names are Intel's role names
 * (vouch identifies the role of each certificate by its exact CN, as Intel issues them); the
 * organization says TEST-ONLY, and the root is trusted only where a test pins its fingerprint.
 */
export const FIXTURE = {
  names: {
    root: 'CN=Intel SGX Root CA,O=vouch TEST-ONLY not Intel,C=XX',
    pckPlatformCa: 'CN=Intel SGX PCK Platform CA,O=vouch TEST-ONLY not Intel,C=XX',
    pck: 'CN=Intel SGX PCK Certificate,O=vouch TEST-ONLY not Intel,C=XX',
    tcbSigning: 'CN=Intel SGX TCB Signing,O=vouch TEST-ONLY not Intel,C=XX',
  },
  serials: { root: '01', pckPlatformCa: '02', tcbSigning: '03', pck: '1001' },
  caNotBefore: new Date('2020-01-01T00:00:00Z'),
  caNotAfter: new Date('2045-01-01T00:00:00Z'),
  pckNotBefore: new Date('2024-01-01T00:00:00Z'),
  pckNotAfter: new Date('2031-01-01T00:00:00Z'),
  crlThisUpdate: new Date('2025-01-01T00:00:00Z'),
  crlNextUpdate: new Date('2035-01-01T00:00:00Z'),
  /** issueDate and nextUpdate of the committed TCB Info and QE Identity. */
  collateralIssueDate: new Date('2025-01-01T00:00:00Z'),
  collateralNextUpdate: new Date('2035-01-01T00:00:00Z'),
  tcbEvaluationDataNumber: 17,
  /** 6 bytes; not an FMSPC Intel has issued. */
  fmspc: Uint8Array.from(Buffer.from('00c0ffee0000', 'hex')),
  pceId: Uint8Array.of(0, 0),
  ppid: sha('sha256', 'vouch TEST-ONLY PPID').subarray(0, 16),
  platformInstanceId: sha('sha256', 'vouch TEST-ONLY platform instance').subarray(0, 16),
  sgxTcb: { compSvn: COMP_SVN, pceSvn: 13, cpuSvn: Uint8Array.from(COMP_SVN) } as FixtureSgxTcb,
  /** The TDX module: MRSIGNERSEAM, SEAMATTRIBUTES, and TEE_TCB_SVN (byte 0 ISVSVN, byte 1 module version 1 → identity TDX_01). */
  module: {
    mrSigner: sha('sha384', 'vouch TEST-ONLY TDX module signer'),
    attributes: new Uint8Array(8),
    teeTcbSvn: Uint8Array.of(3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
  },
  /** The TD quoting enclave: its QE report fields and the QE Identity that matches them. */
  qe: {
    mrSigner: sha('sha256', 'vouch TEST-ONLY TD QE signer'),
    mrEnclave: sha('sha256', 'vouch TEST-ONLY TD QE enclave'),
    isvProdId: 2,
    isvSvn: 4,
    miscSelect: 0,
    /** ATTRIBUTES of the QE report: INIT and MODE64BIT, as Intel's QE. */
    attributes: Uint8Array.from(Buffer.from('11000000000000000000000000000000', 'hex')),
  },
  /** Advisory id of the older (OutOfDate) TCB levels; obviously not an Intel advisory. */
  advisory: 'VOUCH-TEST-SA-0001',
};

/** PEM armour of `der` (RFC 7468), 64 characters a line. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// DER (X.690), only what the SGX extension needs

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return Uint8Array.from(Buffer.concat([Uint8Array.of(tag), derLength(body.length), body]));
}

function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * (arcs[0] as number) + (arcs[1] as number)];
  for (const a of arcs.slice(2)) {
    const chunk: number[] = [a & 0x7f];
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

function derUint(v: number, tag = 0x02): Uint8Array {
  const bytes: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes.length === 0) bytes.push(0);
  if (((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, Uint8Array.from(bytes));
}

const entry = (oid: string, value: Uint8Array): Uint8Array => tlv(0x30, derOid(oid), value);

/** What the SGX extension of a TEST-ONLY PCK certificate says. */
export interface SgxExtensionFields {
  readonly ppid: Uint8Array;
  readonly tcb: FixtureSgxTcb;
  readonly pceId: Uint8Array;
  readonly fmspc: Uint8Array;
  /** 0 Standard, 1 Scalable, 2 ScalableWithIntegrity. */
  readonly sgxType: number;
  /** PCK Platform CA certificates: the platform instance id and configuration. */
  readonly platform?: { readonly instanceId: Uint8Array; readonly dynamicPlatform: boolean; readonly cachedKeys: boolean; readonly smtEnabled: boolean };
}

/**
 * The DER value of the SGX extension 1.2.840.113741.1.13.1 ("Intel SGX PCK Certificate and
 * Certificate Revocation List Profile Specification"), in the layout src/tdx/pck.ts documents.
 */
export function encodeSgxExtension(f: SgxExtensionFields): Uint8Array {
  const comps = f.tcb.compSvn.map((svn, i) => entry(`${SGX_OID.tcb}.${i + 1}`, derUint(svn)));
  const tcb = tlv(0x30, ...comps, entry(`${SGX_OID.tcb}.17`, derUint(f.tcb.pceSvn)), entry(`${SGX_OID.tcb}.18`, tlv(0x04, f.tcb.cpuSvn)));
  const parts = [
    entry(SGX_OID.ppid, tlv(0x04, f.ppid)),
    entry(SGX_OID.tcb, tcb),
    entry(SGX_OID.pceId, tlv(0x04, f.pceId)),
    entry(SGX_OID.fmspc, tlv(0x04, f.fmspc)),
    entry(SGX_OID.sgxType, derUint(f.sgxType, 0x0a)),
  ];
  if (f.platform !== undefined) {
    const bool = (b: boolean): Uint8Array => tlv(0x01, Uint8Array.of(b ? 0xff : 0x00));
    parts.push(entry(SGX_OID.platformInstanceId, tlv(0x04, f.platform.instanceId)));
    parts.push(
      entry(
        SGX_OID.configuration,
        tlv(
          0x30,
          entry(`${SGX_OID.configuration}.1`, bool(f.platform.dynamicPlatform)),
          entry(`${SGX_OID.configuration}.2`, bool(f.platform.cachedKeys)),
          entry(`${SGX_OID.configuration}.3`, bool(f.platform.smtEnabled)),
        ),
      ),
    );
  }
  return tlv(0x30, ...parts);
}

/** The SGX extension of the committed TEST-ONLY PCK (Platform CA, Scalable). */
export function fixtureSgxExtension(tcb: FixtureSgxTcb = FIXTURE.sgxTcb): x509.Extension {
  return new x509.Extension(
    SGX_OID.extension,
    false,
    encodeSgxExtension({
      ppid: FIXTURE.ppid,
      tcb,
      pceId: FIXTURE.pceId,
      fmspc: FIXTURE.fmspc,
      sgxType: 1,
      platform: { instanceId: FIXTURE.platformInstanceId, dynamicPlatform: true, cachedKeys: true, smtEnabled: true },
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Collateral JSON, as Intel PCS serves it

const HEX = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
/** "YYYY-MM-DDThh:mm:ssZ", the only time form PCS uses. */
export const pcsTime = (d: Date): string => `${d.toISOString().slice(0, 19)}Z`;

/** One TCB level of a TEST-ONLY TDX TCB Info. */
export interface FixtureTcbLevel {
  readonly sgxTcbComponents: readonly number[];
  readonly pceSvn: number;
  readonly tdxTcbComponents: readonly number[];
  readonly tcbDate: Date;
  readonly tcbStatus: string;
  readonly advisoryIds?: readonly string[];
}

/** Inputs of {@link tdxTcbInfoText}; every member has the committed fixture's value by default. */
export interface TcbInfoOptions {
  readonly issueDate?: Date;
  readonly nextUpdate?: Date;
  readonly fmspc?: Uint8Array;
  readonly pceId?: Uint8Array;
  readonly tcbEvaluationDataNumber?: number;
  readonly tcbLevels?: readonly FixtureTcbLevel[];
  /** tdxModuleIdentities[0].tcbLevels (isvsvn, status). */
  readonly moduleLevels?: ReadonlyArray<{ readonly isvSvn: number; readonly tcbStatus: string; readonly advisoryIds?: readonly string[] }>;
  readonly moduleMrSigner?: Uint8Array;
}

const SGX_CATEGORIES = ['BIOS', 'BIOS', 'OS/VMM', 'OS/VMM', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS', 'BIOS'];
const TDX_TYPES = ['TDX Module', 'TDX Module', 'TDX Late Microcode Update'];

/** The default TCB levels: the fixture platform is UpToDate; an older TDX TCB (TEE_TCB_SVN[2] < 2) is OutOfDate. */
export function fixtureTcbLevels(): FixtureTcbLevel[] {
  const tdx = (b2: number): number[] => [...FIXTURE.module.teeTcbSvn].map((v, i) => (i === 2 ? b2 : v));
  return [
    { sgxTcbComponents: FIXTURE.sgxTcb.compSvn, pceSvn: FIXTURE.sgxTcb.pceSvn, tdxTcbComponents: tdx(2), tcbDate: new Date('2024-11-13T00:00:00Z'), tcbStatus: 'UpToDate' },
    { sgxTcbComponents: FIXTURE.sgxTcb.compSvn, pceSvn: FIXTURE.sgxTcb.pceSvn, tdxTcbComponents: tdx(1), tcbDate: new Date('2023-08-09T00:00:00Z'), tcbStatus: 'OutOfDate', advisoryIds: [FIXTURE.advisory] },
  ];
}

/**
 * The exact "tcbInfo" member text of a TEST-ONLY TDX TCB Info v3: compact JSON, members in
 * Intel's order, hex upper-case, times as PCS writes them. This text is what the signature covers.
 */
export function tdxTcbInfoText(o: TcbInfoOptions = {}): string {
  const moduleExp = { mrsigner: HEX(o.moduleMrSigner ?? FIXTURE.module.mrSigner), attributes: HEX(FIXTURE.module.attributes), attributesMask: 'FFFFFFFFFFFFFFFF' };
  const levels = o.tcbLevels ?? fixtureTcbLevels();
  const doc = {
    id: 'TDX',
    version: 3,
    issueDate: pcsTime(o.issueDate ?? FIXTURE.collateralIssueDate),
    nextUpdate: pcsTime(o.nextUpdate ?? FIXTURE.collateralNextUpdate),
    fmspc: HEX(o.fmspc ?? FIXTURE.fmspc),
    pceId: HEX(o.pceId ?? FIXTURE.pceId),
    tcbType: 0,
    tcbEvaluationDataNumber: o.tcbEvaluationDataNumber ?? FIXTURE.tcbEvaluationDataNumber,
    tdxModule: moduleExp,
    tdxModuleIdentities: [
      {
        id: 'TDX_01',
        ...moduleExp,
        tcbLevels: (o.moduleLevels ?? [{ isvSvn: 3, tcbStatus: 'UpToDate' }, { isvSvn: 1, tcbStatus: 'OutOfDate', advisoryIds: [FIXTURE.advisory] }]).map((l) => ({
          tcb: { isvsvn: l.isvSvn },
          tcbDate: '2024-11-13T00:00:00Z',
          tcbStatus: l.tcbStatus,
          ...(l.advisoryIds !== undefined ? { advisoryIDs: l.advisoryIds } : {}),
        })),
      },
    ],
    tcbLevels: levels.map((l) => ({
      tcb: {
        sgxtcbcomponents: l.sgxTcbComponents.map((svn, i) => ({ svn, category: SGX_CATEGORIES[i], type: i === 0 ? 'Early Microcode Update' : i === 1 ? 'SGX Late Microcode Update' : undefined })),
        pcesvn: l.pceSvn,
        tdxtcbcomponents: l.tdxTcbComponents.map((svn, i) => ({ svn, ...(i < 3 ? { category: 'OS/VMM', type: TDX_TYPES[i] } : {}) })),
      },
      tcbDate: pcsTime(l.tcbDate),
      tcbStatus: l.tcbStatus,
      ...(l.advisoryIds !== undefined ? { advisoryIDs: l.advisoryIds } : {}),
    })),
  };
  return JSON.stringify(doc);
}

/** Inputs of {@link tdQeIdentityText}. */
export interface QeIdentityOptions {
  readonly issueDate?: Date;
  readonly nextUpdate?: Date;
  readonly mrSigner?: Uint8Array;
  readonly isvProdId?: number;
  readonly tcbLevels?: ReadonlyArray<{ readonly isvSvn: number; readonly tcbStatus: string; readonly advisoryIds?: readonly string[] }>;
}

/** The exact "enclaveIdentity" member text of a TEST-ONLY TD QE Identity v2 (what the signature covers). */
export function tdQeIdentityText(o: QeIdentityOptions = {}): string {
  return JSON.stringify({
    id: 'TD_QE',
    version: 2,
    issueDate: pcsTime(o.issueDate ?? FIXTURE.collateralIssueDate),
    nextUpdate: pcsTime(o.nextUpdate ?? FIXTURE.collateralNextUpdate),
    tcbEvaluationDataNumber: FIXTURE.tcbEvaluationDataNumber,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: HEX(FIXTURE.qe.attributes),
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: HEX(o.mrSigner ?? FIXTURE.qe.mrSigner),
    isvprodid: o.isvProdId ?? FIXTURE.qe.isvProdId,
    tcbLevels: (o.tcbLevels ?? [{ isvSvn: 4, tcbStatus: 'UpToDate' }, { isvSvn: 1, tcbStatus: 'OutOfDate', advisoryIds: [FIXTURE.advisory] }]).map((l) => ({
      tcb: { isvsvn: l.isvSvn },
      tcbDate: '2024-11-13T00:00:00Z',
      tcbStatus: l.tcbStatus,
      ...(l.advisoryIds !== undefined ? { advisoryIDs: l.advisoryIds } : {}),
    })),
  });
}

/**
 * A PCS body `{"<member>":<text>,"signature":"<hex>"}`: the signature is ECDSA P-256 with
 * SHA-256 by `key` (the TCB Signing key) over the exact member text, r ‖ s (IEEE P1363) in hex.
 */
export function signedPcsBody(member: 'tcbInfo' | 'enclaveIdentity', text: string, key: KeyObject): Uint8Array {
  const signature = sign('sha256', Buffer.from(text, 'utf8'), { key, dsaEncoding: 'ieee-p1363' });
  return new Uint8Array(Buffer.from(`{"${member}":${text},"signature":"${signature.toString('hex')}"}`, 'utf8'));
}
