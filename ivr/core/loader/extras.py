"""Reading what a state may add to its action: what reaching it means for reports (`report:`), where its
recording goes (`on_message:`), routes on answering machines (`answered_by:`) and a text (`sms:`)."""

from __future__ import annotations

import yaml

from ivr.core import flow as f
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader

__all__ = ["StateExtrasReader"]


class StateExtrasReader(Reader):
    """The readers of a state's extras; `routes`, `name` and `text` come from the readers it is mixed with."""

    def report_mark(self, node: yaml.Node, path: str) -> str | None:
        """report: what reaching the state means for the call's outcome (contained, transferred, ...)."""
        mark = self.string(node, path)
        if mark is not None and mark not in f.REPORT_MARKS:
            self.error(node, path, f"'{mark}' is not one of {', '.join(f.REPORT_MARKS)}")
            return None
        return mark

    def delivery(self, node: yaml.Node, path: str):
        """on_message: a hook's name, or {sms: NUMBER} to text each message to a number."""
        if isinstance(node, yaml.MappingNode):
            items = self.mapping(node, path) or {}
            self.known_keys(items, ("sms",), path)
            if "sms" not in items:
                self.error(node, path, "give a hook's name, or sms: NUMBER")
                return None
            number = self.string(items["sms"][1], path_join(path, "sms"))
            if number is not None and not f.E164.match(number):
                why = f"'{number}' is not an E.164 number (+15551234567)"
                self.error(items["sms"][1], path_join(path, "sms"), why)
                return None
            return {"sms": number} if number else None
        return self.name(node, path, "hook")

    def answered_by(self, items: dict, path: str) -> tuple:
        """Routes on Twilio's AnsweredBy, taken on entering the state before its prompts."""
        if "answered_by" not in items:
            return ()
        key_path = path_join(path, "answered_by")
        fake = {"routes": (None, items["answered_by"][1])}
        routes = self.routes(fake, path, None)
        allowed = (*f.ANSWERED_BY, f.MACHINE)
        for route in routes:
            if route.outcome not in allowed:
                hint = did_you_mean(route.outcome, allowed)
                self.error(route.pos, path_join(key_path, route.outcome), f"not an AnsweredBy value{hint}")
        return tuple(r for r in routes if r.outcome in allowed)

    def sms(self, node: yaml.Node, path: str) -> f.Sms | None:
        """`sms: TEXT` (to the other party) or {body, to}."""
        if isinstance(node, yaml.ScalarNode):
            body = self.text(node, path)
            return f.Sms(body, None, self.pos(node)) if body else None
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, ("body", "to"), path)
        if "body" not in items:
            self.error(node, path, "missing key: body (the text to send)")
            return None
        body = self.text(items["body"][1], path_join(path, "body"))
        to = self.text(items["to"][1], path_join(path, "to")) if "to" in items else None
        return f.Sms(body, to, self.pos(node)) if body else None
