"""End to end, for a PyTorch module trained by a hand-written loop: a tiny notebook written
here is promoted with ``--execute``, the project installs from its lock in a fresh venv, its
own tests pass with the parity test run (not skipped), ``make train``'s command trains, and
the service answers POST /predict with the notebook's prediction for each row.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from project_harness import http, install_project, run, serving, venv_command

from promote.cli import main

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch", reason="--execute runs the notebook with promote's torch")

CELLS = (
    "import torch\nfrom torch import nn",
    "device = 'cuda' if torch.cuda.is_available() else 'cpu'",
    "# Two features, a known linear relation\n"
    "torch.manual_seed(0)\n"
    "X = torch.rand(60, 2)\n"
    "y = X @ torch.tensor([[0.7], [-0.2]]) + 0.3\n"
    "split = int(0.8 * len(X))\n"
    "X_train, y_train = X[:split], y[:split]\n"
    "X_test, y_test = X[split:], y[split:]",
    "class LinearModel(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.linear = nn.Linear(in_features=2, out_features=1)\n\n"
    "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
    "        return self.linear(x)\n\n\n"
    "torch.manual_seed(42)\n"
    "model = LinearModel().to(device)",
    "loss_fn = nn.L1Loss()\noptimizer = torch.optim.SGD(params=model.parameters(), lr=0.05)",
    "torch.manual_seed(42)\n"
    "epochs = 200\n"
    "X_train, y_train = X_train.to(device), y_train.to(device)\n"
    "X_test, y_test = X_test.to(device), y_test.to(device)\n"
    "for epoch in range(epochs):\n"
    "    model.train()\n"
    "    y_pred = model(X_train)\n"
    "    loss = loss_fn(y_pred, y_train)\n"
    "    optimizer.zero_grad()\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
    "    model.eval()\n"
    "    with torch.inference_mode():\n"
    "        test_loss = loss_fn(model(X_test), y_test)",
    "model.eval()\nwith torch.inference_mode():\n    y_preds = model(X_test)\ny_preds[:3]",
)


def write_notebook(folder: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    path = folder / "linear_torch.ipynb"
    nbformat.write(notebook, path)
    return path


def test_a_torch_loop_notebook_is_promoted_trained_tested_and_served(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path)
    project = tmp_path / "project"
    assert main([str(notebook), "-o", str(project), "--execute"]) == 0

    captured = json.loads((project / "tests" / "parity" / "notebook.json").read_text())
    assert captured["schema"]["kind"] == "table"
    assert [c["name"] for c in captured["schema"]["columns"]] == ["x0", "x1"]
    manifest = json.loads((project / "artifacts" / "notebook" / "model.json").read_text())
    assert (manifest["file"], manifest["format"]) == ("model.pt", "torch")
    assert manifest["builder"].endswith(":build_model")

    install_project(project)
    python = project / ".venv" / "bin" / "python"
    tests = run([python, "-m", "pytest", "-rs", "-p", "no:cacheprovider"], project)
    assert "passed" in tests and " failed" not in tests
    skipped = [line for line in tests.splitlines() if "SKIPPED" in line and "test_parity" in line]
    assert not skipped, "the parity test ran:\n" + "\n".join(skipped)

    run([venv_command(project, "linear-torch-train")], project)
    assert (project / "artifacts" / "model.pt").is_file()

    serve = venv_command(project, "linear-torch-serve")
    with serving([serve], project, tmp_path / "serve.log") as url:
        for record, expected in zip(captured["records"], captured["predictions"], strict=True):
            status, answer = http("POST", f"{url}/predict", record)
            assert status == 200, answer
            assert isinstance(answer["prediction"], float)
            assert answer["prediction"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
        status, answer = http("POST", f"{url}/predict", {"x0": 0.5})
        assert status == 422, "a request without x1 is refused"
