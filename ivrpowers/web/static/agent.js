// The agent desktop: sign in, state and pauses, offers with who is calling, calls with video.
import { showRemote, startAgent } from './sip.js';

const $ = (id) => document.getElementById(id);
const state = { agent: null, token: null, ua: null, session: null, pc: null, offers: new Map(), events: [] };
window.ivrpowers = state;  // for people debugging, and for the tests

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) } });
}

function show(name, text) {
  document.body.dataset.state = name;
  if (text) $('status').textContent = text;
  $('hangup').disabled = name !== 'in-call';
}

function showAgentState(agentState, reason) {
  $('agent-state').textContent = agentState;
  $('agent-reason').textContent = reason ? `(${reason})` : '';
  document.body.dataset.agentState = agentState;
}

function showOffer(event) {
  const customer = event.detail.customer || {};
  $('offer-channel').textContent = event.channel === 'video' ? 'video call' : event.channel === 'chat' ? 'chat' : 'call';
  $('offer-caller').textContent = [customer.name, customer.number].filter(Boolean).join(' ') || 'unknown caller';
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
    showOffer(event);
  } else if (event.kind === 'offer_ended' || event.kind === 'task_ended') {
    state.offers.delete(event.task);
    if (state.offers.size === 0) $('offer').hidden = true;
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
  show('ringing', `Ringing: ${session.remote_identity.display_name || session.remote_identity.uri.user}`);
  $('answer').disabled = false;
  $('decline').disabled = false;
  session.on('peerconnection', (e) => { state.pc = e.peerconnection; showRemote(state.pc, $('remote')); });
  session.on('confirmed', () => {
    state.pc = session.connection;
    const local = state.pc.getSenders().map((s) => s.track).filter((t) => t && t.kind === 'video');
    $('local').srcObject = new MediaStream(local);
    $('offer').hidden = true;
    show('in-call', video ? 'In a video call' : 'In a call');
  });
  const over = (e) => {
    state.session = null;
    $('answer').disabled = true;
    $('decline').disabled = true;
    show('ready', `Call ended (${e.cause})`);
  };
  session.on('ended', over);
  session.on('failed', over);
  $('answer').onclick = () => {
    $('answer').disabled = true;
    session.answer({ mediaConstraints: { audio: true, video } });
    if (!state.pc) { state.pc = session.connection; showRemote(state.pc, $('remote')); }
  };
  $('decline').onclick = () => session.terminate({ status_code: 486 });
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
  state.ua.on('newRTCSession', (e) => { if (e.originator === 'remote') incoming(e.session, e.request); });
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('who').textContent = `${body.agent.name} (${body.agent.id})`;
  show('ready');
  follow();
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
