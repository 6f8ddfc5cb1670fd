/**
 * The dashboard's browser script (served as `/dashboard/assets/app.js`):
 * plain JavaScript for evergreen browsers, no dependencies, no build step.
 * Every text it shows from the API goes through `textContent` (never HTML),
 * so user data (inputs, errors) cannot inject markup.
 *
 * Written without backticks and `${` so that it can live in this string.
 * @module
 */

/** The script. */
export const DASHBOARD_SCRIPT = String.raw`(function () {
'use strict';
var BASE = '/dashboard';
var STATES = ['pending', 'running', 'suspended', 'succeeded', 'failed', 'cancelled'];
var FINISHED = { succeeded: true, failed: true, cancelled: true };
var app = document.getElementById('app');
var current = null; // { refresh: function } of the page shown

// ---------------------------------------------------------------- DOM helpers
function h(tag, attrs, children) {
  var el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}
function s(tag, attrs, children) {
  var el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}
function setAttrs(el, attrs) {
  if (!attrs) return;
  Object.keys(attrs).forEach(function (k) {
    var v = attrs[k];
    if (v === undefined || v === null || v === false) return;
    if (k === 'text') el.textContent = String(v);
    else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
    else if (k === 'style') {
      // Through the CSSOM: the Content-Security-Policy refuses style attributes.
      String(v).split(';').forEach(function (decl) {
        var i = decl.indexOf(':');
        if (i > 0) el.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
      });
    }
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  });
}
function append(el, children) {
  if (children === undefined || children === null) return;
  if (!Array.isArray(children)) children = [children];
  children.forEach(function (c) {
    if (c === undefined || c === null || c === false) return;
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  });
}
function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
function badge(text, cls) { return h('span', { className: 'badge ' + (cls || text), text: text }); }

// ---------------------------------------------------------------- formatting
function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  var d = new Date(ms);
  var today = new Date();
  var t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === today.toDateString() ? t : d.toLocaleDateString() + ' ' + t;
}
function fmtDur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  if (ms < 3600000) return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
  return (ms / 3600000).toFixed(1) + ' h';
}
function shortId(id) { return id.length > 14 ? id.slice(0, 6) + '…' + id.slice(-6) : id; }

// ---------------------------------------------------------------- API
function notice(text) {
  var n = document.getElementById('notice');
  if (!text) { n.hidden = true; n.textContent = ''; return; }
  n.textContent = text;
  n.hidden = false;
}
function api(path, options) {
  options = options || {};
  var init = { credentials: 'same-origin', method: options.method || 'GET', headers: { accept: 'application/json' } };
  if (init.method !== 'GET') init.headers['x-dispatch-dashboard'] = '1';
  return fetch(BASE + '/api' + path, init).then(function (res) {
    if (res.status === 401) { location.href = BASE + '/login'; throw new Error('signed out'); }
    return res.text().then(function (text) {
      var body = null;
      try { body = JSON.parse(text); } catch (e) { body = null; }
      if (!res.ok) throw new Error((body && body.message) || ('HTTP ' + res.status));
      return body;
    });
  });
}

// ---------------------------------------------------------------- confirm dialog
function confirmAction(title, text, action) {
  var dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-yes').textContent = action;
  return new Promise(function (resolve) {
    dialog.addEventListener('close', function onClose() {
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'yes');
    });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- routing
function parseHash() {
  var hash = location.hash.replace(/^#\/?/, '');
  var q = '';
  var i = hash.indexOf('?');
  if (i >= 0) { q = hash.slice(i + 1); hash = hash.slice(0, i); }
  return { parts: hash.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q) };
}
function route() {
  var r = parseHash();
  notice('');
  var page = r.parts[0] || 'runs';
  document.querySelectorAll('[data-nav]').forEach(function (a) {
    a.classList.toggle('active', a.getAttribute('data-nav') === page);
  });
  clear(app);
  if (page === 'runs' && r.parts[1]) current = runPage(r.parts[1]);
  else if (page === 'concurrency') current = concurrencyPage();
  else current = runsPage(r.query);
  current.refresh();
}
window.addEventListener('hashchange', route);

// ---------------------------------------------------------------- live updates
var refreshing = false;
var again = false;
function refreshSoon() {
  if (!current) return;
  if (refreshing) { again = true; return; }
  refreshing = true;
  var page = current;
  Promise.resolve(page.refresh()).catch(function () {}).then(function () {
    refreshing = false;
    if (again) { again = false; refreshSoon(); }
  });
}
function connectEvents() {
  var live = document.getElementById('live');
  if (!window.EventSource) { live.textContent = 'polling'; return; }
  var es = new EventSource(BASE + '/api/events');
  es.addEventListener('open', function () { live.textContent = 'live'; live.classList.add('on'); });
  es.addEventListener('error', function () { live.textContent = 'reconnecting…'; live.classList.remove('on'); });
  es.addEventListener('change', refreshSoon);
}
setInterval(refreshSoon, 5000); // other scheduler instances, and runs that started

// ---------------------------------------------------------------- runs list
var TIMES = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days'], ['custom', 'between…']];
var SPANS = { '15m': 900000, '1h': 3600000, '24h': 86400000, '7d': 604800000 };

function runsPage(query) {
  var f = {
    states: (query.get('state') || '').split(',').filter(Boolean),
    fn: query.get('function') || '',
    time: query.get('time') || '',
    from: query.get('from') || '',
    to: query.get('to') || '',
    roots: query.get('roots') !== '0'
  };
  var extra = []; // further pages
  var cursor = null;

  function saveHash() {
    var q = new URLSearchParams();
    if (f.states.length) q.set('state', f.states.join(','));
    if (f.fn) q.set('function', f.fn);
    if (f.time) q.set('time', f.time);
    if (f.time === 'custom' && f.from) q.set('from', f.from);
    if (f.time === 'custom' && f.to) q.set('to', f.to);
    if (!f.roots) q.set('roots', '0');
    var hash = '#/runs' + (q.toString() ? '?' + q.toString() : '');
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }
  function params(more) {
    var q = new URLSearchParams();
    if (f.states.length) q.set('state', f.states.join(','));
    if (f.fn) q.set('function', f.fn);
    if (f.roots) q.set('roots', '1');
    if (SPANS[f.time]) q.set('after', String(Date.now() - SPANS[f.time]));
    if (f.time === 'custom' && f.from) q.set('after', String(new Date(f.from).getTime()));
    if (f.time === 'custom' && f.to) q.set('before', String(new Date(f.to).getTime()));
    q.set('limit', '50');
    if (more) q.set('cursor', more);
    return '?' + q.toString();
  }

  var chips = h('div', { className: 'chips', 'data-testid': 'state-chips' });
  var typing = null;
  var fnInput = h('input', { type: 'search', placeholder: 'function name', list: 'functions', value: f.fn, 'aria-label': 'Function',
    oninput: function () {
      clearTimeout(typing);
      typing = setTimeout(function () { if (f.fn !== fnInput.value.trim()) { f.fn = fnInput.value.trim(); reload(); } }, 300);
    } });
  var datalist = h('datalist', { id: 'functions' });
  var timeSelect = h('select', { 'aria-label': 'Created', onchange: function () { f.time = timeSelect.value; custom.hidden = f.time !== 'custom'; reload(); } },
    TIMES.map(function (t) { return h('option', { value: t[0], text: t[1], selected: t[0] === f.time }); }));
  var fromInput = h('input', { type: 'datetime-local', value: f.from, 'aria-label': 'From', onchange: function () { f.from = fromInput.value; reload(); } });
  var toInput = h('input', { type: 'datetime-local', value: f.to, 'aria-label': 'To', onchange: function () { f.to = toInput.value; reload(); } });
  var custom = h('span', { className: 'filters' }, [fromInput, '→', toInput]);
  custom.hidden = f.time !== 'custom';
  var rootsBox = h('input', { type: 'checkbox', checked: f.roots, onchange: function () { f.roots = rootsBox.checked; reload(); } });
  var body = h('tbody');
  var moreBox = h('div', { className: 'more' });
  var summary = h('span', { className: 'muted' });

  app.appendChild(h('div', { className: 'panel' }, [
    chips,
    h('div', { className: 'filters' }, [
      h('label', null, ['Function', fnInput]), datalist,
      h('label', null, ['Created', timeSelect]), custom,
      h('label', null, [rootsBox, 'top-level runs only']),
      summary
    ])
  ]));
  app.appendChild(h('div', { className: 'panel' }, [
    h('table', { className: 'runs' }, [
      h('thead', null, h('tr', null, ['Function', 'State', 'Status', 'Attempts', 'Created', 'Duration', 'Last error', 'Dispatch ID'].map(function (t) { return h('th', { text: t }); }))),
      body
    ]),
    moreBox
  ]));

  function renderChips(counts) {
    clear(chips);
    var total = 0;
    STATES.forEach(function (st) { total += counts[st] || 0; });
    chips.appendChild(h('button', { className: 'chip' + (f.states.length === 0 ? ' on' : ''), 'data-state': 'all',
      onclick: function () { f.states = []; reload(); } }, ['all', h('span', { className: 'n', text: total })]));
    STATES.forEach(function (st) {
      var on = f.states.indexOf(st) >= 0;
      chips.appendChild(h('button', { className: 'chip' + (on ? ' on' : ''), 'data-state': st,
        onclick: function (ev) {
          if (ev.shiftKey || ev.ctrlKey || ev.metaKey) f.states = on ? f.states.filter(function (x) { return x !== st; }) : f.states.concat([st]);
          else f.states = on && f.states.length === 1 ? [] : [st];
          reload();
        } }, [st, h('span', { className: 'n', text: counts[st] || 0 })]));
    });
  }
  function row(r) {
    var open = function () { location.hash = '#/runs/' + encodeURIComponent(r.id); };
    var end = r.finishedAt || Date.now();
    return h('tr', { className: 'click', 'data-id': r.id, onclick: open }, [
      h('td', null, h('a', { href: '#/runs/' + encodeURIComponent(r.id), text: r.function })),
      h('td', null, badge(r.state)),
      h('td', { className: 'mono', text: r.statusName === 'UNSPECIFIED' ? '—' : r.statusName }),
      h('td', { text: r.attempts }),
      h('td', { text: fmtTime(r.createdAt) }),
      h('td', { text: fmtDur(end - r.createdAt) + (r.finishedAt ? '' : ' …') }),
      h('td', { className: 'err', title: r.error || '', text: r.error || '' }),
      h('td', { className: 'mono', title: r.id, text: shortId(r.id) })
    ]);
  }
  function render(page) {
    renderChips(page.counts);
    clear(datalist);
    page.functions.forEach(function (fn) { datalist.appendChild(h('option', { value: fn })); });
    clear(body);
    var rows = page.runs.concat(extra);
    rows.forEach(function (r) { body.appendChild(row(r)); });
    if (rows.length === 0) body.appendChild(h('tr', null, h('td', { colspan: 8, className: 'muted', text: 'No runs match these filters.' })));
    summary.textContent = rows.length + ' shown';
    clear(moreBox);
    if (cursor) moreBox.appendChild(h('button', { text: 'Load more', onclick: loadMore }));
  }
  var lastPage = null;
  function loadMore() {
    api('/runs' + params(cursor)).then(function (page) {
      extra = extra.concat(page.runs);
      cursor = page.nextCursor;
      render(lastPage);
    }).catch(function (e) { notice(e.message); });
  }
  function reload() {
    extra = [];
    saveHash();
    return refresh();
  }
  function refresh() {
    return api('/runs' + params(null)).then(function (page) {
      lastPage = page;
      if (extra.length === 0) cursor = page.nextCursor;
      render(page);
    }).catch(function (e) { notice(e.message); });
  }
  return { refresh: refresh };
}

// ---------------------------------------------------------------- one run
function runPage(id) {
  var last = '';
  var root = h('div');
  app.appendChild(root);

  function refresh() {
    return api('/runs/' + encodeURIComponent(id)).then(function (data) {
      var key = JSON.stringify({ call: data.call, tree: data.tree });
      if (key === last) return;
      last = key;
      var open = {};
      root.querySelectorAll('details[data-key]').forEach(function (d) { if (d.open) open[d.getAttribute('data-key')] = true; });
      clear(root);
      render(data);
      root.querySelectorAll('details[data-key]').forEach(function (d) { if (open[d.getAttribute('data-key')]) d.open = true; });
    }).catch(function (e) { notice(e.message); });
  }

  function act(kind, call) {
    var p = kind === 'cancel'
      ? confirmAction('Cancel this run?', 'Cancel ' + call.function + ' (' + call.id + ') and every call it started that has not finished. A run in flight is not interrupted, but its result is discarded.', 'Cancel run')
      : confirmAction('Restart from the original input?', 'Run ' + call.originalFunction + ' again from its original input, under the same dispatch ID. Side effects may repeat: any work it already did (a payment, an email) can happen a second time.', 'Restart run');
    return p.then(function (yes) {
      if (!yes) return;
      return api('/runs/' + encodeURIComponent(call.id) + '/' + kind, { method: 'POST' }).then(function () { last = ''; return refresh(); });
    }).catch(function (e) { notice(e.message); });
  }

  function render(data) {
    var c = data.call;
    var done = FINISHED[c.state] === true;
    root.appendChild(h('div', { className: 'panel run-head' }, [
      h('h1', { text: c.function }),
      badge(c.state),
      h('span', { className: 'mono muted', text: c.id }),
      h('div', { className: 'actions' }, [
        h('button', { className: 'danger', 'data-action': 'cancel', disabled: done, title: done ? 'It has finished' : 'Cancel it and its unfinished calls', text: 'Cancel', onclick: function () { act('cancel', c); } }),
        h('button', { 'data-action': 'restart', text: 'Restart…', onclick: function () { act('restart', c); } })
      ])
    ]));
    var left = h('div', { className: 'panel' }, [h('h2', { text: 'Call tree' }), tree(data.tree, c.id)]);
    if (data.truncated) left.appendChild(h('p', { className: 'note', text: 'Only the first calls are shown.' }));
    root.appendChild(h('div', { className: 'grid' }, [left, h('div', null, details(c, data.now))]));
  }

  function tree(node, selected) {
    if (!node) return h('p', { className: 'muted', text: 'The run is gone.' });
    function item(n) {
      var li = h('li', { 'data-call': n.id }, h('div', { className: 'node' + (n.id === selected ? ' sel' : '') }, [
        h('a', { className: 'fn', href: '#/runs/' + encodeURIComponent(n.id), text: n.function }),
        badge(n.state),
        h('span', { className: 'meta', text: n.attempts + (n.attempts === 1 ? ' attempt' : ' attempts') })
      ]));
      if (n.children.length) {
        var ul = h('ul');
        n.children.forEach(function (ch) { ul.appendChild(item(ch)); });
        li.appendChild(ul);
      }
      return li;
    }
    return h('ul', { className: 'tree' }, item(node));
  }

  function errorBox(e, key) {
    var box = h('div', { className: 'error-box' }, [
      h('div', null, [h('span', { className: 'name', text: e.type }), ': ', h('span', { className: 'msg', text: e.message })])
    ]);
    if (e.stack) box.appendChild(h('details', { 'data-key': key + '-stack' }, [h('summary', { text: 'stack' }), h('pre', { text: e.stack })]));
    if (e.fields) box.appendChild(h('details', { 'data-key': key + '-fields' }, [h('summary', { text: 'fields' }), valueBlock(e.fields)]));
    return box;
  }
  function valueBlock(v) {
    if (v.kind === 'json') return h('div', null, [h('pre', { className: 'value', text: v.text }), v.note ? h('p', { className: 'note', text: 'Note: ' + v.note }) : null]);
    return h('p', { className: 'note', text: v.note });
  }

  function details(c, now) {
    var out = [];
    var kv = [
      ['State', badge(c.state)],
      ['Status', c.statusName],
      ['Attempts', String(c.attempts)],
      ['Created', fmtTime(c.createdAt)],
      ['Finished', c.finishedAt ? fmtTime(c.finishedAt) + ' (' + fmtDur(c.finishedAt - c.createdAt) + ')' : '—'],
      ['Next run', c.nextRunAt ? fmtTime(c.nextRunAt) : '—'],
      ['Expires', fmtTime(c.expiresAt)],
      ['Endpoint', c.endpoint],
      ['Parent', c.parentId ? h('a', { href: '#/runs/' + encodeURIComponent(c.parentId), className: 'mono', text: c.parentId }) : '—'],
      ['Root', c.rootId !== c.id ? h('a', { href: '#/runs/' + encodeURIComponent(c.rootId), className: 'mono', text: c.rootId }) : 'itself']
    ];
    if (c.originalFunction !== c.function) kv.push(['Started as', c.originalFunction]);
    if (c.idempotencyKey) kv.push(['Idempotency key', c.idempotencyKey]);
    if (c.concurrency) kv.push(['Concurrency', 'limit ' + Math.floor(c.concurrency.limit) + ', ' + c.concurrency.inFlight + ' in flight']);
    if (c.state === 'suspended') kv.push(['Waiting for', c.readyResults + ' of ' + c.minResults + ' result(s) ready']);
    var dl = h('dl', { className: 'kv' });
    kv.forEach(function (p) { dl.appendChild(h('dt', { text: p[0] })); dl.appendChild(h('dd', null, p[1])); });
    out.push(h('div', { className: 'panel' }, [h('h2', { text: 'Call' }), dl]));

    // Attempts on a timeline
    var at = h('div', { className: 'panel', 'data-testid': 'attempts' }, [h('h2', { text: 'Attempts' })]);
    if (c.attemptHistory.length === 0) at.appendChild(h('p', { className: 'muted', text: 'No attempt yet.' }));
    else {
      var start = c.createdAt;
      var end = Math.max(c.finishedAt || now, start + 1);
      c.attemptHistory.forEach(function (a) { end = Math.max(end, a.startedAt + a.durationMs); });
      var line = h('div', { className: 'timeline', title: 'From creation to ' + (c.finishedAt ? 'the end' : 'now') });
      c.attemptHistory.forEach(function (a) {
        var cls = a.outcome === 'retry' ? 'retry' : a.outcome === 'suspend' ? 'suspend' : a.statusName === 'OK' ? 'ok' : a.outcome === 'exit' ? 'fail' : 'retry';
        var width = Math.max(a.durationMs / (end - start) * 100, 2.5);
        var left = Math.min((a.startedAt - start) / (end - start) * 100, 100 - width);
        line.appendChild(h('div', { className: 'bar ' + cls, style: 'left:' + left.toFixed(2) + '%;width:' + width.toFixed(2) + '%',
          title: '#' + a.number + ' ' + a.statusName + ' ' + a.outcome + ' ' + fmtDur(a.durationMs), text: '#' + a.number }));
      });
      at.appendChild(line);
      var tb = h('tbody');
      c.attemptHistory.forEach(function (a) {
        var cls = a.outcome === 'exit' ? (a.statusName === 'OK' ? 'exit-ok' : 'exit-fail') : a.outcome;
        tb.appendChild(h('tr', { 'data-attempt': a.number, 'data-outcome': a.outcome }, [
          h('td', { text: '#' + a.number }),
          h('td', { className: 'nowrap', text: fmtTime(a.startedAt) }),
          h('td', { className: 'nowrap', text: fmtDur(a.durationMs) }),
          h('td', { className: 'mono', text: a.statusName }),
          h('td', null, badge(a.outcome + (a.resume ? ' (resume)' : ''), cls)),
          h('td', null, a.error ? errorBox(a.error, 'attempt-' + a.number) : '')
        ]));
      });
      at.appendChild(h('table', null, [h('thead', null, h('tr', null, ['', 'Started', 'Duration', 'Status', 'Outcome', 'Error'].map(function (t) { return h('th', { text: t }); }))), tb]));
    }
    out.push(at);

    var io = h('div', { className: 'panel' }, [h('h2', { text: 'Input' }), valueBlock(c.input)]);
    if (c.output) { io.appendChild(h('h2', { text: 'Output' })); io.appendChild(valueBlock(c.output)); }
    if (c.failure) { io.appendChild(h('h2', { text: FINISHED[c.state] ? 'Error' : 'Last error' })); io.appendChild(errorBox(c.failure, 'failure')); }
    out.push(io);

    if (c.journal) out.push(journal(c.journal));
    return out;
  }

  function journal(j) {
    var p = h('div', { className: 'panel', 'data-testid': 'journal' }, [h('h2', { text: 'Journal' })]);
    if (j.note) { p.appendChild(h('p', { className: 'note', text: j.note })); return p; }
    var ops = j.operations || [];
    var waiting = ops.filter(function (o) { return o.state === 'waiting'; }).length;
    p.appendChild(h('p', { className: 'muted', text: ops.length + ' durable operation(s): ' + (ops.length - waiting) + ' done, ' + waiting + ' waited on. ' + j.bytes + ' bytes.' }));
    var tb = h('tbody');
    ops.forEach(function (o) {
      var what = [];
      if (o.error) what.push(errorBox(o.error, 'op-' + o.position));
      else if (o.result) what.push(o.result.kind === 'json' ? h('code', { text: o.result.text.length > 200 ? o.result.text.slice(0, 200) + '…' : o.result.text }) : h('span', { className: 'note', text: o.result.note }));
      if (o.deadline) what.push(h('span', { className: 'muted', text: ' until ' + fmtTime(o.deadline) }));
      if (o.dispatchIds) {
        // A fan-out (batch or fn.dispatch): its calls are runs of their own, linked here.
        what.push(h('span', { className: 'muted', text: ' dispatched ' + o.dispatchIds.length + ' call(s): ' }));
        o.dispatchIds.slice(0, 20).forEach(function (d) { what.push(h('a', { href: '#/runs/' + encodeURIComponent(d), className: 'mono', text: shortId(d) }), ' '); });
        if (o.dispatchIds.length > 20) what.push(h('span', { className: 'muted', text: '…' }));
      }
      if (o.child) what.push(h('span', null, [' ', h('a', { href: '#/runs/' + encodeURIComponent(o.child.id), className: 'mono', text: shortId(o.child.id) }), ' ', badge(o.child.state)]));
      tb.appendChild(h('tr', { 'data-op': o.position, 'data-state': o.state }, [
        h('td', { text: '#' + o.position }),
        h('td', { text: o.kind }),
        h('td', { className: 'mono', text: o.name }),
        h('td', null, badge(o.state === 'waiting' ? 'waiting' : o.state === 'failed' ? 'failed' : 'done')),
        h('td', null, what)
      ]));
    });
    p.appendChild(h('table', null, [h('thead', null, h('tr', null, ['', 'Kind', 'Name', 'State', 'Outcome'].map(function (t) { return h('th', { text: t }); }))), tb]));
    return p;
  }

  return { refresh: refresh };
}

// ---------------------------------------------------------------- concurrency
function concurrencyPage() {
  var box = h('div');
  app.appendChild(h('div', { className: 'panel' }, [
    h('h2', { text: 'Adaptive concurrency' }),
    h('p', { className: 'muted', text: 'Per endpoint and function, on this scheduler instance: the current limit (increases on success, halves on statuses that say the endpoint struggles) and the runs in flight, over the last minutes.' }),
    h('div', { className: 'legend' }, [h('span', null, [h('i', { style: 'background:#3b5bdb' }), 'limit']), h('span', null, [h('i', { style: 'background:rgba(43,138,62,.4)' }), 'in flight'])])
  ]));
  app.appendChild(box);

  function chart(series, now, windowMs) {
    var W = 360, H = 120, L = 30, B = 16, T = 6;
    // From the first sample (at least a minute back), at most the whole window.
    var first = series.samples.length ? series.samples[0][0] : now;
    var from = Math.max(now - windowMs, Math.min(first, now - 60000));
    windowMs = now - from;
    var max = 1;
    series.samples.forEach(function (x) { max = Math.max(max, x[1], x[2]); });
    max = Math.ceil(max * 1.15);
    function X(t) { return L + (Math.max(t, from) - from) / windowMs * (W - L - 4); }
    function Y(v) { return T + (1 - v / max) * (H - T - B); }
    var pts = series.samples.concat([[now, series.samples.length ? series.samples[series.samples.length - 1][1] : Math.floor(series.limit), series.inFlight]]);
    var dl = '', df = '';
    pts.forEach(function (x, i) {
      var px = X(x[0]).toFixed(1);
      if (i === 0) { dl = 'M' + px + ' ' + Y(x[1]).toFixed(1); df = 'M' + px + ' ' + Y(0).toFixed(1) + ' L' + px + ' ' + Y(x[2]).toFixed(1); }
      else {
        dl += ' H' + px + ' V' + Y(x[1]).toFixed(1);
        df += ' H' + px + ' V' + Y(x[2]).toFixed(1);
      }
    });
    df += ' V' + Y(0).toFixed(1) + ' Z';
    var minutes = Math.max(1, Math.round(windowMs / 60000));
    return s('svg', { className: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'limit of ' + series.function + ' over the last ' + minutes + ' minutes' }, [
      s('line', { className: 'axis', x1: L, y1: Y(0), x2: W - 4, y2: Y(0) }),
      s('line', { className: 'axis', x1: L, y1: T, x2: L, y2: Y(0) }),
      s('text', { x: 2, y: T + 8, text: String(max) }),
      s('text', { x: 2, y: Y(0), text: '0' }),
      s('text', { x: L, y: H - 2, text: '−' + minutes + ' min' }),
      s('text', { x: W - 30, y: H - 2, text: 'now' }),
      s('path', { className: 'inflight', d: df }),
      s('path', { className: 'limit', d: dl })
    ]);
  }

  function refresh() {
    return api('/concurrency').then(function (data) {
      clear(box);
      if (data.series.length === 0) { box.appendChild(h('p', { className: 'panel muted', text: 'No function has run on this instance yet.' })); return; }
      var cards = h('div', { className: 'cards' });
      data.series.forEach(function (x) {
        cards.appendChild(h('div', { className: 'panel card', 'data-function': x.function }, [
          h('div', { className: 'head' }, [h('span', { className: 'fn', text: x.function }), h('span', { className: 'ep', text: x.endpoint })]),
          h('div', { className: 'nums' }, [
            h('div', null, [h('b', { className: 'limit-value', text: Math.floor(x.limit) }), h('span', { text: 'limit' })]),
            h('div', null, [h('b', { className: 'inflight-value', text: x.inFlight }), h('span', { text: 'in flight' })]),
            h('div', null, [h('b', { text: x.min + '–' + x.max }), h('span', { text: 'bounds' })])
          ]),
          chart(x, data.now, data.windowMs)
        ]));
      });
      box.appendChild(cards);
    }).catch(function (e) { notice(e.message); });
  }
  return { refresh: refresh };
}

connectEvents();
route();
})();
`;
