// Writes tests/fixtures/tokenizer/corpus.json: the multilingual tokenizer test corpus
// (JSON, so that whitespace runs, tabs, \r\n and decomposed accents survive exactly).
// Run: node tests/tools/make_corpus.mjs
import { writeFileSync } from "node:fs";

const corpus = [
  "Hello, world!",
  "Hello, 世界! <|im_start|>",
  "The quick brown fox jumps over the lazy dog. It's 12:45 and I'LL be there; they've said we'd go.",
  "  leading spaces and trailing spaces   ",
  "tabs\tand\t\ttabs, newlines\nand\n\n\nmore, CRLF\r\nend",
  "多语言测试：今天天气很好，我们去公园散步吧。",
  "日本語のテキストとカタカナ、ひらがな。",
  "한국어 문장도 포함합니다.",
  "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🏳️‍🌈 ❤️",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "for (int i = 0; i < 10; ++i) { std::cout << i << \"\\n\"; }",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
  "<think>\nreasoning here\n</think>\n\nanswer<|endoftext|>",
  "Numbers: 3.14159 2718281828 1,000,000 0x1F -42 1e-9",
  "Café naïve résumé — déjà vu",
  "Cafe\u0301 composed by NFC: e\u0301 a\u0300 o\u0308",
  "Ελληνικά και Русский текст, עברית, العربية",
  "                                                                                                    (100 spaces before this)",
  "a\u00a0non-breaking space and\u2003em space and zero\u200bwidth",
  "URL: https://example.com/path?query=1&x=%20#frag, email: user@example.org",
  "Mixed 中文English混合text 123个",
  "",
  " ",
  "\n",
  "!!!???...,,,;;;",
  "repeated aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "===================================================================",
  "Math: ∑_{i=1}^{n} i² = n(n+1)/2, ∀x∈ℝ, √2 ≈ 1.414",
  "Special tokens adjacent:<|im_end|><|im_start|>user<|endoftext|>text",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕊𝕦𝕡𝕡𝕝𝕖𝕞𝕖𝕟𝕥𝕒𝕣𝕪 𝟘𝟙𝟚 and 𠜎𠜱𠝹 (astral CJK)",
];
writeFileSync(new URL("../fixtures/tokenizer/corpus.json", import.meta.url), JSON.stringify(corpus, null, 1) + "\n");
console.log(`wrote ${corpus.length} lines`);
