"""The shipped alcapana and rootana productions, end to end on the local backend, with
stand-ins for alcapana, rootana and odbedit that keep the real command-line rules."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alcapctl.batch.wrapper import job_dir, job_name, read_exit
from alcapctl.config import load_production, load_site
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.store import RunRecord
from tests.conftest import digest, run_process
from tests.daq import (
    AL100,
    DEFAULT_ODBS,
    MODULES,
    PRODUCTIONS,
    Daq,
    legacy_modules,
    produce,
    runs_of,
    shipped_production,
    write_run_odbs,
)
from tests.ftpserver import FtpServer

FAST = {"datasets": '["Al100"]', "pause": "0.1"}


@pytest.fixture
def alcapana(tmp_path: Path, site_toml: Path, archive: Path, daq: Daq) -> Callable[..., Path]:
    """The shipped alcapana_v4.toml on the test site and archive; keys' lines replaced."""

    def make(**replace: str) -> Path:
        return shipped_production(
            "alcapana_v4.toml", tmp_path, site_toml, f"file://{archive}", **{**FAST, **replace}
        )

    return make


def test_alcapana_v4_from_the_ftp_archive_writes_the_2014_outputs_from_private_odbs(
    ftp_server: Callable[..., FtpServer],
    tmp_path: Path,
    site_toml: Path,
    data_dir: Path,
    db_path: Path,
    daq: Daq,
    context: Callable[[Path], StepContext],
) -> None:
    server = ftp_server()
    (server.root / "mu2e" / "run2013").mkdir(parents=True)
    for run in AL100:
        (server.root / "mu2e" / "run2013" / f"run{run:05d}.mid").write_text(f"raw {run}\n")
    write_run_odbs(data_dir, AL100)
    url = f"ftp://127.0.0.1:{server.port}/mu2e/run2013"
    prod = shipped_production("alcapana_v4.toml", tmp_path, site_toml, url, **FAST)

    done = produce(prod)

    assert done.returncode == 0, done.stderr
    assert sorted(server.commands("STAGE")) == [f"run{run:05d}.mid" for run in AL100]
    runs = runs_of(context(prod))
    assert {run: r.status for run, r in runs.items()} == {run: RunState.FINISHED for run in AL100}
    for run in AL100:
        tree = data_dir / "tree" / "v4" / f"tree{run:05d}.root"
        hist = data_dir / "hist" / "v4" / f"hist{run:05d}.root"
        dump = data_dir / "dump" / "v4" / f"dump{run:05d}.odb"
        assert tree.read_text() == f"tree of run {run}\nraw {run}\n"
        assert hist.read_text() == f"hist of run {run}\nraw {run}\n"
        assert runs[run].outputs == {
            "tree": str(tree),
            "hist": str(hist),
            "odb": str(dump),
            "olog": str(data_dir / "log" / "v4" / f"alcapana.run{run:05d}.out"),
            "elog": str(data_dir / "log" / "v4" / f"alcapana.run{run:05d}.err"),
        }
        loaded = [line for line in dump.read_text().splitlines() if line.startswith("# loaded")]
        assert loaded == [
            *(f"# loaded {daq.root}/analyzer/odb/{name}" for name in DEFAULT_ODBS),
            f"# loaded {data_dir}/odb/run{run:05d}.odb",
            f"# loaded {data_dir}/corr/corr{run:05d}.odb",
        ]
    assert legacy_modules(db_path, "alcapana_v4") == {run: MODULES for run in AL100}
    # the jobs ran in parallel (nproc 10), each with an ODB of its own, none left behind
    runs_by_odb: dict[str, set[str]] = {}
    for midas_dir, command in daq.odbedit_calls():
        if "/odb/run" in command:
            runs_by_odb.setdefault(midas_dir, set()).add(command.rsplit("/", 1)[1])
    assert len(runs_by_odb) == len(AL100)
    assert all(len(runs) == 1 for runs in runs_by_odb.values())
    assert not any(Path(midas_dir).exists() for midas_dir in runs_by_odb)


