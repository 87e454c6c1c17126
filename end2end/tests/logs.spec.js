// A container's log followed live in the browser, through Traefik: a line
// written to etcd's output appears within seconds, with the stack's secret
// masked; viewers get no Logs page.
const { test, expect, shot } = require('./fixtures');
const { execFileSync } = require('child_process');
const fs = require('fs');
const { login } = require('./login');

function secret(name) {
  const file = process.env.PGC_STACK_SECRETS_FILE;
  const line = fs.readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${name}=`));
  return line.slice(name.length + 1).trim();
}

test('an admin follows a container log live with secrets masked', async ({ page }) => {
  await login(page, 'admin');
  await page.click('[data-testid=nav-logs]');
  await expect(page).toHaveURL(/\/logs/);
  await page.click('[data-testid=log-container][data-name=etcd]');
  await expect(page.locator('[data-testid=log]')).toHaveAttribute('data-container', 'etcd');
  await expect(page.locator('[data-testid=log-container][data-name=etcd]')).toHaveClass(/current/);
  await expect(page.locator('[data-testid=log-container][data-name=pg-0]')).not.toHaveClass(/current/);
  await expect(page.locator('[data-testid=log-state]')).toHaveAttribute('data-state', 'live', { timeout: 15_000 });
  const marker = `pgc-e2e-log-${Date.now()}`;
  const pw = secret('PG_SUPERUSER_PASSWORD');
  // Through stdin, so no command line shows the secret.
  execFileSync('docker', ['exec', '-i', 'etcd', 'sh', '-c', 'cat > /proc/1/fd/1'], { input: `${marker} password=${pw}\n` });
  const line = page.locator('[data-testid=log-line]', { hasText: marker });
  await expect(line).toHaveCount(1, { timeout: 5_000 });
  await expect(line).toContainText('password=••••••');
  expect(await page.content()).not.toContain(pw);
  // The filter narrows the view to matching lines.
  await page.fill('[data-testid=log-filter]', marker);
  await expect(page.locator('[data-testid=log-line]')).toHaveCount(1);
  await page.screenshot({ path: shot('logs.png') });
});

test('a viewer has no Logs page', async ({ page }) => {
  await login(page, 'viewer');
  await expect(page.locator('[data-testid=whoami]')).toHaveAttribute('data-role', 'viewer');
  await expect(page.locator('[data-testid=nav-logs]')).toHaveCount(0);
  const r = await page.goto('/logs');
  expect(r.status()).toBe(403);
});
