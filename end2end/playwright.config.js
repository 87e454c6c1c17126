// End-to-end tests: the deployment users run — the console's container behind
// Traefik over HTTPS (https://pg-console.localhost by default) — against the
// real stack, in Debian's Chromium. Run through scripts/test, which builds the
// image, starts the edge and the console, creates the users e2e-admin and
// e2e-viewer (passwords in PGC_E2E_ADMIN_PW / PGC_E2E_VIEWER_PW), and imports
// the edge's CA into the NSS database of PGC_E2E_HOME, which Chromium uses:
// certificates are verified for real.
const { defineConfig } = require('@playwright/test');

const baseURL = process.env.PGC_E2E_BASE_URL || 'https://pg-console.localhost';

module.exports = defineConfig({
  testDir: './tests',
  timeout: 180_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL,
    viewport: { width: 1360, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
      env: { ...process.env, HOME: process.env.PGC_E2E_HOME || process.env.HOME },
    },
  },
});
