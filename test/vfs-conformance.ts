// One conformance suite for every VFS facade (Node fs in Node, OPFS and memory in Chromium):
// the behaviour host.ts and SQLite rely on, checked method by method. Runs anywhere (no node:*
// imports); returns one result per check so each runtime can report them its own way.
import {
  SQLITE_ACCESS_EXISTS, SQLITE_ACCESS_READWRITE, SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_IOERR_DELETE_NOENT,
  SQLITE_LOCK_EXCLUSIVE, SQLITE_LOCK_NONE, SQLITE_LOCK_PENDING, SQLITE_LOCK_RESERVED, SQLITE_LOCK_SHARED, SQLITE_OK,
  SQLITE_OPEN_CREATE, SQLITE_OPEN_DELETEONCLOSE, SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_READWRITE,
  SQLITE_OPEN_TEMP_JOURNAL, SQLITE_SYNC_FULL, SQLITE_SYNC_NORMAL,
} from "../src/core/constants.js";
import { VfsError } from "../src/core/errors.js";
import type { Locking } from "../src/vfs/lock-layer.js";
import { processLocking } from "../src/vfs/process-locks.js";
import type { Vfs, VfsFile } from "../src/vfs/types.js";

export interface ConformanceResult {
  name: string;
  error: string | null;
}

const RW = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MAIN_DB;

