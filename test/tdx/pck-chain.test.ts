/**
 * PCK chains (leaf → PCK Platform/Processor CA → Intel SGX Root CA): the real chains carried by
 * the TDX quotes of ../shared/fixtures/real/tdx at the times of PROVENANCE.md, the pinned root,
 * and revocation with CRLs generated here under TEST-ONLY keys made by node's WebCrypto for this
 * run (named like Intel's CAs, pinned by their own fingerprint; never trusted elsewhere).
 */
import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  INTEL_SGX_ROOT_CA_FINGERPRINT,
  SGX_OID,
  TdxVerifyCache,
  parseIntelCertificate,
  parsePckChainPem,
  verifyPckChain,
  type PckChainVerification,
} from '../../src/tdx/pck.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const outcome = (r: PckChainVerification, check: string): string | undefined => r.checks.find((c) => c.check === check)?.outcome;

/** Test helper: the PEM blocks of a quote's certification data, found by their armour in the bytes. */
function chainOfQuote(dir: string): Uint8Array[] {
  const b = Buffer.from(readReal('tdx', dir, 'quote.dat'));
  const start = b.indexOf('-----BEGIN CERTIFICATE-----');
  const end = b.lastIndexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----'.length;
  return parsePckChainPem(new Uint8Array(b.subarray(start, end)));
}

const REAL_AT: Readonly<Record<string, string>> = {
  'gtg-spr-e4-v4': '2023-07-01T01:00:00Z',
  'dcapqvl-b0c06f-v4': '2025-07-01T00:00:00Z',
  'dcapqvl-emr-v5-outdated': '2026-03-01T00:00:00Z',
  'gtg-emr-v5': '2026-02-03T01:00:00Z',
  'trustee-gnr-v4': '2026-02-03T01:00:00Z',
  'gtg-gcp-cos113-ccel': '2026-02-03T01:00:00Z',
  'dcapqvl-sgx-v3': '2025-07-01T00:00:00Z',
};

