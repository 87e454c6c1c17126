// The incident timeline in a real browser: `docker kill` the leader, and the
// timeline page lists the death, HAProxy's DOWN, the promotion and the old
// leader's return as a replica, in that order; filters and the CSV link work,
// and the table fits its card.
const { test, expect, shot } = require('./fixtures');
const { execFileSync } = require('child_process');
const { login } = require('./login');

const docker = (...args) => execFileSync('docker', args, { encoding: 'utf8' });

async function leaderName(page) {
  return page.locator('[data-testid=member-row][data-role=Leader]').first()
    .getAttribute('data-member', { timeout: 1_000 }).catch(() => null);
}

test('docker kill the leader: death, HAProxy DOWN, promotion and return on the timeline', async ({ page }) => {
  test.setTimeout(300_000);
  await login(page, 'admin');
  await expect(page.locator('[data-testid=cluster-status]')).toHaveAttribute('data-status', 'healthy', { timeout: 90_000 });
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
  const old = await leaderName(page);
  expect(old).toMatch(/^pg-\d$/);
  const from = new Date(Date.now() - 2_000).toISOString().slice(0, 19);
  docker('kill', old);
  try {
    await expect.poll(async () => { const l = await leaderName(page); return !!l && l !== old; }, { timeout: 150_000 }).toBe(true);
  } finally {
    docker('start', old);
  }
  await expect(page.locator(`[data-testid=member-row][data-member=${old}]`))
    .toHaveAttribute('data-state', 'streaming', { timeout: 150_000 });

  // The page is a report, not live: load it until the return is recorded,
  // and the promotion (Patroni writes its history entry up to a loop later).
  const back = page.locator(`[data-testid=timeline-row][data-kind=member][data-subject=${old}]`, { hasText: '→ streaming' });
  const promotion = page.locator('[data-testid=timeline-row][data-kind=promotion]');
  await expect(async () => {
    await page.goto(`/timeline?from=${from}`);
    await expect(back).toHaveCount(1, { timeout: 1_000 });
    await expect(promotion).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  const rows = await page.locator('[data-testid=timeline-row]').evaluateAll((trs) => trs.map((tr) => ({
    kind: tr.dataset.kind, subject: tr.dataset.subject, text: tr.querySelector('td.what').textContent,
  })));
  rows.reverse();
  const at = (what, f) => {
    const i = rows.findIndex(f);
    expect(i, `${what} in ${JSON.stringify(rows)}`).toBeGreaterThanOrEqual(0);
    return i;
  };
  const died = at('death', (r) => r.kind === 'container' && r.subject === old && r.text.startsWith(`${old} died`));
  const down = at('HAProxy DOWN', (r) => r.kind === 'haproxy' && r.subject === old && r.text.includes('DOWN in primary'));
  const promoted = at('promotion', (r) => r.kind === 'promotion');
  const started = at('start', (r) => r.kind === 'container' && r.text === `${old} started`);
  const returned = at('return', (r) => r.kind === 'member' && r.subject === old && r.text.endsWith('→ streaming'));
  expect([died, down, promoted, started, returned]).toEqual([died, down, promoted, started, returned].sort((a, b) => a - b));
  // The death links to that minute of the container's log.
  const dieRow = page.locator(`[data-testid=timeline-row][data-kind=container][data-subject=${old}]`, { hasText: 'died' }).first();
  await expect(dieRow.locator('[data-testid=timeline-link]')).toHaveAttribute('href', new RegExp(`^/logs/${old}\\?since=`));
  // Long texts wrap inside the card.
  expect(await page.locator('table.timeline').evaluate((t) => t.scrollWidth <= t.parentElement.clientWidth)).toBe(true);
  await page.screenshot({ path: shot('timeline.png'), fullPage: true });

  // Filters: one member, one kind (a GET form: the filtered view is a link).
  await page.fill('input[name=subject]', old);
  await page.selectOption('select[name=kind]', 'container');
  await page.click('form.filters button[type=submit]');
  await expect(page).toHaveURL(new RegExp(`subject=${old}&kind=container`));
  const kinds = await page.locator('[data-testid=timeline-row]').evaluateAll((trs) => trs.map((tr) => `${tr.dataset.kind}/${tr.dataset.subject}`));
  expect(kinds.length).toBeGreaterThan(0);
  expect(new Set(kinds)).toEqual(new Set([`container/${old}`]));
  await expect(page.locator('[data-testid=timeline-csv]')).toHaveAttribute('href', new RegExp(`subject=${old}&kind=container`));
});
