"""MLflow interop: export a package as an MLflow model, import an MLflow model folder as a package.

Export writes an MLflow model whose ``python_function`` flavor names this module as its
``loader_module`` and carries the modelloop package, unchanged, under ``data/``. MLflow then calls
:func:`_load_pyfunc`, which loads the package through :func:`load_package` — so the exported model
keeps the hash check (a tampered file is still refused), the safe formats (skops, native boosters,
no pickle for scikit-learn) and predicts exactly what modelloop predicts. The cost is that the
machine loading it needs modelloop installed; it is listed in the model's requirements. (The
alternative, ``mlflow.sklearn``'s own flavor, would need no modelloop but stores a pickle, loses
the hash check and covers neither River nor custom models.)

Import reads the ``MLmodel`` file of a folder, or of a model MLflow names by URI (``runs:/RUN/PATH``,
``models:/NAME/V``, ``models:/NAME@ALIAS``, ``models:/m-ID``: what ``mlflow.sklearn.log_model``
returns), which MLflow copies out of its tracking store first (:func:`download_mlflow_model`):
a model exported by modelloop comes back as its original
package; a ``sklearn`` flavor is re-saved as a safe modelloop flavor (skops / native booster);
anything else is kept whole as an ``mlflow_pyfunc`` package, loaded by MLflow itself. MLflow's
sklearn files are pickles and every pyfunc model imports code, so both are imported only with
``trust_pickle`` (the CLI's ``--trust-pickle``): nothing of a stranger's folder is unpickled or
imported before a person said they trust it. The folder is checked first: a valid ``MLmodel``,
no symbolic links, no path leaving the folder.

MLflow is an optional extra (``pip install 'modelloop[mlflow]'``), imported only here, lazily.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path

from modelloop.errors import AlreadyExists, InvalidInput, NotFound, UntrustedCode
from modelloop.registry.package import (
    Manifest,
    PackagedModel,
    check_folder,
    check_relative,
    load_package,
    save_package,
    verify_package,
)
from modelloop.registry.signature import NUMERIC_TYPES, Signature

LOADER_MODULE = "modelloop.registry.mlflow_interop"
PACKAGE_DIR = "modelloop_package"


def _mlflow():
    try:
        import mlflow.pyfunc

        return mlflow
    except ImportError:
        raise InvalidInput(
            "MLflow is not installed",
            hint="pip install 'modelloop[mlflow]' to export or import MLflow models",
        ) from None


# -- export --------------------------------------------------------------------------------------
def export_mlflow(package_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the (verified) package at ``package_dir`` as an MLflow model folder at ``dest``."""
    mlflow = _mlflow()
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    src = Path(package_dir)
    manifest = verify_package(src)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise AlreadyExists(
            f"{dest} already exists and is not empty", hint="export to a new folder"
        )
    outputs = manifest.output_signature
    signature = ModelSignature.from_dict(
        {
            "inputs": json.dumps(_mlflow_inputs(manifest.input_signature)),
            "outputs": json.dumps(Signature.from_dict(outputs).to_mlflow_columns())
            if outputs
            else None,
        }
    )
    # ``params={"method": "predict_proba"}`` asks a classifier for probabilities.
    signature.params = ParamSchema([ParamSpec("method", "string", "predict")])

    staging = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    data = staging.parent / f".{dest.name}.data-{uuid.uuid4().hex}" / PACKAGE_DIR
    try:
        shutil.copytree(src, data)
        with warnings.catch_warnings():  # the signature is given; no sample data to show
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            mlflow.pyfunc.save_model(
                str(staging),
                loader_module=LOADER_MODULE,
                data_path=str(data),
                signature=signature,
                pip_requirements=_requirements(manifest),
                metadata={
                    "modelloop_signature": manifest.input_signature.to_dict(),
                    "modelloop_package_hash": manifest.package_hash,
                    "modelloop_flavor": manifest.flavor,
                    "task": manifest.task,
                },
            )
        if dest.exists():
            dest.rmdir()
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(data.parent, ignore_errors=True)
    return dest


