"""The run card's page: ``collect``'s dict as one self-contained HTML document.

``render`` is a pure function of the card: every string is HTML-escaped, the CSS is inline, the plots are
inline SVG drawn with matplotlib (stable ids, no date), and there are no scripts and no external URLs.

matplotlib is imported inside the functions, like everywhere else in the package.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterable

from recpipe.tracking import SLICE_SEPARATOR
from reporting.collect import QUARANTINE_ARTIFACT, ROC_ARTIFACT, VERDICT_ARTIFACT

_HIGHER_IS_BETTER = re.compile(r"(^|_)(auc|gauc|recall_at_\d+|hr_at_\d+|ndcg_at_\d+|coverage_at_\d+|qps_batch\d+)$")
_LOWER_IS_BETTER = re.compile(r"(logloss|mean_target_rank|^index_latency_.*|^index_build_seconds)$")


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1180px;
       color: #1d2330; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; border-bottom: 2px solid #d8dde6;
padding-bottom: 4px; margin-top: 36px; } h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { border: 1px solid #d8dde6; padding: 3px 8px;
text-align: left; vertical-align: top; } th { background: #f1f3f7; } td.num { text-align: right;
font-variant-numeric: tabular-nums; } .meta { color: #5b6475; }
td.pass, span.pass { color: #176b2c; } td.fail, span.fail, p.fail, ul.fail, pre.fail { color: #a4161a; }
pre { white-space: pre-wrap; font-size: 12px; margin: 4px 0; }
td.first, span.first { color: #7a5a00; } .missing { color: #7b8190; font-style: italic; }
tr.fail td { background: #fdecec; } tr.first td { background: #fff7e0; }
section.fail { border-left: 4px solid #a4161a; padding-left: 12px; }
section.first { border-left: 4px solid #d9a400; padding-left: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
border: 1px solid currentColor; } td.better { color: #176b2c; } td.worse { color: #a4161a; font-weight: 600; }
li.fail { color: #a4161a; font-weight: 600; } section.model { margin-top: 28px; } figure { display: inline-block;
margin: 4px 12px 4px 0; } figure svg { width: 340px; height: auto; } figure.wide svg { width: 700px; }
figcaption { font-size: 12px; color: #5b6475; } dl { display: grid; grid-template-columns: max-content auto;
gap: 2px 14px; } dt { color: #5b6475; } dd { margin: 0; } code { font-size: 12px; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (int, float)):
        return _e(value)
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if value.is_integer() and abs(value) >= 10:  # counts and sizes
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4f}"


def _delta(challenger: float | None, champion: float | None) -> float | None:
    if challenger is None or champion is None:
        return None
    return challenger - champion


def _fmt_count(value) -> str:
    """A row count: a whole number with thousands separators."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:,.0f}"
    return _fmt(value)


def _td(text: str, css: str = "") -> str:
    return f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>"


def _fmt_delta(delta: float | None) -> str:
    if delta is None:
        return "—"
    return f"{delta:+,.1f}" if abs(delta) >= 100 else f"{delta:+.4f}"


def _judge(name: str, challenger: float | None, champion: float | None) -> str:
    """CSS class of a change: ``better``, ``worse`` or "" (no champion, no change, or no known direction)."""
    if challenger is None or champion is None or challenger == champion:
        return ""
    base = name.split(SLICE_SEPARATOR, 1)[0]
    if base == "calibration":  # 1.0 is calibrated
        return "better" if abs(challenger - 1) < abs(champion - 1) else "worse"
    if _LOWER_IS_BETTER.search(base):
        return "better" if challenger < champion else "worse"
    if _HIGHER_IS_BETTER.search(base):
        return "better" if challenger > champion else "worse"
    return ""


