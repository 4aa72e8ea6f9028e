// AttnGAN's word attention on the page (www/app.js) and in <t2i-demo> (www/t2i-demo.js).
// The worker's images carry `attention: [{word, segment, width, height, values}]` (AttnGAN's
// 128 and 256 px stages; one map per word the model read, on the previous stage's grid,
// `segment` indexing the caption's words as the worker's `words` list cuts them).
// - mapsBySegment(image): segment -> that word's map of the image;
// - paintAttention(overlay, map): the map, normalised by its maximum, as a smooth translucent
//   veil on an overlay canvas, dark where the word got little weight and clear where it got the
//   most, so the attended regions stand out on any image (hidden and cleared when map is null);
// - WordPicker: turns caption words into hoverable, focusable, tappable buttons and says which
//   word's map to show: the hovered or focused word, else the pinned (clicked, tapped, Enter or
//   Space) one; clicking the pinned word again or Escape clears it.

export function mapsBySegment(image) {
  return new Map((image?.attention ?? []).map((map) => [map.segment, map]));
}

// A spotlight rather than heat colours: the generated birds are often red or yellow
// themselves, and a warm heat layer disappeared on them.
export function paintAttention(overlay, map) {
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  overlay.hidden = !map;
  if (!map) return;
  const { width, height, values } = map;
  let max = 0;
  for (const v of values) if (v > max) max = v;
  const heat = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = max > 0 ? Math.max(0, values[i]) / max : 0;
    heat.data[i * 4] = 12;
    heat.data[i * 4 + 1] = 16;
    heat.data[i * 4 + 2] = 40;
    heat.data[i * 4 + 3] = Math.round(215 * (1 - Math.sqrt(v)));
  }
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  small.getContext("2d").putImageData(heat, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, overlay.width, overlay.height);
}

export class WordPicker {
  // onShow(segment | null, word | null): called whenever the word to show changes.
  constructor(onShow) {
    this.onShow = onShow;
    this.elements = new Map(); // segment -> element
    this.hovered = null;
    this.pinned = null;
    this.pinnedWord = null;
    this.shown = undefined;
  }

  // Before a new caption's words are built: the pinned word stays when the same word is at
  // the same place and still has a map (keep(segment, word) says so).
  reset(keep) {
    this.elements.clear();
    this.hovered = null;
    if (this.pinned !== null && !keep(this.pinned, this.pinnedWord)) this.pinned = this.pinnedWord = null;
  }

  // A focusable button for `text`, the caption's word at `segment` (text only, never HTML).
  word(text, segment) {
    const el = document.createElement("span");
    el.className = "attn-word";
    el.textContent = text;
    el.tabIndex = 0;
    el.setAttribute("role", "button");
    el.setAttribute("aria-pressed", "false");
    el.title = `where the model looked for "${text}" (click or tap to keep it shown)`;
    el.dataset.segment = String(segment);
    const hover = (on) => {
      if (on) this.hovered = segment;
      else if (this.hovered === segment) this.hovered = null;
      this.update();
    };
    el.addEventListener("pointerenter", (e) => { if (e.pointerType === "mouse") hover(true); });
    el.addEventListener("pointerleave", (e) => { if (e.pointerType === "mouse") hover(false); });
    el.addEventListener("focus", () => hover(true));
    el.addEventListener("blur", () => hover(false));
    el.addEventListener("click", () => this.toggle(segment, text));
    el.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.toggle(segment, text);
      } else if (e.key === "Escape") {
        this.pinned = this.pinnedWord = this.hovered = null;
        this.update();
      }
    });
    this.elements.set(segment, el);
    return el;
  }

  toggle(segment, text) {
    if (this.pinned === segment) {
      // Off again: nothing shown, even though the pointer or focus is still on the word.
      this.pinned = this.pinnedWord = this.hovered = null;
    } else {
      this.pinned = segment;
      this.pinnedWord = text;
    }
    this.update();
  }

  update() {
    const shown = this.hovered ?? this.pinned;
    for (const [segment, el] of this.elements) {
      el.setAttribute("aria-pressed", String(segment === this.pinned));
      el.classList.toggle("shown", segment === shown);
    }
    if (shown === this.shown) return;
    this.shown = shown;
    this.onShow(shown, shown === null ? null : this.elements.get(shown)?.textContent ?? null);
  }

  // After new words were built (or a new image came): redraw whatever is shown.
  refresh() {
    this.shown = undefined;
    this.update();
  }
}
