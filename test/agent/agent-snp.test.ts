/**
 * The agent's SEV-SNP evidence (Agent option `snp`): configfs-tsm when present, /dev/sev-guest
 * otherwise, REPORT_DATA bound to the challenge and the agent's key either way. TPM and verifier
 * are stand-ins; both SNP interfaces are emulated.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { VerifierClient } from '../../src/agent/client.js';
import type { TpmCollector } from '../../src/agent/tpm.js';
import { teeReportData } from '../../src/evidence/binding.js';
import { decodeEvidenceCbor, type Evidence } from '../../src/evidence/envelope.js';
import { fromBase64Url } from '../../src/lib/bytes.js';
import { decodeSnpReport } from '../../src/snp/index.js';
import { AK_TEMPLATE_ECC_P256, EK_TEMPLATE_RSA2048 } from '../../src/tpm/templates.js';
import { decodeTpmtPublic, encodeTpmtPublic } from '../../src/tpm/abi/index.js';
import { tpmName } from '../../src/tpm/name.js';
import { FakeSevGuest } from '../helpers/fake-sev-guest.js';
import { FakeTsm } from '../helpers/fake-tsm.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NONCE = 'q83vEjRWeJA';

function fakeTpm(): TpmCollector {
  const ak = decodeTpmtPublic(encodeTpmtPublic({ ...AK_TEMPLATE_ECC_P256, unique: { x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) } }));
  const ek = decodeTpmtPublic(encodeTpmtPublic(EK_TEMPLATE_RSA2048));
  const fake = {
    identity: { ek: { handle: 1, public: ek, name: tpmName(ek) }, ak: { handle: 2, public: ak, name: tpmName(ak) }, ekCertificates: [] },
    activate: () => new Uint8Array([7]),
    quote: () => ({ attest: new Uint8Array([1]), signature: new Uint8Array([2]), pcrs: new Map([[0x000b, new Map([[0, new Uint8Array(32)]])]]) }),
    extend: () => undefined,
    close: () => undefined,
  };
  return fake as unknown as TpmCollector;
}

/** A verifier stand-in that keeps the evidence it is sent. */
function fakeVerifier(): { client: VerifierClient; sent: Evidence[] } {
  const sent: Evidence[] = [];
  const client = {
    baseUrl: 'http://127.0.0.1:1',
    enroll: async () => ({ enrollmentId: 'e'.repeat(32), nodeId: 'tpm-1', credentialBlob: 'AA', secret: 'AA', expiresAt: 0 }),
    activate: async () => ({ nodeId: 'tpm-1', akName: Buffer.from(tpmName(fakeTpm().identity.ak.public)).toString('hex') }),
    challenge: async () => ({ challengeId: 'c1', nonce: NONCE, expiresAt: 0, pcrSelection: [{ bank: 'sha256', pcrs: [0] }] }),
    attest: async (body: Uint8Array) => {
      sent.push(decodeEvidenceCbor(body));
      return { decision: 'affirming' as const, nodeId: 'tpm-1', ledger: { seq: 1, hash: '00' } };
    },
  };
  return { client: client as unknown as VerifierClient, sent };
}

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vouch-agent-snp-'));
  dirs.push(d);
  return d;
}

describe('agent SEV-SNP evidence', () => {
  it('without configfs-tsm: the report and certificate table come from /dev/sev-guest, bound to the challenge and key', async () => {
    const v = fakeVerifier();
    const dev = new FakeSevGuest();
    const tsm = new FakeTsm({ present: false });
    const agent = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir: stateDir(), group: 'default', eventLogPath: null, imaLogPath: null, snp: { fs: tsm, sevGuest: { ioctl: dev.ioctl } } });
    const out = await agent.attestOnce();
    expect(out.decision).toBe('affirming');
    const snp = v.sent[0]?.snp;
    expect(snp?.report).toEqual(dev.reports[0]);
    expect(snp?.certTable).toEqual(dev.certTable());
    expect(decodeSnpReport(snp?.report as Uint8Array).reportData).toEqual(teeReportData(fromBase64Url(NONCE), out.boundKeySpki));
    expect(tsm.created).toEqual([]);
  });

  it('with configfs-tsm: the device is not used', async () => {
    const v = fakeVerifier();
    const dev = new FakeSevGuest();
    const tsm = new FakeTsm();
    const agent = new Agent({ verifier: v.client, tpm: fakeTpm(), stateDir: stateDir(), group: 'default', eventLogPath: null, imaLogPath: null, snp: { fs: tsm, sevGuest: { ioctl: dev.ioctl } } });
    const out = await agent.attestOnce();
    expect(v.sent[0]?.snp?.report).toEqual(tsm.reports[0]);
    expect(decodeSnpReport(v.sent[0]?.snp?.report as Uint8Array).reportData).toEqual(teeReportData(fromBase64Url(NONCE), out.boundKeySpki));
    expect(dev.opened).toEqual([]);
  });

  it('neither: the attestation fails with SNP_REPORT_SOURCE_UNAVAILABLE and sends nothing', async () => {
    const v = fakeVerifier();
    const agent = new Agent({
      verifier: v.client,
      tpm: fakeTpm(),
      stateDir: stateDir(),
      group: 'default',
      eventLogPath: null,
      imaLogPath: null,
      snp: { fs: new FakeTsm({ present: false }), sevGuest: { ioctl: new FakeSevGuest({ present: false }).ioctl } },
    });
    await expect(agent.attestOnce()).rejects.toMatchObject({ code: 'SNP_REPORT_SOURCE_UNAVAILABLE' });
    expect(v.sent).toEqual([]);
  });
});
