/** Measuring helpers shared by the benchmarks. */

/** Runs `fn` repeatedly for about `ms` milliseconds; returns operations per second. */
export function rate(ms: number, fn: (i: number) => void): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let k = 0; k < 20; k++) fn(n++);
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

/** The median of `xs`. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/**
 * Rates of `a` and `b` measured in alternating rounds (so both see the same machine load), as
 * the median of the rounds.
 */
export function compareRates(rounds: number, ms: number, a: (i: number) => void, b: (i: number) => void): { a: number; b: number } {
  for (let i = 0; i < 200; i++) {
    a(i);
    b(i);
  }
  const ra: number[] = [];
  const rb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    ra.push(rate(ms, a));
    rb.push(rate(ms, b));
  }
  return { a: median(ra), b: median(rb) };
}