describe.skipIf(!HAVE_REAL)('real PCK chains', () => {
  it('the Intel SGX Root CA file has the pinned fingerprint', () => {
    const der = readReal('roots', 'intel', 'intel-sgx-root-ca.der');
    expect(createHash('sha256').update(der).digest('hex')).toBe(INTEL_SGX_ROOT_CA_FINGERPRINT);
    expect(parseIntelCertificate(readFileSync(realPath('roots', 'intel', 'intel-sgx-root-ca.pem'))).cert.fingerprint).toBe(INTEL_SGX_ROOT_CA_FINGERPRINT);
  });

  for (const [dir, at] of Object.entries(REAL_AT)) {
    it(`${dir}: the chain in the quote verifies at ${at} (CRLs not supplied, allowed and recorded)`, () => {
      const r = verifyPckChain(chainOfQuote(dir), { now: new Date(at), allowMissingCrl: true });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.allowancesUsed).toEqual(['missingRootCaCrl', 'missingPckCrl']);
      expect(outcome(r, 'pck.chain.signatures')).toBe('pass');
      expect(r.ca).toBe(dir === 'dcapqvl-sgx-v3' ? 'processor' : 'platform');
    });
  }

  it('gtg-spr-e4-v4 with its real PCK CRL and Root CA CRL at 2023-07-01: every check passes', () => {
    const r = verifyPckChain(chainOfQuote('gtg-spr-e4-v4'), {
      now: new Date('2023-07-01T01:00:00Z'),
      pckCrl: readReal('tdx', 'gtg-spr-e4-v4', 'pck_crl.der'),
      rootCaCrl: readReal('tdx', 'gtg-spr-e4-v4', 'root_ca_crl.der'),
    });
    expect(r.ok).toBe(true);
    expect(r.allowancesUsed).toEqual([]);
    expect(r.checks.map((c) => c.outcome)).toEqual(Array(7).fill('pass'));
  });

  it('the dcap-qvl collateral CRLs check the b0c06f chain', () => {
    const c = JSON.parse(readFileSync(realPath('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'), 'utf8')) as Record<string, string>;
    const r = verifyPckChain(chainOfQuote('dcapqvl-b0c06f-v4'), {
      now: new Date('2025-07-01T00:00:00Z'),
      pckCrl: Buffer.from(c.pck_crl as string, 'hex'),
      rootCaCrl: Buffer.from(c.root_ca_crl as string, 'hex'),
    });
    expect(r.failures).toEqual([]);
  });

  it('at 2053-07-01 the gtg-spr-e4-v4 chain has expired and both CRLs are stale', () => {
    const r = verifyPckChain(chainOfQuote('gtg-spr-e4-v4'), {
      now: new Date('2053-07-01T01:00:00Z'),
      pckCrl: readReal('tdx', 'gtg-spr-e4-v4', 'pck_crl.der'),
      rootCaCrl: readReal('tdx', 'gtg-spr-e4-v4', 'root_ca_crl.der'),
    });
    expect(codes(r)).toEqual(['TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED', 'TDX_CRL_STALE', 'TDX_CRL_STALE']);
    expect(r.failures[0]).toMatchObject({ field: 'pckChain[0].tbsCertificate.validity', actual: '2053-07-01T01:00:00.000Z', expected: '2022-09-20T13:20:31.000Z..2029-09-20T13:20:31.000Z' });
  });

  it('before the PCK leaf was issued the chain is not yet valid', () => {
    expect(codes(verifyPckChain(chainOfQuote('gtg-emr-v5'), { now: new Date('2026-01-01T00:00:00Z'), allowMissingCrl: true }))).toEqual(['TDX_CHAIN_EXPIRED']);
  });

  it('without CRLs and without the allowance: TDX_CRL_MISSING for each', () => {
    const r = verifyPckChain(chainOfQuote('gtg-emr-v5'), { now: new Date(REAL_AT['gtg-emr-v5'] as string) });
    expect(codes(r)).toEqual(['TDX_CRL_MISSING', 'TDX_CRL_MISSING']);
    expect(r.failures.map((f) => f.field)).toEqual(['rootCaCrl', 'pckCrl']);
  });

  it('a chain that stops at the PCK CA takes the root from the trust directory, still pinned', () => {
    const [leaf, mid] = chainOfQuote('gtg-emr-v5');
    const root = new Uint8Array(readFileSync(realPath('roots', 'intel', 'intel-sgx-root-ca.pem')));
    const r = verifyPckChain([leaf as Uint8Array, mid as Uint8Array], { now: new Date(REAL_AT['gtg-emr-v5'] as string), root, allowMissingCrl: true });
    expect(r.failures).toEqual([]);
    // Without a root the chain is too short.
    expect(codes(verifyPckChain([leaf as Uint8Array, mid as Uint8Array], { now: new Date(REAL_AT['gtg-emr-v5'] as string), allowMissingCrl: true }))).toEqual(['TDX_CHAIN_ISSUER_MISMATCH']);
  });

  it('a one-byte flip in each certificate signature is refused with TDX_CHAIN_SIGNATURE_INVALID', () => {
    const chain = chainOfQuote('gtg-spr-e4-v4');
    for (let i = 0; i < 3; i++) {
      const flipped = chain.map((c) => c.slice());
      const c = flipped[i] as Uint8Array;
      c[c.length - 5] = (c[c.length - 5] as number) ^ 0x01; // inside the ECDSA-Sig-Value's s
      const r = verifyPckChain(flipped, { now: new Date('2023-07-01T01:00:00Z'), allowMissingCrl: true });
      expect(r.ok).toBe(false);
      expect(r.failures.some((f) => f.code === 'TDX_CHAIN_SIGNATURE_INVALID' && f.field === `pckChain[${i}].signatureValue`)).toBe(true);
      if (i === 2) expect(codes(r)).toContain('TDX_ROOT_NOT_PINNED');
    }
  });

  it('the memo gives the same answers as no memo, and is filled once', () => {
    const cache = new TdxVerifyCache();
    const chain = chainOfQuote('gtg-spr-e4-v4');
    const opts = { now: new Date('2023-07-01T01:00:00Z'), allowMissingCrl: true, cache };
    expect(verifyPckChain(chain, opts).ok).toBe(true);
    expect(verifyPckChain(chain, opts).ok).toBe(true);
    expect(codes(verifyPckChain(chain, { ...opts, now: new Date('2053-07-01T00:00:00Z') }))).toEqual(['TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED', 'TDX_CHAIN_EXPIRED']);
  });
});

