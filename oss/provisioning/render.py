"""Render device configuration from Jinja2 templates under `configs/templates/<platform>/`.

Undefined variables are errors, never empty strings (a half-rendered config must not reach a
device), and every error names the template, the line and what is wrong. XML templates
(`*.xml.j2`) escape values, so a description holding `<` or `&` cannot break or inject into a
NETCONF payload; JSON templates should use the `tojson` filter, CLI templates `shell_quote`.
A template can refuse its input with `{{ fail("why") }}`.
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from oss.errors import InvalidInput
from oss.paths import configs_dir


def templates_dir() -> Path:
    """configs/templates of the configs folder in use (looked up now: the folder is a setting)."""
    return configs_dir() / "templates"


class TemplateError(InvalidInput):
    slug = "template-error"
    title = "Template error"


class _Refused(Exception):
    """Raised by `fail()` and by filters that refuse a value; reported with the template line."""


def shell_quote(value: Any) -> str:
    """A value as one POSIX shell word (quoted only when needed); booleans as true/false.
    Line breaks are refused: a CLI template emits one command per line."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if any(ch in text for ch in "\r\n\x00"):
        raise _Refused(f"shell_quote: {text[:40]!r} holds a line break or NUL")
    return shlex.quote(text)


def fail(message: str) -> str:
    raise _Refused(message)


def _json_default(value: Any) -> Any:
    """`tojson` meets an undefined value (a missing key put into a dict or list): raise the
    undefined error, which names the variable, rather than json's TypeError."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Renderer:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else templates_dir()
        # Sandboxed: templates are data in configs/, and data must not reach Python internals.
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(self.root),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("xml", "xml.j2"), default=False),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["shell_quote"] = shell_quote
        self._env.globals["fail"] = fail
        self._env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}

    def has(self, template: str) -> bool:
        """Whether `template` (relative to the root) exists: optional templates."""
        return (self.root / template).is_file()

    def render(self, template: str, variables: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(template).render(**variables)
        except TemplateNotFound:
            raise TemplateError(f"template {template}: not found under {self.root}") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template {template}:{exc.lineno}: {exc.message}") from None
        except (UndefinedError, SecurityError) as exc:
            where = self._where(exc, template)
            raise TemplateError(f"template {where}: {exc.message}") from None
        except _Refused as exc:
            raise TemplateError(f"template {self._where(exc, template)}: {exc}") from None

    def _where(self, exc: BaseException, template: str) -> str:
        """`t.xml.j2:3`, or `t.xml.j2:3 (in lib.xml.j2:12)` when the error is in a macro the
        template imported."""
        frames = _template_frames(exc, self.root)
        own = [line for path, line in frames if path == self.root / template]
        where = f"{template}:{own[-1]}" if own else template
        if frames and frames[-1][0] != self.root / template:
            path, line = frames[-1]
            where += f" (in {path.relative_to(self.root)}:{line})"
        return where


def _template_frames(exc: BaseException, root: Path) -> list[tuple[Path, int]]:
    """Jinja rewrites tracebacks so template frames carry the template's file and line."""
    frames = []
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(root) and path.name.endswith(".j2"):
            frames.append((path, lineno))
    return frames
