// anse-hw dashboard: plain browser JavaScript, no build step, no CDN.
//
// It speaks the event stream of docs/protocol.md: {"type": "sensor"|"worldmodel"|"reflex"|"actuator",
// "timestamp", "seq", "data"}.  Panels are created as events arrive.  Drawing is
// batched into one requestAnimationFrame per frame, so 100 events/s cost one
// repaint per screen refresh, not one per event.
'use strict';

const SETTINGS = {
  logSize: 100,
  daemonLogSize: 200,
  sparkPoints: 50,
  keepSeconds: 900, // the longest time range, as long as the daemon's history
  historySize: 12,
  backoffMinMs: 1000,
  backoffMaxMs: 10000,
  quietMinMs: 5000,
  slowLinkMaxHz: 10,
  heartbeatMs: 150,
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function clock(timestamp) {
  const date = timestamp ? new Date(timestamp) : new Date();
  return date.toLocaleTimeString([], { hour12: false }) + '.' +
    String(date.getMilliseconds()).padStart(3, '0');
}

// ---------------------------------------------------------------- preferences

// Kept in this browser (localStorage): the chart's time range and the units
// to show.  The wire stays metric; only what is drawn and written converts.
const PREFS_KEY = 'anse-hw.preferences';
const CHOICES = { range: [60, 300, 900], temperature: ['°C', '°F'], distance: ['cm', 'in'] };
const prefs = { range: 60, temperature: '°C', distance: 'cm' };

function loadPrefs() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(PREFS_KEY)) || {};
  } catch (error) {
    // none saved, or storage is off: the defaults
  }
  for (const [key, allowed] of Object.entries(CHOICES)) {
    if (allowed.includes(saved[key])) prefs[key] = saved[key];
  }
}

function savePrefs() {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch (error) {
    // storage is off: the choice lasts as long as the page
  }
}

// The unit a value the daemon sends in `unit` is shown in.
function shownUnit(unit) {
  if (unit === '°C') return prefs.temperature;
  if (unit === 'cm') return prefs.distance;
  return unit;
}

function convert(value, unit) {
  if (unit === '°C' && prefs.temperature === '°F') return value * 9 / 5 + 32;
  if (unit === 'cm' && prefs.distance === 'in') return value / 2.54;
  return value;
}

// A value in its kind's unit ("23.4 °C", "41.0 %", "42.5 cm"), or the unit
// the user chose for it; the unit comes from the stream (sensor.data.unit).
function fmt(value, unit = '') {
  if (value === null || value === undefined) return '—';
  const shown = convert(Number(value), unit).toFixed(1);
  return unit ? `${shown} ${shownUnit(unit)}` : shown;
}

// A threshold as configured: no needless decimals ("10 cm", "113 °F").
function fmtThreshold(value, unit) {
  return `${Number(convert(value, unit).toFixed(1))} ${shownUnit(unit)}`;
}

function cm(value) {
  return fmt(value, 'cm');
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

// ---------------------------------------------------------------- where is the stream?

// A URL in the page's own directory: what keeps the dashboard working under a
// proxy's sub-path (/robot/ → /robot/healthz, /robot/api/estop, /robot/ws).
function besidePage(name) {
  return new URL(name, new URL('.', location.href)).toString();
}

// ?ws=wss://host/path wins.  Served by anse-hw (its healthz answers beside the
// page), the stream is `ws` beside the page too: http://host/ → ws://host/ws,
// https://host/robot/ → wss://host/robot/ws.  So one rule works on the daemon's
// own port and behind a reverse proxy, at the root, with `location /ws`, or
// under any sub-path.  Served any other way (the seed's `python -m http.server
// 8002`), the stream is on port 8001 of the same host.
async function streamUrl() {
  const params = new URLSearchParams(location.search);
  let url = params.get('ws');
  if (!url) {
    const host = location.hostname || 'localhost';
    url = `ws://${host}:8001/`;
    if (location.protocol.startsWith('http')) {
      try {
        const reply = await fetch(besidePage('healthz'), { cache: 'no-store' });
        const body = await reply.json();
        if ('uptime_s' in body) {
          const stream = new URL(besidePage('ws'));
          stream.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
          url = stream.toString();
        }
      } catch (error) {
        // not anse-hw: keep the seed's port
      }
    }
  }
  const maxHz = params.get('max_hz') || (slowLink() ? String(SETTINGS.slowLinkMaxHz) : null);
  if (maxHz && !url.includes('max_hz=')) {
    url += (url.includes('?') ? '&' : (url.endsWith('/') ? '?' : '/?')) + `max_hz=${maxHz}`;
  }
  return url;
}

// The robot a stream belongs to, as people name it: host:port, and the proxy's
// sub-path if there is one (wss://example.org/robot/ws → example.org/robot).
function robotOf(url) {
  try {
    const where = new URL('.', url);
    return where.host + where.pathname.replace(/\/$/, '');
  } catch (error) {
    return url; // not a URL: the connection will say "bad stream address"
  }
}

// Whether a stream is this page's own robot: the host, port and scheme the page
// came from, and a path in the page's directory.  Only then do this page's
// session and its E-STOP belong to the robot it shows; a ?ws= naming another
// robot (or another robot behind the same proxy) is watched, never commanded.
function ownStream(url) {
  try {
    const stream = new URL(url);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const directory = new URL('.', location.href).pathname;
    return stream.protocol === scheme && stream.host === location.host &&
      stream.pathname.startsWith(directory);
  } catch (error) {
    return false;
  }
}

function slowLink() {
  const link = navigator.connection;
  return Boolean(link && (link.saveData || ['slow-2g', '2g', '3g'].includes(link.effectiveType)));
}

// ---------------------------------------------------------------- the connection

// A WebSocket that reconnects forever with capped exponential back-off, and says
// what it is doing at every moment.
class Stream {
  constructor(url, onEvent, onStatus) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.backoff = SETTINGS.backoffMinMs;
    this.wanted = false;
    this.socket = null;
    this.retryAt = 0;
    this.timer = null;
    this.lastMessage = 0;
  }

  connect() {
    this.wanted = true;
    clearTimeout(this.timer);
    this.onStatus('connecting', `connecting to ${this.url}`);
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.onStatus('disconnected', `bad stream address ${this.url}`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.backoff = SETTINGS.backoffMinMs;
      this.lastMessage = Date.now();
      this.onStatus('connected', `connected to ${this.url}`);
    };
    socket.onmessage = (message) => {
      this.lastMessage = Date.now();
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return; // not an event: ignore it rather than stop the dashboard
      }
      if (event && typeof event.type === 'string' && event.data) this.onEvent(event);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.wanted) this.scheduleRetry();
      else this.onStatus('disconnected', 'disconnected');
    };
    socket.onerror = () => {}; // onclose follows and handles it
  }

  scheduleRetry() {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, SETTINGS.backoffMaxMs);
    this.retryAt = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
    this.tick();
  }

  // Refresh the "reconnecting in N s" text; called every second by the dashboard.
  tick() {
    if (this.wanted && !this.socket && this.retryAt) {
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.onStatus('reconnecting', `disconnected — reconnecting in ${seconds} s`);
    }
  }

  disconnect() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.retryAt = 0;
    if (this.socket) this.socket.close();
    else this.onStatus('disconnected', 'disconnected');
  }

  get open() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }

  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }
}

