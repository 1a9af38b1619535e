// Child process for the SIGKILL trials (test/reliability-crash.test.ts): backs up argv[2] onto the
// existing file argv[3] in small steps, saying "go" on stdout just before the first step so the
// parent can kill it at a random moment of the copy. Exits 0 after a complete backup.
import { loadSqlite } from "../../src/index.js";

const [src, dest, pages] = process.argv.slice(2);
const sqlite = await loadSqlite();
const source = sqlite.open(src!, { readonly: true });
process.stdout.write("go\n");
await sqlite.backup(source, dest!, { pagesPerStep: Number(pages), pauseMs: 1 });
source.close();
process.stdout.write("done\n");
