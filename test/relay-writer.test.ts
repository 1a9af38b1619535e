// The main-thread end of backupToOpfs's writer worker (src/browser/opfs.ts OpfsWriter), with a
// stand-in for the worker that records what it is sent: small writes are batched, but the worker
// must still receive every write, flush and truncate in the order the relay made them (a journal
// flushed before its records arrive would let the database's pages reach OPFS unprotected).
// The worker's side of a batch (writer-worker.ts) is exercised in Chromium by test/browser.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { OpfsWriter } from "../src/browser/opfs.js";
import type { WriterRequest } from "../src/browser/writer-worker.js";

/**
 * A worker stand-in: keeps what it was sent (transferred, as postMessage does) and answers every
 * request, giving a buffer back; with `dead`, answers nothing (its `fail()` fires the error event).
 */
function standIn({ size = 1 << 20, dead = false } = {}) {
  const sent: WriterRequest[] = [];
  const worker = {
    onmessage: null as ((e: { data: unknown }) => void) | null,
    onerror: null as ((e: { message: string; preventDefault(): void }) => void) | null,
    postMessage(message: WriterRequest, transfer: Transferable[] = []) {
      const m = structuredClone(message, { transfer });
      sent.push(m);
      if (dead) return;
      const back = m.op === "openInPlace" ? new ArrayBuffer(100) : m.data?.slice(0);
      const reply = m.op === "openInPlace" ? { id: m.id, size, data: back, sides: false } : { id: m.id, data: back };
      queueMicrotask(() => worker.onmessage?.({ data: reply }));
    },
    terminate() {},
  };
  const fail = (message: string) => worker.onerror?.({ message, preventDefault() {} });
  return { sent, worker: worker as unknown as Worker, fail };
}

/** The writes the worker carries out, in order: [file, at, bytes] for each, batched or not. */
function carriedOut(sent: WriterRequest[]) {
  const out: (string | number)[][] = [];
  for (const m of sent) {
    if (m.op !== "write") {
      out.push([m.op, m.file ?? ""]);
      continue;
    }
    const ranges = m.ranges ?? [m.at!, m.size!];
    for (let i = 0, from = 0; i < ranges.length; from += ranges[i + 1]!, i += 2) {
      out.push([m.file ?? "", ranges[i]!, ...new Uint8Array(m.data!, from, Math.min(ranges[i + 1]!, 2))]);
    }
  }
  return out;
}

test("small writes reach the worker batched, in the order made, each batch before the next flush, truncate or read", async () => {
  const { sent, worker } = standIn();
  const writer = new OpfsWriter("/t.db", worker);
  const target = (await writer.openInPlace([], "t.db"))!;
  const page = (seed: number, n = 4096) => new Uint8Array(n).fill(seed);
  // What SQLite's pager does around an incremental commit: journal records, a sync, the header's
  // record count, a sync, the pages, a sync, the journal removed.
  target.journal.write(0, page(1, 512));
  for (let i = 0; i < 3; i++) {
    target.journal.write(512 + i * 4104, page(10 + i, 4));
    target.journal.write(516 + i * 4104, page(20 + i));
    target.journal.write(4612 + i * 4104, page(30 + i, 4));
  }
  target.journal.sync!();
  target.journal.write(8, page(2, 4));
  target.journal.sync!();
  target.db.write(8192, page(40));
  target.db.write(40960, page(41));
  const read = target.db.read(1 << 20, 4096); // a read goes after the writes made before it
  target.db.write(0, page(42, 128 << 10)); // a large write goes on its own, after the batch before it
  target.db.write(4096, page(43));
  target.db.truncate(16 << 20);
  target.db.sync!();
  target.journal.remove();
  await read;
  await writer.drain(0);

  assert.equal(carriedOut(sent.slice(1)), [
    ["journal", 0, 1, 1], ["journal", 512, 10, 10], ["journal", 516, 20, 20], ["journal", 4612, 30, 30],
    ["journal", 4616, 11, 11], ["journal", 4620, 21, 21], ["journal", 8716, 31, 31],
    ["journal", 8720, 12, 12], ["journal", 8724, 22, 22], ["journal", 12820, 32, 32],
    ["flush", "journal"], ["journal", 8, 2, 2], ["flush", "journal"],
    ["db", 8192, 40, 40], ["db", 40960, 41, 41], ["read", ""], ["db", 0, 42, 42], ["db", 4096, 43, 43],
    ["truncate", "db"], ["flush", "db"], ["removeJournal", ""],
  ]);
  const writes = sent.filter((m) => m.op === "write");
  assert.is(writes.length, 5, "the journal's first ten writes in one message, its header's in one, two pages in one, the large write, the last page");
});

test("a batch is sent when it would pass 1 MiB or the file changes, and by settle()", async () => {
  const { sent, worker } = standIn();
  const writer = new OpfsWriter("/t.db", worker);
  const target = (await writer.openInPlace([], "t.db"))!;
  for (let i = 0; i < 300; i++) target.db.write(i * 8192, new Uint8Array(4096)); // 1.17 MiB
  target.journal.write(0, new Uint8Array(512));
  assert.equal(sent.filter((m) => m.op === "write").map((m) => [m.file, m.ranges!.length / 2]), [["db", 256], ["db", 44]]);
  await writer.settle();
  assert.equal(sent.filter((m) => m.op === "write").map((m) => [m.file, m.size]), [["db", 1 << 20], ["db", 44 * 4096], ["journal", 512]]);
});

test("a worker that fails before any request (it could not start): every request is refused, nothing waits", async () => {
  const { sent, worker, fail } = standIn({ dead: true });
  const writer = new OpfsWriter("/t.db", worker);
  // As a worker script that throws at its start: the error event comes before any request.
  fail("Uncaught ReferenceError: __name is not defined");
  const settled = async (p: Promise<unknown>) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        p.then(() => "resolved", (e: Error) => e.message),
        new Promise((r) => (timer = setTimeout(() => r("no answer"), 1000))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  const failed = "OPFS copy to /t.db: the writer worker failed: Uncaught ReferenceError: __name is not defined";
  assert.is(await settled(writer.request({ op: "close" })), failed);
  writer.send({ op: "open", dirs: [], name: "t.db", temp: ".t.db.1.sbw-tmp" }); // backupToOpfs's full copy does not wait for its open
  writer.write(0, new Uint8Array(1 << 16));
  assert.is(await settled(writer.drain(0)), failed);
  assert.equal(sent, [], "nothing posted to the dead worker");
});

test.run();
