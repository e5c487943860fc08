/**
 * The Intel PCS flags of `vouch verifier start` (--tdx-pcs-cache, --tdx-pcs-url, --tdx-pcs-offline,
 * --tdx-collateral-bundle): parsed by commander into the option names verifierConfig reads,
 * validated like their SEV-SNP KDS counterparts, and exclusive with --tdx-collateral.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { tdxPcsConfig, verifierConfig, withTdxPcsOptions, type VerifierStartOptions } from '../../src/cli/verifier.js';

const base: VerifierStartOptions = {
  dataDir: '/var/lib/vouch',
  listen: '127.0.0.1:8700',
  tpmCaDir: [],
  policy: ['default=p.yaml'],
  verifierId: 'v',
  challengeTtl: '60',
  rateLimit: '120',
  logLevel: 'info',
};

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    if (isVouchError(e)) return e.code;
    throw e;
  }
  return undefined;
};

describe('vouch verifier start: Intel PCS flags', () => {
  it('the flags parse into the option names verifierConfig reads', () => {
    const opts = withTdxPcsOptions(new Command().exitOverride())
      .parse(['--tdx-pcs-cache', 'c', '--tdx-pcs-url', 'https://pcs.example', '--tdx-pcs-offline', '--tdx-collateral-bundle', 'b.json'], { from: 'user' })
      .opts<Record<string, unknown>>();
    expect(opts).toEqual({ tdxPcsCache: 'c', tdxPcsUrl: 'https://pcs.example', tdxPcsOffline: true, tdxCollateralBundle: 'b.json' });
  });

  it('no flag: no PCS and no TDX collateral (TDX evidence is refused)', () => {
    expect(verifierConfig(base).tdx).toBeUndefined();
    expect(tdxPcsConfig({})).toBeUndefined();
  });

  it('each flag maps to the PCS configuration; --tdx-collateral alone keeps the path form', () => {
    expect(verifierConfig({ ...base, tdxPcsCache: '/var/cache/vouch', tdxPcsUrl: 'https://pcs.example/' }).tdx).toEqual({ pcs: { cacheDir: '/var/cache/vouch', baseUrl: 'https://pcs.example/' } });
    expect(verifierConfig({ ...base, tdxPcsUrl: 'http://pccs.internal:8081/sgx' }).tdx).toEqual({ pcs: { baseUrl: 'http://pccs.internal:8081/sgx' } });
    expect(tdxPcsConfig({ tdxPcsOffline: true, tdxCollateralBundle: 'b.json' })).toEqual({ offline: true, bundle: 'b.json' });
    expect(tdxPcsConfig({ tdxPcsOffline: true, tdxPcsCache: 'c' })).toEqual({ offline: true, cacheDir: 'c' });
    expect(tdxPcsConfig({ tdxCollateralBundle: 'b.json' })).toEqual({ bundle: 'b.json' });
    expect(verifierConfig({ ...base, tdxCollateral: '/etc/vouch/tdx' }).tdx).toEqual({ collateral: { path: '/etc/vouch/tdx' } });
  });

  it('contradictory or incomplete flags are misuse', () => {
    expect(codeOf(() => tdxPcsConfig({ tdxPcsOffline: true }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsOffline: true, tdxPcsCache: 'c', tdxPcsUrl: 'https://pcs.example' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsUrl: 'ftp://pcs.example' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsUrl: 'https://pcs.example/?x=1' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsUrl: 'https://pcs.example/#f' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsUrl: 'https://user:pw@pcs.example/' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsUrl: 'not a url' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxPcsCache: ' ' }))).toBe('MISUSE_ARGUMENT');
    expect(codeOf(() => tdxPcsConfig({ tdxCollateralBundle: '' }))).toBe('MISUSE_ARGUMENT');
  });

  it('--tdx-collateral and any PCS flag exclude each other', () => {
    for (const flags of [{ tdxPcsCache: 'c' }, { tdxPcsUrl: 'https://pcs.example' }, { tdxPcsOffline: true, tdxCollateralBundle: 'b.json' }, { tdxCollateralBundle: 'b.json' }]) {
      expect(codeOf(() => verifierConfig({ ...base, tdxCollateral: '/etc/vouch/tdx', ...flags }))).toBe('MISUSE_ARGUMENT');
    }
  });
});
