/**
 * Fuzzing the certificate parser and the chain check: random bytes, random PEM-looking text and
 * mutated certificates only ever produce a VouchError (never another exception), and a mutated
 * certificate never verifies unless its signed bytes are unchanged.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual } from '../../src/lib/bytes.js';
import { isVouchError } from '../../src/lib/errors.js';
import { parseEkCertificate, trustStoreFromCerts, verifyEkChain, type EkCertificate, type EkTrustStore } from '../../src/tpm/ek/index.js';
import { HAVE_REAL, realCert, issue } from './helpers.js';

const NOW = new Date('2025-06-01T00:00:00Z');

/** Runs `f`; a thrown value must be a VouchError. Returns the result or undefined. */
function onlyVouchErrors<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!isVouchError(e)) throw new Error(`non-VouchError thrown: ${String(e)}`, { cause: e });
    expect(e.code).toBe('EK_CERT_MALFORMED');
    return undefined;
  }
}

interface Corpus {
  readonly certs: readonly EkCertificate[];
  readonly trust: EkTrustStore;
}

async function corpus(): Promise<Corpus> {
  if (HAVE_REAL) {
    const names = [
      'tpm/ek-certs/stm-st33htphahb4-rsa-ek.padded.der',
      'tpm/ek-certs/stm-st33htphahb4-ecc-ek.der',
      'tpm/ek-certs/nuvoton-npct75x-rsa-ek.der',
      'tpm/ek-certs/nuvoton-root-ca-2110.nonder.der',
      'tpm/ek-certs/gce-uca_tpm_rsa_enc_cert.pem',
    ];
    const certs = names.map(realCert);
    const trust = trustStoreFromCerts([
      realCert('roots/tpm-vendors/keylime-tpm_cert_store/STM_RSA_05I.pem'),
      realCert('roots/tpm-vendors/keylime-tpm_cert_store/STM_ECC_01I.pem'),
      realCert('roots/tpm-vendors/keylime-tpm_cert_store/NUVO_2111.pem'),
      realCert('roots/tpm-vendors/keylime-tpm_cert_store/NUVO_2110.pem'),
      realCert('roots/google-vtpm/tpm_ek_intermediate_3.crt'),
    ]);
    for (const c of certs) expect(verifyEkChain(c, { trust, now: NOW }).ok).toBe(true);
    return { certs, trust };
  }
  const root = await issue('CN=Fuzz Root', undefined, { alg: 'rsa-pkcs1' });
  const leaf = await issue('CN=Fuzz EK', root, { ca: { ca: false }, alg: 'ecdsa-p256' });
  return { certs: [root.ek, leaf.ek], trust: trustStoreFromCerts([root.ek]) };
}

describe('EK certificate parser and chain fuzzing', () => {
  it('random bytes only ever produce EK_CERT_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
        onlyVouchErrors(() => parseEkCertificate(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes behind a SEQUENCE header only ever produce EK_CERT_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 1200 }), (body) => {
        const header = body.length < 128 ? [0x30, body.length] : [0x30, 0x82, body.length >> 8, body.length & 0xff];
        onlyVouchErrors(() => parseEkCertificate(new Uint8Array([...header, ...body])));
      }),
      { numRuns: 500 },
    );
  });

  it('PEM-looking text only ever produces EK_CERT_MALFORMED', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.string({ maxLength: 40 }), (body, tail) => {
        const text = `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n${tail}`;
        onlyVouchErrors(() => parseEkCertificate(new TextEncoder().encode(text)));
      }),
      { numRuns: 300 },
    );
  });

  it('mutated certificates fail with VouchErrors or fail the chain; none verifies with changed signed bytes', async () => {
    const { certs, trust } = await corpus();
    const mutation = fc.record({
      which: fc.nat(),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
    });
    fc.assert(
      fc.property(mutation, ({ which, edits, cut }) => {
        const orig = certs[which % certs.length] as EkCertificate;
        let der = orig.der.slice();
        for (const [pos, val] of edits) der[pos % der.length] = val;
        if (cut !== undefined) der = der.subarray(0, cut % der.length);
        const parsed = onlyVouchErrors(() => parseEkCertificate(der));
        if (parsed === undefined) return;
        // Chain checks return values; they never throw for a parsed certificate.
        const r = verifyEkChain(parsed, { trust, now: NOW });
        if (r.ok) expect(bytesEqual(parsed.tbs, orig.tbs) && bytesEqual(parsed.signature, orig.signature)).toBe(true);
        else expect(r.failures.length).toBeGreaterThan(0);
      }),
      { numRuns: 400 },
    );
  });
});
