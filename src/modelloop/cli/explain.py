"""``modelloop bias``: SageMaker Clarify's bias metrics of a dataset version and a model."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, pass_ctx


@click.command()
@click.argument("dataset_ref", metavar="DATASET@VERSION")
@click.option("--facet", required=True, metavar="COLUMN[=V1,V2|>T]",
              help="The sensitive group: sex=female, race=black,hispanic, 'age>40' (quoted); a column alone "
                   "compares each of its values with the rest.")
@click.option("--label", required=True, metavar="COLUMN[=V1,V2|>T]",
              help="The positive outcome: approved=1, score>0.5; a column alone must be binary.")
@click.option("--model", "model_ref", metavar="MODEL@VERSION",
              help="Add post-training metrics on this model's predictions.")
@click.option("--predicted", metavar="COLUMN",
              help="Add post-training metrics on predictions already in the data.")
@click.option("--group", metavar="COLUMN", help="The column CDDL and CDDPL condition on.")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Only these metrics (repeat; default: all), e.g. --metric DI --metric DPPL.")
@click.option("--html", "html_out", metavar="FILE", help="Also write the report as HTML here.")
@click.option("--json", "as_json", is_flag=True,
              help="Print Clarify's analysis JSON (pre_training_bias_metrics, …) for scripts.")
@pass_ctx
def bias(c: Context, dataset_ref: str, facet: str, label: str, model_ref: str | None,
         predicted: str | None, group: str | None, metrics: tuple[str, ...],
         html_out: str | None, as_json: bool) -> None:  # fmt: skip
    """Bias metrics of DATASET@VERSION for a facet and a label, as SageMaker Clarify defines them:
    pre-training (CI, DPL, KL, JS, LP, TVD, KS, CDDL) and, with --model or --predicted,
    post-training (DPPL, DI, DCA, DCR, RD, SD, DAR, DRR, AD, CDDPL, TE, FT, GE)."""
    report = c.ws.explain.bias(dataset_ref, facet, label, model=model_ref, predicted=predicted,
                               group=group, methods=list(metrics) or None)  # fmt: skip
    if html_out:
        from modelloop.explain.report import render_html

        render.write_output(html_out, render_html(report))
    if as_json:
        return render.print_json(report.to_clarify())
    from modelloop.explain.bias import jsonable

    for stage in ("pre_training", "post_training"):
        results = getattr(report, stage)
        if not results:
            continue
        names = sorted({n for g in results for n in (*g.values, *g.errors)})
        render.table(f"{stage.replace('_', '-')} bias: {report.facet} vs the rest, label "
                     f"{report.label} positive when {report.label_value_or_threshold}",
                     ["metric", *[f"{report.facet}={g.value_or_threshold} ({g.n_group:,})"
                                  for g in results]],
                     [[n, *[jsonable(g.values[n]) if n in g.values else g.errors.get(n)
                            for g in results]] for n in names])  # fmt: skip
    if html_out:
        render.note(f"HTML report written to {html_out}")


@click.command("explain")
@click.argument("model_ref", metavar="MODEL@VERSION")
@click.argument("dataset_ref", metavar="DATASET@VERSION")
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Explain the first N rows (Kernel SHAP's cost grows with it).")
@click.option("--method", type=click.Choice(["auto", "tree", "kernel"]), default="auto",
              show_default=True, help="TreeSHAP for tree models, Kernel SHAP for any model.")
@click.option("--nsamples", type=click.IntRange(min=1), default=200, show_default=True,
              help="Kernel SHAP: model evaluations per row.")
@click.option("--centroids", type=click.IntRange(min=1), default=20, show_default=True,
              help="Kernel SHAP: k-means centroids of the background rows (its baseline).")
@click.option("--background", metavar="DATASET@VERSION",
              help="Kernel SHAP's background rows (default: DATASET@VERSION).")
@click.option("--local-out", metavar="FILE.csv", help="Write each row's attributions here.")
@click.option("--html", "html_out", metavar="FILE", help="Write the report (bar, beeswarm, waterfalls).")
@click.option("--json", "as_json", is_flag=True,
              help="Print Clarify's explanations JSON (global SHAP values, expected value) and the cost.")
@pass_ctx
def explain(c: Context, model_ref: str, dataset_ref: str, rows: int, method: str, nsamples: int,
            centroids: int, background: str | None, local_out: str | None,
            html_out: str | None, as_json: bool) -> None:  # fmt: skip
    """SHAP attributions of MODEL@VERSION on DATASET@VERSION, per column of the data: global
    (mean absolute SHAP per column) and per row."""
    result = c.ws.explain.attributions(model_ref, dataset_ref, rows=rows, method=method,
                                       nsamples=nsamples, background=background,
                                       centroids=centroids)  # fmt: skip
    if local_out:
        render.write_output(local_out, result.local().to_csv(index=True))
    if html_out:
        from modelloop.explain.report import render_attributions_html

        render.write_output(html_out, render_attributions_html(result))
    if as_json:
        return render.print_json(result.to_clarify())
    render.table(f"{result.method} SHAP of {model_ref}'s {result.output} on {dataset_ref} "
                 f"(expected value {result.expected_value:.6g})", ["column", "mean |SHAP|"],
                 [[k, v] for k, v in result.global_importance.items()])  # fmt: skip
    render.note("cost: " + ", ".join(f"{k} {v}" for k, v in result.cost.items()))
