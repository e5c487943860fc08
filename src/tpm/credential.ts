/**
 * TPM2_MakeCredential in TypeScript (TPM 2.0 Library Part 1 §24, "Credential Protection"), so a
 * verifier with no TPM of its own can bind a secret to one EK and one AK name: only the TPM that
 * holds that EK, with that AK loaded, can recover the secret with TPM2_ActivateCredential.
 *
 * ```
 * seed            RSA EK: random, nameAlg digest size; encrypted with RSA-OAEP(nameAlg, label "IDENTITY\0")
 *                 ECC EK: KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, EK.x), Z = ECDH(ephemeral, EK).x;
 *                         the "encrypted" secret is the ephemeral point (TPMS_ECC_POINT)
 * symKey          KDFa(nameAlg, seed, "STORAGE", AK name, "", EK symmetric keyBits)
 * encIdentity     AES-CFB(symKey, IV = 0, TPM2B_DIGEST(credential))
 * hmacKey         KDFa(nameAlg, seed, "INTEGRITY", "", "", nameAlg digest bits)
 * outerHMAC       HMAC(nameAlg, hmacKey, encIdentity ‖ AK name)
 * credentialBlob  TPM2B_ID_OBJECT { TPM2B_DIGEST outerHMAC ‖ encIdentity }
 * secret          TPM2B_ENCRYPTED_SECRET
 * ```
 */
import { createCipheriv, createECDH, createHash, createHmac, publicEncrypt, randomBytes, constants as C } from 'node:crypto';
import { concatBytes, u32be, utf8 } from '../lib/bytes.js';
import { MisuseError, VerificationError } from '../lib/errors.js';
import { Reader, Writer } from '../lib/reader.js';
import { ECC_CURVES, TPM2_MAX, TPM_ALG, algName, hashById, type HashAlg } from './abi/constants.js';
import { writeEccPoint, type TpmtPublic } from './abi/public.js';
import { importTpmPublic, padTo } from './verify/keys.js';

/** A null-terminated KDF label. */
function label(s: string): Uint8Array {
  return concatBytes(utf8(s), Uint8Array.of(0));
}

/** KDFa (Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC. */
export function kdfa(hash: HashAlg, key: Uint8Array, use: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const out: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have < bytes; i++) {
    const block = createHmac(hash.nodeName, key).update(u32be(i)).update(label(use)).update(contextU).update(contextV).update(u32be(bits)).digest();
    out.push(block);
    have += block.length;
  }
  return concatBytes(...out).subarray(0, bytes);
}

/** KDFe (Part 1 §11.4.10.3): SP 800-56A concatenation KDF over the ECDH shared x-coordinate. */
export function kdfe(hash: HashAlg, z: Uint8Array, use: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const out: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have < bytes; i++) {
    const block = createHash(hash.nodeName).update(u32be(i)).update(z).update(label(use)).update(partyU).update(partyV).digest();
    out.push(block);
    have += block.length;
  }
  return concatBytes(...out).subarray(0, bytes);
}

/** The output of {@link makeCredential}, as TPM wire bytes ready for TPM2_ActivateCredential. */
export interface MadeCredential {
  /** TPM2B_ID_OBJECT (with its u16 size). */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET (with its u16 size). */
  readonly secret: Uint8Array;
}

/** Inputs of {@link makeCredential}. */
export interface MakeCredentialInput {
  /** The EK public area (an RSA or ECC storage key with an AES symmetric definition). */
  readonly ekPublic: TpmtPublic;
  /** The TPM name of the AK the credential is bound to. */
  readonly akName: Uint8Array;
  /** The credential (at most the EK nameAlg's digest size). */
  readonly credential: Uint8Array;
  /** Randomness source; injectable so tests are reproducible. */
  readonly random?: (n: number) => Uint8Array;
}

