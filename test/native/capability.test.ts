import { describe, expect, it } from 'vitest';
import { decodeCapabilityData, encodeCapabilityData, TPM_CAP, type CapabilityData } from '../../src/tpm/abi/capability.js';
import { ParseError } from '../../src/lib/errors.js';

const samples: CapabilityData[] = [
  { capability: TPM_CAP.HANDLES, handles: [0x01c00002, 0x01c00016] },
  { capability: TPM_CAP.TPM_PROPERTIES, properties: [{ property: 0x105, value: 0x49424d00 }] },
  { capability: TPM_CAP.PCRS, pcrs: [{ hashAlg: 0x000b, pcrs: [0, 1, 23], sizeofSelect: 3 }] },
  { capability: TPM_CAP.ALGS, algs: [{ alg: 0x0001, attributes: 9 }] },
  { capability: TPM_CAP.ECC_CURVES, eccCurves: [3, 4] },
  { capability: TPM_CAP.PCR_PROPERTIES, pcrProperties: [{ tag: 0, pcrs: [16, 23], sizeofSelect: 3 }] },
  { capability: TPM_CAP.COMMANDS, commands: [0x0000017e] },
  { capability: TPM_CAP.PP_COMMANDS, commandCodes: [0x0000011f] },
];

describe('TPMS_CAPABILITY_DATA codec', () => {
  it('round-trips every supported capability', () => {
    for (const s of samples) {
      const bytes = encodeCapabilityData(s);
      expect(decodeCapabilityData(bytes)).toEqual(s);
      expect(encodeCapabilityData(decodeCapabilityData(bytes))).toEqual(bytes);
    }
  });

  it('rejects trailing bytes, truncation, oversized counts and unknown capabilities', () => {
    const good = encodeCapabilityData({ capability: TPM_CAP.HANDLES, handles: [1] });
    const trailing = new Uint8Array([...good, 0]);
    expect(() => decodeCapabilityData(trailing)).toThrow(expect.objectContaining({ code: 'PARSE_TRAILING_BYTES' }));
    expect(() => decodeCapabilityData(good.subarray(0, good.length - 1))).toThrow(expect.objectContaining({ code: 'PARSE_TRUNCATED' }));
    const huge = Uint8Array.from([0, 0, 0, 1, 0, 0, 0x10, 0]);
    expect(() => decodeCapabilityData(huge)).toThrow(expect.objectContaining({ code: 'PARSE_SIZE_EXCEEDED', field: 'TPMS_CAPABILITY_DATA.data.handles.count' }));
    const unknown = Uint8Array.from([0, 0, 1, 0, 0, 0, 0, 0]);
    expect(() => decodeCapabilityData(unknown)).toThrow(ParseError);
  });
});