def _mlflow_inputs(signature: Signature) -> list[dict]:
    """The input columns of the exported MLflow signature: numbers as ``any``, the rest typed.

    MLflow refuses, before the model sees them, numbers a user's file legitimately holds: a
    ``double`` column refuses int64 (``pd.read_csv`` of whole numbers, or of an integer column
    that had gaps in training) and a ``long`` column refuses float64 (a gap read as NaN). The
    exported model checks every column against its own signature (kept in the MLmodel metadata
    as ``modelloop_signature``), which takes both and names the column of a value that is no
    number. MLflow older than ``any`` (2.19) gets the typed columns.
    """
    columns = signature.to_mlflow_columns()
    try:
        from mlflow.types.schema import AnyType  # noqa: F401 - only its presence matters
    except ImportError:
        return columns
    return [{**c, "type": "any"} if c["type"] in NUMERIC_TYPES else c for c in columns]


def _requirements(manifest: Manifest) -> list[str]:
    pins = dict(manifest.libraries)
    pins.setdefault("modelloop", "")
    return [f"{name}=={ver}" if ver else name for name, ver in sorted(pins.items())]


class _PyfuncModel:
    """What MLflow's pyfunc wrapper calls: ``predict(model_input, params)``."""

    def __init__(self, packaged: PackagedModel):
        self.packaged = packaged

    def predict(self, model_input, params=None):  # no hints: MLflow would read them as a schema
        method = (params or {}).get("method", "predict")
        if method == "predict":
            return self.packaged.predict(model_input)
        if method == "predict_proba":
            return self.packaged.predict_proba(model_input)
        raise InvalidInput(f"unknown method {method!r}", hint="use 'predict' or 'predict_proba'")

    def unwrap_python_model(self) -> PackagedModel:
        return self.packaged


def _load_pyfunc(data_path: str) -> _PyfuncModel:
    """MLflow's ``loader_module`` hook: load the package copied under the model's ``data/``.

    Whoever calls ``mlflow.pyfunc.load_model`` runs the folder's loader by MLflow's design, and
    the registry exports only packages that are safe or were trusted, hence ``trust_pickle``."""
    return _PyfuncModel(load_package(data_path, verify=True, trust_pickle=True))


# -- import --------------------------------------------------------------------------------------
#: How an MLflow model URI starts (a local folder is given as a path).
URI_PREFIXES = ("runs:/", "models:/")


def is_mlflow_uri(source: str | os.PathLike) -> bool:
    """Whether ``source`` names a model in an MLflow tracking store rather than a folder."""
    return isinstance(source, str) and source.startswith(URI_PREFIXES)


def download_mlflow_model(uri: str, dest: str | os.PathLike, *,
                          tracking_uri: str | None = None) -> Path:
    """Copy the model folder MLflow knows as ``uri`` into the new folder ``dest``; return it.

    MLflow resolves the URI against ``tracking_uri`` (default: ``$MLFLOW_TRACKING_URI``) and
    copies the files only: nothing is loaded, so the folder is checked and trusted (or not) by
    :func:`import_mlflow` exactly as a folder the user gave."""
    _mlflow()  # a clear error when MLflow is not installed
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    dest = Path(dest)
    dest.mkdir(parents=True)
    try:
        # MLflow draws a tqdm bar per download on stderr, between our own lines; a user who
        # wants it sets MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR themselves
        bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        with _tracking_store(tracking_uri), _environ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", bar):
            path = download_artifacts(artifact_uri=uri, dst_path=str(dest))
    except MlflowException as e:
        text = str(e.message if hasattr(e, "message") else e).strip().splitlines()
        where = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "MLflow's default store"
        raise NotFound(f"MLflow has no model at {uri} (tracking store: {where}): "
                       f"{text[0] if text else type(e).__name__}",
                       hint="check the URI, and the tracking store (--tracking-uri or "
                            "$MLFLOW_TRACKING_URI)") from None
    folder = Path(path)
    if not folder.is_dir() or not folder.resolve().is_relative_to(dest.resolve()):
        raise NotFound(f"MLflow's {uri} is not a model folder",
                       hint="give the URI of a logged model, e.g. runs:/RUN_ID/model")
    return folder


