"""The Web API's external upload: files.getUploadURLExternal hands out an upload URL on the sandbox (the control
API receives the bytes), files.completeUploadExternal shares the uploaded files."""

from __future__ import annotations

from typing import Any

from bot.sandbox.webapi import Call, Method, SlackError, WebApi
from bot.sandbox.workspace import Message


async def get_upload_url(api: WebApi, call: Call) -> dict[str, Any]:
    filename = call.str("filename")
    length = int(call.str("length"))
    file_id = api.ws.new_id("F")
    api.ws.files[file_id] = {"id": file_id, "name": filename, "length": length, "content": b"", "channels": [],
                             "title": filename, "uploaded": False}
    return {"upload_url": f"{api.base_url()}/_sandbox/upload/{file_id}", "file_id": file_id}


async def complete_upload(api: WebApi, call: Call) -> dict[str, Any]:
    files = call.json("files") or []
    out = []
    channel_id = call.str("channel_id", required=False) or None
    channel = api.member_channel(channel_id) if channel_id else None
    for item in files:
        record = api.ws.files.get(item.get("id"))
        if record is None or not record["uploaded"]:
            raise SlackError("file_not_found")
        record["title"] = item.get("title") or record["name"]
        if channel is not None:
            record["channels"].append(channel.id)
            message = Message(ts=api.next_ts(), user=api.ws.bot.id,
                              text=call.str("initial_comment", required=False) or record["title"],
                              thread_ts=call.str("thread_ts", required=False) or None, bot_id=api.ws.bot_id,
                              files=[record["id"]])
            channel.messages.append(message)
        out.append({"id": record["id"], "title": record["title"], "name": record["name"],
                    "permalink": f"{api.base_url()}/files/{api.ws.bot.id}/{record['id']}/{record['name']}"})
    return {"files": out}


METHODS: dict[str, Method] = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
}
