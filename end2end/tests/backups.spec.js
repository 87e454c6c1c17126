// A replica backup from the Overview on a few hundred MB of real data: its
// progress pushed over the websocket through Traefik (the bar advances), then
// the catalog, verification with a test restore, a restore of the whole
// cluster from it (a reload mid-way still shows the live job, the stopped
// members are expected-down, a restart of Traefik is survived: polling
// meanwhile, then the websocket again), the plan of a restore to a point in
// time, and deletion.
const { test, expect, shot } = require('./fixtures');
const { execFileSync } = require('child_process');
const fs = require('fs');
const { login, users } = require('./login');
const { reviewAndExecute } = require('./ops');

function secret(name) {
  const file = process.env.PGC_STACK_SECRETS_FILE;
  const line = fs.readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${name}=`));
  return line.slice(name.length + 1).trim();
}

// Patroni's own view (loopback REST API): every replica streaming with lag <= 1 MiB.
async function replicasCaughtUp() {
  const api = `http://${process.env.BIND_ADDR}:${process.env.PG0_API_PORT}/cluster`;
  const c = await (await fetch(api)).json();
  const replicas = c.members.filter((m) => m.role !== 'leader' && m.role !== 'master' && m.role !== 'primary');
  return replicas.length === 2 && replicas.every((m) => ['streaming', 'running'].includes(m.state) && (m.lag || 0) <= 1048576);
}

