// Links between the console's pages (hash routes).

export function streamHref(name, tab) {
  return '#/streams/' + encodeURIComponent(name) + (tab ? '/' + tab : '');
}

// navigate goes to hash, rendering the route again when it is the current one.
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
