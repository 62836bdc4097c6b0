"""What `check` says of catalogs: a file no flow reads, a message no flow uses, a subflow that does not
speak a language its caller offers, and a spoken route without words in an offered language."""

from __future__ import annotations

from pathlib import Path

from ivr.core import flow as f
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.catalogs import CATALOGS_DIR, read_catalog
from ivr.core.loader.files import display_path
from ivr.core.subflow import Call
from ivr.errors import FlowError

__all__ = ["catalog_warnings", "language_warnings"]


def _readers(flows: dict[str, f.Flow], name: str, language: str) -> list[f.Flow]:
    """The flows that look messages up in catalog `name` in `language`."""
    return [
        flow for flow in flows.values() if language in flow.localized and (flow.id == name or name in flow.catalogs)
    ]


def catalog_warnings(directory: Path, flows: dict[str, f.Flow]) -> list[FlowError]:
    """Each catalog file of `directory`'s catalogs/ that no flow reads, and each message no flow reading it uses."""
    folder = directory / CATALOGS_DIR
    if not folder.is_dir():
        return []
    out: list[FlowError] = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        file = display_path(path)
        name, _, language = path.stem.partition(".")
        if path.suffix == ".yml" or not language:
            why = "a catalog file is named <catalog>.<language>.yaml, e.g. main.es-MX.yaml"
            out.append(FlowError(file, 1, 1, "", why, "warning"))
            continue
        readers = _readers(flows, name, language)
        if not readers and (directory / f"{name}.yaml").is_file() and name not in flows:
            continue  # its flow does not load: the loader's errors say why, not this
        if not readers:
            named = {f"{n}.{tag}.yaml" for flow in flows.values() for tag in flow.localized
                     for n in (flow.id, *flow.catalogs)}  # fmt: skip
            hint = did_you_mean(path.name, named)  # bistro.fr_CA.yaml: did you mean bistro.fr-CA.yaml?
            why = f"no flow reads this catalog: a flow named '{name}' or with catalogs: [{name}], offering {language}"
            out.append(FlowError(file, 1, 1, "", why + hint, "warning"))
            continue
        entries, _problems, _digest = read_catalog(path, file)  # its problems are the loader's, reported there
        entries = entries or {}
        used = frozenset().union(*(flow.messages for flow in readers))
        names = ", ".join(flow.id for flow in readers)
        for key, entry in entries.items():
            if key not in used:
                pos = entry.pos
                out.append(FlowError(pos.file, pos.line, pos.column, key, f"no msg: uses it (read by {names})",
                                     "warning"))  # fmt: skip
    return out


def language_warnings(flow: f.Flow, flows: dict[str, f.Flow]) -> list[FlowError]:
    """A subflow that does not offer a language its caller does; a spoken route without words in a language."""
    out: list[FlowError] = []
    offered = tuple(flow.localized)
    for state in flow.states.values():
        action = state.action
        if isinstance(action, Call) and offered and action.flow in flows:
            sub = flows[action.flow]
            speaks = tuple(sub.localized) or (sub.defaults.language,)
            missing = [tag for tag in offered if tag not in speaks]
            if missing:
                heard = speaks[0] or "its one language"
                why = f"subflow '{sub.id}' does not offer {', '.join(missing)}: callers in it hear it in {heard}"
                out.append(_at(action.pos, path_join(path_join("states", state.name), "subflow"), why))
        if isinstance(action, f.Record) and action.transcribe and (others := [t for t in offered if not _english(t)]):
            why = (f"Twilio transcribes recordings in English only: callers in {', '.join(others)} get a transcription"
                   " of little use; deliver the recording itself to them")  # fmt: skip
            out.append(_at(action.pos, path_join(path_join("states", state.name), "record"), why))
        if not isinstance(action, f.Gather) or len(offered) < 2:
            continue
        for route in state.routes:
            if route.inherited or (f.is_digit_key(route.outcome) and not route.synonyms):
                continue
            said = dict(route.words)
            lacking = [tag for tag in offered[1:] if tag not in said]
            if lacking:
                why = (f"callers in {', '.join(lacking)} can say only '{route.outcome}' here: give its words per"
                       f" language, synonyms: {{{offered[0]}: [...], {lacking[0]}: [...]}}")  # fmt: skip
                route_path = path_join(path_join(path_join("states", state.name), "routes"), route.outcome)
                out.append(_at(route.pos, route_path, why))
    return out


def _english(tag: str) -> bool:
    return tag.split("-")[0].lower() == "en"


def _at(pos: f.Pos, path: str, message: str) -> FlowError:
    return FlowError(pos.file, pos.line, pos.column, path, message, "warning")
