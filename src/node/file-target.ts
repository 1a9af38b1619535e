// fileTarget(): a replica in a directory (Node, Deno, Bun). An object is written to a temporary
// name, synced, and renamed into place, then the directory is synced: a reader sees it whole or
// not at all, and it survives a crash once put() resolved.
import { mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SQLITE_IOERR } from "../core/constants.js";
import { errorCode, SqliteError } from "../core/errors.js";
import { checkName, type ReplicaTarget } from "../ops/replica/target.js";

const TEMP = ".tmp-";

export function fileTarget(dir: string): ReplicaTarget {
  if (typeof dir !== "string" || dir === "" || dir.includes("\0")) throw new TypeError("fileTarget: dir must be a path");
  const root = resolve(dir);
  const url = pathToFileURL(root).href;
  let made = false;
  const fail = (e: unknown, what: string) => new SqliteError(`${url}: ${what}: ${(e as Error)?.message ?? e}`, errorCode(e, SQLITE_IOERR));
  const syncDir = async () => {
    const fh = await open(root, "r");
    try {
      await fh.sync();
    } catch {
      // some file systems cannot sync a directory
    } finally {
      await fh.close();
    }
  };
  return {
    url,
    async list() {
      try {
        return (await readdir(root)).filter((n) => !n.startsWith("."));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw fail(e, "listing");
      }
    },
    async get(name) {
      checkName(name);
      try {
        const b = await readFile(`${root}/${name}`);
        return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // a view: no copy
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw fail(e, `reading ${name}`);
      }
    },
    async put(name, bytes) {
      checkName(name);
      const random = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
      const temp = `${root}/${TEMP}${name}.${random}`;
      try {
        if (!made) {
          await mkdir(root, { recursive: true });
          made = true;
        }
        const fh = await open(temp, "wx");
        try {
          await fh.writeFile(bytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(temp, `${root}/${name}`);
        await syncDir();
      } catch (e) {
        await rm(temp, { force: true }).catch(() => {});
        throw fail(e, `writing ${name}`);
      }
    },
    async delete(name) {
      checkName(name);
      try {
        await unlink(`${root}/${name}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fail(e, `deleting ${name}`);
      }
    },
  };
}
