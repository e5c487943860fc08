/**
 * HPKE (RFC 9180), base mode, one suite only: DHKEM(P-256, HKDF-SHA256) (kem_id 0x0010),
 * HKDF-SHA256 (kdf_id 0x0001), AES-128-GCM (aead_id 0x0001); single-shot seal and open
 * (sequence number 0). Built on node:crypto ECDH, HMAC and AES-GCM; checked against the RFC's
 * Appendix A.3.1 vectors (test/secrets/hpke.test.ts).
 */
import { createCipheriv, createDecipheriv, createECDH, createHmac } from 'node:crypto';
import { MisuseError, VerificationError } from '../lib/errors.js';

/** The suite's identifiers (RFC 9180 §7). */
export const HPKE_SUITE = { kemId: 0x0010, kdfId: 0x0001, aeadId: 0x0001 } as const;

const NENC = 65; // uncompressed SEC1 point
const NSK = 32;
const NK = 16;
const NN = 12;
const NH = 32;
const te = new TextEncoder();

function i2osp(n: number, w: number): Uint8Array {
  const out = new Uint8Array(w);
  for (let i = w - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

const KEM_SUITE_ID = cat(te.encode('KEM'), i2osp(HPKE_SUITE.kemId, 2));
const HPKE_SUITE_ID = cat(te.encode('HPKE'), i2osp(HPKE_SUITE.kemId, 2), i2osp(HPKE_SUITE.kdfId, 2), i2osp(HPKE_SUITE.aeadId, 2));

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/** RFC 9180 §4: LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm). */
function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  // An empty salt is HashLen zero bytes (RFC 5869 §2.2); HMAC pads a short key with zeros, so both are one key.
  return hmac(salt, cat(te.encode('HPKE-v1'), suiteId, te.encode(label), ikm));
}

/** RFC 9180 §4: LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L). */
function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  const labeled = cat(i2osp(length, 2), te.encode('HPKE-v1'), suiteId, te.encode(label), info);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    t = hmac(prk, cat(t, labeled, Uint8Array.of(i)));
    out.set(t.subarray(0, Math.min(NH, length - off)), off);
    off += NH;
  }
  return out;
}

/** DHKEM §4.1: shared_secret = ExtractAndExpand(dh, enc ‖ pkRm). */
function extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dh);
  return labeledExpand(KEM_SUITE_ID, prk, 'shared_secret', kemContext, NH);
}

/** The base-mode key schedule (§5.1): AEAD key and base nonce from the shared secret and info. */
export function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): { key: Uint8Array; baseNonce: Uint8Array } {
  const empty = new Uint8Array(0);
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, empty, 'psk_id_hash', empty);
  const infoHash = labeledExtract(HPKE_SUITE_ID, empty, 'info_hash', info);
  const context = cat(Uint8Array.of(0x00), pskIdHash, infoHash);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', empty);
  return { key: labeledExpand(HPKE_SUITE_ID, secret, 'key', context, NK), baseNonce: labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', context, NN) };
}

function ecdh(privateKey: Uint8Array, peer: Uint8Array, field: string): { dh: Uint8Array; publicKey: Uint8Array } {
  const e = createECDH('prime256v1');
  try {
    e.setPrivateKey(privateKey);
  } catch (cause) {
    throw new MisuseError('MISUSE_ARGUMENT', 'HPKE: the private key is not a P-256 scalar', { cause });
  }
  let dh: Uint8Array;
  try {
    dh = new Uint8Array(e.computeSecret(peer));
  } catch (cause) {
    // Not a point on the curve (or the point at infinity): DeserializePublicKey fails (§7.1.4).
    throw new VerificationError('RELEASE_HPKE_INVALID', `HPKE: ${field} is not a P-256 public key`, { field, cause });
  }
  return { dh, publicKey: new Uint8Array(e.getPublicKey(null, 'uncompressed')) };
}

/** An HPKE ciphertext: the encapsulated key and the AEAD output (tag appended). */
export interface HpkeSealed {
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/**
 * SealBase(pkR, info, aad, pt) (§6.1). `ephemeralPrivateKey` is for the RFC vectors only; by
 * default a fresh ephemeral key is generated.
 */
export function sealBase(recipientPublicKey: Uint8Array, info: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, ephemeralPrivateKey?: Uint8Array): HpkeSealed {
  if (recipientPublicKey.length !== NENC || recipientPublicKey[0] !== 0x04) throw new MisuseError('MISUSE_ARGUMENT', 'HPKE: the recipient key must be an uncompressed P-256 point', { field: 'pkR' });
  let skE = ephemeralPrivateKey;
  if (skE === undefined) {
    const g = createECDH('prime256v1');
    g.generateKeys();
    skE = new Uint8Array(g.getPrivateKey());
    if (skE.length !== NSK) skE = cat(new Uint8Array(NSK - skE.length), skE);
  }
  const { dh, publicKey: enc } = ecdh(skE, recipientPublicKey, 'pkR');
  const shared = extractAndExpand(dh, cat(enc, recipientPublicKey));
  const { key, baseNonce } = keySchedule(shared, info);
  const c = createCipheriv('aes-128-gcm', key, baseNonce);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { enc, ciphertext: new Uint8Array(ct) };
}

/** OpenBase(enc, skR, info, aad, ct) (§6.1). @throws VerificationError RELEASE_HPKE_INVALID */
export function openBase(sealed: HpkeSealed, recipientPrivateKey: Uint8Array, info: Uint8Array, aad: Uint8Array): Uint8Array {
  if (sealed.enc.length !== NENC || sealed.enc[0] !== 0x04) throw new VerificationError('RELEASE_HPKE_INVALID', 'HPKE: enc is not an uncompressed P-256 point', { field: 'enc' });
  if (sealed.ciphertext.length < 16) throw new VerificationError('RELEASE_HPKE_INVALID', 'HPKE: the ciphertext is shorter than its tag', { field: 'ciphertext' });
  const { dh, publicKey: pkR } = ecdh(recipientPrivateKey, sealed.enc, 'enc');
  const shared = extractAndExpand(dh, cat(sealed.enc, pkR));
  const { key, baseNonce } = keySchedule(shared, info);
  const d = createDecipheriv('aes-128-gcm', key, baseNonce);
  d.setAAD(aad);
  d.setAuthTag(sealed.ciphertext.subarray(sealed.ciphertext.length - 16));
  try {
    return new Uint8Array(Buffer.concat([d.update(sealed.ciphertext.subarray(0, sealed.ciphertext.length - 16)), d.final()]));
  } catch (cause) {
    throw new VerificationError('RELEASE_HPKE_INVALID', 'HPKE: the ciphertext does not open with this key, info and aad', { field: 'ciphertext', cause });
  }
}
