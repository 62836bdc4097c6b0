"""The flows a process serves: loaded at start, reloaded when their files change, never replaced by
a bad edit, and kept per version so a call finishes on the flow it started with.

Every good version of a flow is also kept in the session store (`flow:<id>:<hash>`, with
`flow:<id>` naming the newest), so that a process starting while a bad edit is on disk serves the
last good version rather than refusing to start, and a process that never loaded a version a call
started on can still serve it (across servers once the store is shared).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from pathlib import Path

from ivr.core import flow as f
from ivr.core.agent_checks import relay_setting_errors
from ivr.core.engine import Engine
from ivr.core.gc_pause import gc_paused
from ivr.core.loader import graph_errors, load_schedules_file, read_directory, read_flow
from ivr.core.loader.catalogs import CATALOGS_DIR
from ivr.core.references import unknown_names
from ivr.core.twiml import Urls
from ivr.core.validate import validate_flows
from ivr.core.voice_checks import voice_warnings
from ivr.errors import FlowError, FlowLoadError, StoreError, WebhookError

__all__ = ["FlowRegistry"]

log = logging.getLogger("ivr.flows")

VERSION_TTL = 30 * 24 * 3600  # seconds a flow version stays in the store after its last use at start
KEPT_VERSIONS = 20  # older versions per flow a process keeps in memory for calls still on them
CHECK_EVERY = 1.0  # seconds between looks at the flows directory when hot reload is on


class FlowRegistry:
    """Current flows and engines, plus older versions still in use; `refresh` reloads changed files."""

    def __init__(
        self,
        directory,
        urls: Urls,
        timezone: str,
        schedules_file=None,
        store=None,
        *,
        hot_reload=False,
        hook_names: Callable[[], Collection[str]] = frozenset,
        http_secrets: Collection[str] = frozenset(),
    ):
        self.directory = Path(directory)
        self.urls = urls
        self.timezone = timezone
        self.store = store
        self.hot_reload = hot_reload
        self.hook_names = hook_names  # the registered hooks, which a flow's run: and on_message must name
        self.http_secrets = http_secrets  # IVR_HTTP_SECRETS: the only secrets an HTTP step may name
        self.schedules = load_schedules_file(schedules_file) if schedules_file else {}
        self.problems: list[FlowError] = []  # why the newest edit is not being served
        self._versions: OrderedDict[tuple[str, str], Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._fingerprint = self._scan()
        self._checked = time.monotonic()
        self.flows, self.engines = self._load(initial=True)

    # -- serving ------------------------------------------------------------------------------

    def engine(self, flow_id: str, version: str | None = None) -> Engine:
        """The engine for a flow, at the version a call started on when it is still to be had."""
        current = self.engines.get(flow_id)
        if version and (current is None or current.flow.content_hash != version):
            older = self._version(flow_id, version)
            if older is not None:
                return older
        if current is None:
            raise WebhookError(f"unknown flow '{flow_id}'")
        return current

    def refresh(self) -> None:
        """With hot reload on, load changed flow files (at most once a second); a bad edit is reported."""
        if not self.hot_reload or time.monotonic() - self._checked < CHECK_EVERY:
            return
        with self._lock:
            self._checked = time.monotonic()
            fingerprint = self._scan()
            if fingerprint == self._fingerprint:
                return
            self._fingerprint = fingerprint
            try:
                flows, engines = self._load(initial=False)
                self.flows, self.engines = flows, engines
            except FlowLoadError as exc:
                self.problems = exc.errors
                log.error("flow edit NOT loaded; still serving the last good version:\n%s", exc)
            except Exception as exc:  # whatever an edit holds, callers keep the flows being served
                where = str(self.directory)
                self.problems = [FlowError(where, 1, 1, "", f"flows could not be read: {exc}")]
                log.exception("flow edit NOT loaded; still serving the last good version")

    # -- loading ------------------------------------------------------------------------------

    def _load(self, *, initial: bool):
        flows: dict[str, f.Flow] = {}
        errors: list[FlowError] = []
        fallbacks: list[str] = []
        reported: list[FlowError] = []
        texts: dict[str, str] = {}
        hooks = self.hook_names()
        read_files = read_directory(self.directory)
        with gc_paused():
            for read in read_files:
                path, flow, problems = read.path, read.flow, read.problems
                if flow is not None:  # its own graph, hooks and schedules, as `check` finds them
                    named = unknown_names(flow, hooks, self.schedules, self.http_secrets)
                    named += relay_setting_errors(flow, self.urls.base)  # an agent's wss:// URL comes from it
                    problems = problems + graph_errors(flow) + named
                if flow is not None and not problems:
                    flows[flow.id] = flow
                    texts[flow.id] = read.text
                    continue
                good = self._last_good(path.stem) if initial else self._serving(path.stem)
                if good is None:
                    errors.extend(problems)
                else:
                    flows[good.id] = good
                    fallbacks.append(path.stem)
                    errors_for_log = "\n".join(e.format() for e in problems)
                    log.error("%s has errors; serving its last good version %s:\n%s", path, good.content_hash,
                              errors_for_log)  # fmt: skip
                    reported.extend(problems)
            errors.extend(e for e in validate_flows(flows, across_only=True) if e.severity == "error")
            if errors:
                raise FlowLoadError(errors)
            engines = {}
            for fid, flow in flows.items():
                engine = self._versions.get((fid, flow.content_hash)) or self._new_engine(flow)
                engines[fid] = engine
                self._keep(engine)
        for fid, flow in flows.items():
            if fid not in fallbacks:
                self._save_good(flow, texts[fid])
        self.problems = reported
        return flows, engines

    def _new_engine(self, flow: f.Flow) -> Engine:
        for warning in voice_warnings(flow):  # once per version: the voice table can lag Twilio, so never an error
            log.warning("%s", warning.format())
        engine = Engine(flow, self.urls, timezone=self.timezone, schedules=self.schedules)
        engine.link = self.engine  # its subflows (and callers), at the versions a call is on
        return engine

    def _keep(self, engine: Engine) -> None:
        key = (engine.flow.id, engine.flow.content_hash)
        self._versions[key] = engine
        self._versions.move_to_end(key)
        per_flow = [k for k in self._versions if k[0] == key[0]]
        for old in per_flow[:-KEPT_VERSIONS]:
            del self._versions[old]

    def _serving(self, flow_id: str) -> f.Flow | None:
        engine = getattr(self, "engines", {}).get(flow_id)
        return engine.flow if engine else None

    def _version(self, flow_id: str, version: str) -> Engine | None:
        engine = self._versions.get((flow_id, version))
        if engine is not None:
            return engine
        flow = self._stored(flow_id, version)
        if flow is None:
            return None
        engine = self._new_engine(flow)
        with self._lock:
            self._keep(engine)
        return engine

    # -- the store's copies -------------------------------------------------------------------

    def _save_good(self, flow: f.Flow, text: str) -> None:
        if self.store is None:
            return
        try:
            self.store.update(f"flow:{flow.id}:{flow.content_hash}", lambda _: {"text": text, "file": flow.file},
                              VERSION_TTL)  # fmt: skip
            self.store.update(f"flow:{flow.id}", lambda _: {"hash": flow.content_hash}, VERSION_TTL)
        except StoreError as exc:
            log.warning("could not keep the last good version of flow %s: %s", flow.id, exc)

    def _last_good(self, flow_id: str) -> f.Flow | None:
        if self.store is None:
            return None
        try:
            newest = self.store.get(f"flow:{flow_id}")
        except StoreError:
            return None
        return self._stored(flow_id, newest["hash"]) if newest else None

    def _stored(self, flow_id: str, version: str) -> f.Flow | None:
        if self.store is None:
            return None
        try:
            saved = self.store.get(f"flow:{flow_id}:{version}")
        except StoreError:
            return None
        if not saved:
            return None
        flow, problems = read_flow(saved["text"], saved["file"], flow_id)
        return flow if flow is not None and not problems else None

    def _scan(self) -> tuple:
        """What hot reload compares: each flow file's and each catalog file's (catalogs/) name, time and size."""
        seen = []
        for directory in (self.directory, os.path.join(self.directory, CATALOGS_DIR)):
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            prefix = "" if directory == self.directory else f"{CATALOGS_DIR}/"
            seen.extend(
                (prefix + e.name, e.stat().st_mtime_ns, e.stat().st_size)
                for e in entries
                if e.name.endswith((".yaml", ".yml"))
            )
        return tuple(seen)
