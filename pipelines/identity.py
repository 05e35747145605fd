"""Who is acting: the name recorded on every registration, approval and promotion.

The first of these wins: an explicit ``--as NAME``, the ``MODELRAIL_USER`` environment
variable (how CI names its bot), ``git config user.email`` (how a person is usually known
in a repository), and finally the operating-system user.

Two rules keep a look-alike name from passing for someone else, above all for the second pair of
eyes on one's own version:

* **Comparing.** Every comparison of two identities is ``same_identity(a, b)``: equal
  ``identity_key`` values. The key folds case and compatibility forms (full-width ``ｒ``,
  mathematical ``𝐫`` and ``r`` are one letter) and drops what does not show: zero-width and other
  format characters, control characters, whitespace, Hangul fillers and variation selectors, and
  accents that compose with no letter (``i`` with U+0307 COMBINING DOT ABOVE looks like ``i``).
  Wrongly "same" only refuses an approval; wrongly "different" lets a person approve their own
  version, so where in doubt the key leans towards "same".
* **Recording.** A new identity is refused, naming its source and the code point, when it holds a
  control character, an invisible character (format, unassigned, private use, Hangul filler), a
  space other than U+0020, a compatibility character (one NFKC rewrites, like full-width letters), a
  stray accent, or letters of two scripts not written together (Latin with Cyrillic, say): recorded,
  each would itself be a look-alike in the audit log. A name that passes is recorded as given, in NFC.

Not covered: a word written wholly in another script's look-alike letters (Cyrillic ``асе`` for
``ace``); telling those apart needs Unicode's confusables table (UTS #39 skeletons).
"""

from __future__ import annotations

import getpass
import os
import subprocess
import unicodedata

from pipelines.errors import BadInputError

USER_ENV = "MODELRAIL_USER"
MAX_ACTOR_LENGTH = 128

INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0\u2800"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)
"""Characters that show nothing yet are not format characters (Cf): the default-ignorable ones
(combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation
selectors) and the blank Braille pattern."""
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_MARKS = frozenset({"Mn", "Me"})
_ACCENTED_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC", ""})
"""Scripts whose accents are precomposed letters (NFC), so a mark left over after NFC is a stray one
a glance can miss; "" is no letter at all (a mark on ``@`` or a digit). In other scripts (Devanagari,
Thai, ...) combining marks write vowels and are kept."""
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a lone surrogate (undecodable input)",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_SCRIPTS_WRITTEN_TOGETHER = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
"""Scripts one name may mix (Unicode TS #39, highly restrictive); any other mix is refused."""
_ALLOWED = (
    f"an actor is a non-empty single-line name of at most {MAX_ACTOR_LENGTH} visible characters "
    "(e.g. an e-mail address)"
)


def identity_key(name: str) -> str:
    """The form identities are compared in: ``same_identity(a, b)`` is ``identity_key(a) == identity_key(b)``.

    ``name`` in NFKC, casefolded, without control and format characters (Cc, Cf), whitespace and
    separators (Z*), unassigned, private-use and surrogate code points, the characters in
    ``INVISIBLE``, and combining marks that NFKC left on a Latin, Greek or Cyrillic letter (or on no
    letter). Never raises: it also reads names recorded before these rules, or by other tools.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    kept: list[str] = []
    base = ""
    for character in folded:
        if unicodedata.category(character) in _UNSEEN_CATEGORIES or character in INVISIBLE:
            continue
        if unicodedata.category(character) in _MARKS:
            if _script(base) in _ACCENTED_SCRIPTS:
                continue
        else:
            base = character
        kept.append(character)
    return "".join(kept)


def same_identity(first: str, second: str) -> bool:
    """Whether two names denote one person or bot (``Rita@X``, ``ｒita@x`` and ``rita@x\u200b`` do)."""
    return identity_key(first) == identity_key(second)


def checked_identity(name: str, source: str) -> str:
    """``name`` as it is recorded (stripped, NFC), or ``BadInputError`` naming ``source`` and why not."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not cleaned or len(cleaned) > MAX_ACTOR_LENGTH:
        raise BadInputError(f"{source} = {name!r}: {_ALLOWED}")
    base = ""
    for position, character in enumerate(cleaned, start=1):
        problem = _refusal(character, base)
        if problem:
            raise BadInputError(
                f"{source} = {name!r}: character {position}, {_code_point(character)}, is {problem}; {_ALLOWED}"
            )
        if unicodedata.category(character) not in _MARKS:
            base = character
    mixed = _mixed_script_word(cleaned)
    if mixed is not None:
        word, scripts = mixed
        raise BadInputError(
            f"{source} = {name!r}: the word {word!r} mixes letters of the scripts {', '.join(sorted(scripts))}, "
            "as look-alike names do; write each word in one script (Latin may join Han, Kana, Bopomofo "
            "or Hangul)"
        )
    return cleaned


def current_actor(explicit: str | None = None) -> str:
    """The acting person or bot, by the precedence in the module docstring, checked for recording."""
    if explicit is not None:
        return checked_identity(explicit, "--as")
    from_env = os.environ.get(USER_ENV)
    if from_env:
        return checked_identity(from_env, USER_ENV)
    email = _git_user_email()
    if email:
        return checked_identity(email, "git config user.email")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
    return checked_identity(user, "the operating-system user")


def _refusal(character: str, base: str) -> str:
    """Why ``character`` (after ``base``) may not be part of a recorded identity, or '' when it may."""
    category = unicodedata.category(character)
    if category in _REFUSED_CATEGORIES:
        return _REFUSED_CATEGORIES[category]
    if character in INVISIBLE:
        return "a character that shows nothing"
    if category == "Zs" and character != " ":
        return "a space other than U+0020"
    compatible = unicodedata.normalize("NFKC", character)
    if compatible != character:
        return f"a compatibility form of {compatible!r} (write that instead)"
    if category in _MARKS and _script(base) in _ACCENTED_SCRIPTS:
        where = f"NFC cannot compose with {base!r}" if base else "with no letter before it"
        return f"an accent {where}, easily missed"
    return ""


def _script(character: str) -> str:
    """A letter's script, by the first word of its Unicode name ('' for anything but a letter)."""
    if not character or unicodedata.category(character) not in ("Lu", "Ll", "Lt", "Lo"):
        return ""
    return unicodedata.name(character, "").split(" ")[0]


def _mixed_script_word(name: str) -> tuple[str, set[str]] | None:
    """The first word (a run of letters and marks) whose letters mix scripts not written together.

    Words, not the whole name, so that ``иван@example.com`` passes and ``rіta@example.com`` (with a
    Cyrillic ``і``) does not.
    """
    word: list[str] = []
    scripts: set[str] = set()
    for character in [*name, ""]:
        script = _script(character)
        if script or (character and unicodedata.category(character) in _MARKS):
            word.append(character)
            scripts |= {script} - {""}
            continue
        if len(scripts) > 1 and not any(scripts <= together for together in _SCRIPTS_WRITTEN_TOGETHER):
            return "".join(word), scripts
        word, scripts = [], set()
    return None


def _code_point(character: str) -> str:
    return f"U+{ord(character):04X} {unicodedata.name(character, '(unnamed)')}"


def _git_user_email() -> str | None:
    try:
        result = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    email = result.stdout.strip()
    return email or None
