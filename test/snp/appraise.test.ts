/**
 * Appraisal of synthetic reports signed with the committed TEST-ONLY VCEK: a report that pins
 * every value passes, each rule refuses its own mismatch with its code and spec field, and the
 * `snp` policy section rejects unknown keys and missing rules.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { toHex } from '../../src/lib/bytes.js';
import { decodeSnpReport, type DecodedSnpReport, type SnpReport } from '../../src/snp/abi.js';
import { appraiseSnp, snpReportDataFailures } from '../../src/snp/appraise.js';
import { parseSnpCertificate } from '../../src/snp/certs.js';
import { SnpPolicySchema, snpVerifyAllowances, type SnpPolicy } from '../../src/snp/policy.js';
import { verifySnpReport } from '../../src/snp/verify.js';
import { signSyntheticSnpReport } from '../helpers/fake-tsm.js';

const t = testSnpChain();
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
const NOW = new Date('2026-01-01T00:00:00Z');

const nonce = new Uint8Array(32).fill(0x5a);
const key = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
const binding = { nonce, boundKeySpki: key };

/** Milan TCB_VERSION: byte 0 BOOT_LOADER, 1 TEE, 6 SNP, 7 MICROCODE. */
function milanTcb(bl: number, tee: number, snp: number, ucode: number): bigint {
  return BigInt(bl) | (BigInt(tee) << 8n) | (BigInt(snp) << 48n) | (BigInt(ucode) << 56n);
}
const TCB = milanTcb(t.tcb.bl, t.tcb.tee, t.tcb.snp, t.tcb.ucode);

function fields(over: Partial<SnpReport> = {}): SnpReport {
  return {
    version: 3,
    guestSvn: 4,
    policy: 0x30000n, // SMT allowed, reserved bit 17 set
    familyId: new Uint8Array(16).fill(0x11),
    imageId: new Uint8Array(16).fill(0x22),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: TCB,
    platformInfo: 0b10n, // TSME_EN
    authorKeyEn: true,
    maskChipKey: false,
    signingKey: 0,
    reportData: teeReportData(nonce, key),
    measurement: new Uint8Array(48).fill(0x33),
    hostData: new Uint8Array(32).fill(0x44),
    idKeyDigest: new Uint8Array(48).fill(0x55),
    authorKeyDigest: new Uint8Array(48).fill(0x66),
    reportId: new Uint8Array(32).fill(2),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: TCB,
    cpuid: { family: 0x19, model: 0x01, stepping: 1 },
    chipId: t.chipId,
    committedTcb: TCB,
    currentVersion: { major: 1, minor: 55, build: 20 },
    committedVersion: { major: 1, minor: 55, build: 20 },
    launchTcb: TCB,
    signature: { r: new Uint8Array(72), s: new Uint8Array(72) },
    ...over,
  };
}

/** The report of `fields(over)`, signed by the TEST-ONLY VCEK, decoded. */
function report(over: Partial<SnpReport> = {}): DecodedSnpReport {
  return decodeSnpReport(signSyntheticSnpReport(t, fields(over)));
}

/** A policy pinning every value of the default synthetic report. */
function pinned(over: Partial<SnpPolicy> = {}): SnpPolicy {
  return {
    debug: 'forbidden',
    migrationAgent: 'forbidden',
    smt: 'allowed',
    vmpl: [0],
    measurement: [toHex(new Uint8Array(48).fill(0x33))],
    hostData: [toHex(new Uint8Array(32).fill(0x44))],
    idKeyDigest: [toHex(new Uint8Array(48).fill(0x55))],
    authorKeyDigest: [toHex(new Uint8Array(48).fill(0x66))],
    familyId: [toHex(new Uint8Array(16).fill(0x11))],
    imageId: [toHex(new Uint8Array(16).fill(0x22))],
    minTcb: { bootLoader: t.tcb.bl, tee: t.tcb.tee, snp: t.tcb.snp, microcode: t.tcb.ucode },
    minGuestSvn: 4,
    platformInfo: { smtEnabled: 'forbidden', tsmeEnabled: 'required' },
    allowMaskedChipId: false,
    allowMissingCrl: false,
    ...over,
  };
}

const only = (rep: SnpReport, rules: SnpPolicy = pinned(), b = binding) => {
  const res = appraiseSnp(rep, rules, b);
  return { res, codes: res.failures.map((f) => f.code), fields: res.failures.map((f) => f.field) };
};

