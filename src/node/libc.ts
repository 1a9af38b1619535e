// libc through the runtime's FFI (Node >= 26 `node:ffi`, Deno `Deno.dlopen`, Bun `bun:ffi`): the
// advisory byte-range locks and shared mappings that node:fs lacks, so that our connections and
// native SQLite processes see each other's locks (ofd-locks.ts) and share the WAL-index (ofd-shm.ts).
// Linux x86-64 only for now (there, and on arm64, struct flock has one layout and a fixed-argument call to
// the variadic fcntl is correct); elsewhere, or without FFI permission, loadLibc() gives null and
// the in-process lock table stays in charge.
import process from "node:process";

/** Linux's fcntl commands and lock types. */
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;

/** A shared mapping of part of a file; `bytes` must not be touched after unmap(). */
export interface Mapping {
  readonly bytes: ArrayBuffer;
  unmap(): void;
}

export interface LibC {
  /** Which FFI serves it: "node:ffi", "Deno.dlopen" or "bun:ffi". */
  readonly via: string;
  /** fcntl(fd, F_OFD_SETLK, …) without waiting: true when granted, false when another lock conflicts. */
  setLock(fd: number, type: number, start: number, len: number): boolean;
  /** fcntl(fd, F_OFD_GETLK, …): the type of a lock held through another file description, or F_UNLCK. */
  getLock(fd: number, type: number, start: number, len: number): number;
  /** mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset). */
  map(fd: number, offset: number, len: number): Mapping;
}

/** The raw calls each runtime's FFI provides; `flock` is the struct the calls read and write. */
interface Raw {
  via: string;
  flock: Uint8Array;
  fcntl(fd: number, cmd: number): number;
  errno(): number;
  mmap(fd: number, offset: number, len: number): { bytes: ArrayBuffer; unmap(): void } | null;
}

class Fcntl implements LibC {
  readonly via: string;
  readonly #raw: Raw;
  readonly #dv: DataView;
  constructor(raw: Raw) {
    this.via = raw.via;
    this.#raw = raw;
    this.#dv = new DataView(raw.flock.buffer, raw.flock.byteOffset, 32);
  }

  #call(fd: number, cmd: number, type: number, start: number, len: number): number {
    // struct flock on Linux x86-64/arm64: l_type i16 @0, l_whence i16 @2, l_start i64 @8,
    // l_len i64 @16, l_pid i32 @24 (0 for OFD locks).
    const dv = this.#dv;
    dv.setInt16(0, type, true);
    dv.setInt16(2, 0, true); // SEEK_SET
    // Offsets are below 2^53: two 32-bit halves each, no BigInt to allocate on every lock call.
    dv.setUint32(8, start >>> 0, true);
    dv.setUint32(12, Math.floor(start / 2 ** 32), true);
    dv.setUint32(16, len >>> 0, true);
    dv.setUint32(20, Math.floor(len / 2 ** 32), true);
    dv.setInt32(24, 0, true);
    return this.#raw.fcntl(fd, cmd);
  }

  setLock(fd: number, type: number, start: number, len: number): boolean {
    if (this.#call(fd, F_OFD_SETLK, type, start, len) === 0) return true;
    const errno = this.#raw.errno();
    // A refusal because of a conflicting lock is EAGAIN or EACCES; ask the kernel rather than
    // trust errno alone (the runtime may make libc calls of its own in between).
    if (type !== F_UNLCK && this.getLock(fd, type, start, len) !== F_UNLCK) return false;
    if (errno === 11 || errno === 13) return false; // the conflicting lock went away meanwhile
    throw new Error(`fcntl(F_OFD_SETLK) on fd ${fd} failed: errno ${errno}`);
  }

  getLock(fd: number, type: number, start: number, len: number): number {
    if (this.#call(fd, F_OFD_GETLK, type, start, len) !== 0) {
      throw new Error(`fcntl(F_OFD_GETLK) on fd ${fd} failed: errno ${this.#raw.errno()}`);
    }
    return this.#dv.getInt16(0, true);
  }

  map(fd: number, offset: number, len: number): Mapping {
    const m = this.#raw.mmap(fd, offset, len);
    if (!m) throw new Error(`mmap of fd ${fd} at ${offset} failed: errno ${this.#raw.errno()}`);
    let mapped = true;
    return {
      bytes: m.bytes,
      unmap: () => {
        if (mapped) m.unmap();
        mapped = false;
      },
    };
  }
}

const LIBC_PATHS = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6"];
/** (void *)-1 */
const MAP_FAILED = 0xffffffffffffffffn;
/** A struct buffer whose address stays put (Bun: the backing store of a plain new Uint8Array(n) can move). */
const struct = () => new Uint8Array(new ArrayBuffer(32));

// Minimal shapes of the three FFIs, typed here so the package needs none of their type packages.
type AnyFn = (...a: unknown[]) => any;
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, unknown>): { symbols: Record<string, AnyFn> };
  permissions: { querySync(d: { name: "ffi"; path?: string }): { state: string } };
  UnsafePointer: { value(p: unknown): bigint | number };
  UnsafePointerView: { new (p: unknown): { getInt32(offset?: number): number }; getArrayBuffer(p: unknown, len: number): ArrayBuffer };
}

