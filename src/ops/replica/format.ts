// The replica's objects (docs/replicas.md): each holds pages of one sync (a part of it: a sync
// larger than PART_BYTES is split), behind a header that names the sync, its predecessor and the
// pages, and ends in the chain hash: the SHA-256 of the header, which includes the previous
// object's chain hash and the SHA-256 of the pages. So a changed, missing, reordered or
// substituted object breaks the chain. A delta's pages may be stored XORed with the same pages of
// the sync before (mostly zeros: a change rewrites a few rows of a page), a merge's with them as
// the sync before its span left them. The pages may be
// gzipped and then encrypted (AES-256-GCM, a random 96-bit IV per object, the header as
// additional data).
import { SQLITE_AUTH, SQLITE_CORRUPT, SQLITE_MISUSE } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { builtin } from "../../runtime/builtin.js";
import type { VfsFile } from "../../vfs/types.js";

export type Kind = "snapshot" | "delta";
/** What an object holds: a sync's pages, or (merge) the pages that the syncs after prevSeq up to seq changed. */
export type ObjectKind = Kind | "merge";
export const HASH_BYTES = 32;
const MAGIC = [0x53, 0x42, 0x57, 0x52]; // "SBWR"
/** Written by this version; version 1 (no FLAG_XOR) is read too. */
const FORMAT_VERSION = 2;
const FLAG_SNAPSHOT = 1;
const FLAG_GZIP = 2;
const FLAG_ENCRYPTED = 4;
const FLAG_XOR = 8;
const FLAG_MERGE = 16;
const FLAGS = FLAG_SNAPSHOT | FLAG_GZIP | FLAG_ENCRYPTED | FLAG_XOR | FLAG_MERGE;
const IV_BYTES = 12;
const KEY_CHECK_BYTES = 8;
const FIXED_BYTES = 176; // up to the runs (see encodeHeader)
/** Most page bytes in one object: what a sync holds in memory at a time. */
export const PART_BYTES = 8 << 20;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);
/** The object with the lease (who replicates into the target, and the last complete sync). */
export const LEASE_NAME = "lease.json";

export interface ObjectHeader {
  kind: ObjectKind;
  seq: number;
  /** The sync this one applies on top of (0: none; a snapshot needs none). */
  prevSeq: number;
  /** ms since the epoch of the sync's snapshot of the source. */
  timeMs: number;
  part: number;
  parts: number;
  pageSize: number;
  /** The database's page count after the sync. */
  pageCount: number;
  /** The pages this object holds, as runs [first, count], ascending. */
  runs: Uint32Array;
  /** The pages are XORed with the same pages of the sync before (a merge: before its span; zeros past its end). */
  xor: boolean;
  gzip: boolean;
  encrypted: boolean;
  iv: Uint8Array;
  keyCheck: Uint8Array;
  /** The chain hash of the object before this one (ZERO_HASH: none). */
  prevChain: Uint8Array;
  /** SHA-256 of the payload as stored before encryption (the gzipped pages when gzipped). */
  contentHash: Uint8Array;
  /** The last part of a sync: the database's hash after it (dbHash()); else zeros. */
  dbHash: Uint8Array;
  /** A merge: the chain hash of the last part of sync `seq`, which the sync after it follows. */
  toChain?: Uint8Array;
  /** SHA-256 of the encoded header up to here. */
  chain: Uint8Array;
  /** Bytes after the header. */
  payloadLength: number;
}

/** The object name of a sync's part (sorts by sequence number, then part), or of a merge's. */
export function objectName(h: Pick<ObjectHeader, "seq" | "timeMs" | "part" | "parts" | "kind" | "prevSeq">): string {
  const name = `${pad(h.seq, 16)}-${pad(h.timeMs, 15)}-${pad(h.part, 5)}of${pad(h.parts, 5)}.${h.kind}`;
  return h.kind === "merge" ? `${name}-${pad(h.prevSeq, 16)}` : name;
}
const pad = (n: number, w: number) => String(n).padStart(w, "0");