test('back up a replica, watch the bar, reload, verify with a test restore, delete', async ({ page }) => {
  test.setTimeout(420_000);
  // ~300 MB of pgbench data through the write endpoint.
  execFileSync('docker', ['exec', '-e', `PGPASSWORD=${secret('PG_SUPERUSER_PASSWORD')}`, 'pg-0', 'pgbench', '-i', '-s', '20', '-q',
    '-h', process.env.BIND_ADDR, '-p', process.env.WRITE_PORT, '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
  await expect.poll(replicasCaughtUp, { timeout: 120_000, intervals: [1000] }).toBe(true);

  const frames = [];
  page.on('websocket', (ws) => {
    if (ws.url().includes('/ws/jobs/')) ws.on('framereceived', (f) => frames.push(f.payload));
  });
  await login(page, 'admin');
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
  const replica = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  await page.locator(`[data-testid=member-row][data-member=${replica}] [data-testid=op-backup]`).click();
  const job = await reviewAndExecute(page.locator('[data-testid=op-panel]'), { title: `Backup of ${replica}`, confirm: replica });

  // The bar advances: sample it while the copy runs (until the replica is
  // being stopped), then again on the reloaded page while the archive is
  // written; each phase's values only grow.
  const sample = async (job, until) => {
    const seen = [];
    for (let i = 0; i < 3000 && !(await until.count()); i++) {
      const pct = await job.locator('[data-testid=job-progress]').getAttribute('data-pct', { timeout: 30 }).catch(() => null);
      if (pct !== null && seen[seen.length - 1] !== Number(pct)) seen.push(Number(pct));
    }
    expect([...seen].sort((a, b) => a - b), `progress values: ${seen}`).toEqual(seen);
    return seen;
  };
  await expect(job).toHaveAttribute('data-live', 'websocket');
  const copying = await sample(job, job.locator('[data-testid=job-step]', { hasText: 'stopping' }));
  const archiving = await sample(job, job.locator('[data-testid=job-step]', { hasText: 'waiting until' }));
  console.log(`progress samples: copy [${copying}], archive [${archiving}], websocket frames ${frames.length}`);
  const seen = copying.concat(archiving);
  expect(seen.length, `copy ${copying}, archive ${archiving}`).toBeGreaterThanOrEqual(3);
  expect(seen.some((p) => p > 0 && p < 100), `copy ${copying}, archive ${archiving}`).toBe(true);
  expect(frames.length).toBeGreaterThanOrEqual(seen.length);

  await page.click('[data-testid=nav-backups]');
  const backup = page.locator('[data-testid=backup-row][data-status=ok]').first();
  await expect(backup).toBeVisible({ timeout: 180_000 });
  await backup.locator('[data-testid=verify-backup]').click();
  await expect(backup).toHaveAttribute('data-restored', 'true', { timeout: 180_000 });
  await expect(backup).toHaveAttribute('data-verified', 'true');
  await expect(backup.locator('[data-testid=verified]')).toContainText('restored');
  await page.screenshot({ path: shot('backups.png'), fullPage: true });

  // Restore the whole cluster from it, through the browser and the deployed
  // container: the plan, the typed cluster name and the password, the job,
  // then the data kept from before, which an admin discards (typed, password).
  const id = await backup.getAttribute('data-id');
  await backup.locator('[data-testid=restore-backup]').click();
  const panel = page.locator('[data-testid=op-panel]');
  await panel.locator('[data-testid=review-plan]').click();
  await expect(panel.locator('[data-testid=plan-title]')).toContainText(`from backup ${id}`);
  await expect(panel.locator('[data-testid=precondition][data-ok=false]')).toHaveCount(0);
  await expect(panel).toContainText('WRITES MADE AFTER');
  const cluster = await panel.locator('.confirm strong').textContent();
  await panel.locator('[data-testid=confirm-name]').fill(cluster);
  await panel.locator('[data-testid=confirm-password]').fill(users.admin.password);
  await panel.locator('[data-testid=execute]').click();
  const restore = panel.locator('[data-testid=job]');
  // Mid-way (the members are being stopped) a reload does not lose the job:
  // it lives on the server and is followed again.
  await expect(restore.locator('[data-testid=job-step]', { hasText: 'stopping' }).first()).toBeVisible({ timeout: 120_000 });
  await page.reload();
  await expect(page.locator('[data-testid=live-jobs] [data-testid=job]')).toHaveAttribute('data-live', 'websocket');
  // On the Overview, the stopped members are expected-down (amber), not failures.
  await page.click('text=Overview');
  const live = page.locator('[data-testid=live-jobs] [data-testid=job]');
  await expect(live).toHaveAttribute('data-live', 'websocket');
  const other = page.locator(`[data-testid=member-row]:not([data-member=${replica}])`).first();
  await expect(other).toHaveClass(/busy/, { timeout: 60_000 });
  await expect(other).toContainText('is running');
  await page.screenshot({ path: shot('restore-progress.png') });
  // The connection drops (Traefik restarts): the view polls meanwhile, then
  // its websocket reconnects through the new Traefik and the job goes on live.
  execFileSync('docker', ['restart', '-t', '0', 'traefik'], { stdio: 'ignore' });
  await expect(live).toHaveAttribute('data-live', 'polling', { timeout: 10_000 });
  await expect(live).toHaveAttribute('data-live', 'websocket', { timeout: 30_000 });
  await expect(live.locator('[data-testid=job-outcome]')).toContainText('row counts of', { timeout: 300_000 });
  await page.screenshot({ path: shot('restore-done.png'), fullPage: true });
  await page.click('[data-testid=nav-backups]');
  const kept = page.locator('[data-testid=kept-row][data-phase=done]');
  await expect(kept).toHaveCount(1);
  await expect(kept.locator('[data-testid=kept-outcome]')).toContainText('restored');
  const keptId = await kept.getAttribute('data-id');
  await kept.locator('[data-testid=discard-kept]').click();
  await panel.locator('[data-testid=review-plan]').click();
  await expect(panel.locator('[data-testid=plan-title]')).toContainText(`restore ${keptId}`);
  await panel.locator('[data-testid=confirm-name]').fill(keptId);
  await panel.locator('[data-testid=confirm-password]').fill(users.admin.password);
  await panel.locator('[data-testid=execute]').click();
  await expect(panel.locator('[data-testid=job] [data-testid=job-outcome]')).toContainText('deleted', { timeout: 60_000 });
  await page.reload();
  await expect(page.locator('[data-testid=kept-row]')).toHaveCount(0);
  await expect.poll(replicasCaughtUp, { timeout: 120_000, intervals: [1000] }).toBe(true);

  // Point in time: the time typed in the panel (to the second) reaches the
  // server, whose plan shows the window the WAL archive can restore and
  // chooses this backup (not run here: server/tests/integration/pitr.rs does).
  await page.locator('[data-testid=restore-to-time]').click();
  const target = new Date(Date.now() - 5_000).toISOString().slice(0, 19);
  await panel.locator('[data-testid=op-target-time]').fill(target);
  await expect(async () => {
    await panel.locator('[data-testid=review-plan]').click();
    await expect(panel.locator('[data-testid=plan-title]')).toContainText(`to ${target.replace('T', ' ')} UTC`, { timeout: 2_000 });
    await expect(panel.locator('[data-testid=precondition][data-ok=false]')).toHaveCount(0, { timeout: 2_000 });
  }).toPass({ timeout: 60_000 });
  await expect(panel).toContainText('the archive can restore any second from');
  await expect(panel).toContainText(`${replica}'s backup of`);
  await expect(panel).toContainText(`WRITES MADE AFTER ${target.replace('T', ' ')} UTC ARE LOST`);
  await panel.locator('button', { hasText: 'Close' }).click();

  // Delete it: the typed id is required.
  await backup.locator('[data-testid=delete-backup] summary').click();
  await backup.locator('[data-testid=delete-typed]').fill(id);
  await backup.locator('[data-testid=delete-submit]').click();
  await expect(page.locator(`[data-testid=backup-row][data-id="${id}"]`)).toHaveCount(0);

  // The cluster is whole: the backed-up member leads the restored cluster, two replicas stream.
  await page.click('text=Overview');
  await expect(page.locator(`[data-testid=member-row][data-member=${replica}]`)).toHaveAttribute('data-role', 'Leader', { timeout: 90_000 });
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
});

// The second kind: a hot base backup of the same few hundred MB, its bar
// pushed over the websocket through Traefik while pg_basebackup copies, and
// not one member stopped or restarted; then it is listed as such.
test('a hot base backup: the bar advances while no member stops', async ({ page }) => {
  test.setTimeout(300_000);
  // The pgbench data of the test above (restored with its backup), or made now when run alone.
  const psql = (sql) => execFileSync('docker', ['exec', '-e', `PGPASSWORD=${secret('PG_SUPERUSER_PASSWORD')}`, 'pg-0', 'psql', '-XAtq',
    '-h', process.env.BIND_ADDR, '-p', process.env.WRITE_PORT, '-U', 'postgres', '-c', sql]).toString().trim();
  if (psql("SELECT count(*) FROM pg_tables WHERE tablename = 'pgbench_accounts'") === '0') {
    execFileSync('docker', ['exec', '-e', `PGPASSWORD=${secret('PG_SUPERUSER_PASSWORD')}`, 'pg-0', 'pgbench', '-i', '-s', '20', '-q',
      '-h', process.env.BIND_ADDR, '-p', process.env.WRITE_PORT, '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
  }
  await expect.poll(replicasCaughtUp, { timeout: 120_000, intervals: [1000] }).toBe(true);
  const startedAt = () => execFileSync('docker', ['inspect', '-f', '{{.Name}} {{.State.StartedAt}}', 'pg-0', 'pg-1', 'pg-2']).toString();
  const before = startedAt();
  await login(page, 'admin');
  await expect(page.locator('[data-testid=member-row][data-state=streaming]')).toHaveCount(2, { timeout: 90_000 });
  const replica = await page.locator('[data-testid=member-row][data-state=streaming]').first().getAttribute('data-member');
  await page.locator(`[data-testid=member-row][data-member=${replica}] [data-testid=op-base-backup]`).click();
  const panel = page.locator('[data-testid=op-panel]');
  // Reviewed again until the replica has caught up with the data just written.
  await expect(async () => {
    await panel.locator('[data-testid=review-plan]').click();
    await expect(panel).toContainText('which kind: a hot base backup stops nothing', { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  const job = await reviewAndExecute(panel, { title: `Hot base backup of ${replica}`, confirm: replica });
  await expect(job).toHaveAttribute('data-live', 'websocket');
  const seen = [];
  const verifying = job.locator('[data-testid=job-step]', { hasText: 'pg_verifybackup' });
  for (let i = 0; i < 3000 && !(await verifying.count()); i++) {
    const pct = await job.locator('[data-testid=job-progress]').getAttribute('data-pct', { timeout: 30 }).catch(() => null);
    if (pct !== null && seen[seen.length - 1] !== Number(pct)) seen.push(Number(pct));
  }
  console.log(`hot base backup progress samples: [${seen}]`);
  expect(seen.some((p) => p > 0 && p < 100), `samples ${seen}`).toBe(true);
  await expect(job.locator('[data-testid=job-outcome]')).toHaveAttribute('data-ok', 'true', { timeout: 180_000 });
  await expect(job.locator('[data-testid=job-outcome]')).toContainText('no container was stopped');
  expect(startedAt()).toEqual(before);

  await page.click('[data-testid=nav-backups]');
  const row = page.locator('[data-testid=backup-row][data-kind=base][data-status=ok]').first();
  await expect(row).toBeVisible();
  await expect(row.locator('[data-testid=backup-kind]')).toHaveText('hot base backup');
});
