"""A browser tab without the browser: Streamlit's own websocket protocol, as its frontend speaks it
to `/_stcore/stream`, so that a load test can put dozens of students on one server without
dozens of Chromiums competing with that server for the same two cores.

What the frontend does and this client does the same way (Streamlit 1.67's protocol buffers):
  - on connect, and for each click or page change, a `BackMsg.rerun_script` with the link's query
    string, the page's script hash and the widget that changed (a button's trigger). Widgets it
    does not send keep their values on the server, as when a student leaves them alone;
  - it keeps the query string the app writes (`page_info_changed`: the `?student=` link);
  - it reruns a fragment every `auto_rerun.interval` seconds, as the frontend's timers do (our job
    panels refresh this way), and forgets those timers when a new full run starts;
  - it keeps the page's elements by their place (`metadata.delta_path`), replaced as the server
    redraws them and dropped when a full run ends without drawing them again.
What it does not do: draw anything, load charts' data, send heartbeats. `tests/test_classroom.py`
drives the same student with both this client and Chromium against one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FINISHED = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY


@dataclass
class _Element:
    proto: object
    run: int  # the full run that last drew it
    raw: bytes = b""


@dataclass
class StreamlitTab:
    """One student's tab: `await tab.open()`, then `goto`, `click`, `wait_for_text`."""

    url: str  # http://127.0.0.1:8501
    query_string: str = ""
    pages: dict[str, str] = field(default_factory=dict)  # title -> page_script_hash
    page_hash: str = ""
    elements: dict[tuple[int, ...], _Element] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, asyncio.Task] = {}
        self._run = 0
        self._finished = asyncio.Event()  # a full run finished since the last request
        self._changed = asyncio.Event()  # anything arrived

    # -- connection -----------------------------------------------------------------------------
    async def open(self) -> None:
        import websockets

        ws_url = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(
            ws_url, subprotocols=["streamlit"], origin=self.url, max_size=None, open_timeout=120
        )
        self._reader = asyncio.create_task(self._read())
        await self._request()

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()

    @property
    def student(self) -> str:
        """The student id the app wrote into this tab's link ("" before the first run)."""
        from urllib.parse import parse_qs

        return parse_qs(self.query_string).get("student", [""])[0]

    # -- what a student does --------------------------------------------------------------------
    async def goto(self, title: str) -> None:
        """Click `title` in the sidebar's navigation and wait for the page's run to finish."""
        if title not in self.pages:
            raise KeyError(f"no page {title!r}: the app has {sorted(self.pages)}")
        self.page_hash = self.pages[title]
        await self._request()

    async def click(self, label: str) -> None:
        """Press the button labelled `label` and wait for the run it starts to finish."""
        button = self.find_widget("button", label)
        state = BackMsg().rerun_script.widget_states.widgets.add()
        state.id, state.trigger_value = button.id, True
        await self._request(widgets=[state])

    async def set_number(self, label: str, value: int) -> None:
        """Type a whole number into the number box labelled `label` (and leave it, as with Tab)."""
        box = self.find_widget("number_input", label)
        state = BackMsg().rerun_script.widget_states.widgets.add()
        state.id, state.int_value = box.id, value
        await self._request(widgets=[state])

    def find_widget(self, kind: str, label: str):
        for element in self.elements.values():
            if element.proto.WhichOneof("type") == kind and getattr(element.proto, kind).label == label:
                return getattr(element.proto, kind)
        raise LookupError(f"no {kind} labelled {label!r} on the page")

    def has_text(self, text: str) -> bool:
        needle = text.encode()
        return any(needle in element.raw for element in self.elements.values())

    def text_with(self, text: str) -> str:
        """The readable text of the first element that contains `text` ("" if none)."""
        needle = text.encode()
        for element in self.elements.values():
            if needle in element.raw:
                return element.raw.decode("utf-8", errors="replace")
        return ""

    async def wait_for_text(self, *texts: str, timeout: float = 900.0) -> str:
        """Wait until one of `texts` is on the page (as the browser's `get_by_text`); returns it."""
        deadline = time.perf_counter() + timeout
        while True:
            for text in texts:
                if self.has_text(text):
                    return text
            self._changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"none of {texts} appeared within {timeout:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # -- the protocol -----------------------------------------------------------------------------
    async def _request(self, widgets=(), fragment_id: str = "", wait: bool = True) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_hash
        state.widget_states.widgets.extend(widgets)
        if fragment_id:
            state.fragment_id, state.is_auto_rerun = fragment_id, True
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        state.context_info.url = f"{self.url}/?{self.query_string}"
        if not fragment_id:
            self._finished.clear()
        await self._ws.send(msg.SerializeToString())
        if wait and not fragment_id:
            await self._finished.wait()

    async def _read(self) -> None:
        async for data in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._handle(msg)
            self._changed.set()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session" and not msg.metadata.run.fragment_ids:  # a full run starts:
            self._run += 1  # the page's timers start again
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            if msg.new_session.page_script_hash:
                self.page_hash = msg.new_session.page_script_hash
        elif kind == "navigation":
            self.pages = {page.page_name: page.page_script_hash for page in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            self.elements[tuple(msg.metadata.delta_path)] = _Element(element, self._run, element.SerializeToString())
            if element.WhichOneof("type") == "exception":
                self.exceptions.append(f"{element.exception.type}: {element.exception.message}"[:300])
        elif kind == "auto_rerun":
            fragment, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fragment in self._timers:
                self._timers[fragment].cancel()
            self._timers[fragment] = asyncio.create_task(self._every(fragment, interval))
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                if fragment in self._timers:
                    self._timers.pop(fragment).cancel()
        elif kind == "script_finished" and msg.script_finished == FINISHED:
            self.elements = {path: e for path, e in self.elements.items() if e.run == self._run}
            self._finished.set()

    async def _every(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._request(fragment_id=fragment_id, wait=False)
