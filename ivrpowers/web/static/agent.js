// The agent desktop: sign in, state and pauses, offers with who is calling, calls with video, and
// chats (several at once, as many as the agent's chat capacity lets the router offer).
import { startRecording } from './recorder.js';
import { showRemote, startAgent } from './sip.js';
import { mountSupervisor } from './supervisor.js';

const $ = (id) => document.getElementById(id);
const state = {
  agent: null, token: null, ua: null, session: null, pc: null, events: [],
  recording: null, recordings: [],  // the call being recorded; what came of those sent
  offers: new Map(),  // task -> its task_offered event, until the offer ends
  shown: null,  // the task the offer card shows
  callButtons: null,  // what Answer and Decline do for the call ringing the browser now
  chats: new Map(),  // chat id -> its panel, socket and status
};
window.ivrpowers = state;  // for people debugging, and for the tests

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) } });
}

function show(name, text) {
  document.body.dataset.state = name;
  if (text) $('status').textContent = text;
  $('hangup').disabled = name !== 'in-call';
  $('hold').disabled = name !== 'in-call';
  $('transfer').disabled = name !== 'in-call';
  if (name !== 'in-call') showHeld(false, false);
}

function showAgentState(agentState, reason) {
  $('agent-state').textContent = agentState;
  $('agent-reason').textContent = reason ? `(${reason})` : '';
  document.body.dataset.agentState = agentState;
}

// The card shows a call's offer while one rings (the phone rings too), else the newest chat's.
function refreshOffer() {
  const offers = [...state.offers.values()];
  const next = offers.filter((o) => o.channel !== 'chat').pop() || offers.pop();
  if (next) showOffer(next);
  else {
    state.shown = null;
    $('offer').hidden = true;
  }
}

