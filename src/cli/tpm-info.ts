/**
 * `vouch tpm info`: what a TPM says about itself. The agent's TPM collector (and with it the
 * native binding) is imported lazily, so every other command works without the TSS libraries.
 */
import { EXIT, type CliIo } from './main.js';

export async function tpmInfoCommand(opts: { tcti: string; json?: boolean }, io: CliIo): Promise<number> {
  const { describeTpm } = await import('../agent/tpm.js');
  const info = await describeTpm(opts.tcti);
  if (opts.json === true) io.out(`${JSON.stringify(info, null, 2)}\n`);
  else {
    io.out(`manufacturer: ${info.manufacturer}\n`);
    io.out(`firmware:     ${info.firmwareVersion}\n`);
    io.out(`banks:        ${info.banks.map((b) => `${b.bank}(${b.pcrs.length})`).join(' ')}\n`);
    for (const ek of info.ekCertificates) io.out(`ek cert:      NV 0x${ek.index.toString(16)} ${ek.kind}: ${ek.subject || '(empty subject)'} — issuer ${ek.issuer}\n`);
    if (info.ekCertificates.length === 0) io.out('ek cert:      none in NV\n');
  }
  return EXIT.ok;
}
