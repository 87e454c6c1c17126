// Review, confirm and execute an operation in the op panel, as an operator
// does. The server checks the preconditions again at Execute; a replica's lag
// can cross its 1 MB bound between the plan and the click (a burst of WAL
// after a test's writes); the server checks it again for up to 15 s, and if the
// lag stays it refuses, naming the lag. Such a
// refusal is reviewed and executed again until `timeout`; any other refusal
// fails the test with the server's message. Returns the job's locator.
const { expect } = require('@playwright/test');

async function reviewAndExecute(panel, { title, confirm, password, timeout = 120_000 }) {
  const deadline = Date.now() + timeout;
  const job = panel.locator('[data-testid=job]');
  const refused = panel.locator('[data-testid=execute-error]');
  for (let attempt = 1; ; attempt++) {
    await expect(async () => {
      await panel.locator('[data-testid=review-plan]').click();
      await expect(panel.locator('[data-testid=plan-title]')).toContainText(title, { timeout: 2_000 });
      await expect(refused).toHaveCount(0, { timeout: 2_000 });
      await expect(panel.locator('[data-testid=precondition][data-ok=false]')).toHaveCount(0, { timeout: 2_000 });
    }).toPass({ timeout: Math.max(deadline - Date.now(), 5_000) });
    await panel.locator('[data-testid=confirm-name]').fill(confirm);
    if (password !== undefined) await panel.locator('[data-testid=confirm-password]').fill(password);
    await panel.locator('[data-testid=execute]').click();
    await expect(job.or(refused)).toBeVisible({ timeout: 30_000 });
    if (await job.count()) return job;
    const why = await refused.textContent();
    console.log(`execute refused (attempt ${attempt}): ${why}`);
    if (!/ lags /.test(why) || Date.now() > deadline) throw new Error(`the server refused to execute "${title}": ${why}`);
  }
}

module.exports = { reviewAndExecute };
