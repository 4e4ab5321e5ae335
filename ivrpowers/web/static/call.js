// The customer's page: a voice or video call to a number, a keypad, the IVR's video full-size, and
// a chat with a queue.
import { preferVideoCodec, showRemote, startAgent } from './sip.js';

const $ = (id) => document.getElementById(id);
const state = { ua: null, session: null, pc: null };
window.ivrpowers = state;  // for people debugging, and for the tests

// In a website's frame the page tells the site how its call goes: `{source: 'ivrpowers', type:
// 'call-state', state, text}` (idle, calling, in-call, ended, failed), e.g. to resize or close it.
const framed = window.parent !== window;

function setState(name, text) {
  document.body.dataset.state = name;
  $('status').textContent = text;
  if (framed) window.parent.postMessage({ source: 'ivrpowers', type: 'call-state', state: name, text }, '*');
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
// Embedded by a site that gave the account and the number: the visitor sees the call, not the form.
if (framed) {
  document.body.dataset.embedded = 'yes';
  $('account').hidden = ['user', 'password', 'number'].every((id) => $(id).value);
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

// A page that goes away (tab closed, reloaded, left) hangs up first: Asterisk does not end a call
// whose SIP websocket closes, so a caller already gone would still wait in the queue and be offered
// to an agent. (A browser that dies without this is found by its silent audio: docs/webrtc.md.)
window.addEventListener('pagehide', () => state.ua && state.ua.stop());

$('video-call').addEventListener('click', () => call(true));
$('voice-call').addEventListener('click', () => call(false));
$('hangup').addEventListener('click', () => state.session && state.session.terminate());
$('keypad').addEventListener('click', (event) => {
  const digit = event.target.closest('button')?.textContent;
  if (digit && state.session && state.session.isEstablished()) {
    state.session.sendDTMF(digit, { transportType: $('dtmf').value });
  }
});

// Chat with the queue the fragment names (`&queue=support`; no queue, no Chat button): the page's
// account opens it (`POST /api/call/chat`), then the chat's own token follows it over its websocket
// and writes in it. Problems (no agents, no such queue, throttled) are one line under the buttons.
const chat = { id: null, token: null, socket: null, last: 0, status: 'none' };
state.chat = chat;
$('chat-open').hidden = !$('queue').value;

const CHAT_REFUSED = {
  no_agents: 'No agent can chat now: please try again later.',
  unknown_queue: 'There is no such chat queue.',
  not_chat: 'This queue takes no chats.',
};
const WHO = { customer: 'You', agent: 'Agent', system: '' };

function chatError(text) {
  $('chat-error').textContent = text || '';
}

function showChatStatus(status) {
  chat.status = status;
  $('chat').dataset.status = status;
  $('chat-status').textContent = { waiting: 'waiting for an agent', active: 'with an agent', closed: 'ended' }[status] || '';
  const open = status === 'waiting' || status === 'active';
  $('chat-text').disabled = !open;
  $('chat-send').disabled = !open;
  $('chat-leave').hidden = !open;
  $('chat-open').disabled = open;
}

function chatLine(message) {
  const line = document.createElement('li');
  line.dataset.sender = message.sender;
  line.dataset.id = message.id;
  const who = WHO[message.sender];
  if (who) {
    const label = document.createElement('b');
    label.textContent = `${who}: `;
    line.append(label);
  }
  line.append(message.text);  // text, never markup
  $('chat-log').append(line);
  line.scrollIntoView({ block: 'nearest' });
}

function onChatEvent(event) {
  if (event.type === 'message' && event.id > chat.last) {
    chat.last = event.id;
    chatLine(event);
  } else if (event.type === 'status') {
    showChatStatus(event.status);
  } else if (event.type === 'error') {
    chatError(event.error);
  }
}

function followChat() {
  const url = new URL(`/api/chats/${chat.id}/ws`, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (chat.last) url.searchParams.set('after', chat.last);  // what came while reconnecting, once
  const socket = new WebSocket(url, ['ivrpowers.chat', `bearer.${chat.token}`]);
  chat.socket = socket;
  socket.addEventListener('message', (message) => {
    if (chat.socket === socket) onChatEvent(JSON.parse(message.data));  // not an earlier chat's
  });
  socket.addEventListener('close', () => {
    if (chat.socket !== socket) return;
    chat.socket = null;
    if (chat.status !== 'closed') setTimeout(() => { if (chat.socket === null && chat.status !== 'closed') followChat(); }, 2000);
  });
}

async function chatRequest(path, body, token) {
  const headers = { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  try {
    const answer = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}) });
    const text = await answer.text();
    return { ok: answer.ok, status: answer.status, body: text ? JSON.parse(text) : {}, wait: answer.headers.get('Retry-After') };
  } catch (error) {
    return { ok: false, status: 0, body: { error: `the server did not answer (${error.message || error})` } };
  }
}

async function openChat() {
  if (!$('user').value || !$('password').value) {
    $('account').reportValidity();
    return;
  }
  chatError('');
  $('chat-open').disabled = true;
  const request = { user: $('user').value, password: $('password').value, queue: $('queue').value };
  if ($('name').value.trim()) request.name = $('name').value.trim();
  const answer = await chatRequest('/api/call/chat', request);
  if (!answer.ok) {
    $('chat-open').disabled = false;
    const refused = CHAT_REFUSED[answer.body.reason] || answer.body.error || `refused (${answer.status})`;
    chatError(answer.wait ? `${refused} (wait ${answer.wait} s)` : refused);
    return;
  }
  if (chat.socket) chat.socket.close();
  Object.assign(chat, { id: answer.body.chat_id, token: answer.body.customer_token, socket: null, last: 0 });
  $('chat-log').replaceChildren();
  $('chat-text').value = '';
  $('chat').hidden = false;
  showChatStatus('waiting');
  followChat();
  $('chat-text').focus();
}

async function sendChat(event) {
  event.preventDefault();
  const text = $('chat-text').value;
  if (!text.trim() || !chat.id) return;
  chatError('');
  const answer = await chatRequest(`/api/chats/${chat.id}/messages`, { text }, chat.token);
  if (answer.ok) {
    $('chat-text').value = '';  // the line itself comes back over the socket, in its place
  } else {
    chatError(answer.body.error || `not sent (${answer.status})`);
  }
}

async function leaveChat() {
  const answer = await chatRequest(`/api/chats/${chat.id}/leave`, {}, chat.token);
  if (answer.ok || answer.status === 409) showChatStatus('closed');  // 409: it had ended already
  else chatError(answer.body.error || `could not leave (${answer.status})`);
}

$('chat-open').addEventListener('click', openChat);
$('chat-form').addEventListener('submit', sendChat);
$('chat-leave').addEventListener('click', leaveChat);
