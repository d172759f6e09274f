// Scan page (issue 6): camera (native BarcodeDetector, else the vendored
// polyfill loaded lazily), USB scanner (types the code + Enter), offline
// queue in IndexedDB synced with each scan's idempotency key.
// Loaded as a module; no inline script (CSP).
const root = document.getElementById("scan");
const form = document.getElementById("scan-form");
const input = document.getElementById("scan-code");
const keyField = document.getElementById("scan-key");
const channel = document.getElementById("scan-channel");
const auto = document.getElementById("scan-auto");
const batch = document.getElementById("scan-batch");
const result = document.getElementById("scan-result");
const batchList = document.getElementById("scan-batch-results");
const offlineStatus = document.getElementById("scan-offline");
const btnTest = document.getElementById("btn-test");
const btnConsume = document.getElementById("btn-consume");
const consumeUrl = btnConsume.getAttribute("hx-post");

function newKey() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
}
function csrfToken() { return form.querySelector("input[name=csrf_token]").value; }

// ---------------------------------------------------------------- submit
function submit(viaCamera) {
  channel.value = viaCamera ? "camera" : "douchette";
  (auto.checked ? btnConsume : btnTest).click();
}
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); if (input.value.trim()) submit(false); }
});
// Manual entry: Enter in the number goes on to the verification code; Enter in
// the code sends like the code field does (« Valider dès la lecture » honoured),
// instead of the browser's implicit submission, which always means « Tester ».
const serialField = document.getElementById("scan-serial");
const vcodeField = document.getElementById("scan-vcode");
serialField.addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); vcodeField.focus(); }
});
vcodeField.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  event.preventDefault();
  if (serialField.value.trim() && vcodeField.value.trim()) submit(false);
  else serialField.focus();
});

document.body.addEventListener("htmx:beforeRequest", (event) => {
  const path = event.detail.requestConfig && event.detail.requestConfig.path;
  if (path === consumeUrl && !navigator.onLine) {
    event.preventDefault();
    enqueue();
  }
});
document.body.addEventListener("htmx:sendError", (event) => {
  if (event.detail.requestConfig && event.detail.requestConfig.path === consumeUrl) enqueue();
});
document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.target !== result) return;
  const path = event.detail.requestConfig && event.detail.requestConfig.path;
  if (path === consumeUrl) {   // ready for the next pass
    keyField.value = newKey(); input.value = ""; serialField.value = ""; vcodeField.value = "";
  }
  if (batch.checked) addToBatch(result.innerHTML);
  input.focus();
});
batch.addEventListener("change", () => { batchList.hidden = !batch.checked; });
const service = document.getElementById("scan-service");
if (service) {
  service.addEventListener("change", () => {
    document.querySelectorAll(".mirror-service").forEach((el) => { el.value = service.value; });
  });
}

function addToBatch(html) {
  const box = document.createElement("div");
  box.innerHTML = html;
  const ok = box.querySelector(".scan-ok");
  const text = Array.from(box.querySelectorAll("p")).slice(0, 3).map((p) => p.textContent.trim()).join(" — ");
  if (!text) return;
  const item = document.createElement("li");
  item.className = ok ? "ok" : "ko";
  item.textContent = text;
  batchList.prepend(item);
}

