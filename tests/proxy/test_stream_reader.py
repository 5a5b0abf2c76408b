"""Telling an event stream from anything else, however the network splits the bytes."""

from __future__ import annotations

import json

import pytest

from modelux_server.proxy.providers import UpstreamError, Usage
from modelux_server.proxy.providers._stream import StreamReader, completion_chunks

SSE = b': keep-alive\n\ndata: {"a": 1}\r\n\r\nevent: delta\ndata: {"b":\ndata: 2}\n\ndata: [DONE]\n\n'


def read(body: bytes, size: int) -> tuple[list[tuple[bytes, str | None, bytes]], object]:
    reader = StreamReader(max_json=1_000)
    events = []
    for start in range(0, len(body), size):
        events += reader.feed(body[start : start + size])
    return events, reader.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_events_come_out_whole_whatever_the_read_size(size: int) -> None:
    events, answer = read(b"\xef\xbb\xbf\n" + SSE, size)
    assert answer is None
    assert [(name, data) for _, name, data in events] == [
        (None, b""),
        (None, b'{"a": 1}'),
        ("delta", b'{"b":\n2}'),
        (None, b"[DONE]"),
    ]


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    events, _ = read(b'data: {"a": 1}\n\ndata: [DONE]', 5)
    assert [data for _, _, data in events] == [b'{"a": 1}']  # [DONE] came with finish()


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_a_json_answer_is_collected_whole(size: int) -> None:
    events, answer = read(b'\n  {"choices": [{"message": {"content": "hi"}}]}', size)
    assert events == [] and answer == {"choices": [{"message": {"content": "hi"}}]}


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad gateway</body></html>",
        b"<html>\n\n<body>x</body>\n\n</html>\n\n",
        b"oops",
        b"",
        b"   \n",
        b": only a comment\n\n",
        b'data: {"a": 1}\n\n<html>',
        b'data: {"a": 1}\n\nHTTP/1.1 502 Bad Gateway\n\n',
        b'{"choices": [',
        b'{"error": {"message": "quota\\nexceeded"}}',
        b"[1, 2]",
    ],
)
@pytest.mark.parametrize("size", [1, 1000])
def test_anything_else_is_an_upstream_error(body: bytes, size: int) -> None:
    with pytest.raises(UpstreamError) as failed:
        read(body, size)
    assert failed.value.retryable and "\n" not in failed.value.message


def test_a_completion_becomes_chunks_with_tool_calls_and_usage() -> None:
    answer = {
        "id": "chatcmpl-1",
        "created": 7,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    raw = completion_chunks(answer, Usage(3, 4, 7))
    assert raw[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(c.removeprefix(b"data: ")) for c in raw[:-1]]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert chunks[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[2]["choices"] == [] and chunks[2]["usage"]["total_tokens"] == 7
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    with pytest.raises(UpstreamError):
        completion_chunks({"object": "list", "data": []})


def test_a_json_answer_past_the_cap_is_refused_before_it_is_whole() -> None:
    reader = StreamReader(max_json=100)
    reader.feed(b'{"choices": [')
    with pytest.raises(UpstreamError) as failed:
        reader.feed(b"0," * 60)
    assert "exceeds 100 bytes" in failed.value.message


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_good_events_before_a_bad_one_are_delivered_before_the_error(size: int) -> None:
    # one network read may carry good events and the garbage after them together
    body = b'data: {"a": 1}\n\ndata: {"b": 2}\n\n<html>oops</html>\n\n'
    reader = StreamReader(max_json=1_000)
    delivered: list[bytes] = []
    with pytest.raises(UpstreamError):
        for start in range(0, len(body), size):
            delivered += [data for _, _, data in reader.feed(body[start : start + size])]
        reader.finish()
    assert delivered == [b'{"a": 1}', b'{"b": 2}']
