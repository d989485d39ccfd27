/* The room client: docs/protocol.md. Vanilla JavaScript, no build step.
 *
 * Every message body and name is written with textContent, never as HTML.
 * The socket reconnects with exponential backoff and jitter and resumes from
 * the last seq it saw; messages typed while offline wait in `outbox` and are
 * sent on reconnect with the same client_id, so the server stores them once.
 */
(function () {
  "use strict";
  var configNode = document.getElementById("room-config");
  if (!configNode) return;
  var cfg = JSON.parse(configNode.textContent);
  var T = JSON.parse(document.getElementById("room-strings").textContent);

  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), connection = $("connection"), notice = $("notice");
  var members = {};           // participant id -> {display_name, role}
  cfg.members.forEach(function (m) { members[m.id] = m; });
  var lastSeq = 0;            // highest seq shown
  var firstSeq = null;        // lowest seq shown (for "older")
  var outbox = [];            // [{client_id, body}] not yet acknowledged
  var ws = null, attempt = 0, reconnectTimer = null, pingTimer = null;
  var admitted = false, stopped = false, online = [];
  var typingTimers = {}, lastTypingSent = 0;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }
  function nameOf(ref) { return ref ? (ref.id === cfg.me ? ref.display_name + " (" + T.you + ")" : ref.display_name) : T.someone; }
  function roleOf(role) { return T["role_" + role] || role; }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function show(node, visible) { if (node) node.hidden = !visible; }
  function say(text) { notice.textContent = text; show(notice, !!text); }
  function status(text, cls) { connection.textContent = text; connection.className = "connection " + (cls || ""); }

  // --- Rendering ------------------------------------------------------------------

  function timeOf(iso) {
    var t = el("time", "muted", new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    t.dateTime = iso;
    return t;
  }

  function renderMessage(frame) {
    var li = el("li", "msg" + (frame.author && frame.author.id === cfg.me ? " mine" : ""));
    li.dataset.seq = frame.seq;
    if (frame.client_id) li.dataset.clientId = frame.client_id;
    var head = el("div", "msg-head");
    head.appendChild(el("strong", "author", nameOf(frame.author)));
    head.appendChild(el("span", "role", roleOf(frame.author && frame.author.role)));
    head.appendChild(timeOf(frame.sent_at));
    li.appendChild(head);
    li.appendChild(el("p", "body", frame.body));
    if (frame.redacted) markRedacted(li);
    else if (cfg.mediator) addRedactButton(li, frame.seq);
    return li;
  }

  function markRedacted(li) {
    var body = li.querySelector(".body");
    body.textContent = T.redacted;
    body.className = "body redacted";
    var button = li.querySelector(".redact");
    if (button) button.remove();
  }

  function addRedactButton(li, seq) {
    var button = el("button", "link redact", T.redact);
    button.type = "button";
    button.addEventListener("click", function () { send({ type: "message.redact", seq: seq }); });
    li.querySelector(".msg-head").appendChild(button);
  }

  function renderEvent(frame) {
    var li = el("li", "event");
    li.dataset.seq = frame.seq;
    var text = fill(T["kind_" + frame.kind] || frame.kind, { actor: nameOf(frame.actor), subject: nameOf(frame.subject) });
    li.appendChild(el("span", "", text + " "));
    if (frame.kind === "document" && frame.document) {
      var a = el("a", "document", frame.document.name);
      a.href = frame.document.url;
      a.setAttribute("download", "");
      li.appendChild(a);
      li.appendChild(el("span", "muted", " (" + Math.max(1, Math.round(frame.document.size / 1024)) + " KB)"));
    }
    li.appendChild(document.createTextNode(" "));
    li.appendChild(timeOf(frame.at));
    return li;
  }

  function render(frame) { return frame.type === "message" ? renderMessage(frame) : renderEvent(frame); }

  function apply(frame) {
    // Sequenced frames: drop what we have, ask for what we missed.
    if (frame.seq <= lastSeq) return;
    if (frame.seq > lastSeq + 1 && lastSeq > 0) { send({ type: "resume", after_seq: lastSeq }); return; }
    lastSeq = frame.seq;
    if (firstSeq === null) firstSeq = frame.seq;
    var pending = frame.client_id ? log.querySelector('li.pending[data-client-id="' + frame.client_id + '"]') : null;
    var node = render(frame);
    if (pending) pending.remove();
    var stick = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    log.appendChild(node);
    if (stick || (frame.author && frame.author.id === cfg.me)) log.scrollTop = log.scrollHeight;
    effects(frame);
  }

  function effects(frame) {
    if (frame.type !== "event") return;
    if (frame.kind === "redacted") {
      var target = log.querySelector('li.msg[data-seq="' + frame.target_seq + '"]');
      if (target) markRedacted(target);
    } else if (frame.kind === "locked" || frame.kind === "unlocked") {
      show($("room-lock"), frame.kind === "unlocked");
      show($("room-unlock"), frame.kind === "locked");
    } else if (frame.kind === "session_started") {
      show($("session-start"), false);
    } else if (frame.kind === "consent_given" || frame.kind === "consent_withdrawn") {
      consentChanged(frame.actor && frame.actor.id, frame.kind === "consent_given");
    }
  }

  // The transcript panel follows the consent events: each party's answer,
  // the party's own give/withdraw form, the mediator's export button.
  function consentChanged(partyId, consents) {
    var item = document.querySelector('#transcript li[data-party="' + partyId + '"]');
    if (!item) return;
    item.dataset.consents = consents ? "1" : "0";
    item.querySelector(".state").textContent = consents ? T.consents : T.not_consented;
    if (partyId === cfg.me) {
      show($("consent-give-form"), !consents);
      show($("consent-withdraw-form"), consents);
    }
    var exportButton = $("transcript-export");
    if (exportButton) {
      exportButton.disabled = Array.prototype.some.call(
        document.querySelectorAll("#transcript li[data-party]"),
        function (li) { return li.dataset.consents !== "1"; }
      );
    }
  }

  function prepend(frames) {
    var anchor = log.firstChild, before = log.scrollHeight;
    frames.forEach(function (frame) {
      if (log.querySelector('li[data-seq="' + frame.seq + '"]')) return;
      log.insertBefore(render(frame), anchor);
    });
    if (frames.length) firstSeq = Math.min(firstSeq || frames[0].seq, frames[0].seq);
    log.scrollTop += log.scrollHeight - before;
    show($("older"), firstSeq !== null && firstSeq > 1);
  }

  function renderPending(item) {
    var li = el("li", "msg mine pending");
    li.dataset.clientId = item.client_id;
    var head = el("div", "msg-head");
    head.appendChild(el("strong", "author", nameOf({ id: cfg.me, display_name: (members[cfg.me] || {}).display_name || T.you })));
    head.appendChild(el("span", "state", T.pending));
    li.appendChild(head);
    li.appendChild(el("p", "body", item.body));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function renderPresence() {
    var list = $("presence");
    list.textContent = "";
    cfg.members.forEach(function (m) {
      var li = el("li", online.indexOf(m.id) >= 0 ? "on" : "off");
      li.appendChild(el("span", "name", nameOf(m)));
      li.appendChild(el("span", "role", " · " + roleOf(m.role) + " · "));
      li.appendChild(el("span", "mark", online.indexOf(m.id) >= 0 ? T.online_mark : T.offline_mark));
      list.appendChild(li);
    });
  }

  function button(label, frame, cls) {
    var b = el("button", cls || "", label);
    b.type = "button";
    b.addEventListener("click", function () { send(frame); });
    return b;
  }

  function renderMembers(list) {
    var waiting = $("waiting");
    if (!waiting) return;
    waiting.textContent = "";
    var anyone = false;
    list.forEach(function (m) {
      members[m.id] = m;
      if (m.role === "mediator") return;
      var li = el("li", "member " + m.state);
      li.appendChild(el("span", "name", m.display_name + " · " + roleOf(m.role) + " "));
      var marks = [m.online ? T.online_mark : T.offline_mark];
      if (m.state === "waiting") marks.push(T.waiting_mark);
      if (m.state === "removed") marks.push(T.removed_mark);
      if (m.muted) marks.push(T.muted_mark);
      li.appendChild(el("span", "muted", "(" + marks.join(", ") + ") "));
      if (m.state === "waiting") {
        anyone = anyone || m.online;
        li.appendChild(button(T.admit, { type: "lobby.admit", participant: m.id }, "primary"));
        li.appendChild(button(T.decline, { type: "lobby.decline", participant: m.id }));
      } else if (m.state === "admitted") {
        li.appendChild(m.muted ? button(T.unmute, { type: "participant.unmute", participant: m.id })
                               : button(T.mute, { type: "participant.mute", participant: m.id }));
        li.appendChild(button(T.remove, { type: "participant.remove", participant: m.id }, "danger"));
      } else if (m.state === "removed" || m.state === "declined") {
        li.appendChild(button(T.readmit, { type: "lobby.admit", participant: m.id }));
      }
      waiting.appendChild(li);
    });
    if (!waiting.firstChild) waiting.appendChild(el("li", "muted", T.waiting_none));
  }

  function showTyping(participant, active) {
    var box = $("typing");
    clearTimeout(typingTimers[participant]);
    var m = members[participant];
    if (active && m) {
      box.textContent = fill(T.typing, { name: m.display_name });
      typingTimers[participant] = setTimeout(function () { box.textContent = ""; }, 6000);
    } else {
      box.textContent = "";
    }
  }

  // --- The socket -----------------------------------------------------------------

  // Sessions end after inactivity (SESSION_IDLE_SECONDS). What a person does
  // in the room (not the automatic pings) renews the session and its cookie
  // over HTTP, at most every two minutes.
  var lastKeepalive = Date.now();
  function keepalive() {
    var now = Date.now();
    if (!cfg.keepalive_url || now - lastKeepalive < 120000) return;
    lastKeepalive = now;
    fetch(cfg.keepalive_url, { method: "GET", credentials: "same-origin", cache: "no-store" }).catch(function () {});
  }

  function send(frame) {
    if (frame.type !== "ping" && frame.type !== "resume") keepalive();
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function flushOutbox() {
    if (!admitted) return;
    outbox.forEach(function (item) { send({ type: "message.send", client_id: item.client_id, body: item.body }); });
  }

  function connect() {
    clearTimeout(reconnectTimer);
    status(T.connecting, "");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    if (ws && ws.readyState <= 1) { ws.onclose = null; ws.onmessage = null; ws.close(); }
    var socket = new WebSocket(scheme + location.host + cfg.ws_path);
    ws = socket;
    ws.onopen = function () {
      attempt = 0;
      send({ type: "resume", after_seq: lastSeq });
      clearInterval(pingTimer);
      pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
    };
    // Only the current socket speaks: an old one still closing is ignored.
    ws.onmessage = function (e) { if (socket === ws) receive(JSON.parse(e.data)); };
    ws.onclose = function (e) { if (socket === ws) closed(e.code); };
  }

  function closed(code) {
    clearInterval(pingTimer);
    admitted = false;
    if (stopped) return;
    var message = T["closed_" + code];
    if (code === 4401 || code === 4403 || code === 4404 || code === 4409) {
      status(message, "error");
      say(message);
      var retry = el("button", "", T.retry);
      retry.type = "button";
      retry.addEventListener("click", function () { say(""); connect(); });
      notice.appendChild(document.createTextNode(" "));
      notice.appendChild(retry);
      return;
    }
    status(code === 4429 ? message : T.offline, "warn");
    // Exponential backoff with full jitter, capped at 30 s.
    var ceiling = Math.min(30000, 500 * Math.pow(2, attempt++));
    if (code === 4429) ceiling = Math.max(ceiling, 10000);
    reconnectTimer = setTimeout(connect, Math.round(ceiling / 2 + Math.random() * ceiling / 2));
  }

  function receive(frame) {
    switch (frame.type) {
      case "welcome":
        admitted = frame.you.admitted;
        show($("session-start"), cfg.mediator && !frame.room.session_open);
        show($("room-lock"), !frame.room.locked);
        show($("room-unlock"), frame.room.locked);
        status(T.online, "ok");
        say("");
        show($("lobby"), !admitted);
        show($("room-body"), admitted);
        flushOutbox();
        break;
      case "lobby.waiting":
        show($("lobby"), true); show($("room-body"), false);
        break;
      case "lobby.admitted":
        admitted = true;
        show($("lobby"), false); show($("room-body"), true);
        flushOutbox();
        break;
      case "lobby.declined":
        stopped = true;
        break;
      case "message": case "event":
        apply(frame);
        break;
      case "ack":
        outbox = outbox.filter(function (item) { return item.client_id !== frame.client_id; });
        var li = log.querySelector('li.pending[data-client-id="' + frame.client_id + '"]');
        if (li) { li.dataset.seq = frame.seq; var s = li.querySelector(".state"); if (s) s.textContent = ""; }
        break;
      case "history":
        prepend(frame.events);
        if (frame.complete) show($("older"), false);
        break;
      case "presence":
        online = frame.online; renderPresence();
        break;
      case "typing":
        showTyping(frame.participant, frame.active);
        break;
      case "members":
        renderMembers(frame.members);
        break;
      case "caucus":
        if (frame.open && cfg.mediator && frame.room_id !== cfg.room_id) { location.href = "/rooms/" + frame.room_id + "/"; return; }
        if (frame.open && frame.room_id !== cfg.room_id) {
          say(T.caucus_invite + " ");
          var a = el("a", "", T.caucus_go); a.href = "/rooms/" + frame.room_id + "/"; notice.appendChild(a);
        }
        break;
      case "pong":
        if (frame.last_seq && frame.last_seq > lastSeq) send({ type: "resume", after_seq: lastSeq });
        break;
      case "error":
        failed(frame);
        break;
    }
  }

  function failed(frame) {
    if (frame.client_id) {
      if (frame.code === "rate_limited") { setTimeout(flushOutbox, 3000); return; }
      outbox = outbox.filter(function (item) { return item.client_id !== frame.client_id; });
      var li = log.querySelector('li.pending[data-client-id="' + frame.client_id + '"]');
      if (li) { li.className = "msg mine failed"; li.querySelector(".state").textContent = T.failed + ": " + frame.detail; }
      return;
    }
    say(frame.detail);
  }

  // --- The page -------------------------------------------------------------------

  var composer = $("composer");
  if (composer) {
    var body = $("body");
    composer.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = body.value;
      if (!text.trim()) return;
      var item = { client_id: uuid4(), body: text };
      outbox.push(item);
      renderPending(item);
      body.value = "";
      lastTypingSent = 0;
      if (admitted) send({ type: "message.send", client_id: item.client_id, body: item.body });
      send({ type: "typing", active: false });
    });
    body.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); composer.requestSubmit(); }
    });
    body.addEventListener("input", function () {
      var now = Date.now();
      if (admitted && body.value && now - lastTypingSent > 3000) { lastTypingSent = now; send({ type: "typing", active: true }); }
    });
  }

  var upload = $("upload");
  if (upload) {
    upload.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = $("file").files[0], out = $("upload-status");
      if (!file) return;
      if (file.size > cfg.limits.upload_bytes) { out.textContent = T.upload_too_large; return; }
      out.textContent = T.uploading;
      var data = new FormData(upload);
      fetch(cfg.upload_url, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRFToken": upload.querySelector("[name=csrfmiddlewaretoken]").value }
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, json: j }; }); })
        .then(function (r) { out.textContent = r.ok ? T.uploaded : r.json.error.detail; if (r.ok) upload.reset(); })
        .catch(function () { out.textContent = T.offline; });
    });
  }

  function wire(id, frame) { var b = $(id); if (b) b.addEventListener("click", function () { send(frame); }); }
  wire("session-start", { type: "session.start" });
  wire("session-end", { type: "session.end" });
  wire("room-lock", { type: "room.lock" });
  wire("room-unlock", { type: "room.unlock" });
  wire("caucus-close", { type: "caucus.close" });
  Array.prototype.forEach.call(document.querySelectorAll(".caucus-open"), function (b) {
    b.addEventListener("click", function () { send({ type: "caucus.open", party: b.dataset.party }); });
  });

  var older = $("older");
  older.addEventListener("click", function () { if (firstSeq > 1) send({ type: "history", before_seq: firstSeq }); });
  log.addEventListener("scroll", function () {
    if (log.scrollTop === 0 && firstSeq > 1 && admitted) send({ type: "history", before_seq: firstSeq });
  });

  // The latest messages come with the page; the socket resumes after them.
  cfg.events.forEach(apply);
  show(older, firstSeq !== null && firstSeq > 1);
  renderPresence();
  log.scrollTop = log.scrollHeight;
  window.addEventListener("online", function () { if (!ws || ws.readyState > 1) { attempt = 0; connect(); } });
  connect();
})();
