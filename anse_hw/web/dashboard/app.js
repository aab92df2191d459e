// anse-hw dashboard: plain browser JavaScript, no build step, no CDN.
//
// It speaks the event stream of docs/protocol.md: {"type": "sensor"|"worldmodel"|"reflex"|"actuator",
// "timestamp", "seq", "data"}.  Panels are created as events arrive.  Drawing is
// batched into one requestAnimationFrame per frame, so 100 events/s cost one
// repaint per screen refresh, not one per event.
'use strict';

const SETTINGS = {
  logSize: 100,
  sparkPoints: 50,
  chartSeconds: 60,
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

// A value in its kind's unit ("23.4 °C", "41.0 %", "42.5 cm"); the unit comes
// from the stream (sensor.data.unit), never from here.
function fmt(value, unit = '') {
  if (value === null || value === undefined) return '—';
  return unit ? `${Number(value).toFixed(1)} ${unit}` : Number(value).toFixed(1);
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
function valueRange(points, lines, unit) {
  const all = [...points.map((p) => p.v), ...lines.map((l) => l.value)];
  let low = all.length ? Math.min(...all) : 0;
  let high = all.length ? Math.max(...all) : 1;
  if (unit === 'cm') return { low: 0, high: Math.max(60, high) * 1.1 };
  const margin = Math.max((high - low) * 0.1, 5);
  low -= margin;
  high += margin;
  return { low, high };
}

// `gap` points break the line; `gapFrom` shades the time since the stream went
// down, so a chart never draws a silence as a steady value.
function drawSeries(canvas, series, { xOf, lines = [], axis = false, unit = '', gapFrom = null }) {
  const { ctx, width, height } = sizeCanvas(canvas);
  const points = series.filter((p) => !p.gap);
  const { low, high } = valueRange(points, lines, unit);
  if (gapFrom) {
    const x = Math.max(0, gapFrom(width));
    ctx.fillStyle = 'rgba(138, 148, 166, 0.22)';
    ctx.fillRect(x, 0, width - x, height);
    if (axis) {
      ctx.fillStyle = '#8a94a6';
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillText('no data', Math.min(x + 4, width - 48), height / 2);
    }
  }
  const y = (v) => height - ((v - low) / (high - low)) * (height - 4) - 2;
  for (const line of lines) {
    ctx.strokeStyle = line.color;
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, y(line.value));
    ctx.lineTo(width, y(line.value));
    ctx.stroke();
    if (axis) {
      ctx.fillStyle = line.color;
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillText(line.label, 4, y(line.value) + (line.below ? 12 : -3));
    }
  }
  ctx.setLineDash([]);
  if (axis) {
    ctx.fillStyle = '#8a94a6';
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(`${Math.round(high)} ${unit}`, width - 48, 12);
    if (low !== 0) ctx.fillText(`${Math.round(low)} ${unit}`, width - 48, height - 4);
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

// ---------------------------------------------------------------- panels

class SensorPanel {
  constructor(name, kind, unit) {
    this.name = name;
    this.kind = kind;
    this.unit = unit;
    this.values = []; // {t, v}: the last chartSeconds of readings
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.thresholds = [];
    this.node = el('section', { class: 'panel sensor-panel', 'data-panel': `sensor:${name}` },
      el('div', { class: 'panel-head' },
        el('h2', { text: `Sensor · ${name}` }),
        this.ageBadge = lastKnownBadge(),
        this.badge = el('span', { class: 'badge fault-badge', hidden: '' })),
      el('div', { class: 'reading' },
        this.value = el('span', { class: 'value big', text: '—' }),
        el('span', { class: 'kind', text: unit ? `${kind} · ${unit}` : kind })),
      this.spark = el('canvas', { class: 'spark', 'aria-label': 'last 50 readings' }),
      el('dl', { class: 'figures' },
        el('dt', { text: 'min' }), this.minNode = el('dd', { class: 'min', text: '—' }),
        el('dt', { text: 'max' }), this.maxNode = el('dd', { class: 'max', text: '—' }),
        el('dt', { text: 'avg' }), this.avgNode = el('dd', { class: 'avg', text: '—' }),
        el('dt', { text: 'readings' }), this.countNode = el('dd', { class: 'count', text: '0' })),
      this.chart = el('canvas', { class: 'chart', 'aria-label': `${kind} over the last minute` }));
  }

  reading(value, now) {
    this.values.push({ t: now, v: value });
    const cutoff = now - SETTINGS.chartSeconds * 1000;
    while (this.values.length && this.values[0].t < cutoff) this.values.shift();
    this.count += 1;
    this.sum += value;
    this.min = Math.min(this.min, value);
    this.max = Math.max(this.max, value);
    this.latest = value;
  }

  health(fresh, fault) {
    this.fault = fresh ? null : (fault || null);
  }

  // The stream went down: the line must not join the readings on either side.
  gap(now) {
    if (this.values.length && !this.values.at(-1).gap) this.values.push({ t: now, gap: true });
  }

  render(now, lostAt) {
    const unit = this.unit;
    this.value.textContent = fmt(this.latest, unit);
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
    // The last minute; until a minute has passed, the time since the first reading.
    const first = this.values.length ? this.values[0].t : now;
    const span = Math.min(SETTINGS.chartSeconds * 1000, Math.max(10000, now - first));
    drawSeries(this.chart, this.values, {
      xOf: (p, i, width) => width - ((now - p.t) / span) * width,
      lines: this.thresholds,
      axis: true,
      unit,
      gapFrom: lostAt ? (width) => width - ((now - lostAt) / span) * width : null,
    });
  }
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
    this.node = el('section', { class: 'panel sensor-panel binary-panel', 'data-panel': `sensor:${name}` },
      el('div', { class: 'panel-head' },
        el('h2', { text: `Sensor · ${name}` }),
        this.ageBadge = lastKnownBadge(),
        this.badge = el('span', { class: 'badge fault-badge', hidden: '' })),
      this.stateNode = el('div', { class: 'state-badge binary-badge', 'data-state': 'UNKNOWN', text: '—' }),
      el('dl', { class: 'figures' },
        el('dt', { text: 'activations' }), this.countNode = el('dd', { class: 'activations', text: '0' }),
        el('dt', { text: 'kind' }), el('dd', { class: 'kind', text: 'binary' })),
      el('h3', { text: 'Changes' }),
      this.list = el('ol', { class: 'history' }));
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
      el('dl', { class: 'figures' },
        el('dt', { text: 'commands' }), this.countNode = el('dd', { class: 'commands', text: '0' })),
      el('h3', { text: 'State history' }),
      this.list = el('ol', { class: 'history' }));
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
  // the actuator back in its safe state when they stop).
  addControls(safe, send) {
    if (this.kind === 'drive') { // a two-wheel base: the drive pad (drivepad.js)
      this.controls.replaceChildren(DrivePad.mount(this.name, send, SETTINGS.heartbeatMs));
      return;
    }
    const { safe: safeCommand, active } = commandsFor(this.kind, safe);
    const stop = el('button', { type: 'button', class: 'manual-safe', text: safeCommand });
    const hold = el('button', { type: 'button', class: 'manual-hold', text: `hold to ${active}` });
    stop.addEventListener('click', () => send({ action: 'command', actuator: this.name, command: safeCommand }));
    let timer = null;
    const release = () => {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      send({ action: 'command', actuator: this.name, command: safeCommand });
    };
    hold.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      const beat = () => send({ action: 'command', actuator: this.name, command: active });
      beat();
      timer = setInterval(beat, SETTINGS.heartbeatMs);
    });
    for (const type of ['pointerup', 'pointerleave', 'pointercancel']) hold.addEventListener(type, release);
    window.addEventListener('blur', release);
    this.controls.replaceChildren(stop, hold);
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
    this.node = el('section', { class: 'panel world-panel', 'data-panel': 'worldmodel' },
      el('div', { class: 'panel-head' }, el('h2', { text: 'World model' }),
        this.ageBadge = lastKnownBadge(),
        this.safeNode = el('span', { class: 'safety', text: '—' })),
      el('dl', { class: 'figures wide' },
        el('dt', { text: 'distance' }), this.distanceNode = el('dd', { class: 'distance', text: '—' }),
        el('dt', { text: 'trend' }), this.trendNode = el('dd', { class: 'trend', text: 'STABLE' }),
        el('dt', { text: 'actuator' }), this.actuatorNode = el('dd', { class: 'actuator', text: '—' }),
        el('dt', { text: 'last reflex' }), this.reflexNode = el('dd', { class: 'last-reflex', text: '—' }),
        el('dt', { text: 'last stop' }), this.stopNode = el('dd', { class: 'last-stop', text: '—' }),
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
    this.node = el('section', { class: 'panel reflex-panel', 'data-panel': 'reflexes' },
      el('div', { class: 'panel-head' }, el('h2', { text: 'Reflexes' })),
      el('h3', { text: 'Active reflexes' }),
      this.activeList = el('ul', { class: 'active-reflexes' }),
      el('h3', { text: 'Recent triggers' }),
      this.recentList = el('ol', { class: 'recent' }));
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
    return [el('div', { class: 'verdict', 'data-holds': String(v.holds) }, ...items)];
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
      el('li', { 'data-reflex': name }, el('strong', { text: name }), ` ${text} `,
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
    this.actuatorKinds = {};
    this.latched = false;
    this.bindControls();
  }

  // -- the operator ------------------------------------------------------

  setOperator(operator) {
    this.operator = operator;
    document.getElementById('operator').dataset.operator = String(operator);
    document.getElementById('operator-text').textContent =
      this.latched ? 'LATCHED' : (operator ? 'operator' : 'view only');
    document.getElementById('estop-button').disabled = !operator;
    this.showControls();
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
        panel.addControls(info.safe, (m) => this.command(m));
      }
    }
  }

  showLatch(d) {
    this.latched = Boolean(d.estop_latched);
    // estop_durable false: the robot's state disk could not be written, so the
    // latch (or its reset) lives in this process only; a restart comes up latched.
    const durable = d.estop_durable !== false;
    const banner = document.getElementById('latch-banner');
    banner.hidden = this.latched === false && durable;
    if (this.latched) {
      const stop = d.last_stop;
      banner.textContent = 'E-STOP LATCHED — nothing moves until Reset' +
        (stop ? ` (${stop.cause} at ${clock(stop.timestamp)})` : '') +
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
    document.getElementById('reset-button').addEventListener('click', () => this.command({ action: 'reset' }));
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
    document.getElementById('stat-status').textContent = state;
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
    if (Array.isArray(d.reflexes)) { // only in the snapshot
      this.reflexPanel().configure(d.reflexes);
      this.applyThresholds(d.reflexes);
    }
    if (d.verdicts) this.reflexPanel().verdicts(d.verdicts);
  }

  // Guards (they drive an actuator to its safe state) in red, resumes in green.
  applyThresholds(reflexes) {
    for (const r of reflexes) {
      const panel = this.sensors.get(r.sensor);
      const value = r.below ?? r.above;
      if (!panel || panel.kind === 'binary' || value === null || value === undefined) continue;
      const guard = r.guard ?? r.command === 'stop';
      const op = r.below !== null && r.below !== undefined ? '<' : '>';
      panel.thresholds.push({
        value,
        color: guard ? '#ff5d5d' : '#3ecf8e',
        below: guard, // label under the guard's line, over the resume line
        label: `${r.command} ${r.actuator} ${op} ${value} ${panel.unit}`,
      });
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
    document.getElementById('waiting')?.remove();
    // Sensors, then actuators, world model and reflexes, whatever arrives first.
    const rank = ['sensor', 'actuator', 'world', 'reflex'];
    panel.node.style.order = String(rank.findIndex((r) => panel.node.className.includes(r)));
    this.panels.append(panel.node);
    document.getElementById('stat-panels').textContent = String(this.panels.children.length + 1);
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
    for (const panel of this.sensors.values()) panel.render(now, lostAt);
    for (const panel of this.actuators.values()) panel.render(now, lostAt);
    this.world?.render(now, lostAt);
    this.reflexes?.render();
    this.log.render();
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
