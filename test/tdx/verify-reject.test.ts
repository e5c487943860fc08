/**
 * verifyTdxQuote refusals, each with its own code, on synthetic quotes signed like real ones by
 * the committed TEST-ONLY hierarchy (attestation-fixtures/tdx, pinned here explicitly): one-byte
 * flips in the signed region, both signatures, the QE report and its binding; a PCK chain to
 * another root; expired TCB Info; stale CRL; revoked PCK; QE Identity mismatch; an unknown QE
 * vendor. Also: the cache gives the answers of no cache.
 */
import 'reflect-metadata';
import { createHash, sign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { decodeTdxQuote, encodeDcapQuote, type DcapQuote } from '../../src/tdx/abi.js';
import type { TdxCollateral } from '../../src/tdx/collateral.js';
import { INTEL_SGX_ROOT_CA_FINGERPRINT, SGX_OID } from '../../src/tdx/pck.js';
import { TdxQuoteVerifyCache, verifyTdxQuote, type TdxQuoteVerification, type TdxQuoteVerifyOptions } from '../../src/tdx/verify.js';
import {
  FIXTURE,
  TEST_TDX_ROOT_FINGERPRINT,
  certificatePem,
  encodeSgxExtension,
  issueTestQeIdentity,
  issueTestTcbInfo,
  pckChainBytes,
  signSyntheticTdxQuote,
  testTdxCollateral,
  testTdxHierarchy,
} from '../../attestation-fixtures/tdx/index.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const outcome = (r: TdxQuoteVerification, check: string): string | undefined => r.checks.find((c) => c.check === check)?.outcome;
const h = testTdxHierarchy();
const base = (collateral: TdxCollateral = testTdxCollateral(), extra: Partial<TdxQuoteVerifyOptions> = {}): TdxQuoteVerifyOptions => ({ now: NOW, collateral, pinnedRootFingerprints: [TEST_TDX_ROOT_FINGERPRINT], ...extra });

/** The outcome of possibly malformed quote bytes: the decoder's code, or the failure codes. */
function result(bytes: Uint8Array, opts: TdxQuoteVerifyOptions): string[] {
  try {
    return codes(verifyTdxQuote(bytes, opts));
  } catch (e) {
    if (isVouchError(e) && e.category === 'malformed') return [`parse:${e.code}`];
    throw e;
  }
}

function flip(b: Uint8Array, i: number, mask = 0x01): Uint8Array {
  const m = b.slice();
  m[i] = (m[i] as number) ^ mask;
  return m;
}

/** Re-signs a quote (attestation key over the new signed bytes) after `mutate` changed its fields. */
function resign(bytes: Uint8Array, mutate: (q: DcapQuote) => DcapQuote, key: KeyObject = h.attestationPrivateKey): Uint8Array {
  const d = decodeTdxQuote(bytes);
  const changed = mutate({ header: d.header, body: d.body, signatureData: d.signatureData });
  const unsigned = decodeTdxQuote(encodeDcapQuote(changed));
  const signature = new Uint8Array(sign('sha256', unsigned.signedBytes, { key, dsaEncoding: 'ieee-p1363' }));
  return encodeDcapQuote({ ...changed, signatureData: { ...changed.signatureData, signature } });
}

/** Offsets in a v4 quote (header 48, TD report 584, then SIGNATURE_DATA_LEN). */
const SIGNED = 48 + 584;
const SIG = SIGNED + 4;
const AK = SIG + 64;
const QE_REPORT = AK + 64 + 6;
const QE_SIG = QE_REPORT + 384;
const QE_AUTH = QE_SIG + 64 + 2;

describe('synthetic TDX quotes from the TEST-ONLY hierarchy', () => {
  const good = signSyntheticTdxQuote();

  it('a genuine synthetic quote verifies: every check passes, UpToDate', () => {
    const r = verifyTdxQuote(good, base());
    expect(r.failures).toEqual([]);
    expect(r.checks.every((c) => c.outcome === 'pass')).toBe(true);
    expect(r.tcb).toMatchObject({ status: 'UpToDate', advisoryIds: [], fmspc: '00c0ffee0000', tcbEvaluationDataNumber: 17 });
    expect(r.pck?.sgx.fmspc).toEqual(FIXTURE.fmspc);
  });

  it('the layout offsets used below are those of the decoded quote', () => {
    const d = decodeTdxQuote(good);
    expect(d.signedBytes.length).toBe(SIGNED);
    expect(good.subarray(SIG, SIG + 64)).toEqual(d.signatureData.signature);
    expect(good.subarray(AK, AK + 64)).toEqual(d.signatureData.attestationKey);
    expect(good.subarray(QE_REPORT, QE_REPORT + 384)).toEqual(d.qeReportBytes);
    expect(good.subarray(QE_SIG, QE_SIG + 64)).toEqual(d.signatureData.qeReportSignature);
    expect(good.subarray(QE_AUTH, QE_AUTH + 32)).toEqual(d.signatureData.qeAuthData);
  });

  it('every one-byte flip in the signed region (header and TD report) is refused: TDX_QUOTE_SIGNATURE_INVALID, or the decoder refuses it', () => {
    const cache = new TdxQuoteVerifyCache();
    const seen = new Set<string>();
    for (let i = 0; i < SIGNED; i++) {
      const got = result(flip(good, i), base(testTdxCollateral(), { cache }));
      expect(got.includes('TDX_QUOTE_SIGNATURE_INVALID') || got.every((c) => c.startsWith('parse:')), `byte ${i}: ${got.join(',')}`).toBe(true);
      expect(got.length, `byte ${i}`).toBeGreaterThan(0);
      for (const c of got) seen.add(c);
    }
    expect(seen.has('TDX_QUOTE_SIGNATURE_INVALID')).toBe(true);
    // A flip in QE_VENDOR_ID is named too; one in MRSIGNERSEAM or TEE_TCB_SVN also changes the TCB evaluation.
    expect(seen.has('TDX_QE_VENDOR_UNKNOWN')).toBe(true);
    expect(seen.has('TDX_MODULE_MISMATCH')).toBe(true);
  });

  it('each byte of SIGNATURE changed: exactly TDX_QUOTE_SIGNATURE_INVALID', () => {
    const cache = new TdxQuoteVerifyCache();
    const collateral = testTdxCollateral();
    for (let k = 0; k < 64; k++) expect(result(flip(good, SIG + k, 0x80), base(collateral, { cache })), `byte ${k}`).toEqual(['TDX_QUOTE_SIGNATURE_INVALID']);
  });

  it('each byte of QE_REPORT_SIGNATURE changed: exactly TDX_QE_REPORT_SIGNATURE_INVALID', () => {
    const cache = new TdxQuoteVerifyCache();
    const collateral = testTdxCollateral();
    for (let k = 0; k < 64; k++) expect(result(flip(good, QE_SIG + k, 0x80), base(collateral, { cache })), `byte ${k}`).toEqual(['TDX_QE_REPORT_SIGNATURE_INVALID']);
  });

  it('every one-byte flip in the QE report: TDX_QE_REPORT_SIGNATURE_INVALID (or the decoder refuses it), never the quote signature', () => {
    const cache = new TdxQuoteVerifyCache();
    const collateral = testTdxCollateral();
    for (let k = 0; k < 384; k++) {
      const got = result(flip(good, QE_REPORT + k), base(collateral, { cache }));
      expect(got.includes('TDX_QE_REPORT_SIGNATURE_INVALID') || got.every((c) => c === 'parse:PARSE_RESERVED_NONZERO'), `byte ${k}: ${got.join(',')}`).toBe(true);
      expect(got).not.toContain('TDX_QUOTE_SIGNATURE_INVALID');
    }
  });

  it('the attestation key changed: the quote signature fails and the QE report no longer binds it', () => {
    const got = result(flip(good, AK + 5), base());
    expect(got).toContain('TDX_QUOTE_SIGNATURE_INVALID');
    expect(got).toContain('TDX_QE_REPORT_DATA_MISMATCH');
  });

  it('each byte of the QE authentication data changed: exactly TDX_QE_REPORT_DATA_MISMATCH', () => {
    for (let k = 0; k < 32; k++) expect(result(flip(good, QE_AUTH + k), base()), `byte ${k}`).toEqual(['TDX_QE_REPORT_DATA_MISMATCH']);
  });

  it('a QE report signed by the PCK whose REPORTDATA is not SHA-256(key ‖ auth data) ‖ zeros: TDX_QE_REPORT_DATA_MISMATCH with expected and actual', () => {
    const q = signSyntheticTdxQuote({ qeReportData: new Uint8Array(64).fill(7) });
    const r = verifyTdxQuote(q, base());
    expect(codes(r)).toEqual(['TDX_QE_REPORT_DATA_MISMATCH']);
    expect(r.failures[0]).toMatchObject({ field: 'QE_REPORT.REPORTDATA', actual: '07'.repeat(64) });
    expect(r.failures[0]?.expected).toMatch(/^[0-9a-f]{64}0{64}$/);
  });

  it('another attestation key, certified by no QE report: the QE report data does not bind it', () => {
    const d = decodeTdxQuote(good);
    const other = webcrypto.getRandomValues(new Uint8Array(32));
    const q = signSyntheticTdxQuote({ qeReportData: Uint8Array.from([...createHash('sha256').update(other).digest(), ...new Uint8Array(32)]) });
    expect(codes(verifyTdxQuote(q, base()))).toEqual(['TDX_QE_REPORT_DATA_MISMATCH']);
    expect(d.signatureData.qeReport.reportData.subarray(32).every((b) => b === 0)).toBe(true);
  });

  it('a quote from a QE of another vendor (re-signed): TDX_QE_VENDOR_UNKNOWN only', () => {
    const q = resign(good, (d) => ({ ...d, header: { ...d.header, qeVendorId: new Uint8Array(16).fill(0x42) } }));
    const r = verifyTdxQuote(q, base());
    expect(codes(r)).toEqual(['TDX_QE_VENDOR_UNKNOWN']);
    expect(r.failures[0]).toMatchObject({ field: 'DCAP_QUOTE.HEADER.QE_VENDOR_ID', expected: '939a7233f79c4ca9940a0db3957f0607', actual: '42'.repeat(16) });
  });

  it('an attestation key that is not a P-256 point: TDX_QUOTE_SIGNATURE_INVALID at ATTESTATION_KEY', () => {
    const q = resign(good, (d) => ({ ...d, signatureData: { ...d.signatureData, attestationKey: new Uint8Array(64).fill(1) } }));
    const r = verifyTdxQuote(q, base());
    expect(r.failures.find((f) => f.code === 'TDX_QUOTE_SIGNATURE_INVALID')?.field).toBe('DCAP_QUOTE.SIGNATURE_DATA.ATTESTATION_KEY');
  });

  it('the TEST-ONLY root under the default pins (Intel only): TDX_ROOT_NOT_PINNED for the PCK chain and every collateral chain', () => {
    const r = verifyTdxQuote(good, { now: NOW, collateral: testTdxCollateral() });
    expect(new Set(codes(r))).toEqual(new Set(['TDX_ROOT_NOT_PINNED']));
    expect(r.failures.map((f) => f.field)).toEqual(['pckChain[2]', 'tcbInfoIssuerChain[1]', 'qeIdentityIssuerChain[1]', 'pckCrlIssuerChain[1]']);
    expect(r.failures[0]?.expected).toBe(INTEL_SGX_ROOT_CA_FINGERPRINT);
  });

  it('an expired TCB Info (signed, nextUpdate passed): exactly TDX_TCB_INFO_EXPIRED', () => {
    const tcbInfo = issueTestTcbInfo({ issueDate: new Date('2025-01-01T00:00:00Z'), nextUpdate: new Date('2025-02-01T00:00:00Z') });
    const r = verifyTdxQuote(good, base(testTdxCollateral({ tcbInfo })));
    expect(codes(r)).toEqual(['TDX_TCB_INFO_EXPIRED']);
    expect(r.failures[0]).toMatchObject({ field: 'tcbInfo.nextUpdate', actual: NOW.toISOString() });
  });

  it('a revoked PCK (a PCK CRL listing the leaf): exactly TDX_PCK_REVOKED', () => {
    const r = verifyTdxQuote(good, base(testTdxCollateral({ pckCrl: h.pckCrlRevokingPck })));
    expect(codes(r)).toEqual(['TDX_PCK_REVOKED']);
    expect(r.failures[0]).toMatchObject({ field: 'pckChain[0].tbsCertificate.serialNumber' });
    expect(outcome(r, 'pck.pckCrl')).toBe('fail');
  });

  it('a QE Identity for another quoting enclave (MRSIGNER): exactly TDX_QE_IDENTITY_MISMATCH', () => {
    const qeIdentity = issueTestQeIdentity({ mrSigner: new Uint8Array(32).fill(0xab) });
    const r = verifyTdxQuote(good, base(testTdxCollateral({ qeIdentity })));
    expect(codes(r)).toEqual(['TDX_QE_IDENTITY_MISMATCH']);
    expect(r.failures[0]).toMatchObject({ field: 'QE_REPORT.MRSIGNER', expected: 'ab'.repeat(32) });
    expect(outcome(r, 'tcb.qeIdentity')).toBe('fail');
  });

  it('a platform at an OutOfDate TCB level: verified (the status is for the policy), with its advisory', () => {
    const q = signSyntheticTdxQuote({ td: { teeTcbSvn: Uint8Array.of(3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) } });
    const r = verifyTdxQuote(q, base());
    expect(r.ok).toBe(true);
    expect(r.tcb).toMatchObject({ status: 'OutOfDate', advisoryIds: [FIXTURE.advisory] });
  });

  it('a missing CRL with allowMissingCrl: verified, the allowance recorded once', () => {
    const { pckCrl: _p, rootCaCrl: _r, ...rest } = testTdxCollateral();
    const r = verifyTdxQuote(good, base(rest, { allowMissingCrl: true }));
    expect(r.failures).toEqual([]);
    expect(r.allowancesUsed).toEqual(['missingRootCaCrl', 'missingPckCrl']);
    expect(codes(verifyTdxQuote(good, base(rest)))).toEqual(['TDX_CRL_MISSING', 'TDX_CRL_MISSING']);
  });

  it('misuse: a bad time, pin list or collateral', () => {
    expect(() => verifyTdxQuote(good, { ...base(), now: new Date(Number.NaN) })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => verifyTdxQuote(good, { ...base(), pinnedRootFingerprints: ['xyz'] })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => verifyTdxQuote(good, { now: NOW, collateral: null as unknown as TdxCollateral })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });
});

// ---------------------------------------------------------------------------------------------
// CRLs and chains that need keys made here

async function subtle(key: KeyObject): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

async function pckCrl(thisUpdate: Date, nextUpdate: Date, revoked: readonly string[] = []): Promise<Uint8Array> {
  const c = await x509.X509CrlGenerator.create({
    issuer: FIXTURE.names.pckPlatformCa,
    thisUpdate,
    nextUpdate,
    entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate, reason: x509.X509CrlReason.keyCompromise })),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey: await subtle(h.pckPlatformCaPrivateKey),
  });
  return new Uint8Array(c.rawData);
}

