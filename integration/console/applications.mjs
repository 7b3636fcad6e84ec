// The applications page: the lease table the Go side filled, with the
// owner, checkpoint and lag against the chosen stream.

import {run, tid, config, visibleErrors} from './lib.mjs';

await run('applications', async ({page, shot, open}) => {
  await open('#/streams');
  await page.locator(tid('nav-applications')).click();
  const link = page.locator(tid('application')).getByRole('link', {name: config.application, exact: true});
  await link.waitFor();
  const applications = await page.locator(tid('application')).allTextContents();
  await shot('applications');

  await link.click();
  await page.locator(tid('application-name'), {hasText: config.application}).waitFor();
  const stream = page.locator(tid('application-stream'));
  await stream.locator(`option[value="${config.stream}"]`).waitFor({state: 'attached'});
  await stream.selectOption(config.stream);
  const row = page.locator(tid('lease-row', `[data-shard="${config.shard}"]`));
  await row.locator(tid('lease-lag')).filter({hasText: /\d/}).waitFor();
  const cells = await row.locator('td').allTextContents();
  const rows = await page.locator(tid('lease-row')).count();
  await shot('leases');
  return {applications, cells, rows, url: page.url(), errors: await visibleErrors(page)};
});
