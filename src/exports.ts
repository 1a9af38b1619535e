// What both entry points export: index.ts (Node, Deno, Bun) and index.browser.ts (browsers) add
// their loadSqlite(), their Sqlite type and their VFSes to this.
export * from "./core/constants.js";
export { SqliteError, VfsError } from "./core/errors.js";
export { Backup, type StepResult } from "./handles/backup.js";
export { Database, type BindParams, type DeserializeOptions, type OpenOptions, type Row, type RunResult, type Transaction } from "./handles/database.js";
export { RowIterator, Statement } from "./handles/statement.js";
export type { BackupOptions, BackupProgress, BackupResult } from "./ops/options.js";
export type { ByteChunks, RestoreFromStreamOptions } from "./ops/stream/from-stream.js";
export type { BackupToStreamOptions, StreamProgress } from "./ops/stream/to-stream.js";
export type { ReplicateOptions, Replicator, SyncInfo } from "./ops/replica/replicate.js";
export type { ReplicaVerifyResult, RestoreReplicaOptions, RestoreResult, VerifyReplicaOptions } from "./ops/replica/restore.js";
export { s3Target, type PresignRequest, type S3Credentials, type S3TargetOptions } from "./ops/replica/s3.js";
export type { ReplicaTarget } from "./ops/replica/target.js";
export type { VerifyDifference, VerifyResult, VerifyTable } from "./ops/verify.js";
export { ForwardingFile, ForwardingVfs } from "./vfs/forwarding.js";
export { MemoryVfs } from "./vfs/memory.js";
export type { FileWatch, HoldResult, OpenResult, Vfs, VfsFile } from "./vfs/types.js";
