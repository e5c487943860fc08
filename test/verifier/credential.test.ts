/**
 * MakeCredential (src/tpm/credential.ts) checked against an independent, spec-written
 * ActivateCredential (test/helpers/verifier.ts): the secret comes back only for the EK and the
 * AK name it was made for.
 */
import { describe, expect, it } from 'vitest';
import { makeCredential } from '../../src/tpm/credential.js';
import { syntheticAk } from '../helpers/synthetic.js';
import { ActivationError, activateCredentialInSoftware, nameOf, seededRandom, syntheticEk } from '../helpers/verifier.js';

describe('credential activation in software', () => {
  const ek = syntheticEk();
  const ak = syntheticAk('ecc');
  const akName = nameOf(ak.public);
  const credential = seededRandom('credential')(32);
  const made = makeCredential({ ekPublic: ek.public, akName, credential });

  it('recovers the credential MakeCredential sealed to this EK and AK name', () => {
    const got = activateCredentialInSoftware({ ekPrivateKey: ek.privateKey, akName, credentialBlob: made.credentialBlob, secret: made.secret });
    expect(Buffer.from(got).toString('hex')).toBe(Buffer.from(credential).toString('hex'));
  });

  it('refuses another AK name (the outer HMAC binds the AK)', () => {
    const other = nameOf(syntheticAk('ecc').public);
    expect(() => activateCredentialInSoftware({ ekPrivateKey: ek.privateKey, akName: other, credentialBlob: made.credentialBlob, secret: made.secret })).toThrow(/HMAC/);
  });

  it('refuses another EK (the seed does not decrypt)', () => {
    const otherEk = syntheticEk();
    expect(() => activateCredentialInSoftware({ ekPrivateKey: otherEk.privateKey, akName, credentialBlob: made.credentialBlob, secret: made.secret })).toThrow(ActivationError);
  });

  it('refuses a flipped byte of encIdentity', () => {
    const blob = made.credentialBlob.slice();
    blob[blob.length - 1] = (blob[blob.length - 1] as number) ^ 1;
    expect(() => activateCredentialInSoftware({ ekPrivateKey: ek.privateKey, akName, credentialBlob: blob, secret: made.secret })).toThrow(/HMAC/);
  });

  it('recovers credentials of every length up to the digest size', () => {
    for (const n of [1, 16, 31, 32]) {
      const c = seededRandom(`len-${n}`)(n);
      const m = makeCredential({ ekPublic: ek.public, akName, credential: c });
      expect(activateCredentialInSoftware({ ekPrivateKey: ek.privateKey, akName, credentialBlob: m.credentialBlob, secret: m.secret })).toEqual(c);
    }
  });
});