function showOffer(event) {
  const customer = event.detail.customer || {};
  const isChat = event.channel === 'chat';
  state.shown = event.task;
  $('offer').dataset.channel = event.channel;
  $('offer-channel').textContent = event.channel === 'video' ? 'video call' : isChat ? 'chat' : 'call';
  $('offer-caller').textContent = [customer.name, customer.number].filter(Boolean).join(' ') ||
    (isChat ? nameOf(event.task) : 'unknown caller');
  $('offer-queue').textContent = event.queue;
  const joined = event.detail.joined;
  $('offer-wait').textContent = joined ? `${Math.round(event.at - joined)} s` : '–';
  const table = $('offer-vars');
  table.replaceChildren(...Object.entries(customer.vars || {}).map(([key, value]) => {
    const row = document.createElement('tr');
    for (const text of [key, String(value)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  $('offer').hidden = false;
  $('answer').textContent = isChat ? 'Accept' : 'Answer';
  if (isChat) {
    $('answer').onclick = () => acceptChat(event.task);
    $('decline').onclick = () => declineChat(event.task);
    $('answer').disabled = $('decline').disabled = false;
  } else {
    wireCall();
  }
}

// Answer and Decline for the call ringing the browser, unless the card shows a chat's offer.
function wireCall() {
  const call = state.callButtons;
  if (state.shown !== null && $('offer').dataset.channel === 'chat') return;
  $('answer').onclick = call && call.answer;
  $('decline').onclick = call && call.decline;
  $('answer').disabled = !call || call.answered;
  $('decline').disabled = !call;
}

function onEvent(event) {
  state.events.push(event);
  if (event.kind === 'snapshot') {
    const mine = event.agents[state.agent.id];
    if (mine) showAgentState(mine.state, mine.reason);
  } else if (event.kind === 'agent_state') {
    showAgentState(event.detail.new, event.detail.reason);
  } else if (event.kind === 'task_offered') {
    state.offers.set(event.task, event);
    refreshOffer();
  } else if (event.kind === 'offer_ended' || event.kind === 'task_ended') {
    state.offers.delete(event.task);
    refreshOffer();
  }
}

function follow() {
  const url = new URL('/api/events', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, ['ivrpowers.events', `bearer.${state.token}`]);
  socket.addEventListener('message', (message) => onEvent(JSON.parse(message.data)));
  socket.addEventListener('close', () => setTimeout(follow, 2000));  // the controller restarting
}

// Whether the offer (the INVITE the ACD rang this agent with) carries video.
function hasVideo(invite) {
  return Boolean(invite && invite.body && /\r\nm=video [1-9]/.test(invite.body));
}

function incoming(session, invite) {
  if (state.session) {  // one call at a time: the router never offers a second
    session.terminate({ status_code: 486 });
    return;
  }
  state.session = session;
  const video = hasVideo(invite);
  // The queue records its calls: this page records a video call's pictures, for this call.
  const callId = invite && invite.getHeader('X-Ivrpowers-Call');
  const record = video && callId && invite.getHeader('X-Ivrpowers-Record') === 'yes';
  show('ringing', `Ringing: ${session.remote_identity.display_name || session.remote_identity.uri.user}`);
  session.on('peerconnection', (e) => { state.pc = e.peerconnection; showRemote(state.pc, $('remote')); });
  session.on('confirmed', () => {
    state.pc = session.connection;
    const local = state.pc.getSenders().map((s) => s.track).filter((t) => t && t.kind === 'video');
    $('local').srcObject = new MediaStream(local);
    $('offer').hidden = true;
    show('in-call', video ? 'In a video call' : 'In a call');
    if (record) {
      state.recording = startRecording(state.pc, $('remote'), $('local'));
      $('recording').hidden = false;
    }
  });
  const over = (e) => {
    if (state.recording) sendRecording(state.recording, callId);
    state.recording = null;
    $('recording').hidden = true;
    state.session = null;
    state.callButtons = null;
    wireCall();
    show('ready', `Call ended (${e.cause})`);
  };
  session.on('ended', over);
  session.on('failed', over);
  const call = {
    answered: false,
    answer: () => {
      call.answered = true;
      $('answer').disabled = true;
      session.answer({ mediaConstraints: { audio: true, video } });
      if (!state.pc) { state.pc = session.connection; showRemote(state.pc, $('remote')); }
    },
    decline: () => session.terminate({ status_code: 486 }),
  };
  state.callButtons = call;
  wireCall();
}

// The recording of the call that just ended, to the controller (it makes the MP4 and links it to the
// call's record); what came of it stays in `state.recordings` and the status line.
async function sendRecording(recording, callId) {
  const blob = await recording.stop();
  const answer = await api(`/api/agents/${state.agent.id}/recordings/${callId}`, {
    method: 'POST', headers: { 'Content-Type': 'video/webm' }, body: blob,
  });
  const body = await answer.json().catch(() => ({}));
  state.recordings.push({ call: callId, status: answer.status, ...body });
  $('status').textContent = answer.ok ? `Call recorded (${body.name})` : `Recording not saved: ${body.error}`;
}

async function signIn(event) {
  event.preventDefault();
  $('signin-error').textContent = '';
  const answer = await fetch('/api/agent/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent: $('agent').value, password: $('password').value }),
  });
  const body = await answer.json();
  if (!answer.ok) {
    $('signin-error').textContent = body.error;
    return;
  }
  state.token = body.token;
  state.agent = body.agent;
  try {
    state.ua = await startAgent(body.sip.user, $('password').value, { register: true });
  } catch (error) {
    $('signin-error').textContent = String(error.message || error);
    return;
  }
  state.ua.on('newRTCSession', (e) => {
    // A supervision call (this agent is a supervisor and asked for it) is the Supervise panel's.
    if (e.originator === 'remote' && !(state.supervisor && state.supervisor.takes(e.session, e.request))) {
      incoming(e.session, e.request);
    }
  });
  $('signin').hidden = true;
  $('desk').hidden = false;
  loadQueues();
  $('who').textContent = `${body.agent.name} (${body.agent.id})`;
  show('ready');
  follow();
  loadChats();
  // Only a supervisor asks for the list (anyone else would get a 403 in the console).
  state.supervisor = body.agent.supervisor ? await mountSupervisor(api, $('supervise')) : null;
}

async function act(action, body) {
  const answer = await api(`/api/agents/${state.agent.id}/${action}`, body ? {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  } : { method: 'POST' });
  if (!answer.ok) $('status').textContent = (await answer.json()).error;
}

$('signin').addEventListener('submit', signIn);
$('ready').addEventListener('click', async () => {
  await act(document.body.dataset.agentState === 'logged_out' ? 'login' : 'unpause');
});
$('pause').addEventListener('click', () => act('pause', { reason: $('pause-reason').value }));
$('end-wrap-up').addEventListener('click', () => act('end-wrap-up'));
$('logout').addEventListener('click', () => act('logout'));
$('hangup').addEventListener('click', () => state.session && state.session.terminate());
$('hold').addEventListener('click', async () => {
  const hold = document.body.dataset.held !== 'yes';
  const answer = await api(`/api/agents/${state.agent.id}/call/${hold ? 'hold' : 'unhold'}`, { method: 'POST' });
  const body = await answer.json();
  if (answer.ok) showHeld(body.held);
  else $('status').textContent = body.error;
});

// Send the caller to another queue: they wait there again, and this call ends here.
$('transfer').addEventListener('click', async () => {
  const queue = $('transfer-queue').value;
  const answer = await api(`/api/agents/${state.agent.id}/call/transfer`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ queue }),
  });
  const body = await answer.json();
  $('status').textContent = answer.ok ? `Transferred to ${body.transferred_to}` : body.error;
});

async function loadQueues() {
  const answer = await api('/api/queues');
  if (!answer.ok) return;
  $('transfer-queue').replaceChildren(...(await answer.json()).map((queue) => {
    const option = document.createElement('option');
    option.value = option.textContent = queue.name;
    return option;
  }));
}

// The caller on hold (they get the queue's hold; this side hears nothing), or back.
function showHeld(held, say = true) {
  document.body.dataset.held = held ? 'yes' : 'no';
  $('hold').textContent = held ? 'Take back' : 'Hold';
  if (say) $('status').textContent = held ? 'Caller on hold' : 'In a call';
}

// -- chats ------------------------------------------------------------------------------------
// An offer's customer is named by the agent's chat list (the offer event carries no name for chats);
// an accepted chat gets a panel, followed over the agent's own chat websocket (its token, as a
// `bearer.` subprotocol) and written in over it.
const names = new Map();  // chat id -> the customer's name

function nameOf(chatId) {
  if (!names.has(chatId)) {
    names.set(chatId, 'a customer');
    myChats().then(() => {
      if (state.shown === chatId) $('offer-caller').textContent = names.get(chatId);
    });
  }
  return names.get(chatId);
}

async function myChats() {
  const answer = await api(`/api/agents/${state.agent.id}/chats`);
  if (!answer.ok) return { offered: [], active: [] };
  const mine = await answer.json();
  for (const chat of [...mine.offered, ...mine.active]) names.set(chat.id, chat.customer_name);
  return mine;
}

// After signing in (again): the chats this agent holds, and those offered to it now.
async function loadChats() {
  const mine = await myChats();
  for (const chat of mine.active) openChat(chat);
  for (const chat of mine.offered) {
    if (state.offers.has(chat.id)) continue;
    const joined = Date.parse(chat.created_at) / 1000;
    state.offers.set(chat.id, { kind: 'task_offered', task: chat.id, channel: 'chat', queue: chat.queue,
      at: Date.now() / 1000, detail: { joined } });
  }
  refreshOffer();
}

async function acceptChat(chatId) {
  $('answer').disabled = $('decline').disabled = true;
  const answer = await api(`/api/agents/${state.agent.id}/chats/${chatId}/accept`, { method: 'POST' });
  const body = await answer.json();
  state.offers.delete(chatId);
  refreshOffer();
  if (answer.ok) openChat(body);
  else $('status').textContent = body.error;
}

async function declineChat(chatId) {
  $('answer').disabled = $('decline').disabled = true;
  const answer = await api(`/api/agents/${state.agent.id}/chats/${chatId}/decline`, { method: 'POST' });
  state.offers.delete(chatId);
  refreshOffer();
  if (!answer.ok) $('status').textContent = (await answer.json()).error;
}

function openChat(chat) {
  if (state.chats.has(chat.id)) return;
  const panel = $('chat-template').content.firstElementChild.cloneNode(true);
  panel.dataset.chat = chat.id;
  panel.querySelector('.chat-customer').textContent = chat.customer_name;
  panel.querySelector('.chat-queue').textContent = chat.queue;
  const entry = { id: chat.id, customer: chat.customer_name, panel, socket: null, last: 0, status: chat.status };
  state.chats.set(chat.id, entry);
  panel.querySelector('.chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendChat(entry);
  });
  panel.querySelector('.chat-close').addEventListener('click', () => closeChat(entry));
  $('chats').append(panel);
  chatStatus(entry, chat.status);
  followChat(entry);
}

