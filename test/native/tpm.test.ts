import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, allPcrs, describeTpm, type TpmKey } from '../../native/index.js';
import { bytesEqual, toHex } from '../../src/lib/bytes.js';
import { Reader } from '../../src/lib/reader.js';
import { decodeTpmsAttest, decodeTpmtSignature, encodeTpm2bPublic, TPM_ALG, TPM_ST_ATTEST } from '../../src/tpm/abi/index.js';
import { tpmName } from '../../src/tpm/name.js';
import { AK_ATTRIBUTES } from '../../src/tpm/templates.js';
import { startTestSwtpm, type TestSwtpm } from '../helpers/swtpm.js';
import { publicKeyOf, verifyTpmSignature } from './keys.js';

let sw: TestSwtpm;
let tpm: Tpm;
let work: string;

beforeAll(async () => {
  sw = await startTestSwtpm();
  tpm = Tpm.open(sw.tcti);
  work = await mkdtemp(join(tmpdir(), 'vouch-tpm-test-'));
});

afterAll(async () => {
  tpm?.close();
  await sw?.dispose();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384];

function noTransientsOrSessions(): void {
  expect(tpm.listHandles(0x80000000)).toEqual([]);
  expect(tpm.listHandles(0x02000000)).toEqual([]);
  expect(tpm.listHandles(0x03000000)).toEqual([]);
}

describe('Tpm on swtpm', () => {
  it('getInfo names the manufacturer, firmware and the three active banks', () => {
    const info = tpm.getInfo();
    expect(info.manufacturer).toBe('IBM');
    expect(info.family).toBe('2.0');
    expect(info.specRevision).toBeGreaterThanOrEqual(138);
    expect(info.firmwareVersion).toBe((BigInt(info.firmwareVersion1) << 32n) | BigInt(info.firmwareVersion2));
    expect(info.pcrBanks.map((b) => b.name)).toEqual(['sha1', 'sha256', 'sha384']);
    for (const b of info.pcrBanks) expect(b.pcrs).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(tpm.activeBanks()).toEqual(info.pcrBanks);
  });

  it('describeTpm gives a JSON-safe summary with the EK certificate issuers', async () => {
    const d = await describeTpm(sw.tcti);
    expect(d.manufacturer).toBe('IBM');
    expect(d.banks.map((b) => b.bank)).toEqual(['sha1', 'sha256', 'sha384']);
    expect(d.ekCertificates.map((c) => c.kind)).toEqual(['rsa2048', 'ecc-p384']);
    const issuer = new X509Certificate(await readFile(sw.issuerCertPem));
    for (const c of d.ekCertificates) expect(c.issuer).toBe(issuer.subject);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });

  it('reads the RSA and P-384 EK certificates, each issued by the local CA', async () => {
    const certs = tpm.readEkCertificates();
    expect(certs.map((c) => [c.index, c.kind])).toEqual([
      [0x01c00002, 'rsa2048'],
      [0x01c00016, 'ecc-p384'],
    ]);
    const issuer = new X509Certificate(await readFile(sw.issuerCertPem));
    for (const c of certs) {
      const x = new X509Certificate(c.der);
      expect(x.checkIssued(issuer)).toBe(true);
      expect(x.verify(issuer.publicKey)).toBe(true);
    }
    expect(bytesEqual(tpm.readNv(0x01c00002).subarray(0, certs[0]?.der.length), certs[0]?.der as Uint8Array)).toBe(true);
  });

  it("createEk('rsa2048') is the key in the 0x01c00002 certificate", () => {
    const cert = new X509Certificate(tpm.readNv(0x01c00002));
    const ek = tpm.createEk('rsa2048');
    try {
      expect(ek.public.type).toBe(TPM_ALG.RSA);
      expect(publicKeyOf(ek.public).export({ format: 'jwk' })).toEqual(cert.publicKey.export({ format: 'jwk' }));
      expect(toHex(ek.name)).toBe(toHex(tpmName(ek.public)));
    } finally {
      tpm.flush(ek);
    }
    noTransientsOrSessions();
  });

  it("createEk('ecc-p384') reproduces swtpm's persistent EK 0x81010016 and its certificate", () => {
    const persistent = tpm.loadPersistent(0x81010016);
    const ek = tpm.createEk('ecc-p384');
    try {
      expect(toHex(ek.name)).toBe(toHex(persistent.name));
      expect(toHex(ek.public.raw as Uint8Array)).toBe(toHex(persistent.public.raw as Uint8Array));
      const cert = new X509Certificate(tpm.readNv(0x01c00016));
      expect(publicKeyOf(ek.public).export({ format: 'jwk' })).toEqual(cert.publicKey.export({ format: 'jwk' }));
    } finally {
      tpm.flush(ek);
      tpm.flush(persistent);
    }
    noTransientsOrSessions();
  });

  for (const kind of ['ecc-p256', 'rsa2048'] as const) {
    it(`quotes sha1+sha256+sha384 PCRs 0-23 with a ${kind} AK; the signature verifies with node:crypto`, () => {
      const ek = tpm.createEk('rsa2048');
      let ak: TpmKey | undefined;
      try {
        ak = tpm.createAk(ek, kind);
        expect(ak.public.objectAttributes).toBe(AK_ATTRIBUTES);
        const nonce = randomBytes(32);
        const sel = allPcrs(BANKS);
        const q = tpm.quote(ak, nonce, sel);
        const attest = decodeTpmsAttest(q.attest);
        expect(toHex(attest.extraData)).toBe(toHex(nonce));
        expect(toHex(attest.qualifiedSigner.subarray(0, 2))).toBe('000b');
        expect(attest.attested.type).toBe(TPM_ST_ATTEST.QUOTE);
        if (attest.attested.type !== TPM_ST_ATTEST.QUOTE) return;
        expect(attest.attested.quote.pcrSelect.map((b) => [b.hashAlg, b.pcrs.length])).toEqual(BANKS.map((b) => [b, 24]));
        // pcrDigest = SHA-256 over the selected PCR values in selection order.
        const values = tpm.pcrRead(sel);
        const h = createHash('sha256');
        for (const b of sel) for (const p of b.pcrs) h.update(values.get(b.hashAlg)?.get(p) as Uint8Array);
        expect(toHex(attest.attested.quote.pcrDigest)).toBe(h.digest('hex'));
        const sig = decodeTpmtSignature(q.signature);
        expect(sig.sigAlg).toBe(kind === 'rsa2048' ? TPM_ALG.RSASSA : TPM_ALG.ECDSA);
        const key = publicKeyOf(ak.public);
        expect(verifyTpmSignature(key, q.attest, sig)).toBe(true);
        const tampered = Uint8Array.from(q.attest);
        tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
        expect(verifyTpmSignature(key, tampered, sig)).toBe(false);
      } finally {
        if (ak !== undefined) tpm.flush(ak);
        tpm.flush(ek);
      }
      noTransientsOrSessions();
    });
  }

  it('pcrRead returns every PCR of every bank, and pcrExtend changes exactly the extended one', () => {
    const sel = allPcrs(BANKS);
    const before = tpm.pcrRead(sel);
    expect([...before.keys()]).toEqual(BANKS);
    for (const [alg, m] of before) {
      expect(m.size).toBe(24);
      expect(m.get(0)?.length).toBe(alg === TPM_ALG.SHA1 ? 20 : alg === TPM_ALG.SHA256 ? 32 : 48);
    }
    const digest = createHash('sha256').update('vouch test event').digest();
    tpm.pcrExtend(16, TPM_ALG.SHA256, digest);
    const after = tpm.pcrRead(sel);
    const old = before.get(TPM_ALG.SHA256)?.get(16) as Uint8Array;
    const expected = createHash('sha256').update(old).update(digest).digest('hex');
    expect(toHex(after.get(TPM_ALG.SHA256)?.get(16) as Uint8Array)).toBe(expected);
    for (const alg of BANKS) {
      for (let p = 0; p < 24; p++) {
        if (alg === TPM_ALG.SHA256 && p === 16) continue;
        expect(toHex(after.get(alg)?.get(p) as Uint8Array)).toBe(toHex(before.get(alg)?.get(p) as Uint8Array));
      }
    }
    expect(() => tpm.pcrExtend(16, TPM_ALG.SHA256, new Uint8Array(20))).toThrow(expect.objectContaining({ code: 'MISUSE_ARGUMENT' }));
  });

  /** tpm2_makecredential (tpm2-tools, offline) as an independent MakeCredential. */
  async function makeCredential(ek: TpmKey, akName: Uint8Array, secret: Uint8Array): Promise<{ blob: Uint8Array; encSecret: Uint8Array }> {
    const pubFile = join(work, `ek-${toHex(ek.name).slice(0, 12)}.pub`);
    const secretFile = join(work, 'secret');
    const outFile = join(work, 'cred.out');
    await writeFile(pubFile, encodeTpm2bPublic(ek.public));
    await writeFile(secretFile, secret);
    execFileSync('tpm2_makecredential', ['-T', 'none', '-u', pubFile, '-s', secretFile, '-n', toHex(akName), '-o', outFile], { stdio: 'pipe' });
    const r = new Reader(await readFile(outFile), 'tpm2-tools credential');
    expect(r.u32('magic')).toBe(0xbadcc0de);
    expect(r.u32('version')).toBe(1);
    const blobStart = r.offset;
    r.tpm2b('credentialBlob', 1024);
    const blob = r.bytesBetween(blobStart);
    const secStart = r.offset;
    r.tpm2b('secret', 1024);
    const encSecret = r.bytesBetween(secStart);
    r.finish();
    return { blob, encSecret };
  }

  for (const ekKind of ['rsa2048', 'ecc-p384'] as const) {
    it(`activateCredential recovers a secret bound to the AK name and the ${ekKind} EK`, async () => {
      const ek = tpm.createEk(ekKind);
      let ak: TpmKey | undefined;
      try {
        ak = tpm.createAk(ek, 'ecc-p256');
        const secret = randomBytes(32);
        const { blob, encSecret } = await makeCredential(ek, ak.name, secret);
        expect(toHex(tpm.activateCredential(ak, ek, blob, encSecret))).toBe(toHex(secret));
        // Bound to another name: the TPM refuses, and no session is left behind.
        const otherName = Uint8Array.from(ak.name);
        otherName[otherName.length - 1] = (otherName[otherName.length - 1] as number) ^ 1;
        const other = await makeCredential(ek, otherName, secret);
        expect(() => tpm.activateCredential(ak as TpmKey, ek, other.blob, other.encSecret)).toThrow(
          expect.objectContaining({ code: 'TSS_COMMAND_FAILED' }),
        );
      } finally {
        if (ak !== undefined) tpm.flush(ak);
        tpm.flush(ek);
      }
      noTransientsOrSessions();
    });
  }
});
