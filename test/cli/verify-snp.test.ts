/**
 * `vouch verify snp`: certificates from the report's own certificate table (an extended report
 * or --cert-table), trust directories (every AMD certificate kind and CRLs, PEM or DER, AMD's
 * GUID-named files), --policy with --report-data, and the maximum CRL age. Real reports verify at
 * the fixed times of ../shared/fixtures/real/PROVENANCE.md; reports signed by the committed
 * TEST-ONLY chain are trusted only through the injected ARK pin.
 */
import { copyFileSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { derToPem, testSnpChain } from '../../attestation-fixtures/snp/index.js';
import { run } from '../../src/cli/main.js';
import { verifySnpCommand, type VerifySnpOptions } from '../../src/cli/snp.js';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError } from '../../src/lib/errors.js';
import type { SnpReport } from '../../src/snp/abi.js';
import { parseSnpCertificatesPem } from '../../src/snp/certs.js';
import { SNP_ASVK_GUID, SNP_CERT_GUID, encodeSnpCertTable } from '../../src/snp/certtable.js';
import { signSyntheticSnpReport, syntheticSnpFields } from '../helpers/fake-tsm.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

interface Doc {
  verified: boolean;
  signer?: string;
  policy?: { id: string; digest: string };
  checks: { check: string; outcome: string; note?: string }[];
  failures: { code: string; field?: string; expected?: string; actual?: string }[];
  allowancesUsed: string[];
  certificates?: { role: string; source: string }[];
  crl?: { source: string; thisUpdate: string; maxAgeSeconds?: number };
  ignored?: string[];
  report?: Record<string, unknown>;
}

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

async function cliJson(...argv: string[]): Promise<{ status: number; doc: Doc; err: string }> {
  const r = await cli(...argv, '--json');
  return { status: r.status, doc: (r.out === '' ? {} : JSON.parse(r.out)) as Doc, err: r.err };
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'vouch-snp-cli-'));
const codes = (d: Doc): string[] => d.failures.map((f) => f.code);

// --- the TEST-ONLY chain, through the command function (its ARK pin is injected) -----------------

const t = testSnpChain();
const pins = { [createHash('sha256').update(t.ark).digest('hex')]: 'Milan' as const };
const AT = '2026-01-01T00:00:00Z'; // CRL thisUpdate 2025-01-01: 365 days old
const REPORT_DATA = new Uint8Array(64).fill(0xab);

/** A TEST-ONLY trust directory: VCEK (DER), ASK and ARK (PEM), and the CRL as given. */
function testTrustDir(crl: 'der' | 'pem' | 'none' = 'der'): string {
  const dir = tmp();
  writeFileSync(join(dir, 'vcek.der'), t.vcek);
  writeFileSync(join(dir, 'cert_chain.pem'), t.certChainPem);
  if (crl === 'der') writeFileSync(join(dir, 'crl.der'), t.crl);
  if (crl === 'pem') writeFileSync(join(dir, 'crl.pem'), derToPem(t.crl, 'X509 CRL'));
  writeFileSync(join(dir, 'README.txt'), 'not collateral');
  return dir;
}

function testReport(over: Partial<SnpReport> = {}): string {
  const p = join(tmp(), 'report.bin');
  writeFileSync(p, signSyntheticSnpReport(t, syntheticSnpFields(t, { reportData: REPORT_DATA, ...over })));
  return p;
}

async function verifyTest(opts: Partial<VerifySnpOptions> & { report: string }): Promise<{ status: number; doc: Doc }> {
  let out = '';
  const status = await verifySnpCommand({ at: AT, pinnedArks: pins, json: true, ...opts }, { out: (s) => (out += s), err: (s) => (out += s) });
  return { status, doc: JSON.parse(out) as Doc };
}

function policyFile(snp: string | undefined, name = 'policy.yaml'): string {
  const p = join(tmp(), name);
  writeFileSync(
    p,
    `apiVersion: vouch/v1
kind: AttestationPolicy
id: snp-cli
tpm:
  banks: [sha256]
  pcrs:
    sha256: { "0": any }
${snp === undefined ? '' : `snp:\n${snp}`}artifact:
  lifetimeSeconds: 300
`,
  );
  return p;
}

