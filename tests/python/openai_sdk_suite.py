"""The official `openai` Python SDK against a running clawgate (spec http §10, issue 5).

Run by tests/tests/openai_sdk.rs with:
  CLAWGATE_BASE_URL   http://127.0.0.1:PORT
  CLAWGATE_TOKEN      the gateway token
The gateway's default agent runs on the fake provider `fake/fake-model` (tests/src/upstream.rs);
`x-openclaw-model` picks the fake's other behaviours (echo, tools). Every check must pass; the
script prints one line per check and exits 1 on the first failure.
"""

import json
import os
import sys
import traceback

import openai
from openai import OpenAI

BASE = os.environ["CLAWGATE_BASE_URL"].rstrip("/") + "/v1"
TOKEN = os.environ["CLAWGATE_TOKEN"]
client = OpenAI(base_url=BASE, api_key=TOKEN, max_retries=0, timeout=60)
ECHO = {"x-openclaw-model": "fake/fake-echo"}
TOOLS_MODEL = {"x-openclaw-model": "fake/fake-tools"}
WEATHER = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def models_list():
    ids = [m.id for m in client.models.list().data]
    eq(ids[:3], ["openclaw", "openclaw/default", "openclaw/main"], "model ids")


def models_retrieve():
    eq(client.models.retrieve("openclaw/default").id, "openclaw/default", "retrieve")
    try:
        client.models.retrieve("gpt-4o")
    except openai.BadRequestError:
        return
    raise AssertionError("retrieve(gpt-4o) must raise BadRequestError")


def chat_non_stream():
    r = client.chat.completions.create(model="openclaw", messages=[{"role": "user", "content": "Say hello"}])
    eq(r.choices[0].message.content, "Hello from fake upstream", "content")
    eq(r.choices[0].finish_reason, "stop", "finish_reason")
    eq(r.usage.total_tokens, 16, "usage")
    assert r.id.startswith("chatcmpl_"), r.id


def chat_stream():
    text, usage, finish = "", None, None
    stream = client.chat.completions.create(
        model="openclaw", messages=[{"role": "user", "content": "Say hello"}], stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    eq(text, "Hello from fake upstream", "streamed text")
    eq(finish, "stop", "finish_reason")
    eq(usage.total_tokens if usage else None, 16, "usage chunk")


def chat_tool_call_round_trip():
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(model="openclaw", messages=messages, tools=WEATHER, extra_headers=TOOLS_MODEL)
    eq(r.choices[0].finish_reason, "tool_calls", "finish_reason")
    call = r.choices[0].message.tool_calls[0]
    eq(call.function.name, "get_weather", "tool name")
    eq(json.loads(call.function.arguments), {"city": "Paris"}, "arguments")
    messages.append(r.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"})
    r2 = client.chat.completions.create(model="openclaw", messages=messages, tools=WEATHER, extra_headers=TOOLS_MODEL)
    eq(r2.choices[0].message.content, "tool said: 18C and sunny", "answer after the tool result")


def chat_tool_call_stream():
    stream = client.chat.completions.create(
        model="openclaw", messages=[{"role": "user", "content": "Weather?"}], tools=WEATHER, stream=True, extra_headers=TOOLS_MODEL)
    name, args, finish = None, "", None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
            finish = c.finish_reason or finish
    eq((name, json.loads(args), finish), ("get_weather", {"city": "Paris"}, "tool_calls"), "streamed tool call")


def responses_create_and_continue():
    r = client.responses.create(model="openclaw", input="My name is Ada", user="sdk-user-1", extra_headers=ECHO)
    eq(r.status, "completed", "status")
    eq(r.output_text, "echo: My name is Ada (messages: 1)", "output_text")
    r2 = client.responses.create(model="openclaw", input="What is my name?", previous_response_id=r.id, user="sdk-user-1", extra_headers=ECHO)
    eq(r2.output_text, "echo: What is my name? (messages: 3)", "previous_response_id carries the first turn")
    got = client.responses.retrieve(r2.id)
    eq(got.id, r2.id, "retrieve a stored response")


def responses_stream():
    events = []
    stream = client.responses.create(model="openclaw", input="Stream please", stream=True)
    for ev in stream:
        events.append(ev.type)
    eq(events[0], "response.created", "first event")
    eq(events[-1], "response.completed", "last event")
    assert "response.output_text.delta" in events, events
    with client.responses.stream(model="openclaw", input="Helper please") as s:
        for _ in s:
            pass
        final = s.get_final_response()
    eq(final.output_text, "Hello from fake upstream", "stream helper final response")


def embeddings():
    e = client.embeddings.create(model="openclaw", input=["a", "hello"])  # the SDK asks for base64
    eq([d.embedding for d in e.data], [[1.0, 0.5, -1.25], [5.0, 0.5, -1.25]], "base64 embeddings decoded")
    f = client.embeddings.create(model="openclaw", input="hello", encoding_format="float")
    eq(f.data[0].embedding, [5.0, 0.5, -1.25], "float embeddings")
    eq(f.model, "openclaw", "model echoed")


def wrong_key():
    bad = OpenAI(base_url=BASE, api_key="not-the-token", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError:
        return
    raise AssertionError("a wrong key must raise AuthenticationError")


CHECKS = [models_list, models_retrieve, chat_non_stream, chat_stream, chat_tool_call_round_trip, chat_tool_call_stream,
          responses_create_and_continue, responses_stream, embeddings, wrong_key]

if __name__ == "__main__":
    print(f"openai {openai.__version__}")
    failed = 0
    for check in CHECKS:
        try:
            check()
            print(f"PASS {check.__name__}")
        except Exception:  # noqa: BLE001 - report every failure with its traceback
            failed += 1
            print(f"FAIL {check.__name__}\n{traceback.format_exc()}")
    sys.exit(1 if failed else 0)
