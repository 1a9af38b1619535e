// The types of the peers the bench scripts import, as far as they use them: `npm run typecheck`
// runs without bench/'s install (better-sqlite3 and sql.js ship no types anyway), and the
// library's @types/node (Node 20) has no node:sqlite. Ambient declarations take precedence over
// an installed package, so the check is the same with bench/node_modules and without it.
// Remove the node:sqlite block once the root @types/node declares that module.

declare module "better-sqlite3" {
  namespace Database {
    interface Options {
      readonly?: boolean;
      /** ms to wait on a locked database */
      timeout?: number;
    }
    interface RunResult {
      changes: number;
      lastInsertRowid: number | bigint;
    }
    interface Statement {
      run(...params: unknown[]): RunResult;
      /** The first row (an object by column name), or undefined. */
      get(...params: unknown[]): unknown;
      all(...params: unknown[]): unknown[];
    }
    interface BackupProgress {
      totalPages: number;
      remainingPages: number;
    }
    interface BackupOptions {
      /** Called after each step; its return value is the next step's page count. */
      progress?: (info: BackupProgress) => number;
    }
  }
  class Database {
    /** A file name, or a serialized database (an in-memory copy of it). */
    constructor(filename: string | Buffer, options?: Database.Options);
    exec(sql: string): this;
    prepare(sql: string): Database.Statement;
    /** With `simple`, the first column of the first row; else every row. */
    pragma(source: string, options?: { simple?: boolean }): unknown;
    transaction<F extends (...args: never[]) => unknown>(fn: F): F;
    backup(destination: string, options?: Database.BackupOptions): Promise<Database.BackupProgress>;
    close(): this;
  }
  export = Database;
}

declare module "node:sqlite" {
  type SQLInputValue = null | number | bigint | string | Uint8Array;
  type SQLOutputValue = null | number | bigint | string | Uint8Array;
  interface DatabaseSyncOptions {
    open?: boolean;
    readOnly?: boolean;
    /** ms to wait on a locked database */
    timeout?: number;
  }
  class StatementSync {
    all(...params: SQLInputValue[]): Record<string, SQLOutputValue>[];
    get(...params: SQLInputValue[]): Record<string, SQLOutputValue> | undefined;
    run(...params: SQLInputValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  }
  class DatabaseSync {
    constructor(path: string, options?: DatabaseSyncOptions);
    exec(sql: string): void;
    prepare(sql: string): StatementSync;
    close(): void;
  }
  interface BackupOptions {
    source?: string;
    target?: string;
    /** pages per step */
    rate?: number;
    progress?: (info: { totalPages: number; remainingPages: number }) => void;
  }
  /** Resolves to the number of pages copied. */
  function backup(sourceDb: DatabaseSync, path: string, options?: BackupOptions): Promise<number>;
}

declare module "sql.js" {
  namespace initSqlJs {
    type SqlValue = number | string | Uint8Array | null;
    interface QueryExecResult {
      columns: string[];
      values: SqlValue[][];
    }
    class Database {
      /** Empty, or the bytes of a database file. */
      constructor(data?: ArrayLike<number> | Buffer | null);
      exec(sql: string): QueryExecResult[];
      /** The database file's bytes. */
      export(): Uint8Array;
      close(): void;
    }
    interface SqlJsStatic {
      Database: typeof Database;
    }
  }
  function initSqlJs(config?: object): Promise<initSqlJs.SqlJsStatic>;
  export = initSqlJs;
}

declare module "@sqlite.org/sqlite-wasm" {
  /** An address in the module's heap. */
  type WasmPointer = number;
  type SqlValue = number | bigint | string | Uint8Array | null;
  interface PreparedStatement {
    bind(values: readonly SqlValue[]): this;
    /** step(), then reset(): one execution of a statement that returns no rows. */
    stepReset(): this;
    finalize(): number | undefined;
  }
  class Database {
    constructor(filename?: string);
    /** The sqlite3* (the bench never reads it after close()). */
    readonly pointer: WasmPointer;
    exec(sql: string): this;
    prepare(sql: string): PreparedStatement;
    selectValue(sql: string): SqlValue | undefined;
    transaction<T>(callback: (db: this) => T): T;
    close(): void;
  }
  interface SAHPoolUtil {
    OpfsSAHPoolDb: typeof Database;
    removeVfs(): Promise<boolean>;
  }
  interface Sqlite3Static {
    version: { libVersion: string };
    oo1: { DB: typeof Database };
    wasm: { allocFromTypedArray(src: Uint8Array | Int8Array | ArrayBuffer): WasmPointer };
    capi: {
      SQLITE_OK: 0;
      SQLITE_BUSY: 5;
      SQLITE_LOCKED: 6;
      SQLITE_DONE: 101;
      SQLITE_DESERIALIZE_FREEONCLOSE: number;
      SQLITE_DESERIALIZE_RESIZEABLE: number;
      sqlite3_deserialize(db: WasmPointer, schema: string, data: WasmPointer, dbSize: number, bufferSize: number, flags: number): number;
      sqlite3_js_db_export(db: Database | WasmPointer, schema?: string): Uint8Array<ArrayBuffer>;
      sqlite3_backup_init(dest: WasmPointer, destName: string, source: WasmPointer, sourceName: string): WasmPointer;
      sqlite3_backup_step(backup: WasmPointer, pages: number): number;
      sqlite3_backup_finish(backup: WasmPointer): number;
    };
    installOpfsSAHPoolVfs(options: { name?: string; directory?: string; clearOnInit?: boolean }): Promise<SAHPoolUtil>;
  }
  export default function init(): Promise<Sqlite3Static>;
}

// bench/opfs/sahpool-worker.mjs imports the package from the page's server, by URL path.
declare module "*/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs" {
  export { default } from "@sqlite.org/sqlite-wasm";
}