function followChat(entry) {
  const url = new URL(`/api/agents/${state.agent.id}/chats/${entry.id}/ws`, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (entry.last) url.searchParams.set('after', entry.last);
  const socket = new WebSocket(url, ['ivrpowers.chat', `bearer.${state.token}`]);
  entry.socket = socket;
  socket.addEventListener('message', (message) => {
    if (entry.socket === socket) onChatEvent(entry, JSON.parse(message.data));
  });
  socket.addEventListener('close', () => {
    if (entry.socket !== socket) return;
    entry.socket = null;
    if (entry.status === 'active') setTimeout(() => {  // the controller restarting
      if (entry.socket === null && entry.status === 'active' && state.chats.get(entry.id) === entry) followChat(entry);
    }, 2000);
  });
}

function onChatEvent(entry, event) {
  if (event.type === 'message' && event.id > entry.last) {
    entry.last = event.id;
    const line = document.createElement('li');
    line.dataset.sender = event.sender;
    line.dataset.id = event.id;
    const who = { customer: entry.customer, agent: event.agent === state.agent.id ? 'You' : event.agent }[event.sender];
    if (who) {
      const label = document.createElement('b');
      label.textContent = `${who}: `;
      line.append(label);
    }
    line.append(event.text);  // text, never markup
    entry.panel.querySelector('.transcript').append(line);
    line.scrollIntoView({ block: 'nearest' });
  } else if (event.type === 'status') {
    chatStatus(entry, event.status);
  } else if (event.type === 'error') {
    entry.panel.querySelector('.chat-error').textContent = event.error;
  }
}

function chatStatus(entry, status) {
  entry.status = status;
  entry.panel.dataset.status = status;
  entry.panel.querySelector('.chat-status').textContent = { closed: 'ended', waiting: 'back in the queue' }[status] || '';
  const open = status === 'active';
  entry.panel.querySelector('.chat-text').disabled = !open;
  entry.panel.querySelector('.chat-send').disabled = !open;
  entry.panel.querySelector('.chat-close').textContent = open ? 'Close chat' : 'Dismiss';
}

function sendChat(entry) {
  const input = entry.panel.querySelector('.chat-text');
  if (!input.value.trim()) return;
  const error = entry.panel.querySelector('.chat-error');
  if (!entry.socket || entry.socket.readyState !== WebSocket.OPEN) {
    error.textContent = 'Not connected to the chat: try again in a moment.';
    return;
  }
  error.textContent = '';
  entry.socket.send(JSON.stringify({ type: 'message', text: input.value }));
  input.value = '';  // the line comes back over the socket, in its place
}

async function closeChat(entry) {
  if (entry.status !== 'active') {  // ended: Dismiss takes the panel away
    state.chats.delete(entry.id);
    const socket = entry.socket;
    entry.socket = null;
    if (socket) socket.close();
    entry.panel.remove();
    return;
  }
  const answer = await api(`/api/agents/${state.agent.id}/chats/${entry.id}/close`, { method: 'POST' });
  if (!answer.ok) entry.panel.querySelector('.chat-error').textContent = (await answer.json()).error;
}
