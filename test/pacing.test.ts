// The pacing rules both backup loops share (src/ops/driver.ts Pacing), driven with made-up
// step durations: no clock decides anything here but the BUSY timeout, given as 0 or 1 hour.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SQLITE_BUSY, SqliteError } from "../src/index.js";
import { rejects } from "./helpers.js";
import { Pacing, MAX_PAGES, MIN_PAGES, RESTARTS_BEFORE_ONE_STEP, TARGET_STEP_MS } from "../src/ops/driver.js";

const busyError = (ms: number) => new SqliteError(`busy for ${ms} ms`, SQLITE_BUSY);

test("adaptive steps start at 128 pages and scale toward TARGET_STEP_MS, by 0.5x to 2x a step, within bounds", () => {
  const p = new Pacing({});
  assert.is(p.size(), 128);
  p.adapt(TARGET_STEP_MS / 4); // 4x too fast: doubled, no more
  assert.is(p.size(), 256);
  p.adapt(TARGET_STEP_MS * 1.25);
  assert.is(p.size(), 205);
  p.adapt(TARGET_STEP_MS * 10); // 10x too slow: halved, no less
  assert.is(p.size(), 103);
  for (let i = 0; i < 20; i++) p.adapt(TARGET_STEP_MS * 10);
  assert.is(p.size(), MIN_PAGES);
  for (let i = 0; i < 40; i++) p.adapt(0);
  assert.is(p.size(), MAX_PAGES);
});

test("pagesPerStep and a number onProgress returns (or resolves with) fix the step; restarts double it, then the rest goes in one step", async () => {
  const fixed = new Pacing({ pagesPerStep: 10 });
  fixed.adapt(0);
  assert.is(fixed.size(), 10, "pagesPerStep is not adapted");

  const sizes: number[] = [];
  const p = new Pacing({ onProgress: async ({ remaining }) => (remaining === 5 ? 7 : undefined) });
  await p.progress(6, 10);
  sizes.push(p.size());
  await p.progress(5, 10);
  sizes.push(p.size());
  p.adapt(0);
  sizes.push(p.size());
  await p.progress(4, 10); // no number: unchanged
  sizes.push(p.size());
  assert.equal(sizes, [128, 7, 7, 7]);

  // A step size that is not -1 or a positive safe integer fails the backup instead of stalling it.
  for (const bad of [1.5, 0, -0, 2 ** 53, Number.NaN]) {
    const q = new Pacing({ onProgress: () => bad });
    let error: unknown = null;
    await q.progress(1, 2).catch((e) => (error = e));
    assert.instance(error, TypeError, `onProgress returning ${bad}`);
  }
  // Steps beyond C's int range copy everything.
  const huge = new Pacing({ pagesPerStep: 2 ** 40 });
  assert.is(huge.size(), -1);

  for (let i = 1; i <= RESTARTS_BEFORE_ONE_STEP; i++) {
    p.restarted();
    assert.is(p.restarts, i);
    assert.is(p.size(), i < RESTARTS_BEFORE_ONE_STEP ? 7 * 2 ** i : -1);
  }
});

test("a cap bounds adaptive steps only: not pagesPerStep, not the one step after restarts", () => {
  const p = new Pacing({});
  for (let i = 0; i < 5; i++) p.adapt(0);
  assert.is(p.size(), 4096);
  assert.is(p.size(1024), 1024, "adaptive: capped");
  assert.is(p.size(8192), 4096, "a cap above the step changes nothing");
  assert.is(new Pacing({ pagesPerStep: 5000 }).size(1024), 5000, "pagesPerStep: what the caller asked for");
  for (let i = 0; i < RESTARTS_BEFORE_ONE_STEP; i++) p.restarted();
  assert.is(p.size(1024), -1, "after the restarts the rest goes in one step, whatever the cap");
});

test("BUSY waits until busyTimeoutMs has passed since the first BUSY; a step that goes through starts the count again", async () => {
  const waiting = new Pacing({ busyTimeoutMs: 3_600_000 }, [0]);
  await waiting.busy(performance.now(), busyError);
  const e = await rejects(new Pacing({ busyTimeoutMs: 0 }, [0]).busy(performance.now(), busyError));
  assert.instance(e, SqliteError, "busyTimeoutMs 0: the first BUSY throws");
  assert.is((e as SqliteError).message, "busy for 0 ms");
  const p = new Pacing({ busyTimeoutMs: 10 }, [0]);
  await p.busy(0, busyError);
  p.through();
  await p.busy(100, busyError); // 100 ms after the first BUSY, but the first since a step went through
  assert.instance(await rejects(p.busy(110, busyError)), SqliteError);
});

test("a source that keeps changing is given up on busyTimeoutMs after the first change", () => {
  const p = new Pacing({ busyTimeoutMs: 10 });
  p.changing(0, busyError);
  p.changing(9, busyError);
  assert.throws(() => p.changing(10, busyError), (e: unknown) => e instanceof SqliteError && e.code === SQLITE_BUSY);
});

test("an abort during a BUSY wait rejects with the signal's reason", async () => {
  const ac = new AbortController();
  const p = new Pacing({ busyTimeoutMs: 3_600_000, signal: ac.signal }, [3_600_000]);
  const wait = p.busy(performance.now(), busyError);
  ac.abort(new Error("stop"));
  assert.is((await rejects(wait) as Error).message, "stop");
});

test.run();
