/**
 * `vouch policy learn`: a reference policy learned from verified evidence loads, affirms the same
 * evidence under every appraisal, and is never learned from evidence that does not verify.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appraiseMeasuredBoot } from '../../src/appraisal/measured-boot.js';
import { policyLearnCommand, type PolicyLearnOptions } from '../../src/cli/policy-learn.js';
import { bytesEqual, fromHex, toHex } from '../../src/lib/bytes.js';
import { MisuseError } from '../../src/lib/errors.js';
import { parseEventLog, replayEventLog } from '../../src/eventlog/index.js';
import {
  appraiseIma,
  checkBootAggregate,
  encodeImaBinary,
  encodeTemplateData,
  parseImaList,
  replayIma,
  type ImaEntry,
  type ImaList,
} from '../../src/eventlog/ima/index.js';
import { appraisePcrs, loadPolicyFile, parsePolicy, type Policy } from '../../src/policy/index.js';
import { learnPolicy, renderLearnedPolicy, type LearnedPolicy, type LearnInput } from '../../src/policy/learn.js';
import { TPM_ALG, decodeTpmtPublic, hashById, pcrSelection } from '../../src/tpm/abi/index.js';
import { decodeJsonPcrs, encodeSerializedPcrs } from '../../src/tpm/tools-formats.js';
import { importTpmPublic, type PcrValues } from '../../src/tpm/verify/index.js';
import { HAVE_REAL, readReal, realPath } from '../helpers/real.js';
import { syntheticAk, syntheticPcrs, syntheticQuote } from '../helpers/synthetic.js';

const GCE = ['tpm', 'quotes', 'gce-cos85-nonce9009'];
const IMA_LIST = ['ima', 'ibmtss-ima-sig-sha256.binary_runtime_measurements'];

function gceInput(over: Partial<LearnInput> = {}): LearnInput {
  return {
    id: 'gce-cos85',
    ak: importTpmPublic(decodeTpmtPublic(readReal(...GCE, 'ak.tpmt_public'))),
    attest: readReal(...GCE, 'quote-sha256.tpms_attest'),
    signature: readReal(...GCE, 'quote-sha256.tpmt_signature'),
    pcrs: decodeJsonPcrs(readFileSync(realPath(...GCE, 'pcrs.json'), 'utf8')),
    nonce: fromHex('9009'),
    eventLog: readReal(...GCE, 'eventlog.bin'),
    ...over,
  };
}

/** The learned policy, asserting that learning succeeded. */
function learned(input: LearnInput): LearnedPolicy {
  const r = learnPolicy(input);
  if (!r.ok) throw new Error(`learning refused: ${JSON.stringify(r.failures)}`);
  return r;
}

/** The rendered text loaded back, as the verifier would load it. */
function loaded(l: LearnedPolicy): Policy {
  return parsePolicy(renderLearnedPolicy(l), 'yaml');
}

function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[at]! ^= 0x01;
  return out;
}

const codes = (fs: readonly { code: string }[]): string[] => fs.map((f) => f.code);

