"""``modelloop endpoint …`` and ``modelloop serve``: real-time endpoints."""

from __future__ import annotations

import functools

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.common.status import RolloutStatus


def _variants(items: tuple[str, ...]) -> list[dict]:
    """``NAME=MODEL[:WEIGHT][:shadow]`` options as variant dicts."""
    out = []
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep or not rest:
            raise click.BadParameter(f"{item!r}: use NAME=MODEL[:WEIGHT][:shadow]",
                                     param_hint="--variant")
        parts = rest.split(":")
        v = {"name": name, "model": parts[0]}
        for p in parts[1:]:
            if p in ("shadow", "primary"):
                v["role"] = p
            else:
                try:
                    v["weight"] = float(p)
                except ValueError:
                    raise click.BadParameter(f"{item!r}: {p!r} is not a weight",
                                             param_hint="--variant") from None
        out.append(v)
    return out


def _capture(capture: str | None, sampling: float | None) -> dict | None:
    if capture is None and sampling is None:
        return None
    out: dict = {}
    if capture is not None:
        out["enabled"] = capture != "off"
        if capture != "off":
            out["mode"] = capture
    if sampling is not None:
        out["sampling"] = sampling
    return out


capture_options = [
    click.option("--capture", type=click.Choice(["off", "input", "output", "both"]),
                 help="Data capture of requests/responses."),
    click.option("--capture-sampling", "sampling", type=float, metavar="PCT",
                 help="Share of requests captured, in percent."),
    click.option("--timeout", type=float, help="Per-request timeout in seconds (default 60)."),
    click.option("--max-payload-mb", type=float, help="Largest request body (default 6 MB)."),
    click.option("--max-request-rows", type=int,
                 help="Most rows one request may carry (default 100,000); more is a 413."),
    click.option("--max-batch-rows", type=int, help="Micro-batching: rows per predict call."),
    click.option("--max-wait-ms", type=float, help="Micro-batching: extra wait to gather."),
    click.option("--auth", type=click.Choice(["token", "feedback", "none"]),
                 help="Routes that need an API token: token (all), feedback (feedback and "
                      "events; the default), none (a local demo)."),
]


def _with(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


def _options(given: dict) -> dict | None:
    """The endpoint options among a command's parameters (those given), by their spec names."""
    names = {"timeout": "timeout_seconds", "max_payload_mb": None, "max_request_rows": None,
             "max_batch_rows": None, "max_wait_ms": None, "auth": None}
    out = {names[k] or k: v for k, v in given.items() if k in names and v is not None}
    return out or None


force_options = [
    click.option("--force", is_flag=True,
                 help="Serve model versions that are not approved (recorded, with a warning)."),
    click.option("--reason", help="Why --force (kept in the endpoint's record)."),
]


def _warned(call):
    """Run ``call()``; the SDK's warnings (e.g. a forced unapproved version) become one
    ``warning:`` line each on stderr."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    for w in caught:
        if issubclass(w.category, UserWarning):
            render.note(f"warning: {w.message}")
    return result


def _show_endpoint(e: dict) -> None:
    spec = e["spec"]
    render.out.print(f"[bold]{e['name']}[/bold]  revision {e['revision']}, {e['status']}"
                     + (f", follows {spec['follow']}" if spec.get("follow") else ""))
    render.table("Variants", ["variant", "model", "role", "weight", "sample %"],
                 [[v["name"], v["model"], v["role"], v["weight"], v["sample"]]
                  for v in spec["variants"]])
    cap = spec["capture"]
    render.out.print(f"capture: {'off' if not cap['enabled'] else cap['mode']}"
                     + (f", {cap['sampling']:g}% sampled" if cap["enabled"] else ""))
    auth = spec["options"].get("auth", "feedback")
    render.out.print("tokens: " + {"token": "every route (inference: viewer)", "none": "none",
                                   "feedback": "feedback and events (operator)"}[auth])


def _online_features(c: Context, online, features, schema, target) -> list | None:
    """--features or --schema/--target as the online variant's features."""
    if online is None:
        if features or schema or target:
            raise click.UsageError("--features, --schema and --target go with --online")
        return None
    if features and schema:
        raise click.UsageError("give --features or --schema, not both")
    if schema:
        if not target:
            raise click.UsageError("--schema needs --target (the label column)")
        return c.ws.datasets.online_features(schema, target)
    if not features:
        return None  # the SDK says what is missing
    out = []
    for item in features.split(","):
        fname, _, kind = item.strip().partition(":")
        if kind not in ("", "number", "category"):
            raise click.BadParameter(f"{item!r}: a feature is NAME, NAME:number or "
                                     "NAME:category", param_hint="--features")
        out.append({"name": fname, "type": kind or "number"})
    return out


@click.group()
def endpoint() -> None:
    """Real-time endpoints: variants, rollouts, capture, statistics."""


@endpoint.command()
@click.argument("name")
@click.option("--model", help="Model version to serve (NAME@3, NAME@champion).")
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL[:WEIGHT][:shadow]",
              help="A variant (repeatable), instead of --model.")
