"""Edit a .env file in place without losing anything: one key at a time, atomic, mode 600.

Every line that is not one of the keys being changed is kept byte for byte (comments, blank
lines, `export` prefixes, CRLF endings, multi-line quoted values). Changed keys keep their
position and their `export ` prefix; new keys are appended at the end.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from authkit_setup.errors import UsageError

if TYPE_CHECKING:
    from authkit_setup.output import Output

Action = Literal["created", "updated", "unchanged", "removed", "absent"]

_ASSIGN = re.compile(
    rb"^(?P<indent>[ \t]*)(?P<export>export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*=(?P<value>.*?)(?P<eol>\r?\n)?$",
    re.S,
)
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_@:/.?&=%+,\-~\[\]!*]*$")
MODE = 0o600


def quote_value(value: str) -> str:
    """A dotenv-safe spelling of `value` (python-dotenv and Node's dotenv read it back the same)."""
    if "\n" in value or "\r" in value:
        raise UsageError("values with line breaks cannot be written to a .env file")
    if _SAFE_VALUE.match(value):
        return value
    # python-dotenv decodes \\ and \' inside single quotes too: a backslash needs double quotes.
    if "'" not in value and "\\" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _open_quote(value: bytes) -> bytes | None:
    """If a value starts a quoted string that does not close on this line, return the quote."""
    stripped = value.strip()
    if not stripped or stripped[:1] not in (b'"', b"'"):
        return None
    quote = stripped[:1]
    return None if _closes(stripped[1:], quote) else quote


def _closes(line: bytes, quote: bytes) -> bool:
    """Does `line` hold the closing `quote` (not one escaped with a backslash in "…")?"""
    i = 0
    while i < len(line):
        c = line[i : i + 1]
        if c == b"\\" and quote == b'"':
            i += 2
            continue
        if c == quote:
            return True
        i += 1
    return False


def _split(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _assignments(lines: list[bytes]) -> list[tuple[int, str, int]]:
    """(first line, key, end) of every assignment; a quoted value may run on to line end - 1."""
    found: list[tuple[int, str, int]] = []
    open_quote: bytes | None = None
    for index, line in enumerate(lines):
        if open_quote is not None:
            if _closes(line, open_quote):
                open_quote = None
            first, key, _ = found[-1]
            found[-1] = (first, key, index + 1)
            continue
        match = _ASSIGN.match(line)
        if not match:
            continue
        found.append((index, match.group("key").decode("utf-8", "replace"), index + 1))
        open_quote = _open_quote(match.group("value"))
    return found


def update_env_file(
    path: Path,
    updates: Mapping[str, str],
    *,
    remove: Iterable[str] = (),
) -> dict[str, Action]:
    """Set `updates` and delete `remove` in the .env at `path`; report what happened per key."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise UsageError(f"{path} is a directory, expected a .env file")
    try:
        data = target.read_bytes() if target.exists() else b""
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None

    from dotenv import dotenv_values

    stream = io.StringIO(data.decode("utf-8", "replace"))
    current = {k: v for k, v in dotenv_values(stream=stream).items() if v is not None}
    lines = _split(data)
    eol = b"\r\n" if b"\r\n" in data else b"\n"
    actions: dict[str, Action] = {}
    remove = set(remove)
    positions = _assignments(lines)
    drop: set[int] = set()

    for key, value in updates.items():
        encoded = f"{key}={quote_value(value)}".encode()
        spans = [(i, end) for i, k, end in positions if k == key]
        indexes = [i for i, _ in spans]
        if not indexes:
            actions[key] = "created"
            if lines and not lines[-1].endswith((b"\n", b"\r")):
                lines[-1] += eol
            lines.append(encoded + eol)
            continue
        if current.get(key) == value and len(indexes) == 1:
            actions[key] = "unchanged"
            continue
        actions[key] = "updated"
        first = indexes[0]
        match = _ASSIGN.match(lines[first])
        assert match is not None
        prefix = (match.group("indent") or b"") + (match.group("export") or b"")
        # The new value is one line: it ends the way the old value's last line ended.
        last = lines[spans[0][1] - 1]
        line_eol = last[len(last.rstrip(b"\r\n")) :]
        lines[first] = prefix + encoded + (line_eol or eol)
        drop.update(range(first + 1, spans[0][1]))  # the old value's continuation lines
        for start, end in spans[1:]:  # a duplicate later line would win when read back
            drop.update(range(start, end))

    for key in remove:
        spans = [(i, end) for i, k, end in positions if k == key]
        actions[key] = "removed" if spans else "absent"
        for start, end in spans:
            drop.update(range(start, end))

    if all(a in ("unchanged", "absent") for a in actions.values()) and target.exists():
        _ensure_mode(target)
        return actions
    out = b"".join(line for i, line in enumerate(lines) if i not in drop)
    write_private_file(target, out)
    return actions


def _ensure_mode(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o777 != MODE:
            path.chmod(MODE)
    except OSError:
        pass


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, mode 600, via a temp file in the same folder."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


GitIgnoreAction = Literal["added", "created", "ignored", "tracked", "skipped"]


def _git(folder: Path, *args: str) -> int | None:
    """`git -C folder ARGS`'s exit code, or None when git is missing or hangs."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            [git, "-C", str(folder), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return None


def keep_out_of_git(path: Path) -> tuple[GitIgnoreAction, Path | None]:
    """Make sure git ignores `path`, a file holding secrets, if it sits in a git work tree.

    Nothing happens outside a work tree, or when git already ignores it (`git check-ignore`);
    otherwise its name is appended to the .gitignore beside it (created if need be). A file git
    already tracks is reported ("tracked"): ignoring it would not untrack it. Returns the action
    and the .gitignore touched (or None).
    """
    folder = path.parent.resolve()
    # --show-toplevel fails outside a work tree, inside .git and in a bare repository alike
    # (--is-inside-work-tree exits 0 there, printing "false").
    if _git(folder, "rev-parse", "--show-toplevel") != 0:
        return "skipped", None
    if _git(folder, "ls-files", "--error-unmatch", "--", path.name) == 0:
        return "tracked", None
    if _git(folder, "check-ignore", "-q", "--", path.name) == 0:
        return "ignored", None
    gitignore = folder / ".gitignore"
    try:
        created = append_gitignore_line(gitignore, "/" + path.name)
    except OSError:
        return "skipped", gitignore
    return ("created" if created else "added"), gitignore


def append_gitignore_line(gitignore: Path, entry: str) -> bool:
    """Append `entry` as a line of its own to `gitignore`, in the file's line endings, keeping
    every byte already there; True when the file was created. OSError when it cannot."""
    existing = gitignore.read_bytes() if gitignore.exists() else None
    eol = b"\r\n" if existing and b"\r\n" in existing else b"\n"
    text = entry.encode() + eol
    if existing and not existing.endswith(b"\n"):
        text = eol + text
    with gitignore.open("ab") as handle:
        handle.write(text)
    return existing is None


def say_kept_out_of_git(path: Path, out: Output) -> GitIgnoreAction:
    """`keep_out_of_git`, then tell the user what happened (a warning when it could not)."""
    action, gitignore = keep_out_of_git(path)
    if action in ("added", "created"):
        out.step(f"{gitignore}: /{path.name} {action} (it holds secrets; git now ignores it)")
    elif action == "tracked":
        out.warn(
            f"{path} holds secrets and git tracks it: run `git rm --cached {path.name}` and add "
            "it to .gitignore"
        )
    elif gitignore is not None:
        out.warn(f"could not update {gitignore}: add /{path.name} to it yourself")
    return action
