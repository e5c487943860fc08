/** Offline TPM verification: quotes, AK templates, key import. */
export * from './keys.js';
export * from './ak.js';
export * from './quote.js';
