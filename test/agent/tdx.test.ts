import { describe, expect, it } from 'vitest';
import { collectTdxQuote, readCcel, TSM_PROVIDER_TDX_GUEST, type CcelFs } from '../../src/agent/tdx.js';
import type { TsmFs } from '../../src/agent/tsm.js';
import { VouchError } from '../../src/lib/errors.js';

/** A minimal configfs-tsm tree whose `outblob` echoes `inblob` behind a fixed prefix. */
function tsmTree(provider: string): TsmFs & { written: Uint8Array[] } {
  const files = new Map<string, Uint8Array>();
  const written: Uint8Array[] = [];
  const enoent = (p: string) => Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  return {
    written,
    async mkdir(p) {
      files.set(`${p}/provider`, new TextEncoder().encode(`${provider}\n`));
      files.set(`${p}/generation`, new TextEncoder().encode('0\n'));
    },
    async writeFile(p, d) {
      const b = typeof d === 'string' ? new TextEncoder().encode(d) : d;
      if (p.endsWith('/inblob')) {
        written.push(b);
        const dir = p.slice(0, -'/inblob'.length);
        files.set(`${dir}/generation`, new TextEncoder().encode('1\n'));
        files.set(`${dir}/outblob`, Uint8Array.from([0x04, 0x00, ...b]));
      }
    },
    async readFile(p) {
      const b = files.get(p);
      if (b === undefined) throw enoent(p);
      return b;
    },
    async rmdir() {},
    async stat() {
      return {};
    },
  };
}

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof VouchError) return e.code;
    throw e;
  }
  return 'none';
};

describe('TDX agent collection', () => {
  it('writes REPORTDATA to inblob and returns the quote from a tdx_guest provider', async () => {
    const fs = tsmTree(TSM_PROVIDER_TDX_GUEST);
    const rd = new Uint8Array(64).fill(7);
    const q = await collectTdxQuote({ reportData: rd, tsm: { root: '/tsm', fs } });
    expect(fs.written).toEqual([rd]);
    expect(q).toEqual(Uint8Array.from([0x04, 0x00, ...rd]));
  });

  it('refuses another provider, and REPORTDATA of the wrong size', async () => {
    expect(await codeOf(collectTdxQuote({ reportData: new Uint8Array(64), tsm: { root: '/tsm', fs: tsmTree('sev_guest') } }))).toBe('TDX_TSM_PROVIDER');
    expect(await codeOf(collectTdxQuote({ reportData: new Uint8Array(32), tsm: { root: '/tsm', fs: tsmTree(TSM_PROVIDER_TDX_GUEST) } }))).toBe('MISUSE_ARGUMENT');
  });

  const ccelFs = (files: Record<string, Uint8Array | string>): CcelFs => ({
    async readFile(p) {
      const v = files[p];
      if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      if (typeof v === 'string') throw Object.assign(new Error(v), { code: v });
      return v;
    },
  });

  it('reads the CCEL table and log area; both absent is null; one alone or a failed read is an error', async () => {
    const table = new Uint8Array(56).fill(1);
    const data = new Uint8Array(1024).fill(2);
    expect(await readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({ '/t': table, '/d': data }) })).toEqual({ table, data });
    expect(await readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({}) })).toBeNull();
    expect(await codeOf(readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({ '/t': table }) }))).toBe('TDX_CCEL_UNAVAILABLE');
    expect(await codeOf(readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({ '/d': data }) }))).toBe('TDX_CCEL_UNAVAILABLE');
    expect(await codeOf(readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({ '/t': 'EACCES', '/d': data }) }))).toBe('TDX_CCEL_UNAVAILABLE');
    expect(await codeOf(readCcel({ tablePath: '/t', dataPath: '/d', fs: ccelFs({ '/t': new Uint8Array(5000), '/d': data }) }))).toBe('TDX_CCEL_UNAVAILABLE');
  });
});
