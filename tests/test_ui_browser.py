"""The web UI in a real browser: Playwright drives Debian's Chromium through `dagster dev` on a small synthetic
data root, as a person would: the global asset lineage, an asset page's metadata (its table, the markdown table
and the plots), and a click on Materialize that launches a run which succeeds.

Before the servers start, a few cheap assets are materialized (in process, into the same SQLite instance) so
that asset pages have metadata to show, and the reports sensor (on by default) is stopped as a user could
(`dagster sensor stop`), so that no OCR run competes with the test. Screenshots of every step are kept under
``$SPINE_TEST_ARTIFACTS/ui/`` (default ``test-artifacts/ui/`` in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from spine_assets.definitions import defs
from spine_assets.environment import (
    DAGSTER_HOME_ENV,
    DATA_ROOT_ENV,
    DEVICE_ENV,
    INSTANCE_TEMPLATE,
    TRACKING_ENV,
    WEIGHTS_ENV,
)
from tests.deployment_support import REPO, Server, free_port, start_server, wait_for, webserver_up

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_ENV = "SPINE_TEST_ARTIFACTS"
REPORTS_SENSOR = "phenikaa_reports_sensor"
#: Materialized before the servers start: cheap, no training; the last one's metadata holds a markdown table.
PREPARED = ("data_root", "rsna_raw", "ivd_coords_dataset")
METADATA_ASSET = "ivd_coords_dataset"
#: Materialized by a click: unpartitioned and without run config, so the button launches at once.
CLICKED_ASSET = "data_root"
#: At scale 1 the whole graph fits and every node is drawn in full, its whole name in the DOM.
GRAPH_VIEWPORT = ViewportSize(width=3600, height=2400)
PAGE_VIEWPORT = ViewportSize(width=1600, height=1000)
TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 240_000
#: The same job the demo runs, executed in process (no process per step): the prepared assets and their checks.
MATERIALIZE = """
import sys
import dagster as dg
from spine_assets.definitions import defs

job = defs().resolve_job_def("everything_but_reports")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    asset_selection=[dg.AssetKey(key) for key in sys.argv[1:]])
sys.exit(0 if result.success else 1)
"""
#: The rendered asset graph: every node (assets and groups) by its full name with its box, every edge's path.
GRAPH_DOM = """
() => {
  const svg = document.querySelector('[data-svg-viewport] svg');
  if (!svg) return {nodes: [], edges: []};
  const nodes = [];
  for (const fo of svg.querySelectorAll('foreignObject')) {
    const named = fo.querySelector('[data-tooltip]');
    if (!named) continue;
    nodes.push({name: named.getAttribute('data-tooltip'), x: +fo.getAttribute('x'), y: +fo.getAttribute('y'),
                width: +fo.getAttribute('width'), height: +fo.getAttribute('height')});
  }
  const edges = [...svg.children].filter(e => e.tagName === 'path' && e.hasAttribute('marker-end'))
    .map(p => p.getAttribute('d'));
  return {nodes, edges};
}
"""
NODE_NAMES = "[data-svg-viewport] svg [data-tooltip]"
EDGE_PATHS = "[data-svg-viewport] svg > path[marker-end]"
AT_LEAST = "([selector, count]) => document.querySelectorAll(selector).length >= count"
EDGE_PATH = re.compile(r"^M\s*([-\d.]+)[ ,]([-\d.]+).*?([-\d.]+)[ ,]([-\d.]+)\s*$")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


def artifacts_dir() -> Path:
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO / "test-artifacts") / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


@dataclass
class UI:
    url: str
    dagster_home: Path
    server: Server

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def latest_metadata(self, key: str) -> dict[str, dg.MetadataValue]:
        with self.instance() as instance:
            records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
        event = records[0].asset_materialization if records else None
        assert event is not None, f"{key} was never materialized"
        return dict(event.metadata)


def finish(process: Server, what: str, timeout: float = 300) -> None:
    """Wait for a one-shot command started with :func:`start_server`; fail with its log when it fails."""
    try:
        returncode = process.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what} still running after {timeout:.0f} s:\n{process.tail()}") from None
    assert returncode == 0, f"{what} failed ({returncode}):\n{process.tail()}"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """`dagster dev` (webserver, daemon, code server) on a synthetic root with a few assets materialized."""
    from spine_lib.synthetic.generate import SynthConfig, make_synthetic_root

    work = tmp_path_factory.mktemp("ui")
    root, home, logs = work / "data", work / "dagster_home", work / "logs"
    make_synthetic_root(SynthConfig(out=root, spider_patients=2, rsna_studies=2, phenikaa_patients=1, size=64,
                                    slices=8, seed=11))
    home.mkdir()
    shutil.copyfile(INSTANCE_TEMPLATE, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):  # create the SQLite storage once, before two processes open it
        pass
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DAGSTER_HOME_ENV: str(home), DATA_ROOT_ENV: str(root), WEIGHTS_ENV: str(work / "weights"),
        DEVICE_ENV: "cpu", TRACKING_ENV: "disabled", "PYTHONUNBUFFERED": "1",
    }
    dagster = [sys.executable, "-m", "dagster"]
    port = free_port()
    started: list[Server] = []
    try:
        # both at once (2 cores): the sensor must be stopped before the daemon starts, the assets before the pages
        stop_sensor = start_server("sensor-stop", [*dagster, "sensor", "stop", "-w", "workspace.yaml",
                                                   REPORTS_SENSOR], env, cwd=REPO, logs=logs)
        prepare = start_server("materialize", [sys.executable, "-c", MATERIALIZE, *PREPARED], env, cwd=REPO,
                               logs=logs)
        started += [stop_sensor, prepare]
        finish(stop_sensor, "dagster sensor stop")
        server = start_server("dagster-dev", [*dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p",
                                              str(port)], env, cwd=REPO, logs=logs)
        started.append(server)
        finish(prepare, f"materializing {', '.join(PREPARED)}")
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if not server.alive():
                raise RuntimeError(f"dagster dev exited ({server.process.returncode}):\n{server.tail()}")
            return webserver_up(url)

        wait_for("the Dagster webserver", up, timeout=180)
        yield UI(url=url, dagster_home=home, server=server)
    finally:
        for process in reversed(started):
            process.stop(first_signal=signal.SIGINT, grace=15)  # SIGINT: dagster dev's own shutdown (Ctrl-C)
        shutil.copytree(logs, artifacts_dir() / "logs", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI containers)
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"],
                                              headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; its last state is kept as a screenshot whatever the outcome."""
    context = browser.new_context(viewport=PAGE_VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)  # 2 busy cores: first loads take more than the default 5 s
    page = context.new_page()
    try:
        yield page
    finally:
        screenshot(page, f"{request.node.name}-last")
        context.close()


