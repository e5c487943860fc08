/**
 * EK and TPM CA certificates (TCG EK Credential Profile 2.x §3; X.509 per RFC 5280).
 *
 * Fields are decoded by @peculiar/x509 (a BER-tolerant decoder, which is what real TPM
 * certificates need); the signed `tbsCertificate` bytes are taken from the input by
 * ./der.ts, never from a re-encoding. Everything in an {@link EkCertificate} is *claimed* by
 * the certificate until {@link verifyEkChain} has checked the chain it belongs to.
 */
import 'reflect-metadata';
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { BasicConstraintsExtension, GeneralNames, KeyUsageFlags, KeyUsagesExtension, SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';
import { ParseError, isVouchError } from '../../lib/errors.js';
import { bytesEqual, toHex } from '../../lib/bytes.js';
import { MAX_CERTIFICATE_BYTES, decodeSinglePemCertificate, locateCertificate, startsWithPemCertificate } from './der.js';

/** TCG OIDs of the TPM attributes in an EK certificate's subjectAltName directoryName (EK Credential Profile §3.2.9). */
export const TCG_OID = {
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
} as const;

/** Extension OIDs (RFC 5280 §4.2). */
export const EXT_OID = {
  subjectDirectoryAttributes: '2.5.29.9',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  certificatePolicies: '2.5.29.32',
  extKeyUsage: '2.5.29.37',
} as const;

/** A certificate signature algorithm vouch verifies, in node:crypto terms. */
export interface CertSignatureAlgorithm {
  /** The signatureAlgorithm OID. */
  readonly oid: string;
  readonly scheme: 'rsa-pkcs1' | 'rsa-pss' | 'ecdsa';
  /** node:crypto digest name. */
  readonly hash: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  /** RSASSA-PSS salt length (RFC 4055 §3.1); MGF1 uses `hash`. */
  readonly saltLength?: number;
}

/** Key usage bit names (RFC 5280 §4.2.1.3). */
export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KEY_USAGE_BITS: readonly (readonly [KeyUsageName, number])[] = [
  ['digitalSignature', KeyUsageFlags.digitalSignature],
  ['nonRepudiation', KeyUsageFlags.nonRepudiation],
  ['keyEncipherment', KeyUsageFlags.keyEncipherment],
  ['dataEncipherment', KeyUsageFlags.dataEncipherment],
  ['keyAgreement', KeyUsageFlags.keyAgreement],
  ['keyCertSign', KeyUsageFlags.keyCertSign],
  ['cRLSign', KeyUsageFlags.cRLSign],
  ['encipherOnly', KeyUsageFlags.encipherOnly],
  ['decipherOnly', KeyUsageFlags.decipherOnly],
];

/** Basic constraints (RFC 5280 §4.2.1.9). */
export interface BasicConstraints {
  readonly ca: boolean;
  /** Maximum number of non-self-issued intermediates that may follow this CA. */
  readonly pathLength?: number;
  readonly critical: boolean;
}

/** Key usage (RFC 5280 §4.2.1.3). */
export interface KeyUsage {
  readonly usages: readonly KeyUsageName[];
  readonly critical: boolean;
}

/** The TPM attributes of an EK certificate's subjectAltName (values as written, e.g. "id:53544D20"). */
export interface TpmSanAttributes {
  readonly manufacturer?: string;
  readonly model?: string;
  readonly version?: string;
}

/** A parsed EK or CA certificate. Claimed, not verified, until its chain is checked. */
export interface EkCertificate {
  /** The certificate DER exactly as received (NV padding removed). */
  readonly der: Uint8Array;
  /** The exact `tbsCertificate` bytes inside `der`: what the signature covers. */
  readonly tbs: Uint8Array;
  /** SHA-256 of `der`, hex: the certificate's identity in trust stores and messages. */
  readonly fingerprint: string;
  /** Subject as RFC 4514-style text, for messages ("" for the empty EK subject). */
  readonly subject: string;
  /** Issuer as RFC 4514-style text, for messages. */
  readonly issuer: string;
  /** Comparison key of the subject name: RDN order kept, AVAs in an RDN sorted, values case- and space-folded. */
  readonly subjectNameKey: string;
  /** Comparison key of the issuer name (see `subjectNameKey`). */
  readonly issuerNameKey: string;
  /** Serial number, hex as encoded. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject public key, imported once for every later verification. */
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER of `publicKey`. */
  readonly spki: Uint8Array;
  /** OID of the signature algorithm. */
  readonly signatureAlgorithmOid: string;
  /** The signature algorithm, or undefined when vouch cannot verify it (the chain then fails). */
  readonly signatureAlgorithm?: CertSignatureAlgorithm;
  /** signatureValue (BIT STRING content): PKCS#1/PSS bytes or a DER ECDSA-Sig-Value. */
  readonly signature: Uint8Array;
  readonly basicConstraints?: BasicConstraints;
  readonly keyUsage?: KeyUsage;
  /** TCG TPM attributes from the subjectAltName directoryName, when present. */
  readonly tpm?: TpmSanAttributes;
  /** OIDs of every extension marked critical. */
  readonly criticalExtensions: readonly string[];
  /** Subject and issuer names compare equal (a root or a self-issued CA). */
  readonly selfIssued: boolean;
}

/**
 * @peculiar/x509 keeps the decoded ASN.1 structure protected; this subclass reads it once so
 * that algorithm identifiers, names and the raw TBS can be compared without a re-encoding.
 */
class AsnX509Certificate extends X509Certificate {
  get asnCertificate() {
    return this.asn;
  }
}

/** Same for GeneralNames: the directoryName of a subjectAltName as decoded ASN.1. */
class AsnGeneralNames extends GeneralNames {
  get asnNames() {
    return this.asn;
  }
}

type AsnCertificate = AsnX509Certificate['asnCertificate'];
type AsnName = AsnCertificate['tbsCertificate']['subject'];
type AsnAlgorithmIdentifier = AsnCertificate['signatureAlgorithm'];
type AsnAttributeValue = AsnName[number][number]['value'];

function malformed(message: string, field: string, cause?: unknown): ParseError {
  return new ParseError('EK_CERT_MALFORMED', message, { field, ...(cause !== undefined ? { cause } : {}) });
}

function viewOf(b: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b);
}

