/*
** The C half of the host bridge. SQLite is built with SQLITE_OS_OTHER=1, so it has no OS layer
** of its own: every VFS is a "host VFS" whose methods forward to functions the TypeScript loader
** puts in the import object (module "host"). The TS side keeps one JS object per open file,
** keyed by the sqlite3_file pointer, so the io methods pass nothing but that pointer and their
** arguments.
**
** Invariants the TS side relies on (src/runtime/host.ts keeps its side of them):
**  - a host function never unwinds into C: it returns a SQLite result code;
**  - pMethods is set only when the host's xOpen succeeded, so SQLite never calls xClose on a
**    file the host does not know;
**  - pointers are 32-bit (wasm32) and 64-bit integers cross as BigInt (-sWASM_BIGINT).
*/
#include <assert.h>
#include <stddef.h>
#include <string.h>
#include "sqlite3.h"

#define HOST(name) __attribute__((import_module("host"), import_name(#name)))

/* sqlite3_vfs methods; `vfs` is the index the host gave when it registered the VFS. */
HOST(osInit) int host_os_init(void);
HOST(xOpen) int host_open(int vfs, const char *zName, sqlite3_file *pFile, int flags, int *pOutFlags);
HOST(xDelete) int host_delete(int vfs, const char *zName, int syncDir);
HOST(xAccess) int host_access(int vfs, const char *zName, int flags, int *pResOut);
HOST(xFullPathname) int host_full_pathname(int vfs, const char *zName, int nOut, char *zOut);
HOST(xGetLastError) int host_get_last_error(int vfs, int nBuf, char *zBuf);
HOST(xRandomness) int host_randomness(int nByte, char *zOut);
HOST(xCurrentTimeMs) double host_current_time_ms(void);
HOST(xSleep) int host_sleep(int microseconds);

/* sqlite3_io_methods */
HOST(xClose) int host_close(sqlite3_file *);
HOST(xRead) int host_read(sqlite3_file *, void *, int, sqlite3_int64);
HOST(xWrite) int host_write(sqlite3_file *, const void *, int, sqlite3_int64);
HOST(xTruncate) int host_truncate(sqlite3_file *, sqlite3_int64);
HOST(xSync) int host_sync(sqlite3_file *, int);
HOST(xFileSize) int host_file_size(sqlite3_file *, sqlite3_int64 *);
HOST(xLock) int host_lock(sqlite3_file *, int);
HOST(xUnlock) int host_unlock(sqlite3_file *, int);
HOST(xCheckReservedLock) int host_check_reserved_lock(sqlite3_file *, int *);
HOST(xFileControl) int host_file_control(sqlite3_file *, int, void *);
HOST(xSectorSize) int host_sector_size(sqlite3_file *);
HOST(xDeviceCharacteristics) int host_device_characteristics(sqlite3_file *);
HOST(xShmMap) int host_shm_map(sqlite3_file *, int, int, int, void volatile **);
HOST(xShmLock) int host_shm_lock(sqlite3_file *, int, int, int);
HOST(xShmBarrier) void host_shm_barrier(sqlite3_file *);
HOST(xShmUnmap) int host_shm_unmap(sqlite3_file *, int);

/* The host needs nothing but the base struct: its state lives in JS. */
typedef struct HostFile { sqlite3_file base; } HostFile;

static const sqlite3_io_methods host_io_methods = {
  2, /* iVersion 2: has xShm*, no xFetch/xUnfetch (SQLITE_MAX_MMAP_SIZE=0) */
  host_close, host_read, host_write, host_truncate, host_sync, host_file_size,
  host_lock, host_unlock, host_check_reserved_lock, host_file_control, host_sector_size,
  host_device_characteristics, host_shm_map, host_shm_lock, host_shm_barrier, host_shm_unmap,
  0, 0
};

#define VFS_ID(p) ((int)(size_t)(p)->pAppData)

