"""mkdocs hooks of the documentation site (mkdocs.yml, decision 2131).

The markdown files are written to be read on GitHub, where a link is a path in the repository:
``docs/user-guide.md`` links ``../providers/aws/README.md`` and SECURITY.md links ``docs/locks.md#fencing``. The
site is built from ``docs/``, so these hooks

- bring the repository files that the site's pages link to (or that the nav names under ``project/``) into the
  site: a markdown file becomes a page (the README is the home page), any other file is copied as it is;
- rewrite each relative link of every page from its repository path to the page or file it became, so one link
  works on GitHub and on the site; a link to nothing is left alone, and ``mkdocs build --strict`` fails on it;
- write ``decisions/index.md``, the list of every decision record, at each build: a decision added to
  ``docs/decisions/`` is on the site without an edit of the nav;
- replace a line ``<!-- runvoy:catalog NAME -->`` by the sizes and prices of provider NAME, read from the data
  files its cost calculator and size checks use (``providers/NAME/runvoy_NAME/data/``), so the cloud pages
  never disagree with ``runvoy cost estimate``.
"""

from __future__ import annotations

import csv
import posixpath
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
HOME = "README.md"
# pages made from files outside docs/ live under this folder of the site (the README excepted: it is the home page)
OUTSIDE = "project"
DECISIONS = "decisions"
DECISIONS_INDEX = f"{DECISIONS}/index.md"

# fenced code is skipped, so are inline code spans; what is left may hold inline links and reference definitions
_MARKDOWN = re.compile(
    r"(?P<fence>^[ \t]*(?P<mark>```+|~~~+).*?^[ \t]*(?P=mark)[ \t]*$)"
    r"|(?P<link>(?P<open>!?\[[^\]\n]*\]\()[ \t]*<?(?P<target>[^)\s>]+)>?(?P<close>(?:[ \t]+\"[^\"\n]*\")?[ \t]*\)))"
    r"|(?P<refdef>^(?P<refopen>[ ]{0,3}\[[^\]\n]+\]:[ \t]*)<?(?P<reftarget>[^\s>]+)>?)"
    # a code span ends in its paragraph: a stray backtick must not hide the links of the paragraphs after it
    r"|(?P<code>(?P<ticks>`+)(?:(?!\n[ \t]*\n)[^`])(?:(?!\n[ \t]*\n).)*?(?P=ticks))",
    re.MULTILINE | re.DOTALL,
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_DIMENSION = {"vcpu": "vCPU", "memory": "memory", "storage": "storage"}
_CATALOG = re.compile(r"^<!-- runvoy:catalog (?P<provider>[a-z0-9_]+) -->[ \t]*$", re.MULTILINE)


class _Site:
    """Where each repository file is on the site: repository path -> src_uri of the site."""

    def __init__(self, config: MkDocsConfig, files: Files) -> None:
        self.config = config
        self.files = files
        self.origin: dict[str, str] = {}  # src_uri -> repository path, for the pages made here
        self.pending: list[str] = []

    def site_path(self, repo_path: str) -> str:
        if repo_path == HOME:
            return "index.md"
        if repo_path.startswith(f"{DOCS}/"):
            return repo_path[len(DOCS) + 1 :]
        # a leading dot would make mkdocs treat the folder as hidden (.github/...)
        return f"{OUTSIDE}/" + "/".join(part.lstrip(".") or part for part in repo_path.split("/"))

    def repo_path(self, src_uri: str) -> str:
        return self.origin.get(src_uri, f"{DOCS}/{src_uri}")

    def include(self, repo_path: str) -> str | None:
        """The site's src_uri of a repository file, adding it to the site if it is not there yet."""
        if repo_path.endswith("/"):
            return self._include_folder(repo_path.rstrip("/"))
        src_uri = self.site_path(repo_path)
        if self.files.get_file_from_path(src_uri) is not None:
            return src_uri
        source = ROOT / repo_path
        if repo_path.startswith(f"{DOCS}/") or not source.is_file():
            return None  # a docs/ file mkdocs did not take (excluded) stays out
        self.files.append(File.generated(self.config, src_uri, abs_src_path=str(source)))
        self.origin[src_uri] = repo_path
        if src_uri.endswith(".md"):
            self.pending.append(src_uri)  # its own links bring in more files
        return src_uri

    def _include_folder(self, repo_path: str) -> str:
        src_uri = f"{self.site_path(repo_path)}/index.md"
        if self.files.get_file_from_path(src_uri) is None:
            names = sorted(p.name for p in (ROOT / repo_path).iterdir() if p.is_file())
            listing = [f"# {repo_path}/", "", "The files of this folder of the repository:", ""]
            listing += [f"- [{name}]({name})" for name in names]
            self.files.append(File.generated(self.config, src_uri, content="\n".join(listing) + "\n"))
            # the listing's links are relative to the folder it lists
            self.origin[src_uri] = f"{repo_path}/index.md"
            self.pending.append(src_uri)
        return src_uri

    def resolve(self, from_repo_path: str, target: str) -> str | None:
        """The repository path a relative link of a file points to (a folder: its index or README)."""
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(from_repo_path), unquote(target)))
        if joined.startswith("..") or joined.startswith("/"):
            return None
        if joined == ".":
            joined = ""
        path = ROOT / joined
        if path.is_dir():
            if joined == f"{DOCS}/{DECISIONS}":
                return f"{DOCS}/{DECISIONS_INDEX}"
            for name in ("index.md", "README.md"):
                if (path / name).is_file():
                    return posixpath.join(joined, name) if joined else name
            return f"{joined}/" if joined else None  # a folder without a page: a listing of its files
        if joined == f"{DOCS}/{DECISIONS_INDEX}":
            return joined
        return joined if path.is_file() else None

    def rewrite(self, markdown: str, src_uri: str) -> str:
        """The page's markdown with its relative links made relative to where the page is on the site; every
        file they point to is included (on_files has already included them all when pages render)."""
        from_repo = self.repo_path(src_uri)

        def target_for(target: str) -> str:
            if _SCHEME.match(target) or target.startswith("#") or target.startswith("/"):
                return target
            path, hash_, anchor = target.partition("#")
            if not path:
                return target
            repo_target = self.resolve(from_repo, path)
            if repo_target is None:
                return target  # the build reports it
            site_target = self.include(repo_target)
            if site_target is None:
                return target
            relative = posixpath.relpath(site_target, posixpath.dirname(src_uri) or ".")
            return relative + hash_ + anchor

        def replace(match: re.Match[str]) -> str:
            if match["link"]:
                return f"{match['open']}{target_for(match['target'])}{match['close']}"
            if match["refdef"]:
                return f"{match['refopen']}{target_for(match['reftarget'])}"
            return match[0]

        return _MARKDOWN.sub(replace, markdown)


