#!/usr/bin/env -S node --no-concurrent-recompilation --no-concurrent-sparkplug
// The command-line tool: backup, restore and verify SQLite files with the library's backup().
// Exit codes: 0 ok, 1 failure, 2 usage, 130 interrupted (Ctrl-C, SIGTERM or SIGHUP; destination
// unchanged).
import { copyFileSync, createReadStream, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isatty, WriteStream } from "node:tty";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { BackupProgress, VerifyDifference } from "./index.js";

// Imported where used: on Node 20 the main thread never loads the library (see runInWorker()).
const library = () => import("./index.js");

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130; // 128 + SIGINT, what shells report for Ctrl-C; also for SIGTERM and SIGHUP
/** The signals that stop a backup or restore cleanly (SIGHUP: the terminal or the SSH session closed). */
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

const HELP = `sqlite-backup-wasm: copy live SQLite databases safely, with SQLite's Online Backup API
(SQLite compiled to WebAssembly: nothing native to install).

Usage:
  sqlite-backup-wasm backup  <source> <destination> [options]
      Copy the database <source> into the file <destination>. The copy is a consistent
      snapshot even while this process copies step by step. Refuses to replace an existing
      <destination> unless --force is given.
  sqlite-backup-wasm restore <backup> <database> [options]
      Copy the backup file <backup> over <database> (created if missing). <backup> must pass
      PRAGMA quick_check first. With real file locks (see --version), programs that use
      <database> wait while the restore commits; without them, stop those programs first.
      <destination> "-" writes the backup to standard output, <backup> "-" reads it from
      standard input (the bytes of a database file; progress and results go to stderr).
  sqlite-backup-wasm verify  <source> <copy> [options]
      Check that <copy> passes PRAGMA integrity_check and holds the same schema and rows as
      <source>, table by table. Reads both files, changes neither.
  sqlite-backup-wasm replicate <database> <target-url> [--interval 1s]
      Replicate <database> into <target-url> until Ctrl-C (or SIGTERM): a sync every
      interval when it changed, each uploading only the pages that changed. A clean stop
      finishes the last sync. See docs/replicas.md.
  sqlite-backup-wasm restore <target-url> <database> [--at <time or sync number>]
      Restore the last sync of a replica (or the last at or before --at: an ISO time, or a
      sync's number) into <database>, after checking every checksum and integrity_check.
  sqlite-backup-wasm replica ls|verify <target-url>
      List a replica's syncs; or restore its last sync into a temporary file and check it.

Target URLs: file:///path/to/dir, or s3://bucket/prefix with the endpoint, region and
credentials from AWS_ENDPOINT_URL, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.

Options:
  --pages-per-step <n>  pages copied per step; "all" (or -1) copies everything in one step.
                        Default: adaptive, about 4 ms of work per step.
  --pause <ms>          wait this long between steps, to leave I/O to other programs (default 0)
  --busy-timeout <ms>   keep retrying while the source is locked this long (default 5000)
  -f, --force           backup: replace an existing destination
  --full                copy every page even over an existing database (default: over a
                        database of the same page size, write only the pages that changed)
  --json                machine-readable output: one JSON object per line on stdout
  -q, --quiet           no progress output (errors are still reported)
  --interval <time>     replicate: how often a sync runs, e.g. 500ms, 1s, 5m (default 1s)
  --at <time|number>    restore from a replica: an ISO time or a sync's number (default: last)
  --key-file <file>     replicas: the encryption key, 32 bytes raw or 64 hex digits
  -h, --help            show this help
  -v, --version         show the versions, the runtime, and which file locks are in effect

Progress: a bar with pages, rate and ETA when stderr is a terminal, a plain line about once a
second otherwise. Ctrl-C, SIGTERM and SIGHUP stop a backup or restore and leave the destination
as it was.

Exit codes: 0 success, 1 failure (I/O error, not a database, verify found a difference),
2 usage error, 130 interrupted (Ctrl-C, SIGTERM or SIGHUP).

Examples:
  npx sqlite-backup-wasm backup app.db backups/app-2024-06-01.db
  npx sqlite-backup-wasm backup app.db copy.db --pause 10 --pages-per-step 256
  npx sqlite-backup-wasm verify app.db backups/app-2024-06-01.db
  npx sqlite-backup-wasm restore backups/app-2024-06-01.db app.db --json
  npx sqlite-backup-wasm backup app.db - | gzip | aws s3 cp - s3://bucket/app.db.gz
  aws s3 cp s3://bucket/app.db.gz - | gunzip | npx sqlite-backup-wasm restore - app.db
`;

class UsageError extends Error {}
class Failure extends Error {}

interface Options {
  pagesPerStep: number | undefined;
  pauseMs: number;
  busyTimeoutMs: number;
  force: boolean;
  full: boolean;
  json: boolean;
  quiet: boolean;
}

