#!/usr/bin/env node
/** Development entry point (`npm run vouch -- …`): the same CLI through tsx. */
import { run } from './main.js';

process.exitCode = await run(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
