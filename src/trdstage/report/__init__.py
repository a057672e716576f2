"""Renderings of an assessment (text, Markdown, JSON)."""

from trdstage.report.text import render_json, render_markdown, render_text

RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}

__all__ = ["RENDERERS", "render_json", "render_markdown", "render_text"]