// ---------------------------------------------------------------- the operator

// Logging in: the URL anse-hw prints carries ?token=…; it is traded once for an
// HttpOnly session cookie (which the page cannot read) and removed from the
// address bar.  Commands then go over the stream's WebSocket.
async function logIn() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
    try {
      const reply = await fetch(apiUrl('login'), {
        method: 'POST', headers: { Authorization: `Bearer ${token}` }, credentials: 'same-origin',
      });
      if (reply.ok) return true;
    } catch (error) {
      return false;
    }
  }
  try {
    const reply = await fetch(apiUrl('session'), { credentials: 'same-origin', cache: 'no-store' });
    return reply.ok && (await reply.json()).operator === true;
  } catch (error) {
    return false;
  }
}

function apiUrl(name) {
  return besidePage(`api/${name}`);
}

// For an actuator kind and its safe state: the command that goes to safety, and
// the one that leaves it (held while the button is pressed).
function commandsFor(kind, safe) {
  if (kind === 'motor') return { safe: 'stop', active: 'move' };
  // A servo's state is its angle: the safe command is the safe angle, and the
  // active one the angle the operator types (the daemon refuses one beyond
  // the servo's travel).
  if (kind === 'servo') return { safe, active: null };
  return safe === 'ON' ? { safe: 'on', active: 'off' } : { safe: 'off', active: 'on' };
}

// ---------------------------------------------------------------- drawing

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height };
}

// The vertical range: every point and threshold, with a margin; a distance
// chart keeps its floor at 0 and at least 60 cm of height, as it always had.
// Values are in the unit shown.
function valueRange(values, unit) {
  let low = values.length ? Math.min(...values) : 0;
  let high = values.length ? Math.max(...values) : 1;
  if (unit === 'cm') return { low: 0, high: Math.max(convert(60, unit), high) * 1.1 };
  const margin = Math.max((high - low) * 0.1, 5);
  low -= margin;
  high += margin;
  return { low, high };
}

// Pixels between two threshold labels: they never overlap.
const LABEL_PX = 12;

// Where each threshold's label goes: beside its line, then pushed apart
// (top to bottom) so that labels of close thresholds never overlap, and kept
// inside the chart.
function labelRows(lines, y, height) {
  const rows = lines.map((line) => ({ line, at: y(line.value) + (line.below ? 12 : -3) }))
    .sort((a, b) => a.at - b.at);
  let floor = LABEL_PX - 1;
  for (const row of rows) {
    row.at = Math.max(row.at, floor);
    floor = row.at + LABEL_PX;
  }
  let ceiling = height - 2;
  for (const row of rows.reverse()) {
    row.at = Math.min(row.at, ceiling);
    ceiling = row.at - LABEL_PX;
  }
  return rows;
}

// `gap` points break the line; `gapFrom` shades the time since the stream went
// down, so a chart never draws a silence as a steady value; `marks` are
// vertical lines at moments (a daemon restart) with their text.
function drawSeries(canvas, series, { xOf, lines = [], axis = false, unit = '', gapFrom = null, marks = [] }) {
  const { ctx, width, height } = sizeCanvas(canvas);
  const points = series.filter((p) => !p.gap);
  const value = (v) => convert(v, unit);
  const { low, high } = valueRange(
    [...points.map((p) => value(p.v)), ...lines.map((l) => value(l.value))], unit);
  ctx.font = '11px system-ui, sans-serif';
  if (gapFrom) {
    const x = Math.max(0, gapFrom(width));
    ctx.fillStyle = 'rgba(138, 148, 166, 0.22)';
    ctx.fillRect(x, 0, width - x, height);
    if (axis) {
      ctx.fillStyle = '#8a94a6';
      ctx.fillText('no data', Math.min(x + 4, width - 48), height / 2);
    }
  }
  const y = (v) => height - ((value(v) - low) / (high - low)) * (height - 4) - 2;
  for (const line of lines) {
    ctx.strokeStyle = line.color;
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, y(line.value));
    ctx.lineTo(width, y(line.value));
    ctx.stroke();
  }
  if (axis) {
    for (const { line, at } of labelRows(lines, y, height)) {
      ctx.fillStyle = line.color;
      ctx.fillText(line.label, 4, at);
    }
  }
  for (const mark of marks) {
    const x = xOf(mark, 0, width);
    if (x < 0 || x > width) continue;
    ctx.strokeStyle = '#ffb020';
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, height);
    ctx.stroke();
    if (axis) {
      ctx.fillStyle = '#ffb020';
      ctx.fillText(mark.label, Math.min(x + 3, width - 60), height - 4);
    }
  }
  ctx.setLineDash([]);
  if (axis) {
    ctx.fillStyle = '#8a94a6';
    const shown = shownUnit(unit);
    ctx.fillText(`${Math.round(high)} ${shown}`, width - 48, 12);
    if (low !== 0) ctx.fillText(`${Math.round(low)} ${shown}`, width - 48, height - 4);
  }
  if (points.length < 2) return;
  ctx.strokeStyle = '#4da3ff';
  ctx.lineWidth = 2;
  ctx.beginPath();
  let pen = false;
  series.forEach((p, i) => {
    if (p.gap) {
      pen = false;
      return;
    }
    const x = xOf(p, i, width);
    if (pen) ctx.lineTo(x, y(p.v));
    else ctx.moveTo(x, y(p.v));
    pen = true;
  });
  ctx.stroke();
}

// At most about two points per pixel column: 15 minutes of a 20 Hz sensor
// drawn every frame would be 18 000 segments.  Gaps are always kept.
function thin(series, columns) {
  const step = Math.floor(series.length / Math.max(1, columns * 2));
  if (step < 2) return series;
  return series.filter((p, i) => p.gap || i % step === 0 || i === series.length - 1);
}

// One line per threshold on a sensor's chart, labelled once with every
// reflex that uses it: "stop left_motor, right_motor · on buzzer < 10 cm".
// Red when a guard uses it (something stops there), green otherwise.
function thresholdLines(sensor, reflexes, unit) {
  const lines = new Map();
  for (const r of reflexes) {
    for (const t of r.thresholds ?? legacyThresholds(r)) {
      if (t.sensor !== sensor) continue;
      const op = t.test === 'below' ? '<' : '>';
      const key = `${op}${t.value}`;
      if (!lines.has(key)) lines.set(key, { value: t.value, op, uses: [] });
      lines.get(key).uses.push(r);
    }
  }
  return [...lines.values()].map(({ value, op, uses }) => {
    const actuators = new Map(); // command → its actuators, each once
    for (const r of uses) {
      const list = actuators.get(r.command) ?? [];
      for (const a of r.actuators ?? [r.actuator]) if (!list.includes(a)) list.push(a);
      actuators.set(r.command, list);
    }
    const does = [...actuators].map(([command, names]) => `${command} ${names.join(', ')}`);
    const guard = uses.some((r) => r.guard ?? r.command === 'stop');
    return {
      value,
      color: guard ? '#ff5d5d' : '#3ecf8e',
      below: guard, // label under a guard's line, over a resume line
      reflexes: uses.map((r) => r.name),
      label: `${does.join(' · ')} ${op} ${fmtThreshold(value, unit)}`,
    };
  });
}

