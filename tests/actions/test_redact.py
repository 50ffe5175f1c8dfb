"""Redaction: known secrets and common token shapes never survive into stored or posted text."""

from __future__ import annotations

import pytest

from actions import redact as redact_module
from actions.redact import MASK, Redactor


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"),
        ("user xoxp-11-22-33-aabbcc", "xoxp-11-22-33-aabbcc"),
        ("app token xapp-1-A0123-456-abcdef0123", "xapp-1-A0123-456-abcdef0123"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9.payload.sig"),
        ("aws AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("oauth gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
        ("connecting with password=hunter2hunter2 now", "hunter2hunter2"),
        ('DB_PASSWORD: "correct horse battery"', "correct horse battery"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("stripe sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
        ("SLACK_SIGNING_SECRET=8f742231b10e8888abcd99yyyzzz85a5", "8f742231b10e8888abcd99yyyzzz85a5"),
        ('{"api_key": "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo="}', "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo="),
        ("postgres://rollbot:pa55w0rd@db.internal:5432/app", "pa55w0rd"),
    ],
)
def test_common_token_shapes_are_redacted(text: str, secret: str) -> None:
    out = Redactor().redact(text)
    assert secret not in out
    assert MASK in out


def test_known_secret_values_are_redacted_wherever_they_appear() -> None:
    r = Redactor(["plain-looking-value", "abc"])  # "abc" is too short to mask without wrecking output
    assert r.redact("deploying with plain-looking-value (abc)") == f"deploying with {MASK} (abc)"


def test_ordinary_progress_lines_are_left_alone() -> None:
    line = "[12:00:01] Updating deployment app-web: 4/8 pods on v2.3.1 (key rotation not needed)"
    assert Redactor().redact(line) == line


def test_pem_private_keys_are_redacted_line_by_line() -> None:
    lines = [
        "writing key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF0qj",
        "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Q=",
        "-----END RSA PRIVATE KEY-----",
        "done",
    ]
    stream = Redactor().stream()
    out = [stream(line) for line in lines]
    assert out == ["writing key", MASK, MASK, MASK, MASK, "done"]


def test_pem_block_in_a_whole_text_is_redacted() -> None:
    text = "a\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\nb"
    assert Redactor().redact(text) == f"a\n{MASK}\nb"


def test_json_like_values_are_redacted_for_storage() -> None:
    value = {"headers": {"x": "Bearer abcdefgh12345678"}, "list": ["xoxb-1-2-3abc", 5]}
    assert Redactor().redact_value(value) == {"headers": {"x": f"Bearer {MASK}"}, "list": [MASK, 5]}


# Lines where shapes touch, overlap, change case or sit next to non-ASCII text: the chunk path must treat them
# exactly as the line-by-line path does.
TRICKY_LINES = [
    "progress: step ok token=xoxb-0000-1111 " + "x" * 80,
    "xoxapp-1-A0123-456 then xapp-1-B0123-456",
    "akiasiaAKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPLE",
    "BEARER abcdefgh12345678, basic dXNlcjpwYXNzd29yZA==",
    "secretoken=abcdefghijklmnopqrstu and key: short",
    'DB_PASSWORD: "two words" then pwd=\'x y\' then passwd: plain',
    "https://alice:pa55w0rd@db.internal and ://bob:x@y",
    "İstanbul token=abcdefghijklmnopqrst",  # İ lower-cases to two characters: the slow path
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789 rk_live_abcdefgh1234",
    "a plain line with nothing to hide",
    "",
    'password="unterminated quote',
    "next line after it",
]


def test_a_chunk_of_lines_is_redacted_exactly_as_line_by_line() -> None:
    redactor = Redactor(["plain-looking-value"])
    lines = [*TRICKY_LINES, "uses plain-looking-value here"] * 3
    one_by_one = redactor.stream()
    assert redactor.stream().lines(lines) == [one_by_one(line) for line in lines]
    assert all("abcdefghijklmnopqrst" not in line and "pa55w0rd" not in line
               for line in redactor.stream().lines(lines))


def test_the_candidate_scan_finds_the_same_shapes_as_the_full_pattern() -> None:
    text = "\n".join(TRICKY_LINES)
    assert redact_module._redact_shapes(text) == redact_module._SHAPES.sub(redact_module._mask_shape, text)
    ascii_text = "\n".join(line for line in TRICKY_LINES if line.isascii())
    assert redact_module._redact_shapes(ascii_text) == redact_module._SHAPES.sub(redact_module._mask_shape,
                                                                                 ascii_text)


def test_a_pem_block_inside_a_chunk_is_masked_line_by_line() -> None:
    lines = ["before", "-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkq", "-----END PRIVATE KEY-----", "after"]
    stream = Redactor().stream()
    assert stream.lines(lines[:3]) == ["before", MASK, MASK]
    assert stream.lines(lines[3:]) == [MASK, "after"]  # the block state carries over to the next chunk
