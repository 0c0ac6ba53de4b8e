// Time-ordered sample ids: UUID version 7 (RFC 9562 §5.7), as the Python client makes them
// (offline_sync/ids.py says why: the server's indexes stay fast at a million samples, where
// random v4 ids slow every push several-fold). 48 bits of Unix milliseconds, then 74 random
// bits; on one phone the ids only ever increase, even when the clock stands still or steps back.

const RAND_BITS = 74n;
let last = { ms: 0n, rand: 0n };

function randomBits(bits) {
  const bytes = crypto.getRandomValues(new Uint8Array(10)); // 80 bits
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value & ((1n << bits) - 1n);
}

export function uuid7(now = Date.now()) {
  let ms = BigInt(now);
  let rand;
  if (ms > last.ms) {
    rand = randomBits(RAND_BITS);
  } else {
    ms = last.ms;
    rand = last.rand + 1n;
    if (rand >> RAND_BITS) { ms += 1n; rand = randomBits(RAND_BITS - 1n); }
  }
  last = { ms, rand };
  const value = ((ms & ((1n << 48n) - 1n)) << 80n) | (7n << 76n) | ((rand >> 62n) << 64n)
    | (2n << 62n) | (rand & ((1n << 62n) - 1n));
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
