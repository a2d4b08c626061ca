"""Bring your own encoder (issue 16): `bench export` and `bench evaluate`, the reference layouts of TS,
SDCLR and BCL, bad input, and the external encoders on the leaderboard.

One tiny resnet18_cifar run on digits_lt (1 epoch, CPU) supplies the trained encoder; every layout
test writes that encoder's weights under the official key names and must get the run's own metrics.
"""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.backbones import create_backbone
from bench.cli import main
from bench.external import load_encoder
from bench.records import load_records
from bench.report import check_report, write_report

BACKBONE = "resnet18_cifar"
DIGITS_MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])  # digits_lt's normalisation (datasets/digits.py)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 1-epoch run (its record and checkpoint) and a results folder for the evaluations."""
    root = tmp_path_factory.mktemp("byoe")
    results = root / "board" / "results"
    assert (
        main(
            [
                "run",
                "--methods",
                "constant",
                "--preset",
                "tiny",
                "--epochs",
                "1",
                "--backbone",
                BACKBONE,
                "--results-dir",
                str(results),
                "--no-progress",
                "--no-leaderboard",
            ]
        )
        == 0
    )
    (record,) = [r for r in load_records(results) if r["kind"] == "run"]
    export = root / "encoder.safetensors"
    assert main(["export", "--run", record["run_id"], "--results-dir", str(results), "--out", str(export)]) == 0
    from safetensors.torch import load_file

    return {
        "root": root,
        "results": results,
        "record": record,
        "export": export,
        "weights": load_file(export),
        "evals": root / "evals" / "results",
    }


def evaluate(trained, weights: Path, *extra: str) -> dict:
    """`bench evaluate` into the shared evaluation folder; the one record it wrote."""
    before = {r["_path"] for r in load_records(trained["evals"])} if trained["evals"].exists() else set()
    assert main(["evaluate", "--weights", str(weights), "--results-dir", str(trained["evals"]), "--no-leaderboard", *extra]) == 0
    (record,) = [r for r in load_records(trained["evals"]) if r["_path"] not in before and r["kind"] == "external"]
    return record


def test_export_loads_with_timm_and_evaluates_to_the_runs_own_metrics(trained):
    info = json.loads(trained["export"].with_suffix(".json").read_text())
    assert info["backbone"] == BACKBONE and info["image_size"] == 16 and info["run_id"] == trained["record"]["run_id"]
    assert [info["mean"], info["std"]] == list(DIGITS_MEAN_STD)
    assert info["record"] == Path(trained["record"]["_path"]).name
    # The README's three lines, as printed there, on this export.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Evaluating your own encoder", 1)[1]
    lines = section.split("Three lines load it", 1)[1].split("\n\n")[1].splitlines()
    assert len(lines) == 3
    scope: dict = {}
    exec("\n".join(line.strip() for line in lines).replace('"encoder.safetensors"', repr(str(trained["export"]))), scope)
    assert scope["model"].eval()(torch.zeros(2, 3, 16, 16)).shape == (2, 512)

    record = evaluate(trained, trained["export"], "--name", "round-trip")
    assert record["metrics"] == trained["record"]["metrics"]
    assert record["weights"]["export"]["run_id"] == trained["record"]["run_id"]
    assert record["method"].startswith("external:round-trip (sha256 ")
    assert record["protocol"]["encoder"] == "external" and "epochs" not in record["protocol"]
    floors = [r for r in load_records(trained["evals"]) if r["kind"] == "floor"]
    assert sorted(r["method"] for r in floors) == ["floor:random_init", "floor:raw_pixels"]
    assert all(r["protocol"] == record["protocol"] for r in floors)


# --- the reference implementations' key names, written from their model files ---------------------------


def _batchnorms(backbone: str = BACKBONE) -> set[str]:
    model, _ = create_backbone(backbone)
    return {name for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)}


def _split(key: str) -> tuple[str, str]:
    module, _, param = key.rpartition(".")
    return module, param


def _bn(prefix: str, width: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.ones(width),
        f"{prefix}.bias": torch.zeros(width),
        f"{prefix}.running_mean": torch.zeros(width),
        f"{prefix}.running_var": torch.ones(width),
        f"{prefix}.num_batches_tracked": torch.tensor(7),
    }


def _decoy(value: torch.Tensor) -> torch.Tensor:
    """What a branch that must not be picked holds: visibly other numbers."""
    return value + 3.0 if value.is_floating_point() else value