@click.option("--follow", metavar="MODEL@ALIAS",
              help="Deploy every version this alias moves to (deploy-on-approval).")
@click.option("--follow-strategy", type=click.Choice(["all-at-once", "blue-green", "canary",
                                                      "linear"]), default="all-at-once")
@click.option("--online", metavar="MODEL",
              help="An online endpoint: a River model (e.g. 'preprocessing.StandardScaler|"
                   "linear_model.LogisticRegression') learned from labelled events.")
@click.option("--features", metavar="NAME[:category],...",
              help="--online: the features events and requests carry (number unless :category).")
@click.option("--schema", metavar="DATASET@V",
              help="--online: take the features from this dataset version (all but --target).")
@click.option("--target", help="--online --schema: the dataset's label column.")
@click.option("--label", "label_type", type=click.Choice(["class", "number"]),
              default="class", show_default=True,
              help="--online: the labels' type (class: a classifier; number: a regressor).")
@_with(capture_options)
@_with(force_options)
@json_option
@pass_ctx
def create(c: Context, name, model, variants, follow, follow_strategy, online, features, schema,
           target, label_type, capture, sampling, force, reason, as_json, **options) -> None:
    """Create endpoint NAME serving --model (or --variant …), or learning --online.

    --model NAME@ALIAS (e.g. churn@champion) follows the alias: each version it moves to is
    deployed (with --follow-strategy). Versions that are not approved need --force.
    --online MODEL with --features (or --schema DATASET@V --target COL) makes an endpoint whose
    model learns from POST /endpoints/NAME/events ('modelloop learn NAME' runs its learner).
    """
    feats = _online_features(c, online, features, schema, target)
    record = _warned(lambda: c.ws.endpoints.create(
        name, model, variants=_variants(variants) or None, capture=_capture(capture, sampling),
        options=_options(options), follow=follow, online=online, features=feats, label=label_type,
        deploy={"strategy": follow_strategy}, force=force, reason=reason))
    if as_json:
        render.print_json(record)
        return
    spec = record["spec"]
    serving = ", ".join(f"{v['name']}={v['model']}" for v in spec["variants"])
    render.out.print(f"Created endpoint [bold]{name}[/bold] serving {serving}"
                     + (f", following {spec['follow']} (each version it moves to is deployed)"
                        if spec.get("follow") else " (pinned)")
                     + "; servers pick it up within a second ('modelloop serve' to start one).")


@endpoint.command()
@click.argument("name")
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL[:WEIGHT][:shadow]",
              help="Replace the variants with these (repeatable).")
@click.option("--weight", "weights", multiple=True, metavar="VARIANT=WEIGHT",
              help="Change one variant's weight (repeatable).")
@click.option("--follow", metavar="MODEL@ALIAS", help="Follow this alias ('' to stop).")
@_with(capture_options)
@_with(force_options)
@json_option
@pass_ctx
def update(c: Context, name, variants, weights, follow, capture, sampling, force, reason,
           as_json, **options) -> None:
    """Change endpoint NAME: variants, weights, capture or options."""
    w = {}
    for item in weights:
        vname, _, value = item.partition("=")
        try:
            w[vname] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use VARIANT=WEIGHT",
                                     param_hint="--weight") from None
    record = _warned(lambda: c.ws.endpoints.update(
        name, variants=_variants(variants) or None, weights=w or None,
        capture=_capture(capture, sampling), options=_options(options),
        follow=False if follow is None else follow, force=force, reason=reason))
    if as_json:
        render.print_json(record)
    else:
        _show_endpoint(record)


