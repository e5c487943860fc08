/** Rejections of malformed lists, each with its code and field; one-byte flips of the checked values. */
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../../src/tpm/abi/constants.js';
import { isVouchError } from '../../../src/lib/errors.js';
import { detectImaFormat, encodeTemplateData, encodeImaAscii, encodeImaBinary, parseImaAscii, parseImaBinary, parseImaList } from '../../../src/eventlog/ima/index.js';
import { entry, fileDigest } from './synthetic.js';

/** Builds one binary entry from raw parts (little-endian). */
function raw(parts: { pcr?: number; hash?: Uint8Array; name?: string; nameLen?: number; data?: Uint8Array; dataLen?: number }): Uint8Array {
  const name = Buffer.from(parts.name ?? 'ima-ng', 'latin1');
  const data = parts.data ?? Buffer.alloc(0);
  const b = Buffer.alloc(4 + 20 + 4 + name.length + 4 + data.length);
  let o = b.writeUInt32LE(parts.pcr ?? 10, 0);
  Buffer.from(parts.hash ?? new Uint8Array(20).fill(1)).copy(b, o);
  o += 20;
  o = b.writeUInt32LE(parts.nameLen ?? name.length, o);
  name.copy(b, o);
  o += name.length;
  o = b.writeUInt32LE(parts.dataLen ?? data.length, o);
  Buffer.from(data).copy(b, o);
  return new Uint8Array(b);
}

