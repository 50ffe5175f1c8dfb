// The sandbox web client: renders the workspace the sandbox holds, acts through its control API.
// Every piece of workspace text is set with textContent, never parsed as HTML: messages, alerts and action output
// are untrusted.
"use strict";

const S = {
  state: null,
  user: null,
  channel: null,
  thread: null,
  pinsOpen: false,
  fetching: false,
  again: false,
  dismissed: new Set(),
  seen: JSON.parse(localStorage.getItem("rollbot-sandbox-seen") || "{}"),
  sig: {},
  modalKey: null,
};

const EMOJI = {
  rotating_light: "🚨", white_check_mark: "✅", heavy_check_mark: "✔️", check: "✔️", x: "❌", no_entry: "⛔",
  warning: "⚠️", alarm_clock: "⏰", stopwatch: "⏱️", hourglass: "⌛", hourglass_flowing_sand: "⏳", test_tube: "🧪",
  pause_button: "⏸️", keyboard: "⌨️", target: "🎯", octagonal_sign: "🛑", lock: "🔒", email: "📧",
  bust_in_silhouette: "👤", busts_in_silhouette: "👥", arrows_counterclockwise: "🔄", bell: "🔔", pushpin: "📌",
  memo: "📝", clipboard: "📋", rocket: "🚀", fire: "🔥", tada: "🎉", eyes: "👀", mega: "📣", loudspeaker: "📢",
  large_green_circle: "🟢", large_yellow_circle: "🟡", red_circle: "🔴", large_blue_circle: "🔵",
  white_circle: "⚪", black_circle: "⚫", heavy_minus_sign: "➖", arrow_right: "➡️", fast_forward: "⏩",
  repeat: "🔁", gear: "⚙️", wrench: "🔧", hammer_and_wrench: "🛠️", page_facing_up: "📄", bar_chart: "📊",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", telephone_receiver: "📞", pager: "📟",
  thumbsup: "👍", "+1": "👍", thumbsdown: "👎", wave: "👋", calendar: "📅", clock1: "🕐", mag: "🔍",
  link: "🔗", shield: "🛡️", traffic_light: "🚦", vertical_traffic_light: "🚦", construction: "🚧",
  recycle: "♻️", skull: "💀", ballot_box_with_check: "☑️", black_square_button: "🔲", white_square_button: "🔳",
  heavy_multiplication_x: "✖️", information_source: "ℹ️", question: "❓", exclamation: "❗", speech_balloon: "💬",
  scroll: "📜", package: "📦", floppy_disk: "💾", card_file_box: "🗃️", satellite: "📡", sos: "🆘",
  checkered_flag: "🏁", running: "🏃", zap: "⚡", stop_sign: "🛑", green_heart: "💚", broken_heart: "💔",
};

