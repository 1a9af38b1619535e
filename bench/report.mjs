// Renders BENCHMARKS.md, whole, from the saved results of the parts (bench/results/*.json, see
// results.mjs) and the text below, which this file owns. Nothing else writes BENCHMARKS.md: to
// change a number, rerun its part (bench/run.mjs); to explain one, write docs/performance.md.
//
//   node bench/report.mjs            (what `npm run bench -- --report` does)
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadResults, rootDir } from "./results.mjs";

/** @typedef {import("./results.mjs").BenchRecord} BenchRecord */
/** @typedef {import("./results.mjs").Table} Table */

/** The parts in page order: the id `--only` takes, and the method text of its section. */
export const SECTIONS = [
  {
    heading: "One backup per process (Node)",
    parts: ["fresh"],
    text: `What a cron job or the CLI pays: \`bench/fresh.mjs\`, a ~330 MiB file with 1% of its pages
changed, copied over its previous backup ("incremental") and into a new file, each measurement in
a new process. "\`backup()\` in a fresh process" times the call alone (the package loaded, the
source open); "the whole process" is the same run from spawn to exit; "the CLI" is
\`sqlite-backup-wasm backup <src> <dest> --quiet\` from spawn to exit. "Warm repeats" is the median
of five more backups in one process after its first. better-sqlite3 and \`cp\` run under Node 22.
The destination is put back and synced, untimed, before every run.`,
  },
  {
    heading: "Backups against the peers (Node)",
    parts: ["file2file", "overwrite", "mem2file", "file2mem", "big", "load"],
    text: `\`bench/cases.mjs\` runs each measurement in a fresh process (Node 22 for every side, so
every number comes from the same engine); the peers alternate within a round and the order
rotates every round. Every number is the **median** of the rounds. Ratios are median ÷ median of
the workload's reference (**bold**): below 1.0 is faster than it. The source's pages are in the
page cache, \`sync\` runs before every measurement, and destinations are committed with each
library's default \`synchronous\` (FULL: an fsync at the end), while \`cp\`, \`copyFileSync\` and
\`writeFileSync\` do not fsync. "Peak RSS Δ" is the process's peak resident memory during the
operation above its level just before it. "Max block" is the longest the event loop was blocked,
commit included (a \`setImmediate\` chain runs beside the operation): the median over runs, and in
brackets the worst run. "Steps": how many steps ours' adaptive loop took (median). The databases
(\`bench/gen.mjs\`): one rowid table of 200–1800-byte blobs (overflow pages too) and an index, 4 KiB
pages, the same bytes on every machine.`,
  },
  {
    heading: "In-memory → OPFS in Chromium",
    parts: ["opfs"],
    text: `Headless Chromium, a fresh browser profile per launch, the sides taking turns
(\`bench/opfs/run.ts\`; ours through \`test/browser/bench.ts\`). Same data: one table of
\`randomblob(1000)\` rows in \`:memory:\`, copied into a new OPFS file. "Raw OPFS" writes the same
bytes with no SQLite (1 MiB writes through one sync access handle, then \`flush()\`): the physical
limit. OPFS's speed moves up to 4× between launches, so ours is also divided by a raw write of the
same bytes in the same worker and launch. Higher is better.`,
  },
  {
    heading: "Repeat backups into OPFS, 1% of pages changed",
    parts: ["opfs-repeat"],
    text: `Per launch: a first backup of an in-memory database into a new OPFS file, then
\`UPDATE … WHERE id % 350 = 0\` (1% of the pages) and a repeat backup over it (incremental), then
the same change again and a repeat with \`incremental: false\` (the full copy). "Written" counts
each written page once in the file and once in its rollback journal.`,
  },
  {
    heading: "Restore from OPFS: time and memory",
    parts: ["restore-memory"],
    text: `\`test/browser/restore-memory.ts\`: an OPFS file read back into an in-memory database by three
routes; memory is the renderer processes' resident set from /proc (the peak above the level just
before the copy; the restored database itself is included).`,
  },
  {
    heading: "Repeat backups over the previous backup (Node)",
    parts: ["incremental"],
    text: `\`bench/incremental.mjs\`: a ~330 MiB file over its previous backup with 1% and 0.1% of its
pages changed, the ways below alternating in one process (each round starts with another one);
the previous backup is copied into place and fdatasync'ed, untimed, before each run; one untimed
run of each first. "Inline reads" is the same backup with the destination read on the main thread
instead of ahead in the thread pool. "Written" is what the backup passed to \`write()\` (\`wchar\`).
The ratios follow the host's memory bandwidth (the compare reads both files), so the run prints
the host's memory copy speed.`,
  },
  {
    heading: "Real file locks against the in-process table",
    parts: ["locks"],
    text: `\`bench/locks.mjs\` under Node 26: a backup of a ~100 MiB file into a new file, WAL commits of
one small transaction each, and WAL point reads of one read transaction each, with \`locking:
"os"\` (OFD locks, the real \`-shm\` mapped) and \`"process"\` alternating, each measurement in a
fresh process; medians.`,
  },
  {
    heading: "Live sources: a native writer during the backups",
    parts: ["live"],
    text: `\`bench/live.mjs\`: a native \`sqlite3\` process commits to the source (each transaction moves an
amount between two of 50 accounts, appends a 3 KB row and bumps a counter), paced at ~100
commits/s or unpaced, while each peer makes backups of it one after the other. The native CLI
judges every copy: \`integrity_check\`, the balances' sum, and the counter against the row count.`,
  },
  {
    heading: "Streams: backupToStream and restoreFromStream (Node)",
    parts: ["stream"],
    text: `\`bench/stream.mjs\`, under Node 26 (real file locks), Node 22 and Node 20, each measurement
timed in turn with its reference in every round, after an untimed warm-up: \`backupToStream()\` of
a ~330 MiB file (\`bench/gen.mjs\`) read by a consumer that discards the chunks, against
\`fs.createReadStream\` of the same file (the limit: the bytes straight from the page cache), for
each route a runtime takes (a rollback-journal source: held where other processes' writers wait
for a read lock of ours, else spooled; a WAL source: the snapshot, with \`verifySource: false\`
where file locks are not real); the same through gzip against \`gzip < app.db\` and \`sqlite3
app.db .dump | gzip\`; \`restoreFromStream()\` of a file stream into a new file against \`cp\` +
\`fdatasync\`; and a 1 GiB source read slowly, then at once. "Peak RSS Δ" is the peak resident
memory during the run (sampled every 5 ms and after every chunk the consumer takes) over its
level before it, after a collection.`,
  },
  {
    heading: "Replicas beside Litestream",
    parts: ["replica"],
    text: `\`bench/replica.mjs\` under Node 26 (real file locks): a WAL database of random rows (hex text,
an indexed random key) that the native \`sqlite3\` writes at ~100 transactions/s (an insert and an
update of a random row each), replicated into a directory with a 1 s interval by
\`replicate()\`, then by Litestream 0.3.13 (\`@flydotio/litestream-linux-x64\` from the npm
registry) on the same workload in the same run. Growth is what the replica's directory grew after
its first snapshot, per minute of writing; CPU is the replicating process's, user and system,
over the same minutes; every restore is checked by the native \`sqlite3\` (\`integrity_check\`,
rows).`,
  },
  {
    heading: "Before and after a restructuring",
    parts: ["layers"],
    text: `A restructuring of the library's layers is to cost no speed: \`bench/layers/run.mjs\` runs the
same workloads (\`bench/layers/workloads.mjs\`, the public API only) on a checkout before it and one
after it, each built, the two taking turns in every round, each sample a new process: in Node, and
in headless Chromium in a worker on OPFS and on the page's main thread. The workloads: a ~100 MiB
file copied with \`backup()\` into a new file and back into memory in one step, and 600 small write
transactions in a DELETE and in a WAL journal. The run below compares the commit before "One driver
for the backup API's steps and the incremental compare" (\`3d62e68\`) with main's HEAD when it ran,
so the commits in between count too. The small transactions wait on fsyncs, whose time on this
shared machine varies up to tenfold between samples: their medians move the most.`,
  },
];

