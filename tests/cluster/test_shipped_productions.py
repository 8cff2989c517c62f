"""The shipped alcapana and rootana productions on real Slurm and Grid Engine, with the
stand-ins.

Grid Engine passes no environment to a job (2014 needed ``qsub -v DAQdir``): a run that
ends F shows that the wrapper exported ``pass_env`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from tests import daq as shipped
from tests.cluster.conftest import Cluster
from tests.conftest import write_toml
from tests.daq import Daq

pytestmark = pytest.mark.cluster

FINISHED = shipped.AL100[:-1]  # 2124 has no corrections


def test_alcapana_then_rootana_finish_with_the_2014_outputs_and_refuse_as_in_2014(
    cluster: Cluster,
    tmp_path: Path,
    db_path: Path,
    data_dir: Path,
    archive: Path,
    daq: Daq,
    context: Callable[[Path], StepContext],
) -> None:
    site = write_toml(
        tmp_path / "cluster-site.toml",
        {"database": str(db_path), "data": str(data_dir), "backend": cluster.backend.name},
    )
    prod = shipped.shipped_production(
        "alcapana_v4.toml",
        tmp_path,
        site,
        f"file://{archive}",
        datasets='["Al100"]',
        pause="1",
        max_attempts="1",
    )
    (data_dir / "corr" / "corr02124.odb").unlink()

    done = shipped.produce(prod, timeout=400)

    assert done.returncode == 1, done.stderr  # finished; 2124 failed for good
    runs = shipped.runs_of(context(prod))
    assert {run: r.status for run, r in runs.items()} == {
        **{run: RunState.FINISHED for run in FINISHED},
        2124: RunState.FAILED,
    }
    error = runs[2124].error or ""
    assert re.match(r"exit code 8\b", error) and "ERROR: Cannot find ODB corrections" in error
    for run in FINISHED:
        assert runs[run].backend == cluster.backend.name
        assert (
            (data_dir / "tree" / "v4" / f"tree{run:05d}.root")
            .read_text()
            .startswith(f"tree of run {run}\n")
        )
        assert (data_dir / "hist" / "v4" / f"hist{run:05d}.root").exists()
        dump = (data_dir / "dump" / "v4" / f"dump{run:05d}.odb").read_text()
        assert [line for line in dump.splitlines() if line.startswith("# loaded")] == [
            *(f"# loaded {daq.root}/analyzer/odb/{name}" for name in shipped.DEFAULT_ODBS),
            f"# loaded {data_dir}/odb/run{run:05d}.odb",
            f"# loaded {data_dir}/corr/corr{run:05d}.odb",
        ]
    modules = shipped.legacy_modules(db_path, "alcapana_v4")
    assert {run: modules[run] for run in FINISHED} == {run: shipped.MODULES for run in FINISHED}
    odbs = {midas_dir for midas_dir, command in daq.odbedit_calls() if "/odb/run" in command}
    assert len(odbs) == len(shipped.AL100)  # one private ODB per job, 2124's included
    assert not any(Path(midas_dir).exists() for midas_dir in odbs)

    # rootana on these trees, as a calibration pass: 2124 has no tree and is not taken
    (tmp_path / "rootana").mkdir()
    rootana = shipped.shipped_production(
        "rootana_v8.toml", tmp_path / "rootana", site, None, base="4", ROOTANA_CALIB='"yes"'
    )
    done = shipped.produce(rootana, "--pause", "1", timeout=400)
    assert done.returncode == 0, done.stderr
    outs = shipped.runs_of(context(rootana))
    assert {run: r.status for run, r in outs.items()} == {
        run: RunState.FINISHED for run in FINISHED
    }
    cfg = (shipped.PRODUCTIONS / "production.cfg").read_text()
    for run in FINISHED:
        out = (data_dir / "out" / "v8" / f"out{run:05d}.root").read_text()
        assert out.startswith(f"out of tree of run {run}\n")
        assert out.endswith(f"calibration: yes\nmodules: {cfg}")