def ts_layout(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Annusha/temperature_schedules: models/resnet.py ``ResNet`` (conv1/bn1/layerX.Y.convZ/bnZ,
    ``downsample.0/1`` from ``_make_layer``, ``normalize`` = ``NormalizeByChannelMeanStd`` of
    models/utils.py), ``model.fc = proj_head(512, 128)`` (models/utils.py: fc1, bn1, fc2 without bias,
    bn2) and DistributedDataParallel in train_simCLR.py: every key under ``module.``."""
    state = {f"module.{k}": v for k, v in ours.items()}
    state["module.normalize.mean"], state["module.normalize.std"] = map(torch.tensor, DIGITS_MEAN_STD)
    state.update(
        {
            "module.fc.fc1.weight": torch.randn(512, 512),
            "module.fc.fc1.bias": torch.zeros(512),
            **_bn("module.fc.bn1", 512),
            "module.fc.fc2.weight": torch.randn(128, 512),
            **_bn("module.fc.bn2", 128),
        }
    )
    return state


def sdclr_names(ours: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """VITA-Group/SDCLR models/resnet_prune_multibn.py ``ResNet``: every BN is a ``batch_norm_multiple``
    whose ``bn_list`` holds one BN per name of ``bn_names=["nonprune", "prune"]`` (0 dense, 1 pruned);
    the shortcut is ``Downsample_multiple`` with ``conv`` and ``bn``; ``prune_conv2d``'s mask is a plain
    attribute, so not in the state_dict."""
    batchnorms = _batchnorms()
    state = {}
    for key, value in ours.items():
        module, param = _split(key)
        module = module.replace("downsample.0", "downsample.conv").replace("downsample.1", "downsample.bn")
        if _split(key)[0] in batchnorms:
            state[f"{prefix}{module}.bn_list.0.{param}"] = value
            state[f"{prefix}{module}.bn_list.1.{param}"] = _decoy(value)
        else:
            state[f"{prefix}{module}.{param}"] = value
    state[f"{prefix}normalize.mean"], state[f"{prefix}normalize.std"] = map(torch.tensor, DIGITS_MEAN_STD)
    return state


def _dual_head(prefix: str, layers: int) -> dict[str, torch.Tensor]:
    """resnet_prune_multibn.py ``proj_head``: fc1 (bias) then fc2, fc3 (no bias), each followed by a
    dual ``batch_norm_multiple`` bnN; ``twoLayerProj=True`` stops at fc2/bn2."""
    head = {f"{prefix}fc1.weight": torch.randn(512, 512), f"{prefix}fc1.bias": torch.zeros(512)}
    for index in range(1, layers + 1):
        if index > 1:
            head[f"{prefix}fc{index}.weight"] = torch.randn(128 if index == layers else 512, 512)
        for branch in (0, 1):
            head.update(_bn(f"{prefix}bn{index}.bn_list.{branch}", 128 if index == layers else 512))
    return head


def sdclr_layout(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SDCLR's train_simCLR.py with --prune_dual_bn: ``model.fc = proj_head(ch, 128)`` (three layers),
    DistributedDataParallel: ``module.``."""
    return {**sdclr_names(ours, "module."), **_dual_head("module.fc.", 3)}


def bcl_layout(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MediaBrain-SJTU/BCL models/simclr.py ``SimCLR``: ``self.backbone`` = models/resnet.py resnet18
    (TS's names, ``normalize`` included) with ``fc = nn.Identity()`` (no keys), ``self.projector`` =
    ``proj_head(512, 128)`` (fc1, bn1, fc2, bn2); train.py saves ``model.state_dict()`` unwrapped."""
    state = {f"backbone.{k}": v for k, v in ours.items()}
    state["backbone.normalize.mean"], state["backbone.normalize.std"] = map(torch.tensor, DIGITS_MEAN_STD)
    state.update(
        {
            "projector.fc1.weight": torch.randn(512, 512),
            "projector.fc1.bias": torch.zeros(512),
            **_bn("projector.bn1", 512),
            "projector.fc2.weight": torch.randn(128, 512),
            **_bn("projector.bn2", 128),
        }
    )
    return state


def bcl_sdclr_layout(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BCL models/sdclr.py ``SDCLR``: ``self.backbone`` = prune_resnet18_dual (SDCLR's names) whose
    ``fc`` is ``proj_head(512, 128, twoLayerProj=True)``."""
    return {**sdclr_names(ours, "backbone."), **_dual_head("backbone.fc.", 2)}


LAYOUTS = {"ts": ts_layout, "sdclr": sdclr_layout, "bcl": bcl_layout, "bcl_sdclr": bcl_sdclr_layout}


def _checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """All three repositories save ``{'epoch', 'state_dict', 'optim'}`` (save_checkpoint in train*.py)."""
    return {"epoch": 2000, "state_dict": state, "optim": {"state": {}, "param_groups": [{"lr": 0.5, "params": [0]}]}}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_reference_layouts_give_the_encoders_own_metrics(trained, layout):
    path = trained["root"] / f"{layout}.pth.tar"
    torch.save(_checkpoint(LAYOUTS[layout](trained["weights"])), path)
    record = evaluate(trained, path, "--backbone", BACKBONE, "--name", layout)
    assert record["metrics"] == trained["record"]["metrics"], record["weights"]["adaptations"]
    assert record["weights"]["normalization"] == {"mean": DIGITS_MEAN_STD[0], "std": DIGITS_MEAN_STD[1]}
    assert record["weights"]["found_in"] == "key 'state_dict'"


def test_the_suites_sdclr_checkpoint_keeps_the_dense_branch(tmp_path):
    """The suite's own checkpoint format (numpy RNG state inside) and its SDCLR's dual BN."""
    from methods import get_method_class

    backbone, width = create_backbone("small_cnn")
    method = get_method_class("sdclr")(
        backbone=backbone, feature_dim=width, temperature_overrides={}, num_train_samples=64, image_size=16
    )
    with torch.no_grad():  # make the two branches differ, as training does
        for name, buffer in method.backbone.named_buffers():
            if "pruned" in name and "running_mean" in name:
                buffer.add_(1.0)
    path = tmp_path / "digits_lt__sdclr__seed0__0123456789abcdef.pt"
    torch.save({"run_id": "0123456789abcdef", "method": method.state_dict(), "numpy_rng": np.random.get_state()}, path)
    encoder = load_encoder(path, "small_cnn")
    assert "dual BN: kept dense (the suite's SDCLR)" in encoder.adapted.adaptations
    images = torch.randn(4, 3, 16, 16)
    method.eval()
    assert torch.equal(encoder.model(images), method.backbone(images))


# --- bad input: one line on stderr, exit 2, nothing written ----------------------------------------------


class RunsCode:
    """What a malicious checkpoint holds: unpickling it would create a directory."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _bad_inputs(trained, tmp_path):
    weights = trained["weights"]
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n" * 20)
    plain = tmp_path / "plain.pt"
    torch.save(dict(weights), plain)
    missing = tmp_path / "missing.pth.tar"
    torch.save(_checkpoint({k: v for k, v in ts_layout(weights).items() if k != "module.layer3.0.conv1.weight"}), missing)
    unexpected = tmp_path / "unexpected.pt"
    torch.save({**weights, "layer5.0.conv1.weight": torch.zeros(1)}, unexpected)
    evil_zip, evil_pickle = tmp_path / "evil.pt", tmp_path / "evil.pkl"
    torch.save({"state_dict": RunsCode(tmp_path / "ran")}, evil_zip)
    evil_pickle.write_bytes(pickle.dumps({"state_dict": RunsCode(tmp_path / "ran")}))
    return [
        (plain, "small_cnn", "do not fit backbone 'small_cnn'"),
        (trained["export"], "small_cnn", f"was exported from backbone '{BACKBONE}'"),
        (text, BACKBONE, "is not a PyTorch checkpoint or safetensors file"),
        (missing, BACKBONE, "1 missing (layer3.0.conv1.weight)"),
        (unexpected, BACKBONE, "1 unexpected (layer5.0.conv1.weight)"),
        (evil_zip, BACKBONE, "holds Python objects besides tensors (posix.mkdir)"),
        (evil_pickle, BACKBONE, "holds Python objects besides tensors"),
    ]


def test_bad_input_exits_2_with_one_line_and_writes_nothing(trained, tmp_path, capsys):
    for path, backbone, message in _bad_inputs(trained, tmp_path):
        results = tmp_path / "never" / "results"
        capsys.readouterr()
        code = main(["evaluate", "--weights", str(path), "--backbone", backbone, "--results-dir", str(results)])
        err = capsys.readouterr().err
        assert code == 2, (path, err)
        assert message in err and len(err.strip().splitlines()) == 1, (path, err)
        assert not (tmp_path / "never").exists() and not (tmp_path / "ran").exists()


def test_export_refuses_what_it_cannot_describe(trained, tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    assert main(["export", "--run", "ffffffffffff", "--results-dir", str(trained["results"]), "--out", str(out)]) == 2
    assert "no checkpoint of run 'ffffffffffff'" in capsys.readouterr().err
    argv = ["export", "--checkpoint", str(trained["export"]), "--results-dir", str(trained["results"]), "--out", str(out)]
    assert main(argv) == 2
    assert "is not a checkpoint of this suite" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()


# --- the leaderboard ---------------------------------------------------------------------------------------


def test_external_encoders_have_their_own_table_and_check_covers_them(trained, tmp_path):
    if not any(r["kind"] == "external" for r in load_records(trained["evals"])):
        evaluate(trained, trained["export"])
    board = tmp_path / "board"
    shutil.copytree(trained["results"], board / "results")
    for path in trained["evals"].glob("*.json"):
        shutil.copy(path, board / "results")
    markdown = write_report(board / "results", board / "README.md")
    trained_table, external_table = markdown.split("\n## digits_lt — ")[1:3]
    assert trained_table.startswith(f"{BACKBONE}, 1 epochs") and "external:" not in trained_table.split("**Provenance**")[0]
    assert external_table.startswith(f"external encoders (not trained by this suite) on {BACKBONE}")
    assert "| external:" in external_table and "| *floor:raw_pixels* " in external_table
    assert "External encoder external:" in markdown  # the summary's bullet
    assert check_report(board / "results", board / "README.md") == []

    # A hand-edited record that would put an external encoder among trained runs fails the check.
    path = next(p for p in (board / "results").glob("*.json") if json.loads(p.read_text())["kind"] == "external")
    record = json.loads(path.read_text())
    record["protocol"] = trained["record"]["protocol"]
    path.write_text(json.dumps(record))
    problems = check_report(board / "results", board / "README.md")
    assert any("outside the external encoders' table" in line for line in problems)
