/**
 * `vouch tdx show <quote> [--json] [--allow-trailing-data]`: every field of an Intel DCAP quote
 * (TDX v4 and v5, SGX v3), bytes as hex, decoded offline. Nothing is verified: no signature, no
 * certificate chain, no collateral.
 *
 * Exit status: 0 the quote decoded, 1 it does not, 2 misuse (unreadable file).
 */
import { toHex } from '../lib/bytes.js';
import { isVouchError } from '../lib/errors.js';
import { failureFromError, type Failure } from '../lib/failure.js';
import { INTEL_QE_VENDOR_ID, attributesValue, decodeDcapQuote, tdAttributes, type DecodedDcapQuote, type SgxReportBody, type TdReport10, type TdReport15 } from '../tdx/abi.js';
import { parseIntelCertificate, parsePckCertificate, parsePckChainPem } from '../tdx/pck.js';
import { EXIT, readArgFile, type CliIo } from './main.js';

/** Options of {@link tdxShowCommand}. */
export interface TdxShowOptions {
  readonly json?: boolean;
  /** Accept non-zero bytes after the signature data (shown, never interpreted). */
  readonly allowTrailingData?: boolean;
}

const hex32 = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;

function sgxReportView(b: SgxReportBody): Record<string, unknown> {
  return {
    cpuSvn: toHex(b.cpuSvn),
    miscSelect: hex32(b.miscSelect),
    isvExtProdId: toHex(b.isvExtProdId),
    attributes: toHex(b.attributes),
    mrEnclave: toHex(b.mrEnclave),
    mrSigner: toHex(b.mrSigner),
    configId: toHex(b.configId),
    isvProdId: b.isvProdId,
    isvSvn: b.isvSvn,
    configSvn: b.configSvn,
    isvFamilyId: toHex(b.isvFamilyId),
    reportData: toHex(b.reportData),
  };
}

function tdReportView(b: TdReport10 | TdReport15): Record<string, unknown> {
  const attrs = tdAttributes(b.tdAttributes);
  return {
    teeTcbSvn: toHex(b.teeTcbSvn),
    mrSeam: toHex(b.mrSeam),
    mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes),
    tdAttributes: {
      raw: toHex(b.tdAttributes),
      set: Object.entries(attrs.flags)
        .filter(([, on]) => on)
        .map(([name]) => name),
      ...(attrs.unknownBits.length > 0 ? { unknownBits: attrs.unknownBits } : {}),
    },
    xfam: { raw: toHex(b.xfam), value: `0x${attributesValue(b.xfam).toString(16)}` },
    mrTd: toHex(b.mrTd),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmrs[0]),
    rtmr1: toHex(b.rtmrs[1]),
    rtmr2: toHex(b.rtmrs[2]),
    rtmr3: toHex(b.rtmrs[3]),
    reportData: toHex(b.reportData),
    ...('teeTcbSvn2' in b ? { teeTcbSvn2: toHex(b.teeTcbSvn2), mrServiceTd: toHex(b.mrServiceTd) } : {}),
  };
}

/**
 * The PCK chain as certificates (subject, issuer, validity, fingerprint) and the leaf's SGX
 * extension; unverified. A chain that does not parse is shown as its failure.
 */
function pckChainView(chain: Uint8Array): Record<string, unknown> {
  const view: Record<string, unknown> = { bytes: chain.length };
  try {
    const ders = parsePckChainPem(chain, 'QE_CERTIFICATION_DATA.DATA');
    view['certificates'] = ders.map((der, i) => {
      const c = parseIntelCertificate(der, `pckCertChain[${i}]`).cert;
      return { subject: c.subject, issuer: c.issuer, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), sha256: c.fingerprint };
    });
    const leaf = ders[0];
    if (leaf !== undefined) {
      const pck = parsePckCertificate(leaf, 'pckCertChain[0]');
      view['pck'] = { ca: pck.ca, fmspc: toHex(pck.sgx.fmspc), pceId: toHex(pck.sgx.pceId), pceSvn: pck.sgx.tcb.pceSvn, compSvn: pck.sgx.tcb.compSvn, cpuSvn: toHex(pck.sgx.tcb.cpuSvn), sgxType: pck.sgx.sgxType };
    }
  } catch (e) {
    if (!isVouchError(e)) throw e;
    view['error'] = failureFromError(e);
  }
  return view;
}

