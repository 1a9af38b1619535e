// Interactive SQL shells in other processes, for the real-lock suite (test/native/lock-checks.ts):
// the native sqlite3 CLI, and a process of ours (test/native/js-shell.ts under the runtime that
// runs the tests). Both take SQL on stdin and answer in the CLI's list format ("a|b" per row,
// errors as text), so one driver serves both. run() sends SQL followed by a marker and resolves
// with the output lines before the marker, so a test knows exactly what one command printed and
// that it has finished. Runtime-neutral (Node, Bun, Deno through node:child_process).
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export interface Exit {
  code: number | null;
  signal: string | null;
}

export class Shell {
  /** Every line printed so far (rows, errors, markers excluded). */
  readonly lines: string[] = [];
  /** Resolves when the process has exited (listened for from the moment it is spawned). */
  readonly exited: Promise<Exit>;
  #exit: Exit | null = null;
  #seq = 0;
  #partial = "";
  #waiters: (() => void)[] = [];
  #stderr = "";

  private constructor(readonly label: string, readonly proc: ChildProcess, readonly protocol: "cli" | "json") {
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
        this.#wake();
      });
      proc.on("error", (e) => {
        this.#exit = { code: -1, signal: String(e) };
        resolve(this.#exit);
        this.#wake();
      });
    });
    proc.stdin!.on("error", () => {}); // EPIPE after a kill
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => {
      const parts = (this.#partial + d).split("\n");
      this.#partial = parts.pop()!;
      for (const p of parts) this.lines.push(p);
      this.#wake();
    });
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (d: string) => void (this.#stderr += d));
  }

  /**
   * The native CLI on `file`, line-buffered (stdbuf: it block-buffers a pipe) with its stderr
   * merged into stdout (so errors stay in order), `.timeout ms`.
   */
  static native(file: string, timeoutMs = 10000): Shell {
    const proc = spawn("sh", ["-c", 'exec stdbuf -oL sqlite3 -batch "$0" 2>&1', file], { stdio: ["pipe", "pipe", "ignore"] });
    const s = new Shell(`sqlite3 ${file}`, proc, "cli");
    s.send(`.timeout ${timeoutMs}\n`);
    return s;
  }

  /** A process of ours (same runtime as this one) with one connection to `file`. */
  static ours(file: string, timeoutMs = 10000): Shell {
    const script = join(here, "js-shell.ts");
    const g = globalThis as { Deno?: { execPath(): string } };
    const [exe, args] = g.Deno
      ? [g.Deno.execPath(), ["run", "--sloppy-imports", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-sys", script]]
      : [process.execPath, [...process.execArgv, script]];
    const proc = spawn(exe, [...args, file, String(timeoutMs)], { stdio: ["pipe", "pipe", "pipe"] });
    return new Shell(`our shell ${file}`, proc, "json");
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Writes raw input (CLI syntax for the native shell); does not wait. */
  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  /** Input bytes not yet taken by the process (for pumps that keep a shell busy). */
  get backlog(): number {
    return this.proc.stdin!.writableLength;
  }

  /** Queues SQL without waiting for it (see run()). */
  queue(sql: string): void {
    this.send(this.protocol === "cli" ? `${sql}\n` : `${JSON.stringify(sql)}\n`);
  }

  /**
   * Runs SQL (several statements allowed) and resolves with the lines it printed, after which
   * the shell is idle. Rejects when the process exits first or nothing comes back in `ms`.
   */
  async run(sql: string, ms = 15000): Promise<string[]> {
    const marker = `sync-${++this.#seq}`;
    const from = this.lines.length;
    // The CLI reads a statement until its ";": terminate the SQL and the marker.
    this.queue(this.protocol === "cli" && !/;\s*$/.test(sql) ? `${sql};` : sql);
    this.queue(`SELECT '${marker}';`);
    const deadline = Date.now() + ms;
    for (;;) {
      const at = this.lines.indexOf(marker, from);
      if (at >= 0) {
        const out = this.lines.slice(from, at);
        this.lines.splice(at, 1);
        return out;
      }
      if (this.#exit) throw new Error(`${this.label} exited (${JSON.stringify(this.#exit)}) during ${sql}: ${this.#tail(from)}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: no answer in ${ms} ms to ${sql}: ${this.#tail(from)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  #tail(from: number): string {
    return JSON.stringify(this.lines.slice(from).slice(-5)) + (this.#stderr ? ` stderr: ${this.#stderr.slice(-500)}` : "");
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Ends input and waits for a normal exit. */
  async close(): Promise<Exit> {
    this.proc.stdin!.end();
    return this.exited;
  }

  /** SIGKILL, and wait until the process is gone (its descriptors, and so its locks, with it). */
  async kill(): Promise<Exit> {
    if (!this.#exit) this.proc.kill("SIGKILL");
    return this.exited;
  }
}