// ---------------------------------------------------------------------------------------------
// A TEST-ONLY hierarchy

type KeyPair = webcrypto.CryptoKeyPair;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const T0 = new Date('2024-01-01T00:00:00Z');
const T1 = new Date('2040-01-01T00:00:00Z');
const NOW = new Date('2025-06-01T00:00:00Z');
const name = (cn: string): string => `CN=${cn}, O=vouch TEST-ONLY, C=US`;

/** Minimal DER for the SGX extension (test-only encoder, the parser's inverse for these shapes). */
function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const len = body.length < 0x80 ? [body.length] : body.length < 0x100 ? [0x81, body.length] : [0x82, body.length >> 8, body.length & 0xff];
  return Buffer.concat([Uint8Array.of(tag, ...len), body]);
}
function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const arc of rest) {
    const bytes = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Uint8Array.from(out));
}
function int(n: number, tag = 0x02): Uint8Array {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, Uint8Array.from(bytes));
}
const entry = (o: string, v: Uint8Array): Uint8Array => tlv(0x30, oid(o), v);
const octets = (n: number, fill: number): Uint8Array => tlv(0x04, new Uint8Array(n).fill(fill));

function sgxExtension(): Uint8Array {
  const comps = Array.from({ length: 16 }, (_, i) => entry(`${SGX_OID.tcb}.${i + 1}`, int(i < 8 ? 3 : 0)));
  return tlv(
    0x30,
    entry(SGX_OID.ppid, octets(16, 0xaa)),
    entry(SGX_OID.tcb, tlv(0x30, ...comps, entry(`${SGX_OID.tcb}.17`, int(13)), entry(`${SGX_OID.tcb}.18`, octets(16, 3)))),
    entry(SGX_OID.pceId, octets(2, 0)),
    entry(SGX_OID.fmspc, tlv(0x04, Uint8Array.of(0x90, 0xc0, 0x6f, 0, 0, 0))),
    entry(SGX_OID.sgxType, int(1, 0x0a)),
    entry(SGX_OID.platformInstanceId, octets(16, 0x55)),
    entry(SGX_OID.configuration, tlv(0x30, entry(`${SGX_OID.configuration}.1`, tlv(0x01, Uint8Array.of(0xff))), entry(`${SGX_OID.configuration}.3`, tlv(0x01, Uint8Array.of(0))))),
  );
}

interface Ca {
  readonly dn: string;
  readonly keys: KeyPair;
  readonly der: Uint8Array;
}

async function issue(cn: string, issuer: Ca | undefined, opts: { ca: boolean; pathLength?: number; serial: string; extra?: x509.Extension[]; keys?: KeyPair }): Promise<Ca> {
  const keys = opts.keys ?? ((await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as KeyPair);
  const dn = name(cn);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.ca, opts.pathLength, true),
    new x509.KeyUsagesExtension(opts.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
    ...(opts.extra ?? []),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial,
    subject: dn,
    issuer: issuer?.dn ?? dn,
    notBefore: T0,
    notAfter: T1,
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    extensions,
  });
  return { dn, keys, der: new Uint8Array(cert.rawData) };
}

