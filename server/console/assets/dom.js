// DOM helpers. Every element is created with createElement and every piece
// of data is set as textContent or an attribute: the page never builds HTML
// from strings, so record data holding markup is shown as text. The
// Content-Security-Policy forbids inline styles, so nothing here sets a
// style attribute; looks come from classes in style.css.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs, children) {
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'style') throw new Error('style attributes are refused by the CSP');
      if (k === 'class') {
        el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      } else if (k === 'testid') {
        el.setAttribute('data-testid', v);
      } else if (k === 'text') {
        el.textContent = v;
      } else if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v);
      } else if (k === 'value' && 'value' in el) {
        el.value = v;
      } else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') {
        el[k] = Boolean(v);
        if (v) el.setAttribute(k, '');
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h creates an HTML element: h('a', {href: '#/x', testid: 'link'}, 'text', child).
export function h(tag, attrs, ...children) {
  return apply(document.createElement(tag), attrs, children);
}

// s creates an SVG element.
export function s(tag, attrs, ...children) {
  return apply(document.createElementNS(SVG_NS, tag), attrs, children);
}

// clear removes every child of el and returns it.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// replace makes children the only content of el.
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// errorSlot is the place next to a control where the API's error for the
// action taken with that control is shown: the code and the message,
// verbatim.
export function errorSlot(testid) {
  const code = h('span', {class: 'err-code', testid: testid + '-code'});
  const message = h('span', {class: 'err-message', testid: testid + '-message'});
  const el = h('div', {class: 'error', role: 'alert', testid, hidden: true}, code, ' ', message);
  return {
    el,
    show(err) {
      code.textContent = err.code || 'Error';
      message.textContent = err.message || String(err);
      el.hidden = false;
    },
    clear() {
      code.textContent = '';
      message.textContent = '';
      el.hidden = true;
    },
  };
}

// action runs fn when form is submitted: the submit buttons are disabled
// while it runs, the error slot is cleared first and shows the error fn
// throws. The form gets data-busy while fn runs, for anyone waiting on it.
export function action(form, slot, fn) {
  form.setAttribute('novalidate', '');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy === 'true') return;
    const buttons = [...form.querySelectorAll('button')].map((b) => [b, b.disabled]);
    buttons.forEach(([b]) => { b.disabled = true; });
    form.dataset.busy = 'true';
    slot.clear();
    try {
      await fn(ev.submitter || null);
    } catch (err) {
      slot.show(err);
    } finally {
      buttons.forEach(([b, was]) => { b.disabled = was; });
      form.dataset.busy = 'false';
    }
  });
  return form;
}

// field is a labelled control.
export function field(label, control, hint) {
  return h('label', {class: 'field'}, h('span', {class: 'field-label'}, label), control,
    hint ? h('span', {class: 'hint'}, hint) : null);
}

// select builds a <select> of options [value, label] (or plain strings).
export function select(attrs, options, current) {
  return h('select', attrs, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', {value, selected: value === current}, label);
  }));
}

// The formatting helpers below return strings for textContent.

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtClock(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Number.isInteger(ms) || ms >= 10 ? Math.round(ms) : ms.toFixed(1)} ms`;
  const sec = ms / 1000;
  if (sec < 120) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  const min = sec / 60;
  if (min < 120) return `${min.toFixed(0)} min`;
  const hours = min / 60;
  if (hours < 48) return `${hours.toFixed(1)} h`;
  return `${(hours / 24).toFixed(1)} d`;
}

export function fmtNumber(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(digits) + 'G';
  if (abs >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (abs >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(abs < 10 ? 2 : digits);
}

export function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const abs = Math.abs(n);
  if (abs < 1024) return `${Number.isInteger(n) ? n : n.toFixed(1)} B`;
  if (abs < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (abs < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

export function fmtHours(h) {
  if (h === null || h === undefined) return '';
  if (h % 24 === 0 && h >= 48) return `${h} h (${h / 24} d)`;
  return `${h} h`;
}