_site: _Site | None = None


def _decisions_index() -> str:
    lines = [
        "# Decisions",
        "",
        "Why things are the way they are: one short record per decision, numbered by the issue that took it.",
        "This list is written at each build from `docs/decisions/`.",
        "",
        "| number | decision |",
        "|---|---|",
    ]
    for path in sorted((ROOT / DOCS / DECISIONS).glob("*.md")):
        if path.name == "index.md":
            continue
        text = path.read_text(encoding="utf-8")
        heading = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), path.stem)
        number, _, title = heading.partition(" ")
        if not number.isdigit():
            number, title = path.stem.split("-", 1)[0], heading
        title = title.replace("|", "\\|")
        lines.append(f"| {number} | [{title}]({path.name}) |")
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    global _site
    site = _site = _Site(config, files)
    if files.get_file_from_path(DECISIONS_INDEX) is None:  # a hand-written index would win
        files.append(File.generated(config, DECISIONS_INDEX, content=_decisions_index()))
    # pages the nav names that come from outside docs/
    for item in _nav_paths(config.nav or []):
        if item == "index.md":
            site.include(HOME)
        elif item.startswith(f"{OUTSIDE}/"):
            repo_path = item[len(OUTSIDE) + 1 :]
            if site.include(repo_path) is None:
                raise PluginError(f"mkdocs.yml names {item}, but {repo_path} does not exist")
    # follow links until every linked file is in: links are rewritten again, per page, in on_page_markdown
    seen: set[str] = set()
    site.pending.extend(f.src_uri for f in files.documentation_pages())
    while site.pending:
        src_uri = site.pending.pop()
        if src_uri in seen:
            continue
        seen.add(src_uri)
        file = files.get_file_from_path(src_uri)
        if file is None or src_uri == DECISIONS_INDEX:
            continue
        site.rewrite(file.content_string, src_uri)
    return files


