/**
 * IMA end to end on a software TPM: the "kernel" measures files into PCR 10 and keeps the list,
 * the agent sends only the entries the verifier does not hold, the verifier replays them onto its
 * stored PCR 10 and appraises them; a violation stays on record until the TPM reboots.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningVerifier } from '../../src/verifier/server.js';
import { startTestVerifier } from '../helpers/verifier-process.js';
import { Agent, type AttestOutcome } from '../../src/agent/agent.js';
import { TpmCollector } from '../../src/agent/tpm.js';
import { VerifierClient } from '../../src/agent/client.js';
import { decodeLedgerEntry } from '../../src/ledger/index.js';
import { TPM_ALG, pcrSelection } from '../../src/tpm/abi/index.js';
import { Tpm } from '../../native/index.js';
import { IMA_TEST_BANKS, KernelIma } from '../helpers/kernel-ima.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';

const good = 'the approved tool';
const goodDigest = createHash('sha256').update(good).digest('hex');

const policy = `apiVersion: vouch/v1
kind: AttestationPolicy
id: runtime
tpm:
  banks: [sha256]
  pcrs:
    sha256:
${[0, 1, 2, 3, 4, 5, 6, 7, 10].map((i) => `      "${i}": any`).join('\n')}
runtime:
  bootAggregate: required
  ima:
    allowed:
      /usr/bin/good: ["sha256:${goodDigest}"]
    excludes: ["/tmp/"]
    trustedKeys: []
artifact:
  lifetimeSeconds: 120
`;

describe('runtime integrity (IMA) on swtpm', () => {
  let tpm: TestSwtpm;
  let dir: string;
  let verifier: RunningVerifier;
  let imaPath: string;
  let agent: Agent;
  let collector: TpmCollector | undefined;
  let kernel: KernelIma;

  /** swtpm serves one connection at a time: the "kernel" opens its own for each extend. */
  const extender = {
    pcrExtend(pcr: number, alg: number, digest: Uint8Array): void {
      const t = Tpm.open(tpm.tcti);
      try {
        t.pcrExtend(pcr, alg, digest);
      } finally {
        t.close();
      }
    },
  };

  function boot(): void {
    const t = Tpm.open(tpm.tcti);
    let pcrs: Map<number, Uint8Array>;
    try {
      pcrs = t.pcrRead(pcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }])).get(TPM_ALG.SHA256)!;
    } finally {
      t.close();
    }
    kernel = new KernelIma(extender, IMA_TEST_BANKS);
    kernel.bootAggregate([0, 1, 2, 3, 4, 5, 6, 7].map((i) => pcrs.get(i)!));
    writeFileSync(imaPath, kernel.list());
  }

  function measure(path: string, content: string): void {
    kernel.measure(path, content);
    writeFileSync(imaPath, kernel.list());
  }

  async function attest(): Promise<AttestOutcome> {
    collector = TpmCollector.open(tpm.tcti);
    try {
      return await agent.attestOnce();
    } finally {
      collector.close();
      collector = undefined;
    }
  }

  beforeAll(async () => {
    tpm = await startTestSwtpm();
    dir = mkdtempSync(join(tmpdir(), 'vouch-ima-'));
    imaPath = join(dir, 'binary_runtime_measurements');
    verifier = await startTestVerifier(tpm, dir, { yaml: policy }, 'ima');
    // One agent process across attestations: it remembers where the verifier's IMA state is.
    const tpmProxy = {
      get identity() {
        return collector!.identity;
      },
      activate: (b: Uint8Array, s: Uint8Array) => collector!.activate(b, s),
      quote: (q: Uint8Array, sel: Parameters<TpmCollector['quote']>[1]) => collector!.quote(q, sel),
      extend: () => undefined,
      close: () => undefined,
    } as unknown as TpmCollector;
    agent = new Agent({ verifier: new VerifierClient(verifier.url), tpm: tpmProxy, stateDir: join(dir, 'agent'), group: 'default', eventLogPath: null, imaLogPath: imaPath });
  });

  afterAll(async () => {
    collector?.close();
    await verifier?.close();
    await tpm?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('boot_aggregate and an allowed file: affirmed; the decision records the entries', async () => {
    boot();
    measure('/usr/bin/good', good);
    measure('/tmp/scratch', 'anything goes under an excluded prefix');
    const out = await attest();
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
    const body = decodeLedgerEntry((await verifier.service.deps.store.getDecision(out.ledger.seq))!.entry).body as { claims: { runtime: Record<string, unknown> } };
    expect(body.claims.runtime).toMatchObject({ entries: 3, newEntries: 3, appraised: 1, excluded: 1, violations: 0, bootAggregate: 'pcr0-7' });
  });

  it('a re-attestation sends only the new entries and replays them on the stored PCR 10', async () => {
    measure('/usr/bin/good', good);
    const out = await attest();
    expect(out.decision).toBe('affirming');
    const body = decodeLedgerEntry((await verifier.service.deps.store.getDecision(out.ledger.seq))!.entry).body as { claims: { runtime: Record<string, unknown> } };
    expect(body.claims.runtime).toMatchObject({ entries: 4, newEntries: 1 });
  });

  it('a file the policy does not allow is refused with its path and digest, and the refusal stays until reboot', async () => {
    measure('/usr/bin/evil', 'not on the list');
    const bad = await attest();
    expect(bad.decision).toBe('contraindicated');
    expect(bad.failures).toEqual([
      expect.objectContaining({ code: 'IMA_PATH_NOT_ALLOWED', actual: expect.stringContaining(createHash('sha256').update('not on the list').digest('hex')) }),
    ]);
    expect(JSON.stringify(bad.failures)).toContain('/usr/bin/evil');
    const again = await attest();
    expect(again.failures).toEqual([expect.objectContaining({ code: 'IMA_PRIOR_VIOLATION' })]);
  });

  it('after a reboot the list starts again and the node is affirmed', async () => {
    await tpm.restart();
    boot();
    measure('/usr/bin/good', good);
    const out = await attest();
    expect(out.failures ?? []).toEqual([]);
    expect(out.decision).toBe('affirming');
  });
});