export interface ParsedName {
  name: string;
  seq: number;
  timeMs: number;
  part: number;
  parts: number;
  kind: Kind;
}
const NAME_RE = /^(\d{16})-(\d{15})-(\d{5})of(\d{5})\.(snapshot|delta)$/;
/** The fields of an object name; null for any other name. */
export function parseName(name: string): ParsedName | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const parts = Number(m[4]);
  const part = Number(m[3]);
  if (parts < 1 || part >= parts) return null;
  return { name, seq: Number(m[1]), timeMs: Number(m[2]), part, parts, kind: m[5] as Kind };
}

export interface ParsedMerge {
  name: string;
  /** The sync it brings a database to, and the one it applies on. */
  seq: number;
  from: number;
  timeMs: number;
  part: number;
  parts: number;
}
const MERGE_RE = /^(\d{16})-(\d{15})-(\d{5})of(\d{5})\.merge-(\d{16})$/;
/** The fields of a merge's name; null for any other name (parseName() knows no merges). */
export function parseMergeName(name: string): ParsedMerge | null {
  const m = MERGE_RE.exec(name);
  if (!m) return null;
  const parts = Number(m[4]);
  const part = Number(m[3]);
  const seq = Number(m[1]);
  const from = Number(m[5]);
  if (parts < 1 || part >= parts || from >= seq) return null;
  return { name, seq, from, timeMs: Number(m[2]), part, parts };
}

/** A target's merges, each with its parts in order, and whether all of them are there. */
export function mergesOf(names: string[]): { parts: ParsedMerge[]; complete: boolean }[] {
  const byKey = new Map<string, ParsedMerge[]>();
  for (const m of names.map(parseMergeName)) if (m) byKey.set(`${m.from}-${m.seq}`, [...(byKey.get(`${m.from}-${m.seq}`) ?? []), m]);
  return [...byKey.values()].map((l) => {
    const first = l[0]!;
    const complete = l.length === first.parts && new Set(l.map((m) => m.part)).size === l.length && l.every((m) => m.parts === first.parts && m.timeMs === first.timeMs);
    return { parts: l.sort((a, b) => a.part - b.part), complete };
  });
}

export const corrupt = (message: string) => new SqliteError(message, SQLITE_CORRUPT);

interface NodeCrypto {
  hash?(algorithm: "sha256", data: Uint8Array, encoding: "buffer"): Uint8Array;
  createHash(algorithm: "sha256"): { update(b: Uint8Array): { digest(): Uint8Array } };
}
const nodeCrypto = builtin<NodeCrypto>("node:crypto");
/**
 * SHA-256 by node:crypto where the runtime has it: a 4 KiB page in ~6 µs where WebCrypto's
 * promise costs ~50, and no copy of the input (WebCrypto copies it on the calling thread).
 */
const nodeHash: ((data: Uint8Array) => Uint8Array) | undefined = nodeCrypto?.hash
  ? (data) => nodeCrypto.hash!("sha256", data, "buffer")
  : nodeCrypto ? (data) => nodeCrypto.createHash("sha256").update(data).digest() : undefined;

export async function sha256(...pieces: Uint8Array[]): Promise<Uint8Array> {
  const data = pieces.length === 1 ? pieces[0]! : concat(pieces);
  return nodeHash ? nodeHash(data) : new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

export function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An AES-256-GCM key and its check value (what an object records, to tell a wrong key apart). */
export interface Cipher {
  key: CryptoKey;
  check: Uint8Array;
}

/** The key of the encryptionKey option: a CryptoKey for AES-GCM, or its 32 raw bytes. */
export async function cipherOf(key: CryptoKey | Uint8Array | undefined, where: string): Promise<Cipher | null> {
  if (key === undefined) return null;
  let k: CryptoKey;
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new TypeError(`${where}: encryptionKey must be 32 bytes (AES-256), got ${key.length}`);
    k = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt", "decrypt"]);
  } else if (typeof CryptoKey !== "undefined" && key instanceof CryptoKey) {
    if (key.algorithm.name !== "AES-GCM" || !key.usages.includes("encrypt") || !key.usages.includes("decrypt")) {
      throw new TypeError(`${where}: encryptionKey must be an AES-GCM key for encrypt and decrypt`);
    }
    k = key;
  } else throw new TypeError(`${where}: encryptionKey must be a CryptoKey or a Uint8Array of 32 bytes`);
  // 16 zero bytes under an all-zero IV, which no object uses: the same for the same key.
  const check = await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(IV_BYTES) }, k, new Uint8Array(16));
  return { key: k, check: new Uint8Array(check, 0, KEY_CHECK_BYTES) };
}

