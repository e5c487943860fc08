/** The runtime policy: allowlists, exclusions, signatures by trusted keys, boot_aggregate. */
import { createHash, generateKeyPairSync, KeyObject } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../../src/tpm/abi/constants.js';
import { toHex } from '../../../src/lib/bytes.js';
import {
  appraiseIma,
  checkBootAggregate,
  compileImaPolicy,
  decodeImaSignature,
  importImaTrustedKey,
  ImaRuntimePolicySchema,
  parseImaBinary,
  type ImaEntry,
  type ImaRuntimePolicy,
} from '../../../src/eventlog/ima/index.js';
import { HAVE_REAL, readReal } from '../../helpers/real.js';
import { entry, fileDigest, imaSign, keyIdOf } from './synthetic.js';
import { issue } from '../../ek/helpers.js';

const pem = (k: KeyObject): string => k.export({ format: 'pem', type: 'spki' }).toString();
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const agg = entry(0, 'ima-ng', { digest: fileDigest('agg'), path: 'boot_aggregate' });
const bash = entry(1, 'ima-ng', { digest: fileDigest('bash v1'), path: '/usr/bin/bash' });
const hex = (body: string): string => createHash('sha256').update(body).digest('hex');

function policy(p: Partial<ImaRuntimePolicy> = {}): ImaRuntimePolicy {
  return { allowed: { '/usr/bin/bash': [`sha256:${hex('bash v1')}`] }, excludes: [], trustedKeys: [], ...p };
}

describe('appraiseIma: allowlist and exclusions', () => {
  it('an allowed digest passes (boot_aggregate is left to checkBootAggregate)', () => {
    const r = appraiseIma([agg, bash], policy());
    expect(r).toMatchObject({ ok: true, violations: [], appraised: 1, excluded: 0 });
  });

  it('bare hex in the allowlist matches any algorithm of that digest', () => {
    expect(appraiseIma([bash], policy({ allowed: { '/usr/bin/bash': [hex('bash v1')] } })).ok).toBe(true);
    // …but an algorithm prefix must match the entry's algorithm.
    expect(appraiseIma([bash], policy({ allowed: { '/usr/bin/bash': [`sm3:${hex('bash v1')}`] } })).ok).toBe(false);
  });

  it('a changed digest is reported with path, digest and rule', () => {
    const changed = entry(1, 'ima-ng', { digest: fileDigest('bash v2'), path: '/usr/bin/bash' });
    const r = appraiseIma([agg, changed], policy());
    expect(r.ok).toBe(false);
    expect(r.violations).toEqual([
      expect.objectContaining({ code: 'IMA_DIGEST_NOT_ALLOWED', index: 1, path: '/usr/bin/bash', digest: `sha256:${hex('bash v2')}`, rule: 'allowed["/usr/bin/bash"]', expected: `sha256:${hex('bash v1')}`, actual: `sha256:${hex('bash v2')}`, field: 'ima[1]' }),
    ]);
  });

  it('a path the policy does not know is reported; every violation is returned, not the first', () => {
    const a = entry(2, 'ima-ng', { digest: fileDigest('x'), path: '/opt/x' });
    const b = entry(3, 'ima-ng', { digest: fileDigest('y'), path: '/opt/y' });
    const r = appraiseIma([agg, bash, a, b], policy());
    expect(r.violations.map((v) => [v.code, v.path])).toEqual([['IMA_PATH_NOT_ALLOWED', '/opt/x'], ['IMA_PATH_NOT_ALLOWED', '/opt/y']]);
  });

  it('excluded paths are ignored: prefixes, subtrees, globs', () => {
    const paths = ['/tmp/a', '/tmp/b/c', '/var/log/x/y.log', '/home/u/.cache', '/proc', '/proc/1/status'];
    const es = paths.map((p, i) => entry(i + 1, 'ima-ng', { digest: fileDigest(p), path: p }));
    const r = appraiseIma(es, policy({ excludes: ['/tmp/', '/var/log/**', '/home/*/.cache', '/proc'] }));
    expect(r).toMatchObject({ ok: true, excluded: 6, appraised: 0 });
    // "/proc" does not exclude "/procfoo"; "*" does not cross "/".
    const near = [entry(1, 'ima-ng', { digest: fileDigest('p'), path: '/procfoo' }), entry(2, 'ima-ng', { digest: fileDigest('q'), path: '/home/u/x/.cache' })];
    expect(appraiseIma(near, policy({ excludes: ['/proc', '/home/*/.cache'] })).violations.map((v) => v.path)).toEqual(['/procfoo', '/home/u/x/.cache']);
  });

  it('a measurement violation is reported unless its path is excluded', () => {
    const v = entry(2, 'ima-ng', { digest: { algorithm: 'sha256', digest: new Uint8Array(32) }, path: '/var/lib/db' }, { violation: true });
    expect(appraiseIma([v], policy()).violations).toEqual([expect.objectContaining({ code: 'IMA_MEASUREMENT_VIOLATION', rule: 'measurement-violation', path: '/var/lib/db' })]);
    expect(appraiseIma([v], policy({ excludes: ['/var/lib/'] })).ok).toBe(true);
  });

  it('a boot_aggregate name later than entry 0 is appraised like any path', () => {
    const late = entry(5, 'ima-ng', { digest: fileDigest('z'), path: 'boot_aggregate' });
    expect(appraiseIma([late], policy()).violations[0]).toMatchObject({ code: 'IMA_PATH_NOT_ALLOWED', index: 5 });
  });
});

