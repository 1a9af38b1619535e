// The dedicated worker behind backupToOpfs(): the main thread has no sync access handles, so it
// posts byte ranges here and this worker writes them into a temporary file next to the target,
// then renames that file over the target. The rename is the only step that touches the target,
// so an aborted, failed or interrupted copy (the page closed, the worker killed) leaves the
// previous file as it was. The function is turned into a blob: URL worker, so it must not use
// anything from outside its own body.

export interface WriterRequest {
  id: number;
  op: "open" | "write" | "truncate" | "commit" | "abort";
  dirs?: string[];
  name?: string;
  temp?: string;
  at?: number;
  data?: ArrayBuffer;
  size?: number;
}
export interface WriterReply {
  id: number;
  error?: { name: string; message: string };
}

export function writerMain(): void {
  interface Sah {
    write(b: Uint8Array, o: { at: number }): number;
    truncate(n: number): void;
    flush(): void;
    close(): void;
  }
  type FileHandle = FileSystemFileHandle & {
    createSyncAccessHandle(): Promise<Sah>;
    move(dir: FileSystemDirectoryHandle, name: string): Promise<void>;
  };
  const scope = self as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: unknown): void };
  let dir: FileSystemDirectoryHandle | null = null;
  let name = "";
  let temp = "";
  let file: FileHandle | null = null;
  let sah: Sah | null = null;
  let queue: Promise<void> = Promise.resolve();

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

  async function handle(m: WriterRequest): Promise<void> {
    switch (m.op) {
      case "open": {
        name = m.name!;
        temp = m.temp!;
        let d = await navigator.storage.getDirectory();
        for (const part of m.dirs!) d = await d.getDirectoryHandle(part, { create: true });
        dir = d;
        // Temp files of copies that were interrupted earlier; one still in use refuses removal.
        const prefix = `.${name}.`;
        for await (const entry of (d as unknown as { keys(): AsyncIterable<string> }).keys()) {
          if (entry.startsWith(prefix) && entry.endsWith(".sbw-tmp") && entry !== temp) await d.removeEntry(entry).catch(ignore);
        }
        file = (await d.getFileHandle(temp, { create: true })) as FileHandle;
        sah = await file.createSyncAccessHandle();
        sah.truncate(0);
        return;
      }
      case "write": {
        const bytes = new Uint8Array(m.data!);
        let n = 0;
        while (n < bytes.length) {
          const put = sah!.write(bytes.subarray(n), { at: m.at! + n });
          if (put <= 0) throw new DOMException("short write", "QuotaExceededError");
          n += put;
        }
        return;
      }
      case "truncate":
        sah!.truncate(m.size!);
        return;
      case "commit": {
        sah!.flush();
        closeHandle();
        // A journal or WAL left by a crashed writer of the old file would be "rolled back"
        // into the new one: remove them first (they fail with the file in use: SQLITE_BUSY).
        for (const extra of [`${name}-journal`, `${name}-wal`]) {
          await dir!.removeEntry(extra).catch((e: { name?: string }) => {
            if (e?.name !== "NotFoundError") throw e;
          });
        }
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
        await handle(m);
        scope.postMessage({ id: m.id } satisfies WriterReply);
      } catch (err) {
        const x = err as { name?: unknown; message?: unknown };
        if (m.op === "open" || m.op === "commit") await removeTemp();
        scope.postMessage({ id: m.id, error: { name: String(x?.name ?? "Error"), message: String(x?.message ?? err) } } satisfies WriterReply);
      }
    });
  };
}
