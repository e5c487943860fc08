/**
 * TEST-ONLY loaders of the committed fake Intel SGX/TDX hierarchy (./README.md), and the signer
 * of synthetic TDX quotes. These keys, certificates and collateral are never trusted by default:
 * the test-only root is trusted only where a test passes {@link TEST_TDX_ROOT_FINGERPRINT} as a
 * pinned root explicitly. Nothing in src/ may import this module.
 */
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, sign, webcrypto, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { DCAP_ATTESTATION_KEY_ECDSA_P256, DCAP_TEE_TYPE, INTEL_QE_VENDOR_ID, decodeDcapQuote, encodeDcapQuote, type DcapQuote, type SgxReportBody, type TdReport10 } from '../../src/tdx/abi.js';
import { COLLATERAL_FILE_NAMES, parseCollateralFiles, type CollateralFiles, type TdxCollateral } from '../../src/tdx/collateral.js';
import {
  FIXTURE,
  TEST_TDX_DIR,
  derToPem,
  fixtureSgxExtension,
  signedPcsBody,
  tdQeIdentityText,
  tdxTcbInfoText,
  type FixtureSgxTcb,
  type QeIdentityOptions,
  type TcbInfoOptions,
} from './shared.js';

export { FIXTURE, derToPem, encodeSgxExtension, fixtureTcbLevels, pcsTime, tdQeIdentityText, tdxTcbInfoText, type FixtureSgxTcb, type FixtureTcbLevel, type QeIdentityOptions, type SgxExtensionFields, type TcbInfoOptions } from './shared.js';

function file(name: string): Buffer {
  return readFileSync(join(TEST_TDX_DIR, name));
}

function pemToDer(pem: string | Buffer): Uint8Array {
  return new Uint8Array(new x509.X509Certificate(pem.toString()).rawData);
}

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** SHA-256 of the DER of the TEST-ONLY root: pass it as `pinnedRootFingerprints` in tests, never elsewhere. */
export const TEST_TDX_ROOT_FINGERPRINT: string = sha256Hex(pemToDer(file('root.pem')));

/** The committed TEST-ONLY hierarchy. */
export interface TestTdxHierarchy {
  /** DER of the self-signed TEST-ONLY "Intel SGX Root CA". */
  readonly root: Uint8Array;
  readonly rootPrivateKey: KeyObject;
  /** DER of the TEST-ONLY "Intel SGX PCK Platform CA", signed by the root. */
  readonly pckPlatformCa: Uint8Array;
  readonly pckPlatformCaPrivateKey: KeyObject;
  /** DER of the TEST-ONLY PCK leaf, with the SGX extension. */
  readonly pck: Uint8Array;
  /** The PCK leaf's P-256 key: signs QE reports. */
  readonly pckPrivateKey: KeyObject;
  /** DER of the TEST-ONLY "Intel SGX TCB Signing" certificate, signed by the root. */
  readonly tcbSigning: Uint8Array;
  /** Signs TCB Info and QE Identity. */
  readonly tcbSigningPrivateKey: KeyObject;
  /** The quoting enclave's attestation key (P-256): signs quotes. */
  readonly attestationPrivateKey: KeyObject;
  /** PCK leaf, PCK CA, root, PEM: certification data type 5 of a quote (without the NUL). */
  readonly pckChainPem: string;
  /** A PCK CRL (DER) signed by the PCK CA, revoking the PCK leaf (serial {@link FIXTURE}.serials.pck). */
  readonly pckCrlRevokingPck: Uint8Array;
  /** {@link TEST_TDX_ROOT_FINGERPRINT}. */
  readonly rootFingerprint: string;
  /** The collateral directory (src/tdx/collateral.ts COLLATERAL_FILE_NAMES layout). */
  readonly collateralDir: string;
}

