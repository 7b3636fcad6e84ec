// The stream page's forms: add a tag, change retention, register a
// consumer, turn on encryption and enhanced monitoring, switch to on-demand
// (the Go side checks each with the SDK); then the shard map shows the
// per-shard rates column; then deregister the consumer, remove the tag and
// delete the stream, after which the page is back on the stream list.

import {run, step, tid, config, visibleErrors, check} from './lib.mjs';

async function noErrors(page, what) {
  const errs = await visibleErrors(page);
  check(errs.length === 0, `${what}: the page shows errors: ${JSON.stringify(errs)}`);
}

await run('stream', async ({page, shot, open}) => {
  const name = config.stream;
  await open(`#/streams/${encodeURIComponent(name)}`);
  await page.locator(tid('config-status'), {hasText: 'ACTIVE'}).waitFor();
  await shot('overview');

  await page.locator(tid('tag-key')).fill('team');
  await page.locator(tid('tag-value')).fill(config.tagValue);
  await page.locator(tid('tag-add')).click();
  await page.locator(tid('tag-row', '[data-key="team"]')).waitFor();
  await noErrors(page, 'add a tag');

  await page.locator(tid('retention-hours')).fill('48');
  await page.locator(tid('retention-submit')).click();
  await page.locator(tid('config-retention'), {hasText: '48 h'}).waitFor();
  await noErrors(page, 'retention');

  await page.locator(tid('consumer-name')).fill('reader');
  await page.locator(tid('consumer-register')).click();
  await page.locator(tid('consumer-row', '[data-consumer="reader"]')).waitFor();
  await noErrors(page, 'register a consumer');

  await page.locator(tid('encryption-select')).selectOption('KMS');
  await page.locator(tid('encryption-key')).fill('alias/aws/kinesis');
  await page.locator(tid('encryption-submit')).click();
  await page.locator(tid('config-encryption'), {hasText: 'KMS'}).waitFor();
  await noErrors(page, 'encryption');

  await page.locator(tid('monitoring-form')).getByRole('button', {name: 'all'}).click();
  await page.locator(tid('monitoring-submit')).click();
  await page.locator(tid('config-enhanced-monitoring'), {hasText: 'IncomingBytes'}).waitFor();
  await noErrors(page, 'enhanced monitoring');

  await page.locator(tid('mode-select')).selectOption('ON_DEMAND');
  await page.locator(tid('mode-submit')).click();
  await page.locator(tid('config-capacity-mode'), {hasText: 'ON_DEMAND'}).waitFor();
  await noErrors(page, 'capacity mode');
  const tagShown = await page.locator(tid('tag-row', '[data-key="team"]')).locator('td').nth(1).textContent();
  await shot('changed');

  await step('changed', {tagShown});

  // Enhanced monitoring on: the shard map has the rates column.
  await page.locator(tid('tab-shards')).click();
  await page.locator(tid('shard-rates')).first().waitFor();
  const rateCells = await page.locator(tid('shard-rates')).count();
  await shot('shards-rates');
  await page.locator(tid('tab-metrics')).click();
  await page.locator(tid('shard-metrics-row')).first().waitFor();
  const shardMetricRows = await page.locator(tid('shard-metrics-row')).count();
  await shot('metrics-shards');

  await page.locator(tid('tab-overview')).click();
  const consumer = page.locator(tid('consumer-row', '[data-consumer="reader"]'));
  await consumer.locator(tid('consumer-deregister')).click();
  await consumer.locator(tid('consumer-deregister-confirm')).click();
  await consumer.waitFor({state: 'detached'});
  await page.locator(tid('tag-row', '[data-key="team"]')).locator(tid('tag-remove')).click();
  await page.locator(tid('tag-row', '[data-key="team"]')).waitFor({state: 'detached'});
  await noErrors(page, 'deregister and untag');

  await step('removed');

  // Deleting needs the stream's name typed.
  await page.locator(tid('delete-open')).click();
  const disabledBefore = await page.locator(tid('delete-submit')).isDisabled();
  await page.locator(tid('delete-confirm-name')).fill(name);
  await page.locator(tid('delete-submit')).click();
  await page.waitForURL(/#\/streams$/);
  await page.locator(tid('streams-status')).filter({hasText: 'refreshed'}).waitFor();
  const listedAfter = await page.locator(tid('stream-row', `[data-stream="${name}"]`)).count();
  await shot('deleted');
  return {tagShown, rateCells, shardMetricRows, disabledBefore, listedAfter, errors: await visibleErrors(page)};
});
