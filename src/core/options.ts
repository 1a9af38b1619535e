// Option objects: an unknown key (a misspelt option) is a TypeError, never silently ignored.

/** How long a busy database (or OPFS file) is waited for by default, ms. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** Throws TypeError when `options` is not an object or has a key outside `known`. */
export function checkKeys(options: unknown, known: readonly string[], where: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") throw new TypeError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${where}: unknown option "${key}" (known: ${known.join(", ")})`);
  }
}