describe.skipIf(!HAVE_REAL)('learning from the real GCE COS 85 evidence (sha256 quote and its event log)', () => {
  it('gives a policy that parsePolicy accepts: quoted values where the log does not reach, any where it proves the PCR', () => {
    const l = learned(gceInput());
    const policy = loaded(l);
    const quoted = gceInput().pcrs.get(TPM_ALG.SHA256)!;
    const covered = new Set(replayEventLog(parseEventLog(readReal(...GCE, 'eventlog.bin'))).eventsByPcr.keys());
    expect(policy.tpm!.banks).toEqual(['sha256']);
    expect(Object.keys(policy.tpm!.pcrs.sha256!).map(Number)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    for (let pcr = 0; pcr < 24; pcr++) {
      const allowed = policy.tpm!.pcrs.sha256![String(pcr)];
      if (covered.has(pcr)) expect(allowed, `PCR ${pcr}`).toBe('any');
      else expect(allowed, `PCR ${pcr}`).toEqual([toHex(quoted.get(pcr)!)]);
    }
    expect(policy.measuredBoot?.pcrs).toEqual([...covered].sort((a, b) => a - b));
    expect(policy.runtime).toBeUndefined();
    expect(policy.artifact.lifetimeSeconds).toBe(300);
  });

  it('learns the boot claims of the log as measured-boot rules', () => {
    const mb = learned(gceInput()).policy.measuredBoot!;
    expect(mb.secureBoot).toBe('enabled');
    expect(mb.quirks).toEqual([]);
    expect(mb.db).toEqual({ require: [expect.stringMatching(/^[0-9a-f]{64}$/)] });
    expect(mb.dbx).toEqual({ minHashes: expect.any(Number) });
    expect(mb.bootLoaders).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(mb.kernels).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(mb.kernelCmdline).toEqual({ allow: [expect.stringContaining('/syslinux/vmlinuz.A')] });
    expect(mb.sCrtmVersion).toEqual([expect.stringMatching(/^GCE Virtual Firmware/)]);
  });

  it('the loaded policy affirms the same evidence: appraisePcrs and appraiseMeasuredBoot find nothing', () => {
    const input = gceInput();
    const policy = loaded(learned(input));
    expect(appraisePcrs(policy, input.pcrs)).toEqual([]);
    const mb = appraiseMeasuredBoot(policy.measuredBoot!, readReal(...GCE, 'eventlog.bin'), input.pcrs, [TPM_ALG.SHA256]);
    expect(mb.failures).toEqual([]);
    expect(mb.summary).toMatchObject({ secureBoot: 'enabled', quirksApplied: [] });
    expect(mb.summary?.bootLoader).toBe((policy.measuredBoot!.bootLoaders as string[])[0]);
  });

  it('the learned rules are not vacuous: another host\'s log (RHEL 8 on GCE) fails them', () => {
    const policy = loaded(learned(gceInput()));
    const other = readReal('tpm', 'eventlogs', 'gtt-rhel8-gce-sb.bin');
    // Quote the other log's own replay, so only the rules can refuse it.
    const replay = replayEventLog(parseEventLog(other));
    const mb = appraiseMeasuredBoot(policy.measuredBoot!, other, replay.pcrs, [TPM_ALG.SHA256]);
    expect(codes(mb.failures)).toEqual(['POLICY_DB', 'POLICY_BOOT_LOADER', 'POLICY_KERNEL', 'POLICY_KERNEL_CMDLINE']);
    // And a changed value of a pinned PCR fails the tpm section.
    const pcrs = new Map(gceInput().pcrs);
    const sha256 = new Map(pcrs.get(TPM_ALG.SHA256)!);
    sha256.set(23, new Uint8Array(32).fill(1));
    pcrs.set(TPM_ALG.SHA256, sha256);
    expect(appraisePcrs(policy, pcrs)).toEqual([expect.objectContaining({ code: 'POLICY_PCR_MISMATCH', field: 'pcrs.sha256[23]' })]);
  });

  it('renders deterministically, with the evidence and every note as comments at the top', () => {
    const l = learned(gceInput());
    const text = renderLearnedPolicy(l);
    expect(renderLearnedPolicy(learned(gceInput()))).toBe(text);
    const head = text.slice(0, text.indexOf('apiVersion:'));
    expect(head.split('\n').filter((s) => s !== '').every((s) => s.startsWith('#'))).toBe(true);
    expect(head).toContain('nonce checked');
    for (const n of l.notes) expect(head).toContain(n.slice(0, 40));
    expect(l.notes.some((n) => n.includes('no rule reads the events of PCRs'))).toBe(true);
    expect(l.notes.some((n) => n.startsWith('PCR 10 is pinned'))).toBe(true);
    // Keys in schema order.
    const keys = text.split('\n').filter((s) => /^[a-zA-Z]/.test(s)).map((s) => s.split(':')[0]);
    expect(keys).toEqual(['apiVersion', 'kind', 'id', 'description', 'tpm', 'measuredBoot', 'artifact']);
  });

  it('the shipped example policies/gce-cos85-learned.yaml is what learning this evidence writes today', async () => {
    const text = readFileSync(join(process.cwd(), 'policies/gce-cos85-learned.yaml'), 'utf8');
    expect(text).toBe(renderLearnedPolicy(learned(gceInput())));
    expect((await loadPolicyFile(join(process.cwd(), 'policies/gce-cos85-learned.yaml'))).id).toBe('gce-cos85');
  });

  it('without an event log every quoted PCR is pinned, and the note says why that is brittle', () => {
    const { eventLog: _, ...noLog } = gceInput();
    const l = learned(noLog);
    const policy = loaded(l);
    expect(policy.measuredBoot).toBeUndefined();
    expect(Object.values(policy.tpm!.pcrs.sha256!).every((v) => v !== 'any')).toBe(true);
    expect(l.notes.some((n) => n.startsWith('no event log was given'))).toBe(true);
    expect(appraisePcrs(policy, noLog.pcrs)).toEqual([]);
  });

  it('without a nonce the quote still verifies, and the note says its freshness was not checked', () => {
    const { nonce: _, ...noNonce } = gceInput();
    const l = learned(noNonce);
    expect(l.evidence.nonceChecked).toBe(false);
    expect(renderLearnedPolicy(l)).toContain('nonce NOT checked');
  });

  it('uses only the PCRs the quote selects: the sha1 and sha384 values of pcrs.json are not learned', () => {
    const policy = learned(gceInput()).policy;
    expect(Object.keys(policy.tpm!.pcrs)).toEqual(['sha256']);
  });

  it('a bank the quote does not carry is misuse', () => {
    expect(() => learnPolicy(gceInput({ banks: ['sha1'] }))).toThrow(MisuseError);
    expect(() => learnPolicy(gceInput({ id: 'Bad_Id' }))).toThrow(MisuseError);
  });

  describe('a reference is never learned from evidence that does not verify', () => {
    it('a quote with one byte flipped (TPMS_ATTEST) is refused with the signature failure', () => {
      const input = gceInput();
      const attest = flipped(input.attest, input.attest.length - 1);
      const r = learnPolicy({ ...input, attest });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(codes(r.failures)).toContain('TPM_QUOTE_SIGNATURE_INVALID');
    });

    it('a flipped signature byte, a wrong nonce and a changed PCR value are each refused', () => {
      const input = gceInput();
      const sig = learnPolicy({ ...input, signature: flipped(input.signature, input.signature.length - 1) });
      expect(sig.ok ? [] : codes(sig.failures)).toContain('TPM_QUOTE_SIGNATURE_INVALID');
      const nonce = learnPolicy({ ...input, nonce: fromHex('9008') });
      expect(nonce.ok ? [] : codes(nonce.failures)).toEqual(['TPM_QUOTE_NONCE_MISMATCH']);
      const pcrs = new Map(input.pcrs);
      const sha256 = new Map(pcrs.get(TPM_ALG.SHA256)!);
      sha256.set(16, flipped(sha256.get(16)!, 0));
      pcrs.set(TPM_ALG.SHA256, sha256);
      const digest = learnPolicy({ ...input, pcrs });
      expect(digest.ok ? [] : codes(digest.failures)).toEqual(['TPM_QUOTE_PCR_DIGEST_MISMATCH']);
    });

    it('an event log that does not replay to the quote is refused, not ignored', () => {
      const r = learnPolicy(gceInput({ eventLog: readReal('tpm', 'eventlogs', 'gtt-rhel8-gce-sb.bin') }));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(codes(r.failures)).toContain('EVENTLOG_REPLAY_MISMATCH');
      expect(r.notes[0]).toContain('does not replay');
    });
  });
});

describe.skipIf(!HAVE_REAL)('firmware quirks: learned only when named (ga-ebs-missing-sha1, synthetic quote)', () => {
  const sak = syntheticAk('ecc');
  const nonce = fromHex('c0ffee');
  const logBytes = HAVE_REAL ? readReal('tpm', 'eventlogs', 'ga-ebs-missing-sha1.bin') : new Uint8Array(0);
  // The TPM's values: the strict replay, with PCR 5 as the firmware extended it (the published value).
  const replay = HAVE_REAL ? replayEventLog(parseEventLog(logBytes)) : undefined;
  const sha1 = new Map(replay?.pcrs.get(TPM_ALG.SHA1) ?? []);
  sha1.set(5, fromHex('31245808d6d35849bc394f6343f2b3ff908ed5e3'));
  const pcrs: PcrValues = new Map([[TPM_ALG.SHA1, sha1]]);
  const q = syntheticQuote(sak, nonce, pcrs, pcrSelection([{ hashAlg: TPM_ALG.SHA1, pcrs: [...sha1.keys()].sort((a, b) => a - b) }]));
  const input: LearnInput = { id: 'ebs', ak: importTpmPublic(sak.public), attest: q.attest, signature: q.signature, pcrs, nonce, eventLog: logBytes };

  it('without --quirk the learning is refused, with a note naming the quirk that would match', () => {
    const r = learnPolicy(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failures).toEqual([expect.objectContaining({ code: 'EVENTLOG_REPLAY_MISMATCH', field: 'pcrs.sha1[5]' })]);
    expect(r.notes.join('\n')).toContain('--quirk ebs-missing');
  });

  it('with the quirk named, measuredBoot.quirks records it, and the loaded policy affirms the same log', () => {
    const l = learned({ ...input, quirks: ['ebs-missing'] });
    const policy = loaded(l);
    expect(policy.measuredBoot?.quirks).toEqual(['ebs-missing']);
    expect(l.notes.some((n) => n.includes('ebs-missing'))).toBe(true);
    expect(appraisePcrs(policy, pcrs)).toEqual([]);
    const mb = appraiseMeasuredBoot(policy.measuredBoot!, logBytes, pcrs, [TPM_ALG.SHA1]);
    expect(mb.failures).toEqual([]);
    expect(mb.summary?.quirksApplied).toEqual(['ebs-missing']);
  });
});

/** A list whose entry 0 is replaced, and the template hashes recomputed, as a kernel would write it. */
function rewrite(list: ImaList, change: (e: ImaEntry) => ImaEntry | undefined): Uint8Array {
  const alg = hashById(list.templateHashAlg)!;
  return encodeImaBinary(
    list.entries.map((e) => {
      const c = change(e);
      if (c === undefined) return e;
      const templateData = encodeTemplateData(c.template, { digest: c.digest, path: c.path, ...(c.signature !== undefined ? { signature: c.signature } : {}) });
      return { ...c, templateData, templateHash: new Uint8Array(createHash(alg.nodeName).update(templateData).digest()) };
    }),
  );
}

describe.skipIf(!HAVE_REAL)('learning runtime rules from a real IMA list (synthetic quote over its PCR 10)', () => {
  const sak = syntheticAk('ecc');
  const ak = importTpmPublic(sak.public);
  const nonce = fromHex('0123456789abcdef');
  const listBytes = HAVE_REAL ? readReal(...IMA_LIST) : new Uint8Array(0);
  const list = HAVE_REAL ? parseImaList(listBytes) : undefined;

  /** A quote of sha256 PCR 10 (and `extra` PCRs of `base`) at the value the entries replay to. */
  function quoteOver(entries: readonly ImaEntry[], extra: readonly number[] = [], base: PcrValues = syntheticPcrs()): { input: LearnInput; pcrs: PcrValues } {
    const sha256 = new Map(base.get(TPM_ALG.SHA256)!);
    sha256.set(10, replayIma(entries, { banks: [TPM_ALG.SHA256] }).get(TPM_ALG.SHA256)!);
    const pcrs: PcrValues = new Map([[TPM_ALG.SHA256, sha256]]);
    const q = syntheticQuote(sak, nonce, pcrs, pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [...extra, 10].sort((a, b) => a - b) }]));
    return { input: { id: 'ima-host', ak, attest: q.attest, signature: q.signature, pcrs, nonce }, pcrs };
  }

  it('learns every measured path with its digests; the loaded runtime rules accept the same list', () => {
    const { input, pcrs } = quoteOver(list!.entries);
    const l = learned({ ...input, ima: listBytes });
    const policy = loaded(l);
    expect(policy.tpm!.pcrs.sha256).toEqual({ '10': 'any' });
    expect(policy.runtime?.bootAggregate).toBe('any');
    expect(policy.runtime?.ima.excludes).toEqual([]);
    expect(policy.runtime?.ima.trustedKeys).toEqual([]);
    expect(policy.runtime?.ima.requireSignatures).toBe(false);
    const allowed = policy.runtime!.ima.allowed;
    expect(Object.keys(allowed)).not.toContain('boot_aggregate');
    expect(new Set(Object.keys(allowed))).toEqual(new Set(list!.entries.slice(1).map((e) => e.path)));
    expect(l.evidence.ima).toEqual({ entries: list!.entries.length, covered: list!.entries.length, paths: Object.keys(allowed).length });
    expect(l.notes.some((n) => n.includes(`${list!.entries.length} IMA entries`))).toBe(true);
    expect(appraisePcrs(policy, pcrs)).toEqual([]);
    const a = appraiseIma(list!.entries, policy.runtime!.ima);
    expect(a.violations).toEqual([]);
    expect(a.ok).toBe(true);
    expect(a.appraised).toBe(list!.entries.length - 1);
  });

  it('the runtime rules refuse a list where one file digest changed (and its template hash with it)', () => {
    const l = learned({ ...quoteOver(list!.entries).input, ima: listBytes });
    const policy = loaded(l);
    const victim = list!.entries.find((e) => e.index > 0 && e.signature === undefined)!;
    const changed = parseImaList(rewrite(list!, (e) => (e.index === victim.index ? { ...e, digest: { ...e.digest, digest: flipped(e.digest.digest, 0) } } : undefined)));
    // The changed list is self-consistent: it replays (to another PCR 10), so only the rules can refuse it.
    expect(bytesEqual(replayIma(changed.entries, { banks: [TPM_ALG.SHA256] }).get(TPM_ALG.SHA256)!, quoteOver(list!.entries).pcrs.get(TPM_ALG.SHA256)!.get(10)!)).toBe(false);
    const a = appraiseIma(changed.entries, policy.runtime!.ima);
    expect(a.ok).toBe(false);
    expect(a.violations).toEqual([expect.objectContaining({ code: 'IMA_DIGEST_NOT_ALLOWED', index: victim.index, path: victim.path, rule: `allowed[${JSON.stringify(victim.path)}]` })]);
  });

  it('an IMA list that does not replay to the quoted PCR 10 is refused', () => {
    const { input } = quoteOver(list!.entries.slice(0, 3));
    const other = learnPolicy({ ...input, ima: rewrite(list!, (e) => (e.index === 0 ? { ...e, path: 'boot_aggregatE' } : undefined)) });
    expect(other.ok ? [] : codes(other.failures)).toEqual(['IMA_PCR10_MISMATCH']);
    // Entries appended after the quote are not learned: the quote covers the first three only.
    const l = learned({ ...input, ima: listBytes });
    expect(l.evidence.ima?.covered).toBe(3);
    expect(Object.keys(l.policy.runtime!.ima.allowed)).toHaveLength(new Set(list!.entries.slice(1, 3).map((e) => e.path)).size);
    expect(l.notes.some((n) => n.includes('appended after the quote'))).toBe(true);
  });

  it('an IMA list without PCR 10 in the quote is refused', () => {
    const pcrs = syntheticPcrs();
    const q = syntheticQuote(sak, nonce, pcrs, pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1] }]));
    const r = learnPolicy({ id: 'x', ak, attest: q.attest, signature: q.signature, pcrs, nonce, ima: listBytes });
    expect(r.ok ? [] : codes(r.failures)).toEqual(['IMA_PCR10_MISMATCH']);
  });

  it('boot_aggregate is required when it matches PCRs 0-7 of the quote, and any (with a note) when it does not', () => {
    const base = syntheticPcrs('agg');
    const s = base.get(TPM_ALG.SHA256)!;
    const aggregate = new Uint8Array(createHash('sha256').update(Buffer.concat([0, 1, 2, 3, 4, 5, 6, 7].map((i) => s.get(i)!))).digest());
    const bytes = rewrite(list!, (e) => (e.index === 0 ? { ...e, digest: { algorithm: 'sha256', digest: aggregate } } : undefined));
    const entries = parseImaList(bytes).entries;
    const { input, pcrs } = quoteOver(entries, [0, 1, 2, 3, 4, 5, 6, 7], base);
    const l = learned({ ...input, ima: bytes });
    const policy = loaded(l);
    expect(policy.runtime?.bootAggregate).toBe('required');
    expect(checkBootAggregate(entries[0]!, pcrs).ok).toBe(true);
    expect(appraiseIma(entries, policy.runtime!.ima).ok).toBe(true);
    expect(appraisePcrs(policy, pcrs)).toEqual([]);
    // The real list's boot_aggregate does not match synthetic PCRs 0-7.
    const mismatch = learned({ ...quoteOver(list!.entries, [0, 1, 2, 3, 4, 5, 6, 7]).input, ima: listBytes });
    expect(mismatch.policy.runtime?.bootAggregate).toBe('any');
    expect(mismatch.notes.some((n) => n.startsWith('runtime.bootAggregate: any, boot_aggregate is not'))).toBe(true);
  });
});

