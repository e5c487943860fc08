/** Synthetic IMA entries and signatures for the IMA tests (made with node:crypto, independent of the code under test). */
import { createHash, constants as C, privateEncrypt, sign, type KeyObject } from 'node:crypto';
import { encodeTemplateData, templateHashInput, type ImaEntry, type ImaFields, type ImaTemplateName } from '../../../src/eventlog/ima/abi.js';

const ALG_IDS: Record<string, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };

/** An entry as the kernel would list it, its template hash made with `hashAlg`. */
export function entry(index: number, template: ImaTemplateName, fields: ImaFields, opts: { hashAlg?: string; violation?: boolean; pcr?: number } = {}): ImaEntry {
  const hashAlg = opts.hashAlg ?? 'sha1';
  const templateData = encodeTemplateData(template, fields);
  const size = createHash(hashAlg).digest().length;
  const templateHash = opts.violation === true ? new Uint8Array(size) : new Uint8Array(createHash(hashAlg).update(templateHashInput({ template, templateData })).digest());
  return { index, pcr: opts.pcr ?? 10, templateHashAlg: ALG_IDS[hashAlg] as number, templateHash, template, templateData, ...fields, violation: opts.violation === true };
}

/** sha256 digest of a file body. */
export function fileDigest(body: string, alg = 'sha256'): { algorithm: string; digest: Uint8Array } {
  return { algorithm: alg, digest: new Uint8Array(createHash(alg).update(body).digest()) };
}

/** Last 4 bytes of SHA-1 over the subjectPublicKey bits (read here from the DER by position). */
export function keyIdOf(pub: KeyObject): string {
  const spki = pub.export({ format: 'der', type: 'spki' });
  const jwk = pub.export({ format: 'jwk' });
  // EC: the BIT STRING holds 04 || x || y at the end of the SPKI; RSA: the RSAPublicKey DER.
  let bits: Buffer;
  if (jwk.kty === 'EC') {
    const n = Buffer.from(jwk.x as string, 'base64url').length;
    bits = spki.subarray(spki.length - (1 + 2 * n));
  } else {
    bits = pub.export({ format: 'der', type: 'pkcs1' });
  }
  return createHash('sha1').update(bits).digest().subarray(16).toString('hex');
}

const HASH_ALGO_ID: Record<string, number> = { sha1: 2, sha256: 4, sha384: 5, sha512: 6 };
const DIGEST_INFO: Record<string, string> = {
  sha1: '3021300906052b0e03021a05000414',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** A signature v2 (03 02 algo keyid size sig) by `priv` over the digest of `body`. */
export function imaSign(priv: KeyObject, pub: KeyObject, body: string, alg = 'sha256', keyId = keyIdOf(pub)): Uint8Array {
  let sig: Buffer;
  if (priv.asymmetricKeyType === 'rsa') {
    const d = createHash(alg).update(body).digest();
    sig = privateEncrypt({ key: priv, padding: C.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(DIGEST_INFO[alg] as string, 'hex'), d]));
  } else {
    // ECDSA over H(body) is a signature over the digest H(body): what IMA verifies.
    sig = sign(alg, Buffer.from(body), { key: priv, dsaEncoding: 'der' });
  }
  const hdr = Buffer.alloc(9);
  hdr[0] = 3;
  hdr[1] = 2;
  hdr[2] = HASH_ALGO_ID[alg] as number;
  Buffer.from(keyId, 'hex').copy(hdr, 3);
  hdr.writeUInt16BE(sig.length, 7);
  return new Uint8Array(Buffer.concat([hdr, sig]));
}