def expected_graph() -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """The code location's asset keys, group names and (upstream, downstream) edges."""
    graph = defs().resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assets = {key.to_user_string() for key in keys}
    groups = {str(graph.get(key).group_name) for key in keys}
    edges = {(up.to_user_string(), key.to_user_string()) for key in keys for up in graph.get(key).parent_keys}
    return assets, groups, edges


def rendered_edges(
    nodes: dict[str, dict[str, float]], paths: list[str], tolerance: float = 20
) -> set[tuple[str, str]]:
    """Each edge path as (source, target): it leaves its source's right side and ends at its target's left side,
    both at mid-height (the horizontal layout)."""

    def nearest(x: float, y: float, side: str) -> str:
        def distance(box: dict[str, float]) -> float:
            edge_x = box["x"] + box["width"] if side == "right" else box["x"]
            return abs(edge_x - x) + abs(box["y"] + box["height"] / 2 - y)

        name = min(nodes, key=lambda n: distance(nodes[n]))
        assert distance(nodes[name]) <= tolerance, f"no node's {side} side at ({x}, {y}); nearest is {name}"
        return name

    edges = set()
    for d in paths:
        match = EDGE_PATH.match(d)
        assert match, f"unexpected edge path {d!r}"
        x1, y1, x2, y2 = map(float, match.groups())
        edges.add((nearest(x1, y1, "right"), nearest(x2, y2, "left")))
    return edges