/** One attribute value as a comparison token: strings case- and whitespace-folded (RFC 4518 in short), other types as hex. */
function attributeValueKey(v: AsnAttributeValue): string {
  if (v.anyValue !== undefined) return `#${toHex(viewOf(v.anyValue))}`;
  return `s:${v.toString().normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase()}`;
}

/**
 * Comparison key of a Name (RFC 5280 §7.1): the RDN sequence in order, the attributes of each
 * RDN as a set. Sorting inside each RDN is what lets Nuvoton's unsorted multi-valued RDNs
 * match the same name written in DER order.
 */
function nameKeyOf(name: AsnName): string {
  return JSON.stringify(name.map((rdn) => rdn.map((atv) => `${atv.type}=${attributeValueKey(atv.value)}`).sort()));
}

const ALGS: Readonly<Record<string, Omit<CertSignatureAlgorithm, 'oid'>>> = {
  '1.2.840.113549.1.1.5': { scheme: 'rsa-pkcs1', hash: 'sha1' },
  '1.2.840.113549.1.1.11': { scheme: 'rsa-pkcs1', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { scheme: 'rsa-pkcs1', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { scheme: 'rsa-pkcs1', hash: 'sha512' },
  '1.2.840.10045.4.1': { scheme: 'ecdsa', hash: 'sha1' },
  '1.2.840.10045.4.3.2': { scheme: 'ecdsa', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { scheme: 'ecdsa', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { scheme: 'ecdsa', hash: 'sha512' },
};
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const WEB_HASH: Readonly<Record<string, CertSignatureAlgorithm['hash']>> = {
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

/** Maps the certificate's signatureAlgorithm to node:crypto terms; undefined when unsupported. */
function signatureAlgorithmOf(cert: AsnX509Certificate, alg: AsnAlgorithmIdentifier): CertSignatureAlgorithm | undefined {
  const known = ALGS[alg.algorithm];
  if (known !== undefined) return { oid: alg.algorithm, ...known };
  if (alg.algorithm !== OID_RSASSA_PSS) return undefined;
  // RSASSA-PSS-params are decoded by @peculiar/x509 (hash and salt length, RFC 4055 §3.1).
  const web: unknown = cert.signatureAlgorithm;
  if (typeof web !== 'object' || web === null) return undefined;
  const w = web as { hash?: { name?: unknown }; saltLength?: unknown };
  const hash = typeof w.hash?.name === 'string' ? WEB_HASH[w.hash.name] : undefined;
  if (hash === undefined || typeof w.saltLength !== 'number') return undefined;
  return { oid: alg.algorithm, scheme: 'rsa-pss', hash, saltLength: w.saltLength };
}

const NULL_PARAMS = Uint8Array.of(0x05, 0x00);

/** AlgorithmIdentifier equality with absent and NULL parameters treated alike (RFC 4055 §2.1 allows both for RSA). */
function sameAlgorithm(a: AsnAlgorithmIdentifier, b: AsnAlgorithmIdentifier): boolean {
  if (a.algorithm !== b.algorithm) return false;
  const pa = a.parameters == null ? NULL_PARAMS : viewOf(a.parameters);
  const pb = b.parameters == null ? NULL_PARAMS : viewOf(b.parameters);
  return bytesEqual(pa, pb);
}

function tpmAttributesOf(san: SubjectAlternativeNameExtension): TpmSanAttributes | undefined {
  const names = new AsnGeneralNames(san.value).asnNames;
  let manufacturer: string | undefined;
  let model: string | undefined;
  let version: string | undefined;
  for (const gn of names) {
    if (gn.directoryName === undefined) continue;
    for (const rdn of gn.directoryName) {
      for (const atv of rdn) {
        const value = atv.value.anyValue !== undefined ? toHex(viewOf(atv.value.anyValue)) : atv.value.toString();
        if (atv.type === TCG_OID.tpmManufacturer) manufacturer ??= value;
        else if (atv.type === TCG_OID.tpmModel) model ??= value;
        else if (atv.type === TCG_OID.tpmVersion) version ??= value;
      }
    }
  }
  if (manufacturer === undefined && model === undefined && version === undefined) return undefined;
  return {
    ...(manufacturer !== undefined ? { manufacturer } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(version !== undefined ? { version } : {}),
  };
}

/** Decodes the located DER with @peculiar/x509 and builds the EkCertificate. */
function decode(der: Uint8Array, tbs: Uint8Array): EkCertificate {
  const x = new AsnX509Certificate(der);
  const asn = x.asnCertificate;

  // The library must have decoded the very element we located: same TBS bytes.
  if (asn.tbsCertificateRaw !== undefined && !bytesEqual(viewOf(asn.tbsCertificateRaw), tbs)) {
    throw malformed('tbsCertificate decoded by the X.509 library is not the located element', 'Certificate.tbsCertificate');
  }
  if (asn.tbsCertificate.version !== 2) {
    // v1/v2 certificates carry no basic constraints, so they can never be issuers; EKs are v3.
    throw malformed(`certificate version ${asn.tbsCertificate.version + 1}, expected 3`, 'Certificate.tbsCertificate.version');
  }
  // RFC 5280 §4.1.1.2: signatureAlgorithm MUST equal tbsCertificate.signature.
  if (!sameAlgorithm(asn.signatureAlgorithm, asn.tbsCertificate.signature)) {
    throw malformed(
      `signatureAlgorithm ${asn.signatureAlgorithm.algorithm} differs from tbsCertificate.signature ${asn.tbsCertificate.signature.algorithm}`,
      'Certificate.signatureAlgorithm',
    );
  }

  const spkiIn = viewOf(x.publicKey.rawData);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiIn), format: 'der', type: 'spki' });
  } catch (e) {
    throw malformed('subjectPublicKeyInfo is not a key node:crypto can import', 'Certificate.tbsCertificate.subjectPublicKeyInfo', e);
  }
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));

  const extensions = x.extensions;
  const criticalExtensions: string[] = [];
  const seen = new Set<string>();
  for (const e of extensions) {
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
    if (seen.has(e.type)) throw malformed(`extension ${e.type} appears twice`, `Certificate.tbsCertificate.extensions.${e.type}`);
    seen.add(e.type);
    if (e.critical) criticalExtensions.push(e.type);
  }

  const bcExt = x.getExtension(BasicConstraintsExtension);
  const basicConstraints: BasicConstraints | undefined =
    bcExt === null ? undefined : { ca: bcExt.ca, ...(bcExt.pathLength !== undefined ? { pathLength: bcExt.pathLength } : {}), critical: bcExt.critical };
  const kuExt = x.getExtension(KeyUsagesExtension);
  const keyUsage: KeyUsage | undefined =
    kuExt === null ? undefined : { usages: KEY_USAGE_BITS.filter(([, bit]) => (kuExt.usages & bit) !== 0).map(([n]) => n), critical: kuExt.critical };
  const sanExt = x.getExtension(SubjectAlternativeNameExtension);
  const tpm = sanExt === null ? undefined : tpmAttributesOf(sanExt);

  const subjectNameKey = nameKeyOf(asn.tbsCertificate.subject);
  const issuerNameKey = nameKeyOf(asn.tbsCertificate.issuer);
  const signatureAlgorithm = signatureAlgorithmOf(x, asn.signatureAlgorithm);
  return {
    der,
    tbs,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    subject: x.subject,
    issuer: x.issuer,
    subjectNameKey,
    issuerNameKey,
    serial: x.serialNumber,
    notBefore: x.notBefore,
    notAfter: x.notAfter,
    publicKey,
    spki,
    signatureAlgorithmOid: asn.signatureAlgorithm.algorithm,
    ...(signatureAlgorithm !== undefined ? { signatureAlgorithm } : {}),
    signature: viewOf(asn.signatureValue).slice(),
    ...(basicConstraints !== undefined ? { basicConstraints } : {}),
    ...(keyUsage !== undefined ? { keyUsage } : {}),
    ...(tpm !== undefined ? { tpm } : {}),
    criticalExtensions,
    selfIssued: subjectNameKey === issuerNameKey,
  };
}