function encodeHeader(h: Omit<ObjectHeader, "chain">): Uint8Array {
  const size = FIXED_BYTES + h.runs.length * 4 + (h.kind === "merge" ? HASH_BYTES : 0) + HASH_BYTES;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set(MAGIC, 0);
  v.setUint16(4, FORMAT_VERSION);
  v.setUint16(6, (h.kind === "snapshot" ? FLAG_SNAPSHOT : h.kind === "merge" ? FLAG_MERGE : 0) | (h.gzip ? FLAG_GZIP : 0) | (h.encrypted ? FLAG_ENCRYPTED : 0)
    | (h.xor ? FLAG_XOR : 0));
  v.setUint32(8, size);
  v.setBigUint64(12, BigInt(h.seq));
  v.setBigUint64(20, BigInt(h.prevSeq));
  v.setBigUint64(28, BigInt(h.timeMs));
  v.setUint32(36, h.part);
  v.setUint32(40, h.parts);
  v.setUint32(44, h.pageSize);
  v.setUint32(48, h.pageCount);
  v.setUint32(52, h.runs.length / 2);
  v.setUint32(56, h.payloadLength);
  b.set(h.iv, 60);
  b.set(h.keyCheck, 72);
  b.set(h.prevChain, 80);
  b.set(h.contentHash, 112);
  b.set(h.dbHash, 144);
  for (let i = 0; i < h.runs.length; i++) v.setUint32(FIXED_BYTES + i * 4, h.runs[i]!);
  if (h.kind === "merge") b.set(h.toChain!, FIXED_BYTES + h.runs.length * 4);
  return b;
}

/** What encodeObject() needs besides the pages. */
export type NewObject = Omit<ObjectHeader, "chain" | "payloadLength" | "gzip" | "encrypted" | "iv" | "keyCheck" | "contentHash">;

/** An object: the header (its chain hash last), then the pages, gzipped and encrypted as asked. */
export async function encodeObject(h: NewObject, pages: Uint8Array, gzip: boolean, cipher: Cipher | null): Promise<{ bytes: Uint8Array; chain: Uint8Array }> {
  let payload = gzip ? await compress(pages) : pages;
  const contentHash = await sha256(payload);
  const iv = cipher ? crypto.getRandomValues(new Uint8Array(IV_BYTES)) : new Uint8Array(IV_BYTES);
  const full: Omit<ObjectHeader, "chain"> = {
    ...h, contentHash, gzip, encrypted: cipher !== null, iv, keyCheck: cipher?.check ?? new Uint8Array(KEY_CHECK_BYTES),
    payloadLength: payload.length + (cipher ? 16 : 0),
  };
  const header = encodeHeader(full);
  const chain = await sha256(header.subarray(0, header.length - HASH_BYTES));
  header.set(chain, header.length - HASH_BYTES);
  if (cipher) {
    payload = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: iv as Uint8Array<ArrayBuffer>, additionalData: header as Uint8Array<ArrayBuffer> },
      cipher.key, payload as Uint8Array<ArrayBuffer>));
  }
  return { bytes: concat([header, payload]), chain };
}