def test_asset_graph_shows_every_asset_and_lineage_edge(ui: UI, page: Page) -> None:
    assets, groups, edges = expected_graph()
    page.set_viewport_size(GRAPH_VIEWPORT)
    page.goto(f"{ui.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    page.wait_for_function(AT_LEAST, arg=["[data-svg-viewport] svg foreignObject", len(groups)])
    screenshot(page, "1-lineage-groups")  # collapsed at first: one box per group

    settings = page.locator("button:has([aria-label=settings])").last  # the graph's own, bottom right
    settings.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    collapse = page.get_by_role("menuitem", name="Collapse all groups")
    expect(collapse).to_be_visible()  # the menu's toggle has flipped
    settings.click()
    expect(collapse).to_be_hidden()
    page.wait_for_function(AT_LEAST, arg=[NODE_NAMES, len(assets) + len(groups)])
    page.wait_for_function(AT_LEAST, arg=[EDGE_PATHS, len(edges)])
    screenshot(page, "2-lineage-expanded")

    dom = page.evaluate(GRAPH_DOM)
    names = {node["name"] for node in dom["nodes"]}
    expected = assets | groups
    assert names == expected, f"missing {sorted(expected - names)}, extra {sorted(names - expected)}"
    boxes = {node["name"]: node for node in dom["nodes"] if node["name"] in assets}
    assert len(dom["edges"]) == len(edges), dom["edges"]
    shown = rendered_edges(boxes, dom["edges"])
    assert shown == edges, f"missing {sorted(edges - shown)}, extra {sorted(shown - edges)}"
    for asset in assets:  # each node on the screen, not only in the DOM
        expect(page.locator(NODE_NAMES).filter(has_text=re.compile(f"^{re.escape(asset)}$"))).to_be_visible()


def markdown_header(markdown: str) -> list[str]:
    return [cell.strip() for cell in markdown.strip().splitlines()[0].strip().strip("|").split("|")]


def test_asset_page_shows_latest_metadata_with_table_and_plots(ui: UI, page: Page) -> None:
    metadata = ui.latest_metadata(METADATA_ASSET)
    numeric = dg.IntMetadataValue | dg.FloatMetadataValue
    numbers = {k: v.value for k, v in metadata.items() if isinstance(v, numeric)}
    markdown = {k: str(v.value) for k, v in metadata.items() if isinstance(v, dg.MarkdownMetadataValue)}
    assert numbers and markdown, metadata  # what this test needs the asset to emit

    page.goto(f"{ui.url}/assets/{METADATA_ASSET}")
    # Dagster's metadata table has no ARIA table roles (its header row is made of td cells): found by its header
    header = page.locator("thead", has_text=re.compile(r"^Key\s*Timestamp\s*Value$"))
    rows = page.locator("table").filter(has=header).locator(":scope > tbody > tr")

    def row(key: str) -> Locator:
        return rows.filter(has=page.locator(":scope > td", has_text=re.compile(f"^{re.escape(key)}$")))

    expect(row(next(iter(markdown)))).to_be_visible()
    cells = rows.evaluate_all("rows => rows.map(r => [...r.children].map(c => c.innerText.trim()))")
    shown = {texts[0]: texts[-1] for texts in cells if texts}  # key -> value
    user_keys = {k for k in metadata if not k.startswith("dagster/")}
    assert user_keys <= set(shown), f"metadata not shown: {sorted(user_keys - set(shown))}"
    for key, value in numbers.items():
        if key in user_keys and isinstance(value, int):
            assert shown[key] == str(value), (key, shown[key], value)
    for key, text in markdown.items():  # rendered as an HTML table, not as markdown source
        rendered = row(key).locator("table")
        expect(rendered).to_be_visible()
        columns = [h.strip() for h in rendered.locator("thead th").all_inner_texts()]
        assert columns == markdown_header(text), (key, columns)
        body_rows = len([line for line in text.strip().splitlines() if line.strip().startswith("|")]) - 2
        expect(rendered.locator("tbody tr")).to_have_count(body_rows)
    screenshot(page, "3-asset-metadata", full_page=True)

    page.get_by_role("button", name="Plots").click()
    expect(page.locator("canvas")).to_have_count(len(numbers))  # one plot per numeric entry
    for key in numbers:
        expect(page.get_by_text(key, exact=True)).to_be_visible()
    screenshot(page, "4-asset-plots", full_page=True)


def test_materialize_button_launches_a_run_that_succeeds(ui: UI, page: Page) -> None:
    page.goto(f"{ui.url}/assets/{CLICKED_ASSET}")
    button = page.get_by_role("button").filter(has_text=re.compile(r"^Materialize$"))
    expect(button).to_be_enabled()
    button.click()
    toast = page.get_by_text("Launched run")
    expect(toast).to_be_visible()
    view = page.get_by_role("link", name="View", exact=True)
    href = str(view.get_attribute("href"))
    run_id = href.rsplit("/runs/", 1)[-1]
    screenshot(page, "5-materialize-launched")

    view.click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}"))
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    screenshot(page, "6-run-finished")
    assert status.inner_text() == "Success", ui.server.tail()
    with ui.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.asset_selection == {dg.AssetKey(CLICKED_ASSET)}
        latest = instance.fetch_materializations(dg.AssetKey(CLICKED_ASSET), limit=1).records
        assert latest and latest[0].run_id == run_id
