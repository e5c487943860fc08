/**
 * Candidate chains from certificate tables and trust directories (src/snp/pool.ts), the ASVK
 * entry of a certificate table, and property and fuzz tests of the DER and PEM readers.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derToPem, testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { isVouchError } from '../../src/lib/errors.js';
import { decodeSnpReport } from '../../src/snp/abi.js';
import { parseSnpCertificate, parseSnpCertificatesPem } from '../../src/snp/certs.js';
import { SNP_ASVK_GUID, SNP_CERT_GUID, decodeSnpCertTable, encodeSnpCertTable, snpCertTableChain } from '../../src/snp/certtable.js';
import {
  SNP_EMPTY_POOL,
  parseSnpCrlHead,
  readSnpCollateral,
  selectSnpChain,
  snpDerKind,
  snpLeafKind,
  snpPoolAdd,
  snpPoolFromCertTable,
  splitSnpPem,
  type SnpPool,
} from '../../src/snp/pool.js';
import { verifySnpReport } from '../../src/snp/verify.js';
import { HAVE_REAL, readReal } from '../helpers/real.js';
import { signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';

const t = testSnpChain();
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };

/** Runs `fn`; any throw must be one of our typed errors. */
function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!isVouchError(e)) throw e;
  }
}

function pool(items: [Uint8Array, string, 'table' | 'certs'][]): SnpPool {
  return items.reduce((p, [bytes, source, origin]) => snpPoolAdd(p, readSnpCollateral(bytes, source), source, origin), SNP_EMPTY_POOL);
}

describe('DER: a certificate or a CRL, by structure', () => {
  it('the TEST-ONLY certificates are certificates, its CRLs are CRLs', () => {
    for (const der of [t.ark, t.ask, t.vcek]) expect(snpDerKind(der)).toBe('certificate');
    for (const der of [t.crl, t.crlRevokingAsk]) expect(snpDerKind(der)).toBe('crl');
  });

  it.skipIf(!HAVE_REAL)('real AMD VCEK and VLEK certificates are certificates', () => {
    for (const f of [['gsg-milan', 'vcek.der'], ['trustee-vlek-milan', 'vlek.der'], ['virtee-turin', 'vcek.der']] as const) {
      expect(snpDerKind(readReal('snp', ...f))).toBe('certificate');
    }
  });

  it('a v1 CRL (no version) and a v1 certificate (no [0] version) are told apart after the issuer', async () => {
    // Hand-built TBS shapes: INTEGER, AlgorithmIdentifier, Name, then validity or thisUpdate.
    const seq = (...parts: number[][]): number[] => [0x30, parts.flat().length, ...parts.flat()];
    const alg = seq([0x06, 0x01, 0x2a]);
    const name = seq();
    const utc = [0x17, 0x0d, ...Buffer.from('250101000000Z')];
    const wrap = (tbs: number[]): Uint8Array => Uint8Array.from(seq(tbs, alg, [0x03, 0x01, 0x00]));
    expect(snpDerKind(wrap(seq([0x02, 0x01, 0x05], alg, name, seq(utc, utc))))).toBe('certificate');
    expect(snpDerKind(wrap(seq(alg, name, utc)))).toBe('crl');
    expect(snpDerKind(wrap(seq([0x02, 0x01, 0x01], alg, name, utc)))).toBe('crl');
    expect(() => snpDerKind(wrap(seq([0x02, 0x01, 0x01], alg, name, [0x05, 0x00])))).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_VALUE' }));
    expect(() => snpDerKind(Uint8Array.of(0x31, 0x00))).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_MAGIC' }));
    expect(() => snpDerKind(Uint8Array.of(0x30, 0x80, 0x00, 0x00))).toThrowError(expect.objectContaining({ code: 'PARSE_BAD_VALUE' }));
    expect(() => snpDerKind(Uint8Array.of(0x30, 0x82, 0x01))).toThrowError(expect.objectContaining({ code: 'PARSE_TRUNCATED' }));
  });

  it('fuzz: random bytes and mutated certificates and CRLs only give typed errors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyTyped(() => snpDerKind(b))), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.constantFrom(t.vcek, t.crl, t.ask), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (base, flips) => {
        const m = Uint8Array.from(base);
        for (const [i, v] of flips) m[i % m.length] = v;
        onlyTyped(() => snpDerKind(m));
        onlyTyped(() => readSnpCollateral(m, 'mutated'));
      }),
      { numRuns: 300 },
    );
  });

  it('every prefix of a certificate or CRL is refused, none mistaken for the other kind', () => {
    for (const der of [t.vcek, t.crl]) {
      const whole = snpDerKind(der);
      for (let n = 0; n < 64; n++) {
        try {
          expect(snpDerKind(der.subarray(0, n))).toBe(whole);
        } catch (e) {
          expect(isVouchError(e)).toBe(true);
        }
      }
    }
  });
});

