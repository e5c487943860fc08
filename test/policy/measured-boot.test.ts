import { describe, expect, it } from 'vitest';
import { parsePolicy, policyDigest, PolicyInvalidError } from '../../src/policy/index.js';
import { compareVersions } from '../../src/appraisal/measured-boot.js';

const base = (mb: string, pcrs = '"0": any\n      "7": any'): string => `apiVersion: vouch/v1
kind: AttestationPolicy
id: mb
tpm:
  banks: [sha256]
  pcrs:
    sha256:
      ${pcrs}
measuredBoot:
${mb}
artifact:
  lifetimeSeconds: 60
`;

const full = `  pcrs: [7, 0]
  secureBoot: enabled
  db: any
  dbx: { minHashes: 10 }
  bootLoaders: any
  kernels: any
  kernelCmdline: any
  sCrtmVersion: any`;

function issues(text: string): Array<{ path: string; message: string }> {
  try {
    parsePolicy(text, 'yaml');
  } catch (e) {
    if (e instanceof PolicyInvalidError) return [...e.issues];
    throw e;
  }
  return [];
}

describe('measuredBoot policy section', () => {
  it('loads, normalised (sorted PCRs, default quirks) and digested independently of order', () => {
    const p = parsePolicy(base(full), 'yaml');
    expect(p.measuredBoot?.pcrs).toEqual([0, 7]);
    expect(p.measuredBoot?.quirks).toEqual([]);
    const reordered = parsePolicy(base(full.replace('pcrs: [7, 0]', 'pcrs: [0, 7]\n  quirks: []')), 'yaml');
    expect(policyDigest(reordered)).toBe(policyDigest(p));
  });

  it('every rule must be stated: a missing one is an error, not a skipped check', () => {
    expect(issues(base(full.replace('  kernels: any\n', '')))).toEqual([expect.objectContaining({ path: '/measuredBoot/kernels' })]);
  });

  it('unknown keys and bad digests are errors with their path', () => {
    expect(issues(base(`${full}\n  secureboot: enabled`))).toEqual([expect.objectContaining({ path: '/measuredBoot/secureboot' })]);
    expect(issues(base(full.replace('bootLoaders: any', 'bootLoaders: ["abc"]'))).map((i) => i.path)).toEqual(['/measuredBoot/bootLoaders/0']);
    expect(issues(base(full.replace('quirks', 'x').replace('pcrs: [7, 0]', 'pcrs: [7, 0]\n  quirks: [ebs-mising]'))).map((i) => i.path)).toEqual(['/measuredBoot/quirks/0']);
  });

  it('a PCR the log must prove has to be quoted (listed in tpm.pcrs)', () => {
    expect(issues(base(full.replace('pcrs: [7, 0]', 'pcrs: [0, 4, 7]')))).toEqual([
      expect.objectContaining({ path: '/measuredBoot/pcrs', message: expect.stringContaining('PCR 4') }),
    ]);
  });

  it('S-CRTM minimum versions compare dotted numbers numerically', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('2.0', '2')).toBe(0);
    expect(compareVersions('1.2.3', '1.3')).toBeLessThan(0);
    expect(compareVersions('v1', '1')).toBeUndefined();
  });
});
