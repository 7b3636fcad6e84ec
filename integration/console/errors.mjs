// Bad input shows the server's error, code and message, next to the control
// the user acted on, and nowhere else: a stream created with 0 shards, a
// split key outside the selected shard's range, a shard count of 0.

import {run, tid, config, errorOf, visibleErrors} from './lib.mjs';

await run('errors', async ({page, shot, open}) => {
  const seen = {};

  await open('#/streams');
  await page.locator(tid('create-name')).fill(config.newStream);
  await page.locator(tid('create-mode')).selectOption('PROVISIONED');
  await page.locator(tid('create-shard-count')).fill('0');
  await page.locator(tid('create-submit')).click();
  seen.create = await errorOf(page, 'create-error');
  seen.createVisible = await visibleErrors(page);
  // The error sits in the create form's card, right under the form.
  seen.createNextToForm = await page.evaluate(() => {
    const err = document.querySelector('[data-testid="create-error"]');
    const form = document.querySelector('[data-testid="create-form"]');
    return err.parentElement === form.parentElement && err.previousElementSibling === form;
  });
  await shot('create-error');

  await open(`#/streams/${encodeURIComponent(config.stream)}/shards`);
  const first = page.locator(tid('shard-bar', `[data-shard="${config.shard}"]`));
  await first.click();
  await page.locator(tid('selected-shard'), {hasText: config.shard}).waitFor();
  await page.locator(tid('split-key')).fill(config.badKey);
  await page.locator(tid('split-submit')).click();
  seen.split = await errorOf(page, 'split-error');
  seen.splitVisible = await visibleErrors(page);
  seen.splitNextToForm = await page.evaluate(() => {
    const err = document.querySelector('[data-testid="split-error"]');
    return err.previousElementSibling === document.querySelector('[data-testid="split-form"]');
  });
  seen.barsAfterSplit = await page.locator(tid('shard-bar')).count();
  await shot('split-error');

  await page.locator(tid('tab-overview')).click();
  await page.locator(tid('shard-count-form')).waitFor();
  await page.locator(tid('config-open-shards')).filter({hasText: /\d/}).waitFor();
  await page.locator(tid('shard-count-input')).fill('0');
  await page.locator(tid('shard-count-submit')).click();
  seen.shardCount = await errorOf(page, 'shard-count-error');
  seen.shardCountVisible = await visibleErrors(page);
  seen.shardCountNextToForm = await page.evaluate(() => {
    const err = document.querySelector('[data-testid="shard-count-error"]');
    return err.previousElementSibling === document.querySelector('[data-testid="shard-count-form"]');
  });
  await shot('shard-count-error');
  return seen;
});