/** ima-ng template data from raw fields. */
function fields(...fs: (string | Uint8Array)[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const f of fs) {
    const b = typeof f === 'string' ? Buffer.from(f, 'latin1') : Buffer.from(f);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return new Uint8Array(Buffer.concat(parts));
}

const DNG = `sha1:\0${'\x01'.repeat(20)}`;

function codeOf(f: () => unknown): { code: string; field?: string } {
  try {
    f();
  } catch (e) {
    if (isVouchError(e)) return { code: e.code, ...(e.field !== undefined ? { field: e.field } : {}) };
    throw e;
  }
  return { code: 'none' };
}

const bin = (b: Uint8Array): { code: string; field?: string } => codeOf(() => parseImaBinary(b, { templateHashAlg: TPM_ALG.SHA1 }));

describe('binary list rejections', () => {
  const good = raw({ data: fields(DNG, '/bin/sh\0') });

  it('a well-formed entry parses (the baseline of every case below)', () => {
    expect(parseImaBinary(good).entries[0]).toMatchObject({ path: '/bin/sh', template: 'ima-ng', pcr: 10 });
  });

  const cases: [string, Uint8Array, string, string][] = [
    ['truncated in the template hash', good.subarray(0, 10), 'PARSE_TRUNCATED', 'ima[0].templateHash'],
    ['truncated in the template data', good.subarray(0, good.length - 1), 'PARSE_TRUNCATED', 'ima[0].templateData'],
    ['PCR beyond 23', raw({ pcr: 24, data: fields(DNG, '/x\0') }), 'PARSE_BAD_VALUE', 'ima[0].pcr'],
    ['template name length 0', raw({ nameLen: 0, name: '', data: fields(DNG, '/x\0') }), 'PARSE_SIZE_EXCEEDED', 'ima[0].templateName.length'],
    ['template name length 16', raw({ nameLen: 16, data: fields(DNG, '/x\0') }), 'PARSE_SIZE_EXCEEDED', 'ima[0].templateName.length'],
    ['unsupported template', raw({ name: 'ima-ngv2', data: fields(DNG, '/x\0') }), 'IMA_TEMPLATE_UNSUPPORTED', 'ima[0].templateName'],
    ['template data over the maximum', raw({ dataLen: (1 << 20) + 1 }), 'PARSE_SIZE_EXCEEDED', 'ima[0].templateData.length'],
    ['a field longer than the template data', raw({ data: fields(DNG, '/x\0').subarray(0, 35) }), 'PARSE_TRUNCATED', 'ima[0].n-ng'],
    ['a missing field', raw({ data: fields(DNG) }), 'PARSE_TRUNCATED', 'ima[0].n-ng.length'],
    ['an extra field', raw({ data: fields(DNG, '/x\0', 'more') }), 'PARSE_TRAILING_BYTES', 'ima[0].templateData'],
    ['d-ng without ":\\0"', raw({ data: fields(`sha1-${'\x01'.repeat(21)}`, '/x\0') }), 'PARSE_BAD_VALUE', 'ima[0].d-ng'],
    ['d-ng with an unknown algorithm', raw({ data: fields(`sha999:\0${'\x01'.repeat(20)}`, '/x\0') }), 'PARSE_UNSUPPORTED_ALGORITHM', 'ima[0].d-ng'],
    ['d-ng digest of the wrong size', raw({ data: fields(`sha256:\0${'\x01'.repeat(20)}`, '/x\0') }), 'PARSE_BAD_VALUE', 'ima[0].d-ng'],
    ['n-ng without its NUL', raw({ data: fields(DNG, '/x') }), 'PARSE_BAD_VALUE', 'ima[0].n-ng'],
    ['n-ng with a NUL inside', raw({ data: fields(DNG, '/x\0y\0') }), 'PARSE_BAD_VALUE', 'ima[0].n-ng'],
    ['n-ng not UTF-8', raw({ data: fields(DNG, '/x\xff\0') }), 'PARSE_BAD_ENCODING', 'ima[0].n-ng'],
    ['ima-modsig with d-modsig but no modsig', raw({ name: 'ima-modsig', data: fields(DNG, '/x\0', '', DNG, '') }), 'PARSE_BAD_VALUE', 'ima[0].d-modsig'],
    ['legacy ima name longer than 255', (() => {
      const b = Buffer.alloc(4 + 20 + 4 + 3 + 20 + 4);
      b.writeUInt32LE(10, 0);
      b.writeUInt32LE(3, 24);
      b.write('ima', 28, 'latin1');
      b.writeUInt32LE(256, 51);
      return new Uint8Array(b);
    })(), 'PARSE_SIZE_EXCEEDED', 'ima[0].n.length'],
  ];
  for (const [name, bytes, code, field] of cases) {
    it(`${name}: ${code} at ${field}`, () => {
      expect(bin(bytes)).toEqual({ code, field });
    });
  }

  it('the template-hash size cannot be told: PARSE_BAD_VALUE', () => {
    expect(codeOf(() => parseImaBinary(new Uint8Array(64).fill(7)))).toMatchObject({ code: 'PARSE_BAD_VALUE', field: 'ima[0].templateHash' });
  });

  it('a template-hash algorithm that is not supported: PARSE_UNSUPPORTED_ALGORITHM', () => {
    expect(codeOf(() => parseImaBinary(good, { templateHashAlg: 0x99 }))).toMatchObject({ code: 'PARSE_UNSUPPORTED_ALGORITHM' });
  });

  it('an error in a later entry names that entry and its absolute offset', () => {
    const e = entry(0, 'ima-ng', { digest: fileDigest('a'), path: '/a' });
    const bytes = encodeImaBinary([e, { ...e, pcr: 99 }]);
    let err: unknown;
    try {
      parseImaBinary(bytes);
    } catch (x) {
      err = x;
    }
    expect(isVouchError(err) && [err.field, err.offset]).toEqual(['ima[1].pcr', bytes.length / 2]);
  });

  it('big-endian lists parse with endian "be" and not as little-endian', () => {
    const f = { digest: fileDigest('a'), path: '/a', signature: new Uint8Array([3, 2, 4]) };
    const e = entry(0, 'ima-sig', f);
    const be = encodeImaBinary([{ ...e, templateData: encodeTemplateData('ima-sig', f, 'be') }], 'be');
    expect(codeOf(() => parseImaBinary(be)).code).not.toBe('none');
    expect(parseImaBinary(be, { endian: 'be' }).entries[0]).toMatchObject({ path: '/a', template: 'ima-sig', pcr: 10 });
  });
});

describe('ASCII list rejections', () => {
  const e = entry(0, 'ima-ng', { digest: fileDigest('a'), path: '/a b' });
  const line = encodeImaAscii([e]);
  const asc = (s: string): { code: string; field?: string } => codeOf(() => parseImaAscii(s));

  it('a well-formed line parses, a name with a space included', () => {
    expect(parseImaAscii(line).entries[0]).toMatchObject({ path: '/a b', pcr: 10 });
    expect(parseImaAscii(` 9${line.slice(2)}`).entries[0]!.pcr).toBe(9);
  });

  const cases: [string, string, string, string][] = [
    ['no newline at the end', line.slice(0, -1), 'PARSE_TRUNCATED', 'ima[0]'],
    ['a carriage return', line.replace('\n', '\r\n'), 'PARSE_BAD_VALUE', 'ima[0]'],
    ['an empty line', `${line}\n`, 'PARSE_BAD_VALUE', 'ima[1]'],
    ['a PCR with a leading zero', `0${line.slice(1)}`.replace(/^01/, '010'), 'PARSE_BAD_VALUE', 'ima[0]'],
    ['upper-case hex', line.replace(/ ([0-9a-f]{40}) /, (_m, h: string) => ` ${h.toUpperCase()} `), 'PARSE_BAD_VALUE', 'ima[0]'],
    ['a template hash of an odd size', line.replace(/ ([0-9a-f]{40}) /, (_m, h: string) => ` ${h.slice(2)} `), 'PARSE_BAD_VALUE', 'ima[0].templateHash'],
    ['an unsupported template', line.replace(' ima-ng ', ' ima-ngv2 '), 'IMA_TEMPLATE_UNSUPPORTED', 'ima[0].templateName'],
    ['a missing field', line.replace(/ \/a b\n$/, '\n'), 'PARSE_BAD_VALUE', 'ima[0]'],
    ['a digest without algorithm', line.replace('sha256:', ''), 'PARSE_BAD_VALUE', 'ima[0].d-ng'],
    ['an unknown digest algorithm', line.replace('sha256:', 'sha257:'), 'PARSE_UNSUPPORTED_ALGORITHM', 'ima[0].d-ng'],
    ['a digest of the wrong length', line.replace(/sha256:([0-9a-f]{64})/, (_m, h: string) => `sha256:${h.slice(2)}`), 'PARSE_BAD_VALUE', 'ima[0].d-ng'],
  ];
  for (const [name, text, code, field] of cases) {
    it(`${name}: ${code} at ${field}`, () => {
      expect(asc(text)).toEqual({ code, field });
    });
  }

  it('template hashes of different sizes in one list', () => {
    const e2 = entry(1, 'ima-ng', { digest: fileDigest('b'), path: '/b' }, { hashAlg: 'sha256' });
    expect(asc(line + encodeImaAscii([e2]))).toEqual({ code: 'PARSE_BAD_VALUE', field: 'ima[1].templateHash' });
  });

  it('an ima-sig signature that is not hex, and invalid UTF-8 bytes', () => {
    const s = encodeImaAscii([entry(0, 'ima-sig', { digest: fileDigest('a'), path: '/a', signature: new Uint8Array([3, 2]) })]);
    expect(asc(s.replace('0302', '03g2'))).toEqual({ code: 'PARSE_BAD_ENCODING', field: 'ima[0].sig' });
    expect(codeOf(() => parseImaAscii(new Uint8Array([...Buffer.from(line.slice(0, -1)), 0xff, 0x0a])))).toMatchObject({ code: 'PARSE_BAD_ENCODING' });
  });
});

describe('format detection', () => {
  it('ASCII only for UTF-8 text starting with a PCR number and a hex template hash', () => {
    const e = entry(0, 'ima-ng', { digest: fileDigest('a'), path: '/a' });
    expect(detectImaFormat(new Uint8Array(Buffer.from(encodeImaAscii([e]))))).toBe('ascii');
    expect(detectImaFormat(encodeImaBinary([e]))).toBe('binary');
    expect(detectImaFormat(new Uint8Array(Buffer.from('hello\n')))).toBe('binary');
    expect(detectImaFormat(new Uint8Array(0))).toBe('binary');
    expect(parseImaList(new Uint8Array(0)).entries).toEqual([]);
  });

  it('every template encodes and parses back, in both forms', () => {
    const es = [
      entry(0, 'ima', { digest: fileDigest('a', 'sha1'), path: '/legacy name' }),
      entry(1, 'ima-ng', { digest: fileDigest('b', 'sha512'), path: '/b' }),
      entry(2, 'ima-sig', { digest: fileDigest('c'), path: '/c', signature: new Uint8Array([3, 2, 4, 1]) }),
      entry(3, 'ima-sig', { digest: fileDigest('c2'), path: '/c2' }),
      entry(4, 'ima-buf', { digest: fileDigest('d'), path: 'kexec-cmdline', buffer: new Uint8Array(Buffer.from('root=/dev/sda1 ro')) }),
      entry(5, 'ima-modsig', { digest: fileDigest('e'), path: '/lib/modules/x.ko', signature: new Uint8Array([3, 2]), modsig: { digest: fileDigest('e0'), signature: new Uint8Array([0x30, 0x80]) } }),
      entry(6, 'ima-modsig', { digest: fileDigest('f'), path: '/f' }),
      entry(7, 'ima-ng', { digest: { algorithm: 'sha1', digest: new Uint8Array(20) }, path: '/violated' }, { violation: true }),
    ];
    const b = encodeImaBinary(es);
    const fromBin = parseImaBinary(b).entries;
    const fromAscii = parseImaAscii(encodeImaAscii(es)).entries;
    for (const got of [fromBin, fromAscii]) {
      expect(got.map((x) => ({ ...x, templateData: Buffer.from(x.templateData).toString('hex') }))).toEqual(es.map((x) => ({ ...x, templateData: Buffer.from(x.templateData).toString('hex') })));
    }
    expect(Buffer.from(encodeImaBinary(fromBin)).equals(Buffer.from(b))).toBe(true);
  });
});
