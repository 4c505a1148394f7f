"""The demo's one page: phone-friendly, self-contained (inline CSS and JS, no external assets).

It shows whether the page is a secure context, asks for the microphone, draws a live level
meter, records three seconds and plays them back, and checks that Server-Sent Events and a
WebSocket work through the proxy. ``/?selftest=1`` runs the secure-context and microphone
checks without a click and POSTs the result to ``/demo/report`` (for browser tests);
``/?selftest=full`` also waits for the SSE and WebSocket checks and reports them.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>devhttps demo</title>
<style>
  :root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; }
  body { font: 17px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
         max-width: 34rem; padding: 1rem; }
  h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
  section { border: 1px solid #8884; border-radius: .8rem; padding: .8rem 1rem; margin: .8rem 0; }
  h2 { font-size: 1.05rem; margin: 0 0 .4rem; }
  button { font: inherit; padding: .7rem 1.1rem; border-radius: .6rem; border: 0; background: #0969da;
           color: #fff; margin: .3rem .3rem .3rem 0; min-height: 2.8rem; }
  button:disabled { opacity: .45; }
  .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
  .muted { color: var(--muted); font-size: .9rem; }
  #meter { height: 1.2rem; border-radius: .6rem; background: #8883; overflow: hidden; margin: .5rem 0; }
  #level { height: 100%; width: 0; background: linear-gradient(90deg, #2da44e, #bf8700, #cf222e); }
  audio { width: 100%; margin-top: .4rem; }
  pre { white-space: pre-wrap; word-break: break-all; font-size: .8rem; }
  ol { padding-left: 1.2rem; margin: .3rem 0; }
</style>
</head>
<body>
<h1>devhttps demo: does voice work here?</h1>

<section>
  <h2>Secure context</h2>
  <div id="secure"></div>
  <div class="muted" id="origin"></div>
</section>

<section>
  <h2>Microphone</h2>
  <button id="mic">Start microphone</button>
  <div id="micstate" class="muted">Not started.</div>
  <div id="meter"><div id="level"></div></div>
  <button id="rec" disabled>Record 3 s</button>
  <div id="recstate" class="muted"></div>
  <audio id="playback" controls hidden></audio>
</section>

<section>
  <h2>Streaming (Server-Sent Events)</h2>
  <div id="sse" class="muted">Waiting&hellip;</div>
  <ol id="events" class="muted"></ol>
</section>

<section>
  <h2>WebSocket</h2>
  <div id="ws" class="muted">Waiting&hellip;</div>
</section>

<pre id="result"></pre>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const say = (id, text, cls) => { const el = $(id); el.textContent = text; el.className = cls || "muted"; };
let stream = null;

function showSecure() {
  $("origin").textContent = location.origin;
  if (window.isSecureContext) {
    say("secure", "Yes: this page may use the microphone.", "ok");
  } else {
    say("secure", "No: browsers only give the microphone to https:// pages (or localhost). " +
        "Open the https:// address instead.", "bad");
  }
}

async function startMic() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("micstate", "navigator.mediaDevices is missing: not a secure context.", "bad");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    say("micstate", "Refused: " + err.name + (err.message ? " (" + err.message + ")" : ""), "bad");
    return;
  }
  const track = stream.getAudioTracks()[0];
  say("micstate", "Microphone on: " + (track ? track.label || "audio input" : "no track"), "ok");
  $("rec").disabled = typeof MediaRecorder === "undefined";
  if ($("rec").disabled) say("recstate", "This browser has no MediaRecorder.", "bad");
  meter(stream);
}

function meter(source) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  const ctx = new Ctx();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(source).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    $("level").style.width = Math.min(100, rms * 400) + "%";
    requestAnimationFrame(draw);
  };
  if (ctx.state === "suspended") ctx.resume();
  draw();
}

function record() {
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = () => {
    const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
    const audio = $("playback");
    audio.src = URL.createObjectURL(blob);
    audio.hidden = false;
    say("recstate", "Recorded " + Math.round(blob.size / 1024) + " KB: playing it back.", "ok");
    audio.play().catch(() => say("recstate", "Recorded: press play to hear it.", "ok"));
    $("rec").disabled = false;
  };
  $("rec").disabled = true;
  say("recstate", "Recording for 3 seconds\u2026");
  recorder.start();
  setTimeout(() => recorder.stop(), 3000);
}

function testSse() {
  return new Promise((resolve) => {
    const started = performance.now();
    const times = [];
    const source = new EventSource("/demo/sse?count=5&interval=0.5");
    const done = (ok, text) => { source.close(); say("sse", text, ok ? "ok" : "bad"); resolve({ ok, times }); };
    source.addEventListener("tick", (e) => {
      const at = Math.round(performance.now() - started);
      times.push(at);
      const li = document.createElement("li");
      li.textContent = "event " + JSON.parse(e.data).n + " at " + at + " ms";
      $("events").appendChild(li);
      if (times.length < 5) return;
      const spread = times[4] - times[0];
      if (spread > 1000) done(true, "Streaming works: events arrived one by one over " + spread + " ms.");
      else done(false, "Events arrived bunched together (" + spread + " ms): something buffers the stream.");
    });
    source.onerror = () => { if (times.length < 5) done(false, "The event stream failed."); };
  });
}

function testWs() {
  return new Promise((resolve) => {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/demo/ws";
    let sent = 0;
    const ws = new WebSocket(url);
    ws.onopen = () => { sent = performance.now(); ws.send("hello " + sent); };
    ws.onmessage = (e) => {
      const ms = Number((performance.now() - sent).toFixed(1));
      const ok = String(e.data) === "hello " + sent;
      say("ws", ok ? "WebSocket works: echo in " + ms + " ms." : "The WebSocket echo was wrong.", ok ? "ok" : "bad");
      ws.close();
      resolve({ ok, ms });
    };
    ws.onerror = () => { say("ws", "The WebSocket failed to open (" + url + ").", "bad"); resolve({ ok: false }); };
  });
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(Object.assign(new Error("no answer in " + ms + " ms"), { name: "Timeout" })), ms))]);
}

async function selftest(id, full) {
  const result = { id, secure: window.isSecureContext, origin: location.origin,
                   userAgent: navigator.userAgent, mediaDevices: !!navigator.mediaDevices, mic: "" };
  if (!navigator.mediaDevices) {
    result.mic = "unavailable: navigator.mediaDevices is undefined";
  } else {
    try {
      const s = await withTimeout(navigator.mediaDevices.getUserMedia({ audio: true }), 8000);
      result.mic = "ok";
      result.tracks = s.getAudioTracks().length;
      s.getTracks().forEach((t) => t.stop());
    } catch (err) {
      result.mic = "error: " + err.name;
    }
  }
  if (full) {  // also wait for the streaming and WebSocket checks (about 2.5 s)
    result.sse = await withTimeout(sseDone, 10000).catch((err) => ({ ok: false, error: err.name }));
    result.ws = await withTimeout(wsDone, 10000).catch((err) => ({ ok: false, error: err.name }));
  }
  $("result").textContent = JSON.stringify(result);
  try {
    await fetch("/demo/report", { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify(result) });
  } catch (err) { $("result").textContent += "\nreport failed: " + err; }
}

showSecure();
$("mic").onclick = startMic;
$("rec").onclick = record;
const sseDone = testSse();
const wsDone = testWs();
const mode = new URLSearchParams(location.search).get("selftest");
if (mode === "1" || mode === "full") {
  const id = Math.random().toString(36).slice(2);
  // This image answers only after the report arrived, so the load event waits for it:
  // a headless browser that exits on load (--dump-dom) has sent its report by then.
  const hold = new Image();
  hold.src = "/demo/hold?id=" + id;
  hold.hidden = true;
  document.body.appendChild(hold);
  selftest(id, mode === "full");
}
</script>
</body>
</html>
"""
