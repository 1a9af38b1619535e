// Starts a browser for the tests and benchmarks, the one place that does: Debian's Chromium
// (over CDP) or Firefox ESR (over WebDriver BiDi), both through puppeteer-core, each with a
// fresh profile removed on close(). scripts/setup.sh test installs both.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

/** @typedef {"chromium" | "firefox"} BrowserName */

export const EXECUTABLES = { chromium: "/usr/bin/chromium", firefox: "/usr/bin/firefox-esr" };

/** Chromium's flags (DESIGN.md); puppeteer adds the headless one. */
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/**
 * Firefox's preferences: no throttling of timers in tabs that are not in front (the tests keep
 * several pages of one origin open at once), no first-run or update traffic.
 */
const FIREFOX_PREFS = {
  "dom.min_background_timeout_value": 4,
  "dom.timeout.enable_budget_timer_throttling": false,
  "dom.suspend_inactive.enabled": false,
  "browser.tabs.remote.autostart": true,
  "app.update.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
};

/** The browsers to run: SBW_BROWSERS="chromium,firefox" (the default: both). */
export function browserNames() {
  const names = (process.env.SBW_BROWSERS ?? "chromium,firefox").split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(n in EXECUTABLES)) throw new Error(`SBW_BROWSERS: unknown browser "${n}" (chromium, firefox)`);
  return /** @type {BrowserName[]} */ (names);
}

/**
 * Launches `name` headless with a fresh profile.
 * @param {BrowserName} [name]
 * @param {{ prefs?: Record<string, unknown>, downloadPath?: string, args?: string[] }} [options]
 *   prefs: extra Firefox preferences; downloadPath: where downloads land (saved without asking).
 * @returns {Promise<{ name: BrowserName, browser: import("puppeteer-core").Browser, version: string, profile: string, close(): Promise<void> }>}
 */
export async function launchBrowser(name = "chromium", options = {}) {
  const executablePath = EXECUTABLES[name];
  if (!executablePath) throw new Error(`unknown browser "${name}"`);
  if (!existsSync(executablePath)) throw new Error(`${executablePath} is missing: run scripts/setup.sh test`);
  const profile = mkdtempSync(join(tmpdir(), `sbw-${name}-`));
  const downloadBehavior = options.downloadPath ? { policy: /** @type {const} */ ("allow"), downloadPath: options.downloadPath } : undefined;
  // Firefox over BiDi takes no download behaviour: its preferences save downloads without asking.
  const firefoxDownloads = options.downloadPath ? {
    "browser.download.folderList": 2, "browser.download.dir": options.downloadPath, "browser.download.useDownloadDir": true,
    "browser.download.always_ask_before_handling_new_types": false, "browser.download.start_downloads_in_tmp_dir": false,
    "browser.helperApps.neverAsk.saveToDisk": "application/octet-stream,application/vnd.sqlite3,application/x-sqlite3",
  } : {};
  let browser;
  try {
    browser = await puppeteer.launch(name === "firefox"
      ? { browser: "firefox", executablePath, headless: true, userDataDir: profile, extraPrefsFirefox: { ...FIREFOX_PREFS, ...firefoxDownloads, ...options.prefs }, args: options.args }
      : { browser: "chrome", executablePath, headless: true, userDataDir: profile, args: [...CHROMIUM_ARGS, ...(options.args ?? [])], downloadBehavior });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const version = await browser.version();
  return {
    name, browser, version, profile,
    async close() {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
