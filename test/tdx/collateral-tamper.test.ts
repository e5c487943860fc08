/**
 * Tampering with real signed collateral: every one-byte change of the signed "tcbInfo" and
 * "enclaveIdentity" texts and of the signatures is refused; a re-serialization of the same
 * content is refused (the signature covers the bytes as served); duplicated or unknown members
 * are refused before any signature is looked at.
 */
import { describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import {
  parseDcapQvlCollateral,
  parseTdxQeIdentity,
  parseTdxQeIdentityBody,
  parseTdxTcbInfo,
  parseTdxTcbInfoBody,
  readCollateral,
  verifyTdxCollateral,
  type TdxCollateral,
} from '../../src/tdx/collateral.js';
import { TdxVerifyCache } from '../../src/tdx/pck.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';

const codes = (r: { failures: readonly { code: string }[] }): string[] => r.failures.map((f) => f.code);
const NOW = new Date('2023-07-01T01:00:00Z');

/** The outcome of a tampered body: the parse error code, or the verification failure codes. */
function outcome(base: TdxCollateral, kind: 'tcbInfo' | 'qeIdentity', body: Uint8Array, cache: TdxVerifyCache): string[] {
  let doc;
  try {
    doc = kind === 'tcbInfo' ? parseTdxTcbInfoBody(body) : parseTdxQeIdentityBody(body);
  } catch (e) {
    if (isVouchError(e)) return [e.code];
    throw e;
  }
  const c = kind === 'tcbInfo' && doc.id === 'TDX' ? { ...base, tcbInfo: doc } : kind === 'qeIdentity' && doc.id === 'TD_QE' ? { ...base, qeIdentity: doc } : base;
  return codes(verifyTdxCollateral(c, { now: NOW, cache }));
}

describe.skipIf(!HAVE_REAL)('one-byte flips in signed JSON and signatures (gtg-spr-e4-v4)', () => {
  for (const [kind, file, sigCode] of [
    ['tcbInfo', 'tcb_info.json', 'TDX_TCB_INFO_SIGNATURE_INVALID'],
    ['qeIdentity', 'qe_identity.json', 'TDX_QE_IDENTITY_SIGNATURE_INVALID'],
  ] as const) {
    it(`${file}: every byte of the signed member changed by one bit is refused`, async () => {
      const base = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
      const body = readReal('tdx', 'gtg-spr-e4-v4', file);
      const text = Buffer.from(body).toString('latin1');
      const start = text.indexOf(':') + 1;
      const end = text.lastIndexOf(',"signature":"');
      const cache = new TdxVerifyCache();
      expect(outcome(base, kind, body, cache)).toEqual([]);
      const seen = new Set<string>();
      for (let i = start; i < end; i++) {
        const m = body.slice();
        m[i] = (m[i] as number) ^ 0x01;
        const got = outcome(base, kind, m, cache);
        expect(got.length, `byte ${i} (${text[i]})`).toBeGreaterThan(0);
        for (const g of got) seen.add(g);
      }
      // Flips either break the strict parse or the signature; a few move a date out of the window too.
      expect(seen.has('TDX_COLLATERAL_MALFORMED')).toBe(true);
      expect(seen.has(sigCode)).toBe(true);
      expect([...seen].every((c) => ['TDX_COLLATERAL_MALFORMED', sigCode, kind === 'tcbInfo' ? 'TDX_TCB_INFO_EXPIRED' : 'TDX_QE_IDENTITY_EXPIRED'].includes(c))).toBe(true);
    });

    it(`${file}: each of the 64 signature bytes changed is ${sigCode}`, async () => {
      const base = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
      const text = Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', file)).toString('latin1');
      const at = text.lastIndexOf(',"signature":"') + ',"signature":"'.length;
      const cache = new TdxVerifyCache();
      for (let k = 0; k < 64; k++) {
        const sig = Buffer.from(text.slice(at, at + 128), 'hex');
        sig[k] = (sig[k] as number) ^ 0x80;
        const tampered = text.slice(0, at) + sig.toString('hex') + text.slice(at + 128);
        expect(outcome(base, kind, new Uint8Array(Buffer.from(tampered, 'latin1')), cache)).toEqual([sigCode]);
      }
    });
  }

  it('the same content re-serialized (whitespace, or another key order) is not what was signed', async () => {
    const base = await readCollateral(realPath('tdx', 'gtg-spr-e4-v4'));
    const text = Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json')).toString('utf8');
    const obj = JSON.parse(text) as { tcbInfo: Record<string, unknown>; signature: string };
    const pretty = new Uint8Array(Buffer.from(JSON.stringify(obj, null, 2)));
    const reordered = new Uint8Array(Buffer.from(JSON.stringify({ tcbInfo: Object.fromEntries(Object.entries(obj.tcbInfo).reverse()), signature: obj.signature })));
    const cache = new TdxVerifyCache();
    expect(outcome(base, 'tcbInfo', pretty, cache)).toEqual(['TDX_TCB_INFO_SIGNATURE_INVALID']);
    expect(outcome(base, 'tcbInfo', reordered, cache)).toEqual(['TDX_TCB_INFO_SIGNATURE_INVALID']);
    // Whitespace outside the signed member is the body's, not the signature's.
    const spaced = new Uint8Array(Buffer.from(` {"tcbInfo" : ${JSON.stringify(obj.tcbInfo)} ,\n"signature":"${obj.signature}"}\n`));
    expect(outcome(base, 'tcbInfo', spaced, cache)).toEqual([]);
  });

  it('a second "tcbInfo" member (appended, or hidden in a nested object) is refused as malformed', () => {
    const text = Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json')).toString('utf8');
    const inner = text.slice('{"tcbInfo":'.length, text.lastIndexOf(',"signature":"'));
    const tail = text.slice(text.lastIndexOf(',"signature":"'));
    const appended = `${text.trimEnd().slice(0, -1)},"tcbInfo":${inner}}`;
    const duplicateInner = `{"tcbInfo":${inner.replace('"version":3', '"version":3,"version":3')}${tail}`;
    for (const t of [appended, duplicateInner]) {
      expect(() => parseTdxTcbInfoBody(new Uint8Array(Buffer.from(t)))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED', message: expect.stringContaining('duplicate member') }));
    }
  });

  it('unknown members, a missing member, and a body without signature are refused', () => {
    const text = Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', 'qe_identity.json')).toString('utf8');
    const bad = [
      text.replace('"isvprodid":2', '"isvprodid":2,"extra":1'),
      text.replace('"isvprodid":2,', ''),
      text.slice(0, text.lastIndexOf(',"signature":"')) + '}',
      text.replace('{"enclaveIdentity"', '{"note":"x","enclaveIdentity"'),
    ];
    for (const t of bad) expect(() => parseTdxQeIdentityBody(new Uint8Array(Buffer.from(t)))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED' }));
  });

  it('a DER-encoded or short signature is malformed, not "does not verify"', () => {
    const text = Buffer.from(readReal('tdx', 'gtg-spr-e4-v4', 'tcb_info.json')).toString('utf8');
    const at = text.lastIndexOf(',"signature":"') + ',"signature":"'.length;
    const sig = text.slice(at, at + 128);
    const der = `30440220${sig.slice(0, 64)}0220${sig.slice(64)}`;
    for (const s of [der, sig.slice(0, 126), `${sig}00`, sig.replace(/^../, 'zz')]) {
      expect(() => parseTdxTcbInfoBody(new Uint8Array(Buffer.from(text.slice(0, at) + s + text.slice(at + 128))))).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED', field: 'tcbInfoBody.signature' }));
    }
  });
});

describe.skipIf(!HAVE_REAL)('tampering with the dcap-qvl split form (dcapqvl-b0c06f-v4)', () => {
  it('the signed text of tcb_info and qe_identity: one changed byte fails the signature; surrounding whitespace is refused', () => {
    const raw = JSON.parse(Buffer.from(readReal('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json')).toString('utf8')) as Record<string, string>;
    const base = parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'));
    const now = new Date('2025-07-01T00:00:00Z');
    const tcbText = raw.tcb_info as string;
    // Change an SVN digit: still well-formed, no longer signed.
    const changed = tcbText.replace('"pcesvn":11', '"pcesvn":12');
    expect(changed).not.toBe(tcbText);
    const t = parseTdxTcbInfo(new Uint8Array(Buffer.from(changed)), raw.tcb_info_signature as string);
    expect(codes(verifyTdxCollateral({ ...base, tcbInfo: t }, { now }))).toEqual(['TDX_TCB_INFO_SIGNATURE_INVALID']);
    const qeText = raw.qe_identity as string;
    const q = parseTdxQeIdentity(new Uint8Array(Buffer.from(qeText.replace('"isvprodid":2', '"isvprodid":3'))), raw.qe_identity_signature as string);
    expect(codes(verifyTdxCollateral({ ...base, qeIdentity: q }, { now }))).toEqual(['TDX_QE_IDENTITY_SIGNATURE_INVALID']);
    expect(() => parseTdxTcbInfo(new Uint8Array(Buffer.from(` ${tcbText}`)), raw.tcb_info_signature as string)).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED' }));
    expect(() => parseTdxTcbInfo(new Uint8Array(Buffer.from(`${tcbText}\n`)), raw.tcb_info_signature as string)).toThrowError(expect.objectContaining({ code: 'TDX_COLLATERAL_MALFORMED' }));
  });

  it('a flipped byte in a CRL: TDX_CRL_INVALID or TDX_CRL_MALFORMED, never a pass', () => {
    const base = parseDcapQvlCollateral(readReal('tdx', 'dcapqvl-b0c06f-v4', 'collateral.json'));
    const now = new Date('2025-07-01T00:00:00Z');
    const cache = new TdxVerifyCache();
    for (const which of ['rootCaCrl', 'pckCrl'] as const) {
      const der = base[which] as Uint8Array;
      for (let i = 0; i < der.length; i += 7) {
        const m = der.slice();
        m[i] = (m[i] as number) ^ 0x04;
        const got = codes(verifyTdxCollateral({ ...base, [which]: m }, { now, cache }));
        expect(got.length, `${which} byte ${i}`).toBeGreaterThan(0);
        expect(got.every((c) => ['TDX_CRL_INVALID', 'TDX_CRL_MALFORMED', 'TDX_CRL_STALE'].includes(c)), `${which} byte ${i}: ${got.join(',')}`).toBe(true);
      }
    }
  });
});
