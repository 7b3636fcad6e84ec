// The live tail: start it in the data viewer; the Go side puts records with
// the SDK, one at a time, and the page must show each. The time from the
// put to the row's insertion is measured against the one system clock
// both sides read (Date.now() here, time.Now() in Go) and reported, not
// asserted: how fast depends on the machine.

import {run, step, check, tid, config, visibleErrors} from './lib.mjs';

// ARRIVAL_MS bounds the wait for one tailed record: generous, a bound on a
// lost record rather than a measure of speed.
const ARRIVAL_MS = 30000;

await run('tail', async ({page, shot, open}) => {
  await open(`#/streams/${encodeURIComponent(config.stream)}/data`);
  await page.locator(tid('tail-toggle')).click();
  await page.locator(tid('tail-status', '[data-state="live"]')).waitFor();

  // Note when each row is inserted, by its payload.
  await page.evaluate(() => {
    window.__shown = {};
    const body = document.querySelector('[data-testid="records-body"]');
    new MutationObserver((muts) => {
      const now = Date.now();
      for (const m of muts) {
        for (const n of m.addedNodes) {
          if (n.nodeType !== 1 || n.getAttribute('data-testid') !== 'record-row') continue;
          const text = n.querySelector('[data-testid="record-data"]').textContent;
          if (!(text in window.__shown)) window.__shown[text] = now;
        }
      }
    }).observe(body, {childList: true});
  });
  await shot('tail-live');

  const samples = [];
  for (let i = 0; i < config.samples; i++) {
    const put = await step('put', {i});
    const row = page.locator(tid('record-row', `[data-seq="${put.sequenceNumber}"][data-source="tail"]`));
    await row.waitFor({timeout: ARRIVAL_MS});
    const shownMs = await page.evaluate((marker) => window.__shown[marker], put.marker);
    check(typeof shownMs === 'number', `row ${put.sequenceNumber} is there but its insertion was not seen`);
    samples.push({
      marker: put.marker,
      sequenceNumber: put.sequenceNumber,
      data: await row.locator(tid('record-data')).textContent(),
      shardId: await row.getAttribute('data-shard'),
      putToShownMs: shownMs - put.putStartMs,
      returnToShownMs: shownMs - put.putEndMs,
    });
  }
  await shot('tail-records');

  // A record put from the page's own form arrives through the tail as well.
  await page.locator(tid('put-key')).fill('from-the-page');
  await page.locator(tid('put-data')).fill(config.pageMarker);
  await page.locator(tid('put-submit')).click();
  await page.locator(tid('put-result'), {hasText: 'put in'}).waitFor();
  const pageRow = page.locator(tid('record-row', '[data-source="tail"]'), {hasText: config.pageMarker});
  await pageRow.waitFor({timeout: ARRIVAL_MS});
  const pagePut = {
    sequenceNumber: await pageRow.getAttribute('data-seq'),
    partitionKey: await pageRow.locator(tid('record-key')).textContent(),
  };

  const statusWhileLive = await page.locator(tid('tail-status')).textContent();
  await page.locator(tid('tail-toggle')).click();
  await page.locator(tid('tail-status', '[data-state="off"]')).waitFor();
  await shot('tail-stopped');
  return {samples, pagePut, statusWhileLive, errors: await visibleErrors(page)};
});