/** snp rules that every default synthetic report meets, with lines replaced by `over`. */
function snpRules(over: Record<string, string> = {}): string {
  const rules: Record<string, string> = {
    debug: 'forbidden',
    migrationAgent: 'forbidden',
    smt: 'allowed',
    vmpl: '[0]',
    measurement: `["${'01'.repeat(48)}"]`,
    hostData: 'any',
    idKeyDigest: 'any',
    authorKeyDigest: 'any',
    familyId: 'any',
    imageId: 'any',
    minTcb: `{ bootLoader: ${t.tcb.bl}, tee: ${t.tcb.tee}, snp: ${t.tcb.snp}, microcode: ${t.tcb.ucode} }`,
    minGuestSvn: '1',
    platformInfo: 'any',
    allowMaskedChipId: 'false',
    allowMissingCrl: 'false',
    ...over,
  };
  return Object.entries(rules).map(([k, v]) => `  ${k}: ${v}\n`).join('');
}

describe('verify snp: trust directories', () => {
  it('a directory with the VCEK, the chain bundle and a DER CRL (.der): the CRL is found and checked; other files are listed as ignored', async () => {
    const dir = testTrustDir('der');
    const { status, doc } = await verifyTest({ report: testReport(), certs: dir });
    expect(doc.failures).toEqual([]);
    expect(status).toBe(0);
    expect(doc.checks.find((c) => c.check === 'crl')?.outcome).toBe('pass');
    expect(doc.crl).toMatchObject({ source: join(dir, 'crl.der'), thisUpdate: '2025-01-01T00:00:00.000Z' });
    expect(doc.certificates?.map((c) => [c.role, c.source])).toEqual([['vcek', join(dir, 'vcek.der')], ['ask', `${join(dir, 'cert_chain.pem')}[0]`], ['ark', `${join(dir, 'cert_chain.pem')}[1]`]]);
    expect(doc.ignored).toEqual([join(dir, 'README.txt')]);
  });

  it('a PEM CRL (X509 CRL block) is found too, also through a symbolic link; a broken link is ignored', async () => {
    const dir = testTrustDir('none');
    const store = tmp();
    writeFileSync(join(store, 'amd-crl.pem'), derToPem(t.crl, 'X509 CRL'));
    symlinkSync(join(store, 'amd-crl.pem'), join(dir, 'crl.pem'));
    symlinkSync(join(store, 'gone.pem'), join(dir, 'gone.pem'));
    const { status, doc } = await verifyTest({ report: testReport(), certs: dir });
    expect(status).toBe(0);
    expect(doc.crl?.source).toBe(join(dir, 'crl.pem'));
    expect(doc.ignored).toEqual([join(dir, 'README.txt'), join(dir, 'gone.pem')]);
  });

  it('no CRL anywhere: SNP_CRL_MISSING; with --allow-missing-crl the allowance is recorded', async () => {
    const dir = testTrustDir('none');
    const miss = await verifyTest({ report: testReport(), certs: dir });
    expect(miss.status).toBe(1);
    expect(codes(miss.doc)).toEqual(['SNP_CRL_MISSING']);
    const allowed = await verifyTest({ report: testReport(), certs: dir, allowMissingCrl: true });
    expect(allowed.status).toBe(0);
    expect(allowed.doc.allowancesUsed).toEqual(['missingCrl']);
    expect(allowed.doc.checks.find((c) => c.check === 'crl')).toEqual({ check: 'crl', outcome: 'skipped', note: 'no CRL supplied; allowed by allowMissingCrl' });
  });

  it('a CRL revoking the ASK: SNP_REVOKED', async () => {
    const dir = testTrustDir('none');
    writeFileSync(join(dir, 'crl.crl'), t.crlRevokingAsk);
    const { status, doc } = await verifyTest({ report: testReport(), certs: dir });
    expect(status).toBe(1);
    expect(codes(doc)).toEqual(['SNP_REVOKED']);
  });

  it('two different CRLs of the same ARK are refused as ambiguous (exit 2), not guessed between', async () => {
    const dir = testTrustDir('der');
    writeFileSync(join(dir, 'crl-2.crl'), t.crlRevokingAsk);
    await expect(verifyTest({ report: testReport(), certs: dir })).rejects.toThrowError(expect.objectContaining({ code: 'MISUSE_ARGUMENT', message: expect.stringMatching(/2 different CRLs/) }));
  });
});

