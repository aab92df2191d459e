'use strict';
// The drive pad: a logged-in operator drives a `drive` actuator (a two-wheel
// base) by holding a finger or the mouse on a square.  Up is forward, left
// turns left; the distance from the centre is the speed.  While held it
// sends {linear, angular} at once on every change and again every
// heartbeat; release, leaving the pad, a cancelled touch, the page losing
// focus or being hidden all send `stop`.  Closing the tab sends nothing:
// the heartbeats stop and the daemon stops the base within its hold time
// (docs/protocol.md, "Commands on the WebSocket").
//
// Its own file so the dashboard's layout can change around it: app.js only
// mounts it in a drive's card, DrivePad.mount(name, send, heartbeatMs).

const DrivePad = (() => {
  // A change smaller than this is not sent before the next heartbeat.
  const STEP = 0.02;

  function round(value) {
    return Math.round(Math.max(-1, Math.min(1, value)) * 100) / 100 || 0;
  }

  // The twist for a point on the pad: up is +linear, left is +angular.
  function twistAt(pad, event) {
    const box = pad.getBoundingClientRect();
    const half = Math.min(box.width, box.height) / 2;
    const x = (event.clientX - box.left - box.width / 2) / half;
    const y = (event.clientY - box.top - box.height / 2) / half;
    return { linear: round(-y), angular: round(-x) };
  }

  function mount(name, send, heartbeatMs) {
    const knob = document.createElement('span');
    knob.className = 'drivepad-knob';
    const pad = document.createElement('div');
    pad.className = 'drivepad';
    pad.setAttribute('role', 'application');
    pad.setAttribute('aria-label', `hold to drive ${name}: up forward, left turns left`);
    pad.dataset.driving = 'false';
    pad.append(knob);
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.className = 'manual-safe command';
    stop.textContent = 'stop';

    let twist = null; // what is being held, or null
    let timer = null;

    const command = (value) => send({ action: 'command', actuator: name, command: value });
    const show = () => {
      const { linear = 0, angular = 0 } = twist || {};
      knob.style.transform = `translate(${-angular * 250}%, ${-linear * 250}%)`;
      pad.dataset.driving = String(twist !== null);
      pad.title = twist ? `linear ${linear}, angular ${angular}` : '';
    };
    const aim = (event) => {
      const next = twistAt(pad, event);
      const moved = twist === null
        || Math.abs(next.linear - twist.linear) >= STEP
        || Math.abs(next.angular - twist.angular) >= STEP;
      twist = next;
      if (moved) command(twist);
      show();
    };
    const halt = () => {
      twist = null;
      clearInterval(timer);
      timer = null;
      show();
    };
    const release = () => {
      if (twist === null) return;
      halt();
      command('stop');
    };

    pad.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      // While the stream is down the page marks the pad disabled (app.js
      // showCommands): nothing could be sent, so nothing may look driven.
      if (pad.getAttribute('aria-disabled') === 'true') return;
      twist = null;
      aim(event);
      clearInterval(timer);
      timer = setInterval(() => { if (twist) command(twist); }, heartbeatMs);
    });
    pad.addEventListener('pointermove', (event) => { if (twist !== null) aim(event); });
    for (const type of ['pointerup', 'pointerleave', 'pointercancel']) pad.addEventListener(type, release);
    window.addEventListener('blur', release);
    document.addEventListener('visibilitychange', () => { if (document.hidden) release(); });
    stop.addEventListener('click', () => { halt(); command('stop'); });

    const box = document.createElement('div');
    box.className = 'drivepad-box';
    box.append(pad, stop);
    return box;
  }

  return { mount };
})();
