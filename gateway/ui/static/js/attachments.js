// Chat attachments: pick, paste or drop files; send them as chat.send `attachments`;
// show pictures and files of a message (history URLs are short-lived, same-origin, signed).

import { h } from "./dom.js";

const MAX_FILES = 10;

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error || new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The media blocks of a transcript message (pictures, files, audio, video). */
export function mediaBlocks(message) {
  const content = Array.isArray(message?.content) ? message.content : [];
  return content.filter((b) => b && ["image", "file", "audio", "video"].includes(b.type) && (b.url || b.dataUrl));
}

/** Thumbnails and file links for a message bubble. */
export function mediaStrip(blocks) {
  if (!blocks.length) return null;
  return h(
    "div",
    { class: "media-strip" },
    blocks.map((b) => {
      const name = b.fileName || (b.type === "image" ? "image" : "file");
      const src = b.url || b.dataUrl;
      if (b.type === "image") {
        return h(
          "a",
          { href: src, target: "_blank", rel: "noopener noreferrer", class: "media-thumb", title: name },
          h("img", { src, alt: name, loading: "lazy" }),
        );
      }
      return h("a", { href: src, download: name, rel: "noopener noreferrer", class: "media-file", text: name });
    }),
  );
}

/** The composer's pending files: a chip row, plus helpers to add and to take them. */
export function attachmentTray({ toast }) {
  const pending = []; // {file, dataUrl}
  const picker = h("input", { type: "file", multiple: true, hidden: true, id: "chat-file" });
  const button = h("button", { type: "button", class: "ghost", id: "chat-attach", text: "Attach" });
  const chips = h("div", { class: "attachment-chips", id: "chat-attachments" });

  function paint() {
    chips.replaceChildren(
      ...pending.map((item, index) =>
        h(
          "span",
          { class: "chip", dataset: { name: item.file.name } },
          item.file.type.startsWith("image/") ? h("img", { src: item.dataUrl, alt: "" }) : null,
          h("span", { text: item.file.name }),
          h("button", {
            type: "button",
            class: "ghost",
            "aria-label": `Remove ${item.file.name}`,
            text: "×",
            onclick: () => {
              pending.splice(index, 1);
              paint();
            },
          }),
        ),
      ),
    );
  }

  async function add(files) {
    for (const file of files) {
      if (pending.length >= MAX_FILES) {
        toast(`At most ${MAX_FILES} files per message`, "error");
        break;
      }
      try {
        pending.push({ file, dataUrl: await readDataUrl(file) });
      } catch (err) {
        toast(err.message, "error");
      }
    }
    paint();
  }

  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    add([...picker.files]);
    picker.value = "";
  });

  return {
    elements: [picker, button],
    chips,
    add,
    get count() {
      return pending.length;
    },
    /** The protocol shape, and display blocks for the local bubble; empties the tray. */
    take() {
      const items = pending.splice(0);
      paint();
      return {
        attachments: items.map(({ file, dataUrl }) => ({
          type: file.type.startsWith("image/") ? "image" : "file",
          mimeType: file.type || "application/octet-stream",
          fileName: file.name,
          content: dataUrl.slice(dataUrl.indexOf(",") + 1),
        })),
        blocks: items.map(({ file, dataUrl }) => ({
          type: file.type.startsWith("image/") ? "image" : "file",
          fileName: file.name,
          dataUrl,
        })),
        restore: () => {
          pending.push(...items);
          paint();
        },
      };
    },
  };
}
