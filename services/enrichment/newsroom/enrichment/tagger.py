"""Deterministic ticker tagging: which instruments an article's text names, and where.

Stages, in order of authority (each :class:`~newsroom.common.events.Mention` says which found it):

``explicit``
    Exchange-tagged forms — ``(NYSE: CAT)``, ``(NASDAQ:INTC)``, ``(TYO: 6857)``, ``(TSE: 6857)``,
    ``6857.T``, Reuters RICs ``<JNJ.N>`` and cashtags ``$AAPL`` — checked against the master.
``alias`` / ``name`` / ``index`` (equals: where they overlap, the longest match wins)
    ``alias``: the name written just before an explicit form ("Advantest Corp. (TYO: 6857)"), which
    names that instrument for the rest of the article (where the master does not know it already).
    ``name`` / ``index``: company names and aliases, and index names, found with one Aho-Corasick
    automaton: whole words only, and names that are short or ordinary words must match case exactly
    and must not open a sentence or sit in a run of capitalised words (a headline).
``ticker``
    Bare tickers (``NVDA``), only for an instrument the article already names by another stage; a
    ticker that is a word or a letter (CAT, ALL, IT, ON, A) only close to such a mention.

The stages' parts live in modules of their own: :mod:`~newsroom.enrichment.forms` (normalised text and
explicit forms), :mod:`~newsroom.enrichment.names` (names in prose), :mod:`~newsroom.enrichment.targets`
(instruments and candidate mentions), :mod:`~newsroom.enrichment.resolution` (overlaps),
:mod:`~newsroom.enrichment.tickers` (the ticker stage) and :mod:`~newsroom.enrichment.relevance` (an
article's tickers).

deploy/native.py compiles this module and forms, names, resolution, tickers and relevance with mypyc,
each on its own; targets stays plain Python, as compiling it was measured to make tagging no faster.
Measured in CPU time on bench_tagger's articles and the FinEntity dev split, interleaved in one process:
plain Python takes ~1.2x the time of the builds; leaving tickers out of them costs ~15%, relevance or
resolution ~5-8% each, forms and names together ~5%, this module ~3%. The builds tag exactly as the
sources do (tests/enrichment/test_native.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Any

import ahocorasick
from pydantic import BaseModel

from newsroom.common.events import Mention, SecurityListed, TaggedTicker
from newsroom.common.text import MappedText
from newsroom.enrichment import relevance
from newsroom.enrichment.forms import (
    ASCII_KEYS,
    EXCHANGE_WORDS,
    EXCHANGE_WRITTEN,
    FORM,
    NORMALISE,
    NOT_IN_TICKERS,
    RIC_EXCHANGE,
    SHORT_FORMS,
    SYMBOL_IN_LIST,
    lower,
    normalise,
    skeleton_of,
)
from newsroom.enrichment.master import SecurityMaster, build_master, common_words, is_prominent
from newsroom.enrichment.names import caps_match, name_before, name_forms, ordinary, reads_as_name
from newsroom.enrichment.resolution import add_tickers, resolve
from newsroom.enrichment.targets import CONFIDENCE, UNLISTED_CONFIDENCE, Alias, Hit, Names, Target, remember
from newsroom.enrichment.tickers import bare_tickers, find_words

__all__ = ["TAGGER_VERSION", "Tagger", "default_tagger", "normalise"]

TAGGER_VERSION = "tagger-2026.11.1"
_REMEMBERED = 65536  # a tagger's memos forget all at once beyond this (their keys come from texts)


# Mentions are built as ``Mention.model_construct`` would, without its per-field bookkeeping (building
# mentions was the tagger's costliest step): a new instance, its ``__dict__`` (every field, in field
# order, already valid) and its three slots; a test checks the result equals a validated mention.
# Every field is set. Shared by every mention: a frozen model never adds to it, and model_copy copies it
# before adding (a set, not a frozenset, which copy() returns as is and which has no update()).
_MENTION_FIELDS = set(Mention.model_fields)
_new_object = object.__new__
# The setters of the attributes every model instance holds (``__dict__`` and three slots), straight
# from their descriptors: cheaper than ``object.__setattr__``, which looks each one up by name.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class Tagger:
    """Finds the instruments a text names; built once from a security master, then shared."""

    def __init__(self, master: SecurityMaster) -> None:
        self.master = master
        words = common_words()
        ticker_count = Counter(Target.ticker_of(security) for security in master)
        self._targets = {
            security.instrument_id: Target.of(
                security, words, shared=ticker_count[Target.ticker_of(security)] > 1
            )
            for security in master
        }
        # What explicit forms named: (exchange, symbol) -> (target, its fields); see _lookup_or_unlisted.
        self._explicit_targets: dict[tuple[str, str], tuple[Target, dict[str, Any]]] = {}
        # The forms of a name before an explicit form to seek: (name, instrument id) -> forms.
        self._alias_forms: dict[tuple[str, str], tuple[str, ...]] = {}
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, Alias] = {}
        for security in master:
            stage = "index" if security.kind == "index" else "name"
            for alias in security.aliases:
                surface = normalise(alias).strip()
                key = " " + lower(surface)
                if len(surface) < 2 or key in entries:
                    continue
                single = " " not in surface
                is_word = ordinary(surface, words)
                strict = single and (len(surface) <= 4 or is_word or surface.isupper())
                common = is_word and stage == "name"
                opening = not single or is_prominent(security)
                entries[key] = Alias(
                    len(surface),
                    surface,
                    strict,
                    common,
                    opening,
                    self._targets[security.instrument_id],
                    stage,
                    self._targets[security.instrument_id].fields(stage, CONFIDENCE[stage]),
                )
        for key, entry in entries.items():
            self._automaton.add_word(key, entry)
        # An automaton without words cannot be made, and searching an unmade one raises: a master
        # without names (empty, or only one-letter aliases) tags by explicit forms and tickers only.
        self._searchable = bool(entries)
        if entries:
            self._automaton.make_automaton()
        self.alias_count = len(entries)

    @classmethod
    def from_master(cls, master: SecurityMaster | Iterable[SecurityListed]) -> Tagger:
        """A tagger for ``master`` (a :class:`SecurityMaster` or any iterable of listings)."""
        if not isinstance(master, SecurityMaster):
            master = SecurityMaster.from_securities(master)
        return cls(master)

    @property
    def automaton(self) -> ahocorasick.Automaton:
        """The name automaton; keys are lower-cased normalised aliases with a leading space."""
        return self._automaton

    # ------------------------------------------------------------------------------------------ stages
    # Each stage appends its hits to ``hits`` (see Hit).

    def _explicit(self, text: str, skeleton: bytes, hits: list[Hit]) -> Names:
        """Stage 1: exchange-tagged forms; returns the names written just before them."""
        names: Names = {}
        explicit_targets = self._explicit_targets
        i = text.find("(")
        while i >= 0:
            m = FORM.match(text, i)
            if m is None:
                i = text.find("(", i + 1)
                continue
            form_start, form_end = m.span()
            i = text.find("(", form_end)
            written, syms, first, more = m.groups()
            exchange = EXCHANGE_WRITTEN.get(written) or EXCHANGE_WORDS.get(
                written.upper().replace(" ", ""), "NYSE"
            )
            if not more:  # the usual form: one symbol
                if first in EXCHANGE_WORDS:
                    continue
                known = explicit_targets.get((exchange, first))
                if known is None:
                    known = self._lookup_or_unlisted(exchange, first)
                start = m.start(3)
                target = known[0]
                hits.append((start, start + len(first), target, "explicit", known[1]))
                name = name_before(text, form_start)
                if name:  # as remember does
                    key = (name, target.instrument_id)
                    if key not in names or names[key][0] > form_end:
                        names[key] = (form_end, target)
                continue
            offset = m.start(2)
            symbols = [
                (offset + sm.start(), offset + sm.end(), sm.group()) for sm in SYMBOL_IN_LIST.finditer(syms)
            ]
            found = 0
            for start, end, symbol in symbols:
                if symbol in EXCHANGE_WORDS:
                    continue
                known = explicit_targets.get((exchange, symbol))
                if known is None:
                    known = self._lookup_or_unlisted(exchange, symbol)
                hits.append((start, end, known[0], "explicit", known[1]))
                found += 1
            if found == 1:
                remember(names, name_before(text, form_start), form_end, hits[-1][2])
        for form in SHORT_FORMS:
            if form.hint not in skeleton:
                continue
            for m in form.find(text, skeleton):
                ric = m.groupdict().get("ric")
                listed = self.master.get(RIC_EXCHANGE[ric] if ric else form.exchange, m.group("sym"))
                if listed is not None:
                    target = self._targets[listed.instrument_id]
                    start, end = m.span("sym")
                    hits.append((start, end, target, "explicit", target.fields("explicit", 1.0)))
                    remember(names, name_before(text, m.start()), m.end(), target)
        return names

    def _lookup_or_unlisted(self, exchange: str, symbol: str) -> tuple[Target, dict[str, Any]]:
        """The master's listing, or (for an exchange-tagged symbol it lacks) a bare, sourceless one.

        With the fields of an explicit form's mention of it; remembered per (exchange, symbol).
        """
        key = (exchange, symbol)
        known = self._explicit_targets.get(key)
        if known is not None:
            return known
        listed = self.master.get(exchange, symbol)
        if listed is not None:
            target = self._targets[listed.instrument_id]
        else:
            symbol = symbol.upper().replace(".", "-").replace("/", "-")
            unlisted = SecurityListed(
                instrument_id=f"{exchange}:{symbol}",
                symbol=symbol,
                exchange=exchange,
                name=symbol,
                source="",
                as_of="",
            )
            target = Target.of(unlisted, common_words())
        known = (target, target.fields("explicit", 1.0 if target.security.source else UNLISTED_CONFIDENCE))
        if len(self._explicit_targets) >= _REMEMBERED:
            self._explicit_targets.clear()
        self._explicit_targets[key] = known
        return known

    def _aliases(self, text: str, names: Names, hits: list[Hit]) -> None:
        """Stage 2a: later uses of a name that an explicit form tied to an instrument.

        A form of the name that the automaton knows, spelt alike, for the same instrument is left to
        the name stage, which finds it anyway.
        """
        n = len(text)
        for named, (after, target) in names.items():
            forms = self._alias_forms.get(named)
            if forms is None:
                forms = self._forms_to_find(named[0], target)
            for form in forms:
                length = len(form)
                fields = target.fields("alias", CONFIDENCE["alias"])
                hits.extend(
                    (start, start + length, target, "alias", fields)
                    for start in find_words(text, form, after, n)
                )

    def _forms_to_find(self, name: str, target: Target) -> tuple[str, ...]:
        """The forms of ``name`` that the alias stage seeks for ``target`` (remembered per pair)."""
        forms = []
        for form, key, surface in name_forms(name):
            known = self._automaton.get(key, None)
            if known is not None and known.target is target and known.surface == surface:
                continue
            forms.append(form)
        if len(self._alias_forms) >= _REMEMBERED:
            self._alias_forms.clear()
        found = self._alias_forms[name, target.instrument_id] = tuple(forms)
        return found

    def _names(self, text: str, padded: str, hits: list[Hit]) -> None:
        """Stage 2 and 4: names, aliases and index names through the automaton.

        ``padded`` is the text as the automaton reads it: a space, then ``lower(normalise(text))``.
        """
        if not self._searchable:
            return
        n = len(text)
        append = hits.append
        for found in self._automaton.iter(padded):
            end: int = found[0]  # typed, so that the mypyc build works on them natively
            entry: Alias = found[1]
            if end < n and padded[end + 1].isalnum():
                continue
            length, surface, strict, common, opening, target, stage, fields = entry
            start = end - length
            span = text[start:end]
            if span != surface:
                span = span.translate(NORMALISE)
                if span != surface and (strict or not caps_match(span, surface)):
                    continue
            if common and not reads_as_name(text, start, end, opening=opening):
                continue
            append((start, end, target, stage, fields))

    # ------------------------------------------------------------------------------------------ public

    def tag(self, text: str | MappedText, html: str = "") -> list[Mention]:
        """Every mention of a known instrument in ``text``, in text order, without overlaps.

        The more authoritative stage wins an overlap, then the longer hit, then the earlier. Given
        the text of an HTML body as mapped by ``html_text(html)``, and that ``html``, each mention
        also records where it sits in the HTML (``html_start`` and ``html_end``).
        """
        mapped = None
        if isinstance(text, MappedText):
            mapped, text = text, text.text
        hits: list[Hit] = []
        if text.isascii():  # the common case: both of the text's derived forms from its bytes
            raw = text.encode("ascii")
            skeleton = raw.translate(None, NOT_IN_TICKERS)
            padded = " " + raw.translate(ASCII_KEYS).decode("ascii")
        else:
            skeleton = skeleton_of(text)
            padded = " " + lower(normalise(text))
        names = self._explicit(text, skeleton, hits)
        explicit = hits.copy()
        if names:
            self._aliases(text, names, hits)
        self._names(text, padded, hits)
        chosen = resolve(hits)
        tickers = bare_tickers(text, skeleton, chosen, explicit)
        if tickers:
            chosen = add_tickers(chosen, tickers)
        # Mentions, not validated (see _MENTION_FIELDS): this runs for every mention of every article.
        mentions: list[Mention] = []
        append = mentions.append
        new, set_dict, set_fields_set, set_extra, set_private = (
            _new_object,
            _set_dict,
            _set_fields_set,
            _set_extra,
            _set_private,
        )
        fields_set = _MENTION_FIELDS
        for start, end, _, _, fields in chosen:
            values = fields.copy()
            values["start"] = start
            values["end"] = end
            if mapped is not None:
                span = mapped.html_span(start, end, html)
                if span is not None:
                    values["html_start"], values["html_end"] = span
            mention = new(Mention)
            set_dict(mention, values)
            set_fields_set(mention, fields_set)
            set_extra(mention, None)
            set_private(mention, None)
            append(mention)
        return mentions

    def summarize(
        self, mentions: Iterable[Mention], text: str, headline: str | None = None
    ) -> tuple[TaggedTicker, ...]:
        """The article's instruments, most relevant first: see :func:`.relevance.summarize`."""
        return relevance.summarize(mentions, text, self.tag(headline) if headline else ())


@cache
def default_tagger() -> Tagger:
    """The tagger over the bundled reference data (built once per process)."""
    return Tagger.from_master(build_master())