describe.skipIf(!HAVE_REAL)('policyLearnCommand (vouch policy learn)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-learn-'));
  const base = (): PolicyLearnOptions => ({
    id: 'gce-cos85',
    ak: realPath(...GCE, 'ak.tpmt_public'),
    message: realPath(...GCE, 'quote-sha256.tpms_attest'),
    signature: realPath(...GCE, 'quote-sha256.tpmt_signature'),
    pcrs: realPath(...GCE, 'pcrs.json'),
    nonce: '9009',
    eventlog: realPath(...GCE, 'eventlog.bin'),
  });
  async function cli(opts: PolicyLearnOptions): Promise<{ status: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const status = await policyLearnCommand(opts, { out: (s) => (out += s), err: (s) => (err += s) });
    return { status, out, err };
  }

  it('prints only the YAML on stdout, exit 0; the text loads with parsePolicy', async () => {
    const r = await cli(base());
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
    expect(parsePolicy(r.out, 'yaml').id).toBe('gce-cos85');
    expect(r.out).toBe(renderLearnedPolicy(learned(gceInput())));
  });

  it('reads the serialized PCR format too, and --output writes the file once (never over a reviewed policy)', async () => {
    const pcrs = gceInput().pcrs;
    const sel = pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    const serialized = join(dir, 'pcrs.bin');
    writeFileSync(serialized, encodeSerializedPcrs(sel, pcrs));
    const output = join(dir, 'policy.yaml');
    const r = await cli({ ...base(), pcrs: serialized, pcrsFormat: 'serialized', output });
    expect(r.status).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toContain(output);
    expect(existsSync(output)).toBe(true);
    expect(parsePolicy(readFileSync(output, 'utf8'), 'yaml').measuredBoot?.secureBoot).toBe('enabled');
    await expect(cli({ ...base(), output })).rejects.toThrow(MisuseError);
  });

  it('a quote with one byte flipped: exit 1, the failures on stderr, nothing on stdout', async () => {
    const message = join(dir, 'tampered.tpms_attest');
    writeFileSync(message, flipped(readReal(...GCE, 'quote-sha256.tpms_attest'), 40));
    const r = await cli({ ...base(), message });
    expect(r.status).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('TPM_QUOTE_SIGNATURE_INVALID');
    expect(r.err).toContain('nothing was learned');
  });

  it('an AK given as PEM is refused: its template cannot be checked', async () => {
    const ak = importTpmPublic(decodeTpmtPublic(readReal(...GCE, 'ak.tpmt_public')));
    const pem = join(dir, 'ak.pem');
    writeFileSync(pem, ak.key.export({ type: 'spki', format: 'pem' }));
    const r = await cli({ ...base(), ak: pem });
    expect(r.status).toBe(1);
    expect(r.err).toContain('TPM_AK_TEMPLATE_INVALID');
  });

  it('misuse throws MisuseError (exit 2 in the CLI): bad format, id, bank, quirk, nonce, missing file', async () => {
    for (const o of [
      { pcrsFormat: 'yaml' },
      { id: 'Upper' },
      { bank: ['md5'] },
      { bank: ['sha384'] },
      { quirk: ['nope'] },
      { nonce: 'xyz' },
      { eventlog: join(dir, 'missing.bin') },
    ] satisfies Partial<PolicyLearnOptions>[]) {
      await expect(cli({ ...base(), ...o }), JSON.stringify(o)).rejects.toThrow(MisuseError);
    }
  });
});
