/**
 * Test-only certificate authorities, generated per test run with WebCrypto keys. Nothing here
 * is a committed key: every CA exists only for the test that makes it.
 */
import 'reflect-metadata';
import { webcrypto, type webcrypto as WebCrypto } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { parseEkCertificate, type EkCertificate } from '../../src/tpm/ek/index.js';

/** Real-hardware fixtures, outside the repository (see ../shared/fixtures/real/PROVENANCE.md). */
export const REAL = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures', 'real');
export const HAVE_REAL = existsSync(REAL);
if (!HAVE_REAL) console.warn(`[test/ek] ${REAL} is absent: tests on real EK certificates are skipped`);

/** Reads a real fixture file as bytes. */
export function real(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(REAL, rel)));
}

/** Parses a real fixture certificate. */
export function realCert(rel: string): EkCertificate {
  return parseEkCertificate(real(rel));
}

/** Key algorithms the generator can use. */
export type KeyAlg = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-pkcs1' | 'rsa-pss';

type GenParams = WebCrypto.RsaHashedKeyGenParams | WebCrypto.EcKeyGenParams;
type SignParams = WebCrypto.Algorithm | WebCrypto.EcdsaParams | WebCrypto.RsaPssParams;
type KeyPair = WebCrypto.CryptoKeyPair;

const GEN: Record<KeyAlg, { key: GenParams; sign: SignParams }> = {
  'ecdsa-p256': { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  'ecdsa-p384': { key: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } },
  'rsa-pkcs1': {
    key: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
  'rsa-pss': {
    key: { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSA-PSS', saltLength: 32 },
  },
};

/** A generated certificate with its key pair. */
export interface TestCa {
  readonly name: string;
  readonly keys: KeyPair;
  readonly alg: KeyAlg;
  readonly cert: x509.X509Certificate;
  readonly ek: EkCertificate;
}

/** Options of {@link issue}. */
export interface IssueOptions {
  readonly alg?: KeyAlg;
  /** basicConstraints: undefined = CA without path length; false = extension absent; object = as given. */
  readonly ca?: false | { readonly ca: boolean; readonly pathLength?: number };
  /** keyUsage flags; false = extension absent. Default keyCertSign|cRLSign for CAs, keyEncipherment otherwise. */
  readonly keyUsage?: number | false;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extra?: readonly x509.Extension[];
  readonly serial?: string;
}

export const T0 = new Date('2020-01-01T00:00:00Z');
export const T1 = new Date('2040-01-01T00:00:00Z');

export async function generateKeys(alg: KeyAlg): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(GEN[alg].key, true, ['sign', 'verify'])) as KeyPair;
}

/**
 * Issues a certificate for `name` signed by `issuer` (self-signed when `issuer` is undefined).
 * A leaf is made with `ca: false`.
 */
export async function issue(name: string, issuer: TestCa | undefined, opts: IssueOptions = {}): Promise<TestCa> {
  const alg = opts.alg ?? issuer?.alg ?? 'ecdsa-p256';
  const keys = await generateKeys(alg);
  const isCa = opts.ca === undefined ? true : opts.ca !== false && opts.ca.ca;
  const extensions: x509.Extension[] = [];
  if (opts.ca === undefined) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  else if (opts.ca !== false) extensions.push(new x509.BasicConstraintsExtension(opts.ca.ca, opts.ca.pathLength, true));
  const ku = opts.keyUsage ?? (isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.keyEncipherment);
  if (ku !== false) extensions.push(new x509.KeyUsagesExtension(ku, true));
  extensions.push(...(opts.extra ?? []));
  const signer = issuer ?? { name, keys, alg };
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? '0102030405',
    subject: name,
    issuer: signer.name,
    notBefore: opts.notBefore ?? T0,
    notAfter: opts.notAfter ?? T1,
    signingAlgorithm: GEN[signer.alg].sign,
    publicKey: keys.publicKey,
    signingKey: signer.keys.privateKey,
    extensions,
  });
  return { name, keys, alg, cert, ek: parseEkCertificate(new Uint8Array(cert.rawData)) };
}
