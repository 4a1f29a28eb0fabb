"""``OPTIONS`` answers (DRF's ``DEFAULT_METADATA_CLASS``; its own module because DRF imports it
while ``rest_framework.views`` itself loads)."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import BaseMetadata
from rest_framework.request import Request


class Metadata(BaseMetadata):
    """The methods a path takes, what it reads and writes, and where it is documented. DRF's default
    shows the view's class name and docstring, which say nothing to a client."""

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {
            "methods": [method for method in view.allowed_methods if method != "OPTIONS"],
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
            "documentation": "/docs",
        }
