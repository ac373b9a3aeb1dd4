// beadwire dashboard: live updates over /v1/ws. Served as a static file (the CSP forbids inline code).
// On an event a page cares about (body[data-live] lists kind prefixes), the main part of the page is
// fetched again from the server (already escaped HTML) and swapped in; nothing agent-written is
// ever turned into markup here.
(function () {
  "use strict";
  var body = document.body;
  var wanted = (body.getAttribute("data-live") || "").split(" ").filter(Boolean);
  var since = body.getAttribute("data-since") || "";
  var timer = null, pending = false, backoff = 500, inFlight = false;
  var badge = document.getElementById("live");

  function wants(kind) {
    return wanted.indexOf("*") >= 0 || wanted.some(function (p) { return kind === p || kind.indexOf(p) === 0; });
  }

  function setLive(on) {
    if (!badge) return;
    badge.textContent = on ? "live" : "reconnecting";
    badge.className = on ? "live on" : "live off";
  }

  // someone typing an answer or a filter must not lose it to a refresh: wait until they leave the field
  function busy() {
    var el = document.activeElement;
    if (el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT" || el.tagName === "SELECT")) return true;
    var areas = document.querySelectorAll("#main textarea");
    // a text area counts once someone typed in it (forms come pre-filled with the current text)
    for (var i = 0; i < areas.length; i++) { if (areas[i].value !== areas[i].defaultValue) return true; }
    return false;
  }

  function refresh() {
    timer = null;
    if (busy()) { pending = true; return; }
    if (inFlight) { pending = true; return; }
    inFlight = true;
    fetch(location.href, { headers: { "X-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          document.getElementById("main").innerHTML = html;
          body.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (pending) { pending = false; schedule(); }
      });
  }

  function schedule() { if (!timer) timer = setTimeout(refresh, 80); }

  document.addEventListener("focusout", function () { if (pending) { pending = false; schedule(); } });

  function connect() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var url = proto + "//" + location.host + "/v1/ws" + (since ? "?since=" + encodeURIComponent(since) : "");
    var ws = new WebSocket(url);
    ws.onopen = function () { backoff = 500; setLive(true); body.setAttribute("data-ws", "open"); };
    ws.onmessage = function (e) {
      var ev;
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      since = ev.id || since;
      if (wants(ev.kind || "")) schedule();
    };
    ws.onclose = function () {
      setLive(false);
      body.setAttribute("data-ws", "closed");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  if (wanted.length) connect();
  // idle/offline states change with time alone: the team page also refreshes now and then
  if (body.getAttribute("data-page") === "team") setInterval(schedule, 30000);
})();
