import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ERRORS, isVouchError, VouchError } from '../../src/lib/errors.js';
import {
  appraiseAkAlgorithm,
  appraisePcrs,
  loadPolicyFile,
  parsePolicy,
  policyDigest,
  policyPcrSelection,
  policyRef,
  PolicyInvalidError,
  type Policy,
} from '../../src/policy/index.js';
import { pcrSelection, encodePcrSelection, decodePcrSelection } from '../../src/tpm/abi/pcr.js';
import { TPM_ALG } from '../../src/tpm/abi/constants.js';
import { A32, B32, C48, Z32, yamlPolicy } from './helpers.js';

/** Parses and returns the PolicyInvalidError, failing the test if none is thrown. */
function rejection(text: string, format: 'yaml' | 'json' = 'yaml'): PolicyInvalidError {
  try {
    parsePolicy(text, format);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyInvalidError);
    const err = e as PolicyInvalidError;
    expect(err.code).toBe('POLICY_INVALID');
    expect(err.category).toBe('malformed');
    expect(err.status).toBe(400);
    return err;
  }
  throw new Error('expected the policy to be rejected');
}

function paths(e: PolicyInvalidError): string[] {
  return e.issues.map((i) => i.path);
}

describe('parsePolicy: valid documents', () => {
  it('parses a YAML policy into a normalised, frozen Policy with defaults applied', () => {
    const p = parsePolicy(yamlPolicy(), 'yaml');
    expect(p.id).toBe('test-policy');
    expect(p.tpm!.banks).toEqual(['sha256']);
    expect(p.tpm!.pcrs.sha256).toEqual({ '0': [A32, Z32].sort(), '4': [B32], '7': 'any' });
    expect(p.tpm!.akAlgorithms).toEqual(['ecc-p256', 'rsa2048']);
    expect(p.artifact).toEqual({ lifetimeSeconds: 300, audience: ['key-broker'] });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.tpm!.pcrs.sha256)).toBe(true);
  });

  it('loads both example policies shipped in policies/', async () => {
    const demo = await loadPolicyFile(join(process.cwd(), 'policies/demo.yaml'));
    expect(demo.id).toBe('demo');
    expect(policyPcrSelection(demo)).toEqual([{ hashAlg: TPM_ALG.SHA256, bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 23] }]);
    const gpu = await loadPolicyFile(join(process.cwd(), 'policies/gpu-nodes.yaml'));
    expect(gpu.tpm!.akAlgorithms).toEqual(['ecc-p256']);
    expect(gpu.artifact.audience).toEqual(['job-scheduler', 'key-broker']);
  });
});