/** The header of an object's bytes, its chain hash checked; SQLITE_CORRUPT when it is not one. */
export async function decodeHeader(bytes: Uint8Array, name: string): Promise<ObjectHeader> {
  if (bytes.length < FIXED_BYTES + HASH_BYTES || MAGIC.some((m, i) => bytes[i] !== m)) throw corrupt(`replica object ${name} is not a replica object`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(4);
  if (version !== 1 && version !== FORMAT_VERSION) throw corrupt(`replica object ${name} has format version ${version} (this version reads 1 and ${FORMAT_VERSION})`);
  const size = v.getUint32(8);
  const nRuns = v.getUint32(52);
  const flags = v.getUint16(6);
  const merge = (flags & FLAG_MERGE) !== 0;
  if (size !== FIXED_BYTES + nRuns * 8 + (merge ? HASH_BYTES : 0) + HASH_BYTES || size > bytes.length) throw corrupt(`replica object ${name}: its header is damaged`);
  const header = bytes.subarray(0, size);
  const chain = header.slice(size - HASH_BYTES);
  if (!equalBytes(await sha256(header.subarray(0, size - HASH_BYTES)), chain)) throw corrupt(`replica object ${name}: its header does not match its checksum`);
  if ((flags & ~FLAGS) !== 0 || (flags & (FLAG_XOR | FLAG_MERGE) && (version === 1 || flags & FLAG_SNAPSHOT)) || (merge && !(flags & FLAG_XOR))) {
    throw corrupt(`replica object ${name}: its header has unknown flags`);
  }
  const runs = new Uint32Array(nRuns * 2);
  for (let i = 0; i < runs.length; i++) runs[i] = v.getUint32(FIXED_BYTES + i * 4);
  return {
    kind: flags & FLAG_SNAPSHOT ? "snapshot" : merge ? "merge" : "delta",
    toChain: merge ? header.slice(FIXED_BYTES + nRuns * 8, FIXED_BYTES + nRuns * 8 + HASH_BYTES) : undefined,
    seq: Number(v.getBigUint64(12)), prevSeq: Number(v.getBigUint64(20)), timeMs: Number(v.getBigUint64(28)),
    part: v.getUint32(36), parts: v.getUint32(40), pageSize: v.getUint32(44), pageCount: v.getUint32(48),
    runs, xor: (flags & FLAG_XOR) !== 0, gzip: (flags & FLAG_GZIP) !== 0, encrypted: (flags & FLAG_ENCRYPTED) !== 0,
    iv: header.slice(60, 72), keyCheck: header.slice(72, 80), prevChain: header.slice(80, 112),
    contentHash: header.slice(112, 144), dbHash: header.slice(144, 176), chain, payloadLength: v.getUint32(56),
  };
}

/**
 * The pages of an object whose header was decoded: decrypted (authenticated), decompressed, and
 * with `content` their checksum checked (restore checks the whole database's hash instead).
 */
export async function decodePages(bytes: Uint8Array, h: ObjectHeader, name: string, cipher: Cipher | null, content: boolean): Promise<Uint8Array> {
  const headerSize = FIXED_BYTES + h.runs.length * 4 + (h.kind === "merge" ? HASH_BYTES : 0) + HASH_BYTES;
  if (bytes.length !== headerSize + h.payloadLength) throw corrupt(`replica object ${name} is ${bytes.length} bytes, its header says ${headerSize + h.payloadLength}`);
  let payload = bytes.subarray(headerSize);
  if (h.encrypted) {
    if (cipher === null) throw new SqliteError(`the replica is encrypted: pass its encryptionKey`, SQLITE_AUTH);
    if (!equalBytes(cipher.check, h.keyCheck)) throw new SqliteError(`replica object ${name} was encrypted with another key than the encryptionKey given`, SQLITE_AUTH);
    try {
      payload = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: h.iv as Uint8Array<ArrayBuffer>, additionalData: bytes.subarray(0, headerSize) as Uint8Array<ArrayBuffer> },
        cipher.key, payload as Uint8Array<ArrayBuffer>));
    } catch {
      throw corrupt(`replica object ${name} fails its authentication (changed after it was written)`);
    }
  } else if (cipher !== null) {
    throw new SqliteError(`replica object ${name} is not encrypted, but an encryptionKey was given`, SQLITE_MISUSE);
  }
  if (content && !equalBytes(await sha256(payload), h.contentHash)) throw corrupt(`replica object ${name}: its pages do not match their checksum`);
  let pages: Uint8Array;
  try {
    pages = h.gzip ? await decompress(payload) : payload;
  } catch {
    throw corrupt(`replica object ${name}: its compressed pages are damaged`);
  }
  let n = 0;
  for (let i = 1; i < h.runs.length; i += 2) n += h.runs[i]!;
  if (pages.length !== n * h.pageSize) throw corrupt(`replica object ${name} holds ${pages.length} bytes of pages, its header says ${n * h.pageSize}`);
  return pages;
}

interface Zlib {
  gzip(b: Uint8Array, cb: (e: Error | null, r: Uint8Array) => void): void;
  gunzip(b: Uint8Array, cb: (e: Error | null, r: Uint8Array) => void): void;
}
/** node:zlib where the runtime has it (one call in the thread pool: ~2x the web streams' speed here). */
const zlib = builtin<Zlib>("node:zlib");
const viaZlib = (fn: "gzip" | "gunzip", b: Uint8Array) => new Promise<Uint8Array>((res, rej) => zlib![fn](b, (e, r) => (e ? rej(e) : res(r))));

