// Login, roles and the audit log in a real browser.
const { test, expect, shot } = require('./fixtures');
const { login } = require('./login');

test('a viewer sees no admin links, a forged request is refused, logout ends the session', async ({ page }) => {
  await login(page, 'viewer');
  await expect(page.locator('[data-testid=whoami]')).toHaveAttribute('data-role', 'viewer');
  await expect(page.locator('[data-testid=member-row]')).toHaveCount(3);
  await expect(page.locator('[data-testid=nav-audit]')).toHaveCount(0);
  await expect(page.locator('[data-testid=nav-admin]')).toHaveCount(0);
  // Forge the admin-only call from the viewer's own page (same origin, viewer's cookie).
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/audit_page', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'user=&action=&result=&from=&to=&page=1',
    });
    return r.status;
  });
  expect(status).toBe(403);
  const page403 = await page.goto('/audit');
  expect(page403.status()).toBe(403);
  await page.goto('/');
  await page.click('[data-testid=logout]');
  await expect(page).toHaveURL(/\/login\?loggedout=1/);
  await expect(page.locator('[data-testid=login-message]')).toContainText('logged out');
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=/);
});

test('a wrong password is refused with the generic message', async ({ page }) => {
  await page.goto('/login');
  await page.fill('input[name=username]', 'e2e-viewer');
  await page.fill('input[name=password]', 'definitely not it, sorry');
  await page.click('button[type=submit]');
  await expect(page.locator('[data-testid=login-message]')).toHaveText('Wrong user name or password.');
});

test('an admin reviews the audit log with a verified chain', async ({ page }) => {
  await login(page, 'admin');
  await page.click('[data-testid=nav-audit]');
  await expect(page).toHaveURL(/\/audit/);
  await expect(page.locator('[data-testid=chain-status]')).toContainText('verified through #');
  await expect(page.locator('[data-testid=audit-row][data-action=login]').first()).toBeVisible();
  await expect(page.locator('[data-testid=audit-row][data-result=refused]').first()).toBeVisible();
  await page.fill('input[name=action]', 'login_failed');
  await page.click('.filters button[type=submit]');
  await expect(page).toHaveURL(/action=login_failed/);
  const rows = page.locator('[data-testid=audit-row]');
  await expect(rows.first()).toHaveAttribute('data-action', 'login_failed');
  const actions = await rows.evaluateAll((els) => els.map((e) => e.dataset.action));
  expect(new Set(actions)).toEqual(new Set(['login_failed']));
  await page.screenshot({ path: shot('audit.png'), fullPage: true });
});

test('an admin adds a user on the Admin page and the new user can log in', async ({ page, browser }) => {
  await login(page, 'admin');
  await page.click('[data-testid=nav-admin]');
  await expect(page).toHaveURL(/\/admin/);
  const name = `e2e-added-${Date.now()}`;
  await page.fill('form.filters input[name=name]', name);
  await page.selectOption('form.filters select[name=role]', 'operator');
  await page.fill('form.filters input[name=password]', 'a sturdy test passphrase');
  await page.click('[data-testid=add-user]');
  await expect(page.locator('[data-testid=admin-message]')).toContainText(`Created ${name} (operator)`);
  await expect(page.locator(`[data-testid=user-row][data-user=${name}]`)).toBeVisible();
  // Changing a role needs the admin's own password, typed once at the top.
  const row = page.locator(`[data-testid=user-row][data-user=${name}]`);
  await row.locator('select[name=role]').selectOption('viewer');
  await row.locator('button', { hasText: 'Set role' }).click();
  await expect(page.locator('[data-testid=admin-message]')).toContainText('re-enter your password');
  await page.fill('[data-testid=admin-current-password]', process.env.PGC_E2E_ADMIN_PW);
  await row.locator('select[name=role]').selectOption('operator');
  await row.locator('button', { hasText: 'Set role' }).click();
  await expect(page.locator('[data-testid=admin-message]')).toContainText(`${name} is now operator`);
  // A too-short password is refused with the reason, and nothing is added.
  await page.fill('form.filters input[name=name]', `${name}-x`);
  await page.fill('form.filters input[name=password]', 'short');
  await page.click('[data-testid=add-user]');
  await expect(page.locator('[data-testid=admin-message]')).toContainText('too short');
  await expect(page.locator(`[data-testid=user-row][data-user=${name}-x]`)).toHaveCount(0);
  const other = await browser.newPage();
  await other.goto('/login');
  await other.fill('input[name=username]', name);
  await other.fill('input[name=password]', 'a sturdy test passphrase');
  await other.click('button[type=submit]');
  await expect(other.locator('[data-testid=whoami]')).toHaveAttribute('data-role', 'operator');
  await other.close();
});

test('one very long value does not widen the audit page', async ({ page }) => {
  // A refused login with a 60 000-character user name, as anyone could send.
  await page.goto('/login');
  await page.fill('input[name=username]', 'L'.repeat(60000));
  await page.fill('input[name=password]', 'not the password at all');
  await page.click('button[type=submit]');
  await expect(page.locator('[data-testid=login-message]')).toHaveText('Wrong user name or password.');
  await login(page, 'admin');
  await page.goto('/audit?action=login_failed');
  const cut = page.locator('[data-testid=cut-value]').first();
  await expect(cut).toBeVisible();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(1360 + 20);
  // The whole (stored, bounded) value is one click away.
  await cut.locator('summary').click();
  await expect(cut.locator('.whole')).toContainText('[cut: 60000 bytes in all]');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1360 + 20);
});

// Times in the viewer's zone (the browser's, here Asia/Kolkata: UTC+5:30,
// no daylight saving), the full UTC date on hover, and a switch to UTC only
// that this browser remembers.
test.describe('times in the viewer\'s zone', () => {
  test.use({ timezoneId: 'Asia/Kolkata' });

  test('the audit log shows local times with UTC on hover, or UTC only', async ({ page }) => {
    await login(page, 'admin');
    await page.click('[data-testid=nav-audit]');
    const time = page.locator('[data-testid=audit-row] [data-testid=time]').first();
    await expect(time).toHaveText(/^\d\d:\d\d:\d\d UTC\+5:30$/);
    const ms = Number(await time.getAttribute('data-ms'));
    const utc = new Date(ms).toISOString();
    const local = new Date(ms + 330 * 60_000).toISOString();
    await expect(time).toHaveText(`${local.slice(11, 19)} UTC+5:30`);
    await expect(time).toHaveAttribute('title', `${utc.slice(0, 10)} ${utc.slice(11, 19)} UTC`);
    await page.click('[data-testid=time-switch]');
    await expect(page.locator('[data-testid=time-switch]')).toHaveAttribute('data-local', 'false');
    await expect(time).toHaveText(`${utc.slice(11, 19)} UTC`);
    // Remembered by this browser, after a reload too.
    await page.reload();
    await expect(page.locator('[data-testid=time-switch]')).toHaveAttribute('data-local', 'false');
    await expect(page.locator('[data-testid=audit-row] [data-testid=time]').first()).toHaveText(/^\d\d:\d\d:\d\d UTC$/);
    await page.click('[data-testid=time-switch]');
    await expect(page.locator('[data-testid=audit-row] [data-testid=time]').first()).toHaveText(/UTC\+5:30$/);
  });
});
