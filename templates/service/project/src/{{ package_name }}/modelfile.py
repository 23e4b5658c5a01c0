"""The model file and its manifest: save a fitted model safely, load it back only if it is
the file that was saved and needs nothing untrusted.

``save_model`` writes one model file and ``model.json`` (``MANIFEST_FILE``) beside it:

* ``model.skops``: skops' format, which loads without running arbitrary code, with the
  types it needs beyond skops' defaults (checked against ``TRUSTED_MODULES``, listed in the
  manifest as ``trusted_types``);
* ``model.ubj``: an XGBoost scikit-learn estimator (``XGBClassifier``, ``XGBRegressor``,
  ``XGBRanker``) in XGBoost's own binary JSON, which is data only; the manifest names the
  estimator class, which must be one of ``XGBOOST_ESTIMATORS`` to be loaded;
* ``model.statsmodels.json``: a statsmodels forecaster's results (``SARIMAX``, ``ARIMA``) as
  data only: the model's class (one of ``STATSMODELS_MODELS``), its specification (the
  constructor's keyword arguments), its fitted parameters by name and the training series
  with its index. Loading rebuilds the results without refitting, as
  ``Model(series, **specification).smooth(params)``, which forecast exactly as the fitted ones;
* ``model.pt``: a PyTorch module (``TorchModel``): its ``state_dict()``, weights only, as
  ``torch.save`` writes it; the manifest names the function of this package that builds a
  fresh module (``builder``), into which ``torch.load(..., weights_only=True)`` loads them;
* ``model.joblib``: a pickle, only for a model neither fits (the manifest says why).

``save_state`` writes what the notebook's feature steps learnt from the training rows (fitted
transformers, dummy columns: ``pipeline.TrainingResult.feature_state``) beside it, in
``features.skops`` (``features.joblib`` if skops cannot), recorded in the same manifest
(``feature_state``) and loaded by ``load_state`` with the same checks.

The manifest also records the file's SHA-256 and the versions of Python and of the libraries
it was saved with. ``load_model`` refuses a file whose hash differs, a type nobody trusted,
or another major or minor version of scikit-learn (and of Python for a pickle).

This module imports only the standard library at module level: ``promote --execute`` runs
it in the notebook's kernel to save the notebook's own fitted model in the same format.
"""

import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
XGBOOST_MODEL_FILE = "model.ubj"  # XGBoost's binary JSON
TORCH_MODEL_FILE = "model.pt"  # a PyTorch module's weights (state_dict), no code
JOBLIB_MODEL_FILE = "model.joblib"  # a pickle: only for models nothing else can save
STATSMODELS_MODEL_FILE = "model.statsmodels.json"  # a forecaster's specification and parameters
MODEL_FILES = (
    MODEL_FILE,
    XGBOOST_MODEL_FILE,
    STATSMODELS_MODEL_FILE,
    TORCH_MODEL_FILE,
    JOBLIB_MODEL_FILE,
)
STATE_FILE = "features.skops"  # what the feature steps learnt, if they learn anything
JOBLIB_STATE_FILE = "features.joblib"
STATE_FILES = (STATE_FILE, JOBLIB_STATE_FILE)
MANIFEST_FILE = "model.json"
MANIFEST_VERSION = 1
# Modules whose types a skops model may need beyond skops' own defaults. Loading refuses any
# other type, and saving falls back to joblib for a model that needs one. The project's own
# package (functions and classes from the notebook) is trusted too. Add a module here only if
# you trust its code: a type named in a model file is a function the model can call.
TRUSTED_MODULES = (
    "sklearn",
    "numpy",
    "scipy",
    "pandas",
    "xgboost",
    "lightgbm",
    "catboost",
    "imblearn",
)
# Single types trusted besides those modules: plain containers of the standard library that
# fitted models hold (LightGBM's estimators keep an OrderedDict), not the rest of their module.
TRUSTED_TYPES = ("collections.OrderedDict",)
# XGBoost's scikit-learn estimators, saved in XGBoost's own format (the class is recreated
# by name, then its load_model reads the file: no code comes from the file).
XGBOOST_ESTIMATORS = (
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRanker",
)
# statsmodels forecasters saved as data (``model.statsmodels.json``): loading recreates only
# these classes, by name.
STATSMODELS_MODELS = (
    "statsmodels.tsa.statespace.sarimax.SARIMAX",
    "statsmodels.tsa.arima.model.ARIMA",
)
# Distributions whose versions are recorded beside the model. A different major or minor
# version of scikit-learn refuses to load it (scikit-learn does not support models across
# versions), and for a pickle (joblib) of Python too; any other difference is a warning.
RECORDED_VERSIONS = (
    "scikit-learn",
    "numpy",
    "pandas",
    "scipy",
    "skops",
    "joblib",
    "xgboost",
    "lightgbm",
    "statsmodels",
    "torch",
)
STRICT_VERSIONS = ("scikit-learn",)
STRICT_PICKLE_VERSIONS = ("python", "scikit-learn")