// A daemon from before `thresholds` was in the snapshot: the plain reflexes.
function legacyThresholds(r) {
  const value = r.below ?? r.above;
  if (!r.sensor || value === null || value === undefined) return [];
  return [{ sensor: r.sensor, test: r.below !== null && r.below !== undefined ? 'below' : 'above', value }];
}

// ---------------------------------------------------------------- panels

class SensorPanel {
  constructor(name, kind, unit) {
    this.name = name;
    this.kind = kind;
    this.unit = unit;
    this.values = []; // {t, v}, or {t, gap: true}: the last keepSeconds of readings
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.thresholds = [];
    this.node = el('section', {
      class: 'panel sensor-panel', 'data-panel': `sensor:${name}`, id: panelId('sensor', name),
    },
    el('div', { class: 'panel-head' },
      el('h2', { text: `Sensor · ${name}` }),
      this.ageBadge = lastKnownBadge(),
      this.badge = el('span', { class: 'badge fault-badge', hidden: '' })),
    el('div', { class: 'reading' },
      this.value = el('span', { class: 'value big', text: '—' }),
      this.kindNode = el('span', { class: 'kind' })),
    this.spark = el('canvas', { class: 'spark', 'aria-label': 'last 50 readings', role: 'img' }),
    el('dl', { class: 'figures' },
      el('dt', { text: 'min' }), this.minNode = el('dd', { class: 'min', text: '—' }),
      el('dt', { text: 'max' }), this.maxNode = el('dd', { class: 'max', text: '—' }),
      el('dt', { text: 'avg' }), this.avgNode = el('dd', { class: 'avg', text: '—' }),
      el('dt', { text: 'readings' }), this.countNode = el('dd', { class: 'count', text: '0' })),
    this.chart = el('canvas', { class: 'chart', role: 'img' }),
    this.spanNode = el('p', { class: 'chart-span' }),
    // What the chart's labels say, for screen readers and tests: the canvas
    // has no text of its own.
    this.labelList = el('ul', { class: 'threshold-labels visually-hidden' }));
  }

  reading(value, now) {
    this.values.push({ t: now, v: value });
    this.forget(now);
    this.count += 1;
    this.sum += value;
    this.min = Math.min(this.min, value);
    this.max = Math.max(this.max, value);
    this.latest = value;
  }

  forget(now) {
    const cutoff = now - SETTINGS.keepSeconds * 1000;
    let old = 0;
    while (old < this.values.length && this.values[old].t < cutoff) old += 1;
    if (old) this.values.splice(0, old);
  }

  // The daemon's history of this sensor ([ms, mean or null]), from the
  // snapshot.  It replaces what this page drew of the same run since its
  // first point; with `restarted`, the old run's lines are kept before it
  // and end there, never joined to the new run's.
  history(points, restarted, now) {
    if (!Array.isArray(points)) return;
    const first = points.length ? points[0][0] : now;
    const kept = restarted ? this.values : this.values.filter((p) => p.t < first);
    const loaded = points.map(([t, v]) => (v === null ? { t, gap: true } : { t, v }));
    const join = { t: Math.min(first, now), gap: true, restart: restarted };
    this.values = [...kept, join, ...loaded];
    this.forget(now);
  }

  health(fresh, fault) {
    this.fault = fresh ? null : (fault || null);
  }

  // The stream went down: the line must not join the readings on either side.
  gap(now) {
    if (this.values.length && !this.values.at(-1).gap) this.values.push({ t: now, gap: true });
  }

  render(now, lostAt, marks) {
    const unit = this.unit;
    this.value.textContent = fmt(this.latest, unit);
    this.kindNode.textContent = unit ? `${this.kind} · ${shownUnit(unit)}` : this.kind;
    showLastKnown(this, lostAt, now);
    if (this.count) {
      this.minNode.textContent = fmt(this.min, unit);
      this.maxNode.textContent = fmt(this.max, unit);
      this.avgNode.textContent = fmt(this.sum / this.count, unit);
      this.countNode.textContent = String(this.count);
    }
    showFault(this);
    const spark = this.values.filter((p) => !p.gap).slice(-SETTINGS.sparkPoints);
    drawSeries(this.spark, spark, {
      xOf: (p, i, width) => (i / (SETTINGS.sparkPoints - 1)) * width,
      lines: this.thresholds,
      unit,
    });
    // The chosen range; until it has passed, the time since the first reading.
    const range = prefs.range * 1000;
    const shown = this.values.filter((p) => p.t >= now - range);
    const first = shown.length ? shown[0].t : now;
    const span = Math.min(range, Math.max(10000, now - first));
    const xOf = (p, i, width) => width - ((now - p.t) / span) * width;
    drawSeries(this.chart, thin(shown, this.chart.clientWidth), {
      xOf,
      lines: this.thresholds,
      axis: true,
      unit,
      marks,
      gapFrom: lostAt ? (width) => width - ((now - lostAt) / span) * width : null,
    });
    const oldest = shown.find((p) => !p.gap);
    this.chart.dataset.oldest = oldest ? String(oldest.t) : '';
    this.chart.setAttribute('aria-label', `${this.kind} over the last ${prefs.range / 60} min`);
    this.spanNode.textContent = oldest ? `from ${clock(oldest.t)} to now` : 'no readings yet';
  }

  // The threshold lines, and their labels as a list (one item per line).
  setThresholds(lines) {
    this.thresholds = lines;
    this.labelList.replaceChildren(...lines.map((line) =>
      el('li', { 'data-reflexes': line.reflexes.join(' '),
        text: `${line.label} (${line.reflexes.join(', ')})` })));
  }
}

