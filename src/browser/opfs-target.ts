// opfsTarget(): a replica in an OPFS directory (browsers: window and workers). An object is
// written to a temporary name through createWritable() (whose close() commits it) and then moved
// to its name: a reader sees it whole or not at all. The lease, the one object put again, is
// replaced through createWritable() on its own handle, which is atomic as well.
import { SQLITE_IOERR } from "../core/constants.js";
import { errorCode, SqliteError } from "../core/errors.js";
import { checkName, type ReplicaTarget } from "../ops/replica/target.js";
import { errorText, opfsDirectory, requireOpfs, splitOpfsPath } from "./dom.js";

const TEMP = ".tmp-";

/** FileSystemHandle.move(), which TypeScript's DOM lib does not declare. */
interface MovableHandle extends FileSystemFileHandle {
  move(dir: FileSystemDirectoryHandle, name: string): Promise<void>;
}

const notFound = (e: unknown) => (e as { name?: string })?.name === "NotFoundError";

export function opfsTarget(dir: string): ReplicaTarget {
  if (typeof dir !== "string") throw new TypeError("opfsTarget: dir must be a path");
  const { dirs } = splitOpfsPath(`${dir}/-`);
  if (dirs.length === 0) throw new TypeError(`opfsTarget: dir must name a directory below the OPFS root, not "${dir}"`);
  const url = `opfs:///${dirs.join("/")}`;
  const fail = (e: unknown, what: string) => (e instanceof SqliteError ? e : new SqliteError(`${url}: ${what}: ${errorText(e)}`, errorCode(e, SQLITE_IOERR)));
  let made: FileSystemDirectoryHandle | null = null;
  /** The directory, or null when it does not exist (and `create` is false). */
  const directory = async (create: boolean): Promise<FileSystemDirectoryHandle | null> => {
    if (made) return made;
    await requireOpfs("opfsTarget");
    try {
      return (made = await opfsDirectory(dirs, create));
    } catch (e) {
      if (!create && notFound(e)) return null;
      throw e;
    }
  };
  const write = async (handle: FileSystemFileHandle, bytes: Uint8Array) => {
    const w = await handle.createWritable();
    try {
      await w.write(bytes as Uint8Array<ArrayBuffer>);
      await w.close();
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
  };
  return {
    url,
    async list() {
      try {
        const d = await directory(false);
        if (d === null) return [];
        const names: string[] = [];
        for await (const [name, h] of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
          if (h.kind === "file" && !name.startsWith(".")) names.push(name);
        }
        return names;
      } catch (e) {
        throw fail(e, "listing");
      }
    },
    async get(name) {
      checkName(name);
      try {
        const d = await directory(false);
        if (d === null) return null;
        const file = await (await d.getFileHandle(name)).getFile();
        return new Uint8Array(await file.arrayBuffer());
      } catch (e) {
        if (notFound(e)) return null;
        throw fail(e, `reading ${name}`);
      }
    },
    async put(name, bytes) {
      checkName(name);
      let temp: string | null = null;
      let d: FileSystemDirectoryHandle | null = null;
      try {
        d = (await directory(true))!;
        const existing = await d.getFileHandle(name).catch((e) => {
          if (notFound(e)) return null;
          throw e;
        });
        if (existing !== null) return await write(existing, bytes);
        const random = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
        temp = `${TEMP}${name}.${random}`;
        const handle = await d.getFileHandle(temp, { create: true });
        await write(handle, bytes);
        await (handle as MovableHandle).move(d, name);
        temp = null;
      } catch (e) {
        if (temp !== null) await d?.removeEntry(temp).catch(() => {});
        throw fail(e, `writing ${name}`);
      }
    },
    async delete(name) {
      checkName(name);
      try {
        const d = await directory(false);
        if (d !== null) await d.removeEntry(name);
      } catch (e) {
        if (!notFound(e)) throw fail(e, `deleting ${name}`);
      }
    },
  };
}
