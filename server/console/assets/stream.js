// A stream's page: its configuration with the forms that change it, its
// tags, its consumers with their subscriptions, and deletion. Also the
// header every tab of a stream shares.

import {h, replace, errorSlot, action, field, select, fmtHours, fmtTime} from './dom.js';
import {api} from './api.js';
import {streamHref, navigate} from './nav.js';

const SHARD_METRICS = ['IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords',
  'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded', 'IteratorAgeMilliseconds'];

// streamHeader renders the title, status and tabs of stream name, with tab
// active, into a new element; update(stream) refreshes the status line.
export function streamHeader(name, tab) {
  const statusEl = h('span', {class: 'badge', testid: 'stream-status'});
  const facts = h('span', {class: 'muted', testid: 'stream-facts'});
  const tabs = [['', 'Overview'], ['shards', 'Shard map'], ['data', 'Data'], ['metrics', 'Metrics']].map(([t, label]) =>
    h('a', {href: streamHref(name, t), class: ['tab', t === tab ? 'active' : ''], testid: 'tab-' + (t || 'overview')}, label));
  const el = h('div', {class: 'stream-head'},
    h('div', {class: 'crumbs'}, h('a', {href: '#/streams'}, 'Streams'), ' / '),
    h('div', {class: 'page-head'}, h('h1', {testid: 'stream-name'}, name), statusEl, facts),
    h('nav', {class: 'tabs'}, tabs));
  return {
    el,
    update(st) {
      if (!st) return;
      statusEl.textContent = st.status || '';
      statusEl.setAttribute('class', 'badge status-' + String(st.status || '').toLowerCase());
      const bits = [st.mode, `${st.openShards} open shard${st.openShards === 1 ? '' : 's'}`, `retention ${fmtHours(st.retentionHours)}`];
      if (st.encryption === 'KMS') bits.push('KMS encrypted');
      facts.textContent = bits.filter(Boolean).join(' · ');
    },
  };
}

