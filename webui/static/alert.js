// Telling the agent a watch ended while they look at another window: a
// short beep made with WebAudio (no sound file), a browser notification
// when allowed, and the tab's title.
//
// Browsers let a page make sound and ask for notifications only after a
// user gesture, so prepare() is called from the "watch" button's click.
// Notifications also need a secure context (https, or http on localhost):
// on plain http over the LAN the beep and the title are what is left.

let audio = null;

export function prepare() {
  try {
    audio ??= new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch { /* no WebAudio: no beep */ }
  if ("Notification" in window && Notification.permission === "default") {
    try { Notification.requestPermission().catch(() => {}); } catch { /* old API */ }
  }
}

/** beep plays a rising pair of tones for good news, a falling triple otherwise. */
export function beep(good) {
  if (!audio) return false;
  const notes = good ? [660, 990] : [520, 390, 290];
  const t0 = audio.currentTime + 0.02;
  notes.forEach((f, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = f;
    const at = t0 + i * 0.2;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.2);
  });
  return true;
}

/** notify shows a system notification when the agent allowed them. */
export function notify(title, body, tag) {
  if (!("Notification" in window) || Notification.permission !== "granted") return false;
  try {
    const n = new Notification(title, { body, tag });
    n.onclick = () => { window.focus(); n.close(); };
    return true;
  } catch {
    return false;
  }
}

let baseTitle = "";

/** flagTitle prefixes the tab's title until the page is looked at again. */
export function flagTitle(text) {
  if (document.hasFocus() && document.visibilityState === "visible") return;
  baseTitle ||= document.title;
  document.title = "● " + text + " — " + baseTitle;
  const restore = () => {
    document.title = baseTitle;
    baseTitle = "";
    window.removeEventListener("focus", restore);
  };
  window.addEventListener("focus", restore);
}