describe('PEM: CERTIFICATE and X509 CRL blocks', () => {
  it('round trip: DER → PEM → DER for any bytes, labels kept, explanatory text allowed', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('CERTIFICATE' as const, 'X509 CRL' as const), fc.uint8Array({ minLength: 1, maxLength: 200 })), { maxLength: 5 }), (blocks) => {
        const text = blocks.map(([label, der]) => `note: ${label}\n${derToPem(der, label)}`).join('\n');
        expect(splitSnpPem(text)).toEqual(blocks.map(([label, der]) => ({ label, der })));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses another label, a missing END, a mismatched END, bad or non-canonical base64, non-ASCII', () => {
    const code = (text: string): string | undefined => {
      try {
        splitSnpPem(text);
        return undefined;
      } catch (e) {
        return isVouchError(e) ? e.code : 'untyped';
      }
    };
    expect(code('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('-----BEGIN CERTIFICATE-----\nAAAA\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('-----BEGIN X509 CRL-----\nAA=A\n-----END X509 CRL-----\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('-----BEGIN X509 CRL-----\nAB==\n-----END X509 CRL-----\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('-----BEGIN X509 CRL-----\n\n-----END X509 CRL-----\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('caf\u00e9\n')).toBe('PARSE_BAD_ENCODING');
    expect(code('no blocks at all\n')).toBeUndefined();
  });

  it('fuzz: random text only gives typed errors', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => onlyTyped(() => splitSnpPem(s))), { numRuns: 1000 });
    const base = `${derToPem(t.ask, 'CERTIFICATE')}${derToPem(t.crl, 'X509 CRL')}`;
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 127 }), (i, c) => {
        const m = base.slice(0, i % base.length) + String.fromCharCode(c) + base.slice((i % base.length) + 1);
        onlyTyped(() => readSnpCollateral(new TextEncoder().encode(m), 'mutated.pem'));
      }),
      { numRuns: 500 },
    );
  });
});

