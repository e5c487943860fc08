/**
 * Intel PCS collateral for TDX: TDX TCB Info (v3), TD QE Identity (v2), the PCK CRL and the
 * Intel SGX Root CA CRL, with their issuer chains. Strict parsing, signature and window
 * verification, the collateral bundle formats vouch reads, a PCS client with an on-disk cache
 * and offline bundles, and the TCB recovery report.
 *
 * What is signed (Intel PCS API v4, "TCB Info V3" / "Enclave Identity V2" models; Intel QVL
 * TcbInfo/EnclaveIdentity parsers; go-tdx-guest verifyResponse; dcap-qvl verify):
 *
 *   The PCS body is `{"tcbInfo":{…},"signature":"<hex>"}` (or `{"enclaveIdentity":{…},…}`).
 *   The signature is ECDSA P-256 with SHA-256 by the Intel SGX TCB Signing key, over the
 *   bytes of the JSON value of the "tcbInfo" (resp. "enclaveIdentity") member exactly as
 *   served: from its `{` to its matching `}`, compact, no whitespace (Intel: "signature
 *   calculated over tcbInfo body without whitespaces"). "signature" is 128 hex digits: r ‖ s,
 *   32 bytes each, big-endian (IEEE P1363), not DER. The TCB Signing certificate and the root
 *   come in the response header TCB-Info-Issuer-Chain (QE Identity: SGX-Enclave-Identity-
 *   Issuer-Chain), URL-encoded PEM, signing certificate first.
 *
 * vouch keeps those exact bytes (`signedBytes`) and never re-serializes: a duplicated member
 * anywhere, a byte outside strict JSON, or a signed text that is not the one parsed is refused.
 * (Intel's QVL re-serializes the parsed member compactly, which yields the same bytes for what
 * PCS serves; verifying the served bytes is what go-tdx-guest and dcap-qvl do.)
 *
 * Trust stages: parsing here never checks a signature; {@link verifyTdxCollateral} does (chains
 * to the pinned root, signatures, windows at an injected time, CRLs). The {@link PcsClient}
 * is collection: it checks that collateral is what it is labelled as (FMSPC, CA type, id) and
 * not older than what it has, never that it is authentic.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { bytesEqual, toHex } from '../lib/bytes.js';
import { MisuseError, ParseError, UnavailableError, isVouchError, type ErrorCode } from '../lib/errors.js';
import { failure, type Failure } from '../lib/failure.js';
import { retryAfter } from '../snp/collateral.js';
import { boundedFetcher, type FetchResponse, type Fetcher } from '../lib/http-get.js';
import {
  CheckLog,
  checkIntelChain,
  checkIntelCrl,
  checkNow,
  checkPins,
  INTEL_ROLE_CN,
  parseIntelCertificate,
  parseIntelCrl,
  p256SignatureProblem,
  type CheckOutcome,
  type CrlSubject,
  type IntelCertificate,
  type IntelCertRole,
  type PckCaType,
  type TdxAllowance,
  type TdxVerifyCache,
} from './pck.js';
import { evaluateTdxTcb, matchTcbLevels, IDENTITY_TCB_STATUSES, TCB_STATUSES, type IdentityTcbStatus, type TcbStatus, type TdxPlatformTcb } from './tcb.js';
import { splitPemCertificates } from '../tpm/ek/der.js';

/** The injected HTTP GET and its answer, shared with the AMD KDS client. */
export type { FetchResponse, Fetcher };

// ---------------------------------------------------------------------------------------------
// Limits

/** Largest TCB Info or QE Identity document accepted (real ones are 1–8 KiB). */
export const MAX_COLLATERAL_JSON_BYTES = 1024 * 1024;
/** Largest body accepted from PCS or a bundle entry (PCK CRLs grow with revocations). */
export const MAX_PCS_BODY_BYTES = 4 * 1024 * 1024;
/** Largest bundle file read. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
const MAX_JSON_DEPTH = 32;
const MAX_TCB_LEVELS = 1024;

// ---------------------------------------------------------------------------------------------
// Strict JSON with byte ranges (RFC 8259)

/** A parsed JSON value with the byte range it occupies in the input. */
type JsonNode =
  | { readonly kind: 'object'; readonly start: number; readonly end: number; readonly members: ReadonlyMap<string, JsonNode> }
  | { readonly kind: 'array'; readonly start: number; readonly end: number; readonly items: readonly JsonNode[] }
  | { readonly kind: 'string'; readonly start: number; readonly end: number; readonly value: string }
  | { readonly kind: 'number'; readonly start: number; readonly end: number; readonly text: string }
  | { readonly kind: 'bool'; readonly start: number; readonly end: number; readonly value: boolean }
  | { readonly kind: 'null'; readonly start: number; readonly end: number };

type MalformedCode = Extract<ErrorCode, 'TDX_COLLATERAL_MALFORMED' | 'TDX_PCS_MALFORMED'>;

