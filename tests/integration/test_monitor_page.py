"""The monitor's live page in a real headless Chromium, against a zipper with traffic.

It must show a running stream function by name and a non-zero rate for its tag,
updating itself (the rate appears only after the page has polled while frames flow).
"""

from __future__ import annotations

import asyncio
import contextlib

from support.chromium import chromium_page

from .helpers import frame_bytes

IN = 0x33


async def test_page_shows_functions_and_live_rates(zipper, clients):
    z = await zipper(monitor="127.0.0.1:0")
    _, inbox = await clients.sfn(z, "page-fn", [IN])
    source = await clients.source(z, "page-source")

    async def produce() -> None:
        while True:
            await source.send(frame_bytes(IN, b"frame"))
            await asyncio.sleep(0.01)

    producer = asyncio.ensure_future(produce())
    try:
        async with chromium_page() as page:
            host, port = z.monitor_address
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"http://{host}:{port}/")
            fn = page.locator('#connections td.name[data-name="page-fn"]')
            await fn.wait_for(timeout=15_000)
            assert await fn.text_content() == "page-fn"
            await page.wait_for_function(
                """() => {
                    const cell = document.querySelector('#tags td.rate[data-tag="0x33"]');
                    return cell && Number(cell.dataset.rate) > 0;
                }""",
                timeout=15_000,
            )
            rate = page.locator('#tags td.rate[data-tag="0x33"]')
            assert float(await rate.get_attribute("data-rate")) > 0
            assert (await rate.text_content()) not in ("0", "\u2013")
            assert await page.locator("#state").text_content() == "serving"
            assert await page.locator("#name").text_content() == "test-zipper"
            assert errors == []
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
    assert inbox.count(IN) > 0