# run -> what makes its retry fail, the job script's exit code and message (2124: none)
REFUSALS: dict[int, tuple[str, int, str]] = {
    2119: ("raw/alcapana_v4/run02119.mid", 3, "ERROR: Raw file does not exist ("),
    2120: ("hist/v4/hist02120.root", 4, "ERROR: Histogram file exists ("),
    2121: ("tree/v4/tree02121.root", 5, "ERROR: Tree file exists ("),
    2122: ("odb/run02122.odb", 7, "ERROR: ODB file not found ("),
    2123: ("corr/corr02123.odb", 8, "ERROR: Cannot find ODB corrections ("),
}


def test_each_refusal_of_the_job_script_is_the_runs_recorded_error(
    alcapana: Callable[..., Path],
    data_dir: Path,
    daq: Daq,
    context: Callable[[Path], StepContext],
) -> None:
    """Every first attempt meets an alcapana that is not compiled (6); then each run gets
    its own fault, which its retry meets.  Outputs left behind are this production's own
    attempt's: alcapctl lets the retry run, and the job script refuses them, as in 2014."""
    prod = alcapana(max_attempts="2", nprep="10")
    daq.alcapana.chmod(0o644)
    assert run_process("init", prod).returncode == 0
    for step in ("claim", "stage", "submit"):
        assert run_process(step, prod).returncode == 0
    ctx = context(prod)
    for record in runs_of(ctx).values():
        _wait_for_exit(ctx, record)
    assert run_process("reap", prod).returncode == 0
    first = runs_of(ctx)
    assert {r.attempts for r in first.values()} == {1}
    assert all(r.error and r.error.startswith("exit code 6\n") for r in first.values())
    assert all(
        "ERROR: alcapana does not seem to be compiled (" in (r.error or "") for r in first.values()
    )

    daq.alcapana.chmod(0o755)
    for path, code, _ in REFUSALS.values():
        target = data_dir / path
        if code in (4, 5):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("left by an earlier attempt\n")
        else:
            target.unlink()
    done = run_process("run", prod)

    assert done.returncode == 1, done.stderr  # finished, runs failed for good
    runs = runs_of(ctx)
    assert {run: r.status for run, r in runs.items()} == {
        **{run: RunState.FAILED for run in REFUSALS},
        2124: RunState.FINISHED,
    }
    for run, (_, code, message) in REFUSALS.items():
        error = runs[run].error or ""
        assert error.startswith(f"exit code {code}\n") and message in error, error


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("-i {input} -T {tree} -H {hist} -D {odb}", "exit code 1"),  # -H: usage
        ("-i {input} -T {tree} -o {hist} -D", "missing output tree"),  # a daemon: no output
    ],
    ids=["usage", "daemon"],
)
def test_the_old_alcapana_command_line_fails_as_the_real_analyzer_would(
    command: str,
    error: str,
    alcapana: Callable[..., Path],
    context: Callable[[Path], StepContext],
) -> None:
    prod = alcapana(
        command=f'"\\"$DAQdir/analyzer/work/production/alcapana\\" {command}"',
        max_attempts="1",
    )

    done = produce(prod)

    assert done.returncode == 1, done.stderr
    runs = runs_of(context(prod))
    assert {r.status for r in runs.values()} == {RunState.FAILED}
    assert {(r.error or "").splitlines()[0].split(":")[0] for r in runs.values()} == {error}


