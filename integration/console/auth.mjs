// With authentication on: the console asks for a key; a wrong secret shows
// the server's refusal; signed in as a principal without
// kinesis:DeleteStream, deleting a stream shows AccessDeniedException next
// to the delete button, and the stream stays (the Go side checks with the
// SDK). The secret is nowhere in the page or its storage. Signing out
// brings the sign-in form back.

import {run, step, check, tid, config, errorOf, visibleErrors} from './lib.mjs';

async function secretAnywhere(page, secret) {
  return page.evaluate((s) => {
    const where = [];
    if (document.documentElement.outerHTML.includes(s)) where.push('the DOM');
    for (const input of document.querySelectorAll('input, textarea')) {
      if (input.value.includes(s)) where.push(`input ${input.getAttribute('data-testid') || input.name}`);
    }
    for (const store of [localStorage, sessionStorage]) {
      for (let i = 0; i < store.length; i++) {
        const k = store.key(i);
        if (k.includes(s) || String(store.getItem(k)).includes(s)) where.push('web storage');
      }
    }
    if (document.cookie.includes(s)) where.push('document.cookie');
    if (location.href.includes(s)) where.push('the URL');
    return where;
  }, secret);
}

await run('auth', async ({page, shot, open}) => {
  const seen = {};
  await open('#/streams');
  await page.locator(tid('signin-form')).waitFor();
  await shot('signin');

  // A wrong secret: the server's authentication error, next to the form.
  await page.locator(tid('signin-access-key')).fill(config.accessKeyId);
  await page.locator(tid('signin-secret')).fill(config.wrongSecret);
  await page.locator(tid('signin-submit')).click();
  seen.wrong = await errorOf(page, 'signin-error');
  seen.secretClearedAfterWrong = (await page.locator(tid('signin-secret')).inputValue()) === '';
  await shot('signin-error');

  // The right one.
  await page.locator(tid('signin-secret')).fill(config.secret);
  await page.locator(tid('signin-submit')).click();
  await page.locator(tid('signed-in-as'), {hasText: config.accessKeyId}).waitFor();
  const row = page.locator(tid('stream-row', `[data-stream="${config.stream}"]`));
  await row.locator(tid('stream-status'), {hasText: 'ACTIVE'}).waitFor();
  seen.secretAfterSignIn = await secretAnywhere(page, config.secret);
  await shot('streams');

  // Delete: refused by the server's authorization.
  await row.locator(tid('stream-link')).click();
  await page.locator(tid('stream-config')).locator('dd').first().waitFor();
  await page.locator(tid('delete-open')).click();
  await page.locator(tid('delete-confirm-name')).fill(config.stream);
  await page.locator(tid('delete-submit')).click();
  seen.denied = await errorOf(page, 'delete-error');
  seen.deniedVisible = await visibleErrors(page);
  seen.stillOnStreamPage = (await page.locator(tid('stream-name')).textContent()) === config.stream;
  await shot('delete-denied');

  await step('denied', seen.denied);

  // Back to the list: the stream is still listed.
  await page.locator(tid('nav-streams')).click();
  await row.locator(tid('stream-status'), {hasText: 'ACTIVE'}).waitFor();
  seen.secretAtEnd = await secretAnywhere(page, config.secret);

  await page.locator(tid('signout')).click();
  await page.locator(tid('signin-form')).waitFor();
  seen.signedOutSecretField = await page.locator(tid('signin-secret')).inputValue();
  await shot('signed-out');
  check(seen.signedOutSecretField === '', 'the secret field is filled after signing out');
  return seen;
});