function panelId(kind, name) {
  return `panel-${kind}-${name}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

// While the stream is down every panel says its values are the last known
// ones and how old they are, rather than passing them off as live.
function lastKnownBadge() {
  return el('span', { class: 'badge last-known-badge', hidden: '' });
}

function showLastKnown(panel, lostAt, now) {
  panel.node.classList.toggle('last-known', Boolean(lostAt));
  panel.ageBadge.hidden = !lostAt;
  if (lostAt) panel.ageBadge.textContent = `last known · ${duration(now - lostAt)} ago`;
}

// A panel turns red with STALE/FAULT when the world model says its sensor has
// no fresh valid reading, whatever its kind.
function showFault(panel) {
  panel.node.classList.toggle('faulted', Boolean(panel.fault));
  panel.badge.hidden = !panel.fault;
  if (panel.fault) {
    panel.badge.textContent = panel.fault === 'stale' ? 'STALE — no valid reading' : `FAULT — ${panel.fault}`;
  }
}

// A bumper, a limit switch, a PIR: ACTIVE or INACTIVE, how often it went
// active, and when.
class BinaryPanel {
  constructor(name) {
    this.name = name;
    this.kind = 'binary';
    this.active = null;
    this.activations = 0;
    this.history = [];
    this.thresholds = []; // a binary sensor has no threshold lines
    this.node = el('section', {
      class: 'panel sensor-panel binary-panel', 'data-panel': `sensor:${name}`, id: panelId('sensor', name),
    },
      el('div', { class: 'panel-head' },
        el('h2', { text: `Sensor · ${name}` }),
        this.ageBadge = lastKnownBadge(),
        this.badge = el('span', { class: 'badge fault-badge', hidden: '' })),
      this.stateNode = el('div', { class: 'state-badge binary-badge', 'data-state': 'UNKNOWN', text: '—' }),
      el('dl', { class: 'figures' },
        el('dt', { text: 'activations' }), this.countNode = el('dd', { class: 'activations', text: '0' }),
        el('dt', { text: 'kind' }), el('dd', { class: 'kind', text: 'binary' })),
      el('h3', { text: 'Changes' }),
      this.list = el('ol', { class: 'history', tabindex: '0', 'aria-label': `${name} history, newest first` }));
  }

  reading(value, now) {
    const active = value >= 0.5;
    if (active !== this.active) {
      if (active) this.activations += 1;
      if (this.active !== null || active) {
        this.history.unshift({ state: active ? 'ACTIVE' : 'INACTIVE', time: clock(now) });
        this.history.length = Math.min(this.history.length, SETTINGS.historySize);
      }
    }
    this.active = active;
    this.latest = value;
  }

  health(fresh, fault) {
    this.fault = fresh ? null : (fault || null);
  }

  render(now, lostAt) {
    showLastKnown(this, lostAt, now);
    const state = this.active === null ? '—' : (this.active ? 'ACTIVE' : 'INACTIVE');
    this.stateNode.textContent = state;
    this.stateNode.dataset.state = state;
    this.countNode.textContent = String(this.activations);
    showFault(this);
    this.list.replaceChildren(...this.history.map((h) =>
      el('li', { 'data-state': h.state }, el('span', { class: 'time', text: h.time }), ` ${h.state}`)));
  }
}

class ActuatorPanel {
  constructor(name, kind) {
    this.name = name;
    this.kind = kind;
    this.commands = 0;
    this.history = [];
    this.state = null;
    this.node = el('section', { class: 'panel actuator-panel', 'data-panel': `actuator:${name}` },
      el('div', { class: 'panel-head' }, el('h2', { text: `Actuator · ${name}` }),
        this.ageBadge = lastKnownBadge(),
        el('span', { class: 'kind', text: kind })),
      this.badgeNode = el('div', { class: 'state-badge', 'data-state': 'UNKNOWN', text: '—' }),
      this.controls = el('div', { class: 'manual', hidden: '' }),
      // Further controls for this actuator (a drive pad for a drive) mount
      // here; buttons with the class `command` are disabled with the rest
      // while the stream is down.
      this.extras = el('div', { class: 'actuator-extras' }),
      el('dl', { class: 'figures' },
        el('dt', { text: 'commands' }), this.countNode = el('dd', { class: 'commands', text: '0' })),
      el('h3', { text: 'State history' }),
      this.list = el('ol', { class: 'history', tabindex: '0', 'aria-label': `${name} state history, newest first` }));
    this.node.id = panelId('actuator', name); // the overview links here
    if (kind === 'drive') { // measured wheel speeds, with encoders (docs/protocol.md)
      this.node.querySelector('dl.figures').append(el('dt', { text: 'wheels' }),
        this.wheelsNode = el('dd', { class: 'wheels', text: '—' }));
    }
  }

  // A drive's measured wheel speeds, rev/s: a measurement, not a command.
  measured(speeds) {
    this.wheels = speeds;
  }

  // Manual control for a logged-in operator: a safe-state button, and a
  // hold-to-run button that sends heartbeats while pressed (the daemon puts
  // the actuator back in its safe state when they stop) — or, for an output
  // configured `manual: latch`, a plain button that switches it on to stay;
  // for a drive, the drive pad (drivepad.js).
  addControls(safe, send, manual = 'hold') {
    if (this.kind === 'drive') {
      this.controls.replaceChildren(DrivePad.mount(this.name, send, SETTINGS.heartbeatMs));
      return;
    }
    const { safe: safeCommand, active } = commandsFor(this.kind, safe);
    const command = (c) => send({ action: 'command', actuator: this.name, command: c });
    const stop = el('button', { type: 'button', class: 'manual-safe command', text: safeCommand,
      'aria-label': `${safeCommand} ${this.name}` });
    stop.addEventListener('click', () => command(safeCommand));
    const note = el('span', { class: 'command-state', hidden: '', text: 'not connected' });
    if (manual === 'latch') {
      const on = el('button', { type: 'button', class: 'manual-latch command', text: `${active} (stays)`,
        'aria-label': `${active} ${this.name} until switched ${safeCommand}` });
      on.addEventListener('click', () => command(active));
      this.controls.replaceChildren(stop, on, note);
      return;
    }
    if (active === null) {
      stop.textContent = `${safeCommand}° (safe)`;
      const angle = el('input', { type: 'number', class: 'angle command', value: safeCommand,
        step: '1', 'aria-label': `angle for ${this.name}, degrees` });
      const hold = this.holdButton('hold at angle', () => angle.value, () => command(safeCommand),
        command);
      this.controls.replaceChildren(stop, angle, hold, note);
      return;
    }
    const hold = this.holdButton(`hold to ${active}`, () => active, () => command(safeCommand),
      command);
    this.controls.replaceChildren(stop, hold, note);
  }

  // A hold-to-run button: `target()` is sent on press and repeated as the
  // heartbeat; releasing it (or the window losing focus) sends `release()`.
  holdButton(label, target, release, command) {
    const hold = el('button', { type: 'button', class: 'manual-hold command', text: label,
      'aria-label': `${label} ${this.name}` });
    let timer = null;
    const letGo = () => {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      release();
    };
    hold.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      command(target());
      timer = setInterval(() => command(target()), SETTINGS.heartbeatMs);
    });
    for (const type of ['pointerup', 'pointerleave', 'pointercancel']) hold.addEventListener(type, letGo);
    window.addEventListener('blur', letGo);
    return hold;
  }

  setState(state, timestamp, command) {
    if (command) {
      this.commands += 1;
      this.history.unshift({ state, time: clock(timestamp) });
      this.history.length = Math.min(this.history.length, SETTINGS.historySize);
    }
    this.state = state;
  }

  render(now, lostAt) {
    showLastKnown(this, lostAt, now);
    this.badgeNode.textContent = this.state || '—';
    this.badgeNode.dataset.state = this.state || 'UNKNOWN';
    this.countNode.textContent = String(this.commands);
    if (this.wheels) {
      this.wheelsNode.textContent = `L ${this.wheels.left.toFixed(2)} · R ${this.wheels.right.toFixed(2)} rev/s`;
    }
    this.list.replaceChildren(...this.history.map((h) =>
      el('li', { 'data-state': h.state }, el('span', { class: 'time', text: h.time }), ` ${h.state}`)));
  }
}

class WorldPanel {
  constructor() {
    this.states = [];
    this.trend = 'STABLE';
    this.previous = null;
    this.node = el('section', { class: 'panel world-panel', 'data-panel': 'worldmodel', id: 'panel-worldmodel' },
      el('div', { class: 'panel-head' }, el('h2', { text: 'World model' }),
        this.ageBadge = lastKnownBadge(),
        this.safeNode = el('span', { class: 'safety', text: '—' })),
      el('dl', { class: 'figures wide' },
        el('dt', { text: 'distance' }), this.distanceNode = el('dd', { class: 'distance', text: '—' }),
        el('dt', { text: 'trend' }), this.trendNode = el('dd', { class: 'trend', text: 'STABLE' }),
        el('dt', { text: 'actuator' }), this.actuatorNode = el('dd', { class: 'actuator', text: '—' }),
        el('dt', { text: 'last reflex' }), this.reflexNode = el('dd', { class: 'last-reflex', text: '—' }),
        el('dt', { text: 'last stop' }), this.stopNode = el('dd', { class: 'last-stop', text: '—' }),
        el('dt', { text: 'E-stop latch' }), this.latchNode = el('dd', { class: 'latch', text: '—' }),
        el('dt', { text: 'events' }), this.eventsNode = el('dd', { class: 'total-events', text: '0' })),
      el('h3', { text: 'Last five states' }),
      this.list = el('ol', { class: 'states' }));
  }

  // Called once per sensor reading with the nearest distance, so repeated world
  // updates for the same reading do not read as STABLE.
  nearest(distance) {
    if (this.previous !== null) {
      const delta = distance - this.previous;
      this.trend = delta < -0.5 ? 'CLOSER' : delta > 0.5 ? 'FARTHER' : 'STABLE';
    }
    this.previous = distance;
  }

  update(data, timestamp) {
    const distance = data.distance_cm;
    this.data = data;
    const summary = `${cm(distance)} · ${data.safe ? 'SAFE' : 'DANGER'} · ${data.actuator_state}`;
    if (this.states[0]?.summary !== summary) {
      this.states.unshift({ summary, time: clock(timestamp) });
      this.states.length = Math.min(this.states.length, 5);
    }
  }

  render(now, lostAt) {
    const d = this.data;
    if (!d) return;
    showLastKnown(this, lostAt, now);
    this.distanceNode.textContent = cm(d.distance_cm);
    // Never a green SAFE for a robot we cannot hear from.
    this.safeNode.textContent = (d.safe ? 'SAFE' : 'DANGER') + (lostAt ? '?' : '');
    this.safeNode.dataset.safe = lostAt ? 'unknown' : String(d.safe);
    this.actuatorNode.textContent = d.actuator_state;
    this.reflexNode.textContent = d.last_reflex || '—';
    const stop = d.last_stop;
    this.stopNode.textContent = stop ? `${stop.actuator} ${stop.state} by ${stop.cause} at ${clock(stop.timestamp)}` : '—';
    this.latchNode.textContent = latchText(d);
    this.eventsNode.textContent = String(d.total_events);
    this.trendNode.textContent = this.trend;
    this.trendNode.dataset.trend = this.trend;
    this.list.replaceChildren(...this.states.map((s) =>
      el('li', {}, el('span', { class: 'time', text: s.time }), ` ${s.summary}`)));
  }
}

class ReflexPanel {
  constructor() {
    this.configured = [];
    this.counts = new Map();
    this.recent = [];
    this.node = el('section', { class: 'panel reflex-panel', 'data-panel': 'reflexes', id: 'panel-reflexes' },
      el('div', { class: 'panel-head' }, el('h2', { text: 'Reflexes' })),
      el('h3', { text: 'Active reflexes' }),
      this.activeList = el('ul', { class: 'active-reflexes' }),
      el('h3', { text: 'Recent triggers' }),
      this.recentList = el('ol', { class: 'recent', tabindex: '0', 'aria-label': 'recent firings, newest first' }));
  }

  configure(reflexes) {
    this.configured = reflexes;
  }

  // Each reflex's verdict on the latest readings: the whole condition, which
  // part holds, and how far its for: has run.
  verdicts(verdicts) {
    this.current = verdicts || {};
  }

  parts(r) {
    const v = this.current?.[r.name];
    if (!v || !Array.isArray(r.parts)) return [];
    const mark = (t) => (t === true ? '✓' : t === false ? '✗' : '?');
    const items = r.parts.map((text, i) =>
      el('span', { class: 'part', 'data-holds': String(v.parts[i]), text: `${mark(v.parts[i])} ${text}` }));
    if (r.for > 0) {
      items.push(el('span', { class: 'for-progress', 'data-progress': String(v.for_progress),
        text: `for ${r.for}s: ${Math.round(v.for_progress * 100)}%` }));
    }
    // Coloured by what the reflex does when it holds: a guard's holding part
    // is danger, a move or an on that may go ahead is not.
    const effect = (r.guard ?? r.command === 'stop') ? 'guard' : 'resume';
    return [el('div', { class: 'verdict', 'data-holds': String(v.holds), 'data-effect': effect }, ...items)];
  }

  triggered(data, timestamp) {
    if (data.triggered) this.counts.set(data.reflex_name, (this.counts.get(data.reflex_name) || 0) + 1);
    this.recent.unshift({ ...data, time: clock(timestamp) });
    this.recent.length = Math.min(this.recent.length, SETTINGS.historySize);
  }

  render() {
    const names = this.configured.map((r) => r.name);
    const extra = [...this.counts.keys()].filter((n) => !names.includes(n));
    const acts = (r) => (r.actuators ?? [r.actuator]).join(', ');
    const rows = [
      ...this.configured.map((r) => [r.name,
        `${r.sensor ? `${r.sensor}: ` : ''}${r.condition} → ${r.command} ${acts(r)}`, this.parts(r)]),
      ...extra.map((n) => [n, 'fail-safe', []]),
    ];
    this.activeList.replaceChildren(...rows.map(([name, text, parts]) =>
      el('li', { 'data-reflex': name, id: panelId('reflex', name) }, el('strong', { text: name }), ` ${text} `,
        el('span', { class: 'count', text: `×${this.counts.get(name) || 0}` }), ...parts)));
    this.recentList.replaceChildren(...this.recent.map((r) =>
      el('li', { 'data-triggered': String(r.triggered) },
        el('span', { class: 'time', text: r.time }),
        ` ${r.reflex_name}: ${r.condition}${r.triggered ? '' : ' (cleared)'}`)));
  }
}

class EventLog {
  constructor(list, pausedNote, missedNode) {
    this.list = list;
    this.pausedNote = pausedNote;
    this.missedNode = missedNode;
    this.entries = [];
    this.filter = 'all';
    this.paused = false;
    this.missed = 0;
  }

  add(event) {
    if (this.paused) {
      this.missed += 1;
      return;
    }
    this.entries.unshift(event);
    if (this.entries.length > SETTINGS.logSize) this.entries.length = SETTINGS.logSize;
  }

  setPaused(paused) {
    this.paused = paused;
    if (!paused) this.missed = 0;
  }

  render() {
    this.pausedNote.hidden = !this.paused;
    this.missedNode.textContent = String(this.missed);
    if (this.paused) return;
    const shown = this.entries.filter((e) => this.filter === 'all' || e.type === this.filter);
    this.list.replaceChildren(...shown.map((e) =>
      el('li', { 'data-type': e.type },
        el('span', { class: 'time', text: clock(e.timestamp) }),
        el('span', { class: `type type-${e.type}`, text: e.type }),
        el('span', { class: 'text', text: describe(e) }))));
  }
}

// The daemon's own log, for a logged-in operator only (the daemon sends it
// to no one else): INFO and up, the newest first, filtered by level.
const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];

class DaemonLog {
  constructor(panel, list, level) {
    this.panel = panel;
    this.list = list;
    this.level = level;
    this.lines = [];
    level.addEventListener('change', () => this.render());
  }

  add(line) {
    this.panel.hidden = false;
    this.lines.unshift(line);
    if (this.lines.length > SETTINGS.daemonLogSize) this.lines.length = SETTINGS.daemonLogSize;
    this.dirty = true;
  }

  render() {
    if (!this.dirty && this.shownLevel === this.level.value) return;
    this.dirty = false;
    this.shownLevel = this.level.value;
    const least = LEVELS.indexOf(this.level.value);
    this.list.replaceChildren(...this.lines
      .filter((line) => LEVELS.indexOf(line.level) >= least)
      .map((line) => el('li', { 'data-level': line.level },
        el('span', { class: 'time', text: clock(line.timestamp) }),
        el('span', { class: `level level-${line.level}`, text: line.level }),
        el('span', { class: 'text', text: line.message }))));
  }
}

// What set the E-stop latch, in words: its own cause, source and time.
function latchText(d) {
  if (!d.estop_latched) return 'released';
  const latch = d.latch;
  if (!latch) return 'LATCHED';
  return `LATCHED: ${latch.cause} from ${latch.source} at ${clock(latch.timestamp)}`;
}

// The robot at a glance: one line per actuator, guard, sensor and the
// latch, each a link to its card.  State is in words (and a symbol), never
// in colour alone.
class Overview {
  constructor(list, safeNode) {
    this.list = list;
    this.safeNode = safeNode;
    this.lines = new Map();
  }

  line(key, target) {
    if (!this.lines.has(key)) {
      const node = el('li', { 'data-overview': key },
        el('a', { href: `#${target}` },
          el('span', { class: 'ov-name' }), el('span', { class: 'ov-state' }),
          el('span', { class: 'ov-detail' })));
      this.list.querySelector('.waiting')?.remove();
      this.lines.set(key, node);
      this.list.append(node);
    }
    return this.lines.get(key);
  }

  set(key, target, { name, state, mark, detail }) {
    const node = this.line(key, target);
    node.dataset.state = mark;
    const [nameNode, stateNode, detailNode] = node.firstChild.children;
    nameNode.textContent = name;
    stateNode.textContent = state;
    detailNode.textContent = detail || '';
  }

  render(board, now, lostAt) {
    const d = board.world?.data;
    if (!d) return;
    this.safeNode.textContent = (d.safe ? 'SAFE' : 'DANGER') + (lostAt ? '?' : '');
    this.safeNode.dataset.safe = lostAt ? 'unknown' : String(d.safe);
    this.set('latch', 'panel-worldmodel', {
      name: 'E-stop',
      state: d.estop_latched ? '✗ LATCHED' : 'released',
      mark: d.estop_latched ? 'danger' : 'ok',
      detail: d.estop_latched && d.latch
        ? `${d.latch.cause} from ${d.latch.source} at ${clock(d.latch.timestamp)}`
        : (d.estop_circuit === 'open' ? 'the button is pressed' : ''),
    });
    for (const [name, panel] of board.actuators) {
      const kind = board.actuatorKinds[name];
      const safe = kind ? panel.state === kind.safe : null;
      this.set(`actuator:${name}`, panelId('actuator', name), {
        name, state: panel.state || '—', mark: safe === null ? 'unknown' : (safe ? 'safe' : 'active'),
        detail: `${panel.kind}${board.latched ? ' · latched' : ''}`,
      });
    }
    for (const r of board.reflexConfig.filter((x) => x.guard)) {
      const clear = d.guards?.[r.name]?.clear ?? d.safe;
      // A guard that stops motion blocks the robot; one that holds an output
      // at its safe level (a fan off below 40 °C) is just doing its job.
      const stops = r.command === 'stop' || r.command === 'estop';
      this.set(`guard:${r.name}`, panelId('reflex', r.name), {
        name: r.name,
        state: clear ? '✓ clear' : (stops ? '✗ BLOCKING' : `● holds ${r.command}`),
        mark: clear ? 'ok' : (stops ? 'danger' : 'safe'),
        detail: clear ? `${r.command} ${r.actuators.join(', ')} when ${r.condition}`
          : this.blocking(r, d, board.reflexConfig),
      });
    }
    for (const [name, panel] of board.sensors) {
      const s = d.sensors?.[name] || {};
      const age = s.age_ms === undefined ? '' : `${(s.age_ms / 1000).toFixed(1)} s ago`;
      this.set(`sensor:${name}`, panelId('sensor', name), {
        name,
        state: panel.kind === 'binary'
          ? (panel.active === null ? '—' : (panel.active ? 'ACTIVE' : 'INACTIVE'))
          : fmt(panel.latest, panel.unit),
        mark: s.fresh === false ? 'danger' : 'ok',
        detail: s.fresh === false ? `⚠ ${s.fault === 'stale' || !s.fault ? 'no fresh reading' : s.fault}` : age,
      });
    }
  }

  // Why a guard keeps its actuators stopped: a silent sensor, the part of
  // its condition that holds with the reading behind it, or the band before
  // its resume reflex holds.
  blocking(r, d, reflexes) {
    const sensors = d.sensors || {};
    const silent = r.sensors.filter((s) => !sensors[s]?.fresh);
    if (silent.length) return silent.map((s) => `${s}: no fresh reading`).join(', ');
    const verdict = d.verdicts?.[r.name];
    const reading = (s) => {
      const value = sensors[s]?.value;
      return sensors[s]?.type === 'binary' ? '' : ` (${s} ${fmt(value, sensors[s]?.unit)})`;
    };
    const holding = (r.parts || []).filter((_, i) => verdict?.parts?.[i] === true);
    if (holding.length) {
      return holding.map((text) => {
        const sensor = r.sensors.find((s) => text.startsWith(`${s} `));
        return text + (sensor ? reading(sensor) : '');
      }).join(', ');
    }
    if (!verdict || verdict.holds !== false) return 'not known yet';
    const waits = reflexes.filter((x) => !x.guard && x.sensors.some((s) => r.sensors.includes(s)) &&
      x.actuators.some((a) => r.actuators.includes(a)));
    const missing = waits.flatMap((x) =>
      (x.parts || []).filter((_, i) => d.verdicts?.[x.name]?.parts?.[i] !== true));
    return missing.length ? `until ${missing.join(' and ')}` : 'until its resume reflex holds';
  }
}