@endpoint.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def delete(c: Context, name: str, yes: bool) -> None:
    """Delete endpoint NAME (its captures stay)."""
    if not yes:
        click.confirm(f"Delete endpoint {name}?", abort=True)
    c.ws.endpoints.delete(name)
    render.out.print(f"Deleted endpoint [bold]{name}[/bold]")


@endpoint.command("list")
@json_option
@pass_ctx
def list_(c: Context, as_json: bool) -> None:
    """List endpoints."""
    rows = c.ws.endpoints.list()
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.note("No endpoints yet. Create one with: modelloop endpoint create NAME --model M@V")
    else:
        render.table("Endpoints", ["name", "status", "revision", "variants", "updated"],
                     [[e["name"], e["status"], e["revision"],
                       ", ".join(f"{v['name']}={v['model']} ({v['role']} {v['weight']:g})"
                                 for v in e["spec"]["variants"]), e["updated_at"]]
                      for e in rows])


@endpoint.command()
@click.argument("name")
@json_option
@pass_ctx
def show(c: Context, name: str, as_json: bool) -> None:
    """Everything about endpoint NAME: variants, capture, rollouts."""
    info = c.ws.endpoints.describe(name)
    if as_json:
        render.print_json(info)
        return
    _show_endpoint(info)
    if info["rollouts"]:
        render.table("Rollouts", ["id", "model", "strategy", "status", "reason", "started"],
                     [[r["id"], r["model"], r["strategy"], r["status"], r.get("reason") or "",
                       r["created_at"]] for r in info["rollouts"]])


def _describe_rollout(r: dict) -> str:
    st = r["state"]
    step = st.get("steps", [[100, 0]])[min(st.get("step", 0), len(st.get("steps", [1])) - 1)]
    text = f"rollout {r['id']} of {r['model']} ({r['strategy']}): {r['status']}"
    if r["status"] == RolloutStatus.RUNNING:
        text += f", {step[0]:g}% of traffic, baking {step[1]:g} s"
        if st.get("waiting") == st.get("step"):
            seen = (st.get("step_observed") or {}).get("invocations", 0)
            text += (f", waiting for traffic ({seen} of "
                     f"{st['checks'].get('min_requests')} requests)")
    if r.get("reason"):
        text += f" — {r['reason']}"
    return text


@endpoint.command()
@click.argument("name")
@click.option("--model", required=True, help="Model version to roll out (NAME@3, NAME@champion).")
@click.option("--strategy", type=click.Choice(["all-at-once", "blue-green", "canary", "linear"]),
              default="all-at-once", show_default=True)
@click.option("--bake", "bake_seconds", type=float, default=60.0, show_default=True,
              help="Seconds to watch each step before moving on.")
@click.option("--canary-percent", type=float, default=10.0, show_default=True)
@click.option("--step-percent", type=float, default=25.0, show_default=True,
              help="Linear: traffic moved per step.")
@click.option("--max-error-rate", type=float, default=0.05, show_default=True,
              help="Roll back when the new version's error rate exceeds this.")
@click.option("--max-p99-ms", type=float, help="Roll back when its p99 model latency exceeds this.")
@click.option("--min-requests", type=int, default=5, show_default=True,
              help="Requests each bake must see to be judged.")
@click.option("--on-low-traffic", type=click.Choice(["wait", "fail", "proceed"]), default="wait",
              show_default=True, help="A bake that saw fewer than --min-requests: wait for them "
              "(up to --max-wait, then roll back), roll back, or proceed unjudged.")
@click.option("--max-wait", type=float, default=600.0, show_default=True, metavar="SECONDS",
              help="With --on-low-traffic wait: how long a step may wait for its requests.")
@click.option("--alarm", "alarms", multiple=True, metavar="NAME",
              help="Roll back when this alarm is in ALARM during a bake (repeatable).")
