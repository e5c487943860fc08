/**
 * `vouch tdx show` and `vouch ccel replay`, run in-process: output shapes, and exit statuses
 * (0 ok, 1 rejected, 2 misuse) through the command registration in main.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ccelReplayCommand } from '../../src/cli/ccel.js';
import { run } from '../../src/cli/main.js';
import { tdxShowCommand } from '../../src/cli/tdx-show.js';
import { encodeDcapQuote } from '../../src/tdx/abi.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { ccelArea, ccelTableBytes, syntheticQuote } from './helpers.js';

function io(): { io: { out: (s: string) => void; err: (s: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (s) => (out += s), err: (s) => (err += s) }, out: () => out, err: () => err };
}

const dir = mkdtempSync(join(tmpdir(), 'vouch-tdx-cli-'));
function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('vouch tdx show', () => {
  it('a synthetic v5 quote: every field as JSON, exit 0', async () => {
    const c = io();
    const q = syntheticQuote('v5-td15');
    expect(await tdxShowCommand(file('v5.dat', encodeDcapQuote(q)), { json: true }, c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { parsed: boolean; quote: { header: Record<string, unknown>; body: Record<string, unknown>; signatureData: { pckCertChain: { bytes: number; error?: { code: string } } }; sizes: Record<string, number> } };
    expect(doc.parsed).toBe(true);
    expect(doc.quote.header).toMatchObject({ version: 5, teeType: '0x81', qeVendor: 'Intel' });
    expect(doc.quote.body).toMatchObject({ type: 'TD report 1.5', mrTd: Buffer.from(q.body.kind === 'td15' ? q.body.report.mrTd : []).toString('hex') });
    expect(Object.keys(doc.quote.body)).toEqual(expect.arrayContaining(['teeTcbSvn', 'mrSeam', 'mrSignerSeam', 'seamAttributes', 'tdAttributes', 'xfam', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr3', 'reportData', 'teeTcbSvn2', 'mrServiceTd']));
    // The synthetic chain is not a real certificate: the chain part says so, the rest is shown.
    expect(doc.quote.signatureData.pckCertChain.error?.code).toBe('TDX_PCK_CERT_MALFORMED');
    expect(doc.quote.sizes).toEqual({ signedBytes: 702, quoteBytes: encodeDcapQuote(q).length, trailingBytes: 0 });
  });

  it('bytes that are not a quote: exit 1 with the failure', async () => {
    const c = io();
    expect(await tdxShowCommand(file('junk.dat', new Uint8Array(100).fill(7)), { json: true }, c.io)).toBe(1);
    expect(JSON.parse(c.out())).toMatchObject({ parsed: false, failures: [{ code: 'TDX_QUOTE_UNSUPPORTED' }] });
    const t = io();
    expect(await tdxShowCommand(file('junk.dat', new Uint8Array(100).fill(7)), {}, t.io)).toBe(1);
    expect(t.out()).toMatch(/^rejected: TDX_QUOTE_UNSUPPORTED/);
  });

  it('through main: a missing file is misuse (2)', async () => {
    const c = io();
    expect(await run(['tdx', 'show', join(dir, 'absent.dat')], c.io)).toBe(2);
    expect(c.err()).toMatch(/MISUSE_FILE_UNREADABLE/);
  });
});

describe.skipIf(!HAVE_REAL)('vouch tdx show on real quotes', () => {
  it('gtg-emr-v5 as text: one line per field, the PCK chain and its FMSPC', async () => {
    const c = io();
    expect(await run(['tdx', 'show', realPath('tdx', 'gtg-emr-v5', 'quote.dat')], c.io)).toBe(0);
    expect(c.out()).toMatch(/^body\.mrTd\s+7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876$/m);
    expect(c.out()).toMatch(/^body\.tdAttributes\.set\s+SEPT_VE_DISABLE$/m);
    expect(c.out()).toMatch(/^signatureData\.pckCertChain\.pck\.fmspc\s+90c06f000000$/m);
    expect(c.out()).toMatch(/unverified/);
  });

  it('gtg-spr-e4-v4: the appended text is refused (1) unless --allow-trailing-data, which shows it', async () => {
    const q = realPath('tdx', 'gtg-spr-e4-v4', 'quote.dat');
    const c = io();
    expect(await run(['tdx', 'show', q, '--json'], c.io)).toBe(1);
    expect(JSON.parse(c.out()).failures[0].code).toBe('TDX_QUOTE_TRAILING_DATA');
    const d = io();
    expect(await run(['tdx', 'show', q, '--json', '--allow-trailing-data'], d.io)).toBe(0);
    const doc = JSON.parse(d.out()) as { quote: { sizes: { trailingBytes: number }; untrustedTrailingData: string } };
    expect(doc.quote.sizes.trailingBytes).toBe(39);
    expect(Buffer.from(doc.quote.untrustedTrailingData, 'hex').toString()).toContain('extra bytes');
  });

  it('the SGX v3 quote shows as an SGX report', async () => {
    const c = io();
    expect(await run(['tdx', 'show', realPath('tdx', 'dcapqvl-sgx-v3', 'quote.dat'), '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out()).quote.body.type).toBe('SGX report');
  });
});

describe('vouch ccel replay', () => {
  const table = file('ccel-table.bin', ccelTableBytes());
  const data = file('ccel-data.bin', ccelArea([{ mr: 1, type: 4, data: new Uint8Array(4) }]));

  it('a synthetic log: RTMRs and records as JSON, exit 0', async () => {
    const c = io();
    expect(await ccelReplayCommand(table, data, { json: true }, c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { parsed: boolean; table: { oemId: string; laml: number }; log: { events: number; paddingBytes: number }; rtmrs: Record<string, string>; events: { rtmr?: number; type: string }[] };
    expect(doc.table).toMatchObject({ oemId: 'VOUCH ', laml: 4096 });
    expect(doc.log.events).toBe(2);
    expect(doc.rtmrs['RTMR3']).toBe('00'.repeat(48));
    expect(doc.events[1]).toMatchObject({ rtmr: 0, type: 'EV_SEPARATOR' });
  });

  it('a table of another size than the area: exit 1 with TDX_CCEL_LOG_AREA_INVALID', async () => {
    const c = io();
    expect(await ccelReplayCommand(file('t2.bin', ccelTableBytes({ laml: 8192n })), data, { json: true }, c.io)).toBe(1);
    expect(JSON.parse(c.out()).failures[0].code).toBe('TDX_CCEL_LOG_AREA_INVALID');
  });

  it('misuse through main: a bad --rtmr, or --rtmr without --quote (2)', async () => {
    const q = file('q.dat', encodeDcapQuote(syntheticQuote('v4')));
    expect(await run(['ccel', 'replay', table, data, '--quote', q, '--rtmr', '4'], io().io)).toBe(2);
    expect(await run(['ccel', 'replay', table, data, '--rtmr', '0'], io().io)).toBe(2);
    expect(await run(['ccel', 'replay', table], io().io)).toBe(2);
  });

  it('a quote whose RTMRs differ: exit 1, each failing RTMR named', async () => {
    const c = io();
    expect(await run(['ccel', 'replay', table, data, '--quote', file('q4.dat', encodeDcapQuote(syntheticQuote('v4'))), '--json'], c.io)).toBe(1);
    const doc = JSON.parse(c.out()) as { comparison: { ok: boolean; failures: { code: string; field: string }[] } };
    expect(doc.comparison.ok).toBe(false);
    expect(doc.comparison.failures.map((f) => f.field)).toEqual(['TD_REPORT_BODY.RTMR0', 'TD_REPORT_BODY.RTMR1', 'TD_REPORT_BODY.RTMR2', 'TD_REPORT_BODY.RTMR3']);
  });
});

describe.skipIf(!HAVE_REAL)('vouch ccel replay on the GCP COS 113 capture', () => {
  const args = [realPath('tdx', 'gtg-gcp-cos113-ccel', 'ccel_table.bin'), realPath('tdx', 'gtg-gcp-cos113-ccel', 'ccel_data.bin')];

  it('with its quote: every RTMR matches, claims printed, exit 0', async () => {
    const c = io();
    expect(await run(['ccel', 'replay', ...args, '--quote', realPath('tdx', 'gtg-gcp-cos113-ccel', 'quote.dat'), '--json'], c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { comparison: { ok: boolean; matched: number[] }; claims: { kernel: { untrustedPath: string } }; log: { events: number } };
    expect(doc.comparison).toMatchObject({ ok: true, matched: [0, 1, 2, 3] });
    expect(doc.claims.kernel.untrustedPath).toBe('/syslinux/vmlinuz.A');
    expect(doc.log.events).toBe(44);
    const t = io();
    expect(await run(['ccel', 'replay', ...args, '--quote', realPath('tdx', 'gtg-gcp-cos113-ccel', 'quote.dat')], t.io)).toBe(0);
    expect(t.out()).toMatch(/^RTMR2 4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1 {2}matches the quote$/m);
    expect(t.out()).toMatch(/^secure boot: disabled$/m);
  });

  it('with another TD\'s quote and --rtmr 3 only: RTMR3 (zero in both) matches, exit 0', async () => {
    const c = io();
    expect(await run(['ccel', 'replay', ...args, '--quote', realPath('tdx', 'gtg-emr-v5', 'quote.dat'), '--rtmr', '3'], c.io)).toBe(0);
    expect(c.out()).toMatch(/^RTMR0 \S+ {2}not compared$/m);
  });

  it('without a quote: text summary, exit 0', async () => {
    const c = io();
    expect(await run(['ccel', 'replay', ...args], c.io)).toBe(0);
    expect(c.out()).toMatch(/OEM "INTEL" "EDK2", CC type 2 \(TDX\), LAML 262144, LASA 0xbedbf000/);
    expect(c.out()).toMatch(/44 records in 18101 bytes, 244043 bytes of 0xFF padding/);
  });
});