function describe(event) {
  const d = event.data;
  switch (event.type) {
    case 'sensor':
      if (d.sensor_type === 'binary') return `${d.sensor_name} ${d.value >= 0.5 ? 'ACTIVE' : 'INACTIVE'}`;
      return `${d.sensor_name} = ${fmt(d.value, d.unit ?? 'cm')}`;
    case 'reflex': return `${d.reflex_name}: ${d.condition}${d.triggered ? ' → TRIGGER' : ' (cleared)'}`;
    case 'actuator': return `${d.actuator_name} ${d.state}`;
    default: return `${cm(d.distance_cm)} ${d.safe ? 'SAFE' : 'DANGER'} ${d.actuator_state}`;
  }
}

// ---------------------------------------------------------------- the dashboard

class Dashboard {
  constructor() {
    this.panels = document.getElementById('panels');
    this.sensors = new Map();
    this.actuators = new Map();
    this.world = null;
    this.reflexes = null;
    this.events = 0;
    this.started = Date.now();
    this.intervals = [];
    this.lastEventAt = 0;
    this.dirty = false;
    this.log = new EventLog(document.getElementById('log'),
      document.getElementById('log-paused'), document.getElementById('log-missed'));
    this.operator = false;
    this.own = true;
    this.connected = false;
    this.actuatorKinds = {};
    this.reflexConfig = [];
    this.latched = false;
    this.overview = new Overview(document.getElementById('overview-list'),
      document.getElementById('overview-safe'));
    this.daemonLog = new DaemonLog(document.getElementById('daemon-log-panel'),
      document.getElementById('daemon-log'), document.getElementById('daemon-log-level'));
    this.run = null; // the daemon run the shown history belongs to
    this.restarts = []; // {t, label}: where a new run began
    this.bindControls();
  }