// --- tiny DOM helpers -------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) node.setAttribute(k, String(v));
    else node[k] = v;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function safeUrl(url) {
  // Absolute http(s)/mailto only: no javascript:, no data:, no relative paths into the sandbox itself.
  try {
    const parsed = new URL(String(url));
    return ["http:", "https:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
  } catch (_e) {
    return null;
  }
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

// --- workspace lookups ------------------------------------------------------------------------------------

function users() { return S.state ? S.state.users : []; }
function humans() { return users().filter((u) => !u.is_bot); }
function userName(id) {
  const u = users().find((x) => x.id === id);
  return u ? (u.real_name || u.name) : id;
}
function allChannels() { return S.state ? S.state.channels.concat(S.state.dms) : []; }
function channelById(id) { return allChannels().find((c) => c.id === id); }
function isDm(c) { return c && c.user !== undefined; }
function myChannels() { return S.state.channels.filter((c) => c.members.includes(S.user) && !c.is_archived); }
function myDms() { return S.state.dms.filter((c) => c.user === S.user); }
function channelLabel(c) { return isDm(c) ? S.state.bot.name : "#" + c.name; }
function myEphemerals(channelId) {
  return ((S.state.ephemerals || {})[S.user] || []).filter((e) => e.channel === channelId && !S.dismissed.has(e.ts));
}
function groupHandle(id) {
  const g = (S.state.usergroups || []).find((x) => x.id === id);
  return g ? g.handle : id;
}

// --- mrkdwn -----------------------------------------------------------------------------------------------

function unescape(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function mentionNode(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) return el("span", { class: "mention", text: "@" + userName(target.slice(1)) });
  if (target.startsWith("#")) {
    const c = channelById(target.slice(1));
    return el("span", { class: "mention", text: "#" + (label || (c ? c.name : target.slice(1))) });
  }
  if (target.startsWith("!subteam^")) return el("span", { class: "mention", text: label || "@" + groupHandle(target.slice(9)) });
  if (target.startsWith("!date^")) {
    const [, epoch] = target.split("^");
    const when = new Date(Number(epoch) * 1000);
    return document.createTextNode(isNaN(when) ? unescape(label || "") : when.toLocaleString());
  }
  if (target.startsWith("!")) return el("span", { class: "mention", text: "@" + target.slice(1) });
  const href = safeUrl(unescape(target));
  const shown = unescape(label || target);
  if (!href) return document.createTextNode(shown);
  return el("a", { href, target: "_blank", rel: "noopener noreferrer", text: shown });
}

const INLINE = [
  { re: /<([^<>\n]+)>/, make: (m) => mentionNode(m[1]) },
  { re: /`([^`\n]+)`/, make: (m) => el("code", { text: unescape(m[1]) }) },
  { re: /(^|[^\w*])\*(?=\S)([^*\n]*?\S)\*(?!\w)/, lead: true, make: (m) => el("b", {}, inline(m[2])) },
  { re: /(^|[^\w_])_(?=\S)([^_\n]*?\S)_(?!\w)/, lead: true, make: (m) => el("i", {}, inline(m[2])) },
  { re: /(^|[^\w~])~(?=\S)([^~\n]*?\S)~(?!\w)/, lead: true, make: (m) => el("s", {}, inline(m[2])) },
  { re: /:([a-z0-9_+-]+):/, make: (m) => document.createTextNode(EMOJI[m[1]] || m[0]) },
];

function inline(text) {
  const out = document.createDocumentFragment();
  let rest = text;
  while (rest) {
    let best = null;
    for (const rule of INLINE) {
      const m = rule.re.exec(rest);
      if (!m) continue;
      const start = m.index + (rule.lead ? m[1].length : 0);
      if (!best || start < best.start) best = { rule, m, start };
    }
    if (!best) { out.append(document.createTextNode(unescape(rest))); break; }
    if (best.start > 0) out.append(document.createTextNode(unescape(rest.slice(0, best.start))));
    out.append(best.rule.make(best.m));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  return out;
}

function mrkdwn(text) {
  const box = el("div", { class: "mrkdwn" });
  const parts = String(text || "").split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 1) { box.append(el("pre", { text: unescape(part.replace(/^\n/, "")) })); return; }
    const lines = part.split("\n");
    lines.forEach((line, j) => {
      const quote = /^(>|&gt;)\s?/.exec(line);
      if (quote) box.append(el("blockquote", {}, inline(line.slice(quote[0].length))));
      else {
        box.append(inline(line));
        if (j < lines.length - 1) box.append("\n");
      }
    });
  });
  return box;
}

function textObject(obj) {
  if (!obj) return document.createTextNode("");
  if (typeof obj === "string") return document.createTextNode(obj);
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  return el("span", { class: "plain", text: String(obj.text || "") });
}
function plain(obj) { return obj ? (typeof obj === "string" ? obj : String(obj.text || "")) : ""; }

// --- Block Kit --------------------------------------------------------------------------------------------
// ctx: {kind: "message", channel, ts} (elements act at once) or {kind: "view", view} (inputs collected).

function renderBlocks(blocks, ctx) {
  const box = el("div", { class: "blocks" });
  for (const block of blocks || []) box.append(renderBlock(block, ctx));
  return box;
}

function renderBlock(block, ctx) {
  const wrap = el("div", { class: "bk-block", "data-type": block.type, "data-block-id": block.block_id || "" });
  switch (block.type) {
    case "header":
      wrap.append(el("div", { class: "bk-header", text: plain(block.text) }));
      break;
    case "section": {
      wrap.className += " bk-section";
      const main = el("div", { class: "bk-section-main" });
      if (block.text) main.append(textObject(block.text));
      if (block.fields) main.append(el("div", { class: "bk-fields" }, ...block.fields.map(textObject)));
      wrap.append(main);
      if (block.accessory) wrap.append(renderElement(block.accessory, block, ctx));
      break;
    }
    case "context":
      wrap.className += " bk-context";
      for (const e of block.elements || []) {
        if (e.type === "image") wrap.append(image(e.image_url, e.alt_text));
        else wrap.append(textObject(e));
      }
      break;
    case "divider":
      return el("hr", { class: "bk-divider" });
    case "actions":
      wrap.className += " bk-actions";
      for (const e of block.elements || []) wrap.append(renderElement(e, block, ctx));
      break;
    case "image":
      wrap.className += " bk-image";
      if (block.title) wrap.append(el("div", { class: "bk-image-title", text: plain(block.title) }));
      wrap.append(image(block.image_url, block.alt_text));
      break;
    case "input":
      return renderInput(block, ctx);
    case "rich_text":
      wrap.append(el("div", { class: "mrkdwn", text: richText(block) }));
      break;
    default:
      wrap.append(el("div", { class: "bk-unsupported", text: "[" + block.type + " block]" }));
  }
  return wrap;
}

function richText(node) {
  if (!node || typeof node !== "object") return "";
  if (node.type === "text") return node.text || "";
  if (node.type === "link") return node.text || node.url || "";
  if (node.type === "user") return "@" + userName(node.user_id);
  return (node.elements || []).map(richText).join("");
}

function image(url, alt) {
  const src = safeUrl(url);
  return src ? el("img", { src, alt: alt || "", class: "bk-accessory-image" }) : el("span", { text: alt || "" });
}

function allOptions(element) {
  if (element.option_groups) return element.option_groups.flatMap((g) => g.options || []);
  return element.options || [];
}

function renderElement(e, block, ctx) {
  const act = (value) => activate(e, block, ctx, value);
  const common = { "data-action-id": e.action_id || "" };
  switch (e.type) {
    case "button": {
      const url = safeUrl(e.url);
      return el("button", {
        ...common, type: "button", class: "bk-button" + (e.style ? " " + e.style : ""), text: plain(e.text),
        "data-value": e.value, onclick: () => { if (url) window.open(url, "_blank", "noopener"); act(e.value); },
      });
    }
    case "static_select":
    case "users_select":
    case "conversations_select":
    case "channels_select": {
      const select = el("select", { ...common, class: "bk-select", "aria-label": plain(e.placeholder) || "Select" });
      select.append(el("option", { value: "", text: plain(e.placeholder) || "Select…", disabled: true }));
      let options;
      let current;
      if (e.type === "users_select") {
        options = humans().map((u) => ({ value: u.id, text: u.real_name || u.name }));
        current = e.initial_user;
      } else if (e.type === "static_select") {
        options = allOptions(e).map((o) => ({ value: o.value, text: plain(o.text) }));
        current = e.initial_option && e.initial_option.value;
      } else {
        options = S.state.channels.map((c) => ({ value: c.id, text: "#" + c.name }));
        current = e.initial_conversation || e.initial_channel;
      }
      for (const o of options) select.append(el("option", { value: o.value, text: o.text }));
      select.value = current || "";
      if (ctx.kind === "message") select.addEventListener("change", () => act(select.value));
      return select;
    }
    case "overflow": {
      const box = el("span", { class: "bk-overflow" });
      const menu = el("div", { class: "bk-overflow-menu", hidden: true });
      for (const o of e.options || []) {
        menu.append(el("button", {
          type: "button", text: plain(o.text), "data-value": o.value,
          onclick: () => { menu.hidden = true; act(o.value); },
        }));
      }
      box.append(el("button", {
        ...common, type: "button", class: "bk-button", text: "⋯", "aria-label": "More actions",
        onclick: () => { menu.hidden = !menu.hidden; },
      }), menu);
      return box;
    }
    case "checkboxes":
    case "radio_buttons": {
      const ticked = new Set((e.initial_options || []).map((o) => o.value));
      if (e.initial_option) ticked.add(e.initial_option.value);
      const box = el("div", { ...common, class: e.type === "checkboxes" ? "bk-checkboxes" : "bk-radio" });
      const group = "g" + Math.random().toString(36).slice(2);
      for (const o of e.options || []) {
        const input = el("input", {
          type: e.type === "checkboxes" ? "checkbox" : "radio", name: group, value: o.value, checked: ticked.has(o.value),
          "data-value": o.value,
        });
        if (ctx.kind === "message") input.addEventListener("change", () => act(o.value));
        box.append(el("label", {}, input, " ", textObject(o.text)));
        if (o.description) box.append(el("div", { class: "desc" }, textObject(o.description)));
      }
      return box;
    }
    case "image":
      return image(e.image_url, e.alt_text);
    case "plain_text_input":
      return e.multiline
        ? el("textarea", { ...common, rows: 3, value: e.initial_value || "", placeholder: plain(e.placeholder) })
        : el("input", { ...common, type: "text", value: e.initial_value || "", placeholder: plain(e.placeholder) });
    case "number_input":
      return el("input", { ...common, type: "number", value: e.initial_value || "", step: e.is_decimal_allowed ? "any" : "1" });
    default:
      return el("span", { class: "bk-unsupported", text: "[" + e.type + "]" });
  }
}

function renderInput(block, ctx) {
  const errors = (ctx.view && ctx.view.errors) || {};
  const error = errors[block.block_id];
  const wrap = el("div", { class: "bk-block bk-input" + (error ? " has-error" : ""), "data-block-id": block.block_id || "" });
  wrap.append(el("label", {}, plain(block.label), block.optional ? el("span", { class: "optional", text: " (optional)" }) : null));
  wrap.append(renderElement(block.element || {}, block, ctx));
  if (block.hint) wrap.append(el("div", { class: "hint", text: plain(block.hint) }));
  wrap.append(el("div", { class: "error", text: error || "", hidden: !error }));
  return wrap;
}

async function activate(element, block, ctx, value) {
  if (ctx.kind !== "message") return;
  if (element.confirm && !(await confirmDialog(element.confirm))) { render(true); return; }
  const body = { user: S.user, channel: ctx.channel, ts: ctx.ts, action_id: element.action_id, block_id: block.block_id };
  if (value !== undefined && value !== null) body.value = value;
  await post("/_sandbox/click", body);
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const layer = $("confirm-layer");
    const done = (answer) => { layer.hidden = true; layer.replaceChildren(); resolve(answer); };
    layer.replaceChildren(el("div", { class: "confirm", role: "dialog" },
      el("header", { text: plain(confirm.title) || "Are you sure?" }),
      el("div", { class: "confirm-body" }, textObject(confirm.text)),
      el("footer", {},
        el("button", { type: "button", class: "deny", text: plain(confirm.deny) || "Cancel", onclick: () => done(false) }),
        el("button", { type: "button", class: "ok" + (confirm.style === "danger" ? " danger" : ""),
          text: plain(confirm.confirm) || "Yes", onclick: () => done(true) }))));
    layer.hidden = false;
  });
}

// --- talking to the sandbox -------------------------------------------------------------------------------

async function post(path, body) {
  try {
    const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await response.json();
    if (!response.ok) toast("The sandbox refused: " + (answer.error || response.status));
    else if (answer.status !== undefined && answer.status !== 200) toast("The app answered HTTP " + answer.status);
    return answer;
  } catch (err) {
    toast("The sandbox did not answer: " + err);
    return null;
  } finally {
    refresh();
  }
}

async function refresh() {
  if (S.fetching) { S.again = true; return; }
  S.fetching = true;
  try {
    do {
      S.again = false;
      const response = await fetch("/_sandbox/ui/state", { cache: "no-store" });
      S.state = await response.json();
      render(false);
    } while (S.again);
  } catch (_e) {
    // the stream reconnects and asks again
  } finally {
    S.fetching = false;
  }
}

function listen() {
  const conn = $("conn");
  const source = new EventSource("/_sandbox/stream");
  source.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
  source.onmessage = () => refresh();
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn"; };
}

// --- rendering --------------------------------------------------------------------------------------------

const COLORS = ["#4a154b", "#1264a3", "#2eb67d", "#e01e5a", "#ecb22e", "#36c5f0", "#611f69", "#0b4c8c"];
function avatar(id) {
  const name = userName(id);
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return el("div", { class: "avatar", style: "background:" + COLORS[h % COLORS.length], text: name.slice(0, 1).toUpperCase() });
}

function clock(ts) {
  const d = new Date(Number(ts) * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function renderMessage(m, channel, opts) {
  const isBot = Boolean(m.bot_id) || m.user === S.state.bot.user_id;
  const pinned = (channel.pins || []).includes(m.ts);
  const ctx = { kind: "message", channel: channel.id, ts: m.ts };
  const classes = "message" + (opts.ephemeral ? " ephemeral" : "") + (pinned ? " pinned" : "");
  const meta = el("div", { class: "meta" },
    el("span", { class: "author", text: isBot ? S.state.bot.name : userName(m.user) }),
    isBot ? el("span", { class: "app-badge", text: "APP" }) : null,
    el("span", { class: "time", text: clock(m.ts) }),
    m.edited ? el("span", { class: "note", text: "(edited)" }) : null,
    pinned ? el("span", { class: "note pin-mark", text: "📌 Pinned" }) : null,
    opts.ephemeral ? el("span", { class: "note", text: "Only visible to you" }) : null,
    opts.ephemeral ? el("button", { type: "button", class: "thread-link", text: "Dismiss",
      onclick: () => { S.dismissed.add(m.ts); render(true); } }) : null);
  const content = m.blocks && m.blocks.length ? renderBlocks(m.blocks, ctx) : mrkdwn(m.text);
  const body = el("div", { class: "body" }, meta, content);
  if (m.reactions && m.reactions.length) {
    body.append(el("div", { class: "reactions" }, ...m.reactions.map((r) => el("span", { text: (EMOJI[r.name] || ":" + r.name + ":") + " " + r.count }))));
  }
  for (const f of m.files || []) {
    const file = (S.state.files || []).find((x) => x.id === f.id);
    const title = file ? (file.title || file.filename || f.id) : f.id;
    body.append(el("div", {}, el("a", { href: "/_sandbox/files/" + encodeURIComponent(f.id), text: "📄 " + title })));
  }
  if (opts.threadLink) {
    const replies = (m.replies || []).length + myEphemerals(channel.id).filter((e) => e.thread_ts === m.ts).length;
    body.append(el("button", { type: "button", class: "thread-link",
      text: replies ? replies + (replies === 1 ? " reply" : " replies") : "Reply in thread",
      "data-replies": replies, onclick: () => { S.thread = m.ts; render(true); } }));
  }
  return el("div", { class: classes, "data-ts": m.ts }, avatar(isBot ? S.state.bot.user_id : m.user), body);
}

function unreadCount(c) {
  const seen = S.seen[S.user + "|" + c.id] || "0";
  return c.messages.filter((m) => Number(m.ts) > Number(seen) && m.user !== S.user).length;
}

function markSeen(c) {
  const latest = c.messages.reduce((top, m) => (Number(m.ts) > Number(top) ? m.ts : top), "0");
  const key = S.user + "|" + c.id;
  if (latest !== S.seen[key]) {
    S.seen[key] = latest;
    localStorage.setItem("rollbot-sandbox-seen", JSON.stringify(S.seen));
  }
}

function changed(key, value) {
  const sig = JSON.stringify(value);
  if (S.sig[key] === sig) return false;
  S.sig[key] = sig;
  return true;
}

function renderSidebar() {
  $("team-name").textContent = S.state.team.name;
  const picker = $("act-as");
  if (changed("picker", humans().map((u) => u.id))) {
    picker.replaceChildren(...humans().map((u) => el("option", { value: u.id, text: (u.real_name || u.name) + " (@" + u.name + ")" })));
  }
  picker.value = S.user;
  const item = (c) => {
    const count = c.id === S.channel ? 0 : unreadCount(c);
    return el("li", {
      class: (c.id === S.channel ? "selected" : "") + (count ? " unread" : ""), "data-channel": c.id,
      "data-name": isDm(c) ? S.state.bot.name : c.name, onclick: () => select(c.id),
    }, el("span", { text: channelLabel(c) }), count ? el("span", { class: "badge", text: String(count) }) : null);
  };
  const channels = myChannels();
  const dms = myDms();
  if (changed("sidebar", [S.user, S.channel, channels.map((c) => [c.id, c.name, unreadCount(c)]), dms.map((c) => [c.id, unreadCount(c)])])) {
    $("channels").replaceChildren(...channels.map(item));
    $("dms").replaceChildren(...(dms.length ? dms.map(item) : [el("li", { class: "empty", text: "none yet" })]));
  }
}

function renderChannel(force) {
  const c = channelById(S.channel);
  if (!c) return;
  const ephemerals = myEphemerals(c.id);
  if (!force && !changed("channel", [S.user, c, ephemerals, S.pinsOpen, S.thread, users()])) return;
  S.sig.channel = JSON.stringify([S.user, c, ephemerals, S.pinsOpen, S.thread, users()]);
  $("channel-title").textContent = channelLabel(c);
  $("channel-topic").textContent = c.topic || "";
  $("pin-count").textContent = String((c.pins || []).length);
  $("bookmarks").replaceChildren(...(c.bookmarks || []).map((b) => {
    const href = safeUrl(b.link);
    return href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: "🔖 " + (b.title || b.link) })
      : el("span", { text: "🔖 " + (b.title || "") });
  }));
  const pins = $("pins-panel");
  pins.hidden = !S.pinsOpen;
  if (S.pinsOpen) {
    const pinned = c.messages.filter((m) => (c.pins || []).includes(m.ts));
    pins.replaceChildren(el("b", { text: "Pinned items" }),
      ...(pinned.length ? pinned.map((m) => renderMessage(m, c, {})) : [el("div", { class: "empty", text: "Nothing pinned yet." })]));
  }
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = c.messages.map((m) => ({ ts: m.ts, node: () => renderMessage(m, c, { threadLink: !isDm(c) || (m.replies || []).length }) }))
    .concat(ephemerals.filter((e) => !e.thread_ts).map((e) => ({ ts: e.ts, node: () => renderMessage({ ...e, user: S.state.bot.user_id, bot_id: S.state.bot.bot_id }, c, { ephemeral: true }) })))
    .sort((a, b) => Number(a.ts) - Number(b.ts));
  list.replaceChildren(...(items.length ? items.map((i) => i.node()) : [el("div", { class: "empty", text: "No messages yet." })]));
  if (atBottom || force) list.scrollTop = list.scrollHeight;
  $("composer-input").placeholder = "Message " + channelLabel(c) + ", or /rollback …";
}

function renderThread(force) {
  const pane = $("thread");
  const c = channelById(S.channel);
  const root = c && S.thread ? c.messages.find((m) => m.ts === S.thread) : null;
  pane.hidden = !root;
  if (!root) return;
  const ephemerals = myEphemerals(c.id).filter((e) => e.thread_ts === root.ts);
  if (!force && !changed("thread", [S.user, root, ephemerals, c.pins, users()])) return;
  S.sig.thread = JSON.stringify([S.user, root, ephemerals, c.pins, users()]);
  const list = $("thread-messages");
  const items = (root.replies || []).map((m) => ({ ts: m.ts, node: () => renderMessage(m, c, {}) }))
    .concat(ephemerals.map((e) => ({ ts: e.ts, node: () => renderMessage({ ...e, user: S.state.bot.user_id, bot_id: S.state.bot.bot_id }, c, { ephemeral: true }) })))
    .sort((a, b) => Number(a.ts) - Number(b.ts));
  list.replaceChildren(renderMessage(root, c, {}), el("hr", { class: "bk-divider" }), ...items.map((i) => i.node()));
  list.scrollTop = list.scrollHeight;
}

function topView() {
  const views = ((S.state.views || {})[S.user] || []).filter((v) => v.type !== "home");
  return views.length ? views[views.length - 1] : null;
}

function renderModal() {
  const layer = $("modal-layer");
  const view = topView();
  if (!view) { layer.hidden = true; layer.replaceChildren(); S.modalKey = null; return; }
  // A view replaced by views.update or response_action "update" changes its blocks; errors alone do not.
  const key = view.id + "|" + view.hash + "|" + JSON.stringify([view.title, view.blocks, view.submit]);
  if (key === S.modalKey) {
    // The same view: keep what the user typed, show the errors the app answered with.
    for (const input of layer.querySelectorAll(".bk-input")) {
      const error = (view.errors || {})[input.dataset.blockId];
      input.classList.toggle("has-error", Boolean(error));
      const box = input.querySelector(".error");
      box.textContent = error || "";
      box.hidden = !error;
    }
    return;
  }
  S.modalKey = key;
  const ctx = { kind: "view", view };
  const form = el("form", { class: "modal", role: "dialog", "data-view-id": view.id, "data-callback-id": view.callback_id || "" },
    el("header", { text: plain(view.title) }),
    el("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
    el("footer", {},
      el("button", { type: "button", class: "close", text: plain(view.close) || "Cancel",
        onclick: () => post("/_sandbox/close", { user: S.user, view_id: view.id }) }),
      view.submit ? el("button", { type: "submit", class: "submit", text: plain(view.submit) }) : null));
  form.addEventListener("submit", (event) => { event.preventDefault(); submitView(view, form); });
  layer.replaceChildren(form);
  layer.hidden = false;
  const first = form.querySelector("input, textarea, select");
  if (first) first.focus();
}

function viewValues(view, form) {
  const values = {};
  for (const block of view.blocks || []) {
    if (block.type !== "input") continue;
    const box = form.querySelector('.bk-input[data-block-id="' + CSS.escape(block.block_id) + '"]');
    if (!box) continue;
    const kind = (block.element || {}).type;
    if (kind === "checkboxes") {
      values[block.block_id] = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    } else if (kind === "radio_buttons") {
      const picked = box.querySelector("input:checked");
      if (picked) values[block.block_id] = picked.value;
    } else {
      const field = box.querySelector("input, textarea, select");
      if (field && field.value !== "") values[block.block_id] = field.value;
    }
  }
  return values;
}

async function submitView(view, form) {
  const answer = await post("/_sandbox/submit", { user: S.user, view_id: view.id, values: viewValues(view, form) });
  if (answer && answer.body && answer.body.response_action === "errors") {
    view.errors = answer.body.errors;
    renderModal();
  }
}

function render(force) {
  if (!S.state) return;
  const ids = humans().map((u) => u.id);
  if (!ids.includes(S.user)) S.user = ids[0];
  const mine = myChannels().concat(myDms());
  if (!mine.find((c) => c.id === S.channel)) {
    const general = mine.find((c) => c.name === "general");
    S.channel = (general || mine[0] || {}).id || null;
  }
  const c = channelById(S.channel);
  if (c) markSeen(c);
  renderSidebar();
  renderChannel(force);
  renderThread(force);
  renderModal();
}

function select(channelId) {
  S.channel = channelId;
  S.thread = null;
  S.pinsOpen = false;
  history.replaceState(null, "", "?as=" + encodeURIComponent(S.user) + "#" + channelId);
  render(true);
}

async function send(input, threadTs) {
  const text = input.value.trim();
  if (!text || !S.channel) return;
  input.value = "";
  if (text.startsWith("/")) {
    const space = text.indexOf(" ");
    const command = space < 0 ? text : text.slice(0, space);
    await post("/_sandbox/command", { user: S.user, channel: S.channel, command, text: space < 0 ? "" : text.slice(space + 1).trim() });
  } else {
    // Slack's client escapes what a person types before it becomes message text.
    const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/&lt;@(U[A-Z0-9]+)&gt;/g, "<@$1>").replace(/@rollbot\b/g, "<@" + S.state.bot.user_id + ">");
    await post("/_sandbox/say", { user: S.user, channel: S.channel, text: escaped, thread_ts: threadTs || undefined });
  }
}

function composer(form, input, threadTs) {
  form.addEventListener("submit", (event) => { event.preventDefault(); send(input, threadTs()); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(input, threadTs()); }
  });
}

function start() {
  const params = new URLSearchParams(location.search);
  S.user = params.get("as") || localStorage.getItem("rollbot-sandbox-user");
  S.channel = location.hash.slice(1) || null;
  $("act-as").addEventListener("change", (event) => {
    S.user = event.target.value;
    localStorage.setItem("rollbot-sandbox-user", S.user);
    S.thread = null;
    S.modalKey = null;
    history.replaceState(null, "", "?as=" + encodeURIComponent(S.user) + (S.channel ? "#" + S.channel : ""));
    render(true);
  });
  $("pins-button").addEventListener("click", () => { S.pinsOpen = !S.pinsOpen; render(true); });
  $("thread-close").addEventListener("click", () => { S.thread = null; render(true); });
  composer($("composer"), $("composer-input"), () => null);
  composer($("thread-composer"), $("thread-input"), () => S.thread);
  document.addEventListener("keydown", (event) => {
    const view = topView && S.state ? topView() : null;
    if (event.key === "Escape" && view) post("/_sandbox/close", { user: S.user, view_id: view.id });
  });
  listen();
  refresh();
}

start();
