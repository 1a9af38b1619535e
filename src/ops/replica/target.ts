// Where a replica's objects go: a flat set of named, immutable byte objects. fileTarget() (a
// directory: src/node/file-target.ts), s3Target() (any S3-compatible service: s3.ts) and
// opfsTarget() (browsers) implement it; so can an application, for any other store.

export interface ReplicaTarget {
  /** Where the objects go, for messages and the lease: "file:///dir", "s3://bucket/prefix". */
  readonly url: string;
  /** The names of every object in the target, in any order. */
  list(): Promise<string[]>;
  /** An object's bytes, or null when there is no such object. */
  get(name: string): Promise<Uint8Array | null>;
  /** Stores an object whole: a reader sees all of it or none of it (a new object or the old one). */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** Removes an object; no error when there is none. */
  delete(name: string): Promise<void>;
}

/** Throws TypeError unless `t` has the methods of a ReplicaTarget. */
export function checkTarget(t: unknown, where: string): asserts t is ReplicaTarget {
  const x = t as Partial<ReplicaTarget> | null;
  if (x === null || typeof x !== "object" || typeof x.url !== "string"
    || !(["list", "get", "put", "delete"] as const).every((m) => typeof x[m] === "function")) {
    throw new TypeError(`${where}: target must be a ReplicaTarget (fileTarget(), s3Target(), opfsTarget(), or an object with url, list, get, put and delete)`);
  }
}

/** An object name as a target accepts it: letters, digits, "._-", not starting with ".". */
export function checkName(name: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) throw new TypeError(`not a replica object name: ${JSON.stringify(name)}`);
}
