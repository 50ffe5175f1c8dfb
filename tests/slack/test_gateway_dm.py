"""A person's DM channel is opened once, not once per page: pages to the same person cost one chat.postMessage
each, both posted to the same DM."""

from __future__ import annotations

from pathlib import Path

from tests.support.harness import harness


async def test_a_second_dm_to_the_same_person_reuses_the_channel(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        before = len(h.sb.calls)
        first = await h.bot.svc.slack.dm("U100TL01", "first page")
        second = await h.bot.svc.slack.dm("U100TL01", "second page")
        assert first[0] == second[0]
        calls = h.sb.calls[before:]
        methods = [c["method"] for c in calls]
        assert methods.count("conversations.open") == 1 and methods.count("chat.postMessage") == 2
        posts = [c for c in calls if c["method"] == "chat.postMessage"]
        assert all(c["ok"] and c["args"].get("channel") == first[0] for c in posts)
        assert [c["args"].get("text") for c in posts] == ["first page", "second page"]
