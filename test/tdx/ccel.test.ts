/**
 * The CCEL codec, replay and claims: the trustee logs replay to their expected RTMRs and match
 * trustee's own record-by-record parse; the GCP COS 113 table and log replay to the RTMRs of the
 * quote captured with them; table fields and one-byte flips; the log area rules (LAML, 0xFF
 * padding, MR indexes, SHA-384); RTMR mismatches named per register; claims only from proven,
 * digest-bound events; fuzzing.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { isVouchError, MisuseError, ParseError } from '../../src/lib/errors.js';
import { decodeTdxQuote } from '../../src/tdx/abi.js';
import { CCEL_TABLE_LAYOUT, CCEL_TABLE_SIZE, ccelClaims, compareCcelWithQuote, decodeCcelTable, encodeCcelTable, parseCcel, replayCcel, verifyCcel } from '../../src/tdx/ccel.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';
import { SYNTH_TABLE, ccelArea, ccelTableBytes, codeOf, expectedRtmrs, onlyParseErrors, type SynthEvent } from './helpers.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Fixes the checksum of a (modified) table so that a check after it is reached. */
function withChecksum(t: Uint8Array): Uint8Array {
  const b = new Uint8Array(t);
  b[9] = 0;
  let sum = 0;
  for (const x of b) sum = (sum + x) & 0xff;
  b[9] = (0x100 - sum) & 0xff;
  return b;
}

