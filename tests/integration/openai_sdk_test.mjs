// The real OpenAI SDK against a running Sluice: node openai_sdk_test.mjs BASE_URL MODEL
// Exits non-zero (with the reason) on the first failed check.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused' });

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model), 'model listed');

// Chat, non-streamed, n: 2, seeded: two choices, usage, finish reasons.
const chat = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Tell me a fortune.' }], n: 2, max_tokens: 24, temperature: 0.8, seed: 7,
});
assert.equal(chat.choices.length, 2);
for (const c of chat.choices) {
  assert.equal(c.message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
}
assert.ok(chat.usage.completion_tokens > 0 && chat.usage.prompt_tokens > 0);
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

// Chat, streamed, with usage.
const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Tell me a fortune.' }], max_tokens: 20, temperature: 0,
  stream: true, stream_options: { include_usage: true },
});
let streamed = '';
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    streamed += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.ok(streamed.length > 0, 'streamed text');
assert.ok(finish, 'finish_reason in the stream');
assert.ok(usage && usage.completion_tokens > 0, 'include_usage chunk');
const nonStreamed = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Tell me a fortune.' }], max_tokens: 20, temperature: 0,
});
assert.equal(streamed, nonStreamed.choices[0].message.content, 'streamed == non-streamed (greedy)');

// Completions with stop and logprobs.
const full = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 32, temperature: 0 });
const text = full.choices[0].text;
const cut = text.indexOf('mathematician');
assert.ok(cut > 0, `expected text: ${JSON.stringify(text)}`);
const stopped = await client.completions.create({
  model, prompt: 'Once upon a time', max_tokens: 32, temperature: 0, stop: ['mathematician'], logprobs: 2,
});
assert.equal(stopped.choices[0].text, text.slice(0, cut), 'stop string cuts the text, never half-emitted');
assert.equal(stopped.choices[0].finish_reason, 'stop');
const lp = stopped.choices[0].logprobs;
assert.ok(lp.tokens.length > 0 && lp.tokens.length === lp.token_logprobs.length);
for (const v of lp.token_logprobs) assert.ok(v <= 0);
assert.ok(Object.keys(lp.top_logprobs[0]).length >= 1);

// Completions streamed.
let completionStream = '';
for await (const chunk of await client.completions.create({
  model, prompt: 'Once upon a time', max_tokens: 32, temperature: 0, stream: true,
})) completionStream += chunk.choices[0]?.text ?? '';
assert.equal(completionStream, text);

// A batch of prompts, one as token ids, with logit_bias: choices in order, the bias applied.
const batch = await client.completions.create({
  model, prompt: ['Once upon a time', 'Once upon a time'], max_tokens: 32, temperature: 0,
});
assert.deepEqual(batch.choices.map((c) => c.index), [0, 1]);
for (const c of batch.choices) assert.equal(c.text, text, 'each batch prompt gives its greedy text');
const biased = await client.completions.create({
  model, prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logit_bias: { 300: 100 }, logprobs: 0,
});
const forced = biased.choices[0].logprobs.tokens;
assert.equal(forced.length, 3);
assert.ok(forced.every((t) => t === forced[0]), `logit_bias +100 forces one token: ${forced}`);

// Errors in OpenAI's shape: an unknown model, what Sluice cannot do.
await assert.rejects(client.completions.create({ model: 'no-such-model', prompt: 'x' }), (e) => e.status === 404);
await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } }),
  (e) => e.status === 501 && /response_format/.test(e.message),
);
console.log('openai sdk: all checks passed');