describe('generated CRLs and a chain to another root', () => {
  const good = signSyntheticTdxQuote();
  let otherChainQuote: Uint8Array;

  beforeAll(async () => {
    // Another root with the same names as the TEST-ONLY hierarchy, its own PCK CA and PCK.
    const gen = async () => (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const [rootKeys, caKeys, pckKeys] = [await gen(), await gen(), await gen()];
    const alg = { name: 'ECDSA', hash: 'SHA-256' } as const;
    const common = { notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z'), signingAlgorithm: alg };
    const caExt = (pathLength: number) => [new x509.BasicConstraintsExtension(true, pathLength, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)];
    const root = await x509.X509CertificateGenerator.create({ ...common, serialNumber: '01', subject: FIXTURE.names.root, issuer: FIXTURE.names.root, publicKey: rootKeys.publicKey, signingKey: rootKeys.privateKey, extensions: caExt(1) });
    const ca = await x509.X509CertificateGenerator.create({ ...common, serialNumber: '02', subject: FIXTURE.names.pckPlatformCa, issuer: FIXTURE.names.root, publicKey: caKeys.publicKey, signingKey: rootKeys.privateKey, extensions: caExt(0) });
    const sgx = encodeSgxExtension({ ppid: FIXTURE.ppid, tcb: FIXTURE.sgxTcb, pceId: FIXTURE.pceId, fmspc: FIXTURE.fmspc, sgxType: 1, platform: { instanceId: FIXTURE.platformInstanceId, dynamicPlatform: true, cachedKeys: true, smtEnabled: true } });
    const pck = await x509.X509CertificateGenerator.create({
      ...common,
      serialNumber: '1001',
      subject: FIXTURE.names.pck,
      issuer: FIXTURE.names.pckPlatformCa,
      publicKey: pckKeys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.Extension(SGX_OID.extension, false, sgx)],
    });
    const pem = [pck, ca, root].map((c) => certificatePem(new Uint8Array(c.rawData))).join('');
    const { createPrivateKey } = await import('node:crypto');
    const pckKey = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pckKeys.privateKey)), format: 'der', type: 'pkcs8' });
    otherChainQuote = signSyntheticTdxQuote({ pckKey, pckCertChain: pckChainBytes(pem) });
  });

  it('a stale PCK CRL (past its nextUpdate): TDX_CRL_STALE, reported once', async () => {
    const stale = await pckCrl(new Date('2025-01-01T00:00:00Z'), new Date('2025-06-01T00:00:00Z'));
    const r = verifyTdxQuote(good, base(testTdxCollateral({ pckCrl: stale })));
    expect(codes(r)).toEqual(['TDX_CRL_STALE']);
    expect(r.failures[0]).toMatchObject({ field: 'pckCrl.tbsCertList.nextUpdate', expected: '2025-01-01T00:00:00.000Z..2025-06-01T00:00:00.000Z' });
    expect(outcome(r, 'pck.pckCrl')).toBe('fail');
    expect(outcome(r, 'pckCrl')).toBe('fail');
  });

  it('a current generated PCK CRL revoking the leaf: TDX_PCK_REVOKED; revoking another serial: verified', async () => {
    const window = [new Date('2025-12-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z')] as const;
    expect(codes(verifyTdxQuote(good, base(testTdxCollateral({ pckCrl: await pckCrl(...window, ['0abc', FIXTURE.serials.pck]) }))))).toEqual(['TDX_PCK_REVOKED']);
    expect(verifyTdxQuote(good, base(testTdxCollateral({ pckCrl: await pckCrl(...window, ['0abc']) }))).ok).toBe(true);
  });

  it('a PCK chain to another root of the same names: TDX_ROOT_NOT_PINNED on pckChain[2], and the real CRLs do not verify under it', () => {
    const r = verifyTdxQuote(otherChainQuote, base());
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatchObject({ code: 'TDX_ROOT_NOT_PINNED', field: 'pckChain[2]', expected: TEST_TDX_ROOT_FINGERPRINT });
    expect(codes(r)).toContain('TDX_CRL_INVALID');
    // Its own signatures are consistent: the refusal is the trust anchor, not the bytes.
    expect(outcome(r, 'quote.SIGNATURE')).toBe('pass');
    expect(outcome(r, 'qeReport.SIGNATURE')).toBe('pass');
    expect(outcome(r, 'pck.chain.signatures')).toBe('pass');
  });
});

