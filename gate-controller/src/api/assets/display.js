// Traveller display: large pictogram + prompt in English, Traditional and Simplified
// Chinese, live from /display/events (no authentication, prompt data only).
"use strict";
(function () {
  const S = 'viewBox="0 0 200 200" fill="none" stroke="currentColor" stroke-width="8" stroke-linecap="round" stroke-linejoin="round"';
  const PICTO = {
    present_document: `<svg ${S}><rect x="55" y="20" width="90" height="120" rx="8"/><line x1="75" y1="50" x2="125" y2="50"/><circle cx="100" cy="90" r="18"/><rect x="30" y="160" width="140" height="24" rx="6"/><path d="M100 145 v8 m-10 -8 l10 10 l10 -10"/></svg>`,
    reading_document: `<svg ${S}><rect x="40" y="60" width="80" height="110" rx="8"/><path d="M135 80 q15 20 0 40"/><path d="M150 65 q28 35 0 70"/><path d="M165 50 q40 50 0 100"/></svg>`,
    enter: `<svg ${S}><circle cx="70" cy="40" r="16"/><path d="M70 60 v55 l-20 55 m20 -55 l25 50 M70 80 l-25 20 m25 -20 l30 10"/><path d="M125 100 h55 m-20 -20 l20 20 l-20 20"/></svg>`,
    one_person_only: `<svg ${S}><circle cx="100" cy="45" r="20"/><path d="M100 70 v60 m0 0 l-25 50 m25 -50 l25 50 M65 95 h70"/><circle cx="100" cy="100" r="92" stroke-width="6"/></svg>`,
    place_thumb: `<svg ${S}><rect x="30" y="140" width="140" height="40" rx="8"/><path d="M80 140 v-70 a20 20 0 0 1 40 0 v70"/><path d="M90 80 a10 10 0 0 1 20 0 M90 100 h20"/></svg>`,
    try_again: `<svg ${S}><path d="M160 100 a60 60 0 1 1 -18 -43"/><path d="M150 20 v40 h-40"/></svg>`,
    please_wait: `<svg ${S}><path d="M60 25 h80 M60 175 h80 M70 25 c0 50 60 50 60 75 c0 25 -60 25 -60 75 M130 25 c0 50 -60 50 -60 75 c0 25 60 25 60 75"/></svg>`,
    proceed: `<svg ${S} stroke-width="14"><path d="M30 100 h130 m-50 -50 l50 50 l-50 50"/></svg>`,
    go_to_counter: `<svg ${S}><rect x="20" y="120" width="110" height="60"/><path d="M20 120 h110"/><circle cx="75" cy="75" r="18"/><path d="M50 120 q25 -30 50 0"/><path d="M150 60 h40 m-15 -15 l15 15 l-15 15"/></svg>`,
    wait_for_officer: `<svg ${S}><path d="M70 40 h60 l-8 -20 h-44 z"/><circle cx="100" cy="62" r="20"/><path d="M60 180 v-50 a40 40 0 0 1 80 0 v50"/><path d="M100 110 v30"/></svg>`,
    out_of_service: `<svg ${S} stroke-width="12"><circle cx="100" cy="100" r="80"/><path d="M45 100 h110"/></svg>`,
    accompanied_child: `<svg ${S}><circle cx="60" cy="40" r="16"/><path d="M60 60 v55 l-18 55 m18 -55 l18 55 M60 80 l40 25"/><circle cx="118" cy="95" r="11"/><path d="M118 110 v35 l-12 30 m12 -30 l12 30 M100 105 l18 10"/><path d="M150 60 h40 m-15 -15 l15 15 l-15 15"/></svg>`,
    present_again: `<svg ${S}><rect x="55" y="20" width="90" height="120" rx="8"/><line x1="75" y1="50" x2="125" y2="50"/><rect x="30" y="160" width="140" height="24" rx="6"/><path d="M150 100 a35 35 0 1 1 -10 -25"/><path d="M145 55 v22 h-22"/></svg>`,
    emergency: `<svg ${S}><path d="M100 20 l85 150 h-170 z"/><path d="M100 75 v45"/><circle cx="100" cy="145" r="4" fill="currentColor"/></svg>`,
  };
  const TONE = {
    proceed: "go", enter: "go",
    try_again: "wait", present_again: "wait", please_wait: "wait", reading_document: "wait", one_person_only: "wait",
    go_to_counter: "stop", accompanied_child: "stop", wait_for_officer: "stop", out_of_service: "stop", emergency: "stop",
  };
  const root = document.getElementById("display");
  const conn = document.getElementById("conn");
  function show(v) {
    root.dataset.prompt = v.prompt;
    root.dataset.mode = v.mode;
    root.className = TONE[v.prompt] || "";
    document.getElementById("picto").innerHTML = PICTO[v.prompt] || "";
    document.getElementById("en").textContent = v.text.en;
    document.getElementById("zh-hant").textContent = v.text.zh_hant;
    document.getElementById("zh-hans").textContent = v.text.zh_hans;
  }
  function connect() {
    const es = new EventSource("display/events");
    es.addEventListener("prompt", (e) => {
      conn.textContent = "";
      conn.className = "";
      try { show(JSON.parse(e.data)); } catch (_) { /* ignore a malformed frame */ }
    });
    es.onerror = () => { conn.textContent = "● connecting…"; conn.className = "down"; };
  }
  connect();
})();
