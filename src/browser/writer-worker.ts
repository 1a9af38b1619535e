// The dedicated worker behind backupToOpfs(): the main thread has no sync access handles, so it
// posts byte ranges here and this worker writes them, in the order posted, one of two ways:
// - a full copy goes into a temporary file next to the target ("open"), which then replaces the
//   target in one rename ("commit"). The rename is the only step that touches the target, so an
//   aborted, failed or interrupted copy (the page closed, the worker killed) leaves the previous
//   file as it was;
// - an incremental backup writes the target itself and its rollback journal ("openInPlace",
//   then requests naming the file), as SQLite's pager issues them, syncs included: the journal
//   is flushed before the database is written, so an interrupted copy leaves a hot journal that
//   the next open rolls back. After the first failure every later write is refused, so nothing
//   reaches the database that an unwritten journal would not undo.
// The function is turned into a blob: URL worker, so it must not use anything from outside its
// own body.

export interface WriterRequest {
  id: number;
  op: "open" | "openInPlace" | "read" | "write" | "truncate" | "flush" | "removeJournal" | "commit" | "abort" | "close";
  /** In place: which file a write, truncate or flush is for. */
  file?: "db" | "journal";
  dirs?: string[];
  name?: string;
  temp?: string;
  at?: number;
  data?: ArrayBuffer;
  /** write, read: how many bytes of data (read: the buffer to read into); truncate: the new size. */
  size?: number;
  /** write: several writes in one, [at, length] of each, their bytes back to back in data (at is unused). */
  ranges?: number[];
}
export interface WriterReply {
  id: number;
  error?: { name: string; message: string };
  /** openInPlace: the target's size (0: missing or empty); read: the bytes' count. */
  size?: number;
  /** openInPlace: the target's first 64 KiB; read: the bytes; write: its buffer, given back. */
  data?: ArrayBuffer;
  /** openInPlace: a non-empty -journal or -wal lies beside the target. */
  sides?: boolean;
}

/** The worker's script. The browser bundle has it as a string made at build time (rollup.config.mjs),
 * so that the bundler of an app (keepNames' helpers, async lowered to generators) cannot reach into it. */
export function writerScript(): string {
  return `(${writerMain.toString()})()`;
}

