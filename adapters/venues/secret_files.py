"""API keys and secrets read from files readable by their owner alone (mode 600), for every
venue's settings: the file's stripped text becomes the ``SecretStr`` of its field.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import BaseModel, SecretStr


def read_secret(path: Path) -> str:
    """The stripped text of the secret file ``path``.

    Raises
    ------
    ValueError
        When it is missing, empty, or readable by its group or others (naming the path and
        the mode, never the content).
    """
    if not path.is_file():
        raise ValueError(f"secret file {path} does not exist")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(
            f"secret file {path} must be readable by its owner only (600), is {mode:o}"
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"secret file {path} is empty")
    return value


def load_secret_files(settings: BaseModel, names: tuple[str, ...]) -> None:
    """Set each field of ``names`` (e.g. ``"api_key"``) of ``settings`` from the file named by
    its ``<name>_file`` field, when that is set (a model validator's work: ``settings`` must
    allow assignment without validation, as pydantic's default does).

    Raises
    ------
    ValueError
        When a field and its file are both set, or the file fails :func:`read_secret`.
    """
    for name in names:
        path = getattr(settings, f"{name}_file")
        if path is None:
            continue
        if getattr(settings, name) is not None:
            raise ValueError(f"set {name} or {name}_file, not both")
        setattr(settings, name, SecretStr(read_secret(path)))
