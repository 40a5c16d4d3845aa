// The studio's editor: live preview while typing, inline errors at their line, save, diff and rollback.
(() => {
  "use strict";
  const form = document.getElementById("studio-editor");
  if (!form) return;
  // The page's CSP allows no inline handlers: Enter in a field must not submit the editor as a GET.
  form.addEventListener("submit", (event) => event.preventDefault());
  const path = form.dataset.path;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const $ = (id) => document.getElementById(id);
  const source = $("source"), gutter = $("gutter"), errors = $("errors");
  let timer = null, sequence = 0;

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { data = { errors: [{ line: null, message: response.statusText }] }; }
    return { status: response.status, data };
  }

  function drawGutter(bad) {
    const lines = source.value.split("\n").length;
    const out = [];
    for (let n = 1; n <= lines; n += 1) out.push(bad.has(n) ? `▶${n}` : String(n));
    gutter.textContent = out.join("\n");
    gutter.scrollTop = source.scrollTop;
  }

  function showErrors(list) {
    errors.replaceChildren();
    const bad = new Set();
    for (const error of list) {
      const item = document.createElement("li");
      item.className = "error";
      if (error.line) { bad.add(error.line); item.dataset.line = error.line; }
      item.textContent = (error.line ? `line ${error.line}: ` : "") + error.message;
      errors.append(item);
    }
    drawGutter(bad);
  }

  function showPreview(answer) {
    $("preview-subject").textContent = answer.subject || "";
    $("preview-text").textContent = answer.text || "";
    $("preview-html").srcdoc = answer.html || "";
    $("preview-html").hidden = !answer.html;
    $("preview-subject").parentElement.hidden = Boolean(answer.sms);
    const info = $("sms-info"), warning = $("sms-warning");
    if (answer.sms) {
      info.textContent = `${answer.sms.segments} segment(s) · ${answer.sms.encoding} · ${answer.sms.characters} characters`;
      info.dataset.segments = answer.sms.segments;
      info.dataset.encoding = answer.sms.encoding;
      const forcing = answer.sms.non_gsm || [];
      warning.hidden = forcing.length === 0;
      warning.textContent = `${warning.dataset.text} ${forcing.join(" ")}`;
    } else {
      info.textContent = "";
      warning.hidden = true;
    }
  }

  async function preview() {
    const mine = ++sequence;
    const { status, data } = await post("/studio/preview", {
      path, source: source.value, sample: $("sample").value || null, cart_id: $("cart-id").value || null,
    });
    if (mine !== sequence) return;  // a newer keystroke already asked
    if (status === 200) { showErrors([]); showPreview(data); } else { showErrors(data.errors || [{ message: data.detail || status }]); }
  }

  function later() { clearTimeout(timer); timer = setTimeout(preview, 250); }

  async function save() {
    const { status, data } = await post("/studio/save", { path, source: source.value, comment: $("comment").value || null });
    const label = $("save-status");
    if (status === 201) {
      label.textContent = `✓ v${data.version}`;
      window.location.reload();
    } else {
      showErrors(data.errors || [{ message: data.detail || status }]);
      label.textContent = "✗";
    }
  }

  form.addEventListener("click", async (event) => {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.classList.contains("rollback")) {
      const { status, data } = await post("/studio/rollback", { path, version: Number(target.dataset.version) });
      if (status === 200) window.location.reload(); else showErrors(data.errors || []);
    } else if (target.classList.contains("diff")) {
      const live = $("live-version").value;
      const url = `/studio/diff?path=${encodeURIComponent(path)}&old=${target.dataset.version}&new=${live}`;
      const view = $("diff");
      view.textContent = await (await fetch(url)).text();
      view.hidden = false;
    } else if (target.dataset.line) {
      const line = Number(target.dataset.line);
      const offset = source.value.split("\n").slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
      source.focus();
      source.setSelectionRange(offset, offset);
    }
  });
  source.addEventListener("input", () => { drawGutter(new Set()); later(); });
  source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
  $("sample").addEventListener("change", preview);
  $("cart-id").addEventListener("change", preview);
  $("save").addEventListener("click", save);
  drawGutter(new Set());
  preview();
})();
