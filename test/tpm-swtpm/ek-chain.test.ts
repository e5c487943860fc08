/**
 * EK certificates read from the TPM's NV chain to the swtpm local CA (root and issuer as trust
 * anchors), at the current time, and certify exactly the keys the TPM derives from the TCG EK
 * templates.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, type EkCertificate as NvEkCertificate } from '../../native/index.js';
import {
  ekMatchesPublic,
  parseEkCertificate,
  trustStoreFromCerts,
  verifyEkChain,
  type EkCertificate,
  type EkTrustStore,
} from '../../src/tpm/ek/index.js';
import type { EkKind } from '../../src/tpm/templates.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

let sw: TestSwtpm;
let tpm: Tpm;
let nvCerts: NvEkCertificate[];
let root: EkCertificate;
let issuer: EkCertificate;

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
  nvCerts = tpm.readEkCertificates();
  root = parseEkCertificate(await readFile(sw.rootCaPem));
  issuer = parseEkCertificate(await readFile(sw.issuerCertPem));
});

afterAll(async () => {
  tpm?.close();
  await sw?.dispose();
});

function leaf(kind: 'rsa2048' | 'ecc-p384'): EkCertificate {
  const nv = nvCerts.find((c) => c.kind === kind);
  expect(nv, `an EK certificate of kind ${kind} in NV`).toBeDefined();
  return parseEkCertificate((nv as NvEkCertificate).der);
}

/** The public area of the EK of `kind`, derived by the TPM from its template and flushed again. */
function ekPublic(kind: EkKind): ReturnType<Tpm['createEk']>['public'] {
  const ek = tpm.createEk(kind);
  try {
    return ek.public;
  } finally {
    tpm.flush(ek);
  }
}

function trust(): EkTrustStore {
  return trustStoreFromCerts([root, issuer]);
}

describe('EK certificates of swtpm', () => {
  it('NV holds the RSA-2048 (0x01c00002) and the ECC P-384 (0x01c00016) EK certificates', () => {
    expect(nvCerts.map((c) => [c.index, c.kind])).toEqual([
      [0x01c00002, 'rsa2048'],
      [0x01c00016, 'ecc-p384'],
    ]);
    expect(root.selfIssued).toBe(true);
    expect(issuer.issuerNameKey).toBe(root.subjectNameKey);
  });

  for (const kind of ['rsa2048', 'ecc-p384'] as const) {
    it(`the ${kind} certificate parses and chains to the local CA root through its issuer, now`, () => {
      const cert = leaf(kind);
      expect(cert.issuerNameKey).toBe(issuer.subjectNameKey);
      expect(cert.basicConstraints?.ca ?? false).toBe(false);
      const r = verifyEkChain(cert, { trust: trust(), now: new Date() });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.anchored).toBe(true);
      expect(r.chain.map((c) => c.fingerprint)).toEqual([cert.fingerprint, issuer.fingerprint, root.fingerprint]);
    });
  }

  it('without the issuer in the trust store the chain fails, and the issuer as an untrusted intermediate completes it', () => {
    const cert = leaf('rsa2048');
    const rootOnly = trustStoreFromCerts([root]);
    const broken = verifyEkChain(cert, { trust: rootOnly, now: new Date() });
    expect(broken.ok).toBe(false);
    expect(broken.failures.map((f) => f.code)).toContain('EK_CHAIN_NO_ISSUER');
    const viaAgent = verifyEkChain(cert, { trust: rootOnly, intermediates: [issuer], now: new Date() });
    expect(viaAgent.failures).toEqual([]);
    expect(viaAgent.chain.map((c) => c.fingerprint)).toEqual([cert.fingerprint, issuer.fingerprint, root.fingerprint]);
  });

  it('the chain is rejected before the certificates were issued', () => {
    const cert = leaf('ecc-p384');
    const before = new Date(cert.notBefore.getTime() - 24 * 3600 * 1000);
    const r = verifyEkChain(cert, { trust: trust(), now: before });
    expect(r.ok).toBe(false);
    expect(r.failures.map((f) => f.code)).toContain('EK_CHAIN_EXPIRED');
  });

  it("the RSA certificate certifies createEk('rsa2048') and the P-384 certificate createEk('ecc-p384')", () => {
    const rsa = ekPublic('rsa2048');
    const p384 = ekPublic('ecc-p384');
    expect(ekMatchesPublic(leaf('rsa2048'), rsa)).toEqual({ ok: true, failures: [] });
    expect(ekMatchesPublic(leaf('ecc-p384'), p384)).toEqual({ ok: true, failures: [] });
    // Crossed over, or against another EK of the same type, the binding fails.
    expect(ekMatchesPublic(leaf('rsa2048'), p384).failures.map((f) => f.code)).toEqual(['EK_KEY_MISMATCH']);
    expect(ekMatchesPublic(leaf('ecc-p384'), rsa).failures.map((f) => f.code)).toEqual(['EK_KEY_MISMATCH']);
    const p256 = ekPublic('ecc-p256');
    expect(ekMatchesPublic(leaf('ecc-p384'), p256).ok).toBe(false);
    expect(tpm.listHandles(0x80000000)).toEqual([]);
  });
});
