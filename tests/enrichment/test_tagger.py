"""Behaviour of the ticker tagger on the seed article and on sentences written for these tests."""

from __future__ import annotations

from html import escape, unescape
from pathlib import Path

import pytest

from newsroom.common.events import Mention, SecurityListed
from newsroom.common.text import html_text
from newsroom.enrichment.tagger import TAGGER_VERSION, Tagger, default_tagger
from newsroom.enrichment.tickers import find_ticker, find_words

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "nikkei-record-article.txt"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return default_tagger()


def pairs(mentions: list[Mention]) -> set[tuple[str, str]]:
    return {(m.exchange, m.symbol) for m in mentions}


@pytest.fixture(scope="module")
def seed_text() -> str:
    if not SEED.is_file():
        pytest.skip(f"the seed article is absent ({SEED}); it sits beside the checkout in this workspace")
    return SEED.read_text(encoding="utf-8")


def test_seed_article_yields_exactly_its_instruments(tagger: Tagger, seed_text: str) -> None:
    """The seed article yields exactly INTC, AMD, NVDA, CAT, 6857, 8035, 7011, the Nikkei 225 and S&P 500."""
    assert pairs(tagger.tag(seed_text)) == {
        ("NASDAQ", "INTC"),
        ("NASDAQ", "AMD"),
        ("NASDAQ", "NVDA"),
        ("NYSE", "CAT"),
        ("TYO", "6857"),
        ("TYO", "8035"),
        ("TYO", "7011"),
        ("INDEX", "N225"),
        ("INDEX", "SPX"),
    }


def test_seed_names_without_ticker_are_found(tagger: Tagger) -> None:
    """Mitsubishi Heavy Industries and Tokyo Electron are found where the text names them without a ticker."""
    text = "Orders at Mitsubishi Heavy Industries rose, and Tokyo Electron shares climbed 4%."
    found = {(m.symbol, text[m.start : m.end]) for m in tagger.tag(text)}
    assert found == {("7011", "Mitsubishi Heavy Industries"), ("8035", "Tokyo Electron")}


@pytest.mark.parametrize(
    "sentence",
    [
        "The cat sat on the mat and ate all of it.",
        "All of it was sold on Monday.",
        "IT spending rose 4% on Monday, a sign that now is the time to buy.",
        "On Monday a cat walked ON the stage; it was all a show, NOW or never.",
        "A rally lifted all boats, and it was on track.",
        "Earnings Preview: Know the Trend Ahead of Next Week",  # "Trend" (Trend Micro) in a headline
    ],
)
def test_trap_sentences_yield_nothing(tagger: Tagger, sentence: str) -> None:
    """Ordinary words that are also tickers (a cat, all of it, IT spending, on Monday) produce no tickers."""
    assert tagger.tag(sentence) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Caterpillar Inc. (NYSE: CAT) rose.", ("NYSE", "CAT")),
        ("Intel Corp. (NASDAQ:INTC) fell.", ("NASDAQ", "INTC")),
        ("Advanced Micro Devices (Nasdaq: AMD) fell.", ("NASDAQ", "AMD")),
        ("Advantest (TYO: 6857) rose.", ("TYO", "6857")),
        ("Advantest (TSE: 6857) rose.", ("TYO", "6857")),
        ("Shares of 6857.T rose.", ("TYO", "6857")),
        ("Johnson & Johnson <JNJ.N> rose.", ("NYSE", "JNJ")),
        ("Traders bought $AAPL today.", ("NASDAQ", "AAPL")),
        ("Berkshire (NYSE: BRK.B) rose.", ("NYSE", "BRK-B")),
    ],
)
def test_explicit_forms_are_found(tagger: Tagger, text: str, expected: tuple[str, str]) -> None:
    """Each explicit form is found, checked against the master and reported on the site's exchange."""
    explicit = [m for m in tagger.tag(text) if m.stage == "explicit"]
    assert [(m.exchange, m.symbol) for m in explicit] == [expected]
    assert explicit[0].confidence == 1.0


def test_unlisted_explicit_symbol_is_kept_with_low_confidence(tagger: Tagger) -> None:
    """An exchange-tagged symbol missing from the master is still reported, with lower confidence."""
    [mention] = tagger.tag("iShares MSCI China ETF (NASDAQ: MCHI) fell.")
    assert (mention.exchange, mention.symbol, mention.stage) == ("NASDAQ", "MCHI", "explicit")
    assert mention.confidence < 1.0


def test_unknown_cashtag_is_ignored(tagger: Tagger) -> None:
    """A cashtag that names no listed symbol is not a mention."""
    assert tagger.tag("It cost $ZZZZZ to make.") == []