def test_rootana_reads_the_base_trees_with_the_production_modules_and_calibration_switch(
    alcapana: Callable[..., Path],
    tmp_path: Path,
    site_toml: Path,
    data_dir: Path,
    db_path: Path,
    context: Callable[[Path], StepContext],
) -> None:
    base = alcapana(version="3", tag='"alcapana_v3"')
    assert produce(base).returncode == 0
    modules = (PRODUCTIONS / "production.cfg").read_text()
    for version, calibration in ((8, "no"), (9, "yes")):
        (tmp_path / f"v{version}").mkdir()
        prod = shipped_production(
            "rootana_v8.toml",
            tmp_path / f"v{version}",
            site_toml,
            None,
            version=str(version),
            ROOTANA_CALIB=f'"{calibration}"',
        )

        done = produce(prod, "--pause", "0.1")

        assert done.returncode == 0, done.stderr
        runs = runs_of(context(prod))
        assert {r.status for r in runs.values()} == {RunState.FINISHED}
        for run in AL100:
            out = data_dir / "out" / f"v{version}" / f"out{run:05d}.root"
            assert out.read_text() == (
                f"out of tree of run {run}\nraw data of run {run}\n"
                f"calibration: {calibration}\nmodules: {modules}"
            )
        assert legacy_modules(db_path, f"rootana_v{version}") == {run: modules for run in AL100}


@pytest.mark.parametrize("command", ["check", "init", "run"])
def test_an_unset_daqdir_is_refused_naming_it(
    command: str, alcapana: Callable[..., Path], db_path: Path
) -> None:
    prod = alcapana()
    if command == "run":
        assert run_process("init", prod).returncode == 0
    before = digest(db_path)

    done = run_process(command, prod, env={"DAQdir": ""})

    assert done.returncode == 2
    assert "$DAQdir not set in this shell" in done.stderr and "job.pass_env" in done.stderr
    assert digest(db_path) == before


@pytest.mark.parametrize("command", ["check", "init", "run"])
def test_a_missing_modules_file_is_refused(
    command: str, alcapana: Callable[..., Path], daq: Daq, db_path: Path
) -> None:
    prod = alcapana()
    if command == "run":
        assert run_process("init", prod).returncode == 0
    daq.modules.unlink()
    before = digest(db_path)

    done = run_process(command, prod)

    assert done.returncode == 2
    assert f"job.modules: cannot read {daq.modules}" in done.stderr
    assert digest(db_path) == before


def test_no_run_finishes_without_its_modules(
    alcapana: Callable[..., Path], daq: Daq, db_path: Path, context: Callable[[Path], StepContext]
) -> None:
    prod = alcapana()
    assert run_process("init", prod).returncode == 0
    for step in ("claim", "stage", "submit"):
        assert run_process(step, prod).returncode == 0
    ctx = context(prod)
    jobs = [r for r in runs_of(ctx).values() if r.status is RunState.RUNNING]
    for record in jobs:
        _wait_for_exit(ctx, record)
    daq.modules.unlink()

    refused = run_process("reap", prod)

    assert refused.returncode == 2 and "job.modules" in refused.stderr
    assert all(r.status is not RunState.FINISHED for r in runs_of(ctx).values())
    daq.modules.write_text(MODULES)
    assert run_process("reap", prod).returncode == 0
    finished = legacy_modules(db_path, "alcapana_v4")
    assert {run: finished[run] for run in (r.run for r in jobs)} == {r.run: MODULES for r in jobs}


def _wait_for_exit(ctx: StepContext, record: RunRecord) -> None:
    for _ in range(600):
        if read_exit(job_dir_of(ctx, record)) is not None:
            return
        time.sleep(0.05)
    pytest.fail(f"job of run {record.run} never ended")