/** TPM2_MakeCredential. */
export function makeCredential(input: MakeCredentialInput): MadeCredential {
  const { ekPublic: ek, akName, credential } = input;
  const random = input.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const hash = hashById(ek.nameAlg);
  if (hash === undefined) throw new MisuseError('MISUSE_ARGUMENT', `EK nameAlg ${algName(ek.nameAlg)} is not supported`);
  if (ek.type !== TPM_ALG.RSA && ek.type !== TPM_ALG.ECC) throw new MisuseError('MISUSE_ARGUMENT', 'the EK must be an RSA or ECC key');
  const sym = ek.parameters.symmetric;
  if (sym.algorithm !== TPM_ALG.AES || sym.mode !== TPM_ALG.CFB || (sym.keyBits !== 128 && sym.keyBits !== 192 && sym.keyBits !== 256)) {
    throw new MisuseError('MISUSE_ARGUMENT', 'the EK symmetric definition must be AES-CFB');
  }
  if (credential.length === 0 || credential.length > hash.size) {
    throw new MisuseError('MISUSE_ARGUMENT', `the credential must be 1..${hash.size} bytes`);
  }

  let seed: Uint8Array;
  let encryptedSecret: Uint8Array;
  if (ek.type === TPM_ALG.RSA) {
    seed = random(hash.size);
    const { key } = importTpmPublic(ek);
    encryptedSecret = new Uint8Array(
      publicEncrypt({ key, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.nodeName, oaepLabel: label('IDENTITY') }, seed),
    );
  } else {
    const curve = ECC_CURVES.find((c) => c.id === ek.parameters.curveId);
    if (curve === undefined) throw new MisuseError('MISUSE_ARGUMENT', 'unsupported EK curve');
    const ekX = padTo(ek.unique.x, curve.size);
    const ekY = padTo(ek.unique.y, curve.size);
    if (ekX === undefined || ekY === undefined) throw new VerificationError('TPM_KEY_UNSUPPORTED', 'EK point does not fit its curve');
    const nodeCurve = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[curve.jwk];
    const ecdh = createECDH(nodeCurve);
    for (;;) {
      try {
        ecdh.setPrivateKey(random(curve.size));
        break;
      } catch {
        // The scalar was zero or not below the group order: draw again (probability ~2^-128).
      }
    }
    const ephemeral = new Uint8Array(ecdh.getPublicKey());
    const ephX = ephemeral.subarray(1, 1 + curve.size);
    const ephY = ephemeral.subarray(1 + curve.size);
    let z: Uint8Array;
    try {
      z = new Uint8Array(ecdh.computeSecret(concatBytes(Uint8Array.of(4), ekX, ekY)));
    } catch (cause) {
      throw new VerificationError('TPM_KEY_UNSUPPORTED', 'EK point is not on its curve', { cause });
    }
    seed = kdfe(hash, z, 'IDENTITY', ephX, ekX, hash.size * 8);
    const w = new Writer(2 * curve.size + 4);
    writeEccPoint(w, { x: ephX, y: ephY });
    encryptedSecret = w.finish();
  }

  const symKey = kdfa(hash, seed, 'STORAGE', akName, new Uint8Array(0), sym.keyBits);
  const cipher = createCipheriv(`aes-${sym.keyBits}-cfb`, symKey, new Uint8Array(16));
  const plain = new Writer(2 + credential.length).tpm2b(credential).finish();
  const encIdentity = concatBytes(cipher.update(plain), cipher.final());
  const hmacKey = kdfa(hash, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), hash.size * 8);
  const outerHmac = createHmac(hash.nodeName, hmacKey).update(encIdentity).update(akName).digest();

  const idObject = new Writer(2 + hash.size + encIdentity.length).tpm2b(outerHmac).bytes(encIdentity).finish();
  return {
    credentialBlob: new Writer().tpm2b(idObject).finish(),
    secret: new Writer().tpm2b(encryptedSecret).finish(),
  };
}

/** Magic and version that tpm2-tools writes at the start of a makecredential output file. */
const TOOLS_MAGIC = 0xbadcc0de;
const TOOLS_VERSION = 1;

/** The credential in the file format of `tpm2_makecredential -o` / `tpm2_activatecredential -i`. */
export function encodeToolsCredentialFile(c: MadeCredential): Uint8Array {
  return new Writer().u32(TOOLS_MAGIC).u32(TOOLS_VERSION).bytes(c.credentialBlob).bytes(c.secret).finish();
}

/** Reads a tpm2-tools makecredential file. */
export function decodeToolsCredentialFile(bytes: Uint8Array): MadeCredential {
  const r = new Reader(bytes, 'tpm2-tools credential file');
  const magicAt = r.offset;
  if (r.u32('magic') !== TOOLS_MAGIC) throw r.error('PARSE_BAD_MAGIC', 'magic', 'not 0xBADCC0DE', { at: magicAt });
  const verAt = r.offset;
  if (r.u32('version') !== TOOLS_VERSION) throw r.error('PARSE_BAD_VALUE', 'version', 'only version 1 is known', { at: verAt });
  const blobStart = r.offset;
  r.tpm2b('credentialBlob', TPM2_MAX.ID_OBJECT);
  const credentialBlob = r.bytesBetween(blobStart);
  const secretStart = r.offset;
  r.tpm2b('secret', TPM2_MAX.ENCRYPTED_SECRET);
  const secret = r.bytesBetween(secretStart);
  r.finish();
  return { credentialBlob, secret };
}