def _nav_paths(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_paths(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_paths(value)]
    return []


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files, **_: Any) -> str:
    assert _site is not None
    markdown = _CATALOG.sub(lambda m: _catalog(m["provider"]), markdown)
    return _site.rewrite(markdown, page.file.src_uri)


def _size(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def _memory(row: dict[str, Any]) -> str:
    if "memory_mib" in row:
        return ", ".join(_size(m) for m in row["memory_mib"])
    low, high = _size(row["memory_min_mib"]), _size(row["memory_max_mib"])
    if "memory_round_gib" in row:
        return f"{low} to {high}, rounded up to {row['memory_round_gib']} GiB"
    step = row.get("memory_step_mib", 1)
    return f"{low} to {high}" + ("" if step == 1 else f", in steps of {_size(step)}")


def _catalog(provider: str) -> str:
    """Markdown: the billing rule, the accepted sizes and the price catalog shipped with a provider."""
    data = ROOT / "providers" / provider / f"runvoy_{provider}" / "data"
    rule = tomllib.loads((data / "billing.toml").read_text(encoding="utf-8"))
    with (data / "prices.csv").open(encoding="utf-8", newline="") as handle:
        prices = list(csv.DictReader(handle))
    catalog = rule["catalog"]
    minimum = rule["minimum_seconds"]
    lines = [
        f"Catalog {catalog['version']}, prices effective {catalog['effective_date']} (retrieved "
        f"{catalog['retrieved_date']}), from `providers/{provider}/runvoy_{provider}/data/`: the same files "
        "`runvoy cost estimate` and the size check before a run read. `runvoy cost refresh` writes a newer "
        "catalog to your cache.",
        "",
        f"- **Billed time**: from {rule['meter_start']} to {rule['meter_stop']}, in steps of "
        f"{rule['rounding_step_seconds']} s" + ("" if minimum == "0" else f", at least {minimum} s") + ".",
        f"- **Billed size**: {rule['billed_size']}.",
        f"- **Architectures**: {', '.join(rule['architectures'])}; spot capacity: "
        f"{'yes (`--spot`)' if rule['spot'] else 'no'}.",
    ]
    if rule.get("free_storage_gib"):
        lines.append(
            f"- **Storage**: {rule['free_storage_gib']} GiB free, up to {rule['storage_max_gib']} GiB "
            "(`storage_gib=` in the Python API, `--storage` of `runvoy cost estimate`); the rest is billed per GiB-hour."
        )
    if rule.get("free_tier"):
        lines.append(f"- **Free tier**: {rule['free_tier']}.")
    lines += ["", "**Sizes** (`--cpu`, `--memory`):", "", "| vCPU | memory |", "|---|---|"]
    for row in rule["sizes"]:
        cpu = row.get("cpu") or f"{row['cpu_min']} to {row['cpu_max']}, in steps of {row['cpu_step']}"
        lines.append(f"| {cpu} | {_memory(row)} |")
    dimensions = sorted({p["dimension"] for p in prices}, key=["vcpu", "memory", "storage"].index)
    lines += [
        "",
        f"**Prices** ({prices[0]['currency']}, Linux; default region `{rule['default_region']}`):",
        "",
        "| region | architecture | capacity | " + " | ".join(_DIMENSION[d] for d in dimensions) + " |",
        "|---" * (3 + len(dimensions)) + "|",
    ]
    table: dict[tuple[str, str, str], dict[str, str]] = {}
    for p in prices:
        table.setdefault((p["region"], p["architecture"], p["capacity"]), {})[p["dimension"]] = (
            f"{p['price']} per {p['unit']}"
        )
    for (region, arch, capacity), cells in table.items():
        lines.append(
            f"| {region} | {arch} | {capacity} | " + " | ".join(cells.get(d, "") for d in dimensions) + " |"
        )
    return "\n".join(lines) + "\n"
