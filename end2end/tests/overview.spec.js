// The Overview page in a real browser against the real stack.
const { test, expect, shot, waitHealthy } = require('./fixtures');
const { execFileSync } = require('child_process');
const { login } = require('./login');

const docker = (...args) => execFileSync('docker', args, { encoding: 'utf8' });

test('overview shows three members, one leader and both endpoints', async ({ page }) => {
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await login(page, 'admin');
  await waitHealthy(page);
  // Kept current by the live feed (one websocket per tab), not by polling.
  await expect.poll(() => sockets.filter((u) => u.endsWith('/ws/overview')).length).toBe(1);
  let polls = 0;
  page.on('request', (r) => { if (r.url().endsWith('/api/overview')) polls += 1; });
  const updated = page.locator('[data-testid=refreshed-at]');
  const before = await updated.getAttribute('data-ms');
  await expect(updated).not.toHaveAttribute('data-ms', before, { timeout: 5_000 });
  await page.waitForTimeout(3_000);
  expect(polls, 'no polling while the feed is up').toBe(0);
  const rows = page.locator('[data-testid=member-row]');
  await expect(rows).toHaveCount(3);
  await expect(page.locator('[data-testid=member-row][data-role=Leader]')).toHaveCount(1);
  // Leader first.
  await expect(rows.first()).toHaveAttribute('data-role', 'Leader');
  await expect(page.locator('[data-testid=endpoint][data-kind=write]')).toContainText('routes to');
  await expect(page.locator('[data-testid=endpoint][data-kind=read]')).toContainText('routes to');
  await expect(page.locator('[data-testid=connection-string]').first()).toContainText('postgresql://');
  await expect(page.locator('[data-testid=haproxy-server]')).toHaveCount(6);
  // The timeline history: newest first (time, then the timeline number), and it fits its card.
  const history = await page.locator('[data-testid=history-row], [data-testid=history-op]').evaluateAll((trs) =>
    trs.map((tr) => ({ ms: tr.dataset.ms ? Number(tr.dataset.ms) : null, tl: tr.dataset.tl ? Number(tr.dataset.tl) : null })));
  const timed = history.filter((h) => h.ms !== null).map((h) => h.ms);
  expect(timed).toEqual([...timed].sort((a, b) => b - a));
  const tls = history.filter((h) => h.tl !== null).map((h) => h.tl);
  expect(tls).toEqual([...tls].sort((a, b) => b - a));
  expect(await page.locator('table.history').evaluate((t) => t.scrollWidth <= t.parentElement.clientWidth)).toBe(true);
  // Each replica's lag sparkline, and the topology table still inside its card's padding.
  await expect(page.locator('[data-testid=lag-sparkline]')).toHaveCount(2, { timeout: 15_000 });
  const overflow = await page.locator('table.topology[data-testid=topology]').evaluate((t) => {
    const card = t.parentElement;
    return t.getBoundingClientRect().right - (card.getBoundingClientRect().right - parseFloat(getComputedStyle(card).paddingRight));
  });
  expect(overflow, 'the topology table overflows its card by this many pixels').toBeLessThanOrEqual(0.5);
  // The continuous WAL archive: pg-wal receiving from the leader, its container running, no alert.
  await expect(page.locator('[data-testid=wal-status]')).toHaveAttribute('data-status', 'receiving');
  await expect(page.locator('[data-testid=wal-archive]')).toContainText('Kept on the leader');
  await expect(page.locator('[data-testid=stack-container][data-name=pg-wal]')).toHaveAttribute('data-status', 'running');
  await expect(page.locator('[data-testid=wal-alert]')).toHaveCount(0);
  await page.screenshot({ path: shot('overview.png'), fullPage: true });
});

