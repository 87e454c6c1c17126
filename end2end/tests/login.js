// Log in through the real login form.
const { expect } = require('@playwright/test');

const users = {
  admin: { name: 'e2e-admin', password: process.env.PGC_E2E_ADMIN_PW },
  viewer: { name: 'e2e-viewer', password: process.env.PGC_E2E_VIEWER_PW },
};

async function login(page, who) {
  const u = users[who];
  if (!u.password) throw new Error('PGC_E2E_ADMIN_PW / PGC_E2E_VIEWER_PW are not set: run scripts/test');
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.fill('input[name=username]', u.name);
  await page.fill('input[name=password]', u.password);
  await page.click('button[type=submit]');
  await expect(page.locator('[data-testid=whoami]')).toContainText(u.name);
}

module.exports = { login, users };
