// Weft console: plain JavaScript, no framework, nothing fetched from elsewhere. It reads the node's management API
// (docs/http-api.md) once a second and draws what it gets; every change is a POST of JSON to the same API, after a
// confirmation, and the node's answer is shown as text. The session cookie (sign-in link printed by `weft node`)
// goes with every request the browser makes to this origin.
'use strict';

const POLL_MILLIS = 1000;
const CHART_WINDOW_MILLIS = 5 * 60 * 1000;
const COLORS = { read: '#2f6fdf', write: '#d9730d', read2: '#8fb3f0', write2: '#f0b47a', fault: '#d64545',
                 recover: '#1f9d55', degraded: 'rgba(214, 69, 69, 0.08)', grid: '#e3e7ee', text: '#667085' };

const state = {
  view: 'cluster', node: null, members: [], devices: [], drills: [], storageNodes: [], transports: null,
  samples: {}, lastSampleAt: 0, intervalMillis: 1000, capacity: 600, selectedDrill: null, lastOk: 0,
  polling: false, clusterAt: 0, listsAt: 0,
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** True when elem was last drawn from the same data (redrawing it would only lose the reader's place). */
function unchanged(elem, data) {
  const key = JSON.stringify(data);
  if (elem.dataset.drawn === key) return true;
  elem.dataset.drawn = key;
  return false;
}

function $(sel, root) { return (root || document).querySelector(sel); }
function $$(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

function bytes(n) {
  if (n === undefined || n === null || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)) + ' ' + units[i];
}

function rate(n) { return bytes(n) + '/s'; }

function count(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return n >= 10 ? n.toFixed(0) : n.toFixed(n === 0 ? 0 : 2);
}

function micros(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' s';
  if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + ' ms';
  return n.toFixed(n > 0 && n < 10 ? 2 : 0) + ' µs';
}

function badgeClass(word) {
  if (['ready', 'Up', 'in-sync', 'connected', 'done', 'true', 'yes'].includes(word)) return 'badge ok';
  if (['degraded', 'mapping', 'reconnecting', 'out-of-sync', 'Joining', 'WeaklyUp', 'Leaving', 'Exiting',
       'opening', 'connecting', 'backoff', 'searching'].includes(word)) return 'badge warn';
  if (['failed', 'closed', 'Down', 'Removed', 'false', 'no'].includes(word)) return 'badge bad';
  return 'badge';
}

function badge(word, cls) { return el('span', { class: badgeClass(word) + (cls ? ' ' + cls : ''), text: word }); }

function showBanner(text) {
  const b = $('#banner');
  b.textContent = text || '';
  b.hidden = !text;
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { /* not JSON: shown as text */ }
  if (r.status === 401) {
    // No session (never signed in, expired, or the node restarted): the sign-in form, and nothing else changes.
    $('#signin').hidden = false;
  } else if (r.ok) {
    $('#signin').hidden = true;
  }
  if (!r.ok) {
    throw new HttpError(r.status, (json && (json.message || json.error)) || text || ('HTTP ' + r.status));
  }
  return json;
}

// ---------------------------------------------------------------- navigation

function showView(name) {
  if (!['cluster', 'devices', 'actions', 'drills'].includes(name)) name = 'cluster';
  state.view = name;
  for (const s of $$('.view')) s.hidden = s.id !== 'view-' + name;
  for (const a of $$('nav a')) a.classList.toggle('active', a.dataset.view === name);
  render();
}

window.addEventListener('hashchange', () => showView(location.hash.slice(1)));

// ---------------------------------------------------------------- polling

async function poll() {
  if (state.polling) return;
  state.polling = true;
  try {
    const now = Date.now();
    const jobs = [
      api('GET', '/weft/devices').then(d => { state.devices = d || []; }),
      api('GET', '/weft/samples?since=' + state.lastSampleAt).then(mergeSamples),
    ];
    if (!state.node || now - state.clusterAt > 2000) {
      state.clusterAt = now;
      jobs.push(api('GET', '/weft/node').then(n => { state.node = n; }));
      jobs.push(api('GET', '/weft/cluster').then(m => { state.members = m || []; }));
    }
    if (now - state.listsAt > 5000) {
      state.listsAt = now;
      jobs.push(api('GET', '/weft/storage-nodes').then(s => { state.storageNodes = s || []; }).catch(() => {}));
      jobs.push(api('GET', '/weft/transports').then(t => { state.transports = t; }).catch(() => {}));
    }
    if (state.view === 'drills' || state.drills.some(d => !['done', 'failed'].includes(d.phase))) {
      jobs.push(api('GET', '/weft/drills').then(d => { state.drills = d || []; }));
    }
    await Promise.all(jobs);
    state.lastOk = Date.now();
    showBanner('');
  } catch (e) {
    if (e instanceof HttpError) {
      showBanner(e.status === 401 ? '' : 'The node refused (HTTP ' + e.status + '): ' + e.message);
    } else {
      showBanner('The node does not answer: ' + e.message);
    }
  } finally {
    state.polling = false;
  }
  render();
}

function mergeSamples(s) {
  if (!s) return;
  state.intervalMillis = s.intervalMillis;
  state.capacity = s.capacity;
  for (const [id, list] of Object.entries(s.devices)) {
    const have = state.samples[id] || [];
    const merged = have.concat(list);
    state.samples[id] = merged.slice(Math.max(0, merged.length - s.capacity));
    for (const x of list) state.lastSampleAt = Math.max(state.lastSampleAt, x.atMillis);
  }
  for (const id of Object.keys(state.samples)) {
    if (!(id in s.devices)) delete state.samples[id];
  }
}

// ---------------------------------------------------------------- rendering

function render() {
  renderHeader();
  if (state.view === 'cluster') renderCluster();
  if (state.view === 'devices') renderDevices();
  if (state.view === 'actions' || state.view === 'drills') renderChoices();
  if (state.view === 'drills') renderDrills();
}

function renderHeader() {
  if (state.node) {
    $('#node-name').textContent = 'node ' + state.node.name + ' · ' + state.node.roles.join(', ');
    document.title = 'Weft · ' + state.node.name;
  }
  const live = $('#live');
  if (state.lastOk) {
    const age = Date.now() - state.lastOk;
    live.textContent = age < 3000 ? 'live · ' + new Date(state.lastOk).toLocaleTimeString()
        : 'no answer for ' + Math.round(age / 1000) + ' s';
    live.classList.toggle('stale', age >= 3000);
  }
}

function renderCluster() {
  const tbody = $('#members tbody');
  if (unchanged(tbody, state.members)) return;
  tbody.replaceChildren(...state.members.map(m => el('tr',
      { 'data-member': m.name || m.address, class: m.self ? 'self' : '' },
      el('td', { class: 'name', text: m.name || '?' }),
      el('td', { class: 'address', text: m.address }),
      el('td', { class: 'roles', text: m.roles.join(', ') }),
      el('td', { class: 'status' }, badge(m.status)),
      el('td', { class: 'reachable' }, badge(m.reachable ? 'yes' : 'no')),
      el('td', { class: 'transports', text: m.transports.join(', ') || '—' }),
      el('td', { class: 'console' }, m.console ? el('a', { href: m.console, text: m.console }) : '—'))));
  const up = state.members.filter(m => m.status === 'Up' && m.reachable).length;
  $('#cluster-summary').textContent = state.members.length + ' members, ' + up + ' up and reachable';
}

function renderDevices() {
  const box = $('#devices');
  $('#no-devices').hidden = state.devices.length > 0;
  const seen = new Set();
  for (const d of state.devices) {
    seen.add(d.id);
    let card = box.querySelector('.device[data-device="' + CSS.escape(d.id) + '"]');
    if (!card) {
      card = deviceCard(d.id);
      box.append(card);
    }
    updateDeviceCard(card, d);
  }
  for (const card of $$('.device', box)) {
    if (!seen.has(card.dataset.device)) card.remove();
  }
  const degraded = state.devices.filter(d => d.state !== 'ready').length;
  $('#devices-summary').textContent = state.devices.length + ' mapped on this node'
      + (degraded ? ', ' + degraded + ' not ready' : '');
}

function deviceCard(id) {
  return el('div', { class: 'device card', 'data-device': id },
      el('div', { class: 'device-head' }, el('span', { class: 'id', text: id }), el('span', { class: 'state' })),
      el('div', { class: 'facts' }),
      el('div', { class: 'mirror' }),
      el('div', { class: 'charts' },
          el('canvas', { class: 'chart iops', title: 'IOPS' }),
          el('canvas', { class: 'chart throughput', title: 'throughput' }),
          el('canvas', { class: 'chart latency', title: 'latency' })));
}

function fact(label, value, cls) {
  return el('div', { class: cls || '' }, el('span', { text: label }), el('span', { class: 'v', text: value }));
}

function updateDeviceCard(card, d) {
  $('.state', card).replaceChildren(badge(d.state), ' since ' + new Date(d.stateSince).toLocaleTimeString());
  const facts = [
    fact('size', bytes(d.size)), fact('mode', d.mode), fact('transport', d.transport || '—'),
    fact('storage', d.mirror ? d.mirror.legs.map(l => l.storageNode).join(' + ') : d.storageNode + ':' + d.path),
    fact('export', d.export || '—', 'export'), fact('in flight', String(d.inFlight)),
    fact('reconnects', String(d.reconnects)),
    fact('reads / writes', count(d.io.reads) + ' / ' + count(d.io.writes)),
  ];
  if (d.lastError) facts.push(fact('last error', d.lastError, 'error'));
  if (d.exportError) facts.push(fact('export error', d.exportError, 'error'));
  const factsBox = $('.facts', card);
  if (!unchanged(factsBox, facts.map(f => f.textContent))) factsBox.replaceChildren(...facts);
  const mirrorBox = $('.mirror', card);
  if (!unchanged(mirrorBox, d.mirror)) mirrorBox.replaceChildren(...(d.mirror ? mirrorView(d.mirror) : []));
  const samples = state.samples[d.id] || [];
  const now = Date.now();
  const window = { start: now - CHART_WINDOW_MILLIS, end: now };
  drawChart($('canvas.iops', card), samples, [
    { key: 'readIops', label: 'read IOPS', color: COLORS.read },
    { key: 'writeIops', label: 'write IOPS', color: COLORS.write }], count, window);
  drawChart($('canvas.throughput', card), samples, [
    { key: 'readBytesPerSecond', label: 'read', color: COLORS.read },
    { key: 'writeBytesPerSecond', label: 'write', color: COLORS.write }], rate, window);
  drawChart($('canvas.latency', card), samples, [
    { key: 'readP50Micros', label: 'read p50', color: COLORS.read2 },
    { key: 'readP99Micros', label: 'read p99', color: COLORS.read },
    { key: 'writeP50Micros', label: 'write p50', color: COLORS.write2 },
    { key: 'writeP99Micros', label: 'write p99', color: COLORS.write }], micros, window);
}

function mirrorView(m) {
  const r = m.resync;
  const rows = m.legs.map(l => {
    const resyncing = r.running && r.leg === l.index;
    const bar = el('div', { class: 'bar' + (resyncing ? '' : ' done'), 'data-percent': resyncing ? r.percent : 100 },
        el('div', { class: 'bar-fill' }));
    $('.bar-fill', bar).style.width = (resyncing ? r.percent : (l.state === 'in-sync' ? 100 : 0)) + '%';
    let progress;
    if (resyncing) {
      progress = r.percent + '% · ' + r.regionsDone + '/' + r.regionsTotal + ' regions · ' + rate(r.bytesPerSecond)
          + (r.etaMillis >= 0 ? ' · ETA ' + (r.etaMillis / 1000).toFixed(1) + ' s' : '') + (r.full ? ' · full copy' : '');
    } else {
      progress = l.state === 'in-sync' ? 'in sync' : (l.state === 'failed' ? 'waiting for its storage node' : 'waiting');
    }
    return el('tr', { class: 'leg', 'data-leg': l.index, 'data-state': l.state, 'data-resyncing': resyncing },
        el('td', { text: String(l.index) }),
        el('td', { text: l.storageNode + ':' + l.path }),
        el('td', { class: 'leg-state' }, badge(l.state)),
        el('td', { text: l.mirrorState + ' / ' + l.session }),
        el('td', { class: 'resync' }, bar, el('div', { class: 'resync-text', text: progress })),
        // A session's last error stays after it recovered: shown only while the leg is not in sync.
        el('td', { class: 'error', text: l.state === 'in-sync' ? '' : (l.lastError || '') }));
  });
  const summary = m.legCount + ' legs · ' + (m.degraded ? 'degraded' : 'all in sync') + ' · dirty regions: '
      + m.dirtyRegions + ' × ' + bytes(m.regionSize)
      + (r.leg >= 0 && !r.running ? ' · last resync: leg ' + r.leg + ', ' + r.regionsDone + '/' + r.regionsTotal
          + ' regions' + (r.lastError ? ', ' + r.lastError : '') : '');
  return [
    el('div', { class: 'mirror-summary', text: summary, 'data-dirty': m.dirtyRegions }),
    el('table', { class: 'legs' },
        el('thead', {}, el('tr', {}, ...['leg', 'storage', 'state', 'mirror / session', 'resync', 'error']
            .map(h => el('th', { text: h })))),
        el('tbody', {}, ...rows)),
  ];
}

// ---------------------------------------------------------------- charts

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * Draws series of samples over [start, end] on a canvas: lines per series, a light band where the device was not
 * ready, vertical markers ({at, label, color}), axes labelled with fmt.
 */
function drawChart(canvas, samples, series, fmt, opts) {
  if (!canvas || canvas.offsetParent === null) return;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 62, right = 10, top = 20, bottom = 20;
  const t0 = opts.start, t1 = opts.end;
  const x = t => left + (t - t0) / (t1 - t0) * (w - left - right);
  const visible = samples.filter(s => s.atMillis >= t0 && s.atMillis <= t1);
  let max = 0;
  for (const s of visible) for (const ser of series) max = Math.max(max, s[ser.key] || 0);
  max = niceMax(max);
  const y = v => top + (1 - v / max) * (h - top - bottom);
  g.font = '11px system-ui, sans-serif';
  // Periods the device was not ready.
  g.fillStyle = COLORS.degraded;
  for (const s of visible) {
    if (s.state !== 'ready') {
      const x1 = x(s.atMillis);
      const x0 = x(s.atMillis - s.intervalMillis);
      g.fillRect(Math.max(left, x0), top, x1 - Math.max(left, x0), h - top - bottom);
    }
  }
  // Grid and labels.
  g.strokeStyle = COLORS.grid;
  g.fillStyle = COLORS.text;
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    g.beginPath();
    g.moveTo(left, Math.round(y(v)) + 0.5);
    g.lineTo(w - right, Math.round(y(v)) + 0.5);
    g.stroke();
    g.fillText(fmt(v), left - 6, y(v));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const span = t1 - t0;
  for (let i = 0; i <= 4; i++) {
    const t = t0 + span * i / 4;
    const label = opts.relativeTo !== undefined
        ? ((t - opts.relativeTo) / 1000).toFixed(span < 20000 ? 1 : 0) + ' s'
        : (i === 4 ? 'now' : '-' + Math.round((t1 - t) / 1000) + ' s');
    g.fillText(label, Math.min(Math.max(x(t), left + 14), w - right - 14), h - bottom + 4);
  }
  // Series: a gap in the samples (node busy, device remapped) breaks the line.
  g.lineWidth = 1.6;
  for (const ser of series) {
    g.strokeStyle = ser.color;
    g.beginPath();
    let prev = null;
    for (const s of visible) {
      const px = x(s.atMillis);
      const py = y(s[ser.key] || 0);
      if (prev && s.atMillis - prev.atMillis <= 2.5 * Math.max(s.intervalMillis, 1)) g.lineTo(px, py);
      else g.moveTo(px, py);
      prev = s;
    }
    g.stroke();
  }
  // Markers.
  (opts.markers || []).forEach((m, i) => {
    if (m.at < t0 || m.at > t1) return;
    g.strokeStyle = m.color;
    g.setLineDash([4, 3]);
    g.beginPath();
    g.moveTo(Math.round(x(m.at)) + 0.5, top);
    g.lineTo(Math.round(x(m.at)) + 0.5, h - bottom);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = m.color;
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.fillText(m.label, x(m.at) + 3, top + 2 + 13 * i); // one line each: close markers do not overlap
  });
  // Legend.
  g.textAlign = 'left';
  g.textBaseline = 'top';
  let lx = left;
  for (const ser of series) {
    g.fillStyle = ser.color;
    g.fillRect(lx, 5, 10, 3);
    g.fillStyle = COLORS.text;
    g.fillText(ser.label, lx + 13, 2);
    lx += g.measureText(ser.label).width + 26;
  }
  if (visible.length === 0) {
    g.fillStyle = COLORS.text;
    g.textAlign = 'center';
    g.fillText('no samples yet', (left + w - right) / 2, h / 2);
  }
}

// ---------------------------------------------------------------- forms: choices

function setOptions(select, values, keepEmpty) {
  const current = select.value;
  const want = (keepEmpty ? [''] : []).concat(values);
  const have = Array.from(select.options).map(o => o.value);
  if (have.length === want.length && have.every((v, i) => v === want[i])) return;
  select.replaceChildren(...want.map(v => el('option', { value: v, text: v === '' ? '—' : v })));
  if (want.includes(current)) select.value = current;
}

function renderChoices() {
  for (const s of $$('select.storage-nodes')) setOptions(s, state.storageNodes, s.classList.contains('optional'));
  for (const s of $$('select.device-ids')) setOptions(s, state.devices.map(d => d.id), false);
  for (const s of $$('select.mirror-ids')) setOptions(s, state.devices.filter(d => d.mirror).map(d => d.id), false);
  if (state.transports) {
    for (const s of $$('select.transports')) {
      const current = s.value;
      setOptions(s, state.transports.enabled, true);
      s.options[0].textContent = '(node default: ' + state.transports.default + ')';
      s.value = current;
    }
  }
  const drillDevice = $('#form-drill select[name=device]').value;
  const d = state.devices.find(x => x.id === drillDevice);
  const targets = d ? (d.mirror ? d.mirror.legs.map(l => l.storageNode) : [d.storageNode]) : [];
  setOptions($('#form-drill select[name=target]'), Array.from(new Set(targets)), false);
}

// ---------------------------------------------------------------- actions

function confirmAction(text) {
  return new Promise(resolve => {
    const modal = $('#confirm');
    $('#confirm-text').textContent = text;
    modal.hidden = false;
    const done = ok => {
      modal.hidden = true;
      $('#confirm-ok').onclick = null;
      $('#confirm-cancel').onclick = null;
      resolve(ok);
    };
    $('#confirm-ok').onclick = () => done(true);
    $('#confirm-cancel').onclick = () => done(false);
    $('#confirm-ok').focus();
  });
}

function showResult(ok, text) {
  const r = $('#action-result');
  r.hidden = false;
  r.className = 'result ' + (ok ? 'ok' : 'error');
  r.textContent = text;
}

async function runAction(question, method, path, body, resultBox) {
  if (!await confirmAction(question)) return;
  const show = resultBox || showResult;
  try {
    const answer = await api(method, path, body);
    show(true, (answer && (answer.message || answer.text
        || (answer.id && answer.phase && answer.id + ' started: ' + answer.fault + ' of ' + answer.target + ' under '
            + answer.device)))
        || JSON.stringify(answer));
  } catch (e) {
    show(false, (e.status ? 'HTTP ' + e.status + ': ' : '') + e.message);
  }
  state.listsAt = 0;
  poll();
}

function form(id, handler) {
  $(id).addEventListener('submit', ev => {
    ev.preventDefault();
    const f = ev.target;
    const v = name => (f.elements[name].type === 'checkbox' ? f.elements[name].checked : f.elements[name].value.trim());
    handler(v, f);
  });
}

function wireSignIn() {
  $('#signin').addEventListener('submit', async ev => {
    ev.preventDefault();
    const token = ev.target.elements.token.value.trim();
    try {
      await api('POST', '/login', { token });
      ev.target.elements.token.value = '';
      $('#signin-error').textContent = '';
      $('#signin').hidden = true;
      state.node = null;
      state.listsAt = 0;
      poll();
    } catch (e) {
      $('#signin').hidden = false;
      $('#signin-error').textContent = e.message;
    }
  });
}

function wireForms() {
  form('#form-map', v => {
    const legs = [1, 2, 3].map(i => ({ storage: v('storage' + i), path: v('path' + i) })).filter(l => l.storage && l.path);
    const body = { id: v('id'), mode: v('mode') };
    if (v('transport')) body.transport = v('transport');
    if (legs.length > 1) body.legs = legs;
    else { body.storageNode = v('storage1'); body.path = v('path1'); }
    const what = legs.length > 1 ? 'a mirror of ' + legs.map(l => l.storage + ':' + l.path).join(' + ')
        : v('storage1') + ':' + v('path1');
    runAction('Map ' + body.id + ' → ' + what + ' (' + body.mode + ') on node ' + state.node.name + '?',
        'POST', '/weft/devices', body);
  });
  form('#form-unmap', v => runAction('Unmap ' + v('device') + (v('force')
      ? ' now, failing its in-flight IO with EIO?' : '? Its export is withdrawn and in-flight IO drained.'),
      'POST', '/weft/devices/' + encodeURIComponent(v('device')) + '/unmap', { force: v('force') }));
  form('#form-resize', v => runAction('Resize ' + v('storageNode') + ':' + v('path') + ' to ' + v('size')
      + '? Shrinking cuts off the data past the new end.', 'POST', '/weft/backends/resize',
      { storageNode: v('storageNode'), path: v('path'), size: v('size') }));
  form('#form-create', v => {
    const body = { storageNode: v('storageNode'), path: v('path') };
    if (v('size')) body.size = v('size');
    runAction('Create volume ' + v('path') + ' on ' + v('storageNode') + (v('size') ? ' (' + v('size') + ')' : '')
        + '?', 'POST', '/weft/volumes', body);
  });
  form('#form-add-leg', v => runAction('Add leg ' + v('storage') + ':' + v('path') + ' to ' + v('device')
      + '? All of the device is copied to it in the background.', 'POST',
      '/weft/devices/' + encodeURIComponent(v('device')) + '/legs', { storage: v('storage'), path: v('path') }));
  form('#form-remove-leg', v => runAction('Remove leg ' + v('index') + ' from ' + v('device') + '?', 'POST',
      '/weft/devices/' + encodeURIComponent(v('device')) + '/legs/' + encodeURIComponent(v('index')) + '/remove', {}));
  form('#form-drill', v => {
    if (!v('overwrite')) return;
    const body = { device: v('device'), fault: v('fault'), target: v('target'), overwrite: true };
    if (v('workingSet')) body.workingSet = v('workingSet');
    if (v('during')) body.during = v('during');
    runAction('Start a ' + body.fault + ' drill of ' + body.target + ' under ' + body.device + '? The drill '
        + 'OVERWRITES ' + (body.workingSet || 'the working set') + ' of ' + body.device + ' with its own data.',
        'POST', '/weft/drills', body, (ok, text) => {
          showDrillMessage(ok, text);
          if (ok) state.selectedDrill = null;
        }).then(() => {
      api('GET', '/weft/drills').then(d => {
        state.drills = d || [];
        const last = state.drills[state.drills.length - 1];
        if (last) state.selectedDrill = last.id;
        render();
      });
    });
  });
  $('#form-drill select[name=device]').addEventListener('change', renderChoices);
}

function showDrillMessage(ok, text) {
  let box = $('#drill-message');
  if (!box) {
    box = el('div', { id: 'drill-message' });
    $('#form-drill').after(box);
  }
  box.className = 'result ' + (ok ? 'ok' : 'error');
  box.textContent = text;
}

// ---------------------------------------------------------------- drills

function renderDrills() {
  const tbody = $('#drills tbody');
  const drills = state.drills.slice().reverse();
  if (!unchanged(tbody, [state.selectedDrill, drills.map(d => [d.id, d.phase, d.progress, !!d.report])]))
  tbody.replaceChildren(...drills.map(d => {
    const bar = el('div', { class: 'bar' + (d.phase === 'done' ? ' done' : '') }, el('div', { class: 'bar-fill' }));
    $('.bar-fill', bar).style.width = Math.round(d.progress * 100) + '%';
    const row = el('tr', { 'data-drill': d.id, class: 'clickable' + (d.id === state.selectedDrill ? ' selected' : '') },
        el('td', { text: d.id }), el('td', { text: d.device }), el('td', { text: d.fault }),
        el('td', { text: d.target }), el('td', { class: 'phase' }, badge(d.phase)), el('td', {}, bar),
        el('td', { class: 'intact' }, d.report ? badge(d.report.intact ? 'yes' : 'no') : '—'));
    row.addEventListener('click', () => { state.selectedDrill = d.id; render(); });
    return row;
  }));
  const d = state.drills.find(x => x.id === state.selectedDrill);
  $('#drill-report').hidden = !d;
  if (!d) return;
  $('#drill-report-title').textContent = d.id + ': ' + d.fault + ' of ' + d.target + ' under ' + d.device + ' — '
      + d.phase + (d.report ? (d.report.intact ? ' · every acknowledged write intact' : ' · DATA PROBLEM') : '');
  $('#drill-report-text').textContent = d.reportText || d.error || d.faultDone || ('phase ' + d.phase + ', '
      + d.requests + ' requests so far');
  const start = d.startedAtMillis || (Date.now() - d.elapsedMillis);
  const end = Math.max(start + d.elapsedMillis, start + 5000) + 1000;
  const markers = [];
  if (d.faultAtMillis > 0) markers.push({ at: d.faultAtMillis, label: 'fault: ' + d.fault, color: COLORS.fault });
  if (d.recoveredAtMillis > 0) markers.push({ at: d.recoveredAtMillis, label: 'recover', color: COLORS.recover });
  const resync = d.report ? d.report.timeToResyncMillis : -1;
  if (d.recoveredAtMillis > 0 && resync >= 0) {
    markers.push({ at: d.recoveredAtMillis + resync, label: 'legs in sync', color: COLORS.recover });
  }
  const samples = (state.samples[d.device] || []);
  drawChart($('#drill-timeline'), samples, [
    { key: 'readIops', label: 'read IOPS', color: COLORS.read },
    { key: 'writeIops', label: 'write IOPS', color: COLORS.write }], count,
      { start: start - 2000, end, markers, relativeTo: d.faultAtMillis > 0 ? d.faultAtMillis : start });
}

// ---------------------------------------------------------------- start

wireSignIn();
wireForms();
showView(location.hash.slice(1) || 'cluster');
poll();
setInterval(poll, POLL_MILLIS);
