#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A loopback TCP relay that delays each direction by D milliseconds.

usage: relay.py LISTEN_PORT TARGET_PORT DELAY_MS

Bytes are forwarded unchanged (no HTTP parsing); each chunk read is written
to the other side D ms after it arrived, so a request/answer exchange costs
2*D more, as a network with that one-way latency would, while throughput is
not limited (chunks in flight overlap). Connections are relayed one to one,
so client keep-alive is kept. Prints "ready" once listening.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read_side():
        try:
            while True:
                data = await reader.read(65536)
                await queue.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time() + delay, b""))

    async def write_side():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    await asyncio.gather(read_side(), write_side())


async def main():
    listen_port, target_port, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = delay_ms / 1000.0

    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            cwriter.close()
            return
        try:
            await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay))
        finally:
            for w in (cwriter, swriter):
                try:
                    w.close()
                except OSError:
                    pass

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
