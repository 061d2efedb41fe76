// echannel operator console. Talks to every gate of the control point directly (this
// gate and the peers of /console/config.json) with the operator's bearer token: one
// fetch-streamed SSE connection per gate (/v1/events, resumed with Last-Event-ID),
// commands with POST /v1/commands. Each tile is updated in place, field by field.
"use strict";
(function () {
  const I18N = {
    en: {
      title: "Control point", filter: "Show", all_gates: "All gates", with_alarms: "Gates with alarms",
      mute: "Mute", unmute: "Unmute", logout: "Sign out", sign_in: "Sign in", token: "Access token",
      reason: "Reason (journaled)", cancel: "Cancel", confirm: "Confirm", send: "Send…",
      step: "Step", prompt: "Prompt", doors: "Doors", counters: "Transits", devices: "Devices",
      watchlist: "Watchlist", upstream: "Upstream", ack: "Acknowledge",
      entry: "entry", exit: "exit", open: "open", closed: "closed", moving: "moving", persons: "in lane",
      cleared: "clr", referred: "ref", held: "held", aborted: "abt",
      none: "—", all_ok: "all OK", version: "v", age: "age", backlog: "backlog", stale: "STALE", persons_listed: "persons",
      state_ready: "Ready", state_transit: "Transit", state_held: "Held", state_out_of_service: "Out of service",
      state_emergency: "Emergency", state_maintenance: "Maintenance", state_offline: "Offline",
      alarm_watchlist_hold: "Watchlist hold", alarm_tailgating: "Tailgating", alarm_device_fault: "Device fault",
      alarm_door_fault: "Door fault", alarm_emergency: "Emergency", alarm_lingering: "Lingering",
      alarm_watchlist_stale: "Watchlist stale", alarm_watchlist_update_rejected: "Watchlist update rejected", alarm_journal_failure: "Journal failure",
      alarm_disk_space_low: "Disk space low", alarm_disk_full: "Disk full: referring everyone",
      cmd_open_entry: "Open entry", cmd_open_exit: "Open exit", cmd_release_hold: "Release hold",
      cmd_refer: "Refer to counter", cmd_out_of_service: "Out of service", cmd_in_service: "In service",
      cmd_emergency_release: "Emergency release", cmd_emergency_reset: "Emergency reset",
      cmd_maintenance_on: "Maintenance on", cmd_maintenance_off: "Maintenance off",
      cmd_acknowledge_alarm: "Acknowledge alarm",
      confirm_text: "Send “{cmd}” to gate {gate}?", accepted: "{gate}: {detail}", refused: "{gate} refused: {detail}",
      gates: "{n} gates", alarms_n: "{n} with alarms", offline_n: "{n} offline",
      bad_token: "This token was not accepted.", ack_reason: "alarm acknowledged",
    },
    zh: {
      title: "管制站", filter: "顯示", all_gates: "所有閘口", with_alarms: "有警報的閘口",
      mute: "靜音", unmute: "取消靜音", logout: "登出", sign_in: "登入", token: "存取權杖",
      reason: "原因（將記錄在案）", cancel: "取消", confirm: "確認", send: "發送…",
      step: "步驟", prompt: "提示", doors: "閘門", counters: "通關", devices: "裝置",
      watchlist: "監察名單", upstream: "上游", ack: "確認警報",
      entry: "入口", exit: "出口", open: "開", closed: "關", moving: "移動中", persons: "人在通道",
      cleared: "放行", referred: "轉介", held: "扣留", aborted: "中止",
      none: "—", all_ok: "全部正常", version: "版本", age: "已過", backlog: "待上傳", stale: "已過期", persons_listed: "人員",
      state_ready: "就緒", state_transit: "通關中", state_held: "扣留", state_out_of_service: "暫停服務",
      state_emergency: "緊急", state_maintenance: "維修", state_offline: "離線",
      alarm_watchlist_hold: "監察名單扣留", alarm_tailgating: "尾隨", alarm_device_fault: "裝置故障",
      alarm_door_fault: "閘門故障", alarm_emergency: "緊急情況", alarm_lingering: "逗留",
      alarm_watchlist_stale: "監察名單過期", alarm_watchlist_update_rejected: "監察名單更新被拒", alarm_journal_failure: "記錄失敗",
      alarm_disk_space_low: "磁碟空間不足", alarm_disk_full: "磁碟已滿：全部轉介",
      cmd_open_entry: "開啟入口", cmd_open_exit: "開啟出口", cmd_release_hold: "解除扣留",
      cmd_refer: "轉介櫃檯", cmd_out_of_service: "暫停服務", cmd_in_service: "恢復服務",
      cmd_emergency_release: "緊急開啟", cmd_emergency_reset: "緊急重設",
      cmd_maintenance_on: "開始維修", cmd_maintenance_off: "結束維修",
      cmd_acknowledge_alarm: "確認警報",
      confirm_text: "向閘口 {gate} 發送「{cmd}」？", accepted: "{gate}：{detail}", refused: "{gate} 拒絕：{detail}",
      gates: "{n} 個閘口", alarms_n: "{n} 個有警報", offline_n: "{n} 個離線",
      bad_token: "此權杖不被接受。", ack_reason: "已確認警報",
    },
  };
  const ROLE_RANK = { viewer: 0, operator: 1, supervisor: 2 };
  let lang = localStorage.getItem("echannel.lang") === "zh" ? "zh" : "en";
  let token = sessionStorage.getItem("echannel.token") || "";
  let role = "viewer";
  let muted = false;
  let audio = null;
  let lastBeep = 0;
  const gates = [];
  const $ = (id) => document.getElementById(id);
  // Event-to-screen latencies (ms) of alarm events, for tests and benchmarks.
  window.__echannel = { latencies: [], gates };

  function t(key, vars) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
    return s;
  }
  function applyI18n(root) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  }
  function setText(el, v) { if (el.textContent !== v) el.textContent = v; }

  function toast(msg, bad) {
    const el = $("toast");
    el.textContent = msg;
    el.className = "toast show" + (bad ? " bad" : "");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = "toast"; }, 5000);
  }

  function beep() {
    if (muted || !audio) return;
    const now = Date.now();
    if (now - lastBeep < 800) return;
    lastBeep = now;
    try {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = "square";
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.08, audio.currentTime);
      g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
      o.connect(g).connect(audio.destination);
      o.start();
      o.stop(audio.currentTime + 0.36);
    } catch (_) { /* audio unavailable */ }
  }

  function authHeaders(extra) {
    return Object.assign({ Authorization: "Bearer " + token }, extra || {});
  }

  // ---- one gate ------------------------------------------------------------------
  class Gate {
    constructor(base) {
      this.base = base; // "" for this gate, else a peer base URL from the config
      this.id = null;
      this.lastEventId = null;
      this.alarms = new Map(); // kind -> <li>
      this.status = null;
      this.retry = 500;
      this.abort = null;
      this.online = false;
      const node = $("tile-template").content.firstElementChild.cloneNode(true);
      applyI18n(node);
      this.el = node;
      this.f = {};
      for (const k of ["gid", "state", "step", "prompt", "doors", "counters", "devices", "watchlist", "upstream", "cmd", "send"])
        this.f[k] = node.querySelector("." + k);
      this.f.alarms = node.querySelector(".alarms ul");
      node.dataset.gateId = base || location.host;
      setText(this.f.gid, base || location.host);
      this.f.send.addEventListener("click", () => this.askCommand(this.f.cmd.value, null));
      this.applyRole();
      this.setOffline();
    }

    applyRole() {
      const rank = ROLE_RANK[role] || 0;
      this.f.cmd.disabled = rank < 1;
      this.f.send.disabled = rank < 1;
      this.f.cmd.querySelectorAll("option[data-supervisor]").forEach((o) => { o.disabled = rank < 2; });
      this.f.alarms.querySelectorAll("button").forEach((b) => { b.disabled = rank < 1; });
    }

    setOffline() {
      this.online = false;
      this.el.dataset.gateState = "offline";
      setText(this.f.state, t("state_offline"));
      updateSummary();
      applyFilter(this);
    }

    async connect() {
      if (!token) return;
      const ctl = new AbortController();
      this.abort = ctl;
      let watchdog = null;
      const kick = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctl.abort(), 25000); // keep-alives come every 10 s
      };
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (this.lastEventId !== null) headers["Last-Event-ID"] = String(this.lastEventId);
        kick();
        const resp = await fetch(this.base + "/v1/events", { headers, signal: ctl.signal, cache: "no-store" });
        if (resp.status === 401) { clearTimeout(watchdog); showLogin(t("bad_token")); return; }
        if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
        this.retry = 500;
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            this.onFrame(frame);
          }
        }
      } catch (_) { /* fall through to reconnect */ }
      clearTimeout(watchdog);
      if (this.abort !== ctl) return; // signed out or replaced
      this.setOffline();
      this.retry = Math.min(this.retry * 2, 5000);
      setTimeout(() => { if (this.abort === ctl) this.connect(); }, this.retry);
    }

    onFrame(frame) {
      let ev = "message", data = "", id = null;
      for (const line of frame.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? "" : line.slice(c + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") ev = val;
        else if (field === "data") data += (data ? "\n" : "") + val;
        else if (field === "id") id = val;
      }
      if (id !== null && /^\d+$/.test(id)) this.lastEventId = Number(id);
      if (!data) return;
      let obj;
      try { obj = JSON.parse(data); } catch (_) { return; }
      if (ev === "status") this.applyStatus(obj);
      else if (ev === "gate") this.applyEvent(obj);
    }

    applyEvent(fe) {
      const e = fe.event || {};
      if (e.event === "alarm_raised") {
        this.addAlarm(e.alarm, e.detail);
        window.__echannel.latencies.push(Date.now() - fe.ts);
        if (window.__echannel.latencies.length > 10000) window.__echannel.latencies.shift();
      } else if (e.event === "alarm_cleared") {
        this.removeAlarm(e.alarm);
      }
    }

    addAlarm(kind, detail) {
      if (this.alarms.has(kind)) return;
      const li = document.createElement("li");
      li.dataset.alarm = kind;
      const label = document.createElement("span");
      label.className = "alarm-label";
      label.dataset.i18n = "alarm_" + kind;
      label.textContent = t("alarm_" + kind);
      if (detail) li.title = detail;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ack";
      b.dataset.i18n = "ack";
      b.textContent = t("ack");
      b.disabled = (ROLE_RANK[role] || 0) < 1;
      b.addEventListener("click", () => this.askCommand("acknowledge_alarm", kind));
      li.append(label, b);
      this.f.alarms.appendChild(li);
      this.alarms.set(kind, li);
      this.alarmsChanged();
      beep();
    }

    removeAlarm(kind) {
      const li = this.alarms.get(kind);
      if (!li) return;
      li.remove();
      this.alarms.delete(kind);
      this.alarmsChanged();
    }

    alarmsChanged() {
      const kinds = [...this.alarms.keys()];
      this.el.dataset.alarms = kinds.join(" ");
      this.el.classList.toggle("alarm", kinds.length > 0);
      updateSummary();
      applyFilter(this);
    }

    applyStatus(s) {
      this.status = s;
      this.online = true;
      if (this.id !== s.gate_id) {
        this.id = s.gate_id;
        this.el.dataset.gateId = s.gate_id;
        setText(this.f.gid, s.gate_id);
      }
      this.el.dataset.gateState = s.mode;
      this.el.dataset.prompt = s.prompt;
      this.renderTexts();
      const want = new Set(s.alarms || []);
      for (const k of [...this.alarms.keys()]) if (!want.has(k)) this.removeAlarm(k);
      for (const k of want) this.addAlarm(k, "");
      updateSummary();
      applyFilter(this);
    }

    // Language-dependent fields (also re-run when the language changes).
    renderTexts() {
      const s = this.status;
      if (!s) { setText(this.f.state, t("state_offline")); return; }
      setText(this.f.state, this.online ? t("state_" + s.mode) : t("state_offline"));
      setText(this.f.step, s.step + (s.txn != null ? " #" + s.txn : ""));
      const pt = s.prompt_text || {};
      setText(this.f.prompt, lang === "zh" ? pt.zh_hant || "" : pt.en || "");
      const door = (d) => {
        const at = d && d[1];
        return at ? t(at) : t("moving");
      };
      setText(this.f.doors, `${t("entry")} ${door(s.entry)} · ${t("exit")} ${door(s.exit)} · ${s.occupancy} ${t("persons")}`);
      const c = s.counters || {};
      setText(this.f.counters, `${t("cleared")} ${c.cleared} · ${t("referred")} ${c.referred} · ${t("held")} ${c.held} · ${t("aborted")} ${c.aborted}`);
      const bad = new Set(s.faults || []);
      for (const d of s.devices || []) if (!d.healthy) bad.add(d.device);
      const devText = bad.size ? [...bad].join(", ") : (s.devices && s.devices.length ? t("all_ok") : t("none"));
      setText(this.f.devices, devText);
      this.f.devices.className = "devices " + (bad.size ? "dev-bad" : "dev-ok");
      const w = s.watchlist;
      let wText = t("none");
      if (w) {
        wText = `${t("version")} ${w.version}`;
        if (w.age_s != null) wText += ` · ${t("age")} ${fmtAge(w.age_s)}`;
        if (w.stale) wText += ` · ${t("stale")}`;
      }
      setText(this.f.watchlist, wText);
      this.f.watchlist.className = "watchlist" + (w && w.stale ? " dev-bad" : "");
      // Each signed list (id, version, age, entries, integrity) in the tooltip.
      const lists = (w && w.lists) || [];
      const tip = lists.map((l) => `${l.list_id} ${t("version")} ${l.version} · ${t("age")} ${fmtAge(l.age_s)} · ${l.documents} + ${l.persons} ${t("persons_listed")} · ${l.integrity}${l.stale ? " · " + t("stale") : ""}`).join("\n");
      if (this.f.watchlist.title !== tip) this.f.watchlist.title = tip;
      setText(this.f.upstream, s.upstream_backlog == null ? t("none") : `${t("backlog")} ${s.upstream_backlog}`);
    }

    askCommand(command, alarm) {
      const label = alarm ? t("alarm_" + alarm) + " — " + t("cmd_acknowledge_alarm") : t("cmd_" + command);
      openConfirm(this, command, alarm, label);
    }

    async send(command, alarm, reason) {
      const body = { command, reason };
      if (alarm) body.alarm = alarm;
      const resp = await fetch(this.base + "/v1/commands", {
        method: "POST",
        headers: authHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify(body),
      });
      let j = {};
      try { j = await resp.json(); } catch (_) { /* not JSON */ }
      return { status: resp.status, ok: resp.ok, body: j };
    }
  }

  function fmtAge(s) {
    if (s == null) return "";
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    return Math.round(s / 3600) + " h";
  }

  // ---- page-level ------------------------------------------------------------------
  function applyFilter(g) {
    const f = $("filter").value;
    let show = true;
    if (f === "alarm") show = g.alarms.size > 0;
    else if (f === "offline") show = !g.online;
    else if (f !== "all") show = g.alarms.has(f);
    g.el.classList.toggle("hidden", !show);
  }

  let summaryQueued = false;
  function updateSummary() {
    if (summaryQueued) return;
    summaryQueued = true;
    requestAnimationFrame(() => {
      summaryQueued = false;
      const n = gates.length;
      const a = gates.filter((g) => g.alarms.size > 0).length;
      const o = gates.filter((g) => !g.online).length;
      setText($("summary"), [t("gates", { n }), t("alarms_n", { n: a }), t("offline_n", { n: o })].join(" · "));
    });
  }

  let pending = null;
  function openConfirm(gate, command, alarm, label) {
    pending = { gate, command, alarm };
    setText($("confirm-title"), label);
    setText($("confirm-text"), t("confirm_text", { cmd: label, gate: gate.id || gate.base }));
    $("reason").value = alarm ? t("ack_reason") : "";
    setText($("confirm-error"), "");
    $("confirm").showModal();
    $("reason").focus();
  }

  async function confirmSubmit(ev) {
    ev.preventDefault();
    if (!pending) return;
    const reason = $("reason").value.trim();
    if (!reason) { setText($("confirm-error"), t("reason")); return; }
    const { gate, command, alarm } = pending;
    $("confirm-ok").disabled = true;
    try {
      const r = await gate.send(command, alarm, reason);
      if (r.ok) {
        $("confirm").close();
        pending = null;
        toast(t("accepted", { gate: gate.id, detail: r.body.detail || "" }), false);
      } else {
        const msg = r.body.error || ("HTTP " + r.status);
        setText($("confirm-error"), r.status + ": " + msg);
        toast(r.status === 409 ? t("refused", { gate: gate.id, detail: r.body.detail || msg }) : msg, true);
      }
    } catch (e) {
      setText($("confirm-error"), String(e));
    } finally {
      $("confirm-ok").disabled = false;
    }
  }

  function showLogin(msg) {
    setText($("login-error"), msg || "");
    if (!$("login").open) $("login").showModal();
  }

  async function signIn(tok) {
    const resp = await fetch("v1/whoami", { headers: { Authorization: "Bearer " + tok } });
    if (!resp.ok) {
      let j = {};
      try { j = await resp.json(); } catch (_) { /* ignore */ }
      showLogin(j.error || t("bad_token"));
      return false;
    }
    const me = await resp.json();
    token = tok;
    role = me.role;
    sessionStorage.setItem("echannel.token", tok);
    setText($("who"), `${me.user} (${me.role})`);
    document.body.dataset.role = me.role;
    return true;
  }

  async function start() {
    gates.forEach((g) => g.applyRole());
    if (gates.length) { gates.forEach((g) => { g.abort = null; g.connect(); }); return; }
    const cfg = await (await fetch("console/config.json")).json();
    const bases = [""].concat(cfg.peers || []);
    const frag = document.createDocumentFragment();
    for (const b of bases) {
      const g = new Gate(b);
      gates.push(g);
      frag.appendChild(g.el);
    }
    $("grid").appendChild(frag);
    updateSummary();
    gates.forEach((g) => g.connect());
  }

  function setLang(l) {
    lang = l;
    localStorage.setItem("echannel.lang", l);
    document.documentElement.lang = l === "zh" ? "zh-Hant" : "en";
    $("lang").textContent = l === "zh" ? "English" : "繁體中文";
    applyI18n(document);
    $("mute").textContent = muted ? t("unmute") : t("mute");
    gates.forEach((g) => g.renderTexts());
    updateSummary();
  }

  document.addEventListener("DOMContentLoaded", async () => {
    setLang(lang);
    $("lang").addEventListener("click", () => setLang(lang === "en" ? "zh" : "en"));
    $("mute").addEventListener("click", () => { muted = !muted; $("mute").textContent = muted ? t("unmute") : t("mute"); });
    $("filter").addEventListener("change", () => gates.forEach(applyFilter));
    $("confirm-form").addEventListener("submit", confirmSubmit);
    $("confirm-cancel").addEventListener("click", () => { pending = null; $("confirm").close(); });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem("echannel.token");
      token = "";
      gates.forEach((g) => { const a = g.abort; g.abort = null; if (a) a.abort(); g.setOffline(); });
      showLogin("");
    });
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!audio) { try { audio = new AudioContext(); } catch (_) { audio = null; } }
      if (await signIn($("token").value.trim())) { $("login").close(); $("token").value = ""; start(); }
    });
    // A link like /#token=SECRET (printed by `gate-sim demo` and `gated` for their one-time
    // local users) signs in; the fragment never reaches a server and is removed at once.
    const m = /^#token=([0-9A-Za-z._~-]+)$/.exec(location.hash);
    if (m) { token = m[1]; history.replaceState(null, "", location.pathname + location.search); }
    if (token && (await signIn(token))) start();
    else showLogin("");
  });
})();