@click.option("--no-wait", is_flag=True, help="Start the rollout and return (servers drive it).")
@_with(force_options)
@json_option
@pass_ctx
def deploy(c: Context, name, model, strategy, bake_seconds, canary_percent, step_percent,
           max_error_rate, max_p99_ms, min_requests, on_low_traffic, max_wait, alarms, no_wait,
           force, reason, as_json) -> None:
    """Roll --model out on endpoint NAME (created if missing) with a strategy.

    Waits (driving the rollout) until it completes or rolls back automatically; exits 1 when it
    was rolled back. A bake with fewer than --min-requests requests is never taken as healthy
    (see --on-low-traffic). Versions that are not approved need --force.
    """
    def progress(r):
        if not as_json:
            render.out.print(_describe_rollout(r))

    r = _warned(lambda: c.ws.endpoints.deploy(
        name, model, strategy=strategy, bake_seconds=bake_seconds,
        canary_percent=canary_percent, step_percent=step_percent,
        max_error_rate=max_error_rate, max_p99_ms=max_p99_ms, min_requests=min_requests,
        on_low_traffic=on_low_traffic, max_wait=max_wait, alarms=list(alarms),
        wait=not no_wait, progress=progress, force=force, reason=reason))
    if as_json:
        render.print_json(r)
    else:
        render.out.print(_describe_rollout(r))
    if r["status"] == RolloutStatus.ROLLED_BACK:
        raise SystemExit(1)


@endpoint.command()
@click.argument("name")
@click.option("--reason", help="Why (kept with the rollout).")
@json_option
@pass_ctx
def rollback(c: Context, name: str, reason: str | None, as_json: bool) -> None:
    """Stop the running rollout of NAME, or undo its last one."""
    r = c.ws.endpoints.rollback(name, reason=reason)
    if as_json:
        render.print_json(r)
    else:
        render.out.print(f"Rolled back rollout {r['id']} ({r['model']}) on [bold]{name}[/bold]")


@endpoint.command()
@click.argument("name", required=False)
@json_option
@pass_ctx
def stats(c: Context, name: str | None, as_json: bool) -> None:
    """Invocations, errors and latency per endpoint and variant (all servers)."""
    rows = c.ws.endpoints.stats(name)
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.note("No traffic recorded yet.")
        return

    def ms(v):
        return "-" if v is None else f"≤{v:g}"

    render.table("Endpoint statistics",
                 ["endpoint", "variant", "invocations", "4xx", "5xx", "model p50 ms",
                  "model p99 ms", "overhead p50 ms", "overhead p99 ms"],
                 [[r["endpoint"], r["variant"], r["invocations"], r["errors_4xx"],
                   r["errors_5xx"], ms(r["model_p50_ms"]), ms(r["model_p99_ms"]),
                   ms(r["overhead_p50_ms"]), ms(r["overhead_p99_ms"])] for r in rows])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; other than loopback needs --insecure.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback --host although endpoints without --auth token "
                   "answer predictions to anyone who reaches the port.")
@click.option("--endpoint", "default_endpoint",
              help="The endpoint POST /invocations serves (default: the only one).")
@click.option("--workers", type=int, help="Run this many worker processes (fixed).")
@click.option("--max-workers", type=int,
              help="Autoscale: up to this many worker processes, on --target-inflight.")
@click.option("--min-workers", type=int, default=1, show_default=True,
              help="Autoscale: never fewer worker processes than this.")
@click.option("--target-inflight", type=float, metavar="K",
              help="Autoscale: requests in flight per worker to aim at (default 4).")
@click.option("--scale-out-cooldown", type=float, metavar="SECONDS",
              help="Autoscale: wait after a change before adding workers (default 10).")
@click.option("--scale-in-cooldown", type=float, metavar="SECONDS",
              help="Autoscale: wait after a change before removing a worker (default 60).")
@click.option("--metrics-interval", type=float, default=10.0,
              show_default=True, metavar="SECONDS",
              help="How often each endpoint/variant's invocations, 4xx/5xx rates and latency "
                   "percentiles are written as metric series (for alarms; 0.1 or more).")
@click.option("--log-level", default="warning", show_default=True)
@click.option("--no-learn", is_flag=True,
              help="Start no learner for the online endpoints ('modelloop learn NAME' does).")
