/**
 * EK certificates from real TPMs and vTPMs (../shared/fixtures/real, see PROVENANCE.md).
 * Times are fixed from PROVENANCE: STM EKs 2018-07..2028-07, IFX intermediate 01 expired
 * 2025-10-20, GCE certificates 2021/2022..2051/2052, Nuvoton EK 2019..2039.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { decodeTpmtPublic } from '../../src/tpm/abi/public.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import {
  ekMatchesPublic,
  loadTrustDirectory,
  parseEkCertificate,
  trustStoreFromCerts,
  verifyEkChain,
  type EkCertificate,
  type EkChainResult,
} from '../../src/tpm/ek/index.js';
import { HAVE_REAL, REAL, real, realCert } from './helpers.js';

/** Inside the validity of every certificate used below. */
const NOW = new Date('2025-06-01T00:00:00Z');
/** The day after IFX TPM EK Intermediate CA 01 expired. */
const AFTER_IFX = new Date('2025-10-21T00:00:00Z');
/** The day after the STM EK certificates expired. */
const AFTER_STM = new Date('2028-07-12T00:00:00Z');

const KEYLIME = 'roots/tpm-vendors/keylime-tpm_cert_store';

function codes(r: EkChainResult): string[] {
  return r.failures.map((f) => f.code);
}

function fingerprints(chain: readonly EkCertificate[]): string[] {
  return chain.map((c) => c.fingerprint);
}

function expectCode(f: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(isVouchError(thrown), `expected a VouchError ${code}, got ${String(thrown)}`).toBe(true);
  expect((thrown as { code: string }).code).toBe(code);
}