def read_mlmodel(folder: str | os.PathLike) -> dict:
    """The ``MLmodel`` file of ``folder``, checked for the shape import relies on."""
    import yaml

    file = Path(folder) / "MLmodel"
    if not file.is_file():
        raise NotFound(
            f"no MLflow model at {folder} (no MLmodel file)",
            hint="point at the folder that holds the MLmodel file",
        )
    where = f"MLmodel in {folder}"
    try:
        conf = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{where} is not UTF-8 text (byte {e.start})",
                           hint="MLmodel is a YAML file written by MLflow") from None
    except yaml.YAMLError as e:
        problem = " ".join(str(e).split())
        raise InvalidInput(f"{where} is not valid YAML: {problem}",
                           hint="MLmodel is a YAML file written by MLflow") from None
    if conf is None:
        conf = {}
    if not isinstance(conf, dict):
        raise InvalidInput(f"{where} is a YAML {type(conf).__name__}, not a mapping",
                           hint="MLmodel maps keys such as 'flavors' and 'signature'")
    for key in ("flavors", "signature"):
        if conf.get(key) is not None and not isinstance(conf[key], dict):
            raise InvalidInput(f"{where}: '{key}' is a {type(conf[key]).__name__}, not a mapping",
                               hint="the file was not written by MLflow, or was edited")
    for name, flavor in (conf.get("flavors") or {}).items():
        if not isinstance(flavor, dict):
            raise InvalidInput(f"{where}: flavor {name!r} is a {type(flavor).__name__}, "
                               "not a mapping", hint="the file was not written by MLflow, or was edited")
    return conf


def _signature_of(conf: dict, folder: Path) -> Signature:
    inputs = (conf.get("signature") or {}).get("inputs")
    if not inputs:
        raise InvalidInput(
            f"the MLflow model at {folder} has no input signature",
            hint="log it with a signature, or pass the signature explicitly",
        )
    try:
        columns = json.loads(inputs) if isinstance(inputs, str) else inputs
        return Signature.from_mlflow_columns(columns)
    except InvalidInput as e:
        raise InvalidInput(f"MLmodel in {folder}: signature inputs: {e.message}",
                           hint=e.hint) from None
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise InvalidInput(f"MLmodel in {folder}: signature inputs are not a list of columns "
                           f"in MLflow's JSON ({type(e).__name__}: {e})",
                           hint="the file was not written by MLflow, or was edited") from None


@contextlib.contextmanager
def _tracking_store(uri: str | None):
    """Use tracking store ``uri`` (None: MLflow's own choice) for the duration.

    ``download_artifacts(tracking_uri=…)`` resolves ``models:/`` and MLflow 3's ``runs:/…/model``
    against the *global* store (MLflow 3.17 opened ``./mlflow.db`` in the working directory),
    so the store is set for the call, as MLflow's own ``_use_tracking_uri`` does, and restored."""
    if uri is None:
        yield
        return
    try:
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # an MLflow without it reads the variable (unless a URI was set in code)
        with _environ("MLFLOW_TRACKING_URI", uri):
            yield
        return
    with _use_tracking_uri(uri):
        yield


