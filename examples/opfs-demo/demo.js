// The demo uses the browser bundle, dist/browser/index.js: `npm run demo` builds it and serves this page.
import { loadSqlite } from "../../dist/browser/index.js";

const PATH = "demo/notes.db";
const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
};

const sqlite = await loadSqlite();
let db = sqlite.open(":memory:");
const schema = "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, title TEXT, body TEXT, created REAL)";
db.exec(schema);

function refresh() {
  $("count").textContent = String(db.get("SELECT count(*) AS n FROM notes").n);
  const { n } = db.get("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size");
  $("size").textContent = `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Runs a button action with the buttons disabled and errors shown in the status line. */
function action(id, fn) {
  $(id).addEventListener("click", async () => {
    const buttons = [...document.querySelectorAll("button")];
    buttons.forEach((b) => (b.disabled = b.id !== "abort"));
    try {
      await fn();
    } catch (e) {
      status(`${e.name}: ${e.message}`, true);
    } finally {
      buttons.forEach((b) => (b.disabled = b.id === "abort"));
      refresh();
    }
  });
}

action("fill", async () => {
  const rows = Math.max(1, Number($("rows").value) | 0);
  db.exec("BEGIN");
  for (let i = 0; i < rows; i++) {
    db.run("INSERT INTO notes(title, body, created) VALUES (?, ?, ?)", [`note ${i}`, "lorem ipsum ".repeat(10 + (i % 40)), Date.now() / 1000]);
  }
  db.exec("COMMIT");
  refresh();
  status(`${$("count").textContent} rows in memory`);
});

action("clear", async () => {
  db.exec("DELETE FROM notes; VACUUM");
  status("cleared");
});

let abort = null;
$("abort").addEventListener("click", () => abort?.abort(new Error("aborted by the user")));

action("backup", async () => {
  abort = new AbortController();
  const bar = $("progress");
  bar.value = 0;
  try {
    const res = await sqlite.backupToOpfs(db, PATH, {
      signal: abort.signal,
      onProgress: ({ remaining, pageCount }) => {
        bar.max = pageCount;
        bar.value = pageCount - remaining;
        status(`copying… ${pageCount - remaining} / ${pageCount} pages`);
      },
    });
    status(`backed up ${res.pageCount} pages to OPFS ${PATH} in ${res.elapsedMs.toFixed(0)} ms (${res.steps} steps)`);
  } finally {
    abort = null;
  }
});

action("restore", async () => {
  const restored = await sqlite.restoreFromOpfs(PATH);
  const check = restored.get("PRAGMA integrity_check").integrity_check;
  db.close();
  db = restored;
  db.exec(schema);
  refresh();
  status(`restored ${$("count").textContent} rows from OPFS (integrity_check: ${check})`);
});

action("download", async () => {
  // The file as it is in OPFS, read through the File API (works on the main thread).
  let dir = await navigator.storage.getDirectory();
  const parts = PATH.split("/");
  for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p);
  const file = await (await dir.getFileHandle(parts.at(-1))).getFile();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(file);
  a.download = "notes.db";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  status(`downloading notes.db (${file.size} bytes)`);
});

refresh();
status(`ready — SQLite ${sqlite.version}`);
