// Starts tauri-driver (which starts the app through WebKitWebDriver) with a given environment.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Driver } from './webdriver.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
export const APP = process.env.TESTIMONY_APP_BIN ?? join(targetDir, 'debug/testimony-app');
export const CLI = process.env.TESTIMONY_CLI_BIN ?? join(targetDir, 'debug/testimony');
export const SHOTS = process.env.TESTIMONY_SCREENSHOTS ?? join(repo, 'docs/screenshots');

const appPids = () =>
  new Set(execFileSync('sh', ['-c', 'pgrep -x testimony-app || true']).toString().split(/\s+/).filter(Boolean).map(Number));
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export async function startApp(env) {
  const before = appPids();
  const port = 4444 + Math.floor(Math.random() * 1000);
  const proc = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1000)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (c) => { stderr += c; });
  const d = new Driver(`http://127.0.0.1:${port}`);
  for (let i = 0; ; i++) {
    try {
      await d.start(APP);
      break;
    } catch (e) {
      if (i > 50) {
        proc.kill();
        throw new Error(`tauri-driver did not start a session: ${e.message}\n${stderr.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // The app process this session started (WebKitWebDriver starts it).
  const ours = [...appPids()].filter((p) => !before.has(p));
  return {
    d,
    async stop() {
      await d.quit();
      for (let i = 0; i < 50 && ours.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      for (const pid of ours.filter(alive)) {
        console.error(`testimony-app ${pid} was still running after the session ended; stopping it`);
        process.kill(pid);
      }
      proc.kill();
    },
  };
}
