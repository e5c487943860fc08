/**
 * One software TPM per test file: a private copy of a once-manufactured TPM (EK certificates
 * from a local CA), started on free loopback ports. Call `dispose()` in afterAll.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { provisionSwtpm, startSwtpm, type ManufacturedSwtpm, type RunningSwtpm } from '../../swtpm/index.js';

export interface TestSwtpm extends ManufacturedSwtpm {
  /** TCTI of the running instance (changes on restart). */
  readonly tcti: string;
  /** The running process (changes on restart). */
  readonly running: RunningSwtpm;
  /** Stops swtpm and starts it again on the same state (a TPM power cycle, as after a reboot). */
  restart(): Promise<void>;
  /** Stops swtpm and removes its directory. */
  dispose(): Promise<void>;
}

/**
 * Provisions and starts a private software TPM. Copies of the shared manufactured template have
 * the same EK; `distinct` manufactures a new TPM (its own EK seed and EK CA, about a second) for
 * tests that need another physical TPM.
 */
export async function startTestSwtpm(opts: { readonly distinct?: boolean } = {}): Promise<TestSwtpm> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-swtpm-'));
  const m = await provisionSwtpm({ dir: join(dir, 'tpm'), ...(opts.distinct === true ? { cacheDir: join(dir, 'template') } : {}) });
  let running = await startSwtpm({ stateDir: m.stateDir });
  return {
    ...m,
    get tcti() {
      return running.tcti;
    },
    get running() {
      return running;
    },
    async restart() {
      await running.stop();
      running = await startSwtpm({ stateDir: m.stateDir });
    },
    async dispose() {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
