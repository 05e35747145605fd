"""A shadow's series in the router's exposition, and the shadow phase's window that
``LocalMetricsSource`` reads from them."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import pytest

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


def traffic(book: MetricsBook, version: str, requests: int, latency: float, bin_: int) -> None:
    for _ in range(requests):
        book.invocation("svc", version, 200, latency, [bin_])


def shadowed_book() -> MetricsBook:
    """Production answered 100 requests; 40 were copied to the shadow, which is slower and
    disagreed on 4 of them; 5 more found its queue full."""
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline", SHADOW: "shadow"}, {PROD: 1.0}, {})
    book.snapshot(now=100.0)
    traffic(book, PROD, 100, 20.0, 2)
    traffic(book, SHADOW, 40, 200.0, 3)
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
    assert (("role", "shadow"), ("service", "svc"), ("version", SHADOW)) in values(text, expo.VARIANT_INFO)
    assert "# TYPE modelrail_shadow_comparisons_total counter" in text


def test_a_book_without_shadows_writes_no_shadow_series() -> None:
    book = MetricsBook()
    book.set_service("svc", {PROD: "baseline"}, {PROD: 1.0}, {})
    traffic(book, PROD, 3, 20.0, 2)
    assert "modelrail_shadow" not in book.exposition()


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
    traffic(book, SHADOW, 10, 200.0, 3)
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