const HOW_TO_RERUN = `## How to rerun

\`\`\`sh
npm run build
cd bench
npm install                          # the peers and a Node 22 binary, kept out of the library's install
npm run bench                        # every part; saves bench/results/*.json and rewrites this page
npm run bench -- --only incremental  # some parts (ids in each section); the others keep their results
npm run bench -- --rounds 3          # fewer rounds
npm run bench -- --quick             # small databases, 3 rounds: a smoke run, printed, nothing saved
npm run bench -- --report            # render this page from bench/results/ without measuring
\`\`\`

Parts skip themselves, keeping their last results, when what they need is missing: Chromium
(\`/usr/bin/chromium\`) for the browser parts, Node 26 of \`test/runtimes\` (\`npm run setup\`) for
\`locks\` and \`live\`. Benchmark databases are generated into \`bench/data/\` (git-ignored) and reused
while their generator version and size match. One measurement of the peers' workloads
(\`node --import tsx bench/cases.mjs <workload> <peer> '{"src":…,"dst":…}'\`) prints its JSON line and
can be run alone. \`SBW_BENCH_WASM=path\` makes "ours" load another build of the module.
`;

/**
 * A git command's output in the repository, trimmed; null if it failed.
 * @param {...string} args
 */
function git(...args) {
  try {
    return execFileSync("git", args, { cwd: rootDir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

/** @param {BenchRecord["machine"] | undefined} m */
function machineText(m) {
  if (!m) return "not recorded";
  if ("note" in m) return m.note;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}${m.fs ? `, data on ${m.fs}` : ""}`;
}

/**
 * "2026-11-20 at aa79f87 (188 commits before HEAD)"
 * @param {BenchRecord} r
 * @param {string | null} head
 */
function when(r, head) {
  let at = r.commit ? `\`${r.commit}\`` : "an unrecorded commit";
  const notes = [];
  if (r.commit && head) {
    const behind = git("rev-list", "--count", `${r.commit}..${head}`);
    if (behind === "0") notes.push("HEAD");
    else if (behind !== null) notes.push(`${behind} commit${behind === "1" ? "" : "s"} before HEAD`);
  }
  if (r.dirty) notes.push("with uncommitted changes");
  if (notes.length) at += ` (${notes.join(", ")})`;
  return `${(r.date ?? "").slice(0, 10) || "an unrecorded date"} at ${at}`;
}

/**
 * @param {BenchRecord} r
 * @param {string | null} head
 */
function provenance(r, head) {
  const lines = [`Measured ${when(r, head)} with \`${r.command}\`${r.seconds ? ` in ${Math.round(r.seconds)} s` : ""}.`];
  lines.push(`Machine: ${machineText(r.machine)}.`);
  if (r.versions) lines.push(`Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join("; ")}.`);
  if (r.keptFrom) lines.push(`Results kept from the hand-written page of commit \`${r.keptFrom}\`; rerunning the part replaces them.`);
  return lines.join("\n");
}

/** @param {Table} t */
function table(t) {
  const align = t.align ?? `l${"r".repeat(t.columns.length - 1)}`;
  const rule = [...align].map((a) => (a === "r" ? "---:" : "---"));
  const cell = (/** @type {Table["rows"][number][number]} */ x) => String(x ?? "–").replaceAll("|", "\\|");
  return [
    ...(t.caption ? [t.caption, ""] : []),
    `| ${t.columns.map(cell).join(" | ")} |`,
    `|${rule.join("|")}|`,
    ...t.rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}

/**
 * One part's section: its heading, where it was measured (unless `prov` is null) and its tables.
 * @param {BenchRecord} r
 * @param {string | null} [prov]
 */
export function recordMarkdown(r, prov = provenance(r, git("rev-parse", "--short", "HEAD"))) {
  let md = `### ${r.title}\n\n`;
  if (prov) md += `${prov}\n\n`;
  for (const t of r.tables ?? []) md += `${table(t)}\n\n`;
  for (const n of r.notes ?? []) md += `${n}\n\n`;
  return md;
}

/** BENCHMARKS.md as a string. */
export function render() {
  const results = loadResults();
  const head = git("rev-parse", "--short", "HEAD");
  const known = new Set(SECTIONS.flatMap((s) => s.parts));
  const stray = Object.keys(results).filter((p) => !known.has(p));
  if (stray.length) throw new Error(`bench/results/ holds parts report.mjs does not know: ${stray.join(", ")}`);

  const index = [];
  let body = "";
  for (const s of SECTIONS) {
    const present = s.parts.filter((p) => results[p]);
    if (present.length === 0) continue;
    body += `## ${s.heading}\n\n${s.text}\n\n`;
    let last = "";
    for (const p of present) {
      const r = /** @type {BenchRecord} */ (results[p]); // present holds only the parts with a record
      index.push(`| [${r.title}](#${slug(r.title)}) | \`${p}\` | ${(r.date ?? "").slice(0, 10)} | \`${r.commit ?? "?"}\` |`);
      const prov = provenance(r, head);
      body += recordMarkdown(r, prov === last ? null : prov);
      last = prov;
    }
  }
  return `# Benchmarks

Generated by \`bench/run.mjs\` (\`cd bench && npm run bench\`) from the results it saved in
\`bench/results/\`: do not edit this page. Rendered at \`${head ?? "?"}\`. Each section says when, at
which commit, on which machine and with which command its numbers were measured. What the numbers
mean for users, and why the package is built as it is: [docs/performance.md](docs/performance.md).
The machine is shared with other work: ratios within one run mean more than absolute times.

| section | part | measured | commit |
|---|---|---|---|
${index.join("\n")}

${body}${HOW_TO_RERUN}`;
}

/**
 * GitHub's anchor for a heading.
 * @param {string} heading
 */
export function slug(heading) {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

export function writeReport() {
  const md = render();
  writeFileSync(join(rootDir, "BENCHMARKS.md"), md);
  return md;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeReport();
  console.log("wrote BENCHMARKS.md");
}
