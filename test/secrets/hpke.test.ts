/** HPKE against RFC 9180 Appendix A.3.1 (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode). */
import { describe, expect, it } from 'vitest';
import { keySchedule, openBase, sealBase } from '../../src/secrets/hpke.js';

const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const A31 = {
  skEm: '4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb',
  pkEm: '04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4',
  pkRm: '04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0',
  skRm: 'f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2',
  info: '4f6465206f6e2061204772656369616e2055726e',
  sharedSecret: 'c0d26aeab536609a572b07695d933b589dcf363ff9d93c93adea537aeabb8cb8',
  key: '868c066ef58aae6dc589b6cfdd18f97e',
  baseNonce: '4e0bc5018beba4bf004cca59',
  aad0: '436f756e742d30',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  ct0: '5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434',
};

describe('HPKE, RFC 9180 A.3.1', () => {
  it('derives the key and base nonce of the vector', () => {
    const ks = keySchedule(h(A31.sharedSecret), h(A31.info));
    expect(Buffer.from(ks.key).toString('hex')).toBe(A31.key);
    expect(Buffer.from(ks.baseNonce).toString('hex')).toBe(A31.baseNonce);
  });

  it('seals to the vector ciphertext with the vector ephemeral key', () => {
    const s = sealBase(h(A31.pkRm), h(A31.info), h(A31.aad0), h(A31.pt), h(A31.skEm));
    expect(Buffer.from(s.enc).toString('hex')).toBe(A31.pkEm);
    expect(Buffer.from(s.ciphertext).toString('hex')).toBe(A31.ct0);
  });

  it('opens the vector ciphertext', () => {
    const pt = openBase({ enc: h(A31.pkEm), ciphertext: h(A31.ct0) }, h(A31.skRm), h(A31.info), h(A31.aad0));
    expect(Buffer.from(pt).toString('hex')).toBe(A31.pt);
  });

  it('refuses another info, aad, a flipped byte or a bad enc (RELEASE_HPKE_INVALID)', () => {
    const ct = h(A31.ct0);
    const open = (enc: Uint8Array, c: Uint8Array, info: Uint8Array, aad: Uint8Array) => () => openBase({ enc, ciphertext: c }, h(A31.skRm), info, aad);
    expect(open(h(A31.pkEm), ct, h('00'), h(A31.aad0))).toThrow(expect.objectContaining({ code: 'RELEASE_HPKE_INVALID' }));
    expect(open(h(A31.pkEm), ct, h(A31.info), h('00'))).toThrow(expect.objectContaining({ code: 'RELEASE_HPKE_INVALID' }));
    const flipped = ct.slice();
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    expect(open(h(A31.pkEm), flipped, h(A31.info), h(A31.aad0))).toThrow(expect.objectContaining({ code: 'RELEASE_HPKE_INVALID' }));
    const badEnc = h(A31.pkEm);
    badEnc[64] = (badEnc[64] ?? 0) ^ 1;
    expect(open(badEnc, ct, h(A31.info), h(A31.aad0))).toThrow(expect.objectContaining({ code: 'RELEASE_HPKE_INVALID' }));
  });

  it('round-trips with a fresh ephemeral key', () => {
    const s1 = sealBase(h(A31.pkRm), h('01'), new Uint8Array(0), h('cafe'));
    const s2 = sealBase(h(A31.pkRm), h('01'), new Uint8Array(0), h('cafe'));
    expect(Buffer.from(s1.enc).equals(Buffer.from(s2.enc))).toBe(false);
    expect(Buffer.from(openBase(s1, h(A31.skRm), h('01'), new Uint8Array(0))).toString('hex')).toBe('cafe');
  });
});