/** A small boot: firmware blob, SecureBoot variable, separator, an EFI application, GRUB, kernel. */
const EVENTS: readonly SynthEvent[] = [
  { mr: 1, type: 0x8000000a, data: enc('Fv(synthetic)'), digest: new Uint8Array(48).fill(7) },
  { mr: 1, type: 0x80000001, data: Uint8Array.from([...Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex'), 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('SecureBoot', 'utf16le'), 1]) },
  { mr: 1, type: 4, data: new Uint8Array(4) },
  { mr: 2, type: 0x80000007, data: enc('Calling EFI Application from Boot Option') },
  { mr: 2, type: 0x80000003, data: new Uint8Array(32), digest: new Uint8Array(48).fill(9) },
  { mr: 3, type: 0x0d, data: enc('grub_cmd: linux /vmlinuz ro quiet\0'), digest: undefined },
  { mr: 3, type: 0x0d, data: enc('/vmlinuz\0'), digest: new Uint8Array(48).fill(0x33) },
  { mr: 3, type: 3, data: enc('not extended') },
];
// GRUB measures its command without the "grub_cmd: " prefix and the NUL; computed here, independently of the code under test.
const GRUB_EVENTS: readonly SynthEvent[] = EVENTS.map((e) => (e.type === 0x0d && e.digest === undefined ? { ...e, digest: new Uint8Array(createHash('sha384').update('linux /vmlinuz ro quiet').digest()) } : e));

describe('the CCEL table', () => {
  it('a synthetic table round-trips and its checksum makes the bytes sum to zero', () => {
    const b = ccelTableBytes();
    expect(b.length).toBe(CCEL_TABLE_SIZE);
    expect(b.reduce((s, x) => (s + x) & 0xff, 0)).toBe(0);
    const t = decodeCcelTable(b);
    expect(t).toMatchObject({ revision: 1, ccType: 2, ccSubtype: 0, laml: 4096n, lasa: 0x7f000000n });
    expect(Buffer.from(encodeCcelTable(t)).equals(Buffer.from(b))).toBe(true);
  });

  it('the layout covers the 56 bytes exactly, in order', () => {
    let at = 0;
    for (const f of CCEL_TABLE_LAYOUT) {
      expect(f.offset).toBe(at);
      at += f.size;
    }
    expect(at).toBe(CCEL_TABLE_SIZE);
  });

  it('every one-byte flip is refused (signature, length and revision first, then the checksum guards the rest)', () => {
    const b = ccelTableBytes();
    for (let at = 0; at < b.length; at++) {
      const m = new Uint8Array(b);
      m[at] = (m[at] as number) ^ 0x01;
      const code = codeOf(() => decodeCcelTable(m));
      const name = CCEL_TABLE_LAYOUT.find((f) => at >= f.offset && at < f.offset + f.size)?.name;
      if (name === 'Signature') expect(code).toBe('PARSE_BAD_MAGIC');
      else if (name === 'Length' || name === 'Revision') expect(code).toBe('PARSE_BAD_VALUE');
      else expect(code).toBe('TDX_CCEL_CHECKSUM_INVALID');
    }
  });

  it('with a correct checksum: CC type, subtype and reserved bytes are checked on their own', () => {
    expect(codeOf(() => decodeCcelTable(ccelTableBytes({ ccType: 1 })))).toBe('PARSE_BAD_VALUE');
    expect(codeOf(() => decodeCcelTable(ccelTableBytes({ ccSubtype: 1 })))).toBe('PARSE_BAD_VALUE');
    for (const at of [0x26, 0x27]) {
      const m = new Uint8Array(ccelTableBytes());
      m[at] = 1;
      try {
        decodeCcelTable(withChecksum(m));
        throw new Error('accepted');
      } catch (e) {
        expect(e).toMatchObject({ code: 'PARSE_RESERVED_NONZERO', field: 'CCEL.Reserved', offset: at });
      }
    }
  });

  it('a short, long or non-byte table is refused', () => {
    const b = ccelTableBytes();
    expect(codeOf(() => decodeCcelTable(b.subarray(0, 55)))).toBe('PARSE_TRUNCATED');
    expect(codeOf(() => decodeCcelTable(b.subarray(0, 3)))).toBe('PARSE_TRUNCATED');
    expect(codeOf(() => decodeCcelTable(new Uint8Array([...b, 0])))).toBe('PARSE_BAD_VALUE');
    expect(() => decodeCcelTable('CCEL' as unknown as Uint8Array)).toThrow(MisuseError);
    expect(codeOf(() => encodeCcelTable({ ...SYNTH_TABLE, oemId: new Uint8Array(5) }))).toBe('MISUSE_ARGUMENT');
  });
});

describe('the CCEL log area (synthetic)', () => {
  it('replays to RTMR values computed independently; an RTMR no event extends stays zero', () => {
    const c = parseCcel(ccelArea(GRUB_EVENTS), ccelTableBytes());
    expect(c.log.untrustedEvents.length).toBe(GRUB_EVENTS.length + 1);
    expect(c.logBytes + c.paddingBytes).toBe(4096);
    const r = replayCcel(c);
    expect(r.rtmrs.map(toHex)).toEqual(expectedRtmrs(GRUB_EVENTS).map(toHex));
    expect(toHex(r.rtmrs[3])).toBe('00'.repeat(48));
    expect(r.eventsByRtmr.map((e) => e.length)).toEqual([3, 2, 2, 0]);
  });

  it('verifies against matching RTMRs and gives claims from digest-bound events only', () => {
    const v = verifyCcel({ table: ccelTableBytes(), data: ccelArea(GRUB_EVENTS) }, expectedRtmrs(GRUB_EVENTS));
    expect(v.ok).toBe(true);
    const c = ccelClaims(v);
    expect(c.secureBoot).toEqual({ state: 'enabled', event: 2 });
    expect(c.bootLoader?.sha384).toBe('09'.repeat(48));
    expect(c.grubCommands).toEqual(['linux /vmlinuz ro quiet']);
    expect(c.kernel).toMatchObject({ untrustedPath: '/vmlinuz', sha384: '33'.repeat(48), rtmr: 2 });
    expect(c.separators).toEqual([{ rtmr: 0, value: '00000000', error: false, event: 3 }]);
    expect(c.events.length).toBe(7);
    expect(c.unboundEvents).toEqual([]);
  });

  it('a log that fills the area exactly has no padding', () => {
    const area = ccelArea(EVENTS);
    const end = parseCcel(area).logBytes;
    const c = parseCcel(area.subarray(0, end));
    expect(c.paddingBytes).toBe(0);
    expect(c.log.untrustedEvents.length).toBe(EVENTS.length + 1);
  });

  it('the area must be LAML bytes, and everything after the last event 0xFF', () => {
    const area = ccelArea(EVENTS);
    expect(codeOf(() => parseCcel(area, ccelTableBytes({ laml: 8192n })))).toBe('TDX_CCEL_LOG_AREA_INVALID');
    expect(codeOf(() => parseCcel(area.subarray(0, 4095), ccelTableBytes()))).toBe('TDX_CCEL_LOG_AREA_INVALID');
    const end = parseCcel(area).logBytes;
    for (const at of [end + 1, 4095]) {
      const m = new Uint8Array(area);
      m[at] = 0xfe;
      try {
        parseCcel(m);
        throw new Error('accepted');
      } catch (e) {
        expect(e).toMatchObject({ code: 'TDX_CCEL_LOG_AREA_INVALID', field: 'CCEL_LOG.padding', offset: at });
      }
    }
  });

  it('MR index: 1..4 for extended events; 0 (MRTD) or 5 refused; EV_NO_ACTION may name 0 and is not extended', () => {
    for (const mr of [0, 5, 0x100]) expect(codeOf(() => parseCcel(ccelArea([{ mr, type: 4, data: new Uint8Array(4) }])))).toBe('PARSE_BAD_VALUE');
    const c = parseCcel(ccelArea([{ mr: 0, type: 3, data: enc('info') }]));
    expect(replayCcel(c).rtmrs.every((r) => r.every((b) => b === 0))).toBe(true);
  });

  it('the Spec ID event: MR index 0 or 1, EV_NO_ACTION, zero digest, SHA-384 declared', () => {
    const area = ccelArea(EVENTS);
    const patch = (at: number, bytes: number[]): Uint8Array => {
      const m = new Uint8Array(area);
      m.set(bytes, at);
      return m;
    };
    expect(parseCcel(patch(0, [0])).log.untrustedEvents[0]?.pcr).toBe(0);
    expect(codeOf(() => parseCcel(patch(0, [2])))).toBe('PARSE_BAD_VALUE');
    expect(codeOf(() => parseCcel(patch(4, [4])))).toBe('PARSE_BAD_MAGIC');
    expect(codeOf(() => parseCcel(patch(8, [1])))).toBe('PARSE_BAD_VALUE');
    expect(codeOf(() => parseCcel(patch(32, [0x58])))).toBe('PARSE_BAD_MAGIC');
    // Declare SHA-256 (size 32) instead of SHA-384: the RTMRs cannot be replayed.
    expect(codeOf(() => parseCcel(patch(60, [0x0b, 0x00, 0x20, 0x00])))).toBe('PARSE_UNSUPPORTED_ALGORITHM');
    expect(codeOf(() => parseCcel(area.subarray(0, 31)))).toBe('PARSE_TRUNCATED');
  });

  it('an extended event must carry its SHA-384 digest, of a declared algorithm', () => {
    const area = ccelArea([{ mr: 1, type: 4, data: new Uint8Array(4) }]);
    const first = parseCcel(area).log.untrustedEvents[1]?.offset as number;
    const m = new Uint8Array(area);
    m[first + 12] = 0x0b; // hashAlg SHA-256, not declared
    expect(codeOf(() => parseCcel(m))).toBe('PARSE_UNSUPPORTED_ALGORITHM');
    const z = new Uint8Array(area);
    z[first + 8] = 0; // zero digests
    expect(codeOf(() => parseCcel(z))).toBe('PARSE_BAD_VALUE');
  });

  it('an RTMR that differs is named, with both values and its last events; the others still match', () => {
    const rt = expectedRtmrs(GRUB_EVENTS);
    const quoted = rt.map((r, i) => (i === 1 ? new Uint8Array(48).fill(1) : r));
    const v = verifyCcel({ data: ccelArea(GRUB_EVENTS) }, quoted);
    expect(v.ok).toBe(false);
    expect(v.comparison?.matched).toEqual([0, 2, 3]);
    expect(v.failures).toHaveLength(1);
    const f = v.comparison?.failures[0];
    expect(f).toMatchObject({ code: 'TDX_RTMR_MISMATCH', field: 'TD_REPORT_BODY.RTMR1', rtmr: 1, quoted: '01'.repeat(48), replayed: toHex(rt[1] as Uint8Array) });
    expect(f?.lastEvents.map((e) => e.index)).toEqual([4, 5]);
    expect(codeOf(() => ccelClaims(v))).toBe('EVENTLOG_NOT_REPLAYED');
    // Not relying on RTMR1: the rest verifies, and no claim comes from RTMR1.
    const w = verifyCcel({ data: ccelArea(GRUB_EVENTS) }, quoted, { rtmrs: [0, 2, 3] });
    expect(w.ok).toBe(true);
    const c = ccelClaims(w);
    expect(c.matchedRtmrs).toEqual([0, 2, 3]);
    expect(c.efiApplications).toEqual([]);
    expect(c.events.every((e) => e.rtmr !== 1)).toBe(true);
  });

  it('a log that does not parse is a failure value, not a throw; misuse throws', () => {
    const v = verifyCcel({ table: ccelTableBytes({ ccType: 1 }), data: ccelArea(EVENTS) }, expectedRtmrs(EVENTS));
    expect(v.ok).toBe(false);
    expect(v.failures[0]?.code).toBe('PARSE_BAD_VALUE');
    expect(() => verifyCcel({ data: ccelArea(EVENTS) }, [new Uint8Array(48)])).toThrow(MisuseError);
    expect(() => verifyCcel({ data: ccelArea(EVENTS) }, expectedRtmrs(EVENTS), { rtmrs: [4] })).toThrow(MisuseError);
    expect(() => compareCcelWithQuote(replayCcel(parseCcel(ccelArea(EVENTS))), expectedRtmrs(EVENTS), { rtmrs: [] })).toThrow(MisuseError);
  });

  it('event data changed but digests kept: the replay still matches, the claim from that data is dropped', () => {
    const area = ccelArea(GRUB_EVENTS);
    const sb = parseCcel(area).log.untrustedEvents[2];
    if (sb === undefined) throw new Error('no SecureBoot event');
    const m = new Uint8Array(area);
    m[sb.offset + sb.raw.length - 1] = 0; // SecureBoot = 1 → 0 in the data, digest untouched
    const v = verifyCcel({ data: m }, expectedRtmrs(GRUB_EVENTS));
    expect(v.ok).toBe(true);
    const c = ccelClaims(v);
    expect(c.secureBoot.state).toBe('unknown');
    expect(c.unboundEvents).toEqual([2]);
  });
});

describe.skipIf(!HAVE_REAL)('real CCEL logs', () => {
  interface TrusteeEvent {
    index: number;
    type_name: string;
    digests: { alg: string; digest: string }[];
    event: string;
  }

  for (const name of ['ccel_grub', 'ccel_ovmf']) {
    it(`trustee ${name} replays to its expected RTMRs`, () => {
      const c = parseCcel(readReal('tdx', 'trustee-ccel', `${name}.bin`));
      const expected = JSON.parse(readFileSync(realPath('tdx', 'trustee-ccel', `${name}.expected-rtmr.json`), 'utf8')) as { rtmr: Record<string, string> };
      expect(replayCcel(c).rtmrs.map(toHex)).toEqual([0, 1, 2, 3].map((i) => expected.rtmr[String(i)]));
      expect(c.logBytes + c.paddingBytes).toBe(65536);
      expect(c.paddingBytes).toBeGreaterThan(0);
    });

    it(`trustee ${name}: every record is the one trustee's parser read (MR index, type, digest, data)`, () => {
      const c = parseCcel(readReal('tdx', 'trustee-ccel', `${name}.bin`));
      const theirs = (JSON.parse(readFileSync(realPath('tdx', 'trustee-ccel', `${name}.expected-parse.json`), 'utf8')) as { uefi_event_logs: TrusteeEvent[] }).uefi_event_logs;
      const ours = c.log.untrustedEvents.slice(1);
      expect(ours.length).toBe(theirs.length);
      ours.forEach((e, i) => {
        const t = theirs[i] as TrusteeEvent;
        expect(e.pcr).toBe(t.index);
        expect(e.digests.map((d) => toHex(d.digest))).toEqual(t.digests.map((d) => d.digest));
        expect(Buffer.from(e.untrustedData).toString('base64')).toBe(t.event);
      });
      // Their type names are the PFP names ours are.
      expect(theirs.map((t) => t.type_name)).toContain('EV_EFI_BOOT_SERVICES_APPLICATION');
    });
  }

  it('trustee ccel_grub and ccel_ovmf: claims (Secure Boot, shim and GRUB, EFI stub tagged events)', () => {
    const claimsOf = (name: string) => {
      const c = parseCcel(readReal('tdx', 'trustee-ccel', `${name}.bin`));
      return ccelClaims(verifyCcel(c, replayCcel(c).rtmrs));
    };
    const grub = claimsOf('ccel_grub');
    expect(grub.secureBoot.state).toBe('enabled');
    expect(grub.efiApplications.map((a) => a.untrustedPath)).toContain('\\EFI\\ubuntu\\grubx64.efi');
    expect(grub.errorSeparator).toBe(false);
    const ovmf = claimsOf('ccel_ovmf');
    expect(ovmf.secureBoot).toMatchObject({ state: 'unknown', note: 'the SecureBoot variable is empty' });
    expect(ovmf.taggedEvents.map((t) => [t.tagId, t.untrustedDescription])).toEqual([
      [0x8f3b22ed, 'LOADED_IMAGE::LoadOptions'],
      [0x8f3b22ec, 'Linux initrd'],
    ]);
    expect(ovmf.unboundEvents).toEqual([]);
  });

  it('GCP COS 113: the table decodes to its documented fields and round-trips', () => {
    const raw = readReal('tdx', 'gtg-gcp-cos113-ccel', 'ccel_table.bin');
    const t = decodeCcelTable(raw);
    expect(new TextDecoder('latin1').decode(t.oemId)).toBe('INTEL ');
    expect(new TextDecoder('latin1').decode(t.oemTableId)).toBe('EDK2    ');
    expect(t).toMatchObject({ revision: 1, ccType: 2, ccSubtype: 0, laml: 0x40000n, lasa: 0xbedbf000n, checksum: 0x69 });
    expect(Buffer.from(encodeCcelTable(t)).equals(Buffer.from(raw))).toBe(true);
  });

  it('GCP COS 113: the table and log replay to the RTMRs of the quote captured with them', () => {
    const quote = decodeTdxQuote(readReal('tdx', 'gtg-gcp-cos113-ccel', 'quote.dat'));
    const v = verifyCcel({ table: readReal('tdx', 'gtg-gcp-cos113-ccel', 'ccel_table.bin'), data: readReal('tdx', 'gtg-gcp-cos113-ccel', 'ccel_data.bin') }, quote.body.report.rtmrs);
    expect(v.failures).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.comparison?.matched).toEqual([0, 1, 2, 3]);
    expect(v.ccel?.log.untrustedEvents.length).toBe(44);
    expect(v.ccel?.logBytes).toBe(18101);
    const c = ccelClaims(v);
    expect(c.secureBoot.state).toBe('disabled');
    expect(c.bootLoader?.untrustedPath).toBe('\\EFI\\BOOT\\BOOTX64.EFI');
    expect(c.efiApplications.map((a) => a.untrustedPath)).toEqual(['\\EFI\\BOOT\\BOOTX64.EFI', '\\EFI\\BOOT\\grub-lakitu.efi']);
    expect(c.secureBootVariables.map((s) => s.name)).toEqual(['PK', 'KEK', 'db', 'dbx']);
    expect(c.kernel?.untrustedPath).toBe('/syslinux/vmlinuz.A');
    expect(c.kernelCmdline).toMatchObject({ source: 'grub' });
    expect(c.kernelCmdline?.value.startsWith('/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd')).toBe(true);
    expect(c.grubCommands.length).toBe(14);
    expect(c.unboundEvents).toEqual([]);
    expect(c.undecodableEvents).toEqual([]);
  });

  it('GCP COS 113: against another TD\'s quote every RTMR is a TDX_RTMR_MISMATCH', () => {
    const other = decodeTdxQuote(readReal('tdx', 'gtg-emr-v5', 'quote.dat'));
    const v = verifyCcel({ table: readReal('tdx', 'gtg-gcp-cos113-ccel', 'ccel_table.bin'), data: readReal('tdx', 'gtg-gcp-cos113-ccel', 'ccel_data.bin') }, other.body.report.rtmrs);
    expect(v.ok).toBe(false);
    expect(v.failures.map((f) => f.field)).toEqual(['TD_REPORT_BODY.RTMR0', 'TD_REPORT_BODY.RTMR1', 'TD_REPORT_BODY.RTMR2']);
    expect(v.failures.every((f) => f.code === 'TDX_RTMR_MISMATCH')).toBe(true);
  });
});

describe('CCEL parsing time', () => {
  // Eight times the events must take far less than the 64× of quadratic growth. The fastest of
  // five runs after a warm-up, so other work on the machine (a loaded CI host) cannot fail it.
  it('eight times the events takes about eight times as long, far from the 64× of quadratic growth (bound: 32×)', () => {
    const area = (n: number): Uint8Array => {
      const events: SynthEvent[] = Array.from({ length: n }, (_, i) => ({ mr: 1 + (i % 4), type: 0x0d, data: new Uint8Array(16).fill(i & 0xff), digest: new Uint8Array(48).fill(i & 0xff) }));
      return ccelArea(events, 128 * n + 4096);
    };
    const time = (a: Uint8Array): number => {
      replayCcel(parseCcel(a));
      let best = Infinity;
      for (let k = 0; k < 5; k++) {
        const t0 = process.hrtime.bigint();
        replayCcel(parseCcel(a));
        best = Math.min(best, Number(process.hrtime.bigint() - t0));
      }
      return best;
    };
    const small = area(2000);
    const large = area(16_000);
    time(small);
    const ratio = time(large) / time(small);
    expect(ratio).toBeGreaterThan(1);
    expect(ratio).toBeLessThan(32);
  });
});
