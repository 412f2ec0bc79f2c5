// LiveStream is the websocket of one login (or "*", the firehose): it
// connects, reconnects by itself with backoff, and resumes from the last seq
// it saw, so a reconnection neither loses nor repeats an event (the server
// replays what was missed; anything at or below the cursor is dropped here
// as well, as a belt to the server's braces).

// Backoff between attempts: from minDelay doubling to maxDelay, with jitter
// so that a restarted server is not hit by every page at the same instant.
const minDelay = 500;
const maxDelay = 10000;
// Our own keepalive: the server's pings are invisible to scripts, and a
// dead connection (laptop asleep, NAT timeout) may otherwise look open for
// minutes. Silence past deadAfter closes it, and the reconnect resumes.
const pingEvery = 20000;
const deadAfter = 50000;

export class LiveStream {
  /**
   * handlers: onSnapshot(msg, {first, reset, truncated, missed}), onEvent(ev, state),
   * onState(state), onWatch(view), onOutage(outage), onStatus({state, retryIn, downSince, reason}).
   */
  constructor(login, handlers) {
    this.login = login;
    this.h = handlers;
    this.since = null; // resume cursor: the highest seq seen
    this.ws = null;
    this.attempts = 0;
    this.retryAt = 0;
    this.timer = 0;
    this.pinger = 0;
    this.lastMessage = 0;
    this.downSince = null;
    this.stopped = false;
    this.kick = () => this.reconnectNow();
    this.onVisible = () => { if (document.visibilityState === "visible") this.reconnectNow(); };
  }

  start() {
    window.addEventListener("online", this.kick);
    document.addEventListener("visibilitychange", this.onVisible);
    this.pinger = setInterval(() => this.keepalive(), pingEvery);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    window.removeEventListener("online", this.kick);
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }

  /** reconnectNow skips the wait when the stream is down. */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  status(state, extra = {}) {
    this.h.onStatus?.({ state, downSince: this.downSince, ...extra });
  }

  connect() {
    const u = new URL("ws", location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.hash = "";
    u.search = "";
    u.searchParams.set("login", this.login);
    if (this.since !== null) u.searchParams.set("since", String(this.since));
    this.status("connecting");
    let ws;
    try {
      ws = new WebSocket(u);
    } catch (e) {
      this.retry(String(e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => { this.lastMessage = Date.now(); };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      this.lastMessage = Date.now();
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      this.dispatch(msg);
    };
    ws.onclose = (e) => {
      if (this.stopped || this.ws !== ws) return;
      this.ws = null;
      // 1013: the server cut us off for being slow; come straight back.
      if (e.code === 1013) this.attempts = 0;
      this.retry(e.reason);
    };
  }

  retry(reason) {
    if (this.downSince === null) this.downSince = new Date();
    const delay = Math.min(maxDelay, minDelay * 2 ** this.attempts) * (0.6 + Math.random() * 0.4);
    this.attempts++;
    this.retryAt = Date.now() + delay;
    this.status("down", { retryAt: this.retryAt, reason });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  keepalive() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastMessage > deadAfter) {
      // Silent for too long: treat it as gone. onclose will not come from
      // a dead TCP connection soon, so detach and retry now.
      this.ws = null;
      ws.close();
      this.retry("timeout");
      return;
    }
    ws.send('{"type":"ping"}');
  }

  dispatch(msg) {
    switch (msg.type) {
      case "snapshot": {
        const first = this.since === null;
        const reset = !!msg.reset;
        if (reset) this.since = null;
        const cursor = this.since ?? 0;
        const events = (msg.events ?? []).filter((ev) => typeof ev?.seq === "number" && ev.seq > cursor);
        for (const ev of events) this.since = Math.max(this.since ?? 0, ev.seq);
        this.since = Math.max(this.since ?? 0, msg.seq ?? 0);
        const wasDown = this.downSince !== null;
        this.attempts = 0;
        this.downSince = null;
        this.h.onSnapshot?.({ ...msg, events }, { first, reset, truncated: !!msg.truncated, missed: wasDown && !first && !reset ? events.length : null });
        this.status("live", { recovered: wasDown && !first });
        break;
      }
      case "event": {
        const ev = msg.event;
        if (typeof ev?.seq !== "number" || this.since === null || ev.seq <= this.since) {
          if (msg.state) this.h.onState?.(msg.state);
          return;
        }
        this.since = ev.seq;
        this.h.onEvent?.(ev, msg.state);
        break;
      }
      case "state":
        if (msg.state) this.h.onState?.(msg.state);
        break;
      case "watch":
        if (msg.watch) this.h.onWatch?.(msg.watch);
        break;
      case "outage":
        if (msg.outage) this.h.onOutage?.(msg.outage);
        break;
    }
  }
}