describe('verify snp: maximum CRL age', () => {
  it('--crl-max-age: a CRL 365 days old fails a 30-day maximum with SNP_CRL_TOO_OLD (code, field, expected, actual)', async () => {
    const { status, doc } = await verifyTest({ report: testReport(), certs: testTrustDir(), crlMaxAge: String(30 * 86400) });
    expect(status).toBe(1);
    expect(doc.failures).toEqual([expect.objectContaining({ code: 'SNP_CRL_TOO_OLD', field: 'crl.tbsCertList.thisUpdate', actual: '2025-01-01T00:00:00.000Z', expected: expect.stringContaining('2025-12-02T00:00:00.000Z') })]);
    expect(doc.crl?.maxAgeSeconds).toBe(30 * 86400);
    const ok = await verifyTest({ report: testReport(), certs: testTrustDir(), crlMaxAge: String(400 * 86400) });
    expect(ok.status).toBe(0);
    expect(ok.doc.checks.find((c) => c.check === 'crl.maxAge')?.outcome).toBe('pass');
  });

  it('--crl-max-age that is not a whole number of seconds is misuse (exit 2)', async () => {
    for (const bad of ['0', '-1', '1.5', 'week', '99999999999']) {
      expect((await cli('verify', 'snp', '--report', testReport(), '--certs', testTrustDir(), '--crl-max-age', bad)).status).toBe(2);
    }
  });
});

describe('verify snp: certificate tables', () => {
  it('an extended report (the report followed by its table) verifies with no --certs; the table CRL is used', async () => {
    const p = join(tmp(), 'extended.bin');
    const table = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: t.vcek },
      { guid: SNP_CERT_GUID.ask, data: t.ask },
      { guid: SNP_CERT_GUID.ark, data: t.ark },
      { guid: SNP_CERT_GUID.crl, data: t.crl },
    ]);
    // The host pads the certificate buffer to whole pages.
    writeFileSync(p, Buffer.concat([signSyntheticSnpReport(t, syntheticSnpFields(t)), table, new Uint8Array(4096 - (table.length % 4096))]));
    const { status, doc } = await verifyTest({ report: p });
    expect(doc.failures).toEqual([]);
    expect(status).toBe(0);
    expect(doc.certificates?.map((c) => c.source)).toEqual(['SNP_CERT_TABLE.entry[0]', 'SNP_CERT_TABLE.entry[1]', 'SNP_CERT_TABLE.entry[2]']);
    expect(doc.crl?.source).toBe('SNP_CERT_TABLE.entry[3]');
  });

  it("a table whose ARK is not pinned is still refused: the table's ARK is never trusted for being there", async () => {
    const p = join(tmp(), 'table.bin');
    writeFileSync(p, encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: t.vcek }, { guid: SNP_CERT_GUID.ask, data: t.ask }, { guid: SNP_CERT_GUID.ark, data: t.ark }, { guid: SNP_CERT_GUID.crl, data: t.crl }]));
    const { status, doc } = await verifyTest({ report: testReport(), certTable: p, pinnedArks: {} });
    expect(status).toBe(1);
    expect(codes(doc)).toEqual(['SNP_ARK_NOT_PINNED']);
  });

  it('a certificate table that does not parse is a rejection (exit 1) naming the table field', async () => {
    const p = join(tmp(), 'table.bin');
    writeFileSync(p, new Uint8Array(30).fill(0xee));
    const { status, doc } = await verifyTest({ report: testReport(), certTable: p });
    expect(status).toBe(1);
    expect(doc.failures[0]?.code).toBe('PARSE_TRUNCATED');
    expect(doc.failures[0]?.field).toMatch(/^SNP_CERT_TABLE/);
    const bad = join(tmp(), 'bad-entry.bin');
    writeFileSync(bad, encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: Uint8Array.of(0x30, 0x03, 1, 2, 3) }]));
    const e = await verifyTest({ report: testReport(), certTable: bad });
    expect(e.status).toBe(1);
    expect(e.doc.failures[0]).toMatchObject({ code: 'SNP_CERT_MALFORMED', field: 'SNP_CERT_TABLE.entry[0]' });
  });

  it('an extended report and --cert-table together is misuse; so is no certificate source at all', async () => {
    const ext = join(tmp(), 'extended.bin');
    writeFileSync(ext, Buffer.concat([signSyntheticSnpReport(t, syntheticSnpFields(t)), encodeSnpCertTable([])]));
    const table = join(tmp(), 'table.bin');
    writeFileSync(table, encodeSnpCertTable([]));
    expect((await cli('verify', 'snp', '--report', ext, '--cert-table', table)).status).toBe(2);
    const none = await cli('verify', 'snp', '--report', testReport());
    expect(none.status).toBe(2);
    expect(none.err).toMatch(/MISUSE_ARGUMENT: no certificates/);
  });
});