export function renderStream(v, root, name) {
  const head = streamHeader(name, '');
  const loadSlot = errorSlot('stream-error');
  const config = h('dl', {class: 'facts', testid: 'stream-config'});
  const tagsBody = h('tbody', {testid: 'tags-body'});
  const consumersBody = h('tbody', {testid: 'consumers-body'});

  function showStream(st) {
    head.update(st);
    const rows = [
      ['ARN', st.arn],
      ['Status', st.status],
      ['Capacity mode', st.mode],
      ['Open shards', String(st.openShards)],
      ['Retention', fmtHours(st.retentionHours)],
      ['Encryption', st.encryption === 'KMS' ? `KMS (${st.keyId || ''})` : 'none'],
      ['Consumers', String(st.consumers ?? '')],
      ['Created', fmtTime(st.created)],
      ['Enhanced monitoring', (st.monitoring || []).length ? st.monitoring.join(', ') : 'off'],
    ];
    replace(config, ...rows.flatMap(([k, val]) => [h('dt', null, k), h('dd', {testid: 'config-' + k.toLowerCase().replace(/ /g, '-')}, val || '')]));
    syncForms(st);
  }

  function showTags(tags) {
    const keys = Object.keys(tags || {}).sort();
    if (!keys.length) {
      replace(tagsBody, h('tr', null, h('td', {colspan: 3, class: 'empty'}, 'No tags.')));
      return;
    }
    replace(tagsBody, ...keys.map((k) => {
      const rm = h('button', {type: 'button', class: 'link danger', testid: 'tag-remove', 'data-key': k}, 'Remove');
      rm.addEventListener('click', async () => {
        tagSlot.clear();
        rm.disabled = true;
        try {
          const res = await api.tags(name, {}, [k]);
          if (v.alive) showTags(res.tags);
        } catch (err) {
          tagSlot.show(err);
        } finally {
          rm.disabled = false;
        }
      });
      return h('tr', {testid: 'tag-row', 'data-key': k}, h('td', null, k), h('td', null, tags[k]), h('td', null, rm));
    }));
  }

  let consumersJSON = null;
  function showConsumers(consumers) {
    // Unchanged consumers keep their rows: an open confirmation or an
    // error shown in one survives the periodic refresh.
    const json = JSON.stringify(consumers || []);
    if (json === consumersJSON) return;
    consumersJSON = json;
    if (!consumers || !consumers.length) {
      replace(consumersBody, h('tr', null, h('td', {colspan: 5, class: 'empty'}, 'No registered consumers.')));
      return;
    }
    replace(consumersBody, ...consumers.map((c) => {
      const subs = (c.subscriptions || []);
      const subsEl = subs.length
        ? h('ul', {class: 'plain'}, subs.map((sub) => h('li', {testid: 'subscription'}, sub.shardId, h('span', {class: 'muted'}, ' since ' + fmtTime(sub.since)))))
        : h('span', {class: 'muted'}, 'none');
      const slot = errorSlot('consumer-error');
      const confirm = h('button', {type: 'button', class: 'danger', testid: 'consumer-deregister-confirm', hidden: true}, 'Deregister ' + c.name);
      const del = h('button', {type: 'button', class: 'link danger', testid: 'consumer-deregister'}, 'Deregister…');
      del.addEventListener('click', () => {
        confirm.hidden = !confirm.hidden;
      });
      confirm.addEventListener('click', async () => {
        slot.clear();
        confirm.disabled = true;
        try {
          await api.deregisterConsumer(name, c.name);
          if (v.alive) await loadConsumers();
        } catch (err) {
          slot.show(err);
        } finally {
          confirm.disabled = false;
        }
      });
      return h('tr', {testid: 'consumer-row', 'data-consumer': c.name},
        h('td', null, h('div', null, c.name), h('div', {class: 'muted small mono'}, c.arn)),
        h('td', null, h('span', {class: ['badge', 'status-' + String(c.status || '').toLowerCase()]}, c.status)),
        h('td', {class: 'nowrap'}, fmtTime(c.created)),
        h('td', null, subsEl),
        h('td', null, del, ' ', confirm, slot.el));
    }));
  }

  async function load() {
    try {
      const res = await api.stream(name);
      if (!v.alive) return;
      loadSlot.clear();
      showStream(res.stream);
      showTags(res.tags);
      showConsumers(res.consumers);
    } catch (err) {
      if (v.alive) loadSlot.show(err);
    }
  }

  async function loadConsumers() {
    const res = await api.consumers(name);
    if (v.alive) showConsumers(res.consumers);
  }

  // Configuration forms: each shows its own errors next to its button.
  const retention = h('input', {type: 'number', name: 'hours', testid: 'retention-hours', step: '1'});
  const retentionSlot = errorSlot('retention-error');
  const retentionForm = action(h('form', {class: 'inline-form', testid: 'retention-form'},
    field('Retention (hours)', retention),
    h('button', {type: 'submit', testid: 'retention-submit'}, 'Change retention')), retentionSlot, async () => {
    applied(retentionForm, await api.retention(name, Number(retention.value)));
  });

  const mode = select({name: 'mode', testid: 'mode-select'}, ['PROVISIONED', 'ON_DEMAND']);
  const modeSlot = errorSlot('mode-error');
  const modeForm = action(h('form', {class: 'inline-form', testid: 'mode-form'},
    field('Capacity mode', mode),
    h('button', {type: 'submit', testid: 'mode-submit'}, 'Change mode')), modeSlot, async () => {
    applied(modeForm, await api.mode(name, mode.value));
  });

  const count = h('input', {type: 'number', name: 'count', testid: 'shard-count-input', step: '1'});
  const countSlot = errorSlot('shard-count-error');
  const countForm = action(h('form', {class: 'inline-form', testid: 'shard-count-form'},
    field('Open shards (uniform scaling)', count),
    h('button', {type: 'submit', testid: 'shard-count-submit'}, 'Change shard count')), countSlot, async () => {
    const n = count.value.trim();
    applied(countForm, await api.shardCount(name, n === '' ? null : Number(n)));
  });

  const encSelect = select({name: 'encryption', testid: 'encryption-select'}, [['NONE', 'none'], ['KMS', 'KMS']]);
  const keyId = h('input', {name: 'keyId', testid: 'encryption-key', value: 'alias/aws/kinesis', spellcheck: 'false'});
  const keyField = field('KMS key', keyId);
  encSelect.addEventListener('change', () => {
    keyField.hidden = encSelect.value !== 'KMS';
  });
  const encSlot = errorSlot('encryption-error');
  const encForm = action(h('form', {class: 'inline-form', testid: 'encryption-form'},
    field('Server-side encryption', encSelect), keyField,
    h('button', {type: 'submit', testid: 'encryption-submit'}, 'Change encryption')), encSlot, async () => {
    applied(encForm, await api.encryption(name, encSelect.value === 'KMS' ? keyId.value.trim() : ''));
  });

  const metricBoxes = SHARD_METRICS.map((m) => h('input', {type: 'checkbox', value: m, testid: 'monitoring-' + m}));
  const monSlot = errorSlot('monitoring-error');
  const monForm = action(h('form', {class: 'inline-form wrap', testid: 'monitoring-form'},
    h('span', {class: 'field-label'}, 'Enhanced (shard-level) monitoring'),
    h('div', {class: 'checks'}, metricBoxes.map((b) => h('label', {class: 'check'}, b, b.value))),
    h('button', {type: 'button', class: 'link', onclick: () => metricBoxes.forEach((b) => { b.checked = true; })}, 'all'),
    h('button', {type: 'button', class: 'link', onclick: () => metricBoxes.forEach((b) => { b.checked = false; })}, 'none'),
    h('button', {type: 'submit', testid: 'monitoring-submit'}, 'Apply')), monSlot, async () => {
    const chosen = metricBoxes.filter((b) => b.checked).map((b) => b.value);
    const metrics = chosen.length === SHARD_METRICS.length ? ['ALL'] : chosen;
    applied(monForm, await api.monitoring(name, metrics));
  });

  // Each form shows the stream's current setting until the user changes
  // it; a changed form keeps the user's input until it is applied.
  const dirty = new Set();
  for (const form of [retentionForm, modeForm, countForm, encForm, monForm]) {
    form.addEventListener('input', () => dirty.add(form));
    form.addEventListener('change', () => dirty.add(form));
    form.addEventListener('click', (ev) => {
      if (ev.target instanceof HTMLButtonElement && ev.target.type === 'button') dirty.add(form);
    });
  }

  function syncForms(st) {
    if (!dirty.has(retentionForm)) retention.value = String(st.retentionHours ?? '');
    if (!dirty.has(modeForm)) mode.value = st.mode || 'PROVISIONED';
    if (!dirty.has(countForm)) count.value = String(st.openShards ?? '');
    if (!dirty.has(encForm)) {
      encSelect.value = st.encryption === 'KMS' ? 'KMS' : 'NONE';
      keyField.hidden = encSelect.value !== 'KMS';
      if (st.keyId) keyId.value = st.keyId;
    }
    if (!dirty.has(monForm)) {
      const on = new Set(st.monitoring || []);
      metricBoxes.forEach((b) => { b.checked = on.has(b.value) || on.has('ALL'); });
    }
  }

  // applied shows the stream a form's change returned and lets the form
  // follow the stream again.
  function applied(form, st) {
    dirty.delete(form);
    showStream(st);
  }

  // Tags.
  const tagKey = h('input', {name: 'key', testid: 'tag-key', placeholder: 'key', spellcheck: 'false'});
  const tagValue = h('input', {name: 'value', testid: 'tag-value', placeholder: 'value', spellcheck: 'false'});
  const tagSlot = errorSlot('tags-error');
  const tagForm = action(h('form', {class: 'inline-form', testid: 'tag-form'},
    field('Key', tagKey), field('Value', tagValue),
    h('button', {type: 'submit', testid: 'tag-add'}, 'Add tag')), tagSlot, async () => {
    const res = await api.tags(name, {[tagKey.value]: tagValue.value}, []);
    if (!v.alive) return;
    showTags(res.tags);
    tagKey.value = '';
    tagValue.value = '';
  });

  // Consumers.
  const consumerName = h('input', {name: 'name', testid: 'consumer-name', placeholder: 'consumer name', spellcheck: 'false'});
  const consumerSlot = errorSlot('register-error');
  const consumerForm = action(h('form', {class: 'inline-form', testid: 'consumer-form'},
    field('Name', consumerName),
    h('button', {type: 'submit', testid: 'consumer-register'}, 'Register consumer')), consumerSlot, async () => {
    await api.registerConsumer(name, consumerName.value.trim());
    consumerName.value = '';
    await loadConsumers();
  });

  // Deletion, confirmed by typing the stream's name.
  const deleteSlot = errorSlot('delete-error');
  const confirmName = h('input', {name: 'confirm', testid: 'delete-confirm-name', placeholder: name, spellcheck: 'false', autocomplete: 'off'});
  const enforce = h('input', {type: 'checkbox', testid: 'delete-enforce'});
  const deleteButton = h('button', {type: 'submit', class: 'danger', testid: 'delete-submit', disabled: true}, 'Delete stream');
  confirmName.addEventListener('input', () => {
    deleteButton.disabled = confirmName.value !== name;
  });
  const deleteForm = h('form', {class: 'inline-form', testid: 'delete-form', hidden: true},
    field(`Type ${name} to confirm`, confirmName),
    h('label', {class: 'check'}, enforce, 'also deregister its consumers'),
    deleteButton);
  action(deleteForm, deleteSlot, async () => {
    await api.deleteStream(name, enforce.checked);
    if (v.alive) navigate('#/streams');
  });
  const deleteOpen = h('button', {type: 'button', class: 'danger', testid: 'delete-open'}, 'Delete…');
  deleteOpen.addEventListener('click', () => {
    deleteForm.hidden = !deleteForm.hidden;
    deleteSlot.clear();
    if (!deleteForm.hidden) confirmName.focus();
  });

  replace(root,
    head.el,
    loadSlot.el,
    h('div', {class: 'columns'},
      h('section', {class: 'card'}, h('h2', null, 'Configuration'), config),
      h('section', {class: 'card'}, h('h2', null, 'Change'),
        retentionForm, retentionSlot.el,
        modeForm, modeSlot.el,
        countForm, countSlot.el,
        encForm, encSlot.el,
        monForm, monSlot.el)),
    h('section', {class: 'card'}, h('h2', null, 'Tags'),
      h('table', {class: 'grid compact', testid: 'tags-table'}, h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'Value'), h('th', null, ''))), tagsBody),
      tagForm, tagSlot.el),
    h('section', {class: 'card'}, h('h2', null, 'Consumers (enhanced fan-out)'),
      h('table', {class: 'grid compact', testid: 'consumers-table'},
        h('thead', null, h('tr', null, ['Consumer', 'Status', 'Registered', 'Subscriptions', ''].map((c) => h('th', null, c)))), consumersBody),
      consumerForm, consumerSlot.el),
    h('section', {class: 'card danger-zone'}, h('h2', null, 'Delete'),
      h('p', {class: 'muted'}, 'Deleting a stream drops its records. It cannot be undone.'),
      deleteOpen, deleteForm, deleteSlot.el));
  load();
  v.every(5000, async () => {
    // Keep the status (CREATING, UPDATING, ...) and subscriptions current.
    try {
      const res = await api.stream(name);
      if (!v.alive) return;
      head.update(res.stream);
      showStream(res.stream);
      showConsumers(res.consumers);
    } catch {
      // The next explicit action shows any error.
    }
  });
}
