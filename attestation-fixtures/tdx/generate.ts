/**
 * TEST-ONLY generator of a fake Intel SGX/TDX DCAP hierarchy and its PCS collateral (see
 * ./README.md). Every key is ECDSA P-256 and every signature ECDSA with SHA-256, as Intel's:
 *
 *   Intel SGX Root CA          self-signed, CA, pathLen 1          O=vouch TEST-ONLY not Intel
 *   ├── Intel SGX PCK Platform CA   CA, pathLen 0
 *   │   └── Intel SGX PCK Certificate   end entity, with the SGX extension 1.2.840.113741.1.13.1
 *   └── Intel SGX TCB Signing           end entity; signs TCB Info and QE Identity
 *   collateral/  the PCS collateral in the layout src/tdx/collateral.ts reads: TDX TCB Info v3,
 *                TD_QE QE Identity v2 (signed over the exact member text), PCK CRL, Root CA CRL,
 *                and their issuer chains
 *   pck-crl-revoking-pck.der   a PCK CRL revoking the PCK certificate
 *   attestation.key.pem        the quoting enclave's attestation key (signs synthetic quotes)
 *
 * Run: `npx tsx attestation-fixtures/tdx/generate.ts [--new-keys]`. Existing key files are
 * reused, so a re-run re-issues certificates, CRLs and collateral under the same keys (ECDSA is
 * randomized: the bytes differ, the keys and every field do not). None of this is, or may ever
 * be, trusted outside tests.
 */
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { COLLATERAL_FILE_NAMES } from '../../src/tdx/collateral.js';
import { FIXTURE, TEST_TDX_DIR, derToPem, fixtureSgxExtension, signedPcsBody, tdQeIdentityText, tdxTcbInfoText } from './shared.js';

type CryptoKey = webcrypto.CryptoKey;
const subtle = webcrypto.subtle;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface Pair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/** Loads `file` (PKCS#8 PEM) unless `fresh`, else makes a P-256 key and writes it. */
async function keyPair(file: string, fresh: boolean): Promise<Pair> {
  const path = join(TEST_TDX_DIR, file);
  if (!fresh && existsSync(path)) {
    const pem = readFileSync(path, 'utf8');
    const pkcs8 = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(createPrivateKey(pem)).export({ format: 'der', type: 'spki' });
    return {
      privateKey: await subtle.importKey('pkcs8', pkcs8, P256, true, ['sign']),
      publicKey: await subtle.importKey('spki', spki, P256, true, ['verify']),
    };
  }
  const pair = (await subtle.generateKey(P256, true, ['sign', 'verify'])) as Pair;
  writeFileSync(path, derToPem(new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey)), 'PRIVATE KEY'));
  return pair;
}

const der = (c: { rawData: ArrayBuffer }): Uint8Array => new Uint8Array(c.rawData);

async function main(): Promise<void> {
  const fresh = process.argv.includes('--new-keys');
  const rootKeys = await keyPair('root.key.pem', fresh);
  const caKeys = await keyPair('pck-platform-ca.key.pem', fresh);
  const pckKeys = await keyPair('pck.key.pem', fresh);
  const tcbKeys = await keyPair('tcb-signing.key.pem', fresh);
  await keyPair('attestation.key.pem', fresh);

  const ca = (pathLength: number) => [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
  const endEntity = () => [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
  ];
  const issue = (serialNumber: string, subject: string, issuer: string, notBefore: Date, notAfter: Date, publicKey: CryptoKey, signingKey: CryptoKey, extensions: x509.Extension[]) =>
    x509.X509CertificateGenerator.create({ serialNumber, subject, issuer, notBefore, notAfter, signingAlgorithm: SIGN, publicKey, signingKey, extensions });

  const n = FIXTURE.names;
  const s = FIXTURE.serials;
  const root = await issue(s.root, n.root, n.root, FIXTURE.caNotBefore, FIXTURE.caNotAfter, rootKeys.publicKey, rootKeys.privateKey, ca(1));
  const pca = await issue(s.pckPlatformCa, n.pckPlatformCa, n.root, FIXTURE.caNotBefore, FIXTURE.caNotAfter, caKeys.publicKey, rootKeys.privateKey, ca(0));
  const tcb = await issue(s.tcbSigning, n.tcbSigning, n.root, FIXTURE.caNotBefore, FIXTURE.caNotAfter, tcbKeys.publicKey, rootKeys.privateKey, endEntity());
  const pck = await issue(s.pck, n.pck, n.pckPlatformCa, FIXTURE.pckNotBefore, FIXTURE.pckNotAfter, pckKeys.publicKey, caKeys.privateKey, [...endEntity(), fixtureSgxExtension()]);

  const crl = (issuer: string, signingKey: CryptoKey, revoked: readonly string[]) =>
    x509.X509CrlGenerator.create({
      issuer,
      thisUpdate: FIXTURE.crlThisUpdate,
      nextUpdate: FIXTURE.crlNextUpdate,
      signingAlgorithm: SIGN,
      signingKey,
      entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: FIXTURE.crlThisUpdate, reason: x509.X509CrlReason.keyCompromise })),
    });
  const pckCrl = await crl(n.pckPlatformCa, caKeys.privateKey, []);
  const pckCrlRevokingPck = await crl(n.pckPlatformCa, caKeys.privateKey, [s.pck]);
  const rootCaCrl = await crl(n.root, rootKeys.privateKey, []);

  const pem = (c: { rawData: ArrayBuffer }) => derToPem(der(c), 'CERTIFICATE');
  const w = (name: string, data: Uint8Array | string) => writeFileSync(join(TEST_TDX_DIR, name), data);
  w('root.pem', pem(root));
  w('pck-platform-ca.pem', pem(pca));
  w('tcb-signing.pem', pem(tcb));
  w('pck.pem', pem(pck));
  // Certification data type 5 of a quote: leaf, PCK CA, root (Intel's order).
  w('pck_chain.pem', pem(pck) + pem(pca) + pem(root));
  w('pck-crl-revoking-pck.der', der(pckCrlRevokingPck));

  const tcbKey = createPrivateKey(readFileSync(join(TEST_TDX_DIR, 'tcb-signing.key.pem')));
  const dir = join(TEST_TDX_DIR, 'collateral');
  mkdirSync(dir, { recursive: true });
  const c = (k: keyof typeof COLLATERAL_FILE_NAMES, data: Uint8Array | string) => writeFileSync(join(dir, COLLATERAL_FILE_NAMES[k]), data);
  c('tcbInfo', signedPcsBody('tcbInfo', tdxTcbInfoText(), tcbKey));
  c('tcbInfoIssuerChain', pem(tcb) + pem(root));
  c('qeIdentity', signedPcsBody('enclaveIdentity', tdQeIdentityText(), tcbKey));
  c('qeIdentityIssuerChain', pem(tcb) + pem(root));
  c('pckCrl', der(pckCrl));
  c('pckCrlIssuerChain', pem(pca) + pem(root));
  c('rootCaCrl', der(rootCaCrl));

  const fp = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  console.log(`wrote ${TEST_TDX_DIR}\n  root sha256 ${fp(der(root))} (TEST-ONLY; pin it in tests only)\n  PCK  sha256 ${fp(der(pck))}`);
}

await main();