describe('verify snp --policy', () => {
  const hex = toHex(REPORT_DATA);

  it('a report that meets every snp rule, with the right --report-data: exit 0, the policy named', async () => {
    const { status, doc } = await verifyTest({ report: testReport(), certs: testTrustDir(), policy: policyFile(snpRules()), reportData: hex });
    expect(doc.failures).toEqual([]);
    expect(status).toBe(0);
    expect(doc.policy?.id).toBe('snp-cli');
    expect(doc.policy?.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.checks.filter((c) => c.check === 'report.REPORT_DATA' || c.check === 'policy.snp')).toEqual([
      { check: 'report.REPORT_DATA', outcome: 'pass' },
      { check: 'policy.snp', outcome: 'pass' },
    ]);
  });

  it('every mismatch is reported, each with code, field, expected and actual', async () => {
    const report = testReport({ vmpl: 2, policy: 0x30000n | (1n << 19n), guestSvn: 0, measurement: new Uint8Array(48).fill(7) });
    const { status, doc } = await verifyTest({ report, certs: testTrustDir(), policy: policyFile(snpRules()), reportData: '00'.repeat(64) });
    expect(status).toBe(1);
    expect(codes(doc)).toEqual(['SNP_REPORT_DATA_MISMATCH', 'POLICY_SNP_DEBUG', 'POLICY_SNP_VMPL', 'POLICY_SNP_MEASUREMENT', 'POLICY_SNP_GUEST_SVN']);
    for (const f of doc.failures) {
      expect(f.field).toMatch(/^ATTESTATION_REPORT\./);
      expect(f.expected).toBeDefined();
      expect(f.actual).toBeDefined();
    }
    expect(doc.failures[0]).toMatchObject({ field: 'ATTESTATION_REPORT.REPORT_DATA', expected: '00'.repeat(64), actual: hex });
  });

  it("the policy's crlMaxAgeSeconds refuses the year-old CRL with SNP_CRL_TOO_OLD", async () => {
    const { status, doc } = await verifyTest({ report: testReport(), certs: testTrustDir(), policy: policyFile(snpRules({ crlMaxAgeSeconds: String(7 * 86400) })), reportData: hex });
    expect(status).toBe(1);
    expect(codes(doc)).toEqual(['SNP_CRL_TOO_OLD']);
  });

  it("the policy's allowMissingCrl decides, and its use is recorded", async () => {
    const dir = testTrustDir('none');
    const strict = await verifyTest({ report: testReport(), certs: dir, policy: policyFile(snpRules()), reportData: hex });
    expect(codes(strict.doc)).toEqual(['SNP_CRL_MISSING']);
    const lax = await verifyTest({ report: testReport(), certs: dir, policy: policyFile(snpRules({ allowMissingCrl: 'true' })), reportData: hex });
    expect(lax.status).toBe(0);
    expect(lax.doc.allowancesUsed).toEqual(['missingCrl']);
  });

  it('a policy with snp rules and no --report-data: exit 2 with SNP_REPORT_DATA_REQUIRED, nothing skipped silently', async () => {
    const r = await cli('verify', 'snp', '--report', testReport(), '--certs', testTrustDir(), '--policy', policyFile(snpRules()), '--json');
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^vouch: SNP_REPORT_DATA_REQUIRED: /);
    await expect(verifyTest({ report: testReport(), certs: testTrustDir(), policy: policyFile(snpRules()) })).rejects.toThrowError(expect.objectContaining({ code: 'SNP_REPORT_DATA_REQUIRED', category: 'misuse' }));
  });

  it('a policy without an snp section: POLICY_SNP_NOT_CONFIGURED (exit 1)', async () => {
    const { status, doc } = await verifyTest({ report: testReport(), certs: testTrustDir(), policy: policyFile(undefined) });
    expect(status).toBe(1);
    expect(doc.failures).toEqual([expect.objectContaining({ code: 'POLICY_SNP_NOT_CONFIGURED', field: 'policy.snp' })]);
  });

  it('an invalid policy, a policy with --allow-* or --crl-max-age, a bad --report-data: exit 2', async () => {
    const bad = await cli('verify', 'snp', '--report', testReport(), '--certs', testTrustDir(), '--policy', policyFile(snpRules({ debgu: 'forbidden' })), '--report-data', hex);
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/POLICY_INVALID: .*debgu/);
    for (const flag of [['--allow-missing-crl'], ['--allow-masked-chip-id'], ['--crl-max-age', '60']]) {
      expect((await cli('verify', 'snp', '--report', testReport(), '--certs', testTrustDir(), '--policy', policyFile(snpRules()), '--report-data', hex, ...flag)).status).toBe(2);
    }
    for (const rd of ['abcd', 'zz'.repeat(64), '00'.repeat(65)]) {
      expect((await cli('verify', 'snp', '--report', testReport(), '--certs', testTrustDir(), '--report-data', rd)).status).toBe(2);
    }
  });

  it('text output names the policy', async () => {
    let out = '';
    const status = await verifySnpCommand({ report: testReport(), certs: testTrustDir(), policy: policyFile(snpRules()), reportData: hex, at: AT, pinnedArks: pins }, { out: (s) => (out += s), err: (s) => (out += s) });
    expect(status).toBe(0);
    expect(out).toContain('PASS  policy.snp');
    expect(out).toMatch(/verified and appraised against policy snp-cli \(sha256:[0-9a-f]{64}\)/);
  });
});

