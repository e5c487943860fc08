/**
 * SEV-SNP part of `npm run bench` (issue #5), on the committed TEST-ONLY AMD chain
 * (attestation-fixtures/snp) with a synthetic version 3 report signed by its VCEK.
 *
 * 1. Full appraisal with a cached chain: decode the 1184 report bytes, verifySnpReport with the
 *    VCEK, ASK and ARK parsed once and reused (report signature, chain signatures, validity,
 *    extensions against the report, the CRL), then appraiseSnp against a policy that pins every
 *    value and the REPORT_DATA binding. Next to it, in alternating rounds, the bare P-384
 *    verification of the same report with a cached KeyObject (the signature already in
 *    IEEE P1363 form). The ratio is the share of the bare rate (goal ≥ 85 %).
 *    The same without the CRL (allowMissingCrl) is printed for reference.
 * 2. The cold path: the three certificates parsed from DER and the chain verified every time.
 *
 * Run alone: `tsx bench/snp.ts`.
 */
import { createHash, generateKeyPairSync, sign, verify as cryptoVerify } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { testSnpChain } from '../attestation-fixtures/snp/index.js';
import { teeReportData } from '../src/evidence/binding.js';
import { toHex } from '../src/lib/bytes.js';
import { decodeSnpReport, encodeSnpReport, type SnpReport } from '../src/snp/abi.js';
import { appraiseSnp } from '../src/snp/appraise.js';
import { parseSnpCertificate } from '../src/snp/certs.js';
import type { SnpPolicy } from '../src/snp/policy.js';
import { SnpVerifyCache, verifySnpReport, type SnpVerifyOptions } from '../src/snp/verify.js';
import { compareRates, median, rate } from './measure.js';

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