class Fail extends Error {}
function ok(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Fail(msg);
}
function eq<T>(actual: T, expected: T, msg: string): void {
  if (actual !== expected) throw new Fail(`${msg}: expected ${String(expected)}, got ${String(actual)}`);
}
function bytesEq(actual: Uint8Array, expected: Uint8Array, msg: string): void {
  eq(actual.length, expected.length, `${msg} (length)`);
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) throw new Fail(`${msg}: differs at byte ${i}`);
}
function throwsCode(fn: () => unknown, code: number, msg: string): void {
  try {
    fn();
  } catch (e) {
    ok(e instanceof VfsError, `${msg}: threw ${String(e)} instead of a VfsError`);
    eq(e.code, code, `${msg}: code`);
    return;
  }
  throw new Fail(`${msg}: did not throw`);
}
/** Deterministic non-zero bytes, different per seed. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = ((i * 31 + seed * 17) % 251) + 1;
  return b;
}
function readAll(f: VfsFile, offset: number, n: number): [Uint8Array, number] {
  const dst = new Uint8Array(n).fill(0xee);
  return [dst, f.read(dst, offset)];
}

type Check = [name: string, fn: (name: string) => void];

/** `locking`: the lock layer the lock checks run on (the in-process table unless told). */
export async function runVfsConformance(vfs: Vfs, newName: () => string | Promise<string>, locking: Locking = processLocking): Promise<ConformanceResult[]> {
  const open = (name: string | null, flags = RW) => vfs.open(name, flags).file;
  const checks: Check[] = [
    ["open with CREATE makes an empty file that access(EXISTS) reports absent until written", (name) => {
      const { file, outFlags } = vfs.open(name, RW);
      try {
        ok(outFlags & SQLITE_OPEN_READWRITE, "opened read-write");
        eq(file.size(), 0, "size of a new file");
        eq(vfs.access(name, SQLITE_ACCESS_EXISTS), false, "EXISTS of an empty file");
        file.write(pattern(10, 1), 0);
        file.sync(SQLITE_SYNC_NORMAL);
        eq(vfs.access(name, SQLITE_ACCESS_EXISTS), true, "EXISTS after a write");
        eq(vfs.access(name, SQLITE_ACCESS_READWRITE), true, "READWRITE of a writable file");
      } finally {
        file.close();
      }
    }],
    ["write then read returns the same bytes at any offset", (name) => {
      const f = open(name);
      try {
        const a = pattern(4096, 2);
        const b = pattern(1000, 3);
        f.write(a, 0);
        f.write(b, 10_000);
        const [ra, na] = readAll(f, 0, 4096);
        eq(na, 4096, "bytes read");
        bytesEq(ra, a, "first block");
        const [rb, nb] = readAll(f, 10_000, 1000);
        eq(nb, 1000, "bytes read at 10000");
        bytesEq(rb, b, "second block");
        eq(f.size(), 11_000, "size covers the last write");
        const [hole, nh] = readAll(f, 4096, 5904);
        eq(nh, 5904, "a hole reads in full");
        ok(hole.every((x) => x === 0), "a hole reads as zeros");
      } finally {
        f.close();
      }
    }],
    ["a read past the end is short and reports how much it read", (name) => {
      const f = open(name);
      try {
        f.write(pattern(100, 4), 0);
        const [dst, n] = readAll(f, 50, 100);
        eq(n, 50, "short count");
        bytesEq(dst.subarray(0, 50), pattern(100, 4).subarray(50), "the part that exists");
        eq(readAll(f, 100, 10)[1], 0, "read at EOF");
        eq(readAll(f, 5000, 10)[1], 0, "read beyond EOF");
      } finally {
        f.close();
      }
    }],
    ["many small writes (contiguous, overwritten, scattered) read back exactly", (name) => {
      const f = open(name);
      try {
        const model = new Uint8Array(300 * 512);
        for (let i = 0; i < 300; i++) {
          const p = pattern(512, i);
          f.write(p, i * 512);
          model.set(p, i * 512);
        }
        for (const [off, seed] of [[100, 900], [70_000, 901], [512 * 299, 902], [3, 903]] as const) {
          const p = pattern(200, seed);
          f.write(p, off);
          model.set(p, off);
          const [r] = readAll(f, off, 200);
          bytesEq(r, p, `read right after the write at ${off}`);
        }
        eq(f.size(), model.length, "size");
        const [all, n] = readAll(f, 0, model.length);
        eq(n, model.length, "bytes read");
        bytesEq(all, model, "whole file");
        // sequential page reads (read-ahead) followed by a write inside the read window
        for (let i = 0; i < 8; i++) bytesEq(readAll(f, i * 4096, 4096)[0], model.subarray(i * 4096, (i + 1) * 4096), `page ${i}`);
        const p = pattern(4096, 904);
        f.write(p, 9 * 4096);
        bytesEq(readAll(f, 8 * 4096, 4096)[0], model.subarray(8 * 4096, 9 * 4096), "page 8");
        bytesEq(readAll(f, 9 * 4096, 4096)[0], p, "page 9 after rewriting it");
      } finally {
        f.close();
      }
    }],
    ["a write larger than any buffer reads back exactly", (name) => {
      const f = open(name);
      try {
        const big = pattern(3 * 1024 * 1024 + 123, 5);
        f.write(pattern(4096, 6), 0);
        f.write(big, 4096);
        eq(f.size(), 4096 + big.length, "size");
        bytesEq(readAll(f, 4096, big.length)[0], big, "content");
      } finally {
        f.close();
      }
    }],
    ["truncate shrinks and extends; size follows", (name) => {
      const f = open(name);
      try {
        f.write(pattern(8192, 7), 0);
        f.truncate(1000);
        eq(f.size(), 1000, "after shrinking");
        eq(readAll(f, 0, 2000)[1], 1000, "read after shrinking");
        f.write(pattern(10, 8), 5000);
        eq(f.size(), 5010, "after writing past the end");
        ok(readAll(f, 1000, 4000)[0].every((x) => x === 0), "old bytes past the truncation point are gone");
        f.truncate(0);
        eq(f.size(), 0, "truncated to 0");
      } finally {
        f.close();
      }
    }],
    ["sync accepts NORMAL and FULL, and data survives close and reopen", (name) => {
      const p = pattern(5000, 9);
      const f = open(name);
      try {
        f.write(p, 0);
        f.sync(SQLITE_SYNC_NORMAL);
        f.write(p, 5000);
        f.sync(SQLITE_SYNC_FULL);
      } finally {
        f.close();
      }
      const g = open(name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MAIN_DB);
      try {
        eq(g.size(), 10_000, "size after reopen");
        bytesEq(readAll(g, 5000, 5000)[0], p, "content after reopen");
      } finally {
        g.close();
      }
    }],
    ["delete removes a file; a second delete and an open without CREATE fail with the right codes", (name) => {
      const f = open(name);
      f.write(pattern(10, 10), 0);
      f.close();
      vfs.delete(name, true);
      eq(vfs.access(name, SQLITE_ACCESS_EXISTS), false, "EXISTS after delete");
      throwsCode(() => vfs.delete(name, false), SQLITE_IOERR_DELETE_NOENT, "second delete");
      throwsCode(() => vfs.open(name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MAIN_DB), SQLITE_CANTOPEN, "open without CREATE");
    }],
    ["fullPathname is stable: applying it twice changes nothing", (name) => {
      const full = vfs.fullPathname(name);
      eq(vfs.fullPathname(full), full, "idempotent");
    }],
    ["two opens of one file share a lock key and see each other's writes after a lock change", (name) => {
      const a = open(name);
      const b = open(name);
      try {
        eq(a.lockKey, b.lockKey, "lock keys");
        const p = pattern(3000, 11);
        a.write(p, 0);
        a.lockChanged?.(SQLITE_LOCK_NONE);
        bytesEq(readAll(b, 0, 3000)[0], p, "b reads what a wrote");
        eq(b.size(), 3000, "b's size");
      } finally {
        a.close();
        b.close();
      }
    }],
    [`the ${locking.kind} lock layer gives SQLite's rules on the VFS's files`, (name) => {
      const a = open(name);
      const b = open(name);
      const la = locking.open(a);
      const lb = locking.open(b);
      try {
        eq(la.lock(SQLITE_LOCK_SHARED), SQLITE_OK, "a SHARED");
        eq(lb.lock(SQLITE_LOCK_SHARED), SQLITE_OK, "b SHARED");
        eq(la.lock(SQLITE_LOCK_RESERVED), SQLITE_OK, "a RESERVED");
        eq(lb.checkReserved(), true, "b sees RESERVED");
        eq(lb.lock(SQLITE_LOCK_RESERVED), SQLITE_BUSY, "b RESERVED while a holds it");
        eq(la.lock(SQLITE_LOCK_EXCLUSIVE), SQLITE_BUSY, "a EXCLUSIVE while b reads");
        eq(la.level, SQLITE_LOCK_PENDING, "a keeps PENDING while readers drain");
        lb.unlock(SQLITE_LOCK_NONE);
        eq(lb.lock(SQLITE_LOCK_SHARED), SQLITE_BUSY, "new reader while a is PENDING");
        eq(la.lock(SQLITE_LOCK_EXCLUSIVE), SQLITE_OK, "a EXCLUSIVE once b left");
        eq(lb.checkReserved(), true, "b sees EXCLUSIVE as reserved");
        la.unlock(SQLITE_LOCK_SHARED);
        eq(lb.lock(SQLITE_LOCK_SHARED), SQLITE_OK, "b SHARED beside a's downgraded SHARED");
        eq(lb.checkReserved(), false, "no RESERVED after a's downgrade");
        la.unlock(SQLITE_LOCK_NONE);
        lb.unlock(SQLITE_LOCK_NONE);
        eq(la.lock(SQLITE_LOCK_SHARED), SQLITE_OK, "a SHARED again");
        eq(la.lock(SQLITE_LOCK_EXCLUSIVE), SQLITE_OK, "a EXCLUSIVE from SHARED alone");
        la.unlock(SQLITE_LOCK_NONE);
        eq(lb.checkReserved(), false, "nothing held after unlock");
      } finally {
        la.close();
        lb.close();
        a.close();
        b.close();
      }
    }],
    ["temporary files (no name) read and write in isolation", () => {
      const t1 = open(null, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_TEMP_JOURNAL);
      const t2 = open(null, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_TEMP_JOURNAL);
      try {
        ok(t1.lockKey !== t2.lockKey, "distinct lock keys");
        t1.write(pattern(100, 12), 0);
        eq(t2.size(), 0, "the other temp file is untouched");
        bytesEq(readAll(t1, 0, 100)[0], pattern(100, 12), "content");
      } finally {
        t1.close();
        t2.close();
      }
    }],
  ];

  const results: ConformanceResult[] = [];
  for (const [name, fn] of checks) {
    try {
      fn(await newName());
      results.push({ name, error: null });
    } catch (e) {
      results.push({ name, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  }
  return results;
}