describe('parsePolicy: schema rejections carry the JSON path of each problem', () => {
  it('rejects an unknown top-level key', () => {
    const e = rejection(yamlPolicy({ top: 'extra: 1' }));
    expect(paths(e)).toEqual(['/extra']);
    expect(e.field).toBe('/extra');
    expect(e.issues[0]?.message).toMatch(/unknown key/);
  });

  it('rejects an unknown nested key (a misspelt setting never disables a check)', () => {
    const tpm = ['  banks: [sha256]', '  akAlgorithm: [rsa2048]', '  pcrs:', '    sha256:', '      "7": any'].join('\n');
    expect(paths(rejection(yamlPolicy({ tpm })))).toEqual(['/tpm/akAlgorithm']);
    const artifact = '  lifetimeSeconds: 300\n  audiences: [x]';
    expect(paths(rejection(yamlPolicy({ artifact })))).toEqual(['/artifact/audiences']);
  });

  it('rejects an unknown bank name and a PCR index outside 0..23', () => {
    const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', '      "24": any', '    sha257:', '      "0": any'].join('\n');
    expect(paths(rejection(yamlPolicy({ tpm }))).sort()).toEqual(['/tpm/pcrs/sha256/24', '/tpm/pcrs/sha257']);
  });

  it("rejects a digest of the wrong length for its bank, naming the list entry", () => {
    const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', `      "0": ["${Z32}", "${C48}"]`].join('\n');
    const e = rejection(yamlPolicy({ tpm }));
    expect(paths(e)).toEqual(['/tpm/pcrs/sha256/0/1']);
    expect(e.issues[0]?.message).toBe('expected lower-case hex of a 32-byte digest (64 hex digits), got 96 characters');
  });

  it('rejects upper-case hex, 0x prefixes and non-hex digits (one encoding per field)', () => {
    for (const v of [A32.toUpperCase(), `0x${Z32.slice(2)}`, `g${Z32.slice(1)}`]) {
      const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', `      "0": ["${v}"]`].join('\n');
      expect(paths(rejection(yamlPolicy({ tpm })))).toEqual(['/tpm/pcrs/sha256/0/0']);
    }
  });

  it('rejects a value that is neither "any" nor a list, and an empty list', () => {
    const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', '      "0": anything', '      "1": []'].join('\n');
    const e = rejection(yamlPolicy({ tpm }));
    expect(paths(e).sort()).toEqual(['/tpm/pcrs/sha256/0', '/tpm/pcrs/sha256/1']);
    expect(e.issues.find((i) => i.path === '/tpm/pcrs/sha256/0')?.message).toMatch(/"any" or a list/);
  });

  it('rejects a required bank that lists no PCRs, and PCRs of a bank that is not required', () => {
    const tpm = ['  banks: [sha256, sha384]', '  pcrs:', '    sha256:', '      "0": any'].join('\n');
    const e = rejection(yamlPolicy({ tpm }));
    expect(paths(e)).toEqual(['/tpm/pcrs/sha384']);
    expect(e.issues[0]?.message).toMatch(/lists no PCRs/);
    const tpm2 = ['  banks: [sha256]', '  pcrs:', '    sha256:', '      "0": any', '    sha1:', `      "0": any`].join('\n');
    expect(paths(rejection(yamlPolicy({ tpm: tpm2 })))).toEqual(['/tpm/pcrs/sha1']);
  });

  it('rejects a bank with an empty PCR map', () => {
    const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256: {}'].join('\n');
    expect(paths(rejection(yamlPolicy({ tpm })))).toEqual(['/tpm/pcrs/sha256']);
  });

  it('rejects a missing lifetime and one out of range', () => {
    expect(paths(rejection(yamlPolicy({ artifact: '  audience: [x]' })))).toEqual(['/artifact/lifetimeSeconds']);
    expect(paths(rejection(yamlPolicy({ artifact: '  lifetimeSeconds: 10' })))).toEqual(['/artifact/lifetimeSeconds']);
    expect(paths(rejection(yamlPolicy({ artifact: '  lifetimeSeconds: 3601' })))).toEqual(['/artifact/lifetimeSeconds']);
    expect(paths(rejection(yamlPolicy({ artifact: '  lifetimeSeconds: "300"' })))).toEqual(['/artifact/lifetimeSeconds']);
  });

  it('rejects a bad id, api version and kind', () => {
    const text = yamlPolicy().replace('id: test-policy', 'id: Test_Policy').replace('vouch/v1', 'vouch/v2').replace('kind: AttestationPolicy', 'kind: Policy');
    expect(paths(rejection(text)).sort()).toEqual(['/apiVersion', '/id', '/kind']);
  });

  it('reports every problem, not the first (schema and cross-field rules in one pass)', () => {
    const tpm = ['  banks: [sha256, sha384]', '  pcrs:', '    sha256:', `      "0": ["${C48}"]`, '      "7": any', '  extra: true'].join('\n');
    const e = rejection(yamlPolicy({ tpm, artifact: '  lifetimeSeconds: 5', top: 'bogus: 1' }));
    expect(paths(e).sort()).toEqual(['/artifact/lifetimeSeconds', '/bogus', '/tpm/extra', '/tpm/pcrs/sha256/0/0', '/tpm/pcrs/sha384']);
    expect(e.message).toContain('5 problems');
    expect(e.toJSON().issues).toHaveLength(5);
  });
});