describe('verify snp --report-data without a policy', () => {
  it('checks REPORT_DATA alone: equal passes, different is SNP_REPORT_DATA_MISMATCH', async () => {
    const ok = await verifyTest({ report: testReport(), certs: testTrustDir(), reportData: `0x${toHex(REPORT_DATA).toUpperCase()}` });
    expect(ok.status).toBe(0);
    expect(ok.doc.checks.find((c) => c.check === 'report.REPORT_DATA')?.outcome).toBe('pass');
    const bad = await verifyTest({ report: testReport(), certs: testTrustDir(), reportData: 'ff'.repeat(64) });
    expect(bad.status).toBe(1);
    expect(bad.doc.failures).toEqual([expect.objectContaining({ code: 'SNP_REPORT_DATA_MISMATCH', field: 'ATTESTATION_REPORT.REPORT_DATA', expected: 'ff'.repeat(64), actual: toHex(REPORT_DATA) })]);
  });
});

// --- real reports, AMD's pinned ARKs, through the command line ------------------------------------

describe.skipIf(!HAVE_REAL)('verify snp on real reports', () => {
  const milan = (): [Uint8Array, Uint8Array] => {
    const [ask, ark] = parseSnpCertificatesPem(new TextDecoder().decode(readReal('roots', 'amd', 'ask_ark_milan.pem'))).map((c) => c.cert.der);
    return [ask as Uint8Array, ark as Uint8Array];
  };
  const milanVlek = (): [Uint8Array, Uint8Array] => {
    const [asvk, ark] = parseSnpCertificatesPem(new TextDecoder().decode(readReal('roots', 'amd', 'ask_ark_milan_vlek.pem'))).map((c) => c.cert.der);
    return [asvk as Uint8Array, ark as Uint8Array];
  };

  it('gsg-milan as an extended report (hex) with its VCEK table: exit 0 with no --certs', async () => {
    const [ask, ark] = milan();
    const table = encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: readReal('snp', 'gsg-milan', 'vcek.der') }, { guid: SNP_CERT_GUID.ask, data: ask }, { guid: SNP_CERT_GUID.ark, data: ark }]);
    const p = join(tmp(), 'extended.hex');
    writeFileSync(p, `${toHex(Buffer.concat([readReal('snp', 'gsg-milan', 'report.bin'), table]))}\n`);
    const { status, doc } = await cliJson('verify', 'snp', '--report', p, '--at', '2022-09-24T01:00:00Z', '--allow-missing-crl');
    expect(doc.failures).toEqual([]);
    expect(status).toBe(0);
    expect(doc.signer).toBe('vcek');
    expect(doc.allowancesUsed).toEqual(['missingCrl']);
    expect(doc.report?.measurement).toMatch(/^b07af962/);
  });

  it('trustee-vlek-milan with --cert-table: the ASVK comes from the ASK GUID entry; after 2025-12-10 SNP_CHAIN_EXPIRED', async () => {
    const [asvk, ark] = milanVlek();
    const p = join(tmp(), 'auxblob.bin');
    writeFileSync(p, encodeSnpCertTable([{ guid: SNP_CERT_GUID.vlek, data: readReal('snp', 'trustee-vlek-milan', 'vlek.der') }, { guid: SNP_ASVK_GUID, data: asvk }, { guid: SNP_CERT_GUID.ark, data: ark }]));
    const report = realPath('snp', 'trustee-vlek-milan', 'report.bin');
    const ok = await cliJson('verify', 'snp', '--report', report, '--cert-table', p, '--at', '2025-06-01T00:00:00Z', '--allow-missing-crl');
    expect(ok.doc.failures).toEqual([]);
    expect(ok.status).toBe(0);
    expect(ok.doc.certificates?.map((c) => [c.role, c.source])).toEqual([['vlek', 'SNP_CERT_TABLE.entry[0]'], ['asvk', 'SNP_CERT_TABLE.entry[1]'], ['ark', 'SNP_CERT_TABLE.entry[2]']]);
    const late = await cliJson('verify', 'snp', '--report', report, '--cert-table', p, '--at', '2026-01-01T00:00:00Z', '--allow-missing-crl');
    expect(late.status).toBe(1);
    expect(codes(late.doc)).toEqual(['SNP_CHAIN_EXPIRED']);
  });

  it("a trust directory as AMD's sev-guest tool writes it (files named by GUID) next to every Milan chain", async () => {
    const dir = tmp();
    copyFileSync(realPath('snp', 'trustee-vlek-milan', 'vlek.der'), join(dir, SNP_CERT_GUID.vlek));
    for (const f of ['ask_ark_milan.pem', 'ask_ark_milan_vlek.pem', 'ask_ark_genoa.pem']) copyFileSync(realPath('roots', 'amd', f), join(dir, f));
    const { status, doc } = await cliJson('verify', 'snp', '--report', realPath('snp', 'trustee-vlek-milan', 'report.bin'), '--certs', dir, '--at', '2025-06-01T00:00:00Z', '--allow-missing-crl');
    expect(doc.failures).toEqual([]);
    expect(status).toBe(0);
    // The ARK-Milan of both Milan bundles is one certificate (same SHA-256), counted once.
    expect(doc.certificates?.map((c) => [c.role, c.source])).toEqual([
      ['vlek', join(dir, SNP_CERT_GUID.vlek)],
      ['asvk', `${join(dir, 'ask_ark_milan_vlek.pem')}[0]`],
      ['ark', `${join(dir, 'ask_ark_milan.pem')}[1]`],
    ]);
  });

  it('a flipped byte in the signed part of the extended report: SNP_SIGNATURE_INVALID', async () => {
    const [ask, ark] = milan();
    const rep = readReal('snp', 'gsg-milan', 'report.bin');
    rep[0x90] = (rep[0x90] as number) ^ 1;
    const p = join(tmp(), 'extended.bin');
    writeFileSync(p, Buffer.concat([rep, encodeSnpCertTable([{ guid: SNP_CERT_GUID.vcek, data: readReal('snp', 'gsg-milan', 'vcek.der') }, { guid: SNP_CERT_GUID.ask, data: ask }, { guid: SNP_CERT_GUID.ark, data: ark }])]));
    const { status, doc } = await cliJson('verify', 'snp', '--report', p, '--at', '2022-09-24T01:00:00Z', '--allow-missing-crl');
    expect(status).toBe(1);
    expect(codes(doc)).toEqual(['SNP_SIGNATURE_INVALID']);
  });
});

describe('misuse is thrown, not printed as a verdict', () => {
  it('verifySnpCommand throws a misuse error for a bad --at', async () => {
    try {
      await verifySnpCommand({ report: testReport(), certs: testTrustDir(), at: 'yesterday' }, { out: () => undefined, err: () => undefined });
      expect.unreachable();
    } catch (e) {
      expect(isVouchError(e) && e.category).toBe('misuse');
    }
  });
});

describe('a --certs file that is not collateral', () => {
  it('is a rejection listed with its code (exit 1), like a report that does not decode', async () => {
    const dir = testTrustDir();
    writeFileSync(join(dir, 'ark.key.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const { status, doc } = await verifyTest({ report: testReport(), certs: dir });
    expect(status).toBe(1);
    expect(doc.failures).toEqual([expect.objectContaining({ code: 'PARSE_BAD_ENCODING', field: `${join(dir, 'ark.key.pem')}[0]` })]);
  });
});