/**
 * Output: JSON lines on stdout with --json, otherwise human text (results stdout, progress
 * stderr). `toStderr`: stdout carries a backup ("backup <source> -"), so everything goes to stderr.
 */
class Out {
  constructor(readonly json: boolean, readonly quiet: boolean, readonly toStderr = false) {}
  #write(line: string): void {
    (this.toStderr ? process.stderr : process.stdout).write(line + "\n");
  }
  event(obj: Record<string, unknown>, text?: string): void {
    if (this.json) this.#write(JSON.stringify(obj));
    else if (text !== undefined && !this.quiet) this.#write(text);
  }
  error(obj: Record<string, unknown>, text: string): void {
    if (this.json) this.#write(JSON.stringify({ event: "error", ...obj }));
    else process.stderr.write(`sqlite-backup-wasm: ${text}\n`);
  }
}

const OPTIONS = {
  "pages-per-step": { type: "string" },
  pause: { type: "string" },
  "busy-timeout": { type: "string" },
  force: { type: "boolean", short: "f" },
  full: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  interval: { type: "string" },
  at: { type: "string" },
  "key-file": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

/**
 * "--pages-per-step -1" as "--pages-per-step=-1": parseArgs takes a value that starts with "-"
 * only after "=" (else it calls it ambiguous). Only before "--": what follows is positionals.
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    const takesValue = arg.startsWith("--") && OPTIONS[arg.slice(2) as keyof typeof OPTIONS]?.type === "string";
    if (takesValue && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv), allowPositionals: true, strict: true, options: OPTIONS });
  } catch (e) {
    return usage((e as Error).message, argv.includes("--json"));
  }
  const { values, positionals } = parsed;
  const json = values.json === true;
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  if (values.version) {
    const sqlite = await (await library()).loadSqlite();
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
    const runtime = g.Deno ? `deno ${g.Deno.version.deno}` : g.Bun ? `bun ${g.Bun.version}` : `node ${process.versions.node}`;
    const locks = sqlite.locking === "os" ? "real file locks, shared with native SQLite processes" : "this process only";
    new Out(json, false).event({ event: "version", version: pkg.version, sqlite: sqlite.version, runtime, locking: sqlite.locking, lockingReason: sqlite.lockingReason },
      `sqlite-backup-wasm ${pkg.version} (SQLite ${sqlite.version}) on ${runtime}\n` +
      `file locks: ${locks} (${sqlite.lockingReason})\n` +
      `supported: Node >= 20, Deno >= 2, Bun >= 1.4; real file locks on Linux with Node >= 26, Bun, Deno --allow-ffi`);
    return EXIT_OK;
  }
  const [command, ...args] = positionals;
  if (command === undefined) return usage("no command given", json);
  if (command === "replicate" || command === "replica" || (command === "restore" && isTargetUrl(args[0]))) {
    return replicaCommand(command, args, values, json);
  }
  for (const o of ["interval", "at", "key-file"] as const) {
    if (values[o] !== undefined) return usage(`--${o} only applies to replicas (replicate, restore <target-url>, replica)`, json);
  }
  if (!["backup", "restore", "verify"].includes(command)) return usage(`unknown command "${command}"`, json);
  if (args.length !== 2) return usage(`${command} takes exactly two files, got ${args.length}`, json);
  const [from, to] = args as [string, string];

  let opts: Options;
  try {
    opts = {
      pagesPerStep: parsePages(values["pages-per-step"]),
      pauseMs: parseMs("--pause", values.pause, 0),
      busyTimeoutMs: parseMs("--busy-timeout", values["busy-timeout"], 5000),
      force: values.force === true,
      full: values.full === true,
      json,
      quiet: values.quiet === true,
    };
    if (command !== "backup" && opts.force) throw new UsageError(`--force only applies to backup`);
    if (command === "verify" && opts.full) throw new UsageError(`--full only applies to backup and restore`);
  } catch (e) {
    return usage((e as Error).message, json);
  }

  const out = new Out(json, opts.quiet, command === "backup" && to === "-");
  try {
    if (command === "verify") return await verify(from, to, out);
    if (command === "backup" && to === "-") return await backupToStdout(from, opts, out);
    if (command === "restore" && from === "-") return await restoreFromStdin(to, opts, out);
    return await copy(command as "backup" | "restore", from, to, opts, out);
  } catch (e) {
    return failed(e, command, json, out);
  }
}

function usage(message: string, json: boolean): number {
  if (json) process.stdout.write(JSON.stringify({ event: "error", usage: true, message }) + "\n");
  else process.stderr.write(`sqlite-backup-wasm: ${message}\nRun "sqlite-backup-wasm --help" for usage.\n`);
  return EXIT_USAGE;
}

/** "all" or -1, or a positive safe integer in decimal digits (more than the database's pages: all). */
function parsePages(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v === "all" || v === "-1") return -1;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n === 0) {
    throw new UsageError(`--pages-per-step must be a positive integer up to 2^53-1, or "all" (-1), got "${v}"`);
  }
  return n;
}