describe('the cache', () => {
  it('gives the answers of no cache on every variant, in any order, and keeps no failure', async () => {
    const cache = new TdxQuoteVerifyCache();
    const good = signSyntheticTdxQuote();
    const variants: [Uint8Array, TdxCollateral][] = [
      [good, testTdxCollateral()],
      [good, testTdxCollateral({ pckCrl: h.pckCrlRevokingPck })],
      [flip(good, SIG + 3), testTdxCollateral()],
      [flip(good, QE_SIG + 3), testTdxCollateral()],
      [good, testTdxCollateral({ qeIdentity: issueTestQeIdentity({ isvProdId: 9 }) })],
    ];
    const shared = variants[0]?.[1] as TdxCollateral;
    for (let round = 0; round < 3; round++) {
      for (const [q, c] of [...variants, [good, shared] as [Uint8Array, TdxCollateral]]) {
        for (const now of [NOW, new Date('2050-01-01T00:00:00Z')]) {
          const cold = verifyTdxQuote(q, base(c, { now }));
          const warm = verifyTdxQuote(q, base(c, { now, cache }));
          expect(warm.checks).toEqual(cold.checks);
          expect(warm.failures).toEqual(cold.failures);
          expect(warm.tcb.status).toEqual(cold.tcb.status);
        }
      }
    }
  });

  it('imports each attestation key once', () => {
    const cache = new TdxQuoteVerifyCache();
    const d = decodeTdxQuote(signSyntheticTdxQuote());
    const k = cache.attestationKey(d.signatureData.attestationKey);
    expect(cache.attestationKey(d.signatureData.attestationKey)).toBe(k);
    expect(typeof cache.attestationKey(new Uint8Array(64))).toBe('string');
  });
});
