// What the pages share about SIP over websocket: where Asterisk is, a user agent for an account,
// and the remote media of a session. JsSIP is the global the vendored bundle defines.

export function sipServer() {
  const meta = document.querySelector('meta[name="ivrpowers-sip"]');
  return { websocket: meta.content, domain: meta.dataset.domain };
}

// A user agent for `user`; resolves once its websocket is up (and, with `register`, registered).
export function startAgent(user, password, { register = false } = {}) {
  const server = sipServer();
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(server.websocket)],
    uri: `sip:${user}@${server.domain}`,
    password,
    register,
    session_timers: false,
  });
  return new Promise((resolve, reject) => {
    const ready = register ? 'registered' : 'connected';
    ua.on(ready, () => resolve(ua));
    ua.on('registrationFailed', (e) => reject(new Error(`registration failed: ${e.cause}`)));
    ua.on('disconnected', () => reject(new Error(`no SIP websocket at ${server.websocket}`)));
    ua.start();
  });
}

// Only `codec` (vp8, h264) in the offer's video: the caller's choice, or a test's.
export function preferVideoCodec(sdp, codec) {
  if (!codec) return sdp;
  const sections = sdp.split(/(?=\r\nm=)/);
  return sections.map((section) => {
    if (!section.startsWith('\r\nm=video')) return section;
    const lines = section.split('\r\n');
    const rtpmap = new Map();
    for (const line of lines) {
      const m = /^a=rtpmap:(\d+) ([^/]+)/.exec(line);
      if (m) rtpmap.set(m[1], m[2].toLowerCase());
    }
    const keep = new Set([...rtpmap].filter(([, name]) => name === codec).map(([pt]) => pt));
    for (const line of lines) {  // retransmissions of a kept payload
      const m = /^a=fmtp:(\d+) apt=(\d+)/.exec(line);
      if (m && keep.has(m[2])) keep.add(m[1]);
    }
    if (keep.size === 0) return section;
    return lines.filter((line) => {
      const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)/.exec(line);
      return !m || keep.has(m[1]);
    }).map((line) => {
      if (!line.startsWith('m=video')) return line;
      const parts = line.split(' ');
      return [...parts.slice(0, 3), ...parts.slice(3).filter((pt) => keep.has(pt))].join(' ');
    }).join('\r\n');
  }).join('');
}

// The remote stream of a session's peer connection, as tracks arrive. A later video track (the
// agent's picture, which a video bridge sends on a stream of its own) takes the place of the one
// shown before (the IVR's and the hold's).
export function showRemote(pc, video) {
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.addEventListener('track', (event) => {
    if (event.track.kind === 'video') {
      for (const old of stream.getVideoTracks()) stream.removeTrack(old);
    }
    stream.addTrack(event.track);
    video.play().catch(() => {});
  });
  return stream;
}
