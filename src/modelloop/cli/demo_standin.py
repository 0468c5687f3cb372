"""``loop apply`` of the demo's spec: ``ws.loops.apply`` when the workspace has it, else a
stand-in that makes the same objects with the services that exist (alarms, monitors once the
first champion serves, the endpoint's capture, the triggers through ``ws.triggers``), named as
apply names them (``<loop>-<monitor>``). The stand-in goes away once apply is in every workspace.
"""

from __future__ import annotations

from pathlib import Path

#: The loop spec's sections the loop runner validates without apply (monitors' alarms, the
#: deploy section's capture and the triggers are apply's).
RUN_SECTIONS = ("name", "data", "target", "split", "quality", "train", "tune", "evaluate",
                "register")
DEPLOY_KEYS = ("endpoint", "strategy", "options")
KIND_METRIC = {"data_drift": "drift_share", "data_quality": "violations"}


def runnable(spec: dict) -> dict:
    """The part of the demo's spec ``ws.loops.run`` validates without apply."""
    out = {k: v for k, v in spec.items() if k in RUN_SECTIONS}
    if spec.get("deploy"):
        out["deploy"] = {k: v for k, v in spec["deploy"].items() if k in DEPLOY_KEYS}
    return out


def apply(ws, spec_path: Path, spec: dict) -> list[str]:
    """Apply the spec; one line per change (``created trigger incoming``, ...)."""
    real = getattr(ws.loops, "apply", None)
    if real is not None:
        return [f"{c['action']} {c['kind']} {c['name']}" + (f": {'; '.join(c['diff'])}"
                                                           if c.get("diff") else "")
                for c in real(str(spec_path)) if c["action"] != "unchanged"]
    return _stand_in(ws, Path(spec_path), spec)


def _stand_in(ws, spec_path: Path, spec: dict) -> list[str]:
    import yaml

    from modelloop.errors import NotFound
    from modelloop.pipelines.loop_triggers import TriggerSection

    loop, out = spec["name"], []
    run_spec = spec_path.with_name(f".{spec_path.stem}.run.yaml")
    if not run_spec.exists():
        run_spec.write_text(yaml.safe_dump(runnable(spec), sort_keys=False))
    champion = ws.models.alias_version(loop, "champion")
    names = {m["name"]: f"{loop}-{m['name']}" for m in spec.get("monitors", [])}
    for m in spec.get("monitors", []):
        name = names[m["name"]]
        if m.get("alarm") and ws.alarms.store.get_alarm(name) is None:
            a = dict(m["alarm"])
            metric = a.pop("metric", None) or KIND_METRIC[m["kind"]]
            ws.alarms.create(name, metric, dimensions={"monitor": name},
                             comparison=a.pop("comparison", ">="), **a)
            out.append(f"created alarm {name}")
        if champion is None or ws.monitoring.store.get_monitor(name) is not None:
            continue
        baseline = ws.monitoring.ensure_baseline(f"{spec['data']['dataset']}@1",
                                                 target=spec["target"])["name"]
        on_endpoint = m["kind"] == "model_quality"
        options = m.get("options") or {}
        ws.monitoring.create_monitor(
            name, baseline=baseline, schedule=m.get("schedule"),
            dataset=None if on_endpoint else spec["data"]["dataset"],
            endpoint=spec["deploy"]["endpoint"] if on_endpoint else None,
            after_ingest=not on_endpoint, window=options.get("window"),
            model=f"{loop}@champion" if on_endpoint else None,
            config={"exclude": list(spec["quality"]["ignore"])})
        out.append(f"created monitor {name}")
    if champion is not None:
        endpoint = ws.endpoints.get(spec["deploy"]["endpoint"])
        want = spec["deploy"].get("capture") or {}
        if any(endpoint["spec"]["capture"].get(k) != v for k, v in want.items()):
            ws.endpoints.update(endpoint["name"], capture=want)
            out.append(f"updated endpoint {endpoint['name']}: capture on")
    try:
        has_data = ws.datasets.get(spec["data"]["dataset"]) is not None
    except NotFound:  # a run_loop trigger checks the spec against the data: it waits for it
        has_data = False
    for entry in spec.get("triggers", []):
        section = TriggerSection.model_validate(entry)
        if section.do == "run_loop" and not has_data:
            continue
        made = section.resolve(loop=loop, dataset=spec["data"]["dataset"], model=loop,
                               endpoint=spec["deploy"]["endpoint"], spec_path=str(run_spec))
        try:
            ws.triggers.get(made["name"])
            continue
        except NotFound:
            pass
        cause = made["cause"]
        if cause["on"] == "alarm":
            cause["alarm"] = names.get(cause["alarm"], cause["alarm"])
        if cause["on"] == "watch" and "://" not in cause["location"]:
            folder = spec_path.parent / cause["location"]
            folder.mkdir(parents=True, exist_ok=True)
            cause["location"] = str(folder)
        ws.triggers.create(made.pop("name"), owner=f"loop:{loop}", **made)
        out.append(f"created trigger {section.name}")
    return out
