/**
 * An emulated Linux configfs-tsm report tree (Documentation/ABI/testing/configfs-tsm) for tests,
 * behind the filesystem interface `collectTsmReport` takes, so the real collector code path runs
 * with no confidential guest. Reports are synthetic SEV-SNP reports signed with the TEST-ONLY VCEK
 * of attestation-fixtures/snp; `auxblob` is a certificate table holding the TEST-ONLY VCEK, ASK
 * and ARK.
 *
 * Behaviour emulated: `mkdir` makes an entry (generation 0); each write of `inblob` or `privlevel`
 * bumps `generation`; `outblob` is the report for the current inblob/privlevel; `provider` names
 * the driver; `rmdir` removes the entry; `stat` finds the root unless the tree is absent. Options
 * simulate a concurrent writer (the generation and inblob change while the blobs are read), a
 * missing tree, and failing reads.
 */
import { sign } from 'node:crypto';
import { posix } from 'node:path';
import { testSnpChain, type TestSnpChain } from '../../attestation-fixtures/snp/index.js';
import { decodeSnpReport, encodeSnpReport, type SnpReport } from '../../src/snp/abi.js';
import { SNP_CERT_GUID, encodeSnpCertTable } from '../../src/snp/certtable.js';
import type { TsmFs } from '../../src/agent/tsm.js';

/** Milan TCB_VERSION: byte 0 BOOT_LOADER, 1 TEE, 6 SNP, 7 MICROCODE. */
export function milanTcb(bl: number, tee: number, snp: number, ucode: number): bigint {
  return BigInt(bl) | (BigInt(tee) << 8n) | (BigInt(snp) << 48n) | (BigInt(ucode) << 56n);
}

/** The fields of a synthetic report under the TEST-ONLY chain, with `over` applied. */
export function syntheticSnpFields(chain: TestSnpChain, over: Partial<SnpReport> = {}): SnpReport {
  const tcb = milanTcb(chain.tcb.bl, chain.tcb.tee, chain.tcb.snp, chain.tcb.ucode);
  return {
    version: 3,
    guestSvn: 1,
    policy: 0x30000n,
    familyId: new Uint8Array(16),
    imageId: new Uint8Array(16),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: tcb,
    platformInfo: 1n,
    authorKeyEn: false,
    maskChipKey: false,
    signingKey: 0,
    reportData: new Uint8Array(64),
    measurement: new Uint8Array(48).fill(1),
    hostData: new Uint8Array(32),
    idKeyDigest: new Uint8Array(48),
    authorKeyDigest: new Uint8Array(48),
    reportId: new Uint8Array(32).fill(2),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: { family: 0x19, model: 0x01, stepping: 1 },
    chipId: chain.chipId,
    committedTcb: tcb,
    currentVersion: { major: 1, minor: 55, build: 20 },
    committedVersion: { major: 1, minor: 55, build: 20 },
    launchTcb: tcb,
    signature: { r: new Uint8Array(72), s: new Uint8Array(72) },
    ...over,
  };
}

/** Encodes `fields`, signs bytes 0x000–0x29F with the TEST-ONLY VCEK key, stores R/S little-endian. */
export function signSyntheticSnpReport(chain: TestSnpChain, fields: SnpReport): Uint8Array {
  const bytes = encodeSnpReport(fields);
  const sig = sign('sha384', bytes.subarray(0, 0x2a0), { key: chain.vcekPrivateKey, dsaEncoding: 'ieee-p1363' });
  const r = new Uint8Array(72);
  const s = new Uint8Array(72);
  r.set(Uint8Array.from(sig.subarray(0, 48)).reverse());
  s.set(Uint8Array.from(sig.subarray(48, 96)).reverse());
  return encodeSnpReport({ ...decodeSnpReport(bytes), signature: { r, s } });
}

/** Options of {@link FakeTsm}. */
export interface FakeTsmOptions {
  /** The emulated report root (default the real path; nothing touches the real filesystem). */
  readonly root?: string;
  /** false: the tree does not exist (every operation fails ENOENT), as on an old kernel. */
  readonly present?: boolean;
  /** The `provider` attribute (default "sev_guest"). */
  readonly provider?: string;
  /** false: no `auxblob` attribute (ENOENT), as on kernels before auxblob support. */
  readonly auxblob?: boolean;
  /**
   * How many requests a concurrent writer races: in each of the first `racingAttempts` entries,
   * another writer rewrites `inblob` while the blobs are read (generation moves). Infinity: every one.
   */
  readonly racingAttempts?: number;
  /** Attribute names whose reads fail with EIO (e.g. "outblob"). */
  readonly failReads?: readonly string[];
  /** Fields the synthetic reports override. */
  readonly reportFields?: Partial<SnpReport>;
}

interface Entry {
  inblob: Uint8Array;
  privlevel: number;
  generation: number;
  outblobReads: number;
  raced: boolean;
}

function fsError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code, syscall: op, path });
}

const ATTRS = new Set(['inblob', 'outblob', 'auxblob', 'provider', 'generation', 'privlevel', 'privlevel_floor']);

/** The emulated configfs-tsm; pass it as `fs` to `collectTsmReport`. */
export class FakeTsm implements TsmFs {
  readonly root: string;
  readonly chain: TestSnpChain;
  /** Names of every entry ever made, in order. */
  readonly created: string[] = [];
  /** Names of every entry removed, in order. */
  readonly removed: string[] = [];
  /** Reports handed out through `outblob`, in order. */
  readonly reports: Uint8Array[] = [];
  readonly #opts: FakeTsmOptions;
  readonly #entries = new Map<string, Entry>();
  #raced = 0;

