// The studio's flow form: every change rewrites the YAML beside it; save and test send call the page's API.
(() => {
  "use strict";
  const form = document.getElementById("flow-form");
  if (!form) return;
  const name = form.dataset.name;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const $ = (id) => document.getElementById(id);
  const source = $("source");

  // A plain YAML scalar when it is safe, else a JSON string (valid YAML, every character escaped).
  const scalar = (value) => (/^[A-Za-z0-9_.\-]+$/.test(value) ? value : JSON.stringify(value));
  const value = (root, cls) => (root.querySelector(cls)?.value ?? "").trim();

  function stepYaml(box) {
    const lines = [`  - name: ${scalar(value(box, ".f-name"))}`, `    after: ${scalar(value(box, ".f-after"))}`];
    lines.push(`    channel: ${value(box, ".f-channel")}`);
    const variants = [...box.querySelectorAll(".variant")];
    if (variants.length) {
      lines.push("    variants:");
      for (const row of variants) {
        const weight = value(row, ".v-weight") || "0";
        lines.push(`      - {name: ${scalar(value(row, ".v-name"))}, weight: ${weight}, template: ${scalar(value(row, ".v-template"))}}`);
      }
    } else if (value(box, ".f-template")) {
      lines.push(`    template: ${scalar(value(box, ".f-template"))}`);
    }
    if (value(box, ".f-when")) lines.push(`    when: ${JSON.stringify(value(box, ".f-when"))}`);
    const offer = value(box, ".f-offer"), valid = scalar(value(box, ".f-valid") || "48h");
    if (offer === "percent") lines.push(`    offer: {percent: ${value(box, ".f-percent") || 10}, valid_for: ${valid}}`);
    if (offer === "free_shipping") lines.push(`    offer: {free_shipping: true, valid_for: ${valid}}`);
    if (value(box, ".f-fallback")) lines.push(`    fallback: ${value(box, ".f-fallback")}`);
    if (value(box, ".f-mode") === "direct") lines.push("    mode: direct");
    return lines;
  }

  function writeYaml() {
    const lines = [`name: ${scalar(name)}`, `trigger: ${$("f-trigger").value}`];
    if ($("f-reentry").value.trim()) lines.push(`reentry_after: ${scalar($("f-reentry").value.trim())}`);
    if ($("f-enabled").value === "false") lines.push("enabled: false");
    lines.push("steps:");
    for (const box of $("steps").querySelectorAll("fieldset.step")) lines.push(...stepYaml(box));
    source.value = lines.join("\n") + "\n";
  }

  function addFrom(templateId, into) {
    const fragment = $(templateId).content.cloneNode(true);
    into.appendChild(fragment);
  }

  form.addEventListener("input", (event) => { if (event.target !== source) writeYaml(); });
  form.addEventListener("change", (event) => { if (event.target !== source) writeYaml(); });
  form.addEventListener("click", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.classList.contains("add-variant")) addFrom("variant-template", target.closest("fieldset.step").querySelector(".variants"));
    else if (target.classList.contains("remove-variant")) target.closest(".variant").remove();
    else if (target.classList.contains("remove-step")) target.closest("fieldset.step").remove();
    else if (target.id === "add-step") addFrom("step-template", $("steps"));
    else return;
    writeYaml();
  });

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { data = {}; }
    return { status: response.status, data };
  }

  $("save").addEventListener("click", async () => {
    const errors = $("errors");
    errors.textContent = "";
    $("save-status").textContent = "…";
    const { status, data } = await post("/studio/flows/save", { name, source: source.value, comment: $("comment").value || null });
    if (status === 201) {
      $("save-status").textContent = `saved: version ${data.version} (new journeys within seconds)`;
      return;
    }
    $("save-status").textContent = "not saved";
    for (const error of data.errors || [{ line: null, message: data.detail || String(status) }]) {
      const item = document.createElement("li");
      item.textContent = error.line ? `line ${error.line}: ${error.message}` : error.message;
      item.dataset.line = error.line ?? "";
      errors.appendChild(item);
    }
  });

  $("test-send").addEventListener("click", async () => {
    const list = $("test-status");
    list.textContent = "";
    const body = { name, email: $("test-email").value || null, phone: $("test-phone").value || null };
    const { status, data } = await post("/studio/flows/test-send", body);
    const rows = status === 202 ? data.steps.map((s) => `${s.step}${s.variant ? " / " + s.variant : ""} (${s.channel}): ${s.outcome}`)
      : (data.errors || [{ message: JSON.stringify(data.detail || status) }]).map((e) => e.message);
    for (const text of rows) {
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    }
  });
})();
