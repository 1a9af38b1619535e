/*
** Allocation-failure injection for the reliability tests (test/reliability-oom.test.ts), in the
** spirit of SQLite's own test_malloc.c: a SQLITE_CONFIG_MALLOC wrapper around the default
** allocator that fails the N-th xMalloc/xRealloc from the moment it is armed (once, or from N on).
**
** SQLITE_CONFIG_MALLOC is only accepted before sqlite3_initialize(), and the loader initialises
** at once, so the wrapper is installed by a constructor (run by the reactor's _initialize(), which
** the loader calls first). Disarmed, its cost is one well-predicted branch per allocation.
*/
#include "sqlite3.h"

static sqlite3_mem_methods real;  /* the default allocator, saved before ours is installed */
static int countdown;             /* 0: disarmed; else allocations left before the failing one */
static int persistent;            /* keep failing after the first failure */
static int hits;                  /* failures injected since the last arm */

/* True when this allocation must fail. */
static int fail_now(void){
  if( countdown==0 ) return 0;
  if( countdown>1 ){ countdown--; return 0; }
  hits++;
  if( !persistent ) countdown = 0;
  return 1;
}
static void *fault_malloc(int n){ return fail_now() ? 0 : real.xMalloc(n); }
static void *fault_realloc(void *p, int n){ return fail_now() ? 0 : real.xRealloc(p, n); }

__attribute__((constructor)) static void fault_install(void){
  static sqlite3_mem_methods mine;
  if( sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real)!=SQLITE_OK ) return;
  mine = real;
  mine.xMalloc = fault_malloc;
  mine.xRealloc = fault_realloc;
  sqlite3_config(SQLITE_CONFIG_MALLOC, &mine);
}

/* Fail the n-th allocation from now (n>=1), and every later one when bPersistent; n==0 disarms.
** Returns the failures injected since the previous call. */
int sbw_fault_malloc(int n, int bPersistent){
  int h = hits;
  countdown = n>0 ? n : 0;
  persistent = bPersistent;
  hits = 0;
  return h;
}