function parseMs(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number of milliseconds >= 0, got "${v}"`);
  return n;
}

/** The file must exist and be a regular file: SQLite would otherwise create an empty one. */
function requireFile(path: string, role: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) throw new Failure(`${role} ${path} does not exist`);
  if (!st.isFile()) throw new Failure(`${role} ${path} is not a file`);
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false; // b does not exist yet
  }
}

async function copy(command: "backup" | "restore", from: string, to: string, opts: Options, out: Out): Promise<number> {
  requireFile(from, command === "backup" ? "source" : "backup");
  if (sameFile(from, to)) throw new UsageError(`${from} and ${to} are the same file`);
  const destExists = statSync(to, { throwIfNoEntry: false }) !== undefined;
  if (command === "backup" && destExists && !opts.force) {
    throw new Failure(`destination ${to} exists; pass --force to replace it`);
  }
  const sqlite = await (await library()).loadSqlite();
  using source = sqlite.open(from, { readonly: true });
  if (command === "restore") {
    // A damaged backup would destroy the database it replaces: check it before touching anything.
    const { checkIntegrity } = await import("./ops/verify.js");
    const problems = checkIntegrity(source, "quick_check");
    if (problems.length > 0) throw new Failure(`backup ${from} fails PRAGMA quick_check: ${problems.join("; ")}`);
  }
  const pageSize = Number(source.get<{ page_size: number }>("PRAGMA page_size")!.page_size);

  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new Interrupted(signal));
  onSignals(onSignal);
  const progress = await Progress.create(command, pageSize, out);
  try {
    const result = await sqlite.backup(source, to, {
      ...(opts.pagesPerStep !== undefined ? { pagesPerStep: opts.pagesPerStep } : {}),
      pauseMs: opts.pauseMs,
      busyTimeoutMs: opts.busyTimeoutMs,
      signal: controller.signal,
      onProgress: (p) => progress.update(p),
      ...(opts.full ? { incremental: false } : {}),
    });
    progress.stop();
    const bytes = result.pageCount * pageSize;
    out.event(
      { event: "done", command, source: from, destination: to, pageCount: result.pageCount, pageSize, bytes,
        steps: result.steps, restarts: result.restarts, elapsedMs: Math.round(result.elapsedMs),
        incremental: result.incremental, pagesWritten: result.pagesWritten, pagesCompared: result.pagesCompared },
      result.incremental
        ? `${command}: copied the changed pages: ${result.pagesWritten} of ${result.pageCount} pages changed ` +
          `(${mib(result.pagesWritten * pageSize)} written of ${mib(bytes)}) from ${from} to ${to} in ${seconds(result.elapsedMs)}`
        : `${command}: copied ${result.pageCount} pages (${mib(bytes)}) from ${from} to ${to} in ` +
          `${seconds(result.elapsedMs)} (${rate(bytes, result.elapsedMs)})`,
    );
    return EXIT_OK;
  } catch (e) {
    progress.stop();
    if (!(e instanceof Interrupted)) throw e;
    const kept = destExists ? `${to} is unchanged` : `${to} was not created`;
    out.error({ command, interrupted: e.signal, message: `interrupted by ${e.signal}; ${kept}` }, `${command} interrupted by ${e.signal}; ${kept}`);
    return EXIT_INTERRUPTED;
  }
  // The handlers stay: a second signal (a terminal signals the whole process group and the parent
  // forwards too) must not kill the process while it rolls back or reports.
}

/**
 * backup <source> -: the backup's bytes on stdout, as the reader takes them (a pipe's pace is the
 * reader's). Progress counts the bytes written out, the result goes to stderr. A failure or a
 * signal stops the output short and exits non-zero: the reader must not keep what it got.
 */
async function backupToStdout(from: string, opts: Options, out: Out): Promise<number> {
  requireFile(from, "source");
  if (opts.full) throw new UsageError(`--full only applies to a backup into a file`);
  if ((inWorker ? isatty(1) : process.stdout.isTTY) && !opts.force) {
    throw new UsageError(`refusing to write a database to a terminal: redirect or pipe standard output (or pass --force)`);
  }
  const sqlite = await (await library()).loadSqlite();
  using source = sqlite.open(from, { readonly: true });
  const pageSize = Number(source.get<{ page_size: number }>("PRAGMA page_size")!.page_size);
  const controller = new AbortController();
  onSignals((signal) => controller.abort(new Interrupted(signal)));
  const progress = await Progress.create("backup", pageSize, out);
  const t0 = performance.now();
  let bytes = 0;
  try {
    const stream = sqlite.backupToStream(source, {
      ...(opts.pagesPerStep !== undefined ? { pagesPerStep: opts.pagesPerStep } : {}),
      pauseMs: opts.pauseMs,
      busyTimeoutMs: opts.busyTimeoutMs,
      signal: controller.signal,
      onStreamProgress: (p) => {
        bytes = p.bytes;
        progress.update({ remaining: (p.totalBytes - p.bytes) / pageSize, pageCount: p.totalBytes / pageSize });
      },
    });
    await pipeline(Readable.fromWeb(stream as import("node:stream/web").ReadableStream), process.stdout);
    progress.stop();
    const elapsedMs = performance.now() - t0;
    out.event({ event: "done", command: "backup", source: from, destination: "-", pageCount: bytes / pageSize, pageSize, bytes, elapsedMs: Math.round(elapsedMs) },
      `backup: wrote ${bytes / pageSize} pages (${mib(bytes)}) of ${from} to standard output in ${seconds(elapsedMs)} (${rate(bytes, elapsedMs)})`);
    return EXIT_OK;
  } catch (e) {
    progress.stop();
    if ((e as NodeJS.ErrnoException).code === "EPIPE" || (e instanceof Interrupted && e.signal === "SIGPIPE")) {
      out.error({ command: "backup", message: "the reader of standard output went away; the output is incomplete" }, "backup failed: the reader of standard output went away; the output is incomplete");
      return EXIT_FAILURE;
    }
    if (!(e instanceof Interrupted)) throw e;
    out.error({ command: "backup", interrupted: e.signal, message: `interrupted by ${e.signal}; the output is incomplete` }, `backup interrupted by ${e.signal}; the output is incomplete`);
    return EXIT_INTERRUPTED;
  }
}

/**
 * restore - <database>: the backup's bytes from stdin become <database> once all of them arrived
 * and passed the checks (restoreFromStream: header, length, quick_check); until then, and on any
 * failure, <database> is as it was.
 */
async function restoreFromStdin(to: string, opts: Options, out: Out): Promise<number> {
  if (to === "-") throw new UsageError(`restore - needs a database file to restore into`);
  if (opts.pagesPerStep !== undefined || opts.pauseMs !== 0 || opts.full) {
    throw new UsageError(`--pages-per-step, --pause and --full do not apply to restore -`);
  }
  if (inWorker ? isatty(0) : process.stdin.isTTY) throw new UsageError(`restore - reads the backup from standard input: pipe or redirect it`);
  const sqlite = await (await library()).loadSqlite();
  const controller = new AbortController();
  onSignals((signal) => controller.abort(new Interrupted(signal)));
  const destExists = statSync(to, { throwIfNoEntry: false }) !== undefined;
  const progress = await Progress.create("restore", 4096, out);
  try {
    // In the Node 20 worker (runInWorker) process.stdin has no data: fd 0 is read directly there.
    const stdin = inWorker ? createReadStream("", { fd: 0, autoClose: false, highWaterMark: 1 << 20 }) : process.stdin;
    const input = withPageSize(stdin, (n) => (progress.pageSize = n));
    const result = await sqlite.restoreFromStream(input, to, { busyTimeoutMs: opts.busyTimeoutMs, signal: controller.signal, onProgress: (p) => progress.update(p) });
    progress.stop();
    const bytes = result.pageCount * progress.pageSize;
    out.event(
      { event: "done", command: "restore", source: "-", destination: to, pageCount: result.pageCount, pageSize: progress.pageSize, bytes,
        elapsedMs: Math.round(result.elapsedMs), incremental: result.incremental, pagesWritten: result.pagesWritten },
      `restore: ${result.pageCount} pages (${mib(bytes)}) from standard input to ${to} in ${seconds(result.elapsedMs)} (${rate(bytes, result.elapsedMs)})`,
    );
    return EXIT_OK;
  } catch (e) {
    progress.stop();
    if (!(e instanceof Interrupted)) throw e;
    const kept = destExists ? `${to} is unchanged` : `${to} was not created`;
    out.error({ command: "restore", interrupted: e.signal, message: `interrupted by ${e.signal}; ${kept}` }, `restore interrupted by ${e.signal}; ${kept}`);
    return EXIT_INTERRUPTED;
  }
}

/** The chunks of `input`, telling `onPageSize` the header's page size (bytes 16..17) as it passes. */
async function* withPageSize(input: AsyncIterable<Uint8Array>, onPageSize: (n: number) => void): AsyncGenerator<Uint8Array> {
  const head: number[] = [];
  for await (const chunk of input) {
    if (head.length < 18) {
      head.push(...chunk.subarray(0, 18 - head.length));
      if (head.length === 18) {
        const v = (head[16]! << 8) | head[17]!;
        if (v >= 512) onPageSize(v);
        else if (v === 1) onPageSize(65536);
      }
    }
    yield chunk;
  }
}

class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

/** Progress reporting: cli-progress bar on a TTY, throttled plain lines or JSON events otherwise. */
class Progress {
  #last = 0;
  #start = performance.now();
  private constructor(
    readonly command: string,
    /** Bytes per page, for the rate (restore - learns it from the stream's header). */
    public pageSize: number,
    readonly out: Out,
    readonly bar: import("cli-progress").SingleBar | null,
  ) {}

  static async create(command: string, pageSize: number, out: Out): Promise<Progress> {
    const stream = out.json || out.quiet ? null : terminal();
    if (stream === null) return new Progress(command, pageSize, out, null);
    // Loaded only for terminals, so scripts and library users never pay for it.
    const { default: cliProgress } = await import("cli-progress");
    const bar = new cliProgress.SingleBar({
      format: `${command} {bar} {percentage}% | {value}/{total} pages | {rate} | ETA {eta_formatted}`,
      stream,
      hideCursor: true,
      etaBuffer: 50,
      fps: 10,
    }, cliProgress.Presets.shades_classic);
    return new Progress(command, pageSize, out, bar);
  }

  #started = false;

  update(p: BackupProgress): void {
    const copied = p.pageCount - p.remaining;
    const now = performance.now();
    const elapsed = now - this.#start;
    if (this.bar) {
      const payload = { rate: rate(copied * this.pageSize, elapsed) };
      if (!this.#started) {
        this.bar.start(p.pageCount, copied, payload);
        this.#started = true;
      } else {
        this.bar.setTotal(p.pageCount);
        this.bar.update(copied, payload);
      }
      return;
    }
    // The first event (so callers see the copy has started), the last, and at most a few per second.
    const final = p.remaining === 0;
    const interval = this.out.json ? 100 : 1000;
    if (this.#last !== 0 && !final && now - this.#last < interval) return;
    this.#last = now;
    const percent = p.pageCount === 0 ? 100 : Math.floor((copied / p.pageCount) * 100);
    if (this.out.json) {
      this.out.event({ event: "progress", command: this.command, copied, remaining: p.remaining, pageCount: p.pageCount, elapsedMs: Math.round(elapsed) });
    } else if (!this.out.quiet) {
      const eta = copied > 0 && !final ? `, ETA ${seconds((elapsed / copied) * p.remaining)}` : "";
      process.stderr.write(`${this.command}: ${copied}/${p.pageCount} pages (${percent}%), ${rate(copied * this.pageSize, elapsed)}${eta}\n`);
    }
  }

  stop(): void {
    if (this.bar && this.#started) this.bar.stop();
  }
}

/**
 * The copy as its next read-write open sees it. A copy killed mid-backup (or by a power loss) keeps
 * a hot journal that only a read-write connection rolls back (a read-only one fails with
 * SQLITE_READONLY_ROLLBACK); verify never writes what it checks, so it rolls back a private copy
 * of the file and its journal, removed at dispose.
 */
function openAsRecovered(lib: typeof import("./index.js"), sqlite: import("./index.js").Sqlite, copyPath: string, out: Out):
  { db: import("./index.js").Database } & Disposable {
  const db = sqlite.open(copyPath, { readonly: true });
  try {
    db.get("SELECT count(*) FROM sqlite_schema");
    return { db, [Symbol.dispose]: () => db.close() };
  } catch (e) {
    db.close();
    if (!(e instanceof lib.SqliteError && e.extendedCode === lib.SQLITE_READONLY_ROLLBACK && existsSync(`${copyPath}-journal`))) throw e;
  }
  const dir = mkdtempSync(join(tmpdir(), "sbw-verify-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const file = join(dir, "copy.db");
    copyFileSync(copyPath, file);
    copyFileSync(`${copyPath}-journal`, `${file}-journal`);
    const recovered = sqlite.open(file);
    recovered.get("SELECT count(*) FROM sqlite_schema"); // rolls the journal back
    out.event({ event: "hot-journal", file: copyPath },
      `${copyPath} has a hot journal (a copy that did not finish): verifying what its next read-write open gives, the journal rolled back`);
    return { db: recovered, [Symbol.dispose]: () => (recovered.close(), remove()) };
  } catch (e) {
    remove();
    throw e;
  }
}

async function verify(sourcePath: string, copyPath: string, out: Out): Promise<number> {
  requireFile(sourcePath, "source");
  requireFile(copyPath, "copy");
  const lib = await library();
  const sqlite = await lib.loadSqlite();
  using source = sqlite.open(sourcePath, { readonly: true });
  using copy = openAsRecovered(lib, sqlite, copyPath, out);
  const r = await sqlite.verify(source, copy.db);

  const problems = r.integrity;
  out.event({ event: "integrity", file: copyPath, ok: problems.length === 0, problems },
    problems.length === 0 ? `integrity_check of ${copyPath}: ok` : `integrity_check of ${copyPath} failed:\n  ${problems.join("\n  ")}`);
  if (problems.length > 0) {
    out.event({ event: "result", command: "verify", ok: false, reason: "integrity" });
    if (!out.json) process.stderr.write(`sqlite-backup-wasm: verify failed: ${copyPath} is damaged\n`);
    return EXIT_FAILURE;
  }
  const difference = ({ message, ...detail }: VerifyDifference) => out.event({ event: "difference", ...detail }, `difference: ${message}`);
  for (const d of r.differences) if (d.what !== "rows") difference(d);
  for (const t of r.tables) {
    if (t.same) out.event({ event: "table", name: t.name, rows: t.rows, same: true }, `  ${t.name}: ${t.rows} rows, same`);
    else difference(r.differences.find((d) => d.what === "rows" && d.object === t.name)!);
  }
  const rows = r.tables.reduce((n, t) => n + t.rows, 0);
  if (r.ok) out.event({ event: "compared", tables: r.tables.length, rows }, `compared ${r.tables.length} tables, ${rows} rows`);
  out.event({ event: "result", command: "verify", ok: r.ok, differences: r.differences.length },
    r.ok ? `verify: ${copyPath} matches ${sourcePath}` : undefined);
  if (!r.ok && !out.json) process.stderr.write(`sqlite-backup-wasm: verify failed: ${r.differences.length} difference(s) between ${sourcePath} and ${copyPath}\n`);
  return r.ok ? EXIT_OK : EXIT_FAILURE;
}

// ---- replicas ----

const isTargetUrl = (s: string | undefined) => s !== undefined && /^(file|s3):\/\//.test(s);

/** The exit code of a command that threw: a usage error, or a failure reported on `out` (its SQLite code named). */
async function failed(e: unknown, command: string, json: boolean, out: Out): Promise<number> {
  if (e instanceof UsageError) return usage(e.message, json);
  const err = e as Error;
  const code = e instanceof (await library()).SqliteError ? e.codeName : undefined;
  out.error({ command, message: err.message, ...(code ? { code } : {}) }, `${command} failed: ${err.message}${code ? ` (${code})` : ""}`);
  return EXIT_FAILURE;
}

/** replicate, restore <target-url>, replica ls|verify. */
async function replicaCommand(command: string, args: string[], values: Record<string, unknown>, json: boolean): Promise<number> {
  const sub = command === "replica" ? args[0] : command;
  const rest = command === "replica" ? args.slice(1) : args;
  if (command === "replica" && sub !== "ls" && sub !== "verify") return usage(`replica takes ls or verify, got ${sub === undefined ? "nothing" : `"${sub}"`}`, json);
  const want = sub === "ls" || sub === "verify" ? 1 : 2;
  if (rest.length !== want) return usage(`${command}${command === "replica" ? ` ${sub}` : ""} takes ${want === 1 ? "a target URL" : "two arguments"}, got ${rest.length}`, json);
  const out = new Out(json, values.quiet === true);
  try {
    for (const o of ["pages-per-step", "pause", "force", "full"] as const) if (values[o] !== undefined) throw new UsageError(`--${o} does not apply to ${command}`);
    if (values.interval !== undefined && sub !== "replicate") throw new UsageError(`--interval only applies to replicate`);
    if (values.at !== undefined && sub !== "restore") throw new UsageError(`--at only applies to restore`);
    const lib = await library();
    const encryptionKey = values["key-file"] === undefined ? undefined : readKey(values["key-file"] as string);
    const busyTimeoutMs = parseMs("--busy-timeout", values["busy-timeout"] as string | undefined, 5000);
    const sqlite = await lib.loadSqlite();
    if (sub === "replicate") {
      const [db, url] = rest as [string, string];
      requireFile(db, "database");
      const target = targetOf(url, lib);
      const intervalMs = parseDuration(values.interval as string | undefined);
      const onSync = (i: import("./index.js").SyncInfo) => out.event(
        { event: "sync", seq: i.seq, time: i.time.toISOString(), kind: i.kind, pagesUploaded: i.pagesUploaded, bytesUploaded: i.bytesUploaded, pageCount: i.pageCount },
        i.kind === "none" ? `sync ${i.seq}: up to date` : `sync ${i.seq} (${i.kind}): ${i.pagesUploaded} of ${i.pageCount} pages, ${mib(i.bytesUploaded)} in ${seconds(i.elapsedMs)}`);
      const replica = sqlite.replicate(db, target, {
        intervalMs, encryptionKey, busyTimeoutMs, onSync,
        onError: (e) => out.error({ command, message: e.message, code: e.codeName }, `sync failed: ${e.message} (${e.codeName})`),
      });
      out.event({ event: "replicating", database: db, target: target.url, intervalMs }, `replicating ${db} to ${target.url} every ${seconds(intervalMs)} (Ctrl-C to stop)`);
      const first = await replica.sync().catch(async (e) => {
        await replica.close().catch(() => {});
        throw e;
      });
      onSync(first);
      const signal = await new Promise<string>((res) => onSignals((s) => res(s)));
      out.event({ event: "stopping", signal }, `${signal}: finishing the last sync`);
      await replica.close();
      out.event({ event: "stopped" }, "stopped: the replica holds the last sync");
      return EXIT_OK;
    }
    const url = sub === "restore" ? rest[0]! : rest[0]!;
    const target = targetOf(url, lib);
    if (sub === "restore") {
      const dest = rest[1]!;
      const at = parseAt(values.at as string | undefined);
      const r = await sqlite.restoreReplica(target, dest, { at, encryptionKey, busyTimeoutMs });
      out.event({ event: "done", command: "restore", target: target.url, destination: dest, seq: r.seq, time: r.time.toISOString(), pageCount: r.pageCount, objects: r.objects, bytesDownloaded: r.bytesDownloaded, elapsedMs: Math.round(r.elapsedMs) },
        `restore: sync ${r.seq} of ${r.time.toISOString()} (${r.pageCount} pages, ${r.objects} objects, ${mib(r.bytesDownloaded)}) from ${target.url} into ${dest} in ${seconds(r.elapsedMs)}`);
      return EXIT_OK;
    }
    if (sub === "verify") {
      const v = await sqlite.verifyReplica(target, { encryptionKey });
      out.event({ event: "result", command: "replica verify", ok: v.ok, seq: v.seq, time: v.time.toISOString(), pageCount: v.pageCount, objects: v.objects, hash: v.hash, integrity: v.integrity, tables: v.tables },
        v.ok ? `verify: sync ${v.seq} of ${v.time.toISOString()} restores (${v.objects} objects, ${v.pageCount} pages), its hash matches, integrity_check ok; ` +
          `${v.tables.map((t) => `${t.name} ${t.rows} rows`).join(", ")}` : `verify: sync ${v.seq} fails integrity_check: ${v.integrity.join("; ")}`);
      return v.ok ? EXIT_OK : EXIT_FAILURE;
    }
    // ls: the syncs, from the object names.
    const { parseName } = await import("./ops/replica/format.js");
    const bySeq = new Map<number, { kind: string; time: number; parts: number; have: number }>();
    for (const n of (await target.list()).map(parseName)) {
      if (n === null) continue;
      const e = bySeq.get(n.seq) ?? { kind: n.kind, time: n.timeMs, parts: n.parts, have: 0 };
      e.have++;
      bySeq.set(n.seq, e);
    }
    for (const [seq, e] of [...bySeq].sort((a, b) => a[0] - b[0])) {
      const complete = e.have === e.parts;
      out.event({ event: "sync", seq, time: new Date(e.time).toISOString(), kind: e.kind, parts: e.parts, complete },
        `${String(seq).padStart(8)}  ${new Date(e.time).toISOString()}  ${e.kind}${e.parts > 1 ? ` (${e.parts} parts)` : ""}${complete ? "" : "  INCOMPLETE"}`);
    }
    if (bySeq.size === 0) out.event({ event: "empty" }, `${target.url}: no syncs`);
    return EXIT_OK;
  } catch (e) {
    return failed(e, command, json, out);
  }
}

/** A target from file:///dir or s3://bucket/prefix (the rest from the AWS_* environment). */
function targetOf(url: string, lib: typeof import("./index.js")) {
  if (!isTargetUrl(url)) throw new UsageError(`not a target URL (file:///dir or s3://bucket/prefix): ${url}`);
  if (url.startsWith("file://")) return lib.fileTarget(decodeURIComponent(new URL(url).pathname));
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url)!;
  const env = process.env;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new UsageError("s3:// targets need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return lib.s3Target({
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1", bucket: m[1]!, prefix: m[2]!,
    ...(endpoint ? { endpoint } : {}),
    credentials: { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) },
  });
}

