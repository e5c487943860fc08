/** TPM 2.0 structure codec: bytes ↔ typed structures, no crypto, no policy. */
export * from './constants.js';
export * from './public.js';
export * from './pcr.js';
export * from './signature.js';
export * from './attest.js';
