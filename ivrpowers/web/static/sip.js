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

// The remote stream of a session's peer connection, as tracks arrive. The newest video track that
// flows is shown: the agent's picture (which the conversation's bridge sends on a stream of its own)
// takes the place of the IVR's and the hold's, and when the agent's stream stops (the caller put on
// hold leaves the bridge, whose re-INVITE makes that stream inactive) the hold's shows again.
export function showRemote(pc, video) {
  const stream = new MediaStream();
  video.srcObject = stream;
  const videos = [];  // the remote video tracks, oldest first
  const pick = () => {
    const flowing = videos.filter((t) => t.readyState === 'live' && !t.muted);
    const chosen = flowing[flowing.length - 1] || videos[videos.length - 1];
    for (const old of stream.getVideoTracks()) {
      if (old !== chosen) stream.removeTrack(old);
    }
    if (chosen && !stream.getVideoTracks().includes(chosen)) stream.addTrack(chosen);
    video.play().catch(() => {});
  };
  pc.addEventListener('track', (event) => {
    const { track } = event;
    if (track.kind !== 'video') {
      stream.addTrack(track);
      video.play().catch(() => {});
      return;
    }
    videos.push(track);
    for (const change of ['mute', 'unmute', 'ended']) track.addEventListener(change, pick);
    pick();
  });
  return stream;
}