export function writerMain(): void {
  interface Sah {
    read(b: Uint8Array, o: { at: number }): number;
    write(b: Uint8Array, o: { at: number }): number;
    truncate(n: number): void;
    getSize(): number;
    flush(): void;
    close(): void;
  }
  type FileHandle = FileSystemFileHandle & {
    createSyncAccessHandle(): Promise<Sah>;
    move(dir: FileSystemDirectoryHandle, name: string): Promise<void>;
  };
  const scope = self as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown, transfer?: Transferable[]): void };
  let dir: FileSystemDirectoryHandle | null = null;
  let name = "";
  let temp = "";
  let file: FileHandle | null = null;
  let sah: Sah | null = null;
  let queue: Promise<void> = Promise.resolve();
  // In place: the target's and its journal's handles (the journal's opened at its first write),
  // and the first failure, which every later request but "close" repeats.
  let inPlace: { db: Sah; journal: Sah | null; failed: unknown } | null = null;

  const ignore = () => {};
  const closeHandle = () => {
    const h = sah;
    sah = null;
    h?.close();
  };
  const removeTemp = async () => {
    closeHandle();
    if (dir && temp) await dir.removeEntry(temp).catch(ignore);
  };

  const missing = (e: { name?: string }) => {
    if (e?.name !== "NotFoundError") throw e;
  };
  const writeAll = (h: Sah, bytes: Uint8Array, at: number) => {
    for (let n = 0; n < bytes.length;) {
      const put = h.write(bytes.subarray(n), { at: at + n });
      if (put <= 0) throw new DOMException("short write", "QuotaExceededError");
      n += put;
    }
  };
  const closeInPlace = () => {
    const p = inPlace;
    inPlace = null;
    try {
      p?.journal?.close();
    } finally {
      p?.db.close();
    }
  };
  /** Removes the temp files of copies that were interrupted earlier (one still in use refuses). */
  const sweep = async (d: FileSystemDirectoryHandle) => {
    const prefix = `.${name}.`;
    for await (const entry of (d as unknown as { keys(): AsyncIterable<string> }).keys()) {
      if (entry.startsWith(prefix) && entry.endsWith(".sbw-tmp") && entry !== temp) await d.removeEntry(entry).catch(ignore);
    }
  };
  /** The handle a write, truncate or flush is for. */
  async function target(m: WriterRequest): Promise<Sah> {
    if (!inPlace) return sah!;
    if (m.file === "db") return inPlace.db;
    inPlace.journal ??= await ((await dir!.getFileHandle(`${name}-journal`, { create: true })) as FileHandle).createSyncAccessHandle();
    return inPlace.journal;
  }

  async function handle(m: WriterRequest): Promise<Omit<WriterReply, "id"> | void> {
    if (inPlace?.failed && m.op !== "close") throw inPlace.failed;
    switch (m.op) {
      case "openInPlace": {
        name = m.name!;
        let d = await navigator.storage.getDirectory();
        try {
          for (const part of m.dirs!) d = await d.getDirectoryHandle(part);
          file = (await d.getFileHandle(name)) as FileHandle;
        } catch (e) {
          missing(e as { name?: string });
          return { size: 0 };
        }
        dir = d;
        await sweep(d);
        let sides = false;
        for (const suffix of ["-journal", "-wal"]) {
          const side = await d.getFileHandle(name + suffix).then((h) => h.getFile(), () => null);
          sides ||= (side?.size ?? 0) > 0;
        }
        const db = await file.createSyncAccessHandle();
        inPlace = { db, journal: null, failed: null };
        const size = db.getSize();
        const head = new Uint8Array(Math.min(size, 64 << 10));
        db.read(head, { at: 0 });
        return { size, data: head.buffer, sides };
      }
      case "read": { // into the buffer sent (or a new one), which goes back with the bytes
        const data = m.data ?? new ArrayBuffer(m.size!);
        const n = inPlace!.db.read(new Uint8Array(data, 0, m.size!), { at: m.at! });
        return { size: n, data };
      }
      case "flush":
        (await target(m)).flush();
        return;
      case "removeJournal":
        if (inPlace!.journal) {
          const j = inPlace!.journal;
          inPlace!.journal = null;
          j.close();
        }
        await dir!.removeEntry(`${name}-journal`).catch(missing);
        return;
      case "close":
        if (inPlace && !inPlace.failed) inPlace.db.flush();
        closeInPlace();
        return;
      case "open": {
        name = m.name!;
        temp = m.temp!;
        let d = await navigator.storage.getDirectory();
        for (const part of m.dirs!) d = await d.getDirectoryHandle(part, { create: true });
        dir = d;
        await sweep(d);
        file = (await d.getFileHandle(temp, { create: true })) as FileHandle;
        sah = await file.createSyncAccessHandle();
        sah.truncate(0);
        return;
      }
      case "write": { // the bytes are the first `size` of the buffer, which goes back for reuse
        const h = await target(m);
        const ranges = m.ranges ?? [m.at!, m.size!];
        for (let i = 0, from = 0; i < ranges.length; from += ranges[i + 1]!, i += 2) {
          writeAll(h, new Uint8Array(m.data!, from, ranges[i + 1]), ranges[i]!);
        }
        return { data: m.data };
      }
      case "truncate":
        (await target(m)).truncate(m.size!);
        return;
      case "commit": {
        sah!.flush();
        closeHandle();
        // A journal or WAL left by a crashed writer of the old file would be "rolled back"
        // into the new one: remove them first (they fail with the file in use: SQLITE_BUSY).
        for (const extra of [`${name}-journal`, `${name}-wal`]) await dir!.removeEntry(extra).catch(missing);
        await file!.move(dir!, name);
        temp = "";
        return;
      }
      case "abort":
        await removeTemp();
        return;
    }
  }

  scope.onmessage = (e: MessageEvent) => {
    const m = e.data as WriterRequest;
    queue = queue.then(async () => {
      try {
        const reply: WriterReply = { ...(await handle(m)), id: m.id };
        scope.postMessage(reply, reply.data ? [reply.data] : []);
      } catch (err) {
        const x = err as { name?: unknown; message?: unknown };
        if (m.op === "open" || m.op === "commit") await removeTemp();
        if (inPlace) inPlace.failed ??= err;
        scope.postMessage({ id: m.id, error: { name: String(x?.name ?? "Error"), message: String(x?.message ?? err) } } satisfies WriterReply);
      }
    });
  };
}
