/**
 * TEST-ONLY generator of a fake AMD SEV-SNP certificate hierarchy (see ./README.md).
 *
 *   ARK  RSA-4096, self-signed, RSASSA-PSS SHA-384 (salt 48)      "vouch TEST-ONLY ARK-Milan"
 *   ASK  RSA-4096, signed by the ARK, RSASSA-PSS SHA-384          "vouch TEST-ONLY SEV-Milan"
 *   VCEK ECDSA P-384, signed by the ASK, RSASSA-PSS SHA-384       "vouch TEST-ONLY SEV-VCEK"
 *        with the AMD VCEK extensions (SEV-SNP Firmware ABI / "Versioned Chip Endorsement
 *        Key (VCEK) Certificate and KDS Interface Specification", extension table)
 *   two CRLs signed by the ARK: one revoking nothing, one revoking the ASK's serial.
 *
 * Run: `npx tsx attestation-fixtures/snp/generate.ts [--new-keys]`. Existing key files are
 * reused, so a re-run re-issues the certificates and CRLs under the same keys (RSA-PSS and
 * ECDSA signatures are randomized, so the bytes differ, the keys and every field do not).
 * `--new-keys` makes new keys. None of this is, or may ever be, trusted outside tests.
 */
import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { FIXTURE, TEST_SNP_DIR, amdVcekExtensions, derToPem, pssSign, type FixtureTcb } from './shared.js';

type CryptoKey = webcrypto.CryptoKey;

const subtle = webcrypto.subtle;
const RSA_PSS_384 = { name: 'RSA-PSS', hash: 'SHA-384' } as const;
const ECDSA_384 = { name: 'ECDSA', namedCurve: 'P-384' } as const;

interface Pair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

function pemBody(pem: string, label: string): Uint8Array {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (m === null) throw new TypeError(`not a ${label} PEM`);
  return new Uint8Array(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
}

/** Loads `file` (PKCS#8 PEM) when present and `--new-keys` is not given, else makes and writes a key. */
async function keyPair(file: string, kind: 'rsa' | 'ec', fresh: boolean): Promise<Pair> {
  const path = join(TEST_SNP_DIR, file);
  const importAlg = kind === 'rsa' ? RSA_PSS_384 : ECDSA_384;
  if (!fresh && existsSync(path)) {
    const pem = readFileSync(path, 'utf8');
    const privateKey = await subtle.importKey('pkcs8', pemBody(pem, 'PRIVATE KEY'), importAlg, true, ['sign']);
    const spki = createPublicKey(createPrivateKey(pem)).export({ format: 'der', type: 'spki' });
    const publicKey = await subtle.importKey('spki', spki, importAlg, true, ['verify']);
    return { privateKey, publicKey };
  }
  const gen =
    kind === 'rsa'
      ? { ...RSA_PSS_384, modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]) }
      : ECDSA_384;
  const pair = (await subtle.generateKey(gen, true, ['sign', 'verify'])) as Pair;
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', pair.privateKey));
  writeFileSync(path, derToPem(pkcs8, 'PRIVATE KEY'));
  return pair;
}

async function main(): Promise<void> {
  const fresh = process.argv.includes('--new-keys');
  const arkKeys = await keyPair('ark.key.pem', 'rsa', fresh);
  const askKeys = await keyPair('ask.key.pem', 'rsa', fresh);
  const vcekKeys = await keyPair('vcek.key.pem', 'ec', fresh);

  const caExtensions = (pathLength: number | undefined) => [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];

  const ark = await x509.X509CertificateGenerator.create({
    serialNumber: FIXTURE.serials.ark,
    subject: FIXTURE.names.ark,
    issuer: FIXTURE.names.ark,
    notBefore: FIXTURE.caNotBefore,
    notAfter: FIXTURE.caNotAfter,
    signingAlgorithm: pssSign,
    publicKey: arkKeys.publicKey,
    signingKey: arkKeys.privateKey,
    extensions: caExtensions(1),
  });
  const ask = await x509.X509CertificateGenerator.create({
    serialNumber: FIXTURE.serials.ask,
    subject: FIXTURE.names.ask,
    issuer: FIXTURE.names.ark,
    notBefore: FIXTURE.caNotBefore,
    notAfter: FIXTURE.caNotAfter,
    signingAlgorithm: pssSign,
    publicKey: askKeys.publicKey,
    signingKey: arkKeys.privateKey,
    extensions: caExtensions(0),
  });
  const tcb: FixtureTcb = FIXTURE.tcb;
  const vcek = await x509.X509CertificateGenerator.create({
    serialNumber: FIXTURE.serials.vcek,
    subject: FIXTURE.names.vcek,
    issuer: FIXTURE.names.ask,
    notBefore: FIXTURE.vcekNotBefore,
    notAfter: FIXTURE.vcekNotAfter,
    signingAlgorithm: pssSign,
    publicKey: vcekKeys.publicKey,
    signingKey: askKeys.privateKey,
    extensions: amdVcekExtensions(FIXTURE.productName, FIXTURE.chipId, tcb),
  });
  const crlParams = {
    issuer: FIXTURE.names.ark,
    thisUpdate: FIXTURE.crlThisUpdate,
    nextUpdate: FIXTURE.crlNextUpdate,
    signingAlgorithm: pssSign,
    signingKey: arkKeys.privateKey,
  };
  const crl = await x509.X509CrlGenerator.create({ ...crlParams, entries: [] });
  const crlRevokingAsk = await x509.X509CrlGenerator.create({
    ...crlParams,
    entries: [{ serialNumber: FIXTURE.serials.ask, revocationDate: FIXTURE.crlThisUpdate, reason: x509.X509CrlReason.keyCompromise }],
  });

  const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);
  writeFileSync(join(TEST_SNP_DIR, 'ark.pem'), derToPem(der(ark), 'CERTIFICATE'));
  writeFileSync(join(TEST_SNP_DIR, 'ask.pem'), derToPem(der(ask), 'CERTIFICATE'));
  // KDS order: ASK first, then ARK (the body of /vcek/v1/{product}/cert_chain).
  writeFileSync(join(TEST_SNP_DIR, 'cert_chain.pem'), derToPem(der(ask), 'CERTIFICATE') + derToPem(der(ark), 'CERTIFICATE'));
  writeFileSync(join(TEST_SNP_DIR, 'vcek.der'), der(vcek));
  writeFileSync(join(TEST_SNP_DIR, 'crl.der'), der(crl));
  writeFileSync(join(TEST_SNP_DIR, 'crl-revoking-ask.der'), der(crlRevokingAsk));
  const fp = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  console.log(`wrote ${TEST_SNP_DIR}\n  ARK  sha256 ${fp(der(ark))}\n  ASK  sha256 ${fp(der(ask))}\n  VCEK sha256 ${fp(der(vcek))}`);
}

await main();
