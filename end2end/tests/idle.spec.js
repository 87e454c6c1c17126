// An idle websocket through Traefik: the job feed stays open for three
// minutes with nothing to say but the server's pings, then still delivers.
//
// scripts/test runs this file on its own, against a console of its own (the
// console's image behind a Traefik of its own, from the edge's image, at
// PGC_E2E_IDLE_URL, given to it as PGC_E2E_BASE_URL), while the integration
// and end-to-end tests run: their operations go through other consoles, and
// the one that restarts the edge's Traefik does not touch this one, so this
// console's job feed stays idle (and the cluster may be anything but healthy
// meanwhile: nothing here needs it until the end). It starts its operation
// only once the file named by PGC_E2E_AFTER exists (scripts/test creates it
// when the other tests are done with the cluster), so that operation does not
// overlap theirs. Without PGC_E2E_AFTER it does not wait.
const fs = require('fs');
const { test, expect, waitHealthy } = require('./fixtures');
const { login } = require('./login');
const { reviewAndExecute } = require('./ops');

async function othersDone() {
  const marker = process.env.PGC_E2E_AFTER;
  if (!marker) return;
  await expect.poll(() => fs.existsSync(marker), { timeout: 900_000, intervals: [1_000] }).toBe(true);
}

test('a live feed stays open through Traefik for three idle minutes, then still delivers', async ({ page }) => {
  test.setTimeout(1_200_000);
  await login(page, 'admin');
  const opened = await page.evaluate(() => new Promise((resolve) => {
    const ws = new WebSocket(`wss://${location.host}/ws/jobs`);
    window.__feed = { messages: [], closed: false };
    ws.onmessage = (e) => window.__feed.messages.push(e.data);
    ws.onclose = () => { window.__feed.closed = true; };
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
  }));
  expect(opened).toBe(true);
  await expect.poll(() => page.evaluate(() => window.__feed.messages.length)).toBe(1);
  // Nothing runs on this console: nothing is sent but the server's pings,
  // for 3 minutes (Traefik's and typical proxies' idle timeouts are shorter).
  await page.waitForTimeout(185_000);
  expect(await page.evaluate(() => window.__feed.messages.length)).toBe(1);
  expect(await page.evaluate(() => window.__feed.closed)).toBe(false);
  await othersDone();
  expect(await page.evaluate(() => window.__feed.closed)).toBe(false);
  // Still delivering: an operation started now is announced on it.
  await waitHealthy(page);
  const replica = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  await page.locator(`[data-testid=member-row][data-member=${replica}] [data-testid=op-reload]`).click();
  await reviewAndExecute(page.locator('[data-testid=op-panel]'), { title: `Reload ${replica}`, confirm: replica });
  await expect.poll(() => page.evaluate(() => window.__feed.messages.some((m) => m.includes('Reload'))), { timeout: 30_000 }).toBe(true);
  await expect(page.locator('[data-testid=job-outcome]')).toHaveAttribute('data-ok', 'true', { timeout: 60_000 });
});
