// The sign-in form, shown when the server has authentication on and no one
// is signed in. The console then acts as the principal of the access key,
// subject to its policies. The secret goes to the server in the login
// request only: the input is cleared as soon as the form is submitted and
// the page keeps no copy.

import {h, replace, errorSlot, action, field} from './dom.js';
import {login} from './api.js';

export function renderSignIn(v, root, done) {
  const keyId = h('input', {name: 'accessKeyId', testid: 'signin-access-key', autocomplete: 'username', spellcheck: 'false',
    required: true, placeholder: 'AKIA…'});
  const secret = h('input', {name: 'secretAccessKey', type: 'password', testid: 'signin-secret', autocomplete: 'off',
    spellcheck: 'false', required: true});
  const token = h('input', {name: 'sessionToken', type: 'password', testid: 'signin-token', autocomplete: 'off',
    spellcheck: 'false'});
  const slot = errorSlot('signin-error');
  const form = h('form', {class: 'signin', testid: 'signin-form'},
    h('h1', null, 'Sign in'),
    h('p', {class: 'muted'}, 'The server has authentication on. The console acts as the principal of this access key, ' +
      'with exactly the permissions its policies give.'),
    field('Access key ID', keyId),
    field('Secret access key', secret),
    field('Session token', token, 'optional, for temporary credentials'),
    h('div', {class: 'row'}, h('button', {type: 'submit', class: 'primary', testid: 'signin-submit'}, 'Sign in')),
    slot.el);
  action(form, slot, async () => {
    const id = keyId.value.trim();
    const sk = secret.value;
    const st = token.value;
    secret.value = '';
    token.value = '';
    await login(id, sk, st);
    if (v.alive) done();
  });
  replace(root, h('section', {class: 'card narrow'}, form));
  keyId.focus();
}
