import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, readAgentState, type AttestOutcome } from '../../src/agent/agent.js';
import type { VerifierClient } from '../../src/agent/client.js';
import type { TpmCollector } from '../../src/agent/tpm.js';
import { UnavailableError, isVouchError } from '../../src/lib/errors.js';
import { AK_TEMPLATE_ECC_P256, EK_TEMPLATE_RSA2048 } from '../../src/tpm/templates.js';
import { encodeTpmtPublic, decodeTpmtPublic } from '../../src/tpm/abi/index.js';
import { tpmName } from '../../src/tpm/name.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A TPM stand-in: the agent only needs the identity, activation and quotes from it. */
function fakeTpm(): TpmCollector {
  const ak = decodeTpmtPublic(encodeTpmtPublic({ ...AK_TEMPLATE_ECC_P256, unique: { x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) } }));
  const ek = decodeTpmtPublic(encodeTpmtPublic(EK_TEMPLATE_RSA2048));
  const fake = {
    identity: { ek: { handle: 1, public: ek, name: tpmName(ek) }, ak: { handle: 2, public: ak, name: tpmName(ak) }, ekCertificates: [] },
    activate: () => new Uint8Array([7, 7, 7]),
    quote: () => ({ attest: new Uint8Array([1]), signature: new Uint8Array([2]), pcrs: new Map([[0x000b, new Map([[0, new Uint8Array(32)]])]]) }),
    extend: () => undefined,
    close: () => undefined,
  };
  return fake as unknown as TpmCollector;
}

/** A verifier stand-in that is unreachable for the first `down` calls of attest. */
function fakeVerifier(down: number): { client: VerifierClient; calls: string[] } {
  const calls: string[] = [];
  let failures = down;
  const client = {
    baseUrl: 'http://127.0.0.1:1',
    enroll: async () => {
      calls.push('enroll');
      return { enrollmentId: 'e'.repeat(32), nodeId: 'tpm-1', credentialBlob: 'AA', secret: 'AA', expiresAt: 0 };
    },
    activate: async (_id: string, secret: string) => {
      calls.push(`activate:${secret}`);
      return { nodeId: 'tpm-1', akName: Buffer.from(tpmName(fakeTpm().identity.ak.public)).toString('hex') };
    },
    challenge: async () => {
      calls.push('challenge');
      if (failures > 0) {
        failures--;
        throw new UnavailableError('VERIFIER_UNREACHABLE', 'down');
      }
      return { challengeId: 'c1', nonce: 'AAAA', expiresAt: 0, pcrSelection: [{ bank: 'sha256', pcrs: [0] }] };
    },
    attest: async () => {
      calls.push('attest');
      return { decision: 'affirming' as const, nodeId: 'tpm-1', ledger: { seq: 1, hash: '00' } };
    },
  };
  return { client: client as unknown as VerifierClient, calls };
}

describe('agent', () => {
  it('enrolls once (the activated secret goes back), keeps its state, and does not enroll again', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vouch-agent-'));
    dirs.push(stateDir);
    const v = fakeVerifier(0);
    const agent = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir, group: 'default' });
    expect(await agent.ensureEnrolled()).toBe('tpm-1');
    expect(v.calls).toEqual(['enroll', 'activate:BwcH']);
    expect((await readAgentState(stateDir))?.nodeId).toBe('tpm-1');
    const again = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir, group: 'default' });
    await again.ensureEnrolled();
    expect(v.calls).toEqual(['enroll', 'activate:BwcH']);
  });

  it('keeps attesting through an unreachable verifier (backoff) and stops when aborted', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vouch-agent-'));
    dirs.push(stateDir);
    const v = fakeVerifier(2);
    const agent = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir, group: 'default' });
    const seen: Array<AttestOutcome | Error> = [];
    const ctl = new AbortController();
    await agent.run(20, ctl.signal, (o) => {
      seen.push(o);
      if (seen.length === 4) ctl.abort();
    });
    expect(seen.map((o) => (o instanceof Error ? (isVouchError(o) ? o.code : 'error') : o.decision))).toEqual([
      'VERIFIER_UNREACHABLE',
      'VERIFIER_UNREACHABLE',
      'affirming',
      'affirming',
    ]);
  });

  it('an error other than an unreachable verifier ends the loop', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vouch-agent-'));
    dirs.push(stateDir);
    const v = fakeVerifier(0);
    (v.client as unknown as { attest: () => Promise<never> }).attest = async () => {
      throw new UnavailableError('TSS_COMMAND_FAILED', 'the TPM failed');
    };
    const agent = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir, group: 'default' });
    await expect(agent.run(10, new AbortController().signal, () => undefined)).rejects.toMatchObject({ code: 'TSS_COMMAND_FAILED' });
  });

  it('a state file of another AK is refused instead of silently re-enrolling', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vouch-agent-'));
    dirs.push(stateDir);
    const v = fakeVerifier(0);
    await new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir, group: 'default' }).ensureEnrolled();
    const other = fakeTpm();
    const otherAk = decodeTpmtPublic(encodeTpmtPublic({ ...AK_TEMPLATE_ECC_P256, unique: { x: new Uint8Array(32).fill(9), y: new Uint8Array(32).fill(9) } }));
    (other.identity as { ak: { handle: number; public: typeof otherAk; name: Uint8Array } }).ak = { handle: 3, public: otherAk, name: tpmName(otherAk) };
    await expect(new Agent({ verifier: v.client, tpm: other, stateDir, group: 'default' }).ensureEnrolled()).rejects.toMatchObject({ code: 'MISUSE_ARGUMENT' });
  });
});
