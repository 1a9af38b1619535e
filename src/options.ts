// Option objects: an unknown key (a misspelt option) is a TypeError, never silently ignored.

/** Throws TypeError when `options` is not an object or has a key outside `known`. */
export function checkKeys(options: unknown, known: readonly string[], where: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") throw new TypeError(`${where}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${where}: unknown option "${key}" (known: ${known.join(", ")})`);
  }
}
