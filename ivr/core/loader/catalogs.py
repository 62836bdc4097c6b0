"""Reading a flow's languages (`defaults.languages`) and its catalogs: the prompts written once per language.

Catalogs live in `catalogs/` beside the flows (the flow loader takes only `flows/*.yaml`, so they are
never read as flows), one file per catalog and language: `catalogs/<catalog>.<language>.yaml`. A
flow's own catalog is named after it (`catalogs/main.es-MX.yaml`); shared ones are named by the
flow's `catalogs:` list. Each file maps message ids to what a `say:` can be (text, a say mapping, or
a prompts list). A flow looks a message up in its own catalog first, then in the shared ones in the
order it names them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from ivr.core import flow as f
from ivr.core.hints import did_you_mean, path_join
from ivr.core.languages import CatalogEntry, Language, localize, tag_problem
from ivr.core.loader.prompts import KINDS, MSG_ID, PromptReader
from ivr.core.loader.source import compose
from ivr.errors import FlowError

__all__ = ["CATALOGS_DIR", "LanguagesReader", "catalog_file", "localize_flow", "read_catalog"]

CATALOGS_DIR = "catalogs"
LANGUAGE_KEYS = ("voice", "hints", "numbers", "speech")


def catalog_file(directory: Path, name: str, language: str) -> Path:
    """Where catalog `name` keeps its messages in `language`."""
    return directory / f"{name}.{language}.yaml"


class LanguagesReader(PromptReader):
    """Reads `defaults.languages` and a state's `language:`; the flow reader builds on it."""

    def languages(self, items: dict, path: str) -> tuple[Language, ...]:
        """`defaults.languages`: each language the flow offers, with its voice, speech hints and numbers."""
        if "languages" not in items:
            return ()
        node = items["languages"][1]
        lpath = path_join(path, "languages")
        entries = self.mapping(node, lpath)
        if entries is None:
            return ()
        out = []
        for tag, (key_node, value_node) in entries.items():
            tag_path = path_join(lpath, tag)
            problem = tag_problem(tag)
            if problem:
                self.error(key_node, tag_path, problem)
                continue
            settings = {}
            if not (isinstance(value_node, yaml.ScalarNode) and value_node.value == "" and not value_node.style):
                settings = self.mapping(value_node, tag_path) or {}  # `es-MX:` alone: the language, no settings
            self.known_keys(settings, LANGUAGE_KEYS, tag_path)
            voice = self._opt(settings, "voice", tag_path, self.string)
            hints = self._opt(settings, "hints", tag_path, self.string)
            numbers = self._opt(settings, "numbers", tag_path, self._numbers) or ()
            speech = self._opt(settings, "speech", tag_path, lambda n, p: self.speech(n, p, None))
            out.append(Language(tag, voice, hints, numbers, self.pos(key_node), speech))
        if isinstance(node, yaml.MappingNode) and not entries:
            self.error(node, lpath, "list the languages the flow offers: {en-US: {voice: ...}, es-MX: {...}}")
        taken: dict[str, str] = {}
        for language in out:
            for number in language.numbers:
                if number in taken:
                    message = f"{number} already answers in {taken[number]}"
                    self.error(language.pos, path_join(lpath, language.tag), message)
                taken[number] = language.tag
        return tuple(out)

    def _numbers(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        out = []
        for item in self.sequence(node, path) or ():
            number = self.string(item, path)
            if number is not None and not f.E164.match(number):
                self.error(item, path, f"'{number}' is not an E.164 number (+15551234567)")
            elif number is not None:
                out.append(number)
        return tuple(out)

    def default_language(self, items: dict, languages: tuple[Language, ...], language: str | None) -> str | None:
        """The flow's default language: `defaults.language`, which must be offered, else the first offered."""
        tags = [lang.tag for lang in languages]
        if not tags:
            return language
        if language is not None and language not in tags:
            hint = did_you_mean(language, tags)
            why = f"'{language}' is not one of the languages the flow offers ({', '.join(tags)}){hint}"
            self.error(items["language"][1], "defaults.language", why)
            return tags[0]
        return language or tags[0]

    def state_language(self, items: dict, path: str) -> f.Text | None:
        """A state's `language:`: the call goes on in this language (a template is checked when it runs)."""
        if "language" not in items:
            return None
        key_node, node = items["language"]
        lpath = path_join(path, "language")
        text = self.text(node, lpath)
        if text is None:
            return None
        if not self.offered:
            self.error(key_node, lpath, "the flow offers no languages to switch to: list them in defaults.languages")
            return None
        if text.template is None and text.source not in self.offered:
            hint = did_you_mean(text.source, self.offered)
            self.error(node, lpath, f"'{text.source}' is not offered ({', '.join(self.offered)}){hint}")
            return None
        return text

    def synonyms_by_language(self, node: yaml.Node, path: str) -> tuple[tuple[str, ...], tuple]:
        """`synonyms: {en-US: [...], es-MX: [...]}`: (the default language's words, (language, words) pairs)."""
        items = self.mapping(node, path) or {}
        words = []
        for tag, (key_node, value_node) in items.items():
            tag_path = path_join(path, tag)
            if tag not in self.offered:
                hint = did_you_mean(tag, self.offered)
                self.error(key_node, tag_path, f"'{tag}' is not a language the flow offers{hint}")
                continue
            said = [self.string(n, tag_path) for n in self.sequence(value_node, tag_path) or ()]
            words.append((tag, tuple(w for w in said if w)))
        default = dict(words).get(self.offered[0], ()) if self.offered else ()
        return default, tuple(words)


class _CatalogReader(PromptReader):
    """Reads one catalog file: message ids to prompts."""

    def entries(self, root: yaml.Node) -> dict[str, CatalogEntry]:
        items = self.mapping(root, "")
        out: dict[str, CatalogEntry] = {}
        for key, (key_node, value_node) in (items or {}).items():
            before = len(self.errors)
            self._entry(out, key, key_node, value_node)
            if len(self.errors) > before:  # reported here: the flow does not report it missing as well
                out[key] = CatalogEntry((), self.pos(key_node), self.file)
        return out

    def _entry(self, out: dict, key: str, key_node: yaml.Node, value_node: yaml.Node) -> None:
        """One message, its problems reported where they are written."""
        if not MSG_ID.match(key):
            self.error(key_node, key, "a message id uses letters, digits, '_', '.' and '-', starting with a letter")
            return
        if isinstance(value_node, yaml.MappingNode) and any(k.value == "msg" for k, _ in value_node.value):
            self.error(value_node, key, "a catalog holds prompts, not msg: references to other messages")
            return
        keys = [k.value for k, _ in value_node.value] if isinstance(value_node, yaml.MappingNode) else None
        if keys is not None and not any(k in (*KINDS, "text") for k in keys):
            self.error(value_node, key, "a message is text, a say mapping {text: ...}, or a list of prompts")
            return
        if keys is not None and len(keys) == 1 and keys[0] in KINDS:  # {play: URL}: one prompt of that kind
            one = self.prompt(keys[0], value_node.value[0][1], path_join(key, keys[0]), None, None)
            prompts = (one,) if one else ()
        else:
            prompts = self.prompt_value(value_node, key, None, None)
        if prompts:
            out[key] = CatalogEntry(prompts, self.pos(key_node), self.file)


def read_catalog(path: Path, file: str) -> tuple[dict[str, CatalogEntry] | None, list[FlowError], str]:
    """One catalog file: its entries (None when it cannot be read at all), its problems, and a digest of its
    text ("" when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, [], ""
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FlowError(file, 1, 1, "", f"cannot be read as UTF-8 text: {exc}")], "?"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    try:
        root = compose(text, file)
    except FlowError as exc:
        return None, [exc], digest
    if root is None:
        return {}, [], digest
    reader = _CatalogReader(file)
    return reader.entries(root), reader.errors, digest


def localize_flow(flow: f.Flow, directory: Path, display) -> tuple[f.Flow, list[FlowError], str]:
    """A flow that offers languages, with its view in each (`Flow.localized`): (the flow, the problems of its
    catalogs and of the messages they lack, a digest of the catalogs read, for the flow's content hash)."""
    problems: list[FlowError] = []
    catalogs: dict[str, dict[str, CatalogEntry]] = {}
    files: dict[str, str] = {}
    digests = []
    quiet: set[str] = set()  # languages whose catalogs' own problems say it all: no message is reported missing
    for language in flow.defaults.languages:
        merged: dict[str, CatalogEntry] = {}
        found_any = False
        for name in (flow.id, *flow.catalogs):
            path = catalog_file(directory, name, language.tag)
            file = display(path)
            entries, found, digest = read_catalog(path, file)
            problems.extend(found)
            digests.append(f"{file}:{digest}")
            found_any = found_any or digest != ""
            if entries is None:
                quiet.add(language.tag)
            for key, entry in (entries or {}).items():
                merged.setdefault(key, entry)
        catalogs[language.tag] = merged
        files[language.tag] = display(catalog_file(directory, flow.id, language.tag))
        if not found_any:
            quiet.add(language.tag)
            why = f"no catalog holds the prompts in {language.tag}: create {files[language.tag]}"
            problems.append(FlowError(language.pos.file, language.pos.line, language.pos.column,
                                      f"defaults.languages.{language.tag}", why))  # fmt: skip
    base, missing, _used = localize(flow, catalogs, files, quiet)
    problems.extend(FlowError(pos.file, pos.line, pos.column, path, message) for pos, path, message in missing)
    digest = hashlib.sha256("\n".join(digests).encode("utf-8")).hexdigest()[:16]
    return base, problems, digest
