"""fedtwin.data.datasets: how sweeps are split into sites, the held-out rules, profiles, windows on disk.

Expected values are counted by hand from the configuration (runs per site, seeds, cylinders), so a change of
the data design shows up here as a failed count, not as a silently different training set.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fedtwin.data import datasets as ds
from fedtwin.data.features import FEATURE_NAMES
from plant_models import Faults, OperatingPoint, Scenario

FAULTS = ("leak", "blocked_inlet", "bearing")  # label column order

# 2 sites per fault, 2 operating points, 1 healthy run per point, 2 severities x 2 points x 1 seed.
SMALL_TRAIN = ds.SweepConfig(
    seed=5,
    duration_s=1.0,
    warmup_s=0.2,
    clients_per_fault=2,
    train_seeds_per_site=1,
    healthy_runs_per_op_per_site=1,
    train_severities=(0.5, 1.0),
    train_speeds=(800.0, 1100.0),
    train_loads=(1.0,),
)
# 1 speed x 2 loads; 3 healthy runs per point; 7 fault sets x 2 severities x 2 points x 1 run.
SMALL_TEST = ds.SweepConfig(
    seed=5,
    test_speeds=(870.0,),
    test_loads=(0.9, 1.12),
    test_healthy_runs_per_op=3,
    test_severities=(0.05, 0.95),
    test_runs_per_cell=1,
)


def _severities(sc: Scenario) -> list[float]:
    return [round(float(x), 6) for x in sc.faults.severities()]


# ------------------------------------------------------------------------------------- train sweep -> sites


def test_train_scenarios_one_fault_type_per_site_in_fixed_order() -> None:
    sites = ds.train_scenarios(SMALL_TRAIN)
    assert list(sites) == [
        "leak-site0",
        "leak-site1",
        "blocked_inlet-site0",
        "blocked_inlet-site1",
        "bearing-site0",
        "bearing-site1",
    ]
    for cid, runs in sites.items():
        fault = cid.split("-site")[0]
        k = FAULTS.index(fault)
        # 2 points x 1 healthy run, then severities 0.5, 1.0 on 2 points each.
        assert len(runs) == 6
        assert [_severities(sc) for sc in runs[:2]] == [[0.0, 0.0, 0.0]] * 2
        fault_sev = [_severities(sc) for sc in runs[2:]]
        expected = [[0.0, 0.0, 0.0] for _ in range(4)]
        for row, sev in zip(expected, (0.5, 0.5, 1.0, 1.0), strict=True):
            row[k] = sev
        assert fault_sev == expected, cid
        assert all(sc.duration_s == 1.0 and sc.warmup_s == 0.2 for sc in runs)


def test_train_scenarios_seeds_are_consecutive_and_leaks_cycle_cylinders() -> None:
    sites = ds.train_scenarios(SMALL_TRAIN)
    seeds = [sc.seed for runs in sites.values() for sc in runs]
    assert seeds == list(range(5, 5 + 36))  # 6 sites x 6 runs, one fresh seed each
    leak0 = sites["leak-site0"]
    assert [sc.seed for sc in leak0] == [5, 6, 7, 8, 9, 10]
    # The cylinder is the run's seed mod 3: seeds 7, 8, 9, 10 of the leaking runs.
    assert [sc.faults.leak_cylinder for sc in leak0[2:]] == [1, 2, 0, 1]


def test_train_scenarios_seeds_wrap_below_the_test_range() -> None:
    sites = ds.train_scenarios(dataclasses.replace(SMALL_TRAIN, seed=999_999))
    seeds = [sc.seed for runs in sites.values() for sc in runs]
    assert seeds[:3] == [999_999, 0, 1]
    assert max(seeds) < 1_000_000


def test_train_scenarios_draw_each_run_its_own_point_inside_the_envelope() -> None:
    runs = [sc for scs in ds.train_scenarios(SMALL_TRAIN).values() for sc in scs]
    speeds = [sc.op.speed_rpm for sc in runs]
    assert all(800.0 <= s <= 1100.0 for s in speeds)
    assert len(set(speeds)) == len(runs)  # drawn per run, not a handful of set points
    assert {sc.op.load_area_factor for sc in runs} == {1.0}  # a one-value load range stays at that value
    again = [sc for scs in ds.train_scenarios(SMALL_TRAIN).values() for sc in scs]
    assert again == runs  # same config, same sweep
    other = ds.train_scenarios(dataclasses.replace(SMALL_TRAIN, seed=6))
    assert other["leak-site0"][0].op != runs[0].op


def test_default_train_sweep_size() -> None:
    sites = ds.train_scenarios()
    # 3 faults x 2 sites; per site 9 points x 4 healthy runs + 10 severities x 9 points x 1 seed.
    assert len(sites) == 6
    assert {len(runs) for runs in sites.values()} == {36 + 90}


# ------------------------------------------------------------------------------------- held-out sweep


def test_test_scenarios_cover_all_fault_sets_on_the_given_points() -> None:
    runs = ds.test_scenarios(SMALL_TEST)
    assert len(runs) == 2 * 3 + 7 * 2 * 2  # healthy, then 7 fault sets x 2 severities x 2 points
    assert [sc.seed for sc in runs] == list(range(1_000_005, 1_000_005 + 34))
    assert {(sc.op.speed_rpm, sc.op.load_area_factor) for sc in runs} == {(870.0, 0.9), (870.0, 1.12)}
    by_set = Counter(sc.faults.active() for sc in runs)
    assert by_set[()] == 6
    assert len(by_set) == 8 and all(n == 4 for fset, n in by_set.items() if fset)
    for sc in runs:
        sev = _severities(sc)
        active = [s for s in sev if s > 0]
        # Every fault of a combination at the same severity, the others at 0.
        assert len(set(active)) <= 1 and (not active or active[0] in (0.05, 0.95))


def test_test_scenarios_never_reuse_training_seeds_severities_or_points() -> None:
    cfg = ds.SweepConfig()
    train = [sc for runs in ds.train_scenarios(cfg).values() for sc in runs]
    test = ds.test_scenarios(cfg)
    assert len(test) == 4 * 40 + 7 * 10 * 4  # 2 x 2 points: 40 healthy each; 7 sets x 10 severities
    assert not {sc.seed for sc in train} & {sc.seed for sc in test}
    assert not set(cfg.test_severities) & set(cfg.train_severities)
    assert min(cfg.test_severities) < min(cfg.train_severities)  # one level below the smallest trained
    for speed in cfg.test_speeds:
        assert min(cfg.train_speeds) < speed < max(cfg.train_speeds) and speed not in cfg.train_speeds
    for load in cfg.test_loads:
        assert min(cfg.train_loads) < load < max(cfg.train_loads) and load not in cfg.train_loads
    assert {sc.faults.leak_cylinder for sc in test if sc.faults.leak > 0} == {0, 1, 2}


# ------------------------------------------------------------------------------------- profiles


def test_profiles_at_the_nominal_point_are_the_table() -> None:
    assert sorted(ds.PROFILES) == ["demo", "full"]
    assert ds.get_profile("demo") == ds.PROFILES["demo"]
    assert ds.get_profile("full") == ds.SweepConfig()


def test_profile_envelope_scales_with_the_operating_point() -> None:
    cfg = ds.get_profile("full", speed_rpm=479.0, load_area_factor=2.0)  # half speed, twice the load area
    assert cfg.train_speeds == (400.0, 479.0, 550.0)
    assert cfg.test_speeds == (435.0, 520.0)
    assert cfg.train_loads == pytest.approx((1.6, 2.0, 2.5))
    assert cfg.test_loads == pytest.approx((1.8, 2.24))
    demo = ds.get_profile("demo", speed_rpm=479.0)
    assert demo.clients_per_fault == 1 and demo.test_severities == (0.05, 0.25, 0.45, 0.65, 0.85)


def test_profile_envelope_is_clipped_to_the_plant_limits() -> None:
    fast = ds.get_profile("full", speed_rpm=1437.0)  # x1.5: 1100 and 1040 rpm would exceed 1500
    assert fast.train_speeds == (1200.0, 1437.0, 1500.0)
    assert fast.test_speeds == (1305.0, 1500.0)
    assert ds.get_profile("full", load_area_factor=10.0).train_loads == (5.0, 5.0, 5.0)
    assert ds.get_profile("full", load_area_factor=0.1).test_loads == (0.2, 0.2)


def test_unknown_profile_is_a_one_line_error() -> None:
    expected = r"^unknown training profile 'huge'; choose from \['demo', 'full'\]$"
    with pytest.raises(ValueError, match=expected):
        ds.get_profile("huge")


# ------------------------------------------------------------------------------------- windows on disk


def _windows() -> ds.LabelledWindows:
    return ds.LabelledWindows(
        X=np.array([[1.5, -2.0], [3.25, 4.0], [0.0, 1e-9]]),
        Y=np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.int64),
        severity=np.array([[0.5, 0.0, 0.0], [0.0, 0.25, 1.0], [0.0, 0.0, 0.0]]),
        speed_rpm=np.array([958.0, 900.0, 1000.0]),
        load=np.array([1.0, 0.9, 1.1]),
        scenario_id=np.array([0, 0, 7]),
        info={"n_scenarios": 8},
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    lw = _windows()
    path = ds.save_windows(lw, tmp_path / "new" / "dir" / "w.npz")  # parents are created
    assert path == tmp_path / "new" / "dir" / "w.npz" and path.is_file()
    back = ds.load_windows(str(path))
    # numpy appends .npz to any other name: the returned path is the file that exists.
    other = ds.save_windows(lw, tmp_path / "w.v2")
    assert other == tmp_path / "w.v2.npz" and other.is_file()
    for name in ("X", "Y", "severity", "speed_rpm", "load", "scenario_id"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lw, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(lw, name).dtype, name
    assert back.info == {}  # info is not stored


def test_load_windows_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    z = np.zeros(2)
    evil = np.array([{"a": 1}, None], dtype=object)
    np.savez(path, X=evil, Y=z, severity=z, speed_rpm=z, load=z, scenario_id=z)
    with pytest.raises(ValueError, match="allow_pickle"):
        ds.load_windows(path)


def test_load_windows_names_a_missing_array(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, X=np.zeros((1, 2)), Y=np.zeros((1, 3)))
    with pytest.raises(KeyError, match="severity"):
        ds.load_windows(path)


def test_windows_frame_has_features_then_one_label_column_per_fault() -> None:
    df = ds.windows_frame(_windows(), ["a", "b"])
    assert list(df.columns) == ["a", "b", "leak", "blocked_inlet", "bearing"]
    assert df["a"].tolist() == [1.5, 3.25, 0.0]
    assert df["blocked_inlet"].tolist() == [0, 1, 0] and df["bearing"].dtype.kind == "i"


# ------------------------------------------------------------------------------------- simulation to windows


def test_scenario_windows_labels_rows_and_skips_failed_runs() -> None:
    healthy = Scenario(faults=Faults(), seed=1, duration_s=2.0)
    leak = Scenario(faults=Faults.from_severity(leak=1.0), op=OperatingPoint(speed_rpm=900.0), seed=2)
    broken = Scenario(seed=3)
    object.__setattr__(broken, "duration_s", -1.0)  # invalid after construction: the batch reports it failed
    lw = ds.scenario_windows([healthy, broken, leak], window_s=1.0)
    assert lw.X.shape == (4, len(FEATURE_NAMES)) and np.isfinite(lw.X).all()  # 2 s -> two 1 s windows each
    assert lw.Y.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0]]
    assert lw.Y.dtype == np.int64
    assert lw.severity.tolist() == [[0.0, 0.0, 0.0]] * 2 + [[1.0, 0.0, 0.0]] * 2
    assert lw.scenario_id.tolist() == [0, 0, 2, 2]  # index into the input, the failed run left out
    assert lw.speed_rpm.tolist() == [958.0, 958.0, 900.0, 900.0]
    assert lw.info == {"n_scenarios": 3, "n_failed": 1}


def test_scenario_windows_with_every_run_failed_raises() -> None:
    broken = Scenario(seed=3)
    object.__setattr__(broken, "duration_s", -1.0)
    with pytest.raises(RuntimeError, match="every simulation failed"):
        ds.scenario_windows([broken])


def test_build_clients_gives_each_site_its_own_windows() -> None:
    cfg = ds.SweepConfig(
        duration_s=1.0,
        warmup_s=0.2,
        clients_per_fault=1,
        healthy_runs_per_op_per_site=1,
        train_severities=(1.0,),
        train_speeds=(958.0,),
        train_loads=(1.0,),
    )
    clients = ds.build_clients(cfg)
    assert list(clients) == ["leak-site0", "blocked_inlet-site0", "bearing-site0"]
    for k, (cid, data) in enumerate(clients.items()):
        assert data.client_id == cid
        assert data.X.shape == (2, len(FEATURE_NAMES))  # 1 healthy + 1 faulty run, one 1 s window each
        label = [0, 0, 0]
        label[k] = 1
        assert data.Y.tolist() == [[0, 0, 0], label]


# ------------------------------------------------------------------------------------- drift reference


def test_reference_scenarios_are_healthy_runs_at_exactly_the_design_point() -> None:
    runs = ds.reference_scenarios(900.0, 1.2, runs=3, duration_s=1.5, seed=10)
    assert [sc.seed for sc in runs] == [10, 11, 12]
    assert all(sc.op == OperatingPoint(speed_rpm=900.0, load_area_factor=1.2) for sc in runs)
    assert all(sc.faults == Faults() and sc.duration_s == 1.5 for sc in runs)
    assert [sc.seed for sc in ds.reference_scenarios(958.0, 1.0)] == list(range(7_000_000, 7_000_030))


def test_reference_scenarios_refuse_an_impossible_operating_point() -> None:
    with pytest.raises(ValueError, match="speed_rpm"):
        ds.reference_scenarios(0.0, 1.0)
    with pytest.raises(ValueError, match="load_area_factor"):
        ds.reference_scenarios(958.0, 9.0)


def test_reference_windows_shape() -> None:
    ref = ds.reference_windows(958.0, 1.0, 1.0)
    assert ref.shape == (30 * 2, len(FEATURE_NAMES))  # 30 runs of 2 s, 1 s windows
    assert np.isfinite(ref).all()