/** Loads the committed TEST-ONLY hierarchy (synchronous; a few small files). */
export function testTdxHierarchy(): TestTdxHierarchy {
  return {
    root: pemToDer(file('root.pem')),
    rootPrivateKey: createPrivateKey(file('root.key.pem')),
    pckPlatformCa: pemToDer(file('pck-platform-ca.pem')),
    pckPlatformCaPrivateKey: createPrivateKey(file('pck-platform-ca.key.pem')),
    pck: pemToDer(file('pck.pem')),
    pckPrivateKey: createPrivateKey(file('pck.key.pem')),
    tcbSigning: pemToDer(file('tcb-signing.pem')),
    tcbSigningPrivateKey: createPrivateKey(file('tcb-signing.key.pem')),
    attestationPrivateKey: createPrivateKey(file('attestation.key.pem')),
    pckChainPem: file('pck_chain.pem').toString('utf8'),
    pckCrlRevokingPck: new Uint8Array(file('pck-crl-revoking-pck.der')),
    rootFingerprint: TEST_TDX_ROOT_FINGERPRINT,
    collateralDir: join(TEST_TDX_DIR, 'collateral'),
  };
}

/** The committed collateral files, as bytes. */
export function testTdxCollateralFiles(): Required<CollateralFiles> {
  const out = {} as { -readonly [K in keyof CollateralFiles]-?: Uint8Array };
  for (const [k, name] of Object.entries(COLLATERAL_FILE_NAMES) as [keyof CollateralFiles, string][]) out[k] = new Uint8Array(file(join('collateral', name)));
  return out;
}

/** Options of {@link testTdxCollateral}: replace single items (e.g. an expired TCB Info). */
export interface TestTdxCollateralOptions {
  /** A PCS TCB Info body (e.g. from {@link issueTestTcbInfo}). */
  readonly tcbInfo?: Uint8Array;
  /** A PCS QE Identity body (e.g. from {@link issueTestQeIdentity}). */
  readonly qeIdentity?: Uint8Array;
  /** A PCK CRL (DER), e.g. the hierarchy's `pckCrlRevokingPck`. */
  readonly pckCrl?: Uint8Array;
  readonly rootCaCrl?: Uint8Array;
}

/** The committed collateral, normalized (src/tdx/collateral.ts), with items replaced as asked. */
export function testTdxCollateral(opts: TestTdxCollateralOptions = {}): TdxCollateral {
  return parseCollateralFiles({ ...testTdxCollateralFiles(), ...opts });
}

/** A TEST-ONLY TDX TCB Info v3 PCS body, signed by the committed TCB Signing key (e.g. an expired one). */
export function issueTestTcbInfo(opts: TcbInfoOptions = {}, key: KeyObject = createPrivateKey(file('tcb-signing.key.pem'))): Uint8Array {
  return signedPcsBody('tcbInfo', tdxTcbInfoText(opts), key);
}

/** A TEST-ONLY TD QE Identity v2 PCS body, signed by the committed TCB Signing key. */
export function issueTestQeIdentity(opts: QeIdentityOptions = {}, key: KeyObject = createPrivateKey(file('tcb-signing.key.pem'))): Uint8Array {
  return signedPcsBody('enclaveIdentity', tdQeIdentityText(opts), key);
}

/** Options of {@link issueTestPck}. */
export interface IssueTestPckOptions {
  readonly tcb?: FixtureSgxTcb;
  readonly serial?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Extensions instead of the SGX extension of the fixture (e.g. a malformed one). */
  readonly sgxExtension?: x509.Extension;
}

async function subtleKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

/** Issues a further TEST-ONLY PCK leaf under the committed PCK Platform CA, with a fresh P-256 key. */
export async function issueTestPck(opts: IssueTestPckOptions = {}): Promise<{ der: Uint8Array; privateKey: KeyObject }> {
  const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? '2002',
    subject: FIXTURE.names.pck,
    issuer: FIXTURE.names.pckPlatformCa,
    notBefore: opts.notBefore ?? FIXTURE.pckNotBefore,
    notAfter: opts.notAfter ?? FIXTURE.pckNotAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: pair.publicKey,
    signingKey: await subtleKey(createPrivateKey(file('pck-platform-ca.key.pem'))),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
      opts.sgxExtension ?? fixtureSgxExtension(opts.tcb ?? FIXTURE.sgxTcb),
    ],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
  return { der: new Uint8Array(cert.rawData), privateKey: createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }) };
}

