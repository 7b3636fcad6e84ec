// The shard map: select the stream's one shard, split it at the default
// key (its midpoint) and see the lineage, the parent closed over its two
// children; pick a key by clicking on a child's bar; merge the two children
// back into one and see the merge in the lineage.

import {run, step, check, tid, config, visibleErrors} from './lib.mjs';

async function lineage(page) {
  return page.evaluate(() => ({
    nodes: [...document.querySelectorAll('[data-testid="lineage-node"]')].map((n) => ({
      shardId: n.getAttribute('data-shard'),
      open: n.getAttribute('data-open') === 'true',
      depth: Number(n.getAttribute('data-depth')),
    })),
    edges: [...document.querySelectorAll('[data-testid="lineage-edge"]')].map((e) => ({
      from: e.getAttribute('data-from'),
      to: e.getAttribute('data-to'),
    })),
    bars: [...document.querySelectorAll('[data-testid="shard-bar"]')].map((b) => b.getAttribute('data-shard')),
  }));
}

function bar(page, id) {
  return page.locator(tid('shard-bar', `[data-shard="${id}"]`));
}

await run('split', async ({page, shot, open}) => {
  await open(`#/streams/${encodeURIComponent(config.stream)}/shards`);
  await page.locator(tid('shard-bar')).first().waitFor();
  const parent = await page.locator(tid('shard-bar')).first().getAttribute('data-shard');
  await bar(page, parent).click();
  await page.locator(tid('selected-shard'), {hasText: parent}).waitFor();
  const defaultKey = await page.locator(tid('split-key')).inputValue();
  await page.locator(tid('split-marker')).waitFor({state: 'attached'}); // a vertical line: no area to be "visible"
  await shot('shard-selected');

  await page.locator(tid('split-submit')).click();
  // The lineage: the parent closed, an edge to each of its two children.
  await page.locator(tid('lineage-node', `[data-shard="${parent}"][data-open="false"]`)).waitFor();
  await page.waitForFunction((p) => document.querySelectorAll(`[data-testid="lineage-edge"][data-from="${p}"]`).length === 2, parent);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="shard-bar"]').length === 2);
  const afterSplit = await lineage(page);
  const splitResult = await page.locator(tid('reshard-result')).textContent();
  await shot('shard-split');

  const go = await step('split', {parent, defaultKey, lineage: afterSplit, result: splitResult});

  // Clicking on the selected bar picks the key under the pointer: a quarter
  // of the way into the lower child.
  const lower = go.lower;
  await bar(page, lower).click();
  await page.locator(tid('selected-shard'), {hasText: lower}).waitFor();
  const midKey = await page.locator(tid('split-key')).inputValue();
  const box = await bar(page, lower).boundingBox();
  check(box, `no box for the bar of ${lower}`);
  await bar(page, lower).click({position: {x: box.width / 4, y: box.height / 2}});
  await page.waitForFunction((k) => document.querySelector('[data-testid="split-key"]').value !== k, midKey);
  const pickedKey = await page.locator(tid('split-key')).inputValue();
  await shot('shard-picked');

  // Merge the lower child with its neighbour, the upper one.
  await page.locator(tid('merge-adjacent')).selectOption(go.upper);
  await page.locator(tid('merge-submit')).click();
  await page.waitForFunction((ids) => ids.every((id) =>
    document.querySelector(`[data-testid="lineage-node"][data-shard="${id}"][data-open="false"]`)), [lower, go.upper]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="shard-bar"]').length === 1);
  const afterMerge = await lineage(page);
  await shot('shard-merged');
  const errors = await visibleErrors(page);
  return {midKey, pickedKey, pickedFraction: 0.25, afterMerge, errors};
});
