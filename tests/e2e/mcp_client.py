"""Drives rivet-mcp with the official Python MCP SDK, as an MCP client would.

Reads a JSON spec on stdin: {"command": path, "cwd": dir, "env": {...}, "calls":
[{"name": tool, "arguments": {...}}]}. Starts the server over stdio, initializes,
lists the tools, makes each call in order, and prints one JSON object: the server's
name and protocol version, the tools (name, read-only hint, input schema) and, per
call, whether it was an error and its text blocks.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    spec = json.load(sys.stdin)
    params = StdioServerParameters(
        command=spec["command"], args=[], env=spec["env"], cwd=spec["cwd"]
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            out["protocol_version"] = init.protocol_version
            listed = await session.list_tools()
            out["tools"] = [
                {
                    "name": t.name,
                    "read_only": bool(t.annotations and t.annotations.read_only_hint),
                    "input_schema": t.input_schema,
                }
                for t in listed.tools
            ]
            calls = []
            for call in spec["calls"]:
                result = await session.call_tool(call["name"], call["arguments"])
                calls.append(
                    {
                        "name": call["name"],
                        "is_error": bool(result.is_error),
                        "texts": [b.text for b in result.content if b.type == "text"],
                    }
                )
            out["calls"] = calls
    json.dump(out, sys.stdout)


asyncio.run(main())
