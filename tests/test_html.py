"""report.html rendered by a real browser (headless Chromium): the headline first and in
agreement with summary.csv, the tables and the embedded plots in the DOM, wide tables scrolling
inside their own box, and the page painted. Skipped where Chromium is not installed
(`make test` installs Debian's `chromium` when it can)."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runfolder
from bench.report import build

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium not installed (apt-get install chromium)")
# matplotlib's colours for the teacher and the student markers; the page's own style uses neither.
TEACHER_BLUE, STUDENT_ORANGE = (31, 119, 180), (255, 127, 14)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def pixels(png: Path) -> np.ndarray:
    from matplotlib.image import imread

    image = imread(png)  # floats in [0, 1], RGB(A)
    return np.round(image[..., :3] * 255).astype(np.uint8)


def has_colour(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 6) -> bool:
    return bool((np.abs(rgb.astype(int) - np.array(colour)).max(axis=-1) <= tolerance).sum() > 20)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The default run's shape: teacher, student, control and an API stand-in for o1."""
    spec = runfolder.Spec(models=[*runfolder.Spec().models, runfolder.FRONTIER])
    run = runfolder.write(tmp_path_factory.mktemp("html") / "run", spec)
    build(run)
    return run / "report.html"


def test_dom_has_the_tables_and_the_embedded_plots(page, tmp_path):
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<h2>Quality</h2>" in dom and "<h2>Paired comparison with the teacher</h2>" in dom
    quality = dom.split("<h2>Quality</h2>")[1].split("<table>")[1].split("</table>")[0]
    assert ">accuracy</th>" in quality and quality.count("<tr>") == 1 + 12  # header + 4 models x 3 tasks
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]*)"', dom)
    assert [alt for _, alt in images] == ["Pareto frontier", "cost versus quality per task"]
    assert all(b"<svg" in base64.b64decode(data) for data, _ in images)


PERCENT = r"(\d+(?:\.\d+)?)%"
TIMES = r"([\d,.]+)×"


def test_the_page_opens_with_the_headline_and_it_agrees_with_summary_csv(page, tmp_path):
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = proc.stdout.split("<body>")[1]
    # First the title, then the headline: the sentence, the Pareto plot, the accuracy table.
    assert [m.group(1) for m in re.finditer(r"<h[12]>([^<]+)</h[12]>", body)][:3] == [
        "smoke: teacher vs. distilled student",
        "Headline",
        "The run",
    ]
    block = body.split("<h2>Headline</h2>")[1].split("<h2>")[0]
    assert block.index('<p class="headline">') < block.index('alt="Pareto frontier"') < block.index("<table>")
    text = html.unescape(re.sub(r"<[^>]+>", "", block.split('<p class="headline">')[1].split("</p>")[0]))
    m = re.fullmatch(
        rf"The distilled student tiny_student keeps {PERCENT} \[{PERCENT}, {PERCENT}\] of tiny_teacher's "
        rf"accuracy at {PERCENT} \[{PERCENT}, {PERCENT}\] of its cost per correct answer; against "
        rf"frontier_api, a stand-in billed at o1-2024-12-17's API list prices \(not o1-2024-12-17 "
        rf"itself\), it is {TIMES} \[{TIMES}, {TIMES}\] cheaper per correct answer at "
        r"(\d+\.\d) \[(-?\d+\.\d), (-?\d+\.\d)\] points lower accuracy\.",
        text,
    )
    assert m, text
    retained, cost_share, cheaper, points = (float(m.group(i).replace(",", "")) for i in (1, 4, 7, 10))
    summary = pd.read_csv(page.parent / "summary.csv")
    total = summary.groupby("model")[["usd", "n_correct", "n"]].sum()
    accuracy, per_correct = total.n_correct / total.n, total.usd / total.n_correct
    assert retained == pytest.approx(100 * accuracy["tiny_student"] / accuracy["tiny_teacher"], abs=0.05)
    assert cost_share == pytest.approx(100 * per_correct["tiny_student"] / per_correct["tiny_teacher"], abs=0.05)
    assert cheaper == pytest.approx(per_correct["frontier_api"] / per_correct["tiny_student"], rel=5e-3)
    assert points == pytest.approx(100 * (accuracy["frontier_api"] - accuracy["tiny_student"]), abs=0.05)
    for i in (1, 4, 7):  # each figure inside its own interval
        low, value, high = (float(m.group(j).replace(",", "")) for j in (i + 1, i, i + 2))
        assert low <= value <= high, text


MEASURE = """<script>
window.addEventListener("load", () => {
  const boxes = [...document.querySelectorAll("table")].map(t => {
    const box = t.parentElement;
    return {boxed: box.className === "scroll", overflow: getComputedStyle(box).overflowX,
            wide: t.scrollWidth > box.clientWidth + 1, fits: box.getBoundingClientRect().right <= innerWidth};
  });
  const plots = [...document.querySelectorAll("img")].map(i => ({shown: i.getBoundingClientRect().width,
                                                                  page: document.body.clientWidth}));
  document.body.setAttribute("data-layout", JSON.stringify({
    page: document.documentElement.scrollWidth, window: innerWidth, boxes, plots}));
});
</script>"""


def test_wide_tables_scroll_in_their_own_box_and_plots_span_the_page(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    proc = chromium(tmp_path, "--window-size=1280,2000", "--dump-dom", probe.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    layout = json.loads(html.unescape(re.search(r'data-layout="([^"]+)"', proc.stdout).group(1)))
    assert layout["page"] <= layout["window"], "the page itself scrolls sideways"
    boxes = layout["boxes"]
    assert boxes and all(b["boxed"] and b["overflow"] == "auto" and b["fits"] for b in boxes), boxes
    assert any(b["wide"] for b in boxes), "no table wider than the page: the scroll box is untested"
    # Plots are drawn at the page's width (vector graphics: their text keeps its size).
    assert all(p["shown"] >= 0.95 * p["page"] - 60 for p in layout["plots"]), layout["plots"]


def test_screenshot_shows_the_page_and_the_plot(page, tmp_path):
    shot = tmp_path / "page.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,7000", page.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    rgb = pixels(shot)
    assert rgb.shape[:2] == (7000, 1280)
    # The headline's plot is in the first screenful: the teacher's and student's markers paint there.
    top = rgb[:1600]
    assert has_colour(top, TEACHER_BLUE) and has_colour(top, STUDENT_ORANGE)
    colours = np.unique((rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2])
    assert len(colours) > 200, f"only {len(colours)} distinct colours: a blank page?"
    # The plot's markers painted: the teacher's blue and the student's orange are on the page.
    assert has_colour(rgb, TEACHER_BLUE) and has_colour(rgb, STUDENT_ORANGE)
