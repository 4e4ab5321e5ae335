// The Supervise panel of the agent desktop, for supervisors only (the controller refuses the list to
// other agents): the conversations going on now with Listen / Whisper / Barge / Watch, and the
// supervision call itself. The controller rings this browser for it with an X-Ivrpowers-Supervise
// header: it is expected, so it is answered at once, audio only (a supervisor sends no picture:
// watching, it receives each side's on a stream of its own and shows them side by side).

const MODES = ['listen', 'whisper', 'barge', 'watch'];
const REFRESH_MS = 1500;

export async function mountSupervisor(api, panel) {
  const first = await api('/api/supervision');
  if (!first.ok) return null;  // not a supervisor
  const sv = { list: [], session: null, pc: null, call: null, mode: null, audio: null, pictures: [], errors: [] };
  panel.hidden = false;
  panel.innerHTML = `<h2>Supervise</h2>
    <table class="sv-list"><tbody></tbody></table>
    <p class="sv-status" role="status">No supervision</p>
    <div class="sv-pictures" style="display:flex;gap:.5em"></div>
    <audio class="sv-audio" autoplay></audio>
    <button class="sv-stop" type="button" hidden>Stop supervising</button>`;
  const body = panel.querySelector('tbody');
  const status = (text) => { panel.querySelector('.sv-status').textContent = text; };
  const audio = panel.querySelector('.sv-audio');
  const pictures = panel.querySelector('.sv-pictures');

  function render(list) {
    sv.list = list;
    body.replaceChildren(...list.map((c) => {
      const row = document.createElement('tr');
      Object.assign(row.dataset, { call: c.call_id, agent: c.agent, media: c.media });
      const watch = c.supervision;
      const cells = [c.agent, c.caller || 'unknown caller', c.queue, c.media,
        watch ? `${watch.mode} by ${watch.by} (${watch.status})` : ''];
      for (const text of cells) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      const actions = document.createElement('td');
      for (const mode of MODES) {
        const button = document.createElement('button');
        button.type = 'button';
        button.dataset.mode = mode;
        button.textContent = mode[0].toUpperCase() + mode.slice(1);
        button.disabled = (mode === 'watch' && c.media !== 'video') || (watch && watch.mode === mode);
        button.addEventListener('click', () => supervise(c.call_id, mode));
        actions.append(button);
      }
      row.append(actions);
      return row;
    }));
  }

  async function refresh() {
    const answer = await api('/api/supervision');
    if (answer.ok) render(await answer.json());
  }

  async function supervise(callId, mode) {
    const answer = await api(`/api/supervision/${callId}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ mode }),
    });
    const result = await answer.json();
    if (!answer.ok) {
      sv.errors.push(result.error);
      status(result.error);
      return;
    }
    sv.call = callId;
    sv.mode = mode;
    status(answer.status === 202 ? `Ringing this browser to ${mode}` : `${label(mode)} ${result.agent}'s call`);
    refresh();
  }

  function label(mode) {
    return { listen: 'Listening to', whisper: 'Whispering to', barge: 'In', watch: 'Watching' }[mode];
  }

  panel.querySelector('.sv-stop').addEventListener('click', async () => {
    if (sv.call) await api(`/api/supervision/${sv.call}`, { method: 'DELETE' });
  });

  // Remote media: the audio (both sides, mixed) to the audio element; each picture to a video of its own.
  function showMedia(pc) {
    const sound = new MediaStream();
    audio.srcObject = sound;
    pc.addEventListener('track', (event) => {
      if (event.track.kind === 'audio') {
        sound.addTrack(event.track);
        audio.play().catch(() => {});
        return;
      }
      const video = document.createElement('video');
      Object.assign(video, { autoplay: true, muted: true, playsInline: true });
      video.className = 'sv-picture';
      video.style.width = '240px';
      video.style.background = '#000';
      video.srcObject = new MediaStream([event.track]);
      pictures.append(video);
      sv.pictures.push(video);
      event.track.addEventListener('ended', () => video.remove());
      video.play().catch(() => {});
    });
  }

  function takes(session, invite) {
    if (!invite || !invite.getHeader('X-Ivrpowers-Supervise')) return false;
    if (sv.session) {
      session.terminate({ status_code: 486 });
      return true;
    }
    sv.session = session;
    sv.call = invite.getHeader('X-Ivrpowers-Supervise');
    session.on('peerconnection', (e) => { sv.pc = e.peerconnection; showMedia(sv.pc); });
    session.on('confirmed', () => {
      panel.querySelector('.sv-stop').hidden = false;
      panel.dataset.supervising = sv.call;
      status(`${label(sv.mode || 'listen')} the call`);
    });
    const over = () => {
      sv.session = null;
      sv.pc = null;
      sv.pictures = [];
      pictures.replaceChildren();
      panel.querySelector('.sv-stop').hidden = true;
      delete panel.dataset.supervising;
      status('Supervision ended');
      refresh();
    };
    session.on('ended', over);
    session.on('failed', over);
    session.answer({ mediaConstraints: { audio: true, video: false } });
    if (!sv.pc && session.connection) { sv.pc = session.connection; showMedia(sv.pc); }
    return true;
  }

  render(await first.json());
  setInterval(refresh, REFRESH_MS);
  return { state: sv, takes };
}