describe('parsePolicy: strict YAML and JSON', () => {
  it('rejects a duplicate YAML key', () => {
    const e = rejection(yamlPolicy().replace('id: test-policy', 'id: test-policy\nid: other'));
    expect(e.message).toMatch(/unique|duplicate/i);
  });

  it('rejects keys that collide once converted ("0" and 0), and non-canonical integer keys', () => {
    const dup = ['  banks: [sha256]', '  pcrs:', '    sha256:', `      "0": ["${Z32}"]`, '      0: any'].join('\n');
    expect(paths(rejection(yamlPolicy({ tpm: dup })))).toEqual(['/tpm/pcrs/sha256/0']);
    for (const key of ['07', '0x7', '0o7']) {
      const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', `      ${key}: any`].join('\n');
      expect(rejection(yamlPolicy({ tpm })).message).toMatch(/canonical decimal/);
    }
  });

  it('accepts unquoted canonical integer PCR keys', () => {
    const tpm = ['  banks: [sha256]', '  pcrs:', '    sha256:', '      7: any', '      10: any'].join('\n');
    expect(policyPcrSelection(parsePolicy(yamlPolicy({ tpm }), 'yaml'))[0]?.pcrs).toEqual([7, 10]);
  });

  it('rejects explicit tags, anchors, aliases, merge keys and multiple documents', () => {
    expect(rejection(yamlPolicy().replace('description: a policy for tests', 'description: !!binary aGk=')).message).toMatch(/tag/);
    expect(rejection(yamlPolicy().replace('description: a policy for tests', 'description: !custom x')).message).toMatch(/tag/i);
    expect(rejection(yamlPolicy().replace('description: a policy for tests', 'description: &d x')).message).toMatch(/anchor/);
    const alias = yamlPolicy({ artifact: '  lifetimeSeconds: 300\n  audience: &a [x]' }).replace('description: a policy for tests', 'description: *a');
    expect(rejection(alias).message).toMatch(/anchor|alias/i);
    const merge = yamlPolicy({ artifact: '  <<: {lifetimeSeconds: 300}' });
    expect(paths(rejection(merge))).toContain('/artifact/<<');
    expect(rejection(`${yamlPolicy()}---\nid: x\n`).message).toMatch(/multiple documents/);
  });

  it('rejects empty and non-mapping documents', () => {
    expect(rejection('').message).toMatch(/empty/);
    expect(paths(rejection('- a\n- b\n'))).toEqual(['/']);
    expect(paths(rejection('just a string'))).toEqual(['/']);
    expect(rejection('{', 'json').message).toMatch(/not valid JSON/);
  });

  it('rejects a duplicate JSON key (JSON.parse alone would keep the last)', () => {
    const doc = JSON.parse(JSON.stringify(parsePolicy(yamlPolicy(), 'yaml'))) as Record<string, unknown>;
    const text = JSON.stringify(doc).replace('"id":"test-policy"', '"id":"test-policy","id":"other"');
    expect(rejection(text, 'json').message).toMatch(/unique|duplicate/i);
  });

  it('treats "__proto__" as an unknown key and never as a prototype', () => {
    const e = rejection(yamlPolicy({ top: '__proto__: {polluted: true}' }));
    expect(paths(e)).toEqual(['/__proto__']);
    const j = rejection('{"__proto__": {"polluted": true}}', 'json');
    expect(paths(j)).toContain('/__proto__');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('rejects deep nesting and oversized text', () => {
    expect(rejection(`${'['.repeat(40)}${']'.repeat(40)}`, 'json').message).toMatch(/deeper/);
    expect(rejection(' '.repeat((1 << 20) + 1)).message).toMatch(/exceeds/);
  });
});

describe('policyDigest: content addressing', () => {
  const json = (p: Policy): string => JSON.stringify(p, null, 2);

  it('gives the same digest for the YAML document and its JSON form', () => {
    const fromYaml = parsePolicy(yamlPolicy(), 'yaml');
    const fromJson = parsePolicy(json(fromYaml), 'json');
    expect(policyDigest(fromJson)).toBe(policyDigest(fromYaml));
    expect(policyDigest(fromYaml)).toMatch(/^[0-9a-f]{64}$/);
    expect(policyRef(fromYaml)).toBe(`policy:test-policy@sha256:${policyDigest(fromYaml)}`);
  });

  it('does not depend on formatting, comments, key order, set order or defaults', () => {
    const base = policyDigest(parsePolicy(yamlPolicy(), 'yaml'));
    const reordered = [
      '# a comment',
      'artifact: {audience: [key-broker], lifetimeSeconds: 300}   # flow style',
      'tpm:',
      '  akAlgorithms: [rsa2048, ecc-p256]   # the default, in another order',
      '  pcrs:',
      '    sha256:',
      '      "7": "any"',
      `      "4": [${B32}]`,
      `      "0": ['${A32}', "${Z32}"]`,
      '  banks:',
      '    - sha256',
      'description: "a policy for tests"',
      'id: test-policy',
      'kind: AttestationPolicy',
      'apiVersion: vouch/v1',
    ].join('\n');
    expect(policyDigest(parsePolicy(reordered, 'yaml'))).toBe(base);
  });

  it('changes when any rule changes', () => {
    const base = policyDigest(parsePolicy(yamlPolicy(), 'yaml'));
    expect(policyDigest(parsePolicy(yamlPolicy().replace('"7": any', `"7": ["${Z32}"]`), 'yaml'))).not.toBe(base);
    expect(policyDigest(parsePolicy(yamlPolicy({ artifact: '  lifetimeSeconds: 301\n  audience: [key-broker]' }), 'yaml'))).not.toBe(base);
    expect(policyDigest(parsePolicy(yamlPolicy().replace('a policy for tests', 'another text'), 'yaml'))).not.toBe(base);
  });

  it('is a known value for a fixed document (a change here changes every recorded decision)', () => {
    const p = parsePolicy(yamlPolicy(), 'yaml');
    // Recomputed independently: SHA-256 over sorted-key JSON without whitespace.
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])) : v;
    expect(policyDigest(p)).toBe(createHash('sha256').update(JSON.stringify(sortKeys(p))).digest('hex'));
  });
});

