"""report.html rendered by a real browser (headless Chromium): the DOM holds the tables and the
embedded plots, and the page paints them. Skipped where Chromium is not installed
(`make test` installs Debian's `chromium` when it can)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import runfolder
from bench.report import build

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium not installed (apt-get install chromium)")
# matplotlib's colours for the teacher and the student markers; the page's own style uses neither.
TEACHER_BLUE, STUDENT_ORANGE = (31, 119, 180), (255, 127, 14)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp / 'profile'}", *args], capture_output=True, text=True, timeout=120)


def pixels(png: Path) -> np.ndarray:
    from matplotlib.image import imread

    image = imread(png)  # floats in [0, 1], RGB(A)
    return np.round(image[..., :3] * 255).astype(np.uint8)


def has_colour(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 6) -> bool:
    return bool((np.abs(rgb.astype(int) - np.array(colour)).max(axis=-1) <= tolerance).sum() > 20)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    run = runfolder.write(tmp_path_factory.mktemp("html") / "run")
    build(run)
    return run / "report.html"


def test_dom_has_the_tables_and_the_embedded_plots(page, tmp_path):
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<h2>Quality</h2>" in dom and "<h2>Paired comparison with the teacher</h2>" in dom
    quality = dom.split("<h2>Quality</h2>")[1].split("<table>")[1].split("</table>")[0]
    assert ">accuracy</th>" in quality and quality.count("<tr>") == 1 + 9  # header + 3 models x 3 tasks
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]*)"', dom)
    assert [alt for _, alt in images] == ["Pareto frontier", "cost versus quality per task"]
    assert all(b"<svg" in base64.b64decode(data) for data, _ in images)


def test_screenshot_shows_the_page_and_the_plot(page, tmp_path):
    shot = tmp_path / "page.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,7000", page.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    rgb = pixels(shot)
    assert rgb.shape[:2] == (7000, 1280)
    colours = np.unique((rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2])
    assert len(colours) > 200, f"only {len(colours)} distinct colours: a blank page?"
    # The plot's markers painted: the teacher's blue and the student's orange are on the page.
    assert has_colour(rgb, TEACHER_BLUE) and has_colour(rgb, STUDENT_ORANGE)