// ---------------------------------------------------------------- offline queue
const DB_NAME = "pass-numerique-scans";
function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore("queue", { keyPath: "idempotency_key" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
async function store(mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("queue", mode);
    const out = fn(tx.objectStore("queue"));
    tx.oncomplete = () => resolve(out && out.result);
    tx.onerror = () => reject(tx.error);
  });
}
async function enqueue() {
  const data = Object.fromEntries(new FormData(form).entries());
  if (!data.code && !data.serial) return;
  data.occurred_at = new Date().toISOString();
  data.channel = "hors_ligne";
  delete data.csrf_token;
  await store("readwrite", (s) => s.put(data));
  keyField.value = newKey();
  input.value = ""; serialField.value = ""; vcodeField.value = "";
  result.innerHTML = "";
  const p = document.createElement("p");
  p.className = "scan-big";
  p.textContent = "Hors ligne : scan mis en attente";
  const box = document.createElement("div");
  box.className = "scan-ko";
  box.append(p);
  result.append(box);
  showQueue();
}
async function pending() {
  try { return (await store("readonly", (s) => s.getAll())) || []; } catch { return []; }
}
async function showQueue() {
  const items = await pending();
  offlineStatus.textContent = items.length
    ? `${items.length} scan(s) en attente d'envoi : ils seront envoyés au retour du réseau.` : "";
}
let syncing = false;
async function sync() {
  if (syncing || !navigator.onLine) return;
  syncing = true;
  try {
    for (const item of await pending()) {
      const body = new URLSearchParams(item);
      body.set("csrf_token", csrfToken());
      let response;
      try {
        response = await fetch(consumeUrl, { method: "POST", body, credentials: "same-origin",
          headers: { "HX-Request": "true", "X-CSRFToken": csrfToken() } });
      } catch { break; }            // still offline: keep the queue
      if (response.status >= 500 || response.status === 401 || response.status === 400) break;
      addToBatch(await response.text());   // the server decided: show it
      batchList.hidden = false;
      await store("readwrite", (s) => s.delete(item.idempotency_key));
    }
  } finally { syncing = false; showQueue(); }
}
window.addEventListener("online", sync);
showQueue();
sync();

// ---------------------------------------------------------------- camera
const video = document.getElementById("camera-video");
const cameraStatus = document.getElementById("camera-status");
const startButton = document.getElementById("camera-start");

async function getBarcodeDetector() {
  if ("BarcodeDetector" in globalThis) {
    try {
      const formats = await globalThis.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) return globalThis.BarcodeDetector;
    } catch { /* fall through to the polyfill */ }
  }
  const wasmUrl = root.dataset.wasmUrl;
  const { BarcodeDetector, prepareZXingModule } = await import(root.dataset.polyfillUrl);
  prepareZXingModule({
    overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? wasmUrl : prefix + path) },
  });
  return BarcodeDetector;
}

// A code is submitted once while it stays in front of the camera: it is read
// again only after it has left the picture for LEFT_VIEW_MS (else a pass held
// still would be validated, then refused as "déjà utilisé" a moment later).
const LEFT_VIEW_MS = 1500;
let lastValue = "";
let lastSeenAt = 0;
async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    cameraStatus.textContent = "Caméra indisponible (il faut une connexion HTTPS) : utilisez la douchette, la saisie ou une photo.";
    return;
  }
  startButton.disabled = true;
  cameraStatus.textContent = "Démarrage de la caméra…";
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    cameraStatus.textContent = "Accès à la caméra refusé ou impossible : utilisez la douchette, la saisie ou une photo.";
    startButton.disabled = false;
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  let detector;
  try {
    const Detector = await getBarcodeDetector();
    detector = new Detector({ formats: ["qr_code"] });
  } catch {
    cameraStatus.textContent = "Lecture des QR codes impossible sur ce navigateur : envoyez une photo.";
    return;
  }
  cameraStatus.textContent = "Présentez le QR code du pass devant la caméra.";
  const loop = async () => {
    try {
      const codes = await detector.detect(video);
      const value = codes.length ? codes[0].rawValue : "";
      const now = Date.now();
      if (!value && lastValue && now - lastSeenAt > LEFT_VIEW_MS) lastValue = "";
      if (value) lastSeenAt = now;
      if (value && value !== lastValue) {
        lastValue = value;
        input.value = value;
        if (navigator.vibrate) navigator.vibrate(80);
        submit(true);
      }
    } catch { /* frame not ready */ }
    setTimeout(loop, 250);
  };
  loop();
}
startButton.addEventListener("click", startCamera);
