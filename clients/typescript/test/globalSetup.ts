// Starts the real nosyntask-server binary once for the whole test run: a fresh temporary directory
// for its SQLite database and artifacts, the simulated models, a known JWT secret and port 0. Tests
// read its URL and secret with `inject(...)`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

import { SERVER_CONFIG } from './serverConfig';

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
    jwtSecret: string;
  }
}

const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const LISTENING = /nosyntask listening on (http:\/\/[^\s"]+)/;

function serverBinary(): string {
  if (process.env.NOSYNTASK_SERVER_BIN) return resolve(process.env.NOSYNTASK_SERVER_BIN);
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const target = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, 'target');
  return join(target, 'debug', 'nosyntask-server');
}

function waitForListening(child: ChildProcess, logPath: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(`did not print its listening line within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`nosyntask-server ${why}. Its output (also in ${logPath}):\n${output.slice(-4000)}`));
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8').replace(/\u001b\[[0-9;]*m/g, '');
      const match = LISTENING.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolvePromise(match[1]);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited early (code ${code}, signal ${signal})`);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (error) => fail(`could not start: ${error.message}`));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolvePromise();
    });
    child.kill('SIGTERM');
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binary = serverBinary();
  if (!existsSync(binary)) {
    throw new Error(
      `nosyntask-server not found at ${binary}: build it with \`cargo build -p nosyntask-server\` ` +
        'or point NOSYNTASK_SERVER_BIN at it',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'nosyntask-ts-client-'));
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, SERVER_CONFIG);
  const jwtSecret = randomBytes(24).toString('hex');
  const logPath = join(dir, 'server.log');
  const log = createWriteStream(logPath);

  const child = spawn(binary, ['--config', configPath], {
    cwd: dir,
    env: {
      ...process.env,
      JWT_SECRET: jwtSecret,
      NOSYNTASK__SERVER__BIND: '127.0.0.1:0',
      NOSYNTASK__DATABASE__URL: `sqlite://${join(dir, 'db.sqlite')}?mode=rwc`,
      NOSYNTASK__ARTIFACTS__DIR: join(dir, 'artifacts'),
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });

  let serverUrl: string;
  try {
    serverUrl = await waitForListening(child, logPath);
  } catch (error) {
    await stop(child);
    throw error;
  }
  project.provide('serverUrl', serverUrl);
  project.provide('jwtSecret', jwtSecret);

  return async () => {
    await stop(child);
    log.end();
    if (!process.env.NOSYNTASK_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  };
}