def test_name_before_explicit_form_names_it_later(tagger: Tagger) -> None:
    """The name written before an explicit form tags later mentions of that name in the article."""
    text = "Zorblax Widgets Inc. (NYSE: CAT) said sales rose. Later, Zorblax Widgets cut prices."
    mentions = tagger.tag(text)
    later = [m for m in mentions if m.stage == "alias"]
    assert [(m.symbol, text[m.start : m.end]) for m in later] == [("CAT", "Zorblax Widgets")]


def test_bare_ticker_needs_corroboration(tagger: Tagger) -> None:
    """A bare ticker is tagged only when the article also names the company."""
    assert tagger.tag("NVDA rose 3% in early trade.") == []
    text = "Nvidia reported record sales; NVDA rose 3%."
    assert [(m.symbol, m.stage) for m in tagger.tag(text)] == [("NVDA", "name"), ("NVDA", "ticker")]


def test_word_like_ticker_needs_a_nearby_name(tagger: Tagger) -> None:
    """A ticker that is a word (CAT) is tagged only close to the company's name."""
    text = "Caterpillar Inc. (NYSE: CAT) beat estimates. CAT shares rose."
    assert [m.stage for m in tagger.tag(text)] == ["name", "explicit", "ticker"]
    far = "Caterpillar beat estimates. " + "Markets were calm. " * 30 + "A CAT scan followed."
    assert [m.symbol for m in tagger.tag(far)] == ["CAT"]


def test_longest_name_wins(tagger: Tagger) -> None:
    """Where names overlap, the longest match is the mention."""
    text = "S&P Global raised its forecast while the S&P 500 fell."
    found = [(m.symbol, text[m.start : m.end]) for m in tagger.tag(text)]
    assert found == [("SPGI", "S&P Global"), ("SPX", "S&P 500")]


def test_common_word_names_need_name_context(tagger: Tagger) -> None:
    """A name that is an ordinary word is not tagged in lower case nor inside a capitalised headline run."""
    assert tagger.tag("Analysts raised their price target and the block trade cleared.") == []
    assert tagger.tag("Wall Street Sets Record Target For Tech") == []
    assert [m.symbol for m in tagger.tag("Retailers including Target and Walmart rose.")] == ["TGT", "WMT"]


def test_index_mentions_are_index_tags(tagger: Tagger) -> None:
    """Index names are tagged as indices on the INDEX exchange."""
    text = "The Nikkei 225 rose while the Dow and the Nasdaq Composite fell; the Russell 2000 was flat."
    mentions = tagger.tag(text)
    assert {(m.exchange, m.symbol) for m in mentions} == {
        ("INDEX", "N225"),
        ("INDEX", "DJI"),
        ("INDEX", "IXIC"),
        ("INDEX", "RUT"),
    }
    assert all(m.kind == "index" for m in mentions)
    assert all(m.stage == "index" for m in mentions)


def test_mentions_carry_span_stage_and_mic(tagger: Tagger) -> None:
    """Each mention has its character span, stage, MIC, name and confidence."""
    text = "Shares of Tokyo Electron rose."
    [mention] = tagger.tag(text)
    assert text[mention.start : mention.end] == "Tokyo Electron"
    assert (mention.exchange, mention.mic, mention.stage) == ("TYO", "XTKS", "name")
    assert mention.name
    assert 0 < mention.confidence <= 1


def test_summary_ranks_headline_and_lead_first(tagger: Tagger) -> None:
    """Relevance favours the instrument in the headline and lead over one mentioned once at the end."""
    text = "Intel Corp. (NASDAQ: INTC) rallied. " + "Chip demand grew. " * 40 + "Caterpillar was flat."
    tickers = tagger.summarize(tagger.tag(text), text, headline="Intel surges on AI demand")
    assert [t.symbol for t in tickers] == ["INTC", "CAT"]
    assert tickers[0].relevance == 1.0
    assert tickers[1].relevance < 0.5
    assert tickers[0].mentions == 2


def test_tagger_builds_from_listing_events() -> None:
    """A tagger built from SecurityListed events tags by their aliases only."""
    listing = SecurityListed(
        instrument_id="NYSE:ZZW",
        symbol="ZZW",
        exchange="NYSE",
        mic="XNYS",
        name="Zorblax Widgets Inc.",
        aliases=("Zorblax Widgets",),
        source="test",
        as_of="2026-01-01",
    )
    tagger = Tagger.from_master([listing])
    text = "Zorblax Widgets rose; ZZW gained."
    assert [(m.symbol, m.stage) for m in tagger.tag(text)] == [("ZZW", "name"), ("ZZW", "ticker")]
    assert TAGGER_VERSION