// ---------------------------------------------------------------------------------------------
// Synthetic quotes

/** TDATTRIBUTES of the fixture TD: SEPT_VE_DISABLE (bit 28) only, as a production TD. */
export const FIXTURE_TD_ATTRIBUTES = Uint8Array.of(0, 0, 0, 0x10, 0, 0, 0, 0);
/** TDATTRIBUTES with DEBUG (bit 0) set too: a debug TD. */
export const FIXTURE_TD_ATTRIBUTES_DEBUG = Uint8Array.of(1, 0, 0, 0x10, 0, 0, 0, 0);
/** MRTD of the fixture TD. */
export const FIXTURE_MRTD = new Uint8Array(createHash('sha384').update('vouch TEST-ONLY MRTD').digest());

/** The TD report of a synthetic quote from the fixture platform, with `over` applied. */
export function syntheticTdReport(over: Partial<TdReport10> = {}): TdReport10 {
  return {
    teeTcbSvn: FIXTURE.module.teeTcbSvn,
    mrSeam: new Uint8Array(createHash('sha384').update('vouch TEST-ONLY MRSEAM').digest()),
    mrSignerSeam: FIXTURE.module.mrSigner,
    seamAttributes: FIXTURE.module.attributes,
    tdAttributes: FIXTURE_TD_ATTRIBUTES,
    // x87, SSE, AVX, AVX-512 state, PKRU (0x602e7), as a typical TD's XFAM.
    xfam: Uint8Array.of(0xe7, 0x02, 0x06, 0, 0, 0, 0, 0),
    mrTd: FIXTURE_MRTD,
    mrConfigId: new Uint8Array(48),
    mrOwner: new Uint8Array(48),
    mrOwnerConfig: new Uint8Array(48),
    rtmrs: [new Uint8Array(48), new Uint8Array(48), new Uint8Array(48), new Uint8Array(48)],
    reportData: new Uint8Array(64),
    ...over,
  };
}

/** The QE report of the fixture quoting enclave (REPORTDATA is filled in by the signer). */
export function syntheticQeReport(over: Partial<SgxReportBody> = {}): SgxReportBody {
  return {
    cpuSvn: FIXTURE.sgxTcb.cpuSvn,
    miscSelect: FIXTURE.qe.miscSelect,
    isvExtProdId: new Uint8Array(16),
    attributes: FIXTURE.qe.attributes,
    mrEnclave: FIXTURE.qe.mrEnclave,
    mrSigner: FIXTURE.qe.mrSigner,
    configId: new Uint8Array(64),
    isvProdId: FIXTURE.qe.isvProdId,
    isvSvn: FIXTURE.qe.isvSvn,
    configSvn: 0,
    isvFamilyId: new Uint8Array(16),
    reportData: new Uint8Array(64),
    ...over,
  };
}

/** What {@link signSyntheticTdxQuote} takes: TD report fields, and what to sign with. */
export interface SyntheticTdxQuoteFields {
  /** TD report fields (defaults: {@link syntheticTdReport}). */
  readonly td?: Partial<TdReport10>;
  /** QE report fields (defaults: {@link syntheticQeReport}); REPORTDATA is always computed unless `qeReportData` is given. */
  readonly qe?: Partial<Omit<SgxReportBody, 'reportData'>>;
  /** A QE REPORTDATA to use instead of SHA-256(attestation key ‖ QE auth data) ‖ zeros (a broken binding). */
  readonly qeReportData?: Uint8Array;
  /** QE authentication data (default 32 bytes 0x00..0x1f, as Intel's QE). */
  readonly qeAuthData?: Uint8Array;
  /** The attestation key (P-256; default the committed one). */
  readonly attestationKey?: KeyObject;
  /** The PCK leaf key that signs the QE report (default the committed PCK's). */
  readonly pckKey?: KeyObject;
  /** The certification data type 5 bytes (default: the committed chain PEM and a NUL). */
  readonly pckCertChain?: Uint8Array;
  /** Header USER_DATA (20 bytes; default the QE id pattern). */
  readonly userData?: Uint8Array;
}

