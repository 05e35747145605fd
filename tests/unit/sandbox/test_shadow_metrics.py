"""A shadow's series in the router's exposition, and the shadow phase's window that
``LocalMetricsSource`` reads from them; and a candidate that was the shadow, then is the canary,
judged as the canary on its canary requests alone."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import pytest

from infra.naming import SHADOW_VARIANT_NAME
from pipelines.metrics import exposition as expo
from pipelines.metrics.local import LocalMetricsSource
from pipelines.metrics.stats import Agreement
from pipelines.sandbox.metrics import MetricsBook

PROMTOOL = shutil.which("promtool")
PROD, SHADOW = "a" * 64, "b" * 64


@dataclass
class BookSandbox:
    """Serves a MetricsBook's readings as the daemon's ``/metrics?at=`` does."""

    book: MetricsBook

    def metrics_text(self, at: float | None = None) -> str:
        return self.book.exposition(at)


def traffic(
    book: MetricsBook, version: str, requests: int, latency: float, bin_: int, *, shadow: bool = False
) -> None:
    """``requests`` answers of ``version``: routed to it, or (``shadow``) its answers to mirrored copies."""
    for _ in range(requests):
        book.invocation("svc", version, 200, latency, [bin_], shadow=shadow)


def shadowed_book() -> MetricsBook:
    """Production answered 100 requests; 40 were copied to the shadow, which is slower and
    disagreed on 4 of them; 5 more found its queue full."""
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline", SHADOW: "shadow"}, {PROD: 1.0}, {})
    book.snapshot(now=100.0)
    traffic(book, PROD, 100, 20.0, 2)
    traffic(book, SHADOW, 40, 200.0, 3, shadow=True)
    book.comparison("svc", SHADOW, paired=36, agreed=36)
    book.comparison("svc", SHADOW, paired=4, agreed=0)
    for _ in range(5):
        book.mirror_dropped("svc", SHADOW)
    book.snapshot(now=160.0)
    return book


def values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in expo.parse(text) if s.name == name}


def test_the_shadow_is_exposed_with_its_role_comparisons_and_dropped_copies() -> None:
    text = shadowed_book().exposition()

    assert values(text, expo.SHADOW_COMPARISONS) == {
        (("result", "agreed"), ("service", "svc"), ("version", SHADOW)): 36,
        (("result", "disagreed"), ("service", "svc"), ("version", SHADOW)): 4,
    }, "production has no comparisons of its own"
    assert values(text, expo.SHADOW_MIRRORS_DROPPED) == {(("service", "svc"), ("version", SHADOW)): 5}
    assert values(text, expo.INVOCATIONS) == {
        (("service", "svc"), ("version", PROD)): 100,
        (("service", "svc"), ("version", SHADOW)): 0,
        (("service", "svc"), ("variant", "shadow"), ("version", SHADOW)): 40,
    }, "the copies are the shadow variant's, not requests routed to its version"
    shadow_count = (("service", "svc"), ("variant", "shadow"), ("version", SHADOW))
    assert values(text, f"{expo.LATENCY}_count")[shadow_count] == 40
    assert values(text, f"{expo.LATENCY}_sum")[shadow_count] == pytest.approx(8.0)
    assert (("role", "shadow"), ("service", "svc"), ("version", SHADOW)) in values(text, expo.VARIANT_INFO)
    assert "# TYPE modelrail_shadow_comparisons_total counter" in text


def test_a_book_without_shadows_writes_no_shadow_series() -> None:
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline"}, {PROD: 1.0}, {})
    traffic(book, PROD, 3, 20.0, 2)
    text = book.exposition()
    assert "modelrail_shadow" not in text and "variant=" not in text


def test_the_shadow_variants_label_is_sagemakers_name_for_it() -> None:
    assert expo.SHADOW_VARIANT == SHADOW_VARIANT_NAME


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_finds_the_shadow_series_clean() -> None:
    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=shadowed_book().exposition(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_a_shadow_window_judges_the_shadow_against_production_on_the_copies() -> None:
    window = LocalMetricsSource(BookSandbox(shadowed_book())).window(
        "svc", 100.0, 160.0, rollout_start=100.0, shadow=True
    )

    assert window.baseline.version == PROD and window.baseline.invocations == 100
    assert window.canary is not None and window.canary.version == SHADOW
    assert window.canary.invocations == 40 and window.canary.prediction_histogram[3] == 40
    assert window.canary.latency_p99_ms == pytest.approx(200.0, rel=0.15)
    assert window.agreement == Agreement(paired=40, agreed=36)


def test_without_shadow_the_shadows_traffic_is_nobodys() -> None:
    window = LocalMetricsSource(BookSandbox(shadowed_book())).window("svc", 100.0, 160.0)
    assert window.baseline.version == PROD and window.baseline.invocations == 100
    assert (window.canary, window.agreement) == (None, None)


def test_a_shadow_window_counts_only_what_happened_inside_it() -> None:
    book = shadowed_book()
    traffic(book, SHADOW, 10, 200.0, 3, shadow=True)
    book.comparison("svc", SHADOW, paired=10, agreed=9)
    book.snapshot(now=200.0)

    window = LocalMetricsSource(BookSandbox(book)).window(
        "svc", 160.0, 200.0, rollout_start=100.0, shadow=True
    )

    assert window.canary is not None and window.canary.invocations == 10
    assert window.agreement == Agreement(paired=10, agreed=9)


def test_a_shadow_gone_by_the_windows_end_is_still_the_windows_canary() -> None:
    book = shadowed_book()
    book.set_service("svc", {PROD: "baseline"}, {PROD: 1.0}, {})  # the shadow was removed
    book.snapshot(now=200.0)

    window = LocalMetricsSource(BookSandbox(book)).window(
        "svc", 100.0, 200.0, rollout_start=100.0, shadow=True
    )

    assert window.canary is not None and window.canary.version == SHADOW
    assert window.agreement == Agreement(paired=40, agreed=36)


def test_a_shadow_window_without_a_shadow_has_no_canary_and_no_agreement() -> None:
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline", SHADOW: "canary"}, {PROD: 0.9, SHADOW: 0.1}, {})
    traffic(book, SHADOW, 10, 20.0, 2)
    book.snapshot(now=10.0)

    window = LocalMetricsSource(BookSandbox(book)).window("svc", 0.0, 10.0, rollout_start=0.0, shadow=True)

    assert window.baseline.version == PROD
    assert (window.canary, window.agreement) == (None, None), "a canary is not a shadow"


# ---- a candidate that was the shadow, then is the canary ----

CANDIDATE = SHADOW


def shadow_then_canary() -> MetricsBook:
    """The reviewer's reproduction of a ``[shadow, canary, full]`` progression: the candidate answered
    30 mirrored copies at 900 ms as the shadow; then the update made it the canary (the shadow gone),
    and it was routed 5 requests at 20 ms. The last snapshot before the canary window's start was
    taken while it was still the shadow, before any of its answers."""
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline", CANDIDATE: "shadow"}, {PROD: 1.0}, {})
    book.snapshot(now=100.0)
    traffic(book, PROD, 30, 20.0, 2)
    traffic(book, CANDIDATE, 30, 900.0, 7, shadow=True)
    book.comparison("svc", CANDIDATE, paired=30, agreed=24)
    book.set_service("svc", {PROD: "baseline", CANDIDATE: "canary"}, {PROD: 0.9, CANDIDATE: 0.1}, {})
    traffic(book, PROD, 45, 20.0, 2)
    traffic(book, CANDIDATE, 5, 20.0, 3)
    book.snapshot(now=101.5)
    return book


def test_the_canary_window_counts_only_the_canarys_requests_not_its_copies_as_the_shadow() -> None:
    book = shadow_then_canary()

    window = LocalMetricsSource(BookSandbox(book)).window("svc", 100.9, 101.5, rollout_start=100.9)

    assert window.canary is not None and window.canary.version == CANDIDATE
    assert (window.canary.invocations, window.canary.errors_5xx) == (5, 0), (
        "not 35: the 30 copies are not its"
    )
    assert window.canary.latency_p99_ms is not None and window.canary.latency_p99_ms < 25, (
        f"p99 {window.canary.latency_p99_ms} ms: the copies' 900 ms leaked into the canary's latency"
    )
    assert window.canary.prediction_histogram == (0, 0, 0, 5, 0, 0, 0, 0, 0, 0)
    assert window.baseline.version == PROD and window.baseline.invocations == 75
    assert window.agreement is None, "a canary window has no agreement"


def test_the_shadow_window_over_the_same_readings_counts_only_the_copies() -> None:
    window = LocalMetricsSource(BookSandbox(shadow_then_canary())).window(
        "svc", 100.0, 101.5, rollout_start=100.0, shadow=True
    )

    assert window.canary is not None and window.canary.version == CANDIDATE
    assert window.canary.invocations == 30, "not 35: the canary's requests are not the shadow's"
    assert window.canary.latency_p99_ms == pytest.approx(900.0, rel=0.15)
    assert window.canary.prediction_histogram == (0, 0, 0, 0, 0, 0, 0, 30, 0, 0)
    assert window.agreement == Agreement(paired=30, agreed=24)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_finds_a_version_with_both_variants_clean() -> None:
    assert PROMTOOL is not None
    text = shadow_then_canary().exposition()
    assert 'variant="shadow"' in text
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