static int vfs_open(sqlite3_vfs *pVfs, sqlite3_filename zName, sqlite3_file *pFile, int flags, int *pOutFlags){
  int outFlags = flags;
  int rc;
  pFile->pMethods = 0;
  rc = host_open(VFS_ID(pVfs), zName, pFile, flags, &outFlags);
  if( rc==SQLITE_OK ){
    pFile->pMethods = &host_io_methods;
    if( pOutFlags ) *pOutFlags = outFlags;
  }
  return rc;
}
static int vfs_delete(sqlite3_vfs *pVfs, const char *zName, int syncDir){
  return host_delete(VFS_ID(pVfs), zName, syncDir);
}
static int vfs_access(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut){
  *pResOut = 0;
  return host_access(VFS_ID(pVfs), zName, flags, pResOut);
}
static int vfs_full_pathname(sqlite3_vfs *pVfs, const char *zName, int nOut, char *zOut){
  return host_full_pathname(VFS_ID(pVfs), zName, nOut, zOut);
}
static int vfs_randomness(sqlite3_vfs *pVfs, int nByte, char *zOut){
  (void)pVfs;
  return host_randomness(nByte, zOut);
}
/* The host decides: with real file locks another process may release a lock while we sleep;
** with the in-process table nobody can (one thread), so it returns at once (src/vfs/host.ts). */
static int vfs_sleep(sqlite3_vfs *pVfs, int microseconds){
  (void)pVfs;
  return host_sleep(microseconds);
}
static int vfs_current_time_int64(sqlite3_vfs *pVfs, sqlite3_int64 *pNow){
  (void)pVfs;
  /* Julian day in milliseconds: the Unix epoch is JD 2440587.5. */
  *pNow = (sqlite3_int64)host_current_time_ms() + (sqlite3_int64)210866760000000LL;
  return SQLITE_OK;
}
static int vfs_current_time(sqlite3_vfs *pVfs, double *pNow){
  sqlite3_int64 i;
  vfs_current_time_int64(pVfs, &i);
  *pNow = i/86400000.0;
  return SQLITE_OK;
}
static int vfs_get_last_error(sqlite3_vfs *pVfs, int nBuf, char *zBuf){
  return host_get_last_error(VFS_ID(pVfs), nBuf, zBuf);
}

/* Called by the host from inside host_os_init(), once per VFS it provides. */
int sbw_vfs_register(const char *zName, int id, int makeDefault, int mxPathname){
  sqlite3_vfs *p = sqlite3_malloc(sizeof(*p));
  char *zCopy = sqlite3_mprintf("%s", zName);
  if( p==0 || zCopy==0 ){ sqlite3_free(p); sqlite3_free(zCopy); return SQLITE_NOMEM; }
  memset(p, 0, sizeof(*p));
  p->iVersion = 2;
  p->szOsFile = sizeof(HostFile);
  p->mxPathname = mxPathname;
  p->zName = zCopy;
  p->pAppData = (void*)(size_t)id;
  p->xOpen = vfs_open;
  p->xDelete = vfs_delete;
  p->xAccess = vfs_access;
  p->xFullPathname = vfs_full_pathname;
  p->xRandomness = vfs_randomness;
  p->xSleep = vfs_sleep;
  p->xCurrentTime = vfs_current_time;
  p->xGetLastError = vfs_get_last_error;
  p->xCurrentTimeInt64 = vfs_current_time_int64;
  return sqlite3_vfs_register(p, makeDefault);
}

/* SQLITE_OS_OTHER: SQLite calls this from sqlite3_initialize(); the host registers its VFSes. */
int sqlite3_os_init(void){ return host_os_init(); }
int sqlite3_os_end(void){ return SQLITE_OK; }

/* Layout facts the TS side depends on, asserted here. */
_Static_assert(sizeof(void*)==4, "wasm32 pointers");
_Static_assert(sizeof(sqlite3_int64)==8, "64-bit integers cross as BigInt");
_Static_assert(offsetof(sqlite3_file, pMethods)==0, "pMethods first");
_Static_assert(offsetof(sqlite3_vfs, zName)==16, "src/runtime/runtime.ts (vfsOf) reads sqlite3_vfs.zName at 16");