@contextlib.contextmanager
def _environ(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def import_mlflow(
    folder: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    signature: Signature | None = None,
    task: str | None = None,
    metrics: dict | None = None,
    params: dict | None = None,
    lineage: dict | None = None,
    trust_pickle: bool = False,
    source: str | None = None,
) -> Manifest:
    """Turn the MLflow model folder at ``folder`` into a modelloop package at ``dest``.

    Nothing in the folder is unpickled or imported unless ``trust_pickle``; without it, only a
    modelloop export of a package holding no code imports (others raise UntrustedCode).
    ``source`` is what the lineage names as its origin (the URI a downloaded folder came from)."""
    folder = Path(folder)
    check_folder(folder)  # first: a linked MLmodel would show its target's text in a YAML error
    conf = read_mlmodel(folder)
    flavors = conf.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if pyfunc.get("loader_module") == LOADER_MODULE:  # one of ours: give back the package itself
        data = check_relative(pyfunc.get("data"), f"MLmodel in {folder} (python_function.data)")
        return _copy_package(folder / data, Path(dest))

    if signature is None:
        signature = _signature_of(conf, folder)
    sklearn = flavors.get("sklearn")
    model = _read_skops(sklearn, folder, trust_pickle) if sklearn else None
    if model is None and not trust_pickle:
        what = ("an MLflow sklearn model, a pickle" if "sklearn" in flavors
                else "an MLflow pyfunc model, whose loader imports and unpickles its code")
        raise UntrustedCode(
            f"the model at {folder} is {what}: importing it runs code its author wrote",
            hint="import it only if you trust who made it: --trust-pickle --reason '…' "
            "(SDK: trust_pickle=True, reason=…)",
        )
    lineage = {
        **(lineage or {}),
        "imported_from": {
            "mlflow_model": source or str(folder.resolve()),
            "run_id": conf.get("run_id"),
            "model_uuid": conf.get("model_uuid"),
            "flavors": sorted(flavors),
        },
    }
    common = dict(signature=signature, task=task, metrics=metrics, params=params, lineage=lineage)

    if model is not None:
        return save_package(model, dest, **common)
    if sklearn:  # a pickle the user trusts: MLflow reads it, we keep it safe from now on
        model = _mlflow().sklearn.load_model(str(folder))
        return save_package(model, dest, **common)
    if not pyfunc:
        raise InvalidInput(
            f"the MLflow model at {folder} has no python_function flavor",
            hint="modelloop imports MLflow models that MLflow can load as pyfunc",
        )
    return save_package(folder, dest, flavor="mlflow_pyfunc", **common)


def _read_skops(sklearn: dict, folder: Path, trust_pickle: bool):
    """The model of an MLflow sklearn flavor saved with skops (MLflow 3's default), read by
    skops itself; None for pickle formats. Types beyond the safe set need ``trust_pickle``."""
    from modelloop.registry.flavors import SAFE_SKOPS_TYPES, skops_load

    if sklearn.get("serialization_format") != "skops":
        return None
    where = f"MLmodel in {folder}"
    rel = check_relative(sklearn.get("pickled_model"), f"{where} (sklearn.pickled_model)")
    types = sklearn.get("skops_trusted_types") or []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidInput(f"{where}: sklearn.skops_trusted_types is not a list of type names",
                           hint="the file was not written by MLflow, or was edited")
    beyond = sorted(set(types) - SAFE_SKOPS_TYPES)
    if beyond and not trust_pickle:
        raise UntrustedCode(
            f"the model at {folder} is a skops file trusting {', '.join(beyond)}: skops builds "
            "those types from the file, which can run code",
            hint="import it only if you trust who made it: --trust-pickle --reason '…'")
    if not (folder / rel).is_file():
        raise InvalidInput(f"{where} names {rel!r}, which is not in the folder")
    return skops_load(folder / rel, types)


def _copy_package(src: Path, dest: Path) -> Manifest:
    if not src.is_dir():
        raise InvalidInput(f"the MLflow model's data folder {src} is missing",
                           hint="the export is incomplete; export it again")
    manifest = verify_package(src)
    if dest.exists():
        raise AlreadyExists(
            f"{dest} already exists", hint="packages are immutable: import into a new folder"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    try:
        shutil.copytree(src, staging, symlinks=True)
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