  // -- the operator ------------------------------------------------------

  setOperator(operator) {
    this.operator = operator;
    document.getElementById('operator').dataset.operator = String(operator);
    document.getElementById('operator-text').textContent =
      this.latched ? 'LATCHED' : (operator ? 'operator' : 'view only');
    this.showControls();
  }

  // Every command control is disabled, and says "not connected", while the
  // stream is down: a command could not be sent, so nothing looks ready.
  // Buttons with the class `command` anywhere on the page count.
  showCommands() {
    const offline = !this.connected;
    for (const button of document.querySelectorAll('button.command')) {
      button.disabled = offline || (button.id === 'estop-button' && !this.operator);
      if (offline) button.setAttribute('aria-description', 'not connected');
      else button.removeAttribute('aria-description');
    }
    for (const pad of document.querySelectorAll('.drivepad')) {
      pad.setAttribute('aria-disabled', String(offline));
    }
    document.getElementById('command-state').hidden = !offline;
    for (const note of document.querySelectorAll('.manual .command-state')) note.hidden = !offline;
  }

  // Which robot the E-STOP reaches, always on screen beside it; on a page
  // watching another robot's stream, that there is no E-STOP here for it.
  setTarget(url, own) {
    this.own = own;
    const robot = robotOf(url);
    const target = document.getElementById('estop-target');
    target.dataset.own = String(own);
    target.textContent = own ? `→ ${robot}` : `watching ${robot}: view only here`;
    document.getElementById('estop-button').title = own
      ? `Emergency stop of ${robot}: every actuator to its safe state, latched until Reset`
      : `${robot} is another robot's stream: command it from its own dashboard`;
  }