/** "500ms", "1s", "2m", "1h" or milliseconds. */
function parseDuration(v: string | undefined): number {
  if (v === undefined) return 1000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  const n = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "ms") as "ms"] : NaN;
  if (!(n >= 1)) throw new UsageError(`--interval must be a duration such as 500ms, 1s or 5m, got "${v}"`);
  return n;
}

/** --at: a sync's number, or a time Date.parse understands (ISO 8601). */
function parseAt(v: string | undefined): Date | number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--at must be a sync's number or a time (ISO 8601), got "${v}"`);
  return new Date(t);
}

function readKey(file: string): Uint8Array {
  const raw = readFileSync(file);
  const text = raw.toString("utf8").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16));
  if (raw.length === 32) return new Uint8Array(raw);
  throw new UsageError(`--key-file ${file} must hold 32 bytes or 64 hex digits`);
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
function rate(bytes: number, ms: number): string {
  return ms <= 0 ? "- MiB/s" : `${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s`;
}

/** Whether this is the worker thread runInWorker() started. */
const inWorker = !isMainThread && (workerData as { cliArgs?: unknown } | null)?.cliArgs !== undefined;
/** In that worker: the handler copy() set for the signals the main thread passes on. */
let workerSignalHandler: ((signal: NodeJS.Signals) => void) | null = null;