describe('appraiseIma: signatures', () => {
  const signed = (priv: KeyObject, pub: KeyObject, body: string, alg = 'sha256', template: 'ima-sig' | 'ima-modsig' = 'ima-sig'): ImaEntry =>
    entry(1, template, { digest: fileDigest(body, alg), path: '/usr/lib/libx.so', signature: imaSign(priv, pub, body, alg) });

  for (const [name, kp, alg] of [['RSA-2048/sha256', rsa, 'sha256'], ['ECDSA P-256/sha256', p256, 'sha256'], ['ECDSA P-384/sha384', p384, 'sha384'], ['ECDSA P-256/sha384 (digest truncated)', p256, 'sha384'], ['RSA-2048/sha1', rsa, 'sha1']] as const) {
    it(`a valid ${name} signature by a trusted key accepts a file the allowlist does not name`, () => {
      const r = appraiseIma([signed(kp.privateKey, kp.publicKey, 'lib body', alg)], policy({ trustedKeys: [pem(kp.publicKey)] }));
      expect(r).toMatchObject({ ok: true, signed: 1 });
    });
  }

  it('a certificate works as a trusted key (its subject key, the same key id)', async () => {
    const ca = await issue('CN=IMA signing', undefined, { ca: false, keyUsage: false });
    const priv = KeyObject.from(ca.keys.privateKey);
    const pub = KeyObject.from(ca.keys.publicKey);
    const certPem = ca.cert.toString('pem');
    expect(importImaTrustedKey(certPem).keyId).toBe(keyIdOf(pub));
    expect(importImaTrustedKey(pem(rsa.publicKey)).keyId).toBe(keyIdOf(rsa.publicKey));
    expect(appraiseIma([signed(priv, pub, 'lib body')], policy({ trustedKeys: [certPem] }))).toMatchObject({ ok: true, signed: 1 });
  });

  it('a signature by an untrusted key is reported (with the allowlist verdict)', () => {
    const e = signed(other.privateKey, other.publicKey, 'lib body');
    const r = appraiseIma([e], policy({ trustedKeys: [pem(p256.publicKey)] }));
    expect(r.violations.map((v) => [v.code, v.rule])).toEqual([['IMA_SIGNATURE_UNTRUSTED_KEY', 'trustedKeys'], ['IMA_PATH_NOT_ALLOWED', 'allowed["/usr/lib/libx.so"]']]);
    expect(r.violations[0]!.message).toContain(keyIdOf(other.publicKey));
  });

  it('a forged signature under a trusted key id is IMA_SIGNATURE_INVALID, even for an allowed digest', () => {
    // Signed by `other`, but labelled with the trusted key's id.
    const sig = imaSign(other.privateKey, other.publicKey, 'lib body', 'sha256', keyIdOf(p256.publicKey));
    const e = entry(1, 'ima-sig', { digest: fileDigest('lib body'), path: '/usr/lib/libx.so', signature: sig });
    const r = appraiseIma([e], policy({ trustedKeys: [pem(p256.publicKey)], allowed: { '/usr/lib/libx.so': [`sha256:${hex('lib body')}`] } }));
    expect(r.violations.map((v) => v.code)).toEqual(['IMA_SIGNATURE_INVALID']);
  });

  it('a valid signature over another digest is IMA_SIGNATURE_INVALID', () => {
    const e = entry(1, 'ima-sig', { digest: fileDigest('tampered'), path: '/usr/lib/libx.so', signature: imaSign(rsa.privateKey, rsa.publicKey, 'lib body') });
    expect(appraiseIma([e], policy({ trustedKeys: [pem(rsa.publicKey)] })).violations.map((v) => v.code)).toEqual(['IMA_SIGNATURE_INVALID', 'IMA_PATH_NOT_ALLOWED']);
  });

  it('requireSignatures: an unsigned file fails even when allowed; a signed one passes', () => {
    const r = appraiseIma([bash], policy({ requireSignatures: true }));
    expect(r.violations).toEqual([expect.objectContaining({ code: 'IMA_SIGNATURE_MISSING', rule: 'requireSignatures', path: '/usr/bin/bash' })]);
    expect(appraiseIma([signed(rsa.privateKey, rsa.publicKey, 'x')], policy({ requireSignatures: true, trustedKeys: [pem(rsa.publicKey)] })).ok).toBe(true);
  });

  it('a malformed signature header is IMA_SIGNATURE_MALFORMED', () => {
    const sig = imaSign(rsa.privateKey, rsa.publicKey, 'x');
    for (const [at, value] of [[0, 6], [1, 3], [7, 0xff]] as const) {
      const bad = sig.slice();
      bad[at] = value;
      const e = entry(1, 'ima-sig', { digest: fileDigest('x'), path: '/x', signature: bad });
      expect(appraiseIma([e], policy({ requireSignatures: true, trustedKeys: [pem(rsa.publicKey)] })).violations[0]).toMatchObject({ code: 'IMA_SIGNATURE_MALFORMED' });
      expect(() => decodeImaSignature(bad)).toThrow(expect.objectContaining({ code: 'IMA_SIGNATURE_MALFORMED' }));
    }
  });

  it.skipIf(!HAVE_REAL)('the real ima-sig signatures (ECDSA, key id a3204a9e) are reported as untrusted', () => {
    const entries = parseImaBinary(readReal('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements')).entries;
    const sig = decodeImaSignature(entries.find((e) => e.signature !== undefined)!.signature!);
    expect(sig).toMatchObject({ keyId: 'a3204a9e' });
    expect(sig.hashAlgo.name).toBe('sha256');
    const r = appraiseIma(entries, policy({ trustedKeys: [pem(p256.publicKey)], excludes: ['/'] }));
    expect(r.ok).toBe(true); // everything excluded
    const signedOnly = entries.filter((e) => e.signature !== undefined);
    const allowAll: Record<string, string[]> = {};
    const r2 = appraiseIma(signedOnly, policy({ trustedKeys: [pem(p256.publicKey)], allowed: allowAll, requireSignatures: true }));
    expect(r2.violations).toHaveLength(21);
    for (const v of r2.violations) expect(v).toMatchObject({ code: 'IMA_SIGNATURE_UNTRUSTED_KEY', rule: 'trustedKeys' });
  });
});