@pass_ctx
def serve(c: Context, host: str, port: int, insecure: bool, default_endpoint: str | None,
          workers, max_workers, min_workers, target_inflight, scale_out_cooldown,
          scale_in_cooldown, metrics_interval: float, log_level: str, no_learn: bool) -> None:
    """Serve every endpoint of the workspace over HTTP (SageMaker, MLflow, OIP v2 protocols).

    One process by default. --workers N runs N processes on one socket; --max-workers N runs
    --min-workers..N, adding workers when requests in flight per worker exceed
    --target-inflight and removing them (drained, no request failed) when load falls.
    GET /workers shows them. Listens on loopback only unless --insecure: only endpoints made
    with --auth token need a token to predict. Each online endpoint gets a learner process ('modelloop learn NAME')
    unless --no-learn.
    """
    from modelloop.serving.app import run
    from modelloop.serving.spec import check_serve
    from modelloop.serving.workers import bind

    lo, hi = _worker_range(workers, min_workers, max_workers, target_inflight,
                           scale_out_cooldown, scale_in_cooldown)
    opts = check_serve(host=host, port=port, insecure=insecure, min_workers=lo, max_workers=hi,
                       target_inflight=target_inflight, scale_out_cooldown=scale_out_cooldown,
                       scale_in_cooldown=scale_in_cooldown, metrics_seconds=metrics_interval)
    ws = c.local_ws
    ws.store  # noqa: B018 - open (and migrate) before announcing
    sock = bind(host, port)  # a busy port fails here, before anything is announced
    if insecure and not _loopback(host):
        render.note(f"warning: serving on {host} without authentication (--insecure) of "
                    "endpoints without --auth token: any client reaching the port can predict")
    how = "" if hi == 1 else f" with {lo} workers" if lo == hi else f" with {lo}-{hi} workers"
    bound = sock.getsockname()[1]
    click.echo(f"modelloop: serving on http://{host}:{bound}{how} (Ctrl-C to stop)", err=True)
    if hi == 1:  # this process serves, on the workspace it has open
        def app_factory(board=None):
            return ws.endpoints.server_app(default_endpoint=default_endpoint,
                                           metrics_seconds=opts.metrics_seconds)
    else:  # each worker process opens the workspace and builds its app
        from modelloop.cli.serve_worker import server_app

        app_factory = functools.partial(server_app, str(ws.root), default_endpoint,
                                        opts.metrics_seconds)
    learners = None
    if not no_learn:
        from modelloop.cli.learn import LearnerChildren

        learners = LearnerChildren(ws)
        learners.start()
    try:
        run(app_factory, host=host, port=bound, log_level=log_level, min_workers=lo,
            max_workers=hi, target_inflight=target_inflight,
            scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown,
            sock=sock, insecure=insecure)
    finally:
        if learners is not None:
            learners.stop()


def _loopback(host: str) -> bool:
    from modelloop.serving.spec import is_loopback

    return is_loopback(host)


def _worker_range(workers, min_workers, max_workers, target, out_cooldown, in_cooldown):
    """(min, max) worker processes from the flags; usage errors name the flag to fix."""
    if workers is not None and max_workers is not None:
        raise click.UsageError("give --workers N (fixed) or --max-workers N (autoscaled), "
                               "not both")
    if workers is not None:
        if workers < 1:
            raise click.BadParameter("must be 1 or more", param_hint="--workers")
        return workers, workers
    if max_workers is None:
        if target is not None or out_cooldown is not None or in_cooldown is not None:
            raise click.UsageError("--target-inflight and the cooldowns need --max-workers N")
        return 1, 1
    if min_workers < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--min-workers")
    if max_workers < min_workers:
        raise click.BadParameter(f"must be at least --min-workers ({min_workers})",
                                 param_hint="--max-workers")
    if target is not None and target <= 0:
        raise click.BadParameter("must be above 0 (requests in flight per worker)",
                                 param_hint="--target-inflight")
    for value, flag in ((out_cooldown, "--scale-out-cooldown"),
                        (in_cooldown, "--scale-in-cooldown")):
        if value is not None and value < 0:
            raise click.BadParameter("must be 0 or more seconds", param_hint=flag)
    return min_workers, max_workers
