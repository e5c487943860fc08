/**
 * Builders for the TDX codec tests: synthetic DCAP quotes (the encoder makes them, so the decoder
 * tests run without the real corpus), fast-check arbitraries of the quote model, and a synthetic
 * CCEL table and log area.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Writer } from '../../src/lib/reader.js';
import { isVouchError, ParseError } from '../../src/lib/errors.js';
import { DCAP_TEE_TYPE, INTEL_QE_VENDOR_ID, type DcapQuote, type DcapQuoteBody, type SgxReportBody, type TdReport10, type TdReport15 } from '../../src/tdx/abi.js';
import { encodeCcelTable, type CcelTable } from '../../src/tdx/ccel.js';

/** `n` bytes counting up from `seed`. */
export function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);
}

export function sgxBody(seed: number): SgxReportBody {
  return {
    cpuSvn: pattern(16, seed),
    miscSelect: 0x01020304 + seed,
    isvExtProdId: pattern(16, seed + 1),
    attributes: pattern(16, seed + 2),
    mrEnclave: pattern(32, seed + 3),
    mrSigner: pattern(32, seed + 4),
    configId: pattern(64, seed + 5),
    isvProdId: 2,
    isvSvn: 7,
    configSvn: 1,
    isvFamilyId: pattern(16, seed + 6),
    reportData: pattern(64, seed + 7),
  };
}

export function td10(seed: number): TdReport10 {
  return {
    teeTcbSvn: pattern(16, seed),
    mrSeam: pattern(48, seed + 1),
    mrSignerSeam: pattern(48, seed + 2),
    seamAttributes: pattern(8, seed + 3),
    tdAttributes: pattern(8, seed + 4),
    xfam: pattern(8, seed + 5),
    mrTd: pattern(48, seed + 6),
    mrConfigId: pattern(48, seed + 7),
    mrOwner: pattern(48, seed + 8),
    mrOwnerConfig: pattern(48, seed + 9),
    rtmrs: [pattern(48, seed + 10), pattern(48, seed + 11), pattern(48, seed + 12), pattern(48, seed + 13)],
    reportData: pattern(64, seed + 14),
  };
}

export function td15(seed: number): TdReport15 {
  return { ...td10(seed), teeTcbSvn2: pattern(16, seed + 15), mrServiceTd: pattern(48, seed + 16) };
}

/** A synthetic quote of each supported shape (signatures are patterns, not signatures). */
export function syntheticQuote(kind: 'v3' | 'v4' | 'v5-td10' | 'v5-td15', trailing?: Uint8Array): DcapQuote {
  const version = kind === 'v3' ? 3 : kind === 'v4' ? 4 : 5;
  const body: DcapQuoteBody = kind === 'v3' ? { kind: 'sgx', report: sgxBody(1) } : kind === 'v5-td15' ? { kind: 'td15', report: td15(1) } : { kind: 'td10', report: td10(1) };
  return {
    header: {
      version,
      attestationKeyType: 2,
      teeType: version === 3 ? DCAP_TEE_TYPE.sgx : DCAP_TEE_TYPE.tdx,
      ...(version === 3 ? { qeSvn: 10, pceSvn: 15 } : {}),
      qeVendorId: Uint8Array.from(Buffer.from(INTEL_QE_VENDOR_ID, 'hex')),
      userData: pattern(20, 9),
    },
    body,
    signatureData: {
      signature: pattern(64, 20),
      attestationKey: pattern(64, 21),
      qeReport: sgxBody(30),
      qeReportSignature: pattern(64, 22),
      qeAuthData: pattern(32, 0),
      pckCertChain: new TextEncoder().encode('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\0'),
    },
    ...(trailing !== undefined ? { trailing } : {}),
  };
}

const bytesN = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

const sgxArb: fc.Arbitrary<SgxReportBody> = fc.record({
  cpuSvn: bytesN(16),
  miscSelect: fc.nat({ max: 0xffffffff }),
  isvExtProdId: bytesN(16),
  attributes: bytesN(16),
  mrEnclave: bytesN(32),
  mrSigner: bytesN(32),
  configId: bytesN(64),
  isvProdId: fc.nat({ max: 0xffff }),
  isvSvn: fc.nat({ max: 0xffff }),
  configSvn: fc.nat({ max: 0xffff }),
  isvFamilyId: bytesN(16),
  reportData: bytesN(64),
});

const td10Arb: fc.Arbitrary<TdReport10> = fc.record({
  teeTcbSvn: bytesN(16),
  mrSeam: bytesN(48),
  mrSignerSeam: bytesN(48),
  seamAttributes: bytesN(8),
  tdAttributes: bytesN(8),
  xfam: bytesN(8),
  mrTd: bytesN(48),
  mrConfigId: bytesN(48),
  mrOwner: bytesN(48),
  mrOwnerConfig: bytesN(48),
  rtmrs: fc.tuple(bytesN(48), bytesN(48), bytesN(48), bytesN(48)),
  reportData: bytesN(64),
});

