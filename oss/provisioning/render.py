"""Render device configuration from Jinja2 templates under `configs/templates/<platform>/`.

Undefined variables are errors, never empty strings (a half-rendered config must not reach a
device), and every error names the template, the line and what is wrong. XML templates
(`*.xml.j2`) escape values, so a description holding `<` or `&` cannot break or inject into a
NETCONF payload; JSON templates should use the `tojson` filter.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from oss.errors import InvalidInput

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "configs" / "templates"


class TemplateError(InvalidInput):
    slug = "template-error"
    title = "Template error"


class Renderer:
    def __init__(self, root: Path = TEMPLATES_DIR) -> None:
        self.root = root
        # Sandboxed: templates are data in configs/, and data must not reach Python internals.
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(root),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("xml", "xml.j2"), default=False),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, template: str, variables: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(template).render(**variables)
        except TemplateNotFound:
            raise TemplateError(f"template {template}: not found under {self.root}") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template {template}:{exc.lineno}: {exc.message}") from None
        except (UndefinedError, SecurityError) as exc:
            line = _template_line(exc, self.root / template)
            where = f"{template}:{line}" if line else template
            raise TemplateError(f"template {where}: {exc.message}") from None


def _template_line(exc: BaseException, path: Path) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's file and line."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if Path(frame.f_code.co_filename) == path:
            line = lineno
    return line
