"""The fake Anthropic server, exercised through the real `anthropic` SDK (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest
from anthropic.types.beta import BetaMessage, BetaTextBlock, BetaToolUseBlock
from PIL import Image

from tests.fake_anthropic import (
    COMPUTER_USE_SYSTEM_TOKENS,
    SERVER_TOOL_TOKENS,
    TOOL_USE_SYSTEM_TOKENS,
    FakeAnthropic,
    Request,
    drop,
    estimate_output_tokens,
    estimate_tokens,
    fault,
    message,
    slow,
    text,
    tool_use,
)

MODEL = "claude-fake-1"
BETAS = ["computer-use-2025-11-24"]
COMPUTER = {
    "type": "computer_20251124",
    "name": "computer",
    "display_width_px": 1280,
    "display_height_px": 800,
}
CACHED = {"type": "ephemeral"}
LONG_SYSTEM = "You are a careful desktop agent. " * 200  # 6600 chars = 1650 tokens: above the 1024 minimum


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_client(fake: FakeAnthropic) -> Callable[..., anthropic.Anthropic]:
    def make(max_retries: int = 0, **kwargs: object) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key="test", base_url=fake.base_url, max_retries=max_retries, **kwargs)

    return make


def create(client: anthropic.Anthropic, messages: list | None = None, **kwargs: object) -> BetaMessage:
    messages = messages if messages is not None else [{"role": "user", "content": "Open the settings."}]
    return client.beta.messages.create(model=MODEL, max_tokens=256, messages=messages, betas=BETAS, **kwargs)


def png_b64(width: int, height: int, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 200)).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def image_block(width: int, height: int, fmt: str = "PNG") -> dict:
    media = "image/png" if fmt == "PNG" else "image/jpeg"
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media, "data": png_b64(width, height, fmt)},
    }


# ------------------------------------------------------------------------------------------ replies


def test_scripted_replies_parse_into_sdk_types_and_requests_are_recorded(fake, make_client):
    fake.add(
        message(tool_use("computer", {"action": "left_click", "coordinate": [10, 20]}, id="toolu_abc")),
        message(text("All done."), model="claude-other"),
    )
    client = make_client()

    first = create(client, tools=[COMPUTER], system="Be brief.")
    assert isinstance(first, BetaMessage)
    assert first.role == "assistant" and first.type == "message" and first.stop_sequence is None
    assert first.model == MODEL  # echoed from the request
    assert first.stop_reason == "tool_use"
    block = first.content[0]
    assert isinstance(block, BetaToolUseBlock)
    assert (block.id, block.name, block.input) == (
        "toolu_abc",
        "computer",
        {"action": "left_click", "coordinate": [10, 20]},
    )
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens == 0
    assert first._request_id and first._request_id.startswith("req_")

    raw = client.beta.messages.with_raw_response.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "And now?"}], betas=BETAS
    )
    assert raw.headers["request-id"].startswith("req_")
    second = raw.parse()
    assert isinstance(second.content[0], BetaTextBlock) and second.content[0].text == "All done."
    assert second.stop_reason == "end_turn" and second.model == "claude-other"

    assert len(fake.requests) == 2
    recorded = fake.requests[0]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["anthropic-beta"] == "computer-use-2025-11-24"
    assert "test" in (recorded.headers.get("x-api-key") or recorded.headers.get("authorization", ""))
    assert recorded.body["tools"] == [COMPUTER] and recorded.body["system"] == "Be brief."
    assert recorded.body["messages"] == [{"role": "user", "content": "Open the settings."}]
    assert recorded.outcome == "message" and recorded.status == 200 and recorded.usage["input_tokens"] > 0
    assert fake.requests[1].first_user_text() == "And now?"


def test_tool_use_ids_and_stop_reasons_default_sensibly():
    a, b = tool_use("computer", {}), tool_use("computer", {})
    assert a["id"].startswith("toolu_") and a["id"] != b["id"]
    assert message(a).stop_reason == "tool_use"
    assert message(text("hi")).stop_reason == "end_turn"
    assert message(text("hi"), stop_reason="max_tokens").stop_reason == "max_tokens"


def test_explicit_usage_is_sent_as_given(fake, make_client):
    fake.add(message(text("x"), usage={"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 5}))
    usage = create(make_client()).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (7, 3, 5)
    assert usage.cache_creation_input_tokens == 0


# ------------------------------------------------------------------------------------------ faults


def test_429_with_retry_after_is_retried_by_the_sdk(fake, make_client):
    fake.add(fault(429, retry_after=0.2), message(text("after the wait")))
    reply = create(make_client(max_retries=2))
    assert reply.content[0].text == "after the wait"
    assert [r.outcome for r in fake.requests] == ["fault", "message"]
    assert [r.status for r in fake.requests] == [429, 200]
    assert fake.requests[1].time - fake.requests[0].time >= 0.19  # the SDK honoured retry-after


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (503, anthropic.ServiceUnavailableError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_error_statuses_raise_the_sdk_exception(fake, make_client, status, error_class, error_type):
    fake.add(fault(status))
    with pytest.raises(anthropic.APIStatusError) as info:
        create(make_client(max_retries=0))
    assert type(info.value) is error_class
    assert info.value.status_code == status
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == error_type
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert len(fake.requests) == 1


def test_overloaded_is_an_internal_server_error():
    assert issubclass(anthropic.OverloadedError, anthropic.InternalServerError)


def test_dropped_connection_raises_connection_error(fake, make_client):
    fake.add(drop())
    with pytest.raises(anthropic.APIConnectionError) as info:
        create(make_client(max_retries=0))
    assert not isinstance(info.value, anthropic.APITimeoutError)
    assert fake.requests[0].outcome == "drop" and fake.requests[0].status is None


def test_dropped_connection_is_retried_by_the_sdk(fake, make_client):
    fake.add(drop(), message(text("second try")))
    assert create(make_client(max_retries=1)).content[0].text == "second try"
    assert [r.outcome for r in fake.requests] == ["drop", "message"]


def test_slow_reply_past_the_client_timeout_raises_timeout_and_stop_is_quick(make_client, fake):
    fake.add(slow(30, message(text("too late"))))
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        create(make_client(max_retries=0, timeout=0.5))
    assert time.monotonic() - started < 2
    assert fake.requests[0].outcome == "pending"
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1
    assert fake.requests[0].outcome == "drop"


def test_slow_reply_within_the_timeout_arrives(fake, make_client):
    fake.add(slow(0.1, message(text("eventually"))))
    assert create(make_client(timeout=5)).content[0].text == "eventually"


def test_script_exhausted_is_an_error_not_a_hang(fake, make_client):
    started = time.monotonic()
    with pytest.raises(anthropic.InternalServerError) as info:
        create(make_client(max_retries=2))  # x-should-retry: false, so no retries
    assert time.monotonic() - started < 1
    assert "script exhausted" in str(info.value)
    assert [r.outcome for r in fake.requests] == ["exhausted"]


def test_stream_and_invalid_requests_get_400_without_consuming_the_script(fake, make_client):
    fake.add(message(text("kept")))
    client = make_client()
    with pytest.raises(anthropic.BadRequestError, match="stream"):
        create(client, stream=True)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.post("/v1/messages", body={"model": MODEL, "messages": []}, cast_to=object)
    assert fake.remaining == 1
    assert [r.outcome for r in fake.requests] == ["invalid", "invalid"]
    assert create(client).content[0].text == "kept"


def test_unknown_endpoint_is_404(fake, make_client):
    with pytest.raises(anthropic.NotFoundError):
        make_client().models.list()


# ------------------------------------------------------------------------------------------ routing


def test_responder_routes_parallel_attempts_after_the_script(fake, make_client):
    def responder(request: Request):
        if request.headers.get("x-attempt") == "special":
            return message(text("by header"))
        if "attempt A" in request.first_user_text():
            return message(text("reply A"))
        content = request["messages"][0]["content"]  # dict-style access to the body
        if isinstance(content, list) and content[0]["text"] == "attempt B":
            return message(text("reply B"))
        return None  # unknown: answered as "script exhausted"

    fake.responder = responder
    fake.add(message(text("scripted first")))
    client = make_client()
    assert create(client).content[0].text == "scripted first"

    def attempt(name: str) -> str:
        return create(client, [{"role": "user", "content": [text(name), text(" go")]}]).content[0].text

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, ["attempt A", "attempt B", "attempt A", "attempt B"]))
    assert results == ["reply A", "reply B", "reply A", "reply B"]
    assert create(client, extra_headers={"x-attempt": "special"}).content[0].text == "by header"
    with pytest.raises(anthropic.InternalServerError, match="script exhausted"):
        create(client, [{"role": "user", "content": "someone else"}])
    assert len(fake.requests) == 7


def test_responder_errors_are_reported_as_500(fake, make_client):
    def responder(request: Request):
        raise RuntimeError("boom")

    fake.responder = responder
    with pytest.raises(anthropic.InternalServerError, match="boom"):
        create(make_client(max_retries=2))
    assert [r.outcome for r in fake.requests] == ["responder_error"]


def test_server_is_thread_safe_under_concurrent_clients(fake, make_client):
    fake.add(*[message(text(str(i))) for i in range(20)])
    client = make_client()
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: create(client).content[0].text, range(20)))
    assert sorted(texts, key=int) == [str(i) for i in range(20)]
    assert len(fake.requests) == 20 and fake.remaining == 0


def test_base_url_from_environment(fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    fake.add(message(text("via env")))
    client = anthropic.Anthropic(api_key="test", max_retries=0)
    assert create(client).content[0].text == "via env"


# ------------------------------------------------------------------------------------------ prompt cache


def cached_system(value: str = LONG_SYSTEM) -> list[dict]:
    return [{"type": "text", "text": value, "cache_control": CACHED}]


def counts(usage) -> tuple[int, int, int]:
    return usage.cache_creation_input_tokens, usage.cache_read_input_tokens, usage.input_tokens


def test_same_prefix_twice_reads_the_cache(fake, make_client):
    fake.add(message(text("one")), message(text("two")))
    client = make_client()
    first = create(client, system=cached_system()).usage
    second = create(client, system=cached_system()).usage
    prefix = math.ceil(len(LONG_SYSTEM) / 4)
    user = math.ceil(len("Open the settings.") / 4)
    assert counts(first) == (prefix, 0, user)  # (created, read, uncached)
    assert counts(second) == (0, prefix, user)
    assert first.cache_creation.ephemeral_5m_input_tokens == prefix
    assert fake.total_usage()["cache_read_input_tokens"] == prefix


def test_changed_early_block_breaks_the_cache(fake, make_client):
    fake.add(*[message(text("ok")) for _ in range(3)])
    client = make_client()
    tools = [COMPUTER]
    create(client, system=cached_system(), tools=tools)
    assert create(client, system=cached_system(), tools=tools).usage.cache_read_input_tokens > 0
    other_tools = [dict(COMPUTER, display_width_px=1920)]  # an earlier block than the breakpoint changed
    usage = create(client, system=cached_system(), tools=other_tools).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0


def test_moving_breakpoint_reads_the_earlier_prefix_by_lookback(fake, make_client):
    """The usual agent pattern: the breakpoint moves to the newest turn and still hits the old prefix."""
    fake.add(message(tool_use("computer", {"action": "screenshot"}, id="toolu_1")), message(text("done")))
    client = make_client()
    turn1 = [
        {"role": "user", "content": [{"type": "text", "text": "Open the settings.", "cache_control": CACHED}]}
    ]
    first = create(client, turn1, system=LONG_SYSTEM, tools=[COMPUTER])
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [image_block(1280, 800)]}
    turn2 = [
        {"role": "user", "content": [text("Open the settings.")]},  # no cache_control any more
        {"role": "assistant", "content": first.content},  # SDK objects, sent back as the agent would
        {"role": "user", "content": [dict(result, cache_control=CACHED)]},
    ]
    second = create(client, turn2, system=LONG_SYSTEM, tools=[COMPUTER])
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens > 0
    assert second.usage.cache_creation_input_tokens >= math.ceil(1280 * 800 / 750)
    assert second.usage.input_tokens == 0  # everything is before the last breakpoint


def test_change_between_breakpoints_reads_up_to_the_first_one():
    def body(second_part: str) -> dict:
        system = cached_system() + [{"type": "text", "text": second_part * 2000, "cache_control": CACHED}]
        return {"model": MODEL, "system": system, "messages": [{"role": "user", "content": "hi"}]}

    cache: set[str] = set()
    first = estimate_tokens(body("a"), cache)
    assert first["cache_creation_input_tokens"] == 1650 + 500
    changed = estimate_tokens(body("b"), cache)
    assert (changed["cache_read_input_tokens"], changed["cache_creation_input_tokens"]) == (1650, 500)
    other_model = estimate_tokens(dict(body("a"), model="claude-other"), cache)
    assert other_model["cache_read_input_tokens"] == 0  # caches are per model


def test_lookback_is_limited_to_20_blocks():
    def body(extra: int, marked: int) -> dict:
        blocks = [text(f"step {i}") for i in range(1 + extra)]
        blocks[marked] = dict(blocks[marked], cache_control=CACHED)
        return {"model": MODEL, "system": LONG_SYSTEM, "messages": [{"role": "user", "content": blocks}]}

    warm: set[str] = set()
    estimate_tokens(body(0, 0), warm)  # caches the prefix through the first message block
    assert estimate_tokens(body(20, 20), set(warm))["cache_read_input_tokens"] > 0  # 20 blocks back: found
    assert estimate_tokens(body(21, 21), set(warm))["cache_read_input_tokens"] == 0  # 21 back: missed


def test_prefix_below_the_minimum_is_not_cached(make_client, fake):
    fake.add(message(text("a")), message(text("b")))
    client = make_client()
    for _ in range(2):
        usage = create(client, system=cached_system("short")).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_more_than_four_breakpoints_is_a_400(fake, make_client):
    fake.add(message(text("unused")))
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": CACHED} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks with cache_control"):
        create(make_client(), system=blocks)
    assert fake.remaining == 1
    with pytest.raises(ValueError, match="Found 5"):
        estimate_tokens({"model": MODEL, "system": blocks, "messages": []})


def test_top_level_cache_control_marks_the_last_block():
    body = {
        "model": MODEL,
        "cache_control": CACHED,
        "system": LONG_SYSTEM,
        "messages": [{"role": "user", "content": "hi"}],
    }
    cache: set[str] = set()
    first = estimate_tokens(body, cache)
    assert first["cache_creation_input_tokens"] == first["total_input_tokens"] and first["input_tokens"] == 0
    assert estimate_tokens(body, cache)["cache_read_input_tokens"] == first["total_input_tokens"]


def test_one_hour_ttl_is_reported_separately():
    system = [
        {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "x" * 400, "cache_control": CACHED},
    ]
    usage = estimate_tokens(
        {"model": MODEL, "system": system, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert usage["cache_creation"] == {"ephemeral_1h_input_tokens": 1650, "ephemeral_5m_input_tokens": 100}


# ------------------------------------------------------------------------------------------ estimates


def test_token_estimates_follow_the_documented_rules():
    tool = {"name": "notes", "description": "Write a note.", "input_schema": {"type": "object"}}
    body = {
        "model": MODEL,
        "tools": [COMPUTER, tool],
        "system": "abcd" * 10,
        "messages": [
            {"role": "user", "content": [text("x" * 9), image_block(1280, 800)]},
            {"role": "assistant", "content": [tool_use("computer", {"action": "screenshot"}, id="t")]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "y" * 8}]},
        ],
    }
    usage = estimate_tokens(body)
    expected = (
        TOOL_USE_SYSTEM_TOKENS
        + COMPUTER_USE_SYSTEM_TOKENS
        + SERVER_TOOL_TOKENS["computer_"]
        + math.ceil(len(json.dumps(tool, sort_keys=True, separators=(",", ":"))) / 4)
        + 8  # TOOL_DEFINITION_TOKENS
        + 10  # system
        + 3  # 9 chars
        + math.ceil(1280 * 800 / 750)
        + math.ceil((len("computer") + len('{"action":"screenshot"}')) / 4)
        + 2  # tool_result text
    )
    assert usage["total_input_tokens"] == usage["input_tokens"] == expected
    assert usage["cache_read_input_tokens"] == usage["cache_creation_input_tokens"] == 0


@pytest.mark.parametrize(
    ("size", "fmt", "tokens"),
    [
        ((1280, 800), "PNG", 1366),
        ((1024, 768), "JPEG", 1049),
        ((1920, 1080), "PNG", 1600),  # downscaled to the 1568 edge, then capped
        ((200, 100), "JPEG", 27),
    ],
)
def test_image_tokens_come_from_the_image_header(size, fmt, tokens):
    body = {"model": MODEL, "messages": [{"role": "user", "content": [image_block(*size, fmt=fmt)]}]}
    assert estimate_tokens(body)["total_input_tokens"] == tokens


def test_count_tokens_endpoint_uses_the_same_estimate(fake, make_client):
    messages = [{"role": "user", "content": [text("hello there"), image_block(640, 480)]}]
    counted = make_client().beta.messages.count_tokens(
        model=MODEL, messages=messages, tools=[COMPUTER], betas=BETAS
    )
    expected = estimate_tokens({"model": MODEL, "messages": messages, "tools": [COMPUTER]})
    assert counted.input_tokens == expected["total_input_tokens"]
    assert fake.requests[0].outcome == "count_tokens" and fake.remaining == 0


def test_output_tokens_are_a_quarter_of_the_content_json(fake, make_client):
    reply = message(text("z" * 400))
    fake.add(reply)
    usage = create(make_client()).usage
    assert (
        usage.output_tokens
        == estimate_output_tokens(reply.content)
        == math.ceil(len('[{"text":"","type":"text"}]' + "z" * 400) / 4)
    )


def test_stop_with_idle_keepalive_connection_is_quick(fake, make_client):
    fake.add(message(text("x")))
    create(make_client())  # leaves a keep-alive connection open on the server
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1
    assert not any(t.name == "fake-anthropic" and t.is_alive() for t in threading.enumerate())
