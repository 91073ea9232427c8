"""The training chart: drawn, throttled, truncated on resume, and empty without stray labels."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPixmap

from chatapp.ui.loss_chart import LossChart, nice_ticks, ppl_ticks
from chatapp.ui.training.common import format_eta, format_eta_range


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_loss_chart_renders(qtbot, n):
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.resize(480, 260)
    chart.set_total_steps(max(n, 10))
    for step in range(1, n + 1):
        chart.add_loss(step, 3.0 / (1 + step / 500) + (0.2 if step % 7 == 0 else 0.0))
    if n:
        chart.add_eval(0, 40.0)
        chart.add_eval(n, 12.0)
    chart.add_loss(n + 1, float("nan"))  # a diverged step is not drawn
    assert chart.loss_count == n
    pixmap = QPixmap(chart.size())
    pixmap.fill(QColor("white"))
    chart.render(pixmap)
    assert not pixmap.isNull() and chart.paint_count == 1
    if n == 5000:
        image = pixmap.toImage()
        blue = sum(1 for x in range(0, 480, 2) for y in range(0, 260, 2)
                   if image.pixelColor(x, y).blue() > 150 and image.pixelColor(x, y).red() < 120)
        assert blue > 20  # the loss line is there


def test_chart_repaints_are_throttled_and_resume_truncates(qtbot):
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    before = chart.paint_count
    for step in range(1, 1001):
        chart.add_loss(step, 2.0)
    qtbot.wait(400)
    assert chart.paint_count - before <= 3
    chart.add_eval(500, 9.0)
    chart.add_eval(900, 8.0)
    chart.truncate_after(600)
    assert chart.loss_count == 600 and chart.eval_count == 1
    chart.add_loss(601, 1.5)
    assert chart.steps[-2:] == [600, 601]


def test_ticks_and_eta_formatting():
    assert nice_ticks(0, 10, 6) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(1.13, 1.31, 5) == [1.15, 1.2, 1.25, 1.3]
    assert ppl_ticks(0.0, 4.7) == [1, 2, 5, 10, 20, 50, 100]
    assert len(ppl_ticks(2.0, 2.1)) >= 2
    assert [format_eta(s) for s in (5, 125, 7322, None, float("nan"))] == [
        "5 s", "2 min 05 s", "2 h 02 min", "…", "…"]
    assert format_eta_range(100, 156) == "2 min to 3 min" and format_eta_range(12, 31) == "10 s to 30 s"
    assert format_eta_range(None, 3) == "…"


def test_empty_chart_draws_no_axis_labels(qtbot):
    # issue 19, item 18: numbers on axes with nothing plotted read as data
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.resize(480, 260)
    chart.set_total_steps(40)
    pixmap = QPixmap(chart.size())
    chart.render(pixmap)
    assert chart.paint_count == 1 and chart.tick_labels == []
    chart.add_loss(1, 2.5)
    chart.render(pixmap)
    assert "40" in chart.tick_labels and len(chart.tick_labels) > 4
