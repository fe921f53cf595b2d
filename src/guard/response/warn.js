// concurrency-guard early warning: tells the user their open form went stale,
// and with live rebase (data-rebase) takes other people's changes into the
// fields the user has not touched. Plain JavaScript, no framework; works under
// a strict CSP (no inline code, styles set through the CSSOM). Progressive
// enhancement: without it, the guard still refuses a stale submission.
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.__concurrencyGuardWarn) return;
  window.__concurrencyGuardWarn = true;
  var token = me.getAttribute("data-token");
  var rebase = me.hasAttribute("data-rebase");
  var every = Math.max(1, Number(me.getAttribute("data-interval")) || 15) * 1000;
  var url = location.pathname + location.search;
  var delay = every, timer = null, stopped = false, busy = false;
  // Live rebase: each field's value at load or after the last change taken
  // in (a field whose value differs is one the user touched), the fresh
  // token waiting for the user's choices, how many choices are open.
  var base = Object.create(null), fresh = null, open = 0, live = null;

  function schedule(ms) {
    clearTimeout(timer);
    if (stopped || open || document.hidden) return;
    // +/- 20% jitter, so many open pages do not poll in step.
    timer = setTimeout(check, ms * (0.8 + Math.random() * 0.4));
  }

  function backOff() {
    busy = false;
    delay = Math.min(delay * 2, 300000);
    schedule(delay);
  }

  // Its form has left the page (a boosted save swapped the body): stop,
  // and never warn about a page that is not there.
  function gone() {
    if (!carriers().length) stopped = true;
    return stopped;
  }

  function check() {
    if (stopped || busy || open || document.hidden) return;
    // Read each time: the htmx script updates it after the page's own saves.
    token = me.getAttribute("data-token") || token;
    if (gone()) return;
    busy = true;
    var headers = { "x-concurrency-token": token, "x-concurrency-guard": "check" };
    if (rebase) headers.accept = "application/json";
    fetch(url, {
      method: "GET",
      headers: headers,
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (gone()) return;
      var deleted = res.status === 404 || res.status === 410;
      if (deleted || res.status === 409 || res.status === 412) {
        busy = false;
        stopped = true;
        warn(deleted);
      } else if (rebase && res.status === 200 &&
                 /json/.test(res.headers.get("content-type") || "")) {
        return res.json().then(function (d) { busy = false; take(d); });
      } else if (res.ok) {
        busy = false;
        delay = every;
        schedule(delay);
      } else {
        backOff(); // up to five minutes
      }
    }).catch(backOff);
  }

  function warn(deleted) {
    var box = document.createElement("div");
    box.className = "concurrency-guard-warning";
    box.setAttribute("role", "alert");
    box.setAttribute("aria-live", "assertive");
    var s = box.style;
    s.position = "fixed"; s.left = "1rem"; s.right = "1rem"; s.top = "1rem";
    s.zIndex = "2147483647"; s.padding = "0.9rem 1rem"; s.borderRadius = "6px";
    s.background = "#fff4e5"; s.color = "#3b2300"; s.border = "2px solid #b45f06";
    s.boxShadow = "0 2px 12px rgba(0,0,0,.25)"; s.font = "16px/1.4 system-ui, sans-serif";
    var text = el("p", deleted ?
      "This record was deleted since you opened it: nothing on this page can be saved. " +
      "What you typed stays here, so you can copy it." :
      "Someone else changed this record since you opened it. " +
      "Reload to see their changes; what you typed stays on this page until you choose.");
    text.style.margin = "0 0 0.6rem 0";
    box.appendChild(text);
    if (!deleted) box.appendChild(button("Reload with the current data", function () { location.reload(); }));
    button("Dismiss", function () { box.remove(); }, box).style.marginLeft = deleted ? "0" : "0.6rem";
    document.body.appendChild(box);
  }

  function el(tag, text) {
    var e = document.createElement(tag);
    if (text) e.textContent = text;
    return e;
  }

  function button(text, onclick, parent) {
    var b = el("button", text);
    b.type = "button";
    b.addEventListener("click", onclick);
    if (parent) parent.appendChild(b);
    return b;
  }

  // --- live rebase ---

  // What carries the page's token now: hidden inputs, and htmx elements
  // whose hx-headers send it (an hx-post form).
  var HX = ["hx-headers", "data-hx-headers"];
  function carriers() {
    return [].filter.call(document.querySelectorAll("input[type=hidden],[" + HX.join("],[") + "]"),
      function (e) {
        return e.tagName === "INPUT" && e.type === "hidden" ? e.value === token :
          HX.some(function (a) { return (e.getAttribute(a) || "").indexOf(token) >= 0; });
      });
  }

  function formOf(e) { return e.tagName === "FORM" ? e : e.form || e.closest("form"); }

  function field(name) {
    var all = carriers();
    for (var i = 0; i < all.length; i++) {
      var form = formOf(all[i]), f = form && form.elements.namedItem(name);
      if (f) return f;
    }
    return null;
  }

  function isGroup(f) { return !f.nodeType; } // a RadioNodeList
  function first(f) { return isGroup(f) ? f[0] : f; }

  // A field's value as a string: a checkbox "1" when checked.
  function read(f) {
    if (isGroup(f)) return f.value;
    if (f.type === "checkbox") return f.checked ? "1" : "";
    return f.value;
  }

  // The value the server sent, as `read` would give it once written.
  function their(f, v) {
    if (!isGroup(f) && f.type === "checkbox") return v ? "1" : "";
    if (f.tagName === "TEXTAREA") return v.replace(/^\r?\n/, "").replace(/\r\n?/g, "\n");
    return v;
  }

  function write(f, v) {
    if (isGroup(f)) {
      [].forEach.call(f, function (r) { r.checked = r.value === v; });
    } else if (f.type === "checkbox") {
      f.checked = v !== "";
    } else {
      f.value = their(f, v);
    }
    f = first(f);
    f.dispatchEvent(new Event("input", { bubbles: true }));
    f.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function label(f) {
    f = first(f);
    var l = f.labels && f.labels[0];
    return ((l && l.textContent) || f.getAttribute("aria-label") || f.name).trim();
  }

  // How a value reads to a person.
  function shown(f, v) {
    var g = first(f);
    if (!isGroup(f) && g.type === "checkbox") return v ? "checked" : "unchecked";
    if (g.tagName === "SELECT") {
      var o = [].filter.call(g.options, function (o) { return o.value === v; })[0];
      if (o) return "“" + o.textContent.trim() + "”";
    }
    return "“" + (v.length > 80 ? v.slice(0, 80) + "…" : v) + "”";
  }

  function say(text) {
    if (!live) {
      live = el("div");
      live.className = "concurrency-guard-live";
      live.setAttribute("role", "status");
      live.setAttribute("aria-live", "polite");
      var s = live.style;
      s.position = "absolute"; s.width = "1px"; s.height = "1px"; s.overflow = "hidden";
      s.clip = "rect(0 0 0 0)"; s.whiteSpace = "nowrap";
      document.body.appendChild(live);
    }
    live.textContent = text;
  }

  function flash(e) {
    var s = e.style, was = [s.outline, s.backgroundColor];
    s.outline = "3px solid #2b7a0b"; s.backgroundColor = "#e6f4ea";
    setTimeout(function () { s.outline = was[0]; s.backgroundColor = was[1]; }, 2500);
  }

  function take(d) {
    var said = [], choices = [], fields = [], contexts = [], ok = true;
    (d.changed || []).forEach(function (c) {
      var f = field(c.name);
      if (!f) ok = false; else fields.push([c, f]);
    });
    (d.context || []).forEach(function (c) {
      var marked = [].filter.call(document.querySelectorAll("[data-concurrency-context]"),
        function (e) { return e.getAttribute("data-concurrency-context") === c.name; });
      if (!marked.length) ok = false; else contexts.push([c, marked]);
    });
    // A change with no place on the page cannot be taken in: say the page
    // is stale, keep the old token.
    if (!ok || typeof d.token !== "string") { stopped = true; warn(); return; }
    fields.forEach(function (p) {
      var c = p[0], f = p[1], mine = read(f), theirs = their(f, c.value);
      if (mine === theirs) { base[c.name] = mine; return; }
      if (mine === base[c.name]) {
        write(f, c.value);
        base[c.name] = read(f);
        (isGroup(f) ? [].slice.call(f) : [f]).forEach(flash);
        said.push(label(f) + " was changed by someone else to " + shown(f, c.value) + ".");
      } else {
        choices.push([c, f, mine]);
      }
    });
    contexts.forEach(function (p) {
      p[1].forEach(function (e) {
        if (e.textContent.trim() === p[0].value) return;
        e.textContent = p[0].value;
        flash(e);
        said.push((e.getAttribute("data-concurrency-label") || p[0].name) +
          " was changed by someone else to “" + p[0].value + "”.");
      });
    });
    fresh = d.token;
    open = choices.length;
    choices.forEach(function (p) {
      said.push(label(p[1]) + " was changed by someone else to " + shown(p[1], p[0].value) +
        ", and you changed it too: keep yours or use theirs.");
      ask(p[0], p[1], p[2]);
    });
    if (said.length) say(said.join(" "));
    if (!open) swap();
  }

  // A field both changed: both values at the field, the user picks one.
  function ask(c, f, mine) {
    var at = first(f), theirs = their(f, c.value);
    if (isGroup(f)) at = f[f.length - 1];
    at = at.closest("label") || at;
    var box = el("div");
    box.className = "concurrency-guard-choice";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", label(f) + ": your value and theirs");
    var s = box.style;
    s.margin = "0.3rem 0 0.8rem"; s.padding = "0.5rem 0.7rem"; s.borderRadius = "4px";
    s.border = "2px solid #b45f06"; s.background = "#fff4e5"; s.color = "#3b2300";
    var p = el("p", "Someone else changed this to " + shown(f, c.value) +
      "; yours is " + shown(f, mine) + ".");
    p.style.margin = "0 0 0.4rem";
    box.appendChild(p);
    function done(keep) {
      if (!keep) write(f, c.value);
      // Theirs is now what the field is compared with: kept, it counts as touched.
      base[c.name] = theirs;
      box.remove();
      say(label(f) + ": " + (keep ? "your value kept." : "their value taken."));
      if (--open === 0) swap();
    }
    button("Keep mine", function () { done(true); }, box).className = "keep-mine";
    var use = button("Use theirs", function () { done(false); }, box);
    use.className = "use-theirs";
    use.style.marginLeft = "0.6rem";
    at.parentNode.insertBefore(box, at.nextSibling);
  }

  // Every change taken in: the page's forms are current.
  function swap() {
    carriers().forEach(function (e) {
      if (e.tagName === "INPUT") e.value = fresh;
      HX.forEach(function (a) {
        var v = e.getAttribute(a);
        if (v) e.setAttribute(a, v.split(token).join(fresh));
      });
    });
    token = fresh;
    me.setAttribute("data-token", fresh);
    fresh = null;
    delay = every;
    schedule(delay);
  }

  if (rebase) {
    carriers().forEach(function (t) {
      var form = formOf(t);
      [].forEach.call(form ? form.elements : [], function (e) {
        if (e.name && !(e.name in base)) base[e.name] = read(field(e.name) || e);
      });
    });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) clearTimeout(timer); else check();
  });
  window.addEventListener("focus", check);
  schedule(delay);
})();
