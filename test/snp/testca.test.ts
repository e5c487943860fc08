/**
 * The committed TEST-ONLY AMD hierarchy (attestation-fixtures/snp): the chain verifies with
 * RSASSA-PSS SHA-384, the VCEK carries the generated AMD extensions, the CRLs are the ARK's,
 * and nothing in src/ can reach these keys.
 */
import 'reflect-metadata';
import { X509Certificate as NodeX509, constants, createPublicKey, sign, verify } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { FIXTURE, issueTestVcek, testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { decodeVcekExtensions } from '../../src/snp/collateral.js';
import { splitPemCertificates } from '../../src/tpm/ek/index.js';

const t = testSnpChain();
const node = (der: Uint8Array) => new NodeX509(Buffer.from(der));

/** The signatureAlgorithm parameters AMD uses: SHA-384, MGF1-SHA-384, salt 48, trailer 1. */
function expectPss384(alg: unknown): void {
  expect(alg).toMatchObject({ name: 'RSA-PSS', hash: { name: 'SHA-384' }, saltLength: 48 });
}

describe('TEST-ONLY AMD chain', () => {
  it('every subject says TEST-ONLY', () => {
    for (const der of [t.ark, t.ask, t.vcek]) expect(node(der).subject).toContain('TEST-ONLY');
  });

  it('ARK is self-signed, ASK is signed by the ARK, VCEK by the ASK (RSASSA-PSS SHA-384)', () => {
    const ark = node(t.ark);
    const ask = node(t.ask);
    const vcek = node(t.vcek);
    expect(ark.verify(ark.publicKey)).toBe(true);
    expect(ask.verify(ark.publicKey)).toBe(true);
    expect(vcek.verify(ask.publicKey)).toBe(true);
    expect(ask.checkIssued(ark)).toBe(true);
    expect(vcek.checkIssued(ask)).toBe(true);
    // Not just "some key": the VCEK does not verify under the ARK, nor the ASK under itself.
    expect(vcek.verify(ark.publicKey)).toBe(false);
    expect(ask.verify(ask.publicKey)).toBe(false);
    expect(ark.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(ask.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(vcek.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    for (const der of [t.ark, t.ask, t.vcek]) {
      const c = new x509.X509Certificate(der);
      expect(c.signatureAlgorithm).toBeDefined();
      expectPss384(c.signatureAlgorithm);
    }
    expect(ark.ca).toBe(true);
    expect(ask.ca).toBe(true);
    expect(vcek.ca).toBe(false);
  });

  it('a one-byte flip in the signed part of the VCEK breaks its signature', () => {
    const bad = new Uint8Array(t.vcek);
    const cn = Buffer.from(bad).indexOf('SEV-VCEK');
    expect(cn).toBeGreaterThan(0);
    bad[cn] = (bad[cn] as number) ^ 0x01;
    expect(node(bad).verify(node(t.ask).publicKey)).toBe(false);
  });

  it('the VCEK private key is the key of the VCEK certificate', () => {
    const msg = Buffer.from('synthetic report');
    const sig = sign('sha384', msg, t.vcekPrivateKey);
    expect(verify('sha384', msg, node(t.vcek).publicKey, sig)).toBe(true);
    expect(createPublicKey(t.vcekPrivateKey).export({ format: 'der', type: 'spki' })).toEqual(
      node(t.vcek).publicKey.export({ format: 'der', type: 'spki' }),
    );
  });

  it('the VCEK extensions decode to the generated values', () => {
    const ext = decodeVcekExtensions(t.vcek);
    expect(ext).toEqual({ structVersion: 1, productName: 'Milan', product: 'Milan', hwId: t.chipId, tcb: t.tcb });
    expect(t.tcb).toEqual({ bl: 3, tee: 0, snp: 8, ucode: 0xd1 });
    expect(t.chipId.length).toBe(64);
    expect(t.chipId).toEqual(FIXTURE.chipId);
  });

  it('the KDS-shaped cert_chain.pem is the ASK then the ARK', () => {
    expect(splitPemCertificates(t.certChainPem)).toEqual([t.ask, t.ark]);
  });

  it('both CRLs verify with the ARK (RSASSA-PSS SHA-384) and not with the ASK', async () => {
    const ark = new x509.X509Certificate(t.ark);
    const ask = new x509.X509Certificate(t.ask);
    for (const der of [t.crl, t.crlRevokingAsk]) {
      const crl = new x509.X509Crl(der);
      expectPss384(crl.signatureAlgorithm);
      expect(crl.issuer).toBe(ark.subject);
      expect(await crl.verify({ publicKey: ark })).toBe(true);
      expect(await crl.verify({ publicKey: ask })).toBe(false);
      expect(crl.nextUpdate).toEqual(FIXTURE.crlNextUpdate);
    }
    // The raw algorithm identifier (id-RSASSA-PSS, 1.2.840.113549.1.1.10), not the library's reading of it.
    expect(Buffer.from(t.crl).includes(Buffer.from('06092a864886f70d01010a', 'hex'))).toBe(true);
  });

  it("one CRL revokes nothing, the other lists the ASK's serial", () => {
    const askSerial = new x509.X509Certificate(t.ask).serialNumber;
    expect(new x509.X509Crl(t.crl).entries).toEqual([]);
    const revoking = new x509.X509Crl(t.crlRevokingAsk);
    expect(revoking.entries.map((e) => e.serialNumber)).toEqual([askSerial]);
    expect(revoking.findRevoked(new x509.X509Certificate(t.ask))).not.toBeNull();
    expect(revoking.findRevoked(new x509.X509Certificate(t.vcek))).toBeNull();
  });

  it('the PSS parameters are the ones node:crypto verifies with (salt 48)', () => {
    // Re-verify the ASK's signature by hand over the TBS with explicit PSS parameters.
    const ark = node(t.ark);
    const tbsCert = new x509.X509Certificate(t.ask);
    const asn = (tbsCert as unknown as { tbs: ArrayBuffer }).tbs;
    const ok = verify(
      'sha384',
      Buffer.from(asn),
      { key: ark.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
      Buffer.from(tbsCert.signature),
    );
    expect(ok).toBe(true);
  });

  it('issueTestVcek makes a VCEK of another chip under the same ASK', async () => {
    const chipId = new Uint8Array(64).fill(0x42);
    const other = await issueTestVcek({ chipId, tcb: { bl: 1, tee: 2, snp: 3, ucode: 4 } });
    expect(node(other.der).verify(node(t.ask).publicKey)).toBe(true);
    expect(decodeVcekExtensions(other.der).hwId).toEqual(chipId);
    expect(decodeVcekExtensions(other.der).tcb).toEqual({ bl: 1, tee: 2, snp: 3, ucode: 4 });
  });
});

describe('the TEST-ONLY keys stay out of src/', () => {
  it('no file under src/ names attestation-fixtures or a TEST-ONLY name', () => {
    const root = join(import.meta.dirname, '..', '..', 'src');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/attestation-fixtures|vouch TEST-ONLY/.test(readFileSync(p, 'utf8'))) offenders.push(p);
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});