class ModelArtifactError(ValueError):
    """The model file cannot be loaded safely: changed since it was saved, types nobody
    trusted, or saved with library versions that cannot read it."""


class TorchModel:
    """A ``torch.nn.Module`` trained on a 2-D float tensor (rows, features), with the
    ``predict`` the service calls: the rows become a float32 tensor of that shape on the
    module's device, the module runs in eval mode under ``torch.inference_mode()``, and its
    output must be one number per row (shape (rows,) or (rows, 1)).

    ``builder`` is ``module:function`` of this package: the function builds a fresh,
    untrained module, into which ``load_model`` loads the saved weights.
    """

    def __init__(self, module: Any, builder: str) -> None:
        self.torch_module = module
        self.builder = builder

    def predict(self, rows: Any) -> Any:
        """One number per row of ``rows`` (a table of the tensor's columns), as a numpy array."""
        import numpy as np
        import torch

        values = np.array(rows, dtype=np.float32)  # a copy: torch needs a writable array
        module = self.torch_module
        parameter = next(iter(module.parameters()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        module.eval()
        with torch.inference_mode():
            output = module(torch.as_tensor(values, device=device))
        result = np.asarray(output.detach().cpu().numpy())
        if result.ndim == 0 or result.shape[0] != len(values) or result.size != len(values):
            raise ValueError(
                f"the PyTorch module gave an output of shape {tuple(result.shape)} for "
                f"{len(values)} rows; the service serves one number per row"
            )
        return result.reshape(len(values))


def torch_input_frame(tensor: Any) -> Any:
    """The rows of the 2-D float tensor a PyTorch module is trained on, as a table of float32
    columns named ``x0``, ``x1``, ...: what a request carries."""
    import pandas as pd
    import torch

    if not (isinstance(tensor, torch.Tensor) and tensor.ndim == 2 and tensor.is_floating_point()):
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(
            f"the PyTorch module is trained on {shape}, not a 2-D float tensor (rows, "
            "features): the service can only build such a tensor from a request's numbers"
        )
    values = tensor.detach().cpu().numpy().astype("float32")
    return pd.DataFrame(values, columns=[f"x{index}" for index in range(values.shape[1])])


def save_model(model: Any, directory: Path) -> dict[str, Any]:
    """Write ``model`` into ``directory`` with its manifest (module docstring); return it."""
    manifest: dict[str, Any] = {"version": MANIFEST_VERSION}
    estimator = qualified_name(type(model))
    if getattr(model, "torch_module", None) is not None:  # a TorchModel (duck-typed: the
        # notebook's kernel runs this module's source under another name)
        data = _torch_bytes(model.torch_module)
        manifest.update(file=TORCH_MODEL_FILE, format="torch", builder=str(model.builder))
    elif estimator in XGBOOST_ESTIMATORS:
        data = _xgboost_bytes(model)
        manifest.update(file=XGBOOST_MODEL_FILE, format="xgboost", estimator=estimator)
    elif is_forecaster(model):
        data = _statsmodels_bytes(model)
        manifest.update(
            file=STATSMODELS_MODEL_FILE,
            format="statsmodels",
            estimator=qualified_name(type(model.model)),
        )
    else:
        data, skops = _skops_bytes(model, MODEL_FILE, JOBLIB_MODEL_FILE)
        manifest.update(skops)
    for stale in {*MODEL_FILES, *STATE_FILES} - {manifest["file"]}:
        (directory / stale).unlink(missing_ok=True)
    (directory / manifest["file"]).write_bytes(data)
    manifest.update(sha256=hashlib.sha256(data).hexdigest(), versions=library_versions())
    _write_json(directory / MANIFEST_FILE, manifest)
    return manifest


def save_state(state: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """Write what the feature steps learnt beside the model ``save_model`` wrote there, and
    record it in the manifest (``feature_state``); return that record."""
    data, entry = _skops_bytes(dict(state), STATE_FILE, JOBLIB_STATE_FILE)
    for stale in set(STATE_FILES) - {entry["file"]}:
        (directory / stale).unlink(missing_ok=True)
    (directory / entry["file"]).write_bytes(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    manifest = _read_json(directory / MANIFEST_FILE)
    manifest["feature_state"] = entry
    _write_json(directory / MANIFEST_FILE, manifest)
    return entry


def _skops_bytes(model: Any, skops_file: str, joblib_file: str) -> tuple[bytes, dict[str, Any]]:
    """The model (or what the feature steps learnt) in skops' format, else (with why) as a
    joblib pickle."""
    try:
        import skops.io as sio

        data = _reproducible_skops(sio.dumps(model))
        needed = sio.get_untrusted_types(data=data)
        refused = [name for name in needed if not _trusted_module(name)]
        if refused:
            raise ModelArtifactError(f"it needs types from untrusted modules: {refused}")
        sio.loads(data, trusted=needed)  # what cannot be read back is not saved as skops
    except Exception as error:  # skops cannot save every object (lambdas, some libraries)
        import joblib

        logger.warning("skops cannot save %s (%s); saving it with joblib", skops_file, error)
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        return buffer.getvalue(), {
            "file": joblib_file,
            "format": "joblib",
            "skops_error": str(error),
        }
    return data, {"file": skops_file, "format": "skops", "trusted_types": sorted(needed)}


def _reproducible_skops(data: bytes) -> bytes:
    """skops' file rewritten so the same model gives the same bytes, hence the same SHA-256.

    skops names each array file and object reference after ``id()`` of the object (an
    address, new in every process) and stamps the zip entries with the time of saving. Here
    references are numbered in the order the schema lists them and the entries carry a fixed
    date; the structure, and what loads from it, are unchanged (the caller loads it back).
    A file laid out otherwise than this expects is kept as skops wrote it.
    """
    import re
    import zipfile

    numbers: dict[int, int] = {}
    files: dict[str, str] = {}

    def number(old: int) -> int:
        return numbers.setdefault(old, len(numbers) + 1)

    def renumber(node: Any) -> Any:
        if isinstance(node, list):
            return [renumber(value) for value in node]
        if not isinstance(node, dict):
            return node
        out = {key: renumber(value) for key, value in node.items()}
        if isinstance(node.get("__id__"), int):
            out["__id__"] = number(node["__id__"])
        named = re.fullmatch(r"(\d+)(\.\w+)", str(node.get("file", "")))
        if named:
            out["file"] = files[node["file"]] = f"{number(int(named[1]))}{named[2]}"
        return out

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as source:
            entries = {"schema.json": b""}
            schema = renumber(json.loads(source.read("schema.json")))
            entries["schema.json"] = json.dumps(schema, indent=2).encode()
            for info in source.infolist():
                if info.filename != "schema.json":
                    entries[files[info.filename]] = source.read(info)
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        logger.warning("skops' file kept as written, not made reproducible: %s", error)
        return data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        for name, content in entries.items():
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def _xgboost_bytes(model: Any) -> bytes:
    """An XGBoost estimator in XGBoost's binary JSON (UBJ), as its ``save_model`` writes it."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / XGBOOST_MODEL_FILE
        model.save_model(path)
        return path.read_bytes()


def _torch_bytes(module: Any) -> bytes:
    """A module's weights, moved to the CPU, as ``torch.save`` writes its ``state_dict()``."""
    import torch

    state = {name: value.detach().cpu() for name, value in module.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def package_function(reference: str, named_by: str) -> Callable[..., Any]:
    """The function ``module:name`` of this package that ``named_by`` (a manifest, a schema)
    records; ModelArtifactError for any other: a file cannot make the service import other
    code."""
    module, _, name = reference.partition(":")
    if not own_module(module):
        raise ModelArtifactError(
            f"{named_by} names {reference!r}, which is not a function of this package: "
            "retrain with `make train`"
        )
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ModelArtifactError(
            f"{named_by} names {reference!r}, which this package does not define (any more): "
            "retrain with `make train`"
        )
    return function


def own_module(module: str) -> bool:
    """Whether ``module`` is this package's (``pkg.features``), the package itself excluded."""
    package = __name__.rpartition(".")[0]
    return bool(package) and module.startswith(package + ".")


def _load_torch(path: Path, builder: str) -> Any:
    """A fresh module built by ``builder`` (a function of this package) with the weights of
    ``path`` loaded into it: ``torch.load(..., weights_only=True)`` reads tensors only."""
    import torch

    build = package_function(builder, f"{MANIFEST_FILE} (to build the module of {path})")
    module = build()
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module.eval()
    return TorchModel(module, builder)


def load_model(directory: Path) -> tuple[Any, str]:
    """The model saved by ``save_model`` and its SHA-256, after checking the manifest."""
    manifest = _read_json(directory / MANIFEST_FILE)
    return _load_checked(directory, manifest, manifest.get("versions", {}))


def load_state(directory: Path) -> dict[str, Any] | None:
    """What the feature steps learnt, as ``save_state`` wrote it, after the same checks as
    the model's; None if the manifest records none."""
    manifest = _read_json(directory / MANIFEST_FILE)
    entry = manifest.get("feature_state")
    if not entry:
        return None
    state, _ = _load_checked(directory, entry, manifest.get("versions", {}))
    if not isinstance(state, dict):
        raise ModelArtifactError(f"{directory / entry['file']} does not hold a dict")
    return state


def _load_checked(
    directory: Path, manifest: Mapping[str, Any], versions: Mapping[str, str]
) -> tuple[Any, str]:
    """The object of the file a manifest (or its ``feature_state`` record) names, and its
    SHA-256, after checking both."""
    path = directory / str(manifest["file"])
    if not path.is_file():
        raise FileNotFoundError(f"missing {manifest['file']} in {directory}")
    sha256 = file_sha256(path)
    if sha256 != manifest["sha256"]:
        raise ModelArtifactError(
            f"{path} has SHA-256 {sha256}, but {MANIFEST_FILE} records {manifest['sha256']}: "
            "the file was changed or replaced after training. Run `make train` again "
            "(or restore the file) rather than serving a model nobody can trace."
        )
    pickled = manifest["format"] == "joblib"
    check_versions(versions, path, STRICT_PICKLE_VERSIONS if pickled else STRICT_VERSIONS)
    if pickled:
        import joblib

        logger.warning("%s is a pickle (skops could not save it)", path)
        return joblib.load(path), sha256
    if manifest["format"] == "torch":
        return _load_torch(path, str(manifest.get("builder", ""))), sha256
    if manifest["format"] == "xgboost":
        return _load_xgboost(path, str(manifest.get("estimator", ""))), sha256
    if manifest["format"] == "statsmodels":
        return _load_statsmodels(path, str(manifest.get("estimator", ""))), sha256
    import skops.io as sio

    needed = sio.get_untrusted_types(file=path)
    listed = set(manifest.get("trusted_types", []))
    refused = [name for name in needed if name not in listed or not _trusted_module(name)]
    if refused:
        raise ModelArtifactError(
            f"{path} needs types that are not trusted: {refused}. Only types recorded in "
            f"{MANIFEST_FILE} at training time and from the modules in "
            "modelfile.TRUSTED_MODULES (or this package) are loaded; retrain, or add the "
            "module to TRUSTED_MODULES if you trust its code."
        )
    return sio.load(path, trusted=needed), sha256


def _load_xgboost(path: Path, estimator: str) -> Any:
    if estimator not in XGBOOST_ESTIMATORS:
        raise ModelArtifactError(
            f"{MANIFEST_FILE} names {estimator!r} as the estimator of {path}, which is not one "
            f"of {', '.join(XGBOOST_ESTIMATORS)}: retrain with `make train`"
        )
    module, _, name = estimator.rpartition(".")
    model = getattr(importlib.import_module(module), name)()
    model.load_model(path)
    return model


def is_forecaster(model: Any) -> bool:
    """Whether ``model`` is the fitted results of one of ``STATSMODELS_MODELS``."""
    inner = getattr(model, "model", None)
    return (
        inner is not None
        and hasattr(model, "params")
        and hasattr(model, "forecast")
        and qualified_name(type(inner)) in STATSMODELS_MODELS
    )


def _statsmodels_bytes(results: Any) -> bytes:
    """A statsmodels forecaster's results as JSON: class, specification, parameters, series."""
    import numpy as np
    import pandas as pd

    model = results.model
    # ARIMA keeps its trend among ``exog``; what the notebook gave is ``_input_exog`` there
    given = model._input_exog if hasattr(model, "_input_exog") else model.exog
    if given is not None and np.size(given) > 0:
        raise ModelArtifactError(
            "the forecaster was fitted with exogenous regressors (exog), which the forecast "
            "service does not take"
        )
    specification = _plain(model._get_init_kwds())  # the constructor's keyword arguments
    specification.pop("exog", None)
    endog = model.data.orig_endog
    series = endog.iloc[:, 0] if isinstance(endog, pd.DataFrame) else endog
    if not isinstance(series, pd.Series):
        series = pd.Series(np.asarray(series, dtype=float).ravel())
    params = results.params
    names = list(getattr(params, "index", model.param_names))
    data = {
        "specification": specification,
        "params": dict(zip(names, (float(v) for v in np.asarray(params)), strict=True)),
        "series": {
            "name": None if series.name is None else str(series.name),
            "values": [float(v) for v in series.to_numpy(dtype=float)],
            "index": _index_json(series.index),
        },
    }
    return json.dumps(data, indent=1, allow_nan=True).encode()


def _plain(value: Any) -> Any:
    """A specification value as JSON (tuples as lists); ModelArtifactError for anything else."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    raise ModelArtifactError(
        f"the forecaster's specification holds {type(value).__name__} {value!r}, which "
        "cannot be saved as data"
    )


def _index_json(index: Any) -> dict[str, Any]:
    """The training series' index: dates with their frequency, a range, or labels."""
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        return {
            "kind": "dates",
            "values": [stamp.isoformat() for stamp in index],
            "freq": index.freqstr,
        }
    if isinstance(index, pd.PeriodIndex):
        return {"kind": "periods", "values": [str(p) for p in index], "freq": index.freqstr}
    if isinstance(index, pd.RangeIndex):
        return {"kind": "range", "start": index.start, "step": index.step}
    return {"kind": "labels", "values": [_plain(label) for label in index.tolist()]}


def _index_from_json(data: Mapping[str, Any], length: int) -> Any:
    import pandas as pd

    kind = data["kind"]
    if kind == "dates":
        return pd.DatetimeIndex(data["values"], freq=data.get("freq"))
    if kind == "periods":
        return pd.PeriodIndex(data["values"], freq=data.get("freq"))
    if kind == "range":
        start, step = int(data["start"]), int(data["step"])
        return pd.RangeIndex(start, start + step * length, step)
    return pd.Index(data["values"])


def _load_statsmodels(path: Path, estimator: str) -> Any:
    """The results ``_statsmodels_bytes`` saved, rebuilt from the specification and the
    parameters (``smooth``: no refitting), for a class of ``STATSMODELS_MODELS`` only."""
    if estimator not in STATSMODELS_MODELS:
        raise ModelArtifactError(
            f"{MANIFEST_FILE} names {estimator!r} as the forecaster of {path}, which is not "
            f"one of {', '.join(STATSMODELS_MODELS)}: retrain with `make train`"
        )
    import warnings

    import numpy as np
    import pandas as pd

    data = _read_json(path)
    series = data["series"]
    values = np.asarray(series["values"], dtype=float)
    endog = pd.Series(
        values, index=_index_from_json(series["index"], len(values)), name=series["name"]
    )
    module, _, name = estimator.rpartition(".")
    specification = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in data["specification"].items()
    }
    with warnings.catch_warnings():  # statsmodels warns of what the notebook's fit warned of
        warnings.simplefilter("ignore")
        model = getattr(importlib.import_module(module), name)(endog, **specification)
        names = list(model.param_names)
        if sorted(names) != sorted(data["params"]):
            raise ModelArtifactError(
                f"{path} holds the parameters {sorted(data['params'])}, but {name} with its "
                f"specification has {sorted(names)}: retrain with `make train`"
            )
        params = pd.Series([data["params"][key] for key in names], index=names)
        return model.smooth(params)


def library_versions() -> dict[str, str]:
    """The versions of Python and of ``RECORDED_VERSIONS`` that are installed."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_VERSIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def check_versions(
    saved: Mapping[str, str], path: Path, strict: Sequence[str] = STRICT_VERSIONS
) -> None:
    """Refuse a model saved with another major or minor version of a library in ``strict``;
    warn for any other library version that differs from the one installed."""
    current = library_versions()
    differ = {
        name: (version, current[name])
        for name, version in saved.items()
        if name in current and current[name] != version
    }
    if not differ:
        return
    listed = ", ".join(f"{name} {old} (now {new})" for name, (old, new) in differ.items())
    strict = [
        name
        for name, (old, new) in differ.items()
        if name in strict and old.split(".")[:2] != new.split(".")[:2]
    ]
    if strict:
        raise ModelArtifactError(
            f"{path} was saved with {listed}: a model saved with another version of "
            f"{' and '.join(strict)} may not load or may predict differently. Install the "
            "versions of the lock file (`make install`) or retrain with `make train`."
        )
    logger.warning("%s was saved with %s; predictions may differ slightly", path, listed)


def qualified_name(kind: type) -> str:
    """``module.QualName`` of a class."""
    return f"{kind.__module__}.{kind.__qualname__}"


def _trusted_module(name: str) -> bool:
    """Whether the type ``name`` may be loaded: from ``TRUSTED_MODULES`` or this package, or
    one of ``TRUSTED_TYPES``."""
    package = __name__.rpartition(".")[0]
    top = name.split(".", 1)[0]
    return name in TRUSTED_TYPES or top in TRUSTED_MODULES or (bool(package) and top == package)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