describe('runtime policy schema', () => {
  it('accepts the documented shape and refuses unknown keys and bad digests (POLICY_INVALID)', () => {
    expect(Value.Check(ImaRuntimePolicySchema, policy())).toBe(true);
    expect(Value.Check(ImaRuntimePolicySchema, { ...policy(), requireSignature: true })).toBe(false);
    expect(() => compileImaPolicy({ ...policy(), requireSignature: true } as ImaRuntimePolicy)).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }));
    expect(() => compileImaPolicy(policy({ allowed: { '/x': ['XYZ'] } }))).toThrow(expect.objectContaining({ code: 'POLICY_INVALID', field: '/allowed/~1x/0' }));
    expect(() => compileImaPolicy(policy({ trustedKeys: ['not a key'] }))).toThrow(expect.objectContaining({ code: 'POLICY_INVALID', field: 'trustedKeys[0]' }));
    const ed = generateKeyPairSync('ed25519');
    expect(() => compileImaPolicy(policy({ trustedKeys: [pem(ed.publicKey)] }))).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }));
  });
});

describe('checkBootAggregate', () => {
  const pcrValue = (alg: string, i: number): Uint8Array => new Uint8Array(createHash(alg).update(`pcr${i}`).digest());
  const bankOf = (alg: string): Map<number, Uint8Array> => new Map(Array.from({ length: 24 }, (_, i) => [i, pcrValue(alg, i)] as const));
  const pcrs = new Map([[TPM_ALG.SHA1, bankOf('sha1')], [TPM_ALG.SHA256, bankOf('sha256')]]);
  const aggOver = (alg: string, n: number): Uint8Array => new Uint8Array(createHash(alg).update(Buffer.concat(Array.from({ length: n }, (_, i) => pcrValue(alg, i)))).digest());
  const bootAgg = (alg: string, d: Uint8Array, template: 'ima' | 'ima-ng' = 'ima-ng'): ImaEntry => entry(0, template, { digest: { algorithm: alg, digest: d }, path: 'boot_aggregate' });

  it('sha1: the digest of PCRs 0-7 passes (rule pcr0-7), also for the legacy ima template', () => {
    expect(checkBootAggregate(bootAgg('sha1', aggOver('sha1', 8)), pcrs)).toMatchObject({ ok: true, rule: 'pcr0-7', bank: TPM_ALG.SHA1 });
    expect(checkBootAggregate(bootAgg('sha1', aggOver('sha1', 8), 'ima'), pcrs)).toMatchObject({ ok: true, rule: 'pcr0-7' });
    // PCRs 8-9 never count for SHA-1.
    expect(checkBootAggregate(bootAgg('sha1', aggOver('sha1', 10)), pcrs).ok).toBe(false);
  });

  it('sha256: PCRs 0-9 (kernels since 5.8) and PCRs 0-7 (older) both pass, and the rule says which', () => {
    expect(checkBootAggregate(bootAgg('sha256', aggOver('sha256', 10)), pcrs)).toMatchObject({ ok: true, rule: 'pcr0-9', bank: TPM_ALG.SHA256 });
    expect(checkBootAggregate(bootAgg('sha256', aggOver('sha256', 8)), pcrs)).toMatchObject({ ok: true, rule: 'pcr0-7' });
  });

  it('a mismatch is IMA_BOOT_AGGREGATE_MISMATCH with both expected values', () => {
    const r = checkBootAggregate(bootAgg('sha256', new Uint8Array(32).fill(7)), pcrs);
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISMATCH', field: 'ima[0].d-ng', expected: `${toHex(aggOver('sha256', 8))} or ${toHex(aggOver('sha256', 10))}`, actual: '07'.repeat(32) });
  });

  it('missing PCRs of the bank, or a first entry that is not boot_aggregate, is IMA_BOOT_AGGREGATE_MISSING', () => {
    const partial = new Map([[TPM_ALG.SHA256, new Map([...bankOf('sha256')].filter(([i]) => i !== 3))]]);
    expect(checkBootAggregate(bootAgg('sha256', aggOver('sha256', 10)), partial).failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISSING', actual: 'missing 3' });
    expect(checkBootAggregate(bootAgg('sha384', new Uint8Array(48)), pcrs).failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISSING' });
    expect(checkBootAggregate(bash, pcrs).failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISSING' });
  });

  it.skipIf(!HAVE_REAL)('the real ibmtss boot_aggregate is checked in the sha256 bank it names', () => {
    const first = parseImaBinary(readReal('ima', 'ibmtss-ima-sig-sha1.binary_runtime_measurements')).entries[0]!;
    const r = checkBootAggregate(first, pcrs);
    expect(r).toMatchObject({ ok: false, bank: TPM_ALG.SHA256 });
    expect(r.failures[0]).toMatchObject({ code: 'IMA_BOOT_AGGREGATE_MISMATCH', actual: toHex(first.digest.digest) });
  });
});