/** The raw P-256 public key x ‖ y (64 bytes) of `key`, as a quote carries its attestation key. */
export function rawP256PublicKey(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new TypeError('not a P-256 key');
  return Uint8Array.from(Buffer.concat([Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]));
}

/** PCK chain PEM bytes as the QE writes them: leaf, CA, root, then a NUL (a C string). */
export function pckChainBytes(pem: string): Uint8Array {
  return Uint8Array.from(Buffer.concat([Buffer.from(pem, 'latin1'), Buffer.of(0)]));
}

/**
 * A synthetic TDX quote v4 signed like a real one, built with the abi encoder:
 * 1. QE report REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes;
 * 2. the QE report (384 bytes exactly as encoded) signed by the PCK leaf key (ECDSA P-256, r ‖ s);
 * 3. header ‖ TD report (the quote's signed bytes) signed by the attestation key;
 * 4. certification data type 6 carrying the QE report, its signature, the QE auth data and
 *    certification data type 5 (the PCK chain PEM).
 * Signatures are placed into an encoding whose sizes are already final, so the signed bytes are
 * exactly those of the returned quote.
 */
export function signSyntheticTdxQuote(fields: SyntheticTdxQuoteFields = {}, h: TestTdxHierarchy = testTdxHierarchy()): Uint8Array {
  const attestationKey = fields.attestationKey ?? h.attestationPrivateKey;
  const ak = rawP256PublicKey(attestationKey);
  const qeAuthData = fields.qeAuthData ?? Uint8Array.from({ length: 32 }, (_, i) => i);
  const qeReportData = fields.qeReportData ?? Uint8Array.from(Buffer.concat([createHash('sha256').update(ak).update(qeAuthData).digest(), Buffer.alloc(32)]));
  const draft: DcapQuote = {
    header: {
      version: 4,
      attestationKeyType: DCAP_ATTESTATION_KEY_ECDSA_P256,
      teeType: DCAP_TEE_TYPE.tdx,
      qeVendorId: Uint8Array.from(Buffer.from(INTEL_QE_VENDOR_ID, 'hex')),
      userData: fields.userData ?? new Uint8Array(createHash('sha256').update('vouch TEST-ONLY QE id').digest()).subarray(0, 20),
    },
    body: { kind: 'td10', report: syntheticTdReport(fields.td) },
    signatureData: {
      signature: new Uint8Array(64),
      attestationKey: ak,
      qeReport: syntheticQeReport({ ...fields.qe, reportData: qeReportData }),
      qeReportSignature: new Uint8Array(64),
      qeAuthData,
      pckCertChain: fields.pckCertChain ?? pckChainBytes(h.pckChainPem),
    },
  };
  const unsigned = decodeDcapQuote(encodeDcapQuote(draft));
  const p1363 = (data: Uint8Array, key: KeyObject): Uint8Array => new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
  return encodeDcapQuote({
    ...draft,
    signatureData: {
      ...draft.signatureData,
      signature: p1363(unsigned.signedBytes, attestationKey),
      qeReportSignature: p1363(unsigned.qeReportBytes, fields.pckKey ?? h.pckPrivateKey),
    },
  });
}

/** PEM of a DER certificate (for building other chains in tests). */
export function certificatePem(der: Uint8Array): string {
  return derToPem(der, 'CERTIFICATE');
}