async function nodeRaw(): Promise<Raw> {
  const spec = "node:ffi";
  // node:ffi announces itself with an ExperimentalWarning on first load; our users did not ask for it.
  const emit = process.emitWarning;
  let ffi: any;
  process.emitWarning = ((w: unknown, ...rest: unknown[]) => {
    if (!/\bFFI\b/.test(String((w as Error)?.message ?? w))) (emit as AnyFn).call(process, w, ...rest);
  }) as typeof process.emitWarning;
  try {
    ffi = (await import(spec)).default;
  } finally {
    process.emitWarning = emit;
  }
  const { functions: c } = ffi.dlopen("libc.so.6", {
    fcntl: { arguments: ["i32", "i32", "pointer"], return: "i32" },
    __errno_location: { arguments: [], return: "pointer" },
    mmap: { arguments: ["pointer", "u64", "i32", "i32", "i32", "i64"], return: "pointer" },
    munmap: { arguments: ["pointer", "u64"], return: "i32" },
  });
  const flock = struct();
  const p = ffi.getRawPointer(flock);
  return {
    via: "node:ffi", flock,
    fcntl: (fd, cmd) => c.fcntl(fd, cmd, p),
    errno: () => ffi.getInt32(c.__errno_location()),
    mmap: (fd, offset, len) => {
      const addr = BigInt.asUintN(64, BigInt(c.mmap(null, BigInt(len), PROT_READ_WRITE, MAP_SHARED, fd, BigInt(offset))));
      if (addr === MAP_FAILED || addr === 0n) return null;
      return { bytes: ffi.toArrayBuffer(addr, len, false), unmap: () => void c.munmap(addr, BigInt(len)) };
    },
  };
}

function denoRaw(Deno: DenoFfi): Raw {
  // Ask without prompting: no --allow-ffi means the in-process lock table, not a question.
  const path = LIBC_PATHS.find((p) => Deno.permissions.querySync({ name: "ffi", path: p }).state === "granted");
  if (!path) throw new Error("no FFI permission (--allow-ffi)");
  const { symbols: c } = Deno.dlopen(path, {
    fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
    mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
    munmap: { parameters: ["pointer", "usize"], result: "i32" },
  });
  const flock = struct();
  return {
    via: "Deno.dlopen", flock,
    fcntl: (fd, cmd) => c.fcntl!(fd, cmd, flock),
    errno: () => new Deno.UnsafePointerView(c.__errno_location!()).getInt32(),
    mmap: (fd, offset, len) => {
      const addr = c.mmap!(null, BigInt(len), PROT_READ_WRITE, MAP_SHARED, fd, BigInt(offset));
      const value = addr === null ? 0n : BigInt.asUintN(64, BigInt(Deno.UnsafePointer.value(addr)));
      if (value === MAP_FAILED || value === 0n) return null;
      return { bytes: Deno.UnsafePointerView.getArrayBuffer(addr, len), unmap: () => void c.munmap!(addr, BigInt(len)) };
    },
  };
}

async function bunRaw(): Promise<Raw> {
  const spec = "bun:ffi";
  const ffi: any = await import(spec);
  const { symbols: c } = ffi.dlopen("libc.so.6", {
    fcntl: { args: ["i32", "i32", "ptr"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
    mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "ptr" },
    munmap: { args: ["ptr", "u64"], returns: "i32" },
  });
  const flock = struct();
  const p = ffi.ptr(flock);
  return {
    via: "bun:ffi", flock,
    fcntl: (fd, cmd) => c.fcntl(fd, cmd, p),
    errno: () => ffi.read.i32(c.__errno_location(), 0),
    mmap: (fd, offset, len) => {
      const addr = c.mmap(null, len, PROT_READ_WRITE, MAP_SHARED, fd, offset);
      if (!addr || addr < 0 || addr >= 2 ** 53) return null;
      return { bytes: ffi.toArrayBuffer(addr, 0, len), unmap: () => void c.munmap(addr, len) };
    },
  };
}

/**
 * libc's locking and mapping calls, or null where this runtime cannot give them (Node < 26,
 * Node's --permission without --allow-ffi, Deno without --allow-ffi, not Linux x86-64).
 * The reason for a null is in `whyNot`.
 */
export async function loadLibc(): Promise<{ libc: LibC | null; whyNot: string | null }> {
  // arm64 would take the same calls, but the WAL-index copies (ofd-shm.ts) rely on x86's store
  // ordering; until they have fences and a test there, arm64 keeps the in-process table.
  if (process.platform !== "linux" || process.arch !== "x64") {
    return { libc: null, whyNot: `real file locks are implemented for Linux x86-64, not ${process.platform} ${process.arch}` };
  }
  const g = globalThis as { Deno?: DenoFfi; Bun?: unknown };
  try {
    const raw = g.Deno ? denoRaw(g.Deno) : g.Bun ? await bunRaw() : await nodeRaw();
    const libc = new Fcntl(raw);
    return { libc, whyNot: null };
  } catch (e) {
    const code = (e as { code?: string })?.code;
    const why = g.Deno ? "Deno without --allow-ffi"
      : g.Bun ? `bun:ffi failed: ${(e as Error)?.message ?? e}`
      : code === "ERR_UNKNOWN_BUILTIN_MODULE" ? `Node ${process.versions.node} has no node:ffi (Node >= 26 has)`
      : code === "ERR_ACCESS_DENIED" ? "Node's --permission without --allow-ffi"
      : `node:ffi failed: ${(e as Error)?.message ?? e}`;
    return { libc: null, whyNot: why };
  }
}
