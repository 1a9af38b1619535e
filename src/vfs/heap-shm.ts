// WAL shared memory (the wal-index) in the WASM heap, for connections of one instance: the
// "process" lock layer's SharedMemory (process-locks.ts). Regions are sqlite3_malloc'd, so their
// addresses stay valid across memory growth. The same file opened in WAL mode by a second
// instance of this realm is refused (its heap is a different memory).
import {
  SQLITE_BUSY, SQLITE_IOERR_SHMOPEN, SQLITE_OK, SQLITE_SHM_EXCLUSIVE, SQLITE_SHM_NLOCK,
  SQLITE_SHM_SHARED, SQLITE_SHM_UNLOCK,
} from "../core/constants.js";
import { VfsError } from "../core/errors.js";
import type { Heap } from "../core/heap.js";
import type { SharedMemory } from "./lock-layer.js";

class ShmNode {
  readonly regions: number[] = [];
  refs = 0;
  readonly exclusive: (HeapShm | null)[] = new Array(SQLITE_SHM_NLOCK).fill(null);
  readonly shared: number[] = new Array(SQLITE_SHM_NLOCK).fill(0);
  constructor(readonly key: string, readonly heap: Heap) {}
}

const nodes = new Map<string, ShmNode>();

/** One connection's view of a file's shared memory. */
class HeapShm implements SharedMemory {
  sharedMask = 0;
  exclMask = 0;
  constructor(readonly node: ShmNode) {}

  map(i: number, size: number, extend: boolean): number {
    const { regions, heap } = this.node;
    while (regions.length <= i) {
      if (!extend) return 0;
      const p = heap.alloc(size);
      heap.u8.fill(0, p, p + size);
      regions.push(p);
    }
    return regions[i]!;
  }

  lock(offset: number, n: number, flags: number): number {
    const node = this.node;
    const mask = ((1 << n) - 1) << offset;
    if (flags & SQLITE_SHM_UNLOCK) {
      for (let i = offset; i < offset + n; i++) {
        const bit = 1 << i;
        if (this.exclMask & bit) node.exclusive[i] = null;
        if (this.sharedMask & bit) node.shared[i]!--;
      }
      this.exclMask &= ~mask;
      this.sharedMask &= ~mask;
      return SQLITE_OK;
    }
    if (flags & SQLITE_SHM_SHARED) {
      for (let i = offset; i < offset + n; i++) {
        const x = node.exclusive[i];
        if (x && x !== this) return SQLITE_BUSY;
      }
      for (let i = offset; i < offset + n; i++) {
        if (!(this.sharedMask & (1 << i))) node.shared[i]!++;
      }
      this.sharedMask |= mask;
      return SQLITE_OK;
    }
    if (flags & SQLITE_SHM_EXCLUSIVE) {
      for (let i = offset; i < offset + n; i++) {
        const x = node.exclusive[i];
        const mine = this.sharedMask & (1 << i) ? 1 : 0;
        if ((x && x !== this) || node.shared[i]! - mine > 0) return SQLITE_BUSY;
      }
      for (let i = offset; i < offset + n; i++) node.exclusive[i] = this;
      this.exclMask |= mask;
      return SQLITE_OK;
    }
    return SQLITE_OK;
  }

  barrier(): void {} // one thread, one memory: nothing to order

  /** Drops the connection; the last one frees the regions (there is no -shm file to delete). */
  close(): void {
    this.lock(0, SQLITE_SHM_NLOCK, SQLITE_SHM_UNLOCK);
    const node = this.node;
    if (--node.refs > 0) return;
    for (const p of node.regions) node.heap.free(p);
    nodes.delete(node.key);
  }
}

export function heapShm(key: string, heap: Heap): SharedMemory {
  let node = nodes.get(key);
  if (node && node.heap !== heap) {
    throw new VfsError(SQLITE_IOERR_SHMOPEN,
      `${key} is open in WAL mode by another sqlite-backup-wasm instance; use one instance per process`);
  }
  if (!node) nodes.set(key, (node = new ShmNode(key, heap)));
  node.refs++;
  return new HeapShm(node);
}

/** Bytes of the two copies of the WAL-index header at the start of region 0 (wal.c). */
const WAL_INDEX_HEADERS = 96;

/**
 * Zeroes the WAL-index header of `key` when no connection holds any of its locks, so the next
 * reader rebuilds the index from the WAL file ("recovery"). Used by backup()'s source guard:
 * another process may have changed the WAL, and this heap index only sees our own writers.
 */
export function shmInvalidate(key: string): void {
  const node = nodes.get(key);
  if (!node || node.regions.length === 0) return;
  if (node.exclusive.some((x) => x !== null) || node.shared.some((n) => n > 0)) return;
  node.heap.u8.fill(0, node.regions[0]!, node.regions[0]! + WAL_INDEX_HEADERS);
}
