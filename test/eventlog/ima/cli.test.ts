/** `vouch ima show|replay` (the command modules; main.ts wires them to the command line). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imaReplayCommand, imaShowCommand } from '../../../src/cli/ima.js';
import { HAVE_REAL, readReal, realPath } from '../../helpers/real.js';

function io(): { out: (s: string) => void; err: (s: string) => void; text: { out: string; err: string } } {
  const text = { out: '', err: '' };
  return { out: (s) => (text.out += s), err: (s) => (text.err += s), text };
}

const KNOWN: Record<string, string> = {
  sha1: '9be6bac02bf18d09d17e726c2df00bca4e8831ea',
  sha256: '7fac48c81837d6d29046008aef0cdad8c2745cc98c3340cbba9bfdf39b4124b8',
};

describe.skipIf(!HAVE_REAL)('vouch ima replay / show on the real lists', () => {
  it('replay --json prints PCR 10 per bank (bank → index → hex)', async () => {
    const c = io();
    const status = await imaReplayCommand(realPath('ima', 'ibmtss-ima-sig-sha256.binary_runtime_measurements'), { json: true }, c);
    expect(status).toBe(0);
    const doc = JSON.parse(c.text.out) as { ok: boolean; format: string; templateHashAlgorithm: string; entries: number; pcrs: Record<string, Record<string, string>> };
    expect(doc).toMatchObject({ ok: true, format: 'binary', templateHashAlgorithm: 'sha256', entries: 362 });
    expect(Object.keys(doc.pcrs)).toEqual(['sha1', 'sha256', 'sha384', 'sha512']);
    expect(doc.pcrs['sha1']).toEqual({ '10': KNOWN['sha1'] });
    expect(doc.pcrs['sha256']).toEqual({ '10': KNOWN['sha256'] });
  });

  it('replay (text) on the ASCII list, with --banks', async () => {
    const c = io();
    expect(await imaReplayCommand(realPath('ima', 'rust-keylime-ascii_runtime_measurements.txt'), { banks: 'sha1' }, c)).toBe(0);
    expect(c.text.out).toContain('ascii list, 826 entries');
    expect(c.text.out).toContain('sha1     PCR 10 = 82231c67a69da98dc5b3aa10f6343d33109225fc');
  });

  it('show --json lists typed entries; show prints one line per entry', async () => {
    const c = io();
    expect(await imaShowCommand(realPath('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements'), { json: true }, c)).toBe(0);
    const doc = JSON.parse(c.text.out) as { entries: { path: string; keyId?: string; digest: { algorithm: string } }[] };
    expect(doc.entries).toHaveLength(362);
    expect(doc.entries[0]).toMatchObject({ path: 'boot_aggregate', digest: { algorithm: 'sha256' } });
    expect(doc.entries.filter((e) => e.keyId === 'a3204a9e')).toHaveLength(21);
    const t = io();
    expect(await imaShowCommand(realPath('ima', 'rust-keylime-ascii_runtime_measurements.txt'), {}, t)).toBe(0);
    expect(t.text.out.trimEnd().split('\n')).toHaveLength(827);
  });

  it('a list whose template data was changed is rejected (exit 1) with the code and the entry', async () => {
    const bytes = readReal('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements').slice();
    // A byte of the path of entry 1 (/usr/bin/kmod → /usr/bin/kmoe).
    const at = Buffer.from(bytes).indexOf('/usr/bin/kmod') + 12;
    bytes[at] = 0x65;
    const dir = mkdtempSync(join(tmpdir(), 'vouch-ima-'));
    const file = join(dir, 'changed.bin');
    writeFileSync(file, bytes);
    const c = io();
    expect(await imaReplayCommand(file, { json: true }, c)).toBe(1);
    expect(JSON.parse(c.text.out)).toMatchObject({ ok: false, failures: [{ code: 'IMA_TEMPLATE_HASH_MISMATCH', field: 'ima[1].templateHash' }] });
    const t = io();
    expect(await imaReplayCommand(file, {}, t)).toBe(1);
    expect(t.text.err).toMatch(/^vouch: IMA_TEMPLATE_HASH_MISMATCH: ima\[1\]\.templateHash/);
    // show does not verify: it lists the claims.
    expect(await imaShowCommand(file, {}, io())).toBe(0);
  });
});

describe('vouch ima: misuse and malformed input', () => {
  it('an unreadable file is misuse (MISUSE_FILE_UNREADABLE, exit 2 through main)', async () => {
    await expect(imaShowCommand('/nonexistent/ima', {}, io())).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
    await expect(imaReplayCommand('/nonexistent/ima', {}, io())).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
  });

  it('an unknown bank is misuse', async () => {
    await expect(imaReplayCommand('/nonexistent/ima', { banks: 'sha999' }, io())).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT' });
  });

  it('a file that is no list is rejected (exit 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-ima-'));
    const file = join(dir, 'junk');
    writeFileSync(file, 'not an IMA list\n');
    const c = io();
    expect(await imaShowCommand(file, {}, c)).toBe(1);
    expect(c.text.err).toMatch(/^vouch: PARSE_/);
  });
});
