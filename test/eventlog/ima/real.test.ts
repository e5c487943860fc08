/**
 * The real IMA lists of ../shared/fixtures/real/ima: the binary ima-sig lists (SHA-1 and SHA-256
 * template hashes) replay to the known-good PCR 10 values of ibmtss-imakvtpcr10.txt in all four
 * banks; the ASCII ima-ng list parses entry for entry and replays consistently.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../../src/tpm/abi/constants.js';
import { toHex } from '../../../src/lib/bytes.js';
import {
  checkBootAggregate,
  encodeImaAscii,
  encodeImaBinary,
  parseImaAscii,
  parseImaBinary,
  parseImaList,
  replayIma,
  templateHashInput,
} from '../../../src/eventlog/ima/index.js';
import { HAVE_REAL, readReal, realPath } from '../../helpers/real.js';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512];
const SIZE_TO_BANK = new Map([[20, TPM_ALG.SHA1], [32, TPM_ALG.SHA256], [48, TPM_ALG.SHA384], [64, TPM_ALG.SHA512]]);

/** ibmtss imakvtpcr10.txt: one line per bank, " PCR 10: 9b e6 …" (bank told by the value's size). */
function knownGood(): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync(realPath('ima', 'ibmtss-imakvtpcr10.txt'), 'utf8').split('\n')) {
    const m = /^\s*PCR 10:\s*((?:[0-9a-f]{2}\s*)+)$/.exec(line);
    if (m === null) continue;
    const hex = (m[1] as string).replace(/\s+/g, '');
    out.set(SIZE_TO_BANK.get(hex.length / 2) as number, hex);
  }
  return out;
}

describe.skipIf(!HAVE_REAL)('real IMA binary lists (ibmtss, ima-sig)', () => {
  const expected = HAVE_REAL ? knownGood() : new Map<number, string>();

  it('the known-good file names the four banks', () => {
    expect([...expected.keys()].sort()).toEqual([...BANKS].sort());
  });

  for (const [file, alg] of [['ibmtss-ima-sig-sha1.binary_runtime_measurements', TPM_ALG.SHA1], ['ibmtss-ima-sig-sha256.binary_runtime_measurements', TPM_ALG.SHA256]] as const) {
    it(`${file}: replays to the known-good PCR 10 in sha1, sha256, sha384, sha512`, () => {
      const bytes = readReal('ima', file);
      const list = parseImaList(bytes);
      expect(list.format).toBe('binary');
      expect(list.templateHashAlg).toBe(alg);
      expect(list.entries).toHaveLength(362);
      const pcr10 = replayIma(list.entries, { banks: BANKS });
      for (const b of BANKS) expect(toHex(pcr10.get(b) as Uint8Array), `bank ${b}`).toBe(expected.get(b));
    });

    it(`${file}: entries are typed, and encode back to the same bytes`, () => {
      const bytes = readReal('ima', file);
      const list = parseImaBinary(bytes);
      const first = list.entries[0]!;
      expect(first).toMatchObject({ index: 0, pcr: 10, template: 'ima-sig', path: 'boot_aggregate', violation: false });
      expect(first.digest.algorithm).toBe('sha256');
      expect(toHex(first.digest.digest)).toBe('8c84a9518e30ce8b12c9c54f54d805808551efccb15728c9453343a802ef5257');
      expect(list.entries[1]!.path).toBe('/usr/bin/kmod');
      const signed = list.entries.filter((e) => e.signature !== undefined);
      expect(signed).toHaveLength(21);
      for (const e of signed) expect(toHex(e.signature!.subarray(0, 3))).toBe('030204');
      expect(Buffer.from(encodeImaBinary(list.entries)).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  it('both lists carry the same entries (only the template-hash form differs)', () => {
    const a = parseImaBinary(readReal('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements')).entries;
    const b = parseImaBinary(readReal('ima', 'ibmtss-ima-sig-sha256.binary_runtime_measurements')).entries;
    expect(a.map((e) => toHex(e.templateData))).toEqual(b.map((e) => toHex(e.templateData)));
  });
});

describe.skipIf(!HAVE_REAL)('real IMA ASCII list (rust-keylime, ima-ng)', () => {
  const text = HAVE_REAL ? readFileSync(realPath('ima', 'rust-keylime-ascii_runtime_measurements.txt'), 'utf8') : '';

  it('parses entry for entry: 826 entries, every field typed and equal to its line', () => {
    const list = parseImaList(new Uint8Array(Buffer.from(text)));
    expect(list.format).toBe('ascii');
    expect(list.templateHashAlg).toBe(TPM_ALG.SHA1);
    const lines = text.trimEnd().split('\n');
    expect(list.entries).toHaveLength(826);
    expect(lines).toHaveLength(826);
    list.entries.forEach((e, i) => {
      const [pcr, th, tmpl, dng, ...rest] = (lines[i] as string).split(' ');
      const [algo, hex] = (dng as string).split(':');
      expect(e.index).toBe(i);
      expect(e.pcr).toBe(Number(pcr));
      expect(toHex(e.templateHash)).toBe(th);
      expect(e.template).toBe(tmpl);
      expect(e.digest.algorithm).toBe(algo);
      expect(toHex(e.digest.digest)).toBe(hex);
      expect(e.path).toBe(rest.join(' '));
      expect(e.signature).toBeUndefined();
      expect(e.violation).toBe(false);
    });
    expect(encodeImaAscii(list.entries)).toBe(text);
  });

  it('is self-consistent: each template hash is the SHA-1 of the rebuilt template data', () => {
    const list = parseImaAscii(text);
    for (const e of list.entries) {
      expect(createHash('sha1').update(templateHashInput(e)).digest().toString('hex')).toBe(toHex(e.templateHash));
    }
    // replayIma checks the same and gives the aggregate the gatherer computed.
    const pcr10 = replayIma(list.entries, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] });
    expect(toHex(pcr10.get(TPM_ALG.SHA1)!)).toBe('82231c67a69da98dc5b3aa10f6343d33109225fc');
  });

  it('binary and ASCII forms of the same list give the same entries', () => {
    const ascii = parseImaAscii(text);
    const bin = parseImaBinary(encodeImaBinary(ascii.entries));
    expect(bin.entries.map((e) => [e.path, toHex(e.templateData), toHex(e.templateHash)])).toEqual(ascii.entries.map((e) => [e.path, toHex(e.templateData), toHex(e.templateHash)]));
  });

  it('its all-zero boot_aggregate (no TPM at IMA init) fails the boot_aggregate check', () => {
    const first = parseImaAscii(text).entries[0]!;
    const pcrs = new Map([[TPM_ALG.SHA1, new Map(Array.from({ length: 10 }, (_, i) => [i, new Uint8Array(20)] as const))]]);
    const r = checkBootAggregate(first, pcrs);
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISMATCH', actual: '0'.repeat(40) });
    expect(r.failures[0]!.message).toMatch(/all zero/);
  });
});