/** Calls `handler` on SIGINT, SIGTERM and SIGHUP from now on. */
function onSignals(handler: (signal: NodeJS.Signals) => void): void {
  if (inWorker) workerSignalHandler = handler;
  else for (const s of SIGNALS) process.on(s, handler);
}

/** stderr if it is a terminal (for the progress bar), else null; a worker's own stderr is a pipe. */
function terminal(): NodeJS.WritableStream | null {
  if (!inWorker) return process.stderr.isTTY ? process.stderr : null;
  return isatty(2) ? new WriteStream(2) : null;
}

/**
 * Node can hang at exit (0 CPU, forever): a background JS compile job waits for a GC that the
 * exiting main thread never runs (gdb: CollectionBarrier::AwaitCollectionBackground). Seen with
 * TurboFan's jobs on Node 20 (up to 1 run in 4 here) and Sparkplug's on Node 24, where it
 * compiles in the background by default. Compiling JS on the thread that runs it avoids it. The
 * bin's shebang passes both flags; started as `node cli.js` without the one its Node needs, the
 * tool runs in a worker instead: V8 reads the flags when it creates an isolate, so flags set
 * here hold for a worker started after them, not for this thread. The worker runs in this
 * process (a child process outlived a SIGKILL of its parent); this thread passes signals on and
 * exits with the worker's code.
 */
