#!/usr/bin/env node
// The installed `vouch` command: runs the compiled CLI (npm ci builds dist/ in `prepare`).
import { run } from '../dist/src/cli/main.js';

const status = await run(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
process.exitCode = status;