async function crl(issuer: Ca, revoked: readonly string[], thisUpdate = new Date('2025-05-01T00:00:00Z'), nextUpdate: Date | null = new Date('2025-07-01T00:00:00Z'), signer: KeyPair = issuer.keys): Promise<Uint8Array> {
  const c = await x509.X509CrlGenerator.create({
    issuer: issuer.dn,
    thisUpdate,
    ...(nextUpdate !== null ? { nextUpdate } : {}),
    entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate, reason: x509.X509CrlReason.keyCompromise })),
    signingAlgorithm: SIGN,
    signingKey: signer.privateKey,
  });
  return new Uint8Array(c.rawData);
}

describe('generated TEST-ONLY hierarchy: revocation and the pinned root', () => {
  let root: Ca;
  let platformCa: Ca;
  let pck: Ca;
  let otherRoot: Ca;
  let pins: string[];
  const fp = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

  beforeAll(async () => {
    root = await issue('Intel SGX Root CA', undefined, { ca: true, pathLength: 1, serial: '01' });
    platformCa = await issue('Intel SGX PCK Platform CA', root, { ca: true, pathLength: 0, serial: '0a0b' });
    pck = await issue('Intel SGX PCK Certificate', platformCa, { ca: false, serial: '00c0ffee', extra: [new x509.Extension(SGX_OID.extension, false, sgxExtension())] });
    otherRoot = await issue('Intel SGX Root CA', undefined, { ca: true, pathLength: 1, serial: '01' });
    pins = [fp(root.der)];
  });

  const chain = (): Uint8Array[] => [pck.der, platformCa.der, root.der];

  it('with CRLs that revoke nothing, everything passes; the SGX extension decodes', async () => {
    const r = verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: await crl(platformCa, []), rootCaCrl: await crl(root, []) });
    expect(r.failures).toEqual([]);
    expect(r.pck?.sgx.tcb.compSvn).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(r.pck?.sgx.tcb.pceSvn).toBe(13);
    expect(r.pck?.sgx.configuration).toEqual({ dynamicPlatform: true, smtEnabled: false });
  });

  it("a PCK CRL listing the leaf's serial: TDX_PCK_REVOKED", async () => {
    const r = verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: await crl(platformCa, ['0102', '00c0ffee']), rootCaCrl: await crl(root, []) });
    expect(codes(r)).toEqual(['TDX_PCK_REVOKED']);
    expect(r.failures[0]).toMatchObject({ field: 'pckChain[0].tbsCertificate.serialNumber' });
    expect(outcome(r, 'pck.pckCrl')).toBe('fail');
  });

  it("a Root CA CRL listing the PCK CA's serial: TDX_CA_REVOKED", async () => {
    const r = verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: await crl(platformCa, []), rootCaCrl: await crl(root, ['0a0b']) });
    expect(codes(r)).toEqual(['TDX_CA_REVOKED']);
  });

  it('a stale PCK CRL: TDX_CRL_STALE (past nextUpdate, before thisUpdate, or without nextUpdate)', async () => {
    const rootCaCrl = await crl(root, []);
    const past = await crl(platformCa, [], new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z'));
    const future = await crl(platformCa, [], new Date('2025-12-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const open = await crl(platformCa, [], new Date('2025-05-01T00:00:00Z'), null);
    for (const pckCrl of [past, future, open]) {
      expect(codes(verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl, rootCaCrl }))).toEqual(['TDX_CRL_STALE']);
    }
  });

  it('a stale CRL that revokes the leaf reports both', async () => {
    const pckCrl = await crl(platformCa, ['00c0ffee'], new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z'));
    expect(codes(verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl, rootCaCrl: await crl(root, []) }))).toEqual(['TDX_CRL_STALE', 'TDX_PCK_REVOKED']);
  });

  it('a PCK CRL signed by another key, or issued by the root: TDX_CRL_INVALID, and its revocations are not believed', async () => {
    const forged = await crl(platformCa, ['00c0ffee'], undefined, undefined, otherRoot.keys);
    expect(codes(verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: forged, rootCaCrl: await crl(root, []) }))).toEqual(['TDX_CRL_INVALID']);
    const wrongIssuer = await crl(root, []);
    expect(codes(verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: wrongIssuer, rootCaCrl: await crl(root, []) }))).toEqual(['TDX_CRL_INVALID', 'TDX_CRL_INVALID']);
  });

  it('garbage instead of a CRL: TDX_CRL_MALFORMED', async () => {
    expect(codes(verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: pins, pckCrl: Uint8Array.of(0x30, 0x03, 1, 2, 3), rootCaCrl: await crl(root, []) }))).toEqual(['TDX_CRL_MALFORMED']);
  });

  it('the test root is not the Intel root: with the default pins the chain is TDX_ROOT_NOT_PINNED', async () => {
    const r = verifyPckChain(chain(), { now: NOW, allowMissingCrl: true });
    expect(codes(r)).toEqual(['TDX_ROOT_NOT_PINNED']);
    expect(r.failures[0]).toMatchObject({ expected: INTEL_SGX_ROOT_CA_FINGERPRINT, actual: fp(root.der) });
  });

  it('a chain to another root of the same name: TDX_ROOT_NOT_PINNED and the signature of the PCK CA fails', () => {
    const r = verifyPckChain([pck.der, platformCa.der, otherRoot.der], { now: NOW, pinnedRootFingerprints: pins, allowMissingCrl: true });
    expect(codes(r)).toEqual(['TDX_ROOT_NOT_PINNED', 'TDX_CHAIN_SIGNATURE_INVALID']);
    expect(r.failures[1]?.field).toBe('pckChain[1].signatureValue');
  });

  it('a PCK chain to the real Intel root (a real PCK under a test CA) fails on names and signatures', () => {
    if (!HAVE_REAL) return;
    const realRoot = readReal('roots', 'intel', 'intel-sgx-root-ca.der');
    const r = verifyPckChain([pck.der, platformCa.der, realRoot], { now: NOW, allowMissingCrl: true });
    expect(codes(r)).toContain('TDX_CHAIN_SIGNATURE_INVALID');
    expect(codes(r)).toContain('TDX_CHAIN_ISSUER_MISMATCH');
    expect(codes(r)).not.toContain('TDX_ROOT_NOT_PINNED');
  });

  it('roles: leaf and CA swapped, a CA leaf, and a missing SGX extension are refused', async () => {
    expect(codes(verifyPckChain([platformCa.der, pck.der, root.der], { now: NOW, pinnedRootFingerprints: pins, allowMissingCrl: true }))).toContain('TDX_PCK_CERT_MALFORMED');
    const caLeaf = await issue('Intel SGX PCK Certificate', platformCa, { ca: true, serial: '77', extra: [new x509.Extension(SGX_OID.extension, false, sgxExtension())] });
    const r = verifyPckChain([caLeaf.der, platformCa.der, root.der], { now: NOW, pinnedRootFingerprints: pins, allowMissingCrl: true });
    expect(r.failures.map((f) => `${f.code} ${f.field}`)).toContain('TDX_CHAIN_ISSUER_MISMATCH pckChain[0].extensions.basicConstraints.cA');
    const bare = await issue('Intel SGX PCK Certificate', platformCa, { ca: false, serial: '78' });
    expect(codes(verifyPckChain([bare.der, platformCa.der, root.der], { now: NOW, pinnedRootFingerprints: pins, allowMissingCrl: true }))).toEqual(['TDX_PCK_CERT_MALFORMED']);
  });

  it('a PCK issued directly by the root: wrong role and path', () => {
    const r = verifyPckChain([pck.der, root.der, root.der], { now: NOW, pinnedRootFingerprints: pins, allowMissingCrl: true });
    expect(codes(r)).toContain('TDX_CHAIN_ISSUER_MISMATCH');
    expect(r.ok).toBe(false);
  });

  it('misuse: a bad time or pin list', () => {
    expect(() => verifyPckChain(chain(), { now: new Date(Number.NaN) })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    expect(() => verifyPckChain(chain(), { now: NOW, pinnedRootFingerprints: ['abc'] })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });
});