/**
 * Parses an EK or CA certificate.
 *
 * Accepts DER, or PEM when the input starts with `-----BEGIN CERTIFICATE-----` (one block;
 * no other format is guessed). DER read from TPM NV may be followed by 0xFF/0x00 padding,
 * which is cut at the outer SEQUENCE's declared length; any other trailing byte is an error.
 * Non-canonical encodings inside the certificate (unsorted RDN SETs, non-minimal lengths)
 * are tolerated because signatures are later checked over the exact `tbs` bytes.
 *
 * @throws ParseError EK_CERT_MALFORMED for anything that is not such a certificate
 */
export function parseEkCertificate(bytes: Uint8Array): EkCertificate {
  if (!(bytes instanceof Uint8Array)) throw malformed('certificate input is not a byte array', 'Certificate');
  if (bytes.length > 4 * MAX_CERTIFICATE_BYTES) {
    throw new ParseError('EK_CERT_MALFORMED', `certificate input of ${bytes.length} bytes is too large`, {
      field: 'Certificate',
      expected: `<= ${4 * MAX_CERTIFICATE_BYTES} bytes`,
      actual: `${bytes.length} bytes`,
    });
  }
  const input = startsWithPemCertificate(bytes) ? decodeSinglePemCertificate(bytes) : bytes;
  const { der, tbs } = locateCertificate(input);
  // Own copy: the caller's buffer may be reused (NV read buffers are).
  const own = der.slice();
  const ownTbs = own.subarray(tbs.byteOffset - der.byteOffset, tbs.byteOffset - der.byteOffset + tbs.length);
  try {
    return decode(own, ownTbs);
  } catch (e) {
    if (isVouchError(e)) throw e;
    // The X.509 library throws plain Errors (and TypeErrors on some malformed inputs).
    const why = e instanceof Error ? e.message : String(e);
    throw malformed(`certificate does not decode: ${why}`, 'Certificate', e);
  }
}
