// Tiny DOM helpers. Text always goes through textContent: no HTML from the server is trusted.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace the children of `root`, keeping keyboard focus on the element with the same
// data-key (re-rendering on every room_state must not throw a keyboard user back to the top).
export function swap(root, ...children) {
  const active = document.activeElement;
  const key = active && root.contains(active) ? active.dataset.key : undefined;
  root.replaceChildren(...children.flat().filter(Boolean));
  if (key) {
    const again = root.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

// A press in progress: a pointer down, or Space down (a button clicks when Space is released).
// Re-rendering then would replace the pressed element and the browser would drop its click, so a
// broadcast that arrives mid-press waits for the release. A press never defers for more than
// PRESS_LIMIT_MS (a key released outside the window sends no keyup).
const PRESS_LIMIT_MS = 1000;
let pressedAt = null;
const waiting = new Set(); // draw functions held back by the press in progress
let limit = null; // the timer that ends the current wait at the latest

function pressed() {
  return pressedAt !== null && performance.now() - pressedAt < PRESS_LIMIT_MS;
}

function released() {
  pressedAt = null;
  clearTimeout(limit);
  limit = null;
  const runs = [...waiting];
  waiting.clear();
  for (const run of runs) setTimeout(run); // after the click that the release fires
}

const isSpace = (e) => e.key === " ";
addEventListener("pointerdown", () => { pressedAt = performance.now(); }, true);
addEventListener("keydown", (e) => { if (isSpace(e)) pressedAt = performance.now(); }, true);
addEventListener("keyup", (e) => { if (isSpace(e)) released(); }, true);
addEventListener("pointerup", released, true);
addEventListener("pointercancel", released, true);
addEventListener("blur", (e) => { if (e.target === window) released(); }); // the window's own

// True if `draw` must wait: it then runs once the press ends (at most PRESS_LIMIT_MS from now).
export function deferWhilePressed(draw) {
  if (!pressed()) return false;
  waiting.add(draw);
  limit ??= setTimeout(released, PRESS_LIMIT_MS);
  return true;
}

// The black card's text with its blanks filled by `whites` (as <strong>), or shown as blanks.
export function sentence(black, whites = []) {
  const parts = black.split("_");
  const out = [];
  parts.forEach((part, i) => {
    out.push(part);
    if (i < parts.length - 1) {
      const white = whites[i];
      out.push(white ? h("strong", {}, trimEnd(white)) : h("span", { class: "blank" }, "_____"));
    }
  });
  if (parts.length === 1 && whites.length) out.push(" ", ...whites.map((w) => h("strong", {}, w, " ")));
  return out;
}

function trimEnd(text) {
  return text.replace(/[.!]+$/, "");
}

export function plainSentence(black, whites = []) {
  const parts = black.split("_");
  let text = parts.map((p, i) => p + (i < parts.length - 1 ? trimEnd(whites[i] ?? "___") : "")).join("");
  if (parts.length === 1 && whites.length) text += " " + whites.join(" ");
  return text;
}
