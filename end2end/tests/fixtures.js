// The Playwright test with one addition: a test fails if the browser reported
// any Content-Security-Policy violation on its page (inline scripts or styles
// the policy blocks would otherwise fail silently).
const base = require('@playwright/test');

exports.test = base.test.extend({
  page: async ({ page }, use) => {
    const violations = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await use(page);
    base.expect(violations, 'Content-Security-Policy violations').toEqual([]);
  },
});
exports.expect = base.expect;

// Where screenshots go: the build folder, unless scripts/screenshots asks
// for docs/ (the README's pictures change only on purpose).
const path = require('path');
exports.shot = (name) =>
  path.resolve(process.env.PGC_SCREENSHOT_DIR || path.resolve(__dirname, '../test-results/screenshots'), name);

// The Overview open in `page` shows a healthy cluster: one leader and two
// streaming replicas.
exports.waitHealthy = async (page) => {
  await base.expect(page.locator('[data-testid=cluster-status]')).toHaveAttribute('data-status', 'healthy', { timeout: 90_000 });
  await base.expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
};
