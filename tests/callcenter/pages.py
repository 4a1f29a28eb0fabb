"""Walking the HTML pages the product serves, and finding what they load from another host."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

# (tag, attribute) pairs whose URL the browser loads by itself (anchors only link, so they are
# followed by the walk instead).
LOADING_ATTRIBUTES = {
    ("script", "src"),
    ("img", "src"),
    ("img", "srcset"),
    ("link", "href"),
    ("iframe", "src"),
    ("frame", "src"),
    ("source", "src"),
    ("source", "srcset"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("track", "src"),
    ("embed", "src"),
    ("object", "data"),
    ("input", "src"),
    ("image", "href"),
    ("use", "href"),
    ("form", "action"),
}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")
# Pages not worth walking into: logging out ends the walk's session; these answer no HTML.
SKIPPED_PATHS = re.compile(r"^/(admin/logout/|metrics$|schema$)")


def is_local(url: str) -> bool:
    """Same machine: relative, or a loopback/``*.localhost``/test host."""
    if url.startswith(("data:", "blob:", "#", "javascript:", "about:")):
        return True
    parts = urlsplit(url)
    if not parts.netloc:
        return not url.startswith("//")
    host = (parts.hostname or "").lower()
    return host in {"localhost", "127.0.0.1", "::1", "testserver"} or host.endswith(".localhost")


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if not value:
                continue
            if (tag, name) in LOADING_ATTRIBUTES or name in {"xlink:href"}:
                if name == "srcset":
                    self.loads.extend(part.strip().split(" ")[0] for part in value.split(","))
                else:
                    self.loads.append(value)
            elif tag == "a" and name == "href":
                self.links.append(value)
            elif name == "style":
                self.loads.extend(css_urls(value))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.loads.extend(css_urls(data))


def css_urls(text: str) -> list[str]:
    return [first or second for first, second in CSS_URL.findall(text)]


def parameterless_paths(urlconf: str) -> list[str]:
    """Every path of a URL conf that takes no argument (``admin/``, ``docs``, ``dashboard/``...)."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = pattern.pattern
            if isinstance(route, RoutePattern):
                if route.converters:
                    continue
                text = str(route)
            elif isinstance(route, RegexPattern):
                if route.regex.groups or any(ch in route.regex.pattern.strip("^$") for ch in "*+?[(|\\."):
                    continue
                text = route.regex.pattern.strip("^$")
            else:  # pragma: no cover - a custom pattern type
                continue
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + text)
            else:
                yield "/" + prefix + text

    return sorted(set(walk(get_resolver(urlconf).url_patterns, "")))


@dataclass
class WalkResult:
    pages: dict[str, int] = field(default_factory=dict)  # HTML page -> status
    external: list[tuple[str, str]] = field(default_factory=list)  # (page, url)
    broken_assets: list[tuple[str, str, int]] = field(default_factory=list)  # (page, asset, status)
    assets: set[str] = field(default_factory=set)


def walk_html(client: Client, *, host: str, seeds: list[str], limit: int = 400) -> WalkResult:
    """Visit the seeds and every same-host page they link to (by path, query strings ignored),
    recording each URL a page loads that is not on this machine, and each same-host asset that
    does not answer 200 (CSS files are read for their own ``url()`` and ``@import``)."""
    result = WalkResult()
    queue = deque(seeds)
    seen: set[str] = set()
    while queue and len(seen) < limit:
        path = queue.popleft()
        if path in seen or SKIPPED_PATHS.match(path):
            continue
        seen.add(path)
        response = client.get(path, HTTP_HOST=host)
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        result.pages[path] = response.status_code
        parser = _PageParser()
        parser.feed(response.content.decode())
        for url in parser.loads:
            _check_load(client, host=host, page=path, url=urljoin(path, url), result=result)
        for link in parser.links:
            absolute = urljoin(path, link)
            if is_local(absolute):
                target = urlsplit(absolute)
                if not target.netloc or target.hostname == host:
                    queue.append(target.path)
    return result


def _check_load(client: Client, *, host: str, page: str, url: str, result: WalkResult) -> None:
    if not is_local(url):
        result.external.append((page, url))
        return
    if url.startswith(("data:", "blob:", "#", "javascript:", "about:")):
        return
    path = urlsplit(url).path
    if path in result.assets or not path.startswith("/static/"):
        return
    result.assets.add(path)
    response = client.get(path, HTTP_HOST=host)
    if response.status_code != 200:
        result.broken_assets.append((page, path, response.status_code))
        return
    if path.endswith(".css"):
        body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        for nested in css_urls(body.decode(errors="replace")):
            _check_load(client, host=host, page=path, url=urljoin(path, nested), result=result)
