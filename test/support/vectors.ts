/** Deterministic synthetic embeddings: unit vectors from a seed, and near neighbours of them. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 0xffffffff) * 2 - 1;
  };
}

function normalise(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

export function unitVector(seed: number): Float32Array {
  const next = rng(seed);
  return normalise(Float32Array.from({ length: 384 }, next));
}

/** A vector at roughly `distance` (cosine) from `v`, with its own noise seed. */
export function nearVector(v: Float32Array, seed: number, distance = 0.02): Float32Array {
  const noise = unitVector(seed);
  const w = Math.sqrt(2 * distance);
  return normalise(v.map((x, i) => x + w * (noise[i] as number)));
}

export function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return 1 - dot;
}
