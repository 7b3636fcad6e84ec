// Arithmetic on the 128-bit hash key space with BigInt: hash keys are
// decimal strings in the API, far beyond what a Number holds exactly.

export const SPACE = 1n << 128n; // the number of hash keys
export const MAX_KEY = SPACE - 1n;

const FRACTION_BITS = 53n;

// parseKey returns the BigInt of a decimal hash key string, or null when it
// is not one (any decimal integer is accepted: the server judges the range).
export function parseKey(text) {
  const t = String(text).trim();
  if (!/^\d+$/.test(t)) return null;
  return BigInt(t);
}

// fraction is where key lies in the key space, from 0 (key 0) to 1 (2^128),
// to 53 bits: exact enough to draw.
export function fraction(key) {
  return Number((key << FRACTION_BITS) / SPACE) / 2 ** 53;
}

// keyAt is the hash key at fraction f (0..1) of the key space, clamped to
// [0, MAX_KEY].
export function keyAt(f) {
  if (!(f > 0)) return 0n;
  if (f >= 1) return MAX_KEY;
  const k = (BigInt(Math.floor(f * 2 ** 53)) * SPACE) >> FRACTION_BITS;
  return k > MAX_KEY ? MAX_KEY : k;
}

// midpoint is the key that splits the range [start, end] into two halves
// of (nearly) equal size: the first key of the upper half.
export function midpoint(start, end) {
  return start + (end - start + 1n) / 2n;
}

// clamp returns k within [lo, hi].
export function clamp(k, lo, hi) {
  if (k < lo) return lo;
  if (k > hi) return hi;
  return k;
}

// share is the share of the key space [start, end] covers, as a percentage
// string.
export function share(start, end) {
  const pct = Number(((end - start + 1n) * 1000000n) / SPACE) / 10000;
  if (pct >= 10) return pct.toFixed(1) + '%';
  if (pct >= 0.01) return pct.toFixed(2) + '%';
  return '<0.01%';
}

// shortKey abbreviates a decimal key for labels: its leading digits and
// its power of ten.
export function shortKey(key) {
  const t = key.toString();
  if (t.length <= 8) return t;
  return `${t.slice(0, 4)}…e${t.length - 1}`;
}
