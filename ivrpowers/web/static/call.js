// The customer's page: a voice or video call to a number, a keypad, the IVR's video full-size.
import { preferVideoCodec, showRemote, startAgent } from './sip.js';

const $ = (id) => document.getElementById(id);
const state = { ua: null, session: null, pc: null };
window.ivrpowers = state;  // for people debugging, and for the tests

function setState(name, text) {
  document.body.dataset.state = name;
  $('status').textContent = text;
  const inCall = name === 'calling' || name === 'in-call';
  $('hangup').disabled = !inCall;
  $('video-call').disabled = inCall;
  $('voice-call').disabled = inCall;
}

// Prefill from the fragment (`#user=..&password=..&number=..&codec=..`): never sent to a server.
for (const [key, value] of new URLSearchParams(location.hash.slice(1))) {
  const field = $(key);
  if (field) field.value = value;
}

async function call(video) {
  const form = $('account');
  if (!form.reportValidity()) return;
  setState('calling', 'Calling…');
  try {
    state.ua = state.ua || await startAgent($('user').value, $('password').value);
  } catch (error) {
    state.ua = null;
    setState('failed', String(error.message || error));
    return;
  }
  const codec = $('codec').value;
  state.session = state.ua.call(`sip:${$('number').value}@${state.ua.configuration.uri.host}`, {
    mediaConstraints: { audio: true, video },
    rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: video },
    eventHandlers: {
      peerconnection: (e) => {
        state.pc = e.peerconnection;
        showRemote(state.pc, $('remote'));
      },
      sdp: (e) => {
        if (e.originator === 'local' && video) e.sdp = preferVideoCodec(e.sdp, codec);
      },
      confirmed: () => {
        state.answeredAt = performance.now();
        setState('in-call', video ? 'In a video call' : 'In a call');
        const local = state.pc.getSenders().map((s) => s.track).filter(Boolean);
        $('local').srcObject = new MediaStream(local.filter((t) => t.kind === 'video'));
      },
      ended: (e) => setState('ended', `Call ended (${e.cause})`),
      failed: (e) => setState('failed', `Call failed (${e.cause})`),
    },
  });
}

$('video-call').addEventListener('click', () => call(true));
$('voice-call').addEventListener('click', () => call(false));
$('hangup').addEventListener('click', () => state.session && state.session.terminate());
$('keypad').addEventListener('click', (event) => {
  const digit = event.target.closest('button')?.textContent;
  if (digit && state.session && state.session.isEstablished()) {
    state.session.sendDTMF(digit, { transportType: $('dtmf').value });
  }
});
