// A replica backup from the Overview, its live steps, then the catalog and verification.
const { test, expect } = require('@playwright/test');
const path = require('path');
const { login } = require('./login');

test('back up a replica, watch it, find it in the catalog and verify it', async ({ page }) => {
  await login(page, 'admin');
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
  const replica = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  await page.locator(`[data-testid=member-row][data-member=${replica}] [data-testid=op-backup]`).click();
  await page.click('[data-testid=review-plan]');
  await expect(page.locator('[data-testid=plan-title]')).toContainText(`Backup of ${replica}`);
  await expect(page.locator('[data-testid=precondition][data-ok=false]')).toHaveCount(0);
  await page.fill('[data-testid=confirm-name]', replica);
  await page.click('[data-testid=execute]');
  // The phases appear as they happen.
  await expect(page.locator('[data-testid=job-step]', { hasText: 'stopping' })).toBeVisible();
  // Reloading mid-way does not lose the job: it lives on the server.
  await page.reload();
  await expect(page.locator('[data-testid=whoami]')).toBeVisible();
  await page.click('[data-testid=nav-backups]');
  await expect(page.locator('[data-testid=backup-row][data-status=ok]').first()).toBeVisible({ timeout: 120_000 });
  await page.locator('[data-testid=verify-backup]').first().click();
  await expect(page.locator('[data-testid=backup-row]').first()).toHaveAttribute('data-verified', 'true');
  await page.screenshot({ path: path.resolve(__dirname, '../../docs/backups.png'), fullPage: true });
  // The replica is back.
  await page.click('text=Overview');
  await expect(page.locator(`[data-testid=member-row][data-member=${replica}]`)).toHaveAttribute('data-state', 'streaming', { timeout: 90_000 });
});
