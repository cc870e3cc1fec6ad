// Starts the real nosyntask-server binary for a test: fresh temporary directory (SQLite, artifacts
// and the development JWT secret under it), port 0, slow simulated models from a config file.
// The listening line and the development token are read from its stdout.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, createWriteStream, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The server binary: env NOSYNTASK_SERVER_BIN, else the workspace's debug build. */
export function serverBinary() {
  const candidates = [
    process.env.NOSYNTASK_SERVER_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug', 'nosyntask-server'),
    join(REPO, 'target', 'debug', 'nosyntask-server'),
  ].filter(Boolean);
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(`nosyntask-server not found (tried ${candidates.join(', ')}); run \`cargo build -p nosyntask-server\` or set NOSYNTASK_SERVER_BIN`);
  }
  return found;
}

/** Simulated models slow enough to watch: each image takes `imageMs`, a video `videoMs`. */
export function slowModels({ textMs = 800, imageMs = 1200, videoMs = 60000 } = {}) {
  const model = (name, kind, ms) => `
[[models]]
name = "${name}"
kind = "${kind}"
adapter = "simulated"
default = true
simulated = { latency_ms = ${ms} }
`;
  // A second image model with cluster-wide limits, as a paid provider's would be configured.
  const limited = `
[[models]]
name = "sim-image-limited"
kind = "image"
adapter = "simulated"
max_concurrency = 2
requests_per_minute = 30
simulated = { latency_ms = ${imageMs} }
`;
  return model('sim-text', 'text', textMs) + model('sim-image', 'image', imageMs) + model('sim-video', 'video', videoMs) + limited;
}

/** A clean environment for the binary: none of the caller's NOSYNTASK* or JWT_SECRET. */
function cleanEnv(extra) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('NOSYNTASK') || key === 'JWT_SECRET' || key === 'RUST_LOG') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Starts a server. Without a JWT secret configured, it generates a development secret in its
 * directory and prints a development token (user 1), which the test signs in with.
 * @param {{config?: string}} [options]
 */
export async function startServer(options = {}) {
  const binary = serverBinary();
  const dir = mkdtempSync(join(tmpdir(), 'nosyntask-console-'));
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, options.config ?? slowModels());
  const env = cleanEnv({
    NOSYNTASK__SERVER__BIND: '127.0.0.1:0',
    NOSYNTASK__SERVER__HTTP_WORKERS: '2',
    NOSYNTASK__SERVER__EVENTS_POLL_MS: '100',
    NOSYNTASK__WORKER__POLL_INTERVAL_MS: '100',
    NOSYNTASK__WORKER__PROGRESS_INTERVAL_MS: '100',
    NOSYNTASK__WORKER__CANCEL_CHECK_INTERVAL_MS: '100',
    NOSYNTASK__WORKER__SHUTDOWN_GRACE_SECS: '2',
    RUST_LOG: 'info',
  });
  const log = createWriteStream(join(dir, 'server.log'));
  const child = spawn(binary, ['--config', configPath], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(log);
  const lines = createInterface({ input: child.stdout });
  const started = await new Promise((resolvePromise, reject) => {
    let base = null;
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s; see ${dir}/server.log`)), 60000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening; see ${dir}/server.log`));
    });
    lines.on('line', (line) => {
      log.write(`[stdout] ${line}\n`);
      const listening = /^nosyntask listening on (\S+)/.exec(line);
      if (listening) base = listening[1];
      const token = /export TOKEN=(\S+)/.exec(line);
      if (token && base) {
        clearTimeout(timer);
        resolvePromise({ base, devToken: token[1] });
      }
    });
  });
  child.removeAllListeners('exit');

  return {
    ...started,
    dir,
    /** Mints a token with the server's own `token` command (same configuration and secret). */
    token(user, role = 'user') {
      return execFileSync(binary, ['--config', configPath, 'token', '--user', String(user), '--role', role], { cwd: dir, env, encoding: 'utf8' }).trim();
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timeout = new Promise((r) => setTimeout(() => r('timeout'), 15000));
        if ((await Promise.race([exited, timeout])) === 'timeout') {
          child.kill('SIGKILL');
          await exited;
        }
      }
      log.end();
      if (!process.env.KEEP_SERVER_DIR) rmSync(dir, { recursive: true, force: true });
    },
  };
}