const td15Arb: fc.Arbitrary<TdReport15> = fc.record({ base: td10Arb, teeTcbSvn2: bytesN(16), mrServiceTd: bytesN(48) }).map(({ base, ...rest }) => ({ ...base, ...rest }));

/** Any quote model the encoder accepts (trailing bytes, when present, are zero). */
export const quoteArb: fc.Arbitrary<DcapQuote> = fc
  .record({
    shape: fc.constantFrom('v3', 'v4', 'v5-td10', 'v5-td15'),
    sgx: sgxArb,
    td10: td10Arb,
    td15: td15Arb,
    svns: fc.tuple(fc.nat({ max: 0xffff }), fc.nat({ max: 0xffff })),
    vendor: bytesN(16),
    user: bytesN(20),
    signature: bytesN(64),
    key: bytesN(64),
    qe: sgxArb,
    qeSig: bytesN(64),
    auth: fc.uint8Array({ maxLength: 80 }),
    chain: fc.uint8Array({ maxLength: 300 }),
    trailing: fc.nat({ max: 40 }),
  })
  .map((a): DcapQuote => {
    const version = a.shape === 'v3' ? 3 : a.shape === 'v4' ? 4 : 5;
    const body: DcapQuoteBody = a.shape === 'v3' ? { kind: 'sgx', report: a.sgx } : a.shape === 'v5-td15' ? { kind: 'td15', report: a.td15 } : { kind: 'td10', report: a.td10 };
    return {
      header: {
        version,
        attestationKeyType: 2,
        teeType: version === 3 ? 0 : 0x81,
        ...(version === 3 ? { qeSvn: a.svns[0], pceSvn: a.svns[1] } : {}),
        qeVendorId: a.vendor,
        userData: a.user,
      },
      body,
      signatureData: { signature: a.signature, attestationKey: a.key, qeReport: a.qe, qeReportSignature: a.qeSig, qeAuthData: a.auth, pckCertChain: a.chain },
      ...(a.trailing > 0 ? { trailing: new Uint8Array(a.trailing) } : {}),
    };
  });

/** The code of the error `fn` throws; fails the test when it throws something untyped or nothing. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return 'none';
}

/** Runs `fn`; anything thrown must be a ParseError (the decoders' only failure). */
export function onlyParseErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ParseError)) throw new Error(`not a ParseError: ${String(e)}`, { cause: e });
  }
}

/** A deterministic PRNG (xorshift32), so a failing case can be replayed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

// ---------------------------------------------------------------------------------------------
// CCEL

export const SHA384 = 0x000c;
const sha384 = (d: Uint8Array): Uint8Array => createHash('sha384').update(d).digest();

/** One synthetic CCEL record: MR index, event type, data (digest = SHA-384 of the data unless given). */
export interface SynthEvent {
  readonly mr: number;
  readonly type: number;
  readonly data: Uint8Array;
  readonly digest?: Uint8Array;
}

/** A CCEL log area: Spec ID event (MR index 1, as TDVF writes it), the records, 0xFF up to `size`. */
export function ccelArea(events: readonly SynthEvent[], size = 4096): Uint8Array {
  const spec = new Writer();
  spec.bytes(new TextEncoder().encode('Spec ID Event03\0')).u32(0, 'le').u8(0).u8(2).u8(0).u8(2).u32(1, 'le').u16(SHA384, 'le').u16(48, 'le').u8(0);
  const specBytes = spec.finish();
  const w = new Writer();
  w.u32(1, 'le').u32(3, 'le').bytes(new Uint8Array(20)).u32(specBytes.length, 'le').bytes(specBytes);
  for (const e of events) {
    w.u32(e.mr, 'le').u32(e.type, 'le').u32(1, 'le').u16(SHA384, 'le').bytes(e.digest ?? sha384(e.data)).u32(e.data.length, 'le').bytes(e.data);
  }
  const log = w.finish();
  if (log.length > size) throw new Error('synthetic log larger than its area');
  const out = new Uint8Array(size).fill(0xff);
  out.set(log);
  return out;
}

/** RTMR values of synthetic events, computed independently of the code under test. */
export function expectedRtmrs(events: readonly SynthEvent[]): Uint8Array[] {
  const r: Uint8Array[] = [0, 1, 2, 3].map(() => new Uint8Array(48));
  for (const e of events) {
    if (e.type === 3) continue;
    r[e.mr - 1] = sha384(Buffer.concat([r[e.mr - 1] as Uint8Array, e.digest ?? sha384(e.data)]));
  }
  return r;
}

export const SYNTH_TABLE: CcelTable = {
  revision: 1,
  oemId: new TextEncoder().encode('VOUCH '),
  oemTableId: new TextEncoder().encode('TESTONLY'),
  oemRevision: 1,
  creatorId: new TextEncoder().encode('VCH '),
  creatorRevision: 2,
  ccType: 2,
  ccSubtype: 0,
  laml: 4096n,
  lasa: 0x7f000000n,
};

export function ccelTableBytes(t: Partial<CcelTable> = {}): Uint8Array {
  return encodeCcelTable({ ...SYNTH_TABLE, ...t });
}