function malformedError(code: MalformedCode, message: string, field: string, offset?: number, cause?: unknown): ParseError | UnavailableError {
  const opts = { field, ...(offset !== undefined ? { offset } : {}), ...(cause !== undefined ? { cause } : {}) };
  return code === 'TDX_PCS_MALFORMED' ? new UnavailableError(code, message, opts) : new ParseError(code, message, opts);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A strict JSON parser over bytes: UTF-8 (fatal), RFC 8259 grammar only, no duplicate member
 * names at any depth (a second "tcbInfo" must not be able to hide behind the signed one), a
 * depth limit, and every value's byte range kept so signed members can be taken as served.
 */
class JsonScanner {
  #pos = 0;
  readonly #b: Uint8Array;
  readonly #field: string;
  readonly #code: MalformedCode;

  constructor(b: Uint8Array, field: string, code: MalformedCode) {
    this.#b = b;
    this.#field = field;
    this.#code = code;
  }

  #err(message: string, at = this.#pos): ParseError | UnavailableError {
    return malformedError(this.#code, `${this.#field} at byte ${at}: ${message}`, this.#field, at);
  }

  #ws(): void {
    const b = this.#b;
    while (this.#pos < b.length) {
      const c = b[this.#pos];
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.#pos++;
    }
  }

  document(): JsonNode {
    this.#ws();
    const v = this.#value(0);
    this.#ws();
    if (this.#pos !== this.#b.length) throw this.#err('bytes after the JSON value');
    return v;
  }

  #value(depth: number): JsonNode {
    if (depth > MAX_JSON_DEPTH) throw this.#err(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const b = this.#b;
    const c = b[this.#pos];
    const start = this.#pos;
    if (c === 0x7b) return this.#object(depth);
    if (c === 0x5b) return this.#array(depth);
    if (c === 0x22) return { kind: 'string', start, value: this.#string(), end: this.#pos };
    if (c === 0x74 && this.#lit('true')) return { kind: 'bool', start, end: this.#pos, value: true };
    if (c === 0x66 && this.#lit('false')) return { kind: 'bool', start, end: this.#pos, value: false };
    if (c === 0x6e && this.#lit('null')) return { kind: 'null', start, end: this.#pos };
    if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return this.#number();
    throw this.#err(c === undefined ? 'unexpected end of input' : `unexpected byte 0x${c.toString(16).padStart(2, '0')}`);
  }

  #lit(word: string): boolean {
    for (let i = 0; i < word.length; i++) if (this.#b[this.#pos + i] !== word.charCodeAt(i)) return false;
    this.#pos += word.length;
    return true;
  }

  #number(): JsonNode {
    const start = this.#pos;
    const rest = Buffer.from(this.#b.buffer, this.#b.byteOffset + start, Math.min(64, this.#b.length - start)).toString('latin1');
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(rest);
    if (m === null || m[0].length === 64) throw this.#err('not a JSON number');
    this.#pos += m[0].length;
    return { kind: 'number', start, end: this.#pos, text: m[0] };
  }

  #string(): string {
    const b = this.#b;
    this.#pos++; // opening quote
    const parts: string[] = [];
    let run = this.#pos;
    const flush = (to: number): void => {
      if (to > run) {
        try {
          parts.push(UTF8.decode(b.subarray(run, to)));
        } catch {
          throw this.#err('invalid UTF-8', run);
        }
      }
    };
    for (;;) {
      const c = b[this.#pos];
      if (c === undefined) throw this.#err('unterminated string');
      if (c === 0x22) {
        flush(this.#pos);
        this.#pos++;
        return parts.join('');
      }
      if (c < 0x20) throw this.#err('control character in a string');
      if (c !== 0x5c) {
        this.#pos++;
        continue;
      }
      flush(this.#pos);
      const e = b[this.#pos + 1];
      const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
      if (e !== undefined && simple[e] !== undefined) {
        parts.push(simple[e] as string);
        this.#pos += 2;
      } else if (e === 0x75) {
        const hex = Buffer.from(b.subarray(this.#pos + 2, this.#pos + 6)).toString('latin1');
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.#err('bad \\u escape');
        parts.push(String.fromCharCode(parseInt(hex, 16)));
        this.#pos += 6;
      } else throw this.#err('bad escape');
      run = this.#pos;
    }
  }

  #object(depth: number): JsonNode {
    const start = this.#pos;
    this.#pos++;
    const members = new Map<string, JsonNode>();
    this.#ws();
    if (this.#b[this.#pos] === 0x7d) {
      this.#pos++;
      return { kind: 'object', start, end: this.#pos, members };
    }
    for (;;) {
      this.#ws();
      if (this.#b[this.#pos] !== 0x22) throw this.#err('expected a member name');
      const at = this.#pos;
      const name = this.#string();
      if (members.has(name)) throw this.#err(`duplicate member "${name}"`, at);
      this.#ws();
      if (this.#b[this.#pos] !== 0x3a) throw this.#err('expected ":"');
      this.#pos++;
      this.#ws();
      members.set(name, this.#value(depth + 1));
      this.#ws();
      const c = this.#b[this.#pos];
      this.#pos++;
      if (c === 0x2c) continue;
      if (c === 0x7d) return { kind: 'object', start, end: this.#pos, members };
      throw this.#err('expected "," or "}"', this.#pos - 1);
    }
  }

  #array(depth: number): JsonNode {
    const start = this.#pos;
    this.#pos++;
    const items: JsonNode[] = [];
    this.#ws();
    if (this.#b[this.#pos] === 0x5d) {
      this.#pos++;
      return { kind: 'array', start, end: this.#pos, items };
    }
    for (;;) {
      this.#ws();
      items.push(this.#value(depth + 1));
      this.#ws();
      const c = this.#b[this.#pos];
      this.#pos++;
      if (c === 0x2c) continue;
      if (c === 0x5d) return { kind: 'array', start, end: this.#pos, items };
      throw this.#err('expected "," or "]"', this.#pos - 1);
    }
  }
}

function parseJson(bytes: Uint8Array, field: string, code: MalformedCode, max = MAX_COLLATERAL_JSON_BYTES): JsonNode {
  if (!(bytes instanceof Uint8Array)) throw new MisuseError('MISUSE_ARGUMENT', `${field} must be bytes`, { field });
  if (bytes.length > max) throw malformedError(code, `${field} is ${bytes.length} bytes, more than ${max}`, field);
  return new JsonScanner(bytes, field, code).document();
}

/** Typed reads of a JSON tree, each naming its field path in errors. */
class Fields {
  constructor(
    readonly code: MalformedCode,
    readonly bytes: Uint8Array,
  ) {}

  err(message: string, field: string, node?: JsonNode): ParseError | UnavailableError {
    return malformedError(this.code, `${field}: ${message}`, field, node?.start);
  }

  /** An object with exactly the required keys and any of the optional ones. */
  object(node: JsonNode, field: string, required: readonly string[], optional: readonly string[] = []): ReadonlyMap<string, JsonNode> {
    if (node.kind !== 'object') throw this.err('not a JSON object', field, node);
    for (const k of required) if (!node.members.has(k)) throw this.err(`lacks "${k}"`, `${field}.${k}`, node);
    for (const k of node.members.keys()) if (!required.includes(k) && !optional.includes(k)) throw this.err(`unknown member "${k}"`, `${field}.${k}`, node);
    return node.members;
  }

  get(m: ReadonlyMap<string, JsonNode>, key: string): JsonNode {
    return m.get(key) as JsonNode;
  }

  string(node: JsonNode, field: string): string {
    if (node.kind !== 'string') throw this.err('not a string', field, node);
    return node.value;
  }

  int(node: JsonNode, field: string, max: number): number {
    if (node.kind !== 'number' || !/^(?:0|[1-9][0-9]{0,15})$/.test(node.text)) throw this.err('not a non-negative integer', field, node);
    const n = Number(node.text);
    if (n > max) throw this.err(`${n} exceeds ${max}`, field, node);
    return n;
  }

  hex(node: JsonNode, field: string, size: number): Uint8Array {
    const s = this.string(node, field);
    if (s.length !== size * 2 || !/^[0-9a-fA-F]*$/.test(s)) throw this.err(`not ${size} bytes of hex`, field, node);
    return new Uint8Array(Buffer.from(s, 'hex'));
  }

  /** "YYYY-MM-DDThh:mm:ssZ" (the only form PCS uses), a real UTC time. */
  date(node: JsonNode, field: string): Date {
    const s = this.string(node, field);
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(s);
    const d = m === null ? undefined : new Date(Date.UTC(+(m[1] as string), +(m[2] as string) - 1, +(m[3] as string), +(m[4] as string), +(m[5] as string), +(m[6] as string)));
    if (d === undefined || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 19) + 'Z' !== s) throw this.err(`"${s}" is not a time of the form YYYY-MM-DDThh:mm:ssZ`, field, node);
    return d;
  }

  array(node: JsonNode, field: string, min: number, max: number): readonly JsonNode[] {
    if (node.kind !== 'array') throw this.err('not an array', field, node);
    if (node.items.length < min || node.items.length > max) throw this.err(`${node.items.length} entries, expected ${min === max ? min : `${min}..${max}`}`, field, node);
    return node.items;
  }

  oneOf<T extends string>(node: JsonNode, field: string, allowed: readonly T[]): T {
    const s = this.string(node, field);
    if (!(allowed as readonly string[]).includes(s)) throw this.err(`"${s}" is not one of ${allowed.join(', ')}`, field, node);
    return s as T;
  }

  advisoryIds(node: JsonNode | undefined, field: string): string[] {
    if (node === undefined) return [];
    return this.array(node, field, 0, 1024).map((n, i) => {
      const s = this.string(n, `${field}[${i}]`);
      if (!/^[\x21-\x7e]{1,64}$/.test(s)) throw this.err(`"${s}" is not an advisory id`, `${field}[${i}]`, n);
      return s;
    });
  }

  bytesOf(node: JsonNode): Uint8Array {
    return this.bytes.slice(node.start, node.end);
  }
}

// ---------------------------------------------------------------------------------------------
// TCB Info and QE Identity

/** One TCB component of a TCB level (`sgxtcbcomponents[i]`, `tdxtcbcomponents[i]`). */
export interface TcbComponent {
  readonly svn: number;
  readonly category?: string;
  readonly type?: string;
}

/** One entry of a TDX TCB Info `tcbLevels`. */
export interface TdxTcbLevel {
  /** tcb.sgxtcbcomponents: 16 components. */
  readonly sgxTcbComponents: readonly TcbComponent[];
  /** tcb.pcesvn. */
  readonly pceSvn: number;
  /** tcb.tdxtcbcomponents: 16 components. */
  readonly tdxTcbComponents: readonly TcbComponent[];
  readonly tcbDate: Date;
  readonly tcbStatus: TcbStatus;
  /** advisoryIDs (empty when absent). */
  readonly advisoryIds: readonly string[];
}

/** tdxModule of a TCB Info, or the identity part of a tdxModuleIdentities entry. */
export interface TdxModuleExpectation {
  /** mrsigner, 48 bytes (compared with MRSIGNERSEAM). */
  readonly mrSigner: Uint8Array;
  /** attributes, 8 bytes (compared with SEAMATTRIBUTES under the mask). */
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
}

/** A TCB level of a TDX module identity. */
export interface TdxModuleTcbLevel {
  /** tcb.isvsvn (compared with TEE_TCB_SVN[0]). */
  readonly isvSvn: number;
  readonly tcbDate: Date;
  readonly tcbStatus: IdentityTcbStatus;
  readonly advisoryIds: readonly string[];
}

/** One entry of tdxModuleIdentities. */
export interface TdxModuleIdentity extends TdxModuleExpectation {
  /** "TDX_" and the module version in two hex digits (TEE_TCB_SVN[1]). */
  readonly id: string;
  readonly tcbLevels: readonly TdxModuleTcbLevel[];
}

/** A parsed TDX TCB Info v3 (PCS "TCB Info V3" model, id "TDX"). Untrusted until verified. */
export interface TdxTcbInfo {
  readonly id: 'TDX';
  readonly version: 3;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  /** fmspc, 6 bytes. */
  readonly fmspc: Uint8Array;
  /** pceId, 2 bytes. */
  readonly pceId: Uint8Array;
  /** tcbType; 0 is the only type defined. */
  readonly tcbType: 0;
  readonly tcbEvaluationDataNumber: number;
  readonly tdxModule: TdxModuleExpectation;
  /** tdxModuleIdentities (empty when absent). */
  readonly tdxModuleIdentities: readonly TdxModuleIdentity[];
  readonly tcbLevels: readonly TdxTcbLevel[];
  /** The exact text of the "tcbInfo" member, as signed. */
  readonly signedBytes: Uint8Array;
  /** The signature, 64 bytes r ‖ s. */
  readonly signature: Uint8Array;
}

/** A TCB level of a QE Identity. */
export interface QeTcbLevel {
  /** tcb.isvsvn. */
  readonly isvSvn: number;
  readonly tcbDate: Date;
  readonly tcbStatus: IdentityTcbStatus;
  readonly advisoryIds: readonly string[];
}

/** A parsed TD QE Identity v2 (PCS "Enclave Identity V2" model, id "TD_QE"). Untrusted until verified. */
export interface TdxQeIdentity {
  readonly id: 'TD_QE';
  readonly version: 2;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tcbEvaluationDataNumber: number;
  /** miscselect, 4 bytes (the little-endian bytes of MISCSELECT). */
  readonly miscselect: Uint8Array;
  readonly miscselectMask: Uint8Array;
  /** attributes, 16 bytes. */
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  /** mrsigner, 32 bytes. */
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly tcbLevels: readonly QeTcbLevel[];
  /** The exact text of the "enclaveIdentity" member, as signed. */
  readonly signedBytes: Uint8Array;
  /** The signature, 64 bytes r ‖ s. */
  readonly signature: Uint8Array;
}

function components(f: Fields, node: JsonNode, field: string): TcbComponent[] {
  return f.array(node, field, 16, 16).map((n, i) => {
    const here = `${field}[${i}]`;
    const m = f.object(n, here, ['svn'], ['category', 'type']);
    const cat = m.get('category');
    const type = m.get('type');
    return {
      svn: f.int(f.get(m, 'svn'), `${here}.svn`, 255),
      ...(cat !== undefined ? { category: f.string(cat, `${here}.category`) } : {}),
      ...(type !== undefined ? { type: f.string(type, `${here}.type`) } : {}),
    };
  });
}

function identityLevels(f: Fields, node: JsonNode, field: string): TdxModuleTcbLevel[] {
  const out = f.array(node, field, 1, MAX_TCB_LEVELS).map((n, i) => {
    const here = `${field}[${i}]`;
    const m = f.object(n, here, ['tcb', 'tcbDate', 'tcbStatus'], ['advisoryIDs']);
    const tcb = f.object(f.get(m, 'tcb'), `${here}.tcb`, ['isvsvn']);
    return {
      isvSvn: f.int(f.get(tcb, 'isvsvn'), `${here}.tcb.isvsvn`, 0xffff),
      tcbDate: f.date(f.get(m, 'tcbDate'), `${here}.tcbDate`),
      tcbStatus: f.oneOf(f.get(m, 'tcbStatus'), `${here}.tcbStatus`, IDENTITY_TCB_STATUSES),
      advisoryIds: f.advisoryIds(m.get('advisoryIDs'), `${here}.advisoryIDs`),
    };
  });
  const seen = new Set<number>();
  out.forEach((l, i) => {
    if (seen.has(l.isvSvn)) throw f.err(`isvsvn ${l.isvSvn} is listed twice`, `${field}[${i}].tcb.isvsvn`);
    seen.add(l.isvSvn);
  });
  return out;
}

function signatureOf(f: Fields, node: JsonNode, field: string): Uint8Array {
  const s = f.string(node, field);
  if (!/^[0-9a-fA-F]{128}$/.test(s)) throw f.err('not 64 bytes of hex (ECDSA P-256 r ‖ s)', field, node);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function tcbInfoOf(f: Fields, node: JsonNode, signature: Uint8Array, field: string): TdxTcbInfo {
  // Identify the document before requiring the TDX members, so an SGX TCB Info says so.
  if (node.kind === 'object') {
    const id = node.members.get('id');
    if (id === undefined || id.kind !== 'string' || id.value !== 'TDX') {
      throw f.err(`id is ${id?.kind === 'string' ? `"${id.value}"` : 'absent'}: not a TDX TCB Info`, `${field}.id`, id);
    }
  }
  const m = f.object(node, field, ['id', 'version', 'issueDate', 'nextUpdate', 'fmspc', 'pceId', 'tcbType', 'tcbEvaluationDataNumber', 'tdxModule', 'tcbLevels'], ['tdxModuleIdentities']);
  const version = f.int(f.get(m, 'version'), `${field}.version`, 0xffff);
  if (version !== 3) throw f.err(`version ${version} is not 3`, `${field}.version`, f.get(m, 'version'));
  const tcbType = f.int(f.get(m, 'tcbType'), `${field}.tcbType`, 0xffff);
  if (tcbType !== 0) throw f.err(`tcbType ${tcbType} is not 0`, `${field}.tcbType`, f.get(m, 'tcbType'));
  const issueDate = f.date(f.get(m, 'issueDate'), `${field}.issueDate`);
  const nextUpdate = f.date(f.get(m, 'nextUpdate'), `${field}.nextUpdate`);
  if (nextUpdate.getTime() <= issueDate.getTime()) throw f.err('nextUpdate is not after issueDate', `${field}.nextUpdate`, f.get(m, 'nextUpdate'));
  const moduleOf = (n: JsonNode, here: string, extra: readonly string[]): ReadonlyMap<string, JsonNode> => f.object(n, here, ['mrsigner', 'attributes', 'attributesMask', ...extra]);
  const expectation = (mm: ReadonlyMap<string, JsonNode>, here: string): TdxModuleExpectation => ({
    mrSigner: f.hex(f.get(mm, 'mrsigner'), `${here}.mrsigner`, 48),
    attributes: f.hex(f.get(mm, 'attributes'), `${here}.attributes`, 8),
    attributesMask: f.hex(f.get(mm, 'attributesMask'), `${here}.attributesMask`, 8),
  });
  const tdxModule = expectation(moduleOf(f.get(m, 'tdxModule'), `${field}.tdxModule`, []), `${field}.tdxModule`);
  const idsNode = m.get('tdxModuleIdentities');
  const tdxModuleIdentities: TdxModuleIdentity[] =
    idsNode === undefined
      ? []
      : f.array(idsNode, `${field}.tdxModuleIdentities`, 1, 256).map((n, i) => {
          const here = `${field}.tdxModuleIdentities[${i}]`;
          const mm = moduleOf(n, here, ['id', 'tcbLevels']);
          const id = f.string(f.get(mm, 'id'), `${here}.id`);
          if (!/^TDX_[0-9A-Fa-f]{2}$/.test(id)) throw f.err(`"${id}" is not TDX_ and two hex digits`, `${here}.id`, f.get(mm, 'id'));
          return { id, ...expectation(mm, here), tcbLevels: identityLevels(f, f.get(mm, 'tcbLevels'), `${here}.tcbLevels`) };
        });
  const ids = new Set<string>();
  tdxModuleIdentities.forEach((x, i) => {
    if (ids.has(x.id.toUpperCase())) throw f.err(`identity ${x.id} is listed twice`, `${field}.tdxModuleIdentities[${i}].id`);
    ids.add(x.id.toUpperCase());
  });
  const tcbLevels = f.array(f.get(m, 'tcbLevels'), `${field}.tcbLevels`, 1, MAX_TCB_LEVELS).map((n, i): TdxTcbLevel => {
    const here = `${field}.tcbLevels[${i}]`;
    const lm = f.object(n, here, ['tcb', 'tcbDate', 'tcbStatus'], ['advisoryIDs']);
    const tcb = f.object(f.get(lm, 'tcb'), `${here}.tcb`, ['sgxtcbcomponents', 'pcesvn', 'tdxtcbcomponents']);
    return {
      sgxTcbComponents: components(f, f.get(tcb, 'sgxtcbcomponents'), `${here}.tcb.sgxtcbcomponents`),
      pceSvn: f.int(f.get(tcb, 'pcesvn'), `${here}.tcb.pcesvn`, 0xffff),
      tdxTcbComponents: components(f, f.get(tcb, 'tdxtcbcomponents'), `${here}.tcb.tdxtcbcomponents`),
      tcbDate: f.date(f.get(lm, 'tcbDate'), `${here}.tcbDate`),
      tcbStatus: f.oneOf(f.get(lm, 'tcbStatus'), `${here}.tcbStatus`, TCB_STATUSES),
      advisoryIds: f.advisoryIds(lm.get('advisoryIDs'), `${here}.advisoryIDs`),
    };
  });
  // Intel's QVL refuses duplicated TCB levels; so does vouch.
  const seen = new Set<string>();
  tcbLevels.forEach((l, i) => {
    const key = `${l.sgxTcbComponents.map((c) => c.svn).join('.')}/${l.pceSvn}/${l.tdxTcbComponents.map((c) => c.svn).join('.')}`;
    if (seen.has(key)) throw f.err('the TCB level is listed twice', `${field}.tcbLevels[${i}]`);
    seen.add(key);
  });
  return {
    id: 'TDX',
    version: 3,
    issueDate,
    nextUpdate,
    fmspc: f.hex(f.get(m, 'fmspc'), `${field}.fmspc`, 6),
    pceId: f.hex(f.get(m, 'pceId'), `${field}.pceId`, 2),
    tcbType: 0,
    tcbEvaluationDataNumber: f.int(f.get(m, 'tcbEvaluationDataNumber'), `${field}.tcbEvaluationDataNumber`, 0xffffffff),
    tdxModule,
    tdxModuleIdentities,
    tcbLevels,
    signedBytes: f.bytesOf(node),
    signature,
  };
}

function qeIdentityOf(f: Fields, node: JsonNode, signature: Uint8Array, field: string): TdxQeIdentity {
  if (node.kind === 'object') {
    const id = node.members.get('id');
    if (id === undefined || id.kind !== 'string' || id.value !== 'TD_QE') {
      throw f.err(`id is ${id?.kind === 'string' ? `"${id.value}"` : 'absent'}: not a TD QE Identity`, `${field}.id`, id);
    }
  }
  const m = f.object(node, field, ['id', 'version', 'issueDate', 'nextUpdate', 'tcbEvaluationDataNumber', 'miscselect', 'miscselectMask', 'attributes', 'attributesMask', 'mrsigner', 'isvprodid', 'tcbLevels']);
  const version = f.int(f.get(m, 'version'), `${field}.version`, 0xffff);
  if (version !== 2) throw f.err(`version ${version} is not 2`, `${field}.version`, f.get(m, 'version'));
  const issueDate = f.date(f.get(m, 'issueDate'), `${field}.issueDate`);
  const nextUpdate = f.date(f.get(m, 'nextUpdate'), `${field}.nextUpdate`);
  if (nextUpdate.getTime() <= issueDate.getTime()) throw f.err('nextUpdate is not after issueDate', `${field}.nextUpdate`, f.get(m, 'nextUpdate'));
  return {
    id: 'TD_QE',
    version: 2,
    issueDate,
    nextUpdate,
    tcbEvaluationDataNumber: f.int(f.get(m, 'tcbEvaluationDataNumber'), `${field}.tcbEvaluationDataNumber`, 0xffffffff),
    miscselect: f.hex(f.get(m, 'miscselect'), `${field}.miscselect`, 4),
    miscselectMask: f.hex(f.get(m, 'miscselectMask'), `${field}.miscselectMask`, 4),
    attributes: f.hex(f.get(m, 'attributes'), `${field}.attributes`, 16),
    attributesMask: f.hex(f.get(m, 'attributesMask'), `${field}.attributesMask`, 16),
    mrSigner: f.hex(f.get(m, 'mrsigner'), `${field}.mrsigner`, 32),
    isvProdId: f.int(f.get(m, 'isvprodid'), `${field}.isvprodid`, 0xffff),
    tcbLevels: identityLevels(f, f.get(m, 'tcbLevels'), `${field}.tcbLevels`),
    signedBytes: f.bytesOf(node),
    signature,
  };
}

type DocKind = 'tcbInfo' | 'enclaveIdentity';

/** Splits a PCS body `{"<member>":{…},"signature":"<hex>"}` into the signed member node and the signature. */
function splitPcsBody(body: Uint8Array, member: DocKind, field: string, code: MalformedCode): { f: Fields; node: JsonNode; signature: Uint8Array } {
  const root = parseJson(body, field, code);
  const f = new Fields(code, body);
  const m = f.object(root, field, [member, 'signature']);
  return { f, node: f.get(m, member), signature: signatureOf(f, f.get(m, 'signature'), `${field}.signature`) };
}

/**
 * Parses a PCS TDX TCB Info response body (`GET /tdx/certification/v4/tcb`): `{"tcbInfo":…,
 * "signature":…}`, keeping the exact "tcbInfo" text as `signedBytes`.
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseTdxTcbInfoBody(body: Uint8Array, field = 'tcbInfoBody'): TdxTcbInfo {
  return tcbInfoFromBody(body, field, 'TDX_COLLATERAL_MALFORMED');
}

function tcbInfoFromBody(body: Uint8Array, field: string, code: MalformedCode): TdxTcbInfo {
  const { f, node, signature } = splitPcsBody(body, 'tcbInfo', field, code);
  return tcbInfoOf(f, node, signature, `${field}.tcbInfo`);
}

/**
 * Parses the two halves of a TCB Info as dcap-qvl and on-chain PCCS keep them: the exact text
 * of the "tcbInfo" member (which is what is signed) and the signature (128 hex digits).
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseTdxTcbInfo(signedText: Uint8Array, signatureHex: string, field = 'tcbInfo'): TdxTcbInfo {
  return tcbInfoSplit(signedText, signatureHex, field, 'TDX_COLLATERAL_MALFORMED');
}

function tcbInfoSplit(signedText: Uint8Array, signatureHex: string, field: string, code: MalformedCode): TdxTcbInfo {
  const node = parseJson(signedText, field, code);
  const f = new Fields(code, signedText);
  if (node.start !== 0 || node.end !== signedText.length) throw f.err('whitespace around the signed member', field, node);
  return tcbInfoOf(f, node, signatureOf(f, { kind: 'string', start: 0, end: 0, value: signatureHex }, `${field}.signature`), field);
}

/**
 * Parses a PCS QE Identity response body (`GET /tdx/certification/v4/qe/identity`):
 * `{"enclaveIdentity":…,"signature":…}`, keeping the exact "enclaveIdentity" text.
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseTdxQeIdentityBody(body: Uint8Array, field = 'qeIdentityBody'): TdxQeIdentity {
  return qeIdentityFromBody(body, field, 'TDX_COLLATERAL_MALFORMED');
}

function qeIdentityFromBody(body: Uint8Array, field: string, code: MalformedCode): TdxQeIdentity {
  const { f, node, signature } = splitPcsBody(body, 'enclaveIdentity', field, code);
  return qeIdentityOf(f, node, signature, `${field}.enclaveIdentity`);
}

/**
 * Parses the two halves of a QE Identity: the exact "enclaveIdentity" text and the signature.
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseTdxQeIdentity(signedText: Uint8Array, signatureHex: string, field = 'qeIdentity'): TdxQeIdentity {
  return qeIdentitySplit(signedText, signatureHex, field, 'TDX_COLLATERAL_MALFORMED');
}

function qeIdentitySplit(signedText: Uint8Array, signatureHex: string, field: string, code: MalformedCode): TdxQeIdentity {
  const node = parseJson(signedText, field, code);
  const f = new Fields(code, signedText);
  if (node.start !== 0 || node.end !== signedText.length) throw f.err('whitespace around the signed member', field, node);
  return qeIdentityOf(f, node, signatureOf(f, { kind: 'string', start: 0, end: 0, value: signatureHex }, `${field}.signature`), field);
}

/** The PCS body of a parsed document, rebuilt from its exact signed text and signature. */
export function pcsBody(doc: TdxTcbInfo | TdxQeIdentity): Uint8Array {
  const member = doc.id === 'TDX' ? 'tcbInfo' : 'enclaveIdentity';
  return Buffer.concat([Buffer.from(`{"${member}":`), doc.signedBytes, Buffer.from(`,"signature":"${toHex(doc.signature)}"}`)]);
}

// ---------------------------------------------------------------------------------------------
// The normalized collateral

/**
 * Everything a TDX quote's verification needs from Intel PCS, normalized from any of the
 * formats vouch reads. Each item may be absent: verification then names what is missing.
 * Untrusted until {@link verifyTdxCollateral} has checked it.
 */
export interface TdxCollateral {
  readonly tcbInfo?: TdxTcbInfo;
  /** TCB Signing certificate then root, DER. */
  readonly tcbInfoIssuerChain?: readonly Uint8Array[];
  readonly qeIdentity?: TdxQeIdentity;
  /** TCB Signing certificate then root, DER. */
  readonly qeIdentityIssuerChain?: readonly Uint8Array[];
  /** PCK CRL, DER. */
  readonly pckCrl?: Uint8Array;
  /** PCK Platform or Processor CA then root, DER. */
  readonly pckCrlIssuerChain?: readonly Uint8Array[];
  /** Intel SGX Root CA CRL, DER. */
  readonly rootCaCrl?: Uint8Array;
}

function pemChain(text: string, field: string, code: MalformedCode): Uint8Array[] {
  try {
    const certs = splitPemCertificates(text, field);
    if (certs.length === 0) throw malformedError(code, `${field} holds no certificate`, field);
    return certs;
  } catch (e) {
    if (isVouchError(e) && (e.code === 'TDX_COLLATERAL_MALFORMED' || e.code === 'TDX_PCS_MALFORMED')) throw e;
    throw malformedError(code, `${field} is not a PEM certificate chain: ${e instanceof Error ? e.message : String(e)}`, field, undefined, e);
  }
}

function strictHex(s: unknown, field: string, code: MalformedCode): Uint8Array {
  if (typeof s !== 'string' || s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw malformedError(code, `${field} is not hex`, field);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

const DCAP_QVL_KEYS = ['pck_crl_issuer_chain', 'root_ca_crl', 'pck_crl', 'tcb_info_issuer_chain', 'tcb_info', 'tcb_info_signature', 'qe_identity_issuer_chain', 'qe_identity', 'qe_identity_signature'] as const;

/**
 * Parses dcap-qvl's `QuoteCollateralV3` JSON (its collateral.json): the issuer chains as PEM
 * strings, the CRLs and signatures as hex, `tcb_info` and `qe_identity` as the exact signed
 * member texts. `pck_certificate_chain` (newer dcap-qvl) is accepted and ignored: the PCK chain
 * comes from the quote.
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseDcapQvlCollateral(bytes: Uint8Array, field = 'collateral'): TdxCollateral {
  return dcapQvl(bytes, field, 'TDX_COLLATERAL_MALFORMED');
}

function dcapQvl(bytes: Uint8Array, field: string, code: MalformedCode, root?: JsonNode): TdxCollateral {
  const node = root ?? parseJson(bytes, field, code, MAX_PCS_BODY_BYTES * 4);
  const f = new Fields(code, bytes);
  const m = f.object(node, field, DCAP_QVL_KEYS, ['pck_certificate_chain']);
  const s = (k: (typeof DCAP_QVL_KEYS)[number]): string => f.string(f.get(m, k), `${field}.${k}`);
  return {
    tcbInfo: tcbInfoSplit(Buffer.from(s('tcb_info'), 'utf8'), s('tcb_info_signature'), `${field}.tcb_info`, code),
    tcbInfoIssuerChain: pemChain(s('tcb_info_issuer_chain'), `${field}.tcb_info_issuer_chain`, code),
    qeIdentity: qeIdentitySplit(Buffer.from(s('qe_identity'), 'utf8'), s('qe_identity_signature'), `${field}.qe_identity`, code),
    qeIdentityIssuerChain: pemChain(s('qe_identity_issuer_chain'), `${field}.qe_identity_issuer_chain`, code),
    pckCrl: strictHex(s('pck_crl'), `${field}.pck_crl`, code),
    pckCrlIssuerChain: pemChain(s('pck_crl_issuer_chain'), `${field}.pck_crl_issuer_chain`, code),
    rootCaCrl: strictHex(s('root_ca_crl'), `${field}.root_ca_crl`, code),
  };
}

/** The separate files of a collateral directory (the layout of go-tdx-guest's test data), as bytes. */
export interface CollateralFiles {
  /** tcb_info.json: the PCS TCB Info body. */
  readonly tcbInfo?: Uint8Array;
  /** tcb_info_issuer_chain.pem */
  readonly tcbInfoIssuerChain?: Uint8Array;
  /** qe_identity.json: the PCS QE Identity body. */
  readonly qeIdentity?: Uint8Array;
  /** qe_identity_issuer_chain.pem */
  readonly qeIdentityIssuerChain?: Uint8Array;
  /** pck_crl.der */
  readonly pckCrl?: Uint8Array;
  /** pck_crl_issuer_chain.pem */
  readonly pckCrlIssuerChain?: Uint8Array;
  /** root_ca_crl.der */
  readonly rootCaCrl?: Uint8Array;
}

/** File names of a collateral directory. */
export const COLLATERAL_FILE_NAMES: Readonly<Record<keyof CollateralFiles, string>> = {
  tcbInfo: 'tcb_info.json',
  tcbInfoIssuerChain: 'tcb_info_issuer_chain.pem',
  qeIdentity: 'qe_identity.json',
  qeIdentityIssuerChain: 'qe_identity_issuer_chain.pem',
  pckCrl: 'pck_crl.der',
  pckCrlIssuerChain: 'pck_crl_issuer_chain.pem',
  rootCaCrl: 'root_ca_crl.der',
};

function asciiText(b: Uint8Array, field: string, code: MalformedCode): string {
  try {
    return UTF8.decode(b);
  } catch (e) {
    throw malformedError(code, `${field} is not UTF-8 text`, field, undefined, e);
  }
}

/**
 * Normalizes the separate collateral files (any may be absent). CRLs are DER.
 *
 * @throws ParseError TDX_COLLATERAL_MALFORMED
 */
export function parseCollateralFiles(files: CollateralFiles): TdxCollateral {
  return collateralFromFiles(files, 'TDX_COLLATERAL_MALFORMED');
}

function collateralFromFiles(files: CollateralFiles, code: MalformedCode): TdxCollateral {
  const n = COLLATERAL_FILE_NAMES;
  const chain = (b: Uint8Array | undefined, name: string): Uint8Array[] | undefined => (b === undefined ? undefined : pemChain(asciiText(b, name, code), name, code));
  const out: { -readonly [K in keyof TdxCollateral]: TdxCollateral[K] } = {};
  if (files.tcbInfo !== undefined) out.tcbInfo = tcbInfoFromBody(files.tcbInfo, n.tcbInfo, code);
  const tc = chain(files.tcbInfoIssuerChain, n.tcbInfoIssuerChain);
  if (tc !== undefined) out.tcbInfoIssuerChain = tc;
  if (files.qeIdentity !== undefined) out.qeIdentity = qeIdentityFromBody(files.qeIdentity, n.qeIdentity, code);
  const qc = chain(files.qeIdentityIssuerChain, n.qeIdentityIssuerChain);
  if (qc !== undefined) out.qeIdentityIssuerChain = qc;
  if (files.pckCrl !== undefined) out.pckCrl = files.pckCrl;
  const pc = chain(files.pckCrlIssuerChain, n.pckCrlIssuerChain);
  if (pc !== undefined) out.pckCrlIssuerChain = pc;
  if (files.rootCaCrl !== undefined) out.rootCaCrl = files.rootCaCrl;
  return out;
}

async function readIfPresent(path: string, max: number): Promise<Uint8Array | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return undefined; // absent: the verification names what is missing
  }
  if (!st.isFile()) throw new MisuseError('MISUSE_FILE_UNREADABLE', `${path} is not a file`, { field: path });
  if (st.size > max) throw new ParseError('TDX_COLLATERAL_MALFORMED', `${path} is ${st.size} bytes, more than ${max}`, { field: path });
  return new Uint8Array(await readFile(path));
}

/**
 * Reads collateral from a path: a directory with the files of {@link COLLATERAL_FILE_NAMES}
 * (those present), or a dcap-qvl collateral.json.
 *
 * @throws MisuseError MISUSE_FILE_UNREADABLE, ParseError TDX_COLLATERAL_MALFORMED
 */
export async function readCollateral(path: string): Promise<TdxCollateral> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new MisuseError('MISUSE_FILE_UNREADABLE', `collateral ${path} cannot be read`, { field: 'collateral', cause: e });
  }
  if (st.isDirectory()) {
    const files: { -readonly [K in keyof CollateralFiles]: CollateralFiles[K] } = {};
    for (const [k, name] of Object.entries(COLLATERAL_FILE_NAMES) as [keyof CollateralFiles, string][]) {
      const b = await readIfPresent(join(path, name), MAX_PCS_BODY_BYTES);
      if (b !== undefined) files[k] = b;
    }
    return parseCollateralFiles(files);
  }
  const b = await readIfPresent(path, MAX_PCS_BODY_BYTES * 4);
  return parseDcapQvlCollateral(b ?? new Uint8Array(0), path);
}

// ---------------------------------------------------------------------------------------------
// Verification

/** Options of {@link verifyTdxCollateral}. */
export interface TdxCollateralVerifyOptions {
  /** The verification time. */
  readonly now: Date;
  /** Trusted root fingerprints; default the Intel SGX Root CA. Replace only for test-only roots. */
  readonly pinnedRootFingerprints?: readonly string[];
  /** Accept a missing PCK CRL or Root CA CRL (recorded). */
  readonly allowMissingCrl?: boolean;
  /**
   * The PCK CA whose CRL is expected ("platform" or "processor", from the PCK leaf's issuer);
   * when given, a PCK CRL of the other CA is refused.
   */
  readonly pckCa?: PckCaType;
  readonly cache?: TdxVerifyCache;
}

/** Result of {@link verifyTdxCollateral}: `ok` only when no check failed. */
export interface TdxCollateralVerification {
  readonly ok: boolean;
  readonly checks: readonly CheckOutcome[];
  readonly failures: readonly Failure[];
  readonly allowancesUsed: readonly TdxAllowance[];
}

function parseChain(ders: readonly Uint8Array[], field: string, failures: Failure[], cache: TdxVerifyCache | undefined): IntelCertificate[] | undefined {
  const out: IntelCertificate[] = [];
  for (const [i, d] of ders.entries()) {
    try {
      out.push(cache === undefined ? parseIntelCertificate(d, `${field}[${i}]`) : cache.certificate(d, () => parseIntelCertificate(d, `${field}[${i}]`)));
    } catch (e) {
      if (!isVouchError(e)) throw e;
      failures.push(failure(e.code, { field: e.field ?? `${field}[${i}]`, message: e.message }));
    }
  }
  return out.length === ders.length ? out : undefined;
}

const DOC = {
  tcbInfo: { name: 'TCB Info', missing: 'TDX_TCB_INFO_MISSING', signature: 'TDX_TCB_INFO_SIGNATURE_INVALID', expired: 'TDX_TCB_INFO_EXPIRED', member: 'tcbInfo' },
  qeIdentity: { name: 'QE Identity', missing: 'TDX_QE_IDENTITY_MISSING', signature: 'TDX_QE_IDENTITY_SIGNATURE_INVALID', expired: 'TDX_QE_IDENTITY_EXPIRED', member: 'enclaveIdentity' },
} as const;

/**
 * Verifies collateral at `now`, returning every failure, in this order:
 *
 * 1. TCB Info: present with its issuer chain; the chain [Intel SGX TCB Signing, root] (roles,
 *    pinned root, ECDSA P-256 signatures over exact TBS, validity); the ECDSA P-256 signature
 *    (r ‖ s) of the TCB Signing key over the exact "tcbInfo" text; issueDate ≤ now ≤ nextUpdate.
 * 2. QE Identity: the same, over the exact "enclaveIdentity" text.
 * 3. Intel SGX Root CA CRL: present; signed by the root; current; no TCB Signing certificate
 *    and no PCK CA of the PCK CRL issuer chain revoked.
 * 4. PCK CRL: present with its issuer chain [PCK Platform or Processor CA, root]; the chain;
 *    signed by that CA; current. (The PCK leaf's own revocation is checked by verifyPckChain
 *    with these CRL bytes.)
 *
 * @throws MisuseError MISUSE_ARGUMENT on a bad `now` or pin list
 */
export function verifyTdxCollateral(c: TdxCollateral, opts: TdxCollateralVerifyOptions): TdxCollateralVerification {
  const now = checkNow(opts.now);
  const pins = checkPins(opts.pinnedRootFingerprints);
  const log = new CheckLog();
  const allowancesUsed: TdxAllowance[] = [];
  const t = now.getTime();
  const chainOpts = { now, pins, ...(opts.cache !== undefined ? { cache: opts.cache } : {}) };
  const crlSubjects: CrlSubject[] = [];
  let root: IntelCertificate | undefined;

  /** Runs the chain checks; true when the chain is authentic (roles, pin, signatures), whatever its validity. */
  const runChain = (prefix: string, certs: IntelCertificate[], roles: readonly (IntelCertRole | readonly IntelCertRole[])[], field: string): boolean => {
    const r = checkIntelChain(certs, roles, { ...chainOpts, field });
    const authentic = [log.run(`${prefix}.issuerChain.roles`, r.roles), log.run(`${prefix}.issuerChain.rootPinned`, r.pinned), log.run(`${prefix}.issuerChain.signatures`, r.signatures)].every(Boolean);
    log.run(`${prefix}.issuerChain.validity`, r.validity);
    if (r.pinned.length === 0 && certs.length > 0 && root === undefined) root = certs[certs.length - 1];
    return authentic;
  };
  const skipChain = (prefix: string, note: string): void => {
    for (const n of ['roles', 'rootPinned', 'signatures', 'validity']) log.skip(`${prefix}.issuerChain.${n}`, note);
  };

  const signedDoc = (kind: 'tcbInfo' | 'qeIdentity', doc: TdxTcbInfo | TdxQeIdentity | undefined, chainDer: readonly Uint8Array[] | undefined): void => {
    const d = DOC[kind];
    const chainField = `${kind}IssuerChain`;
    if (doc === undefined || chainDer === undefined) {
      log.run(`${kind}.present`, [failure(d.missing, { field: doc === undefined ? kind : chainField, message: doc === undefined ? `no ${d.name} was supplied` : `the ${d.name} came without its issuer chain` })]);
      skipChain(kind, `no ${d.name} or issuer chain`);
      log.skip(`${kind}.signature`, `no ${d.name} or issuer chain`);
      log.skip(`${kind}.window`, `no ${d.name}`);
      return;
    }
    log.run(`${kind}.present`, []);
    const parseFailures: Failure[] = [];
    const certs = parseChain(chainDer, chainField, parseFailures, opts.cache);
    log.run(`${kind}.issuerChain.parse`, parseFailures);
    if (certs !== undefined) {
      runChain(kind, certs, ['tcbSigning', 'root'], chainField);
      const signer = certs[0];
      if (signer !== undefined) {
        crlSubjects.push({ cert: signer, field: `${chainField}[0]`, code: 'TDX_CA_REVOKED' });
        const why = p256SignatureProblem(signer.cert, doc.signedBytes, doc.signature, 'ieee-p1363', opts.cache);
        log.run(`${kind}.signature`, why === undefined ? [] : [failure(d.signature, { field: `${kind}.signature`, actual: why, message: `the ${d.name} signature over the exact "${d.member}" text: ${why} with the key of "${signer.commonName}"` })]);
      } else log.skip(`${kind}.signature`, 'the issuer chain is empty');
    } else {
      skipChain(kind, 'a certificate did not parse');
      log.skip(`${kind}.signature`, 'a certificate did not parse');
    }
    const inWindow = t >= doc.issueDate.getTime() && t <= doc.nextUpdate.getTime();
    log.run(`${kind}.window`, inWindow ? [] : [failure(d.expired, {
      field: `${kind}.${t < doc.issueDate.getTime() ? 'issueDate' : 'nextUpdate'}`,
      expected: `${doc.issueDate.toISOString()}..${doc.nextUpdate.toISOString()}`,
      actual: now.toISOString(),
      message: `the ${d.name} is ${t < doc.issueDate.getTime() ? 'not yet issued' : 'past its nextUpdate'} at ${now.toISOString()}`,
    })]);
  };

  signedDoc('tcbInfo', c.tcbInfo, c.tcbInfoIssuerChain);
  signedDoc('qeIdentity', c.qeIdentity, c.qeIdentityIssuerChain);

  // The PCK CRL issuer chain first, so its CA is a subject of the root CA CRL.
  let pckCa: IntelCertificate | undefined;
  let pckChainOk = false;
  if (c.pckCrlIssuerChain !== undefined) {
    const parseFailures: Failure[] = [];
    const certs = parseChain(c.pckCrlIssuerChain, 'pckCrlIssuerChain', parseFailures, opts.cache);
    log.run('pckCrl.issuerChain.parse', parseFailures);
    if (certs !== undefined) {
      const roles: IntelCertRole | readonly IntelCertRole[] = opts.pckCa === 'platform' ? 'pckPlatformCa' : opts.pckCa === 'processor' ? 'pckProcessorCa' : ['pckPlatformCa', 'pckProcessorCa'];
      pckChainOk = runChain('pckCrl', certs, [roles, 'root'], 'pckCrlIssuerChain');
      pckCa = certs[0];
      if (pckCa !== undefined) crlSubjects.push({ cert: pckCa, field: 'pckCrlIssuerChain[0]', code: 'TDX_CA_REVOKED' });
    } else skipChain('pckCrl', 'a certificate did not parse');
  } else if (c.pckCrl !== undefined) {
    log.run('pckCrl.issuerChain.parse', [failure('TDX_CRL_MISSING', { field: 'pckCrlIssuerChain', message: 'the PCK CRL came without its issuer chain, so its signer is unknown' })]);
    skipChain('pckCrl', 'no PCK CRL issuer chain');
  }

  const missingCrl = (name: 'rootCaCrl' | 'pckCrl', what: string): void => {
    if (opts.allowMissingCrl === true) {
      allowancesUsed.push(name === 'pckCrl' ? 'missingPckCrl' : 'missingRootCaCrl');
      log.skip(name, `no ${what}; allowed by allowMissingCrl`);
    } else log.run(name, [failure('TDX_CRL_MISSING', { field: name, message: `no ${what} was supplied, and a missing CRL was not allowed` })]);
  };

  if (c.rootCaCrl === undefined) missingCrl('rootCaCrl', 'Intel SGX Root CA CRL');
  else if (root === undefined) log.skip('rootCaCrl', 'no issuer chain ends at a pinned root to verify the Root CA CRL with');
  else {
    const r = checkIntelCrl(c.rootCaCrl, root, now, 'rootCaCrl', crlSubjects, opts.cache);
    log.run('rootCaCrl', [...r.integrity, ...r.window, ...r.revoked]);
  }

  if (c.pckCrl === undefined) missingCrl('pckCrl', 'PCK CRL');
  else if (pckCa === undefined || !pckChainOk) log.skip('pckCrl', 'the PCK CRL issuer chain is missing, or is not an authentic chain to the pinned root');
  else {
    const r = checkIntelCrl(c.pckCrl, pckCa, now, 'pckCrl', [], opts.cache);
    log.run('pckCrl', [...r.integrity, ...r.window]);
  }

  return { ok: log.failures.length === 0, checks: log.checks, failures: log.failures, allowancesUsed };
}

// ---------------------------------------------------------------------------------------------
// TCB recovery

/** A platform for {@link tcbRecoveryReport}: its TCB, and a name for the report. */
export interface RecoveryPlatform extends TdxPlatformTcb {
  readonly id: string;
}

/** How one TCB level of the current TCB Info fares under the next one. */
export interface RecoveryLevel {
  /** Index in the current TCB Info's tcbLevels. */
  readonly index: number;
  readonly tcbDate: Date;
  readonly currentStatus: TcbStatus;
  /** The status a platform exactly at this level gets from the next TCB Info; absent = no level matches. */
  readonly nextStatus?: TcbStatus;
  /** Accepted now and not accepted (or not supported) under the next TCB Info. */
  readonly wouldFail: boolean;
}

/** How one platform fares under the next TCB Info. */
export interface RecoveryPlatformOutcome {
  readonly id: string;
  readonly currentStatus?: TcbStatus;
  readonly nextStatus?: TcbStatus;
  readonly changed: boolean;
  readonly wouldFail: boolean;
  /** Advisory IDs under the next TCB Info that the current one did not name for this platform. */
  readonly newAdvisoryIds: readonly string[];
  /** Failures under the next TCB Info (TDX_TCB_LEVEL_NOT_FOUND, TDX_MODULE_MISMATCH, …). */
  readonly nextFailures: readonly Failure[];
}

/** Result of {@link tcbRecoveryReport}. */
export interface TcbRecoveryReport {
  readonly fmspc: string;
  readonly currentEvaluationDataNumber: number;
  readonly nextEvaluationDataNumber: number;
  readonly accepted: readonly TcbStatus[];
  readonly levels: readonly RecoveryLevel[];
  readonly platforms: readonly RecoveryPlatformOutcome[];
  /** Ids of the platforms that are accepted now and would not be after the recovery. */
  readonly platformsThatWouldFail: readonly string[];
}

/**
 * Which TCB levels and which platforms would stop being accepted when `next` (a TCB Info with a
 * higher tcbEvaluationDataNumber, e.g. PCS `update=early` ahead of `standard`, or a new TCB
 * recovery) replaces `current`. Both must be verified TCB Infos for the same FMSPC and PCE-ID.
 *
 * Levels: a platform exactly at each current level (its SGX components, PCESVN and TDX
 * components as TEE_TCB_SVN) is matched against the next TCB Info's levels (the module
 * identity is not part of a level). Platforms: the full evaluation of ./tcb under both.
 *
 * @throws MisuseError MISUSE_ARGUMENT when FMSPC or PCE-ID differ, or `next` is older
 */
export function tcbRecoveryReport(current: TdxTcbInfo, next: TdxTcbInfo, opts: { readonly platforms?: readonly RecoveryPlatform[]; readonly accepted?: readonly TcbStatus[] } = {}): TcbRecoveryReport {
  if (!bytesEqual(current.fmspc, next.fmspc) || !bytesEqual(current.pceId, next.pceId)) {
    throw new MisuseError('MISUSE_ARGUMENT', `the TCB Infos are for different platforms (${toHex(current.fmspc)}/${toHex(current.pceId)} and ${toHex(next.fmspc)}/${toHex(next.pceId)})`, { field: 'next.fmspc' });
  }
  if (next.tcbEvaluationDataNumber < current.tcbEvaluationDataNumber) {
    throw new MisuseError('MISUSE_ARGUMENT', `next has tcbEvaluationDataNumber ${next.tcbEvaluationDataNumber}, lower than current's ${current.tcbEvaluationDataNumber}`, { field: 'next.tcbEvaluationDataNumber' });
  }
  const accepted = opts.accepted ?? ['UpToDate'];
  for (const s of accepted) if (!(TCB_STATUSES as readonly string[]).includes(s)) throw new MisuseError('MISUSE_ARGUMENT', `"${s}" is not a TCB status`, { field: 'accepted' });
  const ok = (s: TcbStatus | undefined): boolean => s !== undefined && accepted.includes(s);

  const levels: RecoveryLevel[] = current.tcbLevels.map((l, index) => {
    const tee = Uint8Array.from(l.tdxTcbComponents.map((c) => c.svn));
    // Bytes 0..1 of TEE_TCB_SVN are the module's: with a module version (byte 1) > 0,
    // matchTcbLevels leaves them to the module identity, as for a real platform; with 0 the
    // level's vector is compared in full. (Zeroing them here made every next level whose bytes
    // 0..1 are set look unsupported.)
    const m = matchTcbLevels(next.tcbLevels, l.sgxTcbComponents.map((c) => c.svn), l.pceSvn, tee);
    const nextStatus = m.tdx?.level.tcbStatus;
    return { index, tcbDate: l.tcbDate, currentStatus: l.tcbStatus, ...(nextStatus !== undefined ? { nextStatus } : {}), wouldFail: ok(l.tcbStatus) && !ok(nextStatus) };
  });

  const platforms: RecoveryPlatformOutcome[] = (opts.platforms ?? []).map((p) => {
    const a = evaluateTdxTcb(current, p);
    const b = evaluateTdxTcb(next, p);
    const currentStatus = a.ok ? a.status : undefined;
    const nextStatus = b.ok ? b.status : undefined;
    return {
      id: p.id,
      ...(currentStatus !== undefined ? { currentStatus } : {}),
      ...(nextStatus !== undefined ? { nextStatus } : {}),
      changed: currentStatus !== nextStatus,
      wouldFail: ok(currentStatus) && !ok(nextStatus),
      newAdvisoryIds: b.advisoryIds.filter((x) => !a.advisoryIds.includes(x)),
      nextFailures: b.failures,
    };
  });
  return {
    fmspc: toHex(current.fmspc),
    currentEvaluationDataNumber: current.tcbEvaluationDataNumber,
    nextEvaluationDataNumber: next.tcbEvaluationDataNumber,
    accepted,
    levels,
    platforms,
    platformsThatWouldFail: platforms.filter((p) => p.wouldFail).map((p) => p.id),
  };
}

// ---------------------------------------------------------------------------------------------
// The PCS client

/** Production Intel PCS. */
export const PCS_BASE_URL = 'https://api.trustedservices.intel.com';
/** Where Intel publishes the Intel SGX Root CA CRL (the root's CRL distribution point). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

/** PCS response header names (case-insensitive) of the issuer chains, PCS API v4. */
export const PCS_ISSUER_CHAIN_HEADER = {
  tcbInfo: 'tcb-info-issuer-chain',
  qeIdentity: 'sgx-enclave-identity-issuer-chain',
  pckCrl: 'sgx-pck-crl-issuer-chain',
} as const;

/** PCS `update` parameter: "early" serves collateral of a TCB recovery before "standard" does. */
export type PcsUpdate = 'early' | 'standard';

/** Options of {@link PcsClient}. */
export interface PcsClientOptions {
  /** The network; absent = offline (cache and imported bundles only). */
  readonly fetcher?: Fetcher;
  /** Cache directory; absent = an in-memory cache for the client's lifetime. */
  readonly cacheDir?: string;
  /** The time: decides freshness and the end of a rate-limit wait. */
  readonly clock: () => Date;
  /** PCS base URL, default {@link PCS_BASE_URL}. */
  readonly baseUrl?: string;
  /** Root CA CRL URL, default {@link INTEL_ROOT_CA_CRL_URL}. */
  readonly rootCaCrlUrl?: string;
  /** PCS `update` parameter for TCB Info and QE Identity; absent = PCS's default ("standard"). */
  readonly update?: PcsUpdate;
}

/** A TCB Info or QE Identity as PCS served it, with its issuer chain. Untrusted until verified. */
export interface PcsDocument<T> {
  /** The response body exactly as served. */
  readonly body: Uint8Array;
  readonly parsed: T;
  /** Issuer chain, DER, signing certificate first. */
  readonly issuerChain: readonly Uint8Array[];
}

/** A CRL with its update times and, for PCK CRLs, its issuer chain. Untrusted until verified. */
export interface PcsCrl {
  readonly der: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly issuerChain?: readonly Uint8Array[];
}

/** What {@link PcsClient.importBundle} stored. */
export interface PcsBundleImportSummary {
  readonly tcbInfos: number;
  readonly qeIdentities: number;
  readonly pckCrls: number;
  readonly rootCaCrls: number;
  /** Entries not stored because the cache holds a newer one. */
  readonly olderSkipped: number;
}

/** PCS answered 429: no request may be made before `retryAt`. */
export class PcsRateLimitedError extends UnavailableError {
  readonly retryAt: Date;

  constructor(retryAt: Date, url: string) {
    super('TDX_PCS_RATE_LIMITED', `Intel PCS rate limit: no request before ${retryAt.toISOString()} (${url})`, { field: 'Retry-After', actual: retryAt.toISOString() });
    this.retryAt = retryAt;
  }
}

function pcsUnavailable(message: string, cause?: unknown): UnavailableError {
  return new UnavailableError('TDX_PCS_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

function pcsMalformed(message: string, field: string, cause?: unknown): UnavailableError {
  return new UnavailableError('TDX_PCS_MALFORMED', message, { field, ...(cause === undefined ? {} : { cause }) });
}

function mislabelled(message: string, field: string, expected: string, actual: string): ParseError {
  return new ParseError('TDX_COLLATERAL_MISLABELLED', message, { field, expected, actual });
}

function checkFmspc(fmspc: Uint8Array | string): string {
  const s = typeof fmspc === 'string' ? fmspc.toLowerCase() : fmspc instanceof Uint8Array ? toHex(fmspc) : '';
  if (!/^[0-9a-f]{12}$/.test(s)) throw new MisuseError('MISUSE_ARGUMENT', 'fmspc must be 6 bytes (or 12 hex digits)', { field: 'fmspc' });
  return s;
}

function checkCa(ca: string): PckCaType {
  if (ca !== 'platform' && ca !== 'processor') throw new MisuseError('MISUSE_ARGUMENT', `ca "${ca}" is neither platform nor processor`, { field: 'ca' });
  return ca;
}

/** Cache paths; each is a label checked against the content on every read. */
const cachePath = {
  tcbInfo: (fmspc: string) => `tcb/${fmspc}.json`,
  tcbInfoChain: (fmspc: string) => `tcb/${fmspc}.issuer-chain.pem`,
  qeIdentity: 'qe/td_qe.json',
  qeIdentityChain: 'qe/td_qe.issuer-chain.pem',
  pckCrl: (ca: PckCaType) => `pckcrl/${ca}.der`,
  pckCrlChain: (ca: PckCaType) => `pckcrl/${ca}.issuer-chain.pem`,
  rootCaCrl: 'rootcacrl/IntelSGXRootCA.der',
};

/** Cache entries: in memory, or files written atomically under a directory. */
class Store {
  readonly #dir: string | undefined;
  readonly #mem = new Map<string, Uint8Array>();

  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  async get(rel: string): Promise<Uint8Array | undefined> {
    if (this.#dir === undefined) return this.#mem.get(rel);
    const path = join(this.#dir, rel);
    let st;
    try {
      st = await stat(path);
    } catch {
      return undefined; // not cached
    }
    if (!st.isFile() || st.size > MAX_PCS_BODY_BYTES) throw pcsMalformed(`cache entry ${rel} is not a file of at most ${MAX_PCS_BODY_BYTES} bytes`, rel);
    return new Uint8Array(await readFile(path));
  }

  async put(rel: string, bytes: Uint8Array): Promise<void> {
    if (this.#dir === undefined) {
      this.#mem.set(rel, bytes.slice());
      return;
    }
    await writeAtomic(join(this.#dir, rel), bytes);
  }

  async list(): Promise<string[]> {
    if (this.#dir === undefined) return [...this.#mem.keys()].sort();
    return listFiles(this.#dir);
  }
}

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return; // an absent cache directory lists nothing
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && !e.name.endsWith('.tmp')) out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  await walk(dir);
  return out.sort();
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** A PCK CRL's CA type from its issuer CN. */
function crlCa(der: Uint8Array, field: string, code: MalformedCode): { ca: PckCaType; thisUpdate: Date; nextUpdate: Date } {
  let crl;
  try {
    crl = parseIntelCrl(der, field);
  } catch (e) {
    throw malformedError(code, `${field}: ${e instanceof Error ? e.message : String(e)}`, field, undefined, e);
  }
  const cn = crl.issuerCommonNames.length === 1 ? crl.issuerCommonNames[0] : undefined;
  const ca: PckCaType | undefined = cn === INTEL_ROLE_CN.pckPlatformCa ? 'platform' : cn === INTEL_ROLE_CN.pckProcessorCa ? 'processor' : undefined;
  if (ca === undefined) throw malformedError(code, `${field} is issued by "${crl.issuer}", not a PCK CA`, field);
  if (crl.nextUpdate === undefined) throw malformedError(code, `${field} has no nextUpdate`, field);
  return { ca, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
}

function rootCrlTimes(der: Uint8Array, field: string, code: MalformedCode): { thisUpdate: Date; nextUpdate: Date } {
  let crl;
  try {
    crl = parseIntelCrl(der, field);
  } catch (e) {
    throw malformedError(code, `${field}: ${e instanceof Error ? e.message : String(e)}`, field, undefined, e);
  }
  if (crl.issuerCommonNames.length !== 1 || crl.issuerCommonNames[0] !== INTEL_ROLE_CN.root) throw malformedError(code, `${field} is issued by "${crl.issuer}", not the Intel SGX Root CA`, field);
  if (crl.nextUpdate === undefined) throw malformedError(code, `${field} has no nextUpdate`, field);
  return { thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
}

/** One validated entry of a bundle, ready to store. */
type Entry =
  | { readonly kind: 'tcbInfo'; readonly fmspc: string; readonly body: Uint8Array; readonly chainPem: string; readonly doc: TdxTcbInfo }
  | { readonly kind: 'qeIdentity'; readonly body: Uint8Array; readonly chainPem: string; readonly doc: TdxQeIdentity }
  | { readonly kind: 'pckCrl'; readonly ca: PckCaType; readonly der: Uint8Array; readonly chainPem: string; readonly thisUpdate: Date }
  | { readonly kind: 'rootCaCrl'; readonly der: Uint8Array; readonly thisUpdate: Date };

function derToPem(ders: readonly Uint8Array[]): string {
  return ders.map((d) => `-----BEGIN CERTIFICATE-----\n${(Buffer.from(d).toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`).join('');
}

/** Is `fresh` older than `cached`? TCB evaluation data number first, then issue date. */
function olderDoc(fresh: TdxTcbInfo | TdxQeIdentity, cached: TdxTcbInfo | TdxQeIdentity): boolean {
  if (fresh.tcbEvaluationDataNumber !== cached.tcbEvaluationDataNumber) return fresh.tcbEvaluationDataNumber < cached.tcbEvaluationDataNumber;
  return fresh.issueDate.getTime() < cached.issueDate.getTime();
}

/**
 * Intel PCS client with a cache. URLs (PCS API v4):
 *
 *   GET {base}/tdx/certification/v4/tcb?fmspc={hex}[&update=…]   → TCB Info JSON; header TCB-Info-Issuer-Chain
 *   GET {base}/tdx/certification/v4/qe/identity[?update=…]        → QE Identity JSON; header SGX-Enclave-Identity-Issuer-Chain
 *   GET {base}/sgx/certification/v4/pckcrl?ca={platform|processor}&encoding=der → CRL; header SGX-PCK-CRL-Issuer-Chain
 *   GET https://certificates.trustedservices.intel.com/IntelSGXRootCA.der       → Root CA CRL
 *
 * Issuer chains arrive URL-encoded (percent-encoding) in the headers. The cache is keyed by
 * FMSPC (TCB Info), by CA type (PCK CRL), and holds one QE Identity and one Root CA CRL; each
 * entry is served while the clock is before its nextUpdate, then fetched again. A fetched entry
 * older than the cached one (lower tcbEvaluationDataNumber, earlier issueDate or thisUpdate) is
 * refused (TDX_COLLATERAL_ROLLBACK). Offline, or when PCS cannot be asked, an expired cached
 * entry is not returned: the error says why. Nothing here sleeps or retries.
 */
export class PcsClient {
  readonly #fetcher: Fetcher | undefined;
  readonly #clock: () => Date;
  readonly #base: string;
  readonly #rootCrlUrl: string;
  readonly #update: PcsUpdate | undefined;
  readonly #store: Store;
  #retryAt: Date | undefined;

  constructor(options: PcsClientOptions) {
    if (typeof options.clock !== 'function') throw new MisuseError('MISUSE_ARGUMENT', 'PcsClient needs a clock', { field: 'clock' });
    if (options.update !== undefined && options.update !== 'early' && options.update !== 'standard') throw new MisuseError('MISUSE_ARGUMENT', 'update must be early or standard', { field: 'update' });
    this.#fetcher = options.fetcher;
    this.#clock = options.clock;
    this.#base = (options.baseUrl ?? PCS_BASE_URL).replace(/\/+$/, '');
    this.#rootCrlUrl = options.rootCaCrlUrl ?? INTEL_ROOT_CA_CRL_URL;
    this.#update = options.update;
    this.#store = new Store(options.cacheDir);
  }

  /** When a 429 is in force: the earliest time PCS may be asked again. */
  get retryAt(): Date | undefined {
    return this.#retryAt;
  }

  /** URL of the TCB Info of `fmspc`. */
  tcbInfoUrl(fmspc: Uint8Array | string): string {
    return `${this.#base}/tdx/certification/v4/tcb?fmspc=${checkFmspc(fmspc)}${this.#update === undefined ? '' : `&update=${this.#update}`}`;
  }

  /** URL of the TD QE Identity. */
  qeIdentityUrl(): string {
    return `${this.#base}/tdx/certification/v4/qe/identity${this.#update === undefined ? '' : `?update=${this.#update}`}`;
  }

  /** URL of the PCK CRL of `ca`. */
  pckCrlUrl(ca: PckCaType): string {
    return `${this.#base}/sgx/certification/v4/pckcrl?ca=${checkCa(ca)}&encoding=der`;
  }

  /**
   * The TCB Info of `fmspc` with its issuer chain, from the cache while current, else from PCS.
   * @throws MisuseError MISUSE_ARGUMENT, {@link PcsRateLimitedError}, UnavailableError TDX_PCS_UNAVAILABLE /
   *   TDX_PCS_MALFORMED / TDX_COLLATERAL_ROLLBACK, ParseError TDX_COLLATERAL_MISLABELLED
   */
  async tcbInfo(fmspc: Uint8Array | string): Promise<PcsDocument<TdxTcbInfo>> {
    const f = checkFmspc(fmspc);
    const cached = await this.#cachedDoc(cachePath.tcbInfo(f), cachePath.tcbInfoChain(f), (b, field) => this.#tcbInfoLabelled(b, f, field));
    if (cached !== undefined && this.#fresh(cached.parsed.nextUpdate)) return cached;
    const url = this.tcbInfoUrl(f);
    const res = await this.#get(url, cached?.parsed.nextUpdate);
    const chain = this.#chainHeader(res, PCS_ISSUER_CHAIN_HEADER.tcbInfo, url);
    const parsed = this.#asPcs(() => this.#tcbInfoLabelled(res.body, f, url));
    if (cached !== undefined && olderDoc(parsed, cached.parsed)) throw this.#rollback(url, parsed, cached.parsed);
    await this.#store.put(cachePath.tcbInfoChain(f), new TextEncoder().encode(chain.pem));
    await this.#store.put(cachePath.tcbInfo(f), res.body);
    return { body: res.body, parsed, issuerChain: chain.ders };
  }

  /**
   * The TD QE Identity with its issuer chain, from the cache while current, else from PCS.
   * @throws as {@link PcsClient.tcbInfo}
   */
  async qeIdentity(): Promise<PcsDocument<TdxQeIdentity>> {
    const cached = await this.#cachedDoc(cachePath.qeIdentity, cachePath.qeIdentityChain, (b, field) => qeIdentityFromBody(b, field, 'TDX_PCS_MALFORMED'));
    if (cached !== undefined && this.#fresh(cached.parsed.nextUpdate)) return cached;
    const url = this.qeIdentityUrl();
    const res = await this.#get(url, cached?.parsed.nextUpdate);
    const chain = this.#chainHeader(res, PCS_ISSUER_CHAIN_HEADER.qeIdentity, url);
    const parsed = qeIdentityFromBody(res.body, url, 'TDX_PCS_MALFORMED');
    if (cached !== undefined && olderDoc(parsed, cached.parsed)) throw this.#rollback(url, parsed, cached.parsed);
    await this.#store.put(cachePath.qeIdentityChain, new TextEncoder().encode(chain.pem));
    await this.#store.put(cachePath.qeIdentity, res.body);
    return { body: res.body, parsed, issuerChain: chain.ders };
  }

  /**
   * The PCK CRL of `ca` (DER) with its issuer chain, from the cache while current, else from PCS.
   * @throws as {@link PcsClient.tcbInfo}
   */
  async pckCrl(ca: PckCaType): Promise<PcsCrl> {
    const c = checkCa(ca);
    const rel = cachePath.pckCrl(c);
    const cachedDer = await this.#store.get(rel);
    const cachedChain = await this.#store.get(cachePath.pckCrlChain(c));
    let cached: PcsCrl | undefined;
    if (cachedDer !== undefined && cachedChain !== undefined) {
      const info = this.#pckCrlLabelled(cachedDer, c, `cached ${rel}`);
      cached = { der: cachedDer, ...info, issuerChain: pemChain(asciiText(cachedChain, rel, 'TDX_PCS_MALFORMED'), cachePath.pckCrlChain(c), 'TDX_PCS_MALFORMED') };
      if (this.#fresh(cached.nextUpdate)) return cached;
    }
    const url = this.pckCrlUrl(c);
    const res = await this.#get(url, cached?.nextUpdate);
    const chain = this.#chainHeader(res, PCS_ISSUER_CHAIN_HEADER.pckCrl, url);
    const info = this.#pckCrlLabelled(res.body, c, url);
    if (cached !== undefined && info.thisUpdate.getTime() < cached.thisUpdate.getTime()) throw this.#crlRollback(url, info.thisUpdate, cached.thisUpdate);
    await this.#store.put(cachePath.pckCrlChain(c), new TextEncoder().encode(chain.pem));
    await this.#store.put(rel, res.body);
    return { der: res.body, ...info, issuerChain: chain.ders };
  }

  /**
   * The Intel SGX Root CA CRL (DER), from the cache while current, else from its URL.
   * @throws as {@link PcsClient.tcbInfo}
   */
  async rootCaCrl(): Promise<PcsCrl> {
    const rel = cachePath.rootCaCrl;
    const cachedDer = await this.#store.get(rel);
    let cached: PcsCrl | undefined;
    if (cachedDer !== undefined) {
      cached = { der: cachedDer, ...rootCrlTimes(cachedDer, `cached ${rel}`, 'TDX_PCS_MALFORMED') };
      if (this.#fresh(cached.nextUpdate)) return cached;
    }
    const url = this.#rootCrlUrl;
    const res = await this.#get(url, cached?.nextUpdate);
    const times = rootCrlTimes(res.body, url, 'TDX_PCS_MALFORMED');
    if (cached !== undefined && times.thisUpdate.getTime() < cached.thisUpdate.getTime()) throw this.#crlRollback(url, times.thisUpdate, cached.thisUpdate);
    await this.#store.put(rel, res.body);
    return { der: res.body, ...times };
  }

  /**
   * Everything {@link verifyTdxCollateral} needs for a platform of `fmspc` whose PCK is issued
   * by the `ca` PCK CA. Fails as a whole when any item cannot be had.
   * @throws as {@link PcsClient.tcbInfo}
   */
  async collateral(fmspc: Uint8Array | string, ca: PckCaType): Promise<TdxCollateral> {
    const tcb = await this.tcbInfo(fmspc);
    const qe = await this.qeIdentity();
    const pck = await this.pckCrl(ca);
    const root = await this.rootCaCrl();
    return {
      tcbInfo: tcb.parsed,
      tcbInfoIssuerChain: tcb.issuerChain,
      qeIdentity: qe.parsed,
      qeIdentityIssuerChain: qe.issuerChain,
      pckCrl: pck.der,
      ...(pck.issuerChain !== undefined ? { pckCrlIssuerChain: pck.issuerChain } : {}),
      rootCaCrl: root.der,
    };
  }

  /**
   * Fills the cache from an offline bundle: a JSON file written by
   * {@link PcsClient.exportBundle} (`"format": "vouch-tdx-collateral"`), a dcap-qvl
   * collateral.json, or a directory with the files of {@link COLLATERAL_FILE_NAMES}. Every
   * entry is parsed and labelled before anything is stored: one bad entry rejects the bundle.
   * An entry older than the cached one is skipped, not rolled back to.
   * @throws MisuseError MISUSE_FILE_UNREADABLE, UnavailableError TDX_PCS_MALFORMED
   */
  async importBundle(path: string): Promise<PcsBundleImportSummary> {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new MisuseError('MISUSE_FILE_UNREADABLE', `bundle ${path} cannot be read`, { field: 'bundle', cause: e });
    }
    const entries = st.isDirectory() ? await this.#bundleDir(path) : await this.#bundleFile(path, st.size);
    const counts = { tcbInfos: 0, qeIdentities: 0, pckCrls: 0, rootCaCrls: 0, olderSkipped: 0 };
    for (const e of entries) {
      if (await this.#olderThanCached(e)) {
        counts.olderSkipped++;
        continue;
      }
      const enc = new TextEncoder();
      if (e.kind === 'tcbInfo') {
        await this.#store.put(cachePath.tcbInfoChain(e.fmspc), enc.encode(e.chainPem));
        await this.#store.put(cachePath.tcbInfo(e.fmspc), e.body);
        counts.tcbInfos++;
      } else if (e.kind === 'qeIdentity') {
        await this.#store.put(cachePath.qeIdentityChain, enc.encode(e.chainPem));
        await this.#store.put(cachePath.qeIdentity, e.body);
        counts.qeIdentities++;
      } else if (e.kind === 'pckCrl') {
        await this.#store.put(cachePath.pckCrlChain(e.ca), enc.encode(e.chainPem));
        await this.#store.put(cachePath.pckCrl(e.ca), e.der);
        counts.pckCrls++;
      } else {
        await this.#store.put(cachePath.rootCaCrl, e.der);
        counts.rootCaCrls++;
      }
    }
    return counts;
  }

  /** Writes every cached entry to `path` as one JSON bundle (atomically). */
  async exportBundle(path: string): Promise<void> {
    const tcbInfos: { fmspc: string; body: string; issuerChain: string }[] = [];
    const qeIdentities: { body: string; issuerChain: string }[] = [];
    const pckCrls: { ca: PckCaType; der: string; issuerChain: string }[] = [];
    const rootCaCrls: { der: string }[] = [];
    const text = (b: Uint8Array, rel: string): string => asciiText(b, rel, 'TDX_PCS_MALFORMED');
    for (const rel of await this.#store.list()) {
      let m: RegExpExecArray | null;
      if ((m = /^tcb\/([0-9a-f]{12})\.json$/.exec(rel)) !== null) {
        const fmspc = m[1] as string;
        const doc = await this.#cachedDoc(rel, cachePath.tcbInfoChain(fmspc), (b, field) => this.#tcbInfoLabelled(b, fmspc, field));
        if (doc !== undefined) tcbInfos.push({ fmspc, body: text(doc.body, rel), issuerChain: derToPem(doc.issuerChain) });
      } else if (rel === cachePath.qeIdentity) {
        const doc = await this.#cachedDoc(rel, cachePath.qeIdentityChain, (b, field) => qeIdentityFromBody(b, field, 'TDX_PCS_MALFORMED'));
        if (doc !== undefined) qeIdentities.push({ body: text(doc.body, rel), issuerChain: derToPem(doc.issuerChain) });
      } else if ((m = /^pckcrl\/(platform|processor)\.der$/.exec(rel)) !== null) {
        const ca = m[1] as PckCaType;
        const der = await this.#store.get(rel);
        const chain = await this.#store.get(cachePath.pckCrlChain(ca));
        if (der === undefined || chain === undefined) continue; // an incomplete entry is not collateral
        this.#pckCrlLabelled(der, ca, rel);
        pckCrls.push({ ca, der: Buffer.from(der).toString('base64'), issuerChain: text(chain, rel) });
      } else if (rel === cachePath.rootCaCrl) {
        const der = await this.#store.get(rel);
        if (der === undefined) continue;
        rootCrlTimes(der, rel, 'TDX_PCS_MALFORMED');
        rootCaCrls.push({ der: Buffer.from(der).toString('base64') });
      }
    }
    const doc = { format: 'vouch-tdx-collateral', version: 1, tcbInfos, qeIdentities, pckCrls, rootCaCrls };
    await writeAtomic(path, new TextEncoder().encode(`${JSON.stringify(doc, null, 1)}\n`));
  }

  // --- internals ------------------------------------------------------------------------------

  #fresh(nextUpdate: Date): boolean {
    return this.#clock().getTime() <= nextUpdate.getTime();
  }

  #asPcs<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (isVouchError(e) && e.code === 'TDX_COLLATERAL_MISLABELLED') throw e;
      if (isVouchError(e) && e.code !== 'TDX_PCS_MALFORMED') throw pcsMalformed(e.message, e.field ?? 'body', e);
      throw e;
    }
  }

  #tcbInfoLabelled(body: Uint8Array, fmspc: string, field: string): TdxTcbInfo {
    const doc = tcbInfoFromBody(body, field, 'TDX_PCS_MALFORMED');
    if (toHex(doc.fmspc) !== fmspc) throw mislabelled(`${field} is the TCB Info of FMSPC ${toHex(doc.fmspc)}, not ${fmspc}`, `${field}.tcbInfo.fmspc`, fmspc, toHex(doc.fmspc));
    return doc;
  }

  #pckCrlLabelled(der: Uint8Array, ca: PckCaType, field: string): { thisUpdate: Date; nextUpdate: Date } {
    const info = crlCa(der, field, 'TDX_PCS_MALFORMED');
    if (info.ca !== ca) throw mislabelled(`${field} is the PCK CRL of the ${info.ca} CA, not the ${ca} CA`, `${field}.issuer`, ca, info.ca);
    return { thisUpdate: info.thisUpdate, nextUpdate: info.nextUpdate };
  }

  async #cachedDoc<T>(rel: string, chainRel: string, parse: (b: Uint8Array, field: string) => T): Promise<PcsDocument<T> | undefined> {
    const body = await this.#store.get(rel);
    const chain = await this.#store.get(chainRel);
    if (body === undefined || chain === undefined) return undefined;
    return { body, parsed: parse(body, `cached ${rel}`), issuerChain: pemChain(asciiText(chain, chainRel, 'TDX_PCS_MALFORMED'), chainRel, 'TDX_PCS_MALFORMED') };
  }

  #rollback(url: string, fresh: TdxTcbInfo | TdxQeIdentity, cached: TdxTcbInfo | TdxQeIdentity): UnavailableError {
    return new UnavailableError('TDX_COLLATERAL_ROLLBACK', `${url} served tcbEvaluationDataNumber ${fresh.tcbEvaluationDataNumber} issued ${fresh.issueDate.toISOString()}, older than the cached ${cached.tcbEvaluationDataNumber} issued ${cached.issueDate.toISOString()}`, {
      field: 'tcbEvaluationDataNumber',
      expected: `>= ${cached.tcbEvaluationDataNumber} (issued >= ${cached.issueDate.toISOString()})`,
      actual: `${fresh.tcbEvaluationDataNumber} (issued ${fresh.issueDate.toISOString()})`,
    });
  }

  #crlRollback(url: string, fresh: Date, cached: Date): UnavailableError {
    return new UnavailableError('TDX_COLLATERAL_ROLLBACK', `${url} served a CRL with thisUpdate ${fresh.toISOString()}, older than the cached ${cached.toISOString()}`, {
      field: 'thisUpdate',
      expected: `>= ${cached.toISOString()}`,
      actual: fresh.toISOString(),
    });
  }

  #chainHeader(res: FetchResponse, name: string, url: string): { pem: string; ders: Uint8Array[] } {
    const raw = headerValue(res.headers, name);
    if (raw === undefined) throw pcsMalformed(`${url} answered without the ${name} header`, name);
    let pem: string;
    try {
      pem = decodeURIComponent(raw);
    } catch (e) {
      throw pcsMalformed(`the ${name} header of ${url} is not percent-encoded text`, name, e);
    }
    return { pem, ders: pemChain(pem, name, 'TDX_PCS_MALFORMED') };
  }

  /** GET through the fetcher, honouring a pending Retry-After; only a 200 body is returned. */
  async #get(url: string, staleSince?: Date): Promise<FetchResponse> {
    const stale = staleSince === undefined ? '' : ` (the cached copy expired at ${staleSince.toISOString()})`;
    if (this.#fetcher === undefined) throw pcsUnavailable(`offline: ${url} is not in the collateral cache${stale}`);
    const now = this.#clock();
    if (this.#retryAt !== undefined) {
      if (now.getTime() < this.#retryAt.getTime()) throw new PcsRateLimitedError(this.#retryAt, url);
      this.#retryAt = undefined;
    }
    let res: FetchResponse;
    try {
      res = await this.#fetcher(url);
    } catch (e) {
      if (isVouchError(e)) throw e;
      throw pcsUnavailable(`Intel PCS request failed: ${url}${stale}`, e);
    }
    if (res.status === 429) {
      // The same Retry-After rule as for AMD KDS (RFC 9110 §10.2.3).
      this.#retryAt = retryAfter(res.headers, now);
      throw new PcsRateLimitedError(this.#retryAt, url);
    }
    if (res.status !== 200) throw pcsUnavailable(`Intel PCS answered HTTP ${res.status}: ${url}${stale}`);
    if (!(res.body instanceof Uint8Array) || res.body.length > MAX_PCS_BODY_BYTES) throw pcsMalformed(`${url} answered a body that is not bytes or exceeds ${MAX_PCS_BODY_BYTES} bytes`, 'body');
    return res;
  }

  async #olderThanCached(e: Entry): Promise<boolean> {
    if (e.kind === 'tcbInfo') {
      const have = await this.#cachedDoc(cachePath.tcbInfo(e.fmspc), cachePath.tcbInfoChain(e.fmspc), (b, field) => this.#tcbInfoLabelled(b, e.fmspc, field));
      return have !== undefined && olderDoc(e.doc, have.parsed);
    }
    if (e.kind === 'qeIdentity') {
      const have = await this.#cachedDoc(cachePath.qeIdentity, cachePath.qeIdentityChain, (b, field) => qeIdentityFromBody(b, field, 'TDX_PCS_MALFORMED'));
      return have !== undefined && olderDoc(e.doc, have.parsed);
    }
    const rel = e.kind === 'pckCrl' ? cachePath.pckCrl(e.ca) : cachePath.rootCaCrl;
    const der = await this.#store.get(rel);
    if (der === undefined) return false;
    const have = e.kind === 'pckCrl' ? this.#pckCrlLabelled(der, e.ca, rel) : rootCrlTimes(der, rel, 'TDX_PCS_MALFORMED');
    return e.thisUpdate.getTime() < have.thisUpdate.getTime();
  }

  #entriesOf(c: TdxCollateral, field: string): Entry[] {
    const out: Entry[] = [];
    const need = <T>(v: T | undefined, what: string): T => {
      if (v === undefined) throw pcsMalformed(`bundle ${field} has ${what} without its companion`, `${field}.${what}`);
      return v;
    };
    if (c.tcbInfo !== undefined) {
      const doc = c.tcbInfo;
      out.push({ kind: 'tcbInfo', fmspc: toHex(doc.fmspc), body: pcsBody(doc), chainPem: derToPem(need(c.tcbInfoIssuerChain, 'tcbInfoIssuerChain')), doc });
    }
    if (c.qeIdentity !== undefined) {
      out.push({ kind: 'qeIdentity', body: pcsBody(c.qeIdentity), chainPem: derToPem(need(c.qeIdentityIssuerChain, 'qeIdentityIssuerChain')), doc: c.qeIdentity });
    }
    if (c.pckCrl !== undefined) {
      const info = crlCa(c.pckCrl, `${field}.pckCrl`, 'TDX_PCS_MALFORMED');
      out.push({ kind: 'pckCrl', ca: info.ca, der: c.pckCrl, chainPem: derToPem(need(c.pckCrlIssuerChain, 'pckCrlIssuerChain')), thisUpdate: info.thisUpdate });
    }
    if (c.rootCaCrl !== undefined) out.push({ kind: 'rootCaCrl', der: c.rootCaCrl, thisUpdate: rootCrlTimes(c.rootCaCrl, `${field}.rootCaCrl`, 'TDX_PCS_MALFORMED').thisUpdate });
    return out;
  }

  async #bundleDir(dir: string): Promise<Entry[]> {
    const names = new Set(Object.values(COLLATERAL_FILE_NAMES));
    const files: { -readonly [K in keyof CollateralFiles]: CollateralFiles[K] } = {};
    for (const rel of await listFiles(dir)) {
      // Only the collateral files of the layout; anything else (a quote, notes) is not read.
      if (!names.has(rel)) continue;
      const key = (Object.keys(COLLATERAL_FILE_NAMES) as (keyof CollateralFiles)[]).find((k) => COLLATERAL_FILE_NAMES[k] === rel) as keyof CollateralFiles;
      const b = await readIfPresent(join(dir, rel), MAX_PCS_BODY_BYTES);
      if (b !== undefined) files[key] = b;
    }
    return this.#entriesOf(collateralFromFiles(files, 'TDX_PCS_MALFORMED'), dir);
  }

  async #bundleFile(file: string, size: number): Promise<Entry[]> {
    if (size > MAX_BUNDLE_BYTES) throw pcsMalformed(`bundle ${file} exceeds ${MAX_BUNDLE_BYTES} bytes`, 'bundle');
    const bytes = new Uint8Array(await readFile(file));
    const root = parseJson(bytes, file, 'TDX_PCS_MALFORMED', MAX_BUNDLE_BYTES);
    if (root.kind === 'object' && !root.members.has('format')) return this.#entriesOf(dcapQvl(bytes, file, 'TDX_PCS_MALFORMED', root), file);
    const f = new Fields('TDX_PCS_MALFORMED', bytes);
    const m = f.object(root, 'bundle', ['format', 'version'], ['tcbInfos', 'qeIdentities', 'pckCrls', 'rootCaCrls']);
    if (f.string(f.get(m, 'format'), 'bundle.format') !== 'vouch-tdx-collateral' || f.int(f.get(m, 'version'), 'bundle.version', 0xffff) !== 1) {
      throw pcsMalformed(`bundle ${file} is not a version 1 vouch-tdx-collateral document`, 'bundle.format');
    }
    const list = (k: string): readonly JsonNode[] => {
      const n = m.get(k);
      return n === undefined ? [] : f.array(n, `bundle.${k}`, 0, 100_000);
    };
    const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
    const out: Entry[] = [];
    list('tcbInfos').forEach((n, i) => {
      const here = `bundle.tcbInfos[${i}]`;
      const e = f.object(n, here, ['fmspc', 'body', 'issuerChain']);
      const fmspc = f.string(f.get(e, 'fmspc'), `${here}.fmspc`).toLowerCase();
      if (!/^[0-9a-f]{12}$/.test(fmspc)) throw pcsMalformed(`${here}.fmspc is not 12 hex digits`, `${here}.fmspc`);
      const body = utf8(f.string(f.get(e, 'body'), `${here}.body`));
      const chainPem = f.string(f.get(e, 'issuerChain'), `${here}.issuerChain`);
      pemChain(chainPem, `${here}.issuerChain`, 'TDX_PCS_MALFORMED');
      out.push({ kind: 'tcbInfo', fmspc, body, chainPem, doc: this.#tcbInfoLabelled(body, fmspc, `${here}.body`) });
    });
    list('qeIdentities').forEach((n, i) => {
      const here = `bundle.qeIdentities[${i}]`;
      const e = f.object(n, here, ['body', 'issuerChain']);
      const body = utf8(f.string(f.get(e, 'body'), `${here}.body`));
      const chainPem = f.string(f.get(e, 'issuerChain'), `${here}.issuerChain`);
      pemChain(chainPem, `${here}.issuerChain`, 'TDX_PCS_MALFORMED');
      out.push({ kind: 'qeIdentity', body, chainPem, doc: qeIdentityFromBody(body, `${here}.body`, 'TDX_PCS_MALFORMED') });
    });
    const b64 = (node: JsonNode, field: string): Uint8Array => {
      const s = f.string(node, field);
      const d = Buffer.from(s, 'base64');
      if (s.length === 0 || d.toString('base64') !== s) throw pcsMalformed(`${field} is not canonical base64`, field);
      return new Uint8Array(d);
    };
    list('pckCrls').forEach((n, i) => {
      const here = `bundle.pckCrls[${i}]`;
      const e = f.object(n, here, ['ca', 'der', 'issuerChain']);
      const ca = f.oneOf(f.get(e, 'ca'), `${here}.ca`, ['platform', 'processor'] as const);
      const der = b64(f.get(e, 'der'), `${here}.der`);
      const chainPem = f.string(f.get(e, 'issuerChain'), `${here}.issuerChain`);
      pemChain(chainPem, `${here}.issuerChain`, 'TDX_PCS_MALFORMED');
      out.push({ kind: 'pckCrl', ca, der, chainPem, thisUpdate: this.#pckCrlLabelled(der, ca, `${here}.der`).thisUpdate });
    });
    list('rootCaCrls').forEach((n, i) => {
      const here = `bundle.rootCaCrls[${i}]`;
      const e = f.object(n, here, ['der']);
      const der = b64(f.get(e, 'der'), `${here}.der`);
      out.push({ kind: 'rootCaCrl', der, thisUpdate: rootCrlTimes(der, `${here}.der`, 'TDX_PCS_MALFORMED').thisUpdate });
    });
    const seen = new Set<string>();
    for (const e of out) {
      const key = e.kind === 'tcbInfo' ? `tcb:${e.fmspc}` : e.kind === 'pckCrl' ? `pckcrl:${e.ca}` : e.kind;
      if (seen.has(key)) throw pcsMalformed(`bundle ${file} lists ${key} twice`, 'bundle');
      seen.add(key);
    }
    return out;
  }
}

/** Options of {@link defaultPcsFetcher}. */
export interface DefaultPcsFetcherOptions {
  /** Per-request timeout, default 10 s. */
  readonly timeoutMs?: number;
}

/** A {@link Fetcher} over the global `fetch` with a timeout and a body size limit; failures are TDX_PCS_UNAVAILABLE / TDX_PCS_MALFORMED. Not used by tests, which inject a fake. */
export function defaultPcsFetcher(options: DefaultPcsFetcherOptions = {}): Fetcher {
  return boundedFetcher({
    service: 'Intel PCS',
    timeoutMs: options.timeoutMs ?? 10_000,
    maxBytes: MAX_PCS_BODY_BYTES,
    unavailable: (message, cause) => pcsUnavailable(message, cause),
    tooLarge: (message) => pcsMalformed(message, 'body'),
  });
}
