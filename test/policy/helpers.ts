/** Shared fixtures for the policy tests. */
export const Z32 = '00'.repeat(32);
export const A32 = 'aa'.repeat(32);
export const B32 = 'bb'.repeat(32);
export const C48 = 'cc'.repeat(48);

/** A valid YAML policy; `extra` lines are appended under the given section markers. */
export function yamlPolicy(over: { tpm?: string; artifact?: string; top?: string } = {}): string {
  return [
    'apiVersion: vouch/v1',
    'kind: AttestationPolicy',
    'id: test-policy',
    'description: a policy for tests',
    over.top ?? '',
    'tpm:',
    over.tpm ??
      [
        '  banks: [sha256]',
        '  pcrs:',
        '    sha256:',
        `      "0": ["${Z32}", "${A32}"]`,
        `      "4": ["${B32}"]`,
        '      "7": any',
      ].join('\n'),
    'artifact:',
    over.artifact ?? ['  lifetimeSeconds: 300', '  audience: [key-broker]'].join('\n'),
    '',
  ].join('\n');
}
