// Measures what a page receives and shows, for the e2e tests (tests/e2e/probe.py calls it).
// Installed in every page before the page's own scripts (Playwright add_init_script): it records every
// RTCPeerConnection the page creates (JsSIP's included), so their stats need no help from the page.
(() => {
  if (window.__probe) return;
  const pcs = [];
  const Native = window.RTCPeerConnection;
  if (Native) {
    class Tracked extends Native {
      constructor(...args) {
        super(...args);
        pcs.push(this);
      }
    }
    window.RTCPeerConnection = Tracked;
  }

  function video(selector) {
    const el = document.querySelector(selector);
    if (!(el instanceof HTMLVideoElement)) throw new Error(`no <video> matches ${selector}`);
    return el;
  }

  // Every peer connection's state, in order of creation.
  function connections() {
    return pcs.map((pc, index) => ({index, connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState, signalingState: pc.signalingState}));
  }

  // One entry per received video stream (an SFU call has several on one connection).
  async function inboundVideo() {
    const out = [];
    for (const [index, pc] of pcs.entries()) {
      if (pc.connectionState === 'closed') continue; // getStats() throws on a closed connection
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        const codec = s.codecId ? report.get(s.codecId) : undefined;
        out.push({
          pc: index, mid: s.mid ?? null, ssrc: s.ssrc, trackIdentifier: s.trackIdentifier ?? null,
          framesReceived: s.framesReceived ?? 0, framesDecoded: s.framesDecoded ?? 0,
          keyFramesDecoded: s.keyFramesDecoded ?? 0, framesDropped: s.framesDropped ?? 0,
          frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0, framesPerSecond: s.framesPerSecond ?? 0,
          packetsReceived: s.packetsReceived ?? 0, packetsLost: s.packetsLost ?? 0, nackCount: s.nackCount ?? 0,
          pliCount: s.pliCount ?? 0, firCount: s.firCount ?? 0, freezeCount: s.freezeCount ?? 0,
          totalFreezesDuration: s.totalFreezesDuration ?? 0,
          decoderImplementation: s.decoderImplementation ?? null,
          mimeType: codec?.mimeType ?? null, sdpFmtpLine: codec?.sdpFmtpLine ?? null,
        });
      });
    }
    return out;
  }

  // Average colour of a region of the picture a <video> shows now; region = [x, y, w, h] as fractions of
  // the picture. null until the element has a picture.
  const sampler = document.createElement('canvas');
  function sample(selector, region) {
    const v = video(selector);
    if (v.readyState < 2 || !v.videoWidth) return null;
    const [w, h] = [v.videoWidth, v.videoHeight];
    sampler.width = w;
    sampler.height = h;
    const ctx = sampler.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(v, 0, 0, w, h);
    const [fx, fy, fw, fh] = region;
    const x = Math.floor(fx * w), y = Math.floor(fy * h);
    const data = ctx.getImageData(x, y, Math.max(1, Math.floor(fw * w)), Math.max(1, Math.floor(fh * h))).data;
    let [r, g, b] = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) {
      r += data[i];
      g += data[i + 1];
      b += data[i + 2];
    }
    const n = data.length / 4;
    return {r: r / n, g: g / n, b: b / n, width: w, height: h};
  }

  // Freeze meter: on every frame the element presents (requestVideoFrameCallback; the element must be
  // rendered), a small copy of the picture is hashed. A change of hash is a new picture; the meter keeps
  // the longest time between two, counting the time since the last change as well (an ongoing freeze).
  const meters = new Map();
  function startMeter(selector) {
    const v = video(selector);
    const m = {start: performance.now(), firstChange: null, lastChange: null, lastHash: null, longest: 0,
      changes: 0, frames: 0, stopped: false};
    const small = document.createElement('canvas');
    [small.width, small.height] = [64, 48];
    const ctx = small.getContext('2d', {willReadFrequently: true});
    const onFrame = () => {
      if (m.stopped) return;
      m.frames++;
      ctx.drawImage(v, 0, 0, small.width, small.height);
      const data = ctx.getImageData(0, 0, small.width, small.height).data;
      let hash = 0x811c9dc5;
      for (let i = 0; i < data.length; i += 4) {
        hash = Math.imul(hash ^ data[i] ^ (data[i + 1] << 8) ^ (data[i + 2] << 16), 16777619);
      }
      const now = performance.now();
      if (hash !== m.lastHash) {
        if (m.lastChange === null) m.firstChange = now - m.start;
        else m.longest = Math.max(m.longest, now - m.lastChange);
        m.lastChange = now;
        m.lastHash = hash;
        m.changes++;
      }
      v.requestVideoFrameCallback(onFrame);
    };
    meters.get(selector)?.stop();
    m.stop = () => { m.stopped = true; };
    meters.set(selector, m);
    v.requestVideoFrameCallback(onFrame);
  }

  function meterReport(selector) {
    const m = meters.get(selector);
    if (!m) throw new Error(`no freeze meter on ${selector}`);
    const now = performance.now();
    const current = m.lastChange === null ? null : now - m.lastChange;
    return {elapsedMs: now - m.start, firstChangeMs: m.firstChange, changes: m.changes, frames: m.frames,
      currentGapMs: current, longestGapMs: current === null ? now - m.start : Math.max(m.longest, current)};
  }

  window.__probe = {pcs, connections, inboundVideo, sample, startMeter, meterReport};
})();
