"""Charts: a Vega-Lite spec built with Altair and drawn to SVG on the server by vl-convert, inlined in
the page (no JavaScript, nothing loaded from the internet). Every chart has axis titles with units
and, as its subtitle, the snapshot (or runs) it shows."""

from __future__ import annotations

from functools import cached_property

from markupsafe import Markup

WIDTH = 720
FONT = "Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"


class Chart:
    """A chart on a page: drawn (vl-convert) only when the page shows it, never for its CSV."""

    def __init__(self, chart_id: str, spec) -> None:
        self.id, self._spec = chart_id, spec

    @cached_property
    def svg(self) -> Markup:
        return _svg(self._spec)


def _svg(chart) -> Markup:
    import vl_convert  # heavy import (a bundled JavaScript engine): only when a page draws a chart

    spec = chart.configure(font=FONT).configure_view(stroke=None).to_dict()
    svg = vl_convert.vegalite_to_svg(spec)
    return Markup(svg)  # noqa: S704 — vl-convert's own SVG; data values are escaped by Vega's renderer


def _base(values: list[dict], title: str, subtitle: str):
    import altair as alt  # heavy import (pandas, jsonschema): only when a page draws a chart

    return alt, alt.Chart(alt.Data(values=values), width=WIDTH,
                          title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))


def empty(chart_id: str, title: str, subtitle: str, message: str) -> Chart:
    alt, base = _base([{"m": message}], title, subtitle)
    return Chart(chart_id, base.mark_text(size=14).encode(text="m:N").properties(height=60))


def bar(chart_id: str, values: list[dict], *, x: str, y: str, x_title: str, y_title: str, title: str,
        subtitle: str, color: str | None = None, color_title: str = "", label: str | None = None,
        ranked: bool = False, grouped: bool = False) -> Chart:
    """Horizontal bars of ``x`` (a number) per ``y`` (a name); ``label`` (a text column) is drawn at
    the bar's end — how a suppressed cell shows "<5" with no bar (its value is left out). With
    ``color``, the bars stack (counts that add up), or with ``grouped`` stand side by side (shares,
    which do not add up across the colour)."""
    if not values:
        return empty(chart_id, title, subtitle, "—")
    alt, base = _base(values, title, subtitle)
    sort = None  # the order of `values` (a ranked chart comes ranked; a nominal axis would sort by name)
    enc = {"x": alt.X(f"{x}:Q", title=x_title, stack="zero" if color and not grouped else None),
           "y": alt.Y(f"{y}:N", title=y_title, sort=sort)}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color_title)
        if grouped:
            enc["yOffset"] = alt.YOffset(f"{color}:N")
    layer = base.mark_bar().encode(**enc)
    if label:
        # drawn at the bar's end, or at 0 where the value is left out (a suppressed cell)
        text = base.mark_text(align="left", dx=3).transform_calculate(at=f"datum['{x}'] || 0").encode(
            x=alt.X("at:Q"), y=alt.Y(f"{y}:N", sort=sort), text=f"{label}:N")
        layer = alt.layer(layer, text)
    rows = len({v[y] for v in values}) * (len({v[color] for v in values}) if grouped and color else 1)
    return Chart(chart_id, layer.properties(height=max(60, (10 if grouped else 18) * rows)))


def line(chart_id: str, values: list[dict], *, x: str, y: str, x_title: str, y_title: str, title: str,
         subtitle: str, color: str, color_title: str, percent: bool = False, months: bool = False,
         label: str | None = None, dash: str | None = None, dash_title: str = "") -> Chart:
    """Lines of ``y`` over ``x`` per ``color``: ``x`` is a month ("2024-03", on a time axis) with
    ``months``, else an ordered name. Where ``y`` is left out (a suppressed cell) its ``label`` ("<5")
    is written at 0 instead of a point. With ``dash``, a line is one ``color`` x ``dash`` pair (e.g.
    province by colour, entity by dash: twelve lines stay apart with four colours and three dashes)."""
    if not values:
        return empty(chart_id, title, subtitle, "—")
    alt, base = _base(values, title, subtitle)
    y_axis = alt.Axis(format="%") if percent else alt.Axis()
    x_enc = alt.X(f"{x}:T", timeUnit="utcyearmonth", title=x_title, axis=alt.Axis(format="%Y-%m")) if months \
        else alt.X(f"{x}:O", title=x_title)
    chart = base.mark_line(point=True).encode(
        x=x_enc,
        y=alt.Y(f"{y}:Q", title=y_title, axis=y_axis),
        color=alt.Color(f"{color}:N", title=color_title),
        **({"strokeDash": alt.StrokeDash(f"{dash}:N", title=dash_title)} if dash else {}))
    if label:
        hidden = base.mark_text(dy=-6).transform_filter(f"datum['{y}'] == null").encode(
            x=x_enc, y=alt.datum(0), text=f"{label}:N",
            color=alt.Color(f"{color}:N"))
        chart = alt.layer(chart, hidden)
    return Chart(chart_id, chart.properties(height=220))