  constructor(opts: FakeTsmOptions = {}, chain: TestSnpChain = testSnpChain()) {
    this.#opts = opts;
    this.root = posix.normalize(opts.root ?? '/sys/kernel/config/tsm/report');
    this.chain = chain;
  }

  /** Names of the entries that still exist. */
  get live(): string[] {
    return [...this.#entries.keys()];
  }

  /** The certificate table `auxblob` returns: VCEK, ASK, ARK. */
  certTable(): Uint8Array {
    return encodeSnpCertTable([
      { guid: SNP_CERT_GUID.vcek, data: this.chain.vcek },
      { guid: SNP_CERT_GUID.ask, data: this.chain.ask },
      { guid: SNP_CERT_GUID.ark, data: this.chain.ark },
    ]);
  }

  /** Splits `path` into entry and attribute below the root; fails ENOENT when the tree is absent. */
  #locate(op: string, path: string): { entry: string; attr?: string } {
    const p = posix.normalize(path);
    if (this.#opts.present === false || !p.startsWith(`${this.root}/`)) throw fsError('ENOENT', op, path);
    const parts = p.slice(this.root.length + 1).split('/');
    if (parts.length === 1 && parts[0] !== '') return { entry: parts[0] as string };
    if (parts.length === 2 && parts[0] !== '' && parts[1] !== '') return { entry: parts[0] as string, attr: parts[1] as string };
    throw fsError('ENOENT', op, path);
  }

  #entry(op: string, path: string, name: string): Entry {
    const e = this.#entries.get(name);
    if (e === undefined) throw fsError('ENOENT', op, path);
    return e;
  }

  /** Succeeds for the root and for paths in live entries; ENOENT otherwise, and always when the tree is absent. */
  async stat(path: string): Promise<unknown> {
    const p = posix.normalize(path);
    if (this.#opts.present !== false && p === this.root) return {};
    const { entry } = this.#locate('stat', path);
    this.#entry('stat', path, entry);
    return {};
  }

  async mkdir(path: string): Promise<unknown> {
    const { entry, attr } = this.#locate('mkdir', path);
    if (attr !== undefined) throw fsError('EPERM', 'mkdir', path);
    if (this.#entries.has(entry)) throw fsError('EEXIST', 'mkdir', path);
    this.#entries.set(entry, { inblob: new Uint8Array(0), privlevel: 0, generation: 0, outblobReads: 0, raced: false });
    this.created.push(entry);
    return undefined;
  }

  async rmdir(path: string): Promise<void> {
    const { entry, attr } = this.#locate('rmdir', path);
    if (attr !== undefined) throw fsError('ENOTDIR', 'rmdir', path);
    this.#entry('rmdir', path, entry);
    this.#entries.delete(entry);
    this.removed.push(entry);
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const { entry, attr } = this.#locate('open', path);
    const e = this.#entry('open', path, entry);
    const bytes = typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'utf8')) : Uint8Array.from(data);
    if (attr === 'inblob') {
      if (bytes.length > 64) throw fsError('EINVAL', 'write', path);
      e.inblob = bytes;
      e.generation++;
    } else if (attr === 'privlevel') {
      const v = Number(Buffer.from(bytes).toString('utf8').trim());
      if (!Number.isInteger(v) || v < 0 || v > 3) throw fsError('EINVAL', 'write', path);
      e.privlevel = v;
      e.generation++;
    } else if (attr !== undefined && ATTRS.has(attr)) {
      throw fsError('EACCES', 'open', path);
    } else {
      throw fsError('ENOENT', 'open', path);
    }
  }

  async readFile(path: string): Promise<Uint8Array> {
    const { entry, attr } = this.#locate('open', path);
    const e = this.#entry('open', path, entry);
    if (attr === undefined) throw fsError('EISDIR', 'read', path);
    if (this.#opts.failReads?.includes(attr) === true) throw fsError('EIO', 'read', path);
    switch (attr) {
      case 'generation':
        return new Uint8Array(Buffer.from(`${e.generation}\n`));
      case 'provider':
        return new Uint8Array(Buffer.from(`${this.#opts.provider ?? 'sev_guest'}\n`));
      case 'privlevel_floor':
        return new Uint8Array(Buffer.from('0\n'));
      case 'outblob': {
        e.outblobReads++;
        const report = this.#report(e);
        this.reports.push(report);
        // A concurrent writer rewrites inblob right after this read: generation moves.
        if (!e.raced && this.#raced < (this.#opts.racingAttempts ?? 0)) {
          e.raced = true;
          this.#raced++;
          e.inblob = new Uint8Array(64).fill(0xee);
          e.generation++;
        }
        return report;
      }
      case 'auxblob':
        if (this.#opts.auxblob === false) throw fsError('ENOENT', 'open', path);
        return this.certTable();
      case 'inblob':
      case 'privlevel':
        throw fsError('EACCES', 'open', path);
      default:
        throw fsError('ENOENT', 'open', path);
    }
  }

  #report(e: Entry): Uint8Array {
    const reportData = new Uint8Array(64);
    reportData.set(e.inblob);
    return signSyntheticSnpReport(this.chain, syntheticSnpFields(this.chain, { ...this.#opts.reportFields, reportData, vmpl: e.privlevel }));
  }
}