describe.skipIf(!HAVE_REAL)('real EK certificates (../shared/fixtures/real)', () => {
  const vendors = HAVE_REAL ? loadTrustDirectory(join(REAL, 'roots/tpm-vendors')) : undefined;
  const google = HAVE_REAL ? loadTrustDirectory(join(REAL, 'roots/google-vtpm')) : undefined;

  it('loads the vendor and Google trust directories without problems', () => {
    expect(vendors?.problems).toEqual([]);
    expect(google?.problems).toEqual([]);
    // 51 keylime files + 26 bundle certificates, some of them the same certificate.
    expect(vendors?.files).toContain('tpm-ca-certificates-roots-bundle.pem');
    expect(vendors?.files).toContain(join('keylime-tpm_cert_store', 'STM_RSA_05I.pem'));
    expect(vendors?.store.size).toBeGreaterThan(50);
    expect(google?.store.size).toBe(5);
  });

  it('parses every certificate in tpm/ek-certs', () => {
    const dir = join(REAL, 'tpm/ek-certs');
    const names = readdirSync(dir).sort();
    expect(names.length).toBe(10);
    for (const n of names) {
      const c = parseEkCertificate(real(`tpm/ek-certs/${n}`));
      expect(c.der.length, n).toBeGreaterThan(400);
      expect(c.publicKey.type, n).toBe('public');
      expect(c.signatureAlgorithm, n).toBeDefined();
    }
  });

  it('cuts the 0xFF NV padding of the STM RSA EK at the declared DER length and extracts the TCG SAN', () => {
    const bytes = real('tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der');
    expect(bytes.length).toBe(1600);
    const c = parseEkCertificate(bytes);
    expect(c.der.length).toBeLessThan(1600);
    expect(c.der.length).toBe(((bytes[2] as number) << 8) + (bytes[3] as number) + 4);
    expect(c.subject).toBe('');
    expect(c.serial.toUpperCase()).toContain('4CBD0FE61EE762EDB28D50B268FC3586FF3D5E82');
    expect(c.tpm).toEqual({ manufacturer: 'id:53544D20', model: 'ST33HTPHAHB4', version: 'id:00490004' });
    expect(c.criticalExtensions).toContain('2.5.29.17');
    expect(c.notBefore.toISOString()).toBe('2018-07-11T00:00:00.000Z');
    expect(c.notAfter.toISOString()).toBe('2028-07-11T00:00:00.000Z');
    expect(c.publicKey.asymmetricKeyType).toBe('rsa');
    expect(c.spki[0]).toBe(0x30);
    expect(c.basicConstraints?.ca).toBe(false);
    expect(c.keyUsage?.usages).toEqual(['keyEncipherment']);
  });

  it('STM RSA EK chains via STM_RSA_05I → STM_RSA_RT (and on to the GlobalSign TPM root)', () => {
    const leaf = realCert('tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der');
    const i05 = realCert(`${KEYLIME}/STM_RSA_05I.pem`);
    const rt = realCert(`${KEYLIME}/STM_RSA_RT.pem`);
    const r = verifyEkChain(leaf, { trust: vendors!.store, now: NOW });
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(fingerprints(r.chain).slice(0, 3)).toEqual([leaf.fingerprint, i05.fingerprint, rt.fingerprint]);
    // STM_RSA_RT is cross-signed by GlobalSign; the chain ends at that self-signed root.
    expect(r.chain[r.chain.length - 1]?.selfIssued).toBe(true);

    // With only the two STM certificates trusted, the intermediate-root STM_RSA_RT anchors the chain.
    const only = verifyEkChain(leaf, { trust: trustStoreFromCerts([rt]), intermediates: [i05], now: NOW });
    expect(only.failures).toEqual([]);
    expect(fingerprints(only.chain)).toEqual([leaf.fingerprint, i05.fingerprint, rt.fingerprint]);
  });

  it('STM ECC EK chains via STM_ECC_01I → STM_ECC_01RT', () => {
    const leaf = realCert('tpm/ek-certs/stm-st33htphahb4-ecc-ek.der');
    const i01 = realCert(`${KEYLIME}/STM_ECC_01I.pem`);
    const rt = realCert(`${KEYLIME}/STM_ECC_01RT.pem`);
    const r = verifyEkChain(leaf, { trust: vendors!.store, now: NOW });
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(fingerprints(r.chain).slice(0, 3)).toEqual([leaf.fingerprint, i01.fingerprint, rt.fingerprint]);
    const only = verifyEkChain(leaf, { trust: trustStoreFromCerts([i01, rt]), now: NOW });
    expect(only.ok).toBe(true);
    expect(fingerprints(only.chain)).toEqual([leaf.fingerprint, i01.fingerprint, rt.fingerprint]);
  });

  it('Nuvoton NPCT75x EK (non-strict DER) chains to NUVO_2111 despite the unsorted issuer RDN', () => {
    const leaf = realCert('tpm/ek-certs/nuvoton-npct75x-rsa-ek.der');
    const root = realCert(`${KEYLIME}/NUVO_2111.pem`);
    expect(leaf.tpm?.model).toBe('NPCT75x');
    const r = verifyEkChain(leaf, { trust: trustStoreFromCerts([root]), now: NOW });
    expect(r.failures).toEqual([]);
    expect(fingerprints(r.chain)).toEqual([leaf.fingerprint, root.fingerprint]);
    expect(verifyEkChain(leaf, { trust: vendors!.store, now: NOW }).ok).toBe(true);
  });

  it('Nuvoton Root CA 2110 (issuer RDN not DER-sorted) verifies as self-signed over its exact TBS bytes', () => {
    const root = realCert('tpm/ek-certs/nuvoton-root-ca-2110.nonder.der');
    expect(root.selfIssued).toBe(true);
    const r = verifyEkChain(root, { trust: trustStoreFromCerts([root]), now: NOW });
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.chain).toHaveLength(1);
    // The same root from the keylime store is the same certificate.
    expect(realCert(`${KEYLIME}/NUVO_2110.pem`).fingerprint).toBe(root.fingerprint);
  });

  it('GCE EK/AK certificates and the COS 85 AK certificate chain to roots/google-vtpm', () => {
    const names = readdirSync(join(REAL, 'tpm/ek-certs')).filter((n) => n.startsWith('gce-'));
    expect(names).toHaveLength(5);
    for (const n of [...names.map((x) => `tpm/ek-certs/${x}`), 'tpm/quotes/gce-cos85-nonce9009/ak-cert.der']) {
      const leaf = realCert(n);
      const r = verifyEkChain(leaf, { trust: google!.store, now: NOW });
      expect(r.failures, n).toEqual([]);
      expect(r.ok, n).toBe(true);
      expect(r.chain.length, n).toBe(3);
      expect(r.chain[2]?.selfIssued, n).toBe(true);
    }
  });

  it('the GCE AK certificate certifies the AK public area of the same attestation', () => {
    const cert = realCert('tpm/quotes/gce-cos85-nonce9009/ak-cert.der');
    const pub = decodeTpmtPublic(real('tpm/quotes/gce-cos85-nonce9009/ak.tpmt_public'));
    expect(ekMatchesPublic(cert, pub)).toEqual({ ok: true, failures: [] });
    if (pub.type !== TPM_ALG.RSA) throw new Error('the GCE AK is RSA');
    const flipped = pub.unique.slice();
    flipped[100] = (flipped[100] as number) ^ 1;
    const bad = ekMatchesPublic(cert, { ...pub, unique: flipped });
    expect(bad.ok).toBe(false);
    expect(bad.failures.map((f) => f.code)).toEqual(['EK_KEY_MISMATCH']);
    expect(bad.failures[0]?.field).toBe('TPMT_PUBLIC.unique.rsa');
    const otherExp = ekMatchesPublic(cert, { ...pub, parameters: { ...pub.parameters, exponent: 3 } });
    expect(otherExp.failures.map((f) => f.field)).toEqual(['TPMT_PUBLIC.parameters.rsaDetail.exponent']);
    // An RSA certificate never matches an ECC EK.
    const ecc = ekMatchesPublic(realCert('tpm/ek-certs/stm-st33htphahb4-ecc-ek.der'), pub);
    expect(ecc.failures.map((f) => f.code)).toEqual(['EK_KEY_MISMATCH']);
  });

  it('IFX TPM EK Intermediate CA 01 chains to IFX_RSA_RT before 2025-10-20 and is EK_CHAIN_EXPIRED after', () => {
    const ifx = realCert('tpm/ek-certs/ifx-tpm-ek-intermediate-ca-01.der');
    const root = realCert(`${KEYLIME}/IFX_RSA_RT.pem`);
    const before = verifyEkChain(ifx, { trust: vendors!.store, now: NOW });
    expect(before.failures).toEqual([]);
    expect(fingerprints(before.chain)).toEqual([ifx.fingerprint, root.fingerprint]);
    const after = verifyEkChain(ifx, { trust: vendors!.store, now: AFTER_IFX });
    expect(after.ok).toBe(false);
    expect(codes(after)).toEqual(['EK_CHAIN_EXPIRED']);
    expect(after.failures[0]?.field).toBe('chain[0].tbsCertificate.validity');
    expect(after.failures[0]?.actual).toBe(AFTER_IFX.toISOString());
  });

  it('a one-byte flip in the signature is EK_CHAIN_SIGNATURE_INVALID', () => {
    for (const n of ['stm-st33htphahb4-rsa-ek.padded.der', 'stm-st33htphahb4-ecc-ek.der', 'nuvoton-npct75x-rsa-ek.der']) {
      const good = parseEkCertificate(real(`tpm/ek-certs/${n}`));
      const der = good.der.slice();
      // signatureValue is the last element: its last byte is the certificate's last byte.
      der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
      const bad = parseEkCertificate(der);
      const r = verifyEkChain(bad, { trust: vendors!.store, now: NOW });
      expect(r.ok, n).toBe(false);
      expect(codes(r), n).toEqual(['EK_CHAIN_SIGNATURE_INVALID']);
      expect(r.failures[0]?.field, n).toBe('chain[0].signatureValue');
    }
    // And in the TBS: the signature is over the exact bytes, so any change there is caught too.
    const good = parseEkCertificate(real('tpm/ek-certs/nuvoton-root-ca-2110.nonder.der'));
    const der = good.der.slice();
    const at = good.tbs.byteOffset - good.der.byteOffset + good.tbs.length - 10;
    der[at] = (der[at] as number) ^ 0x01;
    const bad = parseEkCertificate(der);
    expect(codes(verifyEkChain(bad, { trust: trustStoreFromCerts([bad]), now: NOW }))).toEqual(['EK_CHAIN_SIGNATURE_INVALID']);
  });

  it('a trust directory of another vendor is EK_CHAIN_NO_ISSUER', () => {
    const leaf = realCert('tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der');
    const r = verifyEkChain(leaf, { trust: google!.store, now: NOW });
    expect(r.ok).toBe(false);
    expect(r.anchored).toBe(false);
    expect(codes(r)).toEqual(['EK_CHAIN_NO_ISSUER']);
    expect(r.failures[0]?.actual).toContain('STM TPM EK Intermediate CA 05');
    // The intermediate supplied by the agent alone does not anchor anything.
    const withInt = verifyEkChain(leaf, { trust: google!.store, intermediates: [realCert(`${KEYLIME}/STM_RSA_05I.pem`)], now: NOW });
    expect(codes(withInt)).toEqual(['EK_CHAIN_NO_ISSUER']);
  });

  it('a time outside the validity period is EK_CHAIN_EXPIRED (after notAfter and before notBefore)', () => {
    const leaf = realCert('tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der');
    const late = verifyEkChain(leaf, { trust: vendors!.store, now: AFTER_STM });
    expect(codes(late)).toEqual(['EK_CHAIN_EXPIRED']);
    const early = verifyEkChain(leaf, { trust: vendors!.store, now: new Date('2018-07-10T00:00:00Z') });
    expect(codes(early)).toContain('EK_CHAIN_EXPIRED');
    expect(early.failures[0]?.message).toContain('not yet valid');
  });

  it('trailing bytes other than NV padding are EK_CERT_MALFORMED', () => {
    const bytes = real('tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der');
    const c = parseEkCertificate(bytes);
    const zeros = bytes.slice();
    zeros.fill(0x00, c.der.length);
    expect(parseEkCertificate(zeros).fingerprint).toBe(c.fingerprint);
    const bad = bytes.slice();
    bad[bad.length - 1] = 0x01;
    expectCode(() => parseEkCertificate(bad), 'EK_CERT_MALFORMED');
    const bad2 = bytes.slice();
    bad2[c.der.length] = 0x30;
    expectCode(() => parseEkCertificate(bad2), 'EK_CERT_MALFORMED');
    // A truncated certificate is malformed too.
    expectCode(() => parseEkCertificate(bytes.subarray(0, c.der.length - 1)), 'EK_CERT_MALFORMED');
  });

  it('accepts the GCE PEM files only through the PEM header, and the same certificate as DER', () => {
    const pem = real('tpm/ek-certs/gce-uca_tpm_rsa_enc_cert.pem');
    const c = parseEkCertificate(pem);
    expect(parseEkCertificate(c.der).fingerprint).toBe(c.fingerprint);
    expect(c.tpm).toEqual({ manufacturer: 'id:474F4F47', model: 'vTPM', version: 'id:20160511' });
    // Leading whitespace means it does not start with the header: it is then (invalid) DER.
    const spaced = new Uint8Array([0x20, ...pem]);
    expectCode(() => parseEkCertificate(spaced), 'EK_CERT_MALFORMED');
  });
});
