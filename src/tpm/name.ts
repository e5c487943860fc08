/**
 * TPM object names (TPM 2.0 Library Part 1 §16): name = nameAlg (u16) ‖ H_nameAlg(TPMT_PUBLIC).
 */
import { createHash } from 'node:crypto';
import { concatBytes, u16be } from '../lib/bytes.js';
import { ParseError } from '../lib/errors.js';
import { algName, hashById } from './abi/constants.js';
import { encodeTpmtPublic, type TpmtPublic } from './abi/public.js';

/** The TPM name of a public area, computed over its exact wire bytes. */
export function tpmName(pub: TpmtPublic): Uint8Array {
  const h = hashById(pub.nameAlg);
  if (h === undefined) {
    throw new ParseError('PARSE_UNSUPPORTED_ALGORITHM', `TPMT_PUBLIC.nameAlg ${algName(pub.nameAlg)} cannot compute a name`, {
      field: 'TPMT_PUBLIC.nameAlg',
    });
  }
  const digest = createHash(h.nodeName).update(encodeTpmtPublic(pub)).digest();
  return concatBytes(u16be(pub.nameAlg), digest);
}