  command(message) {
    if (!this.stream.send(message)) this.message('Not connected: the command was not sent.');
  }

  message(text) {
    const box = document.getElementById('operator-message');
    box.textContent = text;
    box.hidden = !text;
    clearTimeout(this.messageTimer);
    if (text) this.messageTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  showControls() {
    for (const [name, panel] of this.actuators) {
      const info = this.actuatorKinds[name];
      panel.controls.hidden = !(this.operator && info);
      if (this.operator && info && !panel.controls.childElementCount) {
        panel.addControls(info.safe, (m) => this.command(m), info.manual);
      }
    }
    this.showCommands();
  }

  showLatch(d) {
    this.latched = Boolean(d.estop_latched);
    // estop_durable false: the robot's state disk could not be written, so the
    // latch (or its reset) lives in this process only; a restart comes up latched.
    const durable = d.estop_durable !== false;
    const banner = document.getElementById('latch-banner');
    banner.hidden = this.latched === false && durable;
    if (this.latched) {
      // What latched, not the last actuator change (which can come after).
      const latch = d.latch;
      banner.textContent = 'E-STOP LATCHED — nothing moves until Reset' +
        (latch ? ` (${latch.cause} from ${latch.source} at ${clock(latch.timestamp)})` : '') +
        (durable ? '' : ' — held in memory only: the state disk cannot be written');
    } else if (!durable) {
      banner.textContent =
        'The state disk cannot be written: the E-stop state is held in memory only, ' +
        'and a restart comes up LATCHED';
    }
    document.getElementById('reset-button').hidden = !(this.latched && this.operator);
    // The top bar stays in view when the banner scrolls away: it says so too.
    const operator = document.getElementById('operator');
    operator.dataset.latched = String(this.latched);
    document.getElementById('operator-text').textContent =
      this.latched ? 'LATCHED' : (this.operator ? 'operator' : 'view only');
    this.showEstopInput(d.estop_circuit, operator);
  }

  // The hardwired E-stop's circuit, or that there is none: an operator should
  // know whether the red button on the robot does anything.
  showEstopInput(circuit, beside) {
    let note = document.getElementById('estop-input');
    if (!note) {
      note = el('span', { id: 'estop-input' });
      beside.after(note);
    }
    note.dataset.circuit = String(circuit ?? 'none');
    note.textContent = circuit == null ? 'no hardwired E-stop'
      : circuit === 'open' ? 'E-stop button OPEN: release it before Reset' : 'E-stop button closed';
  }

  bindControls() {
    document.querySelectorAll('[data-filter]').forEach((button) => {
      button.addEventListener('click', () => {
        this.log.filter = button.dataset.filter;
        document.querySelectorAll('[data-filter]').forEach((b) => b.classList.toggle('active', b === button));
        this.invalidate();
      });
    });
    const pause = document.getElementById('pause-button');
    pause.addEventListener('click', () => {
      this.log.setPaused(!this.log.paused);
      pause.textContent = this.log.paused ? 'Resume' : 'Pause';
      pause.classList.toggle('active', this.log.paused);
      this.invalidate();
    });
    document.getElementById('connect-button').addEventListener('click', () => {
      if (this.stream.wanted) this.stream.disconnect();
      else this.stream.connect();
    });
    document.getElementById('estop-button').addEventListener('click', () => this.command({ action: 'estop' }));
    for (const button of document.querySelectorAll('[data-range]')) {
      button.addEventListener('click', () => this.choose('range', Number(button.dataset.range)));
    }
    for (const button of document.querySelectorAll('[data-unit]')) {
      button.addEventListener('click', () => this.choose(button.dataset.kind, button.dataset.unit));
    }
    this.showChoices();
    document.getElementById('reset-button').addEventListener('click', () => this.command({ action: 'reset' }));
  }

  // A display preference: kept in this browser, applied at once.
  choose(key, value) {
    prefs[key] = value;
    savePrefs();
    this.showChoices();
    this.applyThresholds();
    this.invalidate();
  }

  showChoices() {
    for (const button of document.querySelectorAll('[data-range]')) {
      button.setAttribute('aria-pressed', String(Number(button.dataset.range) === prefs.range));
    }
    for (const button of document.querySelectorAll('[data-unit]')) {
      button.setAttribute('aria-pressed', String(prefs[button.dataset.kind] === button.dataset.unit));
    }
  }

  start(url) {
    document.getElementById('stat-url').textContent = url;
    this.stream = new Stream(url, (e) => this.handle(e), (state, text) => this.status(state, text));
    this.stream.connect();
    setInterval(() => this.everySecond(), 1000);
  }

  status(state, text) {
    const box = document.getElementById('connection');
    box.dataset.state = state;
    document.getElementById('connection-text').textContent = text;
    this.connected = state === 'connected';
    this.showCommands();
    document.getElementById('connect-button').textContent =
      state === 'disconnected' ? 'Connect' : 'Disconnect';
    if (state !== 'connected') {
      document.getElementById('quiet-warning').hidden = true;
      for (const panel of this.sensors.values()) panel.gap?.(Date.now());
    }
    this.invalidate();
  }

  handle(event) {
    const now = Date.now();
    if (this.lastEventAt) this.intervals.push(now - this.lastEventAt);
    if (this.intervals.length > 50) this.intervals.shift();
    this.lastEventAt = now;
    this.events += 1;
    const d = event.data;
    switch (event.type) {
      case 'sensor':
        this.sensor(d.sensor_name, d.sensor_type, d.unit ?? 'cm').reading(Number(d.value), now);
        if (d.sensor_type === 'distance') {
          this.world?.nearest(Math.min(...[...this.sensors.values()]
            .filter((p) => p.kind === 'distance')
            .map((p) => p.latest).filter((v) => v !== undefined)));
        }
        break;
      case 'actuator':
        if (d.wheel_speeds) this.actuator(d.actuator_name, d.actuator_type).measured(d.wheel_speeds);
        else this.actuator(d.actuator_name, d.actuator_type).setState(d.state, event.timestamp, true);
        break;
      case 'reflex':
        this.reflexPanel().triggered(d, event.timestamp);
        break;
      case 'worldmodel':
        this.worldmodel(d, event.timestamp);
        break;
      case 'reply': // to this dashboard's own command
        if (!d.ok) this.message(`Refused: ${d.error}`);
        return;
      case 'log': // the daemon's log: only an operator's stream has it
        this.daemonLog.add(d);
        this.invalidate();
        return;
      default:
        return;
    }
    if (event.type !== 'worldmodel') this.log.add(event);
    this.invalidate();
  }

  worldmodel(d, timestamp) {
    if (!this.world) {
      this.world = new WorldPanel();
      this.addPanel(this.world);
    }
    this.world.update(d, timestamp);
    const snapshot = Array.isArray(d.reflexes);
    // Per-sensor entries carry their kind and unit (older daemons: distance in cm).
    for (const [name, s] of Object.entries(d.sensors || {})) {
      this.sensor(name, s.type ?? 'distance', s.unit ?? 'cm').health(s.fresh, s.fault);
    }
    if (d.actuator_kinds) this.actuatorKinds = d.actuator_kinds; // only in the snapshot
    for (const [name, state] of Object.entries(d.actuators || {})) {
      const panel = this.actuator(name, this.actuatorKinds[name]?.type ?? 'motor');
      if (panel.state !== state) panel.setState(state, timestamp, false);
    }
    this.showControls();
    this.showLatch(d);
    if (snapshot) { // only the snapshot has these
      this.reflexPanel().configure(d.reflexes);
      this.reflexConfig = d.reflexes;
      this.applyThresholds();
      this.history(d);
    }
    if (d.verdicts) this.reflexPanel().verdicts(d.verdicts);
  }

  // Each sensor's threshold lines, one per threshold (thresholdLines).
  applyThresholds() {
    for (const [name, panel] of this.sensors) {
      if (panel.kind !== 'binary') panel.setThresholds(thresholdLines(name, this.reflexConfig, panel.unit));
    }
  }

  // The snapshot's history: drawn at once.  A new run id means the daemon
  // restarted while this page was away: say so, and mark it on the charts.
  history(d) {
    const now = Date.now();
    const run = d.run;
    const restarted = Boolean(run && this.run && run.id !== this.run.id);
    if (restarted) {
      const at = Date.parse(run.started) || now;
      this.restarts.push({ t: at, label: 'restart' });
      const note = document.getElementById('restart-note');
      note.textContent = `The daemon restarted at ${clock(run.started)}: the charts break there.`;
      note.hidden = false;
    }
    if (run) this.run = run;
    for (const [name, points] of Object.entries(d.history || {})) {
      const panel = this.sensors.get(name);
      if (panel && panel.kind !== 'binary') panel.history(points, restarted, now);
    }
  }

  sensor(name, kind, unit) {
    return this.panelIn(this.sensors, name, () =>
      kind === 'binary' ? new BinaryPanel(name) : new SensorPanel(name, kind, unit));
  }

  actuator(name, kind) {
    return this.panelIn(this.actuators, name, () => new ActuatorPanel(name, kind));
  }

  // The panel for `name`, created (and shown) the first time it is needed.
  panelIn(panels, name, create) {
    if (!panels.has(name)) {
      panels.set(name, create());
      this.addPanel(panels.get(name));
    }
    return panels.get(name);
  }

  reflexPanel() {
    if (!this.reflexes) {
      this.reflexes = new ReflexPanel();
      this.addPanel(this.reflexes);
    }
    return this.reflexes;
  }

  addPanel(panel) {
    // Sensors, then actuators, world model and reflexes, whatever arrives first.
    const rank = ['sensor', 'actuator', 'world', 'reflex'];
    panel.node.style.order = String(rank.findIndex((r) => panel.node.className.includes(r)));
    this.panels.append(panel.node);
  }

  invalidate() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.render());
  }

  render() {
    this.dirty = false;
    const now = Date.now();
    const lostAt = this.stream.open ? null : this.stream.lastMessage || null;
    for (const panel of this.sensors.values()) panel.render(now, lostAt, this.restarts);
    for (const panel of this.actuators.values()) panel.render(now, lostAt);
    this.world?.render(now, lostAt);
    this.reflexes?.render();
    this.overview.render(this, now, lostAt);
    this.log.render();
    this.daemonLog.render();
    document.getElementById('stat-events').textContent = String(this.events);
  }

  // The stream can go quiet while the socket stays open (a wedged daemon, a
  // sensor that stopped): say so instead of showing old numbers as if live.
  everySecond() {
    document.getElementById('stat-uptime').textContent = duration(Date.now() - this.started);
    this.stream.tick();
    const warning = document.getElementById('quiet-warning');
    if (this.stream.open) {
      const sorted = [...this.intervals].sort((a, b) => a - b);
      const typical = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
      const limit = Math.max(SETTINGS.quietMinMs, typical * 4);
      const silent = Date.now() - this.stream.lastMessage;
      warning.hidden = silent < limit;
      warning.textContent = `No events for ${Math.round(silent / 1000)} s although the connection is open — the daemon may be stalled.`;
    }
    if (this.sensors.size) this.invalidate(); // keep the minute chart scrolling
  }
}

window.addEventListener('DOMContentLoaded', async () => {
  loadPrefs();
  window.dashboard = new Dashboard();
  // Before the stream opens: its WebSocket may command only if the session
  // cookie is there at the handshake.  The session is this page's robot's:
  // operator mode only when the stream is that robot's too.
  const loggedIn = await logIn();
  const url = await streamUrl();
  const own = ownStream(url);
  window.dashboard.setTarget(url, own);
  window.dashboard.setOperator(loggedIn && own);
  if (loggedIn && !own) {
    window.dashboard.message(`Logged in here, but this page shows ${robotOf(url)}: view only. ` +
      'Open that robot\'s own dashboard to command it.');
  }
  window.dashboard.start(url);
});