async function compress(b: Uint8Array): Promise<Uint8Array> {
  return zlib ? viaZlib("gzip", b) : pipe(b, new CompressionStream("gzip"));
}
async function decompress(b: Uint8Array): Promise<Uint8Array> {
  return zlib ? viaZlib("gunzip", b) : pipe(b, new DecompressionStream("gzip"));
}
async function pipe(b: Uint8Array, t: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const writer = t.writable.getWriter();
  const written = writer.write(b as Uint8Array<ArrayBuffer>).then(() => writer.close());
  written.catch(() => {}); // the read below reports the failure
  const chunks: Uint8Array[] = [];
  const reader = t.readable.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
  }
  await written;
  return chunks.length === 1 ? chunks[0]! : concat(chunks);
}

/** Pages as runs [first, count] from ascending page numbers. */
export function runsOf(pgnos: ArrayLike<number>): Uint32Array {
  const out: number[] = [];
  for (let i = 0; i < pgnos.length; i++) {
    const p = pgnos[i]!;
    if (out.length > 0 && out[out.length - 2]! + out[out.length - 1]! === p) out[out.length - 1]!++;
    else out.push(p, 1);
  }
  return Uint32Array.from(out);
}

/**
 * The hash of a whole database: SHA-256 over its pages' SHA-256s in page order, page 1's taken
 * with the bytes every copy sets anew (change counter, schema cookie, version-valid-for, SQLite
 * version) zeroed: two copies of one state hash the same.
 */
export async function dbHash(pageHashes: Uint8Array, pageCount: number): Promise<Uint8Array> {
  return sha256(pageHashes.subarray(0, pageCount * HASH_BYTES));
}

/** Page 1 with the bytes every copy sets anew zeroed (see dbHash()); other pages as they are. */
function normalized(pgno: number, page: Uint8Array): Uint8Array {
  if (pgno !== 1) return page;
  const p = page.slice();
  p.fill(0, 24, 28);
  p.fill(0, 40, 44);
  p.fill(0, 92, 100);
  return p;
}

/** SHA-256 of one page (page 1 normalized, see dbHash()). */
export async function pageHash(pgno: number, page: Uint8Array): Promise<Uint8Array> {
  return sha256(normalized(pgno, page));
}

/** Reads the pages of `runs` ([first, count] pairs) from `file` into `into`, in order; zeros past the file's end. */
export function readRuns(file: Pick<VfsFile, "read">, runs: ArrayLike<number>, pageSize: number, into: Uint8Array): void {
  for (let i = 0, at = 0; i < runs.length; i += 2) {
    const run = into.subarray(at, at + runs[i + 1]! * pageSize);
    const got = file.read(run, (runs[i]! - 1) * pageSize);
    if (got < run.length) run.fill(0, got);
    at += run.length;
  }
}

/** The hashes of `count` pages from `first` on, whose bytes are in `pages`, into `into`. */
export async function hashPages(into: Uint8Array, first: number, count: number, pages: Uint8Array, pageSize: number): Promise<void> {
  const page = (k: number) => pages.subarray(k * pageSize, (k + 1) * pageSize);
  if (nodeHash) {
    for (let k = 0; k < count; k++) into.set(nodeHash(normalized(first + k, page(k))), (first + k - 1) * HASH_BYTES);
    return;
  }
  const BATCH = 256;
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    const hs = await Promise.all(Array.from({ length: n }, (_, k) => pageHash(first + i + k, page(i + k))));
    hs.forEach((h, k) => into.set(h, (first + i + k - 1) * HASH_BYTES));
  }
}

/** XORs `b` into `a` (equal lengths). */
export function xorInto(a: Uint8Array, b: Uint8Array): void {
  const n = a.length & ~3;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const a32 = new Uint32Array(a.buffer, a.byteOffset, n / 4);
    const b32 = new Uint32Array(b.buffer, b.byteOffset, n / 4);
    for (let i = 0; i < a32.length; i++) a32[i]! ^= b32[i]!;
  } else {
    for (let i = 0; i < n; i++) a[i]! ^= b[i]!;
  }
  for (let i = n; i < a.length; i++) a[i]! ^= b[i]!;
}
