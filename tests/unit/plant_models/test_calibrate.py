"""Calibration from measured healthy data: recovery of known parameters, bad input, the parameter file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plant_models import PumpParams, Scenario, simulate
from plant_models.calibrate import (
    REFERENCE_TARGETS,
    calibrate_measured,
    read_measured,
    signal_targets,
    simulate_targets,
    validate_measured,
)
from plant_models.params import PARAMS_FILE_ENV, default_params, load_params, params_from_dict, save_params

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def measured() -> dict[str, np.ndarray]:
    """3 s of a noisy healthy pump whose air content and crank friction differ from the defaults."""
    truth = PumpParams(air_fraction=0.009, crank_coulomb_nm=0.5)
    return simulate(Scenario(duration_s=3.0, seed=21), truth)


def test_recovers_known_parameters_from_noisy_measurement(measured: dict[str, np.ndarray]) -> None:
    result = calibrate_measured(measured, fit=("air_fraction", "crank_coulomb_nm"), max_sims=40)
    # Stated tolerances: air within 15 % (it moves flow by ~0.1 % per 0.1 % of air), friction within 0.05 N*m
    # (5 W of shaft power, 0.2 A of supply current).
    assert result.fitted["air_fraction"] == pytest.approx(0.009, rel=0.15)
    assert result.fitted["crank_coulomb_nm"] == pytest.approx(0.5, abs=0.05)
    assert result.cost_after < 0.05 * result.cost_before
    assert all(abs(r) < 1.0 for r in result.residuals("after").values())
    lines = result.report()
    assert any(line.startswith("air_fraction") and "->" in line for line in lines)


def test_measured_summaries_are_noise_robust(measured: dict[str, np.ndarray]) -> None:
    noisy = signal_targets(measured, 1000.0)
    clean = simulate_targets(PumpParams(air_fraction=0.009, crank_coulomb_nm=0.5), duration_s=3.0)
    # Ripple is the crank-order lines only: 0.02 bar of white sensor noise does not count.
    assert noisy["ripple_std_bar"] == pytest.approx(clean["ripple_std_bar"], rel=0.1)
    assert noisy["mean_flow_lpm"] == pytest.approx(clean["mean_flow_lpm"], abs=0.05)
    assert set(REFERENCE_TARGETS) - set(clean) == set()


def _frame(n: int = 1500, fs: float = 1000.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "time": np.arange(n) / fs,
            "pressure": 7.25 + 0.03 * rng.standard_normal(n),
            "flow": 38.0 + rng.standard_normal(n),
            "speed": 1916.0 + rng.standard_normal(n),
            "current": 28.0 + rng.standard_normal(n),
        }
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["current"]), "lacks column(s) current"),
        (lambda f: f.assign(flow=np.where(np.arange(len(f)) == 7, np.nan, f["flow"])), "flow has 1 NaN"),
        (lambda f: f.iloc[:500], "need at least 1 s"),
        (lambda f: f.assign(time=f["time"] * 2.0), "sample rate of 500 Hz; expected 1000 Hz"),
        (lambda f: f.assign(speed=0.0), "speed has a non-positive mean"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bad_measured_files_give_one_readable_error(
    tmp_path: Path, mutate, message: str, suffix: str
) -> None:
    path = tmp_path / f"m{suffix}"
    frame = mutate(_frame())
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_measured(path)


def test_good_file_reads_and_wrong_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    _frame().to_csv(path, index=False)
    sig = read_measured(path)
    assert set(sig) == {"pressure", "flow", "speed", "current"} and sig["pressure"].shape == (1500,)
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match=r"expected a \.csv or \.parquet"):
        read_measured(tmp_path / "m.txt")
    with pytest.raises(ValueError, match="not found"):
        read_measured(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="lacks column"):
        validate_measured({"pressure": np.zeros(2000)})


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"load_area_m2": -2e-4}, "load_area_m2"),
        ({"valve_max_area_m2": 0.0}, "valve_max_area_m2"),
        ({"air_fraction": 1.5}, "air_fraction"),
        ({"bulk_modulus_pa": float("nan")}, "bulk_modulus_pa"),
        ({"valve_open_pa": 1e4}, "valve_open_pa"),
        ({"leak_area": 1e-6}, "leak_area"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(values: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        params_from_dict(values)


def test_parameter_file_round_trip_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = PumpParams(crank_coulomb_nm=PumpParams().crank_coulomb_nm + 0.6)
    path = save_params(tmp_path / "p.json", params, {"note": "test"})
    assert load_params(path) == params
    monkeypatch.delenv(PARAMS_FILE_ENV, raising=False)
    assert default_params() == PumpParams()
    monkeypatch.setenv(PARAMS_FILE_ENV, str(path))
    assert default_params() == params
    # Every simulation without explicit parameters now runs the calibrated plant: more friction, more current.
    calibrated = simulate(Scenario(duration_s=0.3, seed=1))["current"].mean()
    reference = simulate(Scenario(duration_s=0.3, seed=1), PumpParams())["current"].mean()
    # 0.6 N*m at 100.3 rad/s is 60 W more shaft power; the armature carries 0.6 / 2 / 0.065 = 4.6 A more on
    # top of ~49.3 A, so its copper loss grows by 0.022 * (53.9^2 - 49.3^2) = 10 W; all drawn from 24 V.
    copper = PumpParams().motor_resistance_ohm * ((49.3 + 0.3 / 0.065) ** 2 - 49.3**2)
    assert calibrated - reference == pytest.approx((0.6 * 100.3 + copper) / 24.0, rel=0.03)
    from fedtwin.settings import Settings

    assert Settings().plant_params_file == path
    (tmp_path / "bad.json").write_text('{"schema": "fedtwin.plant_params/1", "params": {"motor_k": -1}}')
    with pytest.raises(ValueError, match="motor_k"):
        load_params(tmp_path / "bad.json")


def test_cli_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    _frame().drop(columns=["speed"]).to_csv(path, index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from fedtwin.app.cli import main; main()"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "plant",
            "calibrate",
            "--measured",
            str(path),
            "--out",
            str(tmp_path / "p.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lacks column(s) speed" in lines[0], proc.stderr
    assert not (tmp_path / "p.json").exists()
