"""The training chart, drawn with QPainter (QtCharts would add the ~440 MB Addons wheel).

Training loss per step (raw, faint, and an exponential moving average on top) and the
validation perplexity points. Perplexity is exp(validation loss), so the right axis is the left
axis read through exp(): a validation point sits at log(ppl), directly comparable with the
training loss next to it, and a run that starts at perplexity 30 000 does not flatten the rest.

Adding points only marks the chart dirty; a single-shot timer repaints at most ~8 times a
second, and a long run is drawn as one min/max pair per pixel column, so thousands of
steps cost no more than a few hundred.
"""

from __future__ import annotations

import math
from typing import Optional

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

REPAINT_INTERVAL_MS = 120
EMA_WEIGHT = 0.9  # smoothing of the loss line: weight of the previous average
LOSS_COLOR = QColor(60, 120, 216)
EVAL_COLOR = QColor(232, 120, 24)


def _tr(text: str) -> str:
    return QGuiApplication.translate("LossChart", text)


def nice_ticks(low: float, high: float, max_ticks: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, max_ticks - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def ppl_ticks(low_loss: float, high_loss: float) -> list[float]:
    """Perplexity values 1-2-5 per decade whose log lies in [low_loss, high_loss]; when the
    range is too narrow for two of those, exp() of the loss axis' own ticks."""
    lo, hi = math.exp(max(low_loss, -700)), math.exp(min(high_loss, 700))
    ticks: list[tuple[int, float]] = []
    decade = 10.0 ** math.floor(math.log10(lo))
    while decade <= hi:
        ticks += [(m, m * decade) for m in (1, 2, 5) if lo <= m * decade <= hi]
        decade *= 10
    if len(ticks) > 7:
        ticks = [(m, value) for m, value in ticks if m == 1]
    if len(ticks) < 2:
        return [math.exp(t) for t in nice_ticks(low_loss, high_loss, 4)]
    return [value for _, value in ticks]


def _format(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    if abs(value) >= 10 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:.1f}"


class LossChart(QWidget):
    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAccessibleName(_tr("Training loss chart"))
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.evals: dict[int, float] = {}  # step -> validation perplexity
        self.total_steps = 0
        self.paint_count = 0
        self.tick_labels: list[str] = []  # the axis labels the last paint drew (none while empty)
        self._repaint = QTimer(self, singleShot=True, interval=REPAINT_INTERVAL_MS)
        self._repaint.timeout.connect(self.update)

    # -- data -------------------------------------------------------------------------------
    @property
    def loss_count(self) -> int:
        return len(self.losses)

    @property
    def eval_count(self) -> int:
        return len(self.evals)

    def add_loss(self, step: int, loss: float) -> None:
        """A non-finite loss (a diverged step) is left out of the drawing."""
        if not _finite(loss):
            return
        if self.steps and step <= self.steps[-1]:  # a resumed run repeats steps: keep the newest
            self.truncate_after(step - 1)
        previous = self.smoothed[-1] if self.smoothed else loss
        self.steps.append(int(step))
        self.losses.append(float(loss))
        self.smoothed.append(EMA_WEIGHT * previous + (1 - EMA_WEIGHT) * float(loss))
        self._schedule()

    def add_eval(self, step: int, ppl: float) -> None:
        if _finite(ppl) and ppl > 0:
            self.evals[int(step)] = float(ppl)  # the same step twice replaces
            self._schedule()

    def set_total_steps(self, total: int) -> None:
        if total != self.total_steps:
            self.total_steps = max(0, int(total))
            self._schedule()

    def truncate_after(self, step: int) -> None:
        """Forget points after `step` (a run resumed from the checkpoint at `step`)."""
        keep = sum(1 for s in self.steps if s <= step)
        del self.steps[keep:], self.losses[keep:], self.smoothed[keep:]
        self.evals = {s: p for s, p in self.evals.items() if s <= step}
        self._schedule()

    def clear(self) -> None:
        self.steps, self.losses, self.smoothed, self.evals = [], [], [], {}
        self.total_steps = 0
        self._schedule()

    def _schedule(self) -> None:
        if not self._repaint.isActive():
            self._repaint.start()

    # -- drawing ----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.paint_count += 1
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        palette = self.palette()
        text_color = palette.color(QPalette.WindowText)
        grid_color = QColor(text_color)
        grid_color.setAlpha(40)
        painter.fillRect(self.rect(), palette.color(QPalette.Base))
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        plot = QRectF(8 + metrics.horizontalAdvance("00.00") + 6, line_h + 12,
                      0, 0)
        right_margin = metrics.horizontalAdvance("000k") + 14
        plot.setRight(self.width() - right_margin)
        plot.setBottom(self.height() - line_h - 10)
        if plot.width() < 20 or plot.height() < 20:
            painter.end()
            return

        eval_points = sorted(self.evals.items())
        ys = self.losses + [math.log(p) for _, p in eval_points]
        x_max = max([self.total_steps, 1] + self.steps[-1:] + [s for s, _ in eval_points])
        if ys:
            y_lo, y_hi = min(ys), max(ys)
            pad = (y_hi - y_lo) * 0.08 or 0.5
            y_lo, y_hi = max(0.0, y_lo - pad) if y_lo >= 0 else y_lo - pad, y_hi + pad
        else:
            y_lo, y_hi = 0.0, 1.0

        def to_x(step: float) -> float:
            return plot.left() + plot.width() * step / x_max

        def to_y(value: float) -> float:
            return plot.bottom() - plot.height() * (value - y_lo) / (y_hi - y_lo)

        # axes; the ticks and their labels only once there is something to read off them
        painter.setPen(text_color)
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        self.tick_labels = []
        if not ys:
            painter.drawText(plot, Qt.AlignCenter, _tr("The loss appears here once training starts."))
            self._legend(painter, plot, text_color)
            painter.end()
            return

        painter.setPen(QPen(grid_color, 1))
        for tick in nice_ticks(y_lo, y_hi, 5):
            y = to_y(tick)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text_color)
            painter.drawText(QRectF(0, y - line_h / 2, plot.left() - 6, line_h),
                             Qt.AlignRight | Qt.AlignVCenter, _format(tick))
            self.tick_labels.append(_format(tick))
            painter.setPen(QPen(grid_color, 1))
        painter.setPen(EVAL_COLOR.darker(120))
        for ppl in ppl_ticks(y_lo, y_hi):
            y = to_y(math.log(ppl))
            painter.drawText(QRectF(plot.right() + 6, y - line_h / 2, right_margin - 6, line_h),
                             Qt.AlignLeft | Qt.AlignVCenter, _format(ppl))
            self.tick_labels.append(_format(ppl))
        painter.setPen(text_color)
        for tick in nice_ticks(0, x_max, 6):
            x = to_x(tick)
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3))
            painter.drawText(QRectF(x - 40, plot.bottom() + 4, 80, line_h), Qt.AlignHCenter | Qt.AlignTop,
                             _format(tick))
            self.tick_labels.append(_format(tick))

        painter.setClipRect(plot.adjusted(-4, -4, 4, 4))
        faint = QColor(LOSS_COLOR)
        faint.setAlpha(80)
        self._polyline(painter, self.losses, faint, 1.0, to_x, to_y, int(plot.width()))
        self._polyline(painter, self.smoothed, LOSS_COLOR, 2.0, to_x, to_y, int(plot.width()))
        if len(self.steps) == 1:
            painter.setPen(Qt.NoPen)
            painter.setBrush(LOSS_COLOR)
            painter.drawEllipse(QPointF(to_x(self.steps[0]), to_y(self.losses[0])), 3, 3)
        painter.setPen(QPen(EVAL_COLOR, 2))
        if len(eval_points) > 1:
            path = QPainterPath(QPointF(to_x(eval_points[0][0]), to_y(math.log(eval_points[0][1]))))
            for step, ppl in eval_points[1:]:
                path.lineTo(to_x(step), to_y(math.log(ppl)))
            painter.setBrush(Qt.NoBrush)
            painter.drawPath(path)
        painter.setBrush(EVAL_COLOR)
        for step, ppl in eval_points:
            painter.drawEllipse(QPointF(to_x(step), to_y(math.log(ppl))), 4, 4)
        painter.setClipping(False)
        self._legend(painter, plot, text_color)
        painter.end()

    def _polyline(self, painter: QPainter, values: list[float], color: QColor, width: float,
                  to_x, to_y, columns: int) -> None:
        if len(values) < 2:
            return
        path = QPainterPath()
        if len(values) <= 2 * columns:
            path.moveTo(to_x(self.steps[0]), to_y(values[0]))
            for step, value in zip(self.steps[1:], values[1:]):
                path.lineTo(to_x(step), to_y(value))
        else:  # one (min, max) pair per pixel column keeps spikes and costs O(width) to draw
            buckets: dict[int, list[float]] = {}
            for step, value in zip(self.steps, values):
                column = int(to_x(step))
                low_high = buckets.get(column)
                if low_high is None:
                    buckets[column] = [value, value]
                else:
                    low_high[0] = min(low_high[0], value)
                    low_high[1] = max(low_high[1], value)
            for i, (column, (low, high)) in enumerate(sorted(buckets.items())):
                (path.moveTo if i == 0 else path.lineTo)(QPointF(column, to_y(high)))
                path.lineTo(QPointF(column, to_y(low)))
        painter.setPen(QPen(color, width))
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(path)

    def _legend(self, painter: QPainter, plot: QRectF, text_color: QColor) -> None:
        metrics = painter.fontMetrics()
        entries = ((LOSS_COLOR, _tr("Training loss")), (EVAL_COLOR, _tr("Validation perplexity (right)")))
        x = plot.left()
        y = 4
        for color, label in entries:
            painter.setPen(QPen(color, 3))
            painter.drawLine(QPointF(x, y + metrics.height() / 2), QPointF(x + 16, y + metrics.height() / 2))
            painter.setPen(text_color)
            painter.drawText(QPointF(x + 20, y + metrics.ascent()), label)
            x += 20 + metrics.horizontalAdvance(label) + 16


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