describe('collateral files', () => {
  it('DER certificate, DER CRL, a PEM bundle of certificates and CRLs', () => {
    expect(readSnpCollateral(t.vcek, 'vcek.der').certificates.map((c) => c.cert.fingerprint)).toEqual([parseSnpCertificate(t.vcek).cert.fingerprint]);
    const crl = readSnpCollateral(t.crl, 'crl.der');
    expect(crl.certificates).toEqual([]);
    expect(crl.crls.map((c) => c.issuer)).toEqual([new x509.X509Certificate(t.ark).subject]);
    expect(crl.crls[0]?.thisUpdate.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    const bundle = readSnpCollateral(new TextEncoder().encode(`${t.certChainPem}${derToPem(t.crl, 'X509 CRL')}`), 'bundle.pem');
    expect(bundle.certificates.length).toBe(2);
    expect(bundle.crls.length).toBe(1);
  });

  it('a CRL that does not parse is SNP_CERT_MALFORMED; an oversized file PARSE_SIZE_EXCEEDED', () => {
    expect(() => parseSnpCrlHead(Uint8Array.of(0x30, 0x00))).toThrowError(expect.objectContaining({ code: 'SNP_CERT_MALFORMED' }));
    expect(() => readSnpCollateral(new Uint8Array(2 * 1024 * 1024), 'big')).toThrowError(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED' }));
  });
});

describe('certificate table: the ASVK travels under the ASK GUID', () => {
  it('the GHCB GUIDs, in text form; there is no separate ASVK GUID', () => {
    expect(SNP_CERT_GUID).toEqual({
      vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
      vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
      ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
      ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
      crl: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
    });
    expect(SNP_ASVK_GUID).toBe(SNP_CERT_GUID.ask);
  });

  it('snpCertTableChain names the ASK GUID entry by the signer, and picks the signer of a two-leaf table', () => {
    const leafV = Uint8Array.of(1);
    const leafL = Uint8Array.of(2);
    const mid = Uint8Array.of(3);
    const table = decodeSnpCertTable(encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: leafV },
      { guid: SNP_CERT_GUID.vlek, data: leafL },
      { guid: SNP_ASVK_GUID, data: mid },
      { guid: SNP_CERT_GUID.ark, data: Uint8Array.of(4) },
      { guid: SNP_CERT_GUID.crl, data: new Uint8Array(0) },
    ]));
    expect(snpCertTableChain(table, 'vlek')).toEqual({ signer: 'vlek', leaf: leafL, asvk: mid, ark: Uint8Array.of(4) });
    expect(snpCertTableChain(table, 'vcek')).toEqual({ signer: 'vcek', leaf: leafV, ask: mid, ark: Uint8Array.of(4) });
    expect(snpCertTableChain([], 'vlek')).toEqual({ signer: 'vlek' });
  });

  it('property: any table of distinct GUIDs round-trips, data and order kept', () => {
    const guid = fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => b.some((x) => x !== 0)).map((b) => {
      const h = Buffer.from(b).toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    });
    const known = fc.constantFrom(...Object.values(SNP_CERT_GUID));
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ guid: fc.oneof(guid, known), data: fc.uint8Array({ maxLength: 64 }) }), { selector: (e) => e.guid, maxLength: 12 }), (entries) => {
        const back = decodeSnpCertTable(encodeSnpCertTable(entries));
        expect(back.map((e) => ({ guid: e.guid, data: Uint8Array.from(e.data) }))).toEqual(entries.map((e) => ({ guid: e.guid, data: Uint8Array.from(e.data) })));
      }),
      { numRuns: 300 },
    );
  });

  it.skipIf(!HAVE_REAL)('a VLEK table (VLEK, ASVK under the ASK GUID, ARK) gives the real VLEK chain, which verifies', () => {
    const [asvk, ark] = parseSnpCertificatesPem(new TextDecoder().decode(readReal('roots', 'amd', 'ask_ark_milan_vlek.pem'))).map((c) => c.cert.der);
    const vlek = readReal('snp', 'trustee-vlek-milan', 'vlek.der');
    const table = decodeSnpCertTable(encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vlek, data: vlek },
      { guid: SNP_ASVK_GUID, data: asvk as Uint8Array },
      { guid: SNP_CERT_GUID.ark, data: ark as Uint8Array },
    ]));
    const c = snpCertTableChain(table, 'vlek');
    expect(c.asvk).toEqual(asvk);
    const report = decodeSnpReport(readReal('snp', 'trustee-vlek-milan', 'report.bin'));
    const r = verifySnpReport(report, { vlek: c.leaf as Uint8Array, asvk: c.asvk as Uint8Array, ark: c.ark as Uint8Array, now: new Date('2025-06-01T00:00:00Z'), allowMissingCrl: true });
    expect(r.failures).toEqual([]);
    expect(r.signer).toBe('vlek');
    // The pool reads the same entry as the ASVK, by its name.
    const { pool: p, ignored } = snpPoolFromCertTable(table);
    expect(ignored).toEqual([]);
    const sel = selectSnpChain(p, report);
    expect(sel.ok && sel.chain.signer).toBe('vlek');
    expect(sel.ok && sel.chain.intermediate.source).toBe('SNP_CERT_TABLE.entry[1]');
    expect(sel.ok && sel.chain.intermediate.cert.cert.subject).toContain('CN=SEV-VLEK-Milan');
  });

  it('table entries that are empty or of unknown GUIDs are ignored and named; a bad certificate names its entry', () => {
    const table = decodeSnpCertTable(encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: t.vcek },
      { guid: '00112233-4455-6677-8899-aabbccddeeff', data: Uint8Array.of(1) },
      { guid: SNP_CERT_GUID.crl, data: new Uint8Array(0) },
    ]));
    const { pool: p, ignored } = snpPoolFromCertTable(table);
    expect(p.certificates.length).toBe(1);
    expect(ignored).toEqual(['SNP_CERT_TABLE.entry[1] (00112233-4455-6677-8899-aabbccddeeff)', `SNP_CERT_TABLE.entry[2] (${SNP_CERT_GUID.crl}, empty)`]);
    const bad = decodeSnpCertTable(encodeSnpCertTable([{ guid: SNP_CERT_GUID.ask, data: Uint8Array.of(0x30, 0x00) }]));
    expect(() => snpPoolFromCertTable(bad)).toThrowError(expect.objectContaining({ code: 'SNP_CERT_MALFORMED', field: 'SNP_CERT_TABLE.entry[0]' }));
  });
});