def test_the_wrapper_itself_exports_pass_env_and_env(
    make_production: Callable[..., Path], tmp_path: Path, context: Callable[[Path], StepContext]
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "run02119.mid").write_text("raw\n")
    prod = make_production(
        datasets=["Al100"],
        archive={"url": f"file://{archive}"},
        outputs={"hist": "", "odb": ""},
        job={
            "command": 'printf "%s|%s" "$DAQdir" "$GREETING" > {tree}',
            "pass_env": ["DAQdir"],
            "env": {"GREETING": "it's a 'quoted' value"},
        },
    )
    daqdir = str(tmp_path / "a dir with 'quotes' and $dollars")
    assert run_process("init", prod, env={"DAQdir": daqdir}).returncode == 0
    done = run_process("run", prod, "--pause", "0.1", env={"DAQdir": daqdir})
    assert done.returncode == 1  # the runs without raw files fail; 2119 has one
    ctx = context(prod)
    tree = ctx.output_paths(2119)["tree"]
    assert tree.read_text() == f"{daqdir}|it's a 'quoted' value"

    # the job script alone, with no environment at all, gives its job the same values
    tree.unlink()
    script = job_dir_of(ctx, runs_of(ctx)[2119]) / "job.sh"
    subprocess.run(["env", "-i", "/bin/sh", str(script)], check=True)
    assert tree.read_text() == f"{daqdir}|it's a 'quoted' value"


def job_dir_of(ctx: StepContext, record: RunRecord) -> Path:
    return job_dir(ctx.workdir, job_name(ctx.record.short, record.run, record.attempt))


def test_check_warns_about_an_undefined_variable_and_a_missing_program(
    make_production: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = make_production(job={"command": "$NO_SUCH_VARIABLE/bin/x {input}"})
    missing = make_production("b.toml", job={"command": f"{tmp_path}/nothing-here -i {{input}}"})
    off_path = make_production("c.toml", job={"command": "no-such-program-anywhere {input}"})
    fine = make_production("d.toml", job={"command": "cat {input} > {tree}"})
    not_passed = make_production(
        "e.toml", backend="sge", job={"command": "cat {input} > $HOME/$LANG_OF_TEST"}
    )
    passed = make_production(
        "f.toml",
        backend="sge",
        job={"command": "cat {input} > $LANG_OF_TEST", "pass_env": ["LANG_OF_TEST"]},
    )
    monkeypatch.setenv("LANG_OF_TEST", "set")

    def warnings(path: Path) -> list[str]:
        done = run_process("check", path, "--json")
        assert done.returncode == 0, done.stderr
        found: list[str] = json.loads(done.stdout)["warnings"]
        return found

    assert [w.split(": ", 2)[2] for w in warnings(prod)] == [
        "$NO_SUCH_VARIABLE is not defined here, nor in job.env or job.pass_env; "
        "the job will see it empty"
    ]
    assert warnings(missing) == [f"{missing}: job.command: {tmp_path}/nothing-here: no such file"]
    assert warnings(off_path) == [
        f"{off_path}: job.command: no-such-program-anywhere: not found on PATH"
    ]
    assert warnings(fine) == warnings(passed) == []
    assert warnings(not_passed) == [
        f"{not_passed}: job.command: $LANG_OF_TEST is set in this shell only; sge jobs do "
        "not get it: add it to job.pass_env"
    ]


def test_pass_env_takes_only_shell_variable_names(
    make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production(job={"command": "cat {input} > {tree}", "pass_env": ["DAQ dir"]})
    before = digest(db_path)

    done = run_process("check", prod)

    assert done.returncode == 2
    assert f"{prod}: job.pass_env: ['DAQ dir']: not shell variable names" in done.stderr
    assert digest(db_path) == before


def test_the_shipped_files_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAQdir", "/opt/AlcapDAQ")
    site = load_site(PRODUCTIONS / "sites" / "merlin.toml").site
    assert (site.backend, site.archive.url) == ("slurm", "ftp://archivftp.psi.ch/mu2e/run2013")
    alcapana = load_production(PRODUCTIONS / "alcapana_v4.toml")
    assert alcapana.job.modules == Path("/opt/AlcapDAQ/analyzer/work/production/MODULES")
    assert alcapana.job.script == PRODUCTIONS / "jobs" / "alcapana.sh"
    assert alcapana.job.pass_env == ("DAQdir",)
    rootana = load_production(PRODUCTIONS / "rootana_v8.toml")
    assert rootana.job.modules == PRODUCTIONS / "production.cfg"
    assert rootana.job.env == {"ROOTANA_CALIB": "no"}