export async function snpBench(out: (s: string) => void): Promise<void> {
  out('\nSEV-SNP: a synthetic v3 report signed by the TEST-ONLY VCEK (ECDSA P-384), TEST-ONLY Milan chain');
  const t = testSnpChain();
  const nonce = new Uint8Array(32).fill(0x5a);
  const key = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
  const binding = { nonce, boundKeySpki: key };
  const tcb = BigInt(t.tcb.bl) | (BigInt(t.tcb.tee) << 8n) | (BigInt(t.tcb.snp) << 48n) | (BigInt(t.tcb.ucode) << 56n);
  const fields: SnpReport = {
    version: 3, guestSvn: 1, policy: 0x30000n, familyId: new Uint8Array(16).fill(1), imageId: new Uint8Array(16).fill(2),
    vmpl: 0, signatureAlgo: 1, currentTcb: tcb, platformInfo: 0b10n, authorKeyEn: false, maskChipKey: false, signingKey: 0,
    reportData: teeReportData(nonce, key), measurement: new Uint8Array(48).fill(3), hostData: new Uint8Array(32).fill(4),
    idKeyDigest: new Uint8Array(48).fill(5), authorKeyDigest: new Uint8Array(48), reportId: new Uint8Array(32).fill(6),
    reportIdMa: new Uint8Array(32).fill(0xff), reportedTcb: tcb, cpuid: { family: 0x19, model: 0x01, stepping: 1 }, chipId: t.chipId,
    committedTcb: tcb, currentVersion: { major: 1, minor: 55, build: 20 }, committedVersion: { major: 1, minor: 55, build: 20 },
    launchTcb: tcb, signature: { r: new Uint8Array(72), s: new Uint8Array(72) },
  };
  const unsigned = encodeSnpReport(fields);
  const p1363 = sign('sha384', unsigned.subarray(0, 0x2a0), { key: t.vcekPrivateKey, dsaEncoding: 'ieee-p1363' });
  const r = new Uint8Array(72);
  const s = new Uint8Array(72);
  r.set(Uint8Array.from(p1363.subarray(0, 48)).reverse());
  s.set(Uint8Array.from(p1363.subarray(48, 96)).reverse());
  const bytes = encodeSnpReport({ ...fields, signature: { r, s } });
  const signedBytes = bytes.subarray(0, 0x2a0);

  const rules: SnpPolicy = {
    debug: 'forbidden', migrationAgent: 'forbidden', smt: 'allowed', vmpl: [0],
    measurement: [toHex(fields.measurement)], hostData: [toHex(fields.hostData)], idKeyDigest: [toHex(fields.idKeyDigest)],
    authorKeyDigest: 'any', familyId: [toHex(fields.familyId)], imageId: [toHex(fields.imageId)],
    minTcb: { bootLoader: t.tcb.bl, tee: t.tcb.tee, snp: t.tcb.snp, microcode: t.tcb.ucode }, minGuestSvn: 1,
    platformInfo: { smtEnabled: 'forbidden', tsmeEnabled: 'required' }, allowMaskedChipId: false, allowMissingCrl: false,
  };
  const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
  const now = new Date('2026-01-01T00:00:00Z');
  const vcek = parseSnpCertificate(t.vcek);
  const ask = parseSnpCertificate(t.ask);
  const ark = parseSnpCertificate(t.ark);
  // A verifier keeps one SnpVerifyCache: the chain signatures and the CRL are checked once.
  const cache = new SnpVerifyCache();
  const cached: SnpVerifyOptions = { vcek, ask, ark, now, crl: t.crl, pinnedArks: pins, cache };
  const cachedNoCrl: SnpVerifyOptions = { vcek, ask, ark, now, allowMissingCrl: true, pinnedArks: pins, cache };

  const full = (o: SnpVerifyOptions) => (): void => {
    const rep = decodeSnpReport(bytes);
    const v = verifySnpReport(rep, o);
    const a = appraiseSnp(rep, rules, binding, v.product !== undefined ? { product: v.product } : {});
    if (!v.ok || !a.ok) throw new Error(`bench: the synthetic report is refused: ${[...v.failures, ...a.failures].map((f) => f.code).join(', ')}`);
  };
  const cold = (): void => {
    const rep = decodeSnpReport(bytes);
    const v = verifySnpReport(rep, { vcek: parseSnpCertificate(t.vcek), ask: parseSnpCertificate(t.ask), ark: parseSnpCertificate(t.ark), now, crl: t.crl, pinnedArks: pins });
    const a = appraiseSnp(rep, rules, binding, v.product !== undefined ? { product: v.product } : {});
    if (!v.ok || !a.ok) throw new Error('bench: the synthetic report is refused on the cold path');
  };
  const vcekKey = vcek.cert.publicKey;
  const bare = (): void => {
    if (!cryptoVerify('sha384', signedBytes, { key: vcekKey, dsaEncoding: 'ieee-p1363' }, p1363)) throw new Error('bench: the bare P-384 verification fails');
  };

  const withCrl = compareRates(9, 300, full(cached), bare);
  out(`   full appraisal, cached chain and CRL (decode + verify + revocation + appraise) ${fmt(withCrl.a).padStart(8)}/s   bare P-384 verify ${fmt(withCrl.b).padStart(8)}/s   ratio ${pct(withCrl.a / withCrl.b)} (goal ≥ 85 %)`);
  const noCrl = compareRates(5, 300, full(cachedNoCrl), bare);
  out(`   the same without a CRL (allowMissingCrl) ${fmt(noCrl.a)}/s, ratio ${pct(noCrl.a / noCrl.b)}`);
  out(`   of which decode + appraiseSnp alone ${fmt(median([1, 2, 3].map(() => rate(200, () => void appraiseSnp(decodeSnpReport(bytes), rules, binding, { product: 'Milan' })))))}/s`);
  const coldRates: number[] = [];
  for (let i = 0; i < 5; i++) coldRates.push(rate(300, cold));
  out(`   cold path (VCEK, ASK, ARK parsed from DER and the chain verified every time) ${fmt(median(coldRates))}/s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  snpBench((s) => process.stdout.write(`${s}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