/** Every field of a decoded quote, as JSON-ready values (bytes as hex). */
export function tdxQuoteView(q: DecodedDcapQuote): Record<string, unknown> {
  const h = q.header;
  const s = q.signatureData;
  const body = q.body;
  return {
    header: {
      version: h.version,
      attestationKeyType: h.attestationKeyType,
      teeType: `0x${h.teeType.toString(16)}`,
      ...(h.qeSvn !== undefined ? { qeSvn: h.qeSvn, pceSvn: h.pceSvn } : {}),
      qeVendorId: toHex(h.qeVendorId),
      ...(toHex(h.qeVendorId) === INTEL_QE_VENDOR_ID ? { qeVendor: 'Intel' } : {}),
      userData: toHex(h.userData),
    },
    body: {
      type: body.kind === 'td10' ? 'TD report 1.0' : body.kind === 'td15' ? 'TD report 1.5' : 'SGX report',
      ...(body.kind === 'sgx' ? sgxReportView(body.report) : tdReportView(body.report)),
    },
    signatureData: {
      signature: toHex(s.signature),
      attestationKey: toHex(s.attestationKey),
      qeReport: sgxReportView(s.qeReport),
      qeReportSignature: toHex(s.qeReportSignature),
      qeAuthData: toHex(s.qeAuthData),
      pckCertChain: pckChainView(s.pckCertChain),
    },
    sizes: { signedBytes: q.signedBytes.length, quoteBytes: q.quoteBytes.length, trailingBytes: q.trailingBytes },
    ...(q.trailing !== undefined && q.trailing.some((b) => b !== 0) ? { untrustedTrailingData: toHex(q.trailing) } : {}),
  };
}

function flatten(prefix: string, v: unknown, out: [string, string][]): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix === '' ? k : `${prefix}.${k}`, x, out);
    return;
  }
  if (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object')) {
    v.forEach((x, i) => flatten(`${prefix}[${i}]`, x, out));
    return;
  }
  out.push([prefix, Array.isArray(v) ? v.join(', ') : String(v)]);
}

function renderFailure(f: Failure): string {
  const lines = [`rejected: ${f.code}${f.field !== undefined ? ` at ${f.field}` : ''}: ${f.message}`];
  if (f.expected !== undefined) lines.push(`  expected: ${f.expected}`);
  if (f.actual !== undefined) lines.push(`  actual:   ${f.actual}`);
  return `${lines.join('\n')}\n`;
}

/** `vouch tdx show <quote>`: every field of the quote, unverified. */
export async function tdxShowCommand(file: string, opts: TdxShowOptions, io: CliIo): Promise<number> {
  const bytes = await readArgFile(file, 'quote');
  let q: DecodedDcapQuote;
  try {
    q = decodeDcapQuote(bytes, { trailing: opts.allowTrailingData === true ? 'any' : 'zeros' });
  } catch (e) {
    if (!isVouchError(e)) throw e;
    const f = failureFromError(e);
    io.out(opts.json === true ? `${JSON.stringify({ parsed: false, failures: [f] }, null, 2)}\n` : `${renderFailure(f)}not a DCAP quote vouch decodes\n`);
    return EXIT.rejected;
  }
  const view = tdxQuoteView(q);
  const note = 'fields are unverified: no signature, certificate chain or collateral was checked';
  if (opts.json === true) {
    io.out(`${JSON.stringify({ parsed: true, note, quote: view }, null, 2)}\n`);
    return EXIT.ok;
  }
  const rows: [string, string][] = [];
  flatten('', view, rows);
  const width = Math.min(48, Math.max(...rows.map(([k]) => k.length)));
  io.out(`${rows.map(([k, v]) => `${k.padEnd(width)} ${v}`).join('\n')}\n(${note})\n`);
  return EXIT.ok;
}