test('a stopped replica is shown as down without a reload, then comes back', async ({ page }) => {
  await login(page, 'admin');
  await waitHealthy(page);
  const replica = await page
    .locator('[data-testid=member-row][data-state=streaming]').last().getAttribute('data-member');
  // The page must update by itself: remember this document and check it is not reloaded.
  await page.evaluate(() => { window.__pgcNoReload = true; });
  docker('stop', replica);
  try {
    const row = page.locator(`[data-testid=member-row][data-member=${replica}]`);
    await expect(row).toHaveAttribute('data-state', 'unreachable', { timeout: 15_000 });
    await expect(page.locator(`[data-testid=unreachable-banner][data-member=${replica}]`)).toContainText('unreachable since');
    await expect(page.locator('[data-testid=cluster-status]')).toHaveAttribute('data-status', 'degraded');
    // Docker's view beside Patroni's, and the disagreement in words (from the
    // deployed console's container, through its Docker socket).
    await expect(row.locator('[data-testid=member-container]')).toContainText('exited (');
    await expect(row.locator('[data-testid=member-flag]')).toContainText('exited');
    await expect(page.locator('[data-testid=stack-container][data-name=etcd]')).toHaveAttribute('data-status', 'running');
    // CPU and memory from Docker's stats, beside the state (sampled every few seconds).
    await expect(page.locator('[data-testid=stack-container][data-name=etcd] [data-testid=container-usage]'))
      .toContainText(/^CPU \d+\.\d % · \d/, { timeout: 20_000 });
    await expect(row.locator('[data-testid=container-usage]')).toHaveCount(0);
    expect(await page.evaluate(() => window.__pgcNoReload)).toBe(true);
    await page.screenshot({ path: shot('overview-degraded.png'), fullPage: true });
  } finally {
    docker('start', replica);
  }
  await expect(page.locator(`[data-testid=member-row][data-member=${replica}]`))
    .toHaveAttribute('data-state', 'streaming', { timeout: 90_000 });
  await expect(page.locator(`[data-testid=member-row][data-member=${replica}] [data-testid=member-container]`))
    .toContainText('running, up');
  expect(await page.evaluate(() => window.__pgcNoReload)).toBe(true);
});

test('a switchover from the Overview: plan, typed name, live steps, new leader without a reload', async ({ page }) => {
  await login(page, 'admin');
  await waitHealthy(page);
  await page.evaluate(() => { window.__pgcNoReload = true; });
  const oldLeader = await page.locator('[data-testid=member-row][data-role=Leader]').getAttribute('data-member');
  const candidate = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  await page.locator(`[data-testid=member-row][data-member=${candidate}] [data-testid=op-switchover]`).click();
  await page.click('[data-testid=review-plan]');
  await expect(page.locator('[data-testid=plan-title]')).toContainText(`Switchover ${oldLeader} → ${candidate}`);
  await expect(page.locator('[data-testid=precondition][data-ok=false]')).toHaveCount(0);
  await expect(page.locator('[data-testid=plan-shell]')).toContainText(`--candidate ${candidate}`);
  // A wrong name is refused and changes nothing.
  await page.fill('[data-testid=confirm-name]', 'not-the-cluster');
  await page.click('[data-testid=execute]');
  await expect(page.locator('[data-testid=execute-error]')).toContainText('type exactly');
  await page.fill('[data-testid=confirm-name]', 'postgresql-cluster');
  await page.click('[data-testid=execute]');
  await expect(page.locator('[data-testid=job-step]').first()).toBeVisible();
  await expect(page.locator('[data-testid=job-outcome]')).toHaveAttribute('data-ok', 'true', { timeout: 120_000 });
  await expect(page.locator('[data-testid=write-gap]')).toContainText('Writes were refused for');
  await expect(page.locator('[data-testid=member-row][data-role=Leader]')).toHaveAttribute('data-member', candidate, { timeout: 30_000 });
  await page.screenshot({ path: shot('switchover.png'), fullPage: true });
  expect(await page.evaluate(() => window.__pgcNoReload)).toBe(true);
});
