/* The kiosk page (bot/web/kiosk): one question per screen, a reset after the thank-you or when
   idle, and offline-tolerant sending. A finished questionnaire is kept in localStorage with its
   key until the server confirms it (stored, or already stored: same key, nothing counted twice),
   and retried with backoff; the server allows one per kiosk per KIOSK_MIN_INTERVAL and says how
   long to wait. Without this script the page is one plain form. */
(function () {
  "use strict";
  var form = document.getElementById("kiosk");
  if (!form) { return; }
  var root = document.documentElement;
  root.classList.add("js");
  var screens = Array.prototype.slice.call(form.querySelectorAll(".screen"));
  var last = form.querySelectorAll("fieldset.question").length;
  var defaultLang = form.getAttribute("data-lang") || "id";
  var STORE = "prima-kiosk:" + form.getAttribute("action");
  var memory = [];  // when localStorage is unavailable
  var current = "0";
  var lastActive = Date.now();
  var shownAt = Date.now();
  var awaiting = null;  // key of the questionnaire whose outcome the screen shows
  var sending = false;
  var retry = null;
  var backoff = 3000;
  var settle = null;
  var SETTLE = 400;  // ms a new screen ignores touches (the rest of a double tap on the last one)

  function uuid() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function show(name) {
    current = String(name);
    screens.forEach(function (s) {
      var on = s.getAttribute("data-screen") === current;
      s.classList.toggle("active", on);
      s.classList.toggle("settling", on);  // a double tap's second touch must not answer the next question
    });
    if (settle) { window.clearTimeout(settle); }
    settle = window.setTimeout(function () { screens.forEach(function (s) { s.classList.remove("settling"); }); }, SETTLE);
    shownAt = Date.now();
    window.scrollTo(0, 0);
  }

  function setLang(lang) {
    root.setAttribute("data-lang", lang);
    root.setAttribute("lang", lang);
    form.elements.lang.value = lang;
  }

  function reset() {
    form.reset();
    form.elements.key.value = uuid();
    setLang(defaultLang);
    form.removeAttribute("data-result");
    awaiting = null;
    lastActive = Date.now();
    show("0");
  }

  function load() {
    try { return JSON.parse(window.localStorage.getItem(STORE) || "[]"); } catch (e) { return memory.slice(); }
  }

  function save(queue) {
    memory = queue.slice();
    try { window.localStorage.setItem(STORE, JSON.stringify(queue)); } catch (e) { /* memory only */ }
    var note = form.querySelector(".pending");
    note.hidden = queue.length === 0;
    note.querySelector(".count").textContent = String(queue.length);
  }

  function drop(key) {
    save(load().filter(function (item) { return item.key !== key; }));
  }

  function report(key, result) {
    if (key !== awaiting || (current !== "sending" && current !== "done")) { return; }
    form.setAttribute("data-result", result);
    if (current === "sending") { show("done"); }
  }

  function later(ms) {
    if (retry) { window.clearTimeout(retry); }
    retry = window.setTimeout(function () { retry = null; flush(); }, ms);
  }

  function flush() {
    var queue = load();
    save(queue);
    if (sending || queue.length === 0) { return; }
    var item = queue[0];
    sending = true;
    var abort = window.AbortController ? new window.AbortController() : null;
    var timeout = window.setTimeout(function () { if (abort) { abort.abort(); } }, 15000);
    window.fetch(form.getAttribute("action"), {
      method: "POST", body: item.body, credentials: "omit", cache: "no-store",
      headers: {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
      signal: abort ? abort.signal : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return {code: r.status, body: body}; });
    }).then(function (res) {
      window.clearTimeout(timeout);
      sending = false;
      if (res.code === 200 || res.code === 400) {  // stored (or already), or not a valid questionnaire
        drop(item.key);
        report(item.key, res.code === 200 ? "stored" : "queued");
        backoff = 3000;
        flush();
      } else if (res.code === 429) {  // one questionnaire per interval per kiosk: wait as told
        report(item.key, "wait");
        later(Math.max(1, Number(res.body.retry_after) || 5) * 1000 + 300);
      } else if (res.code === 403 || res.code === 404) {  // revoked: the server's page says so
        save([]);
        window.location.reload();
      } else {
        report(item.key, "queued");
        later(backoff);
        backoff = Math.min(backoff * 2, 60000);
      }
    }, function () {
      window.clearTimeout(timeout);
      sending = false;
      report(item.key, "queued");
      later(backoff);
      backoff = Math.min(backoff * 2, 60000);
    });
  }

  function finish() {
    var key = form.elements.key.value;
    var body = new window.URLSearchParams(new window.FormData(form)).toString();
    var queue = load();
    if (!queue.some(function (item) { return item.key === key; })) { queue.push({key: key, body: body}); }
    save(queue.slice(-500));
    awaiting = key;
    show("sending");
    window.setTimeout(function () { if (current === "sending") { report(key, "queued"); } }, 5000);  // a slow line: do not hold the resident
    flush();
  }

  form.addEventListener("click", function (ev) {
    var el = ev.target;
    lastActive = Date.now();
    if (el.matches("input[type=radio]")) {
      var n = Number(el.closest(".screen").getAttribute("data-screen"));
      if (n >= last) { window.setTimeout(finish, 150); } else { window.setTimeout(function () { show(n + 1); }, 150); }
      return;
    }
    var button = el.closest("button");
    if (!button) { return; }
    if (button.hasAttribute("data-go")) { show(button.getAttribute("data-go")); }
    if (button.hasAttribute("data-back")) { show(Math.max(0, Number(current) - 1)); }
    if (button.hasAttribute("data-reset")) { reset(); }
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); finish(); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-set-lang]"), function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      lastActive = Date.now();
      setLang(a.getAttribute("data-set-lang"));
    });
  });
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { lastActive = Date.now(); }, {passive: true});
  });
  window.addEventListener("online", flush);
  window.setInterval(function () {
    var idle = Number(form.getAttribute("data-idle") || 60) * 1000;
    var thanks = Number(form.getAttribute("data-thanks") || 8) * 1000;
    var now = Date.now();
    if (current === "done") {
      if (now - shownAt > thanks) { reset(); }
    } else if (current !== "sending" && now - lastActive > idle &&
               (current !== "0" || root.getAttribute("data-lang") !== defaultLang)) {
      reset();
    }
  }, 500);
  show("0");
  flush();
}());
