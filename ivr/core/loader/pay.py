"""Reading a state's `pay:` (Twilio's <Pay>) and the prompts of each of its steps."""

from __future__ import annotations

import yaml

from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader
from ivr.core.pay import (
    BANK_ACCOUNT_TYPES,
    BANK_STEPS,
    CARD_STEPS,
    CARD_TYPES,
    ERROR_TYPES,
    METHODS,
    STEPS,
    TOKEN_TYPES,
    Pay,
    PayPrompt,
    amount_problem,
)

__all__ = ["PayReader"]

PAY_KEYS = ("amount", "currency", "token_type", "connector", "method", "card_types", "postal_code", "security_code",
            "min_postal_code_length", "bank_account_type", "timeout", "max_attempts", "description", "language",
            "prompts", "save_as", "pause_recording")  # fmt: skip
PROMPT_WORDS = ("say", "play", "pause", "msg", "prompts")
WHEN_KEYS = ("attempt", "error", "card_type", "require_matching")


class PayReader(Reader):
    """Reads `pay:`; the action reader builds on it (its prompts, texts and names come from there)."""

    def _pay(self, items, path, pos, node):
        self.known_keys(items, PAY_KEYS, path)
        method = self._choice(items, "method", path, METHODS)
        amount = None
        if "amount" in items:
            amount_node = items["amount"][1]
            if isinstance(amount_node, yaml.ScalarNode) and not amount_node.style and amount_node.value:
                # 12.50 written as a number: kept as written, as Twilio takes it
                amount_node = yaml.ScalarNode("tag:yaml.org,2002:str", amount_node.value, amount_node.start_mark,
                                              amount_node.end_mark, style='"')  # fmt: skip
            amount = self.text(amount_node, path_join(path, "amount"))
            if amount is not None and amount.template is None and (problem := amount_problem(amount.source)):
                self.error(items["amount"][1], path_join(path, "amount"), problem)
        charged = amount is not None and (amount.template is not None or amount.source.strip("0.") != "")
        for key in ("currency", "token_type"):
            if key in items and (key == "currency") != charged:
                why = ("currency goes with a charge: add amount" if key == "currency"
                       else "token_type is for a payment kept as a token: remove amount, or make it 0")  # fmt: skip
                self.error(items[key][0], path_join(path, key), why)
        card_types = ()
        if "card_types" in items:
            card_path = path_join(path, "card_types")
            nodes = self.sequence(items["card_types"][1], card_path) or ()
            card_types = tuple(t for n in nodes if (t := self._word(n, card_path, CARD_TYPES, "card type")))
        postal = None
        if "postal_code" in items:  # true/false: ask for it or not; text: the postal code to use
            node_ = items["postal_code"][1]
            plain = isinstance(node_, yaml.ScalarNode) and not node_.style and node_.value in ("true", "false")
            postal = self.boolean(node_, path_join(path, "postal_code")) if plain else self.string(
                node_, path_join(path, "postal_code"))  # fmt: skip
        security = self._opt(items, "security_code", path, self.boolean)
        not_asked = {"security-code": "security_code: false"} if security is False else {}
        if postal is False or isinstance(postal, str):
            not_asked["postal-code"] = "postal_code: false" if postal is False else "postal_code gives it"
        if method == "ach-debit":
            for key in ("card_types", "security_code", "postal_code", "min_postal_code_length"):
                if key in items:
                    self.error(items[key][0], path_join(path, key), f"{key} is for a card: this payment is ach-debit")
        bank = self._choice(items, "bank_account_type", path, BANK_ACCOUNT_TYPES)
        if bank is not None and method != "ach-debit":
            self.error(items["bank_account_type"][0], path_join(path, "bank_account_type"),
                       "bank_account_type is for method: ach-debit")  # fmt: skip
        return Pay(
            pos=pos,
            amount=amount,
            currency=self._opt(items, "currency", path, self.string),
            token_type=self._choice(items, "token_type", path, TOKEN_TYPES),
            connector=self._opt(items, "connector", path, self.string),
            method=method,
            card_types=card_types,
            postal_code=postal,
            security_code=security,
            min_postal_code_length=self._opt(
                items, "min_postal_code_length", path, lambda n, p: self.number(n, p, minimum=1, maximum=10)
            ),
            bank_account_type=bank,
            timeout=self._opt(items, "timeout", path, lambda n, p: self.number(n, p, minimum=1, maximum=60)),
            max_attempts=self._opt(items, "max_attempts", path, lambda n, p: self.number(n, p, minimum=1, maximum=3)),
            description=self.text(items["description"][1], path_join(path, "description"))
            if "description" in items
            else None,
            language=self._opt(items, "language", path, self.language_tag),
            prompts=self._pay_prompts(items, path, method, not_asked),
            save_as=self._opt(items, "save_as", path, self.variable),
            pause_recording=self._opt(items, "pause_recording", path, self.boolean) is not False,
        )

    def _choice(self, items: dict, key: str, path: str, options) -> str | None:
        if key not in items:
            return None
        return self._word(items[key][1], path_join(path, key), options, key.replace("_", " "))

    def _word(self, node: yaml.Node, path: str, options, what: str) -> str | None:
        value = self.string(node, path)
        if value is not None and value not in options:
            self.error(
                node, path, f"unknown {what} '{value}'{did_you_mean(value, options)}; one of {', '.join(options)}"
            )
            return None
        return value

    def _pay_prompts(self, items: dict, path: str, method: str | None, not_asked: dict) -> tuple[PayPrompt, ...]:
        """`prompts:` step -> text, or a list of {attempt, error, card_type, say/play/pause/msg/prompts}."""
        if "prompts" not in items:
            return ()
        prompts_path = path_join(path, "prompts")
        unasked = CARD_STEPS if method == "ach-debit" else BANK_STEPS
        out = []
        for step, (key_node, node) in (self.mapping(items["prompts"][1], prompts_path) or {}).items():
            step_path = path_join(prompts_path, step)
            if step not in STEPS:
                self.error(key_node, step_path, f"unknown step '{step}'{did_you_mean(step, STEPS)}; steps: "
                           + ", ".join(STEPS))  # fmt: skip
                continue
            if step in unasked:
                self.error(key_node, step_path, f"an {method} payment never asks for {step}" if method == "ach-debit"
                           else f"a credit-card payment never asks for {step}")  # fmt: skip
            elif step in not_asked:
                self.error(key_node, step_path, f"this payment never asks for {step} ({not_asked[step]})")
            variants = self.sequence(node, step_path) if isinstance(node, yaml.SequenceNode) else [node]
            for i, variant in enumerate(variants or ()):
                where = path_join(step_path, i) if isinstance(node, yaml.SequenceNode) else step_path
                if found := self._pay_prompt(step, variant, where):
                    out.append(found)
        return tuple(out)

    def _pay_prompt(self, step: str, node: yaml.Node, path: str) -> PayPrompt | None:
        if not isinstance(node, yaml.MappingNode):
            said = self.prompt_value(node, path, None, None)
            return PayPrompt(step, said, self.pos(node)) if said else None
        entry = self.mapping(node, path) or {}
        self.known_keys(entry, PROMPT_WORDS + WHEN_KEYS, path)
        kinds = [k for k in PROMPT_WORDS if k in entry]
        if len(kinds) > 1:  # one item, one kind: several prompts are a prompts: list, heard in its order
            self.error(node, path, f"one of {', '.join(PROMPT_WORDS)} per item, not {' and '.join(kinds)}:"
                       " write several as prompts: [...]")  # fmt: skip
            return None
        said = self.prompts(entry, path, None, None)
        if not said:
            self.error(node, path, "say what the caller hears, e.g. say: Please enter your card number")
            return None
        attempts = tuple(int(n) for n in self._list(entry, "attempt", path, self._attempt))
        errors = self._list(entry, "error", path, lambda n, p: self._word(n, p, ERROR_TYPES, "error type"))
        cards = self._list(entry, "card_type", path, lambda n, p: self._word(n, p, CARD_TYPES, "card type"))
        matching = self._opt(entry, "require_matching", path, self.boolean) or False
        return PayPrompt(step, said, self.pos(node), attempts, errors, cards, matching)

    def _attempt(self, node: yaml.Node, path: str):
        return self.number(node, path, minimum=1, maximum=10)

    def _list(self, entry: dict, key: str, path: str, read) -> tuple:
        """One value or a list of them."""
        if key not in entry:
            return ()
        key_path = path_join(path, key)
        node = entry[key][1]
        nodes = self.sequence(node, key_path) if isinstance(node, yaml.SequenceNode) else [node]
        return tuple(v for n in nodes or () if (v := read(n, key_path)) is not None)
