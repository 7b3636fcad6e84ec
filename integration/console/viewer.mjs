// Create a stream in the page; after the Go side put records with the SDK
// (plain, JSON, HTML, binary and a KPL aggregate), read them in the data
// viewer, page forward with "Next page", switch the payload formats, filter
// by partition key, and put a record from the page.

import {run, step, check, tid, config, streamRow, recordRows, visibleErrors} from './lib.mjs';

const NEXT_PAGES = 100; // a bound on paging, far above what the records need

// readUntil clicks "Next page" until done(rows, caughtUp) holds.
async function readUntil(page, what, done) {
  for (let i = 0; ; i++) {
    const status = page.locator(tid('data-status', '[data-loading="false"]'));
    await status.waitFor();
    const errs = await visibleErrors(page);
    check(errs.length === 0, `reading ${what}: the page shows errors: ${JSON.stringify(errs)}`);
    const caughtUp = (await status.getAttribute('data-caught-up')) === 'true';
    const rows = await recordRows(page);
    if (done(rows, caughtUp)) return {rows, pages: i + 1};
    check(i < NEXT_PAGES, `reading ${what}: not there after ${NEXT_PAGES} pages; the page shows ${JSON.stringify(rows)}`);
    await page.locator(tid('data-next')).click();
  }
}

await run('viewer', async ({page, shot, open}) => {
  const name = config.stream;
  await open('#/streams');
  await page.locator(tid('create-form')).waitFor();
  await page.locator(tid('create-name')).fill(name);
  await page.locator(tid('create-mode')).selectOption('PROVISIONED');
  await page.locator(tid('create-shard-count')).fill(String(config.shards));
  await page.locator(tid('create-submit')).click();
  const row = await streamRow(page, name);
  // The list refreshes itself until the stream is ACTIVE.
  await row.locator(tid('stream-status'), {hasText: 'ACTIVE'}).waitFor();
  await row.locator(tid('stream-spark')).locator('svg, span').first().waitFor();
  const listed = {
    openShards: await row.locator(tid('stream-open-shards')).textContent(),
    mode: await row.locator(tid('stream-mode')).textContent(),
    retention: await row.locator(tid('stream-retention')).textContent(),
    encryption: await row.locator(tid('stream-encryption')).textContent(),
  };
  await shot('streams');

  const go = await step('created', listed);

  // The stream's page.
  await row.locator(tid('stream-link')).click();
  await page.locator(tid('config-open-shards'), {hasText: String(config.shards)}).waitFor();
  await shot('stream');

  // The data viewer, whole stream, from the oldest record.
  await page.locator(tid('tab-data')).click();
  await page.locator(tid('read-form')).waitFor();
  await page.locator(tid('data-from')).selectOption('TRIM_HORIZON');
  await page.locator(tid('data-limit')).fill('2'); // small pages: "Next page" must carry the rest
  await page.locator(tid('data-read')).click();
  const want = go.expect.map((r) => `${r.sequenceNumber}/${r.subSequenceNumber}`);
  const all = await readUntil(page, 'every record', (rows) => {
    const have = new Set(rows.map((r) => `${r.sequenceNumber}/${r.subSequenceNumber}`));
    return want.every((w) => have.has(w));
  });
  // Nothing the records hold was run as markup.
  const xss = await page.evaluate(() => ({
    flag: window.__xss === undefined ? null : String(window.__xss),
    images: document.querySelectorAll('img').length,
    scriptsInBody: document.querySelectorAll('main script').length,
    bold: document.querySelectorAll('main b').length,
  }));
  await shot('data-text');

  const formats = {};
  for (const f of ['json', 'hex', 'base64', 'text']) {
    await page.locator(tid('format-' + f)).click();
    await page.locator(tid('records-body', `[data-format="${f}"]`)).waitFor({state: 'attached'});
    formats[f] = await recordRows(page);
    if (f === 'json' || f === 'hex') await shot('data-' + f);
  }

  // Filter by partition key: applied to the user records of aggregates too.
  await page.locator(tid('data-key')).fill(go.filterKey);
  await page.locator(tid('data-limit')).fill('100');
  await page.locator(tid('data-read')).click();
  const filtered = await readUntil(page, 'the filtered records', (rows, caughtUp) => caughtUp && rows.length > 0);
  await shot('data-filtered');

  // One shard, from a sequence number: that record first, then the rest of its shard.
  await page.locator(tid('data-key')).fill('');
  await page.locator(tid('data-shard')).selectOption(go.atSequence.shardId);
  await page.locator(tid('data-from')).selectOption('AT_SEQUENCE_NUMBER');
  await page.locator(tid('data-seq')).fill(go.atSequence.sequenceNumber);
  await page.locator(tid('data-read')).click();
  const atSequence = await readUntil(page, 'the records from a sequence number', (rows, caughtUp) => caughtUp && rows.length > 0);

  // The whole stream from a time before the first put.
  await page.locator(tid('data-shard')).selectOption('');
  await page.locator(tid('data-from')).selectOption('AT_TIMESTAMP');
  await page.locator(tid('data-at')).fill(go.atTime);
  await page.locator(tid('data-read')).click();
  const atTime = await readUntil(page, 'the records from a time', (rows, caughtUp) => caughtUp && rows.length > 0);

  // Put a record from the page.
  await page.locator(tid('put-key')).fill(go.putKey);
  await page.locator(tid('put-data')).fill(go.putData);
  await page.locator(tid('put-submit')).click();
  const putText = await page.locator(tid('put-result'), {hasText: 'put in'}).textContent();
  const m = /put in (\S+) at (\d+)/.exec(putText);
  check(m, `the put's result reads ${putText}`);

  // The metrics page draws its charts.
  await page.locator(tid('tab-metrics')).click();
  await page.locator(tid('metric-card')).first().waitFor();
  const charts = await page.locator(tid('metric-card')).count();
  await page.locator(tid('chart-IncomingBytes')).waitFor();
  await shot('metrics');

  // And the shard map.
  await page.locator(tid('tab-shards')).click();
  await page.locator(tid('shard-bar')).first().waitFor();
  await shot('shards');

  return {
    listed,
    rows: all.rows,
    pages: all.pages,
    xss,
    formats,
    filtered: filtered.rows,
    atSequence: atSequence.rows,
    atTime: atTime.rows,
    put: {shardId: m[1], sequenceNumber: m[2]},
    charts,
    errors: await visibleErrors(page),
  };
});