describe('appraiseSnp on synthetic reports under the TEST-ONLY chain', () => {
  it('a verified report passes a policy that pins its values', () => {
    const rep = report();
    const rules = pinned();
    expect(Value.Check(SnpPolicySchema, rules)).toBe(true);
    const v = verifySnpReport(rep, { vcek: t.vcek, ask: t.ask, ark: t.ark, now: NOW, crl: t.crl, pinnedArks: pins, ...snpVerifyAllowances(rules) });
    expect(v.failures).toEqual([]);
    const res = appraiseSnp(rep, rules, binding, v.product !== undefined ? { product: v.product } : {});
    expect(res.failures).toEqual([]);
    expect(res.ok).toBe(true);
  });

  it('an all-"any" policy accepts any claims, but never a wrong REPORT_DATA', () => {
    const any: SnpPolicy = pinned({ debug: 'allowed', migrationAgent: 'allowed', vmpl: 'any', measurement: 'any', hostData: 'any', idKeyDigest: 'any', authorKeyDigest: 'any', familyId: 'any', imageId: 'any', minTcb: 'any', minGuestSvn: 'any', platformInfo: 'any' });
    expect(Value.Check(SnpPolicySchema, any)).toBe(true);
    const odd = report({ policy: 0xd0000n, vmpl: 3, measurement: new Uint8Array(48), guestSvn: 0, reportedTcb: 0n, platformInfo: 1n });
    expect(appraiseSnp(odd, any, binding).ok).toBe(true);
    expect(only(odd, any, { nonce: new Uint8Array(32), boundKeySpki: key }).codes).toEqual(['SNP_REPORT_DATA_MISMATCH']);
  });

  it.each([
    ['debug bit', { policy: 0x30000n | (1n << 19n) }, 'POLICY_SNP_DEBUG', 'ATTESTATION_REPORT.POLICY.DEBUG'],
    ['migration agent bit', { policy: 0x30000n | (1n << 18n) }, 'POLICY_SNP_MIGRATION_AGENT', 'ATTESTATION_REPORT.POLICY.MIGRATE_MA'],
    ['VMPL', { vmpl: 2 }, 'POLICY_SNP_VMPL', 'ATTESTATION_REPORT.VMPL'],
    ['MEASUREMENT', { measurement: new Uint8Array(48).fill(0x34) }, 'POLICY_SNP_MEASUREMENT', 'ATTESTATION_REPORT.MEASUREMENT'],
    ['HOST_DATA', { hostData: new Uint8Array(32) }, 'POLICY_SNP_HOST_DATA', 'ATTESTATION_REPORT.HOST_DATA'],
    ['ID_KEY_DIGEST', { idKeyDigest: new Uint8Array(48) }, 'POLICY_SNP_ID_KEY_DIGEST', 'ATTESTATION_REPORT.ID_KEY_DIGEST'],
    ['AUTHOR_KEY_DIGEST', { authorKeyDigest: new Uint8Array(48) }, 'POLICY_SNP_AUTHOR_KEY_DIGEST', 'ATTESTATION_REPORT.AUTHOR_KEY_DIGEST'],
    ['FAMILY_ID', { familyId: new Uint8Array(16) }, 'POLICY_SNP_FAMILY_ID', 'ATTESTATION_REPORT.FAMILY_ID'],
    ['IMAGE_ID', { imageId: new Uint8Array(16) }, 'POLICY_SNP_IMAGE_ID', 'ATTESTATION_REPORT.IMAGE_ID'],
    ['GUEST_SVN below minimum', { guestSvn: 3 }, 'POLICY_SNP_GUEST_SVN', 'ATTESTATION_REPORT.GUEST_SVN'],
    ['PLATFORM_INFO.SMT_EN set where forbidden', { platformInfo: 0b11n }, 'POLICY_SNP_PLATFORM_INFO', 'ATTESTATION_REPORT.PLATFORM_INFO.SMT_EN'],
    ['PLATFORM_INFO.TSME_EN clear where required', { platformInfo: 0n }, 'POLICY_SNP_PLATFORM_INFO', 'ATTESTATION_REPORT.PLATFORM_INFO.TSME_EN'],
  ] as [string, Partial<SnpReport>, string, string][])('%s: refused with its code and field', (_name, over, code, field) => {
    const { res, codes, fields: fs } = only(report(over));
    expect(res.ok).toBe(false);
    expect(codes).toEqual([code]);
    expect(fs).toEqual([field]);
    expect(res.failures[0]?.expected).toBeDefined();
    expect(res.failures[0]?.actual).toBeDefined();
  });

  it('a byte-field mismatch names the field, the allowed values and the actual hex', () => {
    const f = only(report({ measurement: new Uint8Array(48).fill(0x34) })).res.failures[0];
    expect(f?.message).toContain('report field MEASUREMENT');
    expect(f?.expected).toBe('33'.repeat(48));
    expect(f?.actual).toBe('34'.repeat(48));
  });

  it('SMT in the guest policy is refused only when the policy forbids it', () => {
    expect(only(report(), pinned({ smt: 'forbidden' })).codes).toEqual(['POLICY_SNP_SMT']);
    expect(only(report(), pinned({ smt: 'forbidden' })).fields).toEqual(['ATTESTATION_REPORT.POLICY.SMT']);
    expect(only(report({ policy: 0x20000n }), pinned({ smt: 'forbidden' })).codes).toEqual([]);
    expect(only(report({ policy: 0x20000n | (1n << 19n) }), pinned({ debug: 'allowed' })).codes).toEqual([]);
  });

  it.each([
    ['BOOT_LOADER', 'bootLoader', t.tcb.bl],
    ['TEE', 'tee', t.tcb.tee],
    ['SNP', 'snp', t.tcb.snp],
    ['MICROCODE', 'microcode', t.tcb.ucode],
  ] as [string, 'bootLoader' | 'tee' | 'snp' | 'microcode', number][])('REPORTED_TCB.%s below the minimum: POLICY_SNP_TCB', (comp, key, actual) => {
    const base = { bootLoader: t.tcb.bl, tee: t.tcb.tee, snp: t.tcb.snp, microcode: t.tcb.ucode };
    const { res, codes, fields: fs } = only(report(), pinned({ minTcb: { ...base, [key]: actual + 1 } }));
    expect(codes).toEqual(['POLICY_SNP_TCB']);
    expect(fs).toEqual([`ATTESTATION_REPORT.REPORTED_TCB.${comp}`]);
    expect(res.failures[0]?.expected).toBe(`>= ${actual + 1}`);
    expect(res.failures[0]?.actual).toBe(String(actual));
  });

  it('a TCB above the minimum passes; every component below is reported', () => {
    expect(only(report({ reportedTcb: milanTcb(t.tcb.bl + 1, t.tcb.tee + 1, t.tcb.snp + 1, t.tcb.ucode + 1) })).codes).toEqual([]);
    expect(only(report({ reportedTcb: 0n }), pinned({ minTcb: { bootLoader: 1, tee: 1, snp: 1, microcode: 1 } })).fields).toEqual([
      'ATTESTATION_REPORT.REPORTED_TCB.BOOT_LOADER',
      'ATTESTATION_REPORT.REPORTED_TCB.TEE',
      'ATTESTATION_REPORT.REPORTED_TCB.SNP',
      'ATTESTATION_REPORT.REPORTED_TCB.MICROCODE',
    ]);
  });

  it('Turin layout: the FMC minimum is read from byte 0; the product comes from CPUID or the caller', () => {
    // Turin: byte 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 7 MICROCODE.
    const turinTcb = 1n | (2n << 8n) | (3n << 16n) | (4n << 24n) | (5n << 56n);
    const rep = report({ reportedTcb: turinTcb, cpuid: { family: 0x1a, model: 0x02, stepping: 0 } });
    const rules = pinned({ minTcb: { bootLoader: 2, tee: 3, snp: 4, microcode: 5, fmc: 2 } });
    expect(only(rep, rules).fields).toEqual(['ATTESTATION_REPORT.REPORTED_TCB.FMC']);
    expect(only(rep, pinned({ minTcb: { bootLoader: 2, tee: 3, snp: 4, microcode: 5, fmc: 1 } })).codes).toEqual([]);
    // A version 2 report has no CPUID: without a product the layout is unknown.
    const v2 = report({ version: 2, cpuid: undefined });
    expect(only(v2).codes).toEqual(['POLICY_SNP_TCB']);
    expect(only(v2).fields).toEqual(['ATTESTATION_REPORT.REPORTED_TCB']);
    expect(appraiseSnp(v2, pinned(), binding, { product: 'Milan' }).ok).toBe(true);
  });

  it('a wrong REPORT_DATA (another nonce, another key, garbage) is SNP_REPORT_DATA_MISMATCH', () => {
    const rep = report();
    const otherKey = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
    for (const b of [{ nonce: new Uint8Array(32).fill(0x5b), boundKeySpki: key }, { nonce, boundKeySpki: otherKey }]) {
      const { res, codes, fields: fs } = only(rep, pinned(), b);
      expect(codes).toEqual(['SNP_REPORT_DATA_MISMATCH']);
      expect(fs).toEqual(['ATTESTATION_REPORT.REPORT_DATA']);
      expect(res.failures[0]?.expected).toBe(toHex(teeReportData(b.nonce, b.boundKeySpki)));
      expect(res.failures[0]?.actual).toBe(toHex(rep.reportData));
    }
    expect(only(report({ reportData: new Uint8Array(64).fill(7) })).codes).toEqual(['SNP_REPORT_DATA_MISMATCH']);
  });

  it('several mismatches: every one is reported, in a fixed order, without throwing', () => {
    const rep = report({
      reportData: new Uint8Array(64),
      policy: 0x30000n | (1n << 18n) | (1n << 19n),
      vmpl: 1,
      measurement: new Uint8Array(48),
      hostData: new Uint8Array(32),
      idKeyDigest: new Uint8Array(48),
      authorKeyDigest: new Uint8Array(48),
      familyId: new Uint8Array(16),
      imageId: new Uint8Array(16),
      reportedTcb: milanTcb(t.tcb.bl, t.tcb.tee, t.tcb.snp - 1, t.tcb.ucode),
      guestSvn: 0,
      platformInfo: 1n,
    });
    expect(only(rep, pinned({ smt: 'forbidden' })).codes).toEqual([
      'SNP_REPORT_DATA_MISMATCH',
      'POLICY_SNP_DEBUG',
      'POLICY_SNP_MIGRATION_AGENT',
      'POLICY_SNP_SMT',
      'POLICY_SNP_VMPL',
      'POLICY_SNP_MEASUREMENT',
      'POLICY_SNP_HOST_DATA',
      'POLICY_SNP_ID_KEY_DIGEST',
      'POLICY_SNP_AUTHOR_KEY_DIGEST',
      'POLICY_SNP_FAMILY_ID',
      'POLICY_SNP_IMAGE_ID',
      'POLICY_SNP_TCB',
      'POLICY_SNP_GUEST_SVN',
      'POLICY_SNP_PLATFORM_INFO',
      'POLICY_SNP_PLATFORM_INFO',
    ]);
  });
});

