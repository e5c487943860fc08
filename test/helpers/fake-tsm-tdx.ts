/**
 * An emulated Linux configfs-tsm report tree for a TDX guest (provider `tdx_guest`), behind the
 * filesystem interface `collectTsmReport` takes, so the agent's real collection path
 * (src/agent/tdx.ts) runs with no trust domain. `outblob` is a synthetic TDX quote v4 whose
 * REPORTDATA is the `inblob` written, signed by the TEST-ONLY hierarchy of
 * attestation-fixtures/tdx (attestation key, PCK leaf, PCK chain in certification data type 5).
 * The tdx_guest provider has no `auxblob` (ENOENT), as on Linux.
 *
 * Behaviour emulated: `mkdir` makes an entry (generation 0); each write of `inblob` bumps
 * `generation`; `outblob` is the quote for the current inblob; `rmdir` removes the entry; `stat`
 * finds the root unless the tree is absent. Options simulate a concurrent writer, a missing tree,
 * another provider and failing reads. {@link FakeCcel} emulates the ACPI CCEL files.
 */
import { posix } from 'node:path';
import { signSyntheticTdxQuote, testTdxHierarchy, type SyntheticTdxQuoteFields, type TestTdxHierarchy } from '../../attestation-fixtures/tdx/index.js';
import type { TsmFs } from '../../src/agent/tsm.js';
import type { CcelFs } from '../../src/agent/tdx.js';
import { CCEL_DATA_PATH, CCEL_TABLE_PATH } from '../../src/agent/tdx.js';

/** Options of {@link FakeTdxTsm}. */
export interface FakeTdxTsmOptions {
  /** The emulated report root (default the real path; nothing touches the real filesystem). */
  readonly root?: string;
  /** false: the tree does not exist (every operation fails ENOENT). */
  readonly present?: boolean;
  /** The `provider` attribute (default "tdx_guest"). */
  readonly provider?: string;
  /** In each of the first `racingAttempts` entries another writer rewrites `inblob` while the quote is read. */
  readonly racingAttempts?: number;
  /** Attribute names whose reads fail with EIO (e.g. "outblob"). */
  readonly failReads?: readonly string[];
  /** What the synthetic quotes carry besides REPORTDATA (TD report fields, keys, chain). */
  readonly quoteFields?: SyntheticTdxQuoteFields;
}

interface Entry {
  inblob: Uint8Array;
  generation: number;
  raced: boolean;
}

function fsError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code, syscall: op, path });
}

const ATTRS = new Set(['inblob', 'outblob', 'provider', 'generation', 'privlevel', 'privlevel_floor']);

/** The emulated configfs-tsm of a TD; pass it as `fs` (and its `root`) to the agent's TDX options. */
export class FakeTdxTsm implements TsmFs {
  readonly root: string;
  readonly hierarchy: TestTdxHierarchy;
  /** Names of every entry ever made, in order. */
  readonly created: string[] = [];
  /** Names of every entry removed, in order. */
  readonly removed: string[] = [];
  /** Quotes handed out through `outblob`, in order. */
  readonly quotes: Uint8Array[] = [];
  readonly #opts: FakeTdxTsmOptions;
  readonly #entries = new Map<string, Entry>();
  #raced = 0;

  constructor(opts: FakeTdxTsmOptions = {}, hierarchy: TestTdxHierarchy = testTdxHierarchy()) {
    this.#opts = opts;
    this.root = posix.normalize(opts.root ?? '/sys/kernel/config/tsm/report');
    this.hierarchy = hierarchy;
  }

  /** Names of the entries that still exist. */
  get live(): string[] {
    return [...this.#entries.keys()];
  }

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
    this.#entries.set(entry, { inblob: new Uint8Array(0), generation: 0, raced: false });
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
      // tdx_guest has no privilege levels: the kernel refuses the write.
      throw fsError('EINVAL', 'write', path);
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
        return new Uint8Array(Buffer.from(`${this.#opts.provider ?? 'tdx_guest'}\n`));
      case 'outblob': {
        const reportData = new Uint8Array(64);
        reportData.set(e.inblob);
        const f = this.#opts.quoteFields ?? {};
        const quote = signSyntheticTdxQuote({ ...f, td: { ...f.td, reportData } }, this.hierarchy);
        this.quotes.push(quote);
        if (!e.raced && this.#raced < (this.#opts.racingAttempts ?? 0)) {
          e.raced = true;
          this.#raced++;
          e.inblob = new Uint8Array(64).fill(0xee);
          e.generation++;
        }
        return quote;
      }
      case 'inblob':
        throw fsError('EACCES', 'open', path);
      default:
        // No auxblob for tdx_guest, and no other attribute.
        throw fsError('ENOENT', 'open', path);
    }
  }
}

/** The ACPI CCEL files of a TD (table and log area), for `readCcel`'s `fs`; both absent when not given. */
export class FakeCcel implements CcelFs {
  readonly #files: Map<string, Uint8Array>;

  constructor(ccel?: { readonly table?: Uint8Array; readonly data?: Uint8Array }) {
    this.#files = new Map();
    if (ccel?.table !== undefined) this.#files.set(CCEL_TABLE_PATH, ccel.table);
    if (ccel?.data !== undefined) this.#files.set(CCEL_DATA_PATH, ccel.data);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const b = this.#files.get(path);
    if (b === undefined) throw fsError('ENOENT', 'open', path);
    return b;
  }
}
