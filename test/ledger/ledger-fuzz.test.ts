/**
 * Property and fuzz tests of the ledger's parsers (issue #8): checkpoints, export lines, the
 * appraisal context and the trust anchors input. Random or mutated input only ever yields the
 * parser's own error (never another exception, never a silent acceptance of a change), and
 * round trips return the same bytes.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVouchError } from '../../src/lib/errors.js';
import { CheckpointKeys, checkpointPayload, decodeCheckpoint, type CheckpointKey } from '../../src/ledger/checkpoint.js';
import { exportCheckpointLine, exportEntryLine, exportHeaderLine, exportInputLine, readExport } from '../../src/ledger/export.js';
import { buildLedgerEntry, GENESIS_PREV } from '../../src/ledger/index.js';
import { decodeAppraisalContext, decodeTrustAnchors, encodeAppraisalContext, encodeTrustAnchors } from '../../src/verifier/attestation.js';
import { ArtifactSigner } from '../../src/artifact/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function signer(): Promise<{ s: ArtifactSigner; keys: CheckpointKeys; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-cp-fuzz-'));
  const s = await ArtifactSigner.open(dir);
  const keys = new CheckpointKeys();
  for (const k of s.jwks().keys) keys.add(k as CheckpointKey);
  return { s, keys, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const head = { verifierId: 'fuzz', treeSize: 42, rootHash: new Uint8Array(32).fill(3), time: 1_700_000_000_000 };

function only(codes: readonly string[], f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!isVouchError(e) || !codes.includes(e.code)) throw e;
  }
}

describe('checkpoints', () => {
  it('sign → decode → verify round trips; the payload has one canonical encoding', async () => {
    const { s, keys, done } = await signer();
    try {
      const jws = await s.signCompact(checkpointPayload(head));
      const d = decodeCheckpoint(jws);
      expect(d.head).toEqual(head);
      expect(keys.verify(jws)).toMatchObject({ ok: true });
    } finally {
      done();
    }
  });

  it('random strings only ever give LEDGER_CHECKPOINT_MALFORMED', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (t) => {
        only(['LEDGER_CHECKPOINT_MALFORMED'], () => decodeCheckpoint(t));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.base64String({ maxLength: 120 }), { minLength: 3, maxLength: 3 }), (parts) => {
        only(['LEDGER_CHECKPOINT_MALFORMED'], () => decodeCheckpoint(parts.map((p) => p.replace(/=/g, '').replace(/\+/g, '-').replace(/\//g, '_')).join('.')));
      }),
      { numRuns: 1000 },
    );
  });

  it('any one-character change of a signed checkpoint is refused (malformed, or the signature fails)', async () => {
    const { s, keys, done } = await signer();
    try {
      const jws = await s.signCompact(checkpointPayload(head));
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
      fc.assert(
        fc.property(fc.integer({ min: 0, max: jws.length - 1 }), fc.constantFrom(...alphabet.split('')), (i, ch) => {
          fc.pre(jws[i] !== ch);
          const t = `${jws.slice(0, i)}${ch}${jws.slice(i + 1)}`;
          const r = keys.verify(t);
          // A change in the last base64url character may only flip padding bits that decode to the same bytes.
          if (r.ok) expect(Buffer.from(t.split('.')[2] ?? '', 'base64url').equals(Buffer.from(jws.split('.')[2] ?? '', 'base64url')) && t.split('.').slice(0, 2).join('.') === jws.split('.').slice(0, 2).join('.')).toBe(true);
          else expect(['LEDGER_CHECKPOINT_MALFORMED', 'LEDGER_CHECKPOINT_SIGNATURE_INVALID', 'LEDGER_CHECKPOINT_KEY_UNKNOWN']).toContain(r.code);
        }),
        { numRuns: 1500 },
      );
      // Another key with the same kid does not verify it.
      const other = new CheckpointKeys();
      const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
      other.add({ kid: decodeCheckpoint(jws).kid, kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string });
      expect(other.verify(jws)).toMatchObject({ ok: false, code: 'LEDGER_CHECKPOINT_SIGNATURE_INVALID' });
    } finally {
      done();
    }
  });
});

describe('export lines', () => {
  const entry = buildLedgerEntry({ seq: 1, prev: GENESIS_PREV, time: 1, kind: 'heartbeat', node: null, outcome: 'alive', body: {} });
  const good = [
    exportHeaderLine({ verifierId: 'v', exportedAt: 1, entries: 1, checkpoints: 1, inputs: 1 }),
    exportEntryLine({ seq: 1, entry: entry.entry, hash: entry.hash }),
    exportCheckpointLine('a.b.c'),
    exportInputLine({ digest: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', kind: 'evidence', storedAt: 1, bytes: new TextEncoder().encode('abc') }),
  ];
  const readAll = async (ls: string[]): Promise<number> => {
    let n = 0;
    for await (const _ of readExport(ls)) n++;
    return n;
  };

  it('a well-formed export reads back every record', async () => {
    expect(await readAll(good)).toBe(4);
  });

  it('random and mutated lines only ever give LEDGER_EXPORT_MALFORMED', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: good.length - 1 }), fc.string({ maxLength: 80 }), fc.integer({ min: 0, max: 200 }), async (line, junk, at) => {
        const ls = [...good];
        const l = ls[line] as string;
        const pos = Math.min(at, l.length);
        ls[line] = `${l.slice(0, pos)}${junk}${l.slice(pos + junk.length)}`;
        try {
          await readAll(ls);
        } catch (e) {
          if (!isVouchError(e) || e.code !== 'LEDGER_EXPORT_MALFORMED') throw e;
        }
      }),
      { numRuns: 1500 },
    );
    await expect(readAll([])).rejects.toMatchObject({ code: 'LEDGER_EXPORT_MALFORMED' });
    await expect(readAll([good[0]!, good[2]!, good[1]!, good[3]!])).rejects.toMatchObject({ code: 'LEDGER_EXPORT_MALFORMED' });
    const badDigest = good[3]!.replace('"ba78', '"ca78');
    await expect(readAll([...good.slice(0, 3), badDigest])).rejects.toMatchObject({ code: 'LEDGER_EXPORT_MALFORMED' });
  });
});

describe('retained inputs', () => {
  const ctx = {
    now: 1_700_000_000_000,
    challenge: { challengeId: 'c1', nodeId: 'n1', nonce: new Uint8Array(32).fill(1), params: { selection: [{ hashAlg: 11, pcrs: [0, 1, 2] }] }, createdAt: 1, expiresAt: 2, consumedAt: null },
    node: { nodeId: 'n1', group: 'gpu', kind: 'tpm' as const, akPublic: new Uint8Array([1, 2, 3]), nodeKey: null, counters: { resetCount: 1, restartCount: 0, clock: 12345678901234567890n }, revokedAt: null },
    imaState: { resetCount: 1, entries: 5, violations: 0, pcr10: new Map([[11, new Uint8Array(32).fill(9)], [4, new Uint8Array(20).fill(8)]]) },
    snpCollateral: { vcek: { der: new Uint8Array([5, 5]), source: 'kds' as const }, failures: [{ code: 'SNP_KDS_UNAVAILABLE' as const, message: 'down' }] },
    trust: 'ab'.repeat(32),
  };

  it('the appraisal context round trips to the same value and the same bytes', () => {
    const a = encodeAppraisalContext(ctx);
    const d = decodeAppraisalContext(a.bytes);
    expect(d).toEqual(ctx);
    expect(Buffer.from(encodeAppraisalContext(d).bytes).equals(Buffer.from(a.bytes))).toBe(true);
    const t = encodeTrustAnchors({ tpmCas: [new Uint8Array([3]), new Uint8Array([1])], snp: { pinnedArks: { ['cd'.repeat(32)]: 'Milan' }, crls: [new Uint8Array([7])] }, tdx: { pinnedRootFingerprints: ['ef'.repeat(32)] } });
    expect(decodeTrustAnchors(t.bytes)).toEqual({ tpmCas: [new Uint8Array([1]), new Uint8Array([3])], snp: { pinnedArks: { ['cd'.repeat(32)]: 'Milan' }, crls: [new Uint8Array([7])] }, tdx: { pinnedRootFingerprints: ['ef'.repeat(32)] } });
  });

  it('random and mutated bytes only ever give a parse error or REPLAY_INPUT_MISSING', () => {
    const bytes = encodeAppraisalContext(ctx).bytes;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        only(['REPLAY_INPUT_MISSING', 'PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES', 'PARSE_SIZE_EXCEEDED', 'PARSE_BAD_VALUE', 'PARSE_BAD_ENCODING', 'PARSE_UNSUPPORTED_ALGORITHM', 'PARSE_RESERVED_NONZERO', 'PARSE_BAD_MAGIC'], () => decodeAppraisalContext(b));
        only(['REPLAY_INPUT_MISSING', 'PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES', 'PARSE_SIZE_EXCEEDED', 'PARSE_BAD_VALUE', 'PARSE_BAD_ENCODING', 'PARSE_UNSUPPORTED_ALGORITHM', 'PARSE_RESERVED_NONZERO', 'PARSE_BAD_MAGIC'], () => decodeTrustAnchors(b));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const m = new Uint8Array(bytes);
        m[i] = (m[i] as number) ^ x;
        only(['REPLAY_INPUT_MISSING', 'PARSE_TRUNCATED', 'PARSE_TRAILING_BYTES', 'PARSE_SIZE_EXCEEDED', 'PARSE_BAD_VALUE', 'PARSE_BAD_ENCODING', 'PARSE_UNSUPPORTED_ALGORITHM', 'PARSE_RESERVED_NONZERO', 'PARSE_BAD_MAGIC'], () => decodeAppraisalContext(m));
      }),
      { numRuns: 2000 },
    );
  });
});