describe('SnpPolicySchema', () => {
  it('rejects unknown keys at every level', () => {
    expect(Value.Check(SnpPolicySchema, { ...pinned(), debugg: 'forbidden' })).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ minTcb: { bootLoader: 0, tee: 0, snp: 0, microcode: 0, ucode: 1 } as never }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ platformInfo: { smtEnable: 'forbidden' } as never }))).toBe(false);
  });

  it('rejects every missing rule: "any" must be written', () => {
    for (const k of Object.keys(pinned())) {
      const doc: Record<string, unknown> = { ...pinned() };
      delete doc[k];
      expect(Value.Check(SnpPolicySchema, doc), k).toBe(false);
    }
    expect(Value.Check(SnpPolicySchema, pinned({ minTcb: { bootLoader: 0, tee: 0, snp: 0 } as never }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ platformInfo: {} }))).toBe(false);
  });

  it('rejects values of the wrong size, case, or range', () => {
    expect(Value.Check(SnpPolicySchema, pinned({ measurement: ['33'.repeat(47)] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ measurement: ['AB'.repeat(48)] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ hostData: ['44'.repeat(48)] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ familyId: ['11'.repeat(32)] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ measurement: [] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ vmpl: [4] }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ minGuestSvn: -1 }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ minTcb: { bootLoader: 256, tee: 0, snp: 0, microcode: 0 } }))).toBe(false);
    expect(Value.Check(SnpPolicySchema, pinned({ debug: 'any' as never }))).toBe(false);
  });
});

describe('REPORT_DATA against an exact expected value (offline checks)', () => {
  it('equal passes; different is SNP_REPORT_DATA_MISMATCH with both values; not 64 bytes is misuse', () => {
    const rep = report();
    expect(snpReportDataFailures(rep, { reportData: rep.reportData })).toEqual([]);
    const other = new Uint8Array(64).fill(1);
    expect(snpReportDataFailures(rep, { reportData: other })).toEqual([
      expect.objectContaining({ code: 'SNP_REPORT_DATA_MISMATCH', field: 'ATTESTATION_REPORT.REPORT_DATA', expected: toHex(other), actual: toHex(rep.reportData) }),
    ]);
    expect(() => snpReportDataFailures(rep, { reportData: new Uint8Array(32) })).toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
    // appraiseSnp takes the exact value in place of the nonce and key.
    expect(appraiseSnp(rep, pinned(), { reportData: rep.reportData }).ok).toBe(true);
    expect(appraiseSnp(rep, pinned(), { reportData: other }).failures.map((f) => f.code)).toEqual(['SNP_REPORT_DATA_MISMATCH']);
  });
});