describe('policyPcrSelection', () => {
  it('returns each required bank with its listed PCRs ascending, ready for TPML_PCR_SELECTION', () => {
    const tpm = ['  banks: [sha384, sha256]', '  pcrs:', '    sha384:', '      "23": any', '    sha256:', '      "10": any', '      "2": any', '      "0": any'].join('\n');
    const sel = policyPcrSelection(parsePolicy(yamlPolicy({ tpm }), 'yaml'));
    expect(sel).toEqual([
      { hashAlg: TPM_ALG.SHA256, bank: 'sha256', pcrs: [0, 2, 10] },
      { hashAlg: TPM_ALG.SHA384, bank: 'sha384', pcrs: [23] },
    ]);
    const wire = encodePcrSelection(pcrSelection(sel));
    expect(decodePcrSelection(wire).map((b) => [b.hashAlg, b.pcrs])).toEqual([
      [TPM_ALG.SHA256, [0, 2, 10]],
      [TPM_ALG.SHA384, [23]],
    ]);
  });
});

describe('loadPolicyFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vouch-policy-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads .yaml, .yml and .json by extension, with the same digest', async () => {
    const text = yamlPolicy();
    writeFileSync(join(dir, 'a.yaml'), text);
    writeFileSync(join(dir, 'b.yml'), text);
    const p = await loadPolicyFile(join(dir, 'a.yaml'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify(p));
    const d = policyDigest(p);
    expect(policyDigest(await loadPolicyFile(join(dir, 'b.yml')))).toBe(d);
    expect(policyDigest(await loadPolicyFile(join(dir, 'c.json')))).toBe(d);
  });

  it('refuses other extensions, missing files and invalid UTF-8 with their codes', async () => {
    writeFileSync(join(dir, 'p.txt'), yamlPolicy());
    await expect(loadPolicyFile(join(dir, 'p.txt'))).rejects.toMatchObject({ code: 'MISUSE_UNSUPPORTED_FORMAT' });
    await expect(loadPolicyFile(join(dir, 'absent.yaml'))).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
    mkdirSync(join(dir, 'd.yaml'));
    await expect(loadPolicyFile(join(dir, 'd.yaml'))).rejects.toMatchObject({ code: 'MISUSE_FILE_UNREADABLE' });
    writeFileSync(join(dir, 'bad.yaml'), Buffer.from([0x69, 0x64, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    await expect(loadPolicyFile(join(dir, 'bad.yaml'))).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });

  it('names the file in the error and keeps every issue', async () => {
    writeFileSync(join(dir, 'p.yaml'), yamlPolicy({ top: 'oops: 1' }));
    const e = await loadPolicyFile(join(dir, 'p.yaml')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PolicyInvalidError);
    expect((e as PolicyInvalidError).message).toContain('p.yaml');
    expect(paths(e as PolicyInvalidError)).toEqual(['/oops']);
  });
});

describe('error registry rows for policies', () => {
  it('registers the policy codes with their categories and statuses', () => {
    expect(ERRORS.POLICY_INVALID).toMatchObject({ category: 'malformed', status: 400 });
    for (const c of ['POLICY_PCR_MISMATCH', 'POLICY_BANK_MISSING', 'POLICY_PCR_MISSING', 'POLICY_AK_ALGORITHM'] as const) {
      expect(ERRORS[c]).toMatchObject({ category: 'policy-failed', status: 403 });
    }
    const e: unknown = rejection('x: 1');
    expect(isVouchError(e) && e instanceof VouchError).toBe(true);
  });
});

describe('policies for SNP-only nodes (no tpm section)', () => {
  const snp = { debug: 'forbidden', migrationAgent: 'forbidden', smt: 'allowed', vmpl: [0], measurement: 'any', hostData: 'any', idKeyDigest: 'any', authorKeyDigest: 'any', familyId: 'any', imageId: 'any', minTcb: 'any', minGuestSvn: 'any', platformInfo: 'any', allowMaskedChipId: false, allowMissingCrl: false };
  const doc = (over: Record<string, unknown>): string => JSON.stringify({ apiVersion: 'vouch/v1', kind: 'AttestationPolicy', id: 'cvm', artifact: { lifetimeSeconds: 60 }, ...over });

  it('load with snp rules alone, and select no PCRs', () => {
    const p = parsePolicy(doc({ snp }), 'json');
    expect(p.tpm).toBeUndefined();
    expect(p.snp?.debug).toBe('forbidden');
    expect(policyPcrSelection(p)).toEqual([]);
  });

  it('a policy with neither tpm nor snp rules, or with measuredBoot/runtime rules but no tpm, is POLICY_INVALID', () => {
    expect(paths(rejection(doc({}), 'json'))).toEqual(['/tpm']);
    const mb = { pcrs: [0], secureBoot: 'any', db: 'any', dbx: 'any', bootLoaders: 'any', kernels: 'any', kernelCmdline: 'any', sCrtmVersion: 'any' };
    expect(paths(rejection(doc({ snp, measuredBoot: mb }), 'json'))).toEqual(['/measuredBoot']);
  });

  it('the TPM checks refuse a quote under such a policy (POLICY_TPM_NOT_CONFIGURED), never allow it', () => {
    const p = parsePolicy(doc({ snp }), 'json');
    expect(appraisePcrs(p, new Map()).map((f) => f.code)).toEqual(['POLICY_TPM_NOT_CONFIGURED']);
    expect(appraiseAkAlgorithm(p, 'ecc-p256').map((f) => f.code)).toEqual(['POLICY_TPM_NOT_CONFIGURED']);
  });
});
