/**
 * MakeCredential in TypeScript, ActivateCredential by swtpm: a credential made for (EK, AK name)
 * releases its secret to the TPM holding that EK with that AK loaded, for the RSA-2048, ECC
 * P-256 and ECC P-384 EKs. Made for another EK, or for another AK's name, the TPM refuses.
 */
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, TssCommandFailure, type TpmKey } from '../../native/index.js';
import { toHex } from '../../src/lib/bytes.js';
import { TPM_ALG, hashById } from '../../src/tpm/abi/constants.js';
import type { TpmtPublic } from '../../src/tpm/abi/public.js';
import { makeCredential, type MadeCredential } from '../../src/tpm/credential.js';
import type { EkKind } from '../../src/tpm/templates.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const EK_KINDS: readonly EkKind[] = ['rsa2048', 'ecc-p256', 'ecc-p384'];

/** TPM_RC_INTEGRITY (Part 2 §6.6.3, format-one error 0x01F), whatever its parameter number. */
const TPM_RC_INTEGRITY = 0x09f;

let sw: TestSwtpm;
let tpm: Tpm;
/** The AK every credential is bound to (created under the RSA EK, which is flushed again). */
let ak: TpmKey;
/** The name of another AK, flushed after creation. */
let otherAkName: Uint8Array;
/** Each EK's public area. */
const ekPublics = new Map<EkKind, TpmtPublic>();

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
  const parent = tpm.createEk('rsa2048');
  try {
    ak = tpm.createAk(parent, 'ecc-p256');
    const other = tpm.createAk(parent, 'ecc-p256');
    otherAkName = other.name;
    tpm.flush(other);
  } finally {
    tpm.flush(parent);
  }
  for (const kind of EK_KINDS) {
    const ek = tpm.createEk(kind);
    ekPublics.set(kind, ek.public);
    tpm.flush(ek);
  }
});

afterAll(async () => {
  if (ak !== undefined) tpm.flush(ak);
  tpm?.close();
  await sw?.dispose();
});

/** Runs `fn` with the EK of `kind` loaded, flushing it afterwards. */
function withEk<T>(kind: EkKind, fn: (ek: TpmKey) => T): T {
  const ek = tpm.createEk(kind);
  try {
    return fn(ek);
  } finally {
    tpm.flush(ek);
  }
}

function credentialFor(kind: EkKind, akName: Uint8Array, secret: Uint8Array): MadeCredential {
  const ekPublic = ekPublics.get(kind);
  if (ekPublic === undefined) throw new Error(`no ${kind} EK public`);
  return makeCredential({ ekPublic, akName, credential: secret });
}

/** The TSS failure `fn` throws. */
function failureOf(fn: () => unknown): TssCommandFailure {
  try {
    fn();
  } catch (e) {
    if (e instanceof TssCommandFailure) return e;
    throw e;
  }
  throw new Error('expected the TPM to refuse the credential');
}

describe('makeCredential → TPM2_ActivateCredential on swtpm', () => {
  it('the AK names differ and the EKs are three distinct keys', () => {
    expect(toHex(otherAkName)).not.toBe(toHex(ak.name));
    expect(new Set([...ekPublics.values()].map((p) => `${p.type}:${toHex(p.raw ?? new Uint8Array(0))}`)).size).toBe(3);
  });

  for (const kind of EK_KINDS) {
    it(`${kind} EK: the TPM recovers the secret; bound to another AK name it is TPM_RC_INTEGRITY`, () => {
      const hash = hashById((ekPublics.get(kind) as TpmtPublic).nameAlg);
      if (hash === undefined) throw new Error('EK nameAlg unknown');
      // The largest credential the EK's nameAlg allows, and a short one.
      for (const secret of [randomBytes(hash.size), randomBytes(16)]) {
        const cred = credentialFor(kind, ak.name, secret);
        const got = withEk(kind, (ek) => tpm.activateCredential(ak, ek, cred.credentialBlob, cred.secret));
        expect(toHex(got)).toBe(toHex(secret));
      }

      const wrongName = credentialFor(kind, otherAkName, randomBytes(32));
      const e = withEk(kind, (ek) => failureOf(() => tpm.activateCredential(ak, ek, wrongName.credentialBlob, wrongName.secret)));
      expect(e.code).toBe('TSS_COMMAND_FAILED');
      expect(e.layer).toBe('tpm');
      expect(e.rc & 0xbf).toBe(TPM_RC_INTEGRITY);
    });
  }

  for (const [madeFor, usedWith] of [
    ['ecc-p256', 'rsa2048'],
    ['rsa2048', 'ecc-p256'],
    ['ecc-p256', 'ecc-p384'],
    ['ecc-p384', 'ecc-p256'],
  ] as const) {
    it(`a credential made for the ${madeFor} EK is refused by the ${usedWith} EK`, () => {
      const cred = credentialFor(madeFor, ak.name, randomBytes(32));
      const e = withEk(usedWith, (ek) => failureOf(() => tpm.activateCredential(ak, ek, cred.credentialBlob, cred.secret)));
      expect(e.code).toBe('TSS_COMMAND_FAILED');
    });
  }

  it('a credential made for an EK of the same template but another key (another TPM) is refused', () => {
    const rsa = ekPublics.get('rsa2048');
    const p256 = ekPublics.get('ecc-p256');
    if (rsa === undefined || rsa.type !== TPM_ALG.RSA || p256 === undefined || p256.type !== TPM_ALG.ECC) throw new Error('EK types');
    const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const otherPoint = createECDH('prime256v1');
    otherPoint.generateKeys();
    const point = otherPoint.getPublicKey();
    const foreign: Array<[EkKind, TpmtPublic]> = [
      ['rsa2048', { ...rsa, raw: undefined, unique: new Uint8Array(Buffer.from(otherRsa.n ?? '', 'base64url')) }],
      ['ecc-p256', { ...p256, raw: undefined, unique: { x: new Uint8Array(point.subarray(1, 33)), y: new Uint8Array(point.subarray(33)) } }],
    ];
    for (const [kind, ekPublic] of foreign) {
      const cred = makeCredential({ ekPublic, akName: ak.name, credential: randomBytes(32) });
      const e = withEk(kind, (ek) => failureOf(() => tpm.activateCredential(ak, ek, cred.credentialBlob, cred.secret)));
      expect(e.code).toBe('TSS_COMMAND_FAILED');
    }
  });

  it('leaves only the AK loaded and no session behind', () => {
    expect(tpm.listHandles(0x80000000)).toHaveLength(1);
    expect(tpm.listHandles(0x02000000)).toEqual([]);
    expect(tpm.listHandles(0x03000000)).toEqual([]);
  });
});
