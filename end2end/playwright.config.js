// End-to-end tests: the real console (target/debug/pg-console) against the real
// stack, in Debian's Chromium. Run through scripts/test (which builds, starts
// everything and creates the users e2e-admin and e2e-viewer in PGC_DATA_DIR,
// passwords in PGC_E2E_ADMIN_PW / PGC_E2E_VIEWER_PW); PGC_E2E_PORT picks the port.
const { defineConfig } = require('@playwright/test');
const path = require('path');

const port = process.env.PGC_E2E_PORT || '18180';
const repo = path.resolve(__dirname, '..');

module.exports = defineConfig({
  testDir: './tests',
  timeout: 180_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1360, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    },
  },
  webServer: {
    command: `${repo}/target/debug/pg-console`,
    cwd: repo,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 30_000,
    env: { ...process.env, PGC_LISTEN: `127.0.0.1:${port}`, PGC_PUBLIC_URL: `http://127.0.0.1:${port}`, PGC_LOG: 'warn',
      // Holds a backed-up replica stopped 15 s longer, so a reload mid-backup is reliably mid-way.
      PGC_BACKUP_TEST_DELAY_AFTER_STOP_MS: '15000' },
  },
});