def _table(head: Iterable[str], rows: Iterable[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table{cls}><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metric_table(rows: list[dict], empty: str) -> str:
    if not rows:
        return f'<p class="missing">{_e(empty)}</p>'
    body = [f"<tr><td><code>{_e(r['name'])}</code></td>{_compared(r['name'], r['challenger'], r['champion'])}</tr>" for r in rows]
    return _table(("metric", "challenger", "champion", "Δ"), body)


def _compared(metric: str, challenger, champion) -> str:
    """The challenger, champion and Δ cells of a metric's row, the Δ coloured by whether it is better."""
    judged = _judge(metric, challenger, champion)
    return (
        f'<td class="num">{_fmt(challenger)}</td><td class="num">{_fmt(champion)}</td>'
        f"{_td(_fmt_delta(_delta(challenger, champion)), f'num {judged}'.strip())}"
    )


def _gate_label(gate: dict) -> tuple[str, str]:
    """(text, CSS class) of a gate verdict."""
    if gate is None or gate.get("passed") is None:
        return "not gated", "missing"
    if not gate["passed"]:
        return "FAILED", "fail"
    if gate.get("first_run"):
        return "PASSED (first run)", "first"
    return "PASSED", "pass"


def _version(version) -> str:
    return "—" if version in (None, "") else f"v{_e(version)}"


def _champion_label(entry: dict) -> str:
    version = entry.get("champion_version")
    if version is None:
        return '<span class="missing">not recorded</span>'
    if version == "none":
        return '<span class="first">none (first run)</span>'
    return f"v{_e(version)}"


def _render_header(card: dict) -> str:
    airflow = card.get("airflow_run_id") or "any (newest runs of the day)"
    return (
        f"<header><h1>Nightly run card — ds={_e(card.get('ds'))}</h1>"
        f'<p class="meta">Airflow run <code>{_e(airflow)}</code> · generated {_e(card.get("generated_at"))} · '
        f"MLflow <code>{_e(card.get('tracking_uri'))}</code> experiment {_e(card.get('experiment_id'))}</p></header>"
    )


def _render_check(check: dict) -> str:
    result = check.get("result")
    suite = _e(check.get("suite"))
    if not isinstance(result, dict):
        return (
            f'<tr class="missing"><td>{suite}</td><td class="missing">not recorded</td><td></td><td></td><td></td>'
            f"<td><code>{_e(check.get('artifact'))}</code></td></tr>"
        )
    ok = bool(result.get("success"))
    failed = result.get("failed") or []
    items = "".join(
        f"<li><code>{_e(f.get('expectation'))}</code> {_e(json.dumps(f.get('kwargs'), default=str))}: observed "
        f"{_e(f.get('observed_value'))}, unexpected {_e(f.get('unexpected_count'))}</li>"
        for f in failed
        if isinstance(f, dict)
    )
    detail = f'<ul class="fail">{items}</ul>' if items else ""
    if result.get("error"):  # a failed check logged as its DataCheckFailed message (names the failures and the report)
        detail += f'<pre class="fail">{_e(result["error"])}</pre>'
    count = len(failed) if "failed" in result else "—"
    report = result.get("report")
    where = f"<code>{_e(report)}/report.html</code>" if report else '<span class="missing">no report</span>'
    return (
        f'<tr class="{"pass" if ok else "fail"}"><td>{suite}</td>'
        f'<td class="{"pass" if ok else "fail"}">{"PASSED" if ok else "FAILED"}</td>'
        f'<td class="num">{_fmt_count(result.get("rows"))}</td><td class="num">{_fmt_count(result.get("evaluated"))}</td>'
        f"<td>{count}{detail}</td><td>{where}</td></tr>"
    )


def _render_data(data: dict) -> str:
    out = ['<section id="data"><h2>Data checks</h2>']
    if not data or not data.get("run_id"):
        out.append('<p class="missing">not recorded: no data run (stage=data) found for this day</p>')
    else:
        out.append(f'<p class="meta">MLflow run <code>{_e(data["run_id"])}</code></p>')
    quarantine = (data or {}).get("quarantine")
    out.append("<h3>Quarantine</h3>")
    if isinstance(quarantine, dict):
        counts = quarantine.get("counts") or {}
        raw = quarantine.get("raw_rows")
        total = sum(v for v in counts.values() if isinstance(v, (int, float)))
        share = total / raw if isinstance(raw, (int, float)) and raw else None
        rows = [f'<tr><td>{_e(k)}</td><td class="num">{_fmt_count(v)}</td></tr>' for k, v in counts.items()]
        out.append(f"<p>{_fmt_count(raw)} raw rows, {_fmt_count(total)} quarantined or removed (share {_fmt(share)})</p>")
        out.append(_table(("reason", "rows"), rows))
    else:
        out.append(f'<p class="missing">not recorded (<code>{_e(QUARANTINE_ARTIFACT)}</code>)</p>')
    out.append("<h3>Expectation suites</h3>")
    checks = (data or {}).get("checks") or []
    out.append(_table(("suite", "result", "rows", "expectations", "failed", "report"), [_render_check(c) for c in checks]))
    out.append("</section>")
    return "".join(out)


def _headline(entry: dict) -> tuple[float | None, float | None]:
    name = entry.get("headline_metric")
    for row in (entry.get("metrics") or {}).get("headline", []):
        if row["name"] == name:
            return row["challenger"], row["champion"]
    return None, None


def _render_summary(card: dict) -> str:
    rows = []
    for entry in card.get("models", []):
        model = _e(entry["model"])
        link = f'<a href="#model-{model}">{model}</a>'
        if not entry.get("run_id"):
            rows.append(f'<tr class="missing"><td>{model}</td><td colspan="9" class="missing">no training run</td></tr>')
            continue
        label, css = _gate_label(entry.get("gate"))
        ours, theirs = _headline(entry)
        name = entry["headline_metric"]
        promoted = (entry.get("gate") or {}).get("promoted")
        rows.append(
            f'<tr class="{css}"><td>{link}</td><td>{_e(entry.get("kind"))}</td><td>{_version(entry.get("version"))}</td>'
            f'<td>{_champion_label(entry)}</td><td class="{css}">{_e(label)}</td><td>{_e(promoted or "—")}</td>'
            f'<td><code>{_e(name)}</code></td><td class="num">{_fmt(ours)}</td><td class="num">{_fmt(theirs)}</td>'
            f"{_td(_fmt_delta(_delta(ours, theirs)), f'num {_judge(name, ours, theirs)}'.strip())}</tr>"
        )
    head = ("model", "kind", "version", "champion", "gate", "promoted", "headline", "challenger", "champion value", "Δ")
    return f'<section id="summary"><h2>Summary</h2>{_table(head, rows, "summary")}</section>'


def _render_slices(slices: list[dict]) -> str:
    if not slices:
        return '<p class="missing">no slice metrics</p>'
    body = [
        f'<tr><td><code>{_e(s["metric"])}</code></td><td>{_e(s["slice"])}</td><td class="num">{_fmt_count(s["rows"])}</td>'
        f"{_compared(s['metric'], s['challenger'], s['champion'])}</tr>"
        for s in slices
    ]
    return _table(("metric", "slice", "rows", "challenger", "champion", "Δ"), body, "slices")


def _render_index(entry: dict) -> str:
    index = entry.get("index") or {}
    if not index.get("metrics") and index.get("params") is None and index.get("factory") is None and not index.get("error"):
        return ""
    out = [f"<h3>Index ({_version(entry.get('index_version'))})</h3>"]
    if index.get("error"):
        out.append(f'<p class="fail">index refused, not registered: {_e(index["error"])}</p>')
    factory = index.get("factory")
    out.append(f"<p>factory <code>{_e(factory)}</code></p>" if factory else '<p class="missing">factory not recorded</p>')
    params = index.get("params")
    if isinstance(params, dict):
        rows = [f"<tr><td><code>{_e(k)}</code></td><td>{_e(json.dumps(v))}</td></tr>" for k, v in params.items()]
        out.append(_table(("tuned search parameter", "value"), rows))
    elif params is not None:
        out.append(f"<p>search parameters <code>{_e(params)}</code></p>")
    out.append(_metric_table(index.get("metrics") or [], "no index metrics recorded"))
    return "".join(out)


def _render_gate(gate: dict) -> str:
    label, css = _gate_label(gate)
    out = [f'<h3>Gate <span class="badge {css}">{_e(label)}</span></h3>']
    if gate and gate.get("passed") is not None:
        promoted = gate.get("promoted")
        out.append(f"<p>promoted: {_e(promoted or 'not recorded')} · from <code>{_e(gate.get('source'))}</code></p>")
        failed = set(gate.get("failed") or ())
        items = "".join(
            (f'<li class="fail">{_e(r)}</li>' if r in failed else f"<li>{_e(r)}</li>") for r in gate.get("reasons") or []
        )
        out.append(f'<ul class="reasons">{items}</ul>' if items else '<p class="missing">no reasons recorded</p>')
    else:
        out.append(f'<p class="missing">not recorded: no <code>{_e(VERDICT_ARTIFACT)}</code> and no gate tags</p>')
    return "".join(out)


def _render_config_diff(entry: dict) -> str:
    diff = entry.get("config_diff") or {}
    version = entry.get("champion_version")
    title = f"Config diff vs champion v{_e(version)}" if version not in (None, "none") else "Config diff vs champion"
    out = [f"<h3>{title}</h3>"]
    if diff.get("note"):
        out.append(f'<p class="missing">{_e(diff["note"])}</p>')
        return "".join(out)
    out.append(f'<p class="meta">champion training run <code>{_e(diff.get("champion_run_id"))}</code></p>')
    rows = [
        f"<tr><td><code>{_e(r['key'])}</code></td><td>{_e('(absent)' if r['challenger'] is None else r['challenger'])}</td>"
        f"<td>{_e('(absent)' if r['champion'] is None else r['champion'])}</td></tr>"
        for r in diff.get("rows") or []
    ]
    if not rows:
        out.append("<p>same params as the champion's training run</p>")
    else:
        out.append(_table(("param", "challenger", "champion"), rows, "config-diff"))
    return "".join(out)


def _svg(fig) -> str:
    """The figure as an inline ``<svg>`` element (text drawn as paths, no date, stable ids)."""
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _plot_roc(roc: dict, auc: float | None) -> str:
    fig = _figure(4, 3.6)
    ax = fig.subplots()
    label = "challenger" if auc is None else f"challenger (AUC {auc:.4f})"
    ax.plot(roc["fpr"], roc["tpr"], color="#1f5fbf", lw=1.8, label=label)
    ax.plot([0, 1], [0, 1], color="#9aa1ad", lw=1, ls="--", label="random")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="false positive rate", ylabel="true positive rate", title="ROC (eval split)")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(fig)


def _plot_recall(curves: dict) -> str:
    fig = _figure(4, 3.6)
    ax = fig.subplots()
    styles = {
        "challenger": ("#1f5fbf", "-"),
        "champion": ("#e07b00", "-"),
        "popularity": ("#9aa1ad", ":"),
        "item-kNN": ("#8a5cc2", "-."),
        "oracle": ("#2a9d55", "--"),
    }
    for label in sorted(curves, key=lambda c: list(styles).index(c) if c in styles else len(styles)):
        points = curves[label]
        color, ls = styles.get(label, ("#444444", "-"))
        ax.plot(points["ks"], points["values"], marker="o", ms=3, color=color, ls=ls, label=label)
    ax.set(xlabel="K", ylabel="recall@K", title="recall@K (eval users)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return _svg(fig)


def _plot_training(curves: dict) -> str:
    from matplotlib.ticker import MaxNLocator

    n = len(curves)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(3.2 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    # Losses first: what a reviewer looks at; throughput and epoch times after.
    names = sorted(curves, key=lambda name: ("loss" not in name, name))
    for ax, name in zip(axes, names, strict=False):
        points = curves[name]
        ax.plot(points["steps"], points["values"], marker="o", ms=3, color="#1f5fbf")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    return _svg(fig)


def _render_plots(entry: dict) -> str:
    import matplotlib

    plots = entry.get("plots") or {}
    figures = []
    with matplotlib.rc_context({"svg.hashsalt": "recpipe-run-card", "svg.fonttype": "path"}):
        if plots.get("roc"):
            auc = next((r["challenger"] for r in (entry.get("metrics") or {}).get("headline", []) if r["name"] == "auc"), None)
            figures.append(f"<figure>{_plot_roc(plots['roc'], auc)}<figcaption>ROC, eval split</figcaption></figure>")
        elif entry.get("kind") == "ranking":
            figures.append(f'<p class="missing">ROC not recorded (<code>{_e(ROC_ARTIFACT)}</code>)</p>')
        if plots.get("recall_at_k"):
            figures.append(f"<figure>{_plot_recall(plots['recall_at_k'])}<figcaption>recall@K</figcaption></figure>")
        if plots.get("training"):
            caption = "training curves: " + ", ".join(plots["training"])
            wide = ' class="wide"' if len(plots["training"]) > 1 else ""
            figures.append(f"<figure{wide}>{_plot_training(plots['training'])}<figcaption>{_e(caption)}</figcaption></figure>")
        else:
            figures.append('<p class="missing">no per-epoch training metrics recorded</p>')
    return "<h3>Plots</h3>" + "".join(figures)


def _render_model(entry: dict) -> str:
    model = _e(entry["model"])
    if not entry.get("run_id"):
        return (
            f'<section class="model missing" id="model-{model}"><h2>{model}</h2>'
            '<p class="missing">no training run for this day</p></section>'
        )
    label, css = _gate_label(entry.get("gate"))
    facts = [
        ("MLflow run", f"<code>{_e(entry['run_id'])}</code> ({_e(entry.get('run_name'))}, {_e(entry.get('status'))})"),
        ("model version", _version(entry.get("version"))),
        ("champion", _champion_label(entry)),
    ]
    if entry.get("kind") == "recall":
        facts.insert(2, ("index version", _version(entry.get("index_version"))))
    if entry.get("champion_incompatible"):
        facts.append(("champion incompatible", f'<span class="fail">{_e(entry["champion_incompatible"])}</span>'))
    metrics = entry.get("metrics") or {}
    other, training = metrics.get("other") or [], metrics.get("training") or []
    return "".join(
        [
            f'<section class="model {css}" id="model-{model}">',
            f'<h2>{model} <span class="badge {css}">{_e(label)}</span></h2>',
            "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>",
            "<h3>Headline metrics vs champion</h3>",
            _metric_table(metrics.get("headline") or [], "no headline metrics recorded"),
            "<h3>Slices</h3>",
            _render_slices(entry.get("slices") or []),
            _render_index(entry),
            _render_gate(entry.get("gate") or {}),
            _render_config_diff(entry),
            _render_plots(entry),
            f"<details><summary>Other metrics ({len(other)})</summary>{_metric_table(other, 'none')}</details>",
            f"<details><summary>Training metrics ({len(training)})</summary>{_metric_table(training, 'none')}</details>",
            "</section>",
        ]
    )


def render(card: dict) -> str:
    """The run card as one self-contained HTML document; a pure function of ``card`` (``collect``'s dict).

    Every string from the card is HTML-escaped; plots are inline SVG drawn with matplotlib; there are no
    scripts and no external resources.
    """
    title = f"recpipe run card ds={card.get('ds')}"
    body = [
        _render_header(card),
        _render_data(card.get("data") or {}),
        _render_summary(card),
        *(_render_model(entry) for entry in card.get("models", [])),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
