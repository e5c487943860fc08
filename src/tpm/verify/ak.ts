/**
 * Attestation key template checks. A quote proves something only when the key that signed it
 * cannot leave its TPM and only signs structures the TPM itself produced: a restricted signing
 * key (TPM 2.0 Library Part 1 §25.2.3) with fixedTPM, fixedParent and sensitiveDataOrigin.
 */
import { failure, type Failure } from '../../lib/failure.js';
import { TPM_ALG, TPMA_OBJECT, algName } from '../abi/constants.js';
import { describeAttributes, type TpmtPublic } from '../abi/public.js';

/** Attributes an AK must have set. */
const REQUIRED: ReadonlyArray<[keyof typeof TPMA_OBJECT, number]> = [
  ['fixedTPM', TPMA_OBJECT.fixedTPM],
  ['fixedParent', TPMA_OBJECT.fixedParent],
  ['sensitiveDataOrigin', TPMA_OBJECT.sensitiveDataOrigin],
  ['userWithAuth', TPMA_OBJECT.userWithAuth],
  ['restricted', TPMA_OBJECT.restricted],
  ['sign', TPMA_OBJECT.sign],
];

/** Attributes an AK must have clear. */
const FORBIDDEN: ReadonlyArray<[keyof typeof TPMA_OBJECT, number]> = [['decrypt', TPMA_OBJECT.decrypt]];

const SIGNING_SCHEMES: readonly number[] = [TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.ECDSA];

/** Returns every way `pub` falls short of an AK template (empty when it is a proper AK). */
export function checkAkTemplate(pub: TpmtPublic): Failure[] {
  const out: Failure[] = [];
  const field = 'TPMT_PUBLIC.objectAttributes';
  const attrs = pub.objectAttributes;
  for (const [name, bit] of REQUIRED) {
    if ((attrs & bit) === 0) {
      out.push(failure('TPM_AK_TEMPLATE_INVALID', { field: `${field}.${name}`, expected: 'set', actual: describeAttributes(attrs) }));
    }
  }
  for (const [name, bit] of FORBIDDEN) {
    if ((attrs & bit) !== 0) {
      out.push(failure('TPM_AK_TEMPLATE_INVALID', { field: `${field}.${name}`, expected: 'clear', actual: describeAttributes(attrs) }));
    }
  }
  if (pub.type !== TPM_ALG.RSA && pub.type !== TPM_ALG.ECC) {
    out.push(failure('TPM_AK_TEMPLATE_INVALID', { field: 'TPMT_PUBLIC.type', expected: 'TPM_ALG_RSA or TPM_ALG_ECC', actual: algName(pub.type) }));
  } else if (!SIGNING_SCHEMES.includes(pub.parameters.scheme.scheme)) {
    out.push(
      failure('TPM_AK_TEMPLATE_INVALID', {
        field: 'TPMT_PUBLIC.parameters.scheme',
        expected: 'TPM_ALG_RSASSA, TPM_ALG_RSAPSS or TPM_ALG_ECDSA',
        actual: algName(pub.parameters.scheme.scheme),
      }),
    );
  }
  if (pub.nameAlg === TPM_ALG.NULL || pub.nameAlg === TPM_ALG.SHA1) {
    out.push(failure('TPM_AK_TEMPLATE_INVALID', { field: 'TPMT_PUBLIC.nameAlg', expected: 'SHA-256 or stronger', actual: algName(pub.nameAlg) }));
  }
  return out;
}
