/** `vouch eventlog show|replay` as module functions (the command wiring lives in cli/main.ts). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventlogReplayCommand, eventlogShowCommand } from '../../src/cli/eventlog.js';
import { EXIT } from '../../src/cli/main.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { encodeEventLog, typicalBoot } from '../helpers/firmware-log.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';

function io(): { out: (s: string) => void; err: (s: string) => void; text: () => string } {
  let buf = '';
  return { out: (s) => (buf += s), err: (s) => (buf += s), text: () => buf };
}

const dir = mkdtempSync(join(tmpdir(), 'vouch-eventlog-'));
const synthetic = join(dir, 'log.bin');
writeFileSync(synthetic, encodeEventLog(typicalBoot({ secureBoot: true, cmdline: 'ro quiet', bootloader: new Uint8Array(4) }), [TPM_ALG.SHA1, TPM_ALG.SHA256]));
const broken = join(dir, 'broken.bin');
writeFileSync(broken, Buffer.from([1, 2, 3]));

describe('vouch eventlog', () => {
  it('show lists the events, untrusted', async () => {
    const o = io();
    expect(await eventlogShowCommand(synthetic, {}, o)).toBe(EXIT.ok);
    expect(o.text()).toContain('format: crypto-agile');
    expect(o.text()).toContain('EV_EFI_VARIABLE_DRIVER_CONFIG');
    expect(o.text()).toContain('untrusted');
    const j = io();
    expect(await eventlogShowCommand(synthetic, { json: true }, j)).toBe(EXIT.ok);
    const doc = JSON.parse(j.text()) as { banks: string[]; events: { type: string }[] };
    expect(doc.banks).toEqual(['sha1', 'sha256']);
    expect(doc.events[0]!.type).toBe('EV_NO_ACTION');
  });

  it('replay --json prints the PCR values per bank', async () => {
    const j = io();
    expect(await eventlogReplayCommand(synthetic, { json: true }, j)).toBe(EXIT.ok);
    const doc = JSON.parse(j.text()) as { pcrs: Record<string, Record<string, string>> };
    expect(Object.keys(doc.pcrs)).toEqual(['sha1', 'sha256']);
    expect(doc.pcrs['sha256']!['7']).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.pcrs['sha1']!['8']).toMatch(/^[0-9a-f]{40}$/);
  });

  it('a log that does not parse is rejected (exit 1) with its code; misuse is thrown', async () => {
    const o = io();
    expect(await eventlogReplayCommand(broken, {}, o)).toBe(EXIT.rejected);
    expect(o.text()).toContain('PARSE_TRUNCATED');
    await expect(eventlogShowCommand(join(dir, 'absent.bin'), {}, io())).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
    await expect(eventlogReplayCommand(synthetic, { quirk: ['nope'] }, io())).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT' });
  });

  it.skipIf(!HAVE_REAL)('replay --quirk ebs-missing prints the value the TPM holds for ga-ebs-missing-sha1', async () => {
    const j = io();
    const file = realPath('tpm', 'eventlogs', 'ga-ebs-missing-sha1.bin');
    expect(await eventlogReplayCommand(file, { json: true, quirk: ['ebs-missing'] }, j)).toBe(EXIT.ok);
    const doc = JSON.parse(j.text()) as { pcrs: Record<string, Record<string, string>>; quirks: { quirk: string; bank: string; pcr: number; value: string }[] };
    expect(doc.pcrs['sha1']!['5']).toBe('e5781a2fd49c23a33b16bf0ba5f10efa1aa5d43c');
    expect(doc.quirks).toEqual([{ quirk: 'ebs-missing', bank: 'sha1', pcr: 5, value: '31245808d6d35849bc394f6343f2b3ff908ed5e3' }]);
    const t = io();
    expect(await eventlogReplayCommand(realPath('tpm', 'eventlogs', 'gtt-glinux-laptop.bin'), {}, t)).toBe(EXIT.ok);
    expect(t.text()).toContain('StartupLocality: 3');
  });
});
