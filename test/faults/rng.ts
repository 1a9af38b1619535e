// A deterministic PRNG, with no imports, for every runtime's tests.

/** Deterministic PRNG (mulberry32) so a failing seed can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SEED = knob("SBW_SEED", 20240601);

/** The native CLI's verdict on a file: integrity_check and a content hash (.sha3sum). */
export function judge(file: string): { integrity: string; sha: string } {
  const out = execFileSync("sqlite3", ["-batch", file, "PRAGMA integrity_check", ".sha3sum"], { encoding: "utf8" });
  const lines = out.trim().split("\n");
  const sha = lines.pop()!;
  return { integrity: lines.join("\n"), sha };
}
