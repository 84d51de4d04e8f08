"""MLflow "model from code": the classifier is rebuilt from its arrays and JSON, so nothing is pickled."""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from federated.model import from_arrays


class FedtwinPyfunc(PythonModel):
    """pyfunc wrapper: features in, one probability column per fault out."""

    def load_context(self, context: Any) -> None:
        """Rebuild the classifier from the logged ``arrays`` (npz) and ``meta`` (JSON) artifacts."""
        with np.load(context.artifacts["arrays"], allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        with open(context.artifacts["meta"]) as f:
            meta = json.load(f)
        self.meta = meta
        self.model = from_arrays(arrays, meta)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        """Per-fault probabilities as a DataFrame."""
        proba = self.model.predict_proba(np.asarray(model_input, dtype=float))
        return pd.DataFrame(proba, columns=list(self.meta.get("faults", [])) or None)


mlflow.models.set_model(FedtwinPyfunc())
