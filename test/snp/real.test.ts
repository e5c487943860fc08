import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError } from '../../src/lib/errors.js';
import { SNP_REPORT_LAYOUTS, SNP_REPORT_SIZE, decodeSnpReport, encodeSnpReport, snpTcbBytes, type DecodedSnpReport } from '../../src/snp/abi.js';
import { parseSnpCertificate, parseSnpCertificatesPem, type SnpCertificate } from '../../src/snp/certs.js';
import { compareSnpTcb, verifySnpReport, type SnpVerifyOptions } from '../../src/snp/verify.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

interface Fixture {
  readonly dir: string;
  readonly report: () => Uint8Array;
  readonly signer: 'vcek' | 'vlek';
  readonly leaf: () => SnpCertificate;
  readonly roots: string;
  /** A time inside every certificate's validity (PROVENANCE.md). */
  readonly at: string;
}

const hexFile = (p: string): Uint8Array => Uint8Array.from(Buffer.from(readFileSync(p, 'utf8').trim(), 'hex'));

const FIXTURES: readonly Fixture[] = [
  { dir: 'gsg-milan', report: () => readReal('snp', 'gsg-milan', 'report.bin'), signer: 'vcek', leaf: () => parseSnpCertificate(readReal('snp', 'gsg-milan', 'vcek.der')), roots: 'ask_ark_milan.pem', at: '2022-09-24T01:00:00Z' },
  { dir: 'virtee-milan', report: () => hexFile(realPath('snp', 'virtee-milan', 'report.hex')), signer: 'vcek', leaf: () => parseSnpCertificate(readReal('snp', 'virtee-milan', 'vcek.der')), roots: 'ask_ark_milan.pem', at: '2024-01-01T00:00:00Z' },
  { dir: 'trustee-vlek-milan', report: () => readReal('snp', 'trustee-vlek-milan', 'report.bin'), signer: 'vlek', leaf: () => parseSnpCertificate(readReal('snp', 'trustee-vlek-milan', 'vlek.der')), roots: 'ask_ark_milan_vlek.pem', at: '2025-06-01T00:00:00Z' },
  {
    dir: 'azure-vtpm-milan',
    report: () => readReal('snp', 'azure-vtpm-milan', 'hcl-report.bin').subarray(0x20, 0x20 + SNP_REPORT_SIZE),
    signer: 'vcek',
    leaf: () => parseSnpCertificatesPem(readFileSync(realPath('snp', 'azure-vtpm-milan', 'vcek-chain.pem'), 'utf8'))[0] as SnpCertificate,
    roots: 'ask_ark_milan.pem',
    at: '2024-01-01T00:00:00Z',
  },
  {
    dir: 'azure-vtpm-genoa',
    report: () => {
      const ev = JSON.parse(readFileSync(realPath('snp', 'azure-vtpm-genoa', 'evidence.json'), 'utf8')) as { report: number[] };
      return Uint8Array.from(ev.report).subarray(0x20, 0x20 + SNP_REPORT_SIZE);
    },
    signer: 'vcek',
    leaf: () => parseSnpCertificatesPem(readFileSync(realPath('snp', 'azure-vtpm-genoa', 'vcek.pem'), 'utf8'))[0] as SnpCertificate,
    roots: 'ask_ark_genoa.pem',
    at: '2025-06-01T00:00:00Z',
  },
];

function roots(file: string): { mid: SnpCertificate; ark: SnpCertificate } {
  const [mid, ark] = parseSnpCertificatesPem(readFileSync(realPath('roots', 'amd', file), 'utf8'));
  return { mid: mid as SnpCertificate, ark: ark as SnpCertificate };
}

function options(fx: Fixture, at: string, extra: Partial<SnpVerifyOptions> = {}): SnpVerifyOptions {
  const { mid, ark } = roots(fx.roots);
  const leaf = fx.leaf();
  return {
    ...(fx.signer === 'vcek' ? { vcek: leaf, ask: mid } : { vlek: leaf, asvk: mid }),
    ark,
    now: new Date(at),
    allowMissingCrl: true,
    allowMaskedChipId: true,
    ...extra,
  };
}

const codes = (r: { failures: readonly { code: string }[] }): string[] => [...new Set(r.failures.map((f) => f.code))].sort();

