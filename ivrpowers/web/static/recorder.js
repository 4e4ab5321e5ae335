// Records a video call on the agent's page when its queue records calls (the offer's
// X-Ivrpowers-Record header): both pictures side by side (the caller's left, the agent's right) and
// the conversation's sound (the caller's and the agent's, mixed), as WebM, sent to the controller
// when the call ends. Asterisk records a bridge's audio only; the controller keeps that too.
const WIDTH = 320;
const HEIGHT = 240;
const FPS = 15;

function fit(g, video, x) {
  const scale = Math.min(WIDTH / video.videoWidth, HEIGHT / video.videoHeight);
  const w = video.videoWidth * scale;
  const h = video.videoHeight * scale;
  g.drawImage(video, x + (WIDTH - w) / 2, (HEIGHT - h) / 2, w, h);
}

export function startRecording(pc, remoteVideo, localVideo) {
  const canvas = document.createElement('canvas');
  canvas.width = 2 * WIDTH;
  canvas.height = HEIGHT;
  const g = canvas.getContext('2d');
  // A timer, not requestAnimationFrame: the recording goes on while the agent looks at another tab.
  const timer = setInterval(() => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, canvas.width, canvas.height);
    for (const [video, x] of [[remoteVideo, 0], [localVideo, WIDTH]]) {
      if (video.videoWidth) fit(g, video, x);
    }
  }, 1000 / FPS);
  const audio = new AudioContext();
  const mix = audio.createMediaStreamDestination();
  const voices = [...pc.getReceivers(), ...pc.getSenders()].map((r) => r.track).filter((t) => t && t.kind === 'audio');
  for (const track of voices) audio.createMediaStreamSource(new MediaStream([track])).connect(mix);
  const stream = new MediaStream([...canvas.captureStream(FPS).getVideoTracks(), ...mix.stream.getAudioTracks()]);
  const recorder = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8,opus' });
  const chunks = [];
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.start(1000);
  return {
    stop: () => new Promise((resolve) => {
      recorder.onstop = () => {
        clearInterval(timer);
        audio.close();
        resolve(new Blob(chunks, { type: 'video/webm' }));
      };
      recorder.stop();
    }),
  };
}
