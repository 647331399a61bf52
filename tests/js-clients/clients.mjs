// OpenAI-compatible JavaScript clients against clawgate's /v1 API, unchanged: the AI SDK's
// default OpenAI provider (Responses API) and the OpenAI Agents SDK. BASE_URL (…/v1) and TOKEN
// come from the environment; prints one JSON object: {scenario: {ok, text | error}}.
import { generateText, streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } from '@openai/agents';
import OpenAI from 'openai';

const baseURL = process.env.BASE_URL;
const apiKey = process.env.TOKEN;
const results = {};

async function scenario(name, fn) {
  try {
    results[name] = { ok: true, text: await fn() };
  } catch (e) {
    results[name] = { ok: false, error: String(e?.stack ?? e), body: e?.responseBody ?? e?.error ?? null };
  }
}

const openai = createOpenAI({ baseURL, apiKey });
await scenario('ai-sdk generateText (responses)', async () => {
  const r = await generateText({ model: openai('openclaw'), prompt: 'Say hello', maxRetries: 0 });
  return r.text;
});
await scenario('ai-sdk streamText (responses)', async () => {
  const r = streamText({ model: openai('openclaw'), prompt: 'Say hello', maxRetries: 0 });
  let text = '';
  for await (const part of r.textStream) text += part;
  return text;
});
await scenario('ai-sdk generateText (chat completions)', async () => {
  const r = await generateText({ model: openai.chat('openclaw'), prompt: 'Say hello', maxRetries: 0 });
  return r.text;
});

setTracingDisabled(true);
setDefaultOpenAIClient(new OpenAI({ baseURL, apiKey, maxRetries: 0 }));
setOpenAIAPI('responses');
const agent = new Agent({ name: 'Assistant', instructions: 'Answer briefly.', model: 'openclaw' });
await scenario('agents-sdk run', async () => {
  const r = await run(agent, 'Say hello');
  return r.finalOutput;
});
await scenario('agents-sdk run (stream)', async () => {
  const r = await run(agent, 'Say hello', { stream: true });
  let text = '';
  for await (const chunk of r.toTextStream()) text += chunk;
  await r.completed;
  return text;
});

console.log(JSON.stringify(results));
