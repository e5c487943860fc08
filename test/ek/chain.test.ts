/**
 * Chain validation rules on generated test CAs (no real fixtures needed): each rule has a
 * passing chain and a chain that breaks exactly that rule, asserting the specific code.
 */
import 'reflect-metadata';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/abi/constants.js';
import { EK_TEMPLATE_ECC_P256 } from '../../src/tpm/templates.js';
import type { EccPublic } from '../../src/tpm/abi/public.js';
import {
  ekMatchesPublic,
  loadTrustDirectory,
  parseEkCertificate,
  splitPemCertificates,
  trustStoreFromCerts,
  verifyEkChain,
  type EkChainResult,
} from '../../src/tpm/ek/index.js';
import { T1, issue, type TestCa } from './helpers.js';

const NOW = new Date('2030-01-01T00:00:00Z');

function codes(r: EkChainResult): string[] {
  return r.failures.map((f) => f.code);
}

function thrownCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return undefined;
}

function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

describe('EK chain rules on generated CAs', () => {
  let root: TestCa;
  let inter: TestCa;
  let leaf: TestCa;

  beforeAll(async () => {
    root = await issue('CN=Test TPM Root,O=vouch test', undefined);
    inter = await issue('CN=Test TPM Intermediate,O=vouch test', root);
    leaf = await issue('CN=Test EK', inter, { ca: { ca: false } });
  });

  it('a well-formed chain passes, with the intermediate from the agent or from the trust store', () => {
    const viaAgent = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [inter.ek], now: NOW });
    expect(viaAgent.failures).toEqual([]);
    expect(viaAgent.ok).toBe(true);
    expect(viaAgent.chain.map((c) => c.subject)).toEqual([leaf.ek.subject, inter.ek.subject, root.ek.subject]);
    const viaStore = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([root.ek, inter.ek]), now: NOW });
    expect(viaStore.ok).toBe(true);
    // An intermediate trusted directly anchors the chain when the root is not available.
    const interOnly = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([inter.ek]), now: NOW });
    expect(interOnly.ok).toBe(true);
    expect(interOnly.chain).toHaveLength(2);
  });

  it('an issuer without CA basic constraints is EK_CHAIN_NOT_CA', async () => {
    const notCa = await issue('CN=Not A CA', root, { ca: { ca: false }, keyUsage: x509.KeyUsageFlags.keyCertSign });
    const child = await issue('CN=Child of non-CA', notCa, { ca: { ca: false } });
    const r = verifyEkChain(child.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [notCa.ek], now: NOW });
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['EK_CHAIN_NOT_CA']);
    expect(r.failures[0]).toMatchObject({ field: 'chain[1].extensions.basicConstraints.cA', expected: 'TRUE', actual: 'FALSE' });

    const noBc = await issue('CN=No Basic Constraints', root, { ca: false, keyUsage: x509.KeyUsageFlags.keyCertSign });
    const child2 = await issue('CN=Child of no-BC', noBc, { ca: { ca: false } });
    const r2 = verifyEkChain(child2.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [noBc.ek], now: NOW });
    expect(codes(r2)).toEqual(['EK_CHAIN_NOT_CA']);
    expect(r2.failures[0]?.actual).toBe('extension absent');
  });

  it('an issuer whose key usage lacks keyCertSign (or has no key usage) is EK_CHAIN_NOT_CA', async () => {
    const noSign = await issue('CN=CA without keyCertSign', root, { keyUsage: x509.KeyUsageFlags.digitalSignature });
    const child = await issue('CN=Child', noSign, { ca: { ca: false } });
    const r = verifyEkChain(child.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [noSign.ek], now: NOW });
    expect(codes(r)).toEqual(['EK_CHAIN_NOT_CA']);
    expect(r.failures[0]).toMatchObject({ field: 'chain[1].extensions.keyUsage.keyCertSign', actual: 'digitalSignature' });

    const noKu = await issue('CN=CA without key usage', root, { keyUsage: false });
    const child2 = await issue('CN=Child 2', noKu, { ca: { ca: false } });
    const r2 = verifyEkChain(child2.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [noKu.ek], now: NOW });
    expect(codes(r2)).toEqual(['EK_CHAIN_NOT_CA']);
  });

  it('a chain longer than a pathLenConstraint allows is EK_CHAIN_PATH_LENGTH', async () => {
    const r0 = await issue('CN=Root pathLen 0', undefined, { ca: { ca: true, pathLength: 0 } });
    const i1 = await issue('CN=Intermediate under pathLen 0', r0);
    const l1 = await issue('CN=EK under intermediate', i1, { ca: { ca: false } });
    const r = verifyEkChain(l1.ek, { trust: trustStoreFromCerts([r0.ek]), intermediates: [i1.ek], now: NOW });
    expect(codes(r)).toEqual(['EK_CHAIN_PATH_LENGTH']);
    expect(r.failures[0]).toMatchObject({ field: 'chain[2].extensions.basicConstraints.pathLenConstraint', actual: '1' });
    // pathLen 0 still allows issuing the leaf directly.
    const direct = await issue('CN=EK directly under pathLen 0', r0, { ca: { ca: false } });
    expect(verifyEkChain(direct.ek, { trust: trustStoreFromCerts([r0.ek]), now: NOW }).ok).toBe(true);
    // pathLen 1 allows the intermediate.
    const r1 = await issue('CN=Root pathLen 1', undefined, { ca: { ca: true, pathLength: 1 } });
    const i2 = await issue('CN=Intermediate under pathLen 1', r1);
    const l2 = await issue('CN=EK 2', i2, { ca: { ca: false } });
    expect(verifyEkChain(l2.ek, { trust: trustStoreFromCerts([r1.ek]), intermediates: [i2.ek], now: NOW }).ok).toBe(true);
  });

  it('no anchor within maxDepth is EK_CHAIN_TOO_LONG; too many intermediates too', async () => {
    const i2 = await issue('CN=Second Intermediate', inter);
    const l = await issue('CN=Deep EK', i2, { ca: { ca: false } });
    const opts = { trust: trustStoreFromCerts([root.ek]), intermediates: [inter.ek, i2.ek], now: NOW };
    expect(verifyEkChain(l.ek, opts).ok).toBe(true);
    const r = verifyEkChain(l.ek, { ...opts, maxDepth: 3 });
    expect(codes(r)).toEqual(['EK_CHAIN_TOO_LONG']);
    const many = verifyEkChain(l.ek, { ...opts, intermediates: Array.from({ length: 33 }, () => inter.ek) });
    expect(codes(many)).toEqual(['EK_CHAIN_TOO_LONG']);
  });

  it('an unprocessed critical extension is EK_CHAIN_CRITICAL_EXTENSION', async () => {
    const odd = await issue('CN=CA with odd critical extension', root, { extra: [new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))] });
    const child = await issue('CN=Child of odd', odd, { ca: { ca: false } });
    const r = verifyEkChain(child.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [odd.ek], now: NOW });
    expect(codes(r)).toEqual(['EK_CHAIN_CRITICAL_EXTENSION']);
    expect(r.failures[0]?.field).toBe('chain[1].tbsCertificate.extensions.1.3.6.1.4.1.99999.1');
  });

  it('the same name under another key is EK_CHAIN_SIGNATURE_INVALID, and the genuine CA is preferred when both are present', async () => {
    const impostor = await issue('CN=Test TPM Intermediate,O=vouch test', root);
    const r = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [impostor.ek], now: NOW });
    expect(codes(r)).toEqual(['EK_CHAIN_SIGNATURE_INVALID']);
    const both = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: [impostor.ek, inter.ek], now: NOW });
    expect(both.ok).toBe(true);
    expect(both.chain[1]?.fingerprint).toBe(inter.ek.fingerprint);
  });

  it('validity is checked on every certificate, the anchor included', async () => {
    const oldRoot = await issue('CN=Old Root', undefined, { notAfter: new Date('2025-01-01T00:00:00Z') });
    const l = await issue('CN=EK under old root', oldRoot, { ca: { ca: false } });
    const r = verifyEkChain(l.ek, { trust: trustStoreFromCerts([oldRoot.ek]), now: NOW });
    expect(codes(r)).toEqual(['EK_CHAIN_EXPIRED']);
    expect(r.failures[0]?.field).toBe('chain[1].tbsCertificate.validity');
    // An intermediate trusted directly still anchors the chain when the root above it has expired.
    const i = await issue('CN=Intermediate under old root', oldRoot, { notAfter: T1 });
    const l2 = await issue('CN=EK under that intermediate', i, { ca: { ca: false } });
    const both = verifyEkChain(l2.ek, { trust: trustStoreFromCerts([oldRoot.ek, i.ek]), now: NOW });
    expect(both.failures).toEqual([]);
    expect(both.chain.map((c) => c.fingerprint)).toEqual([l2.ek.fingerprint, i.ek.fingerprint]);
    // With only the expired root trusted, the failure is reported on the anchor.
    expect(codes(verifyEkChain(l2.ek, { trust: trustStoreFromCerts([oldRoot.ek]), intermediates: [i.ek], now: NOW }))).toEqual(['EK_CHAIN_EXPIRED']);
  });

  it('verifies RSA-PSS, RSA PKCS#1 v1.5 and ECDSA P-384 links', async () => {
    const pssRoot = await issue('CN=PSS Root', undefined, { alg: 'rsa-pss' });
    const rsaInter = await issue('CN=RSA Inter', pssRoot, { alg: 'rsa-pkcs1' });
    const p384 = await issue('CN=P384 Inter', rsaInter, { alg: 'ecdsa-p384' });
    const l = await issue('CN=EK P384', p384, { ca: { ca: false } });
    expect(rsaInter.ek.signatureAlgorithm).toMatchObject({ scheme: 'rsa-pss', hash: 'sha256', saltLength: 32 });
    expect(p384.ek.signatureAlgorithm).toMatchObject({ scheme: 'rsa-pkcs1', hash: 'sha256' });
    expect(l.ek.signatureAlgorithm).toMatchObject({ scheme: 'ecdsa', hash: 'sha384' });
    const r = verifyEkChain(l.ek, { trust: trustStoreFromCerts([pssRoot.ek]), intermediates: [p384.ek, rsaInter.ek], now: NOW });
    expect(r.failures).toEqual([]);
    expect(r.chain).toHaveLength(4);
  });

  it('many same-named intermediates from the agent are bounded work and still fail closed', async () => {
    const fakes: TestCa[] = [];
    for (let i = 0; i < 32; i++) fakes.push(await issue('CN=Test TPM Intermediate,O=vouch test', inter));
    const t0 = performance.now();
    const r = verifyEkChain(leaf.ek, { trust: trustStoreFromCerts([root.ek]), intermediates: fakes.map((f) => f.ek), now: NOW });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('EK_CHAIN_SIGNATURE_INVALID');
  });

  it('rejects misuse of the options by throwing MISUSE_ARGUMENT', () => {
    const trust = trustStoreFromCerts([root.ek]);
    expect(thrownCode(() => verifyEkChain(leaf.ek, { trust, now: new Date('nope') }))).toBe('MISUSE_ARGUMENT');
    expect(thrownCode(() => verifyEkChain(leaf.ek, { trust, now: NOW, maxDepth: 0 }))).toBe('MISUSE_ARGUMENT');
  });

  it('ekMatchesPublic compares the curve and both coordinates of an ECC EK', async () => {
    const jwk = leaf.ek.publicKey.export({ format: 'jwk' });
    const x = new Uint8Array(Buffer.from(String(jwk.x), 'base64url'));
    const y = new Uint8Array(Buffer.from(String(jwk.y), 'base64url'));
    const pub: EccPublic = { ...EK_TEMPLATE_ECC_P256, unique: { x, y } };
    expect(ekMatchesPublic(leaf.ek, pub)).toEqual({ ok: true, failures: [] });
    const y2 = y.slice();
    y2[0] = (y2[0] as number) ^ 0x80;
    const r = ekMatchesPublic(leaf.ek, { ...pub, unique: { x, y: y2 } });
    expect(r.failures.map((f) => [f.code, f.field])).toEqual([['EK_KEY_MISMATCH', 'TPMT_PUBLIC.unique.ecc.y']]);
    const p384 = ekMatchesPublic(leaf.ek, { ...pub, parameters: { ...pub.parameters, curveId: TPM_ECC.NIST_P384 } });
    expect(p384.failures.map((f) => f.field)).toEqual(['TPMT_PUBLIC.parameters.eccDetail.curveID']);
    const rsaCa = await issue('CN=RSA CA', undefined, { alg: 'rsa-pkcs1' });
    expect(ekMatchesPublic(rsaCa.ek, pub).failures.map((f) => f.code)).toEqual(['EK_KEY_MISMATCH']);
    expect(pub.type).toBe(TPM_ALG.ECC);
  });

  describe('PEM and trust directories', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'vouch-ek-trust-'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('parses one PEM certificate and rejects two blocks, bad base64 and text after the block', () => {
      const one = pem(leaf.ek.der);
      expect(parseEkCertificate(new TextEncoder().encode(one)).fingerprint).toBe(leaf.ek.fingerprint);
      expect(thrownCode(() => parseEkCertificate(new TextEncoder().encode(one + one)))).toBe('EK_CERT_MALFORMED');
      expect(thrownCode(() => parseEkCertificate(new TextEncoder().encode(`${one}trailing text\n`)))).toBe('EK_CERT_MALFORMED');
      expect(thrownCode(() => parseEkCertificate(new TextEncoder().encode(one.replace('M', '*'))))).toBe('EK_CERT_MALFORMED');
      expect(thrownCode(() => parseEkCertificate(new TextEncoder().encode(one.replace('-----END CERTIFICATE-----', ''))))).toBe('EK_CERT_MALFORMED');
      expect(splitPemCertificates(`explanatory text\n${one}\n# comment\n${one}`)).toHaveLength(2);
      expect(thrownCode(() => splitPemCertificates(one.replaceAll('CERTIFICATE', 'PRIVATE KEY')))).toBe('EK_CERT_MALFORMED');
    });

    it('loads .pem bundles, .der/.crt/.cer files and subfolders, and reports unparsable files', () => {
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'bundle.pem'), `# two CAs\n${pem(root.ek.der)}\n${pem(inter.ek.der)}`);
      writeFileSync(join(dir, 'sub', 'root.der'), root.ek.der);
      writeFileSync(join(dir, 'sub', 'inter.crt'), pem(inter.ek.der));
      writeFileSync(join(dir, 'broken.cer'), new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]));
      writeFileSync(join(dir, 'empty.pem'), 'no certificate here\n');
      writeFileSync(join(dir, 'README.txt'), 'not a certificate file');
      const t = loadTrustDirectory(dir);
      expect(t.store.size).toBe(2);
      expect(t.files).toEqual(['broken.cer', 'bundle.pem', 'empty.pem', join('sub', 'inter.crt'), join('sub', 'root.der')]);
      expect(t.ignored).toEqual(['README.txt']);
      expect(t.problems.map((p) => [p.path, p.code])).toEqual([
        ['broken.cer', 'EK_CERT_MALFORMED'],
        ['empty.pem', 'EK_CERT_MALFORMED'],
      ]);
      expect(verifyEkChain(leaf.ek, { trust: t.store, now: NOW }).ok).toBe(true);
      expect(thrownCode(() => loadTrustDirectory(join(dir, 'missing')))).toBe('MISUSE_FILE_UNREADABLE');
    });
  });
});