const nodeMajor = Number(process.versions.node.split(".")[0]);
const NO_CONCURRENT_JIT = [...(nodeMajor < 22 ? ["--no-concurrent-recompilation"] : []), ...(nodeMajor >= 24 ? ["--no-concurrent-sparkplug"] : [])];
function runInWorker(): void {
  for (const flag of NO_CONCURRENT_JIT) setFlagsFromString(flag);
  const worker = new Worker(new URL(import.meta.url), { workerData: { cliArgs: process.argv.slice(2) } });
  const pass = (signal: NodeJS.Signals) => worker.postMessage(signal);
  for (const s of SIGNALS) process.on(s, pass);
  // A signal the worker has no handler for yet: die of it, as without handlers.
  worker.on("message", (signal: NodeJS.Signals) => {
    for (const s of SIGNALS) process.off(s, pass);
    process.kill(process.pid, signal);
  });
  worker.on("error", (e) => process.stderr.write(`${e.stack ?? String(e)}\n`));
  // "backup <source> -" whose reader went away: the worker stops the backup as on a signal.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") worker.postMessage("SIGPIPE");
  });
  worker.on("exit", (code) => (process.exitCode = code));
}

/** The worker's side: signals from the main thread go to copy()'s handler, or back to die of. */
function listenForSignals(): void {
  const port = parentPort!;
  port.on("message", (signal: NodeJS.Signals) => {
    if (signal === "SIGPIPE") {
      // stdout's reader went away: the output waiting in this worker's stdout would keep the
      // copy (and this worker) waiting forever. The abort removes the spool at once; then stop.
      workerSignalHandler?.(signal);
      writeSync(2, "sqlite-backup-wasm: backup failed: the reader of standard output went away; the output is incomplete\n");
      process.exit(EXIT_FAILURE); // this worker thread; the main thread exits with its code
    }
    if (workerSignalHandler) workerSignalHandler(signal);
    else port.postMessage(signal);
  });
  port.unref(); // the worker still ends when its work is done
}

// Deno and Bun take other flags.
const plainNode = !("Deno" in globalThis) && !("Bun" in globalThis);
if (inWorker) {
  listenForSignals();
  process.exitCode = await main((workerData as { cliArgs: string[] }).cliArgs);
} else if (!plainNode || NO_CONCURRENT_JIT.every((flag) => process.execArgv.includes(flag))) {
  process.exitCode = await main(process.argv.slice(2));
} else runInWorker();
