"""MkDocs hook: render the Sphinx roles used in the docstrings (``:func:`x```, ``:class:`~a.B```).

mkdocstrings renders NumPy docstrings as Markdown, which leaves a role as literal text followed by
inline code. This hook turns ``:role:<code>target</code>`` into inline code (``~`` keeps only the
last dotted component, as in Sphinx) and links targets inside ``trl_unlearn`` through
mkdocs-autorefs when they are documented (optional references: no warning when they are not).
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):<code>(~?)([\w.]+)</code>")


def _replace(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
    code = f"<code>{title}</code>"
    if target.startswith("trl_unlearn."):
        return f'<autoref identifier="{target}" optional>{code}</autoref>'
    return code


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_replace, html)
