/**
 * Quotes signed in-process by keys that node:crypto generates, shaped exactly like a TPM's: used
 * to exercise every rejection path without a TPM.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  TPM_ALG,
  TPM_ECC,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST,
  encodeTpmsAttest,
  encodeTpmtSignature,
  pcrSelection,
  type PcrSelection,
  type TpmtPublic,
} from '../../src/tpm/abi/index.js';
import { AK_TEMPLATE_ECC_P256, AK_TEMPLATE_RSA2048 } from '../../src/tpm/templates.js';
import type { PcrValues } from '../../src/tpm/verify/quote.js';

export interface SyntheticAk {
  readonly public: TpmtPublic;
  readonly privateKey: KeyObject;
}

export function syntheticAk(kind: 'ecc' | 'rsa'): SyntheticAk {
  if (kind === 'ecc') {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    return {
      privateKey,
      public: {
        ...AK_TEMPLATE_ECC_P256,
        unique: { x: new Uint8Array(Buffer.from(jwk.x as string, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y as string, 'base64url')) },
      },
    };
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    privateKey,
    public: { ...AK_TEMPLATE_RSA2048, unique: new Uint8Array(Buffer.from(jwk.n as string, 'base64url')) },
  };
}

/** PCR values 0..23 of sha1 and sha256 banks, deterministic from a seed. */
export function syntheticPcrs(seed = 'pcr'): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [alg, name] of [
    [TPM_ALG.SHA1, 'sha1'],
    [TPM_ALG.SHA256, 'sha256'],
  ] as const) {
    const m = new Map<number, Uint8Array>();
    for (let i = 0; i < 24; i++) m.set(i, new Uint8Array(createHash(name).update(`${seed}-${i}`).digest()));
    out.set(alg, m);
  }
  return out;
}

export interface SyntheticQuote {
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly selection: PcrSelection;
}

/** A TPM-shaped quote over `selection` of `pcrs`, signed by `ak`. */
export function syntheticQuote(
  ak: SyntheticAk,
  nonce: Uint8Array,
  pcrs: PcrValues,
  selection: PcrSelection = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]),
  clock: { resetCount?: number; restartCount?: number; clock?: bigint } = {},
): SyntheticQuote {
  const h = createHash('sha256');
  for (const bank of selection) for (const p of bank.pcrs) h.update(pcrs.get(bank.hashAlg)?.get(p) ?? new Uint8Array(0));
  const attest = encodeTpmsAttest({
    magic: TPM_GENERATED_VALUE,
    qualifiedSigner: new Uint8Array(34).fill(7),
    extraData: nonce,
    clockInfo: { clock: clock.clock ?? 1000n, resetCount: clock.resetCount ?? 1, restartCount: clock.restartCount ?? 0, safe: true },
    firmwareVersion: 0x2019102300000000n,
    attested: { type: TPM_ST_ATTEST.QUOTE, quote: { pcrSelect: selection, pcrDigest: new Uint8Array(h.digest()) } },
  });
  return { attest, signature: signAttest(ak, attest), selection };
}

/** A TPMT_SIGNATURE over `attest` with the AK's scheme (ECDSA-SHA256 or RSASSA-SHA256). */
export function signAttest(ak: SyntheticAk, attest: Uint8Array): Uint8Array {
  if (ak.public.type === TPM_ALG.ECC) {
    const rs = sign('sha256', attest, { key: ak.privateKey, dsaEncoding: 'ieee-p1363' });
    return encodeTpmtSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: rs.subarray(0, 32), s: rs.subarray(32) });
  }
  return encodeTpmtSignature({ sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, sig: sign('sha256', attest, ak.privateKey) });
}
