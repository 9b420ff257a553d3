/* modelreg site: filtering, sorting and paging over the data files shipped with the site.
   Data files are scripts ("MR.put(key, value)") loaded with <script src>, so pages work from
   file:// too. Every value from the registry is put into the page with textContent, never as HTML. */
(function () {
  "use strict";

  var store = {};
  var pending = {};
  window.MR = {
    put: function (key, value) {
      store[key] = value;
      var waiting = pending[key] || [];
      delete pending[key];
      waiting.forEach(function (w) { w.ok(value); });
    }
  };

  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});

  function load(src, key) {
    return new Promise(function (ok, fail) {
      if (Object.prototype.hasOwnProperty.call(store, key)) { ok(store[key]); return; }
      var first = !pending[key];
      (pending[key] = pending[key] || []).push({ok: ok, fail: fail});
      if (!first) return;
      var s = document.createElement("script");
      s.src = src;
      s.onerror = function () {
        var waiting = pending[key] || [];
        delete pending[key];
        waiting.forEach(function (w) { w.fail(new Error("cannot load " + src)); });
      };
      document.head.appendChild(s);
    });
  }

  function loadChunks(src, keyPrefix, n) {
    var parts = [];
    for (var i = 1; i <= n; i++) parts.push(load(src + i + ".js", keyPrefix + i));
    return Promise.all(parts).then(function (chunks) { return [].concat.apply([], chunks); });
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function link(href, text) { return el("a", {href: href}, [text]); }
  function versionHref(model, version) { return root + model + "/" + version + "/index.html"; }
  function utc(t) { return t ? t.slice(0, 10) + " " + t.slice(11, 16) + " UTC" : ""; }
  function terms(text) { return text.toLowerCase().split(/\s+/).filter(Boolean); }
  function matches(hay, ts) {
    for (var i = 0; i < ts.length; i++) if (hay.indexOf(ts[i]) < 0) return false;
    return true;
  }

  var stageOrder = (body.getAttribute("data-stages") || "").split(" ").filter(Boolean);
  function badge(stage) {
    var i = stageOrder.indexOf(stage);
    return el("span", {"class": "badge st-" + (i < 0 ? 3 : i % 4), "data-stage": stage}, [stage]);
  }

  function showError(where, err) {
    var p = el("p", {"class": "problem", role: "alert"}, ["Could not load the data of this table: " + err.message]);
    where.parentNode.insertBefore(p, where);
  }

  /* A pager over rows that are rendered by `draw`; `rows` is null until the data arrived. */
  function Pager(controls, per, onChange) {
    var prev = controls.querySelector("[data-page=prev]");
    var next = controls.querySelector("[data-page=next]");
    var info = controls.querySelector(".page-info");
    var self = {page: 0, count: 0};
    self.update = function (count, shownLabel) {
      self.count = count;
      var pages = Math.max(1, Math.ceil(count / per));
      if (self.page >= pages) self.page = pages - 1;
      var from = count ? self.page * per + 1 : 0;
      var to = Math.min(count, (self.page + 1) * per);
      info.textContent = from + "–" + to + " of " + count + (shownLabel || "");
      prev.disabled = self.page === 0;
      next.disabled = to >= count;
    };
    prev.addEventListener("click", function () { if (self.page > 0) { self.page--; onChange(); } });
    next.addEventListener("click", function () { if ((self.page + 1) * per < self.count) { self.page++; onChange(); } });
    return self;
  }

  /* ------------------------------------------------------------ overview */
  function overview() {
    var q = document.getElementById("q");
    var table = document.getElementById("models");
    if (!q || !table) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var hay = rows.map(function (tr) { return (tr.getAttribute("data-search") || "").toLowerCase(); });
    var hits = document.getElementById("version-hits");
    var hitsBody = hits.querySelector("tbody");
    var more = document.getElementById("hits-more");
    var count = document.getElementById("q-count");
    var data = null;
    var loading = null;
    function ensure() {
      if (!loading) {
        loading = load(root + q.getAttribute("data-src"), "search").then(function (d) {
          data = d.map(function (r) { return {r: r, text: (r[0] + " " + r[1] + " " + r[2] + " " + r[4]).toLowerCase()}; });
        });
      }
      return loading;
    }
    function showHits(ts) {
      var found = [];
      var total = 0;
      for (var i = 0; i < data.length; i++) {
        if (matches(data[i].text, ts)) { total++; if (found.length < 100) found.push(data[i].r); }
      }
      hitsBody.textContent = "";
      found.forEach(function (r) {
        var tags = el("td", null, r[4] ? r[4].split(" ").map(function (t) { return el("span", {"class": "tag"}, [t]); }) : []);
        var tr = el("tr", r[3] ? {"class": "archived"} : null, [
          el("td", null, [link(root + r[0] + "/index.html", r[0])]),
          el("td", null, [link(versionHref(r[0], r[1]), r[1])]),
          el("td", null, r[2] ? r[2].split(" ").map(badge) : []),
          tags
        ]);
        hitsBody.appendChild(tr);
      });
      more.textContent = total > found.length ? (total - found.length) + " more matching versions; refine the filter." : "";
      hits.hidden = total === 0;
      return total;
    }
    function run() {
      var ts = terms(q.value);
      var shown = 0;
      rows.forEach(function (tr, i) {
        var ok = matches(hay[i], ts);
        tr.hidden = !ok;
        if (ok) shown++;
      });
      if (!ts.length) { hits.hidden = true; count.textContent = ""; return; }
      count.textContent = shown + " of " + rows.length + " models";
      var value = q.value;
      ensure().then(function () {
        if (q.value !== value) return;
        var n = showHits(ts);
        count.textContent = shown + " of " + rows.length + " models, " + n + " versions";
      }, function (err) { showError(table, err); });
    }
    q.addEventListener("focus", ensure);
    q.addEventListener("input", run);
    var initial = new URLSearchParams(location.search).get("q");
    if (initial) { q.value = initial; run(); }
  }

  /* ------------------------------------------------------ versions table */
  var SORTS = {
    version: function (a, b) { return collator.compare(a[1], b[1]); },
    stages: function (a, b) { return collator.compare(a[3].join(" ") || "~", b[3].join(" ") || "~"); },
    registered: function (a, b) { return a[0] - b[0]; },
    by: function (a, b) { return collator.compare(a[6] || "", b[6] || ""); },
    archived: function (a, b) { return a[4] - b[4] || a[0] - b[0]; }
  };

  function versionsTable() {
    var table = document.getElementById("versions");
    var controls = document.getElementById("versions-controls");
    if (!table || !controls) return;
    controls.hidden = false;
    var model = table.getAttribute("data-model");
    var per = +table.getAttribute("data-rows");
    var total = +table.getAttribute("data-total");
    var tbody = table.tBodies[0];
    var filter = document.getElementById("vq");
    var hideArchived = document.getElementById("v-archived");
    var all = null;
    var view = null;
    var sortKey = "registered";
    var dir = -1;
    var pager = Pager(controls, per, draw);
    pager.update(total);

    function ensure() {
      if (all) return Promise.resolve(all);
      return loadChunks(table.getAttribute("data-src"), "versions:" + model + ":", +table.getAttribute("data-chunks"))
        .then(function (rows) {
          all = rows.map(function (r) {
            return {r: r, text: (r[1] + " " + r[3].join(" ") + " " + (r[6] || "") + " " + r[7].join(" ") + " " + r[2]).toLowerCase()};
          });
          return all;
        });
    }
    function row(r) {
      return el("tr", r[4] ? {"class": "archived"} : null, [
        el("td", null, [link(versionHref(model, r[1]), r[1])]),
        el("td", null, r[3].map(badge)),
        el("td", null, [el("time", {datetime: r[5] || ""}, [utc(r[5])])]),
        el("td", null, [r[6] || ""]),
        el("td", null, r[7].map(function (t) { return el("span", {"class": "tag"}, [t]); })),
        el("td", null, [r[4] ? "archived" : ""])
      ]);
    }
    function draw() {
      if (!view) return;
      var frag = document.createDocumentFragment();
      view.slice(pager.page * per, (pager.page + 1) * per).forEach(function (x) { frag.appendChild(row(x.r)); });
      tbody.textContent = "";
      tbody.appendChild(frag);
      pager.update(view.length, view.length !== total ? " (filtered from " + total + ")" : "");
    }
    function apply() {
      var ts = terms(filter.value);
      var hide = hideArchived.checked;
      view = all.filter(function (x) { return !(hide && x.r[4]) && matches(x.text, ts); });
      var cmp = SORTS[sortKey];
      view.sort(function (a, b) { return dir * cmp(a.r, b.r) || dir * (a.r[0] - b.r[0]); });
      draw();
    }
    function refresh(resetPage) {
      ensure().then(function () { if (resetPage) pager.page = 0; apply(); }, function (err) { showError(table, err); });
    }
    // paging before the data arrived: load it, then move
    pager.page = 0;
    controls.querySelector("[data-page=next]").addEventListener("click", function () { if (!view) refresh(false); });
    filter.addEventListener("input", function () { refresh(true); });
    hideArchived.addEventListener("change", function () { refresh(true); });
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-sort]"), function (th) {
      th.tabIndex = 0;
      function sortBy() {
        var key = th.getAttribute("data-sort");
        dir = key === sortKey ? -dir : (key === "registered" ? -1 : 1);
        sortKey = key;
        Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-sort]"), function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        refresh(true);
      }
      th.addEventListener("click", sortBy);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(); } });
    });
  }

  /* -------------------------------------------------------- events table */
  function eventsTable() {
    var table = document.getElementById("events");
    var form = document.getElementById("event-filters");
    if (!table || !form) return;
    form.hidden = false;
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    var per = +table.getAttribute("data-rows");
    var total = +table.getAttribute("data-total");
    var tbody = table.tBodies[0];
    var all = null;
    var view = null;
    var pager = Pager(form, per, draw);
    pager.update(total);
    var fields = ["model", "stage", "action", "actor"].map(function (n) { return form.elements[n]; });

    function ensure() {
      if (all) return Promise.resolve(all);
      return loadChunks(table.getAttribute("data-src"), "events:", +table.getAttribute("data-chunks"))
        .then(function (rows) { all = rows; return all; });
    }
    function row(r) {
      var change = r[5] ? (r[6] || "∅") + " → " + (r[7] || "∅") : "";
      var why = el("td", {"class": "why"}, [r[8] || ""]);
      if (r[9]) {
        if (r[8]) why.appendChild(el("br"));
        why.appendChild(el("span", {"class": "detail"}, [r[9]]));
      }
      return el("tr", null, [
        el("td", {"class": "when"}, [el("time", {datetime: r[0]}, [utc(r[0])])]),
        el("td", null, [link(root + r[3] + "/index.html", r[3])]),
        el("td", null, [r[4] ? link(versionHref(r[3], r[4]), r[4]) : ""]),
        el("td", null, [el("span", {"class": "act act-" + r[2]}, [r[2]])]),
        el("td", null, [r[5] || ""]),
        el("td", null, [change]),
        el("td", null, [r[1]]),
        why
      ]);
    }
    function draw() {
      if (!view) return;
      var frag = document.createDocumentFragment();
      view.slice(pager.page * per, (pager.page + 1) * per).forEach(function (r) { frag.appendChild(row(r)); });
      tbody.textContent = "";
      tbody.appendChild(frag);
      pager.update(view.length, view.length !== total ? " (filtered from " + total + ")" : "");
    }
    function apply() {
      var model = fields[0].value, stage = fields[1].value, action = fields[2].value;
      var actor = fields[3].value.trim().toLowerCase();
      view = all.filter(function (r) {
        return (!model || r[3] === model) && (!stage || r[5] === stage) && (!action || r[2] === action) &&
          (!actor || r[1].toLowerCase().indexOf(actor) >= 0);
      });
      draw();
    }
    function refresh(resetPage) {
      ensure().then(function () { if (resetPage) pager.page = 0; apply(); }, function (err) { showError(table, err); });
    }
    fields.forEach(function (f) { f.addEventListener(f.tagName === "SELECT" ? "change" : "input", function () { refresh(true); }); });
    form.querySelector("[data-page=next]").addEventListener("click", function () { if (!view) refresh(false); });
    var params = new URLSearchParams(location.search);
    var any = false;
    fields.forEach(function (f) { var v = params.get(f.name); if (v) { f.value = v; any = true; } });
    if (any) refresh(true);
  }

  overview();
  versionsTable();
  eventsTable();
  Array.prototype.forEach.call(document.querySelectorAll(".noscript-note"), function (n) { n.hidden = true; });
  body.setAttribute("data-ready", "1");
  if (window.performance && performance.mark) performance.mark("mr-ready");
})();