def test_longer_name_beats_a_name_tied_by_an_explicit_form(tagger: Tagger) -> None:
    """A name tied to an instrument by an explicit form does not claim a longer name of another company."""
    text = "Apple Inc. (NASDAQ: AAPL) rose. Apple Hospitality REIT fell."
    found = [(m.symbol, text[m.start : m.end]) for m in tagger.tag(text)]
    assert found == [("AAPL", "Apple"), ("AAPL", "AAPL"), ("APLE", "Apple Hospitality REIT")]


def test_mentions_at_the_very_end_of_the_text_are_found(tagger: Tagger) -> None:
    """A ticker or a tied name that ends the text is found like one followed by punctuation."""
    text = "Nvidia reported record sales; shares of NVDA"
    assert [(m.symbol, m.stage) for m in tagger.tag(text)] == [("NVDA", "name"), ("NVDA", "ticker")]
    text = "Zorblax Widgets Inc. (NYSE: CAT) said sales rose. Later, Zorblax Widgets"
    assert [(m.symbol, m.stage) for m in tagger.tag(text)][-1] == ("CAT", "alias")


def test_mentions_are_the_same_as_validated_ones(tagger: Tagger, seed_text: str) -> None:
    """Each mention equals, hashes and serialises like a Mention validated from the same fields."""
    for mention in tagger.tag(seed_text):
        validated = Mention.model_validate(mention.model_dump())
        assert mention == validated
        assert hash(mention) == hash(validated)
        assert mention.model_fields_set == validated.model_fields_set
        assert mention.model_dump_json() == validated.model_dump_json()


@pytest.mark.parametrize("ticker", ["A", "CAT", "AAPL", "BRK-B", "BF.B", "ON"])
def test_regex_ticker_search_finds_what_the_word_search_finds(ticker: str) -> None:
    """The ticker stage's regex search accepts exactly the places the plain whole-word search accepts."""
    contexts = ["", " ", "(", ")", ".", ",", "-", "$", "'", "’", "_", "&", "x", "9", "é", ".B", "-B", ". "]
    contexts.append("'s")
    text = " ".join(f"{before}{ticker}{after}" for before in contexts for after in contexts)
    text = f"{ticker} {text} {ticker}{ticker}A {ticker}"
    n = len(text)
    assert find_ticker(text, ticker, 0, n) == find_words(text, ticker, 0, n, ticker=True)
    for lo, hi in [(0, 50), (7, 301), (n // 3, n // 2), (n - 40, n)]:
        assert find_ticker(text, ticker, lo, hi) == find_words(text, ticker, lo, hi, ticker=True)


def test_a_ticker_two_named_instruments_share_goes_to_the_one_whose_name_is_taken_last() -> None:
    """Where two named instruments share a ticker, the bare ticker goes to the instrument of the hit
    taken last in overlap order (here the shorter name), wherever the ticker stands."""

    def listing(exchange: str, name: str) -> SecurityListed:
        return SecurityListed(
            instrument_id=f"{exchange}:XYZW",
            symbol="XYZW",
            exchange=exchange,
            name=name,
            aliases=(name,),
            source="test",
            as_of="2026-01-01",
        )

    tagger = Tagger.from_master([listing("NYSE", "Xylo Widgets"), listing("NASDAQ", "Xyzzy")])
    text = "Xylo Widgets said XYZW rose; Xyzzy rose too."
    assert [(m.exchange, m.stage) for m in tagger.tag(text)] == [
        ("NYSE", "name"),
        ("NASDAQ", "ticker"),
        ("NASDAQ", "name"),
    ]


def test_mentions_record_where_they_sit_in_the_html(tagger: Tagger, seed_text: str) -> None:
    """Tagged with its HTML, each mention records the HTML range holding its words; without, nothing."""
    paras = [p for p in seed_text.split("\n\n") if p.strip()]
    html = "".join(
        f"<p><b>{escape(p)}</b></p>" if i % 2 else f"<p>{escape(p)}</p>" for i, p in enumerate(paras)
    )
    mapped = html_text(html)
    mentions = tagger.tag(mapped, html)
    assert len(mentions) > 9
    for m in mentions:
        assert m.html_start is not None
        assert m.html_end is not None
        assert unescape(html[m.html_start : m.html_end]) == mapped.text[m.start : m.end]
    assert all(m.html_start is None for m in tagger.tag(mapped.text))


def test_a_tagged_mention_can_be_copied_with_changes(tagger: Tagger) -> None:
    """model_copy works on the tagger's mentions (built without validation) and leaves the original alone."""
    mention = tagger.tag("Intel Corp. (NASDAQ: INTC) fell.")[-1]
    moved = mention.model_copy(update={"html_start": 3, "html_end": 7})
    assert (moved.html_start, moved.html_end, moved.symbol) == (3, 7, "INTC")
    assert mention.html_start is None
