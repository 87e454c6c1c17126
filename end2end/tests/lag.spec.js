// Replication lag over time in a real browser: a replica's WAL receiver is
// frozen while pgbench writes; its sparkline on the Overview rises with the
// live feed (no reload), its page's chart shows the rise and the fall after
// thawing, and the 24 h range draws from the console's database.
const { test, expect, shot } = require('./fixtures');
const { execFileSync } = require('child_process');
const fs = require('fs');
const { login } = require('./login');

const BOUND = 1 << 20;

function secret(name) {
  const line = fs.readFileSync(process.env.PGC_STACK_SECRETS_FILE, 'utf8').split('\n').find((l) => l.startsWith(`${name}=`));
  return line.slice(name.length + 1).trim();
}

function pgbench(...args) {
  execFileSync('docker', ['exec', '-e', `PGPASSWORD=${secret('PG_SUPERUSER_PASSWORD')}`, 'pg-0', 'pgbench',
    '-h', process.env.BIND_ADDR, '-p', process.env.WRITE_PORT, '-U', 'postgres', ...args, 'postgres'], { stdio: 'ignore' });
}

function signalReceiver(member, sig) {
  const script = `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^postgres: .*walreceiver' && kill -${sig} \${p#/proc/}; done; true`;
  execFileSync('docker', ['exec', member, 'bash', '-c', script]);
}

const peak = (loc) => loc.getAttribute('data-peak', { timeout: 2_000 }).then(Number).catch(() => 0);

test('a frozen WAL receiver: the sparkline rises live, the member page shows the rise and the fall', async ({ page }) => {
  test.setTimeout(300_000);
  await login(page, 'viewer');
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
  const replica = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  const spark = page.locator(`[data-testid=lag-sparkline][data-member=${replica}]`);
  await expect(spark).toBeVisible({ timeout: 30_000 });
  // Only replicas have one.
  await expect(page.locator('[data-testid=member-row][data-role=Leader] [data-testid=lag-sparkline]')).toHaveCount(0);
  pgbench('-i', '-s', '1', '-q');

  signalReceiver(replica, 'STOP');
  try {
    pgbench('-T', '15', '-c', '2', '-R', '300');
    await expect.poll(() => peak(spark), { timeout: 60_000 }).toBeGreaterThan(BOUND);
  } finally {
    signalReceiver(replica, 'CONT');
  }

  await spark.click();
  await expect(page).toHaveURL(new RegExp(`/member\\?name=${replica}$`));
  const chart = page.locator('[data-testid=lag-chart]');
  await expect(chart).toHaveAttribute('data-member', replica);
  expect(Number(await chart.getAttribute('data-peak'))).toBeGreaterThan(BOUND);
  // Redrawn every 5 s: it comes back under half the bound.
  await expect.poll(async () => Number(await chart.getAttribute('data-latest')), { timeout: 90_000 })
    .toBeLessThanOrEqual(BOUND / 2);
  // A stretch of the line holds the rise and the fall. (Others may be flat
  // at zero, which Playwright counts as hidden: the console is deployed
  // while the integration tests run, and records this member whenever it
  // was a replica.)
  await expect(chart.locator('polyline.lag-receive').filter({ visible: true }).first()).toBeVisible();
  // The console was deployed minutes ago: the hour before is shaded, not drawn as zero.
  await expect(chart.locator('[data-testid=lag-unrecorded]')).toHaveCount(1);
  await expect(page.locator('[data-testid=member-timeline]')).toHaveAttribute('href', `/timeline?subject=${replica}`);
  await page.screenshot({ path: shot('lag.png'), fullPage: true });

  await page.click('[data-testid=lag-range-24h]');
  await expect(page).toHaveURL(/range=24h/);
  await expect.poll(async () => Number(await page.locator('[data-testid=lag-chart]').getAttribute('data-peak')), { timeout: 10_000 })
    .toBeGreaterThan(BOUND);
});
