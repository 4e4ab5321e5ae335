// The wallboard: each queue's waiting callers, longest wait and agents, and every agent's state, live.
// Figures come as snapshots over /api/events (mode=stats); between snapshots the clocks tick here.
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const board = { snapshot: null, received: 0, receivedAt: 0, snapshots: 0 };
window.ivrpowers = board;  // for people debugging, and for the tests

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mmss = `${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

// Seconds since the snapshot was taken, by this browser's clock (its own and the server's may differ).
const age = () => (performance.now() - board.received) / 1000;

function fill(element, values) {
  for (const [name, value] of Object.entries(values)) {
    element.querySelector(`[data-field="${name}"]`).textContent = value;
  }
}

function tile(queue) {
  const found = document.querySelector(`.tile[data-queue="${CSS.escape(queue.queue)}"]`);
  if (found) return found;
  const made = $('queue-tile').content.firstElementChild.cloneNode(true);
  made.dataset.queue = queue.queue;
  $('queues').append(made);
  return made;
}

function renderQueues() {
  const queues = Object.values(board.snapshot.queues);
  for (const element of document.querySelectorAll('.tile')) {
    if (!(element.dataset.queue in board.snapshot.queues)) element.remove();
  }
  for (const queue of queues) {
    const element = tile(queue);
    const longest = queue.waiting ? queue.longest_wait + age() : 0;
    const day = queue.day;
    element.classList.toggle('late', queue.waiting > 0 && longest > queue.sla_seconds);
    element.dataset.waiting = queue.waiting;
    fill(element, {
      queue: queue.queue,
      waiting: queue.waiting,
      longest: queue.waiting ? clock(longest) : '–',
      ready: queue.agents.available ?? 0,
      busy: (queue.agents.busy ?? 0) + (queue.agents.reserved ?? 0),
      paused: queue.agents.paused ?? 0,
      unreachable: queue.agents.unreachable ?? 0,
      wrapup: queue.agents.wrap_up ?? 0,
      talking: queue.talking,
      answered: day.answered ?? 0,
      abandoned: day.abandoned ?? 0,
      sl: day.service_level == null ? '–' : `${Math.round(day.service_level * 100)} %`,
      asa: day.asa == null ? '–' : clock(day.asa),
    });
  }
}

function renderAgents() {
  const rows = Object.values(board.snapshot.agents).map((agent) => {
    const row = document.createElement('tr');
    row.dataset.agent = agent.agent;
    const since = agent.time_in_state == null ? '' : clock(agent.time_in_state + age());
    const state = document.createElement('span');
    state.className = `state state-${agent.state}`;
    state.textContent = agent.reason ? `${agent.state} (${agent.reason})` : agent.state;
    const cells = [agent.agent, state, since, agent.day.handled, clock(agent.day.talk_time), agent.queues.join(', ')];
    row.append(...cells.map((content) => {
      const cell = document.createElement('td');
      cell.append(content);
      return cell;
    }));
    return row;
  });
  $('agents').tBodies[0].replaceChildren(...rows);
}

function render() {
  $('clock').textContent = new Date().toLocaleTimeString();
  if (!board.snapshot) return;
  renderQueues();
  renderAgents();
}

function follow() {
  const url = new URL('/api/events?mode=stats', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, ['ivrpowers.events', `bearer.${token}`]);
  socket.addEventListener('open', () => { document.body.dataset.state = 'live'; $('link').textContent = 'live'; });
  socket.addEventListener('message', (message) => {
    const data = JSON.parse(message.data);
    if (data.kind !== 'snapshot') return;
    board.snapshot = data;
    board.received = performance.now();
    board.receivedAt = Date.now() / 1000;
    board.snapshots += 1;
    render();
  });
  socket.addEventListener('close', () => {  // the controller restarting, or the token refused
    document.body.dataset.state = 'lost';
    $('link').textContent = 'connection lost: retrying';
    setTimeout(follow, 2000);
  });
}

if (token) {
  follow();
  setInterval(render, 1000);
} else {
  $('no-token').hidden = false;
  document.body.dataset.state = 'no-token';
}