describe('choosing the chain from a pool', () => {
  const report = decodeSnpReport(signSyntheticSnpReport(t, syntheticSnpFields(t)));

  it('roles by content: the TEST-ONLY VCEK is a VCEK, the CAs are not leaves', () => {
    expect(snpLeafKind(parseSnpCertificate(t.vcek))).toBe('vcek');
    expect(snpLeafKind(parseSnpCertificate(t.ask))).toBeUndefined();
    expect(snpLeafKind(parseSnpCertificate(t.ark))).toBeUndefined();
  });

  it('VCEK → ASK → ARK and the ARK’s CRL, each certificate once however often it is given', () => {
    const sel = selectSnpChain(pool([[t.vcek, 'table-vcek', 'table'], [t.vcek, 'dir/vcek.der', 'certs'], [new TextEncoder().encode(t.certChainPem), 'dir/chain.pem', 'certs'], [t.crl, 'dir/crl.der', 'certs'], [t.crl, 'table-crl', 'table']]), report, pins);
    expect(sel.ok).toBe(true);
    if (!sel.ok) return;
    expect([sel.chain.signer, sel.chain.leaf.source, sel.chain.intermediate.source, sel.chain.ark.source, sel.chain.crl?.source]).toEqual(['vcek', 'table-vcek', 'dir/chain.pem[0]', 'dir/chain.pem[1]', 'dir/crl.der']);
  });

  it("the caller's CRL comes before the table's; the table's is used when the caller gives none", () => {
    const base: [Uint8Array, string, 'table' | 'certs'][] = [[t.vcek, 'v', 'certs'], [new TextEncoder().encode(t.certChainPem), 'c', 'certs']];
    const a = selectSnpChain(pool([...base, [t.crlRevokingAsk, 'table-crl', 'table'], [t.crl, 'dir-crl', 'certs']]), report, pins);
    expect(a.ok && a.chain.crl?.source).toBe('dir-crl');
    const b = selectSnpChain(pool([...base, [t.crlRevokingAsk, 'table-crl', 'table']]), report, pins);
    expect(b.ok && b.chain.crl?.source).toBe('table-crl');
  });

  it('refuses instead of guessing: no leaf, no intermediate, no ARK, two CRLs of one ARK', () => {
    const problem = (p: SnpPool): string => {
      const s = selectSnpChain(p, report, pins);
      return s.ok ? 'chosen' : s.problem;
    };
    expect(problem(pool([[new TextEncoder().encode(t.certChainPem), 'c', 'certs']]))).toMatch(/no VCEK or VLEK/);
    expect(problem(pool([[t.vcek, 'v', 'certs'], [t.ark, 'a', 'certs']]))).toMatch(/no certificate named .*the ASK/);
    expect(problem(pool([[t.vcek, 'v', 'certs'], [t.ask, 'k', 'certs']]))).toMatch(/no self-signed certificate .*the ARK/);
    expect(problem(pool([[t.vcek, 'v', 'certs'], [new TextEncoder().encode(t.certChainPem), 'c', 'certs'], [t.crl, 'x', 'certs'], [t.crlRevokingAsk, 'y', 'certs']]))).toMatch(/2 different CRLs/);
  });

  it('several VCEKs: the one whose hwID is CHIP_ID; none matching is a refusal', async () => {
    const { issueTestVcek } = await import('../../attestation-fixtures/snp/index.js');
    const other = await issueTestVcek({ chipId: new Uint8Array(64).fill(0x42) });
    const chain: [Uint8Array, string, 'table' | 'certs'] = [new TextEncoder().encode(t.certChainPem), 'c', 'certs'];
    const sel = selectSnpChain(pool([[other.der, 'other', 'certs'], [t.vcek, 'mine', 'certs'], chain]), report, pins);
    expect(sel.ok && sel.chain.leaf.source).toBe('mine');
    const third = await issueTestVcek({ chipId: new Uint8Array(64).fill(0x43) });
    const none = selectSnpChain(pool([[other.der, 'other', 'certs'], [third.der, 'third', 'certs'], chain]), report, pins);
    expect(none.ok ? 'chosen' : none.problem).toMatch(/2 different VCEK or VLEK certificates/);
  });

  it.skipIf(!HAVE_REAL)('a trust directory with every AMD Milan chain: the VLEK report picks the ASVK, the VCEK report the ASK, one ARK', () => {
    const roots = (f: string): [Uint8Array, string, 'certs'] => [readReal('roots', 'amd', f), f, 'certs'];
    const dir = [roots('ask_ark_milan.pem'), roots('ask_ark_milan_vlek.pem'), roots('ask_ark_genoa.pem')];
    const vlekSel = selectSnpChain(pool([[readReal('snp', 'trustee-vlek-milan', 'vlek.der'), 'vlek.der', 'certs'], ...dir]), decodeSnpReport(readReal('snp', 'trustee-vlek-milan', 'report.bin')));
    expect(vlekSel.ok && [vlekSel.chain.signer, vlekSel.chain.intermediate.source]).toEqual(['vlek', 'ask_ark_milan_vlek.pem[0]']);
    const vcekSel = selectSnpChain(pool([[readReal('snp', 'gsg-milan', 'vcek.der'), 'vcek.der', 'certs'], ...dir]), decodeSnpReport(readReal('snp', 'gsg-milan', 'report.bin')));
    expect(vcekSel.ok && [vcekSel.chain.signer, vcekSel.chain.intermediate.source]).toEqual(['vcek', 'ask_ark_milan.pem[0]']);
  });
});

describe('work grows with the input, not faster', () => {
  it('a PEM bundle near the 1 MiB cap, and a DER item of any size, are read in bounded time', () => {
    const block = derToPem(t.crl, 'X509 CRL');
    const text = block.repeat(Math.floor((1024 * 1024 - 1) / block.length));
    const start = performance.now();
    expect(readSnpCollateral(new TextEncoder().encode(text), 'big.pem').crls.length).toBe(Math.floor((1024 * 1024 - 1) / block.length));
    // snpDerKind reads at most six TLV headers whatever the length of the values.
    const big = new Uint8Array(1024 * 1024);
    big.set([0x30, 0x83, 0x0f, 0xff, 0xfb, 0x30, 0x83, 0x0f, 0xff, 0xf6, 0xa0, 0x83, 0x0f, 0xff, 0xf1]);
    expect(snpDerKind(big)).toBe('certificate');
    expect(performance.now() - start).toBeLessThan(5000);
  });
});
