"""Identities: look-alikes of a name are that name, and a look-alike is never recorded as a new one."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from pipelines import identity
from pipelines.cli import main
from pipelines.errors import BadInputError, ExitCode, RefusedError
from pipelines.identity import checked_identity, current_actor, identity_key, same_identity
from tests.unit.promotion.fakes import V2, World, make_world

RITA = "rita@modelrail.dev"

LOOK_ALIKES = {
    "zero-width space at the end": RITA + "\u200b",
    "zero-width joiner inside": "ri\u200dta@modelrail.dev",
    "byte-order mark in front": "\ufeff" + RITA,
    "soft hyphen": "ri\u00adta@modelrail.dev",
    "right-to-left override": "\u202e" + RITA,
    "full-width r": "ｒita@modelrail.dev",
    "full-width throughout": "ｒｉｔａ＠ｍｏｄｅｌｒａｉｌ．ｄｅｖ",
    "mathematical bold letters": "𝐫𝐢𝐭𝐚@modelrail.dev",
    "mathematical script capital": "𝓡ita@modelrail.dev",
    "combining dot above on the i": "ri\u0307ta@modelrail.dev",
    "capital I with dot above": "rİta@modelrail.dev",
    "variation selector": "rita\ufe0f@modelrail.dev",
    "combining grapheme joiner": "ri\u034fta@modelrail.dev",
    "Hangul filler": "r\u3164ita@modelrail.dev",
    "no-break space at the end": RITA + "\u00a0",
    "ideographic space inside": "rita\u3000@modelrail.dev",
    "capital first letter": "Rita@modelrail.dev",
    "all capitals": "RITA@MODELRAIL.DEV",
    "surrounding space": f"  {RITA}\t",
    "control character": RITA + "\x1b",
}


@pytest.mark.parametrize("look_alike", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_a_look_alike_of_a_name_is_the_same_identity(look_alike: str) -> None:
    assert identity_key(look_alike) == RITA
    assert same_identity(look_alike, RITA)
    assert same_identity(RITA, look_alike)


@pytest.mark.parametrize(
    "other",
    [
        "rito@modelrail.dev",
        "rïta@modelrail.dev",  # the diaeresis shows
        "rita@modelrail.de",
        "rita.m@modelrail.dev",
        "rіta@modelrail.dev",  # Cyrillic і: not folded here, refused when recorded (below)
    ],
)
def test_a_different_name_is_a_different_identity(other: str) -> None:
    assert not same_identity(other, RITA)


def test_canonically_equivalent_spellings_are_one_identity() -> None:
    assert same_identity("Jos\u00e9@example.com", "Jose\u0301@example.com")
    assert not same_identity("José@example.com", "jose@example.com"), "a precomposed accent shows"


def test_marks_that_write_other_scripts_are_kept() -> None:
    assert not same_identity("やまだ@example.jp", "やまた@example.jp"), "the dakuten is a different kana"
    assert same_identity("やまだ@example.jp", "やまた\u3099@example.jp"), "combining dakuten is the same kana"
    assert not same_identity("किरण@example.in", "करण@example.in"), "a vowel sign is a different name"


CONTROL_CHARACTERS = {"\x00": "U+0000", "\x1b": "U+001B", "\x7f": "U+007F", "\x85": "U+0085", "\n": "U+000A"}


@pytest.mark.parametrize(
    ("source", "character", "named"),
    [("--as", character, named) for character, named in CONTROL_CHARACTERS.items()]
    + [
        (identity.USER_ENV, character, named)
        for character, named in CONTROL_CHARACTERS.items()
        if character != "\x00"  # an environment variable cannot hold a NUL
    ],
)
def test_a_control_character_is_refused_naming_the_source_and_the_code_point(
    source: str, character: str, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"rita{character}@modelrail.dev"
    monkeypatch.setenv(identity.USER_ENV, name if source == identity.USER_ENV else "alice@example.com")
    with pytest.raises(BadInputError) as refused:
        current_actor(name if source == "--as" else None)
    assert refused.value.message.startswith(f"{source} = {name!r}: character 5, {named} ")
    assert "is a control character" in refused.value.message
    assert refused.value.exit_code is ExitCode.BAD_INPUT


@pytest.mark.parametrize(
    ("look_alike", "named", "why"),
    [
        (RITA + "\u200b", "U+200B ZERO WIDTH SPACE", "an invisible format character"),
        ("\u202e" + RITA, "U+202E RIGHT-TO-LEFT OVERRIDE", "an invisible format character"),
        ("ri\u00adta@modelrail.dev", "U+00AD SOFT HYPHEN", "an invisible format character"),
        ("r\u3164ita@modelrail.dev", "U+3164 HANGUL FILLER", "a character that shows nothing"),
        ("rita\ufe0f@modelrail.dev", "U+FE0F VARIATION SELECTOR-16", "a character that shows nothing"),
        ("rita\u3000@modelrail.dev", "U+3000 IDEOGRAPHIC SPACE", "a space other than U+0020"),
        ("rita\u2009@modelrail.dev", "U+2009 THIN SPACE", "a space other than U+0020"),
        ("rita\u1680@modelrail.dev", "U+1680 OGHAM SPACE MARK", "a space other than U+0020"),
        ("ｒita@modelrail.dev", "U+FF52 FULLWIDTH LATIN SMALL LETTER R", "a compatibility form of 'r'"),
        ("𝐫ita@modelrail.dev", "U+1D42B MATHEMATICAL BOLD SMALL R", "a compatibility form of 'r'"),
        ("ri\u0307ta@modelrail.dev", "U+0307 COMBINING DOT ABOVE", "an accent NFC cannot compose with 'i'"),
        ("\u0301" + RITA, "U+0301 COMBINING ACUTE ACCENT", "an accent with no letter before it"),
        ("rita@modelrail.dev\U000f0000", "U+F0000", "a private-use character"),
    ],
)
def test_a_new_identity_with_an_invisible_or_look_alike_character_is_refused(
    look_alike: str, named: str, why: str
) -> None:
    with pytest.raises(BadInputError, match=r"^--as = ") as refused:
        checked_identity(look_alike, "--as")
    assert f", {named}" in refused.value.message
    assert f"is {why}" in refused.value.message


def test_a_word_mixing_latin_and_cyrillic_letters_is_refused() -> None:
    with pytest.raises(BadInputError) as refused:
        checked_identity("rіta@modelrail.dev", "MODELRAIL_USER")
    assert refused.value.message.startswith(
        "MODELRAIL_USER = 'rіta@modelrail.dev': the word 'rіta' mixes letters of the scripts CYRILLIC, LATIN"
    )


@pytest.mark.parametrize(
    "name",
    [
        "иван@example.com",
        "山田たろう@example.jp",
        "ĳsbrand@example.nl".replace("ĳ", "ij"),
        "CI bot",
        "José@x",
    ],
)
def test_names_in_one_script_per_word_are_recorded(name: str) -> None:
    assert checked_identity(name, "--as") == name


def test_the_recorded_name_is_the_given_one_stripped_and_in_nfc() -> None:
    recorded = checked_identity("  Jose\u0301@example.com \n", "--as")
    assert recorded == "José@example.com"
    assert unicodedata.is_normalized("NFC", recorded)


def test_a_look_alike_git_email_is_refused_naming_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(identity.USER_ENV, raising=False)
    monkeypatch.setattr(identity, "_git_user_email", lambda: RITA + "\u200b")
    with pytest.raises(BadInputError, match=r"^git config user\.email = .*U\+200B ZERO WIDTH SPACE"):
        current_actor()


# ----------------------------------------------------------------- the four-eyes check


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> World:
    """A production-like stack where rita registered V2 and its production gates passed."""
    world = make_world(tmp_path, repo, stack="local")
    world.registry.add(V2, registrant="rita@example.com")
    world.controller.evidence.save("adult-income", V2, "production", True, "ok", {"checks": []})
    return world


RITA_LOOK_ALIKES = {
    "full-width r": "ｒita@example.com",
    "zero-width space": "rita@example.com\u200b",
    "mathematical bold": "𝐫𝐢𝐭𝐚@example.com",
    "combining dot above": "ri\u0307ta@example.com",
    "capitals": "Rita@Example.COM",
}


@pytest.mark.parametrize("approver", RITA_LOOK_ALIKES.values(), ids=RITA_LOOK_ALIKES.keys())
def test_the_controller_refuses_a_look_alike_of_the_registrant_as_approver(
    world: World, approver: str
) -> None:
    with pytest.raises(RefusedError, match=r"registered .* and cannot approve it \(four eyes\)"):
        world.controller.approve("adult-income", V2, approver)
    assert world.controller.evidence.approval("adult-income", V2, "local") is None
    assert "approved_by" not in world.registry.versions[V2].metadata


def _approve(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    monkeypatch.setattr("pipelines.promotion.wiring.build_controller", lambda *_, **__: world.controller)
    code = main(["approve", "--service", "adult-income", "--version", V2[:12], "--stack", "local", *extra])
    return code, capsys.readouterr().err


def test_approve_as_a_full_width_look_alike_of_the_registrant_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _approve(world, monkeypatch, capsys, "--as", "ｒita@example.com")
    assert code == ExitCode.BAD_INPUT
    assert "--as = 'ｒita@example.com'" in err and "U+FF52 FULLWIDTH LATIN SMALL LETTER R" in err
    assert world.controller.evidence.approval("adult-income", V2, "local") is None


def test_approve_with_a_zero_width_space_in_modelrail_user_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(identity.USER_ENV, "rita@example.com\u200b")
    code, err = _approve(world, monkeypatch, capsys)
    assert code == ExitCode.BAD_INPUT
    assert "MODELRAIL_USER = 'rita@example.com\\u200b'" in err and "U+200B ZERO WIDTH SPACE" in err
    assert world.controller.evidence.approval("adult-income", V2, "local") is None


def test_approve_as_the_registrant_in_other_case_is_refused_by_four_eyes(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _approve(world, monkeypatch, capsys, "--as", "Rita@Example.com")
    assert code == ExitCode.FAILED
    assert "cannot approve it (four eyes)" in err
    assert world.controller.evidence.approval("adult-income", V2, "local") is None


def test_approve_as_a_second_person_is_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _approve(world, monkeypatch, capsys, "--as", "alice@example.com")
    assert code == ExitCode.OK
    approval = world.controller.evidence.approval("adult-income", V2, "local")
    assert approval is not None and approval.approver == "alice@example.com"
