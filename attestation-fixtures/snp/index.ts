/**
 * TEST-ONLY loaders of the committed fake AMD SEV-SNP hierarchy (./README.md). These keys and
 * certificates are never trusted by default; nothing in src/ may import this module.
 */
import 'reflect-metadata';
import { createPrivateKey, webcrypto, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { FIXTURE, TEST_SNP_DIR, amdVcekExtensions, pssSign, type FixtureTcb } from './shared.js';

export { AMD_OID, FIXTURE, amdVcekExtensions, derToPem, type FixtureTcb } from './shared.js';

/** The committed TEST-ONLY chain and its facts. */
export interface TestSnpChain {
  /** Product the chain is for, as in KDS URLs. */
  readonly product: 'Milan';
  /** DER of the self-signed TEST-ONLY ARK. */
  readonly ark: Uint8Array;
  /** DER of the TEST-ONLY ASK, signed by the ARK. */
  readonly ask: Uint8Array;
  /** DER of the TEST-ONLY VCEK, signed by the ASK, with the AMD extensions. */
  readonly vcek: Uint8Array;
  /** The VCEK's P-384 private key, to sign synthetic reports. */
  readonly vcekPrivateKey: KeyObject;
  /** ASK then ARK, PEM: the body KDS serves at /vcek/v1/{product}/cert_chain. */
  readonly certChainPem: string;
  /** DER CRL signed by the ARK, revoking nothing. */
  readonly crl: Uint8Array;
  /** DER CRL signed by the ARK, revoking the ASK's serial. */
  readonly crlRevokingAsk: Uint8Array;
  /** 64-byte hwID of the VCEK (the report's CHIP_ID). */
  readonly chipId: Uint8Array;
  /** The VCEK's TCB SPLs. */
  readonly tcb: FixtureTcb;
}

function file(name: string): Buffer {
  return readFileSync(join(TEST_SNP_DIR, name));
}

function pemToDer(pem: string): Uint8Array {
  return new Uint8Array(new x509.X509Certificate(pem).rawData);
}

/** Loads the committed TEST-ONLY chain (synchronous; a few small files). */
export function testSnpChain(): TestSnpChain {
  return {
    product: FIXTURE.product,
    ark: pemToDer(file('ark.pem').toString('utf8')),
    ask: pemToDer(file('ask.pem').toString('utf8')),
    vcek: new Uint8Array(file('vcek.der')),
    vcekPrivateKey: createPrivateKey(file('vcek.key.pem')),
    certChainPem: file('cert_chain.pem').toString('utf8'),
    crl: new Uint8Array(file('crl.der')),
    crlRevokingAsk: new Uint8Array(file('crl-revoking-ask.der')),
    chipId: new Uint8Array(FIXTURE.chipId),
    tcb: { ...FIXTURE.tcb },
  };
}

/** Options of {@link issueTestVcek}. */
export interface IssueTestVcekOptions {
  readonly chipId?: Uint8Array;
  readonly tcb?: FixtureTcb;
  readonly productName?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly serial?: string;
  /** Extensions appended after the AMD ones (e.g. a second, conflicting hwID). */
  readonly extraExtensions?: readonly x509.Extension[];
}

/**
 * Issues a further TEST-ONLY VCEK under the committed ASK (another chip, another TCB, an
 * expired one...), with a fresh P-384 key.
 */
export async function issueTestVcek(opts: IssueTestVcekOptions = {}): Promise<{ der: Uint8Array; privateKey: KeyObject }> {
  const askPem = file('ask.key.pem').toString('utf8');
  const askDer = createPrivateKey(askPem).export({ format: 'der', type: 'pkcs8' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', askDer, { name: 'RSA-PSS', hash: 'SHA-384' }, false, ['sign']);
  const pair = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? '7f',
    subject: FIXTURE.names.vcek,
    issuer: FIXTURE.names.ask,
    notBefore: opts.notBefore ?? FIXTURE.vcekNotBefore,
    notAfter: opts.notAfter ?? FIXTURE.vcekNotAfter,
    signingAlgorithm: pssSign,
    publicKey: pair.publicKey,
    signingKey,
    extensions: [...amdVcekExtensions(opts.productName ?? FIXTURE.productName, opts.chipId ?? FIXTURE.chipId, opts.tcb ?? FIXTURE.tcb), ...(opts.extraExtensions ?? [])],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  return { der: new Uint8Array(cert.rawData), privateKey };
}