describe.skipIf(!HAVE_REAL)('real SEV-SNP reports (../shared/fixtures/real/snp)', () => {
  for (const fx of FIXTURES) {
    describe(fx.dir, () => {
      const expected = JSON.parse(readFileSync(realPath('snp', fx.dir, 'expected.json'), 'utf8')) as Record<string, string | number>;

      it('decodes to the values of expected.json', () => {
        const r = decodeSnpReport(fx.report());
        expect(r.version).toBe(expected.version);
        expect(r.guestSvn).toBe(expected.guest_svn);
        expect(`0x${r.policy.toString(16)}`).toBe(expected.policy);
        expect(r.vmpl).toBe(expected.vmpl);
        expect(r.signatureAlgo).toBe(expected.signature_algo);
        expect(toHex(snpTcbBytes(r.currentTcb))).toBe(expected.current_tcb);
        expect(toHex(snpTcbBytes(r.reportedTcb))).toBe(expected.reported_tcb);
        expect(toHex(snpTcbBytes(r.committedTcb))).toBe(expected.committed_tcb);
        expect(toHex(snpTcbBytes(r.launchTcb))).toBe(expected.launch_tcb);
        expect(`0x${r.platformInfo.toString(16)}`).toBe(expected.platform_info);
        expect(r.signingKey).toBe(expected.signing_key === 'VLEK' ? 1 : 0);
        expect(toHex(r.reportData)).toBe(expected.report_data);
        expect(toHex(r.measurement)).toBe(expected.measurement);
        expect(toHex(r.hostData)).toBe(expected.host_data);
        expect(toHex(r.idKeyDigest)).toBe(expected.id_key_digest);
        expect(toHex(r.reportId)).toBe(expected.report_id);
        expect(toHex(r.chipId)).toBe(expected.chip_id);
        expect(r.currentVersion).toEqual({ build: expected.current_build, minor: expected.current_minor, major: expected.current_major });
        expect(r.committedVersion).toEqual({ build: expected.committed_build, minor: expected.committed_minor, major: expected.committed_major });
        if (expected.cpuid_fam_id !== undefined) {
          expect(r.cpuid).toEqual({ family: Number(expected.cpuid_fam_id), model: Number(expected.cpuid_mod_id), stepping: expected.cpuid_step });
        } else {
          expect(r.cpuid).toBeUndefined();
        }
      });

      it('re-encodes to the same bytes', () => {
        const bytes = fx.report();
        expect(toHex(encodeSnpReport(decodeSnpReport(bytes)))).toBe(toHex(bytes));
      });

      it(`verifies with its own ${fx.signer.toUpperCase()} against the AMD roots at ${fx.at}`, () => {
        const res = verifySnpReport(decodeSnpReport(fx.report()), options(fx, fx.at));
        expect(res.failures).toEqual([]);
        expect(res.ok).toBe(true);
        expect(res.allowancesUsed).toContain('missingCrl');
      });

      it('flipping any byte of the signed part or of the signature is refused', () => {
        const bytes = fx.report();
        const opts = options(fx, fx.at);
        for (let i = 0; i < SNP_REPORT_SIZE; i++) {
          const m = Uint8Array.from(bytes);
          m[i] = (m[i] as number) ^ 0x01;
          let rep: DecodedSnpReport;
          try {
            rep = decodeSnpReport(m);
          } catch (e) {
            // Reserved ranges, VERSION and the reserved bits of SIGNING_KEY fail at decode time.
            expect(isVouchError(e) && e.code.startsWith('PARSE_')).toBe(true);
            continue;
          }
          const res = verifySnpReport(rep, opts);
          expect(res.ok, `flip at 0x${i.toString(16)}`).toBe(false);
          // The signed part and SIGNATURE.R/S (0x000–0x32F); the rest is reserved and fails at decode.
          if (i < 0x330) expect(codes(res)).toContain('SNP_SIGNATURE_INVALID');
        }
      });
    });
  }

  it('every reserved range of each version is checked: a one-byte flip gives PARSE_RESERVED_NONZERO at that offset', () => {
    const base = decodeSnpReport(readReal('snp', 'gsg-milan', 'report.bin'));
    for (const version of [2, 3, 5] as const) {
      const rep = { ...base, version, ...(version >= 3 ? { cpuid: { family: 0x19, model: 1, stepping: 1 } } : { cpuid: undefined }), ...(version >= 5 ? { launchMitVector: 1n, currentMitVector: 2n } : {}) };
      const clean = { ...rep } as Record<string, unknown>;
      for (const k of ['cpuid', 'launchMitVector', 'currentMitVector']) if (clean[k] === undefined) delete clean[k];
      const bytes = encodeSnpReport(clean as unknown as Parameters<typeof encodeSnpReport>[0]);
      expect(decodeSnpReport(bytes).version).toBe(version);
      const reserved = SNP_REPORT_LAYOUTS[version].filter((f) => f.kind === 'reserved');
      expect(reserved.length).toBeGreaterThan(4);
      for (const f of reserved) {
        for (const at of [f.offset, f.offset + f.size - 1]) {
          const m = Uint8Array.from(bytes);
          m[at] = 0x80;
          expect(() => decodeSnpReport(m), `${f.name} @0x${at.toString(16)}`).toThrowError(expect.objectContaining({ code: 'PARSE_RESERVED_NONZERO', offset: at }));
        }
      }
      // KEY_INFO bits 31:5 are reserved.
      const m = Uint8Array.from(bytes);
      m[0x48] = (m[0x48] as number) | 0x20;
      expect(() => decodeSnpReport(m)).toThrowError(expect.objectContaining({ code: 'PARSE_RESERVED_NONZERO' }));
    }
  });

  it('layouts cover 0x000..0x49F contiguously', () => {
    for (const layout of Object.values(SNP_REPORT_LAYOUTS)) {
      let at = 0;
      for (const f of layout) {
        expect(f.offset, f.name).toBe(at);
        at += f.size;
      }
      expect(at).toBe(SNP_REPORT_SIZE);
    }
  });

  it('the VLEK is valid only 2024-12-10..2025-12-10: after that SNP_CHAIN_EXPIRED', () => {
    const fx = FIXTURES.find((f) => f.dir === 'trustee-vlek-milan') as Fixture;
    const rep = decodeSnpReport(fx.report());
    expect(verifySnpReport(rep, options(fx, '2025-12-10T00:00:00Z')).ok).toBe(true);
    const after = verifySnpReport(rep, options(fx, '2025-12-11T00:00:00Z'));
    expect(codes(after)).toEqual(['SNP_CHAIN_EXPIRED']);
    expect(after.failures[0]?.field).toBe('chain[0].tbsCertificate.validity');
    expect(codes(verifySnpReport(rep, options(fx, '2024-12-01T00:00:00Z')))).toEqual(['SNP_CHAIN_EXPIRED']);
  });

  it('a VCEK of another chip gives SNP_VCEK_HWID_MISMATCH (and the signature fails)', () => {
    const gsg = FIXTURES[0] as Fixture;
    const other = FIXTURES[1] as Fixture;
    const res = verifySnpReport(decodeSnpReport(gsg.report()), { ...options(gsg, '2024-01-01T00:00:00Z'), vcek: other.leaf() });
    expect(codes(res)).toContain('SNP_VCEK_HWID_MISMATCH');
    expect(codes(res)).toContain('SNP_SIGNATURE_INVALID');
    expect(codes(res)).toContain('SNP_VCEK_TCB_MISMATCH');
  });

  it('TCB comparison: a REPORTED_TCB that differs from the VCEK extensions gives SNP_VCEK_TCB_MISMATCH per component', () => {
    // Real reports cannot be re-signed, so the comparison is exercised directly on a decoded report.
    const gsg = FIXTURES[0] as Fixture;
    const rep = decodeSnpReport(gsg.report());
    const vcek = gsg.leaf();
    expect(compareSnpTcb(vcek.amd, rep.reportedTcb, 'Milan')).toEqual([]);
    const bumped = rep.reportedTcb + (1n << 56n); // MICROCODE + 1
    const f = compareSnpTcb(vcek.amd, bumped, 'Milan');
    expect(f).toEqual([expect.objectContaining({ code: 'SNP_VCEK_TCB_MISMATCH', field: 'ATTESTATION_REPORT.REPORTED_TCB.MICROCODE', expected: '68', actual: '69' })]);
    expect(compareSnpTcb(vcek.amd, rep.reportedTcb | (1n << 16n), 'Milan').map((x) => x.code)).toEqual(['SNP_VCEK_TCB_MISMATCH']);
  });

  it('a masked CHIP_ID needs allowMaskedChipId with a VCEK; a VLEK is not compared with CHIP_ID', () => {
    const vlek = FIXTURES[2] as Fixture;
    const rep = decodeSnpReport(vlek.report());
    const r = verifySnpReport(rep, options(vlek, vlek.at, { allowMaskedChipId: false }));
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.check === 'certificate.hwID')?.outcome).toBe('skipped');
    // A VCEK report with CHIP_ID zeroed: the signature fails, and the masked id is named.
    const gsg = FIXTURES[0] as Fixture;
    const m = Uint8Array.from(gsg.report());
    m.fill(0, 0x1a0, 0x1e0);
    const masked = decodeSnpReport(m);
    expect(codes(verifySnpReport(masked, options(gsg, gsg.at, { allowMaskedChipId: false })))).toEqual(['SNP_CHIP_ID_MASKED', 'SNP_SIGNATURE_INVALID']);
    const allowed = verifySnpReport(masked, options(gsg, gsg.at));
    expect(allowed.allowancesUsed).toContain('maskedChipId');
  });

  it('no CRL and no allowance gives SNP_CRL_MISSING; the allowance is recorded when used', () => {
    const gsg = FIXTURES[0] as Fixture;
    const rep = decodeSnpReport(gsg.report());
    expect(codes(verifySnpReport(rep, options(gsg, gsg.at, { allowMissingCrl: false })))).toEqual(['SNP_CRL_MISSING']);
    expect(verifySnpReport(rep, options(gsg, gsg.at)).allowancesUsed).toEqual(['missingCrl']);
  });

  it('an ARK that is not pinned gives SNP_ARK_NOT_PINNED; the wrong chain gives chain codes', () => {
    const gsg = FIXTURES[0] as Fixture;
    const rep = decodeSnpReport(gsg.report());
    expect(codes(verifySnpReport(rep, options(gsg, gsg.at, { pinnedArks: {} })))).toEqual(['SNP_ARK_NOT_PINNED']);
    const genoa = roots('ask_ark_genoa.pem');
    const wrong = verifySnpReport(rep, options(gsg, gsg.at, { ask: genoa.mid, ark: genoa.ark }));
    expect(codes(wrong)).toContain('SNP_CHAIN_ISSUER_MISMATCH');
    expect(codes(wrong)).toContain('SNP_VCEK_PRODUCT_MISMATCH');
    expect(codes(verifySnpReport(rep, options(gsg, gsg.at, { vcek: undefined, vlek: gsg.leaf() })))).toContain('SNP_SIGNING_KEY_MISMATCH');
  });

  it('the Turin VCEK chain validates against the Turin ASK/ARK (the chain checks pass; no Turin report is in the corpus)', () => {
    const vcek = parseSnpCertificate(readReal('snp', 'virtee-turin', 'vcek.der'));
    expect(vcek.amd.productName).toBe('Turin');
    expect(vcek.amd.hwId?.length).toBe(8);
    expect(vcek.amd.fmcSpl).toBeTypeOf('number');
    const { mid, ark } = roots('ask_ark_turin_vcek.pem');
    const bundled = parseSnpCertificatesPem(readFileSync(realPath('snp', 'virtee-turin', 'cert_chain.pem'), 'utf8'));
    expect(bundled.map((c) => c.cert.fingerprint)).toEqual([mid.cert.fingerprint, ark.cert.fingerprint]);
    const res = verifySnpReport(decodeSnpReport((FIXTURES[0] as Fixture).report()), { vcek, ask: mid, ark, now: new Date('2025-01-01T00:00:00Z'), allowMissingCrl: true });
    for (const c of ['chain.ark.pinned', 'chain.signatures', 'chain.validity', 'certificate.productName']) {
      expect(res.checks.find((x) => x.check === c)?.outcome, c).toBe('pass');
    }
    expect(res.product).toBe('Turin');
    expect(codes(verifySnpReport(decodeSnpReport((FIXTURES[0] as Fixture).report()), { vcek, ask: mid, ark, now: new Date('2032-01-01T00:00:00Z'), allowMissingCrl: true }))).toContain('SNP_CHAIN_EXPIRED');
  });
});
